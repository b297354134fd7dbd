//! Adj-RIB-In and Loc-RIB structures with attribute interning.
//!
//! A full table has ~1M prefixes but a few hundred thousand distinct attribute
//! sets, so each path holds an `Arc<PathAttributes>` from an [`AttrInterner`]:
//! equal sets share one allocation. Per prefix the Loc-RIB keeps the candidate
//! paths keyed by peer and the result of the decision process.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::decision::{self, Candidate, PeerId, PeerInfo};
use crate::packet::attribute::PathAttributes;

/// A fast non-cryptographic hasher (the FxHash mix) for prefix and attribute
/// keys. SipHash's DoS resistance buys nothing here: keys come from peers we
/// configured, and SipHash dominated the Loc-RIB insert profile.
#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn finish(&self) -> u64 {
        // hashbrown takes its control bits from the top: fold the low bits up.
        self.0 ^ (self.0 >> 29)
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut c = bytes.chunks_exact(8);
        for w in &mut c {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            self.add(u64::from_le_bytes(a));
        }
        let r = c.remainder();
        if !r.is_empty() {
            let mut a = [0u8; 8];
            a[..r.len()].copy_from_slice(r);
            self.add(u64::from_le_bytes(a));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
}

/// `BuildHasher` for [`FastHasher`].
pub type FastBuild = BuildHasherDefault<FastHasher>;
/// A `HashMap` with [`FastHasher`].
pub type FastMap<K, V> = HashMap<K, V, FastBuild>;

/// Deduplicates attribute sets.
#[derive(Debug, Default)]
pub struct AttrInterner {
    set: HashSet<Arc<PathAttributes>, FastBuild>,
}

impl AttrInterner {
    /// An empty interner.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the shared copy of `attrs`, adding it if new.
    pub fn intern(&mut self, attrs: PathAttributes) -> Arc<PathAttributes> {
        if let Some(a) = self.set.get(&attrs) {
            return a.clone();
        }
        let a = Arc::new(attrs);
        self.set.insert(a.clone());
        a
    }

    /// Number of distinct sets held.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Drops sets no route uses any more; returns how many.
    pub fn purge(&mut self) -> usize {
        let before = self.set.len();
        self.set.retain(|a| Arc::strong_count(a) > 1);
        before - self.set.len()
    }
}

/// The routes one peer sent us, after import policy (RFC 4271 3.2).
#[derive(Debug, Clone)]
pub struct AdjRibIn {
    /// The peer.
    pub peer: Arc<PeerInfo>,
    routes: HashMap<IpNet, Arc<PathAttributes>>,
}

impl AdjRibIn {
    /// An empty table for `peer`.
    pub fn new(peer: Arc<PeerInfo>) -> Self {
        AdjRibIn {
            peer,
            routes: HashMap::new(),
        }
    }

    /// Stores a route; returns the previous attributes.
    pub fn insert(
        &mut self,
        prefix: IpNet,
        attrs: Arc<PathAttributes>,
    ) -> Option<Arc<PathAttributes>> {
        self.routes.insert(prefix, attrs)
    }

    /// Removes a route.
    pub fn remove(&mut self, prefix: &IpNet) -> Option<Arc<PathAttributes>> {
        self.routes.remove(prefix)
    }

    /// Looks a route up.
    pub fn get(&self, prefix: &IpNet) -> Option<&Arc<PathAttributes>> {
        self.routes.get(prefix)
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// Empties the table (session down), returning the prefixes it held.
    pub fn clear(&mut self) -> Vec<IpNet> {
        self.routes.drain().map(|(p, _)| p).collect()
    }

    /// All routes, unordered.
    pub fn iter(&self) -> impl Iterator<Item = (&IpNet, &Arc<PathAttributes>)> {
        self.routes.iter()
    }
}

/// One candidate path in the Loc-RIB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RibPath {
    /// The peer it came from.
    pub peer: Arc<PeerInfo>,
    /// Interned attributes.
    pub attrs: Arc<PathAttributes>,
    /// Local weight.
    pub weight: u32,
    /// IGP cost to the next hop (`None`: unresolvable).
    pub igp_cost: Option<u32>,
    /// Kept from a restarting peer (RFC 4724) until it re-sends it or the
    /// stale timer sweeps it.
    pub stale: bool,
}

impl Candidate for RibPath {
    fn peer(&self) -> &PeerInfo {
        &self.peer
    }
    fn attrs(&self) -> &PathAttributes {
        &self.attrs
    }
    fn weight(&self) -> u32 {
        self.weight
    }
    fn igp_cost(&self) -> Option<u32> {
        self.igp_cost
    }
}

/// The candidates of one prefix: one path inline (no heap allocation, the
/// case of almost every prefix of a full table), several in a `Vec`.
#[derive(Debug, Clone)]
pub enum Paths {
    /// Exactly one candidate.
    One(RibPath),
    /// Zero or several candidates.
    Many(Vec<RibPath>),
}

impl Default for Paths {
    fn default() -> Self {
        Paths::Many(Vec::new())
    }
}

impl std::ops::Deref for Paths {
    type Target = [RibPath];
    fn deref(&self) -> &[RibPath] {
        match self {
            Paths::One(p) => std::slice::from_ref(p),
            Paths::Many(v) => v,
        }
    }
}

impl std::ops::DerefMut for Paths {
    fn deref_mut(&mut self) -> &mut [RibPath] {
        match self {
            Paths::One(p) => std::slice::from_mut(p),
            Paths::Many(v) => v,
        }
    }
}

impl<'a> IntoIterator for &'a Paths {
    type Item = &'a RibPath;
    type IntoIter = std::slice::Iter<'a, RibPath>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl Paths {
    /// Inserts at `i` (as `Vec::insert`).
    pub fn insert(&mut self, i: usize, path: RibPath) {
        match self {
            Paths::Many(v) if v.is_empty() => *self = Paths::One(path),
            Paths::Many(v) => {
                // Most prefixes have one or two paths: grow exactly.
                v.reserve_exact(1);
                v.insert(i, path);
            }
            Paths::One(_) => {
                let Paths::One(first) = std::mem::take(self) else {
                    unreachable!("matched One")
                };
                let mut v = Vec::with_capacity(2);
                v.push(first);
                v.insert(i, path);
                *self = Paths::Many(v);
            }
        }
    }

    /// Removes and returns the path at `i` (as `Vec::remove`).
    pub fn remove(&mut self, i: usize) -> RibPath {
        match self {
            Paths::One(_) => {
                assert_eq!(i, 0, "index out of bounds");
                let Paths::One(p) = std::mem::take(self) else {
                    unreachable!("matched One")
                };
                p
            }
            Paths::Many(v) => {
                let p = v.remove(i);
                if v.len() == 1 {
                    let last = v.pop().expect("one left");
                    *self = Paths::One(last);
                } else if v.is_empty() {
                    *v = Vec::new();
                }
                p
            }
        }
    }
}

/// Candidates and selection for one prefix.
#[derive(Debug, Clone, Default)]
pub struct RibEntry {
    /// Candidates, one per peer, sorted by peer id.
    pub paths: Paths,
    best: Option<u16>,
    /// Bit i set: `paths[i]` is in the multipath set (first 32 paths: a
    /// wider ECMP set is unheard of, and 4 bytes less per prefix is 4 MB a
    /// full table).
    multipath: u32,
}

impl RibEntry {
    /// The best path.
    pub fn best(&self) -> Option<&RibPath> {
        self.best.and_then(|i| self.paths.get(usize::from(i)))
    }

    /// The multipath set (best included), in path order.
    pub fn multipath(&self) -> impl Iterator<Item = &RibPath> {
        let m = self.multipath;
        self.paths
            .iter()
            .enumerate()
            .filter(move |(i, _)| *i < 32 && m & (1 << i) != 0)
            .map(|(_, p)| p)
    }

    fn reselect(&mut self, max_paths: usize) -> bool {
        let s = decision::select(&self.paths, max_paths);
        let best = s.best.and_then(|b| u16::try_from(b).ok());
        let mask = s
            .multipath
            .iter()
            .filter(|&&i| i < 32)
            .fold(0u32, |m, &i| m | (1 << i));
        let changed = best != self.best || mask != self.multipath;
        self.best = best;
        self.multipath = mask;
        changed
    }
}

/// What [`LocRib::edit_paths`] did to one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathEdit {
    /// Untouched.
    Keep,
    /// Modified in place (selection must be re-run).
    Changed,
    /// Drop the path.
    Remove,
}

fn uncount(per_peer: &mut FastMap<PeerId, usize>, peer: PeerId) {
    if let Some(n) = per_peer.get_mut(&peer) {
        *n -= 1;
        if *n == 0 {
            per_peer.remove(&peer);
        }
    }
}

/// The Loc-RIB: every candidate per prefix, with the decision applied.
#[derive(Debug, Default)]
pub struct LocRib {
    v4: FastMap<Ipv4Net, RibEntry>,
    v6: FastMap<Ipv6Net, RibEntry>,
    max_paths: usize,
    /// Paths per peer, kept as paths come and go so that `show bgp summary`
    /// (polled) does not walk a million prefixes.
    per_peer: FastMap<PeerId, usize>,
}

impl LocRib {
    /// An empty Loc-RIB with multipath up to `max_paths` (1: none).
    pub fn new(max_paths: usize) -> Self {
        LocRib {
            max_paths: max_paths.max(1),
            ..Default::default()
        }
    }

    fn entry_mut(&mut self, prefix: IpNet) -> &mut RibEntry {
        match prefix {
            IpNet::V4(p) => self.v4.entry(p).or_default(),
            IpNet::V6(p) => self.v6.entry(p).or_default(),
        }
    }

    /// Adds or replaces the path from `path.peer`; returns whether the selection
    /// (best or multipath) changed.
    pub fn update(&mut self, prefix: IpNet, path: RibPath) -> bool {
        let max = self.max_paths;
        let id = path.peer.id;
        let e = self.entry_mut(prefix);
        let new = match e.paths.binary_search_by_key(&id, |p| p.peer.id) {
            Ok(i) => {
                e.paths[i] = path;
                false
            }
            Err(i) => {
                e.paths.insert(i, path);
                true
            }
        };
        let changed = e.reselect(max);
        if new {
            *self.per_peer.entry(id).or_default() += 1;
        }
        changed
    }

    /// Adds or replaces the path from `path.peer`; returns (selection changed,
    /// the path is new for this peer).
    pub fn upsert(&mut self, prefix: IpNet, path: RibPath) -> (bool, bool) {
        let max = self.max_paths;
        let id = path.peer.id;
        let e = self.entry_mut(prefix);
        let new = match e.paths.binary_search_by_key(&id, |p| p.peer.id) {
            Ok(i) => {
                // Same attributes, same next-hop state: nothing to decide.
                let old = &e.paths[i];
                if Arc::ptr_eq(&old.attrs, &path.attrs)
                    && old.igp_cost == path.igp_cost
                    && old.weight == path.weight
                    && !old.stale
                {
                    return (false, false);
                }
                e.paths[i] = path;
                false
            }
            Err(i) => {
                e.paths.insert(i, path);
                true
            }
        };
        let changed = e.reselect(max);
        if new {
            *self.per_peer.entry(id).or_default() += 1;
        }
        (changed, new)
    }

    /// Edits every path: `f` returns what it did. Prefixes whose selection
    /// changed are appended to `changed`; returns the number of paths removed.
    pub fn edit_paths(
        &mut self,
        mut f: impl FnMut(&IpNet, &mut RibPath) -> PathEdit,
        changed: &mut Vec<IpNet>,
    ) -> usize {
        let max = self.max_paths;
        let mut removed = 0;
        let per_peer = &mut self.per_peer;
        let mut visit = |prefix: IpNet, e: &mut RibEntry| {
            let mut touched = false;
            let mut i = 0;
            while i < e.paths.len() {
                match f(&prefix, &mut e.paths[i]) {
                    PathEdit::Keep => i += 1,
                    PathEdit::Changed => {
                        touched = true;
                        i += 1;
                    }
                    PathEdit::Remove => {
                        let gone = e.paths.remove(i);
                        uncount(per_peer, gone.peer.id);
                        removed += 1;
                        touched = true;
                    }
                }
            }
            if touched && e.reselect(max) {
                changed.push(prefix);
            }
            !e.paths.is_empty()
        };
        self.v4.retain(|p, e| visit(IpNet::V4(*p), e));
        self.v6.retain(|p, e| visit(IpNet::V6(*p), e));
        removed
    }

    /// Removes the path from `peer`; returns whether the selection changed.
    pub fn withdraw(&mut self, prefix: IpNet, peer: PeerId) -> bool {
        let max = self.max_paths;
        let (changed, empty) = {
            let e = match prefix {
                IpNet::V4(p) => self.v4.get_mut(&p),
                IpNet::V6(p) => self.v6.get_mut(&p),
            };
            let Some(e) = e else { return false };
            let Ok(i) = e.paths.binary_search_by_key(&peer, |p| p.peer.id) else {
                return false;
            };
            e.paths.remove(i);
            (e.reselect(max), e.paths.is_empty())
        };
        uncount(&mut self.per_peer, peer);
        if empty {
            match prefix {
                IpNet::V4(p) => self.v4.remove(&p),
                IpNet::V6(p) => self.v6.remove(&p),
            };
        }
        changed
    }

    /// The entry for a prefix.
    pub fn get(&self, prefix: &IpNet) -> Option<&RibEntry> {
        match prefix {
            IpNet::V4(p) => self.v4.get(p),
            IpNet::V6(p) => self.v6.get(p),
        }
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Bytes the Loc-RIB's own structures hold (hash-table slots, control
    /// bytes and the vectors of multi-path prefixes), without the shared
    /// attribute sets. Walks the table: for `show bgp memory`, not for polling.
    pub fn table_bytes(&self) -> usize {
        use std::mem::size_of;
        // hashbrown keeps 1/8 of its slots free: `capacity` is 7/8 of them.
        let buckets = |cap: usize| {
            if cap == 0 {
                0
            } else {
                (cap * 8 / 7).next_power_of_two()
            }
        };
        let slots = buckets(self.v4.capacity()) * (size_of::<(Ipv4Net, RibEntry)>() + 1)
            + buckets(self.v6.capacity()) * (size_of::<(Ipv6Net, RibEntry)>() + 1);
        let many: usize = self
            .v4
            .values()
            .chain(self.v6.values())
            .map(|e| match &e.paths {
                Paths::Many(v) => v.capacity() * size_of::<RibPath>(),
                Paths::One(_) => 0,
            })
            .sum();
        slots + many
    }

    /// Number of paths (candidates of every prefix).
    pub fn paths(&self) -> usize {
        self.per_peer.values().sum()
    }

    /// Number of paths from `peer` (kept up to date, no walk).
    pub fn paths_of(&self, peer: PeerId) -> usize {
        self.per_peer.get(&peer).copied().unwrap_or(0)
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// IPv4 entries, unordered.
    pub fn iter_v4(&self) -> impl Iterator<Item = (&Ipv4Net, &RibEntry)> {
        self.v4.iter()
    }

    /// IPv6 entries, unordered.
    pub fn iter_v6(&self) -> impl Iterator<Item = (&Ipv6Net, &RibEntry)> {
        self.v6.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(id: PeerId) -> RibPath {
        RibPath {
            peer: Arc::new(PeerInfo {
                id,
                address: std::net::IpAddr::from([10, 0, 0, id as u8]),
                router_id: std::net::Ipv4Addr::from([10, 0, 0, id as u8]),
                asn: 65000 + id,
                ibgp: false,
            }),
            attrs: Arc::new(PathAttributes::default()),
            weight: 0,
            igp_cost: Some(0),
            stale: false,
        }
    }

    fn ids(p: &Paths) -> Vec<PeerId> {
        p.iter().map(|x| x.peer.id).collect()
    }

    #[test]
    fn paths_go_from_inline_to_vec_and_back() {
        let mut p = Paths::default();
        assert!(p.is_empty());
        p.insert(0, path(2));
        assert!(matches!(p, Paths::One(_)));
        p.insert(0, path(1));
        p.insert(2, path(3));
        assert_eq!(ids(&p), [1, 2, 3]);
        assert_eq!(p.remove(1).peer.id, 2);
        assert_eq!(p.remove(0).peer.id, 1);
        assert!(matches!(p, Paths::One(_)));
        assert_eq!(ids(&p), [3]);
        assert_eq!(p.remove(0).peer.id, 3);
        assert!(p.is_empty());
        p.insert(0, path(4));
        assert_eq!(ids(&p), [4]);
    }

    #[test]
    fn a_single_path_prefix_needs_no_heap_and_stays_small() {
        // The whole point of `Paths::One`: one entry of a full table is the
        // hash-table slot only (no Vec header + allocation per prefix).
        assert!(std::mem::size_of::<RibEntry>() <= 40);
    }

    #[test]
    fn per_peer_counts_follow_inserts_withdrawals_and_edits() {
        let mut rib = LocRib::new(1);
        let a: IpNet = "192.0.2.0/24".parse().unwrap();
        let b: IpNet = "2001:db8::/32".parse().unwrap();
        rib.upsert(a, path(1));
        rib.upsert(a, path(1));
        rib.update(b, path(1));
        rib.upsert(a, path(2));
        assert_eq!((rib.paths_of(1), rib.paths_of(2)), (2, 1));
        assert!(!rib.withdraw(a, 3));
        rib.withdraw(a, 1);
        assert_eq!((rib.paths_of(1), rib.paths_of(2)), (1, 1));
        let mut changed = Vec::new();
        let removed = rib.edit_paths(
            |_, p| {
                if p.peer.id == 2 {
                    PathEdit::Remove
                } else {
                    PathEdit::Keep
                }
            },
            &mut changed,
        );
        assert_eq!(removed, 1);
        assert_eq!(changed, vec![a]);
        assert_eq!((rib.paths_of(1), rib.paths_of(2)), (1, 0));
        assert_eq!(rib.len(), 1);
        assert_eq!(rib.paths(), 1);
        // One IPv6 prefix: at least its slot, and no heap behind a one-path entry.
        assert!(rib.table_bytes() >= std::mem::size_of::<(Ipv6Net, RibEntry)>());
    }
}
