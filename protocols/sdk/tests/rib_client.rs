//! The RIB clients against a fake oxr-rib on a Unix socket: batching, coalescing, and
//! replay after the RIB restarts.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use oxr_proto::rib::publish_request::Msg;
use oxr_proto::transport::Address;
use oxr_sdk::backoff::Backoff;
use oxr_sdk::rib_client::{Hello, NexthopWatcher, PublisherOptions, RibPublisher};
use oxr_sdk::testing::{table_of, wait_until, FakeRib, PublishEvent};
use oxr_sdk::{Nexthop, Route};

fn route(p: &str, gw: &str) -> Route {
    Route::forward(
        p.parse().unwrap(),
        vec![Nexthop::gateway(gw.parse().unwrap())],
    )
}

fn hello() -> Hello {
    Hello {
        protocol: "test".into(),
        instance: "".into(),
        default_distance: 7,
        stale_hold_secs: 0,
    }
}

fn fast() -> PublisherOptions {
    PublisherOptions {
        backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(100)),
        ..Default::default()
    }
}

async fn connected(p: &RibPublisher, connections: u64) {
    let mut st = p.watch_status();
    tokio::time::timeout(
        Duration::from_secs(10),
        st.wait_for(|s| s.connected && s.connections == connections),
    )
    .await
    .expect("publisher connects")
    .expect("publisher alive");
}

fn batches(events: &[PublishEvent]) -> Vec<(usize, usize)> {
    events
        .iter()
        .filter_map(|e| match &e.msg {
            Msg::Batch(b) => Some((b.add.len(), b.withdraw.len())),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn routes_go_out_in_batches_of_at_most_max_batch() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("rib.sock");
    let rib = FakeRib::start(&sock);
    let p = RibPublisher::start_with(Address::Unix(sock), hello(), fast());
    connected(&p, 1).await;
    for i in 0..10_000u32 {
        let prefix = IpNet::new(IpAddr::from((0x0a00_0000 + (i << 8)).to_be_bytes()), 24).unwrap();
        p.add(Route::forward(
            prefix,
            vec![Nexthop::gateway("192.0.2.1".parse().unwrap())],
        ));
    }
    tokio::time::timeout(Duration::from_secs(10), p.flush())
        .await
        .expect("flush completes once the RIB acknowledged everything");
    let ev = rib.events();
    assert!(matches!(&ev[0].msg, Msg::Hello(h) if h.protocol == "test" && h.default_distance == 7));
    // The single-threaded test queued everything before the publisher ran: full batches.
    assert_eq!(batches(&ev), [(4096, 0), (4096, 0), (1808, 0)]);
    assert_eq!(rib.table().len(), 10_000);
    assert_eq!(p.status().batches_sent, 3);
}

#[tokio::test]
async fn changes_to_the_same_prefix_are_coalesced() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("rib.sock");
    let rib = FakeRib::start(&sock);
    let p = RibPublisher::start_with(Address::Unix(sock), hello(), fast());
    connected(&p, 1).await;
    p.add(route("10.0.0.0/8", "192.0.2.1"));
    p.add(route("10.0.0.0/8", "192.0.2.2"));
    p.add(route("10.1.0.0/16", "192.0.2.1"));
    p.withdraw("10.1.0.0/16".parse().unwrap());
    p.withdraw("10.2.0.0/16".parse().unwrap());
    p.flush().await;
    let ev = rib.events();
    assert_eq!(batches(&ev), [(1, 0)]);
    assert_eq!(
        rib.table().into_values().collect::<Vec<_>>(),
        [route("10.0.0.0/8", "192.0.2.2")]
    );
    // Withdrawing a route the RIB has is sent.
    p.withdraw("10.0.0.0/8".parse().unwrap());
    p.flush().await;
    assert_eq!(batches(&rib.events()), [(1, 0), (0, 1)]);
    assert!(rib.table().is_empty());
}

#[tokio::test]
async fn rib_restart_replays_hello_table_and_end_of_rib() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("rib.sock");
    // The publisher starts before the RIB exists: its routes wait in the table.
    let p = RibPublisher::start_with(Address::Unix(sock.clone()), hello(), fast());
    p.add(route("10.1.0.0/16", "192.0.2.1"));
    p.add(route("10.2.0.0/16", "192.0.2.1"));
    p.add(route("10.3.0.0/16", "192.0.2.1"));
    p.end_of_rib();
    let rib = FakeRib::start(&sock);
    let ev = rib
        .wait_for("first EndOfRib", |ev| {
            ev.iter().any(|e| matches!(e.msg, Msg::EndOfRib(_)))
        })
        .await;
    assert!(matches!(ev[0].msg, Msg::Hello(_)));
    assert!(matches!(ev.last().unwrap().msg, Msg::EndOfRib(_)));
    assert_eq!(table_of(&ev).len(), 3);
    p.flush().await;

    // The RIB dies; changes made meanwhile are kept in the publisher's table.
    rib.kill();
    wait_until(Duration::from_secs(10), "publisher notices", || {
        (!p.status().connected).then_some(())
    })
    .await;
    p.withdraw("10.1.0.0/16".parse().unwrap());
    p.add(route("10.2.0.0/16", "192.0.2.9"));
    p.add(route("10.4.0.0/16", "192.0.2.1"));

    let rib = FakeRib::start(&sock);
    let ev = rib
        .wait_for("EndOfRib after replay", |ev| {
            ev.iter().any(|e| matches!(e.msg, Msg::EndOfRib(_)))
        })
        .await;
    assert!(matches!(&ev[0].msg, Msg::Hello(h) if h.protocol == "test"));
    assert!(matches!(ev.last().unwrap().msg, Msg::EndOfRib(_)));
    assert!(ev.iter().all(|e| e.stream == 0), "one stream");
    let expected: Vec<Route> = vec![
        route("10.2.0.0/16", "192.0.2.9"),
        route("10.3.0.0/16", "192.0.2.1"),
        route("10.4.0.0/16", "192.0.2.1"),
    ];
    assert_eq!(table_of(&ev).into_values().collect::<Vec<_>>(), expected);
    // The replay is adds only: the RIB sweeps what was not re-sent.
    assert!(batches(&ev).iter().all(|(_, w)| *w == 0));
    connected(&p, 2).await;
    assert!(p.status().end_of_rib_sent);
}

#[tokio::test]
async fn end_of_rib_is_not_replayed_before_the_protocol_declared_it() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("rib.sock");
    let rib = FakeRib::start(&sock);
    let p = RibPublisher::start_with(Address::Unix(sock.clone()), hello(), fast());
    p.add(route("10.1.0.0/16", "192.0.2.1"));
    p.flush().await;
    rib.kill();
    let rib = FakeRib::start(&sock);
    connected(&p, 2).await;
    p.flush().await;
    let ev = rib.events();
    assert_eq!(batches(&ev), [(1, 0)]);
    assert!(!ev.iter().any(|e| matches!(e.msg, Msg::EndOfRib(_))));
    p.end_of_rib();
    rib.wait_for("EndOfRib", |ev| {
        ev.iter().any(|e| matches!(e.msg, Msg::EndOfRib(_)))
    })
    .await;
}

#[tokio::test]
async fn nexthop_watcher_reregisters_after_rib_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("rib.sock");
    let rib = FakeRib::start(&sock);
    let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
    let mut w = NexthopWatcher::start_with(Address::Unix(sock.clone()), backoff);
    let a: IpAddr = "192.0.2.1".parse().unwrap();
    let b: IpAddr = "2001:db8::1".parse().unwrap();
    w.register(a);
    w.register(b);
    let mut got = vec![];
    for _ in 0..2 {
        let u = tokio::time::timeout(Duration::from_secs(10), w.next())
            .await
            .unwrap()
            .unwrap();
        assert!(u.resolved);
        assert_eq!(u.covering, Some(IpNet::from(u.address)));
        got.push(u.address);
    }
    got.sort();
    assert_eq!(got, [a, b]);

    rib.kill();
    w.unregister(b);
    let rib = FakeRib::start(&sock);
    wait_until(Duration::from_secs(10), "re-registration", || {
        (rib.nexthop_registrations() == [a]).then_some(())
    })
    .await;
    // Same answer as before the restart: nothing to report. A new address is reported.
    let c: IpAddr = "198.51.100.1".parse().unwrap();
    w.register(c);
    let u = tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u.address, c);
}
