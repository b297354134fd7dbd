//! WatchNexthops: for each registered address, how it resolves and the covering prefix —
//! the largest prefix containing the address over which that answer holds (XORP's
//! `register_interest` answer). A client (BGP) asks once per block of next hops and hears
//! again only when the answer, or the covering prefix, changes.
//!
//! The covering prefix is the largest sub-prefix of the matched route that contains the
//! address and no other prefix of the table: any prefix inside it could change the answer
//! for part of it. With no match, it is the largest prefix containing the address and no
//! prefix at all.

use std::collections::HashMap;
use std::sync::Arc;

use oxr_proto::rib::NexthopUpdate;
use oxr_proto::types as pb;
use smallvec::SmallVec;

use crate::resolve::Via;
use crate::table::{common_len, FibNexthop, Key, Table};

/// A WatchNexthops stream.
pub type WatchId = u64;

/// What a watcher is told about an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchAnswer {
    /// The largest prefix containing the address over which `via` holds.
    pub covering: Key,
    /// How it resolves (None: unresolved).
    pub via: Option<Via>,
}

/// The covering prefix of `addr` (a host key) given its matched route (if any).
pub fn covering(table: &Table, addr: Key, matched: Option<Key>) -> Key {
    let mut len = matched.map_or(0, |m| m.len);
    let mut need = |x: Key| {
        if Some(x) == matched || x.v6 != addr.v6 {
            return;
        }
        // The covering prefix must be longer than any prefix length at which it would
        // still contain `x`.
        let shared = x.len.min(common_len(addr.v6, addr.addr, x.addr));
        len = len.max(shared.saturating_add(1));
    };
    // Prefixes not containing the address: the closest ones in address order share the
    // most leading bits with it.
    for x in table.neighbours(addr) {
        need(x);
    }
    // Prefixes containing the address (longer than the match: not eligible, but present).
    let start = matched.map_or(0, |m| m.len.saturating_add(1));
    for l in start..=addr.width() {
        let x = addr.truncate(l);
        if table.get(&x).is_some() {
            need(x);
        }
    }
    addr.truncate(len.min(addr.width()))
}

/// Watched addresses indexed by their covering prefix, to find the watches a new or removed
/// prefix (outside their address) could affect.
#[derive(Debug)]
pub struct CoverIndex {
    map: HashMap<Key, SmallVec<[Key; 2]>>,
    lens: [[u32; 129]; 2],
}

impl Default for CoverIndex {
    fn default() -> Self {
        CoverIndex {
            map: HashMap::new(),
            lens: [[0; 129]; 2],
        }
    }
}

impl CoverIndex {
    /// Records that `addr`'s answer holds over `cover`.
    pub fn insert(&mut self, cover: Key, addr: Key) {
        let v = self.map.entry(cover).or_default();
        if v.is_empty() {
            self.lens[usize::from(cover.v6)][usize::from(cover.len)] += 1;
        }
        if !v.contains(&addr) {
            v.push(addr);
        }
    }

    /// Forgets `addr` under `cover`.
    pub fn remove(&mut self, cover: Key, addr: Key) {
        if let Some(v) = self.map.get_mut(&cover) {
            v.retain(|a| *a != addr);
            if v.is_empty() {
                self.map.remove(&cover);
                self.lens[usize::from(cover.v6)][usize::from(cover.len)] -= 1;
            }
        }
    }

    /// Watched addresses whose covering prefix contains `key`.
    pub fn containing(&self, key: Key) -> SmallVec<[Key; 8]> {
        let mut out = SmallVec::new();
        if self.map.is_empty() {
            return out;
        }
        let lens = &self.lens[usize::from(key.v6)];
        for l in 0..=key.len {
            if lens[usize::from(l)] == 0 {
                continue;
            }
            if let Some(v) = self.map.get(&key.truncate(l)) {
                out.extend(v.iter().copied());
            }
        }
        out
    }
}

/// The wire form of a next hop after resolution.
pub fn nexthop_proto(n: &FibNexthop) -> pb::Nexthop {
    pb::Nexthop {
        gateway: n.gateway.map(pb::IpAddress::from),
        interface: n.interface.to_string(),
        weight: n.weight,
    }
}

/// The update sent for `addr`.
pub fn update_proto(
    addr: Key,
    ans: &WatchAnswer,
    protocol_of: impl Fn(u32) -> Arc<str>,
) -> NexthopUpdate {
    let mut u = NexthopUpdate {
        address: Some(pb::IpAddress::from(addr.ip())),
        resolved: ans.via.is_some(),
        covering: Some(ans.covering.to_proto()),
        ..Default::default()
    };
    if let Some(via) = &ans.via {
        u.via_route = Some(via.route.to_proto());
        u.via_protocol = protocol_of(via.client).to_string();
        u.metric = via.metric;
        u.resolved_nexthops = via.nexthops.iter().map(nexthop_proto).collect();
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Key {
        Key::from(s.parse::<ipnet::IpNet>().unwrap())
    }
    fn host(s: &str) -> Key {
        Key::host(s.parse().unwrap())
    }

    fn table(prefixes: &[&str]) -> Table {
        let mut t = Table::new();
        for p in prefixes {
            t.entry(k(p));
        }
        t
    }

    #[test]
    fn covering_is_the_whole_route_without_more_specifics() {
        let t = table(&["10.0.0.0/8", "11.0.0.0/8"]);
        assert_eq!(
            covering(&t, host("10.5.5.5"), Some(k("10.0.0.0/8"))),
            k("10.0.0.0/8")
        );
    }

    #[test]
    fn covering_excludes_more_specific_routes() {
        // 10.0.0.0/24 inside the /8: the answer for 10.5.5.5 holds over 10.4.0.0/14 only.
        let t = table(&["10.0.0.0/8", "10.0.0.0/24"]);
        assert_eq!(
            covering(&t, host("10.5.5.5"), Some(k("10.0.0.0/8"))),
            k("10.4.0.0/14")
        );
        // One above the address too.
        let t = table(&["10.0.0.0/8", "10.0.0.0/24", "10.5.128.0/17"]);
        assert_eq!(
            covering(&t, host("10.5.5.5"), Some(k("10.0.0.0/8"))),
            k("10.5.0.0/17")
        );
    }

    #[test]
    fn covering_shrinks_below_an_ineligible_route_containing_the_address() {
        // 10.5.0.0/16 contains the address but did not match (e.g. recursive): the answer
        // holds only inside a half of it that contains no other prefix.
        let t = table(&["10.0.0.0/8", "10.5.0.0/16"]);
        assert_eq!(
            covering(&t, host("10.5.5.5"), Some(k("10.0.0.0/8"))),
            k("10.5.0.0/17")
        );
    }

    #[test]
    fn unresolved_covering_avoids_every_prefix() {
        let t = table(&["10.0.0.0/8"]);
        assert_eq!(covering(&t, host("192.0.2.1"), None), k("128.0.0.0/1"));
        let empty = Table::new();
        assert_eq!(covering(&empty, host("192.0.2.1"), None), k("0.0.0.0/0"));
        let t6 = table(&["2001:db8::/32"]);
        assert_eq!(covering(&t6, host("2001:db9::1"), None), k("2001:db9::/32"));
    }

    #[test]
    fn host_route_match_covers_itself() {
        let t = table(&["10.0.0.1/32", "10.0.0.0/24"]);
        assert_eq!(
            covering(&t, host("10.0.0.1"), Some(k("10.0.0.1/32"))),
            k("10.0.0.1/32")
        );
        assert_eq!(
            covering(&t, host("10.0.0.2"), Some(k("10.0.0.0/24"))),
            k("10.0.0.2/31")
        );
    }

    #[test]
    fn cover_index_finds_covers_containing_a_prefix() {
        let mut c = CoverIndex::default();
        c.insert(k("10.4.0.0/14"), host("10.5.5.5"));
        c.insert(k("0.0.0.0/0"), host("192.0.2.1"));
        let mut got = c.containing(k("10.6.0.0/16")).to_vec();
        got.sort();
        assert_eq!(got, vec![host("10.5.5.5"), host("192.0.2.1")]);
        c.remove(k("0.0.0.0/0"), host("192.0.2.1"));
        assert_eq!(
            c.containing(k("10.6.0.0/16")).to_vec(),
            vec![host("10.5.5.5")]
        );
        assert!(c.containing(k("11.0.0.0/8")).is_empty());
    }
}
