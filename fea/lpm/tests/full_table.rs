//! The real full Internet table: every prefix's first and last address resolve like a plain
//! binary trie says, for IPv4 and IPv6, after a bulk build and after update churn.
//!
//! Skips (with a printed message) when the table file is absent. The release-mode benchmark
//! runs the same check again.

mod common;

use oxr_lpm::key::Key;
use oxr_lpm::reference::BinaryTrie;
use oxr_lpm::NextHopId;

/// Every `CHURN`-th route is removed and re-added between checks.
const CHURN: usize = 7;

/// Probes the first and last address of every `step`-th prefix.
fn check<K: Key>(
    nets: &[K::Net],
    step: usize,
    t: &oxr_lpm::Poptrie<K>,
    r: &BinaryTrie<K>,
) -> usize {
    let mut probes = Vec::new();
    for n in nets.iter().step_by(step) {
        let (a, l) = K::from_net(n);
        probes.push(a);
        probes.push(a.last(u32::from(l)));
    }
    let mut out = vec![None; probes.len()];
    t.lookup_batch(&probes, &mut out);
    for (a, o) in probes.iter().zip(&out) {
        assert_eq!(*o, r.lookup(*a), "address {a:x?}");
    }
    probes.len()
}

fn run<K: Key>(nets: &[K::Net]) {
    // Unique next hops: the strictest check (no two routes share a leaf run).
    let nh = |i: usize| NextHopId::new(i as u32).unwrap();
    let routes = || nets.iter().enumerate().map(|(i, &n)| (n, nh(i)));
    let mut t = oxr_lpm::Poptrie::<K>::from_routes(routes());
    let mut r = BinaryTrie::<K>::from_routes(routes());
    let probed = check(nets, 1, &t, &r);
    // Churn: remove every CHURN-th route, check, then put them back with new next hops.
    for (i, n) in nets.iter().enumerate().step_by(CHURN) {
        assert_eq!(t.remove(*n), r.remove(*n), "remove #{i}");
    }
    check(nets, 3, &t, &r);
    for (i, n) in nets.iter().enumerate().step_by(CHURN) {
        let v = nh(nets.len() + i);
        assert_eq!(t.insert(*n, v), r.insert(*n, v));
    }
    check(nets, 3, &t, &r);
    println!(
        "{} prefixes, {probed} addresses probed, then a third of them twice",
        nets.len()
    );
}

#[test]
fn full_table_v4_matches_binary_trie() {
    let Some((v4, _)) = common::load_full_table() else {
        return;
    };
    run::<u32>(&v4);
}

#[test]
fn full_table_v6_matches_binary_trie() {
    let Some((_, v6)) = common::load_full_table() else {
        return;
    };
    run::<u128>(&v6);
}

#[test]
fn parsed_table_has_both_families() {
    let Some((v4, v6)) = common::load_full_table() else {
        return;
    };
    assert!(
        v4.len() > 100_000 && v6.len() > 10_000,
        "{} {}",
        v4.len(),
        v6.len()
    );
}
