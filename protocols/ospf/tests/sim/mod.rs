//! A simulated network for driving several [`Instance`]s against each other without
//! sockets: each `Output::Send` is delivered (1 ms later) to the other ends of the link that
//! joined the destination group or own the unicast address, timers fire in time order on a
//! fake clock, routes for the RIB are collected per router.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use oxr_ospf::config::OspfConfig;
use oxr_ospf::instance::{
    IfaceInfo, Input, Instance, Output, RibRoute, TimerKey, ALL_D_ROUTERS, ALL_SPF_ROUTERS,
};

/// One simulated router.
pub struct Router {
    pub name: String,
    pub inst: Instance,
    pub timers: BTreeMap<TimerKey, u64>,
    pub groups: HashSet<(String, Ipv4Addr)>,
    pub routes: BTreeMap<Ipv4Net, RibRoute>,
    /// (time, prefix, route or None for a withdraw) in order.
    pub route_log: Vec<(u64, Ipv4Net, Option<RibRoute>)>,
    pub log: Vec<(u64, String)>,
    pub ifaces: BTreeMap<String, IfaceInfo>,
    pub sent: usize,
}

struct Link {
    ends: Vec<(usize, String)>,
}

struct Delivery {
    router: usize,
    ifname: String,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    data: Vec<u8>,
}

/// One end of a point-to-point link: (router, interface name, address/prefix length).
pub type End<'a> = (usize, &'a str, &'a str);

/// Decides whether a packet (sending router, interface, bytes) is lost.
pub type DropFn = Box<dyn Fn(usize, &str, &[u8]) -> bool>;

/// The simulated network.
pub struct Sim {
    pub now: u64,
    pub routers: Vec<Router>,
    links: Vec<Link>,
    queue: BTreeMap<(u64, u64), Delivery>,
    seq: u64,
    /// Packets matching this are dropped instead of delivered (router, ifname, bytes).
    pub drop: Option<DropFn>,
    pub events: u64,
}

impl Default for Sim {
    fn default() -> Self {
        Self::new()
    }
}

impl Sim {
    pub fn new() -> Self {
        Sim {
            now: 0,
            routers: vec![],
            links: vec![],
            queue: BTreeMap::new(),
            seq: 0,
            drop: None,
            events: 0,
        }
    }

    /// Adds a router with a TOML `protocols.ospf` section (without the header).
    pub fn router(&mut self, name: &str, config: &str) -> usize {
        let cfg: OspfConfig = toml::from_str(config).expect("config parses");
        assert_eq!(cfg.validate(), vec![], "{name} config");
        let idx = self.routers.len();
        self.routers.push(Router {
            name: name.to_string(),
            inst: Instance::new(0),
            timers: BTreeMap::new(),
            groups: HashSet::new(),
            routes: BTreeMap::new(),
            route_log: vec![],
            log: vec![],
            ifaces: BTreeMap::new(),
            sent: 0,
        });
        self.input(idx, Input::Config(Some(cfg)));
        idx
    }

    /// Adds (or replaces) an interface of a router as the FEA would report it.
    pub fn iface(&mut self, r: usize, name: &str, addr: &str, up: bool) {
        let ifindex = self.routers[r]
            .ifaces
            .get(name)
            .map_or(self.routers[r].ifaces.len() as u32 + 1, |i| i.ifindex);
        let info = IfaceInfo {
            name: name.to_string(),
            ifindex,
            up,
            addrs: if addr.is_empty() {
                vec![]
            } else {
                vec![addr.parse().expect("prefix")]
            },
            mtu: 1500,
        };
        self.routers[r]
            .ifaces
            .insert(name.to_string(), info.clone());
        self.input(r, Input::Interface(info));
    }

    /// Sets an existing interface's operational state.
    pub fn set_up(&mut self, r: usize, name: &str, up: bool) {
        let mut info = self.routers[r].ifaces[name].clone();
        info.up = up;
        self.routers[r]
            .ifaces
            .insert(name.to_string(), info.clone());
        self.input(r, Input::Interface(info));
    }

    /// Two routers' interfaces, up with their addresses, on one link of their own:
    /// `sim.p2p((a, "eth0", "10.0.12.1/30"), (b, "eth0", "10.0.12.2/30"))`.
    pub fn p2p(&mut self, (a, a_if, a_addr): End<'_>, (b, b_if, b_addr): End<'_>) {
        self.iface(a, a_if, a_addr, true);
        self.iface(b, b_if, b_addr, true);
        self.link(&[(a, a_if), (b, b_if)]);
    }

    /// Connects interfaces (router, ifname) on one segment.
    pub fn link(&mut self, ends: &[(usize, &str)]) {
        self.links.push(Link {
            ends: ends.iter().map(|(r, n)| (*r, n.to_string())).collect(),
        });
    }

    fn addr_of(&self, r: usize, ifname: &str) -> Option<Ipv4Addr> {
        self.routers[r]
            .ifaces
            .get(ifname)
            .and_then(|i| i.addrs.first())
            .map(|a| a.addr())
    }

    /// Feeds one input to a router and applies its outputs.
    pub fn input(&mut self, r: usize, input: Input) {
        self.events += 1;
        let outs = self.routers[r].inst.handle(self.now, input);
        for o in outs {
            match o {
                Output::Send { ifname, dst, data } => {
                    self.routers[r].sent += 1;
                    self.send(r, &ifname, dst, data);
                }
                Output::Timer { key, at } => match at {
                    Some(at) => {
                        self.routers[r].timers.insert(key, at);
                    }
                    None => {
                        self.routers[r].timers.remove(&key);
                    }
                },
                Output::Membership {
                    ifname,
                    group,
                    join,
                    ..
                } => {
                    if join {
                        self.routers[r].groups.insert((ifname, group));
                    } else {
                        self.routers[r].groups.remove(&(ifname, group));
                    }
                }
                Output::RouteAdd { prefix, route } => {
                    self.routers[r]
                        .route_log
                        .push((self.now, prefix, Some(route.clone())));
                    self.routers[r].routes.insert(prefix, route);
                }
                Output::RouteWithdraw { prefix } => {
                    self.routers[r].route_log.push((self.now, prefix, None));
                    self.routers[r].routes.remove(&prefix);
                }
                Output::Log(l) => {
                    if std::env::var_os("OXR_SIM_LOG").is_some() {
                        eprintln!("{:>7} {}: {l}", self.now, self.routers[r].name);
                    }
                    self.routers[r].log.push((self.now, l));
                }
            }
        }
    }

    fn send(&mut self, r: usize, ifname: &str, dst: Ipv4Addr, data: Vec<u8>) {
        if !self.routers[r].ifaces.get(ifname).is_some_and(|i| i.up) {
            return;
        }
        if let Some(d) = &self.drop {
            if d(r, ifname, &data) {
                return;
            }
        }
        let Some(src) = self.addr_of(r, ifname) else {
            return;
        };
        let mut targets = Vec::new();
        for l in &self.links {
            if !l.ends.iter().any(|(x, n)| *x == r && n == ifname) {
                continue;
            }
            for (x, n) in &l.ends {
                if *x == r && n == ifname {
                    continue;
                }
                let rt = &self.routers[*x];
                if !rt.ifaces.get(n).is_some_and(|i| i.up) {
                    continue;
                }
                let ok = if dst == ALL_SPF_ROUTERS || dst == ALL_D_ROUTERS {
                    rt.groups.contains(&(n.clone(), dst))
                } else {
                    self.addr_of(*x, n) == Some(dst)
                };
                if ok {
                    targets.push((*x, n.clone()));
                }
            }
        }
        for (x, n) in targets {
            self.seq += 1;
            self.queue.insert(
                (self.now + 1, self.seq),
                Delivery {
                    router: x,
                    ifname: n,
                    src,
                    dst,
                    data: data.clone(),
                },
            );
        }
    }

    /// Injects a packet into a router as if received (no delay).
    pub fn inject(&mut self, r: usize, ifname: &str, src: &str, dst: Ipv4Addr, data: Vec<u8>) {
        self.input(
            r,
            Input::Packet {
                ifname: ifname.to_string(),
                src: src.parse().unwrap(),
                dst,
                data,
            },
        );
    }

    fn next_event(&self) -> Option<u64> {
        let q = self.queue.keys().next().map(|(t, _)| *t);
        let t = self
            .routers
            .iter()
            .flat_map(|r| r.timers.values())
            .min()
            .copied();
        match (q, t) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs every event up to and including time `until` (ms), then sets the clock there.
    pub fn run_until(&mut self, until: u64) {
        let mut budget = 2_000_000u64;
        while let Some(t) = self.next_event() {
            if t > until {
                break;
            }
            budget -= 1;
            assert!(budget > 0, "simulation does not settle");
            self.now = t;
            if let Some(((qt, _), _)) = self.queue.first_key_value() {
                if *qt == t {
                    let (_, d) = self.queue.pop_first().unwrap();
                    self.input(
                        d.router,
                        Input::Packet {
                            ifname: d.ifname,
                            src: d.src,
                            dst: d.dst,
                            data: d.data,
                        },
                    );
                    continue;
                }
            }
            // Timers: the first router (by index) with a timer due now.
            let due = self.routers.iter().enumerate().find_map(|(i, r)| {
                r.timers
                    .iter()
                    .filter(|(_, at)| **at == t)
                    .map(|(k, _)| k.clone())
                    .next()
                    .map(|k| (i, k))
            });
            if let Some((i, k)) = due {
                self.routers[i].timers.remove(&k);
                self.input(i, Input::Timer(k));
            }
        }
        self.now = until;
    }

    /// Runs for `ms` more milliseconds.
    pub fn run_for(&mut self, ms: u64) {
        self.run_until(self.now + ms);
    }

    /// Runs until `cond` holds (checked after each event), at most until `deadline`;
    /// returns the time it first held.
    pub fn run_until_cond(&mut self, deadline: u64, cond: impl Fn(&Sim) -> bool) -> Option<u64> {
        if cond(self) {
            return Some(self.now);
        }
        while let Some(t) = self.next_event() {
            if t > deadline {
                break;
            }
            self.run_until(t);
            if cond(self) {
                return Some(t);
            }
        }
        None
    }

    /// Index of a router by name.
    pub fn idx(&self, name: &str) -> usize {
        self.routers.iter().position(|r| r.name == name).unwrap()
    }

    /// A readable state dump: neighbors, routes for the RIB, LSDB keys and sequence numbers.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        for r in &self.routers {
            writeln!(s, "== {} (router ID {:?})", r.name, r.inst.router_id()).unwrap();
            for i in r.inst.interfaces() {
                writeln!(
                    s,
                    "  if {} {:?} {:?} DR {} BDR {} adjacent {}/{}",
                    i.name, i.if_type, i.state, i.dr, i.bdr, i.adjacent, i.neighbors
                )
                .unwrap();
            }
            for n in r.inst.neighbors() {
                writeln!(
                    s,
                    "  nbr {} on {} {:?} pri {}",
                    n.router_id, n.interface, n.state, n.priority
                )
                .unwrap();
            }
            for (p, rt) in &r.routes {
                let nh: Vec<String> = rt
                    .nexthops
                    .iter()
                    .map(|n| {
                        format!(
                            "{}%{}",
                            n.gateway.map_or("direct".to_string(), |g| g.to_string()),
                            n.ifname
                        )
                    })
                    .collect();
                writeln!(
                    s,
                    "  route {p} {:?} metric {} via {}",
                    rt.path_type,
                    rt.metric,
                    nh.join(",")
                )
                .unwrap();
            }
            let mut keys = BTreeSet::new();
            for l in r.inst.database(None, None) {
                keys.insert(format!(
                    "  lsa {:?} type {} id {} adv {}{}",
                    l.area,
                    l.header.ls_type,
                    l.header.lsid,
                    l.header.adv_router,
                    if l.header.is_maxage() { " MAXAGE" } else { "" }
                ));
            }
            for k in keys {
                writeln!(s, "{k}").unwrap();
            }
        }
        s
    }
}

/// Compares `actual` with `tests/snapshots/<name>.txt`; OXR_UPDATE_SNAPSHOTS=1 (or a missing
/// file) writes it instead.
pub fn snapshot(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("OXR_UPDATE_SNAPSHOTS").is_some() || !path.exists() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        expected,
        actual,
        "snapshot {} differs (OXR_UPDATE_SNAPSHOTS=1 rewrites it)",
        path.display()
    );
}
