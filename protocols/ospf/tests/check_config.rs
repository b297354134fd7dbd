//! `oxr-ospf --check-config`, as oxr-routerd asks a protocol binary to validate its section:
//! the section as JSON on stdin, `[{"path", "reason"}]` on stdout, exit status 1 when
//! invalid. And `--config-schema`, the section's JSON schema.

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `oxr-ospf FLAG` with `stdin`; (exit code, stdout as JSON).
fn ospf(flag: &str, stdin: &str) -> (i32, serde_json::Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_oxr-ospf"))
        .arg(flag)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting oxr-ospf");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{flag}: stdout is not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

#[test]
fn check_config_accepts_a_valid_section() {
    let (code, errs) = ospf(
        "--check-config",
        r#"{"areas": {"0.0.0.0": {}}, "interfaces": {"eth0": {"area": "0.0.0.0", "cost": 5}}}"#,
    );
    assert_eq!((code, errs), (0, serde_json::json!([])));
}

#[test]
fn check_config_names_path_and_reason_of_each_error() {
    // An unknown key, then (in a separate run: deserialization stops at the first) two
    // semantic errors.
    let (code, errs) = ospf(
        "--check-config",
        r#"{"areas": {"0": {}}, "interfaces": {"eth0": {"area": "0", "cots": 5}}}"#,
    );
    assert_eq!(code, 1);
    assert_eq!(errs[0]["path"], "interfaces.eth0.cots", "{errs}");
    assert!(
        errs[0]["reason"]
            .as_str()
            .unwrap()
            .contains("unknown field"),
        "{errs}"
    );
    let (code, errs) = ospf(
        "--check-config",
        r#"{"areas": {"0": {"stub": true}}, "interfaces": {"eth0": {"area": "7"}}}"#,
    );
    assert_eq!(code, 1);
    assert_eq!(
        errs,
        serde_json::json!([
            {"path": "areas.\"0\"", "reason": "the backbone cannot be stub or NSSA"},
            {"path": "interfaces.eth0.area", "reason": "area is not configured under areas"},
        ])
    );
}

#[test]
fn config_schema_describes_the_section() {
    let (code, schema) = ospf("--config-schema", "");
    assert_eq!(code, 0);
    let props = &schema["properties"];
    for key in [
        "router-id",
        "areas",
        "interfaces",
        "throttle",
        "redistribute",
        "mtu-ignore",
    ] {
        assert!(props.get(key).is_some(), "{key} missing from {schema}");
    }
}
