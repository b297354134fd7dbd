//! Clients of oxr-rib: the route publisher, next-hop watches and redistribution.
//!
//! ```text
//!  protocol event loop                 publisher task                       oxr-rib
//!  ------------------                 --------------                       -------
//!  add/withdraw/end_of_rib/flush --cmd--> table (full current routes)
//!                                         queue (dirty prefixes, coalesced)
//!                                         batches of <= max_batch ---Publish--> RouteBatch
//!                                         <------------------------- acks (acked_batches)
//!  stream breaks (RIB restart)  ->  backoff, reconnect, Hello + whole table (+ EndOfRib)
//! ```
//!
//! Every client keeps what it needs to replay its side of the conversation, so a restart of
//! oxr-rib is invisible to the protocol: the publisher re-sends its table and end-of-RIB,
//! the next-hop watcher re-registers its addresses, the redistribution watcher turns the new
//! initial dump into the differences against what the protocol already has.

use std::collections::{hash_map::Entry, HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use oxr_proto::convert::req_addr;
use oxr_proto::rib::publish_request::Msg;
use oxr_proto::rib::rib_client::RibClient;
use oxr_proto::rib::{
    self as wire, EndOfRib, NexthopWatchRequest, PublishRequest, RedistributionRequest, RouteBatch,
};
use oxr_proto::transport::{self, Address};
use oxr_proto::types::IpAddress;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::wrappers::{ReceiverStream, UnboundedReceiverStream};

use crate::backoff::Backoff;
use crate::route::{Nexthop, RibSink, RibUpdate, Route};

pub use oxr_proto::rib::Hello;

/// Routes per `RouteBatch` message: big enough that per-message cost vanishes, small enough
/// that one message stays far below gRPC's 4 MiB default limit (about 40 bytes a route).
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

enum Cmd {
    Many(Vec<RibUpdate>),
    Add(Route),
    Withdraw(IpNet),
    EndOfRib,
    Flush(oneshot::Sender<()>),
}

/// Publishes one protocol instance's routes to oxr-rib (the `Publish` stream).
///
/// Calls never block and never fail: changes are queued to a background task that coalesces
/// them per prefix, sends them in batches, and keeps the whole current table so that, when
/// the stream breaks (oxr-rib restarted), it reconnects with backoff and re-sends Hello, the
/// whole table and, if [`end_of_rib`](Self::end_of_rib) was called, EndOfRib.
///
/// Dropping every handle sends what is queued and then closes the stream; the RIB keeps the
/// routes, marked stale, for its hold time (this is what a graceful stop does too, so a
/// restarted protocol process moves no forwarding state).
#[derive(Clone)]
pub struct RibPublisher {
    cmd: mpsc::UnboundedSender<Cmd>,
    status: watch::Receiver<PublisherStatus>,
}

impl RibPublisher {
    /// Starts publishing to oxr-rib at `addr` with default options. Needs a Tokio runtime.
    pub fn start(addr: Address, hello: Hello) -> Self {
        Self::start_with(addr, hello, PublisherOptions::default())
    }

    /// Starts publishing with explicit batching and backoff options.
    pub fn start_with(addr: Address, hello: Hello, opts: PublisherOptions) -> Self {
        let (cmd, rx) = mpsc::unbounded_channel();
        let (status_tx, status) = watch::channel(PublisherStatus::default());
        let state = PublishState::new(opts.max_batch);
        tokio::spawn(run_publisher(addr, hello, opts, state, rx, status_tx));
        RibPublisher { cmd, status }
    }

    /// Adds or replaces the route for `route.prefix`.
    pub fn add(&self, route: Route) {
        let _ = self.cmd.send(Cmd::Add(route));
    }

    /// Applies many updates with one hand-off to the publisher task: for bulk changes
    /// (initial tables, full-table feeds) this avoids a cross-thread wake-up per route.
    pub fn update_many(&self, updates: Vec<RibUpdate>) {
        let _ = self.cmd.send(Cmd::Many(updates));
    }

    /// Removes the route for `prefix`.
    pub fn withdraw(&self, prefix: IpNet) {
        let _ = self.cmd.send(Cmd::Withdraw(prefix));
    }

    /// The initial state has been published; sent after what is queued, and again after
    /// every reconnection once the table has been replayed.
    pub fn end_of_rib(&self) {
        let _ = self.cmd.send(Cmd::EndOfRib);
    }

    /// Resolves once every change made before it has been sent and acknowledged by the RIB.
    /// While the RIB is away this waits (wrap it in a timeout if that matters).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Cmd::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
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
    table: HashMap<IpNet, Route>,
    queue: VecDeque<Item>,
    /// Dirty prefix -> whether the RIB had a route for it when it became dirty (so an add
    /// followed by a withdraw of a prefix the RIB never saw sends nothing).
    dirty: HashMap<IpNet, bool>,
    end_of_rib_requested: bool,
    connected: bool,
}

impl PublishState {
    fn new(max_batch: usize) -> Self {
        PublishState {
            max_batch: max_batch.max(1),
            table: HashMap::new(),
            queue: VecDeque::new(),
            dirty: HashMap::new(),
            end_of_rib_requested: false,
            connected: false,
        }
    }

    fn apply(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Many(updates) => {
                for u in updates {
                    self.apply(match u {
                        RibUpdate::Add(r) => Cmd::Add(r),
                        RibUpdate::Withdraw(p) => Cmd::Withdraw(p),
                        RibUpdate::EndOfRib => Cmd::EndOfRib,
                    });
                }
            }
            Cmd::Add(route) => {
                let prefix = route.prefix;
                match self.table.entry(prefix) {
                    Entry::Occupied(mut e) => {
                        if *e.get() == route && !self.dirty.contains_key(&prefix) {
                            return; // the RIB already has exactly this
                        }
                        e.insert(route);
                        self.mark(prefix, true);
                    }
                    Entry::Vacant(e) => {
                        e.insert(route);
                        self.mark(prefix, false);
                    }
                }
            }
            Cmd::Withdraw(prefix) => {
                let had = self.table.remove(&prefix).is_some();
                if had || self.dirty.contains_key(&prefix) {
                    self.mark(prefix, had);
                }
            }
            Cmd::EndOfRib => {
                self.end_of_rib_requested = true;
                if self.connected {
                    self.queue.push_back(Item::EndOfRib);
                }
            }
            Cmd::Flush(tx) => self.queue.push_back(Item::Flush(tx)),
        }
    }

    /// Records that `prefix` must be sent; while disconnected nothing is queued because the
    /// whole table is replayed on connection.
    fn mark(&mut self, prefix: IpNet, rib_had_it: bool) {
        if !self.connected {
            return;
        }
        if let Entry::Vacant(e) = self.dirty.entry(prefix) {
            e.insert(rib_had_it);
            self.queue.push_back(Item::Prefix(prefix));
        }
    }

    /// A new stream: everything in the table is to be sent, then EndOfRib if the protocol
    /// has declared its initial state complete; pending flushes resolve after that.
    fn on_connect(&mut self) {
        let flushes: Vec<Item> = self
            .queue
            .drain(..)
            .filter(|i| matches!(i, Item::Flush(_)))
            .collect();
        self.dirty.clear();
        self.connected = true;
        self.queue.reserve(self.table.len() + 1 + flushes.len());
        for prefix in self.table.keys() {
            // `true`: the RIB may hold a stale copy, so a withdraw before the replay reaches
            // this prefix must be sent.
            self.dirty.insert(*prefix, true);
            self.queue.push_back(Item::Prefix(*prefix));
        }
        if self.end_of_rib_requested {
            self.queue.push_back(Item::EndOfRib);
        }
        self.queue.extend(flushes);
    }

    fn on_disconnect(&mut self, unacked_flushes: impl IntoIterator<Item = oneshot::Sender<()>>) {
        self.connected = false;
        self.dirty.clear();
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

    /// The next message: up to `max_batch` coalesced changes, or a marker.
    fn next_outgoing(&mut self) -> Option<Outgoing> {
        let mut batch = RouteBatch::default();
        while batch.add.len() + batch.withdraw.len() < self.max_batch {
            match self.queue.front() {
                Some(Item::Prefix(_)) => {
                    let Some(Item::Prefix(prefix)) = self.queue.pop_front() else {
                        unreachable!("front was a prefix")
                    };
                    let rib_had_it = self.dirty.remove(&prefix).unwrap_or(true);
                    match self.table.get(&prefix) {
                        Some(route) => batch.add.push(route.to_proto()),
                        None if rib_had_it => batch.withdraw.push(prefix.into()),
                        None => {}
                    }
                }
                Some(_) if !batch.add.is_empty() || !batch.withdraw.is_empty() => break,
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
        (!batch.add.is_empty() || !batch.withdraw.is_empty()).then_some(Outgoing::Batch(batch))
    }
}

fn request(msg: Msg) -> PublishRequest {
    PublishRequest { msg: Some(msg) }
}

/// Absorbs commands for `delay` (coalescing them into the table); false if every handle is
/// gone.
async fn absorb_for(
    delay: Duration,
    state: &mut PublishState,
    cmds: &mut mpsc::UnboundedReceiver<Cmd>,
    buf: &mut Vec<Cmd>,
) -> bool {
    let sleep = tokio::time::sleep(delay);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            _ = &mut sleep => return true,
            n = cmds.recv_many(buf, 1024) => {
                if n == 0 {
                    return false;
                }
                for c in buf.drain(..) {
                    state.apply(c);
                }
            }
        }
    }
}

async fn run_publisher(
    addr: Address,
    hello: Hello,
    opts: PublisherOptions,
    mut state: PublishState,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    status: watch::Sender<PublisherStatus>,
) {
    let mut backoff = opts.backoff.clone();
    let mut buf = Vec::with_capacity(1024);
    let mut first_attempt = true;
    let mut warned = false;
    loop {
        if !first_attempt
            && !absorb_for(backoff.next_delay(), &mut state, &mut cmds, &mut buf).await
        {
            return; // every handle dropped while the RIB was away: nothing left to do
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
        let mut client = RibClient::new(channel);
        let mut acks = match client.publish(ReceiverStream::new(rx)).await {
            Ok(r) => r.into_inner(),
            Err(e) => {
                tracing::warn!(%addr, error = %e, "Publish refused; retrying");
                continue;
            }
        };
        warned = false;
        // Changes made while connecting belong in the replay, before EndOfRib.
        while let Ok(c) = cmds.try_recv() {
            state.apply(c);
        }
        state.on_connect();
        status.send_modify(|s| {
            s.connected = true;
            s.connections += 1;
            s.end_of_rib_sent = false;
            s.routes = state.table.len();
        });
        tracing::info!(%addr, routes = state.table.len(), "publishing to the RIB");

        let mut sent: u64 = 0;
        let mut acked: u64 = 0;
        let mut waiters: VecDeque<(u64, oneshot::Sender<()>)> = VecDeque::new();
        let mut closing = false;
        let outcome = loop {
            if closing && !state.has_work() && waiters.is_empty() {
                break Ok(());
            }
            tokio::select! {
                biased;
                permit = tx.reserve(), if state.has_full_batch() => {
                    let Ok(permit) = permit else { break Err("request stream closed".to_string()) };
                    send_next(&mut state, permit, &mut sent, acked, &mut waiters, &status);
                }
                n = cmds.recv_many(&mut buf, 4096), if !closing => {
                    if n == 0 {
                        closing = true;
                    }
                    for c in buf.drain(..) {
                        state.apply(c);
                    }
                }
                permit = tx.reserve(), if state.has_work() => {
                    let Ok(permit) = permit else { break Err("request stream closed".to_string()) };
                    send_next(&mut state, permit, &mut sent, acked, &mut waiters, &status);
                }
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
            }
        };
        match outcome {
            Ok(()) => {
                tracing::debug!("publisher closed; routes stay in the RIB until swept");
                return;
            }
            Err(e) => {
                tracing::warn!(%addr, error = %e, "Publish stream broke; will reconnect and replay");
                state.on_disconnect(waiters.drain(..).map(|(_, w)| w));
                status.send_modify(|s| {
                    s.connected = false;
                    s.end_of_rib_sent = false;
                });
            }
        }
    }
}

fn send_next(
    state: &mut PublishState,
    permit: mpsc::Permit<'_, PublishRequest>,
    sent: &mut u64,
    acked: u64,
    waiters: &mut VecDeque<(u64, oneshot::Sender<()>)>,
    status: &watch::Sender<PublisherStatus>,
) {
    match state.next_outgoing() {
        Some(Outgoing::Batch(b)) => {
            permit.send(request(Msg::Batch(b)));
            *sent += 1;
            status.send_modify(|s| {
                s.batches_sent += 1;
                s.routes = state.table.len();
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
        st.apply(Cmd::Add(route("10.0.0.0/8", "1.1.1.1")));
        st.apply(Cmd::Add(route("10.0.0.0/8", "2.2.2.2")));
        st.apply(Cmd::Add(route("10.1.0.0/16", "1.1.1.1")));
        st.apply(Cmd::Withdraw("10.1.0.0/16".parse().unwrap())); // never sent: nothing
        st.apply(Cmd::Withdraw("10.2.0.0/16".parse().unwrap())); // never known: nothing
        assert_eq!(drain(&mut st), ["batch[+10.0.0.0/8>2.2.2.2]"]);
        // Now the RIB has 10/8: a withdraw is sent, and re-adding the same route is not.
        st.apply(Cmd::Add(route("10.0.0.0/8", "2.2.2.2")));
        assert_eq!(drain(&mut st), Vec::<String>::new());
        st.apply(Cmd::Withdraw("10.0.0.0/8".parse().unwrap()));
        assert_eq!(drain(&mut st), ["batch[-10.0.0.0/8]"]);
    }

    #[test]
    fn bulk_updates_are_applied_in_order() {
        let mut st = PublishState::new(100);
        st.on_connect();
        st.apply(Cmd::Many(vec![
            RibUpdate::Add(route("10.0.0.0/8", "1.1.1.1")),
            RibUpdate::Add(route("10.1.0.0/16", "1.1.1.1")),
            RibUpdate::Withdraw("10.1.0.0/16".parse().unwrap()),
            RibUpdate::EndOfRib,
        ]));
        assert_eq!(drain(&mut st), ["batch[+10.0.0.0/8>1.1.1.1]", "eor"]);
    }

    #[test]
    fn batches_respect_the_size_limit_and_markers_keep_their_order() {
        let mut st = PublishState::new(2);
        st.on_connect();
        for i in 0..3 {
            st.apply(Cmd::Add(route(&format!("10.{i}.0.0/16"), "1.1.1.1")));
        }
        st.apply(Cmd::EndOfRib);
        st.apply(Cmd::Add(route("10.9.0.0/16", "1.1.1.1")));
        let (tx, _rx) = oneshot::channel();
        st.apply(Cmd::Flush(tx));
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
        st.apply(Cmd::Add(route("10.0.0.0/8", "1.1.1.1")));
        st.apply(Cmd::Add(route("10.1.0.0/16", "1.1.1.1")));
        st.apply(Cmd::Withdraw("10.1.0.0/16".parse().unwrap()));
        st.apply(Cmd::EndOfRib);
        assert!(!st.has_work());
        st.on_connect();
        assert_eq!(drain(&mut st), ["batch[+10.0.0.0/8>1.1.1.1]", "eor"]);
        let (tx, _rx) = oneshot::channel();
        st.on_disconnect([tx]);
        st.apply(Cmd::Add(route("10.2.0.0/16", "3.3.3.3")));
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
        st.apply(Cmd::Add(route("10.0.0.0/8", "1.1.1.1")));
        st.on_connect();
        st.apply(Cmd::Withdraw("10.0.0.0/8".parse().unwrap()));
        assert_eq!(drain(&mut st), ["batch[-10.0.0.0/8]"]);
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
