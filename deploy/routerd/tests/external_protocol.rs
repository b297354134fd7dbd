//! A protocol routerd was not built with: a config with a `[protocols.hello]` section starts
//! `oxr-hello` (found in the bin dir, asked `--config-schema`), and a bad key in that section
//! is refused with its path and reason (`--check-config`) at startup and at commit; the
//! shell's schema gets the section. Uses the real oxr-hello built beside oxr-routerd
//! (deploy/test-all.sh builds every binary first); the FEA and RIB are fakes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use nix::sys::signal::Signal;
use oxr_proto::routerd::routerd_client::RouterdClient;
use oxr_proto::routerd::{CommitRequest, ConfigText, SchemaRequest, WatchConfigRequest};
use oxr_proto::transport::{self, Address};

const ROUTERD: &str = env!("CARGO_BIN_EXE_oxr-routerd");

const GOOD: &str = "[protocols.hello]\nhello-interval = 2\nhold-time = 6\n\
                    [protocols.hello.interfaces.eth0]\n";
const BAD_KEY: &str = "[protocols.hello.interfaces.eth0]\ncost = 1\n";

/// A bin dir with fake fea and rib and the real oxr-hello.
fn bin_dir(dir: &Path) -> PathBuf {
    let hello = Path::new(ROUTERD).with_file_name("oxr-hello");
    assert!(
        hello.exists(),
        "{} missing: build the workspace's binaries first (cargo build --workspace --bins)",
        hello.display()
    );
    let bin = dir.join("bin");
    fake_bin_dir(&bin, &["fea", "rib"]);
    std::os::unix::fs::symlink(&hello, bin.join("oxr-hello")).unwrap();
    bin
}

fn routerd(dir: &Path, config: &str) -> Command {
    let cfg = dir.join("r9.toml");
    std::fs::write(&cfg, config).unwrap();
    let mut cmd = Command::new(ROUTERD);
    cmd.arg("--config")
        .arg(&cfg)
        .arg("--run-dir")
        .arg(dir.join("run"))
        .arg("--bin-dir")
        .arg(bin_dir(dir))
        .stdin(Stdio::null());
    cmd
}

#[test]
fn a_bad_key_in_an_external_section_is_refused_at_startup() {
    let tmp = tempfile::tempdir().unwrap();
    let out = routerd(tmp.path(), BAD_KEY).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("protocols.hello.interfaces.eth0.cost: unknown field `cost`"),
        "{err}"
    );
    assert!(!tmp.path().join("run").exists(), "nothing started");
}

#[tokio::test]
async fn a_hello_section_starts_oxr_hello_and_a_bad_commit_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut child = routerd(dir, GOOD)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("routerd.stderr")).unwrap())
        .spawn()
        .unwrap();
    let sock = dir.join("run/routerd.sock");
    let channel = wait_for("routerd.sock", 10, || {
        let sock = sock.clone();
        async move { transport::connect(&Address::Unix(sock)).await.ok() }
    })
    .await;
    let mut c = RouterdClient::new(channel);

    let hello = running(&mut c, "hello", 0).await;
    assert!(alive(hello.pid));
    // Its section is delivered as written (the process fills in its defaults).
    let mut watch = c
        .watch_config(WatchConfigRequest {
            section: "hello".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    let section: serde_json::Value = serde_json::from_str(&first.json).unwrap();
    assert_eq!(section["hello-interval"], 2, "{section}");
    // The shell's completion knows the section's keys.
    let schema = c.schema(SchemaRequest {}).await.unwrap().into_inner();
    let schema: serde_json::Value = serde_json::from_str(&schema.json_schema).unwrap();
    assert!(
        schema["$defs"]["hello"]["properties"]["hold-time"].is_object(),
        "{schema}"
    );

    let load = c
        .load_candidate(ConfigText {
            text: BAD_KEY.into(),
            format: "toml".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let reply = if load.ok {
        c.commit(CommitRequest::default())
            .await
            .unwrap()
            .into_inner()
            .errors
    } else {
        load.errors
    };
    assert_eq!(reply.len(), 1, "{reply:?}");
    assert_eq!(reply[0].path, "protocols.hello.interfaces.eth0.cost");
    assert!(
        reply[0].reason.starts_with("unknown field `cost`"),
        "{reply:?}"
    );
    // Refused whole: oxr-hello still runs, same process.
    assert_eq!(running(&mut c, "hello", 0).await.pid, hello.pid);

    signal(child.id(), Signal::SIGTERM);
    child.wait().unwrap();
    assert!(!alive(hello.pid), "oxr-hello stopped with routerd");
}
