//! Slow but obviously correct longest-prefix match, for tests and benchmarks:
//! a linear scan and a plain one-bit-per-level binary trie.

use crate::key::Key;
use crate::NextHopId;
use std::marker::PhantomData;

/// Longest match of `addr` among `routes` by scanning them all. Routes are
/// `(network address, length, next hop)`; a prefix must not appear twice.
pub fn naive_lookup<K: Key>(routes: &[(K, u8, NextHopId)], addr: K) -> Option<NextHopId> {
    routes
        .iter()
        .filter(|(a, l, _)| addr.mask(u32::from(*l)) == a.mask(u32::from(*l)))
        .max_by_key(|(_, l, _)| *l)
        .map(|r| r.2)
}

#[derive(Clone, Copy)]
struct BNode {
    /// 0 = no child (node 0 is the root, never a child).
    child: [u32; 2],
    nh: Option<NextHopId>,
}

/// A binary trie: one node per prefix bit, the textbook LPM structure and the baseline the
/// benchmark compares against.
#[derive(Clone)]
pub struct BinaryTrie<K: Key> {
    nodes: Vec<BNode>,
    _k: PhantomData<K>,
}

impl<K: Key> Default for BinaryTrie<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Key> BinaryTrie<K> {
    /// An empty trie.
    pub fn new() -> Self {
        BinaryTrie {
            nodes: vec![BNode {
                child: [0, 0],
                nh: None,
            }],
            _k: PhantomData,
        }
    }

    /// Builds a trie from `(prefix, next hop)` pairs.
    pub fn from_routes<I: IntoIterator<Item = (K::Net, NextHopId)>>(routes: I) -> Self {
        let mut t = Self::new();
        for (net, nh) in routes {
            t.insert(net, nh);
        }
        t
    }

    fn node_for(&mut self, addr: K, len: u8) -> usize {
        let mut n = 0;
        for bit in 0..u32::from(len) {
            let b = addr.chunk(bit, 1);
            if self.nodes[n].child[b] == 0 {
                self.nodes[n].child[b] = self.nodes.len() as u32;
                self.nodes.push(BNode {
                    child: [0, 0],
                    nh: None,
                });
            }
            n = self.nodes[n].child[b] as usize;
        }
        n
    }

    /// Adds or replaces a route; returns the previous next hop.
    pub fn insert(&mut self, prefix: K::Net, nh: NextHopId) -> Option<NextHopId> {
        let (a, l) = K::from_net(&prefix);
        let n = self.node_for(a, l);
        self.nodes[n].nh.replace(nh)
    }

    /// Removes a route (its nodes stay); returns its next hop.
    pub fn remove(&mut self, prefix: K::Net) -> Option<NextHopId> {
        let (a, l) = K::from_net(&prefix);
        let n = self.node_for(a, l);
        self.nodes[n].nh.take()
    }

    /// Longest-prefix match of `addr`.
    pub fn lookup(&self, addr: K) -> Option<NextHopId> {
        let mut n = 0usize;
        let mut best = self.nodes[0].nh;
        for bit in 0..K::BITS {
            let c = self.nodes[n].child[addr.chunk(bit, 1)];
            if c == 0 {
                break;
            }
            n = c as usize;
            best = self.nodes[n].nh.or(best);
        }
        best
    }

    /// Bytes of the node array.
    pub fn memory_bytes(&self) -> usize {
        self.nodes.capacity() * size_of::<BNode>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trie_and_scan_agree_on_nested_prefixes() {
        let nh = |v| NextHopId::new(v).unwrap();
        let routes = [
            (0x0A00_0000u32, 8u8, nh(1)),
            (0x0A01_0000, 16, nh(2)),
            (0, 0, nh(3)),
        ];
        let t = BinaryTrie::<u32>::from_routes(routes.iter().map(|&(a, l, n)| (a.to_net(l), n)));
        for addr in [0x0A01_0101u32, 0x0A02_0000, 0x0B00_0000] {
            assert_eq!(t.lookup(addr), naive_lookup(&routes, addr));
        }
        assert_eq!(t.lookup(0x0A01_0101), Some(nh(2)));
        assert_eq!(t.lookup(0x0B00_0000), Some(nh(3)));
    }
}
