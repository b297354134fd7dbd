//! The FIB feed: the RIB's FIB view (selected, resolved routes, except connected ones) sent
//! to oxr-fea over `ProgramFib`.
//!
//! - Changes are not queued per route: a changed prefix is flagged dirty in the table and its
//!   key queued once; when a batch is built, the prefix's *current* state is sent, so changes
//!   made while earlier batches are in flight coalesce. The key queue is bounded per family
//!   ([`QUEUE_MAX`]); past it the family's table is swept for dirty entries, so a slow FEA
//!   costs no memory per waiting route. Sweeps and dumps walk the table in
//!   [`feed_order`], the order in which the kernel inserts IPv4 routes fastest.
//! - Batches carry IPv4 and IPv6 half and half while both have changes (oxr-fea inserts the
//!   two families in parallel).
//! - Up to `WINDOW` batches of up to `BATCH` routes are in flight; acks (by seq) open the
//!   window again.
//! - On every (re)connect: a batch with `begin_sync`, the whole FIB view as adds (a cursor
//!   walks the table, so changes keep flowing meanwhile), then `end_sync` — at first start
//!   only once every expected protocol sent EndOfRib or the startup hold elapsed, so a RIB
//!   restart flushes nothing from the kernel.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use oxr_proto::convert::{iter_packed_nets, packed_len, PackedBuilder};
use oxr_proto::fea::fea_client::FeaClient;
use oxr_proto::fea::{FibBatch, FibNexthop as PbFibNexthop, FibRoute, FibRouteGroup};
use oxr_proto::transport::{self, Address};
use oxr_proto::types as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

use crate::actor::{Cmd, RibHandle};
use crate::table::{
    feed_order, Action, ClientId, Entry, EntryMut, FibNhSet, Key, Table, CONNECTED_CLIENT,
    FIB_DIRTY, FIB_SENT,
};

/// Routes per FibBatch.
pub const BATCH: usize = 2000;
/// Batches in flight (sent, not acknowledged).
pub const WINDOW: usize = 8;

/// A route as the FIB gets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FibInfo {
    /// Forward, blackhole, reject.
    pub action: Action,
    /// Metric (informational for the FEA).
    pub metric: u32,
    /// Origin protocol.
    pub protocol: Arc<str>,
    /// Resolved next hops.
    pub nexthops: FibNhSet,
}

/// One batch for the FEA, before wire conversion (which happens on the sending task).
#[derive(Clone, Debug, Default)]
pub struct FibOut {
    /// Sequence number within the session.
    pub seq: u64,
    /// Starts a full resynchronisation.
    pub begin_sync: bool,
    /// Ends it.
    pub end_sync: bool,
    /// Installs or replaces.
    pub add: Vec<(Key, FibInfo)>,
    /// Removes.
    pub delete: Vec<Key>,
}

/// What the FIB should hold for an entry, if anything.
pub fn desired(e: &Entry, protocol_of: &dyn Fn(ClientId) -> Arc<str>) -> Option<FibInfo> {
    let sel = e.sel.as_ref()?;
    let res = e.res.as_ref()?;
    if sel.primary == CONNECTED_CLIENT {
        return None;
    }
    Some(FibInfo {
        action: sel.action,
        metric: sel.metric,
        protocol: protocol_of(sel.primary),
        nexthops: res.nexthops.clone(),
    })
}

/// Dirty prefixes a family remembers by key (32 bytes each) before it falls back to
/// sweeping the table for dirty entries: the backlog's memory stays bounded (about 1 MiB a
/// family) however far the FEA is behind, e.g. a full table waiting for the kernel.
pub const QUEUE_MAX: usize = 16 * BATCH;

/// One family's dirty prefixes not sent yet. Invariant: every entry of the family flagged
/// `FIB_DIRTY` is in `queue`, or a sweep is in progress and it lies after the sweep's
/// cursor, or `rescan` is set.
#[derive(Debug, Default)]
struct Backlog {
    /// Prefixes that became dirty, oldest first (at most [`QUEUE_MAX`]).
    queue: VecDeque<Key>,
    /// A sweep in progress: the last key it walked (None: it starts at the family's start).
    sweep: Option<Option<Key>>,
    /// The queue overflowed while a sweep was running, so dirty entries may also lie
    /// behind its cursor: the sweep starts over once it reaches the end.
    rescan: bool,
}

impl Backlog {
    /// Remembers a prefix that just became dirty (`max`: the queue's bound).
    fn push(&mut self, key: Key, max: usize) {
        if let Some(cursor) = self.sweep {
            if self.rescan || cursor.is_none_or(|c| feed_order(&key) > feed_order(&c)) {
                // The running sweep (or the pass after it) will find it.
                return;
            }
        }
        if self.queue.len() < max {
            self.queue.push_back(key);
            return;
        }
        // Overflow: forget the keys (their entries stay flagged) and walk the table instead.
        self.queue = VecDeque::new();
        match self.sweep {
            None => self.sweep = Some(None),
            Some(_) => self.rescan = true,
        }
    }

    fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.sweep.is_none()
    }
}

/// Where a session's full dump of one family stands.
#[derive(Clone, Copy, Debug, Default)]
struct Dump {
    /// The dump has sent every entry up to this key.
    after: Option<Key>,
    done: bool,
}

/// A connected ProgramFib stream, as the RIB task sees it.
#[derive(Debug)]
struct Session {
    id: u64,
    tx: mpsc::Sender<FibOut>,
    next_seq: u64,
    in_flight: usize,
    begun: bool,
    /// The resynchronisation dump, per family (IPv4, IPv6).
    dump: [Dump; 2],
    end_sent: bool,
}

/// Counters for show and Summary.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct FibCounters {
    /// Batches sent.
    pub batches: u64,
    /// Routes sent as adds.
    pub adds: u64,
    /// Deletes sent.
    pub deletes: u64,
    /// Routes the FEA reported as failed.
    pub failed: u64,
    /// Full synchronisations completed (end_sync sent).
    pub syncs: u64,
}

/// The queue of FIB changes (per family: IPv4, IPv6) and the state of the FEA session.
#[derive(Debug)]
pub struct FibQueue {
    backlog: [Backlog; 2],
    /// Keys each family's queue holds at most ([`QUEUE_MAX`]; smaller in tests).
    queue_max: usize,
    session: Option<Session>,
    /// Counters.
    pub counters: FibCounters,
}

impl Default for FibQueue {
    fn default() -> Self {
        FibQueue {
            backlog: Default::default(),
            queue_max: QUEUE_MAX,
            session: None,
            counters: FibCounters::default(),
        }
    }
}

fn out_len(out: &FibOut) -> usize {
    out.add.len() + out.delete.len()
}

/// Moves a dirty entry's current FIB state into `out` (an add, or a delete if the FEA was
/// told to install it); returns whether the entry has nothing left and can be dropped.
fn send_dirty(
    k: Key,
    e: EntryMut<'_>,
    out: &mut FibOut,
    protocol_of: &dyn Fn(ClientId) -> Arc<str>,
) -> bool {
    *e.flags &= !FIB_DIRTY;
    match desired(&e, protocol_of) {
        Some(info) => {
            *e.flags |= FIB_SENT;
            out.add.push((k, info));
            false
        }
        None => {
            if *e.flags & FIB_SENT != 0 {
                *e.flags &= !FIB_SENT;
                out.delete.push(k);
            }
            e.cands.is_empty()
        }
    }
}

/// Adds to `out`, until it holds `cap` routes, what one family has to send: the session's
/// dump first (so a reconnect sends each route once), then queued changes, then a sweep.
fn fill(
    v6: bool,
    cap: usize,
    dump: &mut Dump,
    b: &mut Backlog,
    table: &mut Table,
    out: &mut FibOut,
    protocol_of: &dyn Fn(ClientId) -> Arc<str>,
) {
    if !dump.done && out_len(out) < cap {
        let mut last = dump.after;
        dump.done = table.for_each_mut_family(v6, dump.after, |k, e| {
            if out_len(out) >= cap {
                return ControlFlow::Break(());
            }
            last = Some(k);
            if let Some(info) = desired(&e, protocol_of) {
                *e.flags |= FIB_SENT;
                *e.flags &= !FIB_DIRTY;
                out.add.push((k, info));
            }
            ControlFlow::Continue(())
        });
        dump.after = last;
    }
    while out_len(out) < cap {
        let Some(k) = b.queue.pop_front() else { break };
        let Some(e) = table.get_mut(&k) else { continue };
        if *e.flags & FIB_DIRTY != 0 && send_dirty(k, e, out, protocol_of) {
            table.remove(&k);
        }
    }
    if b.queue.is_empty() && b.queue.capacity() > 4 * BATCH {
        // Give back what a burst grew.
        b.queue = VecDeque::new();
    }
    while out_len(out) < cap {
        let Some(cursor) = b.sweep else { break };
        let mut last = cursor;
        let mut gone: Vec<Key> = Vec::new();
        let finished = table.for_each_mut_family(v6, cursor, |k, e| {
            if out_len(out) >= cap {
                return ControlFlow::Break(());
            }
            last = Some(k);
            if *e.flags & FIB_DIRTY != 0 && send_dirty(k, e, out, protocol_of) {
                gone.push(k);
            }
            ControlFlow::Continue(())
        });
        for k in gone {
            table.remove(&k);
        }
        b.sweep = if !finished {
            Some(last)
        } else if std::mem::take(&mut b.rescan) {
            Some(None)
        } else {
            None
        };
    }
}

impl FibQueue {
    /// Queues `key` (whose entry's flags are `flags`) to be sent with its current state.
    pub fn mark(&mut self, key: Key, flags: &mut u8) {
        if *flags & FIB_DIRTY == 0 {
            *flags |= FIB_DIRTY;
            self.backlog[usize::from(key.v6)].push(key, self.queue_max);
        }
    }

    /// Sets the bound of each family's key queue (tests use a small one to reach sweeps).
    pub fn set_queue_max(&mut self, max: usize) {
        self.queue_max = max.max(1);
    }

    /// Whether a ProgramFib stream is up.
    pub fn connected(&self) -> bool {
        self.session.is_some()
    }

    /// Whether the current session has sent its end_sync.
    pub fn synced(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.end_sent)
    }

    /// Prefixes queued by key (besides a dump or a sweep in progress).
    pub fn pending(&self) -> usize {
        self.backlog.iter().map(|b| b.queue.len()).sum()
    }

    /// Whether a family's backlog overflowed and is being swept from the table.
    pub fn sweeping(&self) -> bool {
        self.backlog.iter().any(|b| b.sweep.is_some())
    }

    /// Whether nothing waits to be sent (no queued key, no sweep; a dump aside).
    pub fn idle(&self) -> bool {
        self.backlog.iter().all(Backlog::is_idle)
    }

    /// A new ProgramFib stream: start a full resynchronisation on it.
    pub fn session_up(&mut self, id: u64, tx: mpsc::Sender<FibOut>) {
        self.session = Some(Session {
            id,
            tx,
            next_seq: 1,
            in_flight: 0,
            begun: false,
            dump: Default::default(),
            end_sent: false,
        });
    }

    /// The stream `id` broke.
    pub fn session_down(&mut self, id: u64) {
        if self.session.as_ref().is_some_and(|s| s.id == id) {
            self.session = None;
        }
    }

    /// Batch `seq` of session `id` was applied.
    pub fn ack(&mut self, id: u64, failed: u32) {
        if let Some(s) = self.session.as_mut().filter(|s| s.id == id) {
            s.in_flight = s.in_flight.saturating_sub(1);
        }
        self.counters.failed += u64::from(failed);
    }

    /// Sends as many batches as the window allows. `sync_ready`: the first synchronisation
    /// may complete (every expected protocol is back, or the startup hold is over).
    ///
    /// While both families have something to send, each batch carries half of each: oxr-fea
    /// inserts a batch's IPv4 and IPv6 routes on two netlink sockets at once (the kernel
    /// does not serialize the two families), so a backlog of both drains in the time of
    /// the larger one. A family with nothing to send leaves the whole batch to the other.
    pub fn pump(
        &mut self,
        table: &mut Table,
        protocol_of: &dyn Fn(ClientId) -> Arc<str>,
        sync_ready: bool,
    ) {
        let Some(s) = self.session.as_mut() else {
            return;
        };
        while s.in_flight < WINDOW {
            let mut out = FibOut {
                seq: s.next_seq,
                begin_sync: !s.begun,
                ..Default::default()
            };
            for (v6, cap) in [(false, BATCH / 2), (true, BATCH), (false, BATCH)] {
                let f = usize::from(v6);
                fill(
                    v6,
                    cap,
                    &mut s.dump[f],
                    &mut self.backlog[f],
                    table,
                    &mut out,
                    protocol_of,
                );
            }
            if s.dump.iter().all(|d| d.done) && sync_ready && !s.end_sent {
                out.end_sync = true;
                s.end_sent = true;
                self.counters.syncs += 1;
            }
            if out.add.is_empty() && out.delete.is_empty() && !out.begin_sync && !out.end_sync {
                break;
            }
            self.counters.batches += 1;
            self.counters.adds += out.add.len() as u64;
            self.counters.deletes += out.delete.len() as u64;
            s.begun = true;
            s.next_seq += 1;
            s.in_flight += 1;
            if s.tx.try_send(out).is_err() {
                // The sending task is gone; it reports the break itself.
                self.session = None;
                return;
            }
        }
    }
}

/// The wire form of a batch: consecutive adds with the same next hops and attributes
/// become one `FibRouteGroup` with packed prefixes (a full table resolving through a few
/// gateways is a few groups per batch), deletes are packed; nothing is allocated per route.
pub fn batch_proto(out: FibOut) -> FibBatch {
    let mut groups: Vec<FibRouteGroup> = Vec::new();
    let mut current: Option<(FibInfo, PackedBuilder)> = None;
    let close = |groups: &mut Vec<FibRouteGroup>, (info, packed): (FibInfo, PackedBuilder)| {
        groups.push(group_proto(&info, packed));
    };
    for (k, info) in out.add {
        match &mut current {
            Some((cur, packed)) if same_group(cur, &info) => push_key(packed, k),
            _ => {
                if let Some(done) = current.take() {
                    close(&mut groups, done);
                }
                let mut packed = PackedBuilder::new();
                push_key(&mut packed, k);
                current = Some((info, packed));
            }
        }
    }
    if let Some(done) = current.take() {
        close(&mut groups, done);
    }
    let mut delete = PackedBuilder::new();
    for k in out.delete {
        push_key(&mut delete, k);
    }
    FibBatch {
        seq: out.seq,
        add: Vec::new(),
        delete: Vec::new(),
        begin_sync: out.begin_sync,
        end_sync: out.end_sync,
        groups,
        delete_packed: (!delete.is_empty()).then(|| delete.finish()),
    }
}

fn same_group(a: &FibInfo, b: &FibInfo) -> bool {
    a.action == b.action
        && a.metric == b.metric
        && (Arc::ptr_eq(&a.nexthops, &b.nexthops) || a.nexthops == b.nexthops)
        && (Arc::ptr_eq(&a.protocol, &b.protocol) || a.protocol == b.protocol)
}

fn push_key(p: &mut PackedBuilder, k: Key) {
    if k.v6 {
        p.push_v6(k.addr, k.len);
    } else {
        p.push_v4(k.addr as u32, k.len);
    }
}

fn group_proto(info: &FibInfo, packed: PackedBuilder) -> FibRouteGroup {
    FibRouteGroup {
        nexthops: info
            .nexthops
            .iter()
            .map(|n| PbFibNexthop {
                gateway: n.gateway.map(pb::IpAddress::from),
                ifindex: n.ifindex,
                interface: n.interface.to_string(),
                weight: n.weight,
            })
            .collect(),
        action: info.action.to_proto() as i32,
        metric: info.metric,
        protocol: info.protocol.to_string(),
        prefixes: Some(packed.finish()),
    }
}

/// Routes a wire batch installs (both forms) and prefixes it deletes (both forms).
pub fn batch_counts(b: &FibBatch) -> (usize, usize) {
    let adds = b.add.len()
        + b.groups
            .iter()
            .filter_map(|g| g.prefixes.as_ref())
            .map(packed_len)
            .sum::<usize>();
    let deletes = b.delete.len() + b.delete_packed.as_ref().map_or(0, packed_len);
    (adds, deletes)
}

/// A wire batch with its groups expanded into `add` and its packed deletes into
/// `delete` (invalid packed records skipped): the one-route-per-message view, for tests.
pub fn expand_batch(mut b: FibBatch) -> FibBatch {
    for g in std::mem::take(&mut b.groups) {
        let Some(p) = &g.prefixes else { continue };
        for net in iter_packed_nets(p).filter_map(Result::ok) {
            b.add.push(FibRoute {
                prefix: Some(net.into()),
                nexthops: g.nexthops.clone(),
                action: g.action,
                metric: g.metric,
                protocol: g.protocol.clone(),
            });
        }
    }
    if let Some(p) = b.delete_packed.take() {
        b.delete
            .extend(iter_packed_nets(&p).filter_map(Result::ok).map(Into::into));
    }
    b
}

/// The ProgramFib client: connects to the FEA (retrying with backoff for ever, since the
/// FEA may start later or restart), announces each new stream to the RIB task, and relays
/// acks and the stream's end.
pub async fn run(fea: Address, handle: RibHandle) {
    let mut backoff = Duration::from_millis(100);
    let mut session = 0u64;
    loop {
        if handle.is_closed() {
            return;
        }
        match transport::connect(&fea).await {
            Ok(ch) => {
                session += 1;
                let mut client = FeaClient::new(ch)
                    .max_decoding_message_size(64 << 20)
                    .max_encoding_message_size(64 << 20);
                let (tx, rx) = mpsc::channel(WINDOW);
                // Announce first: the FEA may wait for the first batch before answering.
                if handle.send_fib(Cmd::FeaUp { session, tx }).is_err() {
                    return;
                }
                let requests = ReceiverStream::new(rx).map(batch_proto);
                match client.program_fib(requests).await {
                    Ok(resp) => {
                        tracing::info!(session, "ProgramFib stream to the FEA is up");
                        backoff = Duration::from_millis(100);
                        let mut acks = resp.into_inner();
                        loop {
                            match acks.message().await {
                                Ok(Some(ack)) => {
                                    if !ack.errors.is_empty() {
                                        tracing::warn!(seq = ack.seq, failed = ack.failed, errors = ?ack.errors, "FEA reported failures");
                                    }
                                    if handle.send_fib(Cmd::FibAck { session, ack }).is_err() {
                                        return;
                                    }
                                }
                                Ok(None) => break,
                                Err(e) => {
                                    tracing::info!(error = %e, "ProgramFib stream broke");
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => tracing::info!(error = %e, "ProgramFib refused"),
                }
                if handle.send_fib(Cmd::FeaDown { session }).is_err() {
                    return;
                }
            }
            Err(e) => tracing::debug!(error = %e, "FEA not reachable"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
