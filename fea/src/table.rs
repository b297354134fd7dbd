//! A compact prefix map for full tables: per route only a fixed-size record (prefix key,
//! a 32-bit value such as an interned attribute id, a flags byte), IPv4 and IPv6 apart.
//!
//! Each family is a sorted array of byte records (alignment 1: 10 bytes per IPv4 route,
//! 22 per IPv6 route) plus a small ordered delta of recent inserts, merged into the array
//! in place once it grows past a fraction of the array (so an insert costs a bounded
//! amount of copying on average and there is never a second copy of the array). Deletes
//! in the array leave a tombstone that the next merge compacts. Keys are the network
//! address big-endian followed by the prefix length, so byte order is prefix order.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Flag bit of a deleted record awaiting compaction (internal).
const TOMBSTONE: u8 = 0x80;

/// What the map keeps per prefix besides the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Slot {
    val: [u8; 4],
    /// Caller-defined flag bits (bit 7 is reserved).
    pub flags: u8,
}

impl Slot {
    /// A slot holding `val` and `flags` (bit 7 must be clear).
    pub fn new(val: u32, flags: u8) -> Self {
        Slot {
            val: val.to_ne_bytes(),
            flags: flags & !TOMBSTONE,
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

#[derive(Debug, Clone, Copy)]
struct Record<const N: usize> {
    key: [u8; N],
    slot: Slot,
}

/// One family: the sorted array plus the delta.
#[derive(Debug, Default)]
struct Family<const N: usize> {
    main: Vec<Record<N>>,
    delta: BTreeMap<[u8; N], Slot>,
    tombstones: usize,
}

impl<const N: usize> Family<N> {
    fn len(&self) -> usize {
        self.main.len() - self.tombstones + self.delta.len()
    }

    fn find(&self, key: &[u8; N]) -> Result<usize, usize> {
        self.main.binary_search_by(|r| r.key.cmp(key))
    }

    fn get(&self, key: &[u8; N]) -> Option<Slot> {
        if let Some(s) = self.delta.get(key) {
            return Some(*s);
        }
        match self.find(key) {
            Ok(i) if self.main[i].slot.flags & TOMBSTONE == 0 => Some(self.main[i].slot),
            _ => None,
        }
    }

    fn get_mut(&mut self, key: &[u8; N]) -> Option<&mut Slot> {
        if self.delta.contains_key(key) {
            return self.delta.get_mut(key);
        }
        match self.find(key) {
            Ok(i) if self.main[i].slot.flags & TOMBSTONE == 0 => Some(&mut self.main[i].slot),
            _ => None,
        }
    }

    fn insert(&mut self, key: [u8; N], slot: Slot) -> Option<Slot> {
        if let Ok(i) = self.find(&key) {
            let r = &mut self.main[i];
            let old = (r.slot.flags & TOMBSTONE == 0).then_some(r.slot);
            if old.is_none() {
                self.tombstones -= 1;
            }
            r.slot = slot;
            return old;
        }
        // Past the end of the array: an append, no delta needed (sorted feeds).
        if self.delta.is_empty() && self.main.last().is_none_or(|r| r.key < key) {
            self.main.push(Record { key, slot });
            return None;
        }
        let old = self.delta.insert(key, slot);
        if self.delta.len() >= (self.main.len() / 16).clamp(4096, 65536) {
            self.merge();
        }
        old
    }

    fn remove(&mut self, key: &[u8; N]) -> Option<Slot> {
        if let Some(s) = self.delta.remove(key) {
            return Some(s);
        }
        match self.find(key) {
            Ok(i) if self.main[i].slot.flags & TOMBSTONE == 0 => {
                let old = self.main[i].slot;
                self.main[i].slot.flags |= TOMBSTONE;
                self.tombstones += 1;
                if self.tombstones > 4096 && self.tombstones > self.main.len() / 4 {
                    self.merge();
                }
                Some(old)
            }
            _ => None,
        }
    }

    /// Merges the delta into the array from the back (no second array), dropping
    /// tombstones.
    fn merge(&mut self) {
        let delta = std::mem::take(&mut self.delta);
        if self.tombstones > 0 {
            self.main.retain(|r| r.slot.flags & TOMBSTONE == 0);
            self.tombstones = 0;
        }
        if delta.is_empty() {
            self.main.shrink_to(self.main.len() + self.main.len() / 8);
            return;
        }
        let old_len = self.main.len();
        let fill = Record {
            key: [0; N],
            slot: Slot::default(),
        };
        self.main.resize(old_len + delta.len(), fill);
        let mut i = old_len;
        let mut k = self.main.len();
        for (key, slot) in delta.into_iter().rev() {
            while i > 0 && self.main[i - 1].key > key {
                k -= 1;
                i -= 1;
                self.main[k] = self.main[i];
            }
            k -= 1;
            self.main[k] = Record { key, slot };
        }
    }

    /// Records after `after` (exclusive) in key order, at most `limit`.
    fn range(&self, after: Option<&[u8; N]>, limit: usize) -> Vec<([u8; N], Slot)> {
        let start = match after {
            None => 0,
            Some(k) => match self.find(k) {
                Ok(i) => i + 1,
                Err(i) => i,
            },
        };
        let mut main = self.main[start..]
            .iter()
            .filter(|r| r.slot.flags & TOMBSTONE == 0)
            .map(|r| (r.key, r.slot))
            .peekable();
        let lower = match after {
            None => std::ops::Bound::Unbounded,
            Some(k) => std::ops::Bound::Excluded(*k),
        };
        let mut delta = self
            .delta
            .range::<[u8; N], _>((lower, std::ops::Bound::Unbounded))
            .map(|(k, s)| (*k, *s))
            .peekable();
        let mut out = Vec::with_capacity(limit.min(self.len()));
        while out.len() < limit {
            let next = match (main.peek(), delta.peek()) {
                (Some(a), Some(b)) if a.0 < b.0 => main.next(),
                (Some(_), Some(_)) => delta.next(),
                (Some(_), None) => main.next(),
                (None, Some(_)) => delta.next(),
                (None, None) => None,
            };
            match next {
                Some(x) => out.push(x),
                None => break,
            }
        }
        out
    }

    fn for_each_mut(&mut self, mut f: impl FnMut(&mut Slot)) {
        for r in &mut self.main {
            if r.slot.flags & TOMBSTONE == 0 {
                f(&mut r.slot);
            }
        }
        self.delta.values_mut().for_each(f);
    }

    fn bytes(&self) -> usize {
        self.main.capacity() * std::mem::size_of::<Record<N>>()
            + self.delta.len() * (N + std::mem::size_of::<Slot>() + 8)
    }
}

fn key4(n: &Ipv4Net) -> [u8; 5] {
    let mut k = [0; 5];
    k[..4].copy_from_slice(&n.network().octets());
    k[4] = n.prefix_len();
    k
}

fn key6(n: &Ipv6Net) -> [u8; 17] {
    let mut k = [0; 17];
    k[..16].copy_from_slice(&n.network().octets());
    k[16] = n.prefix_len();
    k
}

fn net4(k: &[u8; 5]) -> IpNet {
    let a = Ipv4Addr::new(k[0], k[1], k[2], k[3]);
    IpNet::V4(Ipv4Net::new(a, k[4].min(32)).unwrap_or_default())
}

fn net6(k: &[u8; 17]) -> IpNet {
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
