//! NSSA (RFC 3101) in the simulated network, no sockets: type-7 origination with the P-bit
//! and a forwarding address, the N-bit in Hellos, type-7 routes, translation to type-5 by
//! the elected (or always-translating) border router, the type-7 default from the ABR.
//!
//! ```text
//!   r1 (area 0) --e12-- r2 (ABR) --e23-- r3 (NSSA 0.0.0.1, redistributes 192.0.2.0/24)
//!        \                                  /
//!         +---e14---- r4 (ABR) ----e43-----+        (second ABR only in the election test)
//! ```

mod sim;

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use oxr_ospf::instance::Input;
use oxr_ospf::packet::lsa::{
    options, router_flags, LsaBody, LSA_EXTERNAL, LSA_NSSA, LSA_ROUTER, LSA_SUMMARY_NET,
};
use oxr_ospf::route::PathType;
use sim::{snapshot, Sim};

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

const P2P: &str =
    "type = \"point-to-point\"\nhello-interval = 1\ndead-interval = 4\nretransmit-interval = 2\n";

/// Backbone router: loopback and the given area-0 interfaces.
fn backbone(rid: &str, ifaces: &[&str]) -> String {
    let mut s = format!(
        "router-id = \"{rid}\"\n[areas.\"0.0.0.0\"]\n\
         [interfaces.lo]\narea = \"0.0.0.0\"\npassive = true\ncost = 1\n"
    );
    for i in ifaces {
        s.push_str(&format!("[interfaces.{i}]\narea = \"0.0.0.0\"\n{P2P}"));
    }
    s
}

/// `[areas."0.0.0.1"]` as an NSSA with extra lines.
fn nssa_area(extra: &str) -> String {
    format!("[areas.\"0.0.0.1\"]\nnssa = true\n{extra}\n")
}

/// ABR between `bb` (area 0) and `ns` (the NSSA).
fn abr(rid: &str, bb: &str, ns: &str, area_extra: &str) -> String {
    format!(
        "router-id = \"{rid}\"\n[areas.\"0.0.0.0\"]\n{}\
         [interfaces.{bb}]\narea = \"0.0.0.0\"\n{P2P}\
         [interfaces.{ns}]\narea = \"0.0.0.1\"\n{P2P}",
        nssa_area(area_extra)
    )
}

/// The NSSA's internal router, redistributing static routes (type 2, metric 20).
fn internal(rid: &str, ifaces: &[&str], area_extra: &str) -> String {
    let mut s = format!(
        "router-id = \"{rid}\"\n{}\
         [interfaces.lo]\narea = \"0.0.0.1\"\npassive = true\ncost = 1\n\
         [redistribute.static]\nmetric = 20\n",
        nssa_area(area_extra)
    );
    for i in ifaces {
        s.push_str(&format!("[interfaces.{i}]\narea = \"0.0.0.1\"\n{P2P}"));
    }
    s
}

fn redistribute(sim: &mut Sim, r: usize, prefix: &str) {
    sim.input(
        r,
        Input::Redistribute {
            add: vec![("static".into(), net(prefix))],
            withdraw: vec![],
        },
    );
}

/// r1 - r2 - r3, r3 redistributing 192.0.2.0/24.
fn line(area_extra: &str) -> Sim {
    let mut sim = Sim::new();
    let r1 = sim.router("r1", &backbone("1.1.1.1", &["e12"]));
    let r2 = sim.router("r2", &abr("2.2.2.2", "e12", "e23", area_extra));
    let r3 = sim.router("r3", &internal("3.3.3.3", &["e23"], area_extra));
    sim.iface(r1, "lo", "1.1.1.1/32", true);
    sim.iface(r3, "lo", "3.3.3.3/32", true);
    sim.iface(r1, "e12", "10.0.12.1/30", true);
    sim.iface(r2, "e12", "10.0.12.2/30", true);
    sim.iface(r2, "e23", "10.0.23.1/30", true);
    sim.iface(r3, "e23", "10.0.23.2/30", true);
    sim.link(&[(r1, "e12"), (r2, "e12")]);
    sim.link(&[(r2, "e23"), (r3, "e23")]);
    redistribute(&mut sim, r3, "192.0.2.0/24");
    sim
}

fn external(
    sim: &Sim,
    r: usize,
    ls_type: u8,
    adv: &str,
) -> Vec<(u8, oxr_ospf::packet::lsa::ExternalLsa)> {
    sim.routers[r]
        .inst
        .database(Some(ls_type), None)
        .into_iter()
        .filter(|l| l.header.adv_router == ip(adv) && !l.header.is_maxage())
        .filter_map(|l| match l.body {
            LsaBody::External(e) => Some((l.header.options, e)),
            _ => None,
        })
        .collect()
}

#[test]
fn type7_is_originated_translated_and_routed_across_the_backbone() {
    let mut sim = line("");
    let (r1, r2, r3) = (0, 1, 2);
    sim.run_until_cond(15_000, |s| {
        s.routers[r1].routes.contains_key(&net("192.0.2.0/24"))
    })
    .expect("the NSSA's external reaches the backbone");
    sim.run_for(3_000);
    // r3: a type-7 with the P-bit and its loopback (passive) as forwarding address.
    let t7 = external(&sim, r2, LSA_NSSA, "3.3.3.3");
    assert_eq!(t7.len(), 1, "{t7:?}");
    assert_ne!(t7[0].0 & options::NP, 0);
    assert_eq!(t7[0].1.forwarding, ip("3.3.3.3"));
    // r2 uses it (E2 20 through r3) and translates it: a type-5 from r2 with the same
    // forwarding address, in r1's database; none inside the NSSA.
    let r = &sim.routers[r2].routes[&net("192.0.2.0/24")];
    assert_eq!((r.path_type, r.metric), (PathType::External2, 20));
    let t5 = external(&sim, r1, LSA_EXTERNAL, "2.2.2.2");
    assert_eq!(t5.len(), 1, "{t5:?}");
    assert_eq!((t5[0].1.metric, t5[0].1.type2), (20, true));
    assert_eq!(t5[0].1.forwarding, ip("3.3.3.3"));
    assert!(sim.routers[r3]
        .inst
        .database(Some(LSA_EXTERNAL), None)
        .is_empty());
    // r1 routes it through r2 (the forwarding address is an inter-area route).
    let r = &sim.routers[r1].routes[&net("192.0.2.0/24")];
    assert_eq!((r.path_type, r.metric), (PathType::External2, 20));
    assert_eq!(r.nexthops[0].gateway, Some(ip("10.0.12.2")));
    // r2 is an ASBR in the backbone (E, translating) and in the NSSA (candidate: no Nt);
    // r3 is an ASBR in the NSSA, not summarised into the backbone (no type 4).
    let flags = |r: usize, adv: &str| {
        sim.routers[r]
            .inst
            .database(Some(LSA_ROUTER), Some(ip(adv)))
            .iter()
            .map(|l| match &l.body {
                LsaBody::Router(b) => (l.area, b.flags),
                _ => unreachable!(),
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        flags(r1, "2.2.2.2"),
        vec![(Some(ip("0.0.0.0")), router_flags::B | router_flags::E)]
    );
    // E in the NSSA too: it originates the type-7 default there.
    assert_eq!(
        flags(r3, "2.2.2.2"),
        vec![(Some(ip("0.0.0.1")), router_flags::B | router_flags::E)]
    );
    assert_eq!(
        flags(r3, "3.3.3.3"),
        vec![(Some(ip("0.0.0.1")), router_flags::E)]
    );
    // r3: the type-7 default from r2 (E1, 10 + default cost 1), the backbone as inter-area.
    let d = &sim.routers[r3].routes[&net("0.0.0.0/0")];
    assert_eq!((d.path_type, d.metric), (PathType::External1, 11));
    let lo1 = &sim.routers[r3].routes[&net("1.1.1.1/32")];
    assert_eq!((lo1.path_type, lo1.metric), (PathType::InterArea, 21));
    assert!(sim.routers[r1]
        .inst
        .database(Some(oxr_ospf::packet::lsa::LSA_SUMMARY_ASBR), None)
        .is_empty());
    // (An initial DD of the slave-to-be crossing the master's is dropped by design.)
    for r in &sim.routers {
        let mut errors = r.inst.counters().errors.clone();
        errors.remove("dd-negotiation");
        assert!(
            errors.is_empty(),
            "{}: {:?}",
            r.name,
            r.inst.counters().errors
        );
    }
    snapshot("nssa_line", &sim.render());

    // Withdrawn at r3: the type-7, the translation and r1's route go.
    sim.input(
        r3,
        Input::Redistribute {
            add: vec![],
            withdraw: vec![net("192.0.2.0/24")],
        },
    );
    sim.run_until_cond(sim.now + 10_000, |s| {
        !s.routers[r1].routes.contains_key(&net("192.0.2.0/24"))
    })
    .expect("withdrawn across the backbone");
    sim.run_for(2_000);
    assert!(external(&sim, r1, LSA_EXTERNAL, "2.2.2.2").is_empty());
}

#[test]
fn no_summary_nssa_gets_a_type3_default_and_no_summaries() {
    let mut sim = line("no-summary = true\ndefault-cost = 5");
    let r3 = 2;
    sim.run_until_cond(15_000, |s| {
        s.routers[0].routes.contains_key(&net("192.0.2.0/24"))
    })
    .expect("translated all the same");
    sim.run_for(3_000);
    let d = &sim.routers[r3].routes[&net("0.0.0.0/0")];
    assert_eq!((d.path_type, d.metric), (PathType::InterArea, 15));
    assert!(!sim.routers[r3].routes.contains_key(&net("1.1.1.1/32")));
    let summaries = sim.routers[r3].inst.database(Some(LSA_SUMMARY_NET), None);
    assert_eq!(summaries.len(), 1);
    // No type-7 default from the ABR then.
    assert!(external(&sim, r3, LSA_NSSA, "2.2.2.2").is_empty());
}

#[test]
fn hellos_with_a_mismatched_n_bit_form_no_adjacency() {
    // r3 thinks area 0.0.0.1 is a normal area; r2 has it as an NSSA.
    let mut sim = Sim::new();
    let r2 = sim.router("r2", &abr("2.2.2.2", "e12", "e23", ""));
    let r3 = sim.router(
        "r3",
        "router-id = \"3.3.3.3\"\n[areas.\"0.0.0.1\"]\n\
         [interfaces.e23]\narea = \"0.0.0.1\"\ntype = \"point-to-point\"\n\
         hello-interval = 1\ndead-interval = 4\n",
    );
    sim.p2p((r2, "e23", "10.0.23.1/30"), (r3, "e23", "10.0.23.2/30"));
    sim.run_until(5_000);
    for r in [r2, r3] {
        assert!(sim.routers[r].inst.neighbors().is_empty());
        assert!(sim.routers[r].inst.counters().errors["hello-options-mismatch"] >= 3);
    }
}

/// Two ABRs (r2 2.2.2.2, r4 4.4.4.4) between the backbone and the NSSA.
fn two_abrs(r2_area_extra: &str) -> Sim {
    let mut sim = Sim::new();
    let r1 = sim.router("r1", &backbone("1.1.1.1", &["e12", "e14"]));
    let r2 = sim.router("r2", &abr("2.2.2.2", "e12", "e23", r2_area_extra));
    let r3 = sim.router("r3", &internal("3.3.3.3", &["e23", "e43"], ""));
    let r4 = sim.router("r4", &abr("4.4.4.4", "e14", "e43", ""));
    sim.iface(r1, "lo", "1.1.1.1/32", true);
    sim.iface(r3, "lo", "3.3.3.3/32", true);
    for (r, i, a) in [
        (r1, "e12", "10.0.12.1/30"),
        (r2, "e12", "10.0.12.2/30"),
        (r2, "e23", "10.0.23.1/30"),
        (r3, "e23", "10.0.23.2/30"),
        (r1, "e14", "10.0.14.1/30"),
        (r4, "e14", "10.0.14.2/30"),
        (r4, "e43", "10.0.43.1/30"),
        (r3, "e43", "10.0.43.2/30"),
    ] {
        sim.iface(r, i, a, true);
    }
    sim.link(&[(r1, "e12"), (r2, "e12")]);
    sim.link(&[(r2, "e23"), (r3, "e23")]);
    sim.link(&[(r1, "e14"), (r4, "e14")]);
    sim.link(&[(r4, "e43"), (r3, "e43")]);
    redistribute(&mut sim, r3, "192.0.2.0/24");
    sim
}

#[test]
fn the_highest_router_id_translates_unless_another_always_does() {
    // Candidates both: r4 (the higher router ID) translates, r2 does not.
    let mut sim = two_abrs("");
    sim.run_until(15_000);
    assert_eq!(external(&sim, 0, LSA_EXTERNAL, "4.4.4.4").len(), 1);
    assert!(external(&sim, 0, LSA_EXTERNAL, "2.2.2.2").is_empty());
    assert!(sim.routers[0].routes.contains_key(&net("192.0.2.0/24")));

    // r2 translating always: Nt in its NSSA router LSA, and r4 steps back.
    let mut sim = two_abrs("nssa-translator = \"always\"");
    sim.run_until(15_000);
    assert_eq!(external(&sim, 0, LSA_EXTERNAL, "2.2.2.2").len(), 1);
    assert!(external(&sim, 0, LSA_EXTERNAL, "4.4.4.4").is_empty());
    let r2_in_nssa = sim.routers[2]
        .inst
        .database(Some(LSA_ROUTER), Some(ip("2.2.2.2")));
    let LsaBody::Router(b) = &r2_in_nssa[0].body else {
        panic!("router LSA")
    };
    assert_ne!(b.flags & router_flags::NT, 0);
    snapshot("nssa_two_abrs", &sim.render());
}
