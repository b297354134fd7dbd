//! Clients of oxr-rib: the route publisher, next-hop watches and redistribution.
//!
//! ```text
//!  protocol event loop              shared table (one lock)              publisher task          oxr-rib
//!  -------------------              -----------------------              --------------          -------
//!  add/withdraw/end_of_rib/flush --> prefix -> (interned attributes,      takes <= max_batch
//!  (applied in the caller's            dirty, RIB has it); queue of       dirty prefixes, groups
//!   thread, never blocks long)         dirty prefixes (each once)  -----> them by attributes ---Publish--> RouteBatch
//!                                                                          <-------------------- acks (acked_batches)
//!  stream breaks (RIB restart)  ->  backoff, reconnect, Hello + whole table (+ EndOfRib)
//! ```
//!
//! Every client keeps what it needs to replay its side of the conversation, so a restart of
//! oxr-rib is invisible to the protocol: the publisher re-sends its table and end-of-RIB,
//! the next-hop watcher re-registers its addresses, the redistribution watcher turns the new
//! initial dump into the differences against what the protocol already has.
//!
//! The publisher's memory is bounded by the number of distinct prefixes: changes are not
//! queued, they overwrite the prefix's entry in the table (the latest state is what the RIB
//! needs), and the queue holds each dirty prefix at most once. Route attributes (next hops,
//! action, distance, metric, tag) are interned, so a full table through a few next hops
//! costs a map entry per route, and goes out as `RouteGroup`s with packed prefixes.

use std::collections::{hash_map::Entry, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ipnet::IpNet;
use oxr_proto::convert::{iter_packed_nets, packed_len, req_addr, PackedBuilder, PACKED_V6};
use oxr_proto::rib::publish_request::Msg;
use oxr_proto::rib::rib_client::RibClient;
use oxr_proto::rib::{
    self as wire, EndOfRib, NexthopWatchRequest, PublishRequest, RedistributionRequest, RouteBatch,
    RouteGroup,
};
use oxr_proto::transport::{self, Address};
use oxr_proto::types::IpAddress;
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio_stream::wrappers::{ReceiverStream, UnboundedReceiverStream};

use crate::backoff::Backoff;
use crate::route::{Action, Nexthop, RibSink, RibUpdate, Route};

pub use oxr_proto::rib::Hello;

/// Routes per `RouteBatch` message: big enough that per-message cost vanishes, small enough
/// that one message stays far below gRPC's 4 MiB default limit.
pub const DEFAULT_MAX_BATCH: usize = 4096;

/// How a publisher batches and reconnects.
#[derive(Debug, Clone)]
pub struct PublisherOptions {
    /// Most routes (adds plus withdraws) in one message.
    pub max_batch: usize,
    /// Delays between connection attempts.
    pub backoff: Backoff,
}

impl Default for PublisherOptions {
    fn default() -> Self {
        PublisherOptions {
            max_batch: DEFAULT_MAX_BATCH,
            backoff: Backoff::default(),
        }
    }
}

/// What a publisher is doing, for show commands and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublisherStatus {
    /// A Publish stream is open.
    pub connected: bool,
    /// Streams opened so far (the first connection counts 1).
    pub connections: u64,
    /// `RouteBatch` messages sent on all streams.
    pub batches_sent: u64,
    /// Routes in the publisher's table (what the RIB has or will have).
    pub routes: usize,
    /// EndOfRib was sent on the current stream.
    pub end_of_rib_sent: bool,
}

/// What the handles share with the publisher task.
struct Shared {
    state: Mutex<State>,
    /// Bumped when a [`RibPublisher::start_replaying`] publisher needs the protocol's table
    /// again (a new stream after one broke).
    replay: watch::Sender<u64>,
    /// Wakes the task: work appeared, or the last handle went away.
    wake: Notify,
    /// Live `RibPublisher` handles.
    handles: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn closed(&self) -> bool {
        self.handles.load(Ordering::Acquire) == 0
    }

    /// Runs `f` on the state and wakes the task if that gave it work it may not know of.
    fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut st = self.lock();
        let (idle, full) = (!st.has_work(), st.has_full_batch());
        let out = f(&mut st);
        // The task sends partial batches only when nothing is in flight, so it also needs
        // to hear when a batch fills up.
        let wake = (idle && st.has_work()) || (!full && st.has_full_batch());
        drop(st);
        if wake {
            self.wake.notify_one();
        }
        out
    }
}

/// Publishes one protocol instance's routes to oxr-rib (the `Publish` stream).
///
/// Calls never fail and never wait for the RIB: a change is applied at once to the
/// publisher's table (the latest state per prefix, so memory is bounded by the number of
/// prefixes however fast the caller goes), and a background task sends the dirty prefixes
/// in batches. The task keeps the whole current table so that, when the stream breaks
/// (oxr-rib restarted), it reconnects with backoff and re-sends Hello, the whole table and,
/// if [`end_of_rib`](Self::end_of_rib) was called, EndOfRib.
///
/// Dropping every handle sends what is queued and then closes the stream; the RIB keeps the
/// routes, marked stale, for its hold time (this is what a graceful stop does too, so a
/// restarted protocol process moves no forwarding state).
pub struct RibPublisher {
    shared: Arc<Shared>,
    status: watch::Receiver<PublisherStatus>,
}

impl Clone for RibPublisher {
    fn clone(&self) -> Self {
        self.shared.handles.fetch_add(1, Ordering::AcqRel);
        RibPublisher {
            shared: self.shared.clone(),
            status: self.status.clone(),
        }
    }
}

impl Drop for RibPublisher {
    fn drop(&mut self) {
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.wake.notify_one();
        }
    }
}

impl RibPublisher {
    /// Starts publishing to oxr-rib at `addr` with default options. Needs a Tokio runtime.
    pub fn start(addr: Address, hello: Hello) -> Self {
        Self::start_with(addr, hello, PublisherOptions::default())
    }

    /// Starts publishing with explicit batching and backoff options.
    pub fn start_with(addr: Address, hello: Hello, opts: PublisherOptions) -> Self {
        let state = State::Table(PublishState::new(opts.max_batch));
        Self::spawn(addr, hello, opts, state)
    }

    /// Starts a publisher that keeps no copy of the protocol's table, for protocols whose
    /// own table is large (BGP's full table): it holds only the changes not yet sent, packed
    /// as they go on the wire (5 bytes per IPv4 prefix, 17 per IPv6, plus one attribute set
    /// per group), each once per batch.
    ///
    /// The price: when the stream breaks, the pending changes are dropped, changes made while
    /// disconnected are dropped too, and after reconnecting the publisher bumps
    /// [`replay_requests`](Self::replay_requests); the protocol must then hand its whole
    /// current table to [`replay`](Self::replay). EndOfRib (if declared) is held back until
    /// that replay. Changes made before the first connection are kept and sent (no replay is
    /// requested for the first connection). Withdraws are always sent (the publisher does not
    /// know whether the RIB has the prefix; the RIB ignores unknown withdraws).
    pub fn start_replaying(addr: Address, hello: Hello, opts: PublisherOptions) -> Self {
        let state = State::Pending(PendingState::new(opts.max_batch));
        Self::spawn(addr, hello, opts, state)
    }

    fn spawn(addr: Address, hello: Hello, opts: PublisherOptions, state: State) -> Self {
        let (status_tx, status) = watch::channel(PublisherStatus::default());
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            replay: watch::Sender::new(0),
            wake: Notify::new(),
            handles: AtomicUsize::new(1),
        });
        tokio::spawn(run_publisher(addr, hello, opts, shared.clone(), status_tx));
        RibPublisher { shared, status }
    }

    /// Adds or replaces the route for `route.prefix`.
    pub fn add(&self, route: Route) {
        self.shared.update(|st| st.apply(RibUpdate::Add(route)));
    }

    /// Applies many updates under one lock: for bulk changes (initial tables, full-table
    /// feeds).
    pub fn update_many(&self, updates: Vec<RibUpdate>) {
        self.update_iter(updates);
    }

    /// [`update_many`](Self::update_many) for updates made as they are taken, so a
    /// large flush needs no vector of SDK routes.
    pub fn update_iter(&self, updates: impl IntoIterator<Item = RibUpdate>) {
        self.shared
            .update(|st| updates.into_iter().for_each(|u| st.apply(u)));
    }

    /// A [`start_replaying`](Self::start_replaying) publisher's replay generation: it changes
    /// each time the protocol must call [`replay`](Self::replay) with its whole table. Never
    /// changes for a publisher that keeps its table.
    pub fn replay_requests(&self) -> watch::Receiver<u64> {
        self.shared.replay.subscribe()
    }

    /// The protocol's whole current table, after a [`replay_requests`](Self::replay_requests)
    /// change: queued like [`update_many`](Self::update_many) under one lock, then EndOfRib if
    /// the protocol declared it. For a publisher that keeps its table this is `update_many`.
    pub fn replay(&self, routes: impl IntoIterator<Item = Route>) {
        self.shared.update(|st| {
            routes.into_iter().for_each(|r| st.apply(RibUpdate::Add(r)));
            if let State::Pending(p) = st {
                p.replay_done();
            }
        });
    }

    /// Changes queued and not yet handed to the stream, and the most there ever were (a
    /// `start_replaying` publisher); dirty prefixes, twice, for one keeping its table (walks
    /// it: not for polling).
    pub fn pending(&self) -> (usize, usize) {
        self.shared.lock().pending()
    }

    /// Bytes held by the publisher's table and queues (an estimate from their capacities),
    /// for memory accounting in show commands.
    pub fn memory_bytes(&self) -> usize {
        self.shared.lock().memory_bytes()
    }

    /// Removes the route for `prefix`.
    pub fn withdraw(&self, prefix: IpNet) {
        self.shared
            .update(|st| st.apply(RibUpdate::Withdraw(prefix)));
    }

    /// The initial state has been published; sent after what is queued, and again after
    /// every reconnection once the table has been replayed.
    pub fn end_of_rib(&self) {
        self.shared.update(State::end_of_rib);
    }

    /// Resolves once every change made before it has been sent and acknowledged by the RIB.
    /// While the RIB is away this waits (wrap it in a timeout if that matters).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        self.shared.update(|st| st.flush(tx));
        let _ = rx.await;
    }

    /// Current status.
    pub fn status(&self) -> PublisherStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every status change (e.g. to wait until connected).
    pub fn watch_status(&self) -> watch::Receiver<PublisherStatus> {
        self.status.clone()
    }
}

impl RibSink for RibPublisher {
    fn add(&mut self, route: Route) {
        RibPublisher::add(self, route)
    }
    fn withdraw(&mut self, prefix: IpNet) {
        RibPublisher::withdraw(self, prefix)
    }
    fn end_of_rib(&mut self) {
        RibPublisher::end_of_rib(self)
    }
}

/// A fast hasher for prefixes (Fx-style multiply-rotate): SipHash was a visible share of
/// the publisher's cost, and a protocol's own prefixes are not a hash-flooding threat to it.
#[derive(Clone, Copy, Default)]
struct FastHasher(u64);

impl FastHasher {
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FastHasher {
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
    fn write_u32(&mut self, v: u32) {
        self.add(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.add(v);
    }
    fn write_u128(&mut self, v: u128) {
        self.add(v as u64);
        self.add((v >> 64) as u64);
    }
    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
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

type FastHash = BuildHasherDefault<FastHasher>;

/// Everything of a route but its prefix, shared by every route that has it.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Attrs {
    nexthops: Vec<Nexthop>,
    action: Action,
    distance: u32,
    metric: u32,
    tag: u32,
}

impl Attrs {
    fn matches(&self, r: &Route) -> bool {
        self.action == r.action
            && self.distance == r.distance
            && self.metric == r.metric
            && self.tag == r.tag
            && self.nexthops == r.nexthops
    }

    fn group_proto(&self, prefixes: PackedBuilder) -> RouteGroup {
        RouteGroup {
            nexthops: self.nexthops.iter().map(Nexthop::to_proto).collect(),
            action: self.action.to_proto() as i32,
            distance: self.distance,
            metric: self.metric,
            tag: self.tag,
            prefixes: Some(prefixes.finish()),
        }
    }
}

/// Interned attributes.
#[derive(Default)]
struct Interner {
    set: HashSet<Arc<Attrs>, FastHash>,
    /// The last attributes returned: consecutive routes usually share them.
    last: Option<Arc<Attrs>>,
    collected_at: usize,
}

impl Interner {
    fn get(&mut self, r: Route) -> Arc<Attrs> {
        if let Some(a) = self.last.as_ref().filter(|a| a.matches(&r)) {
            return a.clone();
        }
        let attrs = Attrs {
            nexthops: r.nexthops,
            action: r.action,
            distance: r.distance,
            metric: r.metric,
            tag: r.tag,
        };
        let a = match self.set.get(&attrs) {
            Some(a) => a.clone(),
            None => {
                // Forget attributes no route uses any more, once the set has doubled.
                if self.set.len() >= 2 * self.collected_at + 1024 {
                    self.set.retain(|a| Arc::strong_count(a) > 1);
                    self.collected_at = self.set.len();
                }
                let a = Arc::new(attrs);
                self.set.insert(a.clone());
                a
            }
        };
        self.last = Some(a.clone());
        a
    }
}

/// One prefix in the publisher's table.
struct Slot {
    /// The route's attributes; None for a withdraw not sent yet.
    attrs: Option<Arc<Attrs>>,
    /// Queued to be sent (the prefix is in the queue exactly once while this is set).
    dirty: bool,
    /// The RIB has (or, by what was sent, will have) a route for the prefix.
    rib_has: bool,
}

enum Item {
    Prefix(IpNet),
    EndOfRib,
    Flush(oneshot::Sender<()>),
}

/// What the publisher should put on the stream next.
enum Outgoing {
    Batch(RouteBatch),
    EndOfRib,
    Flush(oneshot::Sender<()>),
}

/// The publisher's memory, without I/O: the table, what is still to be sent (each dirty
/// prefix once, at the position of its first change), markers.
struct PublishState {
    max_batch: usize,
    table: HashMap<IpNet, Slot, FastHash>,
    /// Slots holding a route (the others are withdraws waiting to be sent).
    routes: usize,
    attrs: Interner,
    queue: VecDeque<Item>,
    end_of_rib_requested: bool,
    connected: bool,
}

impl PublishState {
    fn new(max_batch: usize) -> Self {
        PublishState {
            max_batch: max_batch.max(1),
            table: HashMap::default(),
            routes: 0,
            attrs: Interner::default(),
            queue: VecDeque::new(),
            end_of_rib_requested: false,
            connected: false,
        }
    }

    fn apply(&mut self, u: RibUpdate) {
        match u {
            RibUpdate::Add(r) => self.add(r),
            RibUpdate::Withdraw(p) => self.withdraw(p),
            RibUpdate::EndOfRib => self.end_of_rib(),
        }
    }

    fn add(&mut self, route: Route) {
        let prefix = route.prefix;
        // While disconnected nothing is queued: the whole table is replayed on connection.
        let connected = self.connected;
        match self.table.entry(prefix) {
            Entry::Occupied(mut e) => {
                let slot = e.get_mut();
                if slot.attrs.as_ref().is_some_and(|a| a.matches(&route)) {
                    return; // the RIB has, or is about to get, exactly this
                }
                if slot.attrs.is_none() {
                    self.routes += 1;
                }
                slot.attrs = Some(self.attrs.get(route));
                if connected && !slot.dirty {
                    slot.dirty = true;
                    self.queue.push_back(Item::Prefix(prefix));
                }
            }
            Entry::Vacant(e) => {
                e.insert(Slot {
                    attrs: Some(self.attrs.get(route)),
                    dirty: connected,
                    rib_has: false,
                });
                self.routes += 1;
                if connected {
                    self.queue.push_back(Item::Prefix(prefix));
                }
            }
        }
    }

    fn withdraw(&mut self, prefix: IpNet) {
        let Some(slot) = self.table.get_mut(&prefix) else {
            return; // never known: nothing to say
        };
        if slot.attrs.take().is_some() {
            self.routes -= 1;
        }
        if slot.dirty {
            return; // already queued: the send finds the withdraw
        }
        if self.connected && slot.rib_has {
            slot.dirty = true;
            self.queue.push_back(Item::Prefix(prefix));
        } else {
            self.table.remove(&prefix);
        }
    }

    fn end_of_rib(&mut self) {
        self.end_of_rib_requested = true;
        if self.connected {
            self.queue.push_back(Item::EndOfRib);
        }
    }

    fn flush(&mut self, tx: oneshot::Sender<()>) {
        self.queue.push_back(Item::Flush(tx));
    }

    /// A new stream: everything in the table is to be sent, then EndOfRib if the protocol
    /// has declared its initial state complete; pending flushes resolve after that.
    fn on_connect(&mut self) {
        let flushes: Vec<Item> = self
            .queue
            .drain(..)
            .filter(|i| matches!(i, Item::Flush(_)))
            .collect();
        self.connected = true;
        self.table.retain(|_, s| s.attrs.is_some());
        self.queue.reserve(self.table.len() + 1 + flushes.len());
        for (prefix, slot) in self.table.iter_mut() {
            // The RIB may hold a stale copy, so a withdraw before the replay reaches this
            // prefix must be sent.
            slot.dirty = true;
            slot.rib_has = true;
            self.queue.push_back(Item::Prefix(*prefix));
        }
        if self.end_of_rib_requested {
            self.queue.push_back(Item::EndOfRib);
        }
        self.queue.extend(flushes);
    }

    fn on_disconnect(&mut self, unacked_flushes: impl IntoIterator<Item = oneshot::Sender<()>>) {
        self.connected = false;
        self.table.retain(|_, s| s.attrs.is_some());
        for s in self.table.values_mut() {
            s.dirty = false;
        }
        let flushes: Vec<Item> = unacked_flushes
            .into_iter()
            .map(Item::Flush)
            .chain(self.queue.drain(..).filter(|i| matches!(i, Item::Flush(_))))
            .collect();
        self.queue.extend(flushes);
    }

    fn has_work(&self) -> bool {
        !self.queue.is_empty()
    }

    fn has_full_batch(&self) -> bool {
        self.queue.len() >= self.max_batch
    }

    /// The next message: up to `max_batch` coalesced changes, or a marker. Adds with the
    /// same attributes share one `RouteGroup`; withdraws are packed.
    fn next_outgoing(&mut self) -> Option<Outgoing> {
        let mut groups: Vec<(Arc<Attrs>, PackedBuilder)> = Vec::new();
        // Group index by attributes (pointer identity: they are interned).
        let mut index: HashMap<*const Attrs, usize, FastHash> = HashMap::default();
        let mut withdraw = PackedBuilder::new();
        let mut n = 0;
        while n < self.max_batch {
            match self.queue.front() {
                Some(Item::Prefix(_)) => {
                    let Some(Item::Prefix(prefix)) = self.queue.pop_front() else {
                        unreachable!("front was a prefix")
                    };
                    let Some(slot) = self.table.get_mut(&prefix) else {
                        continue;
                    };
                    if !slot.dirty {
                        continue;
                    }
                    slot.dirty = false;
                    match &slot.attrs {
                        Some(a) => {
                            slot.rib_has = true;
                            let i = match groups.last() {
                                Some((last, _)) if Arc::ptr_eq(last, a) => groups.len() - 1,
                                _ => *index.entry(Arc::as_ptr(a)).or_insert_with(|| {
                                    groups.push((a.clone(), PackedBuilder::new()));
                                    groups.len() - 1
                                }),
                            };
                            groups[i].1.push(prefix);
                            n += 1;
                        }
                        None => {
                            let had = slot.rib_has;
                            self.table.remove(&prefix);
                            if had {
                                withdraw.push(prefix);
                                n += 1;
                            }
                        }
                    }
                }
                Some(_) if n > 0 => break,
                Some(Item::EndOfRib) => {
                    self.queue.pop_front();
                    return Some(Outgoing::EndOfRib);
                }
                Some(Item::Flush(_)) => {
                    let Some(Item::Flush(tx)) = self.queue.pop_front() else {
                        unreachable!("front was a flush")
                    };
                    return Some(Outgoing::Flush(tx));
                }
                None => break,
            }
        }
        (n > 0).then(|| {
            Outgoing::Batch(RouteBatch {
                groups: groups.into_iter().map(|(a, p)| a.group_proto(p)).collect(),
                withdraw_packed: (!withdraw.is_empty()).then(|| withdraw.finish()),
                ..Default::default()
            })
        })
    }
}

/// The publisher's memory: a copy of the table ([`RibPublisher::start_with`]) or only the
/// pending changes ([`RibPublisher::start_replaying`]).
enum State {
    Table(PublishState),
    Pending(PendingState),
}

impl State {
    fn apply(&mut self, u: RibUpdate) {
        match self {
            State::Table(t) => t.apply(u),
            State::Pending(p) => p.apply(u),
        }
    }

    fn end_of_rib(&mut self) {
        match self {
            State::Table(t) => t.end_of_rib(),
            State::Pending(p) => p.end_of_rib(),
        }
    }

    fn flush(&mut self, tx: oneshot::Sender<()>) {
        match self {
            State::Table(t) => t.flush(tx),
            State::Pending(p) => p.flush(tx),
        }
    }

    /// A new stream; returns whether the protocol must replay its table.
    fn on_connect(&mut self) -> bool {
        match self {
            State::Table(t) => {
                t.on_connect();
                false
            }
            State::Pending(p) => p.on_connect(),
        }
    }

    fn on_disconnect(&mut self, unacked_flushes: impl IntoIterator<Item = oneshot::Sender<()>>) {
        match self {
            State::Table(t) => t.on_disconnect(unacked_flushes),
            State::Pending(p) => p.on_disconnect(unacked_flushes),
        }
    }

    fn has_work(&self) -> bool {
        match self {
            State::Table(t) => t.has_work(),
            State::Pending(p) => p.has_work(),
        }
    }

    fn has_full_batch(&self) -> bool {
        match self {
            State::Table(t) => t.has_full_batch(),
            State::Pending(p) => p.has_full_batch(),
        }
    }

    fn next_outgoing(&mut self) -> Option<Outgoing> {
        match self {
            State::Table(t) => t.next_outgoing(),
            State::Pending(p) => p.next_outgoing(),
        }
    }

    /// For the status: the table's routes, or the pending changes.
    fn routes(&self) -> usize {
        match self {
            State::Table(t) => t.routes,
            State::Pending(p) => p.pending,
        }
    }

    fn pending(&self) -> (usize, usize) {
        match self {
            State::Table(t) => {
                let n = t.table.values().filter(|s| s.dirty).count();
                (n, n)
            }
            State::Pending(p) => (p.pending, p.peak),
        }
    }

    fn memory_bytes(&self) -> usize {
        match self {
            State::Table(t) => {
                t.table.capacity() * (size_of::<(IpNet, Slot)>() + 1)
                    + t.queue.capacity() * size_of::<Item>()
                    + t.attrs.set.capacity() * (size_of::<Arc<Attrs>>() + 1)
            }
            State::Pending(p) => p.memory_bytes(),
        }
    }
}

/// A change queued by a [`PendingState`], or a marker.
enum PendingItem {
    /// A closed batch and its number of routes.
    Batch(RouteBatch, usize),
    EndOfRib,
    Flush(oneshot::Sender<()>),
}

/// The batch being filled: adds grouped by attributes, withdraws, packed as on the wire.
#[derive(Default)]
struct OpenBatch {
    groups: Vec<(Arc<Attrs>, PackedBuilder)>,
    /// Group index by attribute pointer (interned, so pointer identity is equality).
    index: HashMap<usize, usize, FastHash>,
    withdraw: PackedBuilder,
    /// The prefixes in the batch: the RIB applies a batch's withdraws and groups in no
    /// particular order, so a prefix changed twice closes the batch.
    prefixes: HashSet<IpNet, FastHash>,
}

impl OpenBatch {
    fn len(&self) -> usize {
        self.prefixes.len()
    }

    fn take(&mut self) -> (RouteBatch, usize) {
        let n = self.prefixes.len();
        self.prefixes.clear();
        self.index.clear();
        let groups = std::mem::take(&mut self.groups);
        let withdraw = std::mem::take(&mut self.withdraw);
        let batch = RouteBatch {
            groups: groups.into_iter().map(|(a, p)| a.group_proto(p)).collect(),
            withdraw_packed: (!withdraw.is_empty()).then(|| withdraw.finish()),
            ..Default::default()
        };
        (batch, n)
    }
}

/// A publisher's memory without a table: what is still to be sent, already in wire form.
struct PendingState {
    max_batch: usize,
    attrs: Interner,
    open: OpenBatch,
    queue: VecDeque<PendingItem>,
    /// Routes in `open` and in `queue`.
    pending: usize,
    /// The most `pending` ever was.
    peak: usize,
    end_of_rib_requested: bool,
    connected: bool,
    /// A stream broke: what it carried is lost, the protocol must replay its table.
    lost: bool,
    /// Connected after a loss, the protocol's replay not in yet (EndOfRib waits for it).
    awaiting_replay: bool,
}

impl PendingState {
    fn new(max_batch: usize) -> Self {
        PendingState {
            max_batch: max_batch.max(1),
            attrs: Interner::default(),
            open: OpenBatch::default(),
            queue: VecDeque::new(),
            pending: 0,
            peak: 0,
            end_of_rib_requested: false,
            connected: false,
            lost: false,
            awaiting_replay: false,
        }
    }

    /// Changes are kept unless a replay will cover them anyway.
    fn keeping(&self) -> bool {
        self.connected || !self.lost
    }

    fn apply(&mut self, u: RibUpdate) {
        match u {
            RibUpdate::Add(r) => self.add(r),
            RibUpdate::Withdraw(p) => self.withdraw(p),
            RibUpdate::EndOfRib => self.end_of_rib(),
        }
    }

    fn close(&mut self) {
        if self.open.len() > 0 {
            let (b, n) = self.open.take();
            self.queue.push_back(PendingItem::Batch(b, n));
        }
    }

    /// Makes room for `prefix` in the open batch.
    fn admit(&mut self, prefix: IpNet) {
        if self.open.prefixes.contains(&prefix) {
            self.close();
        }
        self.open.prefixes.insert(prefix);
        self.pending += 1;
        self.peak = self.peak.max(self.pending);
    }

    fn after_push(&mut self) {
        if self.open.len() >= self.max_batch {
            self.close();
        }
    }

    fn add(&mut self, route: Route) {
        if !self.keeping() {
            return;
        }
        let prefix = route.prefix;
        self.admit(prefix);
        let a = self.attrs.get(route);
        let key = Arc::as_ptr(&a) as usize;
        let i = match self.open.groups.last() {
            Some((last, _)) if Arc::ptr_eq(last, &a) => self.open.groups.len() - 1,
            _ => match self.open.index.get(&key) {
                Some(&i) => i,
                None => {
                    self.open.groups.push((a, PackedBuilder::new()));
                    self.open.index.insert(key, self.open.groups.len() - 1);
                    self.open.groups.len() - 1
                }
            },
        };
        self.open.groups[i].1.push(prefix);
        self.after_push();
    }

    fn withdraw(&mut self, prefix: IpNet) {
        if !self.keeping() {
            return;
        }
        self.admit(prefix);
        self.open.withdraw.push(prefix);
        self.after_push();
    }

    fn end_of_rib(&mut self) {
        self.end_of_rib_requested = true;
        if self.keeping() && !self.awaiting_replay {
            self.close();
            self.queue.push_back(PendingItem::EndOfRib);
        }
    }

    fn replay_done(&mut self) {
        if self.connected && self.awaiting_replay {
            self.awaiting_replay = false;
            if self.end_of_rib_requested {
                self.close();
                self.queue.push_back(PendingItem::EndOfRib);
            }
        }
    }

    fn flush(&mut self, tx: oneshot::Sender<()>) {
        self.close();
        self.queue.push_back(PendingItem::Flush(tx));
    }

    fn on_connect(&mut self) -> bool {
        self.connected = true;
        self.awaiting_replay = self.lost;
        self.lost = false;
        self.awaiting_replay
    }

    fn on_disconnect(&mut self, unacked_flushes: impl IntoIterator<Item = oneshot::Sender<()>>) {
        self.connected = false;
        self.lost = true;
        self.awaiting_replay = false;
        self.open = OpenBatch::default();
        self.pending = 0;
        let flushes: Vec<PendingItem> = unacked_flushes
            .into_iter()
            .map(PendingItem::Flush)
            .chain(
                self.queue
                    .drain(..)
                    .filter(|i| matches!(i, PendingItem::Flush(_))),
            )
            .collect();
        self.queue = flushes.into();
    }

    fn has_work(&self) -> bool {
        !self.queue.is_empty() || self.open.len() > 0
    }

    fn has_full_batch(&self) -> bool {
        !self.queue.is_empty()
    }

    fn next_outgoing(&mut self) -> Option<Outgoing> {
        if self.queue.is_empty() {
            self.close();
        }
        match self.queue.pop_front()? {
            PendingItem::Batch(b, n) => {
                self.pending -= n;
                Some(Outgoing::Batch(b))
            }
            PendingItem::EndOfRib => Some(Outgoing::EndOfRib),
            PendingItem::Flush(tx) => Some(Outgoing::Flush(tx)),
        }
    }

    fn memory_bytes(&self) -> usize {
        let packed = |b: &RouteBatch| {
            b.groups
                .iter()
                .filter_map(|g| g.prefixes.as_ref())
                .chain(b.withdraw_packed.as_ref())
                .map(|p| p.v4.len() + p.v6.len())
                .sum::<usize>()
        };
        let queued: usize = self
            .queue
            .iter()
            .map(|i| match i {
                PendingItem::Batch(b, _) => {
                    packed(b) + b.groups.capacity() * size_of::<RouteGroup>()
                }
                _ => 0,
            })
            .sum();
        queued
            + self.queue.capacity() * size_of::<PendingItem>()
            + self.open.prefixes.capacity() * (size_of::<IpNet>() + 1)
            + self.open.groups.capacity() * size_of::<(Arc<Attrs>, PackedBuilder)>()
            + self.open.len() * PACKED_V6
    }
}

/// Routes (adds plus withdraws, both forms) in a wire batch.
pub fn batch_len(b: &RouteBatch) -> usize {
    b.add.len()
        + b.withdraw.len()
        + b.groups
            .iter()
            .filter_map(|g| g.prefixes.as_ref())
            .map(packed_len)
            .sum::<usize>()
        + b.withdraw_packed.as_ref().map_or(0, packed_len)
}

/// A wire batch with its groups expanded into `add` and its packed withdraws into
/// `withdraw` (invalid packed records skipped): the one-route-per-message view, for tests
/// and fakes.
pub fn expand_batch(mut b: RouteBatch) -> RouteBatch {
    for g in std::mem::take(&mut b.groups) {
        let Some(p) = &g.prefixes else { continue };
        for net in iter_packed_nets(p).filter_map(Result::ok) {
            b.add.push(wire::Route {
                prefix: Some(net.into()),
                nexthops: g.nexthops.clone(),
                action: g.action,
                distance: g.distance,
                metric: g.metric,
                tag: g.tag,
            });
        }
    }
    if let Some(p) = b.withdraw_packed.take() {
        b.withdraw
            .extend(iter_packed_nets(&p).filter_map(Result::ok).map(Into::into));
    }
    b
}

fn request(msg: Msg) -> PublishRequest {
    PublishRequest { msg: Some(msg) }
}

/// Resolves when every handle is gone.
async fn all_handles_dropped(shared: &Shared) {
    while !shared.closed() {
        shared.wake.notified().await;
    }
}

async fn run_publisher(
    addr: Address,
    hello: Hello,
    opts: PublisherOptions,
    shared: Arc<Shared>,
    status: watch::Sender<PublisherStatus>,
) {
    let mut backoff = opts.backoff.clone();
    let mut first_attempt = true;
    let mut warned = false;
    loop {
        if !first_attempt {
            tokio::select! {
                _ = tokio::time::sleep(backoff.next_delay()) => {}
                // Every handle dropped while the RIB was away: nothing left to do.
                _ = all_handles_dropped(&shared) => return,
            }
        }
        first_attempt = false;
        let channel = match transport::connect(&addr).await {
            Ok(c) => c,
            Err(e) => {
                if !warned {
                    tracing::warn!(%addr, error = %e, "RIB not reachable; retrying");
                    warned = true;
                }
                continue;
            }
        };
        let (tx, rx) = mpsc::channel::<PublishRequest>(8);
        tx.try_send(request(Msg::Hello(hello.clone())))
            .expect("fresh channel has room");
        let mut client = RibClient::new(channel)
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        let mut acks = match client.publish(ReceiverStream::new(rx)).await {
            Ok(r) => r.into_inner(),
            Err(e) => {
                tracing::warn!(%addr, error = %e, "Publish refused; retrying");
                continue;
            }
        };
        warned = false;
        // Changes made while connecting are in the table: they belong in the replay.
        let (routes, replay) = {
            let mut st = shared.lock();
            let replay = st.on_connect();
            (st.routes(), replay)
        };
        if replay {
            shared.replay.send_modify(|g| *g += 1);
        }
        status.send_modify(|s| {
            s.connected = true;
            s.connections += 1;
            s.end_of_rib_sent = false;
            s.routes = routes;
        });
        tracing::info!(%addr, routes, "publishing to the RIB");

        let mut sent: u64 = 0;
        let mut acked: u64 = 0;
        let mut waiters: VecDeque<(u64, oneshot::Sender<()>)> = VecDeque::new();
        let outcome = loop {
            let (work, full) = {
                let st = shared.lock();
                (st.has_work(), st.has_full_batch())
            };
            if !work && waiters.is_empty() && shared.closed() {
                break Ok(());
            }
            // Nagle-like: a partial batch goes out only when nothing is waiting for its
            // ack; otherwise changes accumulate until the batch is full or the acks are in,
            // so a fast producer yields full batches and a slow one no delay.
            let ready = work && (full || sent <= acked);
            tokio::select! {
                biased;
                msg = acks.message() => match msg {
                    Ok(Some(ack)) => {
                        backoff.reset();
                        acked = acked.max(ack.acked_batches);
                        while waiters.front().is_some_and(|(target, _)| *target <= acked) {
                            let (_, w) = waiters.pop_front().expect("checked");
                            let _ = w.send(());
                        }
                    }
                    Ok(None) => break Err("RIB closed the stream".to_string()),
                    Err(e) => break Err(e.to_string()),
                },
                permit = tx.reserve(), if ready => {
                    let Ok(permit) = permit else { break Err("request stream closed".to_string()) };
                    send_next(&shared, permit, &mut sent, acked, &mut waiters, &status);
                }
                _ = shared.wake.notified(), if !ready => {}
            }
        };
        match outcome {
            Ok(()) => {
                tracing::debug!("publisher closed; routes stay in the RIB until swept");
                return;
            }
            Err(e) => {
                tracing::warn!(%addr, error = %e, "Publish stream broke; will reconnect and replay");
                shared
                    .lock()
                    .on_disconnect(waiters.drain(..).map(|(_, w)| w));
                status.send_modify(|s| {
                    s.connected = false;
                    s.end_of_rib_sent = false;
                });
            }
        }
    }
}

fn send_next(
    shared: &Shared,
    permit: mpsc::Permit<'_, PublishRequest>,
    sent: &mut u64,
    acked: u64,
    waiters: &mut VecDeque<(u64, oneshot::Sender<()>)>,
    status: &watch::Sender<PublisherStatus>,
) {
    let (out, routes) = {
        let mut st = shared.lock();
        (st.next_outgoing(), st.routes())
    };
    match out {
        Some(Outgoing::Batch(b)) => {
            permit.send(request(Msg::Batch(b)));
            *sent += 1;
            status.send_modify(|s| {
                s.batches_sent += 1;
                s.routes = routes;
            });
        }
        Some(Outgoing::EndOfRib) => {
            permit.send(request(Msg::EndOfRib(EndOfRib {})));
            status.send_modify(|s| s.end_of_rib_sent = true);
        }
        Some(Outgoing::Flush(w)) => {
            if *sent <= acked {
                let _ = w.send(());
            } else {
                waiters.push_back((*sent, w));
            }
        }
        None => {}
    }
}

// ---------------------------------------------------------------------------------------
// Next-hop watches

/// What the RIB says about a registered next hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NexthopState {
    pub address: IpAddr,
    pub resolved: bool,
    /// The largest prefix containing `address` over which this answer holds.
    pub covering: Option<IpNet>,
    /// The route that resolves it and its protocol and metric.
    pub via_route: Option<IpNet>,
    pub via_protocol: String,
    pub metric: u32,
    /// Directly connected next hops it resolves to.
    pub nexthops: Vec<Nexthop>,
}

impl NexthopState {
    fn from_proto(u: &wire::NexthopUpdate) -> Option<Self> {
        Some(NexthopState {
            address: req_addr(u.address.as_ref(), "address").ok()?,
            resolved: u.resolved,
            covering: u.covering.as_ref().and_then(|p| IpNet::try_from(p).ok()),
            via_route: u.via_route.as_ref().and_then(|p| IpNet::try_from(p).ok()),
            via_protocol: u.via_protocol.clone(),
            metric: u.metric,
            nexthops: u
                .resolved_nexthops
                .iter()
                .filter_map(|n| Nexthop::from_proto(n).ok())
                .collect(),
        })
    }
}

enum WatchCmd {
    Register(IpAddr),
    Unregister(IpAddr),
}

/// Watches next hops through oxr-rib (`WatchNexthops`): register addresses, receive their
/// resolution and every change. Re-registers everything after the RIB restarts and reports
/// only answers that differ from the last one reported.
pub struct NexthopWatcher {
    cmd: mpsc::UnboundedSender<WatchCmd>,
    updates: mpsc::UnboundedReceiver<NexthopState>,
}

impl NexthopWatcher {
    /// Starts watching through the RIB at `addr`.
    pub fn start(addr: Address) -> Self {
        Self::start_with(addr, Backoff::default())
    }

    /// Starts with an explicit reconnection backoff.
    pub fn start_with(addr: Address, backoff: Backoff) -> Self {
        let (cmd, cmd_rx) = mpsc::unbounded_channel();
        let (up_tx, updates) = mpsc::unbounded_channel();
        tokio::spawn(run_nexthop_watcher(addr, backoff, cmd_rx, up_tx));
        NexthopWatcher { cmd, updates }
    }

    /// Asks for `addr`'s resolution and its changes.
    pub fn register(&self, addr: IpAddr) {
        let _ = self.cmd.send(WatchCmd::Register(addr));
    }

    /// Stops watching `addr`.
    pub fn unregister(&self, addr: IpAddr) {
        let _ = self.cmd.send(WatchCmd::Unregister(addr));
    }

    /// The next changed answer.
    pub async fn next(&mut self) -> Option<NexthopState> {
        self.updates.recv().await
    }
}

fn addrs(v: impl IntoIterator<Item = IpAddr>) -> Vec<IpAddress> {
    v.into_iter().map(IpAddress::from).collect()
}

async fn run_nexthop_watcher(
    addr: Address,
    mut backoff: Backoff,
    mut cmds: mpsc::UnboundedReceiver<WatchCmd>,
    updates: mpsc::UnboundedSender<NexthopState>,
) {
    let mut registered: HashSet<IpAddr> = HashSet::new();
    let mut last: HashMap<IpAddr, NexthopState> = HashMap::new();
    let mut first = true;
    loop {
        if !first {
            // Keep the registration set current while waiting.
            let sleep = tokio::time::sleep(backoff.next_delay());
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    c = cmds.recv() => match c {
                        Some(WatchCmd::Register(a)) => { registered.insert(a); }
                        Some(WatchCmd::Unregister(a)) => { registered.remove(&a); last.remove(&a); }
                        None => return,
                    },
                }
            }
        }
        first = false;
        let Ok(channel) = transport::connect(&addr).await else {
            continue;
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(NexthopWatchRequest {
            add: addrs(registered.iter().copied()),
            remove: vec![],
        });
        let mut stream = match RibClient::new(channel)
            .watch_nexthops(UnboundedReceiverStream::new(rx))
            .await
        {
            Ok(r) => r.into_inner(),
            Err(e) => {
                tracing::warn!(error = %e, "WatchNexthops refused; retrying");
                continue;
            }
        };
        loop {
            tokio::select! {
                c = cmds.recv() => {
                    let req = match c {
                        Some(WatchCmd::Register(a)) => {
                            if !registered.insert(a) { continue; }
                            NexthopWatchRequest { add: addrs([a]), remove: vec![] }
                        }
                        Some(WatchCmd::Unregister(a)) => {
                            last.remove(&a);
                            if !registered.remove(&a) { continue; }
                            NexthopWatchRequest { add: vec![], remove: addrs([a]) }
                        }
                        None => return,
                    };
                    if tx.send(req).is_err() { break; }
                }
                msg = stream.message() => match msg {
                    Ok(Some(u)) => {
                        backoff.reset();
                        let Some(st) = NexthopState::from_proto(&u) else { continue };
                        if !registered.contains(&st.address) || last.get(&st.address) == Some(&st) {
                            continue;
                        }
                        last.insert(st.address, st.clone());
                        if updates.send(st).is_err() { return; }
                    }
                    Ok(None) | Err(_) => break,
                },
            }
        }
        tracing::warn!(%addr, "WatchNexthops stream broke; re-registering after reconnect");
    }
}

// ---------------------------------------------------------------------------------------
// Redistribution

/// Changes to the redistributed routes of other protocols.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedistributionEvent {
    /// Routes added or changed, each with its origin protocol.
    pub add: Vec<(String, Route)>,
    pub withdraw: Vec<IpNet>,
    /// The initial dump is complete (also after a reconnection's re-dump).
    pub end_of_rib: bool,
}

/// The redistributed table as the protocol has been told it; turns each (re)connection's
/// initial dump into differences against it.
#[derive(Debug, Default)]
pub struct RedistributionTable {
    routes: HashMap<IpNet, (String, Route)>,
    /// During a re-dump: prefixes seen so far.
    resync: Option<HashSet<IpNet>>,
}

impl RedistributionTable {
    /// A new stream started: its dump replaces the table.
    pub fn begin_resync(&mut self) {
        self.resync = Some(HashSet::new());
    }

    /// The current routes.
    pub fn routes(&self) -> impl Iterator<Item = (&String, &Route)> {
        self.routes.values().map(|(p, r)| (p, r))
    }

    /// Applies one message; returns what changed for the protocol (None if nothing did).
    pub fn apply(&mut self, u: &wire::RedistributionUpdate) -> Option<RedistributionEvent> {
        let mut ev = RedistributionEvent::default();
        for rr in &u.add {
            let Some(route) = rr.route.as_ref().and_then(|r| Route::from_proto(r).ok()) else {
                continue;
            };
            if let Some(seen) = &mut self.resync {
                seen.insert(route.prefix);
            }
            let entry = (rr.protocol.clone(), route);
            if self.routes.get(&entry.1.prefix) != Some(&entry) {
                self.routes.insert(entry.1.prefix, entry.clone());
                ev.add.push(entry);
            }
        }
        for p in &u.withdraw {
            let Ok(p) = IpNet::try_from(p) else { continue };
            if let Some(seen) = &mut self.resync {
                seen.remove(&p);
            }
            if self.routes.remove(&p).is_some() {
                ev.withdraw.push(p);
            }
        }
        if u.end_of_rib {
            ev.end_of_rib = true;
            if let Some(seen) = self.resync.take() {
                let gone: Vec<IpNet> = self
                    .routes
                    .keys()
                    .filter(|p| !seen.contains(p))
                    .copied()
                    .collect();
                for p in gone {
                    self.routes.remove(&p);
                    ev.withdraw.push(p);
                }
            }
        }
        (ev != RedistributionEvent::default()).then_some(ev)
    }
}

/// Receives the selected routes of other protocols from oxr-rib (`WatchRedistribution`);
/// after the RIB restarts, the new dump is reported as differences only.
pub struct RedistributionWatcher {
    events: mpsc::UnboundedReceiver<RedistributionEvent>,
}

impl RedistributionWatcher {
    /// Watches the routes of `protocols` (inside one of `within`, if not empty).
    pub fn start(addr: Address, protocols: Vec<String>, within: Vec<IpNet>) -> Self {
        Self::start_with(addr, protocols, within, Backoff::default())
    }

    /// Same, with an explicit reconnection backoff.
    pub fn start_with(
        addr: Address,
        protocols: Vec<String>,
        within: Vec<IpNet>,
        mut backoff: Backoff,
    ) -> Self {
        let (tx, events) = mpsc::unbounded_channel();
        let req = RedistributionRequest {
            protocols,
            within: within.into_iter().map(Into::into).collect(),
        };
        tokio::spawn(async move {
            let mut table = RedistributionTable::default();
            let mut first = true;
            loop {
                if !first {
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                first = false;
                if tx.is_closed() {
                    return;
                }
                let Ok(channel) = transport::connect(&addr).await else {
                    continue;
                };
                let mut stream = match RibClient::new(channel)
                    .watch_redistribution(req.clone())
                    .await
                {
                    Ok(r) => r.into_inner(),
                    Err(_) => continue,
                };
                table.begin_resync();
                while let Ok(Some(u)) = stream.message().await {
                    backoff.reset();
                    if let Some(ev) = table.apply(&u) {
                        if tx.send(ev).is_err() {
                            return;
                        }
                    }
                }
                tracing::warn!(%addr, "WatchRedistribution stream broke; reconnecting");
            }
        });
        RedistributionWatcher { events }
    }

    /// The next change.
    pub async fn next(&mut self) -> Option<RedistributionEvent> {
        self.events.recv().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::Nexthop;

    fn route(p: &str, gw: &str) -> Route {
        Route::forward(
            p.parse().unwrap(),
            vec![Nexthop::gateway(gw.parse().unwrap())],
        )
    }

    fn drain(state: &mut PublishState) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(o) = state.next_outgoing() {
            match o {
                Outgoing::Batch(b) => {
                    let b = expand_batch(b);
                    let mut adds: Vec<String> = b
                        .add
                        .iter()
                        .map(|r| {
                            let r = Route::from_proto(r).unwrap();
                            format!("+{}>{:?}", r.prefix, r.nexthops[0].gateway.unwrap())
                        })
                        .collect();
                    adds.sort();
                    let mut wd: Vec<String> = b
                        .withdraw
                        .iter()
                        .map(|p| format!("-{}", IpNet::try_from(p).unwrap()))
                        .collect();
                    wd.sort();
                    out.push(format!("batch[{}]", [adds, wd].concat().join(" ")));
                }
                Outgoing::EndOfRib => out.push("eor".into()),
                Outgoing::Flush(_) => out.push("flush".into()),
            }
        }
        out
    }

    #[test]
    fn changes_to_one_prefix_coalesce_into_its_last_state() {
        let mut st = PublishState::new(100);
        st.on_connect();
        st.add(route("10.0.0.0/8", "1.1.1.1"));
        st.add(route("10.0.0.0/8", "2.2.2.2"));
        st.add(route("10.1.0.0/16", "1.1.1.1"));
        st.withdraw("10.1.0.0/16".parse().unwrap()); // never sent: nothing
        st.withdraw("10.2.0.0/16".parse().unwrap()); // never known: nothing
        assert_eq!(drain(&mut st), ["batch[+10.0.0.0/8>2.2.2.2]"]);
        // Now the RIB has 10/8: a withdraw is sent, and re-adding the same route is not.
        st.add(route("10.0.0.0/8", "2.2.2.2"));
        assert_eq!(drain(&mut st), Vec::<String>::new());
        st.withdraw("10.0.0.0/8".parse().unwrap());
        assert_eq!(drain(&mut st), ["batch[-10.0.0.0/8]"]);
    }

    #[test]
    fn bulk_updates_are_applied_in_order() {
        let mut st = PublishState::new(100);
        st.on_connect();
        for u in [
            RibUpdate::Add(route("10.0.0.0/8", "1.1.1.1")),
            RibUpdate::Add(route("10.1.0.0/16", "1.1.1.1")),
            RibUpdate::Withdraw("10.1.0.0/16".parse().unwrap()),
            RibUpdate::EndOfRib,
        ] {
            st.apply(u);
        }
        assert_eq!(drain(&mut st), ["batch[+10.0.0.0/8>1.1.1.1]", "eor"]);
    }

    #[test]
    fn batches_respect_the_size_limit_and_markers_keep_their_order() {
        let mut st = PublishState::new(2);
        st.on_connect();
        for i in 0..3 {
            st.add(route(&format!("10.{i}.0.0/16"), "1.1.1.1"));
        }
        st.end_of_rib();
        st.add(route("10.9.0.0/16", "1.1.1.1"));
        let (tx, _rx) = oneshot::channel();
        st.flush(tx);
        assert_eq!(
            drain(&mut st),
            [
                "batch[+10.0.0.0/16>1.1.1.1 +10.1.0.0/16>1.1.1.1]",
                "batch[+10.2.0.0/16>1.1.1.1]",
                "eor",
                "batch[+10.9.0.0/16>1.1.1.1]",
                "flush"
            ]
        );
    }

    #[test]
    fn reconnection_replays_the_table_then_end_of_rib() {
        let mut st = PublishState::new(100);
        // Changes made before the first connection are simply the table.
        st.add(route("10.0.0.0/8", "1.1.1.1"));
        st.add(route("10.1.0.0/16", "1.1.1.1"));
        st.withdraw("10.1.0.0/16".parse().unwrap());
        st.end_of_rib();
        assert!(!st.has_work());
        st.on_connect();
        assert_eq!(drain(&mut st), ["batch[+10.0.0.0/8>1.1.1.1]", "eor"]);
        let (tx, _rx) = oneshot::channel();
        st.on_disconnect([tx]);
        st.add(route("10.2.0.0/16", "3.3.3.3"));
        st.on_connect();
        assert_eq!(
            drain(&mut st),
            [
                "batch[+10.0.0.0/8>1.1.1.1 +10.2.0.0/16>3.3.3.3]",
                "eor",
                "flush"
            ]
        );
    }

    #[test]
    fn withdraw_during_replay_is_sent_because_the_rib_may_hold_a_stale_copy() {
        let mut st = PublishState::new(100);
        st.add(route("10.0.0.0/8", "1.1.1.1"));
        st.on_connect();
        st.withdraw("10.0.0.0/8".parse().unwrap());
        assert_eq!(drain(&mut st), ["batch[-10.0.0.0/8]"]);
    }

    fn drain_pending(st: &mut PendingState) -> Vec<String> {
        let mut s = State::Pending(std::mem::replace(st, PendingState::new(1)));
        let out = drain_state(&mut s);
        let State::Pending(p) = s else { unreachable!() };
        *st = p;
        out
    }

    fn drain_state(state: &mut State) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(o) = state.next_outgoing() {
            match o {
                Outgoing::Batch(b) => {
                    let b = expand_batch(b);
                    let mut items: Vec<String> = b
                        .add
                        .iter()
                        .map(|r| {
                            let r = Route::from_proto(r).unwrap();
                            format!("+{}>{:?}", r.prefix, r.nexthops[0].gateway.unwrap())
                        })
                        .chain(
                            b.withdraw
                                .iter()
                                .map(|p| format!("-{}", IpNet::try_from(p).unwrap())),
                        )
                        .collect();
                    items.sort();
                    out.push(format!("batch[{}]", items.join(" ")));
                }
                Outgoing::EndOfRib => out.push("eor".into()),
                Outgoing::Flush(_) => out.push("flush".into()),
            }
        }
        out
    }

    #[test]
    fn pending_mode_sends_changes_in_order_and_splits_a_batch_on_a_repeated_prefix() {
        let mut st = PendingState::new(3);
        st.add(route("10.0.0.0/8", "1.1.1.1"));
        st.add(route("10.1.0.0/16", "2.2.2.2"));
        // Same prefix again: a batch's withdraws and groups have no order, so a new batch.
        st.withdraw("10.0.0.0/8".parse().unwrap());
        st.add(route("10.2.0.0/16", "1.1.1.1"));
        st.add(route("10.3.0.0/16", "1.1.1.1"));
        st.add(route("10.4.0.0/16", "1.1.1.1")); // fourth in the batch: max_batch is 3
        st.end_of_rib();
        assert_eq!(st.pending, 6);
        assert!(!st.on_connect(), "no replay for the first connection");
        assert_eq!(
            drain_pending(&mut st),
            [
                "batch[+10.0.0.0/8>1.1.1.1 +10.1.0.0/16>2.2.2.2]",
                "batch[+10.2.0.0/16>1.1.1.1 +10.3.0.0/16>1.1.1.1 -10.0.0.0/8]",
                "batch[+10.4.0.0/16>1.1.1.1]",
                "eor"
            ]
        );
        assert_eq!((st.pending, st.peak), (0, 6));
    }

    #[test]
    fn pending_mode_drops_what_a_broken_stream_lost_and_waits_for_the_replay() {
        let mut st = PendingState::new(100);
        st.on_connect();
        st.add(route("10.0.0.0/8", "1.1.1.1"));
        st.end_of_rib();
        let (tx, _rx) = oneshot::channel();
        st.on_disconnect([tx]);
        assert_eq!(st.pending, 0);
        // While disconnected nothing is kept: the replay covers it.
        st.add(route("10.9.0.0/16", "9.9.9.9"));
        assert_eq!(st.pending, 0);
        assert!(st.on_connect(), "a replay is requested");
        // A change before the replay goes out; EndOfRib waits for the replay.
        st.add(route("10.1.0.0/16", "1.1.1.1"));
        assert_eq!(
            drain_pending(&mut st),
            ["flush", "batch[+10.1.0.0/16>1.1.1.1]"]
        );
        st.add(route("10.0.0.0/8", "1.1.1.1"));
        st.add(route("10.1.0.0/16", "1.1.1.1"));
        st.replay_done();
        assert_eq!(
            drain_pending(&mut st),
            ["batch[+10.0.0.0/8>1.1.1.1 +10.1.0.0/16>1.1.1.1]", "eor"]
        );
        // A later EndOfRib call goes straight out again.
        st.end_of_rib();
        assert_eq!(drain_pending(&mut st), ["eor"]);
    }

    #[test]
    fn pending_mode_holds_packed_prefixes_not_a_table() {
        let mut st = PendingState::new(4096);
        for i in 0..100_000u32 {
            let p = IpNet::new(IpAddr::from((0x0a00_0000 + (i << 8)).to_be_bytes()), 24).unwrap();
            st.add(Route::forward(
                p,
                vec![Nexthop::gateway("192.0.2.1".parse().unwrap())],
            ));
        }
        assert_eq!(st.pending, 100_000);
        // 5 bytes a prefix plus per-batch overhead; a table would be ~40+ bytes a prefix.
        let bytes = State::Pending(st).memory_bytes();
        assert!(bytes < 1_000_000, "{bytes} bytes for 100k pending routes");
    }

    #[tokio::test]
    async fn replaying_publisher_asks_the_protocol_for_its_table_after_a_rib_restart() {
        use crate::testing::{table_of, wait_until, FakeRib};
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("rib.sock");
        let rib = FakeRib::start(&sock);
        let opts = PublisherOptions {
            backoff: Backoff::new(Duration::from_millis(10), Duration::from_millis(100)),
            ..Default::default()
        };
        let hello = Hello {
            protocol: "test".into(),
            ..Default::default()
        };
        let p = RibPublisher::start_replaying(Address::Unix(sock.clone()), hello, opts);
        let mut replays = p.replay_requests();
        // The protocol's own table, which the publisher does not copy.
        let mut table = vec![
            route("10.1.0.0/16", "192.0.2.1"),
            route("10.2.0.0/16", "192.0.2.1"),
        ];
        p.update_iter(table.iter().cloned().map(RibUpdate::Add));
        p.end_of_rib();
        p.flush().await;
        assert_eq!(table_of(&rib.events()).len(), 2);
        assert_eq!(*replays.borrow_and_update(), 0);

        rib.kill();
        wait_until(Duration::from_secs(10), "publisher notices", || {
            (!p.status().connected).then_some(())
        })
        .await;
        table.push(route("10.3.0.0/16", "192.0.2.1"));
        p.add(table[2].clone()); // dropped: the replay will carry it
        let rib = FakeRib::start(&sock);
        tokio::time::timeout(Duration::from_secs(10), replays.changed())
            .await
            .expect("replay requested")
            .unwrap();
        assert_eq!(*replays.borrow_and_update(), 1);
        // No EndOfRib before the replay.
        assert!(!rib
            .events()
            .iter()
            .any(|e| matches!(e.msg, Msg::EndOfRib(_))));
        p.replay(table.iter().cloned());
        let ev = rib
            .wait_for("EndOfRib after the replay", |ev| {
                ev.iter().any(|e| matches!(e.msg, Msg::EndOfRib(_)))
            })
            .await;
        assert_eq!(table_of(&ev).into_values().collect::<Vec<_>>(), table);
        assert!(p.memory_bytes() < 100_000);
    }

    fn redist(adds: &[(&str, &str)], withdraw: &[&str], eor: bool) -> wire::RedistributionUpdate {
        wire::RedistributionUpdate {
            add: adds
                .iter()
                .map(|(p, gw)| wire::RedistributedRoute {
                    route: Some(route(p, gw).to_proto()),
                    protocol: "static".into(),
                })
                .collect(),
            withdraw: withdraw
                .iter()
                .map(|p| p.parse::<IpNet>().unwrap().into())
                .collect(),
            end_of_rib: eor,
        }
    }

    #[test]
    fn redistribution_redump_reports_only_differences() {
        let mut t = RedistributionTable::default();
        t.begin_resync();
        let ev = t
            .apply(&redist(
                &[("10.0.0.0/8", "1.1.1.1"), ("10.1.0.0/16", "1.1.1.1")],
                &[],
                true,
            ))
            .unwrap();
        assert_eq!(ev.add.len(), 2);
        assert!(ev.end_of_rib);
        // RIB restarted: the new dump has 10/8 unchanged, 10.1/16 gone, 10.2/16 new.
        t.begin_resync();
        let ev = t.apply(&redist(&[("10.0.0.0/8", "1.1.1.1")], &[], false));
        assert_eq!(ev, None);
        let ev = t
            .apply(&redist(&[("10.2.0.0/16", "2.2.2.2")], &[], true))
            .unwrap();
        assert_eq!(
            ev.add,
            vec![("static".to_string(), route("10.2.0.0/16", "2.2.2.2"))]
        );
        assert_eq!(ev.withdraw, vec!["10.1.0.0/16".parse::<IpNet>().unwrap()]);
        assert_eq!(t.routes().count(), 2);
    }
}
