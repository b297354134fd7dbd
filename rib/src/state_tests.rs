//! Behaviour of the RIB state: resolution, stale-and-sweep, watches, redistribution and the
//! FIB feed, driven through `RibState`'s methods without sockets.

use std::net::IpAddr;
use std::time::Duration;

use oxr_proto::fea::{Interface, InterfaceAddress, InterfaceUpdate};
use oxr_proto::rib::{Hello, NexthopUpdate, PublishResponse, RedistributionUpdate};
use tokio::sync::{mpsc, watch};

use crate::fib_feed::FibOut;
use crate::publish::{ParsedBatch, ParsedRoute, RawNexthop};
use crate::resolve::Level;
use crate::state::{RibOptions, RibState, Timer};
use crate::table::{Action, ClientId, Key};

fn k(s: &str) -> Key {
    Key::from(s.parse::<ipnet::IpNet>().unwrap())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn rib() -> RibState {
    RibState::new(RibOptions {
        expected_protocols: Some(vec!["static".into()]),
        ..Default::default()
    })
}

struct Conn {
    client: ClientId,
    stream: u64,
    acks: watch::Receiver<PublishResponse>,
}

fn connect(s: &mut RibState, protocol: &str, stream: u64) -> Conn {
    let (tx, acks) = watch::channel(PublishResponse::default());
    let hello = Hello {
        protocol: protocol.into(),
        ..Default::default()
    };
    let client = s.hello(stream, &hello, tx).unwrap();
    Conn {
        client,
        stream,
        acks,
    }
}

fn route(prefix: &str, gws: &[&str]) -> ParsedRoute {
    ParsedRoute {
        key: k(prefix),
        nexthops: gws
            .iter()
            .map(|g| RawNexthop {
                gateway: Some(ip(g)),
                interface: String::new(),
                weight: 0,
            })
            .collect(),
        action: Action::Forward,
        distance: 0,
        metric: 0,
        tag: 0,
    }
}

fn publish(s: &mut RibState, c: &Conn, add: Vec<ParsedRoute>, withdraw: &[&str]) {
    s.batch(
        c.client,
        c.stream,
        ParsedBatch {
            add,
            withdraw: withdraw.iter().map(|p| k(p)).collect(),
            ..Default::default()
        },
    );
}

fn iface(ifindex: u32, name: &str, up: bool, addrs: &[&str]) -> Interface {
    Interface {
        ifindex,
        name: name.into(),
        admin_up: true,
        oper_up: up,
        addresses: addrs
            .iter()
            .map(|a| InterfaceAddress {
                prefix: Some(Key::from(a.parse::<ipnet::IpNet>().unwrap()).to_proto()),
                peer: None,
            })
            .collect(),
        ..Default::default()
    }
}

fn interfaces(s: &mut RibState, list: Vec<Interface>) {
    s.interfaces(InterfaceUpdate {
        changed: list,
        removed_ifindex: vec![],
        full_dump: true,
    });
}

/// The FIB next hops of a prefix as "gateway@interface#ifindex", None if unresolved.
fn fib(s: &RibState, prefix: &str) -> Option<Vec<String>> {
    let e = s.table.get(&k(prefix))?;
    let res = e.res.as_ref()?;
    Some(
        res.nexthops
            .iter()
            .map(|n| {
                format!(
                    "{}@{}#{}",
                    n.gateway.map_or("-".to_string(), |g| g.to_string()),
                    n.interface,
                    n.ifindex
                )
            })
            .collect(),
    )
}

fn level(s: &RibState, prefix: &str) -> Option<Level> {
    s.table.get(&k(prefix))?.res.as_ref()?.level
}

fn stale(s: &RibState, prefix: &str) -> Option<bool> {
    Some(s.table.get(&k(prefix))?.cands.iter().any(|c| c.stale))
}

#[test]
fn gateway_resolves_through_connected_route() {
    let mut s = rib();
    interfaces(&mut s, vec![iface(2, "eth0", true, &["192.0.2.1/24"])]);
    let st = connect(&mut s, "static", 1);
    publish(
        &mut s,
        &st,
        vec![route("10.0.0.0/8", &["192.0.2.254"])],
        &[],
    );
    assert_eq!(fib(&s, "10.0.0.0/8").unwrap(), vec!["192.0.2.254@eth0#2"]);
    assert_eq!(level(&s, "10.0.0.0/8"), Some(Level::ViaDirect));
    assert_eq!(level(&s, "192.0.2.0/24"), Some(Level::Direct));
    assert_eq!(st.acks.borrow().acked_batches, 1);
}

#[test]
fn recursive_gateway_resolves_through_igp_route_and_follows_its_changes() {
    let mut s = rib();
    interfaces(&mut s, vec![iface(2, "eth0", true, &["192.0.2.1/24"])]);
    let ospf = connect(&mut s, "ospf", 1);
    let bgp = connect(&mut s, "bgp", 2);
    publish(
        &mut s,
        &ospf,
        vec![route("198.51.100.0/24", &["192.0.2.2"])],
        &[],
    );
    publish(
        &mut s,
        &bgp,
        vec![route("203.0.113.0/24", &["198.51.100.7"])],
        &[],
    );
    assert_eq!(fib(&s, "203.0.113.0/24").unwrap(), vec!["192.0.2.2@eth0#2"]);
    assert_eq!(level(&s, "203.0.113.0/24"), Some(Level::Recursive));

    // The IGP route moves: its dependent follows.
    publish(
        &mut s,
        &ospf,
        vec![route("198.51.100.0/24", &["192.0.2.3"])],
        &[],
    );
    assert_eq!(fib(&s, "203.0.113.0/24").unwrap(), vec!["192.0.2.3@eth0#2"]);

    // Nothing resolves through a recursive route.
    publish(
        &mut s,
        &bgp,
        vec![route("10.0.0.0/8", &["203.0.113.5"])],
        &[],
    );
    assert_eq!(fib(&s, "10.0.0.0/8"), None);

    // The IGP route goes: the BGP route is held back.
    publish(&mut s, &ospf, vec![], &["198.51.100.0/24"]);
    assert_eq!(fib(&s, "203.0.113.0/24"), None);
    assert!(
        s.table.get(&k("203.0.113.0/24")).unwrap().sel.is_some(),
        "kept, only unresolved"
    );
}

#[test]
fn unresolvable_route_resolves_when_a_connected_route_appears_and_back() {
    let mut s = rib();
    let st = connect(&mut s, "static", 1);
    publish(
        &mut s,
        &st,
        vec![route("10.0.0.0/8", &["192.0.2.254"])],
        &[],
    );
    assert_eq!(fib(&s, "10.0.0.0/8"), None);
    interfaces(&mut s, vec![iface(2, "eth0", true, &["192.0.2.1/24"])]);
    assert_eq!(fib(&s, "10.0.0.0/8").unwrap(), vec!["192.0.2.254@eth0#2"]);
    // Link down: the connected route goes, and with it the resolution.
    interfaces(&mut s, vec![iface(2, "eth0", false, &["192.0.2.1/24"])]);
    assert_eq!(fib(&s, "10.0.0.0/8"), None);
    assert!(s.table.get(&k("192.0.2.0/24")).is_none());
}

#[test]
fn more_specific_connected_route_takes_over_resolution() {
    let mut s = rib();
    interfaces(
        &mut s,
        vec![
            iface(2, "eth0", true, &["192.0.2.1/24"]),
            iface(3, "eth1", true, &[]),
        ],
    );
    let st = connect(&mut s, "static", 1);
    // 10.1.0.0/16 resolves through the /8's gateway until 10.1.0.0/16's gateway has its own link.
    publish(
        &mut s,
        &st,
        vec![
            route("10.0.0.0/8", &["192.0.2.254"]),
            route("172.16.0.0/16", &["10.1.1.1"]),
        ],
        &[],
    );
    assert_eq!(
        fib(&s, "172.16.0.0/16").unwrap(),
        vec!["192.0.2.254@eth0#2"]
    );
    interfaces(
        &mut s,
        vec![
            iface(2, "eth0", true, &["192.0.2.1/24"]),
            iface(3, "eth1", true, &["10.1.1.2/24"]),
        ],
    );
    assert_eq!(fib(&s, "172.16.0.0/16").unwrap(), vec!["10.1.1.1@eth1#3"]);
}

#[test]
fn a_route_never_resolves_through_itself() {
    let mut s = rib();
    let st = connect(&mut s, "static", 1);
    publish(&mut s, &st, vec![route("10.0.0.0/8", &["10.9.9.9"])], &[]);
    assert_eq!(fib(&s, "10.0.0.0/8"), None);
    interfaces(&mut s, vec![iface(2, "eth0", true, &["10.9.9.1/24"])]);
    assert_eq!(fib(&s, "10.0.0.0/8").unwrap(), vec!["10.9.9.9@eth0#2"]);
}

#[test]
fn interface_routes_are_direct_and_learn_their_ifindex() {
    let mut s = rib();
    let st = connect(&mut s, "static", 1);
    let mut r = route("10.0.0.0/8", &[]);
    r.nexthops.push(RawNexthop {
        gateway: None,
        interface: "eth0".into(),
        weight: 0,
    });
    publish(&mut s, &st, vec![r], &[]);
    assert_eq!(fib(&s, "10.0.0.0/8").unwrap(), vec!["-@eth0#0"]);
    interfaces(&mut s, vec![iface(5, "eth0", true, &[])]);
    assert_eq!(fib(&s, "10.0.0.0/8").unwrap(), vec!["-@eth0#5"]);
    assert_eq!(level(&s, "10.0.0.0/8"), Some(Level::Direct));
}

#[test]
fn ecmp_across_clients_merges_resolved_next_hops() {
    let mut s = rib();
    interfaces(&mut s, vec![iface(2, "eth0", true, &["192.0.2.1/24"])]);
    let a = connect(&mut s, "static", 1);
    let b = connect(&mut s, "rip", 2);
    let mut ra = route("10.0.0.0/8", &["192.0.2.10"]);
    ra.distance = 5;
    let mut rb = route("10.0.0.0/8", &["192.0.2.11"]);
    rb.distance = 5;
    publish(&mut s, &a, vec![ra], &[]);
    publish(&mut s, &b, vec![rb], &[]);
    assert_eq!(
        fib(&s, "10.0.0.0/8").unwrap(),
        vec!["192.0.2.10@eth0#2", "192.0.2.11@eth0#2"]
    );
    s.set_config(RibOptions {
        ecmp_width: 1,
        ..s.opts.clone()
    });
    assert_eq!(fib(&s, "10.0.0.0/8").unwrap(), vec!["192.0.2.10@eth0#2"]);
}

#[test]
fn broken_stream_keeps_routes_stale_and_eor_sweeps_the_ones_not_resent() {
    let mut s = rib();
    interfaces(&mut s, vec![iface(2, "eth0", true, &["192.0.2.1/24"])]);
    let st = connect(&mut s, "static", 1);
    publish(
        &mut s,
        &st,
        vec![
            route("10.0.0.0/8", &["192.0.2.254"]),
            route("11.0.0.0/8", &["192.0.2.254"]),
        ],
        &[],
    );
    s.stream_closed(st.client, st.stream);
    assert_eq!(stale(&s, "10.0.0.0/8"), Some(true));
    assert!(
        fib(&s, "10.0.0.0/8").is_some(),
        "stale routes stay selected and installed"
    );
    assert!(
        matches!(s.timers.as_slice(), [Timer::StaleHold { after, .. }] if *after == Duration::from_secs(120))
    );

    // Same (protocol, instance) returns on a new stream, re-sends one route.
    let st2 = connect(&mut s, "static", 2);
    assert_eq!(st2.client, st.client);
    publish(
        &mut s,
        &st2,
        vec![route("10.0.0.0/8", &["192.0.2.254"])],
        &[],
    );
    assert_eq!(stale(&s, "10.0.0.0/8"), Some(false));
    assert_eq!(stale(&s, "11.0.0.0/8"), Some(true));
    s.end_of_rib(st2.client, st2.stream);
    assert!(s
        .table
        .get(&k("11.0.0.0/8"))
        .is_none_or(|e| e.cands.is_empty()));
    assert!(fib(&s, "10.0.0.0/8").is_some());
    assert_eq!(st2.acks.borrow().swept, 1);
    assert_eq!(st2.acks.borrow().acked_batches, 1);

    // Messages from the old stream are ignored.
    publish(
        &mut s,
        &st,
        vec![route("12.0.0.0/8", &["192.0.2.254"])],
        &[],
    );
    assert!(s.table.get(&k("12.0.0.0/8")).is_none());
}

#[test]
fn hold_expiry_sweeps_only_if_the_client_did_not_return() {
    let mut s = rib();
    let st = connect(&mut s, "static", 1);
    publish(
        &mut s,
        &st,
        vec![route("10.0.0.0/8", &["192.0.2.254"])],
        &[],
    );
    s.stream_closed(st.client, st.stream);
    let Some(Timer::StaleHold { client, gen, .. }) = s.timers.pop() else {
        panic!("no hold timer")
    };
    // It came back before the timer fired: the old timer does nothing.
    let st2 = connect(&mut s, "static", 2);
    s.hold_expired(client, gen);
    assert_eq!(stale(&s, "10.0.0.0/8"), Some(true));
    // It leaves again and stays away.
    s.stream_closed(st2.client, st2.stream);
    let Some(Timer::StaleHold { client, gen, .. }) = s.timers.pop() else {
        panic!("no hold timer")
    };
    s.hold_expired(client, gen);
    assert!(s.table.get(&k("10.0.0.0/8")).is_none());
}

#[test]
fn hello_stale_hold_overrides_the_configured_one() {
    let mut s = rib();
    let (tx, _rx) = watch::channel(PublishResponse::default());
    let hello = Hello {
        protocol: "bgp".into(),
        stale_hold_secs: 7,
        ..Default::default()
    };
    let c = s.hello(1, &hello, tx).unwrap();
    let conn = Conn {
        client: c,
        stream: 1,
        acks: watch::channel(PublishResponse::default()).1,
    };
    publish(
        &mut s,
        &conn,
        vec![route("10.0.0.0/8", &["192.0.2.254"])],
        &[],
    );
    s.stream_closed(c, 1);
    assert!(
        matches!(s.timers.as_slice(), [Timer::StaleHold { after, .. }] if *after == Duration::from_secs(7))
    );
    let (tx, _rx) = watch::channel(PublishResponse::default());
    assert!(s
        .hello(
            2,
            &Hello {
                protocol: "connected".into(),
                ..Default::default()
            },
            tx
        )
        .is_err());
}

fn drain<T>(rx: &mut mpsc::UnboundedReceiver<Result<T, tonic::Status>>) -> Vec<T> {
    let mut out = Vec::new();
    while let Ok(m) = rx.try_recv() {
        out.push(m.unwrap());
    }
    out
}

#[test]
fn redistribution_dumps_then_streams_changes() {
    let mut s = rib();
    interfaces(&mut s, vec![iface(2, "eth0", true, &["192.0.2.1/24"])]);
    let st = connect(&mut s, "static", 1);
    let ospf = connect(&mut s, "ospf", 2);
    publish(
        &mut s,
        &st,
        vec![route("10.0.0.0/8", &["192.0.2.254"])],
        &[],
    );
    publish(
        &mut s,
        &ospf,
        vec![route("11.0.0.0/8", &["192.0.2.253"])],
        &[],
    );
    let (tx, mut rx) = mpsc::unbounded_channel();
    s.redist_open(1, vec!["static".into(), "connected".into()], vec![], tx);
    let dump: Vec<RedistributionUpdate> = drain(&mut rx);
    assert_eq!(dump.len(), 1);
    let mut got: Vec<(String, String)> = dump[0]
        .add
        .iter()
        .map(|r| {
            (
                r.protocol.clone(),
                Key::from_proto(r.route.as_ref().unwrap().prefix.as_ref().unwrap())
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("connected".into(), "192.0.2.0/24".into()),
            ("static".into(), "10.0.0.0/8".into())
        ]
    );
    assert!(dump[0].end_of_rib);

    // A static route appears, an OSPF one does not interest, a static one goes.
    publish(
        &mut s,
        &st,
        vec![route("12.0.0.0/8", &["192.0.2.254"])],
        &[],
    );
    publish(
        &mut s,
        &ospf,
        vec![route("13.0.0.0/8", &["192.0.2.254"])],
        &[],
    );
    publish(&mut s, &st, vec![], &["10.0.0.0/8"]);
    s.flush_watchers();
    let changes: Vec<RedistributionUpdate> = drain(&mut rx);
    let adds: Vec<_> = changes.iter().flat_map(|c| &c.add).collect();
    let withdraws: Vec<_> = changes.iter().flat_map(|c| &c.withdraw).collect();
    assert_eq!(adds.len(), 1);
    assert_eq!(
        adds[0].route.as_ref().unwrap().prefix,
        Some(k("12.0.0.0/8").to_proto())
    );
    assert_eq!(withdraws, vec![&k("10.0.0.0/8").to_proto()]);
}

fn covering_of(u: &NexthopUpdate) -> String {
    Key::from_proto(u.covering.as_ref().unwrap())
        .unwrap()
        .to_string()
}

#[test]
fn nexthop_watch_answers_with_covering_prefix_then_changes() {
    let mut s = rib();
    interfaces(&mut s, vec![iface(2, "eth0", true, &["192.0.2.1/24"])]);
    let st = connect(&mut s, "static", 1);
    publish(
        &mut s,
        &st,
        vec![route("10.0.0.0/8", &["192.0.2.254"])],
        &[],
    );
    let (tx, mut rx) = mpsc::unbounded_channel();
    s.watch_open(9, tx);
    s.watch_change(9, &[ip("10.5.5.5")], &[]);
    let u = drain(&mut rx);
    assert_eq!(u.len(), 1);
    assert!(u[0].resolved);
    assert_eq!(u[0].via_protocol, "static");
    assert_eq!(covering_of(&u[0]), "10.0.0.0/8");
    assert_eq!(u[0].resolved_nexthops[0].interface, "eth0");

    // A more specific route elsewhere in the /8 shrinks the covering prefix.
    publish(
        &mut s,
        &st,
        vec![route("10.0.0.0/24", &["192.0.2.253"])],
        &[],
    );
    let u = drain(&mut rx);
    assert_eq!(u.len(), 1);
    assert_eq!(covering_of(&u[0]), "10.4.0.0/14");
    assert_eq!(u[0].via_route, Some(k("10.0.0.0/8").to_proto()));

    // An unrelated route changes nothing.
    publish(
        &mut s,
        &st,
        vec![route("11.0.0.0/8", &["192.0.2.253"])],
        &[],
    );
    assert!(drain(&mut rx).is_empty());

    // The resolving route changes its gateway: new next hops.
    publish(
        &mut s,
        &st,
        vec![route("10.0.0.0/8", &["192.0.2.252"])],
        &[],
    );
    let u = drain(&mut rx);
    assert_eq!(u.len(), 1);
    assert_eq!(
        u[0].resolved_nexthops[0].gateway,
        Some(ip("192.0.2.252").into())
    );

    // It goes: unresolved.
    publish(&mut s, &st, vec![], &["10.0.0.0/8"]);
    let u = drain(&mut rx);
    assert_eq!(u.len(), 1);
    assert!(!u[0].resolved);

    // Removing the watch stops updates.
    s.watch_change(9, &[], &[ip("10.5.5.5")]);
    publish(
        &mut s,
        &st,
        vec![route("10.0.0.0/8", &["192.0.2.254"])],
        &[],
    );
    assert!(drain(&mut rx).is_empty());
}

fn fib_session(s: &mut RibState) -> mpsc::Receiver<FibOut> {
    let (tx, rx) = mpsc::channel(64);
    s.fea_up(1, tx);
    rx
}

fn batches(rx: &mut mpsc::Receiver<FibOut>, s: &mut RibState) -> Vec<FibOut> {
    let mut out = Vec::new();
    loop {
        s.pump_fib();
        let mut got = false;
        while let Ok(b) = rx.try_recv() {
            s.fib.ack(1, 0);
            out.push(b);
            got = true;
        }
        if !got {
            return out;
        }
    }
}

#[test]
fn fib_feed_syncs_after_expected_eor_and_sends_changes() {
    let mut s = rib();
    interfaces(&mut s, vec![iface(2, "eth0", true, &["192.0.2.1/24"])]);
    let st = connect(&mut s, "static", 1);
    publish(
        &mut s,
        &st,
        vec![
            route("10.0.0.0/8", &["192.0.2.254"]),
            route("11.0.0.0/8", &["203.0.113.1"]),
        ],
        &[],
    );
    let mut rx = fib_session(&mut s);
    let b = batches(&mut rx, &mut s);
    assert!(b[0].begin_sync);
    let adds: Vec<String> = b
        .iter()
        .flat_map(|b| &b.add)
        .map(|(k, _)| k.to_string())
        .collect();
    // Connected and unresolved routes are not sent.
    assert_eq!(adds, vec!["10.0.0.0/8"]);
    assert!(
        !b.iter().any(|b| b.end_sync),
        "static has not sent EndOfRib yet"
    );

    s.end_of_rib(st.client, st.stream);
    let b = batches(&mut rx, &mut s);
    assert_eq!(b.len(), 1);
    assert!(b[0].end_sync && b[0].add.is_empty());

    publish(
        &mut s,
        &st,
        vec![route("12.0.0.0/8", &["192.0.2.254"])],
        &["10.0.0.0/8"],
    );
    let b = batches(&mut rx, &mut s);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].add.len(), 1);
    assert_eq!(b[0].add[0].0, k("12.0.0.0/8"));
    assert_eq!(&*b[0].add[0].1.protocol, "static");
    assert_eq!(b[0].delete, vec![k("10.0.0.0/8")]);
    assert!(
        s.table.get(&k("10.0.0.0/8")).is_none(),
        "deleted entry dropped once sent"
    );

    // A reconnect resends everything between begin_sync and end_sync (ready by now).
    let (tx, mut rx2) = mpsc::channel(64);
    s.fea_up(2, tx);
    s.pump_fib();
    let b = rx2.try_recv().unwrap();
    assert!(b.begin_sync && b.end_sync);
    assert_eq!(
        b.add.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>(),
        vec!["12.0.0.0/8"]
    );
}

#[test]
fn fib_changes_coalesce_while_the_window_is_full() {
    let mut s = rib();
    interfaces(&mut s, vec![iface(2, "eth0", true, &["192.0.2.1/24"])]);
    s.startup_hold_expired();
    let st = connect(&mut s, "static", 1);
    let (tx, mut rx) = mpsc::channel(64);
    s.fea_up(1, tx);
    // Fill the window with un-acked batches.
    for i in 0..crate::fib_feed::WINDOW {
        publish(
            &mut s,
            &st,
            vec![route(&format!("10.{i}.0.0/16"), &["192.0.2.254"])],
            &[],
        );
        s.pump_fib();
    }
    let mut n = 0;
    while rx.try_recv().is_ok() {
        n += 1;
    }
    assert_eq!(n, crate::fib_feed::WINDOW);
    // Three changes to one prefix while nothing can be sent: one add goes out later.
    for gw in ["192.0.2.250", "192.0.2.251", "192.0.2.252"] {
        publish(&mut s, &st, vec![route("10.200.0.0/16", &[gw])], &[]);
        s.pump_fib();
    }
    assert!(rx.try_recv().is_err());
    s.fib.ack(1, 0);
    s.pump_fib();
    let b = rx.try_recv().unwrap();
    assert_eq!(b.add.len(), 1);
    assert_eq!(b.add[0].1.nexthops[0].gateway, Some(ip("192.0.2.252")));
}

#[test]
fn summary_counts_protocols_fib_and_unresolved() {
    let mut s = rib();
    interfaces(
        &mut s,
        vec![iface(2, "eth0", true, &["192.0.2.1/24", "2001:db8::1/64"])],
    );
    let st = connect(&mut s, "static", 1);
    publish(
        &mut s,
        &st,
        vec![
            route("10.0.0.0/8", &["192.0.2.254"]),
            route("2001:db8:1::/48", &["2001:db9::1"]),
        ],
        &[],
    );
    let sum = s.summary();
    assert_eq!(sum.prefixes_ipv4, 2);
    assert_eq!(sum.prefixes_ipv6, 2);
    assert_eq!(sum.fib_routes, 1);
    assert_eq!(sum.unresolved, 1);
    let stat = sum
        .protocols
        .iter()
        .find(|p| p.protocol == "static")
        .unwrap();
    assert_eq!((stat.ipv4, stat.ipv6, stat.selected), (1, 1, 2));
    assert!(stat.connected_client);
    let e = s.lookup(ip("10.1.2.3"));
    assert_eq!(e.entries[0].prefix, Some(k("10.0.0.0/8").to_proto()));
    assert!(e.entries[0].candidates[0].selected && e.entries[0].candidates[0].resolved);
}

/// Hold timers through the RIB task with a paused clock.
#[tokio::test(start_paused = true)]
async fn hold_timer_sweeps_a_client_that_does_not_return() {
    use crate::actor::Cmd;
    let h = crate::actor::spawn(RibOptions {
        stale_hold: Duration::from_secs(60),
        ..Default::default()
    });
    let (tx, _acks) = watch::channel(PublishResponse::default());
    let (reply, rx) = tokio::sync::oneshot::channel();
    h.send(Cmd::Hello {
        stream: 1,
        hello: Hello {
            protocol: "static".into(),
            ..Default::default()
        },
        resp: tx,
        reply,
    })
    .await
    .unwrap();
    let client = rx.await.unwrap().unwrap();
    let batch = ParsedBatch {
        add: vec![route("10.0.0.0/8", &["192.0.2.254"])],
        ..Default::default()
    };
    h.send(Cmd::Batch {
        client,
        stream: 1,
        batch,
    })
    .await
    .unwrap();
    h.send(Cmd::StreamClosed { client, stream: 1 })
        .await
        .unwrap();
    let count = |h: crate::actor::RibHandle| async move {
        h.call(|s| {
            s.table
                .get(&k("10.0.0.0/8"))
                .map(|e| e.cands.len())
                .unwrap_or(0)
        })
        .await
        .unwrap()
    };
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert_eq!(count(h.clone()).await, 1, "kept during the hold");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(count(h.clone()).await, 0, "swept after it");
}

/// A RIB with a FIB session whose window is full of un-acked batches (one route each),
/// the key queue bounded at `queue_max` so a few changes overflow it into a sweep.
fn rib_with_full_window(queue_max: usize) -> (RibState, Conn, mpsc::Receiver<FibOut>) {
    let mut s = rib();
    s.fib.set_queue_max(queue_max);
    interfaces(
        &mut s,
        vec![iface(2, "eth0", true, &["192.0.2.1/24", "2001:db8::1/64"])],
    );
    s.startup_hold_expired();
    let st = connect(&mut s, "static", 1);
    let (tx, mut rx) = mpsc::channel(64);
    s.fea_up(1, tx);
    for i in 0..crate::fib_feed::WINDOW {
        publish(
            &mut s,
            &st,
            vec![route(&format!("10.{i}.0.0/16"), &["192.0.2.254"])],
            &[],
        );
        s.pump_fib();
    }
    let mut n = 0;
    while rx.try_recv().is_ok() {
        n += 1;
    }
    assert_eq!(n, crate::fib_feed::WINDOW);
    (s, st, rx)
}

/// Acks every outstanding batch and collects what follows until the feed is quiet.
fn ack_and_drain(s: &mut RibState, rx: &mut mpsc::Receiver<FibOut>) -> Vec<FibOut> {
    for _ in 0..crate::fib_feed::WINDOW {
        s.fib.ack(1, 0);
    }
    batches(rx, s)
}

#[test]
fn fib_backlog_past_its_bound_is_swept_once_with_the_last_state() {
    let (mut s, st, mut rx) = rib_with_full_window(4);
    // Many more changes than the queue holds while nothing can be sent; one prefix changes
    // three times, one already installed is withdrawn, one comes and goes unsent.
    let routes: Vec<ParsedRoute> = (0..40)
        .map(|i| route(&format!("172.16.{i}.0/24"), &["192.0.2.254"]))
        .collect();
    publish(&mut s, &st, routes, &[]);
    for gw in ["192.0.2.250", "192.0.2.251", "192.0.2.252"] {
        publish(&mut s, &st, vec![route("172.16.7.0/24", &[gw])], &[]);
    }
    publish(
        &mut s,
        &st,
        vec![route("198.51.100.0/24", &["192.0.2.9"])],
        &[],
    );
    publish(&mut s, &st, vec![], &["10.3.0.0/16", "198.51.100.0/24"]);
    s.pump_fib();
    assert!(rx.try_recv().is_err(), "window full");
    assert!(s.fib.sweeping(), "the queue overflowed into a sweep");
    assert!(s.fib.pending() <= 4, "the key queue stays bounded");

    let b = ack_and_drain(&mut s, &mut rx);
    let adds: Vec<(Key, Option<IpAddr>)> = b
        .iter()
        .flat_map(|b| &b.add)
        .map(|(k, i)| (*k, i.nexthops[0].gateway))
        .collect();
    let deletes: Vec<Key> = b.iter().flat_map(|b| b.delete.iter().copied()).collect();
    assert_eq!(adds.len(), 40, "each changed prefix once: {adds:?}");
    for i in 0..40 {
        let key = k(&format!("172.16.{i}.0/24"));
        let sent: Vec<_> = adds.iter().filter(|(k, _)| *k == key).collect();
        assert_eq!(sent.len(), 1, "{key}");
        let want = if i == 7 { "192.0.2.252" } else { "192.0.2.254" };
        assert_eq!(sent[0].1, Some(ip(want)), "{key} carries its last state");
    }
    assert_eq!(deletes, vec![k("10.3.0.0/16")], "the delete is not lost");
    assert!(s.table.get(&k("10.3.0.0/16")).is_none());
    assert!(s.table.get(&k("198.51.100.0/24")).is_none());
    assert!(s.fib.idle() && !s.fib.sweeping());

    // Back to the key queue: a later change goes out alone.
    publish(
        &mut s,
        &st,
        vec![route("172.16.3.0/24", &["192.0.2.9"])],
        &[],
    );
    let b = batches(&mut rx, &mut s);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].add.len(), 1);
    assert_eq!(b[0].add[0].0, k("172.16.3.0/24"));
}

#[test]
fn fib_changes_behind_a_running_sweep_are_not_lost() {
    use crate::fib_feed::BATCH;
    let (mut s, st, mut rx) = rib_with_full_window(2);
    let n = BATCH + BATCH / 4;
    let p = |i: usize| format!("172.{}.{}.0/24", 16 + i / 256, i % 256);
    let routes: Vec<ParsedRoute> = (0..n).map(|i| route(&p(i), &["192.0.2.254"])).collect();
    publish(&mut s, &st, routes, &[]);
    assert!(s.fib.sweeping());
    // One ack: one full batch, the sweep stops part way.
    s.fib.ack(1, 0);
    s.pump_fib();
    let first = rx.try_recv().unwrap();
    assert_eq!(first.add.len(), BATCH);
    assert!(s.fib.sweeping());
    // Changes behind the sweep's cursor (queued by key, then past the bound: another pass)
    // and ahead of it (found by this pass). The sweep walks in feed order: the first batch
    // holds the first BATCH keys in that order.
    let mut order: Vec<Key> = (0..n).map(|i| k(&p(i))).collect();
    order.sort_by_key(crate::table::feed_order);
    let (behind, ahead) = (&order[..BATCH], &order[BATCH..]);
    assert!(first.add.iter().all(|(k, _)| behind.contains(k)));
    let changed = [behind[100], behind[50], ahead[ahead.len() - 3]];
    publish(&mut s, &st, vec![route("10.0.0.0/16", &["192.0.2.7"])], &[]);
    for key in changed {
        publish(
            &mut s,
            &st,
            vec![route(&key.to_string(), &["192.0.2.8"])],
            &[],
        );
    }
    let b = ack_and_drain(&mut s, &mut rx);
    let adds: Vec<(Key, Option<IpAddr>)> = b
        .iter()
        .flat_map(|b| &b.add)
        .map(|(k, i)| (*k, i.nexthops[0].gateway))
        .collect();
    assert_eq!(
        adds.len(),
        n - BATCH + 3,
        "the rest once, the changed ones again"
    );
    for (key, gw) in [
        (k("10.0.0.0/16"), "192.0.2.7"),
        (changed[0], "192.0.2.8"),
        (changed[1], "192.0.2.8"),
        (changed[2], "192.0.2.8"),
    ] {
        let sent: Vec<_> = adds.iter().filter(|(k, _)| *k == key).collect();
        assert_eq!(sent.len(), 1, "{key}");
        assert_eq!(sent[0].1, Some(ip(gw)), "{key}");
    }
    assert!(s.fib.idle());
}

#[test]
fn fib_resync_after_reconnect_sends_the_table_despite_a_backlog() {
    let (mut s, st, rx) = rib_with_full_window(4);
    let routes: Vec<ParsedRoute> = (0..30)
        .map(|i| route(&format!("172.16.{i}.0/24"), &["192.0.2.254"]))
        .collect();
    publish(&mut s, &st, routes, &[]);
    publish(&mut s, &st, vec![], &["10.5.0.0/16"]);
    assert!(s.fib.sweeping());
    // The FEA goes away with everything in flight; a new stream starts a resync.
    drop(rx);
    s.fib.session_down(1);
    let (tx, mut rx2) = mpsc::channel(64);
    s.fea_up(2, tx);
    let mut b = Vec::new();
    loop {
        s.pump_fib();
        let mut got = false;
        while let Ok(x) = rx2.try_recv() {
            s.fib.ack(2, 0);
            b.push(x);
            got = true;
        }
        if !got {
            break;
        }
    }
    assert!(b[0].begin_sync);
    assert_eq!(b.iter().filter(|b| b.end_sync).count(), 1);
    let mut adds: Vec<Key> = b.iter().flat_map(|b| &b.add).map(|(k, _)| *k).collect();
    adds.sort();
    adds.dedup();
    // 7 of the window's routes plus the 30 new ones; 10.5/16 is not re-sent.
    assert_eq!(adds.len(), 37, "{adds:?}");
    assert!(!adds.contains(&k("10.5.0.0/16")));
    assert!(s.table.get(&k("10.5.0.0/16")).is_none());
    assert!(s.fib.idle());
}

#[test]
fn fib_batches_carry_both_families_while_both_are_pending() {
    use crate::fib_feed::BATCH;
    let mut s = rib();
    interfaces(
        &mut s,
        vec![iface(2, "eth0", true, &["192.0.2.1/24", "2001:db8::1/64"])],
    );
    s.startup_hold_expired();
    let st = connect(&mut s, "static", 1);
    // IPv4 first, then IPv6, as a full table arrives.
    let n = BATCH * 3 / 4;
    let v4: Vec<ParsedRoute> = (0..n)
        .map(|i| {
            route(
                &format!("10.{}.{}.0/24", i / 256, i % 256),
                &["192.0.2.254"],
            )
        })
        .collect();
    let v6: Vec<ParsedRoute> = (0..n)
        .map(|i| route(&format!("2001:db8:{:x}::/48", i + 1), &["2001:db8::fe"]))
        .collect();
    publish(&mut s, &st, v4, &[]);
    publish(&mut s, &st, v6, &[]);
    let mut rx = fib_session(&mut s);
    let b = batches(&mut rx, &mut s);
    let fam = |b: &FibOut, v6: bool| b.add.iter().filter(|(k, _)| k.v6 == v6).count();
    assert_eq!(b.len(), 2, "the dump in two full batches");
    assert_eq!(
        (fam(&b[0], false), fam(&b[0], true)),
        (BATCH / 2, BATCH / 2)
    );
    assert_eq!(
        (fam(&b[1], false), fam(&b[1], true)),
        (n - BATCH / 2, n - BATCH / 2)
    );
    // Changes after the sync interleave the same way.
    let v4: Vec<ParsedRoute> = (0..n)
        .map(|i| {
            route(
                &format!("10.{}.{}.0/24", i / 256, i % 256),
                &["192.0.2.253"],
            )
        })
        .collect();
    let v6: Vec<ParsedRoute> = (0..n)
        .map(|i| route(&format!("2001:db8:{:x}::/48", i + 1), &["2001:db8::fd"]))
        .collect();
    publish(&mut s, &st, v4, &[]);
    publish(&mut s, &st, v6, &[]);
    let b = batches(&mut rx, &mut s);
    assert_eq!(b.len(), 2);
    assert_eq!(
        (fam(&b[0], false), fam(&b[0], true)),
        (BATCH / 2, BATCH / 2)
    );
    // Only one family pending: full batches of it.
    let v4: Vec<ParsedRoute> = (0..n)
        .map(|i| {
            route(
                &format!("10.{}.{}.0/24", i / 256, i % 256),
                &["192.0.2.252"],
            )
        })
        .collect();
    publish(&mut s, &st, v4, &[]);
    let b = batches(&mut rx, &mut s);
    assert_eq!(b.len(), 1);
    assert_eq!(fam(&b[0], false), n);
}

#[test]
fn routes_with_the_same_state_share_it_and_change_alone() {
    let mut s = rib();
    interfaces(&mut s, vec![iface(2, "eth0", true, &["192.0.2.1/24"])]);
    let st = connect(&mut s, "static", 1);
    let same = ["10.0.0.0/8", "11.0.0.0/8", "12.0.0.0/8"];
    let add = same.iter().map(|p| route(p, &["192.0.2.254"])).collect();
    publish(&mut s, &st, add, &[]);
    let id = s.table.state_id(&k("10.0.0.0/8")).unwrap();
    for p in same {
        assert_eq!(s.table.state_id(&k(p)), Some(id), "{p}");
    }
    assert_eq!(s.table.states().users(id), 3);

    // One route moves: the others keep the shared state and their next hops.
    publish(
        &mut s,
        &st,
        vec![route("11.0.0.0/8", &["192.0.2.253"])],
        &[],
    );
    assert_ne!(s.table.state_id(&k("11.0.0.0/8")), Some(id));
    assert_eq!(s.table.states().users(id), 2);
    assert_eq!(fib(&s, "11.0.0.0/8").unwrap(), vec!["192.0.2.253@eth0#2"]);
    for p in ["10.0.0.0/8", "12.0.0.0/8"] {
        assert_eq!(fib(&s, p).unwrap(), vec!["192.0.2.254@eth0#2"], "{p}");
        assert_eq!(s.table.state_id(&k(p)), Some(id), "{p}");
    }

    // Its last users withdrawn, the state is freed.
    publish(&mut s, &st, vec![], &["10.0.0.0/8", "12.0.0.0/8"]);
    assert_eq!(s.table.states().users(id), 0);
    assert_eq!(fib(&s, "10.0.0.0/8"), None);
    assert_eq!(fib(&s, "11.0.0.0/8").unwrap(), vec!["192.0.2.253@eth0#2"]);

    // Stale-and-sweep goes through the shared states too.
    s.stream_closed(st.client, st.stream);
    assert_eq!(stale(&s, "11.0.0.0/8"), Some(true));
    assert_eq!(
        stale(&s, "192.0.2.0/24"),
        Some(false),
        "connected route untouched"
    );
}
