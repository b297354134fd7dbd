//! The hello instance: flooding and aging as a pure function of (time, input) -> outputs.
//!
//! ```text
//!   routerd ──ConfigWatcher──> Input::Config ─────┐
//!   oxr-fea ──InterfaceWatcher─> Input::Interface ┤                      ┌─> Output::Send  ─> UDP socket
//!   UDP socket per interface ──> Input::Packet ───┼─> Instance::handle ──┼─> Output::Timer ─> timer wheel
//!   timer wheel ───────────────> Input::Timer ────┘    (now, input)      └─> Output::Rib   ─> RibPublisher
//! ```
//!
//! Every `hello-interval` the router sends its own hello (origin: its ID, the lowest
//! non-loopback IPv4 address it has; a new sequence number; its connected prefixes) on
//! every hello interface. A hello from another origin with a newer sequence number is
//! remembered (with the neighbour it came from, until `hold-time` passes), relayed once on
//! the other hello interfaces, and its prefixes are installed via that neighbour. An older
//! or repeated hello is dropped, which ends the flood.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};

use ipnet::{IpNet, Ipv4Net};
use oxr_sdk::udp_protocol::{Action, Event};
use oxr_sdk::{Interface, RibUpdate, ShowOutput, UdpProtocol};
use serde::{Deserialize, Serialize};

use crate::api;
use crate::config::HelloConfig;
use crate::packet::{self, Hello};
use crate::rib::{self, RouteSet};

/// One input of the event loop: the SDK's [`Event`] (config, interface, packet, timer).
pub type Input = Event<HelloConfig, TimerKey>;

/// The instance's timers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimerKey {
    /// Send our own hello.
    Hello,
    /// Forget origins whose hold time passed (set to the earliest).
    Expire,
}

/// One output of the event loop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Output {
    /// Broadcast a hello on an interface.
    Send { ifname: String, hello: Hello },
    /// Set (Some) or cancel (None) a timer, at a time on the caller's clock.
    Timer { key: TimerKey, at: Option<u64> },
    /// A RIB update.
    Rib(RibUpdate),
}

/// The last hello heard from one origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Heard {
    pub seq: u32,
    pub prefixes: Vec<Ipv4Net>,
    /// The neighbour it came from: the gateway of its prefixes.
    pub via: Ipv4Addr,
    pub ifname: String,
    pub expires: u64,
}

/// The protocol's state.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Instance {
    #[serde(skip)]
    config: Option<HelloConfig>,
    #[serde(skip)]
    interfaces: BTreeMap<String, Interface>,
    /// Sequence number of our last hello.
    pub seq: u32,
    /// Other routers' hellos, by origin.
    pub origins: BTreeMap<Ipv4Addr, Heard>,
    /// The routes in the RIB.
    pub published: RouteSet,
    pub bad_packets: u64,
    pub relayed: u64,
    #[serde(skip)]
    end_of_rib_sent: bool,
    #[serde(skip)]
    expire_at: Option<u64>,
}

impl Instance {
    /// A new instance; our hellos are numbered from `seq_base` (use wall-clock seconds so a
    /// restarted router's hellos are newer than the ones it sent before).
    pub fn new(seq_base: u32) -> Self {
        Instance {
            seq: seq_base,
            ..Default::default()
        }
    }

    /// Handles one input at time `now` (ms).
    pub fn handle(&mut self, now: u64, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Config(cfg) => {
                let hello_at = cfg.as_ref().map(|_| now);
                if cfg.is_none() {
                    self.origins.clear();
                }
                self.config = cfg;
                out.push(Output::Timer {
                    key: TimerKey::Hello,
                    at: hello_at,
                });
            }
            Input::Interface(i) => {
                self.interfaces.insert(i.name.clone(), i);
            }
            Input::InterfaceRemoved(name) => {
                self.interfaces.remove(&name);
            }
            Input::Packet { ifname, src, data } => match Hello::decode(&data) {
                Ok(h) => self.heard(now, ifname, *src.ip(), h, &mut out),
                Err(e) => {
                    self.bad_packets += 1;
                    tracing::debug!(%ifname, %src, error = %e, "bad hello");
                }
            },
            Input::Timer(TimerKey::Hello) => {
                let Some(cfg) = &self.config else {
                    return out;
                };
                let next = now + u64::from(cfg.hello_interval) * 1000;
                // No address yet (interfaces still coming): nothing to say this time.
                if let Some(origin) = self.router_id() {
                    self.seq = self.seq.wrapping_add(1);
                    let prefixes = self.connected().into_iter().collect();
                    let hello = Hello {
                        origin,
                        seq: self.seq,
                        prefixes,
                    };
                    for ifname in self.active_interfaces().into_keys() {
                        out.push(Output::Send {
                            ifname,
                            hello: hello.clone(),
                        });
                    }
                }
                out.push(Output::Timer {
                    key: TimerKey::Hello,
                    at: Some(next),
                });
            }
            Input::Timer(TimerKey::Expire) => {
                self.origins.retain(|_, h| h.expires > now);
            }
        }
        // Hellos heard on an interface that is no longer ours are void.
        let active = self.active_interfaces();
        self.origins.retain(|_, h| active.contains_key(&h.ifname));
        self.publish(&mut out);
        out
    }

    fn heard(&mut self, now: u64, ifname: String, via: Ipv4Addr, h: Hello, out: &mut Vec<Output>) {
        let active = self.active_interfaces();
        let ours = self.addresses().contains(&h.origin) || self.addresses().contains(&via);
        let newer = self.origins.get(&h.origin).is_none_or(|o| h.seq > o.seq);
        let Some(cfg) = &self.config else { return };
        if !active.contains_key(&ifname) || ours || !newer {
            return;
        }
        for other in active.keys().filter(|i| **i != ifname) {
            self.relayed += 1;
            out.push(Output::Send {
                ifname: other.clone(),
                hello: h.clone(),
            });
        }
        let expires = now + u64::from(cfg.hold_time) * 1000;
        let heard = Heard {
            seq: h.seq,
            prefixes: h.prefixes,
            via,
            ifname,
            expires,
        };
        self.origins.insert(h.origin, heard);
    }

    /// Sends the RIB what changed, EndOfRib after the first config, and re-arms the
    /// expiry timer.
    fn publish(&mut self, out: &mut Vec<Output>) {
        let desired = rib::routes(&self.origins, &self.connected());
        out.extend(
            rib::diff(&self.published, &desired)
                .into_iter()
                .map(Output::Rib),
        );
        self.published = desired;
        if self.config.is_some() && !self.end_of_rib_sent {
            self.end_of_rib_sent = true;
            out.push(Output::Rib(RibUpdate::EndOfRib));
        }
        let at = self.origins.values().map(|h| h.expires).min();
        if at != self.expire_at {
            self.expire_at = at;
            out.push(Output::Timer {
                key: TimerKey::Expire,
                at,
            });
        }
    }

    fn up(&self) -> impl Iterator<Item = &Interface> {
        self.interfaces.values().filter(|i| i.is_up())
    }

    /// Our IPv4 addresses on interfaces that are up (loopback 127/8 aside).
    fn addresses(&self) -> BTreeSet<Ipv4Addr> {
        let v4 = |a: IpNet| match a.addr() {
            IpAddr::V4(v) if !v.is_loopback() => Some(v),
            _ => None,
        };
        self.up()
            .flat_map(|i| i.addresses.iter().filter_map(move |a| v4(a.addr)))
            .collect()
    }

    /// Our router ID: the lowest address, stable as long as addresses are.
    pub fn router_id(&self) -> Option<Ipv4Addr> {
        self.addresses().into_iter().next()
    }

    /// The networks of every interface that is up: what our hello announces.
    pub fn connected(&self) -> BTreeSet<Ipv4Net> {
        let v4 = |a: IpNet| match a {
            IpNet::V4(n) if !n.addr().is_loopback() => Some(n.trunc()),
            _ => None,
        };
        self.up()
            .flat_map(|i| i.addresses.iter().filter_map(move |a| v4(a.addr)))
            .collect()
    }

    /// Hello interfaces that are up with an IPv4 address: name -> ifindex (the sockets
    /// the loop keeps).
    pub fn active_interfaces(&self) -> BTreeMap<String, u32> {
        let configured = self.config.iter().flat_map(|c| c.interfaces.keys());
        configured
            .filter_map(|n| {
                let i = self.interfaces.get(n)?;
                let v4 = i.addresses.iter().any(|a| a.addr.addr().is_ipv4());
                (i.is_up() && v4).then(|| (n.clone(), i.ifindex))
            })
            .collect()
    }
}

impl From<Output> for Action<TimerKey> {
    fn from(out: Output) -> Self {
        match out {
            Output::Send { ifname, hello } => Action::Send {
                ifname,
                dst: SocketAddrV4::new(Ipv4Addr::BROADCAST, packet::PORT),
                data: hello.encode(),
            },
            Output::Timer { key, at } => Action::Timer { key, at },
            Output::Rib(u) => Action::Rib(u),
        }
    }
}

/// How the SDK's event loop runs the instance (`Runtime::run_protocol`).
impl UdpProtocol for Instance {
    type Section = HelloConfig;
    type Timer = TimerKey;
    type Output = Output;
    const PORT: u16 = packet::PORT;

    fn commands() -> Vec<(Vec<&'static str>, &'static str)> {
        api::commands()
    }

    fn handle_event(&mut self, now: u64, event: Input) -> Vec<Output> {
        self.handle(now, event)
    }

    fn socket_interfaces(&self) -> BTreeMap<String, u32> {
        self.active_interfaces()
    }

    fn show(&self, now: u64, words: &[String]) -> Result<ShowOutput, String> {
        api::show(self, now, words)
    }

    fn metrics(&self) -> String {
        api::metrics(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hello_timer_survives_a_start_without_addresses() {
        let mut i = Instance::new(0);
        let cfg = HelloConfig {
            hello_interval: 1,
            hold_time: 3,
            ..Default::default()
        };
        i.handle(0, Input::Config(Some(cfg)));
        let out = i.handle(0, Input::Timer(TimerKey::Hello));
        let rearm = Output::Timer {
            key: TimerKey::Hello,
            at: Some(1000),
        };
        assert_eq!(out, [rearm], "nothing sent, timer re-armed");
    }
}
