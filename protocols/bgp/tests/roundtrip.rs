//! Property tests: decode(encode(x)) == x for every message type, and the
//! decoders never panic on arbitrary bytes.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use oxr_bgp::packet::attribute::*;
use oxr_bgp::packet::capability::{Capability, GracefulRestart, GracefulRestartFamily};
use oxr_bgp::packet::update::decode_update;
use oxr_bgp::packet::{
    Afi, AfiSafi, Message, Notification, Open, RouteRefresh, Safi, SessionContext, Update,
};
use proptest::prelude::*;

fn v4net() -> impl Strategy<Value = Ipv4Net> {
    (any::<u32>(), 0u8..=32).prop_map(|(a, l)| Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc())
}

fn v6net() -> impl Strategy<Value = Ipv6Net> {
    (any::<u128>(), 0u8..=128)
        .prop_map(|(a, l)| Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc())
}

fn segment() -> impl Strategy<Value = AsSegment> {
    (
        prop_oneof![
            Just(SegmentType::Sequence),
            Just(SegmentType::Set),
            Just(SegmentType::ConfedSequence),
            Just(SegmentType::ConfedSet)
        ],
        prop::collection::vec(1u32.., 1..8),
    )
        .prop_map(|(kind, asns)| AsSegment { kind, asns })
}

fn attrs() -> impl Strategy<Value = PathAttributes> {
    let a = (
        prop_oneof![
            Just(Origin::Igp),
            Just(Origin::Egp),
            Just(Origin::Incomplete)
        ],
        prop::collection::vec(segment(), 0..4),
        any::<u32>(),
        prop::option::of(any::<u32>()),
        prop::option::of(any::<u32>()),
        any::<bool>(),
        prop::option::of((any::<u32>(), any::<u32>())),
        prop::collection::vec(any::<u32>(), 0..5),
    );
    let b = (
        prop::option::of(any::<u32>()),
        prop::collection::vec(any::<u32>(), 0..4),
        prop::collection::vec(any::<[u8; 8]>(), 0..4),
        prop::collection::vec((any::<u32>(), any::<u32>(), any::<u32>()), 0..3),
        prop::collection::btree_map(
            100u8..=200,
            (0u8..16, prop::collection::vec(any::<u8>(), 0..20)),
            0..3,
        ),
        prop::option::of((
            prop::collection::vec(v6net(), 0..5),
            any::<u128>(),
            prop::option::of(any::<u128>()),
        )),
        prop::option::of(prop::collection::vec(v6net(), 0..5)),
    );
    (a, b).prop_map(
        |(
            (origin, segs, nh, med, lp, atomic, agg, comms),
            (orig, clusters, ext, large, unknown, reach, unreach),
        )| {
            PathAttributes {
                origin: Some(origin),
                as_path: Some(AsPath { segments: segs }),
                next_hop: Some(Ipv4Addr::from(nh)),
                med,
                local_pref: lp,
                atomic_aggregate: atomic,
                aggregator: agg.map(|(asn, a)| Aggregator {
                    asn,
                    address: Ipv4Addr::from(a),
                }),
                communities: comms.into_iter().map(Community).collect(),
                originator_id: orig.map(Ipv4Addr::from),
                cluster_list: clusters.into_iter().map(Ipv4Addr::from).collect(),
                mp_reach: reach.map(|(nlri, g, ll)| MpReach {
                    afi_safi: AfiSafi::IPV6_UNICAST,
                    next_hop: MpNextHop::V6 {
                        global: Ipv6Addr::from(g),
                        link_local: ll.map(Ipv6Addr::from),
                    },
                    nlri: nlri.into_iter().map(IpNet::V6).collect(),
                }),
                mp_unreach: unreach.map(|w| MpUnreach {
                    afi_safi: AfiSafi::IPV6_UNICAST,
                    withdrawn: w.into_iter().map(IpNet::V6).collect(),
                }),
                extended_communities: ext.into_iter().map(ExtendedCommunity).collect(),
                large_communities: large
                    .into_iter()
                    .map(|(global, local1, local2)| LargeCommunity {
                        global,
                        local1,
                        local2,
                    })
                    .collect(),
                unknown: unknown
                    .into_iter()
                    .map(|(t, (f, value))| RawAttribute {
                        flags: FLAG_OPTIONAL
                            | ((f << 4) & (FLAG_TRANSITIVE | FLAG_PARTIAL))
                            | (f & 0x0f),
                        type_code: t,
                        value,
                    })
                    .collect(),
            }
        },
    )
}

fn update() -> impl Strategy<Value = Update> {
    (
        prop::collection::vec(v4net(), 0..10),
        attrs(),
        prop::collection::vec(v4net(), 0..10),
    )
        .prop_map(|(withdrawn, attributes, nlri)| Update {
            withdrawn,
            attributes,
            nlri,
        })
}

fn capability() -> impl Strategy<Value = Capability> {
    prop_oneof![
        (any::<u16>(), any::<u8>()).prop_map(|(a, s)| Capability::Multiprotocol(AfiSafi {
            afi: Afi(a),
            safi: Safi(s)
        })),
        Just(Capability::RouteRefresh),
        any::<u32>().prop_map(Capability::FourOctetAs),
        (
            0u8..16,
            0u16..4096,
            prop::collection::vec((any::<u16>(), any::<u8>(), any::<u8>()), 0..4)
        )
            .prop_map(|(flags, restart_time, fams)| Capability::GracefulRestart(
                GracefulRestart {
                    flags,
                    restart_time,
                    families: fams
                        .into_iter()
                        .map(|(a, s, f)| GracefulRestartFamily {
                            afi_safi: AfiSafi {
                                afi: Afi(a),
                                safi: Safi(s)
                            },
                            flags: f
                        })
                        .collect(),
                }
            )),
        (66u8..=255, prop::collection::vec(any::<u8>(), 0..10))
            .prop_map(|(code, value)| Capability::Unknown { code, value }),
    ]
}

fn ctx() -> SessionContext {
    SessionContext::new_4byte(false)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn update_round_trips(u in update()) {
        let msg = Message::Update(u);
        let Ok(wire) = msg.encode(&ctx()) else { return Ok(()) }; // over 4096 octets
        prop_assert_eq!(Message::decode(&wire, &ctx()).unwrap(), msg);
    }

    #[test]
    fn two_octet_update_round_trips(
        seq in prop::collection::vec(1u32.., 1..10),
        set in prop::option::of(prop::collection::vec(1u32.., 1..4)),
        agg in prop::option::of((1u32.., any::<u32>())),
        nlri in prop::collection::vec(v4net(), 1..5),
    ) {
        let mut path = AsPath::from_sequence(seq);
        if let Some(set) = set {
            path.segments.push(AsSegment { kind: SegmentType::Set, asns: set });
        }
        let attributes = PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(path),
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
            aggregator: agg.map(|(asn, a)| Aggregator { asn, address: Ipv4Addr::from(a) }),
            ..Default::default()
        };
        let msg = Message::Update(Update { withdrawn: vec![], attributes, nlri });
        let c = SessionContext { four_octet_as: false, ..ctx() };
        let wire = msg.encode(&c).unwrap();
        prop_assert_eq!(Message::decode(&wire, &c).unwrap(), msg);
    }

    #[test]
    fn open_round_trips(
        asn in any::<u32>(), hold in any::<u16>(), id in any::<u32>(),
        caps in prop::collection::vec(capability(), 0..8),
    ) {
        let msg = Message::Open(Open::new(asn, hold, Ipv4Addr::from(id), caps));
        let wire = msg.encode(&ctx()).unwrap();
        prop_assert_eq!(Message::decode(&wire, &ctx()).unwrap(), msg);
    }

    #[test]
    fn notification_round_trips(code in any::<u8>(), sub in any::<u8>(), data in prop::collection::vec(any::<u8>(), 0..100)) {
        let msg = Message::Notification(Notification::new(code, sub, data));
        let wire = msg.encode(&ctx()).unwrap();
        prop_assert_eq!(Message::decode(&wire, &ctx()).unwrap(), msg);
    }

    #[test]
    fn route_refresh_round_trips(afi in any::<u16>(), safi in any::<u8>(), subtype in any::<u8>()) {
        let msg = Message::RouteRefresh(RouteRefresh { afi_safi: AfiSafi { afi: Afi(afi), safi: Safi(safi) }, subtype });
        let wire = msg.encode(&ctx()).unwrap();
        prop_assert_eq!(Message::decode(&wire, &ctx()).unwrap(), msg);
    }

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Message::decode(&bytes, &ctx());
        let _ = decode_update(&bytes, &ctx());
        let _ = decode_update(&bytes, &SessionContext { four_octet_as: false, ..SessionContext::new_4byte(true) });
    }

    #[test]
    fn decode_never_panics_past_a_valid_header(t in 1u8..=5, body in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut m = vec![0xff; 16];
        m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        m.push(t);
        m.extend_from_slice(&body);
        let _ = Message::decode(&m, &ctx());
    }

    #[test]
    fn decode_never_panics_on_mutated_updates(u in update(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let Ok(mut wire) = Message::Update(u).encode(&ctx()) else { return Ok(()) };
        for (i, v) in flips {
            let i = 19 + i.index(wire.len() - 19);
            wire[i] = v;
        }
        let _ = decode_update(&wire[19..], &ctx());
    }
}
