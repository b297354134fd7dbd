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

/// Tag of an entry value that indexes [`Body::multi`] (several paths); a
/// value without it is the index of the prefix's only path.
const MANY: u32 = 1 << 31;

/// A path's identity for sharing: its two shared allocations by address
/// plus the per-path scalars. Prefixes announced in one UPDATE (or by one
/// peer with the same attributes) get equal keys and share one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct PathKey {
    peer: usize,
    attrs: usize,
    weight: u32,
    igp_cost: Option<u32>,
    stale: bool,
}

impl PathKey {
    fn of(p: &RibPath) -> Self {
        PathKey {
            peer: Arc::as_ptr(&p.peer) as usize,
            attrs: Arc::as_ptr(&p.attrs) as usize,
            weight: p.weight,
            igp_cost: p.igp_cost,
            stale: p.stale,
        }
    }
}

#[derive(Debug)]
struct PathSlot {
    path: RibPath,
    refs: u32,
}

/// Distinct paths, reference-counted by the prefixes that hold them: a
/// prefix stores a 4-byte index instead of a 32-byte path (a full table
/// from one peer is a few distinct paths, not a million).
#[derive(Debug, Default)]
struct PathStore {
    slots: Vec<Option<PathSlot>>,
    free: Vec<u32>,
    index: FastMap<PathKey, u32>,
}

impl PathStore {
    /// The index of `path`, with one more reference.
    fn intern(&mut self, path: RibPath) -> u32 {
        let key = PathKey::of(&path);
        if let Some(&i) = self.index.get(&key) {
            self.slot_mut(i).refs += 1;
            return i;
        }
        let slot = Some(PathSlot { path, refs: 1 });
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                let i = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|&i| i < MANY)
                    .expect("fewer than 2^31 distinct paths");
                self.slots.push(slot);
                i
            }
        };
        self.index.insert(key, i);
        i
    }

    fn slot_mut(&mut self, i: u32) -> &mut PathSlot {
        self.slots[i as usize].as_mut().expect("a referenced path")
    }

    fn get(&self, i: u32) -> &RibPath {
        &self.slots[i as usize]
            .as_ref()
            .expect("a referenced path")
            .path
    }

    /// Drops one reference; frees the slot with the last.
    fn release(&mut self, i: u32) {
        let s = self.slot_mut(i);
        s.refs -= 1;
        if s.refs == 0 {
            let s = self.slots[i as usize].take().expect("a referenced path");
            self.index.remove(&PathKey::of(&s.path));
            self.free.push(i);
        }
    }

    fn live(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    fn bytes(&self) -> usize {
        use std::mem::size_of;
        self.slots.capacity() * size_of::<Option<PathSlot>>()
            + self.free.capacity() * 4
            + buckets(self.index.capacity()) * (size_of::<(PathKey, u32)>() + 1)
    }
}

/// Hash-table buckets behind a capacity (hashbrown keeps 1/8 free).
fn buckets(cap: usize) -> usize {
    if cap == 0 {
        0
    } else {
        (cap * 8 / 7).next_power_of_two()
    }
}

/// The candidates of a prefix with more than one.
#[derive(Debug, Default)]
struct Multi {
    /// Path indices, sorted by peer id.
    ids: Vec<u32>,
    best: Option<u16>,
    /// Bit i set: `ids[i]` is in the multipath set (first 32 paths).
    mask: u32,
}

/// What the outputs (RIB feed, exports) see of a prefix's selection: the
/// best path's and the multipath set's (peer, attribute set). The stale flag
/// and the IGP cost do not appear: changing them alone changes no output.
type Sig = (Option<(PeerId, usize)>, Vec<(PeerId, usize)>);

/// Everything of the Loc-RIB except the prefix maps.
#[derive(Debug, Default)]
struct Body {
    store: PathStore,
    multi: Vec<Multi>,
    multi_free: Vec<u32>,
    max_paths: usize,
    /// Paths per peer, kept as paths come and go so that `show bgp summary`
    /// (polled) does not walk a million prefixes.
    per_peer: FastMap<PeerId, usize>,
}

impl Body {
    fn ids<'a>(&'a self, v: &'a u32) -> &'a [u32] {
        if v & MANY == 0 {
            std::slice::from_ref(v)
        } else {
            &self.multi[(v & !MANY) as usize].ids
        }
    }

    fn best_idx(&self, v: u32) -> Option<usize> {
        if v & MANY == 0 {
            self.store.get(v).igp_cost.map(|_| 0)
        } else {
            self.multi[(v & !MANY) as usize].best.map(usize::from)
        }
    }

    fn mask(&self, v: u32) -> u32 {
        if v & MANY == 0 {
            u32::from(self.store.get(v).igp_cost.is_some())
        } else {
            self.multi[(v & !MANY) as usize].mask
        }
    }

    fn sig(&self, v: &u32) -> Sig {
        let ids = self.ids(v);
        let key = |i: usize| {
            let p = self.store.get(ids[i]);
            (p.peer.id, Arc::as_ptr(&p.attrs) as usize)
        };
        let best = self.best_idx(*v).map(key);
        let mp = if self.max_paths > 1 {
            let m = self.mask(*v);
            (0..ids.len().min(32))
                .filter(|i| m & (1 << i) != 0)
                .map(key)
                .collect()
        } else {
            Vec::new()
        };
        (best, mp)
    }

    fn reselect(&mut self, m: usize) {
        let (best, mask) = {
            let cands: Vec<&RibPath> = self.multi[m]
                .ids
                .iter()
                .map(|&i| self.store.get(i))
                .collect();
            let s = decision::select(&cands, self.max_paths);
            let best = s.best.and_then(|b| u16::try_from(b).ok());
            let mask = s
                .multipath
                .iter()
                .filter(|&&i| i < 32)
                .fold(0u32, |m, &i| m | (1 << i));
            (best, mask)
        };
        let e = &mut self.multi[m];
        e.best = best;
        e.mask = mask;
    }

    /// A multi-path entry for `ids` (sorted by peer), selection made.
    fn new_multi(&mut self, ids: Vec<u32>) -> u32 {
        let e = Multi {
            ids,
            best: None,
            mask: 0,
        };
        let m = match self.multi_free.pop() {
            Some(m) => {
                self.multi[m as usize] = e;
                m
            }
            None => {
                self.multi.push(e);
                u32::try_from(self.multi.len() - 1)
                    .ok()
                    .filter(|&m| m < MANY)
                    .expect("fewer than 2^31 multi-path prefixes")
            }
        };
        self.reselect(m as usize);
        m | MANY
    }

    /// Back to one path (or none) when a multi-path entry shrinks: the
    /// one-path form holds no heap memory. Returns whether it is empty.
    fn normalize(&mut self, v: &mut u32) -> bool {
        if *v & MANY == 0 {
            return false;
        }
        let m = (*v & !MANY) as usize;
        match self.multi[m].ids.len() {
            0 | 1 => {
                let e = std::mem::take(&mut self.multi[m]);
                self.multi_free.push(m as u32);
                match e.ids.first() {
                    Some(&only) => {
                        *v = only;
                        false
                    }
                    None => true,
                }
            }
            _ => {
                self.reselect(m);
                false
            }
        }
    }

    fn count(&mut self, peer: PeerId) {
        *self.per_peer.entry(peer).or_default() += 1;
    }

    fn uncount(&mut self, peer: PeerId) {
        if let Some(n) = self.per_peer.get_mut(&peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&peer);
            }
        }
    }

    /// A new prefix's value for its first path; whether it is selected.
    fn fresh(&mut self, path: RibPath) -> (u32, bool) {
        let selected = path.igp_cost.is_some();
        self.count(path.peer.id);
        (self.store.intern(path), selected)
    }

    /// Adds or replaces `path.peer`'s path: (selection changed, path new).
    fn upsert(&mut self, v: &mut u32, path: RibPath) -> (bool, bool) {
        let id = path.peer.id;
        let pid = self.store.intern(path);
        let before = self.sig(v);
        if *v & MANY == 0 {
            let old = *v;
            if old == pid {
                // The same path again: nothing to decide.
                self.store.release(pid);
                return (false, false);
            }
            let old_peer = self.store.get(old).peer.id;
            if old_peer == id {
                *v = pid;
                self.store.release(old);
                return (self.sig(v) != before, false);
            }
            let ids = if old_peer < id {
                vec![old, pid]
            } else {
                vec![pid, old]
            };
            *v = self.new_multi(ids);
        } else {
            let m = (*v & !MANY) as usize;
            let store = &self.store;
            match self.multi[m]
                .ids
                .binary_search_by_key(&id, |&i| store.get(i).peer.id)
            {
                Ok(k) => {
                    let old = self.multi[m].ids[k];
                    if old == pid {
                        self.store.release(pid);
                        return (false, false);
                    }
                    self.multi[m].ids[k] = pid;
                    self.store.release(old);
                    self.reselect(m);
                    return (self.sig(v) != before, false);
                }
                Err(k) => {
                    let ids = &mut self.multi[m].ids;
                    // Most prefixes have one or two paths: grow exactly.
                    ids.reserve_exact(1);
                    ids.insert(k, pid);
                    self.reselect(m);
                }
            }
        }
        self.count(id);
        (self.sig(v) != before, true)
    }

    /// Removes `peer`'s path: None if it had none, else (selection changed,
    /// entry now empty).
    fn withdraw(&mut self, v: &mut u32, peer: PeerId) -> Option<(bool, bool)> {
        let pos = {
            let store = &self.store;
            self.ids(v)
                .binary_search_by_key(&peer, |&i| store.get(i).peer.id)
                .ok()?
        };
        let before = self.sig(v);
        let empty = if *v & MANY == 0 {
            self.store.release(*v);
            true
        } else {
            let m = (*v & !MANY) as usize;
            let old = self.multi[m].ids.remove(pos);
            self.store.release(old);
            self.normalize(v)
        };
        self.uncount(peer);
        let after = if empty {
            (None, Vec::new())
        } else {
            self.sig(v)
        };
        Some((after != before, empty))
    }

    /// Runs `f` on every path of one prefix: (paths removed, selection
    /// changed, entry now empty).
    fn edit(
        &mut self,
        prefix: &IpNet,
        v: &mut u32,
        f: &mut impl FnMut(&IpNet, &mut RibPath) -> PathEdit,
    ) -> (usize, bool, bool) {
        // Paths are shared: `f` edits a copy, which replaces the original.
        let mut before: Option<Sig> = None;
        let mut removed = 0;
        let mut k = 0;
        let mut touched = false;
        loop {
            let ids = self.ids(v);
            let Some(&old) = ids.get(k) else { break };
            let mut p = self.store.get(old).clone();
            let edit = f(prefix, &mut p);
            if edit != PathEdit::Keep && before.is_none() {
                before = Some(self.sig(v));
            }
            match edit {
                PathEdit::Keep | PathEdit::Changed => {
                    if PathKey::of(&p) != PathKey::of(self.store.get(old)) {
                        let pid = self.store.intern(p);
                        self.store.release(old);
                        if *v & MANY == 0 {
                            *v = pid;
                        } else {
                            self.multi[(*v & !MANY) as usize].ids[k] = pid;
                        }
                    }
                    touched |= edit == PathEdit::Changed;
                    k += 1;
                }
                PathEdit::Remove => {
                    let peer = p.peer.id;
                    drop(p);
                    self.store.release(old);
                    self.uncount(peer);
                    removed += 1;
                    touched = true;
                    if *v & MANY == 0 {
                        // The only path is gone.
                        let before = before.expect("set above");
                        return (removed, before.0.is_some() || !before.1.is_empty(), true);
                    }
                    self.multi[(*v & !MANY) as usize].ids.remove(k);
                }
            }
        }
        if !touched {
            return (removed, false, false);
        }
        if self.normalize(v) {
            let before = before.expect("touched");
            return (removed, before.0.is_some() || !before.1.is_empty(), true);
        }
        let changed = before.is_some_and(|b| b != self.sig(v));
        (removed, changed, false)
    }

    fn bytes(&self) -> usize {
        use std::mem::size_of;
        self.store.bytes()
            + self.multi.capacity() * size_of::<Multi>()
            + self
                .multi
                .iter()
                .map(|m| m.ids.capacity() * 4)
                .sum::<usize>()
            + self.multi_free.capacity() * 4
    }
}

/// The prefix -> entry maps, split in [`SHARDS`] tables by hash: each grows
/// on its own, so a growing table never holds the old and the new copy of
/// all its buckets at once (one big table doubling from 2^19 to 2^20
/// buckets briefly held 1.5x the final size).
#[derive(Debug)]
struct Shards<K> {
    maps: Vec<FastMap<K, u32>>,
}

/// Number of [`Shards`] tables (a power of two).
const SHARDS: usize = 64;

impl<K: std::hash::Hash + Eq> Shards<K> {
    fn new() -> Self {
        Shards {
            maps: (0..SHARDS).map(|_| FastMap::default()).collect(),
        }
    }

    /// The shard of a key: hash bits that neither the bucket index (low
    /// bits) nor hashbrown's control byte (top 7 bits) uses.
    #[inline]
    fn shard(&self, k: &K) -> usize {
        let mut h = FastHasher::default();
        k.hash(&mut h);
        (h.finish() >> 32) as usize & (SHARDS - 1)
    }

    fn get(&self, k: &K) -> Option<&u32> {
        self.maps[self.shard(k)].get(k)
    }

    fn map_mut(&mut self, k: &K) -> &mut FastMap<K, u32> {
        let s = self.shard(k);
        &mut self.maps[s]
    }

    fn len(&self) -> usize {
        self.maps.iter().map(HashMap::len).sum()
    }

    fn iter(&self) -> impl Iterator<Item = (&K, &u32)> {
        self.maps.iter().flat_map(|m| m.iter())
    }

    fn retain(&mut self, mut f: impl FnMut(&K, &mut u32) -> bool) {
        for m in &mut self.maps {
            m.retain(&mut f);
        }
    }

    fn bytes(&self) -> usize {
        self.maps
            .iter()
            .map(|m| buckets(m.capacity()) * (std::mem::size_of::<(K, u32)>() + 1))
            .sum()
    }
}

/// One prefix's candidates and selection, as stored in a [`LocRib`].
#[derive(Clone, Copy)]
pub struct RibEntry<'a> {
    body: &'a Body,
    v: &'a u32,
}

impl std::fmt::Debug for RibEntry<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RibEntry")
            .field("paths", &self.paths().collect::<Vec<_>>())
            .field("best", &self.body.best_idx(*self.v))
            .finish()
    }
}

impl<'a> RibEntry<'a> {
    /// Candidates, one per peer, sorted by peer id.
    pub fn paths(&self) -> impl ExactSizeIterator<Item = &'a RibPath> + Clone + 'a {
        let store = &self.body.store;
        self.body.ids(self.v).iter().map(move |&i| store.get(i))
    }

    /// Number of candidates.
    pub fn len(&self) -> usize {
        self.body.ids(self.v).len()
    }

    /// Whether there is none (never, for a stored entry).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The best path.
    pub fn best(&self) -> Option<&'a RibPath> {
        let i = self.body.best_idx(*self.v)?;
        Some(self.body.store.get(self.body.ids(self.v)[i]))
    }

    /// The multipath set (best included), in path order.
    pub fn multipath(&self) -> impl Iterator<Item = &'a RibPath> + 'a {
        let m = self.body.mask(*self.v);
        self.paths()
            .enumerate()
            .filter(move |(i, _)| *i < 32 && m & (1 << i) != 0)
            .map(|(_, p)| p)
    }
}

/// What [`LocRib::edit_paths`] did to one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathEdit {
    /// Not modified in a way that matters to the selection (a modification
    /// such as the stale flag is still kept).
    Keep,
    /// Modified in place (selection must be re-run).
    Changed,
    /// Drop the path.
    Remove,
}

/// The Loc-RIB: every candidate per prefix, with the decision applied.
///
/// Compact: a prefix is its key and a 4-byte value in a sharded hash table
/// (13 bytes a bucket for IPv4, 25 for IPv6); the value is the index of its
/// only path in a shared, reference-counted path store, or of a multi-path
/// entry (sorted path indices + selection). No per-prefix heap memory for
/// the one-path prefixes that make up almost all of a full table.
#[derive(Debug)]
pub struct LocRib {
    v4: Shards<Ipv4Net>,
    v6: Shards<Ipv6Net>,
    body: Body,
}

impl Default for LocRib {
    fn default() -> Self {
        Self::new(1)
    }
}

impl LocRib {
    /// An empty Loc-RIB with multipath up to `max_paths` (1: none).
    pub fn new(max_paths: usize) -> Self {
        LocRib {
            v4: Shards::new(),
            v6: Shards::new(),
            body: Body {
                max_paths: max_paths.max(1),
                ..Default::default()
            },
        }
    }

    /// Adds or replaces the path from `path.peer`; returns whether the selection
    /// (best or multipath) changed.
    pub fn update(&mut self, prefix: IpNet, path: RibPath) -> bool {
        self.upsert(prefix, path).0
    }

    /// Adds or replaces the path from `path.peer`; returns (selection changed:
    /// the best or multipath set's peer or attributes, the path is new for
    /// this peer).
    pub fn upsert(&mut self, prefix: IpNet, path: RibPath) -> (bool, bool) {
        fn go<K: std::hash::Hash + Eq>(
            map: &mut FastMap<K, u32>,
            body: &mut Body,
            k: K,
            path: RibPath,
        ) -> (bool, bool) {
            match map.entry(k) {
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    body.upsert(e.get_mut(), path)
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    let (v, selected) = body.fresh(path);
                    e.insert(v);
                    (selected, true)
                }
            }
        }
        match prefix {
            IpNet::V4(p) => go(self.v4.map_mut(&p), &mut self.body, p, path),
            IpNet::V6(p) => go(self.v6.map_mut(&p), &mut self.body, p, path),
        }
    }

    /// Edits every path: `f` returns what it did. Prefixes whose selection
    /// changed are appended to `changed`; returns the number of paths removed.
    pub fn edit_paths(
        &mut self,
        mut f: impl FnMut(&IpNet, &mut RibPath) -> PathEdit,
        changed: &mut Vec<IpNet>,
    ) -> usize {
        let mut removed = 0;
        let body = &mut self.body;
        self.v4.retain(|p, v| {
            let prefix = IpNet::V4(*p);
            let (r, c, empty) = body.edit(&prefix, v, &mut f);
            removed += r;
            if c {
                changed.push(prefix);
            }
            !empty
        });
        self.v6.retain(|p, v| {
            let prefix = IpNet::V6(*p);
            let (r, c, empty) = body.edit(&prefix, v, &mut f);
            removed += r;
            if c {
                changed.push(prefix);
            }
            !empty
        });
        removed
    }

    /// Removes the path from `peer`; returns whether the selection changed.
    pub fn withdraw(&mut self, prefix: IpNet, peer: PeerId) -> bool {
        fn go<K: std::hash::Hash + Eq>(
            map: &mut FastMap<K, u32>,
            body: &mut Body,
            k: &K,
            peer: PeerId,
        ) -> bool {
            let Some(v) = map.get_mut(k) else {
                return false;
            };
            let Some((changed, empty)) = body.withdraw(v, peer) else {
                return false;
            };
            if empty {
                map.remove(k);
            }
            changed
        }
        match prefix {
            IpNet::V4(p) => go(self.v4.map_mut(&p), &mut self.body, &p, peer),
            IpNet::V6(p) => go(self.v6.map_mut(&p), &mut self.body, &p, peer),
        }
    }

    /// The entry for a prefix.
    pub fn get(&self, prefix: &IpNet) -> Option<RibEntry<'_>> {
        let v = match prefix {
            IpNet::V4(p) => self.v4.get(p),
            IpNet::V6(p) => self.v6.get(p),
        }?;
        Some(RibEntry {
            body: &self.body,
            v,
        })
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Bytes the Loc-RIB's own structures hold (hash-table buckets, the
    /// path store, multi-path entries), without the shared attribute sets.
    /// Walks the multi-path entries: for `show bgp memory`, not for polling.
    pub fn table_bytes(&self) -> usize {
        self.v4.bytes() + self.v6.bytes() + self.body.bytes()
    }

    /// Number of paths (candidates of every prefix).
    pub fn paths(&self) -> usize {
        self.body.per_peer.values().sum()
    }

    /// Number of distinct paths held (shared by the prefixes that have them).
    pub fn distinct_paths(&self) -> usize {
        self.body.store.live()
    }

    /// Number of paths from `peer` (kept up to date, no walk).
    pub fn paths_of(&self, peer: PeerId) -> usize {
        self.body.per_peer.get(&peer).copied().unwrap_or(0)
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// IPv4 entries, unordered.
    pub fn iter_v4(&self) -> impl Iterator<Item = (&Ipv4Net, RibEntry<'_>)> {
        let body = &self.body;
        self.v4.iter().map(move |(k, v)| (k, RibEntry { body, v }))
    }

    /// IPv6 entries, unordered.
    pub fn iter_v6(&self) -> impl Iterator<Item = (&Ipv6Net, RibEntry<'_>)> {
        let body = &self.body;
        self.v6.iter().map(move |(k, v)| (k, RibEntry { body, v }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use crate::packet::attribute::AsPath;

    fn peer(id: PeerId) -> Arc<PeerInfo> {
        Arc::new(PeerInfo {
            id,
            address: std::net::IpAddr::from([10, 0, 0, id as u8]),
            router_id: std::net::Ipv4Addr::from([10, 0, 0, id as u8]),
            asn: 65000 + id,
            ibgp: false,
        })
    }

    fn path_with(peer: &Arc<PeerInfo>, attrs: &Arc<PathAttributes>, cost: Option<u32>) -> RibPath {
        RibPath {
            peer: peer.clone(),
            attrs: attrs.clone(),
            weight: 0,
            igp_cost: cost,
            stale: false,
        }
    }

    fn path(id: PeerId) -> RibPath {
        path_with(&peer(id), &Arc::new(PathAttributes::default()), Some(0))
    }

    /// Attribute sets of increasing AS-path length (0 is the best).
    fn attr_sets(n: usize) -> Vec<Arc<PathAttributes>> {
        let mut interner = AttrInterner::new();
        (0..n)
            .map(|i| {
                interner.intern(PathAttributes {
                    as_path: Some(AsPath::from_sequence(vec![65000; i + 1])),
                    ..Default::default()
                })
            })
            .collect()
    }

    fn ids(rib: &LocRib, p: &IpNet) -> Vec<PeerId> {
        rib.get(p)
            .map(|e| e.paths().map(|x| x.peer.id).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_prefix_costs_its_key_and_four_bytes() {
        // The point of the compact table: a full table's prefixes are a
        // bucket each, no heap behind them.
        assert_eq!(std::mem::size_of::<(Ipv4Net, u32)>(), 12);
        assert!(std::mem::size_of::<(Ipv6Net, u32)>() <= 24);
        let mut rib = LocRib::new(1);
        let p = peer(1);
        let a = Arc::new(PathAttributes::default());
        for i in 0..10_000u32 {
            let pfx = IpNet::V4(Ipv4Net::new((i << 8).into(), 24).unwrap());
            rib.upsert(pfx, path_with(&p, &a, Some(1)));
        }
        assert_eq!(rib.len(), 10_000);
        assert_eq!(rib.distinct_paths(), 1, "one shared path");
        assert!(rib.table_bytes() < 10_000 * 32, "{}", rib.table_bytes());
    }

    #[test]
    fn insert_replace_and_withdraw_across_peers() {
        let sets = attr_sets(3);
        let (p1, p2, p3) = (peer(1), peer(2), peer(3));
        let mut rib = LocRib::new(1);
        let a: IpNet = "192.0.2.0/24".parse().unwrap();
        // First path: new and selected.
        assert_eq!(
            rib.upsert(a, path_with(&p2, &sets[1], Some(1))),
            (true, true)
        );
        // The same path again: nothing.
        assert_eq!(
            rib.upsert(a, path_with(&p2, &sets[1], Some(1))),
            (false, false)
        );
        // A worse path from another peer: new, selection unchanged.
        assert_eq!(
            rib.upsert(a, path_with(&p3, &sets[2], Some(1))),
            (false, true)
        );
        // A better one: becomes best; paths stay sorted by peer.
        assert_eq!(
            rib.upsert(a, path_with(&p1, &sets[0], Some(1))),
            (true, true)
        );
        assert_eq!(ids(&rib, &a), [1, 2, 3]);
        assert_eq!(rib.get(&a).unwrap().best().unwrap().peer.id, 1);
        // The best peer replaces its path with a worse one: peer 2 wins.
        assert_eq!(
            rib.upsert(a, path_with(&p1, &sets[2], Some(1))),
            (true, false)
        );
        assert_eq!(rib.get(&a).unwrap().best().unwrap().peer.id, 2);
        // The best peer changes its attributes only: still a change (the
        // RIB and exports must hear of the new attributes).
        let better = attr_sets(1).pop().unwrap();
        assert_eq!(
            rib.upsert(a, path_with(&p2, &better, Some(1))),
            (true, false)
        );
        assert_eq!(rib.paths(), 3);
        assert_eq!(
            (rib.paths_of(1), rib.paths_of(2), rib.paths_of(3)),
            (1, 1, 1)
        );
        // Withdrawals: a loser changes nothing, the winner does.
        assert!(!rib.withdraw(a, 3));
        assert!(!rib.withdraw(a, 3), "twice");
        assert!(rib.withdraw(a, 2));
        assert_eq!(ids(&rib, &a), [1]);
        assert_eq!(rib.get(&a).unwrap().best().unwrap().peer.id, 1);
        assert!(rib.withdraw(a, 1));
        assert!(rib.is_empty());
        assert_eq!(rib.paths(), 0);
        assert_eq!(rib.distinct_paths(), 0, "every shared path released");
    }

    #[test]
    fn unresolvable_paths_are_not_selected() {
        let sets = attr_sets(2);
        let (p1, p2) = (peer(1), peer(2));
        let mut rib = LocRib::new(1);
        let a: IpNet = "2001:db8::/32".parse().unwrap();
        assert_eq!(rib.upsert(a, path_with(&p1, &sets[0], None)), (false, true));
        assert!(rib.get(&a).unwrap().best().is_none());
        assert_eq!(
            rib.upsert(a, path_with(&p2, &sets[1], Some(5))),
            (true, true)
        );
        assert_eq!(rib.get(&a).unwrap().best().unwrap().peer.id, 2);
        // The next hop of peer 1 resolves: it wins.
        let mut changed = Vec::new();
        rib.edit_paths(
            |_, p| {
                if p.peer.id == 1 {
                    p.igp_cost = Some(1);
                    PathEdit::Changed
                } else {
                    PathEdit::Keep
                }
            },
            &mut changed,
        );
        assert_eq!(changed, vec![a]);
        assert_eq!(rib.get(&a).unwrap().best().unwrap().peer.id, 1);
    }

    #[test]
    fn multipath_keeps_equal_paths() {
        let sets = attr_sets(1);
        let mut rib = LocRib::new(4);
        let a: IpNet = "198.51.100.0/24".parse().unwrap();
        for id in [3, 1, 2] {
            rib.upsert(a, path_with(&peer(id), &sets[0], Some(1)));
        }
        let e = rib.get(&a).unwrap();
        assert_eq!(e.multipath().count(), 3);
        assert_eq!(e.best().unwrap().peer.id, 1, "lowest router id");
        // Losing a multipath member is a change even though the best stays.
        assert!(rib.withdraw(a, 3));
        assert_eq!(rib.get(&a).unwrap().multipath().count(), 2);
    }

    #[test]
    fn stale_marks_stick_without_a_change_and_refresh_clears_them() {
        let sets = attr_sets(1);
        let p1 = peer(1);
        let mut rib = LocRib::new(1);
        let a: IpNet = "192.0.2.0/24".parse().unwrap();
        rib.upsert(a, path_with(&p1, &sets[0], Some(1)));
        let mut changed = Vec::new();
        rib.edit_paths(
            |_, p| {
                p.stale = true;
                PathEdit::Keep
            },
            &mut changed,
        );
        assert!(changed.is_empty());
        assert!(rib.get(&a).unwrap().best().unwrap().stale);
        // Re-sent with the same attributes: no longer stale, no RIB change.
        assert_eq!(
            rib.upsert(a, path_with(&p1, &sets[0], Some(1))),
            (false, false)
        );
        assert!(!rib.get(&a).unwrap().best().unwrap().stale);
        assert_eq!(rib.distinct_paths(), 1, "the stale copy was released");
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
        assert!(rib.table_bytes() >= std::mem::size_of::<(Ipv6Net, u32)>());
    }

    /// One step of the property test.
    #[derive(Debug, Clone)]
    enum Op {
        /// prefix, peer, attribute set, resolvable
        Upsert(u8, u8, u8, bool),
        Withdraw(u8, u8),
        /// Remove every path of a peer.
        DropPeer(u8),
        /// Mark a peer's paths stale (no selection change).
        Stale(u8),
        /// Change a peer's IGP cost.
        Cost(u8, Option<u8>),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u8..12, 1u8..5, 0u8..3, prop::bool::weighted(0.85))
                .prop_map(|(a, b, c, d)| Op::Upsert(a, b, c, d)),
            3 => (0u8..12, 1u8..5).prop_map(|(a, b)| Op::Withdraw(a, b)),
            1 => (1u8..5).prop_map(Op::DropPeer),
            1 => (1u8..5).prop_map(Op::Stale),
            1 => (1u8..5, prop::option::of(0u8..3)).prop_map(|(a, b)| Op::Cost(a, b)),
        ]
    }

    fn prefix(i: u8) -> IpNet {
        if i.is_multiple_of(2) {
            IpNet::V4(Ipv4Net::new([10, i, 0, 0].into(), 16).unwrap())
        } else {
            IpNet::V6(
                Ipv6Net::new([0x2001, 0xdb8, u16::from(i), 0, 0, 0, 0, 0].into(), 48).unwrap(),
            )
        }
    }

    type Model = BTreeMap<IpNet, BTreeMap<PeerId, RibPath>>;

    fn model_sig(m: &Model, p: &IpNet, max: usize) -> Sig {
        let Some(paths) = m.get(p) else {
            return (None, Vec::new());
        };
        let v: Vec<&RibPath> = paths.values().collect();
        let s = decision::select(&v, max);
        let key = |i: usize| (v[i].peer.id, Arc::as_ptr(&v[i].attrs) as usize);
        let mp = if max > 1 {
            let mut mp = s.multipath.clone();
            mp.sort_unstable();
            mp.into_iter().map(key).collect()
        } else {
            Vec::new()
        };
        (s.best.map(key), mp)
    }

    fn check(rib: &LocRib, m: &Model, max: usize) {
        assert_eq!(rib.len(), m.len());
        assert_eq!(rib.paths(), m.values().map(BTreeMap::len).sum::<usize>());
        for (p, paths) in m {
            let e = rib.get(p).expect("prefix present");
            let got: Vec<&RibPath> = e.paths().collect();
            let want: Vec<&RibPath> = paths.values().collect();
            assert_eq!(got, want, "{p}");
            let s = decision::select(&want, max);
            assert_eq!(e.best().map(|b| b.peer.id), s.best.map(|i| want[i].peer.id));
            let mut mp: Vec<PeerId> = e.multipath().map(|x| x.peer.id).collect();
            let mut wmp: Vec<PeerId> = s.multipath.iter().map(|&i| want[i].peer.id).collect();
            mp.sort_unstable();
            wmp.sort_unstable();
            assert_eq!(mp, wmp, "{p}");
        }
        for id in 1..5 {
            let n = m.values().filter(|x| x.contains_key(&id)).count();
            assert_eq!(rib.paths_of(id), n);
        }
    }

    /// Applies an edit to the model as `edit_paths` should: returns the
    /// prefixes whose selection changed, sorted.
    fn model_edit(
        m: &mut Model,
        max: usize,
        mut f: impl FnMut(&mut RibPath) -> PathEdit,
    ) -> Vec<IpNet> {
        let mut changed = Vec::new();
        let keys: Vec<IpNet> = m.keys().copied().collect();
        for p in keys {
            let before = model_sig(m, &p, max);
            let paths = m.get_mut(&p).unwrap();
            paths.retain(|_, x| f(x) != PathEdit::Remove);
            if paths.is_empty() {
                m.remove(&p);
            }
            if model_sig(m, &p, max) != before {
                changed.push(p);
            }
        }
        changed
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The compact table behaves as a map of prefix -> peer -> path
        /// with the decision process run on it: same paths, same best and
        /// multipath, same per-peer counts, and it reports a change exactly
        /// when the selection's peers or attributes changed.
        #[test]
        fn compact_rib_matches_a_naive_map(
            ops in prop::collection::vec(op(), 1..80),
            max in prop_oneof![Just(1usize), Just(2), Just(4)],
        ) {
            let sets = attr_sets(3);
            let peers: Vec<Arc<PeerInfo>> = (0..5).map(peer).collect();
            let mut rib = LocRib::new(max);
            let mut m: Model = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Upsert(p, id, a, ok) => {
                        let pfx = prefix(p);
                        let path = path_with(
                            &peers[usize::from(id)],
                            &sets[usize::from(a)],
                            ok.then_some(1),
                        );
                        let before = model_sig(&m, &pfx, max);
                        let old = m.entry(pfx).or_default().insert(PeerId::from(id), path.clone());
                        let want = (model_sig(&m, &pfx, max) != before, old.is_none());
                        let want = if old.as_ref() == Some(&path) { (false, false) } else { want };
                        prop_assert_eq!(rib.upsert(pfx, path), want);
                    }
                    Op::Withdraw(p, id) => {
                        let pfx = prefix(p);
                        let before = model_sig(&m, &pfx, max);
                        if let Some(paths) = m.get_mut(&pfx) {
                            paths.remove(&PeerId::from(id));
                            if paths.is_empty() {
                                m.remove(&pfx);
                            }
                        }
                        let want = model_sig(&m, &pfx, max) != before;
                        prop_assert_eq!(rib.withdraw(pfx, PeerId::from(id)), want);
                    }
                    Op::DropPeer(id) => {
                        let id = PeerId::from(id);
                        let f = |x: &mut RibPath| if x.peer.id == id { PathEdit::Remove } else { PathEdit::Keep };
                        let want = model_edit(&mut m, max, f);
                        let mut got = Vec::new();
                        rib.edit_paths(|_, x| f(x), &mut got);
                        got.sort_unstable();
                        prop_assert_eq!(got, want);
                    }
                    Op::Stale(id) => {
                        let id = PeerId::from(id);
                        let f = |x: &mut RibPath| {
                            if x.peer.id == id {
                                x.stale = true;
                            }
                            PathEdit::Keep
                        };
                        let want = model_edit(&mut m, max, f);
                        let mut got = Vec::new();
                        rib.edit_paths(|_, x| f(x), &mut got);
                        prop_assert!(got.is_empty() && want.is_empty());
                    }
                    Op::Cost(id, c) => {
                        let id = PeerId::from(id);
                        let cost = c.map(u32::from);
                        let f = |x: &mut RibPath| {
                            if x.peer.id == id && x.igp_cost != cost {
                                x.igp_cost = cost;
                                PathEdit::Changed
                            } else {
                                PathEdit::Keep
                            }
                        };
                        let want = model_edit(&mut m, max, f);
                        let mut got = Vec::new();
                        rib.edit_paths(|_, x| f(x), &mut got);
                        got.sort_unstable();
                        prop_assert_eq!(got, want);
                    }
                }
                check(&rib, &m, max);
            }
            // Emptying the table releases every shared path.
            let mut got = Vec::new();
            rib.edit_paths(|_, _| PathEdit::Remove, &mut got);
            prop_assert!(rib.is_empty());
            prop_assert_eq!(rib.distinct_paths(), 0);
        }
    }
}
