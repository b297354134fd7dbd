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
    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
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
/// entry state holds one pointer; empty without allocation. Derefs to the candidates.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CandList(Option<Arc<Cands>>);

impl CandList {
    /// The list holding `shared` (an interned value; an empty one becomes the empty list).
    pub fn new(shared: Arc<Cands>) -> CandList {
        CandList((!shared.is_empty()).then_some(shared))
    }

    /// The shared list's address (0 when empty): its identity, as lists are interned.
    fn as_ptr(&self) -> usize {
        self.0.as_ref().map_or(0, |a| Arc::as_ptr(a) as usize)
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

/// Everything the RIB knows about one prefix: its candidates, what selection made of them
/// and how the selected route resolved. The table does not store this per prefix: a full
/// table shares a handful of distinct states, so each prefix holds the 4-byte id of an
/// interned one (see [`States`]), and changes go through [`EntryMut`].
#[derive(Clone, Debug, Default)]
pub struct Entry {
    /// One per client; most prefixes have exactly one.
    pub cands: CandList,
    /// The selection's result (None when there are no candidates).
    pub sel: Option<Arc<Selected>>,
    /// How the selected route resolved (None: unresolvable or nothing selected).
    pub res: Option<Arc<Resolution>>,
}

/// Id of an interned entry state in [`States`]; [`EMPTY_STATE`] is the empty one.
pub type StateId = u32;

/// The state of a prefix with no candidates, selection or resolution (never freed).
pub const EMPTY_STATE: StateId = 0;

/// An entry state's identity: the addresses of its three shared parts. The parts are
/// interned by value (see [`crate::intern::Pool`]), so equal addresses mean equal states,
/// and a state's parts stay alive (so their addresses stay unique) while it is held.
type StateKey = [usize; 3];

fn state_key(e: &Entry) -> StateKey {
    [e.cands.as_ptr(), arc_addr(&e.sel), arc_addr(&e.res)]
}

fn arc_addr<T>(a: &Option<Arc<T>>) -> usize {
    a.as_ref().map_or(0, |a| Arc::as_ptr(a) as usize)
}

/// The distinct entry states, each with the number of prefixes using it: a state is freed
/// (its id reused) when its last prefix moves to another state or goes away.
#[derive(Debug)]
pub struct States {
    slots: Vec<Entry>,
    refs: Vec<u32>,
    ids: std::collections::HashMap<StateKey, StateId, FastHash>,
    free: Vec<StateId>,
}

impl Default for States {
    fn default() -> Self {
        States {
            slots: vec![Entry::default()],
            refs: vec![0],
            ids: Default::default(),
            free: Vec::new(),
        }
    }
}

impl States {
    /// The state of an id.
    pub fn get(&self, id: StateId) -> &Entry {
        &self.slots[id as usize]
    }

    /// Number of prefixes using a state (0 for a free id and for [`EMPTY_STATE`]).
    pub fn users(&self, id: StateId) -> u32 {
        self.refs.get(id as usize).copied().unwrap_or(0)
    }

    /// Number of distinct non-empty states in use.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no non-empty state is in use.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The id of the state with key `k` if it exists, counting one more user.
    fn find(&mut self, k: StateKey) -> Option<StateId> {
        if k == [0; 3] {
            return Some(EMPTY_STATE);
        }
        let id = *self.ids.get(&k)?;
        self.refs[id as usize] += 1;
        Some(id)
    }

    /// Adds `e` (key `k`, not present) with one user.
    fn add(&mut self, k: StateKey, e: Entry) -> StateId {
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = e;
                self.refs[id as usize] = 1;
                id
            }
            None => {
                self.slots.push(e);
                self.refs.push(1);
                (self.slots.len() - 1) as StateId
            }
        };
        self.ids.insert(k, id);
        id
    }

    /// One user of `id` fewer; the last one frees it (and drops its shared parts).
    fn release(&mut self, id: StateId) {
        if id == EMPTY_STATE {
            return;
        }
        let r = &mut self.refs[id as usize];
        *r -= 1;
        if *r == 0 {
            let e = std::mem::take(&mut self.slots[id as usize]);
            self.ids.remove(&state_key(&e));
            self.free.push(id);
        }
    }

    /// Heap bytes held (the states' shared parts not counted).
    fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Entry>()
            + self.refs.capacity() * 4
            + self.free.capacity() * 4
            + self.ids.capacity() * (std::mem::size_of::<(StateKey, StateId)>() + 1)
    }
}

/// An entry borrowed mutably from the table, with its flags. Derefs to its [`Entry`];
/// changes replace the prefix's state id (other prefixes sharing the old state keep it).
#[derive(Debug)]
pub struct EntryMut<'a> {
    id: &'a mut StateId,
    states: &'a mut States,
    /// `FIB_*` and `SEL_CHANGED` bits.
    pub flags: &'a mut u8,
}

impl std::ops::Deref for EntryMut<'_> {
    type Target = Entry;
    fn deref(&self) -> &Entry {
        self.states.get(*self.id)
    }
}

impl EntryMut<'_> {
    /// The id of the entry's current state.
    pub fn state_id(&self) -> StateId {
        *self.id
    }

    /// Makes `e` the entry's state.
    pub fn set(&mut self, e: Entry) {
        self.move_to(state_key(&e), |_| e);
    }

    /// Moves the entry to the state of key `k`, built from the current one by `build` if
    /// it does not exist yet (so a move to an existing state copies nothing).
    fn move_to(&mut self, k: StateKey, build: impl FnOnce(&Entry) -> Entry) {
        let cur = *self.id;
        if k == state_key(self.states.get(cur)) {
            return;
        }
        let new = match self.states.find(k) {
            Some(id) => id,
            None => {
                let e = build(self.states.get(cur));
                self.states.add(k, e)
            }
        };
        self.states.release(cur);
        *self.id = new;
    }

    /// Replaces the candidate list.
    pub fn set_cands(&mut self, cands: CandList) {
        let [_, s, r] = state_key(self);
        self.move_to([cands.as_ptr(), s, r], |e| Entry {
            cands,
            sel: e.sel.clone(),
            res: e.res.clone(),
        });
    }

    /// Replaces the candidate list and the selection; returns the previous selection.
    pub fn set_cands_sel(
        &mut self,
        cands: CandList,
        sel: Option<Arc<Selected>>,
    ) -> Option<Arc<Selected>> {
        let old = self.sel.clone();
        let [_, _, r] = state_key(self);
        let k = [cands.as_ptr(), arc_addr(&sel), r];
        self.move_to(k, |e| Entry {
            cands,
            sel,
            res: e.res.clone(),
        });
        old
    }

    /// Replaces the selection; returns the previous one.
    pub fn set_sel(&mut self, sel: Option<Arc<Selected>>) -> Option<Arc<Selected>> {
        let cands = self.cands.clone();
        self.set_cands_sel(cands, sel)
    }

    /// Replaces the resolution.
    pub fn set_res(&mut self, res: Option<Arc<Resolution>>) {
        let [c, s, _] = state_key(self);
        self.move_to([c, s, arc_addr(&res)], |e| Entry {
            cands: e.cands.clone(),
            sel: e.sel.clone(),
            res,
        });
    }
}

/// A slab chunk: state ids and flags side by side, [`CHUNK`] of each at most.
#[derive(Debug)]
struct Chunk {
    entries: Vec<StateId>,
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
trait IndexKey: Copy + Ord + 'static {
    type Bucket: Copy + Ord + 'static;
    type Rest: Copy + Ord + 'static;
    /// Where the buckets are kept.
    type Buckets: Buckets<Self::Bucket, Vec<(Self::Rest, Slot)>>;
    fn split(self) -> (Self::Bucket, Self::Rest);
    fn join(b: Self::Bucket, r: Self::Rest) -> Self;
}

/// An [`Index`]'s buckets: bucket -> its sorted vector, never empty.
trait Buckets<B, V: 'static>: Default {
    fn get(&self, b: B) -> Option<&V>;
    fn get_mut(&mut self, b: B) -> Option<&mut V>;
    fn get_or_insert(&mut self, b: B) -> &mut V;
    fn remove(&mut self, b: B);
    fn values(&self) -> impl Iterator<Item = &V>;
    /// The buckets within the bounds, in order (both ways).
    fn range(&self, lo: Bound<B>, hi: Bound<B>) -> impl DoubleEndedIterator<Item = (B, &V)>;
    /// Heap bytes of the map itself, without the vectors' elements.
    fn own_bytes(&self) -> usize;
}

impl<B: Copy + Ord, V: Default + 'static> Buckets<B, V> for BTreeMap<B, V> {
    fn get(&self, b: B) -> Option<&V> {
        BTreeMap::get(self, &b)
    }
    fn get_mut(&mut self, b: B) -> Option<&mut V> {
        BTreeMap::get_mut(self, &b)
    }
    fn get_or_insert(&mut self, b: B) -> &mut V {
        self.entry(b).or_default()
    }
    fn remove(&mut self, b: B) {
        BTreeMap::remove(self, &b);
    }
    fn values(&self) -> impl Iterator<Item = &V> {
        BTreeMap::values(self)
    }
    fn range(&self, lo: Bound<B>, hi: Bound<B>) -> impl DoubleEndedIterator<Item = (B, &V)> {
        BTreeMap::range(self, (lo, hi)).map(|(b, v)| (*b, v))
    }
    /// Estimated: a key and a value per bucket, nodes about two thirds full.
    fn own_bytes(&self) -> usize {
        BTreeMap::len(self) * (std::mem::size_of::<B>() + std::mem::size_of::<V>()) * 3 / 2
    }
}

/// IPv4 buckets (16 bits) by number: an index of all 65,536 (zeroed when allocated, so
/// only the pages of buckets in use become resident) into the vectors of the buckets in
/// use. A lookup costs one probe instead of a `BTreeMap` descent over a full table's tens
/// of thousands of buckets, which missed the cache on every level when routes come in a
/// random order (BGP peers send in their own hash order).
#[derive(Debug, Default)]
struct DenseBuckets<V> {
    /// bucket -> 1 + its place in `used`; 0: not in use. Empty until the first insert.
    index: Vec<u32>,
    used: Vec<(u16, V)>,
}

impl<V> DenseBuckets<V> {
    fn place(&self, b: u64) -> Option<usize> {
        match self.index.get(b as usize) {
            Some(&p) if p != 0 => Some(p as usize - 1),
            _ => None,
        }
    }
}

impl<V: Default + 'static> Buckets<u64, V> for DenseBuckets<V> {
    fn get(&self, b: u64) -> Option<&V> {
        self.place(b).map(|p| &self.used[p].1)
    }
    fn get_mut(&mut self, b: u64) -> Option<&mut V> {
        self.place(b).map(|p| &mut self.used[p].1)
    }
    fn get_or_insert(&mut self, b: u64) -> &mut V {
        let p = match self.place(b) {
            Some(p) => p,
            None => {
                if self.index.is_empty() {
                    self.index = vec![0; 1 << 16];
                }
                self.used.push((b as u16, V::default()));
                self.index[b as usize] = self.used.len() as u32;
                self.used.len() - 1
            }
        };
        &mut self.used[p].1
    }
    fn remove(&mut self, b: u64) {
        let Some(p) = self.place(b) else {
            return;
        };
        self.used.swap_remove(p);
        self.index[b as usize] = 0;
        if let Some(&(moved, _)) = self.used.get(p) {
            self.index[usize::from(moved)] = p as u32 + 1;
        }
    }
    fn values(&self) -> impl Iterator<Item = &V> {
        self.used.iter().map(|(_, v)| v)
    }
    fn range(&self, lo: Bound<u64>, hi: Bound<u64>) -> impl DoubleEndedIterator<Item = (u64, &V)> {
        let last = self.index.len() as u64; // exclusive; 0 while nothing is in use
        let start = match lo {
            Bound::Included(b) => b,
            Bound::Excluded(b) => b.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match hi {
            Bound::Included(b) => b.saturating_add(1).min(last),
            Bound::Excluded(b) => b.min(last),
            Bound::Unbounded => last,
        };
        (start..end.max(start)).filter_map(|b| self.get(b).map(|v| (b, v)))
    }
    fn own_bytes(&self) -> usize {
        self.index.capacity() * std::mem::size_of::<u32>()
            + self.used.capacity() * std::mem::size_of::<(u16, V)>()
    }
}

/// IPv4 ([`key4`]): buckets are the address's top 16 bits, the rest 24 bits.
impl IndexKey for u64 {
    type Bucket = u64;
    type Rest = u32;
    type Buckets = DenseBuckets<Vec<(u32, Slot)>>;
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
    type Buckets = BTreeMap<u32, Vec<(Rest6, Slot)>>;
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
/// bucket, the buckets in [`DenseBuckets`] (IPv4) or a `BTreeMap` (IPv6). About 12 bytes a
/// route for IPv4 (about 25 for IPv6) with a full table, against about 24 (55) for a
/// `BTreeMap` filled in key order, whose leaves stay half full; an insert moves at most one
/// bucket's elements, and nothing grows by copying the whole index.
#[derive(Debug)]
struct Index<K: IndexKey> {
    buckets: K::Buckets,
    len: usize,
}

impl<K: IndexKey> Default for Index<K> {
    fn default() -> Self {
        Index {
            buckets: K::Buckets::default(),
            len: 0,
        }
    }
}

impl<K: IndexKey> Index<K> {
    fn len(&self) -> usize {
        self.len
    }

    /// Heap bytes held: the element vectors' capacity and the bucket map's own.
    fn heap_bytes(&self) -> usize {
        let elems: usize = self
            .buckets
            .values()
            .map(|v| v.capacity() * std::mem::size_of::<(K::Rest, Slot)>())
            .sum();
        elems + self.buckets.own_bytes()
    }

    fn get(&self, k: K) -> Option<Slot> {
        let (b, r) = k.split();
        let v = self.buckets.get(b)?;
        v.binary_search_by(|e| e.0.cmp(&r)).ok().map(|p| v[p].1)
    }

    fn insert(&mut self, k: K, s: Slot) {
        let (b, r) = k.split();
        let v = self.buckets.get_or_insert(b);
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
        let v = self.buckets.get_mut(b)?;
        let p = v.binary_search_by(|e| e.0.cmp(&r)).ok()?;
        let (_, s) = v.remove(p);
        if v.is_empty() {
            self.buckets.remove(b);
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
            .then(|| self.buckets.range(bucket(lo), bucket(hi)))
            .into_iter()
            .flatten()
            .flat_map(move |(bk, v)| {
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
/// IPv6 by [`Key6`]) and the entries in a chunked slab (a 4-byte state id and a flag byte
/// each; the states themselves are interned in [`States`]).
#[derive(Debug)]
pub struct Table {
    v4: Index<u64>,
    v6: Index<Key6>,
    slab: Vec<Chunk>,
    free: Vec<Slot>,
    states: States,
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
            states: States::default(),
            lens: [[0; 129]; 2],
        }
    }
}

/// The rank of an IPv4 index bucket (the address's top 16 bits) in [`feed_order`]: its
/// bits reversed.
fn bucket_rank4(bucket: u64) -> u16 {
    (bucket as u16).reverse_bits()
}

/// The order in which the FIB feed walks a family ([`Table::for_each_mut_family`]): IPv6 in
/// key order; IPv4 by the address's top 16 bits *bit-reversed*, then in key order. The
/// kernel's IPv4 FIB is an LC-trie: filled in address order it keeps growing one edge,
/// inflating and re-parenting nodes as it goes, and freeing enough of them to force an RCU
/// grace period every few hundred inserts; spread over the address space it resizes far
/// less. Measured with `fea/benches/nl_insert_order.py` on the full table: 1.63 s of kernel
/// time against 2.46 s in address order (each 2,000-route batch bit-reversed in both, as
/// oxr-fea sends them), 125 grace periods against 380. IPv6 (a radix tree) gains nothing.
pub fn feed_order(key: &Key) -> (u16, Key) {
    if key.v6 {
        (0, *key)
    } else {
        (bucket_rank4(key4(key.addr, key.len).split().0), *key)
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

fn slot_ref<'a>(slab: &[Chunk], states: &'a States, s: Slot) -> &'a Entry {
    states.get(slab[s as usize / CHUNK].entries[s as usize % CHUNK])
}

fn slot_mut<'a>(slab: &'a mut [Chunk], states: &'a mut States, s: Slot) -> EntryMut<'a> {
    let c = &mut slab[s as usize / CHUNK];
    let i = s as usize % CHUNK;
    EntryMut {
        id: &mut c.entries[i],
        states,
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
        Some(slot_ref(&self.slab, &self.states, s))
    }

    /// Heap bytes held by the IPv4 index, the IPv6 index and the slab with the state table
    /// (capacity based; the states' shared candidate lists, selections and resolutions are
    /// not counted).
    pub fn heap_bytes(&self) -> [usize; 3] {
        let slab = self.slab.capacity() * std::mem::size_of::<Chunk>()
            + self
                .slab
                .iter()
                .map(|c| c.entries.capacity() * std::mem::size_of::<StateId>() + c.flags.capacity())
                .sum::<usize>()
            + self.free.capacity() * std::mem::size_of::<Slot>()
            + self.states.heap_bytes();
        [self.v4.heap_bytes(), self.v6.heap_bytes(), slab]
    }

    /// The distinct entry states.
    pub fn states(&self) -> &States {
        &self.states
    }

    /// The id of an entry's state.
    pub fn state_id(&self, key: &Key) -> Option<StateId> {
        let s = self.slot(key)?;
        Some(self.slab[s as usize / CHUNK].entries[s as usize % CHUNK])
    }

    /// An entry's flags.
    pub fn flags(&self, key: &Key) -> Option<u8> {
        let s = self.slot(key)?;
        Some(self.slab[s as usize / CHUNK].flags[s as usize % CHUNK])
    }

    /// Exact match, mutable.
    pub fn get_mut(&mut self, key: &Key) -> Option<EntryMut<'_>> {
        let s = self.slot(key)?;
        Some(slot_mut(&mut self.slab, &mut self.states, s))
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
        chunk.entries.push(EMPTY_STATE);
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
        slot_mut(&mut self.slab, &mut self.states, s)
    }

    /// Removes an entry; false if there was none.
    pub fn remove(&mut self, key: &Key) -> bool {
        let s = if key.v6 {
            self.v6.remove(Key6::new(key.addr, key.len))
        } else {
            self.v4.remove(key4(key.addr, key.len))
        };
        let Some(s) = s else {
            return false;
        };
        self.lens[usize::from(key.v6)][usize::from(key.len)] -= 1;
        self.free.push(s);
        let c = &mut self.slab[s as usize / CHUNK];
        let i = s as usize % CHUNK;
        c.flags[i] = 0;
        let id = std::mem::replace(&mut c.entries[i], EMPTY_STATE);
        self.states.release(id);
        true
    }

    /// Every entry in order.
    pub fn iter(&self) -> impl Iterator<Item = (Key, &Entry)> {
        self.after(None)
    }

    /// Entries strictly after `after` (from the start if None), in order.
    pub fn after(&self, after: Option<Key>) -> impl Iterator<Item = (Key, &Entry)> {
        let (slab, states) = (&self.slab, &self.states);
        let v4 = self
            .v4
            .range(after4(after))
            .map(move |(k, s)| (from4(k), slot_ref(slab, states, s)));
        let v6 = self
            .v6
            .range(after6(after))
            .map(move |(k, s)| (from6(&k), slot_ref(slab, states, s)));
        v4.chain(v6)
    }

    /// Calls `f` on the entries strictly after `after` (from the start if None), in order,
    /// until it breaks.
    pub fn for_each_mut<F>(&mut self, after: Option<Key>, mut f: F)
    where
        F: FnMut(Key, EntryMut<'_>) -> ControlFlow<()>,
    {
        for (k, s) in self.v4.range(after4(after)) {
            if f(from4(k), slot_mut(&mut self.slab, &mut self.states, s)).is_break() {
                return;
            }
        }
        for (k, s) in self.v6.range(after6(after)) {
            if f(from6(&k), slot_mut(&mut self.slab, &mut self.states, s)).is_break() {
                return;
            }
        }
    }

    /// Calls `f` on the entries of one family (IPv6 if `v6`) strictly after `after` (from
    /// the family's start if None or of the other family) in [feed order](feed_order),
    /// until it breaks. Returns whether the walk reached the family's end.
    pub fn for_each_mut_family<F>(&mut self, v6: bool, after: Option<Key>, mut f: F) -> bool
    where
        F: FnMut(Key, EntryMut<'_>) -> ControlFlow<()>,
    {
        let after = after.filter(|k| k.v6 == v6);
        if v6 {
            for (k, s) in self.v6.range(after6(after)) {
                if f(from6(&k), slot_mut(&mut self.slab, &mut self.states, s)).is_break() {
                    return false;
                }
            }
            return true;
        }
        // IPv4: the rest of the cursor's bucket, then the buckets after it by rank.
        let mut first_rank = 0u32;
        if let Some(k) = after {
            let k = key4(k.addr, k.len);
            let bucket = k.split().0;
            let end = u64::join(bucket, u32::MAX >> 8);
            for (k, s) in self.v4.range((Bound::Excluded(k), Bound::Included(end))) {
                if f(from4(k), slot_mut(&mut self.slab, &mut self.states, s)).is_break() {
                    return false;
                }
            }
            first_rank = u32::from(bucket_rank4(bucket)) + 1;
        }
        for rank in first_rank..=u32::from(u16::MAX) {
            let bucket = u64::from((rank as u16).reverse_bits());
            let Some(v) = self.v4.buckets.get(bucket) else {
                continue;
            };
            for &(r, s) in v {
                let k = u64::join(bucket, r);
                if f(from4(k), slot_mut(&mut self.slab, &mut self.states, s)).is_break() {
                    return false;
                }
            }
        }
        true
    }

    /// Every entry inside `outer` (including `outer` itself).
    pub fn inside(&self, outer: Key) -> impl Iterator<Item = (Key, &Entry)> {
        let (slab, states) = (&self.slab, &self.states);
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
            .map(move |(k, s)| (from4(k), slot_ref(slab, states, s)));
        let v6 = self
            .v6
            .range(r6)
            .map(move |(k, s)| (from6(&k), slot_ref(slab, states, s)));
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
        assert!(t.remove(&k("10.0.0.0/16")));
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

    fn state(metric: u32) -> Entry {
        let cand = Candidate {
            client: 1,
            distance: 20,
            metric,
            tag: 0,
            action: Action::Forward,
            stale: false,
            since: 0,
            nexthops: Arc::from(vec![Nexthop {
                gateway: Some("192.0.2.1".parse().unwrap()),
                interface: None,
                weight: 0,
            }]),
        };
        Entry {
            cands: CandList::new(Arc::new(smallvec::smallvec![cand])),
            sel: None,
            res: None,
        }
    }

    #[test]
    fn equal_states_share_one_id_which_is_freed_and_reused() {
        let mut t = Table::new();
        let (a, b) = (state(1), state(2));
        t.entry(k("10.0.0.0/8")).set(a.clone());
        t.entry(k("11.0.0.0/8")).set(a.clone());
        t.entry(k("2001:db8::/32")).set(a.clone());
        let id_a = t.state_id(&k("10.0.0.0/8")).unwrap();
        assert_ne!(id_a, EMPTY_STATE);
        assert_eq!(t.state_id(&k("11.0.0.0/8")), Some(id_a));
        assert_eq!(t.state_id(&k("2001:db8::/32")), Some(id_a));
        assert_eq!(t.states().users(id_a), 3);
        assert_eq!(t.states().len(), 1);

        // One prefix changes: the others keep the old state, untouched.
        t.get_mut(&k("11.0.0.0/8")).unwrap().set(b.clone());
        let id_b = t.state_id(&k("11.0.0.0/8")).unwrap();
        assert_ne!(id_b, id_a);
        assert_eq!(t.states().users(id_a), 2);
        assert_eq!(t.get(&k("10.0.0.0/8")).unwrap().cands[0].metric, 1);
        assert_eq!(t.get(&k("2001:db8::/32")).unwrap().cands[0].metric, 1);
        assert_eq!(t.get(&k("11.0.0.0/8")).unwrap().cands[0].metric, 2);

        // Setting the same state again changes nothing.
        t.get_mut(&k("10.0.0.0/8")).unwrap().set(a.clone());
        assert_eq!(t.states().users(id_a), 2);

        // The last users go (one removed, one emptied): the id is freed, then reused.
        assert!(t.remove(&k("10.0.0.0/8")));
        t.get_mut(&k("2001:db8::/32"))
            .unwrap()
            .set_cands(CandList::default());
        assert_eq!(t.state_id(&k("2001:db8::/32")), Some(EMPTY_STATE));
        assert_eq!(t.states().users(id_a), 0);
        assert_eq!(t.states().len(), 1);
        assert!(t.get(&k("2001:db8::/32")).unwrap().cands.is_empty());
        let c = state(3);
        t.entry(k("12.0.0.0/8")).set(c);
        assert_eq!(t.state_id(&k("12.0.0.0/8")), Some(id_a), "freed id reused");
        assert_eq!(t.get(&k("12.0.0.0/8")).unwrap().cands[0].metric, 3);
        assert_eq!(t.get(&k("11.0.0.0/8")).unwrap().cands[0].metric, 2);
        assert_eq!(t.states().len(), 2);
    }

    proptest::proptest! {
        /// Whatever sequence of part changes and removals, every prefix reads back the
        /// state set last, each state's user count is the number of prefixes on it, and
        /// only states in use are held.
        #[test]
        fn interned_states_match_a_per_prefix_model(
            ops in proptest::collection::vec((0u8..6, 0u8..4, 0u32..3), 1..200),
        ) {
            let parts: Vec<Entry> = (0..3).map(state).collect();
            let sels: Vec<Arc<Selected>> = (0..3)
                .map(|m| Arc::new(crate::selection::select(&parts[m].cands, 1).unwrap()))
                .collect();
            let mut t = Table::new();
            let mut model: BTreeMap<Key, (Option<u32>, Option<u32>)> = BTreeMap::new();
            for (prefix, op, v) in ops {
                let key = Key::new(false, u128::from(prefix) << 24, 8);
                let m = model.entry(key).or_default();
                let mut e = t.entry(key);
                match op {
                    0 => {
                        e.set_cands(parts[v as usize].cands.clone());
                        m.0 = Some(v);
                    }
                    1 => {
                        e.set_sel(Some(sels[v as usize].clone()));
                        m.1 = Some(v);
                    }
                    2 => {
                        e.set_cands_sel(CandList::default(), None);
                        *m = (None, None);
                    }
                    _ => {
                        t.remove(&key);
                        model.remove(&key);
                    }
                }
            }
            let mut users: BTreeMap<StateId, u32> = BTreeMap::new();
            for (key, (c, sl)) in &model {
                let e = t.get(key).unwrap();
                let metric = |l: &[Candidate]| l.first().map(|c| c.metric);
                proptest::prop_assert_eq!(metric(&e.cands), *c);
                proptest::prop_assert_eq!(e.sel.as_ref().map(|s| s.metric), *sl);
                proptest::prop_assert!(e.res.is_none());
                let id = t.state_id(key).unwrap();
                proptest::prop_assert_eq!(id == EMPTY_STATE, c.is_none() && sl.is_none());
                if id != EMPTY_STATE {
                    *users.entry(id).or_default() += 1;
                }
            }
            proptest::prop_assert_eq!(t.states().len(), users.len());
            for (id, n) in users {
                proptest::prop_assert_eq!(t.states().users(id), n);
            }
        }
    }

    proptest::proptest! {
        /// The FIB feed's walk of a family visits every entry once, in [`feed_order`], and
        /// resumed after any entry it walked, visits exactly the ones after it.
        #[test]
        fn family_walk_follows_feed_order_from_any_cursor(
            addrs in proptest::collection::vec((proptest::prelude::any::<u32>(), 0u8..=32), 1..300),
            v6s in proptest::collection::vec(proptest::prelude::any::<u128>(), 0..20),
        ) {
            let mut t = Table::new();
            for (a, l) in &addrs {
                t.entry(Key::new(false, u128::from(*a), *l));
            }
            for a in &v6s {
                t.entry(Key::new(true, *a, 64));
            }
            for v6 in [false, true] {
                let mut want: Vec<Key> = t.iter().map(|(k, _)| k).filter(|k| k.v6 == v6).collect();
                want.sort_by_key(feed_order);
                let walk = |t: &mut Table, after: Option<Key>| {
                    let mut got = Vec::new();
                    let done = t.for_each_mut_family(v6, after, |k, _| {
                        got.push(k);
                        ControlFlow::Continue(())
                    });
                    assert!(done);
                    got
                };
                proptest::prop_assert_eq!(&walk(&mut t, None), &want);
                for (i, cursor) in want.iter().enumerate().step_by(7) {
                    proptest::prop_assert_eq!(&walk(&mut t, Some(*cursor)), &want[i + 1..].to_vec());
                }
            }
        }
    }

    #[test]
    fn ipv4_feed_order_spreads_over_the_address_space() {
        let order = |p: &str| feed_order(&k(p));
        // Top 16 bits reversed: 0.0/16, 128.0/16, 64.0/16, 192.0/16, ...
        assert!(order("0.0.0.0/8") < order("128.0.0.0/8"));
        assert!(order("128.0.0.0/8") < order("64.0.0.0/8"));
        assert!(order("64.0.0.0/8") < order("192.0.0.0/8"));
        assert!(order("192.0.0.0/8") < order("10.0.0.0/8"));
        assert!(order("0.1.0.0/16") > order("255.0.0.0/16"));
        // Within a /16, key order.
        assert!(order("10.1.0.0/16") < order("10.1.0.0/24"));
        assert!(order("10.1.0.0/24") < order("10.1.1.0/24"));
        assert!(order("2001:db8::/32") < order("2001:db9::/32"));
    }

    #[test]
    fn entries_stay_small() {
        // The full table's memory is this times a million.
        assert!(std::mem::size_of::<(Rest6, Slot)>() <= 20);
        assert!(std::mem::size_of::<Key6>() <= 24);
    }

    #[test]
    fn prefixes_sharing_a_state_cost_an_id_and_a_flag_byte_each() {
        let mut t = Table::new();
        let s = state(1);
        let n = 100_000u32;
        for i in 0..n {
            t.entry(Key::new(false, u128::from(i) << 8, 24))
                .set(s.clone());
        }
        assert_eq!(t.states().len(), 1);
        let slab = t.heap_bytes()[2];
        // A 4-byte id and a flag byte per prefix, in whole chunks, plus the one shared state.
        let ids_and_flags = (n as usize).next_multiple_of(CHUNK) * 5;
        assert!(slab <= ids_and_flags + 4096, "{slab} bytes");
    }
}
