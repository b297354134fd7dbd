//! The `oxr-routerd` binary: refuses a bad configuration with every error, writes its pid
//! file and socket, stops its processes on SIGTERM, and its processes die with it on
//! SIGKILL (parent-death signal). Needs no privileges (fake process binaries, temp dirs).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use nix::sys::signal::Signal;
use oxr_proto::routerd::routerd_client::RouterdClient;
use oxr_proto::transport::{self, Address};

const ROUTERD: &str = env!("CARGO_BIN_EXE_oxr-routerd");

fn spawn_routerd(dir: &Path, config: &str) -> std::process::Child {
    let cfg = dir.join("r7.toml");
    std::fs::write(&cfg, config).unwrap();
    fake_bin_dir(&dir.join("bin"), &["fea", "rib", "static"]);
    Command::new(ROUTERD)
        .arg("--config")
        .arg(&cfg)
        .arg("--run-dir")
        .arg(dir.join("run"))
        .arg("--bin-dir")
        .arg(dir.join("bin"))
        .arg("--log")
        .arg("debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("routerd.stderr")).unwrap())
        .spawn()
        .unwrap()
}

async fn client(dir: &Path) -> RouterdClient<tonic::transport::Channel> {
    let sock = dir.join("run/routerd.sock");
    let channel = wait_for("routerd.sock", 10, || {
        let sock = sock.clone();
        async move { transport::connect(&Address::Unix(sock)).await.ok() }
    })
    .await;
    RouterdClient::new(channel)
}

#[test]
fn refuses_a_bad_config_with_every_error() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[router]\ncolour = \"blue\"\n[protocols.static.route.\"10.0.0.0/33\"]\nvia = [\"10.0.0.1\"]\n\
         [protocols.static.route.\"10.1.0.0/16\"]\nvia = [\"gw1\"]\n",
    )
    .unwrap();
    let out = Command::new(ROUTERD)
        .arg("--config")
        .arg(&cfg)
        .arg("--run-dir")
        .arg(tmp.path().join("run"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].starts_with("router.colour: unknown field `colour`"),
        "{err}"
    );
    assert!(
        lines[1]
            .starts_with(r#"protocols.static.route."10.0.0.0/33": `10.0.0.0/33` is not a prefix"#),
        "{err}"
    );
    assert!(
        lines[2].starts_with(r#"protocols.static.route."10.1.0.0/16".via[0]: invalid IP address"#),
        "{err}"
    );
    assert!(lines[3].ends_with("3 errors"), "{err}");
    assert!(!tmp.path().join("run").exists(), "nothing started");
}

#[tokio::test]
async fn sigterm_stops_the_processes_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut routerd = spawn_routerd(
        dir,
        "[protocols.static.route.\"10.0.0.0/8\"]\naction = \"reject\"\n",
    );
    let mut c = client(dir).await;
    let pids: Vec<u32> = [
        running(&mut c, "fea", 0).await.pid,
        running(&mut c, "rib", 0).await.pid,
        running(&mut c, "static", 0).await.pid,
    ]
    .into();
    let reply = c
        .process_status(oxr_proto::routerd::ProcessStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.router, "r7", "name from the file stem");
    let pid_file = std::fs::read_to_string(dir.join("run/routerd.pid")).unwrap();
    assert_eq!(pid_file.trim(), routerd.id().to_string());
    assert!(dir.join("run/config/1.toml").exists());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.join("run")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o700);

    signal(routerd.id(), Signal::SIGTERM);
    let status = wait_for("routerd exit", 10, || {
        let s = routerd.try_wait().unwrap();
        async move { s }
    })
    .await;
    assert!(status.success(), "{status:?}");
    for pid in pids {
        assert!(!alive(pid), "process {pid} outlived routerd");
    }
    assert!(!dir.join("run/routerd.pid").exists());
    assert!(!dir.join("run/routerd.sock").exists());
}

#[tokio::test]
async fn processes_die_when_routerd_is_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut routerd = spawn_routerd(dir, "");
    let mut c = client(dir).await;
    let fea = running(&mut c, "fea", 0).await.pid;
    let rib = running(&mut c, "rib", 0).await.pid;
    signal(routerd.id(), Signal::SIGKILL);
    routerd.wait().unwrap();
    wait_for("children gone", 10, || async move {
        (!alive(fea) && !alive(rib)).then_some(())
    })
    .await;
}

/// Deletes the test's network namespace however the test ends.
struct NetnsGuard(String);

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[tokio::test]
async fn netns_runs_routerd_and_its_processes_in_the_namespace() {
    if !nix::unistd::geteuid().is_root() {
        println!("SKIPPED (needs root): netns_runs_routerd_and_its_processes_in_the_namespace");
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let ns = format!("oxr-rtd-{}", std::process::id());
    let added = Command::new("ip").args(["netns", "add", &ns]).status();
    assert!(added.is_ok_and(|s| s.success()), "ip netns add {ns}");
    let _guard = NetnsGuard(ns.clone());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cfg = dir.join("r8.toml");
    std::fs::write(&cfg, "").unwrap();
    fake_bin_dir(&dir.join("bin"), &["fea", "rib"]);
    let mut routerd = Command::new(ROUTERD)
        .arg("--config")
        .arg(&cfg)
        .arg("--run-dir")
        .arg(dir.join("run"))
        .arg("--bin-dir")
        .arg(dir.join("bin"))
        .arg("--netns")
        .arg(&ns)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut c = client(dir).await;
    let fea = running(&mut c, "fea", 0).await.pid;
    let want = std::fs::metadata(format!("/var/run/netns/{ns}"))
        .unwrap()
        .ino();
    let netns_of = |pid: u32| {
        std::fs::metadata(format!("/proc/{pid}/ns/net"))
            .unwrap()
            .ino()
    };
    assert_eq!(netns_of(routerd.id()), want, "routerd in the namespace");
    assert_eq!(netns_of(fea), want, "its processes too");
    assert_ne!(netns_of(std::process::id()), want);
    signal(routerd.id(), Signal::SIGTERM);
    routerd.wait().unwrap();
}
