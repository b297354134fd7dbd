//! The event loop of a protocol in the template's shape, written once: a pure instance fed
//! its config section, the interfaces, datagrams from one UDP socket per interface and its
//! timers; what it says is sent, scheduled or published; show and metrics requests are
//! answered between events. [`Runtime::run_protocol`](crate::Runtime::run_protocol) runs it.
//!
//! ```text
//!   ConfigWatcher ────> Event::Config ─────────┐
//!   InterfaceWatcher ─> Event::Interface(..) ──┤                                 ┌─> Action::Send  ─> UdpPerInterface
//!   UdpPerInterface ──> Event::Packet ─────────┼─> P::handle_event(now, event) ──┼─> Action::Timer ─> Timers
//!   Timers ───────────> Event::Timer ──────────┘                                 └─> Action::Rib   ─> RibPublisher
//!   oxrsh ──Process.Show──> (channel) ──> P::show / P::metrics, between events
//!   after each event: the sockets follow P::socket_interfaces()
//! ```
//!
//! A protocol whose loop needs more (redistribution, next hops, raw sockets) writes its own
//! `select!` with the same pieces ([`Timers`], [`UdpPerInterface`], [`Runtime::run`]).

use std::collections::BTreeMap;
use std::net::SocketAddrV4;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::process::{ShowOutput, ShowQuery};
use crate::protocol::SectionConfig;
use crate::sockets::UdpPerInterface;
use crate::{ConfigWatcher, Interface, InterfaceEvent, InterfaceWatcher, RibPublisher};
use crate::{RibSink, RibUpdate, Timers};

/// What happened, as the loop tells the instance. Serializable, so that a protocol can use
/// it as its input type (`type Input = Event<MyConfig, TimerKey>`) in snapshot tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event<C, K> {
    /// The section, new or changed (None: removed).
    Config(Option<C>),
    /// An interface appeared or changed (from oxr-fea).
    Interface(Interface),
    /// An interface disappeared (its name).
    InterfaceRemoved(String),
    /// A datagram arrived on an interface's socket.
    Packet {
        /// The interface it arrived on.
        ifname: String,
        /// Its sender.
        src: SocketAddrV4,
        /// Its payload.
        data: Vec<u8>,
    },
    /// A timer set with [`Action::Timer`] expired.
    Timer(K),
}

/// What the instance asks the loop to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<K> {
    /// Send a datagram from an interface's socket.
    Send {
        /// The interface.
        ifname: String,
        /// Where to.
        dst: SocketAddrV4,
        /// The payload.
        data: Vec<u8>,
    },
    /// Set (Some) or cancel (None) a timer, at a time on the loop's clock (ms).
    Timer {
        /// Which timer.
        key: K,
        /// When it expires.
        at: Option<u64>,
    },
    /// A RIB update.
    Rib(RibUpdate),
}

/// A protocol instance the SDK's loop can run: pure, no I/O of its own. Implement it in the
/// protocol's library; its outputs stay its own type (what its snapshot tests compare) and
/// become [`Action`]s through `From`.
pub trait UdpProtocol: 'static {
    /// The config section.
    type Section: SectionConfig + Clone;
    /// The instance's timer keys.
    type Timer: Ord + Clone;
    /// What [`handle_event`](Self::handle_event) returns.
    type Output: Into<Action<Self::Timer>>;
    /// The UDP port of the per-interface sockets.
    const PORT: u16;
    /// The show commands it answers (see [`ShowHandler::commands`](crate::ShowHandler::commands)).
    fn commands() -> Vec<(Vec<&'static str>, &'static str)>;
    /// Handles one event at time `now` (ms on the loop's clock).
    fn handle_event(
        &mut self,
        now: u64,
        event: Event<Self::Section, Self::Timer>,
    ) -> Vec<Self::Output>;
    /// The interfaces that need a socket now: name -> ifindex.
    fn socket_interfaces(&self) -> BTreeMap<String, u32>;
    /// `show <words>` at time `now`.
    fn show(&self, now: u64, words: &[String]) -> Result<ShowOutput, String>;
    /// Counters in Prometheus text format.
    fn metrics(&self) -> String;
}

/// The loop: every event into `inst`, every action done, until a source ends.
pub(crate) async fn event_loop<P: UdpProtocol>(
    mut inst: P,
    mut config: ConfigWatcher<Option<P::Section>>,
    mut interfaces: InterfaceWatcher,
    mut rib: RibPublisher,
    mut requests: mpsc::Receiver<ShowQuery>,
) -> anyhow::Result<()> {
    let mut sockets = UdpPerInterface::new(P::PORT, vec![]);
    let mut timers = Timers::new();
    loop {
        let event = tokio::select! {
            u = config.next() => match u {
                Some(u) => Event::Config(u.section.clone()),
                None => anyhow::bail!("config watcher ended"),
            },
            ev = interfaces.next() => match ev {
                Some(InterfaceEvent::Changed(i)) => Event::Interface(i),
                Some(InterfaceEvent::Removed(i)) => Event::InterfaceRemoved(i.name),
                None => anyhow::bail!("interface watcher ended"),
            },
            Some(d) = sockets.recv() => Event::Packet { ifname: d.ifname, src: d.src, data: d.data },
            key = timers.next() => Event::Timer(key),
            Some(r) = requests.recv() => {
                r.answer(|words| inst.show(timers.now(), words), || inst.metrics());
                continue;
            }
        };
        for out in inst.handle_event(timers.now(), event) {
            match out.into() {
                Action::Send { ifname, dst, data } => sockets.send(&ifname, dst, &data),
                Action::Timer { key, at } => timers.set(key, at),
                Action::Rib(u) => rib.apply(u),
            }
        }
        sockets.sync(inst.socket_interfaces());
    }
}
