//! The daemon: netlink watchers (interfaces and addresses via oxr-fea's watcher, neighbors
//! via [`crate::neigh`]) feeding [`Core`], and gRPC (Dataplane + Process) on
//! `<run-dir>/fastpath.sock`.

use std::sync::{Arc, Mutex};

use anyhow::Context;
use oxr_fea::interfaces::{Interface, InterfaceWatcher};
use oxr_proto::dataplane::dataplane_server::DataplaneServer;
use oxr_sdk::process::{process_service, CommonArgs};

use crate::engine::Engine;
use crate::neigh::{NeighEvent, NeighborWatcher};
use crate::service::{Core, DataplaneService, FastpathShow, Shared};
use crate::tables::Link;

/// Largest gRPC message accepted (a batch of a full table).
pub const MAX_MESSAGE: usize = 64 << 20;

/// oxr-fastpath's command line.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "oxr-fastpath",
    about = "oxr's fast-path dataplane: XDP and AF_XDP engines programmed by oxr-fea"
)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The interface as the tables need it.
pub fn link_of(i: &Interface) -> Link {
    let mut mac = [0u8; 6];
    if i.mac.len() == 6 {
        mac.copy_from_slice(&i.mac);
    }
    Link {
        name: i.name.clone(),
        mac,
        mtu: i.mtu,
        up: i.admin_up,
        loopback: i.loopback,
        addresses: i.addresses.iter().map(|a| a.prefix).collect(),
    }
}

/// Builds the engine called `name`.
pub fn make_engine(name: &str) -> Result<Box<dyn Engine>, String> {
    match name {
        "xdp" => Ok(Box::new(crate::xdp::XdpEngine::load(
            crate::xdp::Mode::Redirect,
        )?)),
        "afxdp" => crate::afxdp::start(),
        other => Err(format!("unknown engine `{other}` (xdp, afxdp)")),
    }
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Core> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs until SIGTERM/SIGINT.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let addr = args.common.listen_address("fastpath")?;
    let shared: Shared = Arc::new(Mutex::new(Core::new(Arc::new(make_engine))));

    let watcher = InterfaceWatcher::start(None).context("interface watcher")?;
    let (table, mut updates) = watcher.subscribe();
    {
        let mut core = lock(&shared);
        for (idx, i) in &table.interfaces {
            core.set_link(*idx, Some(link_of(i)));
        }
    }
    let s = shared.clone();
    let _links = tokio::spawn(async move {
        let _watcher = watcher;
        loop {
            let u = match updates.recv().await {
                Ok(u) => u,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(lost = n, "interface updates lagged: re-reading all");
                    let t = _watcher.snapshot();
                    let mut core = lock(&s);
                    let known: Vec<u32> = core.tables.links().keys().copied().collect();
                    for idx in known.iter().filter(|i| !t.interfaces.contains_key(i)) {
                        core.set_link(*idx, None);
                    }
                    for (idx, i) in &t.interfaces {
                        core.set_link(*idx, Some(link_of(i)));
                    }
                    continue;
                }
                Err(_) => return,
            };
            let mut core = lock(&s);
            if u.full_dump {
                let known: Vec<u32> = core.tables.links().keys().copied().collect();
                for idx in known
                    .iter()
                    .filter(|i| !u.changed.iter().any(|c| c.ifindex == **i))
                {
                    core.set_link(*idx, None);
                }
            }
            for i in &u.changed {
                core.set_link(i.ifindex, Some(link_of(i)));
            }
            for idx in &u.removed {
                core.set_link(*idx, None);
            }
        }
    });

    let s = shared.clone();
    let _neigh = NeighborWatcher::start(move |ev| {
        let mut core = lock(&s);
        let ops = match ev {
            NeighEvent::One(i, a, mac) => core.tables.set_neighbor(i, a, mac),
            NeighEvent::Full(all) => core.tables.replace_neighbors(all),
        };
        core.apply(&ops);
    })
    .context("neighbor watcher")?;

    tracing::info!(xdp_program = crate::xdp::available(), "oxr-fastpath ready");
    let show = Arc::new(FastpathShow::new(shared.clone()));
    oxr_sdk::process::spawn_metrics(&args.common, show.clone()).await?;
    let router = tonic::transport::Server::builder()
        .add_service(
            DataplaneServer::new(DataplaneService::new(shared.clone()))
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(process_service("fastpath", show));
    let r = oxr_sdk::process::serve(router, &addr).await;
    // Detach before exit (bpf links would go with the process anyway).
    let mut core = lock(&shared);
    let names: Vec<String> = core.attached.keys().cloned().collect();
    for n in names {
        let _ = core.detach(&n);
    }
    r
}
