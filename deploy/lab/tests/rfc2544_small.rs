//! The RFC 2544 experiment at small scale: one router, one frame size, short trials, a low
//! rate cap. The search must converge within its trial budget, the report must be
//! well-formed, and no lab may be left behind. Needs root and the workspace's binaries.

use std::path::Path;
use std::process::{Command, Stdio};

/// On drop, also when the test fails: `oxr-lab down` every lab still recorded under `root`
/// (a run that panicked or was stopped half-way), so no namespace outlives the test.
struct DownOnDrop<'a>(&'a Path);

impl Drop for DownOnDrop<'_> {
    fn drop(&mut self) {
        for e in std::fs::read_dir(self.0).into_iter().flatten().flatten() {
            if e.path().join("state.json").exists() {
                let _ = Command::new(env!("CARGO_BIN_EXE_oxr-lab"))
                    .arg("--root")
                    .arg(self.0)
                    .arg("down")
                    .arg(e.file_name())
                    .stdin(Stdio::null())
                    .output();
            }
        }
    }
}

#[test]
fn rfc2544_small_run_converges_and_reports() {
    if !oxr_testlab::ready(
        "rfc2544_small_run_converges_and_reports",
        &["oxr-routerd", "oxrsh", "oxr-fea", "oxr-rib", "oxr-static"],
    ) {
        return;
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_oxr-lab"));
    let root = tempfile::Builder::new()
        .prefix("oxr-rfc2544-test")
        .tempdir()
        .unwrap();
    let _down = DownOnDrop(root.path());
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
            // Real-time NAPI threads and generator: on a CI machine busy with other tests a
            // router thread not scheduled for ~13 ms would overflow its 256-frame ring even
            // at 20 kframes/s, which measures the neighbours.
            "--rt",
            "10",
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
    assert!(p["unavailable"].is_null(), "{v}");
    // With threaded NAPI (ethtool present) the routers' CPU time per forwarded frame is
    // measured: their NAPI thread forwarded every frame. Without, it cannot be attributed.
    let ns = p["router_ns_per_packet"].as_f64();
    if v["napi"].as_bool() == Some(true) {
        assert!(ns.is_some_and(|n| n > 0.0), "{v}");
        assert!(
            p["napi_ns_per_packet"].as_f64().is_some_and(|n| n > 0.0),
            "{v}"
        );
    } else {
        assert_eq!(ns, None, "{v}");
    }
    assert_eq!(v["generator_ceiling"].as_array().unwrap().len(), 1);
    // The plot was written beside the JSON.
    let svg = std::fs::read_to_string(json.with_extension("svg")).unwrap();
    assert!(
        svg.contains("<polyline") && svg.contains("kernel, 1 router"),
        "{svg}"
    );

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
        2,
        "only report.json and report.svg left"
    );
}

/// The XDP-native generator end to end: live frames injected with BPF_PROG_RUN by one
/// paced thread, counted by the XDP program on the sink, through one kernel router. At a
/// rate cap far below what one router forwards, the search must converge on the cap with a
/// confirming trial, the report must be well-formed, and nothing may be left behind.
#[test]
fn rfc2544_xdp_generator_converges_and_reports() {
    if !oxr_testlab::ready(
        "rfc2544_xdp_generator_converges_and_reports",
        &["oxr-routerd", "oxrsh", "oxr-fea", "oxr-rib", "oxr-static"],
    ) {
        return;
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_oxr-lab"));
    let root = tempfile::Builder::new()
        .prefix("oxr-rfc2544-xdp")
        .tempdir()
        .unwrap();
    let _down = DownOnDrop(root.path());
    let out = root.path().join("r");
    if oxr_lab::bpf::live_frames_refused().unwrap() {
        // Such a kernel: the run must say why at once, before building any lab.
        let o = Command::new(bin)
            .arg("--root")
            .arg(root.path())
            .args(["rfc2544", "--routers", "1", "--generator", "xdp", "--out"])
            .arg(&out)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        assert!(err.contains(oxr_lab::rfc2544::LIVE_FRAMES_REFUSED), "{err}");
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0, "no lab");
        println!(
            "SKIPPED (this kernel refuses BPF_PROG_RUN with live frames): \
             rfc2544_xdp_generator_converges_and_reports, beyond the refusal"
        );
        return;
    }
    let child = Command::new(bin)
        .arg("--root")
        .arg(root.path())
        .args(["rfc2544", "--routers", "1", "--sizes", "64"])
        .args(["--trial-secs", "0.3", "--max-rate", "20000"])
        .args(["--max-trials", "5", "--resolution", "0.05", "--rt", "10"])
        .args(["--generator", "xdp", "--dataplane", "kernel"])
        .arg("--out")
        .arg(&out)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.with_extension("json")).unwrap()).unwrap();
    assert_eq!(v["generator"], "xdp", "{v}");
    // The ceiling: frames the generator injected that the sink's XDP program counted.
    let ceiling = v["generator_ceiling"][0][1].as_u64().unwrap();
    assert!(
        ceiling > 20000,
        "the XDP generator's ceiling is too low: {v}"
    );
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 1, "{v}");
    let p = &points[0];
    assert_eq!(
        (p["routers"].as_u64(), p["frame_size"].as_u64()),
        (Some(1), Some(64))
    );
    assert!(p["unavailable"].is_null(), "{v}");
    let fps = p["frames_per_sec"].as_u64().unwrap();
    // Paced, 20 kframes/s through one kernel router loses nothing: the search ends at (or
    // within its resolution of) the cap, confirmed, within its budget.
    assert!((19000..=20000).contains(&fps), "{text}\n{v}");
    assert!(p["confirmed"].as_bool().unwrap(), "{text}\n{v}");
    assert!(p["trials"].as_u64().unwrap() <= 6, "{v}");
    if v["napi"].as_bool() == Some(true) {
        assert!(
            p["router_ns_per_packet"].as_f64().is_some_and(|n| n > 0.0),
            "{v}"
        );
    }
    // The bursts the router saw: at 20 kframes/s and a 250 us tick, batches of ~5 frames,
    // never more than the burst cap.
    let burst = v["xdp_gen_burst"].as_u64().unwrap();
    let per_call = p["gen_frames_per_call"].as_f64().unwrap();
    let max_batch = p["gen_max_batch"].as_u64().unwrap();
    assert!((1.0..=burst as f64).contains(&per_call), "{v}");
    assert!((1..=burst).contains(&max_batch), "{v}");
    let table = std::fs::read_to_string(out.with_extension("txt")).unwrap();
    assert!(table.contains("Xdp generator"), "{table}");
    assert!(table.contains("frames per call"), "{table}");
    assert!(std::fs::read_to_string(out.with_extension("svg"))
        .unwrap()
        .starts_with("<svg"));
    // Both labs are gone, and only the three outputs are left in the root.
    let ns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&ns.stdout).contains(&format!("rfc2544-{pid}-")),
        "namespaces left: {}",
        String::from_utf8_lossy(&ns.stdout)
    );
    assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 3);
}
