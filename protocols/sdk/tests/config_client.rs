//! Config delivery from a fake oxr-routerd and from a `--config` file.

use std::time::Duration;

use clap::Parser;
use oxr_config::StaticConfig;
use oxr_proto::transport::Address;
use oxr_sdk::backoff::Backoff;
use oxr_sdk::testing::FakeRouterd;
use oxr_sdk::{CommonArgs, ConfigWatcher};
use serde_json::json;

type Section = Option<StaticConfig>;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

fn routes(w: &ConfigWatcher<Section>) -> Vec<String> {
    let cur = w.current().expect("a section");
    cur.section
        .as_ref()
        .map(|s| s.route.keys().map(|p| p.to_string()).collect())
        .unwrap_or_default()
}

async fn next(w: &mut ConfigWatcher<Section>) -> Vec<String> {
    tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("a section arrives")
        .expect("watcher alive");
    routes(w)
}

#[tokio::test]
async fn routerd_sections_arrive_and_survive_routerd_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("routerd.sock");
    let one = json!({"route": {"10.1.0.0/16": {"via": ["192.0.2.1"]}}});
    let routerd = FakeRouterd::start(&sock, one.clone());
    let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(50));
    let mut w: ConfigWatcher<Section> =
        ConfigWatcher::from_routerd_with(Address::Unix(sock.clone()), "static", backoff);
    assert_eq!(next(&mut w).await, ["10.1.0.0/16"]);
    assert_eq!(w.current().unwrap().revision, 1);

    routerd.set_section(json!({"route": {
        "10.1.0.0/16": {"via": ["192.0.2.1"]},
        "10.2.0.0/16": {"action": "blackhole"}}}));
    assert_eq!(next(&mut w).await, ["10.1.0.0/16", "10.2.0.0/16"]);

    // routerd goes away: the last section stays.
    routerd.kill();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(routes(&w), ["10.1.0.0/16", "10.2.0.0/16"]);

    // It comes back with the same section: nothing new is yielded.
    let routerd = FakeRouterd::start(
        &sock,
        json!({"route": {
            "10.1.0.0/16": {"via": ["192.0.2.1"]},
            "10.2.0.0/16": {"action": "blackhole"}}}),
    );
    let waited = tokio::time::timeout(Duration::from_millis(300), w.next()).await;
    assert!(waited.is_err(), "an identical section is not a change");
    assert!(routerd.watches() >= 1, "the watcher reconnected");

    // A commit after the restart is delivered; a null section is "not configured".
    routerd.set_section(serde_json::Value::Null);
    next(&mut w).await;
    assert!(w.current().unwrap().section.is_none());
}

#[tokio::test]
async fn a_section_of_the_wrong_shape_is_ignored_and_the_last_one_kept() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("routerd.sock");
    let routerd = FakeRouterd::start(&sock, json!({"route": {}}));
    let mut w: ConfigWatcher<Section> = ConfigWatcher::from_routerd(Address::Unix(sock), "static");
    assert!(next(&mut w).await.is_empty());
    routerd.set_section(json!({"bogus": 1}));
    routerd.set_section(json!({"route": {"10.9.0.0/16": {"interface": "eth0"}}}));
    assert_eq!(next(&mut w).await, ["10.9.0.0/16"]);
}

#[tokio::test]
async fn a_change_of_the_router_table_alone_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("routerd.sock");
    let routerd = FakeRouterd::start(&sock, json!({"route": {}}));
    let mut w: ConfigWatcher<Section> = ConfigWatcher::from_routerd(Address::Unix(sock), "static");
    next(&mut w).await;
    // The router ID lives in `[router]`; protocols fall back to it, so it must reach them.
    routerd.set_router(json!({"router-id": "10.255.0.9"}));
    next(&mut w).await;
    let cur = w.current().unwrap();
    assert_eq!(cur.router["router-id"], "10.255.0.9");
    assert_eq!(cur.revision, 2);
}

const ROUTER_TOML: &str = r#"
[router]
name = "r1"

[protocols.static.route."10.9.0.0/16"]
via = ["10.0.12.2"]

[protocols.static.route."192.0.2.0/24"]
action = "reject"
"#;

#[tokio::test]
async fn config_file_is_read_once_and_validated() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r1.toml");
    std::fs::write(&file, ROUTER_TOML).unwrap();
    let args = Args::parse_from([
        "x",
        "--router",
        "r1",
        "--run-dir",
        dir.path().to_str().unwrap(),
        "--config",
        file.to_str().unwrap(),
    ])
    .common;
    let mut w: ConfigWatcher<Section> = ConfigWatcher::start(&args, "static").unwrap();
    assert_eq!(next(&mut w).await, ["10.9.0.0/16", "192.0.2.0/24"]);
    assert_eq!(w.current().unwrap().router["name"], "r1");
    let again = tokio::time::timeout(Duration::from_millis(100), w.next()).await;
    assert!(again.is_err(), "a file yields one section");

    // Sections of other processes come from the same file.
    let rib: ConfigWatcher<oxr_config::RibSection> = ConfigWatcher::start(&args, "rib").unwrap();
    assert_eq!(rib.current().unwrap().section.protocols, ["static"]);

    std::fs::write(
        &file,
        "[protocols.static.route.\"10.9.0.0/33\"]\nvia = [\"x\"]\n",
    )
    .unwrap();
    let err = ConfigWatcher::<Section>::start(&args, "static")
        .err()
        .expect("invalid config refused")
        .to_string();
    assert!(err.contains("r1.toml"), "{err}");
    assert!(err.contains("10.9.0.0/33"), "{err}");
}
