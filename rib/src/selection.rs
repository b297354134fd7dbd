//! Route selection for one prefix: a pure function of its candidates.
//!
//! Lowest administrative distance wins, then lowest metric; remaining ties are broken by
//! client number (the order in which (protocol, instance) pairs first connected) so the
//! choice is deterministic. Every forwarding candidate equal to the best in (distance,
//! metric) contributes its next hops (ECMP), up to the configured width. Stale candidates
//! still count: a protocol that restarts must not move the forwarding state.

use smallvec::SmallVec;

use crate::table::{Action, Candidate, ClientId, Nexthop, NhSet};

/// What selection chose for a prefix.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Selected {
    /// The best candidate's client: the route's origin in show, FIB and redistribution.
    pub primary: ClientId,
    /// Distance of the best candidates.
    pub distance: u32,
    /// Metric of the best candidates.
    pub metric: u32,
    /// Tag of the primary candidate.
    pub tag: u32,
    /// Action of the primary candidate.
    pub action: Action,
    /// Next hops: the primary's, merged with every equal forwarding candidate's.
    pub nexthops: NhSet,
}

impl Selected {
    /// Whether candidate `c` is one of those selected (the primary, or an equal-cost
    /// forwarding candidate whose next hops were merged).
    pub fn includes(&self, c: &Candidate) -> bool {
        c.client == self.primary
            || (self.action == Action::Forward
                && c.action == Action::Forward
                && c.distance == self.distance
                && c.metric == self.metric)
    }
}

/// Chooses among a prefix's candidates; None if there are none.
pub fn select(cands: &[Candidate], ecmp_width: usize) -> Option<Selected> {
    let width = ecmp_width.max(1);
    let best = cands
        .iter()
        .min_by_key(|c| (c.distance, c.metric, c.client))?;
    let sel = |nexthops| Selected {
        primary: best.client,
        distance: best.distance,
        metric: best.metric,
        tag: best.tag,
        action: best.action,
        nexthops,
    };
    if best.action != Action::Forward {
        return Some(sel(best.nexthops.clone()));
    }
    let equal = |c: &&Candidate| {
        c.action == Action::Forward && c.distance == best.distance && c.metric == best.metric
    };
    let ties = cands.iter().filter(equal).count();
    if ties == 1 && best.nexthops.len() <= width {
        // The common case: no merge, no allocation.
        return Some(sel(best.nexthops.clone()));
    }
    let mut order: SmallVec<[&Candidate; 4]> = cands.iter().filter(equal).collect();
    order.sort_by_key(|c| c.client);
    let mut merged: SmallVec<[Nexthop; 8]> = SmallVec::new();
    'outer: for c in order {
        for nh in c.nexthops.iter() {
            if merged.len() == width {
                break 'outer;
            }
            if !merged.contains(nh) {
                merged.push(nh.clone());
            }
        }
    }
    Some(sel(merged.into_iter().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn nh(gw: &str) -> Nexthop {
        Nexthop {
            gateway: Some(gw.parse().unwrap()),
            interface: None,
            weight: 0,
        }
    }

    fn cand(client: ClientId, distance: u32, metric: u32, gws: &[&str]) -> Candidate {
        Candidate {
            client,
            distance,
            metric,
            tag: 0,
            action: Action::Forward,
            stale: false,
            since: 0,
            nexthops: gws.iter().map(|g| nh(g)).collect::<Vec<_>>().into(),
        }
    }

    #[test]
    fn no_candidates_selects_nothing() {
        assert_eq!(select(&[], 8), None);
    }

    #[test]
    fn lowest_distance_wins_over_metric() {
        let s = select(
            &[
                cand(1, 110, 1, &["10.0.0.1"]),
                cand(2, 20, 500, &["10.0.0.2"]),
            ],
            8,
        )
        .unwrap();
        assert_eq!(s.primary, 2);
        assert_eq!(s.distance, 20);
        assert_eq!(&*s.nexthops, &[nh("10.0.0.2")]);
    }

    #[test]
    fn equal_distance_lowest_metric_wins() {
        let s = select(
            &[
                cand(1, 110, 20, &["10.0.0.1"]),
                cand(2, 110, 10, &["10.0.0.2"]),
            ],
            8,
        )
        .unwrap();
        assert_eq!(s.primary, 2);
        assert_eq!(s.metric, 10);
        assert_eq!(s.nexthops.len(), 1);
    }

    #[test]
    fn equal_best_merge_next_hops_across_protocols() {
        let cs = [
            cand(3, 1, 0, &["10.0.0.3"]),
            cand(2, 1, 0, &["10.0.0.2", "10.0.0.3"]),
            cand(4, 5, 0, &["10.0.0.4"]),
        ];
        let s = select(&cs, 8).unwrap();
        assert_eq!(s.primary, 2, "ties broken by client number");
        // Client order, duplicates merged, the worse candidate left out.
        assert_eq!(&*s.nexthops, &[nh("10.0.0.2"), nh("10.0.0.3")]);
        assert!(s.includes(&cs[0]) && s.includes(&cs[1]) && !s.includes(&cs[2]));
    }

    #[test]
    fn ecmp_is_capped_at_width() {
        let cs = [
            cand(1, 1, 0, &["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
            cand(2, 1, 0, &["10.0.0.4"]),
        ];
        let s = select(&cs, 2).unwrap();
        assert_eq!(&*s.nexthops, &[nh("10.0.0.1"), nh("10.0.0.2")]);
        let one = select(&cs[..1], 1).unwrap();
        assert_eq!(&*one.nexthops, &[nh("10.0.0.1")]);
    }

    #[test]
    fn stale_candidates_still_count() {
        let mut c = cand(1, 1, 0, &["10.0.0.1"]);
        c.stale = true;
        let s = select(&[c, cand(2, 5, 0, &["10.0.0.2"])], 8).unwrap();
        assert_eq!(s.primary, 1);
    }

    #[test]
    fn blackhole_best_is_not_merged() {
        let mut bh = cand(1, 1, 0, &[]);
        bh.action = Action::Blackhole;
        let s = select(&[bh, cand(2, 1, 0, &["10.0.0.2"])], 8).unwrap();
        assert_eq!(s.action, Action::Blackhole);
        assert!(s.nexthops.is_empty());
    }

    #[test]
    fn single_winner_shares_the_interned_set() {
        let c = cand(1, 1, 0, &["10.0.0.1"]);
        let s = select(std::slice::from_ref(&c), 8).unwrap();
        assert!(Arc::ptr_eq(&s.nexthops, &c.nexthops));
    }
}
