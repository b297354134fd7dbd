//! The RFC 2544 experiment at small scale: one router, one frame size, short trials, a low
//! rate cap. The search must converge within its trial budget, the report must be
//! well-formed, and no lab may be left behind. Needs root and the workspace's binaries.

use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn rfc2544_small_run_converges_and_reports() {
    let test = "rfc2544_small_run_converges_and_reports";
    if !nix::unistd::geteuid().is_root() {
        println!("SKIPPED (needs root): {test}");
        eprintln!("SKIPPED (needs root): {test}");
        return;
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_oxr-lab"));
    for b in ["oxr-routerd", "oxrsh", "oxr-fea", "oxr-rib", "oxr-static"] {
        if !bin.with_file_name(b).exists() {
            println!("SKIPPED (needs the workspace binaries; {b} missing): {test}");
            eprintln!("SKIPPED (needs the workspace binaries; {b} missing): {test}");
            return;
        }
    }
    let root = tempfile::Builder::new()
        .prefix("oxr-rfc2544-test")
        .tempdir()
        .unwrap();
    let json = root.path().join("report.json");
    let child = Command::new(bin)
        .arg("--root")
        .arg(root.path())
        .args([
            "rfc2544",
            "--routers",
            "1",
            "--sizes",
            "64",
            "--trial-secs",
            "0.3",
        ])
        .args([
            "--max-rate",
            "20000",
            "--max-trials",
            "5",
            "--resolution",
            "0.05",
        ])
        .arg("--json")
        .arg(&json)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("RFC 2544 throughput"), "{text}");

    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 1, "{v}");
    let p = &points[0];
    assert_eq!(p["routers"], 1);
    assert_eq!(p["frame_size"], 64);
    assert_eq!(p["dataplane"], "kernel");
    let fps = p["frames_per_sec"].as_u64().unwrap();
    // One router forwards 20 kframes/s of 64 bytes with room to spare: the search ends at
    // (or within its resolution of) the cap, confirmed, within its budget.
    assert!(fps > 0 && fps <= 20000, "{v}");
    assert!(p["confirmed"].as_bool().unwrap(), "{v}");
    assert!(p["trials"].as_u64().unwrap() <= 6, "{v}");
    let mbit = p["mbit_per_sec"].as_f64().unwrap();
    assert!((mbit - fps as f64 * 64.0 * 8.0 / 1e6).abs() < 1e-6);
    assert!(p["generator_ceiling"].as_u64().unwrap() > 0);

    // Both labs (generator ceiling, one router) are gone.
    let ns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let prefix = format!("rfc2544-{pid}-");
    assert!(
        !String::from_utf8_lossy(&ns.stdout).contains(&prefix),
        "namespaces left: {}",
        String::from_utf8_lossy(&ns.stdout)
    );
    assert_eq!(
        std::fs::read_dir(root.path()).unwrap().count(),
        1,
        "only report.json left"
    );
}
