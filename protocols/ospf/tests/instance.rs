//! Conformance scenarios of the whole instance, without sockets: two to four instances
//! talk through a simulated network (tests/sim) with a fake clock. Final states are kept as
//! snapshots in tests/snapshots/instance_*.txt (OXR_UPDATE_SNAPSHOTS=1 rewrites them).

mod sim;

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use oxr_ospf::instance::{Input, ALL_D_ROUTERS, ALL_SPF_ROUTERS};
use oxr_ospf::interface::IfState;
use oxr_ospf::neighbor::NbrState;
use oxr_ospf::packet::lsa::LSA_NETWORK;
use oxr_ospf::packet::{encode, Auth, Body, Hello, Packet};
use oxr_ospf::route::PathType;
use sim::{snapshot, Sim};

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

/// A router config: router ID, area 0, a passive loopback, and the given interfaces
/// (`name`, `extra TOML lines`).
fn config(rid: &str, ifaces: &[(&str, &str)]) -> String {
    let mut s = format!(
        "router-id = \"{rid}\"\n[areas.\"0.0.0.0\"]\n[interfaces.lo]\narea = \"0.0.0.0\"\npassive = true\ncost = 1\n"
    );
    for (name, extra) in ifaces {
        s.push_str(&format!(
            "[interfaces.{name}]\narea = \"0.0.0.0\"\nhello-interval = 1\ndead-interval = 4\nretransmit-interval = 2\n{extra}\n"
        ));
    }
    s
}

fn state_of(sim: &Sim, r: usize, nbr: &str) -> Option<NbrState> {
    sim.routers[r]
        .inst
        .neighbors()
        .into_iter()
        .find(|n| n.router_id == ip(nbr))
        .map(|n| n.state)
}

fn metric(sim: &Sim, r: usize, p: &str) -> Option<u32> {
    sim.routers[r].routes.get(&net(p)).map(|r| r.metric)
}

fn gateways(sim: &Sim, r: usize, p: &str) -> Vec<Ipv4Addr> {
    sim.routers[r]
        .routes
        .get(&net(p))
        .map(|r| r.nexthops.iter().filter_map(|n| n.gateway).collect())
        .unwrap_or_default()
}

fn p2p_pair(auth: &str, auth2: &str) -> Sim {
    let mut sim = Sim::new();
    let p2p = "type = \"point-to-point\"\ncost = 10\n";
    let a = sim.router(
        "r1",
        &config("1.1.1.1", &[("eth0", &format!("{p2p}{auth}"))]),
    );
    let b = sim.router(
        "r2",
        &config("2.2.2.2", &[("eth0", &format!("{p2p}{auth2}"))]),
    );
    sim.iface(a, "lo", "1.1.1.1/32", true);
    sim.iface(b, "lo", "2.2.2.2/32", true);
    sim.p2p((a, "eth0", "10.0.12.1/30"), (b, "eth0", "10.0.12.2/30"));
    sim
}

#[test]
fn point_to_point_adjacency_and_routes_both_ways() {
    let mut sim = p2p_pair("", "");
    let full = sim.run_until_cond(10_000, |s| {
        state_of(s, 0, "2.2.2.2") == Some(NbrState::Full)
            && state_of(s, 1, "1.1.1.1") == Some(NbrState::Full)
    });
    let t = full.expect("adjacency reaches Full");
    // The first Hellos go out at once, the exchange takes a few round trips.
    assert!(t < 1_100, "full after {t} ms");
    let routed = sim
        .run_until_cond(5_000, |s| {
            metric(s, 0, "2.2.2.2/32").is_some() && metric(s, 1, "1.1.1.1/32").is_some()
        })
        .expect("routes learned");
    assert!(routed < 1_200, "routes after {routed} ms");
    sim.run_for(5_000);
    assert_eq!(metric(&sim, 0, "2.2.2.2/32"), Some(11));
    assert_eq!(metric(&sim, 1, "1.1.1.1/32"), Some(11));
    assert_eq!(gateways(&sim, 0, "2.2.2.2/32"), vec![ip("10.0.12.2")]);
    assert_eq!(gateways(&sim, 1, "1.1.1.1/32"), vec![ip("10.0.12.1")]);
    // The link subnet is connected on both: not published to the RIB.
    assert_eq!(metric(&sim, 0, "10.0.12.0/30"), None);
    assert_eq!(
        sim.routers[0].routes[&net("2.2.2.2/32")].path_type,
        PathType::IntraArea
    );
    let c = sim.routers[0].inst.counters();
    assert_eq!(c.adjacency_up, 1);
    assert!(c.spf_runs >= 1);
    assert!(c.rx["hello"] >= 5);
    assert!(c.errors.is_empty(), "{:?}", c.errors);
    snapshot("instance_p2p", &sim.render());
}

fn broadcast_lan(prios: &[u8]) -> Sim {
    let mut sim = Sim::new();
    let mut ends = Vec::new();
    for (n, pri) in prios.iter().enumerate() {
        let k = n + 1;
        let r = sim.router(
            &format!("r{k}"),
            &config(
                &format!("{k}.{k}.{k}.{k}"),
                &[("eth0", &format!("priority = {pri}\ncost = 5"))],
            ),
        );
        sim.iface(r, "lo", &format!("{k}.{k}.{k}.{k}/32"), true);
        sim.iface(r, "eth0", &format!("10.0.0.{k}/24"), true);
        ends.push(r);
    }
    let ends: Vec<(usize, &str)> = ends.iter().map(|r| (*r, "eth0")).collect();
    sim.link(&ends);
    sim
}

#[test]
fn broadcast_election_with_priority_ties_and_adjacencies() {
    // Equal priorities: the highest router ID is DR, the next BDR; priority 0 never wins.
    let mut sim = broadcast_lan(&[1, 1, 1, 0]);
    sim.run_until(12_000);
    for r in 0..4 {
        let i = &sim.routers[r].inst.interfaces()[0];
        assert_eq!(i.name, "eth0");
        assert_eq!(
            (i.dr, i.bdr),
            (ip("10.0.0.3"), ip("10.0.0.2")),
            "router {r}"
        );
    }
    assert_eq!(sim.routers[2].inst.interfaces()[0].state, IfState::Dr);
    assert_eq!(sim.routers[1].inst.interfaces()[0].state, IfState::Backup);
    assert_eq!(sim.routers[0].inst.interfaces()[0].state, IfState::DrOther);
    // DROthers r1 and r4 stay 2-Way with each other, everything else is Full.
    assert_eq!(state_of(&sim, 0, "4.4.4.4"), Some(NbrState::TwoWay));
    assert_eq!(state_of(&sim, 3, "1.1.1.1"), Some(NbrState::TwoWay));
    for (r, n) in [
        (0, "3.3.3.3"),
        (0, "2.2.2.2"),
        (3, "3.3.3.3"),
        (1, "3.3.3.3"),
    ] {
        assert_eq!(state_of(&sim, r, n), Some(NbrState::Full), "{r} -> {n}");
    }
    // Routes through the transit network: cost 5 + loopback 1, direct next hop.
    for r in 0..4 {
        for k in 1..=4 {
            if k == r + 1 {
                continue;
            }
            let p = format!("{k}.{k}.{k}.{k}/32");
            assert_eq!(metric(&sim, r, &p), Some(6), "r{} -> {p}", r + 1);
            assert_eq!(
                gateways(&sim, r, &p),
                vec![ip(&format!("10.0.0.{k}"))],
                "r{} -> {p}",
                r + 1
            );
        }
    }
    // Only the DR and BDR listen to AllDRouters.
    for (r, member) in [(0, false), (1, true), (2, true), (3, false)] {
        assert_eq!(
            sim.routers[r]
                .groups
                .contains(&("eth0".to_string(), ALL_D_ROUTERS)),
            member
        );
    }
    // One network-LSA, from the DR.
    let nets = sim.routers[0].inst.database(Some(LSA_NETWORK), None);
    assert_eq!(nets.len(), 1);
    assert_eq!(nets[0].header.adv_router, ip("3.3.3.3"));
    snapshot("instance_broadcast", &sim.render());
}

#[test]
fn broadcast_priority_beats_router_id_and_dr_failure_promotes_bdr() {
    let mut sim = broadcast_lan(&[10, 1, 1]);
    sim.run_until(12_000);
    let i = &sim.routers[2].inst.interfaces()[0];
    assert_eq!((i.dr, i.bdr), (ip("10.0.0.1"), ip("10.0.0.3")));
    // The DR dies: after the dead interval the BDR takes over and r2 becomes BDR.
    sim.set_up(0, "eth0", false);
    sim.run_for(8_000);
    for r in [1, 2] {
        let i = &sim.routers[r].inst.interfaces()[0];
        assert_eq!(
            (i.dr, i.bdr),
            (ip("10.0.0.3"), ip("10.0.0.2")),
            "r{}",
            r + 1
        );
    }
    assert_eq!(state_of(&sim, 1, "3.3.3.3"), Some(NbrState::Full));
    assert_eq!(metric(&sim, 1, "1.1.1.1/32"), None);
    assert_eq!(metric(&sim, 1, "3.3.3.3/32"), Some(6));
}

/// r1 - r2 cost 10, r2 - r3 cost 10, r1 - r3 cost 30, all point-to-point.
fn triangle() -> Sim {
    let mut sim = Sim::new();
    let p2p = |c: u16| format!("type = \"point-to-point\"\ncost = {c}");
    let r1 = sim.router(
        "r1",
        &config("1.1.1.1", &[("e12", &p2p(10)), ("e13", &p2p(30))]),
    );
    let r2 = sim.router(
        "r2",
        &config("2.2.2.2", &[("e12", &p2p(10)), ("e23", &p2p(10))]),
    );
    let r3 = sim.router(
        "r3",
        &config("3.3.3.3", &[("e13", &p2p(30)), ("e23", &p2p(10))]),
    );
    for (r, k) in [(r1, 1), (r2, 2), (r3, 3)] {
        sim.iface(r, "lo", &format!("{k}.{k}.{k}.{k}/32"), true);
    }
    sim.iface(r1, "e12", "10.0.12.1/30", true);
    sim.iface(r2, "e12", "10.0.12.2/30", true);
    sim.iface(r1, "e13", "10.0.13.1/30", true);
    sim.iface(r3, "e13", "10.0.13.2/30", true);
    sim.iface(r2, "e23", "10.0.23.1/30", true);
    sim.iface(r3, "e23", "10.0.23.2/30", true);
    sim.link(&[(r1, "e12"), (r2, "e12")]);
    sim.link(&[(r1, "e13"), (r3, "e13")]);
    sim.link(&[(r2, "e23"), (r3, "e23")]);
    sim
}

#[test]
fn link_cut_reroutes_within_the_throttle_delay() {
    let mut sim = triangle();
    sim.run_until(8_000);
    assert_eq!(metric(&sim, 0, "3.3.3.3/32"), Some(21));
    assert_eq!(gateways(&sim, 0, "3.3.3.3/32"), vec![ip("10.0.12.2")]);
    assert_eq!(metric(&sim, 0, "2.2.2.2/32"), Some(11));
    assert_eq!(metric(&sim, 1, "10.0.13.0/30"), Some(40));
    snapshot("instance_triangle", &sim.render());
    // Cut r1 - r2 on both ends (veth down).
    let cut = sim.now;
    sim.set_up(0, "e12", false);
    sim.set_up(1, "e12", false);
    let rerouted = sim
        .run_until_cond(cut + 5_000, |s| {
            gateways(s, 0, "2.2.2.2/32") == vec![ip("10.0.13.2")]
                && gateways(s, 1, "1.1.1.1/32") == vec![ip("10.0.23.2")]
                && metric(s, 2, "10.0.12.0/30").is_none()
        })
        .expect("rerouted");
    // Own router-LSA at once (LSA initial delay 0), SPF at once (initial delay 0), a few
    // 1 ms hops of flooding.
    assert!(rerouted - cut <= 50, "rerouted after {} ms", rerouted - cut);
    assert_eq!(metric(&sim, 0, "2.2.2.2/32"), Some(41));
    // Back up: shortest again within a few Hello exchanges.
    let up = sim.now;
    sim.set_up(0, "e12", true);
    sim.set_up(1, "e12", true);
    let restored = sim
        .run_until_cond(up + 10_000, |s| {
            gateways(s, 0, "2.2.2.2/32") == vec![ip("10.0.12.2")]
                && metric(s, 0, "3.3.3.3/32") == Some(21)
        })
        .expect("restored");
    assert!(restored - up < 1_500, "restored after {} ms", restored - up);
}

#[test]
fn withdrawn_stub_and_flushed_network_lsa_leave_every_database() {
    // r1 and r2 share a broadcast LAN (r2 is DR: higher router ID) and a p2p link; r2 has a
    // passive stub network.
    let mut sim = Sim::new();
    let r1 = sim.router(
        "r1",
        &config(
            "1.1.1.1",
            &[("lan", "cost = 5"), ("p2p", "type = \"point-to-point\"")],
        ),
    );
    let r2cfg = config(
        "2.2.2.2",
        &[("lan", "cost = 5"), ("p2p", "type = \"point-to-point\"")],
    ) + "[interfaces.stub0]\narea = \"0.0.0.0\"\npassive = true\n";
    let r2 = sim.router("r2", &r2cfg);
    sim.iface(r1, "lo", "1.1.1.1/32", true);
    sim.iface(r2, "lo", "2.2.2.2/32", true);
    sim.iface(r1, "lan", "10.1.0.1/24", true);
    sim.iface(r2, "lan", "10.1.0.2/24", true);
    sim.iface(r1, "p2p", "10.0.12.1/30", true);
    sim.iface(r2, "p2p", "10.0.12.2/30", true);
    sim.iface(r2, "stub0", "192.0.2.1/24", true);
    sim.link(&[(r1, "lan"), (r2, "lan")]);
    sim.link(&[(r1, "p2p"), (r2, "p2p")]);
    // Long enough for the LSA throttles to be quiet again.
    sim.run_until(20_000);
    assert_eq!(metric(&sim, r1, "192.0.2.0/24"), Some(15));
    assert_eq!(
        sim.routers[r1].inst.database(Some(LSA_NETWORK), None).len(),
        1
    );
    // The stub network goes away: r1 withdraws it at once.
    let t0 = sim.now;
    sim.set_up(r2, "stub0", false);
    let gone = sim
        .run_until_cond(t0 + 2_000, |s| metric(s, r1, "192.0.2.0/24").is_none())
        .expect("stub withdrawn");
    assert!(gone - t0 <= 10, "withdrawn after {} ms", gone - t0);
    assert!(sim.routers[r1]
        .route_log
        .iter()
        .any(|(_, p, r)| *p == net("192.0.2.0/24") && r.is_none()));
    // r1 leaves the LAN: r2, alone there, flushes its network-LSA (MaxAge), r1 hears the
    // flush over the p2p link, acknowledges, and both remove it.
    sim.set_up(r1, "lan", false);
    let t1 = sim.now;
    let flushed = sim
        .run_until_cond(t1 + 30_000, |s| {
            s.routers[r1]
                .inst
                .database(Some(LSA_NETWORK), None)
                .is_empty()
                && s.routers[r2]
                    .inst
                    .database(Some(LSA_NETWORK), None)
                    .is_empty()
        })
        .expect("network-LSA flushed and removed");
    assert!(flushed - t1 < 10_000, "removed after {} ms", flushed - t1);
    // The LAN is a stub network of r2 now.
    sim.run_for(2_000);
    assert_eq!(metric(&sim, r1, "10.1.0.0/24"), Some(15));
    assert_eq!(gateways(&sim, r1, "10.1.0.0/24"), vec![ip("10.0.12.2")]);
    snapshot("instance_flush", &sim.render());
}

fn hello_from(rid: &str, area: &str, auth: &Auth) -> Vec<u8> {
    encode(
        &Packet {
            router_id: ip(rid),
            area_id: ip(area),
            body: Body::Hello(Hello {
                network_mask: ip("255.255.255.252"),
                hello_interval: 1,
                options: 2,
                priority: 1,
                dead_interval: 4,
                dr: Ipv4Addr::UNSPECIFIED,
                bdr: Ipv4Addr::UNSPECIFIED,
                neighbors: vec![],
            }),
        },
        auth,
        1,
    )
}

#[test]
fn malformed_and_badly_authenticated_packets_are_counted_and_dropped() {
    let md5 = "authentication = { type = \"md5\", key-id = 1, key = \"secret\" }\n";
    let mut sim = p2p_pair(md5, md5);
    sim.run_until(5_000);
    assert_eq!(state_of(&sim, 0, "2.2.2.2"), Some(NbrState::Full));
    assert_eq!(metric(&sim, 0, "2.2.2.2/32"), Some(11));
    let good = Auth::Crypto(vec![oxr_ospf::packet::CryptoKey {
        key_id: 1,
        algo: oxr_ospf::packet::CryptoAlgo::Md5,
        key: b"secret".to_vec(),
    }]);
    let wrong_key = Auth::Crypto(vec![oxr_ospf::packet::CryptoKey {
        key_id: 1,
        algo: oxr_ospf::packet::CryptoAlgo::Md5,
        key: b"guess".to_vec(),
    }]);
    let src = "10.0.12.2";
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("auth-failure", hello_from("9.9.9.9", "0.0.0.0", &wrong_key)),
        (
            "auth-type-mismatch",
            hello_from("9.9.9.9", "0.0.0.0", &Auth::Null),
        ),
        ("wrong-area", hello_from("9.9.9.9", "0.0.0.1", &good)),
        ("truncated", vec![2, 1, 0]),
        ("bad-version", {
            let mut p = hello_from("9.9.9.9", "0.0.0.0", &good);
            p[0] = 3;
            p
        }),
        ("bad-length", {
            let mut p = hello_from("9.9.9.9", "0.0.0.0", &good);
            p[2] = 0xff;
            p
        }),
        ("own-packet", hello_from("1.1.1.1", "0.0.0.0", &good)),
    ];
    for (counter, bytes) in cases {
        let before = sim.routers[0]
            .inst
            .counters()
            .errors
            .get(counter)
            .copied()
            .unwrap_or(0);
        sim.inject(0, "eth0", src, ALL_SPF_ROUTERS, bytes);
        let after = sim.routers[0].inst.counters().errors.get(counter).copied();
        assert_eq!(after, Some(before + 1), "counter {counter}");
    }
    // A replayed packet: an old cryptographic sequence number from the real neighbor.
    let replay = {
        let mut p = Packet {
            router_id: ip("2.2.2.2"),
            area_id: ip("0.0.0.0"),
            body: Body::Hello(Hello {
                network_mask: ip("255.255.255.252"),
                hello_interval: 1,
                options: 2,
                priority: 1,
                dead_interval: 4,
                dr: Ipv4Addr::UNSPECIFIED,
                bdr: Ipv4Addr::UNSPECIFIED,
                neighbors: vec![ip("1.1.1.1")],
            }),
        };
        p.router_id = ip("2.2.2.2");
        encode(&p, &good, 0)
    };
    sim.run_for(2_000);
    sim.inject(0, "eth0", src, ALL_SPF_ROUTERS, replay);
    assert_eq!(
        sim.routers[0].inst.counters().errors.get("auth-sequence"),
        Some(&1)
    );
    // Arbitrary garbage never panics and never disturbs the adjacency.
    let mut x: u32 = 12345;
    for len in 0..300usize {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        sim.inject(0, "eth0", src, ALL_SPF_ROUTERS, bytes);
    }
    sim.run_for(5_000);
    assert_eq!(state_of(&sim, 0, "2.2.2.2"), Some(NbrState::Full));
    assert_eq!(metric(&sim, 0, "2.2.2.2/32"), Some(11));
}

#[test]
fn key_mismatch_never_forms_an_adjacency() {
    let mut sim = p2p_pair(
        "authentication = { type = \"md5\", key-id = 1, key = \"one\" }\n",
        "authentication = { type = \"md5\", key-id = 1, key = \"two\" }\n",
    );
    sim.run_until(10_000);
    assert_eq!(state_of(&sim, 0, "2.2.2.2"), None);
    assert!(sim.routers[0].inst.counters().errors["auth-failure"] >= 9);
    assert!(sim.routers[0].routes.is_empty());
}

#[test]
fn lost_packets_are_retransmitted_until_acknowledged() {
    // Drop every second LS Update from r2 during the first 5 s: the exchange still completes
    // through retransmission.
    let mut sim = p2p_pair("", "");
    let counter = std::cell::Cell::new(0u32);
    let counter = std::rc::Rc::new(counter);
    let c2 = counter.clone();
    sim.drop = Some(Box::new(move |r, _, bytes| {
        if r == 1 && bytes.get(1) == Some(&4) {
            c2.set(c2.get() + 1);
            return c2.get() % 2 == 1;
        }
        false
    }));
    sim.run_until(5_000);
    sim.drop = None;
    sim.run_until(15_000);
    assert!(counter.get() >= 1);
    assert_eq!(state_of(&sim, 0, "2.2.2.2"), Some(NbrState::Full));
    assert_eq!(metric(&sim, 0, "2.2.2.2/32"), Some(11));
    assert_eq!(metric(&sim, 1, "1.1.1.1/32"), Some(11));
    // Nothing left to retransmit.
    assert!(sim.routers.iter().all(|r| r
        .inst
        .neighbors()
        .iter()
        .all(|n| n.retransmit == 0 && n.requests == 0)));
}

#[test]
fn abr_summarises_between_backbone_and_stub_area() {
    // r1 (area 0) - r2 (ABR) - r3 (stub area 1).
    let mut sim = Sim::new();
    let p2p = "type = \"point-to-point\"\nhello-interval = 1\ndead-interval = 4\n";
    let r1 = sim.router(
        "r1",
        &config("1.1.1.1", &[("e12", "type = \"point-to-point\"")]),
    );
    let r2 = sim.router(
        "r2",
        &format!(
            "router-id = \"2.2.2.2\"\n[areas.\"0.0.0.0\"]\n[areas.\"0.0.0.1\"]\nstub = true\n\
             [interfaces.e12]\narea = \"0.0.0.0\"\n{p2p}\
             [interfaces.e23]\narea = \"0.0.0.1\"\n{p2p}"
        ),
    );
    let r3 = sim.router(
        "r3",
        &format!(
            "router-id = \"3.3.3.3\"\n[areas.\"0.0.0.1\"]\nstub = true\n\
             [interfaces.lo]\narea = \"0.0.0.1\"\npassive = true\ncost = 1\n\
             [interfaces.e23]\narea = \"0.0.0.1\"\n{p2p}"
        ),
    );
    sim.iface(r1, "lo", "1.1.1.1/32", true);
    sim.iface(r3, "lo", "3.3.3.3/32", true);
    sim.iface(r1, "e12", "10.0.12.1/30", true);
    sim.iface(r2, "e12", "10.0.12.2/30", true);
    sim.iface(r2, "e23", "10.0.23.1/30", true);
    sim.iface(r3, "e23", "10.0.23.2/30", true);
    sim.link(&[(r1, "e12"), (r2, "e12")]);
    sim.link(&[(r2, "e23"), (r3, "e23")]);
    sim.run_until(10_000);
    // r1 learns r3's loopback as inter-area through r2.
    let r = &sim.routers[r1].routes[&net("3.3.3.3/32")];
    assert_eq!(r.path_type, PathType::InterArea);
    assert_eq!(r.metric, 21);
    // r3 gets the default route from the ABR and r1's loopback as inter-area.
    let d = &sim.routers[r3].routes[&net("0.0.0.0/0")];
    assert_eq!((d.path_type, d.metric), (PathType::InterArea, 11));
    assert_eq!(metric(&sim, r3, "1.1.1.1/32"), Some(21));
    snapshot("instance_abr", &sim.render());
}

fn redistribute(sim: &mut Sim, r: usize, add: &[(&str, &str)], withdraw: &[&str]) {
    sim.input(
        r,
        oxr_ospf::instance::Input::Redistribute {
            add: add.iter().map(|(p, n)| (p.to_string(), net(n))).collect(),
            withdraw: withdraw.iter().map(|n| net(n)).collect(),
        },
    );
}

#[test]
fn redistributed_static_routes_become_external_routes_on_the_neighbor() {
    use oxr_ospf::packet::lsa::{router_flags, LsaBody, LSA_EXTERNAL, LSA_ROUTER};
    let p2p = "type = \"point-to-point\"\ncost = 10\n";
    let r1_cfg = |mtype: u8| {
        format!(
            "{}[redistribute.static]\nmetric = 20\nmetric-type = {mtype}\ntag = 7\n",
            config("1.1.1.1", &[("eth0", p2p)])
        )
    };
    let mut sim = Sim::new();
    let a = sim.router("r1", &r1_cfg(1));
    let b = sim.router("r2", &config("2.2.2.2", &[("eth0", p2p)]));
    sim.iface(a, "lo", "1.1.1.1/32", true);
    sim.iface(b, "lo", "2.2.2.2/32", true);
    sim.p2p((a, "eth0", "10.0.12.1/30"), (b, "eth0", "10.0.12.2/30"));
    // BGP is not configured for redistribution: only the static route is announced.
    redistribute(
        &mut sim,
        a,
        &[("static", "192.0.2.0/24"), ("bgp", "198.51.100.0/24")],
        &[],
    );
    sim.run_until_cond(10_000, |s| metric(s, b, "192.0.2.0/24").is_some())
        .expect("external route learned");
    let r = &sim.routers[b].routes[&net("192.0.2.0/24")];
    assert_eq!(r.path_type, PathType::External1);
    // E1: the link cost to the ASBR plus the external metric.
    assert_eq!(r.metric, 30);
    assert_eq!(gateways(&sim, b, "192.0.2.0/24"), vec![ip("10.0.12.1")]);
    assert_eq!(metric(&sim, b, "198.51.100.0/24"), None);
    // r1 is an ASBR: E bit in its router LSA; the type-5 LSA carries the tag.
    let db = sim.routers[b]
        .inst
        .database(Some(LSA_ROUTER), Some(ip("1.1.1.1")));
    let LsaBody::Router(rl) = &db[0].body else {
        panic!("router LSA expected")
    };
    assert_ne!(rl.flags & router_flags::E, 0);
    let ext = sim.routers[b].inst.database(Some(LSA_EXTERNAL), None);
    assert_eq!(ext.len(), 1);
    let LsaBody::External(e) = &ext[0].body else {
        panic!("external LSA expected")
    };
    assert_eq!((e.type2, e.metric, e.tag), (false, 20, 7));
    assert_eq!(ext[0].header.lsid, ip("192.0.2.0"));

    // Metric type 2: the external metric alone.
    let cfg: oxr_ospf::config::OspfConfig = toml::from_str(&r1_cfg(2)).unwrap();
    sim.input(a, oxr_ospf::instance::Input::Config(Some(cfg)));
    sim.run_until_cond(sim.now + 10_000, |s| {
        s.routers[b]
            .routes
            .get(&net("192.0.2.0/24"))
            .is_some_and(|r| r.path_type == PathType::External2)
    })
    .expect("E2 route");
    assert_eq!(metric(&sim, b, "192.0.2.0/24"), Some(20));

    // Withdrawn: the LSA is flushed, the route goes, and r1 is no longer an ASBR.
    redistribute(&mut sim, a, &[], &["192.0.2.0/24"]);
    sim.run_until_cond(sim.now + 10_000, |s| metric(s, b, "192.0.2.0/24").is_none())
        .expect("external route withdrawn");
    sim.run_for(7_000);
    let db = sim.routers[b]
        .inst
        .database(Some(LSA_ROUTER), Some(ip("1.1.1.1")));
    let LsaBody::Router(rl) = &db[0].body else {
        panic!("router LSA expected")
    };
    assert_eq!(rl.flags & router_flags::E, 0);
}

/// An ABR's router LSAs of two areas share one key (type 1, its router ID twice). A new
/// instance in one area must not take the other area's instance off the retransmission
/// lists there: a lost flood into area 1 is still retransmitted after the ABR re-originates
/// its area-0 router LSA (the regression fixed by scoping `remove_from_rxmt`).
#[test]
fn abr_retransmits_an_area_lsa_after_reoriginating_the_same_key_in_another_area() {
    use oxr_ospf::packet::lsa::{LsaBody, LSA_ROUTER};
    let p2p = "type = \"point-to-point\"\nhello-interval = 1\ndead-interval = 4\nretransmit-interval = 2\n";
    let r2_cfg = |c12: u16, c23: u16| {
        format!(
            "router-id = \"2.2.2.2\"\n[areas.\"0.0.0.0\"]\n[areas.\"0.0.0.1\"]\n\
             [interfaces.e12]\narea = \"0.0.0.0\"\ncost = {c12}\n{p2p}\
             [interfaces.e23]\narea = \"0.0.0.1\"\ncost = {c23}\n{p2p}"
        )
    };
    let mut sim = Sim::new();
    let r1 = sim.router(
        "r1",
        &config("1.1.1.1", &[("e12", "type = \"point-to-point\"")]),
    );
    let r2 = sim.router("r2", &r2_cfg(10, 10));
    let r3 = sim.router(
        "r3",
        &format!("router-id = \"3.3.3.3\"\n[areas.\"0.0.0.1\"]\n[interfaces.e23]\narea = \"0.0.0.1\"\n{p2p}"),
    );
    sim.iface(r1, "lo", "1.1.1.1/32", true);
    sim.iface(r1, "e12", "10.0.12.1/30", true);
    sim.iface(r2, "e12", "10.0.12.2/30", true);
    sim.iface(r2, "e23", "10.0.23.1/30", true);
    sim.iface(r3, "e23", "10.0.23.2/30", true);
    sim.link(&[(r1, "e12"), (r2, "e12")]);
    sim.link(&[(r2, "e23"), (r3, "e23")]);
    // Long enough for every LSA throttle to be back in quiet (5 s hold-down).
    sim.run_until(20_000);
    assert_eq!(state_of(&sim, r3, "2.2.2.2"), Some(NbrState::Full));
    let r2_router_lsa = |sim: &Sim, r: usize| {
        sim.routers[r]
            .inst
            .database(Some(LSA_ROUTER), Some(ip("2.2.2.2")))
            .into_iter()
            .find(|l| l.area == Some(ip("0.0.0.1")))
            .map(|l| {
                let LsaBody::Router(b) = &l.body else {
                    panic!("router LSA")
                };
                (l.header.seq, b.links.iter().map(|l| l.metric).max())
            })
    };
    // r2's LS Updates into area 1 are lost while its area-1 router LSA changes (e23's
    // cost), then its area-0 router LSA changes too (e12's cost).
    sim.drop = Some(Box::new(move |r, ifname, bytes| {
        r == r2 && ifname == "e23" && bytes.get(1) == Some(&4)
    }));
    sim.input(
        r2,
        Input::Config(Some(toml::from_str(&r2_cfg(10, 30)).unwrap())),
    );
    sim.run_for(100);
    sim.input(
        r2,
        Input::Config(Some(toml::from_str(&r2_cfg(40, 30)).unwrap())),
    );
    sim.run_for(100);
    sim.drop = None;
    let own = r2_router_lsa(&sim, r2).unwrap();
    assert_eq!(own.1, Some(30));
    assert_ne!(r2_router_lsa(&sim, r3), Some(own), "the flood was not lost");
    // The retransmission (RxmtInterval 2 s) brings r3 the area-1 instance.
    sim.run_for(3_000);
    assert_eq!(r2_router_lsa(&sim, r3), Some(own));
    assert!(sim.routers[r2].inst.counters().lsa_retransmitted >= 1);
}

/// 13 (5a): a newer instance arriving within MinLSArrival of the previous one is not lost
/// until the sender's retransmission (RxmtInterval) but processed when MinLSArrival ends.
#[test]
fn an_instance_within_min_ls_arrival_is_installed_when_it_ends() {
    use oxr_ospf::packet::lsa::{LsaBody, LSA_EXTERNAL};
    let p2p = "type = \"point-to-point\"\ncost = 10\n";
    // No LSA-generation throttle at r1: two instances 5 ms apart.
    let r1_cfg = |metric: u32| {
        format!(
            "{}[throttle.lsa]\ninitial-delay = 0\nshort-delay = 0\nlong-delay = 0\n\
             hold-down = 1000\ntime-to-learn = 100\n\
             [redistribute.static]\nmetric = {metric}\n",
            config("1.1.1.1", &[("eth0", p2p)])
        )
    };
    let mut sim = Sim::new();
    let a = sim.router("r1", &r1_cfg(20));
    let b = sim.router("r2", &config("2.2.2.2", &[("eth0", p2p)]));
    sim.iface(a, "lo", "1.1.1.1/32", true);
    sim.iface(b, "lo", "2.2.2.2/32", true);
    sim.p2p((a, "eth0", "10.0.12.1/30"), (b, "eth0", "10.0.12.2/30"));
    sim.run_until(10_000);
    redistribute(&mut sim, a, &[("static", "192.0.2.0/24")], &[]);
    sim.run_for(5);
    sim.input(a, Input::Config(Some(toml::from_str(&r1_cfg(30)).unwrap())));
    let metric_at_r2 = |sim: &Sim| {
        sim.routers[b]
            .inst
            .database(Some(LSA_EXTERNAL), None)
            .iter()
            .find_map(|l| match &l.body {
                LsaBody::External(e) => Some(e.metric),
                _ => None,
            })
    };
    // MinLSArrival (25 ms) later, well before the 2 s RxmtInterval.
    sim.run_for(100);
    assert_eq!(metric_at_r2(&sim), Some(30));
    assert!(sim.routers[b].inst.counters().lsa_deferred >= 1);
    assert_eq!(sim.routers[a].inst.counters().lsa_retransmitted, 0);
}
