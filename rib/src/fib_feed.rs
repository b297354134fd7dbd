//! The FIB feed: the RIB's FIB view (selected, resolved routes, except connected ones) sent
//! to oxr-fea over `ProgramFib`.
//!
//! - Changes are not queued per route: a changed prefix is flagged dirty in the table and its
//!   key queued once; when a batch is built, the prefix's *current* state is sent, so changes
//!   made while earlier batches are in flight coalesce.
//! - Up to `WINDOW` batches of up to `BATCH` routes are in flight; acks (by seq) open the
//!   window again.
//! - On every (re)connect: a batch with `begin_sync`, the whole FIB view as adds (a cursor
//!   walks the table, so changes keep flowing meanwhile), then `end_sync` — at first start
//!   only once every expected protocol sent EndOfRib or the startup hold elapsed, so a RIB
//!   restart flushes nothing from the kernel.

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
    Action, ClientId, Entry, FibNhSet, Key, Table, CONNECTED_CLIENT, FIB_DIRTY, FIB_SENT,
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

/// A connected ProgramFib stream, as the RIB task sees it.
#[derive(Debug)]
struct Session {
    id: u64,
    tx: mpsc::Sender<FibOut>,
    next_seq: u64,
    in_flight: usize,
    begun: bool,
    /// The dump has sent every entry up to this key.
    dump_after: Option<Key>,
    dump_done: bool,
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

/// The queue of FIB changes and the state of the FEA session.
#[derive(Debug, Default)]
pub struct FibQueue {
    pending: Vec<Key>,
    session: Option<Session>,
    /// Counters.
    pub counters: FibCounters,
}

impl FibQueue {
    /// Queues `key` (whose entry is `e`) to be sent with its current state.
    pub fn mark(&mut self, key: Key, e: &mut Entry) {
        if e.flags & FIB_DIRTY == 0 {
            e.flags |= FIB_DIRTY;
            self.pending.push(key);
        }
    }

    /// Whether a ProgramFib stream is up.
    pub fn connected(&self) -> bool {
        self.session.is_some()
    }

    /// Whether the current session has sent its end_sync.
    pub fn synced(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.end_sent)
    }

    /// Prefixes waiting to be sent (besides a dump in progress).
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// A new ProgramFib stream: start a full resynchronisation on it.
    pub fn session_up(&mut self, id: u64, tx: mpsc::Sender<FibOut>) {
        self.session = Some(Session {
            id,
            tx,
            next_seq: 1,
            in_flight: 0,
            begun: false,
            dump_after: None,
            dump_done: false,
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
            // The dump first, so a reconnect sends each route once.
            if !s.dump_done {
                let mut last = s.dump_after;
                let mut finished = true;
                table.for_each_mut(s.dump_after, |k, e| {
                    if out.add.len() >= BATCH {
                        finished = false;
                        return std::ops::ControlFlow::Break(());
                    }
                    last = Some(k);
                    if let Some(info) = desired(e, protocol_of) {
                        e.flags |= FIB_SENT;
                        e.flags &= !FIB_DIRTY;
                        out.add.push((k, info));
                    }
                    std::ops::ControlFlow::Continue(())
                });
                s.dump_after = last;
                s.dump_done = finished;
            }
            while out.add.len() + out.delete.len() < BATCH {
                let Some(k) = self.pending.pop() else { break };
                let Some(e) = table.get_mut(&k) else { continue };
                if e.flags & FIB_DIRTY == 0 {
                    continue;
                }
                e.flags &= !FIB_DIRTY;
                match desired(e, protocol_of) {
                    Some(info) => {
                        e.flags |= FIB_SENT;
                        out.add.push((k, info));
                    }
                    None => {
                        if e.flags & FIB_SENT != 0 {
                            e.flags &= !FIB_SENT;
                            out.delete.push(k);
                        }
                        if e.cands.is_empty() {
                            table.remove(&k);
                        }
                    }
                }
            }
            if s.dump_done && sync_ready && !s.end_sent {
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
