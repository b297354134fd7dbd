//! The daemon in-process over its Unix socket, with the `none` backend (no privileges).

use std::time::Duration;

use oxr_proto::fea::fea_client::FeaClient;
use oxr_proto::fea::{FibBatch, FibRoute, GetFibRequest, StatusRequest, WatchInterfacesRequest};
use oxr_proto::process::process_client::ProcessClient;
use oxr_proto::process::ShowRequest;
use oxr_proto::transport::{connect, Address};

#[tokio::test]
async fn serves_fea_and_show_over_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("router.toml");
    std::fs::write(&cfg, "[fea]\ndataplane = \"none\"\n").unwrap();
    let args = <oxr_fea::Args as clap::Parser>::parse_from([
        "oxr-fea",
        "--run-dir",
        dir.path().to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
    ]);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(oxr_fea::run_until(args, async {
        let _ = stop_rx.await;
    }));
    let addr = Address::in_run_dir(dir.path(), "fea");
    let channel = {
        let mut tries = 0;
        loop {
            match connect(&addr).await {
                Ok(c) => break c,
                Err(e) if tries < 100 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("{e}"),
            }
        }
    };
    let mut fea = FeaClient::new(channel.clone());
    assert_eq!(
        fea.status(StatusRequest {})
            .await
            .unwrap()
            .into_inner()
            .backend,
        "none"
    );

    let mut ifs = fea
        .watch_interfaces(WatchInterfacesRequest {})
        .await
        .unwrap()
        .into_inner();
    let first = ifs.message().await.unwrap().unwrap();
    assert!(first.full_dump);
    assert!(first.changed.iter().any(|i| i.loopback));

    let route = |p: &str| FibRoute {
        prefix: Some(p.parse::<ipnet::IpNet>().unwrap().into()),
        action: oxr_proto::types::RouteAction::Blackhole as i32,
        protocol: "static".into(),
        ..Default::default()
    };
    let batches = vec![
        FibBatch {
            seq: 1,
            add: vec![route("10.0.0.0/8"), route("2001:db8::/32")],
            ..Default::default()
        },
        FibBatch {
            seq: 2,
            begin_sync: true,
            add: vec![route("10.0.0.0/8")],
            ..Default::default()
        },
        FibBatch {
            seq: 3,
            end_sync: true,
            ..Default::default()
        },
    ];
    let mut acks = fea
        .program_fib(tokio_stream::iter(batches))
        .await
        .unwrap()
        .into_inner();
    for seq in 1..=3 {
        let a = acks.message().await.unwrap().unwrap();
        assert_eq!((a.seq, a.failed), (seq, 0));
    }
    let mut fib = fea
        .get_fib(GetFibRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut prefixes = Vec::new();
    while let Some(m) = fib.message().await.unwrap() {
        prefixes.extend(m.routes.into_iter().map(|r| r.prefix.unwrap()));
    }
    assert_eq!(
        prefixes,
        vec!["10.0.0.0/8".parse::<ipnet::IpNet>().unwrap().into()]
    );

    let mut proc = ProcessClient::new(channel);
    let out = proc
        .show(ShowRequest {
            words: vec!["fea".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        out.text
            .contains("Syncs completed:      1 (last: 1 kept, 1 removed)"),
        "{}",
        out.text
    );
    let m = proc
        .metrics(oxr_proto::process::MetricsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(m.text.contains("oxr_fea_batches_total 3"), "{}", m.text);

    // The interface stream stays open: shutdown must not wait for it for long.
    drop((acks, fea, proc));
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server did not stop")
        .unwrap()
        .unwrap();
    drop(ifs);
    assert!(!dir.path().join("fea.sock").exists());
}
