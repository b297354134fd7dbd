//! Property tests: Poptrie lookups equal a linear-scan longest match, after a bulk build and
//! after random sequences of inserts and removes, for IPv4 and IPv6.

use oxr_lpm::key::Key;
use oxr_lpm::reference::naive_lookup;
use oxr_lpm::{NextHopId, Poptrie};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// A few anchor addresses so that random prefixes nest and overlap instead of scattering.
const SEEDS4: [u32; 4] = [0x0A00_0000, 0x0A01_0200, 0xC0A8_FFFF, 0xFFFF_FFFF];
const SEEDS6: [u128; 3] = [
    0x2001_0db8_0000_0000_0000_0000_0000_0000,
    0x2001_0db8_0001_0002_0000_0000_0000_0001,
    0xffff_ffff_ffff_ffff_ffff_ffff_ffff_ffff,
];

/// Addresses near a seed: the seed with its low `k` bits randomised.
fn addr4() -> impl Strategy<Value = u32> {
    prop_oneof![
        (0..SEEDS4.len(), any::<u32>(), 0u32..=32)
            .prop_map(|(s, r, k)| { SEEDS4[s] ^ r.checked_shr(32 - k).unwrap_or(0) }),
        any::<u32>(),
    ]
}

fn addr6() -> impl Strategy<Value = u128> {
    prop_oneof![
        (0..SEEDS6.len(), any::<u128>(), 0u32..=128)
            .prop_map(|(s, r, k)| { SEEDS6[s] ^ r.checked_shr(128 - k).unwrap_or(0) }),
        any::<u128>(),
    ]
}

fn route4() -> impl Strategy<Value = (u32, u8, u32)> {
    // Lengths around the level boundaries (18, 24, 30) are the interesting ones.
    let len = prop_oneof![0u8..=32, 16u8..=26, 28u8..=32];
    (addr4(), len, 0u32..6).prop_map(|(a, l, n)| (a.mask(u32::from(l)), l, n))
}

fn route6() -> impl Strategy<Value = (u128, u8, u32)> {
    let len = prop_oneof![0u8..=128, 14u8..=30, 44u8..=64, 120u8..=128];
    (addr6(), len, 0u32..6).prop_map(|(a, l, n)| (a.mask(u32::from(l)), l, n))
}

#[derive(Clone, Debug)]
enum Op<R> {
    Insert(R),
    /// Remove the i-th (modulo) route present, or nothing when empty.
    RemoveExisting(usize),
    /// Remove a prefix that is probably absent.
    RemoveAny(R),
}

fn ops<R, S>(route: fn() -> S) -> impl Strategy<Value = Vec<Op<R>>>
where
    R: Clone + std::fmt::Debug,
    S: Strategy<Value = R> + 'static,
{
    prop::collection::vec(
        prop_oneof![
            3 => route().prop_map(Op::Insert),
            2 => any::<usize>().prop_map(Op::RemoveExisting),
            1 => route().prop_map(Op::RemoveAny),
        ],
        0..40,
    )
}

fn nh(v: u32) -> NextHopId {
    NextHopId::new(v).unwrap()
}

/// Checks `t` against the model on `addrs` and on the first and last address of every route.
fn check<K: Key>(
    t: &Poptrie<K>,
    model: &BTreeMap<(K, u8), u32>,
    addrs: &[K],
) -> Result<(), TestCaseError> {
    let routes: Vec<(K, u8, NextHopId)> = model.iter().map(|(&(a, l), &n)| (a, l, nh(n))).collect();
    let mut probe: Vec<K> = addrs.to_vec();
    for &(a, l, _) in &routes {
        probe.push(a);
        probe.push(a.last(u32::from(l)));
    }
    let mut out = vec![None; probe.len()];
    t.lookup_batch(&probe, &mut out);
    for (a, o) in probe.iter().zip(&out) {
        let want = naive_lookup(&routes, *a);
        prop_assert_eq!(*o, want, "batch lookup of {:x?}", a);
        prop_assert_eq!(t.lookup(*a), want, "lookup of {:x?}", a);
    }
    prop_assert_eq!(t.len(), model.len());
    Ok(())
}

fn run_ops<K: Key>(
    initial: Vec<(K, u8, u32)>,
    ops: Vec<Op<(K, u8, u32)>>,
    addrs: Vec<K>,
) -> Result<(), TestCaseError> {
    let mut model: BTreeMap<(K, u8), u32> = initial.iter().map(|&(a, l, n)| ((a, l), n)).collect();
    let mut t = Poptrie::<K>::from_routes(initial.iter().map(|&(a, l, n)| (a.to_net(l), nh(n))));
    for op in ops {
        match op {
            Op::Insert((a, l, n)) => {
                let old = model.insert((a, l), n).map(nh);
                prop_assert_eq!(t.insert(a.to_net(l), nh(n)), old);
            }
            Op::RemoveExisting(i) => {
                if let Some(&(a, l)) = model.keys().nth(i % model.len().max(1)) {
                    let old = model.remove(&(a, l)).map(nh);
                    prop_assert_eq!(t.remove(a.to_net(l)), old);
                }
            }
            Op::RemoveAny((a, l, _)) => {
                let old = model.remove(&(a, l)).map(nh);
                prop_assert_eq!(t.remove(a.to_net(l)), old);
            }
        }
        check(&t, &model, &addrs[..addrs.len().min(16)])?;
    }
    check(&t, &model, &addrs)?;
    // The patched table answers like one built from scratch.
    let fresh = Poptrie::<K>::from_routes(t.iter());
    for &a in &addrs {
        prop_assert_eq!(t.lookup(a), fresh.lookup(a));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn v4_bulk_build_matches_linear_scan(
        routes in prop::collection::vec(route4(), 0..80),
        addrs in prop::collection::vec(addr4(), 0..200),
    ) {
        let model: BTreeMap<(u32, u8), u32> = routes.iter().map(|&(a, l, n)| ((a, l), n)).collect();
        let t = Poptrie::<u32>::from_routes(routes.iter().map(|&(a, l, n)| (a.to_net(l), nh(n))));
        check(&t, &model, &addrs)?;
    }

    #[test]
    fn v4_updates_match_linear_scan(
        initial in prop::collection::vec(route4(), 0..40),
        ops in ops(route4),
        addrs in prop::collection::vec(addr4(), 0..100),
    ) {
        run_ops(initial, ops, addrs)?;
    }

    #[test]
    fn v6_bulk_build_matches_linear_scan(
        routes in prop::collection::vec(route6(), 0..80),
        addrs in prop::collection::vec(addr6(), 0..200),
    ) {
        let model: BTreeMap<(u128, u8), u32> = routes.iter().map(|&(a, l, n)| ((a, l), n)).collect();
        let t = Poptrie::<u128>::from_routes(routes.iter().map(|&(a, l, n)| (a.to_net(l), nh(n))));
        check(&t, &model, &addrs)?;
    }

    #[test]
    fn v6_updates_match_linear_scan(
        initial in prop::collection::vec(route6(), 0..40),
        ops in ops(route6),
        addrs in prop::collection::vec(addr6(), 0..100),
    ) {
        run_ops(initial, ops, addrs)?;
    }
}
