//! The kernel backend against a real kernel, in a namespace of its own (needs root).

mod common;

use std::collections::HashSet;

use common::{root_or_skip, Netns};
use ipnet::IpNet;
use oxr_fea::backend::kernel::KernelBackend;
use oxr_fea::backend::{Action, BackendOptions, FibBackend, FibOp, Nexthop, Route};
use oxr_fea::fib::{Batch, Fib};

fn opts(ns: &Netns) -> BackendOptions {
    BackendOptions {
        route_protocol: 201,
        netlink_batch: 4,
        netns: Some(ns.path()),
        ..Default::default()
    }
}

fn open(ns: &Netns) -> KernelBackend {
    let mut b = KernelBackend::open(&opts(ns)).expect("open kernel backend");
    b.load_existing().expect("load existing");
    b
}

fn route(p: &str, gws: &[&str], ifindex: u32) -> Route {
    Route {
        prefix: p.parse().unwrap(),
        nexthops: gws
            .iter()
            .map(|g| Nexthop {
                gateway: Some(g.parse().unwrap()),
                ifindex,
                weight: 1,
            })
            .collect(),
        action: Action::Forward,
        metric: 0,
        protocol: "static".into(),
    }
}

fn typed(p: &str, action: Action) -> Route {
    Route {
        prefix: p.parse().unwrap(),
        nexthops: vec![],
        action,
        metric: 0,
        protocol: "static".into(),
    }
}

fn all_ok(r: Vec<Result<(), String>>) {
    for x in &r {
        assert!(x.is_ok(), "{r:?}");
    }
}

#[test]
fn installs_v4_v6_ecmp_blackhole_reject_and_deletes() {
    if !root_or_skip("installs_v4_v6_ecmp_blackhole_reject_and_deletes") {
        return;
    }
    let ns = Netns::new("install");
    let idx = ns.with_veth();
    let mut b = open(&ns);
    all_ok(b.apply(&[
        FibOp::Add(route("198.51.100.0/24", &["10.0.0.2"], idx)),
        FibOp::Add(route("203.0.113.0/24", &["10.0.0.2"], idx)),
        FibOp::Add(route("192.0.2.0/24", &["10.0.0.2", "10.0.0.3"], idx)),
        FibOp::Add(route("2001:db8:1::/48", &["2001:db8:ffff::2"], idx)),
        FibOp::Add(route(
            "2001:db8:2::/48",
            &["2001:db8:ffff::2", "2001:db8:ffff::3"],
            idx,
        )),
        FibOp::Add(typed("100.64.0.0/10", Action::Blackhole)),
        FibOp::Add(typed("100.127.0.0/16", Action::Reject)),
        FibOp::Add(typed("2001:db8:dead::/48", Action::Blackhole)),
    ]));
    let v4 = ns.ip(&["route", "show", "proto", "201"]);
    let v6 = ns.ip(&["-6", "route", "show", "proto", "201"]);
    let nh = ns.ip(&["nexthop", "show"]);
    println!("{v4}{v6}{nh}");
    assert!(v4.contains("198.51.100.0/24 nhid 1000000"), "{v4}");
    assert!(v4.contains("203.0.113.0/24 nhid 1000000"), "{v4}");
    assert!(v4.contains("blackhole 100.64.0.0/10"), "{v4}");
    assert!(v4.contains("unreachable 100.127.0.0/16"), "{v4}");
    assert!(v6.contains("2001:db8:1::/48 nhid"), "{v6}");
    assert!(v6.contains("blackhole 2001:db8:dead::/48"), "{v6}");
    // ECMP: the route is multipath through a group object.
    let ecmp = ns.ip(&["route", "show", "192.0.2.0/24"]);
    assert!(ecmp.contains("nexthop via 10.0.0.2"), "{ecmp}");
    assert!(ecmp.contains("nexthop via 10.0.0.3"), "{ecmp}");
    let gid: u32 = ecmp
        .split("nhid ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let group = ns.ip(&["nexthop", "show", "id", &gid.to_string()]);
    assert!(group.contains("group "), "{group}");
    assert!(group.contains("proto 201"), "{group}");
    assert!(ns
        .ip(&["-6", "route", "show", "2001:db8:2::/48"])
        .contains("nexthop via 2001:db8:ffff::3"));
    // Shared next hop: one object for two routes.
    assert_eq!(nh.matches("via 10.0.0.2 ").count(), 1, "{nh}");
    let st = b.status();
    assert_eq!((st.routes_ipv4, st.routes_ipv6), (5, 3));
    assert_eq!(st.nexthop_groups, 2);

    // Delete (one absent prefix too), and the objects nothing uses any more go.
    all_ok(b.apply(&[
        FibOp::Delete("192.0.2.0/24".parse().unwrap()),
        FibOp::Delete("2001:db8:2::/48".parse().unwrap()),
        FibOp::Delete("100.64.0.0/10".parse().unwrap()),
        FibOp::Delete("10.99.0.0/16".parse().unwrap()),
    ]));
    let v4 = ns.ip(&["route", "show", "proto", "201"]);
    assert!(
        !v4.contains("192.0.2.0/24") && !v4.contains("100.64.0.0/10"),
        "{v4}"
    );
    assert!(v4.contains("198.51.100.0/24"));
    let nh = ns.ip(&["nexthop", "show"]);
    assert!(!nh.contains("group"), "{nh}");
    assert!(!nh.contains("10.0.0.3"), "{nh}");
    assert!(!nh.contains("2001:db8:ffff::3"), "{nh}");
    assert!(nh.contains("10.0.0.2"), "{nh}");
    assert_eq!(b.status().nexthop_groups, 0);

    // A kernel refusal is reported for that route only.
    let res = b.apply(&[
        FibOp::Add(route("198.18.0.0/15", &["10.0.0.2"], idx)),
        FibOp::Add(route("198.20.0.0/16", &["10.0.0.9"], 9999)),
    ]);
    assert!(res[0].is_ok(), "{res:?}");
    assert!(res[1].is_err(), "{res:?}");
    assert!(ns
        .ip(&["route", "show", "proto", "201"])
        .contains("198.18.0.0/15"));
}

#[test]
fn restart_adopts_routes_and_sync_removes_only_what_was_not_resent() {
    if !root_or_skip("restart_adopts_routes_and_sync_removes_only_what_was_not_resent") {
        return;
    }
    let ns = Netns::new("restart");
    let idx = ns.with_veth();
    let mut routes = Vec::new();
    for i in 0..20u32 {
        let p = format!("172.16.{i}.0/24");
        routes.push(match i % 4 {
            0 => route(&p, &["10.0.0.2", "10.0.0.3"], idx),
            1 => route(&p, &["10.0.0.3"], idx),
            2 => typed(&p, Action::Blackhole),
            _ => route(&p, &["10.0.0.2"], idx),
        });
    }
    for i in 0..6u32 {
        routes.push(route(
            &format!("2001:db8:{i}::/48"),
            &["2001:db8:ffff::2"],
            idx,
        ));
    }
    {
        let mut first = open(&ns);
        all_ok(first.apply(&routes.iter().cloned().map(FibOp::Add).collect::<Vec<_>>()));
    } // the first FEA "dies"; its routes stay
    let before4 = ns.ip(&["route", "show", "proto", "201"]);
    let before6 = ns.ip(&["-6", "route", "show", "proto", "201"]);
    let nh_before = ns.ip(&["nexthop", "show"]);
    assert_eq!(
        before4
            .lines()
            .filter(|l| l.starts_with("172.16") || l.starts_with("blackhole"))
            .count(),
        20
    );

    let second = open(&ns);
    let st = second.status();
    assert_eq!(
        (st.routes_ipv4, st.routes_ipv6, st.unconfirmed),
        (20, 6, 26)
    );
    assert_eq!(second.prefixes().len(), 26);
    // The adopted state describes the kernel's routes.
    let adopted = second.get(&"172.16.0.0/24".parse().unwrap()).unwrap();
    assert_eq!(adopted.nexthops.len(), 2);
    let mut fib = Fib::new(Box::new(second));

    // The RIB re-sends the even half (IPv4 and IPv6), then ends the sync.
    let resent: Vec<Route> = routes.iter().step_by(2).cloned().collect();
    let ack = fib.apply(Batch {
        seq: 1,
        begin_sync: true,
        add: resent.clone(),
        ..Default::default()
    });
    assert_eq!(ack.failed, 0, "{:?}", ack.errors);
    assert_eq!(
        fib.backend().status().messages,
        0,
        "identical routes sent messages"
    );
    let ack = fib.apply(Batch {
        seq: 2,
        end_sync: true,
        ..Default::default()
    });
    assert_eq!(ack.failed, 0, "{:?}", ack.errors);
    assert_eq!(fib.counters().reconciled_kept, resent.len() as u64);
    assert_eq!(
        fib.counters().reconciled_removed,
        (routes.len() - resent.len()) as u64
    );

    let after4 = ns.ip(&["route", "show", "proto", "201"]);
    let after6 = ns.ip(&["-6", "route", "show", "proto", "201"]);
    let kept: HashSet<IpNet> = resent.iter().map(|r| r.prefix).collect();
    // Every re-sent route is still there with the very same line (same nexthop ids);
    // every other one is gone.
    for (before, after) in [(&before4, &after4), (&before6, &after6)] {
        for line in before
            .lines()
            .filter(|l| !l.starts_with(char::is_whitespace))
        {
            let prefix: IpNet = line
                .split_whitespace()
                .find(|w| w.contains('/'))
                .unwrap()
                .parse()
                .unwrap();
            if kept.contains(&prefix) {
                assert!(
                    after.contains(line),
                    "re-sent route changed: {line}\n{after}"
                );
            } else {
                assert!(
                    !after.contains(&prefix.to_string()),
                    "{prefix} not removed\n{after}"
                );
            }
        }
    }
    // Objects the kept routes use keep their ids.
    let nh_after = ns.ip(&["nexthop", "show"]);
    for line in nh_after.lines() {
        assert!(
            nh_before.contains(line),
            "new or changed nexthop object: {line}\n{nh_before}"
        );
    }
    assert_eq!(fib.backend().status().unconfirmed, 0);
}

#[test]
fn interleaved_families_answer_in_op_order() {
    if !root_or_skip("interleaved_families_answer_in_op_order") {
        return;
    }
    let ns = Netns::new("families");
    let idx = ns.with_veth();
    let mut b = open(&ns);
    // IPv4 and IPv6 alternate, so both inserters carry datagrams at once (batch 4);
    // one IPv6 route the kernel refuses sits in the middle.
    let mut ops = Vec::new();
    for i in 0..200u32 {
        ops.push(FibOp::Add(route(
            &format!("10.{}.{}.0/24", 100 + i / 256, i % 256),
            &["10.0.0.2"],
            idx,
        )));
        ops.push(FibOp::Add(route(
            &format!("2001:db8:{:x}::/48", 0x100 + i),
            &["2001:db8:ffff::2"],
            idx,
        )));
    }
    let bad = 151;
    ops[bad] = FibOp::Add(route("2001:db8:bad::/48", &["2001:db8:ffff::9"], 9999));
    let res = b.apply(&ops);
    assert_eq!(res.len(), ops.len());
    for (i, r) in res.iter().enumerate() {
        assert_eq!(r.is_err(), i == bad, "op {i}: {r:?}");
    }
    let st = b.status();
    assert_eq!((st.routes_ipv4, st.routes_ipv6), (200, 199));
    assert_eq!(
        ns.ip(&["-6", "route", "show", "proto", "201"])
            .lines()
            .count(),
        199
    );
    assert_eq!(
        ns.ip(&["route", "show", "proto", "201"]).lines().count(),
        200
    );
}

#[test]
fn spread_ipv4_order_answers_each_op_and_installs_all() {
    if !root_or_skip("spread_ipv4_order_answers_each_op_and_installs_all") {
        return;
    }
    let ns = Netns::new("spread");
    let idx = ns.with_veth();
    let mut b = open(&ns);
    // Address-ordered IPv4 routes (the backend sends them in another order), a route the
    // kernel refuses in the middle, and deletes of routes installed before.
    let first: Vec<FibOp> = (0..20u32)
        .map(|i| FibOp::Add(route(&format!("10.200.{i}.0/24"), &["10.0.0.2"], idx)))
        .collect();
    all_ok(b.apply(&first));
    let mut ops: Vec<FibOp> = (0..300u32)
        .map(|i| {
            FibOp::Add(route(
                &format!("10.{}.{}.0/24", 100 + i / 256, i % 256),
                &["10.0.0.2"],
                idx,
            ))
        })
        .collect();
    let bad = 137;
    ops[bad] = FibOp::Add(route("10.250.0.0/24", &["10.0.0.9"], 9999));
    for i in 0..10u32 {
        ops.insert(
            50 + 7 * i as usize,
            FibOp::Delete(format!("10.200.{i}.0/24").parse().unwrap()),
        );
    }
    let bad = ops
        .iter()
        .position(|o| o.prefix() == "10.250.0.0/24".parse().unwrap())
        .unwrap();
    let res = b.apply(&ops);
    assert_eq!(res.len(), ops.len());
    for (i, r) in res.iter().enumerate() {
        assert_eq!(r.is_err(), i == bad, "op {i}: {r:?}");
    }
    assert_eq!(b.status().routes_ipv4, 20 + 299 - 10);
    let kernel = ns.ip(&["route", "show", "proto", "201"]);
    assert_eq!(kernel.lines().count(), 20 + 299 - 10);
    assert!(kernel.contains("10.101.43.0/24"));
    assert!(!kernel.contains("10.200.3.0/24"));
    assert!(kernel.contains("10.200.13.0/24"));
}
