//! Instances on a simulated network with a fake clock: packets are delivered between
//! routers sharing a link, timers fire in order. No sockets, no sleeping.
//!
//! Topology (chain): A eth0 10.0.12.1 --- 10.0.12.2 eth0 B eth1 10.0.23.2 --- 10.0.23.3 eth0 C
//! C also has a passive interface lo with 192.0.2.3/32.
//! Expected files under tests/snapshots/ (rewrite with OXR_UPDATE_SNAPSHOTS=1).

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

use ipnet::Ipv4Net;
use oxr_rip::config::RipConfig;
use oxr_rip::instance::{IfaceState, Input, Instance, Output, TimerKey};
use oxr_rip::packet::{self, Command, RIP_PORT};
use serde_json::json;

struct Router {
    name: &'static str,
    inst: Instance,
    timers: BTreeMap<TimerKey, u64>,
    /// ifname -> (link id, address)
    links: BTreeMap<String, (u32, Ipv4Net)>,
    /// RIB as published: prefix -> (gateway, ifname, metric)
    rib: BTreeMap<Ipv4Net, (Ipv4Addr, String, u8)>,
    /// Datagrams sent: (time, ifname, data)
    sent: Vec<(u64, String, Vec<u8>)>,
    silent: bool,
}

struct Net {
    now: u64,
    routers: Vec<Router>,
    queue: VecDeque<(usize, Input)>,
}

fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

impl Net {
    fn new() -> Self {
        Net {
            now: 0,
            routers: vec![],
            queue: VecDeque::new(),
        }
    }

    /// Adds a router with (ifname, link, address) interfaces and a TOML config.
    fn router(&mut self, name: &'static str, ifs: &[(&str, u32, &str)], config: &str) -> usize {
        let idx = self.routers.len();
        let mut links = BTreeMap::new();
        self.routers.push(Router {
            name,
            inst: Instance::new(1000),
            timers: BTreeMap::new(),
            links: BTreeMap::new(),
            rib: BTreeMap::new(),
            sent: vec![],
            silent: false,
        });
        let cfg: RipConfig = toml::from_str(config).unwrap();
        assert!(cfg.validate().is_empty());
        self.queue.push_back((idx, Input::Config(Some(cfg))));
        for (i, (ifname, link, addr)) in ifs.iter().enumerate() {
            links.insert(ifname.to_string(), (*link, net(addr)));
            self.queue.push_back((
                idx,
                Input::Interface(IfaceState {
                    name: ifname.to_string(),
                    ifindex: i as u32 + 1,
                    up: true,
                    addrs: vec![net(addr)],
                }),
            ));
        }
        self.routers[idx].links = links;
        self.run_queue();
        idx
    }

    fn handle(&mut self, idx: usize, input: Input) {
        let now = self.now;
        let outs = self.routers[idx].inst.handle(now, input);
        for o in outs {
            let r = &mut self.routers[idx];
            match o {
                Output::Send { ifname, dst, data } => {
                    r.sent.push((now, ifname.clone(), data.clone()));
                    if r.silent {
                        continue;
                    }
                    let (link, addr) = r.links[&ifname];
                    let src = SocketAddrV4::new(addr.addr(), RIP_PORT);
                    for (j, peer) in self.routers.iter().enumerate() {
                        if j == idx {
                            continue;
                        }
                        for (pif, (plink, paddr)) in &peer.links {
                            let to_me = dst.ip().is_multicast() || *dst.ip() == paddr.addr();
                            if *plink == link && to_me {
                                self.queue.push_back((
                                    j,
                                    Input::Packet {
                                        ifname: pif.clone(),
                                        src,
                                        data: data.clone(),
                                    },
                                ));
                            }
                        }
                    }
                }
                Output::Timer { key, at: Some(at) } => {
                    r.timers.insert(key, at);
                }
                Output::Timer { key, at: None } => {
                    r.timers.remove(&key);
                }
                Output::RouteAdd {
                    prefix,
                    gateway,
                    ifname,
                    metric,
                } => {
                    r.rib.insert(prefix, (gateway, ifname, metric));
                }
                Output::RouteWithdraw { prefix } => {
                    r.rib.remove(&prefix);
                }
                Output::Log(_) => {}
            }
        }
    }

    fn run_queue(&mut self) {
        while let Some((idx, input)) = self.queue.pop_front() {
            self.handle(idx, input);
        }
    }

    /// Advances the clock to `until`, firing timers in time order.
    fn run_until(&mut self, until: u64) {
        loop {
            let next = self
                .routers
                .iter()
                .enumerate()
                .flat_map(|(i, r)| r.timers.iter().map(move |(k, at)| (*at, i, k.clone())))
                .filter(|(at, _, _)| *at <= until)
                .min();
            let Some((at, idx, key)) = next else { break };
            self.now = self.now.max(at);
            self.routers[idx].timers.remove(&key);
            self.handle(idx, Input::Timer(key));
            self.run_queue();
        }
        self.now = until;
    }

    fn rib_json(&self) -> serde_json::Value {
        json!(self
            .routers
            .iter()
            .map(|r| (
                r.name.to_string(),
                r.rib
                    .iter()
                    .map(|(p, (gw, i, m))| (p.to_string(), format!("via {gw} dev {i} metric {m}")))
                    .collect::<BTreeMap<_, _>>()
            ))
            .collect::<BTreeMap<_, _>>())
    }
}

const TIMERS: &str = "[timers]\nupdate-interval = 5\ntimeout = 15\ngarbage-collection = 10\n";

fn chain(a_extra: &str, b_eth0_extra: &str) -> Net {
    let mut n = Net::new();
    n.router(
        "A",
        &[("eth0", 12, "10.0.12.1/24")],
        &format!("{TIMERS}[interfaces.eth0]\n{a_extra}"),
    );
    n.router(
        "B",
        &[("eth0", 12, "10.0.12.2/24"), ("eth1", 23, "10.0.23.2/24")],
        &format!("{TIMERS}[interfaces.eth0]\n{b_eth0_extra}\n[interfaces.eth1]\n"),
    );
    n.router(
        "C",
        &[("eth0", 23, "10.0.23.3/24"), ("lo", 99, "192.0.2.3/32")],
        &format!("{TIMERS}[interfaces.eth0]\n[interfaces.lo]\npassive = true\n"),
    );
    n
}

fn snapshot(name: &str, v: &serde_json::Value) {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/snapshots/{name}.json"));
    oxr_sdk::snapshot::check_json(&path, v);
}

/// Entries of the last periodic response `r` sent on `ifname`: prefix -> metric.
fn last_update(r: &Router, ifname: &str) -> BTreeMap<String, u32> {
    let (_, _, data) = r
        .sent
        .iter()
        .rev()
        .find(|(_, i, d)| {
            i == ifname && packet::decode(d).is_ok_and(|(p, _)| p.command == Command::Response)
        })
        .expect("a response was sent");
    let (p, _) = packet::decode(data).unwrap();
    p.entries
        .iter()
        .map(|e| (e.prefix().unwrap().to_string(), e.metric))
        .collect()
}

#[test]
fn three_routers_converge_within_a_triggered_update() {
    let mut n = chain("", "");
    n.run_until(2_000);
    let a = &n.routers[0].rib;
    assert_eq!(
        a.get(&net("192.0.2.3/32")),
        Some(&("10.0.12.2".parse().unwrap(), "eth0".to_string(), 3))
    );
    assert_eq!(n.routers[2].rib[&net("10.0.12.0/24")].2, 2);
    snapshot("converged-rib", &n.rib_json());
}

#[test]
fn split_horizon_poisons_routes_back_to_where_they_came_from() {
    let mut n = chain("", "");
    n.run_until(6_000); // past one periodic update
    let b = &n.routers[1];
    let towards_a = last_update(b, "eth0");
    let towards_c = last_update(b, "eth1");
    // 192.0.2.3/32 came from C over eth1: announced to A, poisoned back to C.
    assert_eq!(towards_a["192.0.2.3/32"], 2);
    assert_eq!(towards_c["192.0.2.3/32"], 16);
    assert_eq!(towards_a["10.0.12.0/24"], 1);
    snapshot(
        "split-horizon-b-updates",
        &json!({ "eth0": towards_a, "eth1": towards_c }),
    );

    let mut simple = chain("", "");
    for r in &mut simple.routers {
        r.sent.clear();
    }
    // Simple split horizon on B's eth1: the route is left out instead.
    simple.queue.push_back((
        1,
        Input::Config(Some(
            toml::from_str(&format!(
                "{TIMERS}[interfaces.eth0]\n[interfaces.eth1]\nsplit-horizon = \"simple\"\n"
            ))
            .unwrap(),
        )),
    ));
    simple.run_queue();
    simple.run_until(6_000);
    let towards_c = last_update(&simple.routers[1], "eth1");
    assert!(!towards_c.contains_key("192.0.2.3/32"));
    assert!(towards_c.contains_key("10.0.12.0/24"));
}

#[test]
fn silent_neighbor_times_out_then_is_garbage_collected() {
    let mut n = chain("", "");
    n.run_until(6_000);
    assert!(n.routers[0].rib.contains_key(&net("192.0.2.3/32")));
    n.routers[2].silent = true;
    let silent_at = n.now;
    // Last refresh from C was at most one update interval (5 s) before it went silent.
    n.run_until(silent_at + 9_000);
    assert!(
        n.routers[1].rib.contains_key(&net("192.0.2.3/32")),
        "not before the timeout"
    );
    n.run_until(silent_at + 15_000 + 1_500);
    assert!(
        !n.routers[1].rib.contains_key(&net("192.0.2.3/32")),
        "timed out at B"
    );
    assert!(
        !n.routers[0].rib.contains_key(&net("192.0.2.3/32")),
        "A heard the poison"
    );
    assert_eq!(n.routers[1].inst.routes[&net("192.0.2.3/32")].metric, 16);
    assert!(n.routers[1].inst.counter("routes-timed-out") >= 1);
    snapshot("after-timeout-rib", &n.rib_json());
    // Garbage collection 10 s after the timeout removes it from the table.
    n.run_until(silent_at + 15_000 + 11_000);
    assert!(!n.routers[1].inst.routes.contains_key(&net("192.0.2.3/32")));
    assert!(
        !n.routers[1].inst.routes.contains_key(&net("10.0.23.0/24"))
            || n.routers[1].inst.routes[&net("10.0.23.0/24")].metric == 1
    );
}

#[test]
fn authenticated_link_converges_and_a_wrong_key_is_counted() {
    let auth = |k: &str| format!("authentication = {{ key-id = 1, key = \"{k}\" }}\n");
    let mut good = chain(&auth("s3cret"), &auth("s3cret"));
    good.run_until(2_000);
    assert!(good.routers[0].rib.contains_key(&net("192.0.2.3/32")));
    assert_eq!(good.routers[0].inst.counter("rx-auth-failures"), 0);

    let mut bad = chain(&auth("s3cret"), &auth("other"));
    bad.run_until(6_000);
    assert!(bad.routers[0].rib.is_empty());
    assert!(bad.routers[0].inst.counter("rx-auth-failures") >= 2);
    assert!(bad.routers[1].inst.counter("rx-auth-failures") >= 2);

    // A replayed (older) signed packet is refused by sequence number.
    let a = &good.routers[0];
    let older = a
        .sent
        .iter()
        .find(|(_, i, _)| i == "eth0")
        .unwrap()
        .2
        .clone();
    let before = good.routers[1].inst.counter("rx-auth-sequence");
    good.handle(
        1,
        Input::Packet {
            ifname: "eth0".into(),
            src: SocketAddrV4::new("10.0.12.1".parse().unwrap(), RIP_PORT),
            data: older,
        },
    );
    assert_eq!(good.routers[1].inst.counter("rx-auth-sequence"), before + 1);
}

#[test]
fn passive_interface_is_announced_but_silent() {
    let mut n = chain("", "");
    n.run_until(6_000);
    let c = &n.routers[2];
    assert!(c.sent.iter().all(|(_, i, _)| i != "lo"));
    assert!(n.routers[0].rib.contains_key(&net("192.0.2.3/32")));
    // A loopback's 127/8 is never announced (neighbors must refuse it).
    n.queue.push_back((
        2,
        Input::Interface(IfaceState {
            name: "lo".into(),
            ifindex: 2,
            up: true,
            addrs: vec![net("192.0.2.3/32"), net("127.0.0.1/8")],
        }),
    ));
    n.run_queue();
    n.run_until(12_000);
    assert!(!n.routers[2].inst.routes.contains_key(&net("127.0.0.0/8")));
    assert_eq!(n.routers[0].inst.counter("rx-bad-routes"), 0);
}

#[test]
fn redistributed_routes_are_announced_with_their_metric() {
    let mut n = chain("", "");
    n.queue.push_back((
        2,
        Input::Config(Some(
            toml::from_str(&format!(
                "{TIMERS}[interfaces.eth0]\n[redistribute.static]\nmetric = 5\n"
            ))
            .unwrap(),
        )),
    ));
    n.queue.push_back((
        2,
        Input::Redistribute {
            add: vec![("static".into(), net("198.51.100.0/24"))],
            withdraw: vec![],
        },
    ));
    n.run_queue();
    n.run_until(2_000);
    assert_eq!(n.routers[0].rib[&net("198.51.100.0/24")].2, 7);
    // lo is no longer a RIP interface: its network is withdrawn by poison.
    assert!(!n.routers[0].rib.contains_key(&net("192.0.2.3/32")));
    n.queue.push_back((
        2,
        Input::Redistribute {
            add: vec![],
            withdraw: vec![net("198.51.100.0/24")],
        },
    ));
    n.run_queue();
    n.run_until(4_000);
    assert!(!n.routers[0].rib.contains_key(&net("198.51.100.0/24")));
}

#[test]
fn whole_table_query_from_a_tool_is_answered_unicast_without_split_horizon() {
    let mut n = chain("", "");
    n.run_until(2_000);
    let req = packet::encode(
        &packet::Packet {
            command: Command::Request,
            version: 2,
            entries: vec![packet::Entry::whole_table()],
        },
        None,
    );
    let outs = n.routers[1].inst.handle(
        n.now,
        Input::Packet {
            ifname: "eth1".into(),
            src: SocketAddrV4::new("10.0.23.3".parse().unwrap(), 40000),
            data: req,
        },
    );
    let Some(Output::Send { dst, data, .. }) =
        outs.iter().find(|o| matches!(o, Output::Send { .. }))
    else {
        panic!("no answer: {outs:?}")
    };
    assert_eq!(dst.port(), 40000);
    let (p, _) = packet::decode(data).unwrap();
    let got: BTreeMap<String, u32> = p
        .entries
        .iter()
        .map(|e| (e.prefix().unwrap().to_string(), e.metric))
        .collect();
    assert_eq!(got["192.0.2.3/32"], 2, "no poisoning for a query");
}

#[test]
fn malformed_packets_are_counted_not_fatal() {
    let mut n = chain("", "");
    n.run_until(2_000);
    for data in [
        vec![],
        vec![2, 2, 0],
        vec![9, 2, 0, 0],
        vec![2, 2, 0, 0, 1, 2, 3],
    ] {
        n.handle(
            0,
            Input::Packet {
                ifname: "eth0".into(),
                src: SocketAddrV4::new("10.0.12.2".parse().unwrap(), RIP_PORT),
                data,
            },
        );
    }
    let i = &n.routers[0].inst;
    assert_eq!(i.counter("rx-bad-length") + i.counter("rx-bad-command"), 4);
    assert!(n.routers[0].rib.contains_key(&net("192.0.2.3/32")));
}
