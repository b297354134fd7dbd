//! The OSPF instance as a pure event loop: every packet, timer, interface change and
//! configuration change is an [`Input`] to [`Instance::handle`], which answers with
//! [`Output`]s (packets to send, timers to set or cancel, multicast memberships, routes for
//! the RIB, log lines). The instance owns no socket and reads no clock: `now` (milliseconds
//! on a monotonic clock) comes with each input, so tests drive several instances against
//! each other through a simulated network with a fake clock.
//!
//! ```text
//!   FEA watcher --Interface--+
//!   config watcher --Config--+
//!   io.rs raw sockets -Packet+--> [ Instance::handle(now, input) ] --Send--------> io.rs
//!   timer wheel ----Timer----+              |   |   |   +---------Membership---> io.rs
//!                                            |   |   +-------------Timer--------> timer wheel
//!   show/metrics (api.rs) <- accessors ------+   +-----------------Route*-------> rib.rs
//! ```
//!
//! Inside, the pure pieces of the crate do the deciding: [`crate::interface`] and
//! [`crate::neighbor`] for the state machines, [`crate::flooding`] for what to do with each
//! received LSA, [`crate::originate`] for our own LSAs, [`crate::throttle`] for SPF and
//! LSA-generation back-off, [`crate::route`] for the routing table. This module keeps the
//! lists (retransmission, request, delayed acks), the timers and the glue.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::Arc;

use ipnet::Ipv4Net;
use serde::Serialize;

use crate::config::{parse_area_id, AreaConfig, InterfaceConfig, NssaTranslator, OspfConfig};
use crate::consts::{LS_INFINITY, LS_REFRESH_TIME, MAX_AGE};
use crate::flooding::{
    flood_plan, receive_lsa, Ack, DbCopy, Dest, FloodIface, FloodNbr, Receipt, ReceiveContext,
};
use crate::interface::{interface_event, Candidate, IfAction, IfEvent, IfState, IfType, IfView};
use crate::lsdb::{compare, AreaDbView, Lsdb, Recency, Scope};
use crate::neighbor::{
    answer_request, exchange_done, neighbor_event, should_form_adjacency, DbExchange, DdContext,
    NbrAction, NbrEvent, NbrState, NbrTransition,
};
use crate::originate::{
    network_lsa_body, originate, router_lsa_body, FullNbr, OrigIface, Origination,
};
use crate::packet::lsa::{
    options, router_flags, ExternalLsa, LsaHeader, SummaryLsa, LSA_EXTERNAL, LSA_NETWORK, LSA_NSSA,
    LSA_ROUTER,
};
use crate::packet::{
    check_crypto_seq, decode, encode, Auth, Body, DbDesc, Hello, LsAck, LsRequest, LsUpdate, Lsa,
    LsaBody, LsaKey, Packet, PacketType,
};
use crate::route::{
    abr_summaries, compute, nssa_default, nssa_translations, nssa_translator, AreaInput, AreaKind,
    PathType, RoutingTable,
};
use crate::spf::LocalIface;
use crate::throttle::{Throttle, ThrottleState};
use crate::{AreaId, IfIndex, RouterId, BACKBONE};

/// AllSPFRouters, 224.0.0.5.
pub const ALL_SPF_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 5);
/// AllDRouters, 224.0.0.6.
pub const ALL_D_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 6);
/// Administrative distance of OSPF routes in the RIB (intra, inter and external alike).
pub const DISTANCE: u32 = 110;
/// How long a received LSA may wait for a delayed acknowledgment (ms). Well below the
/// default RxmtInterval so a delayed ack never causes a retransmission.
pub const ACK_DELAY_MS: u64 = 500;
/// Period of the aging sweep: MaxAge detection and removal, LSRefreshTime (ms).
pub const SWEEP_MS: u64 = 1000;
/// IPv4 header length assumed when sizing packets (no options).
const IP_HEADER_LEN: usize = 20;
/// SPF runs remembered for `show ospf spf`.
const SPF_LOG_LEN: usize = 20;

/// A timer the instance asked for. The driver fires [`Input::Timer`] with the key at the
/// time given in the last [`Output::Timer`] for it; stale firings are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum TimerKey {
    /// Send a Hello on an interface.
    Hello(String),
    /// The Wait timer of a broadcast interface.
    Wait(String),
    /// A neighbor's inactivity (RouterDeadInterval) timer.
    Inactivity(String, RouterId),
    /// Retransmission of LS Updates (the retransmission list) to a neighbor, RxmtInterval.
    Retransmit(String, RouterId),
    /// Retransmission of the database exchange (DD packets while we drive it, LS Requests
    /// while unanswered) to a neighbor, on the interface's short exchange interval.
    Exchange(String, RouterId),
    /// Send the interface's delayed acknowledgments.
    DelayedAck(String),
    /// SPF throttle deadline.
    Spf,
    /// LSA-generation throttle deadline of one of our LSAs.
    LsaThrottle(Scope, LsaKey),
    /// Aging sweep (MaxAge, refresh).
    Sweep,
    /// Received LSAs deferred by MinLSArrival are due.
    Deferred,
}

/// What the FEA says about one interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IfaceInfo {
    /// Name (the configuration key).
    pub name: String,
    /// Kernel ifindex.
    pub ifindex: IfIndex,
    /// Operationally up.
    pub up: bool,
    /// IPv4 addresses; the first one outside 127/8 is the interface's OSPF address.
    pub addrs: Vec<Ipv4Net>,
    /// MTU.
    pub mtu: u32,
}

/// An input event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A new configuration (the whole `protocols.ospf` section; None: OSPF unconfigured).
    Config(Option<OspfConfig>),
    /// An interface appeared or changed.
    Interface(IfaceInfo),
    /// An interface disappeared.
    InterfaceRemoved(String),
    /// An OSPF packet (the IP payload) arrived.
    Packet {
        /// Receiving interface.
        ifname: String,
        /// IP source.
        src: Ipv4Addr,
        /// IP destination.
        dst: Ipv4Addr,
        /// IP payload.
        data: Vec<u8>,
    },
    /// A timer fired.
    Timer(TimerKey),
    /// Routes of other protocols changed (oxr-rib's `WatchRedistribution`): each added
    /// prefix with its origin protocol ("static", "bgp", "connected"); announced as
    /// AS-external LSAs when `redistribute.<protocol>` is configured (12.4.4).
    Redistribute {
        /// Routes added or changed.
        add: Vec<(String, Ipv4Net)>,
        /// Routes gone.
        withdraw: Vec<Ipv4Net>,
    },
}

/// A next hop of a route for the RIB.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RibNexthop {
    /// Gateway; None when the destination is on the link.
    pub gateway: Option<Ipv4Addr>,
    /// Outgoing interface name.
    pub ifname: String,
    /// Outgoing interface index.
    pub ifindex: IfIndex,
}

/// A route as published to the RIB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RibRoute {
    /// Equal-cost next hops.
    pub nexthops: Vec<RibNexthop>,
    /// Metric (OSPF cost; the type 2 metric for E2 routes).
    pub metric: u32,
    /// Path type.
    pub path_type: PathType,
}

/// An output action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Output {
    /// Send an OSPF packet (IP payload) out of an interface.
    Send {
        /// Interface.
        ifname: String,
        /// IP destination: 224.0.0.5, 224.0.0.6 or a neighbor's address.
        dst: Ipv4Addr,
        /// IP payload.
        data: Vec<u8>,
    },
    /// Set (Some) or cancel (None) a timer; `at` is in the clock of `now`.
    Timer {
        /// Which.
        key: TimerKey,
        /// When.
        at: Option<u64>,
    },
    /// Join or leave a multicast group on an interface. Joining 224.0.0.5 also means "open
    /// the interface for OSPF"; leaving it, "close it".
    Membership {
        /// Interface.
        ifname: String,
        /// Interface index.
        ifindex: IfIndex,
        /// 224.0.0.5 or 224.0.0.6.
        group: Ipv4Addr,
        /// Join (true) or leave.
        join: bool,
    },
    /// Add or replace a route in the RIB.
    RouteAdd {
        /// Destination.
        prefix: Ipv4Net,
        /// Route.
        route: RibRoute,
    },
    /// Withdraw a route from the RIB.
    RouteWithdraw {
        /// Destination.
        prefix: Ipv4Net,
    },
    /// A line for the log.
    Log(String),
}

/// Counters, exported in Prometheus format by the process.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counters {
    /// Packets received and accepted, by type.
    pub rx: BTreeMap<&'static str, u64>,
    /// Packets sent, by type.
    pub tx: BTreeMap<&'static str, u64>,
    /// Packets or LSAs dropped, by reason.
    pub errors: BTreeMap<&'static str, u64>,
    /// SPF runs.
    pub spf_runs: u64,
    /// Total SPF (route table) computation time (µs).
    pub spf_time_us: u64,
    /// Times a neighbor entered Full.
    pub adjacency_up: u64,
    /// Times a neighbor left Full.
    pub adjacency_down: u64,
    /// LSAs we originated (new instances, refreshes and flushes).
    pub lsa_originated: u64,
    /// LSAs received and installed (newer than ours).
    pub lsa_installed: u64,
    /// LSAs retransmitted.
    pub lsa_retransmitted: u64,
    /// DD packets and LS Requests retransmitted (exchange timer).
    pub exchange_retransmitted: u64,
    /// Newer LSA instances that arrived within MinLSArrival of the database copy and were
    /// processed when it ended.
    pub lsa_deferred: u64,
}

fn ptype(t: PacketType) -> &'static str {
    match t {
        PacketType::Hello => "hello",
        PacketType::DbDesc => "dd",
        PacketType::LsRequest => "ls-request",
        PacketType::LsUpdate => "ls-update",
        PacketType::LsAck => "ls-ack",
    }
}

/// One SPF run, for `show ospf spf`.
#[derive(Debug, Clone, Serialize)]
pub struct SpfRun {
    /// When (ms, instance clock).
    pub at: u64,
    /// How long the routing table computation took (µs, wall clock).
    pub duration_us: u64,
    /// Routes in the table afterwards.
    pub routes: usize,
    /// Route changes sent to the RIB.
    pub changes: usize,
}

#[derive(Debug, Clone)]
struct Neighbor {
    router_id: RouterId,
    addr: Ipv4Addr,
    state: NbrState,
    priority: u8,
    dr: Ipv4Addr,
    bdr: Ipv4Addr,
    options: u8,
    dd: DbExchange,
    rxmt: BTreeMap<LsaKey, Arc<Lsa>>,
    lsr_sent: Vec<LsaKey>,
    crypto_seq: Option<u32>,
    since: u64,
}

impl Neighbor {
    fn new(router_id: RouterId, addr: Ipv4Addr, now: u64) -> Self {
        Neighbor {
            router_id,
            addr,
            state: NbrState::Down,
            priority: 0,
            dr: Ipv4Addr::UNSPECIFIED,
            bdr: Ipv4Addr::UNSPECIFIED,
            options: 0,
            dd: DbExchange::default(),
            rxmt: BTreeMap::new(),
            lsr_sent: Vec::new(),
            crypto_seq: None,
            since: now,
        }
    }
}

#[derive(Debug, Clone)]
struct Iface {
    name: String,
    cfg: InterfaceConfig,
    area: AreaId,
    auth: Auth,
    ifindex: IfIndex,
    /// The OSPF address (while up).
    addr: Option<Ipv4Net>,
    /// Other addresses, advertised as stubs on passive interfaces.
    extra: Vec<Ipv4Net>,
    mtu: u16,
    state: IfState,
    dr: Ipv4Addr,
    bdr: Ipv4Addr,
    nbrs: BTreeMap<RouterId, Neighbor>,
    delayed_acks: Vec<LsaHeader>,
    joined_alld: bool,
}

impl Iface {
    fn prefix(&self) -> Ipv4Net {
        self.addr
            .unwrap_or_else(|| Ipv4Net::new(Ipv4Addr::UNSPECIFIED, 32).expect("valid"))
    }

    fn is_active(&self) -> bool {
        self.state != IfState::Down && !self.cfg.passive
    }

    fn max_payload(&self) -> usize {
        let trailer = match &self.auth {
            Auth::Crypto(k) => k.first().map_or(0, |k| k.algo.digest_len()),
            _ => 0,
        };
        usize::from(self.mtu).saturating_sub(IP_HEADER_LEN + trailer)
    }

    /// Unicast destination for a neighbor: on point-to-point links everything goes to
    /// AllSPFRouters (RFC 2328 8.1).
    fn nbr_dst(&self, n: &Neighbor) -> Ipv4Addr {
        match self.cfg.if_type {
            IfType::PointToPoint => ALL_SPF_ROUTERS,
            IfType::Broadcast => n.addr,
        }
    }
}

/// Options of the LSAs we originate into an area: E unless stub or NSSA (type-7 LSAs set
/// their own P-bit).
fn area_options(stub: bool) -> u8 {
    if stub {
        0
    } else {
        options::E
    }
}

/// Our desired own LSAs: (scope, key) -> (options, body).
type Desired = BTreeMap<(Scope, LsaKey), (u8, LsaBody)>;

/// The OSPF instance.
#[derive(Debug)]
pub struct Instance {
    cfg: Option<OspfConfig>,
    areas: BTreeMap<AreaId, AreaConfig>,
    router_id: Option<RouterId>,
    crypto_base: u32,
    kernel: BTreeMap<String, IfaceInfo>,
    ifaces: BTreeMap<String, Iface>,
    lsdb: Lsdb,
    spf_throttle: Throttle,
    own_throttles: BTreeMap<(Scope, LsaKey), Throttle>,
    table: RoutingTable,
    published: BTreeMap<Ipv4Net, RibRoute>,
    timers: HashMap<TimerKey, u64>,
    pending_flood: BTreeMap<(String, Ipv4Addr), BTreeSet<(Scope, LsaKey)>>,
    out: Vec<Output>,
    counters: Counters,
    spf_log: VecDeque<SpfRun>,
    dd_seq: u32,
    now: u64,
    /// Routes of other protocols, by prefix: their origin protocol.
    redistributed: BTreeMap<Ipv4Net, String>,
    /// Newer instances received within MinLSArrival of the database copy, by (interface,
    /// neighbor, key): when they are due and the LSA.
    deferred: BTreeMap<(String, RouterId, LsaKey), (u64, Lsa)>,
}

impl Instance {
    /// A new, unconfigured instance. `crypto_base` is added to the uptime in seconds to
    /// form the cryptographic sequence number, so it keeps increasing across restarts
    /// (the process passes the Unix time at start; tests pass 0).
    pub fn new(crypto_base: u32) -> Self {
        Instance {
            cfg: None,
            areas: BTreeMap::new(),
            router_id: None,
            crypto_base,
            kernel: BTreeMap::new(),
            ifaces: BTreeMap::new(),
            lsdb: Lsdb::new(),
            spf_throttle: Throttle::new(crate::throttle::ThrottleParams::SPF_DEFAULT),
            own_throttles: BTreeMap::new(),
            table: RoutingTable::default(),
            published: BTreeMap::new(),
            timers: HashMap::new(),
            pending_flood: BTreeMap::new(),
            out: Vec::new(),
            counters: Counters::default(),
            spf_log: VecDeque::new(),
            dd_seq: 0,
            now: 0,
            redistributed: BTreeMap::new(),
            deferred: BTreeMap::new(),
        }
    }

    /// Processes one input at `now` (ms) and returns what to do.
    pub fn handle(&mut self, now: u64, input: Input) -> Vec<Output> {
        self.now = now;
        match input {
            Input::Config(cfg) => self.apply_config(cfg),
            Input::Interface(info) => self.kernel_iface(info),
            Input::InterfaceRemoved(name) => {
                self.kernel.remove(&name);
                self.iface_down(&name);
            }
            Input::Packet {
                ifname,
                src,
                dst,
                data,
            } => self.rx_packet(&ifname, src, dst, &data),
            Input::Timer(key) => match self.timers.get(&key) {
                Some(&at) if at <= now => {
                    self.timers.remove(&key);
                    self.timer_fired(key);
                }
                _ => {}
            },
            Input::Redistribute { add, withdraw } => {
                for p in withdraw {
                    self.redistributed.remove(&p);
                }
                for (proto, p) in add {
                    self.redistributed.insert(p.trunc(), proto);
                }
                if self.router_id.is_some() {
                    self.reconcile_own();
                }
            }
        }
        self.flush_pending_flood();
        std::mem::take(&mut self.out)
    }

    // ----- small helpers -------------------------------------------------------------------

    fn log(&mut self, msg: String) {
        self.out.push(Output::Log(msg));
    }

    fn error(&mut self, reason: &'static str) {
        *self.counters.errors.entry(reason).or_default() += 1;
    }

    fn set_timer(&mut self, key: TimerKey, at: u64) {
        if self.timers.get(&key) != Some(&at) {
            self.timers.insert(key.clone(), at);
            self.out.push(Output::Timer { key, at: Some(at) });
        }
    }

    fn cancel_timer(&mut self, key: TimerKey) {
        if self.timers.remove(&key).is_some() {
            self.out.push(Output::Timer { key, at: None });
        }
    }

    fn area_stub(&self, area: AreaId) -> bool {
        self.areas.get(&area).is_some_and(|a| a.stub || a.nssa)
    }

    fn area_nssa(&self, area: AreaId) -> bool {
        self.areas.get(&area).is_some_and(|a| a.nssa)
    }

    /// Options of our Hello and DD packets in an area: E for a normal area, N for an NSSA
    /// (RFC 3101 2.2), neither for a stub area.
    fn packet_options(&self, area: AreaId) -> u8 {
        if self.area_nssa(area) {
            options::NP
        } else {
            area_options(self.area_stub(area))
        }
    }

    fn crypto_seq(&self) -> u32 {
        self.crypto_base.wrapping_add((self.now / 1000) as u32)
    }

    fn send(&mut self, ifname: &str, dst: Ipv4Addr, body: Body) {
        let Some(rid) = self.router_id else { return };
        let Some(i) = self.ifaces.get(ifname) else {
            return;
        };
        let t = body.packet_type();
        let pkt = Packet {
            router_id: rid,
            area_id: i.area,
            body,
        };
        let data = encode(&pkt, &i.auth, self.crypto_seq());
        *self.counters.tx.entry(ptype(t)).or_default() += 1;
        self.out.push(Output::Send {
            ifname: ifname.to_string(),
            dst,
            data,
        });
    }

    /// The current instance of an LSA ready to send: age advanced by `delay` seconds.
    fn lsa_for_tx(&self, scope: Scope, key: &LsaKey, delay: u16) -> Option<Lsa> {
        let e = self.lsdb.get(scope, key)?;
        let mut l = (*e.lsa).clone();
        l.header.age = e.age(self.now).saturating_add(delay).min(MAX_AGE);
        Some(l)
    }

    /// Sends LSAs in as few Link State Updates as the MTU allows.
    fn send_lsus(&mut self, ifname: &str, dst: Ipv4Addr, lsas: Vec<Lsa>) {
        let Some(i) = self.ifaces.get(ifname) else {
            return;
        };
        let room = i
            .max_payload()
            .saturating_sub(crate::packet::HEADER_LEN + 4);
        let mut batch: Vec<Lsa> = Vec::new();
        let mut size = 0;
        for l in lsas {
            let len = usize::from(l.header.length);
            if !batch.is_empty() && size + len > room {
                let lsas = std::mem::take(&mut batch);
                self.send(
                    ifname,
                    dst,
                    Body::LsUpdate(LsUpdate {
                        lsas,
                        rejected: vec![],
                    }),
                );
                size = 0;
            }
            size += len;
            batch.push(l);
        }
        if !batch.is_empty() {
            self.send(
                ifname,
                dst,
                Body::LsUpdate(LsUpdate {
                    lsas: batch,
                    rejected: vec![],
                }),
            );
        }
    }

    fn send_acks(&mut self, ifname: &str, dst: Ipv4Addr, headers: Vec<LsaHeader>) {
        let Some(i) = self.ifaces.get(ifname) else {
            return;
        };
        let per = (i.max_payload().saturating_sub(crate::packet::HEADER_LEN) / 20).max(1);
        for chunk in headers.chunks(per) {
            self.send(
                ifname,
                dst,
                Body::LsAck(LsAck {
                    lsa_headers: chunk.to_vec(),
                }),
            );
        }
    }

    fn flush_pending_flood(&mut self) {
        let pending = std::mem::take(&mut self.pending_flood);
        for ((ifname, dst), keys) in pending {
            let Some(delay) = self.ifaces.get(&ifname).map(|i| i.cfg.transmit_delay) else {
                continue;
            };
            let lsas: Vec<Lsa> = keys
                .iter()
                .filter_map(|(s, k)| self.lsa_for_tx(*s, k, delay))
                .collect();
            self.send_lsus(&ifname, dst, lsas);
        }
    }

    fn ifname_by_index(&self, ifindex: IfIndex) -> Option<String> {
        self.ifaces
            .values()
            .find(|i| i.ifindex == ifindex && i.state != IfState::Down)
            .map(|i| i.name.clone())
    }

    fn any_nbr_exchanging(&self) -> bool {
        self.ifaces.values().any(|i| {
            i.nbrs
                .values()
                .any(|n| matches!(n.state, NbrState::Exchange | NbrState::Loading))
        })
    }

    fn on_any_rxmt(&self, key: &LsaKey) -> bool {
        self.ifaces
            .values()
            .any(|i| i.nbrs.values().any(|n| n.rxmt.contains_key(key)))
    }

    // ----- configuration and interfaces ----------------------------------------------------

    fn apply_config(&mut self, cfg: Option<OspfConfig>) {
        let areas: BTreeMap<AreaId, AreaConfig> = cfg
            .iter()
            .flat_map(|c| c.areas.iter())
            .filter_map(|(k, v)| parse_area_id(k).map(|a| (a, v.clone())))
            .collect();
        let old_rid_cfg = self.cfg.as_ref().and_then(|c| c.router_id);
        let new_rid_cfg = cfg.as_ref().and_then(|c| c.router_id);
        let reset = cfg.is_none() || old_rid_cfg != new_rid_cfg || areas != self.areas;
        if reset && self.cfg.is_some() {
            self.log("configuration: router ID or areas changed, restarting OSPF".into());
            self.full_reset();
        }
        self.areas = areas;
        if let Some(c) = &cfg {
            if self.cfg.as_ref().map(|o| o.throttle.spf) != Some(c.throttle.spf) {
                self.spf_throttle = Throttle::new(c.throttle.spf);
            }
        }
        let redist_changed =
            self.cfg.as_ref().map(|c| &c.redistribute) != cfg.as_ref().map(|c| &c.redistribute);
        let old_ifs: BTreeMap<String, InterfaceConfig> =
            self.cfg.iter().flat_map(|c| c.interfaces.clone()).collect();
        let new_ifs: BTreeMap<String, InterfaceConfig> =
            cfg.iter().flat_map(|c| c.interfaces.clone()).collect();
        self.cfg = cfg;
        // Interfaces removed or changed beyond their cost are restarted; others keep their
        // adjacencies.
        let mut cost_changed = false;
        for (name, old) in &old_ifs {
            match new_ifs.get(name) {
                Some(new) if new == old => {}
                Some(new)
                    if InterfaceConfig {
                        cost: old.cost,
                        ..new.clone()
                    } == *old =>
                {
                    if let Some(i) = self.ifaces.get_mut(name) {
                        i.cfg.cost = new.cost;
                    }
                    cost_changed = true;
                }
                _ => {
                    self.iface_down(name);
                    self.ifaces.remove(name);
                }
            }
        }
        for (name, c) in &new_ifs {
            if self.ifaces.contains_key(name) {
                continue;
            }
            let area = parse_area_id(&c.area).unwrap_or(BACKBONE);
            self.ifaces.insert(
                name.clone(),
                Iface {
                    name: name.clone(),
                    cfg: c.clone(),
                    area,
                    auth: c.authentication.to_auth(),
                    ifindex: 0,
                    addr: None,
                    extra: vec![],
                    mtu: 1500,
                    state: IfState::Down,
                    dr: Ipv4Addr::UNSPECIFIED,
                    bdr: Ipv4Addr::UNSPECIFIED,
                    nbrs: BTreeMap::new(),
                    delayed_acks: vec![],
                    joined_alld: false,
                },
            );
        }
        self.choose_router_id();
        let names: Vec<String> = self.ifaces.keys().cloned().collect();
        for n in names {
            self.try_up(&n);
        }
        if (cost_changed || redist_changed) && self.router_id.is_some() {
            self.reconcile_own();
        }
        if self.router_id.is_some() && !self.timers.contains_key(&TimerKey::Sweep) {
            self.set_timer(TimerKey::Sweep, self.now + SWEEP_MS);
        }
    }

    fn full_reset(&mut self) {
        let names: Vec<String> = self.ifaces.keys().cloned().collect();
        for n in &names {
            self.iface_down(n);
        }
        self.ifaces.clear();
        self.lsdb = Lsdb::new();
        for (s, k) in std::mem::take(&mut self.own_throttles).into_keys() {
            self.cancel_timer(TimerKey::LsaThrottle(s, k));
        }
        self.cancel_timer(TimerKey::Spf);
        self.cancel_timer(TimerKey::Sweep);
        self.cancel_timer(TimerKey::Deferred);
        self.deferred.clear();
        self.table = RoutingTable::default();
        for p in std::mem::take(&mut self.published).into_keys() {
            self.out.push(Output::RouteWithdraw { prefix: p });
        }
        self.router_id = None;
    }

    fn choose_router_id(&mut self) {
        if self.router_id.is_some() {
            return;
        }
        let Some(cfg) = &self.cfg else { return };
        let rid = cfg.router_id.or_else(|| {
            self.kernel
                .values()
                .flat_map(|k| k.addrs.iter())
                .map(|a| a.addr())
                .filter(|a| !a.is_loopback() && !a.is_unspecified())
                .max()
        });
        if let Some(rid) = rid {
            self.router_id = Some(rid);
            self.log(format!("router ID {rid}"));
        }
    }

    fn kernel_iface(&mut self, info: IfaceInfo) {
        let name = info.name.clone();
        self.kernel.insert(name.clone(), info);
        let had_rid = self.router_id.is_some();
        self.choose_router_id();
        if !had_rid && self.router_id.is_some() {
            let names: Vec<String> = self.ifaces.keys().cloned().collect();
            for n in names {
                self.try_up(&n);
            }
            if self.cfg.is_some() {
                self.set_timer(TimerKey::Sweep, self.now + SWEEP_MS);
            }
            return;
        }
        let Some(i) = self.ifaces.get(&name) else {
            return;
        };
        if i.state != IfState::Down {
            let k = &self.kernel[&name];
            let (primary, extra) = split_addrs(&k.addrs);
            if !k.up || primary != i.addr || k.ifindex != i.ifindex {
                self.iface_down(&name);
            } else if extra != i.extra || k.mtu.min(65535) as u16 != i.mtu {
                let mtu = k.mtu.min(65535) as u16;
                let i = self.ifaces.get_mut(&name).expect("present");
                i.extra = extra;
                i.mtu = mtu;
                self.reconcile_own();
            }
        }
        self.try_up(&name);
    }

    fn try_up(&mut self, name: &str) {
        if self.router_id.is_none() {
            return;
        }
        let Some(k) = self.kernel.get(name) else {
            return;
        };
        let Some(i) = self.ifaces.get_mut(name) else {
            return;
        };
        if i.state != IfState::Down || !k.up {
            return;
        }
        let (primary, extra) = split_addrs(&k.addrs);
        let Some(primary) = primary else { return };
        i.addr = Some(primary);
        i.extra = extra;
        i.ifindex = k.ifindex;
        i.mtu = k.mtu.min(65535) as u16;
        i.dr = Ipv4Addr::UNSPECIFIED;
        i.bdr = Ipv4Addr::UNSPECIFIED;
        let (passive, if_type, ifindex) = (i.cfg.passive, i.cfg.if_type, i.ifindex);
        if passive {
            i.state = match if_type {
                IfType::PointToPoint => IfState::PointToPoint,
                IfType::Broadcast => IfState::DrOther,
            };
        }
        self.log(format!("interface {name} up ({primary})"));
        if passive {
            self.reconcile_own();
        } else {
            self.out.push(Output::Membership {
                ifname: name.to_string(),
                ifindex,
                group: ALL_SPF_ROUTERS,
                join: true,
            });
            self.if_event(name, IfEvent::InterfaceUp);
        }
    }

    fn iface_down(&mut self, name: &str) {
        let Some(i) = self.ifaces.get_mut(name) else {
            return;
        };
        if i.state == IfState::Down {
            return;
        }
        let passive = i.cfg.passive;
        if passive {
            i.state = IfState::Down;
        }
        self.log(format!("interface {name} down"));
        if passive {
            self.reconcile_own();
        } else {
            self.if_event(name, IfEvent::InterfaceDown);
            let ifindex = self.ifaces[name].ifindex;
            self.out.push(Output::Membership {
                ifname: name.to_string(),
                ifindex,
                group: ALL_SPF_ROUTERS,
                join: false,
            });
        }
        if let Some(i) = self.ifaces.get_mut(name) {
            i.addr = None;
        }
    }

    // ----- interface state machine ----------------------------------------------------------

    fn if_event(&mut self, name: &str, ev: IfEvent) {
        let (Some(rid), Some(i)) = (self.router_id, self.ifaces.get(name)) else {
            return;
        };
        let view = IfView {
            if_type: i.cfg.if_type,
            router_id: rid,
            addr: i.prefix().addr(),
            priority: i.cfg.priority,
            dr: i.dr,
            bdr: i.bdr,
            neighbors: i
                .nbrs
                .values()
                .filter(|n| n.state >= NbrState::TwoWay)
                .map(|n| Candidate {
                    router_id: n.router_id,
                    addr: n.addr,
                    priority: n.priority,
                    dr: n.dr,
                    bdr: n.bdr,
                })
                .collect(),
        };
        let Some(t) = interface_event(&view, i.state, ev) else {
            return;
        };
        let old = (i.state, i.dr, i.bdr);
        let i = self.ifaces.get_mut(name).expect("present");
        i.state = t.state;
        i.dr = t.dr;
        i.bdr = t.bdr;
        let (ifindex, joined) = (i.ifindex, i.joined_alld);
        if old.0 != t.state {
            self.log(format!(
                "interface {name}: {:?} -> {:?} (DR {} BDR {})",
                old.0, t.state, t.dr, t.bdr
            ));
        }
        let want_alld = matches!(t.state, IfState::Dr | IfState::Backup);
        if want_alld != joined {
            self.ifaces.get_mut(name).expect("present").joined_alld = want_alld;
            self.out.push(Output::Membership {
                ifname: name.to_string(),
                ifindex,
                group: ALL_D_ROUTERS,
                join: want_alld,
            });
        }
        let mut originate = false;
        for a in &t.actions {
            match a {
                IfAction::StartWaitTimer => {
                    let dead = u64::from(self.ifaces[name].cfg.dead_interval) * 1000;
                    self.set_timer(TimerKey::Wait(name.into()), self.now + dead);
                }
                IfAction::StartHelloTimer => {
                    self.send_hello(name);
                }
                IfAction::StopTimers => {
                    self.cancel_timer(TimerKey::Hello(name.into()));
                    self.cancel_timer(TimerKey::Wait(name.into()));
                    self.cancel_timer(TimerKey::DelayedAck(name.into()));
                    if let Some(i) = self.ifaces.get_mut(name) {
                        i.delayed_acks.clear();
                    }
                }
                IfAction::KillNeighbors => {
                    let rids: Vec<RouterId> = self.ifaces[name].nbrs.keys().copied().collect();
                    for r in rids {
                        self.nbr_event(name, r, NbrEvent::KillNbr);
                    }
                }
                IfAction::AdjOkNeighbors => {
                    let rids: Vec<RouterId> = self.ifaces[name]
                        .nbrs
                        .values()
                        .filter(|n| n.state >= NbrState::TwoWay)
                        .map(|n| n.router_id)
                        .collect();
                    for r in rids {
                        self.nbr_event(name, r, NbrEvent::AdjOk);
                    }
                }
                IfAction::OriginateRouterLsa
                | IfAction::OriginateNetworkLsa
                | IfAction::FlushNetworkLsa => originate = true,
            }
        }
        // A new DR/BDR is announced at once rather than at the next Hello: the other
        // routers converge on the election a Hello interval sooner.
        if t.state != IfState::Down
            && (old.1, old.2) != (t.dr, t.bdr)
            && !t.actions.contains(&IfAction::StartHelloTimer)
        {
            self.send_hello(name);
        }
        if originate {
            self.reconcile_own();
        }
    }

    fn send_hello(&mut self, name: &str) {
        let Some(i) = self.ifaces.get(name) else {
            return;
        };
        if !i.is_active() {
            return;
        }
        let hello = Hello {
            network_mask: i.prefix().netmask(),
            hello_interval: i.cfg.hello_interval,
            options: self.packet_options(i.area),
            priority: i.cfg.priority,
            dead_interval: i.cfg.dead_interval,
            dr: i.dr,
            bdr: i.bdr,
            neighbors: i.nbrs.keys().copied().collect(),
        };
        let next = self.now + u64::from(i.cfg.hello_interval) * 1000;
        self.send(name, ALL_SPF_ROUTERS, Body::Hello(hello));
        self.set_timer(TimerKey::Hello(name.into()), next);
    }

    // ----- neighbor state machine -----------------------------------------------------------

    fn nbr_event(&mut self, name: &str, rid: RouterId, ev: NbrEvent) {
        let Some(i) = self.ifaces.get(name) else {
            return;
        };
        let Some(n) = i.nbrs.get(&rid) else { return };
        let adj = should_form_adjacency(i.cfg.if_type, i.state, n.addr, i.dr, i.bdr);
        let t = match (n.state, ev) {
            (NbrState::Exchange, NbrEvent::ExchangeDone) => exchange_done(n.dd.requests.is_empty()),
            (s, e) => neighbor_event(s, e, adj),
        };
        self.apply_nbr(name, rid, t, ev);
    }

    fn apply_nbr(&mut self, name: &str, rid: RouterId, t: NbrTransition, ev: NbrEvent) {
        let now = self.now;
        let Some(n) = self.ifaces.get_mut(name).and_then(|i| i.nbrs.get_mut(&rid)) else {
            return;
        };
        let old = n.state;
        n.state = t.state;
        if old != t.state {
            n.since = now;
            if t.state == NbrState::Full {
                self.counters.adjacency_up += 1;
            } else if old == NbrState::Full {
                self.counters.adjacency_down += 1;
            }
            self.log(format!(
                "neighbor {rid} on {name}: {old:?} -> {:?} ({ev:?})",
                t.state
            ));
        }
        let mut if_change = false;
        let mut originate = false;
        for a in &t.actions {
            match a {
                NbrAction::RestartInactivityTimer => {
                    let dead = u64::from(self.ifaces[name].cfg.dead_interval) * 1000;
                    self.set_timer(TimerKey::Inactivity(name.into(), rid), now + dead);
                }
                NbrAction::StopTimers => {
                    self.cancel_timer(TimerKey::Inactivity(name.into(), rid));
                    self.cancel_timer(TimerKey::Retransmit(name.into(), rid));
                    self.cancel_timer(TimerKey::Exchange(name.into(), rid));
                }
                NbrAction::SendHello | NbrAction::BuildSummaryList => {}
                NbrAction::StartDbExchange => self.start_db_exchange(name, rid),
                NbrAction::SendLsRequests => self.send_ls_request(name, rid),
                NbrAction::ClearLists => {
                    if let Some(n) = self.nbr_mut(name, rid) {
                        n.rxmt.clear();
                        n.dd.summary.clear();
                        n.dd.requests.clear();
                        n.lsr_sent.clear();
                    }
                }
                NbrAction::InterfaceNeighborChange => if_change = true,
                NbrAction::OriginateLsas => originate = true,
            }
        }
        if t.state == NbrState::Down {
            self.cancel_timer(TimerKey::Inactivity(name.into(), rid));
            self.cancel_timer(TimerKey::Retransmit(name.into(), rid));
            self.cancel_timer(TimerKey::Exchange(name.into(), rid));
            if let Some(i) = self.ifaces.get_mut(name) {
                i.nbrs.remove(&rid);
            }
        }
        if if_change && self.ifaces[name].cfg.if_type == IfType::Broadcast {
            self.if_event(name, IfEvent::NeighborChange);
        }
        if originate {
            self.reconcile_own();
        }
    }

    fn nbr_mut(&mut self, name: &str, rid: RouterId) -> Option<&mut Neighbor> {
        self.ifaces.get_mut(name)?.nbrs.get_mut(&rid)
    }

    fn dd_ctx(&self, i: &Iface, nbr: RouterId) -> DdContext {
        let mtu = if self.cfg.as_ref().is_some_and(|c| c.mtu_ignore) {
            u16::MAX
        } else {
            i.mtu
        };
        let room = i
            .max_payload()
            .saturating_sub(crate::packet::HEADER_LEN + 8);
        DdContext {
            router_id: self.router_id.unwrap_or(Ipv4Addr::UNSPECIFIED),
            nbr_router_id: nbr,
            mtu,
            options: self.packet_options(i.area),
            stub: self.area_stub(i.area),
            max_headers: (room / 20).max(1),
        }
    }

    fn start_db_exchange(&mut self, name: &str, rid: RouterId) {
        // A fresh DD sequence number per exchange; the clock keeps it from repeating across
        // restarts.
        self.dd_seq = self.dd_seq.wrapping_add(1);
        let seq = (self.now as u32).wrapping_mul(7).wrapping_add(self.dd_seq);
        let i = &self.ifaces[name];
        let mut ctx = self.dd_ctx(i, rid);
        if ctx.mtu == u16::MAX {
            ctx.mtu = i.mtu;
        }
        let Some(n) = self.nbr_mut(name, rid) else {
            return;
        };
        n.lsr_sent.clear();
        let dd = n.dd.start(seq, &ctx);
        let dst = self.ifaces[name].nbr_dst(&self.ifaces[name].nbrs[&rid]);
        self.send(name, dst, Body::DbDesc(dd));
        self.arm_exchange(name, rid);
    }

    fn arm_rxmt(&mut self, name: &str, rid: RouterId) {
        let key = TimerKey::Retransmit(name.into(), rid);
        if !self.timers.contains_key(&key) {
            let iv = u64::from(self.ifaces[name].cfg.retransmit_interval) * 1000;
            self.set_timer(key, self.now + iv);
        }
    }

    /// (Re)starts the exchange retransmission timer: a full interval from the packet just
    /// sent.
    fn arm_exchange(&mut self, name: &str, rid: RouterId) {
        let iv = u64::from(self.ifaces[name].cfg.exchange_retransmit_ms.max(1));
        self.set_timer(TimerKey::Exchange(name.into(), rid), self.now + iv);
    }

    /// Whether a neighbor's database exchange still waits for an answer: we drive the DD
    /// exchange (ExStart, or master in Exchange), or LS Requests are unanswered.
    fn exchange_pending(n: &Neighbor) -> bool {
        n.state == NbrState::ExStart
            || (n.state == NbrState::Exchange && n.dd.master)
            || (matches!(n.state, NbrState::Exchange | NbrState::Loading)
                && n.lsr_sent.iter().any(|k| n.dd.requests.contains_key(k)))
    }

    fn send_ls_request(&mut self, name: &str, rid: RouterId) {
        let Some(i) = self.ifaces.get(name) else {
            return;
        };
        let max = (i.max_payload().saturating_sub(crate::packet::HEADER_LEN) / 12).max(1);
        let Some(n) = i.nbrs.get(&rid) else { return };
        let dst = i.nbr_dst(n);
        let req = n.dd.next_request(max);
        let n = self.nbr_mut(name, rid).expect("present");
        match req {
            Some(req) => {
                n.lsr_sent = req.entries.clone();
                self.send(name, dst, Body::LsRequest(req));
                self.arm_exchange(name, rid);
            }
            None => n.lsr_sent.clear(),
        }
    }

    // ----- receiving ------------------------------------------------------------------------

    fn rx_packet(&mut self, name: &str, src: Ipv4Addr, dst: Ipv4Addr, data: &[u8]) {
        let Some(rid) = self.router_id else { return };
        let Some(i) = self.ifaces.get(name).filter(|i| i.is_active()) else {
            self.error("interface-not-ospf");
            return;
        };
        let d = match decode(data, &i.auth) {
            Ok(d) => d,
            Err(e) => {
                let c = e.counter();
                self.error(c);
                self.log(format!("dropped packet from {src} on {name}: {e}"));
                return;
            }
        };
        let p = d.packet;
        if p.router_id == rid {
            self.error("own-packet");
            return;
        }
        if p.area_id != i.area {
            let ours = i.area;
            self.error("wrong-area");
            self.log(format!(
                "dropped packet from {src} on {name}: area {} (ours {ours})",
                p.area_id
            ));
            return;
        }
        if dst == ALL_D_ROUTERS && !matches!(i.state, IfState::Dr | IfState::Backup) {
            self.error("not-dr");
            return;
        }
        if i.cfg.if_type == IfType::Broadcast && !i.prefix().contains(&src) {
            self.error("bad-source");
            return;
        }
        if let Some(seq) = d.crypto_seq {
            let last = i.nbrs.get(&p.router_id).and_then(|n| n.crypto_seq);
            if let Err(e) = check_crypto_seq(last, seq) {
                self.error(e.counter());
                return;
            }
        }
        let t = p.body.packet_type();
        *self.counters.rx.entry(ptype(t)).or_default() += 1;
        let from = p.router_id;
        if let Body::Hello(h) = &p.body {
            self.rx_hello(name, src, from, h);
        } else {
            let Some(n) = self.ifaces[name].nbrs.get(&from) else {
                self.error("unknown-neighbor");
                return;
            };
            let _ = n;
            match p.body {
                Body::DbDesc(dd) => self.rx_dd(name, from, &dd),
                Body::LsRequest(r) => self.rx_lsr(name, from, &r),
                Body::LsUpdate(u) => self.rx_lsu(name, from, u),
                Body::LsAck(a) => self.rx_ack(name, from, &a),
                Body::Hello(_) => {}
            }
        }
        if let (Some(seq), Some(n)) = (d.crypto_seq, self.nbr_mut(name, from)) {
            n.crypto_seq = Some(seq);
        }
    }

    fn rx_hello(&mut self, name: &str, src: Ipv4Addr, from: RouterId, h: &Hello) {
        let rid = self.router_id.expect("running");
        let i = &self.ifaces[name];
        if i.cfg.if_type == IfType::Broadcast && h.network_mask != i.prefix().netmask() {
            self.error("hello-mask-mismatch");
            return;
        }
        if h.hello_interval != i.cfg.hello_interval {
            self.error("hello-interval-mismatch");
            return;
        }
        if h.dead_interval != i.cfg.dead_interval {
            self.error("dead-interval-mismatch");
            return;
        }
        // E-bit: the area's stub-ness; N-bit: NSSA or not (RFC 3101 2.2).
        if (h.options & options::E != 0) == self.area_stub(i.area)
            || (h.options & options::NP != 0) != self.area_nssa(i.area)
        {
            self.error("hello-options-mismatch");
            return;
        }
        let now = self.now;
        let i = self.ifaces.get_mut(name).expect("present");
        let bcast = i.cfg.if_type == IfType::Broadcast;
        let n = i
            .nbrs
            .entry(from)
            .or_insert_with(|| Neighbor::new(from, src, now));
        let (old_pri, old_dr, old_bdr, was_new) =
            (n.priority, n.dr, n.bdr, n.state == NbrState::Down);
        n.addr = src;
        n.priority = h.priority;
        n.dr = h.dr;
        n.bdr = h.bdr;
        n.options = h.options;
        self.nbr_event(name, from, NbrEvent::HelloReceived);
        if was_new {
            // Answer a new neighbor at once instead of at the next Hello: two-way
            // communication is established one Hello interval sooner.
            self.send_hello(name);
        }
        if !h.neighbors.contains(&rid) {
            self.nbr_event(name, from, NbrEvent::OneWay);
            return;
        }
        self.nbr_event(name, from, NbrEvent::TwoWayReceived);
        if !bcast || !self.ifaces[name].nbrs.contains_key(&from) {
            return;
        }
        let waiting = self.ifaces[name].state == IfState::Waiting;
        if !was_new && old_pri != h.priority {
            self.if_event(name, IfEvent::NeighborChange);
        }
        let (dr_now, dr_before) = (h.dr == src, old_dr == src);
        let (bdr_now, bdr_before) = (h.bdr == src, old_bdr == src);
        if dr_now && h.bdr.is_unspecified() && waiting {
            self.if_event(name, IfEvent::BackupSeen);
        } else if dr_now != dr_before {
            self.if_event(name, IfEvent::NeighborChange);
        }
        if bdr_now && waiting {
            self.if_event(name, IfEvent::BackupSeen);
        } else if bdr_now != bdr_before {
            self.if_event(name, IfEvent::NeighborChange);
        }
    }

    fn rx_dd(&mut self, name: &str, from: RouterId, dd: &DbDesc) {
        for _ in 0..2 {
            let i = &self.ifaces[name];
            let Some(n) = i.nbrs.get(&from) else { return };
            let ctx = self.dd_ctx(i, from);
            let view = AreaDbView {
                db: &self.lsdb,
                area: i.area,
                stub: self.area_stub(i.area),
                now: self.now,
            };
            let state = n.state;
            let dst = i.nbr_dst(n);
            let mut exch = n.dd.clone();
            let mut res = exch.receive(state, dd, &ctx, &view);
            if ctx.mtu == u16::MAX {
                // mtu-ignore: accept any MTU, but still announce ours.
                for d in res.send.iter_mut().chain(exch.last_tx.iter_mut()) {
                    d.mtu = i.mtu;
                }
            }
            self.nbr_mut(name, from).expect("present").dd = exch;
            if res.reprocess {
                self.nbr_event(name, from, NbrEvent::TwoWayReceived);
                if self.ifaces[name]
                    .nbrs
                    .get(&from)
                    .is_some_and(|n| n.state == NbrState::ExStart)
                {
                    continue;
                }
                return;
            }
            if let Some(r) = res.dropped {
                self.error(r);
            }
            let sent = res.send.is_some();
            if let Some(out) = res.send {
                self.send(name, dst, Body::DbDesc(out));
            }
            for ev in res.events {
                self.nbr_event(name, from, ev);
            }
            if let Some(n) = self.ifaces[name].nbrs.get(&from) {
                let master = n.dd.master;
                if !Self::exchange_pending(n) {
                    self.cancel_timer(TimerKey::Exchange(name.into(), from));
                } else if sent && master {
                    // The master's next DD: its retransmission counts from now.
                    self.arm_exchange(name, from);
                }
            }
            return;
        }
    }

    fn rx_lsr(&mut self, name: &str, from: RouterId, req: &LsRequest) {
        let i = &self.ifaces[name];
        let n = &i.nbrs[&from];
        if n.state < NbrState::Exchange {
            self.error("lsr-wrong-state");
            return;
        }
        let area = i.area;
        let delay = i.cfg.transmit_delay;
        let dst = i.nbr_dst(n);
        let answer = answer_request(req, |k| {
            self.lsa_for_tx(Scope::of(area, k.ls_type), k, delay)
        });
        match answer {
            Ok(lsas) => self.send_lsus(name, dst, lsas),
            Err(ev) => {
                self.error("bad-ls-request");
                self.nbr_event(name, from, ev);
            }
        }
    }

    fn flood_ifaces(&self, key: &LsaKey) -> Vec<FloodIface> {
        self.ifaces
            .values()
            .filter(|i| i.is_active())
            .map(|i| FloodIface {
                ifindex: i.ifindex,
                area: i.area,
                stub: self.area_stub(i.area),
                nssa: self.areas.get(&i.area).is_some_and(|a| a.nssa),
                if_type: i.cfg.if_type,
                state: i.state,
                dr: i.dr,
                bdr: i.bdr,
                neighbors: i
                    .nbrs
                    .values()
                    .map(|n| FloodNbr {
                        router_id: n.router_id,
                        addr: n.addr,
                        state: n.state,
                        request: n.dd.requests.get(key).copied(),
                    })
                    .collect(),
            })
            .collect()
    }

    fn own_addrs(&self) -> Vec<Ipv4Addr> {
        self.ifaces
            .values()
            .filter_map(|i| i.addr.map(|a| a.addr()))
            .collect()
    }

    fn rx_lsu(&mut self, name: &str, from: RouterId, u: LsUpdate) {
        let rid = self.router_id.expect("running");
        let i = &self.ifaces[name];
        let n = &i.nbrs[&from];
        if n.state < NbrState::Exchange {
            self.error("lsu-wrong-state");
            return;
        }
        let (area, ifindex, from_addr, dst) = (i.area, i.ifindex, n.addr, i.nbr_dst(n));
        for e in &u.rejected {
            self.error(e.counter());
        }
        let own_addrs = self.own_addrs();
        let min_arrival = self
            .cfg
            .as_ref()
            .map_or(crate::config::MIN_LS_ARRIVAL_DEFAULT_MS, |c| {
                c.throttle.min_ls_arrival
            });
        let mut direct_acks: Vec<LsaHeader> = Vec::new();
        let mut delayed: Vec<LsaHeader> = Vec::new();
        let mut send_back: Vec<Lsa> = Vec::new();
        for lsa in u.lsas {
            let key = lsa.key();
            let scope = Scope::of(area, key.ls_type);
            let ifaces = self.flood_ifaces(&key);
            let Some(nbr) = self.ifaces[name].nbrs.get(&from) else {
                return;
            };
            let ctx = ReceiveContext {
                router_id: rid,
                own_addrs: &own_addrs,
                ifaces: &ifaces,
                ifindex,
                from,
                from_addr,
                db_copy: self.lsdb.get(scope, &key).map(|e| DbCopy {
                    header: e.header(self.now),
                    within_min_ls_arrival: e.from_flooding
                        && self.now.saturating_sub(e.installed_at) < min_arrival,
                }),
                any_nbr_exchanging: self.any_nbr_exchanging(),
                on_sender_retransmission_list: nbr.rxmt.contains_key(&key),
                on_sender_request_list: nbr.dd.requests.contains_key(&key),
            };
            match receive_lsa(&ctx, &lsa) {
                Receipt::Discard("min-ls-arrival") => {
                    self.defer_lsa(name, from, scope, lsa, min_arrival)
                }
                Receipt::Discard(r) => self.error(r),
                Receipt::AckAndDiscard => direct_acks.push(lsa.header),
                Receipt::BadLsReq => {
                    self.error("bad-ls-request");
                    self.nbr_event(name, from, NbrEvent::BadLsReq);
                    return;
                }
                Receipt::Duplicate { implied_ack, ack } => {
                    if implied_ack {
                        if let Some(n) = self.nbr_mut(name, from) {
                            n.rxmt.remove(&key);
                        }
                    }
                    match ack {
                        Ack::Direct => direct_acks.push(lsa.header),
                        Ack::Delayed => delayed.push(lsa.header),
                        Ack::None => {}
                    }
                }
                Receipt::SendOurs => {
                    let delay = self.ifaces[name].cfg.transmit_delay;
                    if let Some(l) = self.lsa_for_tx(scope, &key, delay) {
                        send_back.push(l);
                    }
                }
                Receipt::Install {
                    flood,
                    ack,
                    self_originated,
                    ..
                } => {
                    self.counters.lsa_installed += 1;
                    if let Some(n) = self.nbr_mut(name, from) {
                        n.dd.requests.remove(&key);
                    }
                    self.remove_from_rxmt(scope, &key);
                    if self_originated {
                        // 13.4: a newer instance of one of ours is out there. Take its
                        // sequence number and answer with a newer instance, or flush it.
                        let header = lsa.header;
                        let changed = self.lsdb.install(scope, lsa, self.now, false);
                        if changed.contents_changed {
                            self.spf_event();
                        }
                        direct_acks.push(header);
                        if header.is_maxage() {
                            self.reconcile_own();
                        } else {
                            self.originate_now(scope, key, true);
                        }
                        continue;
                    }
                    let header = lsa.header;
                    let changed = self.lsdb.install(scope, lsa, self.now, true);
                    if changed.contents_changed {
                        self.spf_event();
                    }
                    self.apply_flood(scope, &key, &flood);
                    match ack {
                        Ack::Direct => direct_acks.push(header),
                        Ack::Delayed => delayed.push(header),
                        Ack::None => {}
                    }
                }
            }
        }
        if !send_back.is_empty() {
            self.send_lsus(name, dst, send_back);
        }
        if !direct_acks.is_empty() {
            self.send_acks(name, dst, direct_acks);
        }
        if !delayed.is_empty() {
            if let Some(i) = self.ifaces.get_mut(name) {
                i.delayed_acks.extend(delayed);
            }
            let key = TimerKey::DelayedAck(name.into());
            if !self.timers.contains_key(&key) {
                self.set_timer(key, self.now + ACK_DELAY_MS);
            }
        }
        self.check_loading(name, from);
    }

    /// 13 (5a): a newer instance arrived within MinLSArrival of the database copy. The RFC
    /// drops it unacknowledged, so the sender retransmits it RxmtInterval (seconds) later;
    /// here it is kept and processed when MinLSArrival ends, as if it arrived then: installs
    /// stay rate-limited, but an instance overtaken on one path by an older one from another
    /// (routine at start, when every router originates twice in quick succession) costs
    /// milliseconds, not RxmtInterval.
    fn defer_lsa(&mut self, name: &str, from: RouterId, scope: Scope, lsa: Lsa, min_arrival: u64) {
        let key = lsa.key();
        let Some(due) = self
            .lsdb
            .get(scope, &key)
            .map(|e| e.installed_at.saturating_add(min_arrival))
        else {
            return;
        };
        self.counters.lsa_deferred += 1;
        let slot = (name.to_string(), from, key);
        let keep_old = self
            .deferred
            .get(&slot)
            .is_some_and(|(_, old)| compare(&old.header, &lsa.header) != Recency::Older);
        if !keep_old {
            self.deferred.insert(slot, (due, lsa));
        }
        if let Some(at) = self.deferred.values().map(|(d, _)| *d).min() {
            self.set_timer(TimerKey::Deferred, at);
        }
    }

    /// The deferred LSAs that are due, received again from their senders.
    fn process_deferred(&mut self) {
        let now = self.now;
        let due: Vec<(String, RouterId, LsaKey)> = self
            .deferred
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        let mut batches: BTreeMap<(String, RouterId), Vec<Lsa>> = BTreeMap::new();
        for k in due {
            if let Some((_, l)) = self.deferred.remove(&k) {
                batches.entry((k.0, k.1)).or_default().push(l);
            }
        }
        for ((name, from), lsas) in batches {
            let live = self
                .ifaces
                .get(&name)
                .filter(|i| i.is_active())
                .and_then(|i| i.nbrs.get(&from))
                .is_some_and(|n| n.state >= NbrState::Exchange);
            if live {
                self.rx_lsu(
                    &name,
                    from,
                    LsUpdate {
                        lsas,
                        rejected: vec![],
                    },
                );
            }
        }
        if let Some(at) = self.deferred.values().map(|(d, _)| *d).min() {
            self.set_timer(TimerKey::Deferred, at);
        }
    }

    /// After LSAs arrived: the next request, or LoadingDone.
    fn check_loading(&mut self, name: &str, rid: RouterId) {
        let Some(n) = self.ifaces.get(name).and_then(|i| i.nbrs.get(&rid)) else {
            return;
        };
        if !matches!(n.state, NbrState::Exchange | NbrState::Loading) {
            return;
        }
        let outstanding = n.lsr_sent.iter().any(|k| n.dd.requests.contains_key(k));
        if outstanding {
            return;
        }
        if n.dd.requests.is_empty() {
            let state = n.state;
            if let Some(n) = self.nbr_mut(name, rid) {
                n.lsr_sent.clear();
            }
            if state == NbrState::Loading {
                self.nbr_event(name, rid, NbrEvent::LoadingDone);
            }
        } else if n.state == NbrState::Loading || !n.lsr_sent.is_empty() {
            self.send_ls_request(name, rid);
        }
    }

    /// Removes `key` from the retransmission lists of the neighbors in its flooding scope
    /// (an ABR's router LSAs of different areas share one key).
    fn remove_from_rxmt(&mut self, scope: Scope, key: &LsaKey) {
        for i in self
            .ifaces
            .values_mut()
            .filter(|i| scope == Scope::As || scope == Scope::Area(i.area))
        {
            for n in i.nbrs.values_mut() {
                n.rxmt.remove(key);
            }
        }
    }

    /// Applies a flooding plan: retransmission lists, request lists, packets out.
    fn apply_flood(&mut self, scope: Scope, key: &LsaKey, plan: &crate::flooding::FloodPlan) {
        let Some(lsa) = self.lsdb.get(scope, key).map(|e| e.lsa.clone()) else {
            return;
        };
        let mut check = Vec::new();
        for (ifindex, rid) in &plan.remove_request {
            let Some(name) = self.ifname_by_index(*ifindex) else {
                continue;
            };
            if let Some(n) = self.nbr_mut(&name, *rid) {
                n.dd.requests.remove(key);
            }
            check.push((name, *rid));
        }
        for (ifindex, rid) in &plan.retransmit {
            let Some(name) = self.ifname_by_index(*ifindex) else {
                continue;
            };
            if let Some(n) = self.nbr_mut(&name, *rid) {
                n.rxmt.insert(*key, lsa.clone());
                self.arm_rxmt(&name, *rid);
            }
        }
        for (ifindex, dest) in &plan.out {
            let Some(name) = self.ifname_by_index(*ifindex) else {
                continue;
            };
            let dst = match dest {
                Dest::AllSpfRouters => ALL_SPF_ROUTERS,
                Dest::AllDRouters => ALL_D_ROUTERS,
            };
            self.pending_flood
                .entry((name, dst))
                .or_default()
                .insert((scope, *key));
        }
        for (name, rid) in check {
            self.check_loading(&name, rid);
        }
    }

    fn rx_ack(&mut self, name: &str, from: RouterId, a: &LsAck) {
        let area = self.ifaces[name].area;
        let Some(n) = self.nbr_mut(name, from) else {
            return;
        };
        if n.state < NbrState::Exchange {
            self.error("ack-wrong-state");
            return;
        }
        // An ack for another instance (typically an older one, overtaken by a newer
        // origination) is not an ack for what the list holds (13.7).
        for h in &a.lsa_headers {
            if n.rxmt
                .get(&h.key())
                .is_some_and(|l| compare(h, &l.header) == Recency::Same)
            {
                n.rxmt.remove(&h.key());
            }
        }
        let _ = area;
        if n.rxmt.is_empty() {
            self.cancel_timer(TimerKey::Retransmit(name.into(), from));
        }
    }

    // ----- timers ---------------------------------------------------------------------------

    fn timer_fired(&mut self, key: TimerKey) {
        match key {
            TimerKey::Hello(name) => self.send_hello(&name),
            TimerKey::Wait(name) => self.if_event(&name, IfEvent::WaitTimer),
            TimerKey::Inactivity(name, rid) => {
                self.nbr_event(&name, rid, NbrEvent::InactivityTimer)
            }
            TimerKey::Retransmit(name, rid) => self.retransmit(&name, rid),
            TimerKey::Exchange(name, rid) => self.retransmit_exchange(&name, rid),
            TimerKey::DelayedAck(name) => {
                let Some(i) = self.ifaces.get_mut(&name) else {
                    return;
                };
                let acks = std::mem::take(&mut i.delayed_acks);
                let dst = match (i.cfg.if_type, i.state) {
                    (IfType::Broadcast, IfState::DrOther) => ALL_D_ROUTERS,
                    _ => ALL_SPF_ROUTERS,
                };
                if !acks.is_empty() && i.is_active() {
                    self.send_acks(&name, dst, acks);
                }
            }
            TimerKey::Spf => {
                if self.spf_throttle.poll(self.now) {
                    self.run_spf();
                }
                if let Some(at) = self.spf_throttle.next_deadline() {
                    self.set_timer(TimerKey::Spf, at);
                }
            }
            TimerKey::LsaThrottle(scope, key) => {
                let now = self.now;
                let Some(t) = self.own_throttles.get_mut(&(scope, key)) else {
                    return;
                };
                let run = t.poll(now);
                let next = t.next_deadline();
                let quiet = t.state() == ThrottleState::Quiet;
                if run {
                    self.originate_now(scope, key, false);
                }
                match next {
                    Some(at) => self.set_timer(TimerKey::LsaThrottle(scope, key), at),
                    None if quiet => {
                        self.own_throttles.remove(&(scope, key));
                    }
                    None => {}
                }
            }
            TimerKey::Deferred => self.process_deferred(),
            TimerKey::Sweep => {
                self.sweep();
                if self.router_id.is_some() {
                    self.set_timer(TimerKey::Sweep, self.now + SWEEP_MS);
                }
            }
        }
    }

    fn retransmit(&mut self, name: &str, rid: RouterId) {
        let Some(i) = self.ifaces.get(name) else {
            return;
        };
        let Some(n) = i.nbrs.get(&rid) else { return };
        let dst = i.nbr_dst(n);
        let delay = i.cfg.transmit_delay;
        let area = i.area;
        let mut pending = false;
        if n.state >= NbrState::Exchange && !n.rxmt.is_empty() {
            let lsas: Vec<Lsa> = n
                .rxmt
                .iter()
                .map(|(k, l)| {
                    let scope = Scope::of(area, k.ls_type);
                    match self.lsdb.get(scope, k) {
                        Some(e) if compare(&e.lsa.header, &l.header) == Recency::Same => self
                            .lsa_for_tx(scope, k, delay)
                            .unwrap_or_else(|| (**l).clone()),
                        _ => (**l).clone(),
                    }
                })
                .collect();
            self.counters.lsa_retransmitted += lsas.len() as u64;
            self.send_lsus(name, dst, lsas);
            pending = true;
        }
        if pending {
            self.arm_rxmt(name, rid);
        }
    }

    /// The exchange timer fired: the last DD again while we drive the exchange, and the
    /// LS Requests still unanswered.
    fn retransmit_exchange(&mut self, name: &str, rid: RouterId) {
        let Some(i) = self.ifaces.get(name) else {
            return;
        };
        let Some(n) = i.nbrs.get(&rid) else { return };
        if !Self::exchange_pending(n) {
            return;
        }
        let dst = i.nbr_dst(n);
        if n.state == NbrState::ExStart || (n.state == NbrState::Exchange && n.dd.master) {
            if let Some(dd) = n.dd.last_tx.clone() {
                self.counters.exchange_retransmitted += 1;
                self.send(name, dst, Body::DbDesc(dd));
            }
        }
        let n = &self.ifaces[name].nbrs[&rid];
        let entries: Vec<LsaKey> = n
            .lsr_sent
            .iter()
            .filter(|k| n.dd.requests.contains_key(k))
            .copied()
            .collect();
        if matches!(n.state, NbrState::Exchange | NbrState::Loading) && !entries.is_empty() {
            self.counters.exchange_retransmitted += 1;
            self.send(name, dst, Body::LsRequest(LsRequest { entries }));
        }
        self.arm_exchange(name, rid);
    }

    // ----- the link-state database and our own LSAs -----------------------------------------

    fn spf_event(&mut self) {
        self.spf_throttle.event(self.now);
        if let Some(at) = self.spf_throttle.next_deadline() {
            self.set_timer(TimerKey::Spf, at);
        }
    }

    fn active_areas(&self) -> BTreeSet<AreaId> {
        self.ifaces
            .values()
            .filter(|i| i.state != IfState::Down)
            .map(|i| i.area)
            .collect()
    }

    fn orig_ifaces(&self, area: AreaId) -> Vec<OrigIface> {
        let mut v = Vec::new();
        for i in self.ifaces.values().filter(|i| i.area == area) {
            let Some(prefix) = i.addr else { continue };
            let full: Vec<FullNbr> = i
                .nbrs
                .values()
                .filter(|n| n.state == NbrState::Full)
                .map(|n| FullNbr {
                    router_id: n.router_id,
                    addr: n.addr,
                })
                .collect();
            let base = OrigIface {
                ifindex: i.ifindex,
                if_type: i.cfg.if_type,
                state: i.state,
                prefix,
                cost: i.cfg.cost,
                passive: i.cfg.passive,
                dr: i.dr,
                full,
            };
            if i.cfg.passive && i.state != IfState::Down {
                for e in &i.extra {
                    v.push(OrigIface {
                        prefix: *e,
                        full: vec![],
                        ..base.clone()
                    });
                }
            }
            v.push(base);
        }
        v
    }

    /// Every LSA we should be originating now.
    fn desired_own(&self) -> Desired {
        let mut d = Desired::new();
        let Some(rid) = self.router_id else { return d };
        let areas = self.active_areas();
        let abr = areas.len() > 1;
        let redistributed = self.external_lsas();
        // AS-external LSAs need an area that carries them (not stub or NSSA, 3.6): our
        // redistributed routes, and as an NSSA translator the NSSAs' type-7s.
        let normal = areas.iter().any(|&a| !self.area_stub(a));
        let mut type5 = if normal {
            redistributed.clone()
        } else {
            vec![]
        };
        if normal && abr {
            type5.extend(self.translated_type5(&areas, &redistributed));
        }
        let asbr5 = !type5.is_empty();
        for (lsid, body) in type5 {
            let key = LsaKey {
                ls_type: LSA_EXTERNAL,
                lsid,
                adv_router: rid,
            };
            d.insert((Scope::As, key), (options::E, LsaBody::External(body)));
        }
        for &area in &areas {
            let stub = self.area_stub(area);
            let nssa = self.area_nssa(area);
            let cfg = self.areas.get(&area).cloned().unwrap_or_default();
            let opts = area_options(stub);
            let ifs = self.orig_ifaces(area);
            let type7 = if nssa {
                self.type7_lsas(rid, area, abr, &cfg, &redistributed)
            } else {
                vec![]
            };
            // E: an ASBR as seen from this area: type-5s outside, any type-7 (the default
            // included: routers only use externals from ASBRs, 16.4 (3)) in an NSSA.
            let asbr = if nssa {
                !type7.is_empty()
            } else {
                asbr5 && !stub
            };
            let mut body = router_lsa_body(&ifs, abr, asbr);
            if nssa && abr && cfg.nssa_translator == NssaTranslator::Always {
                body.flags |= router_flags::NT;
            }
            let key = LsaKey {
                ls_type: LSA_ROUTER,
                lsid: rid,
                adv_router: rid,
            };
            d.insert((Scope::Area(area), key), (opts, LsaBody::Router(body)));
            for i in &ifs {
                if let Some(n) = network_lsa_body(rid, i) {
                    let key = LsaKey {
                        ls_type: LSA_NETWORK,
                        lsid: i.prefix.addr(),
                        adv_router: rid,
                    };
                    d.insert((Scope::Area(area), key), (opts, LsaBody::Network(n)));
                }
            }
            for (key, opts, body) in type7 {
                d.insert((Scope::Area(area), key), (opts, LsaBody::External(body)));
            }
        }
        if abr {
            let kinds: Vec<AreaKind> = areas
                .iter()
                .map(|&a| {
                    let c = self.areas.get(&a).cloned().unwrap_or_default();
                    AreaKind {
                        area: a,
                        stub: c.stub || c.nssa,
                        nssa: c.nssa,
                        no_summary: c.no_summary,
                        default_cost: c.default_cost,
                    }
                })
                .collect();
            for (area, specs) in abr_summaries(&self.table, &kinds) {
                let opts = area_options(self.area_stub(area));
                for s in specs {
                    let key = LsaKey {
                        ls_type: s.ls_type,
                        lsid: s.lsid,
                        adv_router: rid,
                    };
                    let body = LsaBody::Summary(SummaryLsa {
                        mask: s.mask,
                        metric: s.metric,
                        tos: vec![],
                    });
                    d.insert((Scope::Area(area), key), (opts, body));
                }
            }
        }
        d
    }

    /// Our type-7 LSAs in an NSSA (RFC 3101 2.4, 2.7): the redistributed routes, with the
    /// P-bit and one of our addresses in the NSSA as forwarding address unless we are a
    /// border router (which announces them as type-5 itself); as a border router, the
    /// type-7 default unless the NSSA is no-summary (which gets a type-3 default).
    fn type7_lsas(
        &self,
        rid: RouterId,
        area: AreaId,
        abr: bool,
        cfg: &AreaConfig,
        redistributed: &[(Ipv4Addr, ExternalLsa)],
    ) -> Vec<(LsaKey, u8, ExternalLsa)> {
        let key = |lsid| LsaKey {
            ls_type: LSA_NSSA,
            lsid,
            adv_router: rid,
        };
        let fwd = self.nssa_forwarding_address(area);
        let mut v = Vec::new();
        for (lsid, e) in redistributed {
            let mut body = e.clone();
            let opts = match fwd {
                Some(f) if !abr => {
                    body.forwarding = f;
                    options::NP
                }
                _ => 0,
            };
            v.push((key(*lsid), opts, body));
        }
        if abr && !cfg.no_summary {
            v.retain(|(k, _, _)| !k.lsid.is_unspecified());
            v.push((
                key(Ipv4Addr::UNSPECIFIED),
                0,
                nssa_default(cfg.default_cost),
            ));
        }
        v
    }

    /// The forwarding address of our P-bit type-7 LSAs in an NSSA (RFC 3101 2.3): a passive
    /// interface's address (a loopback stays up whatever link fails), else an active one.
    fn nssa_forwarding_address(&self, area: AreaId) -> Option<Ipv4Addr> {
        let up = || {
            self.ifaces
                .values()
                .filter(move |i| i.area == area && i.state != IfState::Down)
        };
        up().filter(|i| i.cfg.passive)
            .chain(up().filter(|i| !i.cfg.passive))
            .find_map(|i| i.addr.map(|a| a.addr()))
    }

    /// As an NSSA border router: the type-5 LSAs translating the type-7s of each NSSA we
    /// are the translator of (RFC 3101 3.1, 3.2). Prefixes we announce ourselves are left
    /// out; link state IDs avoid those of `ours`.
    fn translated_type5(
        &self,
        areas: &BTreeSet<AreaId>,
        ours: &[(Ipv4Addr, ExternalLsa)],
    ) -> Vec<(Ipv4Addr, ExternalLsa)> {
        let Some(rid) = self.router_id else {
            return vec![];
        };
        let mut used: BTreeSet<Ipv4Addr> = ours.iter().map(|(l, _)| *l).collect();
        let our_prefixes: BTreeSet<Ipv4Net> = ours
            .iter()
            .filter_map(|(l, e)| Ipv4Net::with_netmask(*l, e.mask).ok().map(|p| p.trunc()))
            .collect();
        let mut chosen: BTreeMap<Ipv4Net, ExternalLsa> = BTreeMap::new();
        for &a in areas.iter().filter(|&&a| self.area_nssa(a)) {
            let always = self
                .areas
                .get(&a)
                .is_some_and(|c| c.nssa_translator == NssaTranslator::Always);
            let lsas: Vec<&Lsa> = self.lsdb.area(a).map(|(_, e)| &*e.lsa).collect();
            if !nssa_translator(rid, a, always, &self.table, &lsas) {
                continue;
            }
            for (p, e) in nssa_translations(rid, a, &self.table, &lsas) {
                if !our_prefixes.contains(&p) {
                    chosen.entry(p).or_insert(e);
                }
            }
        }
        let mut v = Vec::new();
        for (p, e) in chosen {
            let lsid = if used.insert(p.addr()) {
                p.addr()
            } else if p.prefix_len() < 32 && used.insert(p.broadcast()) {
                p.broadcast()
            } else {
                continue;
            };
            v.push((lsid, e));
        }
        v
    }

    /// The AS-external LSAs (link state ID, body) for the redistributed routes whose
    /// protocol is configured under `redistribute` (12.4.4). Two prefixes with the same
    /// address take the host bits for the longer one's link state ID (appendix E).
    fn external_lsas(&self) -> Vec<(Ipv4Addr, ExternalLsa)> {
        let Some(cfg) = &self.cfg else { return vec![] };
        let r = &cfg.redistribute;
        let mut used = BTreeSet::new();
        let mut v = Vec::new();
        for (p, proto) in &self.redistributed {
            let target = match proto.as_str() {
                "static" => r.static_routes,
                "bgp" => r.bgp,
                "connected" => r.connected,
                _ => None,
            };
            let Some(t) = target else { continue };
            // Connected networks of OSPF interfaces are already in router LSAs.
            if proto == "connected"
                && self
                    .ifaces
                    .values()
                    .any(|i| i.addr.map(|a| a.trunc()) == Some(*p))
            {
                continue;
            }
            let lsid = if used.insert(p.addr()) {
                p.addr()
            } else if p.prefix_len() < 32 && used.insert(p.broadcast()) {
                p.broadcast()
            } else {
                continue;
            };
            v.push((
                lsid,
                ExternalLsa {
                    mask: p.netmask(),
                    type2: t.metric_type != 1,
                    metric: t.metric.min(LS_INFINITY - 1),
                    forwarding: Ipv4Addr::UNSPECIFIED,
                    tag: t.tag,
                    tos: vec![],
                },
            ));
        }
        v
    }

    fn own_in_db(&self) -> Vec<(Scope, LsaKey, bool)> {
        let Some(rid) = self.router_id else {
            return vec![];
        };
        let mut v = Vec::new();
        for a in self.lsdb.area_ids() {
            for (k, e) in self.lsdb.area(a) {
                if k.adv_router == rid {
                    v.push((Scope::Area(a), *k, e.lsa.header.is_maxage()));
                }
            }
        }
        for (k, e) in self.lsdb.externals() {
            if k.adv_router == rid {
                v.push((Scope::As, *k, e.lsa.header.is_maxage()));
            }
        }
        v
    }

    /// Brings the database's own LSAs in line with what we should originate: changes go
    /// through each LSA's throttle, LSAs no longer wanted are flushed at once.
    fn reconcile_own(&mut self) {
        let desired = self.desired_own();
        for ((scope, key), (opts, body)) in &desired {
            let same = self.lsdb.get(*scope, key).is_some_and(|e| {
                !e.lsa.header.is_maxage() && e.lsa.header.options == *opts && e.lsa.body == *body
            });
            if !same {
                self.lsa_throttle_event(*scope, *key);
            }
        }
        for (scope, key, maxage) in self.own_in_db() {
            if !maxage && !desired.contains_key(&(scope, key)) {
                self.flush_own(scope, key);
            }
        }
    }

    fn lsa_throttle_event(&mut self, scope: Scope, key: LsaKey) {
        let params = self
            .cfg
            .as_ref()
            .map_or(crate::throttle::ThrottleParams::LSA_DEFAULT, |c| {
                c.throttle.lsa
            });
        let now = self.now;
        let t = self
            .own_throttles
            .entry((scope, key))
            .or_insert_with(|| Throttle::new(params));
        if t.scheduled().is_some() {
            return;
        }
        t.event(now);
        let run = t.poll(now);
        let next = t.next_deadline();
        if run {
            self.originate_now(scope, key, false);
        }
        if let Some(at) = next {
            self.set_timer(TimerKey::LsaThrottle(scope, key), at);
        }
    }

    /// Originates the current instance of one of our LSAs (or flushes it if no longer
    /// wanted). `refresh`: a new instance even if the contents are unchanged.
    fn originate_now(&mut self, scope: Scope, key: LsaKey, refresh: bool) {
        let Some(rid) = self.router_id else { return };
        let desired = self.desired_own();
        let Some((opts, body)) = desired.get(&(scope, key)).cloned() else {
            self.flush_own(scope, key);
            return;
        };
        let current = self.lsdb.get(scope, &key).map(|e| e.lsa.clone());
        match originate(
            current.as_deref(),
            opts,
            key.ls_type,
            key.lsid,
            rid,
            body,
            refresh,
        ) {
            Origination::Unchanged => {}
            Origination::Originate(lsa) => {
                self.counters.lsa_originated += 1;
                self.log(format!(
                    "originating LSA type {} {} seq {:#x}",
                    key.ls_type, key.lsid, lsa.header.seq
                ));
                self.install_own(scope, lsa);
            }
            Origination::FlushFirst => self.flush_own(scope, key),
        }
    }

    fn install_own(&mut self, scope: Scope, lsa: Lsa) {
        let key = lsa.key();
        let area = match scope {
            Scope::Area(a) => a,
            Scope::As => BACKBONE,
        };
        let header = lsa.header;
        self.remove_from_rxmt(scope, &key);
        let changed = self.lsdb.install(scope, lsa, self.now, false);
        if changed.contents_changed {
            self.spf_event();
        }
        let ifaces = self.flood_ifaces(&key);
        let plan = flood_plan(&ifaces, area, &header, None);
        self.apply_flood(scope, &key, &plan);
    }

    fn flush_own(&mut self, scope: Scope, key: LsaKey) {
        if self
            .lsdb
            .get(scope, &key)
            .is_none_or(|e| e.lsa.header.is_maxage())
        {
            return;
        }
        self.counters.lsa_originated += 1;
        self.log(format!(
            "flushing own LSA type {} {} ({:?})",
            key.ls_type, key.lsid, scope
        ));
        self.flush(scope, key);
    }

    /// Premature aging (14.1) or natural MaxAge: set MaxAge and flood.
    fn flush(&mut self, scope: Scope, key: LsaKey) {
        let area = match scope {
            Scope::Area(a) => a,
            Scope::As => BACKBONE,
        };
        self.remove_from_rxmt(scope, &key);
        let Some(l) = self.lsdb.flush(scope, &key, self.now) else {
            return;
        };
        self.spf_event();
        let ifaces = self.flood_ifaces(&key);
        let plan = flood_plan(&ifaces, area, &l.header, None);
        self.apply_flood(scope, &key, &plan);
    }

    fn sweep(&mut self) {
        let now = self.now;
        // LSAs that aged out naturally are flooded at MaxAge (14).
        for (scope, key) in self.lsdb.maxaged(now) {
            if self
                .lsdb
                .get(scope, &key)
                .is_some_and(|e| !e.lsa.header.is_maxage())
            {
                self.flush(scope, key);
            }
        }
        // MaxAge LSAs leave once acknowledged everywhere.
        let exchanging = self.any_nbr_exchanging();
        let mut maxage: Vec<(Scope, LsaKey)> = Vec::new();
        for a in self.lsdb.area_ids() {
            for (k, e) in self.lsdb.area(a) {
                if e.lsa.header.is_maxage() {
                    maxage.push((Scope::Area(a), *k));
                }
            }
        }
        for (k, e) in self.lsdb.externals() {
            if e.lsa.header.is_maxage() {
                maxage.push((Scope::As, *k));
            }
        }
        let mut removed = false;
        if !exchanging {
            for (s, k) in maxage {
                if !self.on_any_rxmt(&k) {
                    self.lsdb.remove(s, &k);
                    removed = true;
                }
            }
        }
        // LSRefreshTime.
        let refresh: Vec<(Scope, LsaKey)> = self
            .own_in_db()
            .into_iter()
            .filter(|(s, k, maxage)| {
                !maxage
                    && self
                        .lsdb
                        .get(*s, k)
                        .is_some_and(|e| e.age(now) >= LS_REFRESH_TIME)
            })
            .map(|(s, k, _)| (s, k))
            .collect();
        for (s, k) in refresh {
            self.originate_now(s, k, true);
        }
        if removed {
            self.reconcile_own();
        }
    }

    // ----- routes ---------------------------------------------------------------------------

    fn run_spf(&mut self) {
        let Some(rid) = self.router_id else { return };
        let started = std::time::Instant::now();
        let areas = self.active_areas();
        let inputs: Vec<AreaInput<'_>> = areas
            .iter()
            .map(|&a| AreaInput {
                area: a,
                nssa: self.areas.get(&a).is_some_and(|c| c.nssa),
                lsas: self.lsdb.area(a).map(|(_, e)| &*e.lsa).collect(),
                ifaces: self
                    .ifaces
                    .values()
                    .filter(|i| i.area == a && i.state != IfState::Down)
                    .flat_map(|i| {
                        i.addr
                            .into_iter()
                            .chain(i.extra.clone())
                            .map(|p| LocalIface {
                                ifindex: i.ifindex,
                                prefix: p,
                            })
                    })
                    .collect(),
            })
            .collect();
        let table = compute(rid, &inputs, self.lsdb.externals().map(|(_, e)| &*e.lsa));
        drop(inputs);
        let elapsed = started.elapsed().as_micros() as u64;
        self.table = table;
        let changes = self.publish_routes();
        self.counters.spf_runs += 1;
        self.counters.spf_time_us += elapsed;
        self.spf_log.push_back(SpfRun {
            at: self.now,
            duration_us: elapsed,
            routes: self.table.networks.len(),
            changes,
        });
        while self.spf_log.len() > SPF_LOG_LEN {
            self.spf_log.pop_front();
        }
        // Summary-LSAs follow the routing table.
        if self.active_areas().len() > 1 {
            self.reconcile_own();
        }
    }

    fn connected(&self, p: &Ipv4Net) -> bool {
        self.ifaces
            .values()
            .filter(|i| i.state != IfState::Down)
            .flat_map(|i| i.addr.iter().chain(i.extra.iter()))
            .any(|a| a.trunc() == *p)
    }

    fn publish_routes(&mut self) -> usize {
        let names: HashMap<IfIndex, String> = self
            .ifaces
            .values()
            .filter(|i| i.state != IfState::Down)
            .map(|i| (i.ifindex, i.name.clone()))
            .collect();
        let mut new: BTreeMap<Ipv4Net, RibRoute> = BTreeMap::new();
        for (p, r) in &self.table.networks {
            if self.connected(p) {
                continue;
            }
            let mut nexthops: Vec<RibNexthop> = r
                .nexthops
                .iter()
                .filter_map(|nh| {
                    Some(RibNexthop {
                        gateway: (!nh.addr.is_unspecified()).then_some(nh.addr),
                        ifname: names.get(&nh.ifindex)?.clone(),
                        ifindex: nh.ifindex,
                    })
                })
                .collect();
            if nexthops.is_empty() {
                continue;
            }
            nexthops.sort();
            let metric = match r.path_type {
                PathType::External2 => r.type2_cost,
                _ => r.cost,
            };
            new.insert(
                *p,
                RibRoute {
                    nexthops,
                    metric,
                    path_type: r.path_type,
                },
            );
        }
        let mut changes = 0;
        for p in self.published.keys() {
            if !new.contains_key(p) {
                self.out.push(Output::RouteWithdraw { prefix: *p });
                changes += 1;
            }
        }
        for (p, r) in &new {
            if self.published.get(p) != Some(r) {
                self.out.push(Output::RouteAdd {
                    prefix: *p,
                    route: r.clone(),
                });
                changes += 1;
            }
        }
        self.published = new;
        changes
    }
}

fn split_addrs(addrs: &[Ipv4Net]) -> (Option<Ipv4Net>, Vec<Ipv4Net>) {
    let mut usable = addrs.iter().filter(|a| !a.addr().is_loopback()).copied();
    let primary = usable.next();
    (primary, usable.collect())
}

// ----- read-only views for show commands and tests ----------------------------------------

/// A neighbor, for `show ospf neighbor`.
#[derive(Debug, Clone, Serialize)]
pub struct NeighborInfo {
    /// Interface.
    pub interface: String,
    /// Router ID.
    pub router_id: RouterId,
    /// Address.
    pub address: Ipv4Addr,
    /// State.
    pub state: NbrState,
    /// Priority.
    pub priority: u8,
    /// DR it declares.
    pub dr: Ipv4Addr,
    /// BDR it declares.
    pub bdr: Ipv4Addr,
    /// Time in the current state (ms).
    pub since_ms: u64,
    /// LSAs on its retransmission list.
    pub retransmit: usize,
    /// LSAs on its request list.
    pub requests: usize,
}

/// An interface, for `show ospf interface`.
#[derive(Debug, Clone, Serialize)]
pub struct InterfaceInfo {
    /// Name.
    pub name: String,
    /// Area.
    pub area: AreaId,
    /// Network type.
    pub if_type: IfType,
    /// State.
    pub state: IfState,
    /// Address.
    pub address: Option<Ipv4Net>,
    /// Cost.
    pub cost: u16,
    /// Priority.
    pub priority: u8,
    /// HelloInterval (s).
    pub hello_interval: u16,
    /// RouterDeadInterval (s).
    pub dead_interval: u32,
    /// DR.
    pub dr: Ipv4Addr,
    /// BDR.
    pub bdr: Ipv4Addr,
    /// Passive.
    pub passive: bool,
    /// Number of neighbors.
    pub neighbors: usize,
    /// Number of fully adjacent neighbors.
    pub adjacent: usize,
}

/// An LSA, for `show ospf database`.
#[derive(Debug, Clone, Serialize)]
pub struct LsaInfo {
    /// Area (None for AS-external).
    pub area: Option<AreaId>,
    /// Header with the current age.
    pub header: LsaHeader,
    /// Body.
    pub body: LsaBody,
}

/// A route, for `show ospf route`.
#[derive(Debug, Clone, Serialize)]
pub struct RouteInfo {
    /// Prefix.
    pub prefix: Ipv4Net,
    /// Path type.
    pub path_type: PathType,
    /// Cost.
    pub cost: u32,
    /// Type 2 cost.
    pub type2_cost: u32,
    /// Area.
    pub area: Option<AreaId>,
    /// Next hops (gateway, interface).
    pub nexthops: Vec<(Ipv4Addr, String)>,
}

impl Instance {
    /// The router ID in use.
    pub fn router_id(&self) -> Option<RouterId> {
        self.router_id
    }

    /// Neighbors of every interface.
    pub fn neighbors(&self) -> Vec<NeighborInfo> {
        self.ifaces
            .values()
            .flat_map(|i| {
                i.nbrs.values().map(|n| NeighborInfo {
                    interface: i.name.clone(),
                    router_id: n.router_id,
                    address: n.addr,
                    state: n.state,
                    priority: n.priority,
                    dr: n.dr,
                    bdr: n.bdr,
                    since_ms: self.now.saturating_sub(n.since),
                    retransmit: n.rxmt.len(),
                    requests: n.dd.requests.len(),
                })
            })
            .collect()
    }

    /// Configured interfaces.
    pub fn interfaces(&self) -> Vec<InterfaceInfo> {
        self.ifaces
            .values()
            .map(|i| InterfaceInfo {
                name: i.name.clone(),
                area: i.area,
                if_type: i.cfg.if_type,
                state: i.state,
                address: i.addr,
                cost: i.cfg.cost,
                priority: i.cfg.priority,
                hello_interval: i.cfg.hello_interval,
                dead_interval: i.cfg.dead_interval,
                dr: i.dr,
                bdr: i.bdr,
                passive: i.cfg.passive,
                neighbors: i.nbrs.len(),
                adjacent: i
                    .nbrs
                    .values()
                    .filter(|n| n.state == NbrState::Full)
                    .count(),
            })
            .collect()
    }

    /// The database, optionally filtered by LS type and Link State ID.
    pub fn database(&self, ls_type: Option<u8>, lsid: Option<Ipv4Addr>) -> Vec<LsaInfo> {
        let keep =
            |k: &LsaKey| ls_type.is_none_or(|t| t == k.ls_type) && lsid.is_none_or(|l| l == k.lsid);
        let mut v = Vec::new();
        for a in self.lsdb.area_ids() {
            for (k, e) in self.lsdb.area(a) {
                if keep(k) {
                    v.push(LsaInfo {
                        area: Some(a),
                        header: e.header(self.now),
                        body: e.lsa.body.clone(),
                    });
                }
            }
        }
        for (k, e) in self.lsdb.externals() {
            if keep(k) {
                v.push(LsaInfo {
                    area: None,
                    header: e.header(self.now),
                    body: e.lsa.body.clone(),
                });
            }
        }
        v
    }

    /// The OSPF routing table (network routes), in prefix order.
    pub fn routes(&self) -> Vec<RouteInfo> {
        let names: HashMap<IfIndex, &str> = self
            .ifaces
            .values()
            .map(|i| (i.ifindex, i.name.as_str()))
            .collect();
        self.table
            .sorted()
            .into_iter()
            .map(|(p, r)| RouteInfo {
                prefix: p,
                path_type: r.path_type,
                cost: r.cost,
                type2_cost: r.type2_cost,
                area: r.area,
                nexthops: r
                    .nexthops
                    .iter()
                    .map(|nh| {
                        (
                            nh.addr,
                            names
                                .get(&nh.ifindex)
                                .map_or_else(|| nh.ifindex.to_string(), |s| (*s).to_string()),
                        )
                    })
                    .collect(),
            })
            .collect()
    }

    /// Routes as published to the RIB.
    pub fn published(&self) -> &BTreeMap<Ipv4Net, RibRoute> {
        &self.published
    }

    /// Recent SPF runs, oldest first.
    pub fn spf_runs(&self) -> Vec<SpfRun> {
        self.spf_log.iter().cloned().collect()
    }

    /// An SPF run is scheduled.
    pub fn spf_pending(&self) -> bool {
        self.spf_throttle.scheduled().is_some()
    }

    /// SPF throttle state.
    pub fn spf_throttle_state(&self) -> ThrottleState {
        self.spf_throttle.state()
    }

    /// Counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Number of LSAs in the database.
    pub fn lsdb_len(&self) -> usize {
        self.lsdb.len()
    }

    /// Number of neighbors in state Full.
    pub fn full_adjacencies(&self) -> usize {
        self.ifaces
            .values()
            .flat_map(|i| i.nbrs.values())
            .filter(|n| n.state == NbrState::Full)
            .count()
    }
}
