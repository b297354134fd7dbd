//! The Routerd service in process, on a temporary socket, with fake process binaries:
//! supervision (start, restart after kill -9 with backoff, RestartProcess), commits that add
//! and remove a protocol process, WatchConfig delivery, refused commits, rollback.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures::StreamExt;
use nix::sys::signal::Signal;
use oxr_proto::process::process_client::ProcessClient;
use oxr_proto::process::ShowRequest;
use oxr_proto::routerd::routerd_client::RouterdClient;
use oxr_proto::routerd::*;
use oxr_proto::transport::{self, Address};
use oxr_routerd::backoff::BackoffPolicy;
use oxr_routerd::revisions::RevisionDir;
use oxr_routerd::{ConfigStore, Routerd, Supervisor, SupervisorConfig};
use tonic::transport::Channel;

struct Harness {
    _tmp: tempfile::TempDir,
    run_dir: std::path::PathBuf,
    routerd: Arc<Routerd>,
    channel: Channel,
}

async fn start(config: &str, bins: &[&str]) -> Harness {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    let bin_dir = tmp.path().join("bin");
    fake_bin_dir(&bin_dir, bins);
    oxr_sdk::process::create_private_dir(&run_dir).unwrap();
    let revisions = RevisionDir::create_fresh(&run_dir.join("config")).unwrap();
    let store = ConfigStore::new(config.parse().unwrap(), 1, "startup").unwrap();
    revisions
        .save(
            store.revision_text(1).unwrap(),
            &store.revisions()[0],
            &[],
            1,
        )
        .unwrap();
    let mut cfg = SupervisorConfig::new("t1", run_dir.clone(), bin_dir, "info");
    cfg.backoff = BackoffPolicy {
        initial: Duration::from_millis(50),
        max: Duration::from_secs(2),
        reset_after: Duration::from_secs(60),
    };
    cfg.stop_timeout = Duration::from_secs(2);
    cfg.removal_grace = Duration::from_millis(100);
    let routerd = Routerd::new("t1", &run_dir, store, Some(revisions), Supervisor::new(cfg));
    let sock = run_dir.join("routerd.sock");
    let incoming = transport::bind_unix(&sock).unwrap();
    tokio::spawn(routerd.grpc_router().serve_with_incoming(incoming));
    routerd.start_processes().await;
    let channel = transport::connect(&Address::Unix(sock)).await.unwrap();
    Harness {
        _tmp: tmp,
        run_dir,
        routerd,
        channel,
    }
}

async fn next_section(stream: &mut tonic::Streaming<ConfigSection>) -> ConfigSection {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("a section within 5 s")
        .expect("stream open")
        .expect("no error")
}

#[tokio::test]
async fn supervises_processes_and_applies_commits() {
    let h = start("[router]\nname = \"t1\"\n", &["fea", "rib", "static"]).await;
    let mut c = RouterdClient::new(h.channel.clone());

    // Started: fea and rib, with the standard command line and their output in <name>.log.
    let fea = running(&mut c, "fea", 0).await;
    let rib = running(&mut c, "rib", 0).await;
    assert!(process(&mut c, "static").await.is_none());
    let log = wait_for("fea.log", 5, || {
        let p = h.run_dir.join("fea.log");
        async move {
            std::fs::read_to_string(p)
                .ok()
                .filter(|s| s.contains("args:"))
        }
    })
    .await;
    let expected = format!(
        "args: --router t1 --run-dir {} --log info",
        h.run_dir.display()
    );
    assert!(log.contains(&expected), "{log}");

    let mut static_watch = c
        .watch_config(WatchConfigRequest {
            section: "static".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = next_section(&mut static_watch).await;
    assert_eq!((first.revision, first.json.as_str()), (1, "null"));
    assert!(
        first.router_json.contains("\"t1\""),
        "{}",
        first.router_json
    );
    let mut rib_watch = c
        .watch_config(WatchConfigRequest {
            section: "rib".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let rib_section: serde_json::Value =
        serde_json::from_str(&next_section(&mut rib_watch).await.json).unwrap();
    assert_eq!(rib_section["protocols"], serde_json::json!([]));
    assert!(c
        .watch_config(WatchConfigRequest {
            section: "nope".into()
        })
        .await
        .is_err());

    // kill -9 fea: restarted after the backoff, restart counted, exit recorded.
    signal(fea.pid, Signal::SIGKILL);
    let fea2 = running(&mut c, "fea", fea.pid).await;
    assert_eq!(fea2.restarts, 1);
    assert_eq!(fea2.last_exit, "signal 9 (SIGKILL)");
    assert!(!alive(fea.pid));

    // RestartProcess: SIGTERM, wait, start again.
    let r = c
        .restart_process(RestartProcessRequest { name: "rib".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(r.ok, "{}", r.error);
    let rib2 = running(&mut c, "rib", rib.pid).await;
    assert_eq!(rib2.restarts, 1);
    assert!(!alive(rib.pid));
    let r = c
        .restart_process(RestartProcessRequest {
            name: "bogus".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        !r.ok && r.error.contains("no process `bogus`"),
        "{}",
        r.error
    );

    // A commit that adds the static section starts oxr-static and delivers its section.
    let path = r#"protocols.static.route."10.9.0.0/16".via"#;
    let e = c
        .set(SetRequest {
            path: path.into(),
            value: "10.0.12.2".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(e.ok, "{:?}", e.errors);
    let diff = c
        .compare(CompareRequest {})
        .await
        .unwrap()
        .into_inner()
        .diff;
    assert!(
        diff.contains(r#"+[protocols.static.route."10.9.0.0/16"]"#),
        "{diff}"
    );
    let cr = c
        .commit(CommitRequest {
            comment: "add static".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(cr.ok, "{:?}", cr.errors);
    assert_eq!(cr.revision, 2);
    let st = running(&mut c, "static", 0).await;
    let section = next_section(&mut static_watch).await;
    assert_eq!(section.revision, 2);
    let json: serde_json::Value = serde_json::from_str(&section.json).unwrap();
    assert_eq!(
        json["route"]["10.9.0.0/16"]["via"],
        serde_json::json!(["10.0.12.2"])
    );
    let rib_section: serde_json::Value =
        serde_json::from_str(&next_section(&mut rib_watch).await.json).unwrap();
    assert_eq!(rib_section["protocols"], serde_json::json!(["static"]));

    // A commit with errors changes nothing and lists every error with its path.
    let bad = r#"
        [router]
        name = "t1"
        colour = "blue"
        [protocols.static.route."10.9.0.0/33"]
        via = ["10.0.12.2"]
        [protocols.static.route."10.8.0.0/16"]
        via = ["not-an-address"]
        [protocols.static.route."2001:db8::/32"]
        interface = "veth0"
        [protocols.static.route."2001:0db8::/32"]
        interface = "veth0"
    "#;
    let e = c
        .load_candidate(ConfigText {
            text: bad.into(),
            format: "toml".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(e.ok);
    let v = c.validate(ValidateRequest {}).await.unwrap().into_inner();
    assert!(!v.ok);
    let cr = c
        .commit(CommitRequest {
            comment: "bad".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!cr.ok);
    assert_eq!(cr.revision, 2);
    let errors: Vec<String> = cr
        .errors
        .iter()
        .map(|e| format!("{}: {}", e.path, e.reason))
        .collect();
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(
        errors[0].starts_with("router.colour: unknown field `colour`"),
        "{errors:#?}"
    );
    assert!(
        errors[1]
            .starts_with(r#"protocols.static.route."10.9.0.0/33": `10.9.0.0/33` is not a prefix"#),
        "{errors:#?}"
    );
    assert!(
        errors[2].starts_with(r#"protocols.static.route."10.8.0.0/16".via[0]: invalid IP address"#),
        "{errors:#?}"
    );
    assert_eq!(
        errors[3],
        r#"protocols.static.route."2001:0db8::/32": duplicate of route "2001:db8::/32""#
    );
    let running_text = c
        .get_config(GetConfigRequest {
            which: ConfigWhich::Running as i32,
            path: String::new(),
            format: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .text;
    assert!(
        running_text.contains("10.9.0.0/16") && !running_text.contains("colour"),
        "{running_text}"
    );
    assert_eq!(
        process(&mut c, "static").await.unwrap().pid,
        st.pid,
        "static untouched"
    );
    c.discard(DiscardRequest {}).await.unwrap();
    assert_eq!(
        c.compare(CompareRequest {})
            .await
            .unwrap()
            .into_inner()
            .diff,
        ""
    );

    // Deleting the last static route removes the section: its process gets null, then stops.
    let e = c
        .delete(DeleteRequest {
            path: r#"protocols.static.route."10.9.0.0/16""#.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(e.ok, "{:?}", e.errors);
    let cr = c
        .commit(CommitRequest {
            comment: "remove static".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((cr.ok, cr.revision), (true, 3));
    assert_eq!(next_section(&mut static_watch).await.json, "null");
    wait_for("static stopped", 10, || {
        let mut c = c.clone();
        async move {
            process(&mut c, "static")
                .await
                .filter(|p| p.state == "stopped" && p.pid == 0)
        }
    })
    .await;
    assert!(!alive(st.pid));

    // Rollback 2: a new revision, and oxr-static is back.
    let cr = c
        .rollback(RollbackRequest { revision: 2 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((cr.ok, cr.revision), (true, 4), "{:?}", cr.errors);
    running(&mut c, "static", 0).await;
    assert_ne!(next_section(&mut static_watch).await.json, "null");
    let revs = c
        .list_revisions(ListRevisionsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revs.running, 4);
    let comments: Vec<&str> = revs.revisions.iter().map(|r| r.comment.as_str()).collect();
    assert_eq!(
        comments,
        ["startup", "add static", "remove static", "rollback to 2"]
    );
    let state = h.run_dir.join("config");
    assert_eq!(
        std::fs::read_to_string(state.join("4.toml")).unwrap(),
        std::fs::read_to_string(state.join("2.toml")).unwrap()
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["running"], 4);
    assert_eq!(index["revisions"].as_array().unwrap().len(), 4);

    // GetConfig of a subtree as JSON, the schema, and `show processes`.
    let j = c
        .get_config(GetConfigRequest {
            which: ConfigWhich::Candidate as i32,
            path: r#"protocols.static.route."10.9.0.0/16".via"#.into(),
            format: "json".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&j.text).unwrap(),
        serde_json::json!(["10.0.12.2"])
    );
    let schema = c
        .schema(SchemaRequest {})
        .await
        .unwrap()
        .into_inner()
        .json_schema;
    assert!(schema.contains("StaticRoute"));
    let mut p = ProcessClient::new(h.channel.clone());
    let show = p
        .show(ShowRequest {
            words: vec!["processes".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(show.text.starts_with("PROCESS"), "{}", show.text);
    for name in ["routerd", "fea", "rib", "static"] {
        assert!(
            show.text
                .lines()
                .any(|l| l.starts_with(name) && l.contains("running")),
            "{}",
            show.text
        );
    }
    let json: serde_json::Value = serde_json::from_str(&show.json).unwrap();
    assert_eq!(json[1]["name"], "fea");

    h.routerd.supervisor().shutdown().await;
    let status = h.routerd.supervisor().status();
    assert!(
        status.iter().all(|s| s.state.as_str() == "stopped"),
        "{status:?}"
    );
}

#[tokio::test]
async fn a_missing_binary_is_failed_and_retried_with_backoff_not_a_storm() {
    // No oxr-rib in the bin dir.
    let h = start("", &["fea"]).await;
    let mut c = RouterdClient::new(h.channel.clone());
    running(&mut c, "fea", 0).await;
    let rib = wait_for("rib failed", 5, || {
        let mut c = c.clone();
        async move { process(&mut c, "rib").await.filter(|p| p.state == "failed") }
    })
    .await;
    assert!(
        rib.last_exit.starts_with("cannot start"),
        "{}",
        rib.last_exit
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let rib = process(&mut c, "rib").await.unwrap();
    // 50, 100, 200, 400 ms...: about 4 attempts in a second, never hundreds.
    assert!((2..=6).contains(&rib.restarts), "restarts {}", rib.restarts);
    // Once the binary appears, the next attempt starts it; RestartProcess skips the wait.
    fake_bin_dir(&h.run_dir.parent().unwrap().join("bin"), &["rib"]);
    let r = c
        .restart_process(RestartProcessRequest { name: "rib".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(r.ok, "{}", r.error);
    running(&mut c, "rib", 0).await;
    h.routerd.supervisor().shutdown().await;
}

#[tokio::test]
async fn a_removed_process_restarted_during_its_grace_still_stops() {
    let h = start(
        "[protocols.static.route.\"10.0.0.0/8\"]\naction = \"blackhole\"\n",
        &["fea", "rib", "static"],
    )
    .await;
    let mut c = RouterdClient::new(h.channel.clone());
    let st = running(&mut c, "static", 0).await;
    let e = c
        .delete(DeleteRequest {
            path: "protocols.static".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(e.ok, "{:?}", e.errors);
    assert!(
        c.commit(CommitRequest::default())
            .await
            .unwrap()
            .into_inner()
            .ok
    );
    let r = c
        .restart_process(RestartProcessRequest {
            name: "static".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.ok, "{}", r.error);
    wait_for("static stopped", 10, || {
        let mut c = c.clone();
        async move {
            process(&mut c, "static")
                .await
                .filter(|p| p.state == "stopped")
        }
    })
    .await;
    assert!(!alive(st.pid));
    let r = c
        .restart_process(RestartProcessRequest {
            name: "static".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!r.ok && r.error.contains("stopped"), "{}", r.error);
    h.routerd.supervisor().shutdown().await;
}

#[tokio::test]
async fn an_ospf_section_is_validated_delivered_and_runs_oxr_ospf() {
    let h = start("[router]\nname = \"t1\"\n", &["fea", "rib", "ospf"]).await;
    let mut c = RouterdClient::new(h.channel.clone());
    running(&mut c, "rib", 0).await;
    assert!(process(&mut c, "ospf").await.is_none());
    let mut ospf_watch = c
        .watch_config(WatchConfigRequest {
            section: "ospf".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_section(&mut ospf_watch).await.json, "null");

    // The shell completes OSPF keys and `set` knows their shapes.
    let schema: serde_json::Value = serde_json::from_str(
        &c.schema(SchemaRequest {})
            .await
            .unwrap()
            .into_inner()
            .json_schema,
    )
    .unwrap();
    assert!(schema["$defs"]["ProtocolsConfig"]["properties"]["ospf"].is_object());
    let set = |path: &str, value: &str| {
        let mut c = c.clone();
        let (path, value) = (path.to_string(), value.to_string());
        async move {
            c.set(SetRequest { path, value })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let e = set("protocols.ospf.interfaces.eth0.cots", "5").await;
    assert!(!e.ok);
    assert_eq!(e.errors[0].path, "protocols.ospf.interfaces.eth0.cots");

    // A bad key and a bad area are refused, every error with its path; nothing starts.
    let bad = r#"
        [protocols.ospf.areas."0.0.0.0"]
        [protocols.ospf.areas.backbone]
        [protocols.ospf.interfaces.eth0]
        area = "0.0.0.0"
        cots = 5
    "#;
    let cr = commit_text(&mut c, bad).await;
    assert!(!cr.ok);
    let errs = errors(&cr);
    assert_eq!(
        errs.len(),
        1,
        "typed errors stop the section's checks: {errs:?}"
    );
    assert!(
        errs[0].starts_with("protocols.ospf.interfaces.eth0.cots: unknown field `cots`"),
        "{errs:?}"
    );
    let bad = r#"
        [protocols.ospf.areas."0.0.0.0"]
        [protocols.ospf.areas.backbone]
        [protocols.ospf.interfaces.eth0]
        area = "0.0.0.1"
    "#;
    let cr = commit_text(&mut c, bad).await;
    assert_eq!(
        errors(&cr),
        [
            "protocols.ospf.areas.backbone: area ID must be a dotted quad or a 32-bit number",
            "protocols.ospf.interfaces.eth0.area: area is not configured under areas",
        ]
    );
    assert_eq!(cr.revision, 1);
    assert!(process(&mut c, "ospf").await.is_none());

    // A valid section starts oxr-ospf and is delivered with defaults filled in.
    let good = r#"
        [router]
        name = "t1"
        [protocols.ospf.areas."0.0.0.0"]
        [protocols.ospf.interfaces.eth0]
        area = "0.0.0.0"
        cost = 7
    "#;
    let cr = commit_text(&mut c, good).await;
    assert!(cr.ok, "{:?}", cr.errors);
    assert_eq!(cr.revision, 2);
    running(&mut c, "ospf", 0).await;
    let section = next_section(&mut ospf_watch).await;
    assert_eq!(section.revision, 2);
    let json: serde_json::Value = serde_json::from_str(&section.json).unwrap();
    assert_eq!(json["interfaces"]["eth0"]["cost"], 7);
    assert_eq!(json["interfaces"]["eth0"]["hello-interval"], 10);
    let typed: oxr_ospf::config::OspfConfig = serde_json::from_value(json).unwrap();
    assert_eq!(typed.interfaces["eth0"].dead_interval, 40);
    let mut rib_watch = c
        .watch_config(WatchConfigRequest {
            section: "rib".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let rib: serde_json::Value =
        serde_json::from_str(&next_section(&mut rib_watch).await.json).unwrap();
    assert_eq!(rib["protocols"], serde_json::json!(["ospf"]));

    // Removing the section stops it.
    let e = c
        .delete(DeleteRequest {
            path: "protocols.ospf".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(e.ok, "{:?}", e.errors);
    assert!(
        c.commit(CommitRequest::default())
            .await
            .unwrap()
            .into_inner()
            .ok
    );
    assert_eq!(next_section(&mut ospf_watch).await.json, "null");
    wait_for("ospf stopped", 10, || {
        let mut c = c.clone();
        async move {
            process(&mut c, "ospf")
                .await
                .filter(|p| p.state == "stopped")
        }
    })
    .await;
    h.routerd.supervisor().shutdown().await;
}

#[tokio::test]
async fn a_startup_config_with_ospf_runs_it() {
    let h = start(
        "[protocols.ospf.areas.\"0\"]\n[protocols.ospf.interfaces.lo]\narea = \"0\"\npassive = true\n",
        &["fea", "rib", "ospf"],
    )
    .await;
    let mut c = RouterdClient::new(h.channel.clone());
    running(&mut c, "ospf", 0).await;
    h.routerd.supervisor().shutdown().await;
}

async fn commit_text(c: &mut RouterdClient<Channel>, text: &str) -> CommitReply {
    let e = c
        .load_candidate(ConfigText {
            text: text.into(),
            format: "toml".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(e.ok, "{:?}", e.errors);
    c.commit(CommitRequest::default())
        .await
        .unwrap()
        .into_inner()
}

fn errors(cr: &CommitReply) -> Vec<String> {
    cr.errors
        .iter()
        .map(|e| format!("{}: {}", e.path, e.reason))
        .collect()
}
