//! Malformed UPDATEs and messages, each asserting the RFC 7606 outcome.

use ipnet::IpNet;
use oxr_bgp::packet::attribute::{AsPath, PathAttributes, RawAttribute};
use oxr_bgp::packet::update::{decode_update, Discarded, UpdateErrorKind as K};
use oxr_bgp::packet::{AfiSafi, DecodeError, Message, SessionContext, Update, UpdateOutcome};

const ORIGIN: &[u8] = &[0x40, 1, 1, 0];
const AS_PATH: &[u8] = &[0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9];
const NEXT_HOP: &[u8] = &[0x40, 3, 4, 192, 0, 2, 1];
const NLRI: &[u8] = &[24, 198, 51, 100];
/// MP_REACH IPv6 unicast, next hop 2001:db8::1, NLRI 2001:db8:1::/48.
const MP_REACH_V6: &[u8] = &[
    0x80, 14, 28, 0, 2, 1, 16, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 48,
    0x20, 0x01, 0x0d, 0xb8, 0, 1,
];

fn ebgp() -> SessionContext {
    SessionContext::new_4byte(true)
}

fn ibgp() -> SessionContext {
    SessionContext::new_4byte(false)
}

fn body(withdrawn: &[u8], attrs: &[&[u8]], nlri: &[u8]) -> Vec<u8> {
    let a: Vec<u8> = attrs.concat();
    let mut b = (withdrawn.len() as u16).to_be_bytes().to_vec();
    b.extend_from_slice(withdrawn);
    b.extend_from_slice(&(a.len() as u16).to_be_bytes());
    b.extend_from_slice(&a);
    b.extend_from_slice(nlri);
    b
}

fn p(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn assert_withdraw(out: UpdateOutcome, reason: K, prefixes: &[&str]) {
    let want: Vec<IpNet> = prefixes.iter().map(|s| p(s)).collect();
    assert_eq!(
        out,
        UpdateOutcome::TreatAsWithdraw {
            prefixes: want,
            reason
        }
    );
}

fn assert_reset(out: UpdateOutcome, reason: K, code: u8, subcode: u8) {
    match out {
        UpdateOutcome::SessionReset {
            notification,
            reason: r,
        } => {
            assert_eq!(r, reason);
            assert_eq!((notification.code, notification.subcode), (code, subcode));
        }
        other => panic!("expected session reset, got {other:?}"),
    }
}

fn parsed(out: UpdateOutcome) -> Update {
    match out {
        UpdateOutcome::Parsed(u) => u,
        other => panic!("expected parsed, got {other:?}"),
    }
}

fn discarded(out: UpdateOutcome) -> (Update, Vec<Discarded>) {
    match out {
        UpdateOutcome::AttributeDiscard { update, discarded } => (update, discarded),
        other => panic!("expected attribute discard, got {other:?}"),
    }
}

#[test]
fn well_formed_update_parses() {
    let u = parsed(decode_update(
        &body(&[], &[ORIGIN, AS_PATH, NEXT_HOP], NLRI),
        &ebgp(),
    ));
    assert_eq!(u.nlri, vec!["198.51.100.0/24".parse().unwrap()]);
    assert_eq!(
        u.attributes.as_path,
        Some(AsPath::from_sequence(vec![65001]))
    );
}

// ---- attribute length and value errors: treat-as-withdraw (RFC 7606 7.x) ----

#[test]
fn origin_bad_length_is_treat_as_withdraw() {
    let b = body(&[], &[&[0x40, 1, 2, 0, 0], AS_PATH, NEXT_HOP], NLRI);
    assert_withdraw(
        decode_update(&b, &ebgp()),
        K::MalformedOrigin,
        &["198.51.100.0/24"],
    );
}

#[test]
fn origin_undefined_value_is_treat_as_withdraw() {
    let b = body(&[], &[&[0x40, 1, 1, 3], AS_PATH, NEXT_HOP], NLRI);
    assert_withdraw(
        decode_update(&b, &ebgp()),
        K::MalformedOrigin,
        &["198.51.100.0/24"],
    );
}

#[test]
fn next_hop_bad_length_is_treat_as_withdraw() {
    let b = body(&[], &[ORIGIN, AS_PATH, &[0x40, 3, 5, 1, 2, 3, 4, 5]], NLRI);
    assert_withdraw(
        decode_update(&b, &ebgp()),
        K::MalformedNextHop,
        &["198.51.100.0/24"],
    );
}

#[test]
fn med_bad_length_is_treat_as_withdraw() {
    let b = body(
        &[],
        &[ORIGIN, AS_PATH, NEXT_HOP, &[0x80, 4, 3, 0, 0, 1]],
        NLRI,
    );
    assert_withdraw(
        decode_update(&b, &ebgp()),
        K::MalformedMed,
        &["198.51.100.0/24"],
    );
}

#[test]
fn local_pref_bad_length_is_treat_as_withdraw() {
    let b = body(&[], &[ORIGIN, AS_PATH, NEXT_HOP, &[0x40, 5, 2, 0, 1]], NLRI);
    assert_withdraw(
        decode_update(&b, &ibgp()),
        K::MalformedLocalPref,
        &["198.51.100.0/24"],
    );
}

#[test]
fn communities_not_multiple_of_four_is_treat_as_withdraw() {
    for len in [0u8, 6] {
        let mut c = vec![0xc0, 8, len];
        c.extend(std::iter::repeat_n(1, len.into()));
        let b = body(&[], &[ORIGIN, AS_PATH, NEXT_HOP, &c], NLRI);
        assert_withdraw(
            decode_update(&b, &ebgp()),
            K::MalformedCommunities,
            &["198.51.100.0/24"],
        );
    }
}

#[test]
fn extended_and_large_communities_bad_length_are_treat_as_withdraw() {
    let b = body(
        &[],
        &[
            ORIGIN,
            AS_PATH,
            NEXT_HOP,
            &[0xc0, 16, 7, 0, 2, 0, 0, 0, 0, 1],
        ],
        NLRI,
    );
    assert_withdraw(
        decode_update(&b, &ebgp()),
        K::MalformedExtendedCommunities,
        &["198.51.100.0/24"],
    );
    let mut lc = vec![0xc0, 32, 11];
    lc.extend([0u8; 11]);
    let b = body(&[], &[ORIGIN, AS_PATH, NEXT_HOP, &lc], NLRI);
    assert_withdraw(
        decode_update(&b, &ebgp()),
        K::MalformedLargeCommunities,
        &["198.51.100.0/24"],
    );
}

#[test]
fn cluster_list_bad_length_is_treat_as_withdraw() {
    let b = body(
        &[],
        &[ORIGIN, AS_PATH, NEXT_HOP, &[0x80, 10, 3, 1, 2, 3]],
        NLRI,
    );
    assert_withdraw(
        decode_update(&b, &ibgp()),
        K::MalformedClusterList,
        &["198.51.100.0/24"],
    );
}

#[test]
fn malformed_as_path_is_treat_as_withdraw() {
    let bad_type: &[u8] = &[0x40, 2, 6, 5, 1, 0, 0, 0xfd, 0xe9];
    let overrun: &[u8] = &[0x40, 2, 6, 2, 2, 0, 0, 0xfd, 0xe9];
    let empty_segment: &[u8] = &[0x40, 2, 2, 2, 0];
    let as_zero: &[u8] = &[0x40, 2, 6, 2, 1, 0, 0, 0, 0];
    for a in [bad_type, overrun, empty_segment, as_zero] {
        let b = body(&[], &[ORIGIN, a, NEXT_HOP], NLRI);
        assert_withdraw(
            decode_update(&b, &ebgp()),
            K::MalformedAsPath,
            &["198.51.100.0/24"],
        );
    }
}

// ---- flags ----

#[test]
fn well_known_with_optional_bit_is_treat_as_withdraw() {
    let b = body(&[], &[&[0xc0, 1, 1, 0], AS_PATH, NEXT_HOP], NLRI);
    assert_withdraw(
        decode_update(&b, &ebgp()),
        K::BadAttributeFlags,
        &["198.51.100.0/24"],
    );
}

#[test]
fn optional_transitive_without_transitive_bit_is_treat_as_withdraw() {
    let b = body(
        &[],
        &[ORIGIN, AS_PATH, NEXT_HOP, &[0x80, 8, 4, 0, 1, 0, 1]],
        NLRI,
    );
    assert_withdraw(
        decode_update(&b, &ebgp()),
        K::BadAttributeFlags,
        &["198.51.100.0/24"],
    );
}

#[test]
fn bad_flags_on_mp_reach_still_withdraws_its_prefixes() {
    let mut mp = MP_REACH_V6.to_vec();
    mp[0] = 0xc0;
    let b = body(&[], &[&mp, ORIGIN, AS_PATH], &[]);
    assert_withdraw(
        decode_update(&b, &ebgp()),
        K::BadAttributeFlags,
        &["2001:db8:1::/48"],
    );
}

// ---- missing mandatory attributes ----

#[test]
fn missing_mandatory_attributes_are_treat_as_withdraw() {
    let cases: [(&[&[u8]], K); 3] = [
        (&[AS_PATH, NEXT_HOP], K::MissingOrigin),
        (&[ORIGIN, NEXT_HOP], K::MissingAsPath),
        (&[ORIGIN, AS_PATH], K::MissingNextHop),
    ];
    for (attrs, kind) in cases {
        let b = body(&[], attrs, NLRI);
        assert_withdraw(decode_update(&b, &ebgp()), kind, &["198.51.100.0/24"]);
    }
}

#[test]
fn nlri_with_no_attributes_is_treat_as_withdraw() {
    let b = body(&[], &[], NLRI);
    assert_withdraw(
        decode_update(&b, &ebgp()),
        K::MissingOrigin,
        &["198.51.100.0/24"],
    );
}

#[test]
fn mp_reach_only_does_not_need_next_hop() {
    let u = parsed(decode_update(
        &body(&[], &[MP_REACH_V6, ORIGIN, AS_PATH], &[]),
        &ebgp(),
    ));
    assert_eq!(u.all_announced(), vec![p("2001:db8:1::/48")]);
}

#[test]
fn withdraw_only_update_needs_no_attributes() {
    let u = parsed(decode_update(&body(NLRI, &[], &[]), &ebgp()));
    assert_eq!(u.withdrawn, vec!["198.51.100.0/24".parse().unwrap()]);
}

// ---- attribute section framing (RFC 7606 section 4) ----

#[test]
fn attribute_length_overrun_is_treat_as_withdraw_and_nlri_is_found() {
    // NEXT_HOP claims 9 octets; Total Attribute Length still locates the NLRI.
    let b = body(
        &[24, 203, 0, 113],
        &[ORIGIN, AS_PATH, &[0x40, 3, 9, 192, 0, 2, 1]],
        NLRI,
    );
    assert_withdraw(
        decode_update(&b, &ebgp()),
        K::AttributeLengthOverrun,
        &["203.0.113.0/24", "198.51.100.0/24"],
    );
}

#[test]
fn attribute_header_truncated_is_treat_as_withdraw() {
    let b = body(&[], &[ORIGIN, AS_PATH, NEXT_HOP, &[0x80, 4]], NLRI);
    assert_withdraw(
        decode_update(&b, &ebgp()),
        K::AttributeHeaderTruncated,
        &["198.51.100.0/24"],
    );
}

#[test]
fn extended_length_header_truncated_is_treat_as_withdraw() {
    let b = body(&[], &[ORIGIN, AS_PATH, NEXT_HOP, &[0x90, 4, 0]], NLRI);
    assert_withdraw(
        decode_update(&b, &ebgp()),
        K::AttributeHeaderTruncated,
        &["198.51.100.0/24"],
    );
}

#[test]
fn withdrawn_length_past_message_is_session_reset() {
    let mut b = body(&[], &[ORIGIN], &[]);
    b[0..2].copy_from_slice(&100u16.to_be_bytes());
    assert_reset(decode_update(&b, &ebgp()), K::LengthInconsistent, 3, 1);
}

#[test]
fn total_attribute_length_past_message_is_session_reset() {
    let mut b = body(&[], &[ORIGIN, AS_PATH, NEXT_HOP], &[]);
    b[2..4].copy_from_slice(&200u16.to_be_bytes());
    assert_reset(decode_update(&b, &ebgp()), K::LengthInconsistent, 3, 1);
}

#[test]
fn truncated_body_is_session_reset() {
    assert_reset(decode_update(&[0], &ebgp()), K::LengthInconsistent, 3, 1);
    assert_reset(
        decode_update(&[0, 0, 0], &ebgp()),
        K::LengthInconsistent,
        3,
        1,
    );
}

// ---- NLRI errors: session reset (RFC 7606 5.3) ----

#[test]
fn nlri_prefix_too_long_is_session_reset() {
    let b = body(&[], &[ORIGIN, AS_PATH, NEXT_HOP], &[33, 1, 2, 3, 4, 5]);
    assert_reset(decode_update(&b, &ebgp()), K::InvalidNlri, 3, 10);
}

#[test]
fn nlri_truncated_is_session_reset() {
    let b = body(&[], &[ORIGIN, AS_PATH, NEXT_HOP], &[24, 198, 51]);
    assert_reset(decode_update(&b, &ebgp()), K::InvalidNlri, 3, 10);
}

#[test]
fn withdrawn_prefix_too_long_is_session_reset() {
    let b = body(&[40, 1, 2, 3, 4, 5], &[], &[]);
    assert_reset(decode_update(&b, &ebgp()), K::InvalidWithdrawn, 3, 10);
}

// ---- MP_REACH / MP_UNREACH (RFC 7606 7.11, 7.12) ----

#[test]
fn mp_reach_bad_next_hop_length_is_session_reset() {
    let mut mp = MP_REACH_V6.to_vec();
    mp[6] = 15;
    let b = body(&[], &[&mp, ORIGIN, AS_PATH], &[]);
    assert_reset(decode_update(&b, &ebgp()), K::MalformedMpReach, 3, 1);
}

#[test]
fn mp_reach_bad_prefix_is_session_reset() {
    let mut mp = MP_REACH_V6.to_vec();
    mp[24] = 129;
    let b = body(&[], &[&mp, ORIGIN, AS_PATH], &[]);
    assert_reset(decode_update(&b, &ebgp()), K::MalformedMpReach, 3, 1);
}

#[test]
fn mp_unreach_truncated_prefix_is_session_reset() {
    let b = body(&[], &[&[0x80, 15, 5, 0, 2, 1, 64, 0x20]], &[]);
    assert_reset(decode_update(&b, &ebgp()), K::MalformedMpUnreach, 3, 1);
}

#[test]
fn duplicate_mp_reach_is_session_reset() {
    let b = body(&[], &[MP_REACH_V6, MP_REACH_V6, ORIGIN, AS_PATH], &[]);
    assert_reset(decode_update(&b, &ebgp()), K::DuplicateMpAttribute, 3, 1);
}

#[test]
fn mp_reach_for_unnegotiated_family_is_discarded() {
    let ctx = SessionContext {
        families: vec![AfiSafi::IPV4_UNICAST],
        ..ebgp()
    };
    let (u, d) = discarded(decode_update(
        &body(&[], &[MP_REACH_V6, ORIGIN, AS_PATH], &[]),
        &ctx,
    ));
    assert_eq!(
        d,
        vec![Discarded {
            attr: 14,
            reason: K::UnnegotiatedFamily
        }]
    );
    assert!(u.attributes.mp_reach.is_none());
}

#[test]
fn treat_as_withdraw_covers_every_family_and_withdrawal() {
    let unreach: &[u8] = &[0x80, 15, 8, 0, 2, 1, 32, 0x20, 0x01, 0x0d, 0xb8];
    let b = body(
        &[24, 203, 0, 113],
        &[MP_REACH_V6, unreach, &[0x40, 1, 1, 9], AS_PATH, NEXT_HOP],
        NLRI,
    );
    assert_withdraw(
        decode_update(&b, &ebgp()),
        K::MalformedOrigin,
        &[
            "203.0.113.0/24",
            "198.51.100.0/24",
            "2001:db8::/32",
            "2001:db8:1::/48",
        ],
    );
}

// ---- attribute discard ----

#[test]
fn duplicate_attribute_keeps_the_first() {
    let b = body(
        &[],
        &[
            ORIGIN,
            AS_PATH,
            NEXT_HOP,
            &[0x80, 4, 4, 0, 0, 0, 7],
            &[0x80, 4, 4, 0, 0, 0, 9],
        ],
        NLRI,
    );
    let (u, d) = discarded(decode_update(&b, &ebgp()));
    assert_eq!(
        d,
        vec![Discarded {
            attr: 4,
            reason: K::DuplicateAttribute
        }]
    );
    assert_eq!(u.attributes.med, Some(7));
}

#[test]
fn atomic_aggregate_bad_length_is_discarded() {
    let b = body(&[], &[ORIGIN, AS_PATH, NEXT_HOP, &[0x40, 6, 1, 0]], NLRI);
    let (u, d) = discarded(decode_update(&b, &ebgp()));
    assert_eq!(d[0].reason, K::MalformedAtomicAggregate);
    assert!(!u.attributes.atomic_aggregate);
}

#[test]
fn aggregator_bad_length_is_discarded() {
    // 6 octets is the 2-octet form; this session is 4-octet.
    let b = body(
        &[],
        &[
            ORIGIN,
            AS_PATH,
            NEXT_HOP,
            &[0xc0, 7, 6, 0xfd, 0xe9, 192, 0, 2, 1],
        ],
        NLRI,
    );
    let (u, d) = discarded(decode_update(&b, &ebgp()));
    assert_eq!(d[0].reason, K::MalformedAggregator);
    assert!(u.attributes.aggregator.is_none());
}

#[test]
fn local_pref_from_ebgp_is_discarded_but_kept_from_ibgp() {
    let lp: &[u8] = &[0x40, 5, 4, 0, 0, 0, 200];
    let b = body(&[], &[ORIGIN, AS_PATH, NEXT_HOP, lp], NLRI);
    let (u, d) = discarded(decode_update(&b, &ebgp()));
    assert_eq!(d[0].reason, K::LocalPrefFromEbgp);
    assert_eq!(u.attributes.local_pref, None);
    assert_eq!(
        parsed(decode_update(&b, &ibgp())).attributes.local_pref,
        Some(200)
    );
}

#[test]
fn route_reflection_attributes_from_ebgp_are_discarded() {
    let b = body(
        &[],
        &[
            ORIGIN,
            AS_PATH,
            NEXT_HOP,
            &[0x80, 9, 4, 1, 1, 1, 1],
            &[0x80, 10, 4, 2, 2, 2, 2],
        ],
        NLRI,
    );
    let (u, d) = discarded(decode_update(&b, &ebgp()));
    let kinds: Vec<K> = d.iter().map(|d| d.reason).collect();
    assert_eq!(kinds, vec![K::OriginatorIdFromEbgp, K::ClusterListFromEbgp]);
    assert!(u.attributes.originator_id.is_none() && u.attributes.cluster_list.is_empty());
}

#[test]
fn as4_path_from_four_octet_speaker_is_discarded() {
    let b = body(
        &[],
        &[
            ORIGIN,
            AS_PATH,
            NEXT_HOP,
            &[0xc0, 17, 6, 2, 1, 0, 1, 0x11, 0x70],
        ],
        NLRI,
    );
    let (_, d) = discarded(decode_update(&b, &ebgp()));
    assert_eq!(d[0].reason, K::As4AttributeFromNewSpeaker);
}

#[test]
fn most_severe_error_wins() {
    // Discard (atomic aggregate) + withdraw (origin) -> withdraw.
    let b = body(
        &[],
        &[&[0x40, 1, 1, 7], AS_PATH, NEXT_HOP, &[0x40, 6, 1, 0]],
        NLRI,
    );
    assert_withdraw(
        decode_update(&b, &ebgp()),
        K::MalformedOrigin,
        &["198.51.100.0/24"],
    );
    // Withdraw (origin) + reset (unrecognized well-known) -> reset.
    let b = body(
        &[],
        &[&[0x40, 1, 1, 7], AS_PATH, NEXT_HOP, &[0x40, 99, 0]],
        NLRI,
    );
    assert_reset(decode_update(&b, &ebgp()), K::UnrecognizedWellKnown, 3, 2);
}

// ---- unknown attributes ----

#[test]
fn unknown_optional_transitive_passes_through_with_partial() {
    let b = body(
        &[],
        &[
            ORIGIN,
            AS_PATH,
            NEXT_HOP,
            &[0xc0, 99, 2, 0xab, 0xcd],
            &[0x80, 98, 1, 0xee],
        ],
        NLRI,
    );
    let u = parsed(decode_update(&b, &ebgp()));
    assert_eq!(
        u.attributes.unknown,
        vec![
            RawAttribute {
                flags: 0xc0,
                type_code: 99,
                value: vec![0xab, 0xcd]
            },
            RawAttribute {
                flags: 0x80,
                type_code: 98,
                value: vec![0xee]
            },
        ]
    );
    let mut out = u.attributes.clone();
    out.propagate_unknown();
    assert_eq!(
        out.unknown,
        vec![RawAttribute {
            flags: 0xe0,
            type_code: 99,
            value: vec![0xab, 0xcd]
        }]
    );
    let mut wire = Vec::new();
    out.encode(true, &mut wire).unwrap();
    assert!(wire.windows(5).any(|w| w == [0xe0, 99, 2, 0xab, 0xcd]));
    assert!(!wire.windows(2).any(|w| w == [0x80, 98]));
}

#[test]
fn unrecognized_well_known_is_session_reset() {
    let b = body(&[], &[ORIGIN, AS_PATH, NEXT_HOP, &[0x40, 99, 0]], NLRI);
    assert_reset(decode_update(&b, &ebgp()), K::UnrecognizedWellKnown, 3, 2);
}

// ---- 2-octet sessions (RFC 6793) ----

fn two_octet() -> SessionContext {
    SessionContext {
        four_octet_as: false,
        ..ebgp()
    }
}

fn as2(asns: &[u16]) -> Vec<u8> {
    let mut v = vec![0x40, 2, (2 + 2 * asns.len()) as u8, 2, asns.len() as u8];
    asns.iter()
        .for_each(|a| v.extend_from_slice(&a.to_be_bytes()));
    v
}

fn as4(asns: &[u32]) -> Vec<u8> {
    let mut v = vec![0xc0, 17, (2 + 4 * asns.len()) as u8, 2, asns.len() as u8];
    asns.iter()
        .for_each(|a| v.extend_from_slice(&a.to_be_bytes()));
    v
}

#[test]
fn as4_path_merges_on_two_octet_session() {
    let b = body(
        &[],
        &[
            ORIGIN,
            &as2(&[300, 100, 23456, 200]),
            NEXT_HOP,
            &as4(&[100, 70000, 200]),
        ],
        NLRI,
    );
    let u = parsed(decode_update(&b, &two_octet()));
    assert_eq!(
        u.attributes.as_path,
        Some(AsPath::from_sequence(vec![300, 100, 70000, 200]))
    );
}

#[test]
fn longer_as4_path_is_ignored() {
    let b = body(
        &[],
        &[ORIGIN, &as2(&[23456]), NEXT_HOP, &as4(&[100, 70000])],
        NLRI,
    );
    let u = parsed(decode_update(&b, &two_octet()));
    assert_eq!(
        u.attributes.as_path,
        Some(AsPath::from_sequence(vec![23456]))
    );
}

#[test]
fn as4_aggregator_used_only_with_as_trans_aggregator() {
    let agg_trans: &[u8] = &[0xc0, 7, 6, 0x5b, 0xa0, 10, 0, 0, 1];
    let agg_real: &[u8] = &[0xc0, 7, 6, 0, 100, 10, 0, 0, 1];
    let as4_agg: &[u8] = &[0xc0, 18, 8, 0, 1, 0x11, 0x70, 10, 0, 0, 2];
    let b = body(
        &[],
        &[
            ORIGIN,
            &as2(&[23456]),
            NEXT_HOP,
            agg_trans,
            &as4(&[70000]),
            as4_agg,
        ],
        NLRI,
    );
    let a = parsed(decode_update(&b, &two_octet())).attributes;
    assert_eq!(
        a.aggregator.map(|g| (g.asn, g.address.octets())),
        Some((70000, [10, 0, 0, 2]))
    );
    assert_eq!(a.as_path, Some(AsPath::from_sequence(vec![70000])));
    // AGGREGATOR not AS_TRANS: both AS4 attributes are ignored (RFC 6793 4.2.3).
    let b = body(
        &[],
        &[
            ORIGIN,
            &as2(&[23456]),
            NEXT_HOP,
            agg_real,
            &as4(&[70000]),
            as4_agg,
        ],
        NLRI,
    );
    let a = parsed(decode_update(&b, &two_octet())).attributes;
    assert_eq!(a.aggregator.map(|g| g.asn), Some(100));
    assert_eq!(a.as_path, Some(AsPath::from_sequence(vec![23456])));
}

#[test]
fn malformed_as4_path_is_discarded() {
    let b = body(
        &[],
        &[ORIGIN, &as2(&[23456]), NEXT_HOP, &[0xc0, 17, 3, 2, 1, 0]],
        NLRI,
    );
    let (u, d) = discarded(decode_update(&b, &two_octet()));
    assert_eq!(d[0].reason, K::MalformedAs4Path);
    assert_eq!(
        u.attributes.as_path,
        Some(AsPath::from_sequence(vec![23456]))
    );
}

#[test]
fn two_octet_encoding_emits_as4_path_and_round_trips() {
    let attrs = PathAttributes {
        origin: Some(oxr_bgp::packet::attribute::Origin::Igp),
        as_path: Some(AsPath::from_sequence(vec![100, 70000, 200])),
        next_hop: Some("192.0.2.1".parse().unwrap()),
        ..Default::default()
    };
    let u = Update {
        withdrawn: vec![],
        attributes: attrs,
        nlri: vec!["198.51.100.0/24".parse().unwrap()],
    };
    let wire = Message::Update(u.clone()).encode(&two_octet()).unwrap();
    assert!(wire.windows(2).any(|w| w == [0xc0, 17]), "AS4_PATH present");
    assert_eq!(
        Message::decode(&wire, &two_octet()).unwrap(),
        Message::Update(u)
    );
}

// ---- header and other messages ----

#[test]
fn header_errors_map_to_notifications() {
    let mut ka = vec![0xff; 16];
    ka.extend_from_slice(&[0, 19, 4]);
    assert_eq!(Message::decode(&ka, &ebgp()).unwrap(), Message::Keepalive);
    let mut bad = ka.clone();
    bad[3] = 0;
    assert_eq!(Message::decode(&bad, &ebgp()), Err(DecodeError::BadMarker));
    let mut bad = ka.clone();
    bad[18] = 9;
    assert_eq!(
        Message::decode(&bad, &ebgp())
            .unwrap_err()
            .notification()
            .map(|n| (n.code, n.subcode, n.data)),
        Some((1, 3, vec![9]))
    );
    let mut bad = ka.clone();
    bad[17] = 20;
    bad.push(0);
    assert_eq!(
        Message::decode(&bad, &ebgp()),
        Err(DecodeError::BadLength(20))
    );
    assert_eq!(
        Message::decode(&ka[..10], &ebgp()),
        Err(DecodeError::ShortHeader)
    );
    // Length field says 19 but two bytes follow: not one message.
    let mut long = ka.clone();
    long.extend_from_slice(&[0, 0]);
    assert_eq!(
        Message::decode(&long, &ebgp()),
        Err(DecodeError::BadLength(19))
    );
}

#[test]
fn truncated_open_is_an_open_error() {
    let mut m = vec![0xff; 16];
    // Length 29 with a parameter length pointing past the end.
    m.extend_from_slice(&[0, 29, 1, 4, 0xfd, 0xe9, 0, 90, 192, 0, 2, 1, 5]);
    let e = Message::decode(&m, &ebgp()).unwrap_err();
    assert_eq!(e.notification().map(|n| n.code), Some(2));
}

#[test]
fn open_with_version_3_names_version_4() {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&[0, 29, 1, 3, 0xfd, 0xe9, 0, 90, 192, 0, 2, 1, 0]);
    let n = Message::decode(&m, &ebgp())
        .unwrap_err()
        .notification()
        .unwrap();
    assert_eq!((n.code, n.subcode, n.data), (2, 1, vec![0, 4]));
}

#[test]
fn short_notification_is_never_answered() {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&[0, 21, 3, 6, 2]);
    assert!(matches!(
        Message::decode(&m, &ebgp()),
        Ok(Message::Notification(_))
    ));
    let e = oxr_bgp::packet::header::Header::decode(&[&[0xff; 16][..], &[0, 20, 3]].concat())
        .unwrap_err();
    assert_eq!(e, DecodeError::BadLength(20));
}
