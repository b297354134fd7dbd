//! oxr-static against a fake oxr-rib and a fake oxr-routerd on Unix sockets: EndOfRib after
//! the first config, replay after the RIB restarts, incremental changes after commits; and
//! the real binary with `--config`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use oxr_config::StaticConfig;
use oxr_proto::process::process_client::ProcessClient;
use oxr_proto::process::ShowRequest;
use oxr_proto::rib::publish_request::Msg;
use oxr_proto::transport::{self, Address};
use oxr_sdk::backoff::Backoff;
use oxr_sdk::rib_client::{Hello, PublisherOptions, RibPublisher};
use oxr_sdk::testing::{table_of, wait_until, FakeRib, FakeRouterd, PublishEvent};
use oxr_sdk::ConfigWatcher;
use serde_json::json;

fn eor_count(ev: &[PublishEvent]) -> usize {
    ev.iter()
        .filter(|e| matches!(e.msg, Msg::EndOfRib(_)))
        .count()
}

fn prefixes(t: &BTreeMap<IpNet, oxr_sdk::Route>) -> Vec<String> {
    t.keys().map(|p| p.to_string()).collect()
}

#[tokio::test]
async fn end_of_rib_after_first_config_replay_after_rib_restart_and_incremental_commits() {
    let dir = tempfile::tempdir().unwrap();
    let rib_sock = dir.path().join("rib.sock");
    let routerd_sock = dir.path().join("routerd.sock");
    let fast = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));

    let routerd = FakeRouterd::start(
        &routerd_sock,
        json!({"route": {
            "10.1.0.0/16": {"via": ["192.0.2.1"]},
            "10.2.0.0/16": {"via": ["192.0.2.1", "192.0.2.2"]}}}),
    );
    let rib = FakeRib::start(&rib_sock);
    let config: ConfigWatcher<Option<StaticConfig>> =
        ConfigWatcher::from_routerd_with(Address::Unix(routerd_sock), "static", fast.clone());
    let publisher = RibPublisher::start_with(
        Address::Unix(rib_sock.clone()),
        Hello {
            protocol: "static".into(),
            default_distance: 1,
            ..Default::default()
        },
        PublisherOptions {
            backoff: fast.clone(),
            ..Default::default()
        },
    );
    let (tx, routes) = tokio::sync::watch::channel(Arc::default());
    let task = tokio::spawn(oxr_static::instance::run(config, publisher.clone(), tx));

    let ev = rib.wait_for("EndOfRib", |ev| eor_count(ev) == 1).await;
    assert!(
        matches!(&ev[0].msg, Msg::Hello(h) if h.protocol == "static" && h.default_distance == 1)
    );
    assert!(matches!(ev.last().unwrap().msg, Msg::EndOfRib(_)));
    assert_eq!(prefixes(&table_of(&ev)), ["10.1.0.0/16", "10.2.0.0/16"]);
    assert_eq!(
        table_of(&ev)[&"10.2.0.0/16".parse().unwrap()]
            .nexthops
            .len(),
        2
    );
    assert_eq!(routes.borrow().len(), 2);

    // The RIB restarts: the publisher replays everything and EndOfRib by itself.
    rib.kill();
    let rib = FakeRib::start(&rib_sock);
    let ev = rib
        .wait_for("EndOfRib after replay", |ev| eor_count(ev) == 1)
        .await;
    assert!(matches!(ev[0].msg, Msg::Hello(_)));
    assert_eq!(prefixes(&table_of(&ev)), ["10.1.0.0/16", "10.2.0.0/16"]);

    // A commit that adds one route and deletes another publishes exactly those two.
    let before = rib.events().len();
    routerd.set_section(json!({"route": {
        "10.2.0.0/16": {"via": ["192.0.2.1", "192.0.2.2"]},
        "10.3.0.0/16": {"action": "reject"}}}));
    let ev = rib
        .wait_for("incremental batch", |ev| {
            table_of(ev).contains_key(&"10.3.0.0/16".parse().unwrap())
                && !table_of(ev).contains_key(&"10.1.0.0/16".parse().unwrap())
        })
        .await;
    let changes: Vec<_> = ev[before..]
        .iter()
        .map(|e| match &e.msg {
            Msg::Batch(b) => (b.add.len(), b.withdraw.len()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(changes.iter().map(|c| c.0).sum::<usize>(), 1);
    assert_eq!(changes.iter().map(|c| c.1).sum::<usize>(), 1);
    assert_eq!(eor_count(&ev), 1, "EndOfRib is not repeated on a commit");
    task.abort();
}

#[tokio::test]
async fn binary_publishes_config_file_routes_and_answers_show() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("r1");
    std::fs::create_dir(&run_dir).unwrap();
    let cfg = dir.path().join("r1.toml");
    std::fs::write(
        &cfg,
        r#"
[protocols.static.route."10.9.0.0/16"]
via = ["10.0.12.2"]
[protocols.static.route."192.0.2.0/24"]
action = "blackhole"
"#,
    )
    .unwrap();
    let rib = FakeRib::start(&run_dir.join("rib.sock"));
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_oxr-static"))
        .args(["--router", "r1", "--run-dir"])
        .arg(&run_dir)
        .arg("--config")
        .arg(&cfg)
        .args(["--log", "warn"])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let ev = rib.wait_for("EndOfRib", |ev| eor_count(ev) == 1).await;
    assert_eq!(prefixes(&table_of(&ev)), ["10.9.0.0/16", "192.0.2.0/24"]);

    let addr = Address::Unix(run_dir.join("static.sock"));
    wait_until(Duration::from_secs(10), "static.sock", || {
        run_dir.join("static.sock").exists().then_some(())
    })
    .await;
    let mut client = ProcessClient::new(transport::connect(&addr).await.unwrap());
    let out = client
        .show(ShowRequest {
            words: vec!["static".into(), "routes".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(out.text.contains("10.9.0.0/16"), "{}", out.text);
    assert!(
        out.text.contains("RIB: connected, end-of-RIB sent"),
        "{}",
        out.text
    );
    let json: serde_json::Value = serde_json::from_str(&out.json).unwrap();
    assert_eq!(json["routes"][1]["action"], "blackhole");

    // SIGTERM: the process exits cleanly and removes its socket.
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(!run_dir.join("static.sock").exists());
}
