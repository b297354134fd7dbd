//! Interning of next-hop sets and interface names: a full table has a million routes but a
//! handful of distinct next-hop sets, so each route holds an `Arc` to a shared set instead
//! of its own allocation.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::publish::RawNexthop;
use crate::table::{Nexthop, NhSet};

/// Shared next-hop sets and interface names.
#[derive(Debug, Default)]
pub struct Interner {
    sets: HashSet<NhSet>,
    names: HashSet<Arc<str>>,
    /// The last set returned: consecutive routes of a batch usually share next hops.
    last: Option<NhSet>,
    /// Size after the last collection, to collect when the set has doubled.
    collected_at: usize,
}

fn same(raw: &[RawNexthop], set: &[Nexthop]) -> bool {
    raw.len() == set.len()
        && raw.iter().zip(set).all(|(r, n)| {
            r.gateway == n.gateway
                && r.weight == n.weight
                && r.interface.as_str() == n.interface.as_deref().unwrap_or("")
        })
}

impl Interner {
    /// An interned interface name.
    pub fn name(&mut self, name: &str) -> Arc<str> {
        if let Some(n) = self.names.get(name) {
            return n.clone();
        }
        let n: Arc<str> = Arc::from(name);
        self.names.insert(n.clone());
        n
    }

    /// The shared set equal to `raw`.
    pub fn set(&mut self, raw: &[RawNexthop]) -> NhSet {
        if let Some(last) = &self.last {
            if same(raw, last) {
                return last.clone();
            }
        }
        let nhs: SmallVec<[Nexthop; 4]> = raw
            .iter()
            .map(|r| Nexthop {
                gateway: r.gateway,
                interface: (!r.interface.is_empty()).then(|| self.name(&r.interface)),
                weight: r.weight,
            })
            .collect();
        let set = match self.sets.get(&nhs[..]) {
            Some(s) => s.clone(),
            None => {
                self.collect_garbage();
                let s: NhSet = nhs.into_iter().collect();
                self.sets.insert(s.clone());
                s
            }
        };
        self.last = Some(set.clone());
        set
    }

    /// Drops sets no route uses any more, once the interner has doubled since last time.
    fn collect_garbage(&mut self) {
        if self.sets.len() < 2 * self.collected_at + 1024 {
            return;
        }
        self.sets.retain(|s| Arc::strong_count(s) > 1);
        self.collected_at = self.sets.len();
    }

    /// Number of distinct sets held.
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    /// Whether no set is held.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }
}

/// A pool of shared immutable values: a full table is a million prefixes but a handful of
/// distinct candidate lists, selections and resolutions, so an entry state (see
/// [`crate::table::States`], itself shared by the prefixes) holds one pointer to each shared
/// value instead of its own copy. Equal values are one allocation, so a state can be
/// identified by the addresses of its parts.
#[derive(Debug)]
pub struct Pool<T> {
    set: HashSet<Arc<T>>,
    /// The last value returned: consecutive routes of a batch usually share it.
    last: Option<Arc<T>>,
    /// Size after the last collection, to collect when the pool has doubled.
    collected_at: usize,
}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool {
            set: HashSet::new(),
            last: None,
            collected_at: 0,
        }
    }
}

impl<T: Hash + Eq> Pool<T> {
    /// The shared value equal to `v`.
    pub fn get(&mut self, v: T) -> Arc<T> {
        if let Some(last) = &self.last {
            if **last == v {
                return last.clone();
            }
        }
        let a = match self.set.get(&v) {
            Some(a) => a.clone(),
            None => {
                if self.set.len() >= 2 * self.collected_at + 1024 {
                    // Drop values nothing uses any more (only the pool holds them).
                    self.set.retain(|s| Arc::strong_count(s) > 1);
                    self.collected_at = self.set.len();
                }
                let a = Arc::new(v);
                self.set.insert(a.clone());
                a
            }
        };
        self.last = Some(a.clone());
        a
    }

    /// Number of distinct values held.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether no value is held.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(gw: &str, ifname: &str) -> RawNexthop {
        RawNexthop {
            gateway: Some(gw.parse().unwrap()),
            interface: ifname.to_string(),
            weight: 0,
        }
    }

    #[test]
    fn equal_sets_are_shared() {
        let mut i = Interner::default();
        let a = i.set(&[raw("10.0.0.1", "")]);
        let b = i.set(&[raw("10.0.0.2", "eth0")]);
        let c = i.set(&[raw("10.0.0.1", "")]);
        assert!(Arc::ptr_eq(&a, &c));
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(b[0].interface.as_deref(), Some("eth0"));
        assert_eq!(a[0].interface, None);
        assert_eq!(i.len(), 2);
    }

    #[test]
    fn pool_shares_equal_values_and_collects_unused_ones() {
        let mut p: Pool<(u32, u32)> = Pool::default();
        let a = p.get((1, 2));
        let _b = p.get((3, 4));
        assert!(Arc::ptr_eq(&a, &p.get((1, 2))));
        assert_eq!(p.len(), 2);
        // Fill past the collection threshold with values dropped at once.
        for i in 0..2000 {
            drop(p.get((10, i)));
        }
        assert!(p.len() < 2000, "unused values are collected");
        assert!(Arc::ptr_eq(&a, &p.get((1, 2))), "used values stay shared");
    }
}
