//! Speakers wired through an in-memory transport with a fake clock: sessions,
//! route exchange, route reflection, policy, route refresh, graceful restart,
//! RFC 7606 handling. No sockets.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ipnet::IpNet;
use oxr_bgp::config::BgpConfig;
use oxr_bgp::instance::{
    ClearMode, Command, ConnId, Input, Instance, Output, RibChange, RibRoute, TimerKey,
    ACCEPTED_CONN_BASE,
};
use oxr_bgp::packet::attribute::{
    AsPath, Community, LargeCommunity, Origin, PathAttributes, RawAttribute, FLAG_OPTIONAL,
    FLAG_PARTIAL, FLAG_TRANSITIVE,
};
use oxr_bgp::packet::header::frame;
use oxr_bgp::packet::{AfiSafi, Capability, Message, Open, SessionContext, Update};
use oxr_bgp::session::State;

/// Where a connection end's bytes go.
enum Endpoint {
    Node(usize, ConnId),
    /// A test-scripted peer: bytes are collected for inspection.
    Script(usize),
}

struct Node {
    addr: IpAddr,
    inst: Instance,
    up: bool,
    timers: BTreeMap<TimerKey, u64>,
    rib: BTreeMap<IpNet, RibRoute>,
    rib_eor: bool,
}

/// A scripted peer's view: what the instance sent it.
#[derive(Default)]
struct Script {
    node: usize,
    conn: ConnId,
    rx: Vec<u8>,
    closed: bool,
}

impl Script {
    fn messages(&mut self) -> Vec<Message> {
        let ctx = SessionContext::new_4byte(true);
        let mut v = Vec::new();
        while let Ok(Some(n)) = frame(&self.rx) {
            let m: Vec<u8> = self.rx.drain(..n).collect();
            v.push(Message::decode(&m, &ctx).expect("instance sends valid messages"));
        }
        v
    }
}

#[derive(Default)]
struct Net {
    now: u64,
    nodes: Vec<Node>,
    links: HashMap<(usize, ConnId), Endpoint>,
    scripts: Vec<Script>,
    queue: VecDeque<(usize, Input)>,
    next_accept: ConnId,
    /// Deliver every queued input of a node in one `handle_many` (as the
    /// process does with what its sockets have ready).
    batched: bool,
}

fn sock(a: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(a, port)
}

impl Net {
    fn add(&mut self, cfg: &str) -> usize {
        let cfg: BgpConfig = toml::from_str(cfg).expect("config parses");
        assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
        let addr = IpAddr::V4(cfg.router_id);
        let mut inst = Instance::new(cfg);
        let outs = inst.start(self.now);
        self.nodes.push(Node {
            addr,
            inst,
            up: true,
            timers: BTreeMap::new(),
            rib: BTreeMap::new(),
            rib_eor: false,
        });
        let i = self.nodes.len() - 1;
        self.apply(i, outs);
        i
    }

    /// Same as `add` with a transport address other than the router id.
    fn add_at(&mut self, addr: IpAddr, cfg: &str) -> usize {
        let i = self.add(cfg);
        self.nodes[i].addr = addr;
        i
    }

    /// Kills node `i` (no NOTIFICATION, connections drop) and starts a new
    /// process with `cfg` in its place.
    fn restart(&mut self, i: usize, cfg: &str) {
        self.crash(i);
        let cfg: BgpConfig = toml::from_str(cfg).unwrap();
        let mut inst = Instance::new(cfg);
        let outs = inst.start(self.now);
        self.nodes[i].inst = inst;
        self.nodes[i].up = true;
        self.apply(i, outs);
        self.run();
    }

    fn crash(&mut self, i: usize) {
        self.nodes[i].up = false;
        self.nodes[i].timers.clear();
        let ends: Vec<(usize, ConnId)> = self.links.keys().filter(|k| k.0 == i).copied().collect();
        for k in ends {
            if let Some(Endpoint::Node(j, c)) = self.links.remove(&k) {
                self.links.remove(&(j, c));
                self.queue.push_back((j, Input::Closed { conn: c }));
            }
        }
        self.queue.retain(|(n, _)| *n != i);
        self.run();
    }

    fn apply(&mut self, i: usize, outs: Vec<Output>) {
        for o in outs {
            match o {
                Output::Connect { conn, peer, .. } => {
                    let j = self.nodes.iter().position(|n| n.addr == peer.ip() && n.up);
                    match j {
                        Some(j) => {
                            self.next_accept += 1;
                            let acc = ACCEPTED_CONN_BASE + self.next_accept;
                            self.links.insert((i, conn), Endpoint::Node(j, acc));
                            self.links.insert((j, acc), Endpoint::Node(i, conn));
                            let (a, b) = (self.nodes[i].addr, self.nodes[j].addr);
                            self.queue.push_back((
                                i,
                                Input::Connected {
                                    conn,
                                    local: sock(a, 40000),
                                },
                            ));
                            self.queue.push_back((
                                j,
                                Input::Accepted {
                                    conn: acc,
                                    peer: sock(a, 40000),
                                    local: sock(b, 179),
                                },
                            ));
                        }
                        None => self.queue.push_back((i, Input::Closed { conn })),
                    }
                }
                Output::Send { conn, bytes } => match self.links.get(&(i, conn)) {
                    Some(Endpoint::Node(j, c)) => self
                        .queue
                        .push_back((*j, Input::Received { conn: *c, bytes })),
                    Some(Endpoint::Script(s)) => self.scripts[*s].rx.extend_from_slice(&bytes),
                    None => {}
                },
                Output::Close { conn } => match self.links.remove(&(i, conn)) {
                    Some(Endpoint::Node(j, c)) => {
                        self.links.remove(&(j, c));
                        self.queue.push_back((j, Input::Closed { conn: c }));
                    }
                    Some(Endpoint::Script(s)) => self.scripts[s].closed = true,
                    None => {}
                },
                Output::SetTimer { key, after_ms } => {
                    self.nodes[i].timers.insert(key, self.now + after_ms);
                }
                Output::CancelTimer { key } => {
                    self.nodes[i].timers.remove(&key);
                }
                Output::Rib(changes) => {
                    for c in changes {
                        match c {
                            RibChange::Add(r) => {
                                self.nodes[i].rib.insert(r.prefix, r);
                            }
                            RibChange::Withdraw(p) => {
                                self.nodes[i].rib.remove(&p);
                            }
                        }
                    }
                }
                Output::RibEndOfRib => self.nodes[i].rib_eor = true,
                _ => {}
            }
        }
    }

    fn input(&mut self, i: usize, input: Input) {
        self.queue.push_back((i, input));
        self.run();
    }

    fn run(&mut self) {
        let mut steps = 0;
        while let Some((i, input)) = self.queue.pop_front() {
            steps += 1;
            assert!(steps < 100_000, "no quiescence");
            if !self.nodes[i].up {
                continue;
            }
            let outs = if self.batched {
                let mut inputs = vec![input];
                while self.queue.front().is_some_and(|(j, _)| *j == i) {
                    inputs.push(self.queue.pop_front().expect("checked").1);
                }
                self.nodes[i].inst.handle_many(self.now, inputs)
            } else {
                self.nodes[i].inst.handle(self.now, input)
            };
            self.apply(i, outs);
        }
    }

    /// Advances the clock by `ms`, firing due timers in order.
    fn advance(&mut self, ms: u64) {
        let end = self.now + ms;
        loop {
            self.run();
            let next = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.up)
                .flat_map(|(i, n)| n.timers.iter().map(move |(k, t)| (*t, i, *k)))
                .min();
            match next {
                Some((t, i, k)) if t <= end => {
                    self.now = self.now.max(t);
                    self.nodes[i].timers.remove(&k);
                    self.queue.push_back((i, Input::TimerFired(k)));
                }
                _ => break,
            }
        }
        self.now = end;
    }

    fn state(&self, i: usize, peer: &str) -> State {
        self.nodes[i].inst.state(peer.parse().unwrap()).unwrap()
    }

    /// Opens a scripted session from `peer` (AS `asn`) to node `i` and
    /// completes the handshake; returns the script index.
    fn script(&mut self, i: usize, peer: IpAddr, asn: u32, id: Ipv4Addr) -> usize {
        self.next_accept += 1;
        let conn = ACCEPTED_CONN_BASE + self.next_accept;
        self.scripts.push(Script {
            node: i,
            conn,
            ..Default::default()
        });
        let s = self.scripts.len() - 1;
        self.links.insert((i, conn), Endpoint::Script(s));
        let local = self.nodes[i].addr;
        self.input(
            i,
            Input::Accepted {
                conn,
                peer: sock(peer, 50000),
                local: sock(local, 179),
            },
        );
        let open = Open::new(
            asn,
            90,
            id,
            vec![
                Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
                Capability::Multiprotocol(AfiSafi::IPV6_UNICAST),
                Capability::RouteRefresh,
            ],
        );
        self.send(s, &Message::Open(open));
        self.send(s, &Message::Keepalive);
        s
    }

    fn send(&mut self, s: usize, m: &Message) {
        let ctx = SessionContext::new_4byte(true);
        let bytes = m.encode(&ctx).unwrap();
        self.send_raw(s, bytes);
    }

    fn send_raw(&mut self, s: usize, bytes: Vec<u8>) {
        let (i, conn) = (self.scripts[s].node, self.scripts[s].conn);
        self.input(i, Input::Received { conn, bytes });
    }

    fn loc(&self, i: usize, p: &str) -> Vec<oxr_bgp::instance::PathView> {
        self.nodes[i].inst.routes(Some(p.parse().unwrap()))
    }
}

fn pfx(s: &str) -> IpNet {
    s.parse().unwrap()
}

const ACCEPT_ALL: &str = r#"
[policy.ALL.term.1.then]
action = "accept"
"#;

fn ebgp_pair() -> (Net, usize, usize) {
    ebgp_pair_with(Net::default())
}

fn ebgp_pair_with(mut net: Net) -> (Net, usize, usize) {
    let a = net.add(&format!(
        r#"
local-as = 4200000001
router-id = "10.0.0.1"
network = ["192.0.2.0/24", "198.51.100.0/24"]
[neighbor."10.0.0.2"]
remote-as = 4200000002
import-policy = ["ALL"]
export-policy = ["ALL"]
graceful-restart = {{ enabled = true, restart-time = 120 }}
{ACCEPT_ALL}"#
    ));
    let b = net.add(&format!(
        r#"
local-as = 4200000002
router-id = "10.0.0.2"
network = ["203.0.113.0/24"]
[neighbor."10.0.0.1"]
remote-as = 4200000001
import-policy = ["ALL"]
export-policy = ["ALL"]
graceful-restart = {{ enabled = true, restart-time = 120 }}
{ACCEPT_ALL}"#
    ));
    net.advance(5_000);
    (net, a, b)
}

#[test]
fn batched_inputs_reach_the_same_state() {
    let (one, a1, b1) = ebgp_pair();
    let (many, a2, b2) = ebgp_pair_with(Net {
        batched: true,
        ..Net::default()
    });
    assert_eq!(many.state(a2, "10.0.0.2"), State::Established);
    assert_eq!(many.state(b2, "10.0.0.1"), State::Established);
    for (x, y) in [(a1, a2), (b1, b2)] {
        assert_eq!(one.nodes[x].rib, many.nodes[y].rib);
        assert_eq!(one.nodes[x].rib_eor, many.nodes[y].rib_eor);
        assert_eq!(
            one.nodes[x].inst.loc_rib_len(),
            many.nodes[y].inst.loc_rib_len()
        );
    }
    assert_eq!(many.nodes[b2].rib.len(), 2);
}

#[test]
fn ebgp_sessions_with_4_octet_asns_exchange_routes_both_ways() {
    let (net, a, b) = ebgp_pair();
    assert_eq!(net.state(a, "10.0.0.2"), State::Established);
    assert_eq!(net.state(b, "10.0.0.1"), State::Established);
    // B learned A's two networks with A's AS prepended and A as next hop.
    for p in ["192.0.2.0/24", "198.51.100.0/24"] {
        let paths = net.loc(b, p);
        assert_eq!(paths.len(), 1, "{p}");
        assert_eq!(paths[0].as_path, "4200000001");
        assert_eq!(paths[0].next_hop, Some("10.0.0.1".parse().unwrap()));
        assert!(paths[0].best);
        let r = &net.nodes[b].rib[&pfx(p)];
        assert_eq!(r.nexthops, vec!["10.0.0.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(r.distance, 20);
    }
    assert_eq!(net.loc(a, "203.0.113.0/24")[0].as_path, "4200000002");
    assert!(net.nodes[a].rib.contains_key(&pfx("203.0.113.0/24")));
    // Own networks are not handed to the RIB.
    assert!(!net.nodes[a].rib.contains_key(&pfx("192.0.2.0/24")));
    // Both sent End-of-RIB, so both told their RIB theirs.
    assert!(net.nodes[a].rib_eor && net.nodes[b].rib_eor);
    // Keepalives hold the sessions over several hold times.
    let mut net = net;
    net.advance(400_000);
    assert_eq!(net.state(a, "10.0.0.2"), State::Established);
}

#[test]
fn ebgp_without_policy_exchanges_nothing_rfc8212() {
    let mut net = Net::default();
    let a = net.add(
        r#"
local-as = 65001
router-id = "10.0.0.1"
network = ["192.0.2.0/24"]
[neighbor."10.0.0.2"]
remote-as = 65002
"#,
    );
    let b = net.add(
        r#"
local-as = 65002
router-id = "10.0.0.2"
network = ["203.0.113.0/24"]
[neighbor."10.0.0.1"]
remote-as = 65001
"#,
    );
    net.advance(5_000);
    assert_eq!(net.state(a, "10.0.0.2"), State::Established);
    assert!(net.loc(b, "192.0.2.0/24").is_empty());
    assert!(net.loc(a, "203.0.113.0/24").is_empty());
}

#[test]
fn ipv6_routes_over_an_ipv6_session_carry_the_session_address_as_next_hop() {
    let mut net = Net::default();
    let a = net.add_at(
        "2001:db8::1".parse().unwrap(),
        &format!(
            r#"
local-as = 4200000001
router-id = "10.0.0.1"
network = ["2001:db8:a::/48"]
[neighbor."2001:db8::2"]
remote-as = 4200000002
afi = ["ipv4-unicast", "ipv6-unicast"]
import-policy = ["ALL"]
export-policy = ["ALL"]
{ACCEPT_ALL}"#
        ),
    );
    let b = net.add_at(
        "2001:db8::2".parse().unwrap(),
        &format!(
            r#"
local-as = 4200000002
router-id = "10.0.0.2"
[neighbor."2001:db8::1"]
remote-as = 4200000001
afi = ["ipv4-unicast", "ipv6-unicast"]
import-policy = ["ALL"]
export-policy = ["ALL"]
{ACCEPT_ALL}"#
        ),
    );
    net.advance(5_000);
    assert_eq!(net.state(a, "2001:db8::2"), State::Established);
    let r = &net.nodes[b].rib[&pfx("2001:db8:a::/48")];
    assert_eq!(r.nexthops, vec!["2001:db8::1".parse::<IpAddr>().unwrap()]);
    assert_eq!(net.loc(b, "2001:db8:a::/48")[0].as_path, "4200000001");
}

#[test]
fn route_reflector_reflects_between_two_clients() {
    let mut net = Net::default();
    let rr = net.add(
        r#"
local-as = 65000
router-id = "10.0.0.1"
[neighbor."10.0.0.2"]
remote-as = 65000
route-reflector-client = true
[neighbor."10.0.0.3"]
remote-as = 65000
route-reflector-client = true
"#,
    );
    let c1 = net.add(
        r#"
local-as = 65000
router-id = "10.0.0.2"
network = ["198.51.100.0/24"]
[neighbor."10.0.0.1"]
remote-as = 65000
"#,
    );
    let c2 = net.add(
        r#"
local-as = 65000
router-id = "10.0.0.3"
[neighbor."10.0.0.1"]
remote-as = 65000
"#,
    );
    net.advance(5_000);
    assert_eq!(net.state(rr, "10.0.0.2"), State::Established);
    assert_eq!(net.state(rr, "10.0.0.3"), State::Established);
    let p = net.loc(c2, "198.51.100.0/24");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].originator_id, Some(Ipv4Addr::new(10, 0, 0, 2)));
    assert_eq!(p[0].cluster_list, vec![Ipv4Addr::new(10, 0, 0, 1)]);
    assert_eq!(p[0].next_hop, Some("10.0.0.2".parse().unwrap()));
    assert_eq!(p[0].local_pref, Some(100));
    assert_eq!(p[0].as_path, "");
    let r = &net.nodes[c2].rib[&pfx("198.51.100.0/24")];
    assert_eq!((r.distance, r.recursive), (200, true));
    // The RR itself has it from C1; C1 does not get its own route back.
    assert_eq!(net.loc(rr, "198.51.100.0/24").len(), 1);
    assert_eq!(
        net.nodes[c1]
            .inst
            .received("10.0.0.1".parse().unwrap())
            .len(),
        0
    );
}

#[test]
fn ibgp_without_reflection_does_not_pass_ibgp_routes_on() {
    let mut net = Net::default();
    let mid = net.add(
        r#"
local-as = 65000
router-id = "10.0.0.1"
[neighbor."10.0.0.2"]
remote-as = 65000
[neighbor."10.0.0.3"]
remote-as = 65000
"#,
    );
    net.add(
        r#"
local-as = 65000
router-id = "10.0.0.2"
network = ["198.51.100.0/24"]
[neighbor."10.0.0.1"]
remote-as = 65000
"#,
    );
    let c2 = net.add(
        r#"
local-as = 65000
router-id = "10.0.0.3"
[neighbor."10.0.0.1"]
remote-as = 65000
"#,
    );
    net.advance(5_000);
    assert_eq!(net.loc(mid, "198.51.100.0/24").len(), 1);
    assert!(net.loc(c2, "198.51.100.0/24").is_empty());
}

const A_WITH_EXPORT: &str = r#"
local-as = 4200000001
router-id = "10.0.0.1"
[neighbor."10.0.0.2"]
remote-as = 4200000002
import-policy = ["ALL"]
export-policy = ["OUT"]
[neighbor."10.0.0.9"]
remote-as = 64999
import-policy = ["ALL"]
export-policy = ["ALL"]
[policy.ALL.term.1.then]
action = "accept"
[policy.OUT.term.10.match]
prefix-list = ["203.0.113.0/24"]
[policy.OUT.term.10.then]
action = "reject"
[policy.OUT.term.20.then]
med = 50
community.add = ["65000:1"]
as-path-prepend = { count = 2 }
action = "accept"
"#;

const B_PLAIN: &str = r#"
local-as = 4200000002
router-id = "10.0.0.2"
[neighbor."10.0.0.1"]
remote-as = 4200000001
import-policy = ["ALL"]
export-policy = ["ALL"]
[policy.ALL.term.1.then]
action = "accept"
"#;

/// An UPDATE from AS 64999 for `prefixes` with communities, large
/// communities and an unknown optional transitive attribute.
fn rich_update(prefixes: &[&str]) -> Message {
    Message::Update(Update {
        attributes: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::from_sequence(vec![64999, 4_000_000_000])),
            next_hop: Some(Ipv4Addr::new(10, 0, 0, 9)),
            med: Some(7),
            communities: vec![Community::new(64999, 42), Community::NO_EXPORT_SUBCONFED],
            large_communities: vec![LargeCommunity {
                global: 4_000_000_000,
                local1: 1,
                local2: 2,
            }],
            unknown: vec![RawAttribute {
                flags: FLAG_OPTIONAL | FLAG_TRANSITIVE,
                type_code: 99,
                value: vec![1, 2, 3],
            }],
            ..Default::default()
        },
        nlri: prefixes.iter().map(|p| p.parse().unwrap()).collect(),
        ..Default::default()
    })
}

fn three_party() -> (Net, usize, usize, usize) {
    let mut net = Net::default();
    let a = net.add(A_WITH_EXPORT);
    let b = net.add(B_PLAIN);
    net.advance(5_000);
    let s = net.script(
        a,
        "10.0.0.9".parse().unwrap(),
        64999,
        Ipv4Addr::new(10, 0, 0, 9),
    );
    net.send(
        s,
        &rich_update(&["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"]),
    );
    (net, a, b, s)
}

#[test]
fn communities_large_communities_and_unknown_transitive_attributes_pass_through() {
    let (net, a, b, _) = three_party();
    assert_eq!(net.state(a, "10.0.0.9"), State::Established);
    let p = &net.loc(b, "192.0.2.0/24")[0];
    assert!(p.communities.contains(&"64999:42".to_string()));
    assert!(p.large_communities.contains(&"4000000000:1:2".to_string()));
    // And the unknown attribute arrived with the Partial bit set.
    let e = net.nodes[b]
        .inst
        .loc_rib()
        .get(&pfx("192.0.2.0/24"))
        .unwrap();
    let u = &e.best().unwrap().attrs.unknown;
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].type_code, 99);
    assert_eq!(u[0].flags & FLAG_PARTIAL, FLAG_PARTIAL);
}

#[test]
fn export_policy_rejects_and_modifies() {
    let (net, _a, b, _) = three_party();
    // Rejected by prefix.
    assert!(net.loc(b, "203.0.113.0/24").is_empty());
    let p = &net.loc(b, "198.51.100.0/24")[0];
    // MED from AS 64999 is not passed on, the policy's is.
    assert_eq!(p.med, Some(50));
    assert!(p.communities.contains(&"65000:1".to_string()));
    // Own AS once by eBGP rules, twice by the policy.
    assert_eq!(
        p.as_path,
        "4200000001 4200000001 4200000001 64999 4000000000"
    );
    assert_eq!(net.nodes[b].rib[&pfx("198.51.100.0/24")].metric, 50);
}

#[test]
fn import_policy_change_uses_route_refresh_and_soft_in_requests_one() {
    let (mut net, a, b, _) = three_party();
    assert_eq!(net.loc(b, "192.0.2.0/24").len(), 1);
    // B starts rejecting 192.0.2.0/24 on import: it asks A to re-send.
    let cfg = B_PLAIN.to_string()
        + r#"
[policy.ALL.term.0.match]
prefix-list = ["192.0.2.0/24"]
[policy.ALL.term.0.then]
action = "reject"
"#;
    let before = net.nodes[a].inst.neighbors()[0].counters.messages_in;
    net.input(b, Input::Config(Box::new(toml::from_str(&cfg).unwrap())));
    assert!(net.nodes[a].inst.neighbors()[0].counters.messages_in > before);
    assert!(net.loc(b, "192.0.2.0/24").is_empty());
    assert_eq!(net.loc(b, "198.51.100.0/24").len(), 1);
    assert!(!net.nodes[b].rib.contains_key(&pfx("192.0.2.0/24")));
    // And back, by operator command after restoring the policy without reset.
    net.input(b, Input::Config(Box::new(toml::from_str(B_PLAIN).unwrap())));
    assert_eq!(net.loc(b, "192.0.2.0/24").len(), 1);
    let updates = net.nodes[b].inst.neighbors()[0].counters.updates_in;
    net.input(
        b,
        Input::Command(Command::Clear(
            "10.0.0.1".parse().unwrap(),
            ClearMode::SoftIn,
        )),
    );
    assert!(net.nodes[b].inst.neighbors()[0].counters.updates_in > updates);
    assert_eq!(net.state(b, "10.0.0.1"), State::Established);
}

#[test]
fn graceful_restart_helper_keeps_stale_routes_then_sweeps_after_end_of_rib() {
    let (mut net, a, b) = ebgp_pair();
    assert_eq!(net.loc(b, "198.51.100.0/24").len(), 1);
    // A dies without a NOTIFICATION and comes back originating one network only.
    net.crash(a);
    assert_eq!(net.state(b, "10.0.0.1"), State::Idle);
    let kept = net.loc(b, "198.51.100.0/24");
    assert_eq!(kept.len(), 1);
    assert!(kept[0].stale);
    assert!(
        net.nodes[b].rib.contains_key(&pfx("198.51.100.0/24")),
        "RIB untouched"
    );
    let cfg_a = format!(
        r#"
local-as = 4200000001
router-id = "10.0.0.1"
network = ["192.0.2.0/24"]
[neighbor."10.0.0.2"]
remote-as = 4200000002
import-policy = ["ALL"]
export-policy = ["ALL"]
graceful-restart = {{ enabled = true, restart-time = 120 }}
{ACCEPT_ALL}"#
    );
    net.restart(a, &cfg_a);
    net.advance(10_000);
    assert_eq!(net.state(b, "10.0.0.1"), State::Established);
    // Re-sent: fresh; not re-sent before End-of-RIB: swept.
    let p = net.loc(b, "192.0.2.0/24");
    assert_eq!(p.len(), 1);
    assert!(!p[0].stale);
    assert!(net.loc(b, "198.51.100.0/24").is_empty());
    assert!(!net.nodes[b].rib.contains_key(&pfx("198.51.100.0/24")));
}

#[test]
fn graceful_restart_helper_sweeps_when_the_peer_does_not_return() {
    let (mut net, a, b) = ebgp_pair();
    net.crash(a);
    net.advance(60_000);
    assert!(net.loc(b, "198.51.100.0/24")[0].stale);
    net.advance(70_000);
    assert!(net.loc(b, "198.51.100.0/24").is_empty());
    assert!(!net.nodes[b].rib.contains_key(&pfx("198.51.100.0/24")));
}

#[test]
fn malformed_update_is_treated_as_withdraw_and_keeps_the_session() {
    let (mut net, a, _b, s) = three_party();
    assert_eq!(net.loc(a, "198.51.100.0/24").len(), 1);
    // Same prefix, ORIGIN value 7: RFC 7606 7.1 treat-as-withdraw.
    let mut bytes = rich_update(&["198.51.100.0/24"])
        .encode(&SessionContext::new_4byte(true))
        .unwrap();
    // Path attributes start after header(19) + withdrawn len(2) + attr len(2):
    // ORIGIN is encoded first (flags, type 1, len 1, value).
    let at = 23;
    assert_eq!(&bytes[at..at + 3], &[0x40, 1, 1]);
    bytes[at + 3] = 7;
    net.send_raw(s, bytes);
    assert_eq!(net.state(a, "10.0.0.9"), State::Established);
    assert!(net.loc(a, "198.51.100.0/24").is_empty());
    assert_eq!(net.loc(a, "192.0.2.0/24").len(), 1);
    let st = net.nodes[a]
        .inst
        .neighbors()
        .into_iter()
        .find(|n| n.address == "10.0.0.9".parse::<IpAddr>().unwrap())
        .unwrap();
    assert_eq!(st.counters.update_errors.get("malformed-origin"), Some(&1));
    assert!(!net.scripts[s].closed);

    // Withdrawn Routes Length past the message: session reset with NOTIFICATION.
    let mut bad = Message::Update(Update::default())
        .encode(&SessionContext::new_4byte(true))
        .unwrap();
    bad[19] = 0x10;
    net.send_raw(s, bad);
    assert_eq!(net.state(a, "10.0.0.9"), State::Idle);
    assert!(net.scripts[s].closed);
    let msgs = net.scripts[s].messages();
    assert!(matches!(msgs.last(), Some(Message::Notification(n)) if n.code == 3));
    // Its routes are gone (no GR with this peer).
    assert!(net.loc(a, "192.0.2.0/24").is_empty());
}

#[test]
fn as_path_loop_is_rejected() {
    let (mut net, a, _b, s) = three_party();
    let mut u = rich_update(&["100.64.0.0/10"]);
    if let Message::Update(u) = &mut u {
        u.attributes.as_path = Some(AsPath::from_sequence(vec![64999, 4200000001]));
    }
    net.send(s, &u);
    assert!(net.loc(a, "100.64.0.0/10").is_empty());
}

#[test]
fn collision_of_simultaneous_connections_leaves_one_session() {
    // Both sides reset at the same instant and both connect at once; the
    // in-memory network delivers both connections before either OPEN.
    let (mut net, a, b) = ebgp_pair();
    for (i, peer) in [(a, "10.0.0.2"), (b, "10.0.0.1")] {
        net.queue.push_back((
            i,
            Input::Command(Command::Clear(peer.parse().unwrap(), ClearMode::Hard)),
        ));
    }
    net.run();
    net.advance(10_000);
    assert_eq!(net.state(a, "10.0.0.2"), State::Established);
    assert_eq!(net.state(b, "10.0.0.1"), State::Established);
    let links = net.links.len();
    assert_eq!(links, 2, "one connection, two ends");
    net.advance(200_000);
    assert_eq!(net.state(a, "10.0.0.2"), State::Established);
}

#[test]
fn hard_clear_resets_and_reestablishes() {
    let (mut net, a, b) = ebgp_pair();
    net.input(
        a,
        Input::Command(Command::Clear("10.0.0.2".parse().unwrap(), ClearMode::Hard)),
    );
    net.advance(10_000);
    assert_eq!(net.state(a, "10.0.0.2"), State::Established);
    assert_eq!(net.loc(b, "192.0.2.0/24").len(), 1);
    assert!(!net.loc(b, "192.0.2.0/24")[0].stale);
}

#[test]
fn mrt_dump_on_command() {
    let (mut net, a, _b) = ebgp_pair();
    let outs = net.nodes[a]
        .inst
        .handle(net.now, Input::Command(Command::MrtDump));
    let data = outs
        .iter()
        .find_map(|o| match o {
            Output::MrtDump { data, .. } => Some(data.clone()),
            _ => None,
        })
        .unwrap();
    // Peer index table + 3 prefixes.
    let mut n = 0;
    let mut rest = &data[..];
    while rest.len() >= 12 {
        let len = u32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]) as usize;
        rest = &rest[12 + len..];
        n += 1;
    }
    assert_eq!(n, 4);
}

#[test]
fn show_clear_and_metrics_render_from_the_instance() {
    use oxr_bgp::api;
    let (net, a, _b) = ebgp_pair();
    let w = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    let inst = &net.nodes[a].inst;
    let r = api::request(inst, &w("bgp summary")).unwrap();
    assert!(
        r.text.contains("10.0.0.2") && r.text.contains("Established"),
        "{}",
        r.text
    );
    assert_eq!(r.json["neighbors"][0]["state"], "Established");
    let r = api::request(inst, &w("bgp routes 203.0.113.0/24")).unwrap();
    assert!(
        r.text.contains("*>") && r.text.contains("4200000002"),
        "{}",
        r.text
    );
    let r = api::request(inst, &w("bgp routes advertised neighbor 10.0.0.2")).unwrap();
    assert_eq!(r.json.as_array().unwrap().len(), 2);
    let r = api::request(inst, &w("clear bgp neighbor 10.0.0.2 soft in")).unwrap();
    assert_eq!(
        r.command,
        Some(Command::Clear(
            "10.0.0.2".parse().unwrap(),
            ClearMode::SoftIn
        ))
    );
    assert!(api::request(inst, &w("clear bgp neighbor 10.0.0.7")).is_err());
    let m = api::metrics(inst);
    assert!(
        m.contains("oxr_bgp_neighbor_established{peer=\"10.0.0.2\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("oxr_bgp_prefixes_accepted{peer=\"10.0.0.2\"} 1"),
        "{m}"
    );
}
