//! `oxr-ospf`: the OSPFv2 process of one virtual router.
//!
//! ```text
//!   routerd.sock / --config FILE --(ospf section)--+
//!   fea.sock (InterfaceWatcher) --(interfaces)------+
//!   raw sockets (io.rs reader tasks) --(packets)----+--> event loop: Instance::handle(now, input)
//!   timer wheel (earliest deadline sleep) ----------+        |
//!   ospf.sock show/metrics (api.rs) --(requests)----+        +--> io.rs: send, memberships
//!                                                            +--> rib.rs: RibPublisher -> rib.sock
//! ```

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use oxr_ospf::api::{self, OspfShow, Request};
use oxr_ospf::config::{effective_config, OspfConfig};
use oxr_ospf::instance::{IfaceInfo, Input, Instance, Output, TimerKey};
use oxr_ospf::io::{OspfIo, RxPacket};
use oxr_ospf::rib::{self, EndOfRibGate};
use oxr_sdk::{
    CommonArgs, ConfigWatcher, InterfaceEvent, InterfaceWatcher, RedistributionWatcher,
    RibPublisher, Runtime,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The OSPFv2 process of an oxr virtual router.
#[derive(Debug, Parser)]
#[command(name = "oxr-ospf", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

/// Where the configuration comes from: oxr-routerd, or with `--config FILE` the router TOML
/// validated whole by the SDK's loader (which knows `protocols.ospf` once
/// `Runtime::protocol` has registered [`OspfConfig`]'s schema). Both deliver the `[router]` section beside ours: its `router-id` applies
/// when the OSPF section names none.
struct ConfigSource {
    watcher: ConfigWatcher<Option<OspfConfig>>,
}

impl ConfigSource {
    async fn next(&mut self) -> Option<OspfConfig> {
        loop {
            let u = self.watcher.next().await?;
            match effective_config(u.section.as_ref(), &u.router) {
                Ok(c) => return c,
                Err(errors) => tracing::error!(?errors, "invalid ospf section ignored"),
            }
        }
    }
}

/// Timers of the instance, earliest first.
#[derive(Default)]
struct Timers {
    by_key: HashMap<TimerKey, u64>,
    order: BTreeSet<(u64, TimerKey)>,
}

impl Timers {
    fn set(&mut self, key: TimerKey, at: Option<u64>) {
        if let Some(old) = self.by_key.remove(&key) {
            self.order.remove(&(old, key.clone()));
        }
        if let Some(at) = at {
            self.by_key.insert(key.clone(), at);
            self.order.insert((at, key));
        }
    }

    fn next(&self) -> Option<u64> {
        self.order.first().map(|(at, _)| *at)
    }

    fn pop_due(&mut self, now: u64) -> Vec<TimerKey> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.order.first() {
            if *at > now {
                break;
            }
            let (_, k) = self.order.pop_first().expect("non-empty");
            self.by_key.remove(&k);
            due.push(k);
        }
        due
    }
}

fn iface_info(i: &oxr_sdk::Interface) -> IfaceInfo {
    IfaceInfo {
        name: i.name.clone(),
        ifindex: i.ifindex,
        up: i.is_up(),
        addrs: i
            .addresses
            .iter()
            .filter_map(|a| match a.addr {
                ipnet::IpNet::V4(v4) => Some(v4),
                ipnet::IpNet::V6(_) => None,
            })
            .collect(),
        mtu: i.mtu,
    }
}

struct Loop {
    inst: Instance,
    io: OspfIo,
    timers: Timers,
    rib: RibPublisher,
    eor: EndOfRibGate,
    start: Instant,
}

impl Loop {
    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn input(&mut self, input: Input) {
        let now = self.now();
        let outs = self.inst.handle(now, input);
        for o in &outs {
            match o {
                Output::Send { .. } | Output::Membership { .. } => self.io.apply(o),
                Output::Timer { key, at } => self.timers.set(key.clone(), *at),
                Output::RouteAdd { .. } | Output::RouteWithdraw { .. } => {
                    rib::apply(&mut self.rib, o);
                }
                Output::Log(l) => tracing::info!("{l}"),
            }
        }
        if self.eor.check(&self.inst, now) {
            tracing::info!(
                routes = self.inst.published().len(),
                "initial routing table sent"
            );
            self.rib.end_of_rib();
        }
    }
}

async fn event_loop(
    mut config: ConfigSource,
    mut ifs: InterfaceWatcher,
    mut redist: RedistributionWatcher,
    rib: RibPublisher,
    mut requests: mpsc::Receiver<Request>,
) -> anyhow::Result<()> {
    let (pkt_tx, mut pkts) = mpsc::channel::<RxPacket>(4096);
    let crypto_base = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32);
    let start = Instant::now();
    let mut l = Loop {
        inst: Instance::new(crypto_base),
        io: OspfIo::new(pkt_tx),
        timers: Timers::default(),
        rib,
        eor: EndOfRibGate::new(0),
        start,
    };
    // A periodic tick re-checks the end-of-RIB gate even when nothing happens.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        let deadline = l
            .timers
            .next()
            .map_or(start + Duration::from_secs(3600), |at| {
                start + Duration::from_millis(at)
            });
        tokio::select! {
            c = config.next() => {
                tracing::info!(configured = c.is_some(), "ospf configuration");
                l.input(Input::Config(c));
            }
            ev = ifs.next() => match ev {
                Some(InterfaceEvent::Changed(i)) => l.input(Input::Interface(iface_info(&i))),
                Some(InterfaceEvent::Removed(i)) => l.input(Input::InterfaceRemoved(i.name)),
                None => anyhow::bail!("interface watcher ended"),
            },
            Some(ev) = redist.next() => {
                let v4 = |p: ipnet::IpNet| match p {
                    ipnet::IpNet::V4(p) => Some(p),
                    ipnet::IpNet::V6(_) => None,
                };
                l.input(Input::Redistribute {
                    add: ev
                        .add
                        .into_iter()
                        .filter_map(|(proto, r)| Some((proto, v4(r.prefix)?)))
                        .collect(),
                    withdraw: ev.withdraw.into_iter().filter_map(v4).collect(),
                });
            }
            Some(p) = pkts.recv() => l.input(Input::Packet {
                ifname: p.ifname,
                src: p.src,
                dst: p.dst,
                data: p.data,
            }),
            _ = tokio::time::sleep_until(deadline) => {
                let now = l.now();
                for k in l.timers.pop_due(now) {
                    l.input(Input::Timer(k));
                }
            }
            _ = tick.tick() => l.input(Input::Timer(TimerKey::Sweep)),
            Some(r) = requests.recv() => match r {
                Request::Show(words, reply) => {
                    let _ = reply.send(api::show(&l.inst, &words));
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
    // Answers `--config-schema` / `--check-config` (and exits), then registers the
    // section's schema before any configuration is read: `--config FILE` is validated by
    // oxr-config, which learns `protocols.ospf` from it.
    let rt = Runtime::protocol::<OspfConfig>("ospf", args.common.clone())?;
    let config = ConfigSource {
        watcher: rt.config()?,
    };
    let rib = rt.rib_publisher(rib::hello());
    let ifs = rt.interfaces();
    // Every protocol OSPF can redistribute; the instance announces those configured.
    let redist = RedistributionWatcher::start(
        rt.address_of("rib"),
        vec!["static".into(), "bgp".into(), "connected".into()],
        vec![],
    );
    let (tx, rx) = mpsc::channel(16);
    let show = Arc::new(OspfShow::new(tx));
    rt.run(show, event_loop(config, ifs, redist, rib, rx)).await
}
