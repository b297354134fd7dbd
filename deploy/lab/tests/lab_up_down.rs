//! `oxr-lab up --wait` of the demo lab (three routers, OSPF core), a ping from r1's loopback
//! to r3's, `down`, and nothing of the lab left: no namespace, no veth, no process. The same
//! after `oxr-lab up` is killed -9 half-way: `down` still removes everything.
//!
//! Needs root (namespaces) and the workspace's binaries beside oxr-lab
//! (deploy/test-all.sh builds them first); otherwise each test says SKIPPED.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use oxr_testlab::lab_file::{text, LabUp};

/// Root (or a visible skip), and every binary the demo lab runs.
fn ready(test: &str) -> bool {
    oxr_testlab::ready(
        test,
        &[
            "oxr-routerd",
            "oxrsh",
            "oxr-fea",
            "oxr-rib",
            "oxr-ospf",
            "oxr-static",
        ],
    )
}

fn demo_lab() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../labs/demo.toml")
}

/// Processes whose command line names the lab's run root (routerd, its children, bird).
fn processes(lab: &LabUp) -> Vec<String> {
    let needle = lab.root().to_string_lossy().into_owned();
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if e.file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
            .is_none()
        {
            continue;
        }
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let zombie = std::fs::read_to_string(e.path().join("stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true);
        if cmd.contains(&needle) && !zombie {
            v.push(cmd);
        }
    }
    v
}

/// Host links left by the `up` with this pid (its temporary veth names).
fn temp_links(up_pid: u32) -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(&format!("ol{up_pid}x")))
        .collect()
}

fn assert_nothing_left(lab: &LabUp, up_pid: u32) {
    assert_eq!(lab.namespaces(), Vec::<String>::new(), "namespaces left");
    assert_eq!(temp_links(up_pid), Vec::<String>::new(), "veths left");
    assert_eq!(processes(lab), Vec::<String>::new(), "processes left");
    assert!(!lab.root().join(&lab.name).exists(), "run dir left");
}

#[test]
fn demo_lab_comes_up_pings_across_and_goes_down_without_leftovers() {
    if !ready("demo_lab_comes_up_pings_across_and_goes_down_without_leftovers") {
        return;
    }
    let lab = LabUp::new("u");
    let lab_file = demo_lab();
    let child = lab
        .command(&[
            "up",
            lab_file.to_str().unwrap(),
            "--name",
            &lab.name,
            "--wait",
            "60",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let up_pid = child.id();
    let out = child.wait_with_output().unwrap();
    let log = text(&out);
    assert!(out.status.success(), "up failed:\n{log}");
    assert!(log.contains("starting r2"), "progress lines:\n{log}");
    assert!(log.contains("every router has converged"), "{log}");
    assert_eq!(lab.namespaces().len(), 3);

    // r1's loopback reaches r3's through r2: OSPF routes in the kernel on both sides.
    let deadline = Instant::now() + Duration::from_secs(15);
    let ping = loop {
        let o = lab.exec(
            "r1",
            &[
                "ping",
                "-c",
                "1",
                "-W",
                "1",
                "-I",
                "10.255.0.1",
                "10.255.0.3",
            ],
        );
        if o.status.success() || Instant::now() > deadline {
            break o;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        ping.status.success(),
        "ping r1 -> r3 failed:\n{}",
        text(&ping)
    );

    let status = lab.oxr_lab(&["status", &lab.name]);
    let st = text(&status);
    assert!(status.status.success(), "{st}");
    for r in ["r1", "r2", "r3"] {
        assert!(
            st.lines()
                .any(|l| l.starts_with(r) && l.contains("running") && l.contains("ospf:running")),
            "status of {r}:\n{st}"
        );
    }
    assert!(text(&lab.oxr_lab(&["list"])).contains(&lab.name));
    // A second `up` of the same name is refused and leaves the running lab alone.
    let again = lab.oxr_lab(&["up", lab_file.to_str().unwrap(), "--name", &lab.name]);
    assert!(!again.status.success());
    assert!(text(&again).contains("already up"), "{}", text(&again));
    assert_eq!(lab.namespaces().len(), 3);

    let down = lab.oxr_lab(&["down", &lab.name]);
    assert!(down.status.success(), "{}", text(&down));
    assert_nothing_left(&lab, up_pid);
    // Idempotent.
    let down = lab.oxr_lab(&["down", &lab.name]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(text(&down).contains("nothing to do"));
}

/// Starts `up` without waiting, kills it -9 once `ready` holds, then `down` must leave
/// nothing.
fn kill_up_then_down(tag: &str, ready: impl Fn(&LabUp) -> bool) {
    let lab = LabUp::new(tag);
    let lab_file = demo_lab();
    let mut child = lab
        .command(&["up", lab_file.to_str().unwrap(), "--name", &lab.name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let up_pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready(&lab) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(ready(&lab), "up never got that far");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!lab.namespaces().is_empty());
    assert!(lab.root().join(&lab.name).join("state.json").exists());

    let down = lab.oxr_lab(&["down", &lab.name]);
    assert!(down.status.success(), "{}", text(&down));
    assert_nothing_left(&lab, up_pid);
}

#[test]
fn down_cleans_up_after_up_was_killed_half_way() {
    if !ready("down_cleans_up_after_up_was_killed_half_way") {
        return;
    }
    // As soon as the first namespace exists: links and routers not made yet.
    kill_up_then_down("k", |lab| !lab.namespaces().is_empty());
    // Once the first router runs: processes outlive oxr-lab and must be found.
    // (`up` itself names the lab root on its command line: wait for a router's daemon.)
    kill_up_then_down("p", |lab| {
        processes(lab).iter().any(|c| c.contains("oxr-routerd"))
    });
}
