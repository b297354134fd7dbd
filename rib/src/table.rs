//! The RIB's one prefix map: for every prefix (IPv4 and IPv6 in one ordered map, family
//! first), the candidates published for it (one per client), what selection made of them and
//! how the selected route resolved.
//!
//! XORP kept an origin table per protocol and merged them in stages; here the *data* is flat
//! (one map, per-prefix candidates) and the stages are modules working on it.
//!
//! The map is ordered by (family, address, length), which gives the three queries the RIB
//! needs: exact match, longest match of an address (probe each length present, longest
//! first), and every prefix inside a prefix (one contiguous range).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::{Bound, ControlFlow};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use oxr_proto::convert::ConvertError;
use oxr_proto::types as pb;
use smallvec::SmallVec;

use crate::resolve::Resolution;
use crate::selection::Selected;

/// A publishing client: one (protocol, instance) pair, numbered by the RIB.
pub type ClientId = u32;

/// The client that owns connected routes (made from the FEA's interface addresses).
pub const CONNECTED_CLIENT: ClientId = 0;

/// A prefix as the table keys it: family, network address (host bits zero, IPv4 in the
/// low 32 bits) and length. Ordered by family, then address, then length, so the prefixes
/// inside a prefix form one contiguous range.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Key {
    /// IPv6 (true) or IPv4.
    pub v6: bool,
    /// Network address.
    pub addr: u128,
    /// Prefix length.
    pub len: u8,
}

/// Every bit of an address of the family.
fn full(v6: bool) -> u128 {
    if v6 {
        u128::MAX
    } else {
        u128::from(u32::MAX)
    }
}

/// The network mask of `len` bits for the family.
fn mask(v6: bool, len: u8) -> u128 {
    let f = full(v6);
    f & !f.checked_shr(u32::from(len)).unwrap_or(0)
}

/// Leading bits `a` and `b` have in common, within the family's width.
pub fn common_len(v6: bool, a: u128, b: u128) -> u8 {
    let width = if v6 { 128 } else { 32 };
    let lz = (a ^ b).leading_zeros() - (128 - width);
    lz.min(width) as u8
}

impl Key {
    /// Address width of the family in bits.
    pub fn width(self) -> u8 {
        if self.v6 {
            128
        } else {
            32
        }
    }

    /// The prefix of length `len` containing `addr` (host bits cleared).
    pub fn new(v6: bool, addr: u128, len: u8) -> Key {
        Key {
            v6,
            addr: addr & mask(v6, len),
            len,
        }
    }

    /// The host prefix (/32 or /128) of an address.
    pub fn host(addr: IpAddr) -> Key {
        match addr {
            IpAddr::V4(a) => Key::new(false, u128::from(u32::from(a)), 32),
            IpAddr::V6(a) => Key::new(true, u128::from(a), 128),
        }
    }

    /// The address as `std::net`.
    pub fn ip(self) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(self.addr))
        } else {
            IpAddr::V4(Ipv4Addr::from(self.addr as u32))
        }
    }

    /// The prefix as `ipnet`.
    pub fn net(self) -> IpNet {
        match self.ip() {
            IpAddr::V4(a) => IpNet::V4(Ipv4Net::new(a, self.len).expect("length fits family")),
            IpAddr::V6(a) => IpNet::V6(Ipv6Net::new(a, self.len).expect("length fits family")),
        }
    }

    /// Highest address inside the prefix.
    pub fn last(self) -> u128 {
        self.addr | (full(self.v6) & !mask(self.v6, self.len))
    }

    /// Whether `other` (a prefix or a host key) lies inside this prefix.
    pub fn contains(self, other: Key) -> bool {
        self.v6 == other.v6
            && other.len >= self.len
            && other.addr & mask(self.v6, self.len) == self.addr
    }

    /// The prefix of length `len` (shorter or equal) that contains this one.
    pub fn truncate(self, len: u8) -> Key {
        Key::new(self.v6, self.addr, len.min(self.len))
    }

    /// Parses a wire prefix; host bits are cleared.
    pub fn from_proto(p: &pb::Prefix) -> Result<Key, ConvertError> {
        let (v6, addr) = addr_from_octets(&p.addr)?;
        let width = if v6 { 128 } else { 32 };
        if p.len > width {
            return Err(ConvertError::PrefixLength {
                len: p.len,
                family: if v6 { "IPv6" } else { "IPv4" },
            });
        }
        Ok(Key::new(v6, addr, p.len as u8))
    }

    /// The wire form.
    pub fn to_proto(self) -> pb::Prefix {
        pb::Prefix {
            addr: addr_octets(self.v6, self.addr),
            len: u32::from(self.len),
        }
    }
}

impl From<IpNet> for Key {
    fn from(net: IpNet) -> Key {
        match net {
            IpNet::V4(n) => Key::new(false, u128::from(u32::from(n.network())), n.prefix_len()),
            IpNet::V6(n) => Key::new(true, u128::from(n.network()), n.prefix_len()),
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.ip(), self.len)
    }
}

fn addr_from_octets(o: &[u8]) -> Result<(bool, u128), ConvertError> {
    match o.len() {
        4 => Ok((
            false,
            u128::from(u32::from_be_bytes(o.try_into().expect("len 4"))),
        )),
        16 => Ok((true, u128::from_be_bytes(o.try_into().expect("len 16")))),
        n => Err(ConvertError::AddressLength(n)),
    }
}

fn addr_octets(v6: bool, addr: u128) -> bytes::Bytes {
    if v6 {
        bytes::Bytes::copy_from_slice(&addr.to_be_bytes())
    } else {
        bytes::Bytes::copy_from_slice(&(addr as u32).to_be_bytes())
    }
}

/// A fast hasher for table keys (Fx-style multiply-rotate). Keys are not attacker-chosen
/// in a way that matters here (a protocol can flood the RIB anyway), and SipHash was a
/// visible share of the cost of indexing a full table's gateway dependents.
#[derive(Clone, Copy, Default)]
pub struct FastHasher(u64);

impl FastHasher {
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl std::hash::Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(b));
        }
    }
    fn write_u8(&mut self, v: u8) {
        self.add(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.add(v);
    }
    fn write_u128(&mut self, v: u128) {
        self.add(v as u64);
        self.add((v >> 64) as u64);
    }
    fn finish(&self) -> u64 {
        // The splitmix64 finalizer: the multiply-rotate steps leave the low bits (which
        // pick the bucket) and the top seven (hashbrown's tag) poorly mixed for keys with
        // structure like prefixes, which made probes long and full of false tag matches.
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// `BuildHasher` for [`FastHasher`].
pub type FastHash = std::hash::BuildHasherDefault<FastHasher>;

/// What a route does with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// To its next hops.
    Forward,
    /// Drop silently.
    Blackhole,
    /// Drop with ICMP unreachable.
    Reject,
}

impl Action {
    /// From the wire enum (unknown values forward).
    pub fn from_proto(v: i32) -> Action {
        match pb::RouteAction::try_from(v) {
            Ok(pb::RouteAction::Blackhole) => Action::Blackhole,
            Ok(pb::RouteAction::Reject) => Action::Reject,
            _ => Action::Forward,
        }
    }

    /// The wire enum.
    pub fn to_proto(self) -> pb::RouteAction {
        match self {
            Action::Forward => pb::RouteAction::Forward,
            Action::Blackhole => pb::RouteAction::Blackhole,
            Action::Reject => pb::RouteAction::Reject,
        }
    }
}

/// A next hop as a protocol published it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Nexthop {
    /// Gateway; without an interface it is resolved through the table.
    pub gateway: Option<IpAddr>,
    /// Outgoing interface; without a gateway the destination is on that link.
    pub interface: Option<Arc<str>>,
    /// ECMP weight (0 means 1).
    pub weight: u32,
}

/// An interned, shared set of next hops: many routes point at the same one.
pub type NhSet = Arc<[Nexthop]>;

/// A next hop after resolution, as the FEA gets it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FibNexthop {
    /// Gateway, or none for an on-link destination.
    pub gateway: Option<IpAddr>,
    /// Interface index (0 if the RIB has not learnt the interface yet).
    pub ifindex: u32,
    /// Interface name.
    pub interface: Arc<str>,
    /// ECMP weight (0 means 1).
    pub weight: u32,
}

/// Resolved next hops, shared by every route resolving the same way.
pub type FibNhSet = Arc<[FibNexthop]>;

/// One client's route for a prefix.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Candidate {
    /// Who published it.
    pub client: ClientId,
    /// Administrative distance.
    pub distance: u32,
    /// Protocol metric.
    pub metric: u32,
    /// Opaque tag.
    pub tag: u32,
    /// Forward, blackhole or reject.
    pub action: Action,
    /// The client's stream broke and it has not re-sent this route yet.
    pub stale: bool,
    /// When it was last changed, in seconds since the RIB started.
    pub since: u32,
    /// Next hops as published.
    pub nexthops: NhSet,
}

/// Entry flag: the FIB view of this prefix changed and is queued for the FEA.
pub const FIB_DIRTY: u8 = 1;
/// Entry flag: the FEA was last told to install this prefix.
pub const FIB_SENT: u8 = 2;
/// Entry flag: selection changed since the prefix was last resolved.
pub const SEL_CHANGED: u8 = 4;

/// A prefix's candidates, one per client (most prefixes have exactly one).
pub type Cands = SmallVec<[Candidate; 1]>;

/// A prefix's candidate list: a shared, interned list (see [`crate::intern::Pool`]), so an
/// entry holds one pointer; empty without allocation. Derefs to the candidates.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CandList(Option<Arc<Cands>>);

impl CandList {
    /// The list holding `shared` (an interned value; an empty one becomes the empty list).
    pub fn new(shared: Arc<Cands>) -> CandList {
        CandList((!shared.is_empty()).then_some(shared))
    }

    /// A copy of the candidates to modify (then intern and store with [`CandList::new`]).
    pub fn to_owned_cands(&self) -> Cands {
        self.0.as_deref().cloned().unwrap_or_default()
    }
}

impl std::ops::Deref for CandList {
    type Target = [Candidate];
    fn deref(&self) -> &[Candidate] {
        self.0.as_deref().map_or(&[], |c| &c[..])
    }
}

/// Everything the RIB knows about one prefix: three shared pointers and the flags
/// (32 bytes; a full table shares a handful of distinct lists, selections and resolutions).
#[derive(Clone, Debug, Default)]
pub struct Entry {
    /// One per client; most prefixes have exactly one.
    pub cands: CandList,
    /// The selection's result (None when there are no candidates).
    pub sel: Option<Arc<Selected>>,
    /// How the selected route resolved (None: unresolvable or nothing selected).
    pub res: Option<Arc<Resolution>>,
    /// `FIB_*` and `SEL_CHANGED` bits.
    pub flags: u8,
}

impl Entry {
    /// The candidate of `client`, if any.
    pub fn candidate(&self, client: ClientId) -> Option<&Candidate> {
        self.cands.iter().find(|c| c.client == client)
    }
}

/// An IPv4 prefix as the IPv4 index keys it: address in the high bits, length in the low
/// eight, so the integer order is (address, length) like [`Key`]'s.
fn key4(addr: u128, len: u8) -> u64 {
    ((addr as u64) << 8) | u64::from(len)
}

/// An IPv6 prefix as the IPv6 index keys it (24 bytes, against 32 for [`Key`]: no
/// 16-byte alignment), ordered by (address, length).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Key6 {
    hi: u64,
    lo: u64,
    len: u8,
}

impl Key6 {
    fn new(addr: u128, len: u8) -> Key6 {
        Key6 {
            hi: (addr >> 64) as u64,
            lo: addr as u64,
            len,
        }
    }

    const MAX: Key6 = Key6 {
        hi: u64::MAX,
        lo: u64::MAX,
        len: u8::MAX,
    };
}

fn from4(k: u64) -> Key {
    Key {
        v6: false,
        addr: u128::from(k >> 8),
        len: k as u8,
    }
}

fn from6(k: &Key6) -> Key {
    Key {
        v6: true,
        addr: (u128::from(k.hi) << 64) | u128::from(k.lo),
        len: k.len,
    }
}

/// Entries per slab chunk: chunks never move, so growing the table copies nothing and
/// needs no transient second copy.
const CHUNK: usize = 8192;

/// Slab index of an entry.
type Slot = u32;

/// The prefix map: two ordered indexes (IPv4 keyed by a `u64`, IPv6 by [`Key6`]) from
/// prefix to slot, and the entries in a chunked slab. With sorted input a B-tree's nodes
/// end up about half full, so the nodes hold only small keys and a 4-byte slot (about
/// 24 bytes a route for IPv4) and the 32-byte entries stay dense in the slab.
#[derive(Debug)]
pub struct Table {
    v4: BTreeMap<u64, Slot>,
    v6: BTreeMap<Key6, Slot>,
    slab: Vec<Vec<Entry>>,
    free: Vec<Slot>,
    /// How many entries of each length exist, per family, so a longest match probes only
    /// lengths that are present.
    lens: [[u32; 129]; 2],
}

impl Default for Table {
    fn default() -> Self {
        Table {
            v4: BTreeMap::new(),
            v6: BTreeMap::new(),
            slab: Vec::new(),
            free: Vec::new(),
            lens: [[0; 129]; 2],
        }
    }
}

/// Bounds of an IPv4 range after `after` (None: from the start).
fn after4(after: Option<Key>) -> (Bound<u64>, Bound<u64>) {
    match after {
        None => (Bound::Unbounded, Bound::Unbounded),
        Some(k) if !k.v6 => (Bound::Excluded(key4(k.addr, k.len)), Bound::Unbounded),
        Some(_) => (Bound::Excluded(u64::MAX), Bound::Unbounded),
    }
}

/// Bounds of an IPv6 range after `after` (None: from the start).
fn after6(after: Option<Key>) -> (Bound<Key6>, Bound<Key6>) {
    match after {
        Some(k) if k.v6 => (Bound::Excluded(Key6::new(k.addr, k.len)), Bound::Unbounded),
        _ => (Bound::Unbounded, Bound::Unbounded),
    }
}

fn slot_ref(slab: &[Vec<Entry>], s: Slot) -> &Entry {
    &slab[s as usize / CHUNK][s as usize % CHUNK]
}

fn slot_mut(slab: &mut [Vec<Entry>], s: Slot) -> &mut Entry {
    &mut slab[s as usize / CHUNK][s as usize % CHUNK]
}

impl Table {
    /// An empty table.
    pub fn new() -> Table {
        Table::default()
    }

    /// Number of entries (including empty ones waiting for their FIB delete).
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    fn slot(&self, key: &Key) -> Option<Slot> {
        if key.v6 {
            self.v6.get(&Key6::new(key.addr, key.len)).copied()
        } else {
            self.v4.get(&key4(key.addr, key.len)).copied()
        }
    }

    /// Exact match.
    pub fn get(&self, key: &Key) -> Option<&Entry> {
        let s = self.slot(key)?;
        Some(slot_ref(&self.slab, s))
    }

    /// Exact match, mutable.
    pub fn get_mut(&mut self, key: &Key) -> Option<&mut Entry> {
        let s = self.slot(key)?;
        Some(slot_mut(&mut self.slab, s))
    }

    fn alloc(&mut self) -> Slot {
        if let Some(s) = self.free.pop() {
            return s;
        }
        if self.slab.last().is_none_or(|c| c.len() == CHUNK) {
            self.slab.push(Vec::with_capacity(CHUNK));
        }
        let chunks = self.slab.len();
        let chunk = self.slab.last_mut().expect("just ensured");
        chunk.push(Entry::default());
        ((chunks - 1) * CHUNK + chunk.len() - 1) as Slot
    }

    /// The entry for `key`, created empty if absent.
    pub fn entry(&mut self, key: Key) -> &mut Entry {
        let s = match self.slot(&key) {
            Some(s) => s,
            None => {
                let s = self.alloc();
                if key.v6 {
                    self.v6.insert(Key6::new(key.addr, key.len), s);
                } else {
                    self.v4.insert(key4(key.addr, key.len), s);
                }
                self.lens[usize::from(key.v6)][usize::from(key.len)] += 1;
                s
            }
        };
        slot_mut(&mut self.slab, s)
    }

    /// Removes an entry.
    pub fn remove(&mut self, key: &Key) -> Option<Entry> {
        let s = if key.v6 {
            self.v6.remove(&Key6::new(key.addr, key.len))?
        } else {
            self.v4.remove(&key4(key.addr, key.len))?
        };
        self.lens[usize::from(key.v6)][usize::from(key.len)] -= 1;
        self.free.push(s);
        Some(std::mem::take(slot_mut(&mut self.slab, s)))
    }

    /// Every entry in order.
    pub fn iter(&self) -> impl Iterator<Item = (Key, &Entry)> {
        self.after(None)
    }

    /// Entries strictly after `after` (from the start if None), in order.
    pub fn after(&self, after: Option<Key>) -> impl Iterator<Item = (Key, &Entry)> {
        let slab = &self.slab;
        let v4 = self
            .v4
            .range(after4(after))
            .map(move |(k, s)| (from4(*k), slot_ref(slab, *s)));
        let v6 = self
            .v6
            .range(after6(after))
            .map(move |(k, s)| (from6(k), slot_ref(slab, *s)));
        v4.chain(v6)
    }

    /// Calls `f` on the entries strictly after `after` (from the start if None), in order,
    /// until it breaks.
    pub fn for_each_mut<F>(&mut self, after: Option<Key>, mut f: F)
    where
        F: FnMut(Key, &mut Entry) -> ControlFlow<()>,
    {
        for (k, s) in self.v4.range(after4(after)) {
            if f(from4(*k), slot_mut(&mut self.slab, *s)).is_break() {
                return;
            }
        }
        for (k, s) in self.v6.range(after6(after)) {
            if f(from6(k), slot_mut(&mut self.slab, *s)).is_break() {
                return;
            }
        }
    }

    /// Every entry inside `outer` (including `outer` itself).
    pub fn inside(&self, outer: Key) -> impl Iterator<Item = (Key, &Entry)> {
        let slab = &self.slab;
        let (r4, r6) = if outer.v6 {
            (
                (Bound::Excluded(u64::MAX), Bound::Unbounded),
                (
                    Bound::Included(Key6::new(outer.addr, outer.len)),
                    Bound::Included(Key6::new(outer.last(), u8::MAX)),
                ),
            )
        } else {
            (
                (
                    Bound::Included(key4(outer.addr, outer.len)),
                    Bound::Included(key4(outer.last(), u8::MAX)),
                ),
                (Bound::Excluded(Key6::MAX), Bound::Unbounded),
            )
        };
        let v4 = self
            .v4
            .range(r4)
            .map(move |(k, s)| (from4(*k), slot_ref(slab, *s)));
        let v6 = self
            .v6
            .range(r6)
            .map(move |(k, s)| (from6(k), slot_ref(slab, *s)));
        v4.chain(v6)
    }

    /// Longest prefix containing `addr` (a host key) whose entry passes `pred`.
    pub fn longest_match<F>(&self, addr: Key, mut pred: F) -> Option<(Key, &Entry)>
    where
        F: FnMut(&Key, &Entry) -> bool,
    {
        let lens = &self.lens[usize::from(addr.v6)];
        for len in (0..=addr.len).rev() {
            if lens[usize::from(len)] == 0 {
                continue;
            }
            let k = addr.truncate(len);
            if let Some(e) = self.get(&k) {
                if pred(&k, e) {
                    return Some((k, e));
                }
            }
        }
        None
    }

    /// The entries at the nearest address at or below `addr` and the nearest above it
    /// (every length at those two addresses), for covering-prefix computations.
    pub fn neighbours(&self, addr: Key) -> Vec<Key> {
        let mut out = Vec::new();
        let mut below: Box<dyn Iterator<Item = Key>> = if addr.v6 {
            Box::new(
                self.v6
                    .range(..=Key6::new(addr.addr, u8::MAX))
                    .rev()
                    .map(|(k, _)| from6(k)),
            )
        } else {
            Box::new(
                self.v4
                    .range(..=key4(addr.addr, u8::MAX))
                    .rev()
                    .map(|(k, _)| from4(*k)),
            )
        };
        let mut first = None;
        for k in &mut below {
            match first {
                None => first = Some(k.addr),
                Some(a) if a != k.addr => break,
                _ => {}
            }
            out.push(k);
        }
        let above: Box<dyn Iterator<Item = Key>> = if addr.v6 {
            Box::new(
                self.v6
                    .range((
                        Bound::Excluded(Key6::new(addr.addr, u8::MAX)),
                        Bound::Unbounded,
                    ))
                    .map(|(k, _)| from6(k)),
            )
        } else {
            Box::new(
                self.v4
                    .range((Bound::Excluded(key4(addr.addr, u8::MAX)), Bound::Unbounded))
                    .map(|(k, _)| from4(*k)),
            )
        };
        let mut first = None;
        for k in above {
            match first {
                None => first = Some(k.addr),
                Some(a) if a != k.addr => break,
                _ => {}
            }
            out.push(k);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Key {
        Key::from(s.parse::<IpNet>().unwrap())
    }

    #[test]
    fn keys_mask_and_contain() {
        assert_eq!(k("10.1.2.3/16"), k("10.1.0.0/16"));
        assert!(k("10.0.0.0/8").contains(k("10.1.0.0/16")));
        assert!(!k("10.1.0.0/16").contains(k("10.0.0.0/8")));
        assert!(!k("10.0.0.0/8").contains(k("2001:db8::/32")));
        assert!(k("0.0.0.0/0").contains(k("255.255.255.255/32")));
        assert_eq!(
            k("10.0.0.0/8").last(),
            u128::from(u32::from(Ipv4Addr::new(10, 255, 255, 255)))
        );
        assert_eq!(k("2001:db8::1/128").to_string(), "2001:db8::1/128");
        assert_eq!(common_len(false, 0x0a00_0000, 0x0a05_0505), 13);
        assert_eq!(common_len(false, 7, 7), 32);
    }

    #[test]
    fn proto_prefixes_round_trip_and_reject_bad_lengths() {
        let key = k("2001:db8:1::/48");
        assert_eq!(Key::from_proto(&key.to_proto()).unwrap(), key);
        let bad = pb::Prefix {
            addr: bytes::Bytes::from_static(&[10, 0, 0, 0]),
            len: 33,
        };
        assert!(Key::from_proto(&bad).is_err());
    }

    #[test]
    fn longest_match_and_inside() {
        let mut t = Table::new();
        for p in [
            "0.0.0.0/0",
            "10.0.0.0/8",
            "10.1.0.0/16",
            "10.1.2.0/24",
            "11.0.0.0/8",
            "2001:db8::/32",
        ] {
            t.entry(k(p));
        }
        let a = Key::host("10.1.2.3".parse().unwrap());
        assert_eq!(t.longest_match(a, |_, _| true).unwrap().0, k("10.1.2.0/24"));
        assert_eq!(
            t.longest_match(a, |k, _| k.len <= 16).unwrap().0,
            k("10.1.0.0/16")
        );
        let b = Key::host("12.0.0.1".parse().unwrap());
        assert_eq!(t.longest_match(b, |_, _| true).unwrap().0, k("0.0.0.0/0"));
        let inside: Vec<_> = t.inside(k("10.0.0.0/8")).map(|(k, _)| k).collect();
        assert_eq!(
            inside,
            vec![k("10.0.0.0/8"), k("10.1.0.0/16"), k("10.1.2.0/24")]
        );
        t.remove(&k("0.0.0.0/0"));
        assert!(t.longest_match(b, |_, _| true).is_none());
        let v6 = Key::host("2001:db8::1".parse().unwrap());
        assert_eq!(
            t.longest_match(v6, |_, _| true).unwrap().0,
            k("2001:db8::/32")
        );
    }

    #[test]
    fn v4_and_v6_keys_round_trip_in_order_and_slots_are_reused() {
        let mut t = Table::new();
        let ps = [
            "2001:db8::/32",
            "0.0.0.0/0",
            "255.255.255.255/32",
            "10.0.0.0/8",
            "10.0.0.0/16",
            "::/0",
            "2001:db8::1/128",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
        ];
        for p in ps {
            t.entry(k(p)).flags = 1;
        }
        let got: Vec<Key> = t.iter().map(|(k, _)| k).collect();
        let mut want: Vec<Key> = ps.iter().map(|p| k(p)).collect();
        want.sort();
        assert_eq!(
            got, want,
            "order is Key's: IPv4 first, then (address, length)"
        );
        assert_eq!(t.len(), ps.len());
        // after() resumes at the right place across the family boundary.
        let rest: Vec<Key> = t
            .after(Some(k("255.255.255.255/32")))
            .map(|(k, _)| k)
            .collect();
        assert_eq!(rest, want[4..].to_vec());
        // Inside ranges stay within a family.
        assert_eq!(t.inside(k("::/0")).count(), 4);
        assert_eq!(t.inside(k("10.0.0.0/8")).count(), 2);
        // A removed entry's slot is reused, and starts empty.
        let removed = t.remove(&k("10.0.0.0/16")).unwrap();
        assert_eq!(removed.flags, 1);
        assert!(t.get(&k("10.0.0.0/16")).is_none());
        assert_eq!(t.entry(k("192.0.2.0/24")).flags, 0);
        assert_eq!(t.slab.iter().map(Vec::len).sum::<usize>(), ps.len());
        // Mutable walks see every entry once, in order, and stop on Break.
        let mut seen = Vec::new();
        t.for_each_mut(Some(k("192.0.2.0/24")), |k, e| {
            e.flags = 9;
            seen.push(k);
            if k.v6 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(seen, vec![k("255.255.255.255/32"), k("::/0")]);
        assert_eq!(t.get(&k("::/0")).unwrap().flags, 9);
        assert_eq!(t.get(&k("2001:db8::/32")).unwrap().flags, 1);
    }

    #[test]
    fn entries_stay_small() {
        // The full table's memory is this times a million: keep it at four words.
        assert!(std::mem::size_of::<Entry>() <= 32);
        assert!(std::mem::size_of::<Key6>() <= 24);
    }
}
