//! A compact prefix map for full tables: per route only a fixed-size record (prefix key,
//! a 32-bit value such as an interned attribute id, a flags byte), IPv4 and IPv6 apart.
//!
//! Each family is a sorted sequence of byte records (alignment 1: 10 bytes per IPv4 route,
//! 22 per IPv6 route) cut into chunks of at most [`CHUNK`] records, with each chunk's
//! first key beside them: a lookup is two binary searches, an insert moves at most one
//! chunk's records, and nothing ever copies the whole family (an earlier sorted array
//! with a merged delta stalled for 10-16 ms per merge under a full-table load). Keys are
//! the network address big-endian followed by the prefix length, compared as integers.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// What the map keeps per prefix besides the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Slot {
    val: [u8; 4],
    /// Caller-defined flag bits.
    pub flags: u8,
}

impl Slot {
    /// A slot holding `val` and `flags`.
    pub fn new(val: u32, flags: u8) -> Self {
        Slot {
            val: val.to_ne_bytes(),
            flags,
        }
    }

    /// The value.
    pub fn val(&self) -> u32 {
        u32::from_ne_bytes(self.val)
    }

    /// Replaces the value.
    pub fn set_val(&mut self, v: u32) {
        self.val = v.to_ne_bytes();
    }
}

/// A record's key: the network address big-endian, then the prefix length. Compared as
/// integers: deriving `Ord` on the bytes makes every step of a search a `memcmp` call,
/// which was most of the FEA's planning time with a full table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key<const N: usize>([u8; N]);

impl<const N: usize> Key<N> {
    /// (address, prefix length); `N - 1` address bytes fit a `u128`.
    #[inline]
    fn ord(&self) -> (u128, u8) {
        let mut a = [0u8; 16];
        a[16 - (N - 1)..].copy_from_slice(&self.0[..N - 1]);
        (u128::from_be_bytes(a), self.0[N - 1])
    }
}

impl<const N: usize> Ord for Key<N> {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.ord().cmp(&other.ord())
    }
}

impl<const N: usize> PartialOrd for Key<N> {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, Clone, Copy)]
struct Record<const N: usize> {
    key: Key<N>,
    slot: Slot,
}

/// Records per chunk at most (5 KiB of IPv4, 11 KiB of IPv6): an insert moves at most
/// this many.
const CHUNK: usize = 512;

/// Records a chunk's allocation grows by: chunks are half to wholly full, and growing
/// them by doubling would leave a third of a table's memory unused.
const GROW: usize = 32;

/// One family: sorted records in sorted chunks, and each chunk's first key.
#[derive(Debug, Default)]
struct Family<const N: usize> {
    /// Non-empty, at most [`CHUNK`] records each, every key below the next chunk's.
    chunks: Vec<Vec<Record<N>>>,
    /// `chunks[i][0].key` as integers, for the search across chunks.
    firsts: Vec<(u128, u8)>,
    len: usize,
}

impl<const N: usize> Family<N> {
    fn len(&self) -> usize {
        self.len
    }

    /// (chunk, position in it or where it would go). The chunk is the last one starting
    /// at or before `key` (the first chunk for a key below every chunk).
    fn find(&self, key: &Key<N>) -> (usize, Result<usize, usize>) {
        let key = key.ord();
        let c = self.firsts.partition_point(|f| *f <= key).saturating_sub(1);
        match self.chunks.get(c) {
            Some(chunk) => (c, chunk.binary_search_by(|r| r.key.ord().cmp(&key))),
            None => (c, Err(0)),
        }
    }

    fn get(&self, key: &Key<N>) -> Option<Slot> {
        match self.find(key) {
            (c, Ok(i)) => Some(self.chunks[c][i].slot),
            _ => None,
        }
    }

    fn get_mut(&mut self, key: &Key<N>) -> Option<&mut Slot> {
        match self.find(key) {
            (c, Ok(i)) => Some(&mut self.chunks[c][i].slot),
            _ => None,
        }
    }

    fn insert(&mut self, key: Key<N>, slot: Slot) -> Option<Slot> {
        let (c, at) = self.find(&key);
        let i = match at {
            Ok(i) => return Some(std::mem::replace(&mut self.chunks[c][i].slot, slot)),
            Err(i) => i,
        };
        self.len += 1;
        let record = Record { key, slot };
        if self.chunks.is_empty() {
            self.chunks.push(new_chunk(record));
            self.firsts.push(key.ord());
            return None;
        }
        let chunk = &mut self.chunks[c];
        if chunk.len() < CHUNK {
            if chunk.len() == chunk.capacity() {
                chunk.reserve_exact(GROW.min(CHUNK - chunk.len()));
            }
            chunk.insert(i, record);
        } else if i == CHUNK {
            // Past a full chunk's end (a sorted feed): a new chunk, this one stays full.
            self.chunks.insert(c + 1, new_chunk(record));
            self.firsts.insert(c + 1, key.ord());
        } else {
            let mut upper = Vec::with_capacity(CHUNK / 2 + GROW);
            upper.extend_from_slice(&chunk[CHUNK / 2..]);
            chunk.truncate(CHUNK / 2);
            chunk.shrink_to(CHUNK / 2 + GROW);
            if i <= CHUNK / 2 {
                chunk.insert(i, record);
            } else {
                upper.insert(i - CHUNK / 2, record);
            }
            self.firsts.insert(c + 1, upper[0].key.ord());
            self.chunks.insert(c + 1, upper);
        }
        self.firsts[c] = self.chunks[c][0].key.ord();
        None
    }

    fn remove(&mut self, key: &Key<N>) -> Option<Slot> {
        let (c, Ok(i)) = self.find(key) else {
            return None;
        };
        self.len -= 1;
        let chunk = &mut self.chunks[c];
        let old = chunk.remove(i).slot;
        if chunk.is_empty() {
            self.chunks.remove(c);
            self.firsts.remove(c);
            return Some(old);
        }
        self.firsts[c] = chunk[0].key.ord();
        // A thinned chunk is folded into a neighbour it fits in, so deletes do not leave
        // the memory of mostly empty chunks behind.
        if chunk.len() < CHUNK / 4 {
            let fits = |n: usize| self.chunks[n].len() + self.chunks[c].len() <= CHUNK;
            if c > 0 && fits(c - 1) {
                self.fold_into_previous(c);
            } else if c + 1 < self.chunks.len() && fits(c + 1) {
                self.fold_into_previous(c + 1);
            }
        }
        Some(old)
    }

    /// Appends chunk `c` to chunk `c - 1` (which has the room).
    fn fold_into_previous(&mut self, c: usize) {
        let chunk = self.chunks.remove(c);
        self.firsts.remove(c);
        let previous = &mut self.chunks[c - 1];
        previous.reserve_exact(chunk.len());
        previous.extend_from_slice(&chunk);
    }

    /// Records after `after` (exclusive) in key order, at most `limit`.
    fn range(&self, after: Option<&Key<N>>, limit: usize) -> Vec<(Key<N>, Slot)> {
        let (c, i) = match after {
            None => (0, 0),
            Some(k) => match self.find(k) {
                (c, Ok(i)) => (c, i + 1),
                (c, Err(i)) => (c, i),
            },
        };
        let first = self
            .chunks
            .get(c)
            .map_or(&[][..], |ch| &ch[i.min(ch.len())..]);
        first
            .iter()
            .chain(self.chunks.iter().skip(c + 1).flatten())
            .take(limit)
            .map(|r| (r.key, r.slot))
            .collect()
    }

    fn for_each_mut(&mut self, mut f: impl FnMut(&mut Slot)) {
        self.chunks
            .iter_mut()
            .flatten()
            .for_each(|r| f(&mut r.slot));
    }

    fn bytes(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Vec<Record<N>>>()
            + self.firsts.capacity() * std::mem::size_of::<(u128, u8)>()
            + self
                .chunks
                .iter()
                .map(|c| c.capacity() * std::mem::size_of::<Record<N>>())
                .sum::<usize>()
    }
}

fn new_chunk<const N: usize>(first: Record<N>) -> Vec<Record<N>> {
    let mut chunk = Vec::with_capacity(GROW);
    chunk.push(first);
    chunk
}

fn key4(n: &Ipv4Net) -> Key<5> {
    let mut k = [0; 5];
    k[..4].copy_from_slice(&n.network().octets());
    k[4] = n.prefix_len();
    Key(k)
}

fn key6(n: &Ipv6Net) -> Key<17> {
    let mut k = [0; 17];
    k[..16].copy_from_slice(&n.network().octets());
    k[16] = n.prefix_len();
    Key(k)
}

fn net4(Key(k): &Key<5>) -> IpNet {
    let a = Ipv4Addr::new(k[0], k[1], k[2], k[3]);
    IpNet::V4(Ipv4Net::new(a, k[4].min(32)).unwrap_or_default())
}

fn net6(Key(k): &Key<17>) -> IpNet {
    let mut o = [0u8; 16];
    o.copy_from_slice(&k[..16]);
    IpNet::V6(Ipv6Net::new(Ipv6Addr::from(o), k[16].min(128)).unwrap_or_default())
}

/// Prefix -> [`Slot`], IPv4 and IPv6 in separate compact arrays. Prefixes are taken
/// truncated (host bits cleared).
#[derive(Debug, Default)]
pub struct PrefixMap {
    v4: Family<5>,
    v6: Family<17>,
}

impl PrefixMap {
    /// Routes held.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// IPv4 routes held.
    pub fn len_v4(&self) -> usize {
        self.v4.len()
    }

    /// The slot of `p`.
    pub fn get(&self, p: &IpNet) -> Option<Slot> {
        match p {
            IpNet::V4(n) => self.v4.get(&key4(n)),
            IpNet::V6(n) => self.v6.get(&key6(n)),
        }
    }

    /// The slot of `p`, mutably.
    pub fn get_mut(&mut self, p: &IpNet) -> Option<&mut Slot> {
        match p {
            IpNet::V4(n) => self.v4.get_mut(&key4(n)),
            IpNet::V6(n) => self.v6.get_mut(&key6(n)),
        }
    }

    /// Whether `p` is held.
    pub fn contains(&self, p: &IpNet) -> bool {
        self.get(p).is_some()
    }

    /// Sets `p`'s slot; returns the previous one.
    pub fn insert(&mut self, p: IpNet, slot: Slot) -> Option<Slot> {
        match p {
            IpNet::V4(n) => self.v4.insert(key4(&n), slot),
            IpNet::V6(n) => self.v6.insert(key6(&n), slot),
        }
    }

    /// Removes `p`; returns its slot.
    pub fn remove(&mut self, p: &IpNet) -> Option<Slot> {
        match p {
            IpNet::V4(n) => self.v4.remove(&key4(n)),
            IpNet::V6(n) => self.v6.remove(&key6(n)),
        }
    }

    /// Up to `limit` entries after `after` (exclusive; `None`: from the start), in prefix
    /// order (IPv4 before IPv6), for paging through the table without copying it.
    pub fn page(&self, after: Option<&IpNet>, limit: usize) -> Vec<(IpNet, Slot)> {
        let mut out = Vec::new();
        if !matches!(after, Some(IpNet::V6(_))) {
            let a = match after {
                Some(IpNet::V4(n)) => Some(key4(n)),
                _ => None,
            };
            out.extend(
                self.v4
                    .range(a.as_ref(), limit)
                    .into_iter()
                    .map(|(k, s)| (net4(&k), s)),
            );
        }
        if out.len() < limit {
            let a = match after {
                Some(IpNet::V6(n)) => Some(key6(n)),
                _ => None,
            };
            out.extend(
                self.v6
                    .range(a.as_ref(), limit - out.len())
                    .into_iter()
                    .map(|(k, s)| (net6(&k), s)),
            );
        }
        out
    }

    /// Runs `f` on every slot.
    pub fn for_each_mut(&mut self, mut f: impl FnMut(&mut Slot)) {
        self.v4.for_each_mut(&mut f);
        self.v6.for_each_mut(&mut f);
    }

    /// Approximate heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.v4.bytes() + self.v6.bytes()
    }
}

/// Interns values (route attributes shared by many routes) as `u32` ids with reference
/// counts; an id whose count drops to zero is reused. The last value looked up is cached,
/// since consecutive routes of a feed usually share their attributes.
#[derive(Debug)]
pub struct Interner<T> {
    values: Vec<Option<(T, u32)>>,
    ids: std::collections::HashMap<T, u32>,
    free: Vec<u32>,
    last: Option<u32>,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            values: Vec::new(),
            ids: std::collections::HashMap::new(),
            free: Vec::new(),
            last: None,
        }
    }
}

impl<T: Clone + Eq + std::hash::Hash> Interner<T> {
    /// The id of `v`, taking one reference (created if new).
    pub fn acquire(&mut self, v: &T) -> u32 {
        let id = match self.last.filter(|&i| self.get(i) == Some(v)) {
            Some(i) => i,
            None => match self.ids.get(v) {
                Some(&i) => i,
                None => {
                    let i = match self.free.pop() {
                        Some(i) => {
                            self.values[i as usize] = Some((v.clone(), 0));
                            i
                        }
                        None => {
                            self.values.push(Some((v.clone(), 0)));
                            (self.values.len() - 1) as u32
                        }
                    };
                    self.ids.insert(v.clone(), i);
                    i
                }
            },
        };
        if let Some((_, refs)) = self.values.get_mut(id as usize).and_then(Option::as_mut) {
            *refs += 1;
        }
        self.last = Some(id);
        id
    }

    /// Takes one more reference on an existing `id`.
    pub fn acquire_id(&mut self, id: u32) {
        if let Some((_, refs)) = self.values.get_mut(id as usize).and_then(Option::as_mut) {
            *refs += 1;
        }
    }

    /// Drops one reference on `id`.
    pub fn release(&mut self, id: u32) {
        let Some(slot) = self.values.get_mut(id as usize) else {
            return;
        };
        if let Some((v, refs)) = slot {
            *refs = refs.saturating_sub(1);
            if *refs == 0 {
                self.ids.remove(v);
                *slot = None;
                self.free.push(id);
                if self.last == Some(id) {
                    self.last = None;
                }
            }
        }
    }

    /// The value of `id`.
    pub fn get(&self, id: u32) -> Option<&T> {
        self.values
            .get(id as usize)
            .and_then(Option::as_ref)
            .map(|(v, _)| v)
    }

    /// Distinct values held.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap as Model;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn records_are_compact() {
        assert_eq!(std::mem::size_of::<Record<5>>(), 10);
        assert_eq!(std::mem::size_of::<Record<17>>(), 22);
    }

    #[test]
    fn get_insert_remove_and_order() {
        let mut m = PrefixMap::default();
        for (i, p) in ["10.0.0.0/8", "2001:db8::/32", "10.0.0.0/16", "1.0.0.0/24"]
            .iter()
            .enumerate()
        {
            assert!(m.insert(net(p), Slot::new(i as u32, 1)).is_none());
        }
        assert_eq!(m.len(), 4);
        assert_eq!(m.len_v4(), 3);
        assert_eq!(m.get(&net("10.0.0.0/16")).unwrap().val(), 2);
        let all: Vec<IpNet> = m.page(None, 100).into_iter().map(|x| x.0).collect();
        assert_eq!(
            all,
            vec![
                net("1.0.0.0/24"),
                net("10.0.0.0/8"),
                net("10.0.0.0/16"),
                net("2001:db8::/32")
            ]
        );
        let after: Vec<IpNet> = m
            .page(Some(&net("10.0.0.0/8")), 2)
            .into_iter()
            .map(|x| x.0)
            .collect();
        assert_eq!(after, vec![net("10.0.0.0/16"), net("2001:db8::/32")]);
        assert_eq!(m.remove(&net("10.0.0.0/8")).unwrap().val(), 0);
        assert!(m.get(&net("10.0.0.0/8")).is_none());
        m.get_mut(&net("1.0.0.0/24")).unwrap().flags = 3;
        assert_eq!(m.get(&net("1.0.0.0/24")).unwrap().flags, 3);
        assert_eq!(m.len(), 3);
    }

    fn v4(i: u32) -> IpNet {
        IpNet::V4(Ipv4Net::new(Ipv4Addr::from(i << 8), 24).unwrap())
    }

    #[test]
    fn a_sorted_feed_fills_whole_chunks_and_deletes_free_them() {
        let mut m = PrefixMap::default();
        let n = 10 * CHUNK as u32;
        for i in 0..n {
            m.insert(v4(i), Slot::new(i, 0));
        }
        assert_eq!(
            m.v4.chunks.len(),
            10,
            "appends start new chunks, full ones stay full"
        );
        // Thinning every chunk folds neighbours together.
        for i in (0..n).filter(|i| i % 8 != 0) {
            assert_eq!(m.remove(&v4(i)).map(|s| s.val()), Some(i));
        }
        assert_eq!(m.len(), (n / 8) as usize);
        assert!(m.v4.chunks.len() < 10, "{} chunks", m.v4.chunks.len());
        for i in (0..n).step_by(8) {
            assert_eq!(m.get(&v4(i)).map(|s| s.val()), Some(i));
            m.remove(&v4(i));
        }
        assert!(m.is_empty());
        assert!(m.v4.chunks.is_empty() && m.v4.firsts.is_empty());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Whatever the sequence of inserts and removes (enough to force merges and
        /// compactions), the map agrees with an ordered map.
        #[test]
        fn agrees_with_a_btreemap(ops in proptest::collection::vec((0u32..12_000, 0u8..3, 0u8..4), 1..20_000)) {
            let mut m = PrefixMap::default();
            let mut model: Model<IpNet, u32> = Model::new();
            for (n, len_sel, op) in ops {
                let p = if len_sel == 2 {
                    IpNet::V6(Ipv6Net::new(Ipv6Addr::from((n as u128) << 80), 48).unwrap())
                } else {
                    IpNet::V4(Ipv4Net::new(Ipv4Addr::from(n << 8), 24 - len_sel).unwrap().trunc())
                };
                if op == 0 {
                    proptest::prop_assert_eq!(m.remove(&p).map(|s| s.val()), model.remove(&p));
                } else {
                    proptest::prop_assert_eq!(m.insert(p, Slot::new(n, 0)).map(|s| s.val()), model.insert(p, n));
                }
            }
            proptest::prop_assert_eq!(m.len(), model.len());
            let got: Vec<(IpNet, u32)> = m.page(None, usize::MAX).into_iter().map(|(p, s)| (p, s.val())).collect();
            let want: Vec<(IpNet, u32)> = model.iter().map(|(p, v)| (*p, *v)).collect();
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn interner_counts_and_reuses_ids() {
        let mut i: Interner<String> = Interner::default();
        let a = i.acquire(&"a".to_string());
        assert_eq!(i.acquire(&"a".to_string()), a);
        let b = i.acquire(&"b".to_string());
        assert_ne!(a, b);
        i.release(a);
        assert_eq!(i.get(a).map(String::as_str), Some("a"));
        i.release(a);
        assert!(i.get(a).is_none());
        assert_eq!(i.len(), 1);
        let c = i.acquire(&"c".to_string());
        assert_eq!(c, a, "freed id reused");
    }
}
