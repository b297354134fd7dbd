//! The RIP instance: a pure event loop. Time is milliseconds on a clock the caller owns
//! (the process: since start; tests: a fake one), so every behaviour is testable without
//! sockets or sleeping.
//!
//! ```text
//!   Input::Config ───────────┐
//!   Input::Interface ────────┤                     ┌──> Output::Send      (io.rs: UDP 520)
//!   Input::Packet ───────────┼──> Instance::handle ┼──> Output::Timer     (main.rs: wheel)
//!   Input::Timer ────────────┤        (now, input) ├──> Output::RouteAdd/Withdraw (rib.rs)
//!   Input::Redistribute ─────┘                     └──> Output::Log
//! ```
//!
//! The routing table holds local routes (the networks of RIP interfaces, and redistributed
//! routes) and learned ones. Local routes always win; among learned ones the lowest metric
//! wins and the current next hop's news is always believed (RFC 2453 3.9.2). Only learned,
//! reachable routes go to the RIB.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddrV4};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::config::{InterfaceConfig, RipConfig, SplitHorizon};
use crate::packet::{
    self, Command, Entry, Packet, AF_INET, INFINITY, MAX_ENTRIES, MAX_ENTRIES_AUTH, RIP_GROUP,
    RIP_PORT,
};

/// Delay before a triggered update, so that a burst of changes goes in one update
/// (RFC 2453 3.10.1 asks for 1-5 s).
pub const TRIGGERED_DELAY_MS: u64 = 1000;

/// The state of an interface as the FEA reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfaceState {
    pub name: String,
    pub ifindex: u32,
    pub up: bool,
    /// IPv4 addresses with their subnet length (host bits kept).
    pub addrs: Vec<Ipv4Net>,
}

/// One input of the event loop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Input {
    /// New configuration (None: RIP removed).
    Config(Option<RipConfig>),
    /// An interface appeared or changed.
    Interface(IfaceState),
    /// An interface disappeared.
    InterfaceRemoved(String),
    /// A datagram arrived on a RIP socket.
    Packet {
        ifname: String,
        src: SocketAddrV4,
        data: Vec<u8>,
    },
    /// A timer set through [`Output::Timer`] expired.
    Timer(TimerKey),
    /// Redistributed routes changed: (origin protocol, prefix) added, prefixes withdrawn.
    Redistribute {
        add: Vec<(String, Ipv4Net)>,
        withdraw: Vec<Ipv4Net>,
    },
}

/// The instance's timers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimerKey {
    /// Periodic full update.
    Update,
    /// Pending triggered update.
    Triggered,
    /// Route timeout and garbage collection (at the earliest route deadline).
    Sweep,
}

/// One output of the event loop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Output {
    /// Send a datagram from the interface's socket (source port 520).
    Send {
        ifname: String,
        dst: SocketAddrV4,
        data: Vec<u8>,
    },
    /// Set (Some) or cancel (None) a timer, at a time on the caller's clock.
    Timer { key: TimerKey, at: Option<u64> },
    /// Install or replace a route in the RIB.
    RouteAdd {
        prefix: Ipv4Net,
        gateway: Ipv4Addr,
        ifname: String,
        metric: u8,
    },
    /// Remove a route from the RIB.
    RouteWithdraw { prefix: Ipv4Net },
    /// Something worth a log line.
    Log(String),
}

/// Where a route comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The network of a RIP interface.
    Interface(String),
    /// Redistributed from another protocol.
    Redistributed(String),
    /// Learned from a neighbor.
    Learned { ifname: String, from: Ipv4Addr },
}

/// One route of the RIP table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RipRoute {
    pub source: Source,
    /// 1-16, as announced (local routes: their configured metric).
    pub metric: u8,
    pub tag: u16,
    /// Changed since the last update (goes into the next triggered update).
    #[serde(skip)]
    pub changed: bool,
    /// Learned, reachable: when it times out.
    pub expires: Option<u64>,
    /// Unreachable: when it is deleted.
    pub gc: Option<u64>,
}

/// A router we heard from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Neighbor {
    pub ifname: String,
    pub last_heard: u64,
    pub packets: u64,
    pub bad_packets: u64,
    pub bad_routes: u64,
    /// Last cryptographic sequence number accepted.
    pub auth_seq: Option<u32>,
}

/// A RIP interface: configured and present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iface {
    pub state: IfaceState,
    pub config: InterfaceConfig,
}

impl Iface {
    /// Sends and receives packets: up, not passive, with an address.
    pub fn active(&self) -> bool {
        self.state.up && !self.config.passive && !self.state.addrs.is_empty()
    }

    fn on_link(&self, a: Ipv4Addr) -> bool {
        self.state.addrs.iter().any(|n| n.contains(&a))
    }
}

/// The RIP instance.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Instance {
    config: Option<RipConfig>,
    /// Every interface the FEA reported, configured or not.
    #[serde(skip)]
    states: BTreeMap<String, IfaceState>,
    /// The RIP interfaces.
    pub ifaces: BTreeMap<String, Iface>,
    pub routes: BTreeMap<Ipv4Net, RipRoute>,
    pub neighbors: BTreeMap<Ipv4Addr, Neighbor>,
    /// Redistributed routes the RIB told us about: prefix -> protocol.
    redistributed: BTreeMap<Ipv4Net, String>,
    /// Counters by name.
    pub counters: BTreeMap<&'static str, u64>,
    /// Sequence number of the next signed packet.
    seq: u32,
    /// Routes in the RIB (for diffing).
    #[serde(skip)]
    in_rib: BTreeMap<Ipv4Net, (Ipv4Addr, String, u8)>,
    /// Something changed: a triggered update is due.
    triggered_pending: bool,
    /// The triggered-update timer is set.
    triggered_armed: bool,
}

impl Instance {
    /// A new instance; signed packets start at sequence number `seq_base` (use wall-clock
    /// seconds, so that a restarted router is not taken for a replay).
    pub fn new(seq_base: u32) -> Self {
        Instance {
            seq: seq_base,
            ..Default::default()
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> Option<&RipConfig> {
        self.config.as_ref()
    }

    fn timers(&self) -> (u64, u64, u64) {
        let t = self.config.as_ref().map(|c| c.timers).unwrap_or_default();
        (
            u64::from(t.update_interval) * 1000,
            u64::from(t.timeout) * 1000,
            u64::from(t.garbage_collection) * 1000,
        )
    }

    fn count(&mut self, name: &'static str) {
        *self.counters.entry(name).or_default() += 1;
    }

    /// Handles one input at time `now`.
    pub fn handle(&mut self, now: u64, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Config(c) => self.set_config(now, c, &mut out),
            Input::Interface(s) => {
                self.states.insert(s.name.clone(), s);
                self.sync_ifaces(now, &mut out);
            }
            Input::InterfaceRemoved(name) => {
                self.states.remove(&name);
                self.sync_ifaces(now, &mut out);
            }
            Input::Packet { ifname, src, data } => self.receive(now, &ifname, src, &data, &mut out),
            Input::Timer(TimerKey::Update) => {
                self.send_updates(false, &mut out);
                let (upd, _, _) = self.timers();
                out.push(Output::Timer {
                    key: TimerKey::Update,
                    at: Some(now + upd),
                });
            }
            Input::Timer(TimerKey::Triggered) => {
                self.triggered_armed = false;
                self.send_updates(true, &mut out);
            }
            Input::Timer(TimerKey::Sweep) => self.sweep(now),
            Input::Redistribute { add, withdraw } => {
                for p in withdraw {
                    self.redistributed.remove(&p);
                }
                for (proto, p) in add {
                    self.redistributed.insert(p, proto);
                }
                self.sync_local(now);
            }
        }
        self.finish(now, &mut out);
        out
    }

    fn set_config(&mut self, now: u64, c: Option<RipConfig>, out: &mut Vec<Output>) {
        let running = self.config.is_some();
        self.config = c;
        if self.config.is_none() {
            self.routes.clear();
            self.neighbors.clear();
            out.push(Output::Timer {
                key: TimerKey::Update,
                at: None,
            });
        } else if !running {
            let (upd, _, _) = self.timers();
            out.push(Output::Timer {
                key: TimerKey::Update,
                at: Some(now + upd),
            });
        }
        self.sync_ifaces(now, out);
    }

    /// Recomputes the RIP interfaces from config and FEA state; asks new neighbors for
    /// their tables; forgets what was learned on interfaces that went away.
    fn sync_ifaces(&mut self, now: u64, out: &mut Vec<Output>) {
        let configured = self
            .config
            .as_ref()
            .map(|c| c.interfaces.clone())
            .unwrap_or_default();
        let mut new = BTreeMap::new();
        for (name, cfg) in configured {
            if let Some(s) = self.states.get(&name) {
                new.insert(
                    name,
                    Iface {
                        state: s.clone(),
                        config: cfg,
                    },
                );
            }
        }
        let old = std::mem::replace(&mut self.ifaces, new);
        let up: Vec<String> = self
            .ifaces
            .iter()
            .filter(|(n, i)| i.active() && !old.get(*n).is_some_and(Iface::active))
            .map(|(n, _)| n.clone())
            .collect();
        for name in &up {
            {
                out.push(Output::Log(format!("rip: interface {name} up")));
                let req = Packet {
                    command: Command::Request,
                    version: 2,
                    entries: vec![Entry::whole_table()],
                };
                let data = self.encode_for(name, &req);
                self.count("tx-packets");
                out.push(Output::Send {
                    ifname: name.clone(),
                    dst: SocketAddrV4::new(RIP_GROUP, RIP_PORT),
                    data,
                });
            }
        }
        // Routes learned over an interface that no longer runs RIP are unreachable now.
        let dead: Vec<Ipv4Net> = self
            .routes
            .iter()
            .filter(|(_, r)| match &r.source {
                Source::Learned { ifname, .. } => {
                    !self.ifaces.get(ifname).is_some_and(Iface::active)
                }
                _ => false,
            })
            .map(|(p, _)| *p)
            .collect();
        for p in dead {
            self.poison(now, p);
        }
        self.neighbors
            .retain(|_, n| self.ifaces.get(&n.ifname).is_some_and(Iface::active));
        self.sync_local(now);
    }

    /// Local routes: networks of RIP interfaces that are up, and redistributed routes.
    fn sync_local(&mut self, now: u64) {
        let mut want: BTreeMap<Ipv4Net, (Source, u8)> = BTreeMap::new();
        if let Some(c) = &self.config {
            for (p, proto) in &self.redistributed {
                if let Some(r) = c.redistribute.get(proto) {
                    want.insert(*p, (Source::Redistributed(proto.clone()), r.metric));
                }
            }
        }
        for (name, i) in &self.ifaces {
            if i.state.up {
                // Not 127/8 from lo: only what RFC 2453 3.9.2 lets a neighbor accept.
                for a in i.state.addrs.iter().map(Ipv4Net::trunc) {
                    if valid_destination(a) {
                        want.insert(a, (Source::Interface(name.clone()), 1));
                    }
                }
            }
        }
        let gone: Vec<Ipv4Net> = self
            .routes
            .iter()
            .filter(|(p, r)| {
                matches!(r.source, Source::Interface(_) | Source::Redistributed(_))
                    && r.metric < INFINITY
                    && !want.contains_key(p)
            })
            .map(|(p, _)| *p)
            .collect();
        for p in gone {
            self.poison(now, p);
        }
        for (p, (source, metric)) in want {
            let r = self.routes.get(&p);
            if r.is_some_and(|r| r.source == source && r.metric == metric) {
                continue;
            }
            self.routes.insert(
                p,
                RipRoute {
                    source,
                    metric,
                    tag: 0,
                    changed: true,
                    expires: None,
                    gc: None,
                },
            );
            self.triggered_pending = true;
        }
    }

    /// Makes a route unreachable: announced with metric 16 until garbage collection.
    fn poison(&mut self, now: u64, p: Ipv4Net) {
        let (_, _, gc) = self.timers();
        if let Some(r) = self.routes.get_mut(&p) {
            if r.metric < INFINITY {
                r.metric = INFINITY;
                r.changed = true;
                r.expires = None;
                r.gc = Some(now + gc);
                self.triggered_pending = true;
            }
        }
    }

    fn receive(
        &mut self,
        now: u64,
        ifname: &str,
        src: SocketAddrV4,
        data: &[u8],
        out: &mut Vec<Output>,
    ) {
        self.count("rx-packets");
        let Some(iface) = self.ifaces.get(ifname).filter(|i| i.active()).cloned() else {
            self.count("rx-ignored");
            return;
        };
        if iface.state.addrs.iter().any(|a| a.addr() == *src.ip()) {
            return; // our own multicast
        }
        let (pkt, auth) = match packet::decode(data) {
            Ok(d) => d,
            Err(e) => {
                self.count(e.counter());
                self.neighbor_bad(src);
                out.push(Output::Log(format!("rip: bad packet from {src}: {e}")));
                return;
            }
        };
        if let Some(cfg) = &iface.config.authentication {
            let key = cfg.key();
            let Some(a) = auth.filter(|a| packet::verify(data, a, &key)) else {
                self.count("rx-auth-failures");
                self.neighbor_bad(src);
                return;
            };
            let last = self.neighbors.get(src.ip()).and_then(|n| n.auth_seq);
            if last.is_some_and(|l| a.seq < l) {
                self.count("rx-auth-sequence");
                self.neighbor_bad(src);
                return;
            }
            self.neighbor(now, src, ifname).auth_seq = Some(a.seq);
        } else if auth.is_some() {
            self.count("rx-auth-failures");
            self.neighbor_bad(src);
            return;
        }
        match pkt.command {
            Command::Request => self.on_request(ifname, src, &pkt, out),
            Command::Response => {
                // RFC 2453 3.9.2: responses come from port 520 of a neighbor on the link.
                if src.port() != RIP_PORT || !iface.on_link(*src.ip()) {
                    self.count("rx-bad-source");
                    return;
                }
                self.neighbor(now, src, ifname).packets += 1;
                self.on_response(now, &iface, *src.ip(), &pkt);
            }
        }
    }

    fn neighbor(&mut self, now: u64, src: SocketAddrV4, ifname: &str) -> &mut Neighbor {
        let n = self.neighbors.entry(*src.ip()).or_insert_with(|| Neighbor {
            ifname: ifname.to_string(),
            last_heard: now,
            packets: 0,
            bad_packets: 0,
            bad_routes: 0,
            auth_seq: None,
        });
        n.last_heard = now;
        n.ifname = ifname.to_string();
        n
    }

    fn neighbor_bad(&mut self, src: SocketAddrV4) {
        if let Some(n) = self.neighbors.get_mut(src.ip()) {
            n.bad_packets += 1;
        }
    }

    fn on_request(&mut self, ifname: &str, src: SocketAddrV4, pkt: &Packet, out: &mut Vec<Output>) {
        self.count("rx-requests");
        // A query from a monitoring tool (not port 520) sees the table unfiltered.
        let from_router = src.port() == RIP_PORT;
        let entries = if pkt.is_whole_table_request() {
            self.table_for(ifname, false, from_router)
        } else {
            pkt.entries
                .iter()
                .map(|e| {
                    let metric = e
                        .prefix()
                        .and_then(|p| self.routes.get(&p))
                        .map_or(INFINITY, |r| r.metric);
                    Entry {
                        metric: u32::from(metric),
                        ..*e
                    }
                })
                .collect()
        };
        self.send_entries(ifname, src, entries, out);
    }

    fn on_response(&mut self, now: u64, iface: &Iface, from: Ipv4Addr, pkt: &Packet) {
        let (_, timeout, _) = self.timers();
        let ifname = &iface.state.name;
        for e in &pkt.entries {
            let valid = e.afi == AF_INET
                && (1..=u32::from(INFINITY)).contains(&e.metric)
                && e.prefix().is_some_and(valid_destination);
            let Some(prefix) = e.prefix().filter(|_| valid) else {
                self.count("rx-bad-routes");
                if let Some(n) = self.neighbors.get_mut(&from) {
                    n.bad_routes += 1;
                }
                continue;
            };
            let metric = (e.metric as u8)
                .saturating_add(iface.config.cost)
                .min(INFINITY);
            // A next hop elsewhere than on this link is not usable; use the sender.
            let gateway = if e.next_hop.is_unspecified() || !iface.on_link(e.next_hop) {
                from
            } else {
                e.next_hop
            };
            let source = Source::Learned {
                ifname: ifname.clone(),
                from: gateway,
            };
            match self.routes.get_mut(&prefix) {
                None if metric < INFINITY => {
                    self.routes.insert(
                        prefix,
                        RipRoute {
                            source,
                            metric,
                            tag: e.tag,
                            changed: true,
                            expires: Some(now + timeout),
                            gc: None,
                        },
                    );
                    self.triggered_pending = true;
                }
                None => {}
                Some(r) => {
                    let local = matches!(r.source, Source::Interface(_) | Source::Redistributed(_))
                        && r.metric < INFINITY;
                    if local {
                        continue;
                    }
                    let same = match &r.source {
                        Source::Learned { from: f, .. } => *f == gateway || *f == from,
                        _ => false,
                    };
                    if same && metric < INFINITY {
                        r.expires = Some(now + timeout);
                    }
                    if !((same && metric != r.metric) || metric < r.metric) {
                        continue;
                    }
                    if metric >= INFINITY {
                        self.poison(now, prefix);
                    } else {
                        *r = RipRoute {
                            source,
                            metric,
                            tag: e.tag,
                            changed: true,
                            expires: Some(now + timeout),
                            gc: None,
                        };
                        self.triggered_pending = true;
                    }
                }
            }
        }
    }

    /// Times learned routes out and deletes garbage; forgets silent neighbors.
    fn sweep(&mut self, now: u64) {
        let expired: Vec<Ipv4Net> = self
            .routes
            .iter()
            .filter(|(_, r)| r.expires.is_some_and(|t| t <= now))
            .map(|(p, _)| *p)
            .collect();
        for p in expired {
            self.count("routes-timed-out");
            self.poison(now, p);
        }
        self.routes.retain(|_, r| r.gc.is_none_or(|t| t > now));
        let (_, timeout, gc) = self.timers();
        self.neighbors
            .retain(|_, n| n.last_heard + timeout + gc > now);
    }

    /// After every input: RIB changes, the sweep timer, the triggered-update timer.
    fn finish(&mut self, now: u64, out: &mut Vec<Output>) {
        let want: BTreeMap<Ipv4Net, (Ipv4Addr, String, u8)> = self
            .routes
            .iter()
            .filter_map(|(p, r)| match &r.source {
                Source::Learned { ifname, from } if r.metric < INFINITY => {
                    Some((*p, (*from, ifname.clone(), r.metric)))
                }
                _ => None,
            })
            .collect();
        for p in self.in_rib.keys() {
            if !want.contains_key(p) {
                out.push(Output::RouteWithdraw { prefix: *p });
            }
        }
        for (p, v) in &want {
            if self.in_rib.get(p) != Some(v) {
                out.push(Output::RouteAdd {
                    prefix: *p,
                    gateway: v.0,
                    ifname: v.1.clone(),
                    metric: v.2,
                });
            }
        }
        self.in_rib = want;
        let next = self
            .routes
            .values()
            .filter_map(|r| r.expires.or(r.gc))
            .min()
            .or_else(|| {
                let (_, t, g) = self.timers();
                self.neighbors.values().map(|n| n.last_heard + t + g).min()
            });
        out.push(Output::Timer {
            key: TimerKey::Sweep,
            at: next.map(|t| t.max(now)),
        });
        if self.triggered_pending && !self.triggered_armed && self.config.is_some() {
            self.triggered_pending = false;
            self.triggered_armed = true;
            out.push(Output::Timer {
                key: TimerKey::Triggered,
                at: Some(now + TRIGGERED_DELAY_MS),
            });
        }
    }

    /// The entries announced on `ifname`: split horizon applied, only changed routes for a
    /// triggered update.
    fn table_for(&self, ifname: &str, changed_only: bool, split: bool) -> Vec<Entry> {
        let mode = self
            .ifaces
            .get(ifname)
            .map_or(SplitHorizon::PoisonedReverse, |i| i.config.split_horizon);
        self.routes
            .iter()
            .filter(|(_, r)| !changed_only || r.changed)
            .filter_map(|(p, r)| {
                let learned_here =
                    matches!(&r.source, Source::Learned { ifname: i, .. } if i == ifname);
                let metric = match (learned_here && split, mode) {
                    (true, SplitHorizon::Simple) => return None,
                    (true, SplitHorizon::PoisonedReverse) => INFINITY,
                    _ => r.metric,
                };
                Some(Entry::route(*p, metric, r.tag))
            })
            .collect()
    }

    fn send_updates(&mut self, triggered: bool, out: &mut Vec<Output>) {
        let names: Vec<String> = self
            .ifaces
            .iter()
            .filter(|(_, i)| i.active())
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            let entries = self.table_for(&name, triggered, true);
            if entries.is_empty() {
                continue;
            }
            self.count(if triggered {
                "tx-triggered-updates"
            } else {
                "tx-updates"
            });
            self.send_entries(&name, SocketAddrV4::new(RIP_GROUP, RIP_PORT), entries, out);
        }
        for r in self.routes.values_mut() {
            r.changed = false;
        }
    }

    fn send_entries(
        &mut self,
        ifname: &str,
        dst: SocketAddrV4,
        entries: Vec<Entry>,
        out: &mut Vec<Output>,
    ) {
        let signed = self
            .ifaces
            .get(ifname)
            .is_some_and(|i| i.config.authentication.is_some());
        let per = if signed {
            MAX_ENTRIES_AUTH
        } else {
            MAX_ENTRIES
        };
        for chunk in entries.chunks(per) {
            let p = Packet {
                command: Command::Response,
                version: 2,
                entries: chunk.to_vec(),
            };
            let data = self.encode_for(ifname, &p);
            self.count("tx-packets");
            out.push(Output::Send {
                ifname: ifname.to_string(),
                dst,
                data,
            });
        }
    }

    fn encode_for(&mut self, ifname: &str, p: &Packet) -> Vec<u8> {
        match self
            .ifaces
            .get(ifname)
            .and_then(|i| i.config.authentication.as_ref())
        {
            Some(a) => {
                self.seq = self.seq.wrapping_add(1);
                packet::encode(p, Some((&a.key(), self.seq)))
            }
            None => packet::encode(p, None),
        }
    }

    /// Counter value by name (0 if never incremented).
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    /// Prefixes currently in the RIB.
    pub fn rib_prefixes(&self) -> BTreeSet<Ipv4Net> {
        self.in_rib.keys().copied().collect()
    }
}

/// RFC 2453 3.9.2: no class D/E, loopback or "this network" destinations (0/0 is the
/// default route and allowed).
fn valid_destination(p: Ipv4Net) -> bool {
    let a = p.network();
    let first = a.octets()[0];
    p.prefix_len() == 0 && a.is_unspecified() || (first != 0 && first != 127 && first < 224)
}
