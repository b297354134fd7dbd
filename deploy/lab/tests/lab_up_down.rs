//! `oxr-lab up --wait` of the demo lab (three routers, OSPF core), a ping from r1's loopback
//! to r3's, `down`, and nothing of the lab left: no namespace, no veth, no process. The same
//! after `oxr-lab up` is killed -9 half-way: `down` still removes everything.
//!
//! Needs root (namespaces) and the workspace's binaries beside oxr-lab
//! (deploy/test-all.sh builds them first); otherwise each test says SKIPPED.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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

/// A lab name and run root of its own; `down` on drop if a test failed half-way.
struct TestLab {
    name: String,
    root: tempfile::TempDir,
}

impl TestLab {
    fn new(tag: &str) -> TestLab {
        TestLab {
            name: format!("t{}{tag}", std::process::id()),
            root: tempfile::Builder::new()
                .prefix("oxr-lab-test")
                .tempdir()
                .unwrap(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_oxr-lab"));
        c.arg("--root").arg(self.root.path()).args(args);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args)
            .stdin(Stdio::null())
            .output()
            .expect("running oxr-lab")
    }

    fn namespaces(&self) -> Vec<String> {
        let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| n.starts_with(&format!("{}-", self.name)))
            .map(str::to_string)
            .collect()
    }

    /// Processes whose command line names the lab's run root (routerd, its children, bird).
    fn processes(&self) -> Vec<String> {
        let needle = self.root.path().to_string_lossy().into_owned();
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

    fn assert_nothing_left(&self, up_pid: u32) {
        assert_eq!(self.namespaces(), Vec::<String>::new(), "namespaces left");
        assert_eq!(
            TestLab::temp_links(up_pid),
            Vec::<String>::new(),
            "veths left"
        );
        assert_eq!(self.processes(), Vec::<String>::new(), "processes left");
        assert!(!self.root.path().join(&self.name).exists(), "run dir left");
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        let _ = self.run(&["down", &self.name]);
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn demo_lab_comes_up_pings_across_and_goes_down_without_leftovers() {
    if !ready("demo_lab_comes_up_pings_across_and_goes_down_without_leftovers") {
        return;
    }
    let lab = TestLab::new("u");
    let lab_file = demo_lab();
    let child = lab
        .cmd(&[
            "up",
            lab_file.to_str().unwrap(),
            "--name",
            &lab.name,
            "--wait",
            "60",
        ])
        .stdin(Stdio::null())
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
        let o = lab.run(&[
            "exec",
            &lab.name,
            "r1",
            "--",
            "ping",
            "-c",
            "1",
            "-W",
            "1",
            "-I",
            "10.255.0.1",
            "10.255.0.3",
        ]);
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

    let status = lab.run(&["status", &lab.name]);
    let st = text(&status);
    assert!(status.status.success(), "{st}");
    for r in ["r1", "r2", "r3"] {
        assert!(
            st.lines()
                .any(|l| l.starts_with(r) && l.contains("running") && l.contains("ospf:running")),
            "status of {r}:\n{st}"
        );
    }
    assert!(text(&lab.run(&["list"])).contains(&lab.name));
    // A second `up` of the same name is refused and leaves the running lab alone.
    let again = lab.run(&["up", lab_file.to_str().unwrap(), "--name", &lab.name]);
    assert!(!again.status.success());
    assert!(text(&again).contains("already up"), "{}", text(&again));
    assert_eq!(lab.namespaces().len(), 3);

    let down = lab.run(&["down", &lab.name]);
    assert!(down.status.success(), "{}", text(&down));
    lab.assert_nothing_left(up_pid);
    // Idempotent.
    let down = lab.run(&["down", &lab.name]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(text(&down).contains("nothing to do"));
}

/// Starts `up` without waiting, kills it -9 once `ready` holds, then `down` must leave
/// nothing.
fn kill_up_then_down(tag: &str, ready: impl Fn(&TestLab) -> bool) {
    let lab = TestLab::new(tag);
    let lab_file = demo_lab();
    let mut child = lab
        .cmd(&["up", lab_file.to_str().unwrap(), "--name", &lab.name])
        .stdin(Stdio::null())
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
    assert!(lab.root.path().join(&lab.name).join("state.json").exists());

    let down = lab.run(&["down", &lab.name]);
    assert!(down.status.success(), "{}", text(&down));
    lab.assert_nothing_left(up_pid);
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
        lab.processes().iter().any(|c| c.contains("oxr-routerd"))
    });
}
