//! `oxr-rip`: the RIPv2 process of one virtual router.
//!
//! ```text
//!   routerd.sock / --config FILE --(rip section)-----+
//!   fea.sock (InterfaceWatcher) --(interfaces)-------+
//!   rib.sock (RedistributionWatcher) --(routes)------+--> event loop: Instance::handle(now, input)
//!   UDP 520 sockets (UdpPerInterface) --(packets)----+        |
//!   Timers (instance timers, end-of-RIB) ------------+        +--> UdpPerInterface: send
//!   rip.sock show/metrics (api.rs) --(requests)------+        +--> rib.rs: RibPublisher -> rib.sock
//! ```

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use ipnet::IpNet;
use oxr_rip::api::{self, Request, RipShow};
use oxr_rip::config::RipConfig;
use oxr_rip::instance::{IfaceState, Input, Instance, Output, TimerKey};
use oxr_rip::packet::{RIP_GROUP, RIP_PORT};
use oxr_rip::rib;
use oxr_sdk::rib_client::RedistributionEvent;
use oxr_sdk::sockets::UdpPerInterface;
use oxr_sdk::{
    CommonArgs, ConfigWatcher, InterfaceEvent, InterfaceWatcher, RedistributionWatcher,
    RibPublisher, Runtime, Timers,
};
use tokio::sync::mpsc;

/// The RIPv2 process of an oxr virtual router.
#[derive(Debug, Parser)]
#[command(name = "oxr-rip", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

/// How long after the first configuration end-of-RIB is sent: neighbors answer the
/// start-up request at once, so by then the table is re-learned.
const END_OF_RIB_AFTER_MS: u64 = 3000;

fn iface_state(i: &oxr_sdk::Interface) -> IfaceState {
    IfaceState {
        name: i.name.clone(),
        ifindex: i.ifindex,
        up: i.is_up(),
        addrs: i
            .addresses
            .iter()
            .filter_map(|a| match a.addr {
                IpNet::V4(v4) => Some(v4),
                IpNet::V6(_) => None,
            })
            .collect(),
    }
}

/// The loop's deadlines: the instance's timers, and when to send end-of-RIB.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    Rip(TimerKey),
    EndOfRib,
}

struct Loop {
    inst: Instance,
    io: UdpPerInterface,
    timers: Timers<Due>,
    rib: RibPublisher,
}

impl Loop {
    fn now(&self) -> u64 {
        self.timers.now()
    }

    fn input(&mut self, input: Input) {
        let now = self.now();
        let outs = self.inst.handle(now, input);
        self.sync_sockets();
        for o in &outs {
            match o {
                Output::Send { ifname, dst, data } => self.io.send(ifname, *dst, data),
                Output::Timer { key, at } => self.timers.set(Due::Rip(key.clone()), *at),
                Output::RouteAdd { .. } | Output::RouteWithdraw { .. } => {
                    rib::apply(&mut self.rib, o);
                }
                Output::Log(l) => tracing::info!("{l}"),
            }
        }
    }

    /// One socket per active RIP interface (port 520, member of 224.0.0.9 there).
    fn sync_sockets(&mut self) {
        let active = self.inst.ifaces.iter().filter(|(_, i)| i.active());
        let want = active.map(|(n, i)| (n.clone(), i.state.ifindex));
        self.io.sync(want.collect::<Vec<_>>());
    }
}

fn redistributed(cfg: Option<&RipConfig>) -> BTreeSet<String> {
    cfg.map(|c| c.redistribute.keys().cloned().collect())
        .unwrap_or_default()
}

fn redist_input(ev: RedistributionEvent) -> Input {
    Input::Redistribute {
        add: ev
            .add
            .into_iter()
            .filter_map(|(proto, r)| match r.prefix {
                IpNet::V4(p) => Some((proto, p)),
                IpNet::V6(_) => None,
            })
            .collect(),
        withdraw: ev
            .withdraw
            .into_iter()
            .filter_map(|p| match p {
                IpNet::V4(p) => Some(p),
                IpNet::V6(_) => None,
            })
            .collect(),
    }
}

async fn event_loop(
    rt_rib: oxr_proto::transport::Address,
    mut config: ConfigWatcher<Option<RipConfig>>,
    mut ifs: InterfaceWatcher,
    rib: RibPublisher,
    mut requests: mpsc::Receiver<Request>,
) -> anyhow::Result<()> {
    let seq_base = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32);
    let mut l = Loop {
        inst: Instance::new(seq_base),
        io: UdpPerInterface::new(RIP_PORT, vec![RIP_GROUP]),
        timers: Timers::new(),
        rib,
    };
    let mut redist: Option<RedistributionWatcher> = None;
    let mut redist_protos = BTreeSet::new();
    let mut configured = false;
    loop {
        tokio::select! {
            u = config.next() => {
                let Some(u) = u else { anyhow::bail!("config watcher ended") };
                let c = match &u.section {
                    Some(c) if !c.validate().is_empty() => {
                        tracing::error!(errors = ?c.validate(), "invalid rip section ignored");
                        continue;
                    }
                    s => s.clone(),
                };
                let protos = redistributed(c.as_ref());
                if protos != redist_protos {
                    // A new watch re-dumps; the instance is told the old routes went away.
                    l.input(Input::Redistribute {
                        add: vec![],
                        withdraw: l.inst.routes.keys().copied().collect(),
                    });
                    redist = (!protos.is_empty()).then(|| {
                        RedistributionWatcher::start(rt_rib.clone(), protos.iter().cloned().collect(), vec![])
                    });
                    redist_protos = protos;
                }
                if !configured {
                    configured = true;
                    let at = l.now() + END_OF_RIB_AFTER_MS;
                    l.timers.set(Due::EndOfRib, Some(at));
                }
                tracing::info!(configured = c.is_some(), "rip configuration");
                l.input(Input::Config(c));
            }
            ev = ifs.next() => match ev {
                Some(InterfaceEvent::Changed(i)) => l.input(Input::Interface(iface_state(&i))),
                Some(InterfaceEvent::Removed(i)) => l.input(Input::InterfaceRemoved(i.name)),
                None => anyhow::bail!("interface watcher ended"),
            },
            Some(ev) = async { match redist.as_mut() { Some(r) => r.next().await, None => None } },
                if redist.is_some() => l.input(redist_input(ev)),
            Some(p) = l.io.recv() => l.input(Input::Packet { ifname: p.ifname, src: p.src, data: p.data }),
            due = l.timers.next() => match due {
                Due::Rip(key) => l.input(Input::Timer(key)),
                Due::EndOfRib => l.rib.end_of_rib(),
            },
            Some(r) = requests.recv() => match r {
                Request::Show(words, reply) => {
                    let _ = reply.send(api::show(&l.inst, l.now(), &words));
                }
                Request::Metrics(reply) => {
                    let _ = reply.send(api::metrics(&l.inst));
                }
            },
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Also answers oxr-routerd's --config-schema / --check-config, and registers the
    // section for --config FILE.
    let rt = Runtime::protocol::<RipConfig>("rip", args.common.clone())?;
    let config = rt.config()?;
    let rib = rt.rib_publisher(rib::hello());
    let ifs = rt.interfaces();
    let (tx, rx) = mpsc::channel(16);
    let show = Arc::new(RipShow::new(tx));
    let rib_addr = rt.address_of("rib");
    rt.run(show, event_loop(rib_addr, config, ifs, rib, rx))
        .await
}
