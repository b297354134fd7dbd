//! The Poptrie engine (Asai and Ohara, "Poptrie: A Compressed Trie with Population Count for
//! Fast and Scalable Software IP Routing Table Lookup", SIGCOMM 2015), generic over the
//! address family.
//!
//! # Layout
//!
//! ```text
//!  addr: | DIRECT_BITS (18 v4 / 16 v6) | 6 | 6 | 6 | ... (zero-padded past the end)
//!                 |
//!   direct[2^S]: u32 = LEAF|next-hop  or  node index
//!                 |
//!   nodes[]: { vector: u64, leafvec: u64, base0: u32, base1: u32 }   (24 bytes)
//!     vector  bit v: slot v is an internal node, the rank(vector, v)-th of the block at base1
//!     leafvec bit v: slot v starts a new run of equal leaves; a leaf slot v reads
//!                    leaves[base0 + rank(leafvec, v) - 1]   (runs skip internal slots)
//!   leaves[]: u32 next hop (NONE_RAW = no route)
//! ```
//!
//! Node 0 and leaf 0 are dummies that batch lookups read instead of branching (see
//! `batch_body`). Children of one node, and leaves of one node, are contiguous blocks of
//! 1..=64 entries; blocks are recycled through one free list per size, so updates never
//! compact, and the arrays grow by an eighth when no free block fits.
//!
//! # Updates
//!
//! The authoritative route set is a `BTreeMap<(addr, len), next hop>`. For every
//! direct-pointing slot the table also remembers the *painted* route: the longest route of
//! length `<= DIRECT_BITS` covering the slot. An update touches:
//!
//! * a route longer than `DIRECT_BITS`: the subtree of the deepest node above it (the node
//!   whose 64 slots the route paints, or under which it now hangs), rebuilt from that
//!   node's `BTreeMap` range and written back in place, so the parent does not change.
//!   For an IPv4 /24 that is one /18 slot's routes; for an IPv6 /48 a /40 or /46 node's.
//!   Only when the node is left with no route below it does its parent get rebuilt;
//! * a route of length `<= DIRECT_BITS`: the `2^(DIRECT_BITS - len)` slots it covers, but
//!   only those whose painted route changes; a leaf slot is one store, a slot with a subtree
//!   has its subtree rebuilt (its default leaf changed).
//!
//! The old subtree's blocks go to the free lists before the new one is built, so a rebuild
//! reuses them. Mutation takes `&mut self`: see the crate docs for how readers and the
//! writer share a table.

use crate::arch;
use crate::key::Key;
use crate::NextHopId;
use std::collections::BTreeMap;
use std::fmt;

/// Direct-pointing entry flag: the entry is a leaf (next hop), not a node index.
pub(crate) const LEAF: u32 = 1 << 31;
/// Raw leaf value meaning "no route".
pub(crate) const NONE_RAW: u32 = LEAF - 1;
/// Bits per trie level below the direct-pointing level (a 64-bit vector per node).
pub(crate) const STRIDE: u32 = 6;
/// Lookups in flight in a batch: enough to overlap the cache misses of a level, few enough
/// that the lane state stays in L1 (16 measured faster than 32 or 64 on the full table).
const BATCH: usize = 16;
/// Addresses per call of the vector kernel (its results go through a stack buffer).
const VCHUNK: usize = 256;
/// Raw result of the vector kernel for a lookup it leaves to the scalar code.
pub(crate) const DEEP: u32 = u32::MAX;
/// `Painted::len` of a slot no route covers.
const NO_LEN: u8 = u8::MAX;

/// An internal node: 64 slots, one per value of the next 6 address bits.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Node {
    /// Bit v set: slot v is an internal node.
    vector: u64,
    /// Bit v set: leaf slot v starts a new run of equal next hops.
    leafvec: u64,
    /// First leaf of this node's leaf block.
    base0: u32,
    /// First node of this node's children block.
    base1: u32,
}

/// Node 0: never allocated, read by batch lookups for lanes whose direct entry is a leaf.
/// All its slots are leaves of one run, leaf 0 (also never allocated).
const DUMMY_NODE: Node = Node {
    vector: 0,
    leafvec: 1,
    base0: 0,
    base1: 0,
};

/// Number of set bits of `x` at positions `0..=v`.
#[inline(always)]
fn rank(x: u64, v: usize) -> u32 {
    (x & (u64::MAX >> (63 - v))).count_ones()
}

#[inline(always)]
fn to_opt(raw: u32) -> Option<NextHopId> {
    if raw == NONE_RAW {
        None
    } else {
        Some(NextHopId(raw))
    }
}

/// Makes room for `n` more elements, growing by an eighth rather than doubling: a table
/// that settles after updates should not carry twice the memory it uses.
fn grow<T>(v: &mut Vec<T>, n: usize) {
    if v.capacity() - v.len() < n {
        v.reserve_exact(n.max(v.len() / 8));
    }
}

/// The longest route of length `<= DIRECT_BITS` covering a direct-pointing slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Painted {
    nh: u32,
    len: u8,
}

const UNPAINTED: Painted = Painted {
    nh: NONE_RAW,
    len: NO_LEN,
};

/// One route change, as a control plane sends it to a forwarding thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Update<K: Key> {
    /// Add or replace the route for a prefix.
    Insert(K::Net, NextHopId),
    /// Remove the route for a prefix (absent: no-op).
    Remove(K::Net),
}

/// Size and shape figures of a table (see [`Poptrie::stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Routes in the table.
    pub routes: usize,
    /// Direct-pointing entries (`2^DIRECT_BITS`).
    pub direct_entries: usize,
    /// Node slots allocated, including free ones.
    pub nodes: usize,
    /// Leaf slots allocated, including free ones.
    pub leaves: usize,
    /// Node slots on the free lists.
    pub free_nodes: usize,
    /// Leaf slots on the free lists.
    pub free_leaves: usize,
    /// Bytes of the lookup structure (direct array, nodes, leaves, as allocated).
    pub lookup_bytes: usize,
    /// Estimated bytes of the writer-side state (route map, painted slots, free lists).
    pub control_bytes: usize,
}

/// A longest-prefix-match table: Poptrie lookup structure plus the authoritative route set.
///
/// Use [`Lpm4`](crate::Lpm4) (`Poptrie<u32>`) or [`Lpm6`](crate::Lpm6) (`Poptrie<u128>`).
#[derive(Clone)]
pub struct Poptrie<K: Key> {
    direct: Vec<u32>,
    nodes: Vec<Node>,
    leaves: Vec<u32>,
    /// `free_nodes[n]`: starts of free node blocks of exactly `n` nodes.
    free_nodes: Vec<Vec<u32>>,
    free_leaves: Vec<Vec<u32>>,
    free_node_count: usize,
    free_leaf_count: usize,
    routes: BTreeMap<(K, u8), u32>,
    painted: Vec<Painted>,
    /// The CPU has `popcnt` (probed once at construction).
    popcnt: bool,
    /// The CPU has AVX-512F with VPOPCNTDQ, for the IPv4 vector batch (probed likewise).
    avx512: bool,
}

impl<K: Key> fmt::Debug for Poptrie<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Poptrie")
            .field("stats", &self.stats())
            .finish()
    }
}

impl<K: Key> Default for Poptrie<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Key> Poptrie<K> {
    /// An empty table (every lookup misses).
    pub fn new() -> Self {
        let slots = 1usize << K::DIRECT_BITS;
        Poptrie {
            direct: vec![LEAF | NONE_RAW; slots],
            nodes: vec![DUMMY_NODE],
            leaves: vec![NONE_RAW],
            free_nodes: vec![Vec::new(); 65],
            free_leaves: vec![Vec::new(); 65],
            free_node_count: 0,
            free_leaf_count: 0,
            routes: BTreeMap::new(),
            painted: vec![UNPAINTED; slots],
            popcnt: arch::has_popcnt(),
            avx512: arch::has_avx512(),
        }
    }

    /// Builds a table from a route set in one pass. Host bits of a prefix are ignored; if a
    /// prefix appears more than once, its last next hop wins.
    pub fn from_routes<I>(routes: I) -> Self
    where
        I: IntoIterator<Item = (K::Net, NextHopId)>,
    {
        let mut t = Self::new();
        // Collecting (rather than inserting one by one) lets the map bulk-build full nodes;
        // for equal keys it keeps the last value.
        t.routes = routes
            .into_iter()
            .map(|(net, nh)| (K::from_net(&net), nh.0))
            .collect();
        let all: Vec<(K, u8, u32)> = t.routes.iter().map(|(&(a, l), &n)| (a, l, n)).collect();
        let s = K::DIRECT_BITS;
        let mut shallow: Vec<&(K, u8, u32)> = all.iter().filter(|r| u32::from(r.1) <= s).collect();
        shallow.sort_by_key(|r| r.1);
        for &(a, l, nh) in shallow {
            let first = a.chunk(0, s);
            let count = 1usize << (s - u32::from(l));
            for p in &mut t.painted[first..first + count] {
                *p = Painted { nh, len: l };
            }
        }
        for (d, p) in t.direct.iter_mut().zip(&t.painted) {
            *d = LEAF | p.nh;
        }
        let mut i = 0;
        while i < all.len() {
            if u32::from(all[i].1) <= s {
                i += 1;
                continue;
            }
            let slot = all[i].0.chunk(0, s);
            let start = i;
            while i < all.len() && u32::from(all[i].1) > s && all[i].0.chunk(0, s) == slot {
                i += 1;
            }
            t.set_subtree(slot, &all[start..i]);
        }
        t.nodes.shrink_to_fit();
        t.leaves.shrink_to_fit();
        t
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether the table has no route.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The next hop of exactly this prefix (host bits ignored), if present.
    pub fn get(&self, prefix: K::Net) -> Option<NextHopId> {
        let (a, l) = K::from_net(&prefix);
        self.routes.get(&(a, l)).map(|&n| NextHopId(n))
    }

    /// All routes, in (address, length) order.
    pub fn iter(&self) -> impl Iterator<Item = (K::Net, NextHopId)> + '_ {
        self.routes
            .iter()
            .map(|(&(a, l), &n)| (a.to_net(l), NextHopId(n)))
    }

    /// Applies a sequence of updates in order: the call a forwarding thread makes between
    /// two batches with what its control channel delivered.
    pub fn apply<I: IntoIterator<Item = Update<K>>>(&mut self, updates: I) {
        for u in updates {
            match u {
                Update::Insert(net, nh) => {
                    self.insert(net, nh);
                }
                Update::Remove(net) => {
                    self.remove(net);
                }
            }
        }
    }

    /// Adds or replaces a route; returns the previous next hop of that prefix.
    pub fn insert(&mut self, prefix: K::Net, nh: NextHopId) -> Option<NextHopId> {
        let (a, l) = K::from_net(&prefix);
        let old = self.routes.insert((a, l), nh.0);
        if old == Some(nh.0) {
            return old.map(NextHopId);
        }
        let s = K::DIRECT_BITS;
        if u32::from(l) > s {
            self.update_deep(a, l);
        } else {
            let first = a.chunk(0, s);
            for slot in first..first + (1usize << (s - u32::from(l))) {
                let p = self.painted[slot];
                if p.len == NO_LEN || p.len <= l {
                    self.painted[slot] = Painted { nh: nh.0, len: l };
                    self.refresh_slot(slot);
                }
            }
        }
        old.map(NextHopId)
    }

    /// Removes a route; returns its next hop if it was present.
    pub fn remove(&mut self, prefix: K::Net) -> Option<NextHopId> {
        let (a, l) = K::from_net(&prefix);
        let old = self.routes.remove(&(a, l))?;
        let s = K::DIRECT_BITS;
        if u32::from(l) > s {
            self.update_deep(a, l);
        } else {
            // The slots this route painted fall back to the longest shorter route covering it.
            let cover = (0..l)
                .rev()
                .find_map(|cl| {
                    self.routes
                        .get(&(a.mask(u32::from(cl)), cl))
                        .map(|&nh| Painted { nh, len: cl })
                })
                .unwrap_or(UNPAINTED);
            let first = a.chunk(0, s);
            for slot in first..first + (1usize << (s - u32::from(l))) {
                if self.painted[slot].len == l {
                    self.painted[slot] = cover;
                    self.refresh_slot(slot);
                }
            }
        }
        Some(NextHopId(old))
    }

    /// Longest-prefix match of one address.
    #[inline]
    pub fn lookup(&self, addr: K) -> Option<NextHopId> {
        to_opt(arch::lookup(self, self.popcnt, addr))
    }

    /// Longest-prefix match of many addresses: `out[i]` receives the match of `addrs[i]`.
    ///
    /// Addresses are processed 16 at a time, level by level, prefetching each one's next
    /// memory access before using any, so that cache misses overlap. This is several times
    /// faster than calling [`lookup`](Self::lookup) in a loop on a table that misses cache.
    /// For IPv4 on a CPU with AVX-512 (F and VPOPCNTDQ, probed when the table is created)
    /// the 16 lanes of a group take their direct-pointing and first node level steps in
    /// vector registers; the rare lookups that go deeper finish in scalar code.
    ///
    /// # Panics
    ///
    /// If `addrs` and `out` differ in length.
    #[inline]
    pub fn lookup_batch(&self, addrs: &[K], out: &mut [Option<NextHopId>]) {
        assert_eq!(
            addrs.len(),
            out.len(),
            "lookup_batch: addrs and out differ in length"
        );
        if self.avx512 {
            if let Some(a4) = K::as_v4(addrs) {
                return self.batch_v4_vector(a4, addrs, out);
            }
        }
        arch::lookup_batch(self, self.popcnt, addrs, out)
    }

    /// IPv4 batch on the AVX-512 path: whole groups of 16 addresses go through
    /// `arch::v4_raw`, which leaves the rare lookups that go below the first node level
    /// (and the tail that does not fill a group) to the scalar code.
    fn batch_v4_vector(&self, a4: &[u32], addrs: &[K], out: &mut [Option<NextHopId>]) {
        let mut raw = [0u32; VCHUNK];
        for (c, (ca, co)) in a4.chunks(VCHUNK).zip(out.chunks_mut(VCHUNK)).enumerate() {
            let whole = ca.len() / 16 * 16;
            arch::v4_raw(
                self.avx512,
                &self.direct,
                &self.nodes,
                &self.leaves,
                &ca[..whole],
                &mut raw[..whole],
            );
            let base = c * VCHUNK;
            for (i, (o, &r)) in co.iter_mut().zip(&raw[..whole]).enumerate() {
                *o = to_opt(if r == DEEP {
                    arch::lookup(self, self.popcnt, addrs[base + i])
                } else {
                    r
                });
            }
            for i in whole..ca.len() {
                co[i] = to_opt(arch::lookup(self, self.popcnt, addrs[base + i]));
            }
        }
    }

    /// Bytes of the lookup structure: what the dataplane reads.
    pub fn memory_bytes(&self) -> usize {
        self.direct.capacity() * 4
            + self.nodes.capacity() * size_of::<Node>()
            + self.leaves.capacity() * 4
    }

    /// Size and shape figures.
    pub fn stats(&self) -> Stats {
        // A B-tree entry costs its key and value plus roughly a third for node slack and
        // edges; good enough for a report.
        let entry = size_of::<(K, u8)>() + size_of::<u32>();
        let map = self.routes.len() * entry * 4 / 3;
        let free = (self.free_nodes.iter().chain(&self.free_leaves))
            .map(|v| v.capacity() * 4)
            .sum::<usize>();
        Stats {
            routes: self.routes.len(),
            direct_entries: self.direct.len(),
            nodes: self.nodes.len(),
            leaves: self.leaves.len(),
            free_nodes: self.free_node_count,
            free_leaves: self.free_leaf_count,
            lookup_bytes: self.memory_bytes(),
            control_bytes: map + self.painted.capacity() * size_of::<Painted>() + free,
        }
    }

    // ---- lookup bodies (inlined into the plain and the popcnt code paths by `arch`) ----

    /// Walks from node `idx` at bit `offset` down to a leaf; returns the raw leaf.
    #[inline(always)]
    fn walk(&self, mut idx: u32, mut offset: u32, addr: K) -> u32 {
        loop {
            let node = &self.nodes[idx as usize];
            let v = addr.chunk(offset, STRIDE);
            if (node.vector >> v) & 1 == 0 {
                return self.leaves[(node.base0 + rank(node.leafvec, v) - 1) as usize];
            }
            idx = node.base1 + rank(node.vector, v) - 1;
            offset += STRIDE;
        }
    }

    #[inline(always)]
    pub(crate) fn lookup_body(&self, addr: K) -> u32 {
        let d = self.direct[addr.chunk(0, K::DIRECT_BITS)];
        if d & LEAF != 0 {
            return d & !LEAF;
        }
        self.walk(d, K::DIRECT_BITS, addr)
    }

    /// Batch lookup, level-synchronous over up to `BATCH` lanes: each pass moves every
    /// unfinished lane one level down and prefetches what the next pass reads (direct
    /// entries one batch ahead, then nodes, then leaves), so the cache misses of different
    /// lanes overlap instead of queueing.
    ///
    /// With random addresses "leaf or node?" is close to a coin toss that a branch predictor
    /// loses, so no pass branches on it: a lane is appended both to the list of lanes that
    /// continue and to the list of lanes that are done, and only the matching list's length
    /// moves. Lanes that end at the direct level cost one load.
    #[inline(always)]
    pub(crate) fn batch_body(&self, addrs: &[K], out: &mut [Option<NextHopId>]) {
        assert_eq!(
            addrs.len(),
            out.len(),
            "lookup_batch: addrs and out differ in length"
        );
        let s = K::DIRECT_BITS;
        let direct = &self.direct[..];
        let nodes = &self.nodes[..];
        let leaves = &self.leaves[..];
        for a in addrs.iter().take(BATCH) {
            arch::prefetch_index(direct, a.chunk(0, s));
        }
        let mut next = BATCH;
        for (ca, co) in addrs.chunks(BATCH).zip(out.chunks_mut(BATCH)) {
            // Lanes still walking: lane number and node index.
            let mut lane = [0u8; BATCH];
            let mut node_at = [0u32; BATCH];
            // Lanes done: lane number and leaf index.
            let mut done = [0u8; BATCH];
            let mut leaf_at = [0u32; BATCH];
            let mut k = 0;
            // Direct entries (prefetched one batch ago).
            for (i, (a, o)) in ca.iter().zip(co.iter_mut()).enumerate() {
                let d = direct[a.chunk(0, s)];
                // Right for a leaf entry; a node lane's answer is written later.
                *o = to_opt(d & !LEAF);
                let is_node = (d >> 31) ^ 1;
                lane[k] = i as u8;
                node_at[k] = d;
                // A leaf entry prefetches node 0, the (hot) dummy.
                arch::prefetch_index(nodes, (d & 0u32.wrapping_sub(is_node)) as usize);
                k += is_node as usize;
            }
            for a in addrs.iter().skip(next).take(BATCH) {
                arch::prefetch_index(direct, a.chunk(0, s));
            }
            next += BATCH;
            let (mut n_done, mut n_read) = (0, 0);
            let mut off = s;
            while k > 0 {
                let ready = n_done;
                let mut n_next = 0;
                for j in 0..k {
                    let i = lane[j];
                    let node = &nodes[node_at[j] as usize];
                    let v = ca[i as usize].chunk(off, STRIDE);
                    let internal = ((node.vector >> v) & 1) as u32;
                    let keep_leaf = internal.wrapping_sub(1); // all ones unless internal
                    let li = node
                        .base0
                        .wrapping_add(rank(node.leafvec, v))
                        .wrapping_sub(1)
                        & keep_leaf;
                    let ci = node
                        .base1
                        .wrapping_add(rank(node.vector, v))
                        .wrapping_sub(1)
                        & !keep_leaf;
                    // The unused one of the two is index 0: a dummy, always cached.
                    arch::prefetch_index(leaves, li as usize);
                    arch::prefetch_index(nodes, ci as usize);
                    done[n_done] = i;
                    leaf_at[n_done] = li;
                    n_done += 1 - internal as usize;
                    // In place: n_next <= j, and entry j has been read.
                    lane[n_next] = i;
                    node_at[n_next] = ci;
                    n_next += internal as usize;
                }
                // Leaves found by earlier passes: prefetched at least one pass ago.
                for j in n_read..ready {
                    co[done[j] as usize] = to_opt(leaves[leaf_at[j] as usize]);
                }
                n_read = ready;
                k = n_next;
                off += STRIDE;
            }
            for j in n_read..n_done {
                co[done[j] as usize] = to_opt(leaves[leaf_at[j] as usize]);
            }
        }
    }

    // ---- building ----

    fn alloc_nodes(&mut self, n: usize) -> u32 {
        if let Some(i) = self.free_nodes[n].pop() {
            self.free_node_count -= n;
            return i;
        }
        let i = self.nodes.len();
        grow(&mut self.nodes, n);
        self.nodes.resize(i + n, Node::default());
        debug_assert!(
            i + n < LEAF as usize,
            "node index overflows the direct entry"
        );
        i as u32
    }

    fn alloc_leaves(&mut self, n: usize) -> u32 {
        if let Some(i) = self.free_leaves[n].pop() {
            self.free_leaf_count -= n;
            return i;
        }
        let i = self.leaves.len();
        grow(&mut self.leaves, n);
        self.leaves.resize(i + n, NONE_RAW);
        i as u32
    }

    /// Returns the blocks of `node`'s subtree (not `node`'s own slot) to the free lists.
    fn free_subtree(&mut self, node: Node) {
        let n = node.vector.count_ones() as usize;
        for k in 0..n {
            let child = self.nodes[node.base1 as usize + k];
            self.free_subtree(child);
        }
        if n > 0 {
            self.free_nodes[n].push(node.base1);
            self.free_node_count += n;
        }
        let m = node.leafvec.count_ones() as usize;
        if m > 0 {
            self.free_leaves[m].push(node.base0);
            self.free_leaf_count += m;
        }
    }

    /// Builds the node for `routes`: all longer than `offset`, all inside one prefix of
    /// length `offset`, sorted by (address, length). Slots no route covers get `inherited`.
    fn build_node(&mut self, routes: &[(K, u8, u32)], offset: u32, inherited: u32) -> Node {
        let end = offset + STRIDE;
        let mut slots = [inherited; 64];
        // Routes ending within this level: at most 2+4+..+64 distinct prefixes.
        let mut shallow = [(0u8, 0usize, 0u32); 126];
        let mut n_shallow = 0;
        let mut groups = [(0usize, 0usize); 64];
        let mut vector = 0u64;
        let mut i = 0;
        while i < routes.len() {
            let (a, l, nh) = routes[i];
            let slot = a.chunk(offset, STRIDE);
            if u32::from(l) <= end {
                shallow[n_shallow] = (l, slot, nh);
                n_shallow += 1;
                i += 1;
                continue;
            }
            // Sorting by (address, length) puts a slot's longer routes together: a shorter
            // route inside the slot would start at the slot's first address and sort first.
            let start = i;
            while i < routes.len()
                && u32::from(routes[i].1) > end
                && routes[i].0.chunk(offset, STRIDE) == slot
            {
                i += 1;
            }
            debug_assert_eq!(vector & (1 << slot), 0, "slot {slot} split");
            groups[slot] = (start, i);
            vector |= 1 << slot;
        }
        let shallow = &mut shallow[..n_shallow];
        shallow.sort_unstable_by_key(|r| r.0);
        for &(l, slot, nh) in shallow.iter() {
            let count = 1usize << (end - u32::from(l));
            slots[slot..slot + count].fill(nh);
        }

        let n_kids = vector.count_ones() as usize;
        let mut kids = [Node::default(); 64];
        let mut v = vector;
        let mut k = 0;
        while v != 0 {
            let slot = v.trailing_zeros() as usize;
            v &= v - 1;
            let (gs, ge) = groups[slot];
            kids[k] = self.build_node(&routes[gs..ge], end, slots[slot]);
            k += 1;
        }
        let base1 = if n_kids > 0 {
            let b = self.alloc_nodes(n_kids);
            self.nodes[b as usize..b as usize + n_kids].copy_from_slice(&kids[..n_kids]);
            b
        } else {
            0
        };

        let mut leafvec = 0u64;
        let mut runs = [0u32; 64];
        let mut n_runs = 0;
        for (slot, &nh) in slots.iter().enumerate() {
            if vector & (1 << slot) != 0 {
                continue;
            }
            if n_runs == 0 || runs[n_runs - 1] != nh {
                runs[n_runs] = nh;
                n_runs += 1;
                leafvec |= 1 << slot;
            }
        }
        let base0 = if n_runs > 0 {
            let b = self.alloc_leaves(n_runs);
            self.leaves[b as usize..b as usize + n_runs].copy_from_slice(&runs[..n_runs]);
            b
        } else {
            0
        };
        Node {
            vector,
            leafvec,
            base0,
            base1,
        }
    }

    /// Points direct slot `slot` (currently a leaf or freed) at a subtree built from
    /// `routes` (the slot's routes longer than `DIRECT_BITS`), or at its painted leaf.
    fn set_subtree(&mut self, slot: usize, routes: &[(K, u8, u32)]) {
        let inherited = self.painted[slot].nh;
        if routes.is_empty() {
            self.direct[slot] = LEAF | inherited;
            return;
        }
        let root = self.build_node(routes, K::DIRECT_BITS, inherited);
        let idx = self.alloc_nodes(1);
        self.nodes[idx as usize] = root;
        self.direct[slot] = idx;
    }

    /// Rebuilds the subtree of one direct slot from the route map.
    fn rebuild_slot(&mut self, slot: usize) {
        let d = self.direct[slot];
        if d & LEAF == 0 {
            let root = self.nodes[d as usize];
            self.free_subtree(root);
            self.free_nodes[1].push(d);
            self.free_node_count += 1;
            // Until set_subtree stores the new root the slot must not point at freed nodes.
            self.direct[slot] = LEAF | NONE_RAW;
        }
        let deep = self.routes_below(K::from_slot(slot), K::DIRECT_BITS);
        self.set_subtree(slot, &deep);
    }

    /// The routes strictly longer than `len` inside `addr/len`, sorted.
    fn routes_below(&self, addr: K, len: u32) -> Vec<(K, u8, u32)> {
        // Inside the prefix, only its own network address can carry a route of length
        // <= `len`, and the start bound excludes those.
        let first = addr.mask(len);
        self.routes
            .range((first, len as u8 + 1)..=(first.last(len), K::BITS as u8))
            .map(|(&(a, l), &n)| (a, l, n))
            .collect()
    }

    /// The next hop of the longest route of length `<= len` covering `addr`: what the
    /// slots of a node at bit `len` default to.
    fn cover(&self, addr: K, len: u32) -> u32 {
        let s = K::DIRECT_BITS;
        ((s + 1)..=len)
            .rev()
            .find_map(|l| self.routes.get(&(addr.mask(l), l as u8)).copied())
            .unwrap_or(self.painted[addr.chunk(0, s)].nh)
    }

    /// Applies the change of route `addr/len`, `len > DIRECT_BITS`, already made in the
    /// route map: rebuilds the subtree of the deepest node above the route (the node whose
    /// slots the route paints, or under which it hangs), rewriting that node in place so
    /// that its parent is untouched. If that node has no route left below it, its parent
    /// is rebuilt instead (the slot turns into a leaf), and so on up to the direct slot.
    fn update_deep(&mut self, addr: K, len: u8) {
        let s = K::DIRECT_BITS;
        let len = u32::from(len);
        let slot = addr.chunk(0, s);
        let d = self.direct[slot];
        // Node positions (index into `nodes`) and bit offsets from the root down.
        let mut path: Vec<(u32, u32)> = Vec::new();
        if d & LEAF == 0 {
            let (mut pos, mut off) = (d, s);
            loop {
                path.push((pos, off));
                let node = self.nodes[pos as usize];
                let v = addr.chunk(off, STRIDE);
                if off + STRIDE >= len || (node.vector >> v) & 1 == 0 {
                    break;
                }
                pos = node.base1 + rank(node.vector, v) - 1;
                off += STRIDE;
            }
        }
        while let Some((pos, off)) = path.pop() {
            if path.is_empty() {
                // The root's subtree is the slot's: rebuild_slot also handles "now empty".
                break;
            }
            let routes = self.routes_below(addr, off);
            if routes.is_empty() {
                continue;
            }
            let old = self.nodes[pos as usize];
            self.free_subtree(old);
            let inherited = self.cover(addr, off);
            let node = self.build_node(&routes, off, inherited);
            self.nodes[pos as usize] = node;
            return;
        }
        self.rebuild_slot(slot);
    }

    /// Propagates a change of `painted[slot]`.
    fn refresh_slot(&mut self, slot: usize) {
        if self.direct[slot] & LEAF != 0 {
            // A leaf slot has no longer routes: the painted route is the answer.
            self.direct[slot] = LEAF | self.painted[slot].nh;
        } else {
            self.rebuild_slot(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipnet::Ipv4Net;

    fn nh(v: u32) -> NextHopId {
        NextHopId::new(v).unwrap()
    }
    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> u32 {
        u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
    }

    #[test]
    fn empty_table_misses() {
        let t = Poptrie::<u32>::new();
        assert_eq!(t.lookup(ip("1.2.3.4")), None);
    }

    #[test]
    fn longest_match_wins_at_every_level() {
        let t = Poptrie::<u32>::from_routes([
            (net("0.0.0.0/0"), nh(1)),
            (net("10.0.0.0/8"), nh(2)),
            (net("10.1.0.0/20"), nh(3)),
            (net("10.1.2.0/24"), nh(4)),
            (net("10.1.2.128/25"), nh(5)),
            (net("10.1.2.129/32"), nh(6)),
        ]);
        assert_eq!(t.lookup(ip("9.0.0.1")), Some(nh(1)));
        assert_eq!(t.lookup(ip("10.200.0.1")), Some(nh(2)));
        assert_eq!(t.lookup(ip("10.1.15.255")), Some(nh(3)));
        assert_eq!(t.lookup(ip("10.1.2.1")), Some(nh(4)));
        assert_eq!(t.lookup(ip("10.1.2.130")), Some(nh(5)));
        assert_eq!(t.lookup(ip("10.1.2.129")), Some(nh(6)));
        assert_eq!(t.lookup(ip("10.1.16.0")), Some(nh(2)));
    }

    #[test]
    fn removing_a_short_route_repaints_its_slots_with_the_cover() {
        let mut t = Poptrie::<u32>::from_routes([
            (net("10.0.0.0/8"), nh(1)),
            (net("10.0.0.0/12"), nh(2)),
            (net("10.0.1.0/24"), nh(3)),
        ]);
        assert_eq!(t.lookup(ip("10.0.2.1")), Some(nh(2)));
        assert_eq!(t.remove(net("10.0.0.0/12")), Some(nh(2)));
        assert_eq!(t.lookup(ip("10.0.2.1")), Some(nh(1)));
        assert_eq!(t.lookup(ip("10.0.1.1")), Some(nh(3)));
        assert_eq!(t.remove(net("10.0.0.0/8")), Some(nh(1)));
        assert_eq!(t.lookup(ip("10.0.2.1")), None);
        assert_eq!(t.remove(net("10.0.0.0/8")), None);
    }

    #[test]
    fn rebuilds_reuse_freed_blocks() {
        let mut t = Poptrie::<u32>::from_routes([(net("10.1.2.0/24"), nh(1))]);
        let before = t.stats();
        for i in 0..100 {
            t.insert(net("10.1.2.0/24"), nh(i + 2));
        }
        let after = t.stats();
        assert_eq!(before.nodes, after.nodes);
        assert_eq!(before.leaves, after.leaves);
        assert_eq!(t.lookup(ip("10.1.2.3")), Some(nh(101)));
    }

    #[test]
    fn equal_leaves_share_one_run() {
        // 64 /24s with one next hop under one /18 slot compress to one leaf.
        let routes = (0..64u32).map(|i| {
            (
                Ipv4Net::new((ip("10.0.0.0") + (i << 8)).into(), 24).unwrap(),
                nh(7),
            )
        });
        let t = Poptrie::<u32>::from_routes(routes);
        // Leaf 0 is the dummy.
        assert_eq!(t.stats().leaves, 2);
        assert_eq!(t.lookup(ip("10.0.63.1")), Some(nh(7)));
    }

    #[test]
    fn duplicate_prefixes_keep_the_last_next_hop() {
        let t = Poptrie::<u32>::from_routes([
            (net("10.0.0.0/8"), nh(1)),
            (net("10.9.9.9/8"), nh(2)),
            (net("10.0.0.0/8"), nh(3)),
        ]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.get(net("10.0.0.0/8")), Some(nh(3)));
        assert_eq!(t.lookup(ip("10.1.1.1")), Some(nh(3)));
    }

    #[test]
    fn vector_and_scalar_batches_agree() {
        // Routes of every length from /1 to /32, so that lanes end at every level
        // (direct leaf, first node level, and below it: the vector path's scalar fallback).
        let mut x = 0x9E37_79B9u32;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let routes: Vec<_> = (0..3000)
            .map(|i| {
                let len = 1 + (next() % 32) as u8;
                let a = if i % 2 == 0 {
                    next()
                } else {
                    0x0A00_0000 | (next() >> 12)
                };
                (
                    Ipv4Net::new(a.into(), len).unwrap().trunc(),
                    nh(next() % 500),
                )
            })
            .collect();
        let vector = Poptrie::<u32>::from_routes(routes.iter().copied());
        let mut scalar = vector.clone();
        scalar.avx512 = false;
        let mut addrs: Vec<u32> = (0..700).map(|_| next()).collect();
        addrs.extend((0..700).map(|_| 0x0A00_0000 | (next() >> 12)));
        for &(n, _) in &routes {
            addrs.push(u32::from(n.network()));
            addrs.push(u32::from(n.broadcast()));
        }
        // Lengths around the vector path's group (16) and chunk (256) sizes.
        for len in [0, 1, 15, 16, 17, 255, 256, 257, 300, addrs.len()] {
            let a = &addrs[..len];
            let (mut v, mut s) = (vec![None; len], vec![None; len]);
            vector.lookup_batch(a, &mut v);
            scalar.lookup_batch(a, &mut s);
            assert_eq!(v, s, "len {len}");
            for (addr, o) in a.iter().zip(&v) {
                assert_eq!(*o, vector.lookup(*addr), "{addr:#x}");
            }
        }
    }

    #[test]
    fn batch_equals_single_lookups() {
        let t = Poptrie::<u32>::from_routes([
            (net("10.0.0.0/8"), nh(1)),
            (net("10.1.2.0/24"), nh(2)),
            (net("10.1.2.64/26"), nh(3)),
            (net("10.1.2.65/32"), nh(4)),
        ]);
        let addrs: Vec<u32> = (0..1000u32)
            .map(|i| ip("10.1.2.0").wrapping_add(i.wrapping_mul(2654435761) >> 20))
            .collect();
        let mut out = vec![None; addrs.len()];
        t.lookup_batch(&addrs, &mut out);
        for (a, o) in addrs.iter().zip(&out) {
            assert_eq!(*o, t.lookup(*a), "{a:#x}");
        }
    }
}
