//! The BGP speaker as a pure event loop: `Instance::handle(now_ms, Input) ->
//! Vec<Output>`. No sockets, no clocks: [`crate::io`] turns TCP events, timer
//! expiries, RIB next-hop updates and operator commands into [`Input`]s and
//! carries out the [`Output`]s.
//!
//! ```text
//!            io.rs (tokio)                               this module (pure)
//!  TCP listener --accept-------+
//!  TCP connect  --connected----+                 +--> per neighbor: session::transition (FSM)
//!  TCP reader   --bytes--------+--> Input ---->  |    UPDATE -> RFC 7606 -> import policy
//!  timers       --fired--------+   handle()      |    -> Loc-RIB (decision) -> dirty prefixes
//!  RIB nexthops --reachable----+                 +--> flush: RIB changes, Adj-RIB-Out diffs,
//!  show/clear   --command------+                       packed UPDATEs per neighbor
//!                                    Output <----------+
//!  TCP writer <-- Send / Close / Connect;  timers <-- SetTimer / CancelTimer;
//!  RibPublisher <-- Rib / RibEndOfRib;     NexthopWatcher <-- WatchNexthop
//! ```
//!
//! Route processing is batched: every `handle` call collects the prefixes whose
//! best path changed and exports them once at the end, so one socket read with
//! hundreds of UPDATEs yields one RIB batch and one write per peer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::config::{BgpConfig, NeighborConfig};
use crate::decision::{PeerId, PeerInfo};
use crate::packet::attribute::{Community, MpNextHop, MpReach, Origin, PathAttributes};
use crate::packet::capability::{GracefulRestart, GracefulRestartFamily};
use crate::packet::header::frame;
use crate::packet::notification::cease_subcode;
use crate::packet::update::decode_update;
use crate::packet::{
    pack, AfiSafi, Capability, Message, MessageType, Notification, Open, RouteRefresh,
    SessionContext, UpdateOutcome, HEADER_LEN,
};
use crate::policy::{self, CompiledPolicy, PolicyContext};
use crate::rib::{AttrInterner, FastMap, LocRib, PathEdit, RibEntry, RibPath};
use crate::session::{self, Action, Event, Fsm, FsmConfig, State, Timer};

/// A TCP connection handle. The instance numbers its outgoing connections
/// from 1; the I/O layer numbers accepted ones from [`ACCEPTED_CONN_BASE`].
pub type ConnId = u64;

/// First id the I/O layer uses for accepted connections.
pub const ACCEPTED_CONN_BASE: ConnId = 1 << 40;

/// Changed prefixes after which a read is flushed before its end (the RIB
/// change list and the best-path list are per flush).
const FLUSH_DIRTY: usize = 16 * 1024;

/// Peer id of locally originated routes (`network`).
pub const LOCAL_PEER: PeerId = 0;

/// Weight of locally originated routes: they win over learned ones.
const LOCAL_WEIGHT: u32 = 32768;
/// Administrative distances handed to the RIB.
pub const DISTANCE_EBGP: u32 = 20;
/// iBGP distance.
pub const DISTANCE_IBGP: u32 = 200;
/// Seconds to wait for every neighbor's End-of-RIB before telling the RIB ours.
const STARTUP_HOLD_SECS: u32 = 30;
/// How long a restarting peer's routes stay stale after it came back without
/// sending End-of-RIB (RFC 4724 section 4.2 "selection deferral").
const STALE_ROUTES_SECS: u32 = 360;
/// ConnectRetryTime.
const CONNECT_RETRY_SECS: u32 = 30;
/// Base IdleHoldTime for automatic restart (doubles per failure, up to 120 s).
const IDLE_HOLD_SECS: u32 = 1;

/// Timers the instance asks the I/O layer to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TimerKey {
    /// A per-neighbor timer.
    Peer(IpAddr, PeerTimer),
    /// Periodic MRT dump.
    MrtDump,
    /// End of the startup wait (RIB End-of-RIB, GR selection deferral).
    Startup,
}

/// Per-neighbor timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PeerTimer {
    /// ConnectRetryTimer.
    ConnectRetry,
    /// HoldTimer.
    Hold,
    /// KeepaliveTimer.
    Keepalive,
    /// IdleHoldTimer.
    IdleHold,
    /// RFC 4724 Restart Time of a restarting peer.
    GrRestart,
    /// Stale routes of a peer that came back but sent no End-of-RIB yet.
    GrStale,
}

impl PeerTimer {
    fn of(t: Timer) -> PeerTimer {
        match t {
            Timer::ConnectRetry => PeerTimer::ConnectRetry,
            Timer::Hold => PeerTimer::Hold,
            Timer::Keepalive => PeerTimer::Keepalive,
            Timer::IdleHold => PeerTimer::IdleHold,
        }
    }
}

/// What `clear bgp neighbor ADDR [soft in|out]` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClearMode {
    /// Reset the session.
    Hard,
    /// Ask the peer to re-send (ROUTE-REFRESH) and re-apply import policy.
    SoftIn,
    /// Re-run export policy and send the differences.
    SoftOut,
}

/// Operator commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Clear one neighbor.
    Clear(IpAddr, ClearMode),
    /// Write an MRT dump of the Loc-RIB now.
    MrtDump,
}

/// Events into the instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// A new configuration (applied incrementally).
    Config(Box<BgpConfig>),
    /// An outgoing connection requested by [`Output::Connect`] completed.
    Connected {
        /// The connection.
        conn: ConnId,
        /// Our address on it.
        local: SocketAddr,
    },
    /// The listener accepted a connection.
    Accepted {
        /// Id chosen by the I/O layer (at least [`ACCEPTED_CONN_BASE`]).
        conn: ConnId,
        /// Remote address.
        peer: SocketAddr,
        /// Our address on it.
        local: SocketAddr,
    },
    /// A connection failed to open or closed.
    Closed {
        /// The connection.
        conn: ConnId,
    },
    /// Bytes read from a connection.
    Received {
        /// The connection.
        conn: ConnId,
        /// The bytes, in stream order.
        bytes: Vec<u8>,
    },
    /// A timer set with [`Output::SetTimer`] expired.
    TimerFired(TimerKey),
    /// The RIB's resolution of a watched next hop.
    Nexthop {
        /// The next hop.
        addr: IpAddr,
        /// Whether it resolves.
        reachable: bool,
        /// IGP metric to it.
        metric: u32,
    },
    /// An operator command.
    Command(Command),
}

/// One route handed to the RIB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RibRoute {
    /// Destination.
    pub prefix: IpNet,
    /// Next hops (several with multipath).
    pub nexthops: Vec<IpAddr>,
    /// iBGP: the next hops are BGP next hops the RIB resolves recursively;
    /// eBGP: they are on a connected subnet (or multihop).
    pub recursive: bool,
    /// 20 for eBGP, 200 for iBGP.
    pub distance: u32,
    /// MED.
    pub metric: u32,
}

/// A change to the routes published to the RIB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RibChange {
    /// Add or replace.
    Add(RibRoute),
    /// Remove.
    Withdraw(IpNet),
}

/// What the I/O layer must do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    /// Open a TCP connection.
    Connect {
        /// Id for the later [`Input::Connected`] / [`Input::Closed`].
        conn: ConnId,
        /// Remote address and port.
        peer: SocketAddr,
        /// Local source address.
        local: Option<IpAddr>,
        /// IP TTL / hop limit (1 for single-hop eBGP).
        ttl: u8,
        /// TCP MD5 key (RFC 2385).
        md5: Option<String>,
    },
    /// Close a connection (after writing what was queued).
    Close {
        /// The connection.
        conn: ConnId,
    },
    /// Write bytes.
    Send {
        /// The connection.
        conn: ConnId,
        /// One or more whole messages.
        bytes: Vec<u8>,
    },
    /// Arm or re-arm a timer.
    SetTimer {
        /// Which.
        key: TimerKey,
        /// Expiry, in milliseconds from now.
        after_ms: u64,
    },
    /// Disarm a timer.
    CancelTimer {
        /// Which.
        key: TimerKey,
    },
    /// Route changes for the RIB, in order.
    Rib(Vec<RibChange>),
    /// Our initial state is in the RIB (it may sweep our stale routes).
    RibEndOfRib,
    /// Watch a next hop's resolution.
    WatchNexthop(IpAddr),
    /// TCP MD5 keys the listener must accept (peer, key); replaces the set.
    ListenerMd5(Vec<(IpAddr, String)>),
    /// Per-neighbor settings of accepted connections (peer, TTL).
    AcceptedTtl {
        /// The connection.
        conn: ConnId,
        /// TTL to set.
        ttl: u8,
    },
    /// An MRT TABLE_DUMP_V2 dump of the Loc-RIB.
    MrtDump {
        /// Where to write it (from config), if anywhere.
        file: Option<String>,
        /// The dump.
        data: Vec<u8>,
    },
}

/// Per-neighbor counters (Prometheus and `show bgp neighbors`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighborCounters {
    /// Messages received.
    pub messages_in: u64,
    /// Messages sent.
    pub messages_out: u64,
    /// UPDATEs received.
    pub updates_in: u64,
    /// UPDATEs sent.
    pub updates_out: u64,
    /// Prefixes announced to us (before policy).
    pub prefixes_received: u64,
    /// Prefixes import policy or loop checks rejected.
    pub prefixes_rejected: u64,
    /// Times the session reached Established.
    pub established_transitions: u64,
    /// NOTIFICATIONs received.
    pub notifications_in: u64,
    /// NOTIFICATIONs sent.
    pub notifications_out: u64,
    /// RFC 7606 errors by kind.
    pub update_errors: BTreeMap<String, u64>,
}

/// A TCP connection of a neighbor.
#[derive(Debug, Clone)]
struct Conn {
    id: ConnId,
    outbound: bool,
    connected: bool,
    local: Option<IpAddr>,
    rbuf: Vec<u8>,
}

impl Conn {
    fn new(id: ConnId, outbound: bool) -> Conn {
        Conn {
            id,
            outbound,
            connected: !outbound,
            local: None,
            rbuf: Vec::new(),
        }
    }
}

/// One configured neighbor.
#[derive(Debug)]
struct Neighbor {
    addr: IpAddr,
    cfg: NeighborConfig,
    id: PeerId,
    local_as: u32,
    ibgp: bool,
    fsm: Fsm,
    fsm_cfg: FsmConfig,
    conn: Option<Conn>,
    /// A second connection while OPENs are exchanged (collision detection).
    pending: Option<Conn>,
    info: Option<Arc<PeerInfo>>,
    ctx: SessionContext,
    adj_out: FastMap<IpNet, Arc<PathAttributes>>,
    /// Announcements and withdrawals to send at the next flush.
    out_announce: Vec<(IpNet, Arc<PathAttributes>)>,
    out_withdraw: Vec<IpNet>,
    /// The initial table (and End-of-RIB) is still to be sent.
    need_dump: bool,
    eor_in: BTreeSet<AfiSafi>,
    /// The peer's routes are kept stale (RFC 4724 helper).
    gr_stale: bool,
    counters: NeighborCounters,
    last_error: Option<String>,
    established_ms: Option<u64>,
    /// Write buffer for this flush.
    wbuf: Vec<u8>,
}

impl Neighbor {
    fn established(&self) -> bool {
        self.fsm.state == State::Established
    }

    fn families(&self) -> Vec<AfiSafi> {
        self.fsm
            .negotiated
            .as_ref()
            .map(|n| n.families.clone())
            .unwrap_or_default()
    }

    fn remote(&self) -> SocketAddr {
        SocketAddr::new(self.addr, self.cfg.port.unwrap_or(179))
    }

    fn ttl(&self) -> u8 {
        match (self.ibgp, self.cfg.multihop) {
            (_, Some(t)) => t,
            (false, None) => 1,
            (true, None) => 255,
        }
    }

    fn local_addr(&self) -> Option<IpAddr> {
        self.conn.as_ref().and_then(|c| c.local)
    }
}

/// The status of a neighbor, for show commands and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeighborStatus {
    /// Address.
    pub address: IpAddr,
    /// Configured remote AS.
    pub remote_as: u32,
    /// Our AS on the session.
    pub local_as: u32,
    /// Description.
    pub description: Option<String>,
    /// FSM state.
    pub state: String,
    /// Peer BGP identifier (when Established).
    pub router_id: Option<Ipv4Addr>,
    /// Negotiated hold time.
    pub hold_time: Option<u16>,
    /// Families negotiated.
    pub families: Vec<String>,
    /// Milliseconds since Established.
    pub uptime_ms: Option<u64>,
    /// Paths from this peer in the Loc-RIB (accepted).
    pub prefixes_accepted: u64,
    /// Prefixes in Adj-RIB-Out.
    pub prefixes_advertised: u64,
    /// Stale routes are kept for a restarting peer.
    pub graceful_restart_stale: bool,
    /// The last error.
    pub last_error: Option<String>,
    /// Counters.
    pub counters: NeighborCounters,
}

/// One path as `show bgp routes` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathView {
    /// Prefix.
    pub prefix: IpNet,
    /// Peer address (`None` for local routes).
    pub peer: Option<IpAddr>,
    /// Best path.
    pub best: bool,
    /// In the multipath set.
    pub multipath: bool,
    /// Stale (graceful restart).
    pub stale: bool,
    /// Next hop.
    pub next_hop: Option<IpAddr>,
    /// AS path.
    pub as_path: String,
    /// ORIGIN.
    pub origin: String,
    /// LOCAL_PREF.
    pub local_pref: Option<u32>,
    /// MED.
    pub med: Option<u32>,
    /// Communities.
    pub communities: Vec<String>,
    /// Large communities.
    pub large_communities: Vec<String>,
    /// ORIGINATOR_ID.
    pub originator_id: Option<Ipv4Addr>,
    /// CLUSTER_LIST.
    pub cluster_list: Vec<Ipv4Addr>,
}

impl PathView {
    fn new(prefix: IpNet, a: &PathAttributes, peer: Option<IpAddr>) -> PathView {
        PathView {
            prefix,
            peer,
            best: false,
            multipath: false,
            stale: false,
            next_hop: a.next_hop_for(prefix.addr().is_ipv6()),
            as_path: a
                .as_path
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            origin: match a.origin {
                Some(Origin::Igp) => "i",
                Some(Origin::Egp) => "e",
                _ => "?",
            }
            .into(),
            local_pref: a.local_pref,
            med: a.med,
            communities: a.communities.iter().map(|c| c.to_string()).collect(),
            large_communities: a.large_communities.iter().map(|c| c.to_string()).collect(),
            originator_id: a.originator_id,
            cluster_list: a.cluster_list.clone(),
        }
    }
}

/// Next-hop resolution as the RIB reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NhState {
    /// `None` until the RIB answered (treated as reachable, cost 0).
    reachable: Option<bool>,
    metric: u32,
}

impl NhState {
    fn igp_cost(&self) -> Option<u32> {
        match self.reachable {
            Some(false) => None,
            _ => Some(self.metric),
        }
    }
}

/// State shared by all neighbors.
#[derive(Debug)]
struct Core {
    cfg: BgpConfig,
    cluster_id: Ipv4Addr,
    policies: HashMap<String, Arc<CompiledPolicy>>,
    loc_rib: LocRib,
    interner: AttrInterner,
    out_interner: AttrInterner,
    nexthops: HashMap<IpAddr, NhState>,
    /// Prefixes whose selection changed since the last flush.
    dirty: Vec<IpNet>,
    /// Deadlines (ms) of armed timers; a fired timer not armed or not yet due
    /// is stale and ignored.
    timers: HashMap<TimerKey, u64>,
    next_conn: ConnId,
    /// Still waiting for the neighbors' End-of-RIB after start.
    starting: bool,
    /// Withhold exports until startup ends (RFC 4724 4.1 selection deferral).
    /// Off: two speakers starting together would each wait for the other's
    /// End-of-RIB until the deferral timer; we send at once instead.
    defer_exports: bool,
    local_info: Arc<PeerInfo>,
    now: u64,
    /// Interner size that triggers the next purge.
    purge_at: usize,
}

impl Core {
    fn arm(&mut self, out: &mut Vec<Output>, key: TimerKey, secs: u32) {
        let ms = u64::from(secs) * 1000;
        self.timers.insert(key, self.now + ms);
        out.push(Output::SetTimer { key, after_ms: ms });
    }

    fn disarm(&mut self, out: &mut Vec<Output>, key: TimerKey) {
        if self.timers.remove(&key).is_some() {
            out.push(Output::CancelTimer { key });
        }
    }

    fn chain(&self, names: &[String]) -> Vec<Arc<CompiledPolicy>> {
        names
            .iter()
            .filter_map(|n| self.policies.get(n).cloned())
            .collect()
    }

    fn nexthop_cost(&mut self, out: &mut Vec<Output>, nh: Option<IpAddr>) -> Option<u32> {
        let Some(nh) = nh else { return Some(0) };
        if let Some(s) = self.nexthops.get(&nh) {
            return s.igp_cost();
        }
        self.nexthops.insert(
            nh,
            NhState {
                reachable: None,
                metric: 0,
            },
        );
        out.push(Output::WatchNexthop(nh));
        Some(0)
    }
}

/// The BGP speaker.
#[derive(Debug)]
pub struct Instance {
    core: Core,
    nbrs: BTreeMap<IpAddr, Neighbor>,
    conns: HashMap<ConnId, IpAddr>,
    next_peer_id: PeerId,
}

fn compile_policies(cfg: &BgpConfig) -> HashMap<String, Arc<CompiledPolicy>> {
    cfg.policy
        .iter()
        .filter_map(|(n, p)| p.compile(n).ok().map(|c| (n.clone(), Arc::new(c))))
        .collect()
}

fn local_info(cfg: &BgpConfig) -> Arc<PeerInfo> {
    Arc::new(PeerInfo {
        id: LOCAL_PEER,
        address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        router_id: cfg.router_id,
        asn: cfg.local_as,
        ibgp: false,
    })
}

impl Instance {
    /// A speaker for `cfg`; call [`Instance::start`] to get the first outputs.
    pub fn new(cfg: BgpConfig) -> Instance {
        let defer = false;
        Instance {
            core: Core {
                cluster_id: cfg.cluster_id.unwrap_or(cfg.router_id),
                policies: compile_policies(&cfg),
                loc_rib: LocRib::new(usize::from(cfg.max_paths)),
                interner: AttrInterner::new(),
                out_interner: AttrInterner::new(),
                nexthops: HashMap::new(),
                dirty: Vec::new(),
                timers: HashMap::new(),
                next_conn: 1,
                starting: true,
                defer_exports: defer,
                local_info: local_info(&cfg),
                now: 0,
                purge_at: 4096,
                cfg: BgpConfig {
                    neighbor: BTreeMap::new(),
                    network: Vec::new(),
                    ..cfg.clone()
                },
            },
            nbrs: BTreeMap::new(),
            conns: HashMap::new(),
            next_peer_id: 1,
        }
        .with_pending_config(cfg)
    }

    fn with_pending_config(mut self, cfg: BgpConfig) -> Self {
        // Stash the full config: `start` applies it so its outputs are returned.
        self.core.cfg.neighbor = cfg.neighbor;
        self.core.cfg.network = cfg.network;
        self
    }

    /// Starts the configured neighbors and the startup timer.
    pub fn start(&mut self, now_ms: u64) -> Vec<Output> {
        self.core.now = now_ms;
        let mut out = Vec::new();
        let cfg = self.core.cfg.clone();
        self.core.cfg.neighbor.clear();
        self.core.cfg.network.clear();
        let hold = cfg
            .neighbor
            .values()
            .filter_map(|n| n.graceful_restart.as_ref().filter(|g| g.enabled))
            .map(|g| u32::from(g.restart_time))
            .max()
            .unwrap_or(STARTUP_HOLD_SECS);
        self.core.arm(&mut out, TimerKey::Startup, hold);
        self.apply_config(cfg, &mut out);
        self.flush(&mut out);
        out
    }

    /// Processes one input.
    pub fn handle(&mut self, now_ms: u64, input: Input) -> Vec<Output> {
        self.handle_many(now_ms, std::iter::once(input))
    }

    /// Processes several inputs (e.g. whatever the sockets had ready) and
    /// flushes once: best-path changes of all of them go to the RIB and the
    /// neighbors as one batch, so 200 sessions each delivering a small read do
    /// not cost 200 flushes (each walking every neighbor's export).
    pub fn handle_many(
        &mut self,
        now_ms: u64,
        inputs: impl IntoIterator<Item = Input>,
    ) -> Vec<Output> {
        self.core.now = now_ms;
        let mut out = Vec::new();
        for input in inputs {
            self.dispatch(input, &mut out);
        }
        self.flush(&mut out);
        out
    }

    fn dispatch(&mut self, input: Input, out: &mut Vec<Output>) {
        match input {
            Input::Config(c) => self.apply_config(*c, out),
            Input::Connected { conn, local } => self.on_connected(conn, local, out),
            Input::Accepted { conn, peer, local } => self.on_accepted(conn, peer, local, out),
            Input::Closed { conn } => self.on_closed(conn, out),
            Input::Received { conn, bytes } => self.on_bytes(conn, bytes, out),
            Input::TimerFired(key) => self.on_timer(key, out),
            Input::Nexthop {
                addr,
                reachable,
                metric,
            } => self.on_nexthop(addr, reachable, metric),
            Input::Command(c) => self.on_command(c, out),
        }
    }

    // ---------------------------------------------------------------- config

    fn apply_config(&mut self, cfg: BgpConfig, out: &mut Vec<Output>) {
        let global_changed = cfg.local_as != self.core.cfg.local_as
            || cfg.router_id != self.core.cfg.router_id
            || cfg.cluster_id != self.core.cfg.cluster_id;
        let policies_changed = cfg.policy != self.core.cfg.policy;
        if cfg.max_paths != self.core.cfg.max_paths {
            // Rebuild the Loc-RIB selection with the new width.
            let mut rib = LocRib::new(usize::from(cfg.max_paths));
            let old = std::mem::take(&mut self.core.loc_rib);
            for (p, e) in old.iter_v4() {
                for path in e.paths() {
                    rib.update(IpNet::V4(*p), path.clone());
                }
                self.core.dirty.push(IpNet::V4(*p));
            }
            for (p, e) in old.iter_v6() {
                for path in e.paths() {
                    rib.update(IpNet::V6(*p), path.clone());
                }
                self.core.dirty.push(IpNet::V6(*p));
            }
            self.core.loc_rib = rib;
        }
        // Originated networks.
        if cfg.network != self.core.cfg.network || global_changed {
            let old: BTreeSet<IpNet> = self.core.cfg.network.iter().copied().collect();
            let new: BTreeSet<IpNet> = cfg.network.iter().map(|p| p.trunc()).collect();
            for p in old.difference(&new) {
                if self.core.loc_rib.withdraw(*p, LOCAL_PEER) {
                    self.core.dirty.push(*p);
                }
            }
            self.core.local_info = local_info(&cfg);
            for p in &new {
                self.originate(*p);
            }
        }
        let old_nbrs = std::mem::take(&mut self.core.cfg.neighbor);
        self.core.cfg = BgpConfig {
            neighbor: BTreeMap::new(),
            ..cfg.clone()
        };
        self.core.cfg.network = cfg.network.iter().map(|p| p.trunc()).collect();
        self.core.cluster_id = cfg.cluster_id.unwrap_or(cfg.router_id);
        self.core.policies = compile_policies(&cfg);
        if let Some(m) = &cfg.mrt {
            if m.interval_secs > 0 && !self.core.timers.contains_key(&TimerKey::MrtDump) {
                self.core.arm(out, TimerKey::MrtDump, m.interval_secs);
            }
        } else {
            self.core.disarm(out, TimerKey::MrtDump);
        }

        // Removed neighbors.
        let removed: Vec<IpAddr> = old_nbrs
            .keys()
            .filter(|a| !cfg.neighbor.contains_key(a))
            .copied()
            .collect();
        for a in removed {
            self.stop_neighbor(a, cease_subcode::PEER_DECONFIGURED, out);
            self.nbrs.remove(&a);
        }
        for (addr, ncfg) in &cfg.neighbor {
            let old = old_nbrs.get(addr);
            let reset = global_changed || old.is_none_or(|o| session_fields_differ(o, ncfg));
            if reset {
                if old.is_some() {
                    self.stop_neighbor(*addr, cease_subcode::ADMINISTRATIVE_RESET, out);
                    self.nbrs.remove(addr);
                }
                self.add_neighbor(*addr, ncfg.clone(), out);
                continue;
            }
            let Some(o) = old else { continue };
            let import_changed = o.import_policy != ncfg.import_policy
                || (policies_changed && !ncfg.import_policy.is_empty());
            let export_changed = o.export_policy != ncfg.export_policy
                || o.next_hop_self != ncfg.next_hop_self
                || o.route_reflector_client != ncfg.route_reflector_client
                || (policies_changed && !ncfg.export_policy.is_empty());
            if let Some(n) = self.nbrs.get_mut(addr) {
                n.cfg = ncfg.clone();
            }
            if export_changed {
                self.resync_out(*addr);
            }
            if import_changed {
                self.route_refresh_request(*addr, out);
            }
            // A client flag change alters what the others receive too.
            if o.route_reflector_client != ncfg.route_reflector_client {
                let others: Vec<IpAddr> = self.nbrs.keys().copied().collect();
                for a in others {
                    self.resync_out(a);
                }
            }
        }
        self.core.cfg.neighbor = cfg.neighbor.clone();
        self.update_listener_keys(out);
    }

    fn originate(&mut self, p: IpNet) {
        let mut a = PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(Default::default()),
            ..Default::default()
        };
        if let IpNet::V6(_) = p {
            a.mp_reach = Some(MpReach {
                afi_safi: AfiSafi::IPV6_UNICAST,
                next_hop: MpNextHop::V6 {
                    global: std::net::Ipv6Addr::UNSPECIFIED,
                    link_local: None,
                },
                nlri: Vec::new(),
            });
        } else {
            a.next_hop = Some(Ipv4Addr::UNSPECIFIED);
        }
        let attrs = self.core.interner.intern(a);
        let path = RibPath {
            peer: self.core.local_info.clone(),
            attrs,
            weight: LOCAL_WEIGHT,
            igp_cost: Some(0),
            stale: false,
        };
        if self.core.loc_rib.upsert(p, path).0 {
            self.core.dirty.push(p);
        }
    }

    fn update_listener_keys(&self, out: &mut Vec<Output>) {
        let keys: Vec<(IpAddr, String)> = self
            .nbrs
            .values()
            .filter_map(|n| n.cfg.md5_password.clone().map(|k| (n.addr, k)))
            .collect();
        out.push(Output::ListenerMd5(keys));
    }

    fn add_neighbor(&mut self, addr: IpAddr, cfg: NeighborConfig, out: &mut Vec<Output>) {
        let local_as = cfg.local_as.unwrap_or(self.core.cfg.local_as);
        let ibgp = cfg.remote_as == local_as;
        let fsm_cfg = FsmConfig {
            local_as,
            peer_as: cfg.remote_as,
            local_id: self.core.cfg.router_id,
            hold_time: cfg.hold_time,
            connect_retry_time: CONNECT_RETRY_SECS,
            idle_hold_time: IDLE_HOLD_SECS,
            families: cfg.afi.iter().map(|f| f.afi_safi()).collect(),
        };
        let id = self.next_peer_id;
        self.next_peer_id += 1;
        let passive = cfg.passive;
        let shutdown = cfg.shutdown;
        self.nbrs.insert(
            addr,
            Neighbor {
                addr,
                cfg,
                id,
                local_as,
                ibgp,
                fsm: Fsm::default(),
                fsm_cfg,
                conn: None,
                pending: None,
                info: None,
                ctx: SessionContext::new_4byte(!ibgp),
                adj_out: FastMap::default(),
                out_announce: Vec::new(),
                out_withdraw: Vec::new(),
                need_dump: false,
                eor_in: BTreeSet::new(),
                gr_stale: false,
                counters: NeighborCounters::default(),
                last_error: None,
                established_ms: None,
                wbuf: Vec::new(),
            },
        );
        if !shutdown {
            let ev = if passive {
                Event::ManualStartPassive
            } else {
                Event::ManualStart
            };
            self.fsm_event(addr, ev, out);
        }
    }

    fn stop_neighbor(&mut self, addr: IpAddr, subcode: u8, out: &mut Vec<Output>) {
        let Some(n) = self.nbrs.get_mut(&addr) else {
            return;
        };
        // The FSM sends Cease/Administrative Shutdown on ManualStop; say why.
        n.last_error = Some(format!("stopped (cease subcode {subcode})"));
        self.fsm_event(addr, Event::ManualStop, out);
        if let Some(n) = self.nbrs.get_mut(&addr) {
            if let Some(p) = n.pending.take() {
                self.conns.remove(&p.id);
                out.push(Output::Close { conn: p.id });
            }
        }
        // Withdraw everything, stale or not.
        self.withdraw_peer(addr);
        for t in [
            PeerTimer::GrRestart,
            PeerTimer::GrStale,
            PeerTimer::IdleHold,
        ] {
            self.core.disarm(out, TimerKey::Peer(addr, t));
        }
        if let Some(n) = self.nbrs.get_mut(&addr) {
            flush_wbuf(n, out);
        }
    }

    // ---------------------------------------------------------------- FSM

    /// Feeds one event to a neighbor's FSM and carries out its actions.
    fn fsm_event(&mut self, addr: IpAddr, ev: Event, out: &mut Vec<Output>) {
        let Some(n) = self.nbrs.get_mut(&addr) else {
            return;
        };
        let was = n.fsm.state;
        // Unexpected loss of an Established session with a GR-capable peer:
        // keep its routes (RFC 4724 section 4.2).
        let gr_retain = was == State::Established
            && matches!(ev, Event::TcpConnectionFails | Event::HoldTimerExpires)
            && n.cfg.graceful_restart.as_ref().is_some_and(|g| g.enabled)
            && n.fsm
                .negotiated
                .as_ref()
                .and_then(|x| x.graceful_restart.as_ref())
                .is_some();
        let peer_restart_time = n
            .fsm
            .negotiated
            .as_ref()
            .and_then(|x| x.graceful_restart.as_ref())
            .map(|g| u32::from(g.restart_time))
            .unwrap_or(0);
        let (next, actions) = session::transition(&n.fsm_cfg, &n.fsm, &ev);
        n.fsm = next;
        let now_state = n.fsm.state;
        if was != now_state {
            tracing::info!(peer = %addr, from = ?was, to = ?now_state, event = ?ev_name(&ev), "bgp session state");
        }
        for a in actions {
            self.do_action(addr, a, gr_retain, peer_restart_time, out);
        }
    }

    fn do_action(
        &mut self,
        addr: IpAddr,
        a: Action,
        gr_retain: bool,
        peer_restart_time: u32,
        out: &mut Vec<Output>,
    ) {
        let Some(n) = self.nbrs.get_mut(&addr) else {
            return;
        };
        match a {
            Action::InitiateConnection => {
                if n.cfg.passive {
                    return;
                }
                let id = self.core.next_conn;
                self.core.next_conn += 1;
                if let Some(old) = n.conn.take() {
                    self.conns.remove(&old.id);
                    out.push(Output::Close { conn: old.id });
                }
                n.conn = Some(Conn::new(id, true));
                self.conns.insert(id, addr);
                out.push(Output::Connect {
                    conn: id,
                    peer: n.remote(),
                    local: n.cfg.local_address,
                    ttl: n.ttl(),
                    md5: n.cfg.md5_password.clone(),
                });
            }
            Action::DropConnection => {
                flush_wbuf(n, out);
                if let Some(c) = n.conn.take() {
                    self.conns.remove(&c.id);
                    out.push(Output::Close { conn: c.id });
                }
            }
            Action::SendOpen => {
                let open = self.open_for(addr);
                if let Some(n) = self.nbrs.get_mut(&addr) {
                    send_msg(n, &Message::Open(open));
                }
            }
            Action::SendKeepalive => send_msg(n, &Message::Keepalive),
            Action::SendNotification(note) => {
                tracing::warn!(peer = %addr, notification = %note, "sending NOTIFICATION");
                n.last_error = Some(format!("sent NOTIFICATION {note}"));
                n.counters.notifications_out += 1;
                send_msg(n, &Message::Notification(note));
            }
            Action::StartTimer(t, secs) => {
                let key = TimerKey::Peer(addr, PeerTimer::of(t));
                if secs == 0 {
                    self.core.disarm(out, key);
                } else {
                    self.core.arm(out, key, secs);
                }
            }
            Action::StopTimer(t) => self
                .core
                .disarm(out, TimerKey::Peer(addr, PeerTimer::of(t))),
            Action::ReleaseResources => {
                let was_up = n.info.is_some();
                n.info = None;
                n.adj_out.clear();
                n.out_announce.clear();
                n.out_withdraw.clear();
                n.need_dump = false;
                n.eor_in.clear();
                n.established_ms = None;
                if !was_up {
                    return;
                }
                if gr_retain && peer_restart_time > 0 {
                    tracing::info!(peer = %addr, restart_time = peer_restart_time, "peer restarting: keeping its routes stale (RFC 4724)");
                    n.gr_stale = true;
                    let id = n.id;
                    let mut changed = Vec::new();
                    self.core.loc_rib.edit_paths(
                        |_, p| {
                            if p.peer.id == id && !p.stale {
                                p.stale = true;
                            }
                            PathEdit::Keep
                        },
                        &mut changed,
                    );
                    self.core
                        .disarm(out, TimerKey::Peer(addr, PeerTimer::GrStale));
                    self.core.arm(
                        out,
                        TimerKey::Peer(addr, PeerTimer::GrRestart),
                        peer_restart_time,
                    );
                } else {
                    self.withdraw_peer(addr);
                }
            }
            Action::SessionUp(neg) => {
                let info = Arc::new(PeerInfo {
                    id: n.id,
                    address: addr,
                    router_id: neg.peer_id,
                    asn: neg.peer_as,
                    ibgp: !neg.ebgp,
                });
                n.ctx = neg.context();
                n.info = Some(info);
                n.need_dump = true;
                n.eor_in.clear();
                n.established_ms = Some(self.core.now);
                n.counters.established_transitions += 1;
                n.last_error = None;
                tracing::info!(peer = %addr, asn = neg.peer_as, id = %neg.peer_id, families = ?neg.families, "bgp session established");
                if n.gr_stale {
                    self.core
                        .disarm(out, TimerKey::Peer(addr, PeerTimer::GrRestart));
                    if neg.graceful_restart.is_none() {
                        // The peer no longer does GR: its stale routes go now.
                        self.sweep_stale(addr, None);
                    } else {
                        self.core.arm(
                            out,
                            TimerKey::Peer(addr, PeerTimer::GrStale),
                            STALE_ROUTES_SECS,
                        );
                    }
                }
            }
        }
    }

    fn open_for(&self, addr: IpAddr) -> Open {
        let n = &self.nbrs[&addr];
        let families: Vec<AfiSafi> = n.fsm_cfg.families.clone();
        let mut caps: Vec<Capability> = families
            .iter()
            .map(|f| Capability::Multiprotocol(*f))
            .collect();
        caps.push(Capability::RouteRefresh);
        caps.push(Capability::FourOctetAs(n.local_as));
        if let Some(gr) = n.cfg.graceful_restart.as_ref().filter(|g| g.enabled) {
            caps.push(Capability::GracefulRestart(GracefulRestart {
                // R: we restarted and our forwarding state (held by oxr-rib and
                // the kernel) is preserved while we relearn.
                flags: if self.core.starting { 0x8 } else { 0 },
                restart_time: gr.restart_time.min(4095),
                families: families
                    .iter()
                    .map(|f| GracefulRestartFamily {
                        afi_safi: *f,
                        flags: 0x80,
                    })
                    .collect(),
            }));
        }
        Open::new(n.local_as, n.cfg.hold_time, self.core.cfg.router_id, caps)
    }

    // ---------------------------------------------------------------- connections

    fn on_connected(&mut self, conn: ConnId, local: SocketAddr, out: &mut Vec<Output>) {
        let Some(&addr) = self.conns.get(&conn) else {
            out.push(Output::Close { conn });
            return;
        };
        let Some(n) = self.nbrs.get_mut(&addr) else {
            return;
        };
        match &mut n.conn {
            Some(c) if c.id == conn => {
                c.connected = true;
                c.local = Some(local.ip());
            }
            _ => {
                out.push(Output::Close { conn });
                return;
            }
        }
        self.fsm_event(addr, Event::TcpCrAcked, out);
        if let Some(n) = self.nbrs.get_mut(&addr) {
            flush_wbuf(n, out);
        }
    }

    fn on_accepted(
        &mut self,
        conn: ConnId,
        peer: SocketAddr,
        local: SocketAddr,
        out: &mut Vec<Output>,
    ) {
        let addr = peer.ip();
        let Some(n) = self.nbrs.get_mut(&addr) else {
            tracing::info!(peer = %addr, "connection from an unconfigured address refused");
            out.push(Output::Close { conn });
            return;
        };
        if n.cfg.shutdown {
            out.push(Output::Close { conn });
            return;
        }
        out.push(Output::AcceptedTtl { conn, ttl: n.ttl() });
        let mut c = Conn::new(conn, false);
        c.local = Some(local.ip());
        match n.fsm.state {
            State::Idle | State::Connect | State::Active => {
                if let Some(old) = n.conn.take() {
                    self.conns.remove(&old.id);
                    out.push(Output::Close { conn: old.id });
                }
                n.conn = Some(c);
                self.conns.insert(conn, addr);
                if n.fsm.state == State::Idle {
                    // Accept during the idle backoff: the peer is back.
                    n.fsm.state = State::Active;
                    self.core
                        .disarm(out, TimerKey::Peer(addr, PeerTimer::IdleHold));
                }
                self.fsm_event(addr, Event::TcpConnectionConfirmed, out);
            }
            State::OpenSent | State::OpenConfirm => {
                // Collision detection once this connection's OPEN arrives.
                if let Some(p) = n.pending.replace(c) {
                    self.conns.remove(&p.id);
                    out.push(Output::Close { conn: p.id });
                }
                self.conns.insert(conn, addr);
                let open = self.open_for(addr);
                let mut b = Vec::new();
                if let Ok(m) = Message::Open(open).encode(&SessionContext::default()) {
                    b = m;
                }
                out.push(Output::Send { conn, bytes: b });
            }
            State::Established => {
                let gr = n
                    .fsm
                    .negotiated
                    .as_ref()
                    .is_some_and(|x| x.graceful_restart.is_some());
                if gr && n.cfg.graceful_restart.as_ref().is_some_and(|g| g.enabled) {
                    // RFC 4724 section 4.2: a new connection from a peer that
                    // restarted; the old session is dead.
                    tracing::info!(peer = %addr, "new connection while Established: peer restarted");
                    self.fsm_event(addr, Event::TcpConnectionFails, out);
                    if let Some(n) = self.nbrs.get_mut(&addr) {
                        n.conn = Some(c);
                        n.fsm.state = State::Active;
                    }
                    self.conns.insert(conn, addr);
                    self.core
                        .disarm(out, TimerKey::Peer(addr, PeerTimer::IdleHold));
                    self.fsm_event(addr, Event::TcpConnectionConfirmed, out);
                } else {
                    let note = Notification::cease(cease_subcode::CONNECTION_COLLISION);
                    if let Ok(b) = Message::Notification(note).encode(&SessionContext::default()) {
                        out.push(Output::Send { conn, bytes: b });
                    }
                    out.push(Output::Close { conn });
                }
            }
        }
        if let Some(n) = self.nbrs.get_mut(&addr) {
            flush_wbuf(n, out);
        }
    }

    fn on_closed(&mut self, conn: ConnId, out: &mut Vec<Output>) {
        let Some(addr) = self.conns.remove(&conn) else {
            return;
        };
        let Some(n) = self.nbrs.get_mut(&addr) else {
            return;
        };
        if n.pending.as_ref().is_some_and(|p| p.id == conn) {
            n.pending = None;
            return;
        }
        if n.conn.as_ref().is_some_and(|c| c.id == conn) {
            n.conn = None;
            n.last_error
                .get_or_insert_with(|| "connection closed".into());
            self.fsm_event(addr, Event::TcpConnectionFails, out);
        }
    }

    fn on_bytes(&mut self, conn: ConnId, bytes: Vec<u8>, out: &mut Vec<Output>) {
        let Some(&addr) = self.conns.get(&conn) else {
            return;
        };
        let Some(n) = self.nbrs.get_mut(&addr) else {
            return;
        };
        if n.pending.as_ref().is_some_and(|p| p.id == conn) {
            self.on_pending_bytes(addr, bytes, out);
            return;
        }
        let Some(c) = n.conn.as_mut().filter(|c| c.id == conn) else {
            return;
        };
        if c.rbuf.is_empty() {
            c.rbuf = bytes;
        } else {
            c.rbuf.extend_from_slice(&bytes);
        }
        let mut buf = std::mem::take(&mut c.rbuf);
        let mut pos = 0;
        loop {
            // The connection may have been replaced or dropped by the last message.
            let still = self
                .nbrs
                .get(&addr)
                .and_then(|n| n.conn.as_ref())
                .is_some_and(|c| c.id == conn);
            if !still {
                break;
            }
            match frame(&buf[pos..]) {
                Ok(Some(len)) => {
                    // `buf` was taken out of the connection: decode in place.
                    let msg = &buf[pos..pos + len];
                    pos += len;
                    self.on_message(addr, msg, out);
                    if self.core.dirty.len() >= FLUSH_DIRTY {
                        // A 1 MiB read of one attribute set is ~250k prefixes:
                        // flushing as we go bounds the change lists.
                        self.flush(out);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    if let Some(note) = e.notification() {
                        self.fsm_event(addr, Event::BgpHeaderErr(note), out);
                    }
                    pos = buf.len();
                    break;
                }
            }
        }
        buf.drain(..pos);
        if let Some(c) = self
            .nbrs
            .get_mut(&addr)
            .and_then(|n| n.conn.as_mut())
            .filter(|c| c.id == conn)
        {
            // Keep no empty buffer around: idle sessions hold no memory.
            c.rbuf = if buf.is_empty() { Vec::new() } else { buf };
        }
        if let Some(n) = self.nbrs.get_mut(&addr) {
            flush_wbuf(n, out);
        }
    }

    /// Bytes on the second connection of a collision: only its OPEN matters.
    fn on_pending_bytes(&mut self, addr: IpAddr, bytes: Vec<u8>, out: &mut Vec<Output>) {
        let n = self.nbrs.get_mut(&addr).expect("caller checked");
        let p = n.pending.as_mut().expect("caller checked");
        p.rbuf.extend_from_slice(&bytes);
        let len = match frame(&p.rbuf) {
            Ok(Some(len)) => len,
            Ok(None) => return,
            Err(_) => {
                let id = p.id;
                n.pending = None;
                self.conns.remove(&id);
                out.push(Output::Close { conn: id });
                return;
            }
        };
        let msg: Vec<u8> = p.rbuf.drain(..len).collect();
        let open = match Message::decode(&msg, &SessionContext::default()) {
            Ok(Message::Open(o)) => o,
            _ => {
                let id = p.id;
                n.pending = None;
                self.conns.remove(&id);
                out.push(Output::Close { conn: id });
                return;
            }
        };
        let existing_outbound = n.conn.as_ref().is_some_and(|c| c.outbound);
        let verdict = session::resolve_collision(
            self.core.cfg.router_id,
            open.bgp_id,
            n.fsm.state,
            existing_outbound,
        );
        let cease = Message::Notification(Notification::cease(cease_subcode::CONNECTION_COLLISION));
        match verdict {
            session::CollisionVerdict::CloseNew => {
                let p = n.pending.take().expect("checked");
                if let Ok(b) = cease.encode(&SessionContext::default()) {
                    out.push(Output::Send {
                        conn: p.id,
                        bytes: b,
                    });
                }
                self.conns.remove(&p.id);
                out.push(Output::Close { conn: p.id });
            }
            session::CollisionVerdict::CloseExisting => {
                tracing::info!(peer = %addr, "connection collision: keeping the new connection");
                send_msg(n, &cease);
                flush_wbuf(n, out);
                if let Some(old) = n.conn.take() {
                    self.conns.remove(&old.id);
                    out.push(Output::Close { conn: old.id });
                }
                let newc = n.pending.take().expect("checked");
                let rest = newc.rbuf.clone();
                n.conn = Some(Conn {
                    rbuf: Vec::new(),
                    ..newc
                });
                // Our OPEN already went out on it: it is in OpenSent.
                n.fsm.state = State::OpenSent;
                n.fsm.negotiated = None;
                self.fsm_event(addr, Event::BgpOpen(Box::new(open)), out);
                if !rest.is_empty() {
                    if let Some(id) = self
                        .nbrs
                        .get(&addr)
                        .and_then(|n| n.conn.as_ref())
                        .map(|c| c.id)
                    {
                        self.on_bytes(id, rest, out);
                    }
                }
            }
        }
    }

    fn on_message(&mut self, addr: IpAddr, msg: &[u8], out: &mut Vec<Output>) {
        let Some(n) = self.nbrs.get_mut(&addr) else {
            return;
        };
        n.counters.messages_in += 1;
        let t = msg
            .get(HEADER_LEN - 1)
            .copied()
            .and_then(MessageType::from_u8);
        match t {
            Some(MessageType::Update) => {
                n.counters.updates_in += 1;
                if n.fsm.state != State::Established {
                    self.fsm_event(addr, Event::UpdateMsg, out);
                    return;
                }
                let outcome = decode_update(&msg[HEADER_LEN..], &n.ctx);
                self.on_update(addr, outcome, out);
            }
            Some(MessageType::Keepalive) => self.fsm_event(addr, Event::KeepAliveMsg, out),
            Some(MessageType::Open) => match Message::decode(msg, &n.ctx) {
                Ok(Message::Open(o)) => self.fsm_event(addr, Event::BgpOpen(Box::new(o)), out),
                Err(e) => {
                    let note = e
                        .notification()
                        .unwrap_or_else(|| Notification::new(2, 0, vec![]));
                    self.fsm_event(addr, Event::BgpOpenMsgErr(note), out)
                }
                Ok(_) => {}
            },
            Some(MessageType::Notification) => {
                n.counters.notifications_in += 1;
                match Message::decode(msg, &n.ctx) {
                    Ok(Message::Notification(note)) => {
                        tracing::warn!(peer = %addr, notification = %note, "received NOTIFICATION");
                        n.last_error = Some(format!("received NOTIFICATION {note}"));
                        self.fsm_event(addr, Event::NotifMsg(note), out)
                    }
                    _ => {
                        self.fsm_event(addr, Event::NotifMsg(Notification::new(0, 0, vec![])), out)
                    }
                }
            }
            Some(MessageType::RouteRefresh) => match Message::decode(msg, &n.ctx) {
                Ok(Message::RouteRefresh(rr)) if n.established() => {
                    tracing::info!(peer = %addr, family = ?rr.afi_safi, "ROUTE-REFRESH received: re-sending Adj-RIB-Out");
                    let ipv6 = rr.afi_safi == AfiSafi::IPV6_UNICAST;
                    let again: Vec<(IpNet, Arc<PathAttributes>)> = n
                        .adj_out
                        .iter()
                        .filter(|(p, _)| p.addr().is_ipv6() == ipv6)
                        .map(|(p, a)| (*p, a.clone()))
                        .collect();
                    n.out_announce.extend(again);
                }
                Ok(_) => {}
                Err(e) => {
                    if let Some(note) = e.notification() {
                        self.fsm_event(addr, Event::BgpHeaderErr(note), out);
                    }
                }
            },
            None => {}
        }
    }

    // ---------------------------------------------------------------- UPDATE in

    fn on_update(&mut self, addr: IpAddr, outcome: UpdateOutcome, out: &mut Vec<Output>) {
        let n = self.nbrs.get_mut(&addr).expect("caller checked");
        for k in outcome.error_kinds() {
            *n.counters
                .update_errors
                .entry(k.as_str().to_string())
                .or_default() += 1;
        }
        let update = match outcome {
            UpdateOutcome::Parsed(u) => u,
            UpdateOutcome::AttributeDiscard { update, discarded } => {
                for d in &discarded {
                    tracing::warn!(peer = %addr, attribute = d.attr, error = d.reason.as_str(), "UPDATE attribute discarded (RFC 7606)");
                }
                update
            }
            UpdateOutcome::TreatAsWithdraw { prefixes, reason } => {
                tracing::warn!(peer = %addr, error = reason.as_str(), prefixes = prefixes.len(), "malformed UPDATE treated as withdraw (RFC 7606)");
                let id = n.id;
                for p in prefixes {
                    if self.core.loc_rib.withdraw(p, id) {
                        self.core.dirty.push(p);
                    }
                }
                self.fsm_event(addr, Event::UpdateMsg, out);
                return;
            }
            UpdateOutcome::SessionReset {
                notification,
                reason,
            } => {
                tracing::warn!(peer = %addr, error = reason.as_str(), "malformed UPDATE: session reset (RFC 7606)");
                self.fsm_event(addr, Event::UpdateMsgErr(notification), out);
                return;
            }
        };
        self.fsm_event(addr, Event::UpdateMsg, out);
        let n = self.nbrs.get_mut(&addr).expect("caller checked");
        let Some(peer) = n.info.clone() else { return };
        if let Some(f) = update.end_of_rib() {
            n.eor_in.insert(f);
            tracing::info!(peer = %addr, family = ?f, "End-of-RIB received");
            if n.gr_stale {
                self.sweep_stale(addr, Some(f));
            }
            self.check_startup_done(out);
            return;
        }
        let id = peer.id;
        for p in update.all_withdrawn() {
            if self.core.loc_rib.withdraw(p, id) {
                self.core.dirty.push(p);
            }
        }
        let v4: Vec<IpNet> = update.nlri.iter().map(|p| IpNet::V4(*p)).collect();
        let v6: Vec<IpNet> = update
            .attributes
            .mp_reach
            .as_ref()
            .map(|m| m.nlri.clone())
            .unwrap_or_default();
        if v4.is_empty() && v6.is_empty() {
            return;
        }
        let base = update.attributes.for_rib();
        if let Some(n) = self.nbrs.get_mut(&addr) {
            n.counters.prefixes_received += (v4.len() + v6.len()) as u64;
        }
        // Loop detection (RFC 4271 9.1.2, RFC 4456 section 8).
        let local_as = self.nbrs[&addr].local_as;
        let looped = base.as_path.as_ref().is_some_and(|p| p.contains(local_as))
            || base.originator_id == Some(self.core.cfg.router_id)
            || base.cluster_list.contains(&self.core.cluster_id);
        if looped {
            self.reject_all(addr, id, v4.iter().chain(v6.iter()).copied());
            return;
        }
        for (ipv6, prefixes) in [(false, v4), (true, v6)] {
            if prefixes.is_empty() {
                continue;
            }
            self.import(addr, &peer, &base, ipv6, &prefixes, out);
        }
    }

    fn reject_all(&mut self, addr: IpAddr, id: PeerId, prefixes: impl Iterator<Item = IpNet>) {
        let mut k = 0;
        for p in prefixes {
            k += 1;
            if self.core.loc_rib.withdraw(p, id) {
                self.core.dirty.push(p);
            }
        }
        if let Some(n) = self.nbrs.get_mut(&addr) {
            n.counters.prefixes_rejected += k;
        }
    }

    /// Import policy and Loc-RIB insertion for prefixes of one family sharing
    /// one attribute set.
    fn import(
        &mut self,
        addr: IpAddr,
        peer: &Arc<PeerInfo>,
        base: &PathAttributes,
        ipv6: bool,
        prefixes: &[IpNet],
        out: &mut Vec<Output>,
    ) {
        let n = &self.nbrs[&addr];
        let chain = self.core.chain(&n.cfg.import_policy);
        let refs: Vec<&CompiledPolicy> = chain.iter().map(|p| p.as_ref()).collect();
        let ebgp = !n.ibgp;
        let pctx = PolicyContext {
            local_as: n.local_as,
            self_v4: match n.local_addr() {
                Some(IpAddr::V4(a)) => Some(a),
                _ => None,
            },
            self_v6: match n.local_addr() {
                Some(IpAddr::V6(a)) => Some(a),
                _ => None,
            },
        };
        let per_prefix = refs.iter().any(|p| p.prefix_dependent());
        let id = peer.id;
        // Without prefix conditions the verdict is the same for the whole set:
        // evaluate and intern once.
        let mut shared: Option<Option<(Arc<PathAttributes>, Option<u32>)>> = None;
        let mut rejected = 0u64;
        for p in prefixes {
            let decided = if per_prefix { None } else { shared.clone() };
            let verdict = match decided {
                Some(v) => v,
                None => {
                    let v = policy::apply_chain(&refs, p, base, &pctx, ebgp).map(|a| {
                        let nh = a.next_hop_for(ipv6);
                        let cost = self.core.nexthop_cost(out, nh);
                        (self.core.interner.intern(a), cost)
                    });
                    if !per_prefix {
                        shared = Some(v.clone());
                    }
                    v
                }
            };
            match verdict {
                Some((attrs, igp_cost)) => {
                    let path = RibPath {
                        peer: peer.clone(),
                        attrs,
                        weight: 0,
                        igp_cost,
                        stale: false,
                    };
                    if self.core.loc_rib.upsert(*p, path).0 {
                        self.core.dirty.push(*p);
                    }
                }
                None => {
                    rejected += 1;
                    if self.core.loc_rib.withdraw(*p, id) {
                        self.core.dirty.push(*p);
                    }
                }
            }
        }
        if let Some(n) = self.nbrs.get_mut(&addr) {
            n.counters.prefixes_rejected += rejected;
        }
    }

    fn withdraw_peer(&mut self, addr: IpAddr) {
        let Some(n) = self.nbrs.get_mut(&addr) else {
            return;
        };
        n.gr_stale = false;
        let id = n.id;
        let mut changed = Vec::new();
        self.core.loc_rib.edit_paths(
            |_, p| {
                if p.peer.id == id {
                    PathEdit::Remove
                } else {
                    PathEdit::Keep
                }
            },
            &mut changed,
        );
        self.core.dirty.extend(changed);
    }

    /// Removes a peer's stale paths (of one family, or all).
    fn sweep_stale(&mut self, addr: IpAddr, family: Option<AfiSafi>) {
        let Some(n) = self.nbrs.get_mut(&addr) else {
            return;
        };
        let id = n.id;
        let mut changed = Vec::new();
        let removed = self.core.loc_rib.edit_paths(
            |prefix, p| {
                let fam_ok = match family {
                    None => true,
                    Some(f) => (f == AfiSafi::IPV6_UNICAST) == prefix.addr().is_ipv6(),
                };
                if p.peer.id == id && p.stale && fam_ok {
                    PathEdit::Remove
                } else {
                    PathEdit::Keep
                }
            },
            &mut changed,
        );
        self.core.dirty.extend(changed);
        let n = self.nbrs.get_mut(&addr).expect("checked");
        let all_done = match family {
            None => true,
            Some(_) => n.families().iter().all(|f| n.eor_in.contains(f)),
        };
        if all_done {
            n.gr_stale = false;
        }
        tracing::info!(peer = %addr, removed, "stale routes swept");
    }

    // ---------------------------------------------------------------- timers, next hops, commands

    fn on_timer(&mut self, key: TimerKey, out: &mut Vec<Output>) {
        match self.core.timers.get(&key) {
            Some(&due) if due <= self.core.now => {
                self.core.timers.remove(&key);
            }
            // Disarmed or re-armed since: stale expiry.
            _ => return,
        }
        match key {
            TimerKey::Startup => self.startup_done(out),
            TimerKey::MrtDump => {
                self.on_command(Command::MrtDump, out);
                if let Some(m) = &self.core.cfg.mrt {
                    let s = m.interval_secs;
                    if s > 0 {
                        self.core.arm(out, TimerKey::MrtDump, s);
                    }
                }
            }
            TimerKey::Peer(addr, t) => {
                let ev = match t {
                    PeerTimer::ConnectRetry => {
                        if self.nbrs.get(&addr).is_some_and(|n| n.cfg.passive) {
                            // Passive neighbors only listen.
                            self.core.arm(out, key, CONNECT_RETRY_SECS);
                            return;
                        }
                        Event::ConnectRetryTimerExpires
                    }
                    PeerTimer::Hold => {
                        if let Some(n) = self.nbrs.get_mut(&addr) {
                            n.last_error = Some("hold timer expired".into());
                        }
                        Event::HoldTimerExpires
                    }
                    PeerTimer::Keepalive => Event::KeepaliveTimerExpires,
                    PeerTimer::IdleHold => Event::IdleHoldTimerExpires,
                    PeerTimer::GrRestart | PeerTimer::GrStale => {
                        tracing::info!(peer = %addr, "graceful restart timer expired");
                        self.sweep_stale(addr, None);
                        return;
                    }
                };
                self.fsm_event(addr, ev, out);
                if let Some(n) = self.nbrs.get_mut(&addr) {
                    flush_wbuf(n, out);
                }
            }
        }
    }

    fn check_startup_done(&mut self, out: &mut Vec<Output>) {
        if !self.core.starting {
            return;
        }
        let all = self
            .nbrs
            .values()
            .filter(|n| !n.cfg.shutdown)
            .all(|n| n.established() && n.families().iter().all(|f| n.eor_in.contains(f)));
        if all {
            self.core.disarm(out, TimerKey::Startup);
            self.startup_done(out);
        }
    }

    fn startup_done(&mut self, out: &mut Vec<Output>) {
        if !self.core.starting {
            return;
        }
        self.core.starting = false;
        self.core.defer_exports = false;
        tracing::info!("startup complete: End-of-RIB to the RIB, initial updates to peers");
        // The RIB changes must precede the marker: flush them first.
        self.flush_rib(out, false);
        out.push(Output::RibEndOfRib);
    }

    fn on_nexthop(&mut self, addr: IpAddr, reachable: bool, metric: u32) {
        let new = NhState {
            reachable: Some(reachable),
            metric,
        };
        let old = self.core.nexthops.insert(addr, new);
        if old.map(|o| o.igp_cost()) == Some(new.igp_cost()) {
            return;
        }
        let cost = new.igp_cost();
        let mut changed = Vec::new();
        self.core.loc_rib.edit_paths(
            |prefix, p| {
                if p.peer.id != LOCAL_PEER
                    && p.attrs.next_hop_for(prefix.addr().is_ipv6()) == Some(addr)
                    && p.igp_cost != cost
                {
                    p.igp_cost = cost;
                    PathEdit::Changed
                } else {
                    PathEdit::Keep
                }
            },
            &mut changed,
        );
        self.core.dirty.extend(changed);
    }

    fn on_command(&mut self, c: Command, out: &mut Vec<Output>) {
        match c {
            Command::MrtDump => {
                let mut data = Vec::new();
                let ts = (self.core.now / 1000) as u32;
                if crate::mrt::write_table_dump(
                    &self.core.loc_rib,
                    self.core.cfg.router_id,
                    "oxr",
                    ts,
                    &mut data,
                )
                .is_ok()
                {
                    out.push(Output::MrtDump {
                        file: self.core.cfg.mrt.as_ref().map(|m| m.file.clone()),
                        data,
                    });
                }
            }
            Command::Clear(addr, mode) => match mode {
                ClearMode::Hard => {
                    if let Some(n) = self.nbrs.get(&addr) {
                        let cfg = n.cfg.clone();
                        self.stop_neighbor(addr, cease_subcode::ADMINISTRATIVE_RESET, out);
                        self.nbrs.remove(&addr);
                        self.add_neighbor(addr, cfg, out);
                    }
                }
                ClearMode::SoftIn => self.route_refresh_request(addr, out),
                ClearMode::SoftOut => self.resync_out(addr),
            },
        }
    }

    fn route_refresh_request(&mut self, addr: IpAddr, out: &mut Vec<Output>) {
        let Some(n) = self.nbrs.get_mut(&addr) else {
            return;
        };
        let rr = n.fsm.negotiated.as_ref().is_some_and(|x| x.route_refresh);
        if !n.established() {
            return;
        }
        if !rr {
            tracing::warn!(peer = %addr, "peer does not support ROUTE-REFRESH; soft in needs a session reset");
            return;
        }
        for f in n.families() {
            send_msg(
                n,
                &Message::RouteRefresh(RouteRefresh {
                    afi_safi: f,
                    subtype: 0,
                }),
            );
        }
        flush_wbuf(n, out);
    }

    // ---------------------------------------------------------------- export

    /// What `dst` would receive for `prefix` whose best path is `path`.
    fn export_attrs(
        &self,
        dst: &Neighbor,
        prefix: &IpNet,
        path: &RibPath,
    ) -> Option<PathAttributes> {
        let src = &path.peer;
        if src.id == dst.id {
            return None;
        }
        let ipv6 = prefix.addr().is_ipv6();
        let fam = if ipv6 {
            AfiSafi::IPV6_UNICAST
        } else {
            AfiSafi::IPV4_UNICAST
        };
        if !dst.ctx.has_family(fam) {
            return None;
        }
        let a0 = &path.attrs;
        if a0.communities.contains(&Community::NO_ADVERTISE) {
            return None;
        }
        let dst_ebgp = !dst.ibgp;
        if dst_ebgp && a0.communities.contains(&Community::NO_EXPORT) {
            return None;
        }
        let local = src.id == LOCAL_PEER;
        let mut reflect = false;
        if src.ibgp && !dst_ebgp {
            let src_client = self
                .nbrs
                .get(&src.address)
                .is_some_and(|n| n.cfg.route_reflector_client);
            // RFC 4456 section 6: client routes go to everyone, non-client
            // routes to clients only; without reflection, iBGP split horizon.
            if !(src_client || dst.cfg.route_reflector_client) {
                return None;
            }
            if a0.originator_id.unwrap_or(src.router_id)
                == dst
                    .info
                    .as_ref()
                    .map_or(Ipv4Addr::UNSPECIFIED, |i| i.router_id)
            {
                return None;
            }
            reflect = true;
        }
        let mut a = (**a0).clone();
        a.propagate_unknown();
        a.mp_unreach = None;
        let self_addr = dst.local_addr();
        let mut nh_self = local;
        if dst_ebgp {
            a.local_pref = None;
            a.originator_id = None;
            a.cluster_list.clear();
            // RFC 4271 5.1.4: MED learned from one AS is not sent to another.
            if !local {
                a.med = None;
            }
            a.as_path
                .get_or_insert_with(Default::default)
                .prepend(dst.local_as, 1);
            nh_self = true;
        } else {
            a.local_pref
                .get_or_insert(crate::decision::DEFAULT_LOCAL_PREF);
            if reflect {
                a.originator_id.get_or_insert(src.router_id);
                a.cluster_list.insert(0, self.core.cluster_id);
            } else if dst.cfg.next_hop_self {
                nh_self = true;
            }
        }
        if nh_self {
            match (ipv6, self_addr) {
                (false, Some(IpAddr::V4(s))) => a.next_hop = Some(s),
                (true, Some(IpAddr::V6(s))) => {
                    a.mp_reach = Some(MpReach {
                        afi_safi: AfiSafi::IPV6_UNICAST,
                        next_hop: MpNextHop::V6 {
                            global: s,
                            link_local: None,
                        },
                        nlri: Vec::new(),
                    })
                }
                // No own address of the route's family on this session.
                _ => return None,
            }
        }
        if ipv6 {
            a.next_hop = None;
        } else {
            a.mp_reach = None;
        }
        let chain = self.core.chain(&dst.cfg.export_policy);
        let refs: Vec<&CompiledPolicy> = chain.iter().map(|p| p.as_ref()).collect();
        let pctx = PolicyContext {
            local_as: dst.local_as,
            self_v4: match self_addr {
                Some(IpAddr::V4(x)) => Some(x),
                _ => None,
            },
            self_v6: match self_addr {
                Some(IpAddr::V6(x)) => Some(x),
                _ => None,
            },
        };
        policy::apply_chain(&refs, prefix, &a, &pctx, dst_ebgp)
    }

    /// Recomputes everything `addr` should have and queues the differences.
    fn resync_out(&mut self, addr: IpAddr) {
        let Some(n) = self.nbrs.get(&addr) else {
            return;
        };
        if !n.established() || n.need_dump {
            return;
        }
        let want = self.compute_full_export(addr);
        let n = self.nbrs.get_mut(&addr).expect("checked");
        for (p, a) in &want {
            if n.adj_out.get(p).is_none_or(|o| o != a) {
                n.out_announce.push((*p, a.clone()));
            }
        }
        for p in n.adj_out.keys() {
            if !want.contains_key(p) {
                n.out_withdraw.push(*p);
            }
        }
        n.adj_out = want;
    }

    fn compute_full_export(&mut self, addr: IpAddr) -> FastMap<IpNet, Arc<PathAttributes>> {
        // Walk the table in place (no per-prefix lookups).
        let bests: Vec<(IpNet, Option<RibPath>)> = self
            .core
            .loc_rib
            .iter_v4()
            .map(|(p, e)| (IpNet::V4(*p), e))
            .chain(self.core.loc_rib.iter_v6().map(|(p, e)| (IpNet::V6(*p), e)))
            .filter_map(|(p, e)| e.best().map(|b| (p, Some(b.clone()))))
            .collect();
        self.export_set(addr, &bests)
            .into_iter()
            .filter_map(|(p, a)| a.map(|a| (p, a)))
            .collect()
    }

    /// What `addr` should have for each of `prefixes` (`None`: nothing).
    /// Export runs once per distinct (attribute set, source peer) unless the
    /// export policy looks at prefixes; results are interned.
    fn export_set(
        &mut self,
        addr: IpAddr,
        prefixes: &[(IpNet, Option<RibPath>)],
    ) -> Vec<(IpNet, Option<Arc<PathAttributes>>)> {
        let Some(n) = self.nbrs.get(&addr) else {
            return Vec::new();
        };
        let per_prefix = self
            .core
            .chain(&n.cfg.export_policy)
            .iter()
            .any(|p| p.prefix_dependent());
        let mut cache: FastMap<(usize, PeerId, bool), Option<usize>> = FastMap::default();
        let mut distinct: Vec<PathAttributes> = Vec::new();
        let mut picks: Vec<(IpNet, Option<usize>)> = Vec::with_capacity(prefixes.len());
        for (p, best) in prefixes {
            let Some(best) = best else {
                picks.push((*p, None));
                continue;
            };
            let key = (
                Arc::as_ptr(&best.attrs) as usize,
                best.peer.id,
                p.addr().is_ipv6(),
            );
            if !per_prefix {
                if let Some(i) = cache.get(&key) {
                    picks.push((*p, *i));
                    continue;
                }
            }
            let i = self.export_attrs(n, p, best).map(|a| {
                distinct.push(a);
                distinct.len() - 1
            });
            if !per_prefix {
                cache.insert(key, i);
            }
            picks.push((*p, i));
        }
        let interned: Vec<Arc<PathAttributes>> = distinct
            .into_iter()
            .map(|a| self.core.out_interner.intern(a))
            .collect();
        picks
            .into_iter()
            .map(|(p, i)| (p, i.map(|i| interned[i].clone())))
            .collect()
    }

    // ---------------------------------------------------------------- flush

    /// Sends the RIB the changed prefixes; returns them with their best path
    /// if `with_bests` (some neighbor exports), else nothing.
    fn flush_rib(
        &mut self,
        out: &mut Vec<Output>,
        with_bests: bool,
    ) -> Vec<(IpNet, Option<RibPath>)> {
        let mut dirty = std::mem::take(&mut self.core.dirty);
        if dirty.is_empty() {
            return Vec::new();
        }
        dirty.sort_unstable();
        dirty.dedup();
        let mut changes = Vec::with_capacity(dirty.len());
        let mut bests = Vec::with_capacity(if with_bests { dirty.len() } else { 0 });
        for p in &dirty {
            let entry = self.core.loc_rib.get(p);
            if with_bests {
                bests.push((*p, entry.and_then(|e| e.best()).cloned()));
            }
            let route = entry.and_then(|e| rib_route(*p, e));
            changes.push(match route {
                Some(r) => RibChange::Add(r),
                None => RibChange::Withdraw(*p),
            });
        }
        out.push(Output::Rib(changes));
        bests
    }

    fn flush(&mut self, out: &mut Vec<Output>) {
        let deferring = self.core.defer_exports;
        let exporting = !deferring
            && self
                .nbrs
                .values()
                .any(|n| n.established() && !n.need_dump && !self.silent(n));
        let dirty = self.flush_rib(out, exporting);
        let addrs: Vec<IpAddr> = self.nbrs.keys().copied().collect();
        for addr in addrs {
            let n = &self.nbrs[&addr];
            if !n.established() || deferring {
                continue;
            }
            let silent = self.silent(n);
            if n.need_dump {
                let want = if silent {
                    FastMap::default()
                } else {
                    self.compute_full_export(addr)
                };
                let n = self.nbrs.get_mut(&addr).expect("exists");
                n.out_announce
                    .extend(want.iter().map(|(p, a)| (*p, a.clone())));
                n.adj_out = want;
                n.need_dump = false;
                self.send_out(addr, true, out);
                continue;
            }
            if !dirty.is_empty() && !silent {
                let want = self.export_set(addr, &dirty);
                let n = self.nbrs.get_mut(&addr).expect("exists");
                for (p, new) in want {
                    match (n.adj_out.get(&p), new) {
                        (Some(o), Some(nw)) if Arc::ptr_eq(o, &nw) || *o == nw => {}
                        (_, Some(nw)) => {
                            n.adj_out.insert(p, nw.clone());
                            n.out_announce.push((p, nw));
                        }
                        (Some(_), None) => {
                            n.adj_out.remove(&p);
                            n.out_withdraw.push(p);
                        }
                        (None, None) => {}
                    }
                }
            }
            self.send_out(addr, false, out);
        }
        // Free attribute sets no route uses any more, when the sets doubled.
        let held = self.core.interner.len() + self.core.out_interner.len();
        if held > self.core.purge_at {
            self.core.interner.purge();
            self.core.out_interner.purge();
            let held = self.core.interner.len() + self.core.out_interner.len();
            self.core.purge_at = (2 * held).max(4096);
        }
    }

    /// RFC 8212: an eBGP neighbor without export policy gets nothing. Skipping
    /// its export matters with many peers: 200 of them would otherwise run
    /// export 200 times per flush.
    fn silent(&self, n: &Neighbor) -> bool {
        !n.ibgp
            && n.cfg
                .export_policy
                .iter()
                .all(|p| !self.core.policies.contains_key(p))
    }

    /// Packs the queued announcements and withdrawals into UPDATEs.
    fn send_out(&mut self, addr: IpAddr, eor: bool, out: &mut Vec<Output>) {
        let n = self.nbrs.get_mut(&addr).expect("exists");
        let mut wd = std::mem::take(&mut n.out_withdraw);
        let mut ann = std::mem::take(&mut n.out_announce);
        let mut msgs = 0;
        if !wd.is_empty() {
            wd.sort_unstable();
            wd.dedup();
            msgs += pack::withdrawals(&n.ctx, &wd, &mut n.wbuf);
        }
        if !ann.is_empty() {
            // Group by attribute set (and family) so each UPDATE carries many NLRI.
            ann.sort_unstable_by_key(|(p, a)| (Arc::as_ptr(a) as usize, p.addr().is_ipv6(), *p));
            ann.dedup_by(|x, y| x.0 == y.0);
            let mut i = 0;
            while i < ann.len() {
                let key = (Arc::as_ptr(&ann[i].1), ann[i].0.addr().is_ipv6());
                let mut j = i;
                while j < ann.len() && (Arc::as_ptr(&ann[j].1), ann[j].0.addr().is_ipv6()) == key {
                    j += 1;
                }
                let prefixes: Vec<IpNet> = ann[i..j].iter().map(|(p, _)| *p).collect();
                msgs += pack::announcements(&n.ctx, &ann[i].1, key.1, &prefixes, &mut n.wbuf);
                i = j;
            }
        }
        if eor {
            for f in n.families() {
                pack::end_of_rib(&n.ctx, f, &mut n.wbuf);
                msgs += 1;
            }
        }
        n.counters.updates_out += msgs as u64;
        n.counters.messages_out += msgs as u64;
        flush_wbuf(n, out);
    }

    // ---------------------------------------------------------------- queries

    /// The neighbors' status.
    pub fn neighbors(&self) -> Vec<NeighborStatus> {
        self.nbrs
            .values()
            .map(|n| NeighborStatus {
                address: n.addr,
                remote_as: n.cfg.remote_as,
                local_as: n.local_as,
                description: n.cfg.description.clone(),
                state: format!("{:?}", n.fsm.state),
                router_id: n.info.as_ref().map(|i| i.router_id),
                hold_time: n.fsm.negotiated.as_ref().map(|x| x.hold_time),
                families: n.families().iter().map(|f| family_name(*f)).collect(),
                uptime_ms: n.established_ms.map(|t| self.core.now.saturating_sub(t)),
                prefixes_accepted: self.core.loc_rib.paths_of(n.id) as u64,
                prefixes_advertised: n.adj_out.len() as u64,
                graceful_restart_stale: n.gr_stale,
                last_error: n.last_error.clone(),
                counters: n.counters.clone(),
            })
            .collect()
    }

    /// Every path of the Loc-RIB (or of one prefix), best marked, sorted.
    pub fn routes(&self, prefix: Option<IpNet>) -> Vec<PathView> {
        let mut v = Vec::new();
        let mut push = |p: IpNet, e: RibEntry<'_>| {
            let best = e.best().map(|b| b.peer.id);
            let mp: Vec<PeerId> = e.multipath().map(|x| x.peer.id).collect();
            for path in e.paths() {
                let mut pv = PathView::new(
                    p,
                    &path.attrs,
                    (path.peer.id != LOCAL_PEER).then_some(path.peer.address),
                );
                pv.best = best == Some(path.peer.id);
                pv.multipath = mp.contains(&path.peer.id);
                pv.stale = path.stale;
                v.push(pv);
            }
        };
        match prefix {
            Some(p) => {
                if let Some(e) = self.core.loc_rib.get(&p.trunc()) {
                    push(p.trunc(), e);
                }
            }
            None => {
                for (p, e) in self.core.loc_rib.iter_v4() {
                    push(IpNet::V4(*p), e);
                }
                for (p, e) in self.core.loc_rib.iter_v6() {
                    push(IpNet::V6(*p), e);
                }
            }
        }
        v.sort_by_key(|a| (a.prefix, !a.best));
        v
    }

    /// Routes accepted from a neighbor (after import policy).
    pub fn received(&self, addr: IpAddr) -> Vec<PathView> {
        let Some(n) = self.nbrs.get(&addr) else {
            return Vec::new();
        };
        let mut v: Vec<PathView> = self
            .routes(None)
            .into_iter()
            .filter(|p| p.peer == Some(addr))
            .collect();
        let _ = n;
        v.sort_by_key(|p| p.prefix);
        v
    }

    /// Routes in a neighbor's Adj-RIB-Out.
    pub fn advertised(&self, addr: IpAddr) -> Vec<PathView> {
        let Some(n) = self.nbrs.get(&addr) else {
            return Vec::new();
        };
        let mut v: Vec<PathView> = n
            .adj_out
            .iter()
            .map(|(p, a)| PathView::new(*p, a, None))
            .collect();
        v.sort_by_key(|p| p.prefix);
        v
    }

    /// Every route the RIB should have (what the flushes published so far
    /// add up to), walking the Loc-RIB: for a RIB publisher's replay after
    /// oxr-rib restarted, without a second copy of the table.
    pub fn rib_routes(&self) -> impl Iterator<Item = RibRoute> + '_ {
        let rib = &self.core.loc_rib;
        rib.iter_v4()
            .filter_map(|(p, e)| rib_route(IpNet::V4(*p), e))
            .chain(
                rib.iter_v6()
                    .filter_map(|(p, e)| rib_route(IpNet::V6(*p), e)),
            )
    }

    /// Number of prefixes in the Loc-RIB.
    pub fn loc_rib_len(&self) -> usize {
        self.core.loc_rib.len()
    }

    /// The Loc-RIB.
    pub fn loc_rib(&self) -> &LocRib {
        &self.core.loc_rib
    }

    /// Entries in every neighbor's Adj-RIB-Out, summed.
    pub fn adj_rib_out_len(&self) -> usize {
        self.nbrs.values().map(|n| n.adj_out.len()).sum()
    }

    /// Distinct attribute sets held (received, exported).
    pub fn interned(&self) -> (usize, usize) {
        (self.core.interner.len(), self.core.out_interner.len())
    }

    /// The FSM state of a neighbor.
    pub fn state(&self, addr: IpAddr) -> Option<State> {
        self.nbrs.get(&addr).map(|n| n.fsm.state)
    }

    /// The current configuration.
    pub fn config(&self) -> &BgpConfig {
        &self.core.cfg
    }
}

/// `ipv4-unicast` / `ipv6-unicast`.
pub fn family_name(f: AfiSafi) -> String {
    match f {
        AfiSafi::IPV4_UNICAST => "ipv4-unicast".into(),
        AfiSafi::IPV6_UNICAST => "ipv6-unicast".into(),
        f => format!("afi {} safi {}", f.afi.0, f.safi.0),
    }
}

fn ev_name(e: &Event) -> &'static str {
    match e {
        Event::ManualStart => "ManualStart",
        Event::ManualStop => "ManualStop",
        Event::AutomaticStart => "AutomaticStart",
        Event::ManualStartPassive => "ManualStartPassive",
        Event::AutomaticStartPassive => "AutomaticStartPassive",
        Event::AutomaticStop => "AutomaticStop",
        Event::ConnectRetryTimerExpires => "ConnectRetryTimerExpires",
        Event::HoldTimerExpires => "HoldTimerExpires",
        Event::KeepaliveTimerExpires => "KeepaliveTimerExpires",
        Event::IdleHoldTimerExpires => "IdleHoldTimerExpires",
        Event::TcpCrAcked => "TcpCrAcked",
        Event::TcpConnectionConfirmed => "TcpConnectionConfirmed",
        Event::TcpConnectionFails => "TcpConnectionFails",
        Event::BgpOpen(_) => "BGPOpen",
        Event::BgpHeaderErr(_) => "BGPHeaderErr",
        Event::BgpOpenMsgErr(_) => "BGPOpenMsgErr",
        Event::OpenCollisionDump => "OpenCollisionDump",
        Event::NotifMsgVerErr => "NotifMsgVerErr",
        Event::NotifMsg(_) => "NotifMsg",
        Event::KeepAliveMsg => "KeepAliveMsg",
        Event::UpdateMsg => "UpdateMsg",
        Event::UpdateMsgErr(_) => "UpdateMsgErr",
    }
}

/// Whether a neighbor change needs a session reset.
fn session_fields_differ(a: &NeighborConfig, b: &NeighborConfig) -> bool {
    a.remote_as != b.remote_as
        || a.local_as != b.local_as
        || a.passive != b.passive
        || a.multihop != b.multihop
        || a.md5_password != b.md5_password
        || a.hold_time != b.hold_time
        || a.afi != b.afi
        || a.graceful_restart != b.graceful_restart
        || a.local_address != b.local_address
        || a.port != b.port
        || a.shutdown != b.shutdown
}

fn send_msg(n: &mut Neighbor, m: &Message) {
    if n.conn.is_none() {
        return;
    }
    if let Ok(b) = m.encode(&n.ctx) {
        if !matches!(m, Message::Update(_)) {
            n.counters.messages_out += 1;
        }
        n.wbuf.extend_from_slice(&b);
    }
}

fn flush_wbuf(n: &mut Neighbor, out: &mut Vec<Output>) {
    if n.wbuf.is_empty() {
        return;
    }
    let bytes = std::mem::take(&mut n.wbuf);
    if let Some(c) = &n.conn {
        out.push(Output::Send { conn: c.id, bytes });
    }
}

/// The RIB route for a Loc-RIB entry: its best path's (multipath) next hops,
/// or None if it has none or the best path is our own.
fn rib_route(prefix: IpNet, e: RibEntry<'_>) -> Option<RibRoute> {
    let best = e.best()?;
    if best.peer.id == LOCAL_PEER {
        return None;
    }
    let ipv6 = prefix.addr().is_ipv6();
    let nexthops: Vec<IpAddr> = e
        .multipath()
        .filter_map(|x| x.attrs.next_hop_for(ipv6))
        .collect();
    if nexthops.is_empty() {
        return None;
    }
    let ibgp = best.peer.ibgp;
    Some(RibRoute {
        prefix,
        nexthops,
        recursive: ibgp || best.attrs.as_path.is_none(),
        distance: if ibgp { DISTANCE_IBGP } else { DISTANCE_EBGP },
        metric: best.attrs.med.unwrap_or(0),
    })
}
