//! The RIB's whole state and every change to it, as plain methods called by the one task
//! that owns it (see `actor`). Nothing here does I/O or waits: outputs go to unbounded
//! channels (watchers), to the FIB queue, or to `timers` for the task to arm.
//!
//! Pipeline per changed prefix (XORP's tables as steps over one flat map):
//! candidates -> `selection::select` -> gateway dependencies -> `resolve::resolve` ->
//! FIB queue, redistribution taps, re-evaluation of the gateways and watched addresses
//! inside the prefix (whose dependents are queued in turn).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxr_config::RibSection;
use oxr_proto::fea::InterfaceUpdate;
use oxr_proto::rib::{
    Hello, NexthopUpdate, ProtocolCount, PublishResponse, RibCandidate, RibEntries, RibEntry,
    RibSummary,
};
use smallvec::SmallVec;
use tokio::sync::{mpsc, watch};
use tonic::Status;

use crate::connected::Interfaces;
use crate::fib_feed::{desired, FibOut, FibQueue};
use crate::intern::{Interner, Pool};
use crate::nexthop_watch::{
    covering, nexthop_proto, update_proto, CoverIndex, WatchAnswer, WatchId,
};
use crate::publish::{ParsedBatch, ParsedRoute, RawNexthop};
use crate::redistribution::{RedistSink, RedistWatcher};
use crate::resolve::{lpm_direct, lpm_eligible, resolve, GatewayAnswer, Resolution, Via};
use crate::selection::{select, Selected};
use crate::table::{
    Action, CandList, Candidate, Cands, ClientId, Entry, Key, NhSet, Table, CONNECTED_CLIENT,
    FIB_SENT, SEL_CHANGED,
};

/// The RIB's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct RibOptions {
    /// Most next hops per route.
    pub ecmp_width: usize,
    /// How long a disconnected client's routes stay, stale.
    pub stale_hold: Duration,
    /// How long the first FIB synchronisation waits for the expected protocols.
    pub startup_hold: Duration,
    /// Protocols whose EndOfRib completes the first synchronisation; None while the
    /// configuration is not known yet.
    pub expected_protocols: Option<Vec<String>>,
}

impl Default for RibOptions {
    fn default() -> Self {
        RibOptions {
            ecmp_width: 8,
            stale_hold: Duration::from_secs(120),
            startup_hold: Duration::from_secs(30),
            expected_protocols: None,
        }
    }
}

impl RibOptions {
    /// From the section oxr-routerd hands the RIB.
    pub fn from_section(s: &RibSection) -> Self {
        RibOptions {
            ecmp_width: s.rib.ecmp_width.max(1) as usize,
            stale_hold: Duration::from_secs(s.rib.stale_hold_secs),
            startup_hold: Duration::from_secs(s.rib.startup_hold_secs),
            expected_protocols: Some(s.protocols.clone()),
        }
    }
}

/// Administrative distance of a protocol whose Hello and routes give none.
pub fn default_distance(protocol: &str) -> u32 {
    match protocol {
        "connected" => 0,
        "static" => 1,
        "ebgp" => 20,
        "ospf" => 110,
        "isis" => 115,
        "rip" => 120,
        "bgp" | "ibgp" => 200,
        _ => 100,
    }
}

/// A publishing (protocol, instance).
#[derive(Debug)]
pub struct Client {
    /// Protocol name (the route's origin).
    pub protocol: Arc<str>,
    /// Instance name.
    pub instance: Arc<str>,
    /// Distance for routes that give none.
    pub default_distance: u32,
    /// The client's own stale hold time, if it asked for one.
    pub stale_hold: Option<Duration>,
    /// The stream currently publishing for it.
    pub stream: Option<u64>,
    /// Bumped at every connect and disconnect, so old hold timers do nothing.
    pub gen: u64,
    /// Batches processed on the current stream.
    pub acked: u64,
    /// Routes swept at its last EndOfRib.
    pub swept: u64,
    /// Sent EndOfRib on the current stream.
    pub eor: bool,
    resp: Option<watch::Sender<PublishResponse>>,
}

impl Client {
    fn new(protocol: &str, instance: &str, default_distance: u32) -> Client {
        Client {
            protocol: protocol.into(),
            instance: instance.into(),
            default_distance,
            stale_hold: None,
            stream: None,
            gen: 0,
            acked: 0,
            swept: 0,
            eor: false,
            resp: None,
        }
    }

    fn respond(&self) {
        if let Some(r) = &self.resp {
            r.send_replace(PublishResponse {
                acked_batches: self.acked,
                swept: self.swept,
            });
        }
    }
}

/// A timer the owning task must arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// Sweep the client's stale routes after `after`, unless it reconnected (`gen` moved).
    StaleHold {
        /// Client.
        client: ClientId,
        /// Its generation when the stream broke.
        gen: u64,
        /// Hold time.
        after: Duration,
    },
}

/// An address whose resolution someone depends on: gateways of routes, watched next hops.
#[derive(Debug, Default)]
struct Tracked {
    /// Longest match among `Direct` routes.
    ans0: Option<Key>,
    /// Longest match among eligible routes.
    ans: Option<Via>,
    /// How many prefixes' selected routes have this gateway. A count, not the set: a full
    /// table through one gateway would otherwise hold a million keys here; the routes are
    /// found again by a table scan on the rare change of the gateway's answer.
    deps: u64,
    /// WatchNexthops streams watching it.
    watchers: SmallVec<[WatchId; 2]>,
    /// What the watchers were last told.
    last: Option<WatchAnswer>,
}

/// Where a WatchNexthops stream's updates go.
pub type WatchSink = mpsc::UnboundedSender<Result<NexthopUpdate, Status>>;

/// Filter of a GetRoutes query.
#[derive(Clone, Debug, Default)]
pub struct RouteFilter {
    /// Exact prefix.
    pub prefix: Option<Key>,
    /// Only candidates of this protocol ("" for all).
    pub protocol: String,
    /// Only selected candidates.
    pub selected_only: bool,
    /// 0 (both), 4 or 6.
    pub family: u32,
}

/// One watched or tracked address, for `show route nexthops`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrackedInfo {
    /// The address.
    pub address: IpAddr,
    /// Resolved through this route.
    pub via: Option<String>,
    /// Its protocol.
    pub via_protocol: Option<String>,
    /// Its metric.
    pub metric: Option<u32>,
    /// Next hops it resolves to.
    pub nexthops: Vec<String>,
    /// Covering prefix (watched addresses only).
    pub covering: Option<String>,
    /// Number of WatchNexthops streams watching it.
    pub watchers: usize,
    /// Number of routes using it as a gateway.
    pub dependents: usize,
}

/// The RIB.
#[derive(Debug)]
pub struct RibState {
    /// The prefix map.
    pub table: Table,
    /// Settings.
    pub opts: RibOptions,
    clients: Vec<Client>,
    by_name: HashMap<(Arc<str>, Arc<str>), ClientId>,
    interner: Interner,
    pools: Pools,
    tracked: BTreeMap<Key, Tracked>,
    cover: CoverIndex,
    work: Vec<Key>,
    /// Gateways whose answer changed: routes through them must be re-resolved.
    dirty_gateways: Vec<IpAddr>,
    /// The scan finding the routes through `dirty_gateways`, in bounded chunks.
    dep_scan: Option<DepScan>,
    /// The FIB feed's queue and session.
    pub fib: FibQueue,
    watches: HashMap<WatchId, WatchSink>,
    redist: Vec<RedistWatcher>,
    /// Interfaces as the FEA reports them.
    pub ifaces: Interfaces,
    connected: BTreeMap<Key, SmallVec<[RawNexthop; 2]>>,
    started: Instant,
    now: u32,
    eor_seen: HashSet<String>,
    startup_hold_over: bool,
    /// Timers to arm (drained by the owning task).
    pub timers: Vec<Timer>,
    /// Malformed routes and next hops received.
    pub parse_errors: u64,
}

/// The shared values entries point at.
#[derive(Debug, Default)]
struct Pools {
    cands: Pool<Cands>,
    sels: Pool<Selected>,
    res: Pool<Resolution>,
}

impl Pools {
    fn cands(&mut self, c: Cands) -> CandList {
        if c.is_empty() {
            return CandList::default();
        }
        CandList::new(self.cands.get(c))
    }
}

/// Routes queued per step of a dependents scan: bounds the work list.
const DEP_CHUNK: usize = 4096;

/// A scan of the table for the routes using some gateways.
#[derive(Debug)]
struct DepScan {
    gateways: Vec<IpAddr>,
    after: Option<Key>,
}

/// The distinct gateway-only next hops of a set (each counted once in `Tracked::deps`).
fn gateways(set: Option<&NhSet>) -> SmallVec<[IpAddr; 4]> {
    let mut out: SmallVec<[IpAddr; 4]> = SmallVec::new();
    for g in set
        .into_iter()
        .flat_map(|s| s.iter())
        .filter(|n| n.interface.is_none())
        .filter_map(|n| n.gateway)
    {
        if !out.contains(&g) {
            out.push(g);
        }
    }
    out
}

fn gateway_answer(
    table: &Table,
    tracked: &BTreeMap<Key, Tracked>,
    g: IpAddr,
    resolving: Key,
) -> GatewayAnswer {
    match tracked.get(&Key::host(g)) {
        Some(t) => GatewayAnswer {
            direct: t.ans0.is_some(),
            via: match &t.ans {
                // A route never resolves through itself.
                Some(v) if v.route == resolving => lpm_eligible(table, g, Some(resolving)),
                other => other.clone(),
            },
        },
        None => GatewayAnswer {
            direct: lpm_direct(table, g).is_some(),
            via: lpm_eligible(table, g, Some(resolving)),
        },
    }
}

impl RibState {
    /// An empty RIB.
    pub fn new(opts: RibOptions) -> RibState {
        let connected = Client::new("connected", "", 0);
        let mut by_name = HashMap::new();
        by_name.insert(
            (connected.protocol.clone(), connected.instance.clone()),
            CONNECTED_CLIENT,
        );
        RibState {
            table: Table::new(),
            opts,
            clients: vec![connected],
            by_name,
            interner: Interner::default(),
            pools: Pools::default(),
            tracked: BTreeMap::new(),
            cover: CoverIndex::default(),
            work: Vec::new(),
            dirty_gateways: Vec::new(),
            dep_scan: None,
            fib: FibQueue::default(),
            watches: HashMap::new(),
            redist: Vec::new(),
            ifaces: Interfaces::default(),
            connected: BTreeMap::new(),
            started: Instant::now(),
            now: 0,
            eor_seen: HashSet::new(),
            startup_hold_over: false,
            timers: Vec::new(),
            parse_errors: 0,
        }
    }

    /// Updates the clock used to stamp candidates (once per command, not per route).
    pub fn tick(&mut self) {
        self.now = u32::try_from(self.started.elapsed().as_secs()).unwrap_or(u32::MAX);
    }

    /// The protocol name of a client.
    pub fn protocol_of(&self, c: ClientId) -> Arc<str> {
        self.clients
            .get(c as usize)
            .map_or_else(|| Arc::from("?"), |c| c.protocol.clone())
    }

    /// A client.
    pub fn client(&self, c: ClientId) -> Option<&Client> {
        self.clients.get(c as usize)
    }

    // ----- Publish -----

    /// A Publish stream said Hello: attach it to its (protocol, instance), new or returning.
    pub fn hello(
        &mut self,
        stream: u64,
        hello: &Hello,
        resp: watch::Sender<PublishResponse>,
    ) -> Result<ClientId, String> {
        if hello.protocol.is_empty() {
            return Err("Hello.protocol is empty".into());
        }
        if hello.protocol == "connected" {
            return Err("protocol name \"connected\" is reserved".into());
        }
        let name: (Arc<str>, Arc<str>) = (
            hello.protocol.as_str().into(),
            hello.instance.as_str().into(),
        );
        let id = match self.by_name.get(&name) {
            Some(id) => *id,
            None => {
                let id = self.clients.len() as ClientId;
                self.clients
                    .push(Client::new(&hello.protocol, &hello.instance, 0));
                self.by_name.insert(name, id);
                id
            }
        };
        let c = &mut self.clients[id as usize];
        if let Some(old) = c.stream {
            tracing::warn!(protocol = %c.protocol, instance = %c.instance, old, "client reconnected over a live stream; the new one takes over");
        }
        c.default_distance = if hello.default_distance == 0 {
            default_distance(&hello.protocol)
        } else {
            hello.default_distance
        };
        c.stale_hold = (hello.stale_hold_secs > 0)
            .then(|| Duration::from_secs(u64::from(hello.stale_hold_secs)));
        c.stream = Some(stream);
        c.gen += 1;
        c.acked = 0;
        c.swept = 0;
        c.eor = false;
        c.resp = Some(resp);
        tracing::info!(protocol = %c.protocol, instance = %c.instance, client = id, "Publish stream up");
        Ok(id)
    }

    /// A batch from a client's current stream.
    pub fn batch(&mut self, client: ClientId, stream: u64, batch: ParsedBatch) {
        let Some(c) = self.clients.get(client as usize) else {
            return;
        };
        if c.stream != Some(stream) {
            return;
        }
        let dd = c.default_distance;
        self.parse_errors += batch.errors as u64;
        // Each prefix is resolved right after its change, while its index bucket and entry
        // are still in the cache (a batch from a BGP peer is in its own order, so an entry
        // looked up again at the end of the batch is a cache miss); dependents of changed
        // gateways wait for `process_work` at the end.
        for k in batch.withdraw {
            self.withdraw_route(client, k);
            self.resolve_queued();
        }
        for r in &batch.add {
            self.add_route(client, r, dd);
            self.resolve_queued();
        }
        for g in &batch.groups {
            let template = Candidate {
                client,
                distance: if g.distance == 0 { dd } else { g.distance },
                metric: g.metric,
                tag: g.tag,
                action: g.action,
                stale: false,
                since: self.now,
                nexthops: self.interner.set(&g.nexthops),
            };
            for k in &g.keys {
                self.add_candidate(*k, template.clone());
                self.resolve_queued();
            }
        }
        self.process_work();
        let c = &mut self.clients[client as usize];
        c.acked += 1;
        c.respond();
    }

    /// EndOfRib from a client's current stream: sweep what is still stale.
    pub fn end_of_rib(&mut self, client: ClientId, stream: u64) {
        if self.clients.get(client as usize).map(|c| c.stream) != Some(Some(stream)) {
            return;
        }
        let swept = self.sweep(client);
        let c = &mut self.clients[client as usize];
        c.swept = swept;
        c.eor = true;
        c.respond();
        tracing::info!(protocol = %c.protocol, instance = %c.instance, swept, "EndOfRib");
        self.eor_seen.insert(c.protocol.to_string());
    }

    /// A client's stream ended or broke: its routes go stale for the hold time.
    pub fn stream_closed(&mut self, client: ClientId, stream: u64) {
        let default_hold = self.opts.stale_hold;
        let Some(c) = self.clients.get_mut(client as usize) else {
            return;
        };
        if c.stream != Some(stream) {
            return;
        }
        c.stream = None;
        c.resp = None;
        c.gen += 1;
        let (gen, hold) = (c.gen, c.stale_hold.unwrap_or(default_hold));
        let mut stale = 0u64;
        let pools = &mut self.pools;
        self.table.for_each_mut(None, |_, mut e| {
            if e.cands.iter().any(|c| c.client == client) {
                let mut cands = e.cands.to_owned_cands();
                for cand in cands.iter_mut().filter(|c| c.client == client) {
                    cand.stale = true;
                    stale += 1;
                }
                e.set_cands(pools.cands(cands));
            }
            std::ops::ControlFlow::Continue(())
        });
        let c = &self.clients[client as usize];
        tracing::info!(protocol = %c.protocol, instance = %c.instance, stale, hold_secs = hold.as_secs(), "Publish stream closed; routes kept stale");
        if stale > 0 {
            self.timers.push(Timer::StaleHold {
                client,
                gen,
                after: hold,
            });
        }
    }

    /// A stale hold timer fired.
    pub fn hold_expired(&mut self, client: ClientId, gen: u64) {
        let Some(c) = self.clients.get(client as usize) else {
            return;
        };
        if c.gen != gen || c.stream.is_some() {
            return;
        }
        let swept = self.sweep(client);
        let c = &self.clients[client as usize];
        tracing::info!(protocol = %c.protocol, instance = %c.instance, swept, "stale hold expired; routes swept");
    }

    /// The startup hold is over: the first FIB synchronisation may complete.
    pub fn startup_hold_expired(&mut self) {
        if !self.startup_hold_over {
            tracing::info!("startup hold over");
        }
        self.startup_hold_over = true;
    }

    /// Whether end_sync may be sent: every expected protocol sent EndOfRib, or the startup
    /// hold is over.
    pub fn sync_ready(&self) -> bool {
        self.startup_hold_over
            || self
                .opts
                .expected_protocols
                .as_ref()
                .is_some_and(|ps| ps.iter().all(|p| self.eor_seen.contains(p)))
    }

    /// Removes the client's stale candidates, in bounded chunks (no list of a whole
    /// table's keys).
    fn sweep(&mut self, client: ClientId) -> u64 {
        let mut swept = 0u64;
        let mut after = None;
        loop {
            let keys: Vec<Key> = self
                .table
                .after(after)
                .filter(|(_, e)| e.cands.iter().any(|c| c.client == client && c.stale))
                .map(|(k, _)| k)
                .take(DEP_CHUNK)
                .collect();
            let Some(last) = keys.last().copied() else {
                break;
            };
            for k in &keys {
                if let Some(mut e) = self.table.get_mut(k) {
                    let mut cands = e.cands.to_owned_cands();
                    cands.retain(|c| !(c.client == client && c.stale));
                    e.set_cands(self.pools.cands(cands));
                }
                self.reselect(*k);
            }
            self.process_work();
            swept += keys.len() as u64;
            after = Some(last);
        }
        swept
    }

    // ----- The pipeline -----

    fn add_route(&mut self, client: ClientId, r: &ParsedRoute, default_distance: u32) {
        let nexthops = self.interner.set(&r.nexthops);
        let cand = Candidate {
            client,
            distance: if r.distance == 0 {
                default_distance
            } else {
                r.distance
            },
            metric: r.metric,
            tag: r.tag,
            action: r.action,
            stale: false,
            since: self.now,
            nexthops,
        };
        self.add_candidate(r.key, cand);
    }

    /// Adds or replaces `cand.client`'s candidate for `key` and reselects.
    fn add_candidate(&mut self, key: Key, cand: Candidate) {
        let client = cand.client;
        let width = self.opts.ecmp_width;
        let mut e = self.table.entry(key);
        let mut cands = e.cands.to_owned_cands();
        match cands.iter_mut().find(|c| c.client == client) {
            Some(c) => {
                let same = c.distance == cand.distance
                    && c.metric == cand.metric
                    && c.tag == cand.tag
                    && c.action == cand.action
                    && c.nexthops == cand.nexthops;
                if same {
                    // A re-sent route (after a reconnect): no longer stale, nothing moves.
                    if c.stale {
                        c.stale = false;
                        e.set_cands(self.pools.cands(cands));
                    }
                    return;
                }
                *c = cand;
            }
            None => cands.push(cand),
        }
        let cands = self.pools.cands(cands);
        // Selection on the entry in hand: one map lookup per route, and one new state.
        let new = select(&cands, width);
        if e.sel.as_deref() == new.as_ref() {
            e.set_cands(cands);
            return;
        }
        let new = new.map(|s| self.pools.sels.get(s));
        let old = e.set_cands_sel(cands, new.clone());
        *e.flags |= SEL_CHANGED;
        self.selection_changed(key, old, new);
    }

    fn withdraw_route(&mut self, client: ClientId, key: Key) {
        let width = self.opts.ecmp_width;
        let Some(mut e) = self.table.get_mut(&key) else {
            return;
        };
        if !e.cands.iter().any(|c| c.client == client) {
            return;
        }
        let mut cands = e.cands.to_owned_cands();
        cands.retain(|c| c.client != client);
        let cands = self.pools.cands(cands);
        // Reselection on the entry in hand (as `reselect` does), moving it to its new
        // state in one step.
        let new = select(&cands, width);
        if e.sel.as_deref() == new.as_ref() {
            e.set_cands(cands);
            if e.sel.is_none() && *e.flags & FIB_SENT == 0 {
                self.table.remove(&key);
            }
            return;
        }
        let new = new.map(|s| self.pools.sels.get(s));
        let old = e.set_cands_sel(cands, new.clone());
        *e.flags |= SEL_CHANGED;
        self.selection_changed(key, old, new);
    }

    /// Re-runs selection for `key`; a change queues the prefix for resolution.
    fn reselect(&mut self, key: Key) {
        let width = self.opts.ecmp_width;
        let Some(mut e) = self.table.get_mut(&key) else {
            return;
        };
        let new = select(&e.cands, width);
        if e.sel.as_deref() == new.as_ref() {
            if e.sel.is_none() && *e.flags & FIB_SENT == 0 {
                self.table.remove(&key);
            }
            return;
        }
        let new = new.map(|s| self.pools.sels.get(s));
        let old = e.set_sel(new.clone());
        *e.flags |= SEL_CHANGED;
        self.selection_changed(key, old, new);
    }

    /// After selection changed for `key`: queue it for resolution, move its gateway
    /// dependencies, tell redistribution.
    fn selection_changed(
        &mut self,
        key: Key,
        old: Option<Arc<Selected>>,
        new: Option<Arc<Selected>>,
    ) {
        self.work.push(key);
        self.update_deps(
            old.as_ref().map(|s| &s.nexthops),
            new.as_ref().map(|s| &s.nexthops),
        );
        if !self.redist.is_empty() {
            let old_p = old.as_ref().map(|s| self.protocol_of(s.primary));
            let new_p = new.as_ref().map(|s| self.protocol_of(s.primary));
            for w in &mut self.redist {
                w.change(key, old_p.as_deref(), new_p.as_deref().zip(new.as_deref()));
            }
        }
    }

    fn update_deps(&mut self, old: Option<&NhSet>, new: Option<&NhSet>) {
        if let (Some(a), Some(b)) = (old, new) {
            if Arc::ptr_eq(a, b) {
                return;
            }
        }
        let og = gateways(old);
        let ng = gateways(new);
        for g in og.iter().filter(|g| !ng.contains(g)) {
            let h = Key::host(*g);
            if let Some(t) = self.tracked.get_mut(&h) {
                t.deps = t.deps.saturating_sub(1);
            }
            self.untrack_if_unused(h);
        }
        for g in ng.iter().filter(|g| !og.contains(g)) {
            self.track(Key::host(*g)).deps += 1;
        }
    }

    fn track(&mut self, addr: Key) -> &mut Tracked {
        if !self.tracked.contains_key(&addr) {
            let ip = addr.ip();
            let t = Tracked {
                ans0: lpm_direct(&self.table, ip),
                ans: lpm_eligible(&self.table, ip, None),
                ..Default::default()
            };
            self.tracked.insert(addr, t);
        }
        self.tracked.get_mut(&addr).expect("just inserted")
    }

    fn untrack_if_unused(&mut self, addr: Key) {
        if let Some(t) = self.tracked.get(&addr) {
            if t.deps == 0 && t.watchers.is_empty() {
                if let Some(l) = &t.last {
                    self.cover.remove(l.covering, addr);
                }
                self.tracked.remove(&addr);
            }
        }
    }

    /// Resolves every queued prefix, and whatever their changes make depend on them.
    pub fn process_work(&mut self) {
        loop {
            self.resolve_queued();
            if !self.queue_dependents() {
                break;
            }
        }
    }

    /// Resolves the queued prefixes (not yet the dependents of gateways they changed).
    fn resolve_queued(&mut self) {
        while let Some(key) = self.work.pop() {
            self.process(key);
        }
    }

    /// Queues the next chunk (at most `DEP_CHUNK`) of routes whose selected next hops use a
    /// gateway whose answer changed; false when there is nothing left to scan. Gateways that
    /// change during a scan start another one after it, so every route is seen after the
    /// last change of its gateway.
    fn queue_dependents(&mut self) -> bool {
        let scan = match &mut self.dep_scan {
            Some(s) => s,
            None if self.dirty_gateways.is_empty() => return false,
            None => self.dep_scan.insert(DepScan {
                gateways: std::mem::take(&mut self.dirty_gateways),
                after: None,
            }),
        };
        let mut last = scan.after;
        let mut done = true;
        for (k, e) in self.table.after(scan.after) {
            if self.work.len() >= DEP_CHUNK {
                done = false;
                break;
            }
            last = Some(k);
            let uses = e.sel.as_ref().is_some_and(|s| {
                s.nexthops.iter().any(|n| {
                    n.interface.is_none() && n.gateway.is_some_and(|g| scan.gateways.contains(&g))
                })
            });
            if uses {
                self.work.push(k);
            }
        }
        scan.after = last;
        if done {
            self.dep_scan = None;
        }
        true
    }

    fn process(&mut self, key: Key) {
        let width = self.opts.ecmp_width;
        let (tracked, ifaces) = (&self.tracked, &self.ifaces);
        let Some(mut e) = self.table.get_mut(&key) else {
            return;
        };
        // First from the tracked gateways alone, so the entry is looked up once: every
        // gateway of a selected route is tracked, so this answers unless the route would
        // resolve through itself (then the table's longest match is needed).
        let needs_table = std::cell::Cell::new(false);
        let quick = match &e.sel {
            None => None,
            Some(sel) => resolve(
                sel,
                width,
                |n| ifaces.ifindex(n),
                |g| match tracked.get(&Key::host(g)) {
                    Some(t) if t.ans.as_ref().is_none_or(|v| v.route != key) => GatewayAnswer {
                        direct: t.ans0.is_some(),
                        via: t.ans.clone(),
                    },
                    _ => {
                        needs_table.set(true);
                        GatewayAnswer::default()
                    }
                },
            ),
        };
        let new_res = if needs_table.get() {
            let (table, tracked) = (&self.table, &self.tracked);
            let sel = table.get(&key).and_then(|e| e.sel.as_ref());
            let res = sel.and_then(|sel| {
                resolve(
                    sel,
                    width,
                    |n| ifaces.ifindex(n),
                    |g| gateway_answer(table, tracked, g, key),
                )
            });
            e = self.table.get_mut(&key).expect("present");
            res
        } else {
            quick
        };
        let sel_changed = *e.flags & SEL_CHANGED != 0;
        *e.flags &= !SEL_CHANGED;
        if !sel_changed && new_res.as_ref() == e.res.as_deref() {
            return;
        }
        e.set_res(new_res.map(|r| self.pools.res.get(r)));
        let in_fib = e
            .sel
            .as_ref()
            .is_some_and(|s| s.primary != CONNECTED_CLIENT)
            && e.res.is_some();
        if in_fib || *e.flags & FIB_SENT != 0 {
            self.fib.mark(key, &mut *e.flags);
        }
        if e.cands.is_empty() && *e.flags & FIB_SENT == 0 {
            self.table.remove(&key);
        }
        self.reevaluate_around(key);
    }

    /// `key` changed: re-resolve the tracked addresses inside it, and the watched ones
    /// whose covering prefix contains it.
    fn reevaluate_around(&mut self, key: Key) {
        if self.tracked.is_empty() {
            return;
        }
        let hi = Key {
            v6: key.v6,
            addr: key.last(),
            len: u8::MAX,
        };
        let mut addrs: SmallVec<[Key; 8]> = self.tracked.range(key..=hi).map(|(k, _)| *k).collect();
        if !self.watches.is_empty() {
            for a in self.cover.containing(key) {
                if !addrs.contains(&a) {
                    addrs.push(a);
                }
            }
        }
        for a in addrs {
            self.reevaluate(a);
        }
    }

    fn reevaluate(&mut self, addr: Key) {
        let ip = addr.ip();
        let ans0 = lpm_direct(&self.table, ip);
        let ans = lpm_eligible(&self.table, ip, None);
        let Some(t) = self.tracked.get_mut(&addr) else {
            return;
        };
        if t.ans0 != ans0 || t.ans != ans {
            t.ans0 = ans0;
            t.ans = ans;
            if t.deps > 0 && !self.dirty_gateways.contains(&ip) {
                self.dirty_gateways.push(ip);
            }
        }
        if !t.watchers.is_empty() {
            self.notify_watchers(addr, None);
        }
    }

    /// Recomputes a watched address's answer; sends it to every watcher if it changed,
    /// else to `only` (a new watcher) if given.
    fn notify_watchers(&mut self, addr: Key, only: Option<WatchId>) {
        let Some(t) = self.tracked.get(&addr) else {
            return;
        };
        let ans = WatchAnswer {
            covering: covering(&self.table, addr, t.ans.as_ref().map(|v| v.route)),
            via: t.ans.clone(),
        };
        let t = self.tracked.get_mut(&addr).expect("present");
        let changed = t.last.as_ref() != Some(&ans);
        if changed {
            if let Some(old) = &t.last {
                self.cover.remove(old.covering, addr);
            }
            self.cover.insert(ans.covering, addr);
            t.last = Some(ans.clone());
        }
        let targets: SmallVec<[WatchId; 4]> = match (changed, only) {
            (true, _) => t.watchers.iter().copied().collect(),
            (false, Some(id)) => smallvec::smallvec![id],
            (false, None) => return,
        };
        let clients = &self.clients;
        let msg = update_proto(addr, &ans, |c| {
            clients
                .get(c as usize)
                .map_or_else(|| Arc::from("?"), |c| c.protocol.clone())
        });
        for id in targets {
            if let Some(sink) = self.watches.get(&id) {
                let _ = sink.send(Ok(msg.clone()));
            }
        }
    }

    // ----- Interfaces -----

    /// An interface update from the FEA: connected routes follow.
    pub fn interfaces(&mut self, u: InterfaceUpdate) {
        let renamed = self.ifaces.apply(u);
        let new = self.ifaces.connected_routes();
        let old = std::mem::take(&mut self.connected);
        for k in old.keys().filter(|k| !new.contains_key(k)) {
            self.withdraw_route(CONNECTED_CLIENT, *k);
        }
        for (k, nhs) in &new {
            if old.get(k) != Some(nhs) {
                let r = ParsedRoute {
                    key: *k,
                    nexthops: nhs.clone(),
                    action: Action::Forward,
                    distance: 0,
                    metric: 0,
                    tag: 0,
                };
                self.add_route(CONNECTED_CLIENT, &r, 0);
            }
        }
        self.connected = new;
        if renamed {
            // Interface indexes moved: routes out of an interface re-resolve.
            let keys: Vec<Key> = self
                .table
                .iter()
                .filter(|(_, e)| {
                    e.sel
                        .as_ref()
                        .is_some_and(|s| s.nexthops.iter().any(|n| n.interface.is_some()))
                })
                .map(|(k, _)| k)
                .collect();
            self.work.extend(keys);
        }
        self.process_work();
    }

    // ----- FIB -----

    /// A ProgramFib stream came up.
    pub fn fea_up(&mut self, session: u64, tx: mpsc::Sender<FibOut>) {
        self.fib.session_up(session, tx);
    }

    /// Sends what the FIB window allows.
    pub fn pump_fib(&mut self) {
        let ready = self.sync_ready();
        let clients = &self.clients;
        let protocol_of = |c: ClientId| {
            clients
                .get(c as usize)
                .map_or_else(|| Arc::from("?"), |c| c.protocol.clone())
        };
        self.fib.pump(&mut self.table, &protocol_of, ready);
    }

    // ----- Watches -----

    /// A WatchNexthops stream opened.
    pub fn watch_open(&mut self, id: WatchId, sink: WatchSink) {
        self.watches.insert(id, sink);
    }

    /// Addresses added to / removed from a WatchNexthops stream.
    pub fn watch_change(&mut self, id: WatchId, add: &[IpAddr], remove: &[IpAddr]) {
        for ip in add {
            let a = Key::host(*ip);
            let t = self.track(a);
            if !t.watchers.contains(&id) {
                t.watchers.push(id);
            }
            self.notify_watchers(a, Some(id));
        }
        for ip in remove {
            self.unwatch(id, Key::host(*ip));
        }
    }

    fn unwatch(&mut self, id: WatchId, a: Key) {
        if let Some(t) = self.tracked.get_mut(&a) {
            t.watchers.retain(|w| *w != id);
            if t.watchers.is_empty() {
                if let Some(l) = t.last.take() {
                    self.cover.remove(l.covering, a);
                }
            }
        }
        self.untrack_if_unused(a);
    }

    /// A WatchNexthops stream ended.
    pub fn watch_close(&mut self, id: WatchId) {
        self.watches.remove(&id);
        let addrs: Vec<Key> = self
            .tracked
            .iter()
            .filter(|(_, t)| t.watchers.contains(&id))
            .map(|(k, _)| *k)
            .collect();
        for a in addrs {
            self.unwatch(id, a);
        }
    }

    /// A WatchRedistribution stream opened: dump, EndOfRib, then changes.
    pub fn redist_open(
        &mut self,
        id: u64,
        protocols: Vec<String>,
        within: Vec<Key>,
        sink: RedistSink,
    ) {
        let mut w = RedistWatcher::new(id, protocols, within, sink);
        for (k, e) in self.table.iter() {
            if let Some(sel) = &e.sel {
                let p = &self.clients[sel.primary as usize].protocol;
                if w.wants(p, k) {
                    w.add(k, p, sel);
                }
            }
        }
        w.end_of_rib();
        if !w.closed {
            self.redist.push(w);
        }
    }

    /// A WatchRedistribution stream ended.
    pub fn redist_close(&mut self, id: u64) {
        self.redist.retain(|w| w.id != id);
    }

    /// Sends the redistribution changes gathered during a command.
    pub fn flush_watchers(&mut self) {
        for w in &mut self.redist {
            w.flush();
        }
        self.redist.retain(|w| !w.closed);
        self.watches.retain(|_, s| !s.is_closed());
    }

    // ----- Configuration -----

    /// A new configuration.
    pub fn set_config(&mut self, opts: RibOptions) {
        let reselect = opts.ecmp_width != self.opts.ecmp_width;
        self.opts = opts;
        if reselect {
            let keys: Vec<Key> = self.table.iter().map(|(k, _)| k).collect();
            for k in keys {
                self.reselect(k);
            }
            self.process_work();
        }
    }

    // ----- Queries -----

    fn entry_proto(&self, key: Key, e: &Entry) -> RibEntry {
        let candidates = e
            .cands
            .iter()
            .map(|c| {
                let client = &self.clients[c.client as usize];
                let selected = e.sel.as_ref().is_some_and(|s| s.includes(c));
                RibCandidate {
                    protocol: client.protocol.to_string(),
                    instance: client.instance.to_string(),
                    distance: c.distance,
                    metric: c.metric,
                    tag: c.tag,
                    action: c.action.to_proto() as i32,
                    nexthops: c
                        .nexthops
                        .iter()
                        .map(|n| oxr_proto::types::Nexthop {
                            gateway: n.gateway.map(oxr_proto::types::IpAddress::from),
                            interface: n.interface.as_deref().unwrap_or("").to_string(),
                            weight: n.weight,
                        })
                        .collect(),
                    resolved_nexthops: match (&e.res, selected) {
                        (Some(r), true) => r.nexthops.iter().map(nexthop_proto).collect(),
                        _ => Vec::new(),
                    },
                    selected,
                    stale: c.stale,
                    resolved: selected && e.res.is_some(),
                    age_secs: u64::from(self.now.saturating_sub(c.since)),
                }
            })
            .collect();
        RibEntry {
            prefix: Some(key.to_proto()),
            candidates,
        }
    }

    /// Longest match for an address among selected routes.
    pub fn lookup(&self, addr: IpAddr) -> RibEntries {
        let entries = self
            .table
            .longest_match(Key::host(addr), |_, e| e.sel.is_some())
            .map(|(k, e)| self.entry_proto(k, e))
            .into_iter()
            .collect();
        RibEntries { entries }
    }

    fn filtered(&self, key: Key, e: &Entry, f: &RouteFilter) -> Option<RibEntry> {
        if e.cands.is_empty() {
            return None;
        }
        let mut entry = self.entry_proto(key, e);
        entry.candidates.retain(|c| {
            (!f.selected_only || c.selected) && (f.protocol.is_empty() || c.protocol == f.protocol)
        });
        (!entry.candidates.is_empty()).then_some(entry)
    }

    /// Up to `limit` entries after `after` matching `f`, and where to continue (None: done).
    pub fn routes_page(
        &self,
        f: &RouteFilter,
        after: Option<Key>,
        limit: usize,
    ) -> (Vec<RibEntry>, Option<Key>) {
        if let Some(p) = f.prefix {
            let out = self.table.get(&p).and_then(|e| self.filtered(p, e, f));
            return (out.into_iter().collect(), None);
        }
        let mut out = Vec::new();
        let mut scanned = 0usize;
        for (k, e) in self.table.after(after) {
            let fam_ok = match f.family {
                4 => !k.v6,
                6 => k.v6,
                _ => true,
            };
            if fam_ok {
                if let Some(entry) = self.filtered(k, e, f) {
                    out.push(entry);
                }
            }
            scanned += 1;
            // Bounded work per page keeps the RIB task responsive under filters that match
            // little.
            if out.len() >= limit || scanned >= 16 * limit.max(1) {
                return (out, Some(k));
            }
        }
        (out, None)
    }

    /// Counts.
    pub fn summary(&self) -> RibSummary {
        let mut per: BTreeMap<Arc<str>, ProtocolCount> = BTreeMap::new();
        let mut s = RibSummary {
            fea_connected: self.fib.connected(),
            ..Default::default()
        };
        let clients = &self.clients;
        let protocol_of = |c: ClientId| clients[c as usize].protocol.clone();
        for (k, e) in self.table.iter() {
            if e.cands.is_empty() {
                continue;
            }
            if k.v6 {
                s.prefixes_ipv6 += 1;
            } else {
                s.prefixes_ipv4 += 1;
            }
            if e.sel.is_some() && e.res.is_none() {
                s.unresolved += 1;
            }
            if desired(e, &protocol_of).is_some() {
                s.fib_routes += 1;
            }
            for c in e.cands.iter() {
                let pc = per
                    .entry(clients[c.client as usize].protocol.clone())
                    .or_default();
                if k.v6 {
                    pc.ipv6 += 1;
                } else {
                    pc.ipv4 += 1;
                }
                if e.sel.as_ref().is_some_and(|s| s.includes(c)) {
                    pc.selected += 1;
                }
                if c.stale {
                    pc.stale += 1;
                }
            }
        }
        for c in &self.clients {
            let pc = per.entry(c.protocol.clone()).or_default();
            pc.connected_client |= c.stream.is_some() || c.protocol.as_ref() == "connected";
        }
        s.protocols = per
            .into_iter()
            .map(|(p, mut pc)| {
                pc.protocol = p.to_string();
                pc
            })
            .collect();
        s.nexthop_watches = self
            .tracked
            .values()
            .filter(|t| !t.watchers.is_empty())
            .count() as u64;
        s
    }

    /// Every tracked address (gateways and watched next hops).
    pub fn tracked_info(&self) -> Vec<TrackedInfo> {
        self.tracked
            .iter()
            .map(|(k, t)| TrackedInfo {
                address: k.ip(),
                via: t.ans.as_ref().map(|v| v.route.to_string()),
                via_protocol: t
                    .ans
                    .as_ref()
                    .map(|v| self.protocol_of(v.client).to_string()),
                metric: t.ans.as_ref().map(|v| v.metric),
                nexthops: t
                    .ans
                    .as_ref()
                    .map(|v| {
                        v.nexthops
                            .iter()
                            .map(|n| match n.gateway {
                                Some(g) => format!("{g} via {}", n.interface),
                                None => format!("via {}", n.interface),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                covering: t.last.as_ref().map(|l| l.covering.to_string()),
                watchers: t.watchers.len(),
                dependents: t.deps as usize,
            })
            .collect()
    }
}
