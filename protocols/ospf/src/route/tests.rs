//! Snapshot tests: a small topology of LSAs in, the routing table out.
//!
//! Expected tables live in `tests/snapshots/*.txt`; run with `UPDATE_SNAPSHOTS=1` to rewrite
//! them after an intended change, and review the diff.

use std::fmt::Write as _;

use super::*;
use crate::packet::lsa::*;

pub(crate) fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn rlsa(rid: &str, flags: u8, links: Vec<RouterLink>) -> Lsa {
    Lsa::new(
        options::E,
        LSA_ROUTER,
        ip(rid),
        ip(rid),
        1,
        LsaBody::Router(RouterLsa { flags, links }),
    )
}

fn link(t: LinkType, id: &str, data: &str, metric: u16) -> RouterLink {
    RouterLink {
        link_id: ip(id),
        link_data: ip(data),
        link_type: t,
        metric,
        tos: vec![],
    }
}

fn p2p(nbr: &str, my_addr: &str, metric: u16) -> RouterLink {
    link(LinkType::PointToPoint, nbr, my_addr, metric)
}

fn stub(p: &str, metric: u16) -> RouterLink {
    let n = net(p);
    link(
        LinkType::Stub,
        &n.network().to_string(),
        &n.netmask().to_string(),
        metric,
    )
}

fn transit(dr: &str, my_addr: &str, metric: u16) -> RouterLink {
    link(LinkType::Transit, dr, my_addr, metric)
}

fn nlsa(dr: &str, adv: &str, mask: &str, attached: &[&str]) -> Lsa {
    Lsa::new(
        options::E,
        LSA_NETWORK,
        ip(dr),
        ip(adv),
        1,
        LsaBody::Network(NetworkLsa {
            mask: ip(mask),
            attached: attached.iter().map(|a| ip(a)).collect(),
        }),
    )
}

fn summary(t: u8, p: &str, adv: &str, metric: u32) -> Lsa {
    let (id, mask) = if t == LSA_SUMMARY_ASBR {
        (ip(p), Ipv4Addr::UNSPECIFIED)
    } else {
        let n = net(p);
        (n.network(), n.netmask())
    };
    Lsa::new(
        0,
        t,
        id,
        ip(adv),
        1,
        LsaBody::Summary(SummaryLsa {
            mask,
            metric,
            tos: vec![],
        }),
    )
}

fn ext(t: u8, p: &str, adv: &str, type2: bool, metric: u32, fwd: &str) -> Lsa {
    let n = net(p);
    Lsa::new(
        options::E,
        t,
        n.network(),
        ip(adv),
        1,
        LsaBody::External(ExternalLsa {
            mask: n.netmask(),
            type2,
            metric,
            forwarding: ip(fwd),
            tag: 7,
            tos: vec![],
        }),
    )
}

fn iface(ifindex: u32, p: &str) -> LocalIface {
    LocalIface {
        ifindex,
        prefix: p.parse().unwrap(),
    }
}

pub(crate) fn render(t: &RoutingTable) -> String {
    let mut s = String::new();
    for (p, r) in t.sorted() {
        let nh: Vec<String> = r
            .nexthops
            .iter()
            .map(|n| format!("{}%{}", n.addr, n.ifindex))
            .collect();
        let area = r.area.map_or("-".to_string(), |a| a.to_string());
        writeln!(
            s,
            "{p:<18} {:?} area={area} cost={} t2={} via {}",
            r.path_type,
            r.cost,
            r.type2_cost,
            nh.join(",")
        )
        .unwrap();
    }
    let mut routers: Vec<_> = t.routers.iter().collect();
    routers.sort_by_key(|(k, _)| **k);
    for ((a, rid), rr) in routers {
        let nh: Vec<String> = rr
            .nexthops
            .iter()
            .map(|n| format!("{}%{}", n.addr, n.ifindex))
            .collect();
        writeln!(
            s,
            "router {rid} area={a} {:?} cost={} abr={} asbr={} via {}",
            rr.path_type,
            rr.cost,
            rr.abr,
            rr.asbr,
            nh.join(",")
        )
        .unwrap();
    }
    s
}

pub(crate) fn check_snapshot(name: &str, got: &str) {
    let path = format!("{}/tests/snapshots/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing {path}; run with UPDATE_SNAPSHOTS=1 and review"));
    assert_eq!(got, want, "snapshot {name} differs");
}

/// Area 0 seen from R1 (1.1.1.1):
///
/// ```text
///            10.0.12.0/24 (R1 is DR)            
///   R1 ---------+--------------+ R2 --10-- R5 (10.5.5.0/24 +1)
///   |           |                          |  \
///   | p2p 10    +-------------- R3 --10----+   10
///   |                           (ABR)          \
///   R4 (ASBR) ----------------------10--------- R5
/// ```
///
/// R5 is reached at cost 20 three ways: via R2 and R3 over the LAN, and via R4.
fn area0() -> (Vec<Lsa>, Vec<LocalIface>) {
    let lsas = vec![
        rlsa(
            "1.1.1.1",
            0,
            vec![
                transit("10.0.12.1", "10.0.12.1", 10),
                p2p("4.4.4.4", "10.0.14.1", 10),
                stub("10.0.14.0/30", 10),
                stub("1.1.1.1/32", 0),
            ],
        ),
        rlsa(
            "2.2.2.2",
            0,
            vec![
                transit("10.0.12.1", "10.0.12.2", 10),
                p2p("5.5.5.5", "10.0.25.2", 10),
                stub("2.2.2.2/32", 0),
            ],
        ),
        rlsa(
            "3.3.3.3",
            router_flags::B,
            vec![
                transit("10.0.12.1", "10.0.12.3", 10),
                p2p("5.5.5.5", "10.0.35.3", 10),
            ],
        ),
        rlsa(
            "4.4.4.4",
            router_flags::E,
            vec![
                p2p("1.1.1.1", "10.0.14.2", 10),
                stub("10.0.14.0/30", 10),
                p2p("5.5.5.5", "10.0.45.4", 10),
            ],
        ),
        rlsa(
            "5.5.5.5",
            0,
            vec![
                p2p("2.2.2.2", "10.0.25.5", 10),
                p2p("3.3.3.3", "10.0.35.5", 10),
                p2p("4.4.4.4", "10.0.45.5", 10),
                stub("10.5.5.0/24", 1),
            ],
        ),
        nlsa(
            "10.0.12.1",
            "1.1.1.1",
            "255.255.255.0",
            &["1.1.1.1", "2.2.2.2", "3.3.3.3"],
        ),
        // From ABR R3: area 1's network, and an ASBR (9.9.9.9) in area 1.
        summary(LSA_SUMMARY_NET, "172.16.0.0/16", "3.3.3.3", 5),
        summary(LSA_SUMMARY_NET, "10.5.5.0/24", "3.3.3.3", 1),
        summary(LSA_SUMMARY_ASBR, "9.9.9.9", "3.3.3.3", 7),
        // A summary from a router that is not an ABR is ignored.
        summary(LSA_SUMMARY_NET, "172.17.0.0/16", "5.5.5.5", 1),
        // An unreachable one (LSInfinity) too.
        summary(LSA_SUMMARY_NET, "172.18.0.0/16", "3.3.3.3", LS_INFINITY),
    ];
    let ifaces = vec![
        iface(1, "10.0.12.1/24"),
        iface(2, "10.0.14.1/30"),
        iface(3, "1.1.1.1/32"),
    ];
    (lsas, ifaces)
}

fn externals() -> Vec<Lsa> {
    vec![
        ext(LSA_EXTERNAL, "192.0.2.0/24", "4.4.4.4", true, 20, "0.0.0.0"),
        ext(
            LSA_EXTERNAL,
            "198.51.100.0/24",
            "4.4.4.4",
            false,
            5,
            "0.0.0.0",
        ),
        // Same prefix from the inter-area ASBR 9.9.9.9 with a lower type 2 metric wins.
        ext(
            LSA_EXTERNAL,
            "203.0.113.0/24",
            "4.4.4.4",
            true,
            50,
            "0.0.0.0",
        ),
        ext(
            LSA_EXTERNAL,
            "203.0.113.0/24",
            "9.9.9.9",
            true,
            30,
            "0.0.0.0",
        ),
        // Forwarding address on R5's stub network: routed via the stub route.
        ext(
            LSA_EXTERNAL,
            "100.64.0.0/10",
            "4.4.4.4",
            true,
            1,
            "10.5.5.9",
        ),
        // Forwarding address on our own LAN: next hop is the forwarding address itself.
        ext(
            LSA_EXTERNAL,
            "100.128.0.0/10",
            "4.4.4.4",
            false,
            1,
            "10.0.12.7",
        ),
        // Unknown ASBR: no route.
        ext(
            LSA_EXTERNAL,
            "100.192.0.0/10",
            "8.8.8.8",
            true,
            1,
            "0.0.0.0",
        ),
        // External for a prefix that has an intra-area route: ignored.
        ext(LSA_EXTERNAL, "10.5.5.0/24", "4.4.4.4", false, 1, "0.0.0.0"),
    ]
}

#[test]
fn area0_routing_table_snapshot() {
    let (lsas, ifaces) = area0();
    let ext = externals();
    let areas = [AreaInput {
        area: BACKBONE,
        nssa: false,
        lsas: lsas.iter().collect(),
        ifaces,
    }];
    let t = compute(ip("1.1.1.1"), &areas, ext.iter());
    // The three-way ECMP is the point of the topology: assert it outright too.
    let r5 = &t.networks[&net("10.5.5.0/24")];
    assert_eq!(r5.cost, 21);
    assert_eq!(r5.nexthops.len(), 3, "{r5:?}");
    check_snapshot("area0", &render(&t));
}

#[test]
fn stub_area_gets_default_and_no_externals() {
    // R1 is internal to stub area 0.0.0.1; ABR R2 announces the default and one network.
    let area1 = ip("0.0.0.1");
    let lsas = [
        rlsa(
            "1.1.1.1",
            0,
            vec![p2p("2.2.2.2", "10.1.0.1", 5), stub("10.1.0.0/30", 5)],
        ),
        rlsa(
            "2.2.2.2",
            router_flags::B,
            vec![p2p("1.1.1.1", "10.1.0.2", 5), stub("10.1.0.0/30", 5)],
        ),
        summary(LSA_SUMMARY_NET, "0.0.0.0/0", "2.2.2.2", 1),
        summary(LSA_SUMMARY_NET, "10.99.0.0/16", "2.2.2.2", 30),
    ];
    let areas = [AreaInput {
        area: area1,
        nssa: false,
        lsas: lsas.iter().collect(),
        ifaces: vec![iface(1, "10.1.0.1/30")],
    }];
    // No type-5 LSAs exist in a stub area's database.
    let t = compute(ip("1.1.1.1"), &areas, std::iter::empty());
    check_snapshot("stub_area", &render(&t));
    let d = &t.networks[&net("0.0.0.0/0")];
    assert_eq!(d.path_type, PathType::InterArea);
    assert_eq!(d.cost, 6);
    assert_eq!(
        d.nexthops,
        vec![NextHop {
            addr: ip("10.1.0.2"),
            ifindex: 1
        }]
    );
}

#[test]
fn nssa_type7_routes_are_used_inside_the_nssa() {
    let a = ip("0.0.0.2");
    let lsas = [
        rlsa("1.1.1.1", 0, vec![p2p("2.2.2.2", "10.2.0.1", 5)]),
        rlsa(
            "2.2.2.2",
            router_flags::E,
            vec![p2p("1.1.1.1", "10.2.0.2", 5)],
        ),
        ext(LSA_NSSA, "192.168.50.0/24", "2.2.2.2", false, 3, "0.0.0.0"),
    ];
    let areas = [AreaInput {
        area: a,
        nssa: true,
        lsas: lsas.iter().collect(),
        ifaces: vec![iface(1, "10.2.0.1/30")],
    }];
    let t = compute(ip("1.1.1.1"), &areas, std::iter::empty());
    let r = &t.networks[&net("192.168.50.0/24")];
    assert_eq!((r.path_type, r.cost), (PathType::External1, 8));
}

#[test]
fn one_way_links_are_not_used() {
    // R2 claims a link to R3, R3 does not link back: R3 is unreachable.
    let lsas = [
        rlsa("1.1.1.1", 0, vec![p2p("2.2.2.2", "10.0.0.1", 1)]),
        rlsa(
            "2.2.2.2",
            0,
            vec![p2p("1.1.1.1", "10.0.0.2", 1), p2p("3.3.3.3", "10.0.1.2", 1)],
        ),
        rlsa("3.3.3.3", 0, vec![stub("10.3.0.0/16", 1)]),
    ];
    let tree = spf(ip("1.1.1.1"), lsas.iter(), &[iface(1, "10.0.0.1/30")]);
    let ids: Vec<_> = tree.reached.iter().map(|r| r.id).collect();
    assert_eq!(
        ids,
        vec![
            VertexId::Router(ip("1.1.1.1")),
            VertexId::Router(ip("2.2.2.2"))
        ]
    );
    assert_eq!(
        tree.reached[1].nexthops,
        vec![NextHop {
            addr: ip("10.0.0.2"),
            ifindex: 1
        }]
    );
}

#[test]
fn abr_summarises_into_backbone_stub_and_totally_stubby_areas() {
    let mut t = RoutingTable::default();
    let r = |pt, area: &str, cost| Route {
        path_type: pt,
        cost,
        type2_cost: 0,
        area: Some(ip(area)),
        tag: 0,
        nexthops: vec![],
    };
    t.networks
        .insert(net("10.0.0.0/24"), r(PathType::IntraArea, "0.0.0.0", 10));
    t.networks
        .insert(net("10.1.0.0/24"), r(PathType::IntraArea, "0.0.0.1", 20));
    t.networks
        .insert(net("10.9.0.0/24"), r(PathType::InterArea, "0.0.0.0", 40));
    t.networks.insert(
        net("192.0.2.0/24"),
        Route {
            path_type: PathType::External2,
            area: None,
            ..r(PathType::External2, "0.0.0.0", 1)
        },
    );
    t.routers.insert(
        (ip("0.0.0.0"), ip("4.4.4.4")),
        RouterRoute {
            path_type: PathType::IntraArea,
            cost: 15,
            abr: false,
            asbr: true,
            nexthops: vec![],
        },
    );
    let areas = [
        kind("0.0.0.0", false, false, false),
        kind("0.0.0.1", true, false, false),
        kind("0.0.0.2", true, false, true),
        kind("0.0.0.3", false, false, false),
        // NSSA: summaries but no default summary (a type-7 default instead); NSSA with
        // no-summary: the default summary alone, at its own cost.
        kind("0.0.0.4", true, true, false),
        AreaKind {
            default_cost: 9,
            ..kind("0.0.0.5", true, true, true)
        },
    ];
    let s = abr_summaries(&t, &areas);
    let fmt = |v: &Vec<SummarySpec>| -> Vec<String> {
        v.iter()
            .map(|s| format!("{} {}/{} {}", s.ls_type, s.lsid, s.mask, s.metric))
            .collect()
    };
    assert_eq!(fmt(&s[&ip("0.0.0.0")]), vec!["3 10.1.0.0/255.255.255.0 20"]);
    assert_eq!(
        fmt(&s[&ip("0.0.0.1")]),
        vec![
            "3 0.0.0.0/0.0.0.0 1",
            "3 10.0.0.0/255.255.255.0 10",
            "3 10.9.0.0/255.255.255.0 40"
        ]
    );
    assert_eq!(fmt(&s[&ip("0.0.0.2")]), vec!["3 0.0.0.0/0.0.0.0 1"]);
    assert_eq!(
        fmt(&s[&ip("0.0.0.3")]),
        vec![
            "3 10.0.0.0/255.255.255.0 10",
            "3 10.1.0.0/255.255.255.0 20",
            "3 10.9.0.0/255.255.255.0 40",
            "4 4.4.4.4/0.0.0.0 15"
        ]
    );
    assert_eq!(
        fmt(&s[&ip("0.0.0.4")]),
        vec![
            "3 10.0.0.0/255.255.255.0 10",
            "3 10.1.0.0/255.255.255.0 20",
            "3 10.9.0.0/255.255.255.0 40"
        ]
    );
    assert_eq!(fmt(&s[&ip("0.0.0.5")]), vec!["3 0.0.0.0/0.0.0.0 9"]);
    assert!(abr_summaries(&t, &areas[..1]).is_empty());
}

fn kind(area: &str, stub: bool, nssa: bool, no_summary: bool) -> AreaKind {
    AreaKind {
        area: ip(area),
        stub,
        nssa,
        no_summary,
        default_cost: 1,
    }
}

/// A type-7 LSA with the P-bit as `p`.
fn t7(p: &str, adv: &str, type2: bool, metric: u32, fwd: &str, pbit: bool) -> Lsa {
    let mut l = ext(LSA_NSSA, p, adv, type2, metric, fwd);
    l.header.options = if pbit { options::NP } else { 0 };
    l
}

/// NSSA 0.0.0.2: ABRs 1.1.1.1 (us) and 3.3.3.3, ASBR 2.2.2.2 between them.
fn nssa_area(abr3_flags: u8, extra: Vec<Lsa>) -> (Vec<Lsa>, Vec<LocalIface>) {
    let mut lsas = vec![
        rlsa(
            "1.1.1.1",
            router_flags::B,
            vec![p2p("2.2.2.2", "10.2.0.1", 5)],
        ),
        rlsa(
            "2.2.2.2",
            router_flags::E,
            vec![
                p2p("1.1.1.1", "10.2.0.2", 5),
                p2p("3.3.3.3", "10.3.0.2", 5),
                stub("10.2.0.0/30", 5),
                stub("10.3.0.0/30", 5),
            ],
        ),
        rlsa(
            "3.3.3.3",
            router_flags::B | abr3_flags,
            vec![p2p("2.2.2.2", "10.3.0.1", 5)],
        ),
    ];
    lsas.extend(extra);
    (lsas, vec![iface(1, "10.2.0.1/30")])
}

fn nssa_table(lsas: &[Lsa], ifaces: &[LocalIface]) -> RoutingTable {
    let areas = [AreaInput {
        area: ip("0.0.0.2"),
        nssa: true,
        lsas: lsas.iter().collect(),
        ifaces: ifaces.to_vec(),
    }];
    compute(ip("1.1.1.1"), &areas, std::iter::empty())
}

#[test]
fn nssa_translator_election_by_router_id_and_nt_bit() {
    let a = ip("0.0.0.2");
    let (lsas, ifs) = nssa_area(0, vec![]);
    let t = nssa_table(&lsas, &ifs);
    let refs: Vec<&Lsa> = lsas.iter().collect();
    // 3.3.3.3 is a reachable border router with a higher router ID: it translates.
    assert!(!nssa_translator(ip("1.1.1.1"), a, false, &t, &refs));
    assert!(nssa_translator(ip("1.1.1.1"), a, true, &t, &refs));
    // With the highest router ID we are elected.
    assert!(nssa_translator(ip("4.4.4.4"), a, false, &t, &refs));
    // A border router translating unconditionally (Nt) wins over any router ID...
    let (lsas_nt, _) = nssa_area(router_flags::NT, vec![]);
    let t_nt = nssa_table(&lsas_nt, &ifs);
    let refs_nt: Vec<&Lsa> = lsas_nt.iter().collect();
    assert!(!nssa_translator(ip("4.4.4.4"), a, false, &t_nt, &refs_nt));
    // ...while it is reachable: cut off, it no longer counts.
    let cut: Vec<Lsa> = lsas_nt
        .iter()
        .filter(|l| l.header.adv_router != ip("2.2.2.2"))
        .cloned()
        .collect();
    let t_cut = nssa_table(&cut, &ifs);
    let refs_cut: Vec<&Lsa> = cut.iter().collect();
    assert!(nssa_translator(ip("1.1.1.1"), a, false, &t_cut, &refs_cut));
}

#[test]
fn nssa_translations_take_p_bit_type7s_with_a_forwarding_address() {
    let a = ip("0.0.0.2");
    let (lsas, ifs) = nssa_area(
        router_flags::E,
        vec![
            // Translated.
            t7("192.0.2.0/24", "2.2.2.2", true, 20, "10.2.0.2", true),
            // P-bit clear, or no forwarding address: not translated.
            t7("198.51.100.0/24", "2.2.2.2", true, 20, "10.2.0.2", false),
            t7("203.0.113.0/24", "2.2.2.2", true, 20, "0.0.0.0", true),
            // Two for one prefix: the type 1 one wins over the cheaper type 2.
            t7("10.50.0.0/16", "2.2.2.2", true, 1, "10.3.0.2", true),
            t7("10.50.0.0/16", "3.3.3.3", false, 30, "10.3.0.1", true),
            // From a router not reachable in the NSSA.
            t7("10.60.0.0/16", "9.9.9.9", false, 30, "10.3.0.1", true),
            // Ours.
            t7("10.70.0.0/16", "1.1.1.1", false, 30, "10.2.0.1", true),
        ],
    );
    let t = nssa_table(&lsas, &ifs);
    let refs: Vec<&Lsa> = lsas.iter().collect();
    let tr = nssa_translations(ip("1.1.1.1"), a, &t, &refs);
    let got: Vec<String> = tr
        .iter()
        .map(|(p, e)| {
            format!(
                "{p} E{} {} fwd {}",
                1 + u8::from(e.type2),
                e.metric,
                e.forwarding
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            "10.50.0.0/16 E1 30 fwd 10.3.0.1",
            "192.0.2.0/24 E2 20 fwd 10.2.0.2"
        ]
    );
    // The type-7 routes themselves are used inside the NSSA, through the forwarding
    // address (10.2.0.0/30, intra-area through 2.2.2.2: 5 + 5).
    let r = &t.networks[&net("192.0.2.0/24")];
    assert_eq!(
        (r.path_type, r.cost, r.type2_cost),
        (PathType::External2, 10, 20)
    );
    assert_eq!(r.nexthops[0].addr, ip("10.2.0.2"));
}

#[test]
fn an_abr_ignores_other_abrs_type7_defaults() {
    let d = t7("0.0.0.0/0", "2.2.2.2", false, 1, "0.0.0.0", false);
    let (lsas, ifs) = nssa_area(0, vec![d]);
    let t = nssa_table(&lsas, &ifs);
    assert!(t.networks.contains_key(&net("0.0.0.0/0")));
    // With a second area attached (an ABR), the type-7 default is not used.
    let areas = [
        AreaInput {
            area: ip("0.0.0.2"),
            nssa: true,
            lsas: lsas.iter().collect(),
            ifaces: ifs.clone(),
        },
        AreaInput {
            area: ip("0.0.0.0"),
            nssa: false,
            lsas: vec![],
            ifaces: vec![],
        },
    ];
    let t = compute(ip("1.1.1.1"), &areas, std::iter::empty());
    assert!(!t.networks.contains_key(&net("0.0.0.0/0")));
}
