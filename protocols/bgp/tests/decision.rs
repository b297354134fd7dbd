//! Decision process tie-breakers and the Loc-RIB.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use ipnet::IpNet;
use oxr_bgp::decision::{select, PeerInfo};
use oxr_bgp::packet::attribute::{AsPath, AsSegment, Origin, PathAttributes, SegmentType};
use oxr_bgp::rib::{AttrInterner, LocRib, RibPath};

fn peer(id: u32, asn: u32, ibgp: bool) -> Arc<PeerInfo> {
    Arc::new(PeerInfo {
        id,
        address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, id as u8)),
        router_id: Ipv4Addr::new(192, 0, 2, 100 - id as u8),
        asn,
        ibgp,
    })
}

fn attrs(path: &[u32]) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::from_sequence(path.to_vec())),
        next_hop: Some(Ipv4Addr::new(10, 0, 0, 9)),
        ..Default::default()
    }
}

fn path(p: Arc<PeerInfo>, a: PathAttributes) -> RibPath {
    RibPath {
        peer: p,
        attrs: Arc::new(a),
        weight: 0,
        igp_cost: Some(10),
        stale: false,
    }
}

fn best(paths: &[RibPath]) -> usize {
    select(paths, 1).best.unwrap()
}

#[test]
fn weight_then_local_pref_win() {
    let mut a = path(peer(1, 65001, false), attrs(&[65001]));
    let b = path(peer(2, 65002, false), attrs(&[65002, 1, 2]));
    assert_eq!(best(&[a.clone(), b.clone()]), 0);
    let b_lp = path(
        peer(2, 65002, false),
        PathAttributes {
            local_pref: Some(200),
            ..attrs(&[65002, 1, 2])
        },
    );
    assert_eq!(best(&[a.clone(), b_lp.clone()]), 1);
    a.weight = 10;
    assert_eq!(best(&[a, b_lp]), 0);
}

#[test]
fn as_set_counts_one() {
    let mut with_set = attrs(&[65001]);
    with_set.as_path.as_mut().unwrap().segments.push(AsSegment {
        kind: SegmentType::Set,
        asns: vec![1, 2, 3, 4],
    });
    let a = path(peer(1, 65001, false), with_set);
    let b = path(peer(2, 65002, false), attrs(&[65002, 7, 8]));
    assert_eq!(best(&[b, a]), 1);
}

#[test]
fn origin_breaks_equal_length() {
    let a = path(
        peer(1, 65001, false),
        PathAttributes {
            origin: Some(Origin::Incomplete),
            ..attrs(&[65001])
        },
    );
    let b = path(
        peer(2, 65002, false),
        PathAttributes {
            origin: Some(Origin::Egp),
            ..attrs(&[65002])
        },
    );
    assert_eq!(best(&[a, b]), 1);
}

#[test]
fn med_compares_only_within_the_same_neighbour_as() {
    let med = |m: Option<u32>, first: u32| PathAttributes {
        med: m,
        ..attrs(&[first, 9])
    };
    // Same neighbour AS: lower MED wins; missing MED counts as 0.
    let a = path(peer(1, 65001, false), med(Some(50), 65001));
    let b = path(peer(2, 65001, false), med(None, 65001));
    assert_eq!(best(&[a.clone(), b]), 1);
    // Different neighbour AS: MED ignored, falls to router id (peer 2 has the lower).
    let c = path(peer(2, 65002, false), med(Some(1000), 65002));
    assert_eq!(best(&[a, c]), 1);
}

#[test]
fn med_elimination_does_not_depend_on_order() {
    // The classic MED intransitivity: A(AS1,MED 10) B(AS2,MED 5) C(AS1,MED 5).
    let a = path(
        peer(3, 1, false),
        PathAttributes {
            med: Some(10),
            ..attrs(&[1, 9])
        },
    );
    let b = path(
        peer(2, 2, false),
        PathAttributes {
            med: Some(5),
            ..attrs(&[2, 9])
        },
    );
    let c = path(
        peer(1, 1, false),
        PathAttributes {
            med: Some(5),
            ..attrs(&[1, 9])
        },
    );
    let orders = [[&a, &b, &c], [&c, &b, &a], [&b, &a, &c], [&a, &c, &b]];
    let winners: Vec<u32> = orders
        .iter()
        .map(|o| {
            let v: Vec<RibPath> = o.iter().map(|p| (*p).clone()).collect();
            v[best(&v)].peer.id
        })
        .collect();
    assert!(winners.windows(2).all(|w| w[0] == w[1]), "{winners:?}");
}

#[test]
fn ebgp_beats_ibgp_then_igp_cost() {
    let i = path(peer(1, 65000, true), attrs(&[65009]));
    let e = path(peer(2, 65009, false), attrs(&[65009]));
    assert_eq!(best(&[i.clone(), e]), 1);
    let mut near = path(peer(3, 65000, true), attrs(&[65009]));
    near.igp_cost = Some(1);
    assert_eq!(best(&[i.clone(), near]), 1);
    let mut unresolved = path(
        peer(4, 65000, true),
        PathAttributes {
            local_pref: Some(999),
            ..attrs(&[65009])
        },
    );
    unresolved.igp_cost = None;
    assert_eq!(best(&[i, unresolved]), 0);
}

#[test]
fn cluster_list_then_originator_id_then_address() {
    let rr = |id, cl: usize, orig: Option<[u8; 4]>| {
        path(
            peer(id, 65000, true),
            PathAttributes {
                cluster_list: vec![Ipv4Addr::new(1, 1, 1, 1); cl],
                originator_id: orig.map(Ipv4Addr::from),
                ..attrs(&[65009])
            },
        )
    };
    assert_eq!(best(&[rr(1, 2, None), rr(2, 1, None)]), 1);
    // ORIGINATOR_ID stands in for the router id.
    assert_eq!(
        best(&[rr(1, 1, Some([1, 0, 0, 1])), rr(2, 1, Some([1, 0, 0, 2]))]),
        0
    );
    // All equal: lower peer address.
    assert_eq!(
        best(&[rr(2, 1, Some([1, 0, 0, 1])), rr(1, 1, Some([1, 0, 0, 1]))]),
        1
    );
}

#[test]
fn multipath_takes_paths_equal_up_to_igp_cost() {
    let a = path(peer(1, 65001, false), attrs(&[65001, 9]));
    let b = path(peer(2, 65002, false), attrs(&[65002, 9]));
    let mut c = path(peer(3, 65003, false), attrs(&[65003, 9]));
    c.igp_cost = Some(50);
    let d = path(peer(4, 65004, false), attrs(&[65004, 9, 9]));
    let s = select(&[a, b, c, d], 8);
    assert_eq!(s.best, Some(1));
    assert_eq!(s.multipath, vec![1, 0]);
}

#[test]
fn loc_rib_reselects_on_update_and_withdraw() {
    let mut interner = AttrInterner::new();
    let mut rib = LocRib::new(1);
    let pfx: IpNet = "198.51.100.0/24".parse().unwrap();
    let shared = interner.intern(attrs(&[65001]));
    let p1 = peer(1, 65001, false);
    let p2 = peer(2, 65002, false);
    assert!(rib.update(
        pfx,
        RibPath {
            peer: p1.clone(),
            attrs: shared.clone(),
            weight: 0,
            igp_cost: Some(1),
            stale: false
        }
    ));
    let better = interner.intern(PathAttributes {
        local_pref: Some(300),
        ..attrs(&[65002])
    });
    assert!(rib.update(
        pfx,
        RibPath {
            peer: p2.clone(),
            attrs: better,
            weight: 0,
            igp_cost: Some(1),
            stale: false
        }
    ));
    assert_eq!(rib.get(&pfx).unwrap().best().unwrap().peer.id, 2);
    assert!(rib.withdraw(pfx, 2));
    assert_eq!(rib.get(&pfx).unwrap().best().unwrap().peer.id, 1);
    assert!(!rib.withdraw(pfx, 2), "withdrawing twice changes nothing");
    assert!(rib.withdraw(pfx, 1));
    assert!(rib.is_empty());
}

#[test]
fn interner_shares_equal_sets() {
    let mut i = AttrInterner::new();
    let a = i.intern(attrs(&[1, 2]));
    let b = i.intern(attrs(&[1, 2]));
    assert!(Arc::ptr_eq(&a, &b));
    let c = i.intern(attrs(&[3]));
    assert_eq!(i.len(), 2);
    drop(c);
    assert_eq!(i.purge(), 1);
    assert_eq!(i.len(), 1);
}

/// The RFC 4271 9.1.2.2 (c) rule written out pairwise, as the reference for
/// the sorted implementation: a path survives the MED step when no other
/// path of the same neighbour AS has a lower MED.
fn med_survivor_ok(paths: &[RibPath], i: usize) -> bool {
    let nas = |p: &RibPath| p.attrs.as_path.as_ref().and_then(|a| a.neighbor_as());
    let med = |p: &RibPath| p.attrs.med.unwrap_or(0);
    !paths
        .iter()
        .any(|q| nas(q) == nas(&paths[i]) && med(q) < med(&paths[i]))
}

proptest::proptest! {
    /// Many candidates (neighbour ASes from a small set, random MEDs): the
    /// best survives the pairwise MED rule, does not depend on the order of
    /// the candidates, and is the head of the multipath set.
    #[test]
    fn best_of_many_obeys_med_and_ignores_order(
        spec in proptest::collection::vec((1u32..4, proptest::option::of(0u32..3)), 2..40),
        rot in 0usize..40,
    ) {
        let paths: Vec<RibPath> = spec
            .iter()
            .enumerate()
            .map(|(i, (nas, med))| {
                path(
                    peer(i as u32 + 1, *nas, false),
                    PathAttributes { med: *med, ..attrs(&[*nas, 9]) },
                )
            })
            .collect();
        let b = best(&paths);
        proptest::prop_assert!(med_survivor_ok(&paths, b));
        proptest::prop_assert_eq!(select(&paths, 64).multipath[0], b);
        let mut turned = paths.clone();
        turned.rotate_left(rot % paths.len());
        let b2 = best(&turned);
        proptest::prop_assert_eq!(turned[b2].peer.id, paths[b].peer.id);
    }
}
