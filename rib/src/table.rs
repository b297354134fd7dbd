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

/// Everything the RIB knows about one prefix: three shared pointers (24 bytes; a full
/// table shares a handful of distinct lists, selections and resolutions). Its flags live
/// beside it in the slab (see [`EntryMut`]): inside, they would pad it to 32 bytes.
#[derive(Clone, Debug, Default)]
pub struct Entry {
    /// One per client; most prefixes have exactly one.
    pub cands: CandList,
    /// The selection's result (None when there are no candidates).
    pub sel: Option<Arc<Selected>>,
    /// How the selected route resolved (None: unresolvable or nothing selected).
    pub res: Option<Arc<Resolution>>,
}

/// An entry borrowed mutably from the table, with its flags. Derefs to the [`Entry`].
#[derive(Debug)]
pub struct EntryMut<'a> {
    /// The entry.
    pub entry: &'a mut Entry,
    /// `FIB_*` and `SEL_CHANGED` bits.
    pub flags: &'a mut u8,
}

impl std::ops::Deref for EntryMut<'_> {
    type Target = Entry;
    fn deref(&self) -> &Entry {
        self.entry
    }
}

impl std::ops::DerefMut for EntryMut<'_> {
    fn deref_mut(&mut self) -> &mut Entry {
        self.entry
    }
}

/// A slab chunk: entries and their flags side by side, [`CHUNK`] of each at most.
#[derive(Debug)]
struct Chunk {
    entries: Vec<Entry>,
    flags: Vec<u8>,
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

/// A key of a bucketed [`Index`]: split into a bucket and the rest, both ordered so that
/// (bucket, rest) orders like the key.
trait IndexKey: Copy + Ord {
    type Bucket: Copy + Ord;
    type Rest: Copy + Ord;
    fn split(self) -> (Self::Bucket, Self::Rest);
    fn join(b: Self::Bucket, r: Self::Rest) -> Self;
}

/// IPv4 ([`key4`]): buckets are the address's top 16 bits, the rest 24 bits.
impl IndexKey for u64 {
    type Bucket = u64;
    type Rest = u32;
    fn split(self) -> (u64, u32) {
        (self >> 24, (self & 0xff_ffff) as u32)
    }
    fn join(b: u64, r: u32) -> u64 {
        (b << 24) | u64::from(r)
    }
}

/// The rest of an IPv6 key below its bucket, fields in order of significance (the
/// derived order is the key's): 14 bytes in 16, 4-byte aligned.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Rest6 {
    /// Bits 39..8 of the address's high half.
    hi_mid: u32,
    /// Bits 7..0 of it.
    hi_low: u8,
    lo_high: u32,
    lo_low: u32,
    len: u8,
}

/// IPv6: buckets are the address's top 24 bits (a full table puts a few dozen prefixes in
/// each; finer buckets would cost more in per-bucket overhead than they save).
impl IndexKey for Key6 {
    type Bucket = u32;
    type Rest = Rest6;
    fn split(self) -> (u32, Rest6) {
        (
            (self.hi >> 40) as u32,
            Rest6 {
                hi_mid: (self.hi >> 8) as u32,
                hi_low: self.hi as u8,
                lo_high: (self.lo >> 32) as u32,
                lo_low: self.lo as u32,
                len: self.len,
            },
        )
    }
    fn join(b: u32, r: Rest6) -> Key6 {
        Key6 {
            hi: (u64::from(b) << 40) | (u64::from(r.hi_mid) << 8) | u64::from(r.hi_low),
            lo: (u64::from(r.lo_high) << 32) | u64::from(r.lo_low),
            len: r.len,
        }
    }
}

/// An ordered index from prefix to slot: a sorted `Vec` of (rest of key, slot) per
/// bucket, the buckets in a `BTreeMap`. About 11 bytes a route for IPv4 (about 25 for
/// IPv6) with a full table, against about 24 (55) for a `BTreeMap` filled in key order, whose
/// leaves stay half full; an insert moves at most one bucket's elements, and nothing grows
/// by copying the whole index.
#[derive(Debug)]
struct Index<K: IndexKey> {
    buckets: BTreeMap<K::Bucket, Vec<(K::Rest, Slot)>>,
    len: usize,
}

impl<K: IndexKey> Default for Index<K> {
    fn default() -> Self {
        Index {
            buckets: BTreeMap::new(),
            len: 0,
        }
    }
}

impl<K: IndexKey> Index<K> {
    fn len(&self) -> usize {
        self.len
    }

    /// Heap bytes held: the element vectors' capacity and, estimated, the bucket map's
    /// nodes (a key and a `Vec` per bucket, nodes about two thirds full).
    fn heap_bytes(&self) -> usize {
        let elems: usize = self
            .buckets
            .values()
            .map(|v| v.capacity() * std::mem::size_of::<(K::Rest, Slot)>())
            .sum();
        let per_bucket =
            std::mem::size_of::<K::Bucket>() + std::mem::size_of::<Vec<(K::Rest, Slot)>>();
        elems + self.buckets.len() * per_bucket * 3 / 2
    }

    fn get(&self, k: K) -> Option<Slot> {
        let (b, r) = k.split();
        let v = self.buckets.get(&b)?;
        v.binary_search_by(|e| e.0.cmp(&r)).ok().map(|p| v[p].1)
    }

    fn insert(&mut self, k: K, s: Slot) {
        let (b, r) = k.split();
        let v = self.buckets.entry(b).or_default();
        match v.binary_search_by(|e| e.0.cmp(&r)) {
            Ok(p) => v[p].1 = s,
            Err(p) => {
                if v.len() == v.capacity() {
                    // Grow by a quarter, not double: a full table's buckets fill once, in
                    // order, and doubling would leave them a quarter empty on average.
                    v.reserve_exact((v.len() / 4).max(4));
                }
                v.insert(p, (r, s));
                self.len += 1;
            }
        }
    }

    fn remove(&mut self, k: K) -> Option<Slot> {
        let (b, r) = k.split();
        let v = self.buckets.get_mut(&b)?;
        let p = v.binary_search_by(|e| e.0.cmp(&r)).ok()?;
        let (_, s) = v.remove(p);
        if v.is_empty() {
            self.buckets.remove(&b);
        } else if v.capacity() > 4 * v.len() + 8 {
            v.shrink_to(2 * v.len());
        }
        self.len -= 1;
        Some(s)
    }

    /// The keys within the bounds, in order (both ways).
    fn range(
        &self,
        (lo, hi): (Bound<K>, Bound<K>),
    ) -> impl DoubleEndedIterator<Item = (K, Slot)> + '_ {
        let bucket = |b: Bound<K>| match b {
            Bound::Included(k) | Bound::Excluded(k) => Bound::Included(k.split().0),
            Bound::Unbounded => Bound::Unbounded,
        };
        let empty = match (lo, hi) {
            (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
                a.split().0 > b.split().0
            }
            _ => false,
        };
        (!empty)
            .then(|| self.buckets.range((bucket(lo), bucket(hi))))
            .into_iter()
            .flatten()
            .flat_map(move |(&bk, v)| {
                let at = |k: K| {
                    let (b, r) = k.split();
                    (b == bk).then_some(r)
                };
                let start = match lo {
                    Bound::Included(k) => at(k).map_or(0, |r| v.partition_point(|e| e.0 < r)),
                    Bound::Excluded(k) => at(k).map_or(0, |r| v.partition_point(|e| e.0 <= r)),
                    Bound::Unbounded => 0,
                };
                let end = match hi {
                    Bound::Included(k) => {
                        at(k).map_or(v.len(), |r| v.partition_point(|e| e.0 <= r))
                    }
                    Bound::Excluded(k) => at(k).map_or(v.len(), |r| v.partition_point(|e| e.0 < r)),
                    Bound::Unbounded => v.len(),
                };
                v[start..end.max(start)]
                    .iter()
                    .map(move |&(r, s)| (K::join(bk, r), s))
            })
    }
}

/// Entries per slab chunk: chunks never move, so growing the table copies nothing and
/// needs no transient second copy.
const CHUNK: usize = 8192;

/// Slab index of an entry.
type Slot = u32;

/// The prefix map: two ordered [`Index`]es from prefix to slot (IPv4 keyed by a `u64`,
/// IPv6 by [`Key6`]) and the entries in a chunked slab (24 bytes and a flag byte each).
#[derive(Debug)]
pub struct Table {
    v4: Index<u64>,
    v6: Index<Key6>,
    slab: Vec<Chunk>,
    free: Vec<Slot>,
    /// How many entries of each length exist, per family, so a longest match probes only
    /// lengths that are present.
    lens: [[u32; 129]; 2],
}

impl Default for Table {
    fn default() -> Self {
        Table {
            v4: Index::default(),
            v6: Index::default(),
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

fn slot_ref(slab: &[Chunk], s: Slot) -> &Entry {
    &slab[s as usize / CHUNK].entries[s as usize % CHUNK]
}

fn slot_mut(slab: &mut [Chunk], s: Slot) -> EntryMut<'_> {
    let c = &mut slab[s as usize / CHUNK];
    let i = s as usize % CHUNK;
    EntryMut {
        entry: &mut c.entries[i],
        flags: &mut c.flags[i],
    }
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
        self.v4.len() == 0 && self.v6.len() == 0
    }

    fn slot(&self, key: &Key) -> Option<Slot> {
        if key.v6 {
            self.v6.get(Key6::new(key.addr, key.len))
        } else {
            self.v4.get(key4(key.addr, key.len))
        }
    }

    /// Exact match.
    pub fn get(&self, key: &Key) -> Option<&Entry> {
        let s = self.slot(key)?;
        Some(slot_ref(&self.slab, s))
    }

    /// Heap bytes held by the IPv4 index, the IPv6 index and the slab (capacity based; the
    /// entries' shared candidate lists, selections and resolutions are not counted).
    pub fn heap_bytes(&self) -> [usize; 3] {
        let slab = self.slab.capacity() * std::mem::size_of::<Chunk>()
            + self
                .slab
                .iter()
                .map(|c| c.entries.capacity() * std::mem::size_of::<Entry>() + c.flags.capacity())
                .sum::<usize>()
            + self.free.capacity() * std::mem::size_of::<Slot>();
        [self.v4.heap_bytes(), self.v6.heap_bytes(), slab]
    }

    /// An entry's flags.
    pub fn flags(&self, key: &Key) -> Option<u8> {
        let s = self.slot(key)?;
        Some(self.slab[s as usize / CHUNK].flags[s as usize % CHUNK])
    }

    /// Exact match, mutable.
    pub fn get_mut(&mut self, key: &Key) -> Option<EntryMut<'_>> {
        let s = self.slot(key)?;
        Some(slot_mut(&mut self.slab, s))
    }

    fn alloc(&mut self) -> Slot {
        if let Some(s) = self.free.pop() {
            return s;
        }
        if self.slab.last().is_none_or(|c| c.entries.len() == CHUNK) {
            self.slab.push(Chunk {
                entries: Vec::with_capacity(CHUNK),
                flags: Vec::with_capacity(CHUNK),
            });
        }
        let chunks = self.slab.len();
        let chunk = self.slab.last_mut().expect("just ensured");
        chunk.entries.push(Entry::default());
        chunk.flags.push(0);
        ((chunks - 1) * CHUNK + chunk.entries.len() - 1) as Slot
    }

    /// The entry for `key`, created empty if absent.
    pub fn entry(&mut self, key: Key) -> EntryMut<'_> {
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
            self.v6.remove(Key6::new(key.addr, key.len))?
        } else {
            self.v4.remove(key4(key.addr, key.len))?
        };
        self.lens[usize::from(key.v6)][usize::from(key.len)] -= 1;
        self.free.push(s);
        let e = slot_mut(&mut self.slab, s);
        *e.flags = 0;
        Some(std::mem::take(e.entry))
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
            .map(move |(k, s)| (from4(k), slot_ref(slab, s)));
        let v6 = self
            .v6
            .range(after6(after))
            .map(move |(k, s)| (from6(&k), slot_ref(slab, s)));
        v4.chain(v6)
    }

    /// Calls `f` on the entries strictly after `after` (from the start if None), in order,
    /// until it breaks.
    pub fn for_each_mut<F>(&mut self, after: Option<Key>, mut f: F)
    where
        F: FnMut(Key, EntryMut<'_>) -> ControlFlow<()>,
    {
        for (k, s) in self.v4.range(after4(after)) {
            if f(from4(k), slot_mut(&mut self.slab, s)).is_break() {
                return;
            }
        }
        for (k, s) in self.v6.range(after6(after)) {
            if f(from6(&k), slot_mut(&mut self.slab, s)).is_break() {
                return;
            }
        }
    }

    /// Calls `f` on the entries of one family (IPv6 if `v6`) strictly after `after` (from
    /// the family's start if None or of the other family), in order, until it breaks.
    /// Returns whether the walk reached the family's end.
    pub fn for_each_mut_family<F>(&mut self, v6: bool, after: Option<Key>, mut f: F) -> bool
    where
        F: FnMut(Key, EntryMut<'_>) -> ControlFlow<()>,
    {
        let after = after.filter(|k| k.v6 == v6);
        if v6 {
            for (k, s) in self.v6.range(after6(after)) {
                if f(from6(&k), slot_mut(&mut self.slab, s)).is_break() {
                    return false;
                }
            }
        } else {
            for (k, s) in self.v4.range(after4(after)) {
                if f(from4(k), slot_mut(&mut self.slab, s)).is_break() {
                    return false;
                }
            }
        }
        true
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
            .map(move |(k, s)| (from4(k), slot_ref(slab, s)));
        let v6 = self
            .v6
            .range(r6)
            .map(move |(k, s)| (from6(&k), slot_ref(slab, s)));
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
                    .range((
                        Bound::Unbounded,
                        Bound::Included(Key6::new(addr.addr, u8::MAX)),
                    ))
                    .rev()
                    .map(|(k, _)| from6(&k)),
            )
        } else {
            Box::new(
                self.v4
                    .range((Bound::Unbounded, Bound::Included(key4(addr.addr, u8::MAX))))
                    .rev()
                    .map(|(k, _)| from4(k)),
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
                    .map(|(k, _)| from6(&k)),
            )
        } else {
            Box::new(
                self.v4
                    .range((Bound::Excluded(key4(addr.addr, u8::MAX)), Bound::Unbounded))
                    .map(|(k, _)| from4(k)),
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
    use std::ops::RangeBounds;

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
            *t.entry(k(p)).flags = 1;
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
        assert_eq!(t.flags(&k("10.0.0.0/16")), Some(1));
        assert!(t.remove(&k("10.0.0.0/16")).is_some());
        assert!(t.get(&k("10.0.0.0/16")).is_none());
        assert_eq!(*t.entry(k("192.0.2.0/24")).flags, 0);
        assert_eq!(
            t.slab.iter().map(|c| c.entries.len()).sum::<usize>(),
            ps.len()
        );
        // Mutable walks see every entry once, in order, and stop on Break.
        let mut seen = Vec::new();
        t.for_each_mut(Some(k("192.0.2.0/24")), |k, e| {
            *e.flags = 9;
            seen.push(k);
            if k.v6 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(seen, vec![k("255.255.255.255/32"), k("::/0")]);
        assert_eq!(t.flags(&k("::/0")), Some(9));
        assert_eq!(t.flags(&k("2001:db8::/32")), Some(1));
    }

    fn bound<K>(kind: u8, v: K) -> Bound<K> {
        match kind % 3 {
            0 => Bound::Included(v),
            1 => Bound::Excluded(v),
            _ => Bound::Unbounded,
        }
    }

    /// Runs `ops` (insert or remove) and `ranges` on an [`Index`] and on a `BTreeMap`, and
    /// compares every answer.
    fn index_matches_btreemap<K: IndexKey + std::fmt::Debug>(
        key: impl Fn(u64, u8) -> K,
        ops: Vec<(bool, u64, u8)>,
        ranges: Vec<(u8, u64, u8, u64)>,
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        let mut idx = Index::<K>::default();
        let mut want = BTreeMap::new();
        for (i, (add, a, len)) in ops.into_iter().enumerate() {
            let k = key(a, len);
            if add {
                idx.insert(k, i as Slot);
                want.insert(k, i as Slot);
            } else {
                proptest::prop_assert_eq!(idx.remove(k), want.remove(&k));
            }
            proptest::prop_assert_eq!(idx.get(k), want.get(&k).copied());
            proptest::prop_assert_eq!(idx.len(), want.len());
        }
        let all: Vec<(K, Slot)> = want.iter().map(|(k, s)| (*k, *s)).collect();
        for (lk, la, hk, ha) in ranges {
            let (lo, hi) = (bound(lk, key(la, 8)), bound(hk, key(ha, 24)));
            let got: Vec<_> = idx.range((lo, hi)).collect();
            let exp: Vec<_> = all
                .iter()
                .copied()
                .filter(|(k, _)| (lo, hi).contains(k))
                .collect();
            proptest::prop_assert_eq!(&got, &exp);
            let mut back: Vec<_> = idx.range((lo, hi)).rev().collect();
            back.reverse();
            proptest::prop_assert_eq!(&back, &exp);
        }
        Ok(())
    }

    proptest::proptest! {
        /// The bucketed indexes behave as ordered maps: lookups, inserts, removes and
        /// ranges (both directions, any bounds) match a `BTreeMap`'s.
        #[test]
        fn ipv4_index_matches_an_ordered_map(
            ops in proptest::collection::vec((proptest::bool::ANY, 0u64..1 << 12, 0u8..33), 1..300),
            ranges in proptest::collection::vec((0u8..3, 0u64..1 << 12, 0u8..3, 0u64..1 << 12), 1..20),
        ) {
            // Spread the few distinct addresses over several buckets and lengths.
            let key = |a: u64, len: u8| key4(u128::from((a as u32).wrapping_mul(0x0101_0f01)), len);
            index_matches_btreemap(key, ops, ranges)?;
            let idx = Index::<u64>::default();
            proptest::prop_assert_eq!(idx.range((Bound::Excluded(u64::MAX), Bound::Unbounded)).count(), 0);
        }

        #[test]
        fn ipv6_index_matches_an_ordered_map(
            ops in proptest::collection::vec((proptest::bool::ANY, 0u64..1 << 12, 0u8..129), 1..300),
            ranges in proptest::collection::vec((0u8..3, 0u64..1 << 12, 0u8..3, 0u64..1 << 12), 1..20),
        ) {
            let key = |a: u64, len: u8| {
                let x = u128::from(a).wrapping_mul(0x0001_0203_0405_0607_0809_0a0b_0c0d_0e0f);
                Key6::new(x.rotate_left(a as u32 % 128), len)
            };
            index_matches_btreemap(key, ops, ranges)?;
        }
    }

    #[test]
    fn entries_stay_small() {
        // The full table's memory is this times a million: keep it at three words.
        assert!(std::mem::size_of::<Entry>() <= 24);
        assert!(std::mem::size_of::<(Rest6, Slot)>() <= 20);
        assert!(std::mem::size_of::<Key6>() <= 24);
    }
}
