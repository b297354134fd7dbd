//! `oxr-rip`: the RIPv2 process of one virtual router.
//!
//! ```text
//!   routerd.sock / --config FILE --(rip section)-----+
//!   fea.sock (InterfaceWatcher) --(interfaces)-------+
//!   rib.sock (RedistributionWatcher) --(routes)------+--> event loop: Instance::handle(now, input)
//!   UDP 520 sockets (io.rs readers) --(packets)------+        |
//!   timer wheel (earliest deadline sleep) -----------+        +--> io.rs: send
//!   rip.sock show/metrics (api.rs) --(requests)------+        +--> rib.rs: RibPublisher -> rib.sock
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use ipnet::IpNet;
use oxr_rip::api::{self, Request, RipShow};
use oxr_rip::config::{RipConfig, RipSchema};
use oxr_rip::instance::{IfaceState, Input, Instance, Output, TimerKey};
use oxr_rip::io::{RipIo, RxPacket};
use oxr_rip::rib;
use oxr_sdk::rib_client::RedistributionEvent;
use oxr_sdk::{
    CommonArgs, ConfigWatcher, InterfaceEvent, InterfaceWatcher, RedistributionWatcher,
    RibPublisher, Runtime,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

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

struct Loop {
    inst: Instance,
    io: RipIo,
    timers: BTreeMap<TimerKey, u64>,
    rib: RibPublisher,
    start: Instant,
    eor_at: Option<u64>,
}

impl Loop {
    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn input(&mut self, input: Input) {
        let now = self.now();
        let outs = self.inst.handle(now, input);
        self.sync_sockets();
        for o in &outs {
            match o {
                Output::Send { ifname, dst, data } => self.io.send(ifname, *dst, data),
                Output::Timer { key, at: Some(at) } => {
                    self.timers.insert(key.clone(), *at);
                }
                Output::Timer { key, at: None } => {
                    self.timers.remove(key);
                }
                Output::RouteAdd { .. } | Output::RouteWithdraw { .. } => {
                    rib::apply(&mut self.rib, o);
                }
                Output::Log(l) => tracing::info!("{l}"),
            }
        }
        if self.eor_at.is_some_and(|t| t <= now) {
            self.eor_at = None;
            self.rib.end_of_rib();
        }
    }

    /// One socket per active RIP interface.
    fn sync_sockets(&mut self) {
        let want: BTreeMap<String, u32> = self
            .inst
            .ifaces
            .iter()
            .filter(|(_, i)| i.active())
            .map(|(n, i)| (n.clone(), i.state.ifindex))
            .collect();
        for n in self.io.open_names() {
            if !want.contains_key(&n) {
                self.io.close(&n);
            }
        }
        for (n, ifindex) in want {
            if !self.io.is_open(&n) {
                if let Err(e) = self.io.open(&n, ifindex) {
                    tracing::error!(ifname = %n, error = %e, "cannot open RIP socket");
                }
            }
        }
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
    let (pkt_tx, mut pkts) = mpsc::channel::<RxPacket>(4096);
    let seq_base = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32);
    let start = Instant::now();
    let mut l = Loop {
        inst: Instance::new(seq_base),
        io: RipIo::new(pkt_tx),
        timers: BTreeMap::new(),
        rib,
        start,
        eor_at: None,
    };
    let mut redist: Option<RedistributionWatcher> = None;
    let mut redist_protos = BTreeSet::new();
    let mut configured = false;
    loop {
        let next = l.timers.values().min().copied();
        let next = next.into_iter().chain(l.eor_at).min();
        let deadline = next.map_or(start + Duration::from_secs(3600), |at| {
            start + Duration::from_millis(at)
        });
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
                    l.eor_at = Some(l.now() + END_OF_RIB_AFTER_MS);
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
            Some(p) = pkts.recv() => l.input(Input::Packet { ifname: p.ifname, src: p.src, data: p.data }),
            _ = tokio::time::sleep_until(deadline) => {
                let now = l.now();
                let due: Vec<TimerKey> = l.timers.iter().filter(|(_, at)| **at <= now).map(|(k, _)| k.clone()).collect();
                for k in &due {
                    l.timers.remove(k);
                }
                for k in due {
                    l.input(Input::Timer(k));
                }
                if l.eor_at.is_some_and(|t| t <= now) {
                    l.eor_at = None;
                    l.rib.end_of_rib();
                }
            }
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
    // Before any configuration is read: `--config FILE` is validated by oxr-config, which
    // learns the `protocols.rip` section from this registration.
    oxr_config::register(RipSchema)?;
    let rt = Runtime::new("rip", args.common.clone())?;
    let config = rt.config()?;
    let rib = rt.rib_publisher(rib::hello());
    let ifs = rt.interfaces();
    let (tx, rx) = mpsc::channel(16);
    let show = Arc::new(RipShow::new(tx));
    let rib_addr = rt.address_of("rib");
    rt.run(show, event_loop(rib_addr, config, ifs, rib, rx))
        .await
}
