//! `oxr-bgp --check-config`, as oxr-routerd asks a protocol binary to validate its section:
//! the section as JSON on stdin, `[{"path", "reason"}]` on stdout, exit status 1 when
//! invalid. And `--config-schema`, the section's JSON schema.

use std::path::Path;

use oxr_sdk::testing::ask_protocol_binary;

/// Runs `oxr-bgp FLAG` with `stdin`; (exit code, stdout as JSON).
fn bgp(flag: &str, stdin: &str) -> (i32, serde_json::Value) {
    ask_protocol_binary(Path::new(env!("CARGO_BIN_EXE_oxr-bgp")), flag, stdin)
}

#[test]
fn check_config_accepts_a_valid_section() {
    let (code, errs) = bgp(
        "--check-config",
        r#"{"local-as": 65000, "router-id": "192.0.2.1",
            "neighbor": {"192.0.2.2": {"remote-as": 65001, "hold-time": 30}}}"#,
    );
    assert_eq!((code, errs), (0, serde_json::json!([])));
}

#[test]
fn check_config_names_path_and_reason_of_each_error() {
    // An unknown key, then (in a separate run: deserialization stops at the first) the
    // semantic errors, in the order validation finds them.
    let (code, errs) = bgp(
        "--check-config",
        r#"{"local-as": 65000, "router-id": "192.0.2.1",
            "neighbor": {"192.0.2.2": {"remote-as": 65001, "hold-tim": 30}}}"#,
    );
    assert_eq!(code, 1);
    assert_eq!(errs[0]["path"], "neighbor.\"192.0.2.2\".hold-tim", "{errs}");
    let reason = errs[0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("unknown field `hold-tim`"), "{errs}");
    let (code, errs) = bgp(
        "--check-config",
        r#"{"local-as": 0, "router-id": "192.0.2.1",
            "neighbor": {"192.0.2.2": {"remote-as": 65001, "hold-time": 2,
                                       "import-policy": ["IN"]}}}"#,
    );
    assert_eq!(code, 1);
    assert_eq!(
        errs,
        serde_json::json!([
            {"path": "local-as", "reason": "AS 0 is reserved (RFC 7607)"},
            {"path": "neighbor.\"192.0.2.2\".hold-time",
             "reason": "must be 0 or at least 3 (RFC 4271)"},
            {"path": "neighbor.\"192.0.2.2\".import-policy[0]",
             "reason": "no policy named \"IN\""},
        ])
    );
}

#[test]
fn config_schema_describes_the_section() {
    let (code, schema) = bgp("--config-schema", "");
    assert_eq!(code, 0);
    let mut keys: Vec<&str> = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no properties in {schema}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "cluster-id",
            "local-as",
            "max-paths",
            "mrt",
            "neighbor",
            "network",
            "policy",
            "router-id"
        ]
    );
}
