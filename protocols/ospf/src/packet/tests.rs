use proptest::prelude::*;

use super::lsa::*;
use super::*;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn hello() -> Packet {
    Packet {
        router_id: ip("1.1.1.1"),
        area_id: ip("0.0.0.0"),
        body: Body::Hello(Hello {
            network_mask: ip("255.255.255.0"),
            hello_interval: 10,
            options: options::E,
            priority: 1,
            dead_interval: 40,
            dr: ip("10.0.0.1"),
            bdr: ip("0.0.0.0"),
            neighbors: vec![ip("2.2.2.2"), ip("3.3.3.3")],
        }),
    }
}

fn router_lsa() -> Lsa {
    Lsa::new(
        options::E,
        LSA_ROUTER,
        ip("1.1.1.1"),
        ip("1.1.1.1"),
        crate::consts::INITIAL_SEQUENCE_NUMBER,
        LsaBody::Router(RouterLsa {
            flags: router_flags::B,
            links: vec![
                RouterLink {
                    link_id: ip("2.2.2.2"),
                    link_data: ip("10.0.0.1"),
                    link_type: LinkType::PointToPoint,
                    metric: 10,
                    tos: vec![],
                },
                RouterLink {
                    link_id: ip("10.0.0.0"),
                    link_data: ip("255.255.255.252"),
                    link_type: LinkType::Stub,
                    metric: 10,
                    tos: vec![(8, 20)],
                },
            ],
        }),
    )
}

fn all_lsas() -> Vec<Lsa> {
    vec![
        router_lsa(),
        Lsa::new(
            options::E,
            LSA_NETWORK,
            ip("10.0.0.1"),
            ip("1.1.1.1"),
            5,
            LsaBody::Network(NetworkLsa {
                mask: ip("255.255.255.0"),
                attached: vec![ip("1.1.1.1"), ip("2.2.2.2")],
            }),
        ),
        Lsa::new(
            0,
            LSA_SUMMARY_NET,
            ip("192.0.2.0"),
            ip("1.1.1.1"),
            7,
            LsaBody::Summary(SummaryLsa {
                mask: ip("255.255.255.0"),
                metric: 0x12_3456,
                tos: vec![],
            }),
        ),
        Lsa::new(
            0,
            LSA_SUMMARY_ASBR,
            ip("9.9.9.9"),
            ip("1.1.1.1"),
            7,
            LsaBody::Summary(SummaryLsa {
                mask: ip("0.0.0.0"),
                metric: 30,
                tos: vec![],
            }),
        ),
        Lsa::new(
            options::E,
            LSA_EXTERNAL,
            ip("198.51.100.0"),
            ip("9.9.9.9"),
            -3,
            LsaBody::External(ExternalLsa {
                mask: ip("255.255.255.0"),
                type2: true,
                metric: 100,
                forwarding: ip("10.0.0.9"),
                tag: 0xdead_beef,
                tos: vec![],
            }),
        ),
        Lsa::new(
            options::NP,
            LSA_NSSA,
            ip("203.0.113.0"),
            ip("9.9.9.9"),
            1,
            LsaBody::External(ExternalLsa {
                mask: ip("255.255.255.0"),
                type2: false,
                metric: 5,
                forwarding: ip("10.1.0.9"),
                tag: 0,
                tos: vec![],
            }),
        ),
        Lsa::new(
            0,
            10,
            ip("1.0.0.1"),
            ip("1.1.1.1"),
            1,
            LsaBody::Unknown(vec![1, 2, 3, 4]),
        ),
    ]
}

fn all_packets() -> Vec<Packet> {
    let lsas = all_lsas();
    let headers: Vec<LsaHeader> = lsas.iter().map(|l| l.header).collect();
    let mk = |body| Packet {
        router_id: ip("1.1.1.1"),
        area_id: ip("0.0.0.1"),
        body,
    };
    vec![
        hello(),
        mk(Body::DbDesc(DbDesc {
            mtu: 1500,
            options: options::E,
            flags: dd_flags::I | dd_flags::M | dd_flags::MS,
            seq: 0x1234_5678,
            lsa_headers: headers.clone(),
        })),
        mk(Body::LsRequest(LsRequest {
            entries: lsas.iter().map(|l| l.key()).collect(),
        })),
        mk(Body::LsUpdate(LsUpdate {
            lsas: lsas.clone(),
            rejected: vec![],
        })),
        mk(Body::LsAck(LsAck {
            lsa_headers: headers,
        })),
    ]
}

fn auths() -> Vec<Auth> {
    let mut v = vec![Auth::Null, Auth::simple("secret")];
    for algo in [
        CryptoAlgo::Md5,
        CryptoAlgo::HmacSha1,
        CryptoAlgo::HmacSha256,
        CryptoAlgo::HmacSha384,
        CryptoAlgo::HmacSha512,
    ] {
        v.push(Auth::Crypto(vec![CryptoKey {
            key_id: 7,
            algo,
            key: b"0123456789".to_vec(),
        }]));
    }
    v
}

#[test]
fn every_packet_round_trips_with_every_auth() {
    for auth in auths() {
        for p in all_packets() {
            let bytes = encode(&p, &auth, 42);
            let d = decode(&bytes, &auth).unwrap_or_else(|e| panic!("{auth:?} {e}"));
            assert_eq!(d.packet, p);
            let want_seq = matches!(auth, Auth::Crypto(_)).then_some(42);
            assert_eq!(d.crypto_seq, want_seq);
        }
    }
}

#[test]
fn crypto_trailer_has_digest_length_and_zero_checksum() {
    let auth = Auth::Crypto(vec![CryptoKey {
        key_id: 3,
        algo: CryptoAlgo::HmacSha256,
        key: b"k".to_vec(),
    }]);
    let b = encode(&hello(), &auth, 0x0102_0304);
    let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
    assert_eq!(b.len(), len + 32);
    assert_eq!(&b[12..14], &[0, 0]);
    assert_eq!(&b[16..24], &[0, 0, 3, 32, 1, 2, 3, 4]);
}

#[test]
fn lsa_round_trip_keeps_checksum() {
    for l in all_lsas() {
        let b = l.encode();
        assert!(checksum::lsa_checksum_ok(&b), "{:?}", l.header);
        let (d, n) = Lsa::decode(&b).unwrap();
        assert_eq!(n, b.len());
        assert_eq!(d, l);
    }
}

#[test]
fn wrong_version_is_bad_version() {
    let mut b = encode(&hello(), &Auth::Null, 0);
    b[0] = 3;
    let e = decode(&b, &Auth::Null).unwrap_err();
    assert_eq!(e, DecodeError::BadVersion(3));
    assert_eq!(e.counter(), "bad-version");
}

#[test]
fn corrupted_byte_is_bad_checksum() {
    let mut b = encode(&hello(), &Auth::Null, 0);
    b[30] ^= 1;
    let e = decode(&b, &Auth::Null).unwrap_err();
    assert_eq!(e, DecodeError::BadChecksum);
    assert_eq!(e.counter(), "bad-checksum");
}

#[test]
fn length_past_buffer_or_below_header_is_bad_length() {
    let b = encode(&hello(), &Auth::Null, 0);
    let mut long = b.clone();
    long[2..4].copy_from_slice(&1000u16.to_be_bytes());
    assert!(matches!(
        decode(&long, &Auth::Null),
        Err(DecodeError::BadLength { length: 1000, .. })
    ));
    let mut short = b.clone();
    short[2..4].copy_from_slice(&10u16.to_be_bytes());
    assert_eq!(
        decode(&short, &Auth::Null).unwrap_err().counter(),
        "bad-length"
    );
    assert_eq!(
        decode(&b[..10], &Auth::Null).unwrap_err().counter(),
        "truncated"
    );
}

#[test]
fn hello_with_ragged_neighbor_list_is_bad_length() {
    let mut b = encode(&hello(), &Auth::Null, 0);
    b.truncate(b.len() - 1);
    let len = b.len() as u16;
    b[2..4].copy_from_slice(&len.to_be_bytes());
    b[12..14].fill(0);
    let c = checksum::internet_checksum(&b);
    b[12..14].copy_from_slice(&c.to_be_bytes());
    assert_eq!(decode(&b, &Auth::Null).unwrap_err().counter(), "bad-length");
}

#[test]
fn unknown_packet_type_is_rejected() {
    let mut b = encode(&hello(), &Auth::Null, 0);
    b[1] = 9;
    assert_eq!(
        decode(&b, &Auth::Null).unwrap_err(),
        DecodeError::BadPacketType(9)
    );
}

#[test]
fn wrong_password_and_wrong_autype_fail() {
    let b = encode(&hello(), &Auth::simple("secret"), 0);
    let e = decode(&b, &Auth::simple("other")).unwrap_err();
    assert_eq!(e, DecodeError::AuthFailure);
    assert_eq!(e.counter(), "auth-failure");
    let e = decode(&b, &Auth::Null).unwrap_err();
    assert_eq!(e, DecodeError::AuthTypeMismatch { got: 1, want: 0 });
}

#[test]
fn crypto_wrong_key_tampered_body_unknown_id_and_short_trailer_fail() {
    let key = |k: &[u8], id| {
        Auth::Crypto(vec![CryptoKey {
            key_id: id,
            algo: CryptoAlgo::Md5,
            key: k.to_vec(),
        }])
    };
    let b = encode(&hello(), &key(b"good", 1), 9);
    assert_eq!(
        decode(&b, &key(b"bad", 1)).unwrap_err(),
        DecodeError::AuthFailure
    );
    assert_eq!(
        decode(&b, &key(b"good", 2)).unwrap_err(),
        DecodeError::UnknownKeyId(1)
    );
    let mut t = b.clone();
    t[30] ^= 0x40;
    assert_eq!(
        decode(&t, &key(b"good", 1)).unwrap_err(),
        DecodeError::AuthFailure
    );
    assert_eq!(
        decode(&b[..b.len() - 1], &key(b"good", 1))
            .unwrap_err()
            .counter(),
        "truncated"
    );
    let sha = Auth::Crypto(vec![CryptoKey {
        key_id: 1,
        algo: CryptoAlgo::HmacSha256,
        key: b"good".to_vec(),
    }]);
    assert_eq!(
        decode(&b, &sha).unwrap_err(),
        DecodeError::BadAuthLength(16)
    );
}

#[test]
fn key_rollover_accepts_any_configured_key() {
    let k1 = CryptoKey {
        key_id: 1,
        algo: CryptoAlgo::HmacSha1,
        key: b"old".to_vec(),
    };
    let k2 = CryptoKey {
        key_id: 2,
        algo: CryptoAlgo::HmacSha256,
        key: b"new".to_vec(),
    };
    let b = encode(&hello(), &Auth::Crypto(vec![k1.clone()]), 1);
    assert!(decode(&b, &Auth::Crypto(vec![k2, k1])).is_ok());
}

#[test]
fn crypto_sequence_must_not_decrease() {
    assert!(check_crypto_seq(None, 0).is_ok());
    assert!(check_crypto_seq(Some(5), 5).is_ok());
    assert_eq!(
        check_crypto_seq(Some(5), 4).unwrap_err().counter(),
        "auth-sequence"
    );
}

fn lsu_with(lsa_bytes: &[u8], count: u32) -> Vec<u8> {
    let p = Packet {
        router_id: ip("1.1.1.1"),
        area_id: ip("0.0.0.0"),
        body: Body::LsUpdate(LsUpdate {
            lsas: vec![],
            rejected: vec![],
        }),
    };
    let mut b = encode(&p, &Auth::Null, 0);
    b.truncate(HEADER_LEN);
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(lsa_bytes);
    let len = b.len() as u16;
    b[2..4].copy_from_slice(&len.to_be_bytes());
    b[12..14].fill(0);
    let c = checksum::internet_checksum(&b);
    b[12..14].copy_from_slice(&c.to_be_bytes());
    b
}

#[test]
fn truncated_lsa_in_update_rejects_packet() {
    let l = router_lsa().encode();
    let b = lsu_with(&l[..l.len() - 4], 1);
    let e = decode(&b, &Auth::Null).unwrap_err();
    assert!(matches!(e, DecodeError::TruncatedLsa { .. }), "{e:?}");
    assert_eq!(e.counter(), "truncated-lsa");
    // Count says two, one present.
    let b = lsu_with(&l, 2);
    assert_eq!(
        decode(&b, &Auth::Null).unwrap_err().counter(),
        "truncated-lsa"
    );
}

#[test]
fn bad_lsa_checksum_drops_only_that_lsa() {
    let good = all_lsas()[1].clone();
    let mut bad = router_lsa().encode();
    bad[25] ^= 0xff;
    let mut both = bad.clone();
    both.extend_from_slice(&good.encode());
    let d = decode(&lsu_with(&both, 2), &Auth::Null).unwrap();
    let Body::LsUpdate(u) = d.packet.body else {
        panic!("not an update")
    };
    assert_eq!(u.lsas, vec![good]);
    assert_eq!(u.rejected, vec![DecodeError::BadLsaChecksum]);
    assert_eq!(Lsa::decode(&bad).unwrap_err().counter(), "bad-lsa-checksum");
}

#[test]
fn router_lsa_with_wrong_link_count_is_malformed() {
    let mut l = router_lsa().encode();
    l[23] = 1; // claims one link, carries two
    checksum::set_lsa_checksum(&mut l);
    assert_eq!(Lsa::decode(&l).unwrap_err().counter(), "bad-lsa");
    l[23] = 5; // claims five
    checksum::set_lsa_checksum(&mut l);
    assert_eq!(Lsa::decode(&l).unwrap_err().counter(), "truncated");
}

#[test]
fn hello_from_router_id_zero_is_rejected() {
    let mut p = hello();
    p.router_id = Ipv4Addr::UNSPECIFIED;
    let b = encode(&p, &Auth::Null, 0);
    assert_eq!(decode(&b, &Auth::Null).unwrap_err().counter(), "bad-field");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        for auth in auths() {
            let _ = decode(&b, &auth);
        }
        let _ = Lsa::decode(&b);
    }

    #[test]
    fn decode_never_panics_on_mutated_valid_packets(
        which in 0usize..5, pos in any::<prop::sample::Index>(), val in any::<u8>(), cut in any::<prop::sample::Index>()
    ) {
        let p = &all_packets()[which];
        let mut b = encode(p, &Auth::Null, 0);
        let i = pos.index(b.len());
        b[i] = val;
        // Fix the checksum so mutations reach the body decoders.
        b[12..14].fill(0);
        let c = checksum::internet_checksum(&b);
        b[12..14].copy_from_slice(&c.to_be_bytes());
        let _ = decode(&b, &Auth::Null);
        let _ = decode(&b[..cut.index(b.len() + 1)], &Auth::Null);
    }

    #[test]
    fn hello_round_trips(
        rid in any::<u32>().prop_filter("nonzero", |r| *r != 0), mask in any::<u32>(), hi in any::<u16>(),
        opts in any::<u8>(), pri in any::<u8>(), dead in any::<u32>(), dr in any::<u32>(),
        bdr in any::<u32>(), nbrs in proptest::collection::vec(any::<u32>(), 0..20)
    ) {
        let p = Packet {
            router_id: Ipv4Addr::from(rid),
            area_id: Ipv4Addr::from(mask ^ 1),
            body: Body::Hello(Hello {
                network_mask: Ipv4Addr::from(mask), hello_interval: hi, options: opts, priority: pri,
                dead_interval: dead, dr: Ipv4Addr::from(dr), bdr: Ipv4Addr::from(bdr),
                neighbors: nbrs.into_iter().map(Ipv4Addr::from).collect(),
            }),
        };
        let b = encode(&p, &Auth::Null, 0);
        prop_assert_eq!(decode(&b, &Auth::Null).unwrap().packet, p);
    }

    #[test]
    fn external_lsa_round_trips(
        id in any::<u32>(), adv in any::<u32>(), seq in any::<i32>(), mask in any::<u32>(),
        t2 in any::<bool>(), metric in 0u32..0x100_0000, fwd in any::<u32>(), tag in any::<u32>()
    ) {
        let l = Lsa::new(options::E, LSA_EXTERNAL, Ipv4Addr::from(id), Ipv4Addr::from(adv), seq,
            LsaBody::External(ExternalLsa {
                mask: Ipv4Addr::from(mask), type2: t2, metric, forwarding: Ipv4Addr::from(fwd), tag, tos: vec![],
            }));
        let b = l.encode();
        prop_assert!(checksum::lsa_checksum_ok(&b));
        prop_assert_eq!(Lsa::decode(&b).unwrap().0, l);
    }
}
