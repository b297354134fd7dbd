//! The TABLE_DUMP_V2 writer's output, read back with bgpkit-parser.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use bgpkit_parser::BgpkitParser;
use ipnet::IpNet;
use oxr_bgp::decision::PeerInfo;
use oxr_bgp::mrt::write_table_dump;
use oxr_bgp::packet::attribute::{AsPath, Community, MpNextHop, MpReach, Origin, PathAttributes};
use oxr_bgp::packet::AfiSafi;
use oxr_bgp::rib::{LocRib, RibPath};

#[test]
fn table_dump_round_trips_through_bgpkit_parser() {
    let p1 = Arc::new(PeerInfo {
        id: 7,
        address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
        router_id: Ipv4Addr::new(10, 0, 0, 7),
        asn: 65007,
        ibgp: false,
    });
    let p2 = Arc::new(PeerInfo {
        id: 3,
        address: IpAddr::V6("2001:db8::3".parse().unwrap()),
        router_id: Ipv4Addr::new(10, 0, 0, 3),
        asn: 4_200_000_003,
        ibgp: false,
    });
    let v4attrs = |asns: Vec<u32>, med| {
        Arc::new(PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::from_sequence(asns)),
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 254)),
            med,
            communities: vec![Community::new(65000, 1)],
            ..Default::default()
        })
    };
    let v6attrs = Arc::new(PathAttributes {
        origin: Some(Origin::Incomplete),
        as_path: Some(AsPath::from_sequence(vec![4_200_000_003, 65010])),
        mp_reach: Some(MpReach {
            afi_safi: AfiSafi::IPV6_UNICAST,
            next_hop: MpNextHop::V6 {
                global: "2001:db8::3".parse::<Ipv6Addr>().unwrap(),
                link_local: Some("fe80::3".parse().unwrap()),
            },
            nlri: vec![],
        }),
        ..Default::default()
    });
    let mut rib = LocRib::new(1);
    let path = |peer: &Arc<PeerInfo>, attrs: Arc<PathAttributes>| RibPath {
        peer: peer.clone(),
        attrs,
        weight: 0,
        igp_cost: Some(0),
        stale: false,
    };
    let a: IpNet = "198.51.100.0/24".parse().unwrap();
    let b: IpNet = "203.0.113.128/25".parse().unwrap();
    let c: IpNet = "2001:db8:1::/48".parse().unwrap();
    rib.update(a, path(&p1, v4attrs(vec![65007, 65100], Some(5))));
    rib.update(a, path(&p2, v4attrs(vec![4_200_000_003, 65100], None)));
    rib.update(b, path(&p1, v4attrs(vec![65007], None)));
    rib.update(c, path(&p2, v6attrs));

    let mut out = Vec::new();
    write_table_dump(
        &rib,
        Ipv4Addr::new(192, 0, 2, 1),
        "oxr",
        1_700_000_000,
        &mut out,
    )
    .unwrap();

    let got: BTreeSet<String> = BgpkitParser::from_reader(&out[..])
        .into_elem_iter()
        .map(|e| {
            format!(
                "{} {} {} {:?} {} {:?} {}",
                e.prefix.prefix,
                e.peer_ip,
                e.peer_asn,
                e.next_hop,
                e.as_path.map(|p| p.to_string()).unwrap_or_default(),
                e.med,
                e.timestamp
            )
        })
        .collect();
    // bgpkit-parser reports an absent MED as Some(0).
    let want: BTreeSet<String> = [
        "198.51.100.0/24 192.0.2.7 65007 Some(192.0.2.254) 65007 65100 Some(5) 1700000000",
        "198.51.100.0/24 2001:db8::3 4200000003 Some(192.0.2.254) 4200000003 65100 Some(0) 1700000000",
        "203.0.113.128/25 192.0.2.7 65007 Some(192.0.2.254) 65007 Some(0) 1700000000",
        "2001:db8:1::/48 2001:db8::3 4200000003 Some(2001:db8::3) 4200000003 65010 Some(0) 1700000000",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(got, want);
}
