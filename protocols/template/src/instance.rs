//! The instance: the protocol's whole state and what it does, as a pure function of
//! (time, input) -> outputs. The SDK's event loop (`Runtime::run_protocol`, started by
//! `main.rs`) owns the only I/O and feeds it through [`UdpProtocol`]; tests feed it
//! recorded inputs and compare its outputs with files (tests/snapshots).
//!
//! ```text
//!   routerd ──ConfigWatcher──> Input::Config ─────┐
//!   oxr-fea ──InterfaceWatcher─> Input::Interface ┤                      ┌─> Output::Send  ─> UDP socket
//!   UDP socket per interface ──> Input::Packet ───┼─> Instance::handle ──┼─> Output::Timer ─> timer wheel
//!   timer wheel ───────────────> Input::Timer ────┘    (now, input)      └─> Output::Rib   ─> RibPublisher ─> oxr-rib
//!   oxrsh ──Process.Show──> (channel) ──> the loop answers with api::show(&Instance)
//! ```
//!
//! Time is milliseconds on the caller's clock (the process: since start; tests: fake).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use oxr_sdk::udp_protocol::{Action, Event};
use oxr_sdk::{Interface, RibUpdate, ShowOutput, UdpProtocol};
use serde::{Deserialize, Serialize};

use crate::api;
use crate::config::TemplateConfig;
use crate::packet::{self, Hello};
use crate::rib::{self, RouteSet};

/// One input of the event loop: the SDK's [`Event`] (config, interface, packet, timer).
pub type Input = Event<TemplateConfig, TimerKey>;

/// The instance's timers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimerKey {
    /// Send hellos on every interface.
    Hello,
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

/// A router heard on a link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Neighbor {
    pub ifname: String,
    pub last_heard: u64,
    pub hellos: u64,
}

/// The protocol's state.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Instance {
    config: Option<TemplateConfig>,
    /// Every interface oxr-fea reported, by name.
    #[serde(skip)]
    interfaces: BTreeMap<String, Interface>,
    /// Routers heard, by address.
    pub neighbors: BTreeMap<Ipv4Addr, Neighbor>,
    /// The routes in the RIB.
    pub published: RouteSet,
    /// Datagrams that did not decode.
    pub bad_packets: u64,
    #[serde(skip)]
    end_of_rib_sent: bool,
}

impl Instance {
    /// An instance with nothing configured.
    pub fn new() -> Self {
        Self::default()
    }

    /// Handles one input at time `now` (ms).
    pub fn handle(&mut self, now: u64, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Config(cfg) => {
                let desired = rib::configured_routes(cfg.as_ref());
                out.extend(
                    rib::diff(&self.published, &desired)
                        .into_iter()
                        .map(Output::Rib),
                );
                self.published = desired;
                if !self.end_of_rib_sent {
                    self.end_of_rib_sent = true;
                    out.push(Output::Rib(RibUpdate::EndOfRib));
                }
                self.config = cfg;
                // Hello at once on (re)configuration, then every interval.
                let at = self.config.as_ref().map(|_| now);
                out.push(Output::Timer {
                    key: TimerKey::Hello,
                    at,
                });
            }
            Input::Interface(i) => {
                self.interfaces.insert(i.name.clone(), i);
            }
            Input::InterfaceRemoved(name) => {
                self.interfaces.remove(&name);
                self.neighbors.retain(|_, n| n.ifname != name);
            }
            Input::Packet { ifname, src, data } => match Hello::decode(&data) {
                Ok(h)
                    if self
                        .active_interfaces()
                        .any(|(n, a)| n == ifname && a != h.sender) =>
                {
                    let n = self.neighbors.entry(h.sender).or_insert(Neighbor {
                        ifname: ifname.clone(),
                        last_heard: now,
                        hellos: 0,
                    });
                    n.ifname = ifname;
                    n.last_heard = now;
                    n.hellos += 1;
                }
                Ok(_) => {} // our own, or not on an interface of ours (yet): ignore
                Err(e) => {
                    self.bad_packets += 1;
                    tracing::debug!(%ifname, %src, error = %e, "bad packet");
                }
            },
            Input::Timer(TimerKey::Hello) => {
                let Some(cfg) = &self.config else {
                    return out;
                };
                let next = now + u64::from(cfg.hello_interval) * 1000;
                for (ifname, sender) in self.active_interfaces() {
                    let hello = Hello { sender };
                    out.push(Output::Send { ifname, hello });
                }
                out.push(Output::Timer {
                    key: TimerKey::Hello,
                    at: Some(next),
                });
            }
        }
        out
    }

    /// The interfaces that need a socket: name -> ifindex.
    pub fn socket_interfaces(&self) -> BTreeMap<String, u32> {
        let ifindex = |n: &String| self.interfaces.get(n).map_or(0, |i| i.ifindex);
        self.active_interfaces()
            .map(|(n, _)| (n.clone(), ifindex(&n)))
            .collect()
    }

    /// Configured interfaces that are up and have an IPv4 address: (name, that address).
    pub fn active_interfaces(&self) -> impl Iterator<Item = (String, Ipv4Addr)> + '_ {
        let configured = self.config.iter().flat_map(|c| c.interfaces.keys());
        configured.filter_map(|name| {
            let i = self.interfaces.get(name).filter(|i| i.is_up())?;
            let addr = i.addresses.iter().find_map(|a| match a.addr.addr() {
                std::net::IpAddr::V4(v4) => Some(v4),
                std::net::IpAddr::V6(_) => None,
            })?;
            Some((name.clone(), addr))
        })
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
    type Section = TemplateConfig;
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
        self.socket_interfaces()
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
    fn no_config_sends_nothing_and_end_of_rib_once() {
        let mut i = Instance::new();
        let out = i.handle(0, Input::Config(None));
        assert_eq!(out[0], Output::Rib(RibUpdate::EndOfRib));
        assert!(i.handle(10, Input::Timer(TimerKey::Hello)).is_empty());
        let again = i.handle(20, Input::Config(None));
        assert!(!again.contains(&Output::Rib(RibUpdate::EndOfRib)));
    }
}
