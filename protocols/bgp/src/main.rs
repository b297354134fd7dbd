//! oxr-bgp: the BGP process. Reads config section "bgp" (from oxr-routerd, or
//! `protocols.bgp` of a router TOML with `--config`), runs the pure
//! [`oxr_bgp::instance::Instance`] in one event loop fed by the sockets of
//! [`oxr_bgp::io`], publishes best paths to oxr-rib and watches next hops.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use oxr_bgp::api;
use oxr_bgp::config::BgpConfig;
use oxr_bgp::instance::{Input, Instance, Output};
use oxr_bgp::io::{Io, IoEvent};
use oxr_bgp::rib_feed;
use oxr_sdk::{CommonArgs, ConfigWatcher, Runtime, ShowHandler, ShowOutput};
use tokio::sync::{mpsc, oneshot};

/// Command line.
#[derive(Debug, Parser)]
#[command(name = "oxr-bgp", about = "oxr BGP-4 speaker")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// TCP port to listen on.
    #[arg(long, default_value_t = 179)]
    bgp_port: u16,
    /// Addresses to listen on (default: 0.0.0.0 and ::).
    #[arg(long)]
    bgp_listen: Vec<IpAddr>,
}

/// Most inputs handled (and flushed) as one batch.
const BATCH_INPUTS: usize = 1024;
/// Most received bytes in one batch (one full read, up to ~32k prefixes: the
/// RIB gets a full table in steps, and the batch's outputs, held until it
/// ends, stay small).
const BATCH_BYTES: usize = 128 << 10;

enum Request {
    Show(Vec<String>, oneshot::Sender<Result<ShowOutput, String>>),
    Metrics(oneshot::Sender<String>),
}

struct Show {
    tx: mpsc::Sender<Request>,
}

#[tonic::async_trait]
impl ShowHandler for Show {
    fn commands(&self) -> Vec<(Vec<&'static str>, &'static str)> {
        api::COMMANDS
            .iter()
            .map(|(w, h)| (w.to_vec(), *h))
            .collect()
    }

    async fn show(&self, words: &[String]) -> Result<ShowOutput, String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Request::Show(words.to_vec(), tx))
            .await
            .map_err(|_| "bgp event loop gone".to_string())?;
        rx.await.map_err(|_| "bgp event loop gone".to_string())?
    }

    async fn metrics(&self) -> String {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Request::Metrics(tx)).await.is_err() {
            return String::new();
        }
        rx.await.unwrap_or_default()
    }
}

fn check(cfg: &BgpConfig) -> anyhow::Result<()> {
    let errs = cfg.validate();
    if errs.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = errs
        .iter()
        .map(|(p, r)| format!("  protocols.bgp.{p}: {r}"))
        .collect();
    anyhow::bail!("invalid BGP configuration:\n{}", lines.join("\n"))
}

fn main() -> anyhow::Result<()> {
    fixed_mmap_threshold();
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

/// glibc raises its mmap threshold (up to 32 MiB) each time a mapped block is
/// freed, so after the first few, the Loc-RIB's growing hash tables, the read
/// buffers and the per-flush change lists all come from the heap, whose holes
/// stay in RSS: a full table left ~35 MB of free heap behind (oxr-bgp peak
/// 70 MB, 33 MB with a fixed threshold). A fixed 64 KiB threshold maps each
/// large block on its own and returns it on free.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn fixed_mmap_threshold() {
    // SAFETY: mallopt only sets an allocator parameter; it runs first thing in
    // main, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fixed_mmap_threshold() {}

async fn run(args: Args) -> anyhow::Result<()> {
    // Answers `--config-schema` / `--check-config` (and exits), then registers
    // the `protocols.bgp` section so `--config FILE` is validated by oxr-config.
    let runtime = Runtime::protocol::<BgpConfig>("bgp", args.common)?;
    let (req_tx, req_rx) = mpsc::channel(16);
    let show: Arc<dyn ShowHandler> = Arc::new(Show { tx: req_tx });
    let listen: Vec<SocketAddr> = if args.bgp_listen.is_empty() {
        vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), args.bgp_port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), args.bgp_port),
        ]
    } else {
        args.bgp_listen
            .iter()
            .map(|a| SocketAddr::new(*a, args.bgp_port))
            .collect()
    };
    let watcher = runtime.config::<Option<BgpConfig>>()?;
    // No second copy of the table in the publisher: on a RIB restart it asks
    // for a replay, which the event loop serves from the Loc-RIB.
    let publisher = oxr_sdk::RibPublisher::start_replaying(
        runtime.address_of("rib"),
        rib_feed::hello(),
        oxr_sdk::rib_client::PublisherOptions::default(),
    );
    let nexthops = runtime.nexthop_watcher();
    let event_loop = event_loop(listen, watcher, publisher, nexthops, req_rx);
    runtime.run(show, event_loop).await
}

async fn event_loop(
    listen: Vec<SocketAddr>,
    mut watcher: ConfigWatcher<Option<BgpConfig>>,
    publisher: oxr_sdk::RibPublisher,
    mut nexthops: oxr_sdk::NexthopWatcher,
    mut requests: mpsc::Receiver<Request>,
) -> anyhow::Result<()> {
    // Wait for a configuration with a BGP section.
    let mut cfg = None;
    while cfg.is_none() {
        let u = watcher.next().await.context("config source closed")?;
        match &u.section {
            Some(c) => match check(c) {
                Ok(()) => cfg = Some(c.clone()),
                Err(e) => tracing::error!("{e:#}"),
            },
            None => tracing::info!("no BGP section configured; waiting"),
        }
    }
    let cfg = cfg.expect("loop above");
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let mut io = Io::start(&listen, ev_tx)
        .await
        .context("binding the BGP listeners")?;
    let mut inst = Instance::new(cfg);
    let outs = inst.start(io.now_ms());
    let mut pending = outs;
    let mut replays = publisher.replay_requests();
    loop {
        // Carry out the last outputs (next hops need the watcher, hence inline).
        for o in io.apply(std::mem::take(&mut pending)) {
            match o {
                Output::Rib(changes) => rib_feed::publish(&publisher, changes),
                Output::RibEndOfRib => publisher.end_of_rib(),
                Output::WatchNexthop(a) => nexthops.register(a),
                Output::MrtDump { file, data } => write_mrt(file, data),
                _ => {}
            }
        }
        let deadline = io.next_deadline();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let cfg_next = watcher.next();
        tokio::select! {
            ev = ev_rx.recv() => {
                let Some(ev) = ev else { anyhow::bail!("socket tasks gone") };
                let mut inputs = Vec::new();
                let mut bytes = push_event(&mut io, ev, &mut inputs);
                // Take what else is queued (many sessions' reads) and flush
                // once for all of them; bounded so the RIB hears of a full
                // table's first routes early.
                while inputs.len() < BATCH_INPUTS && bytes < BATCH_BYTES {
                    match ev_rx.try_recv() {
                        Ok(ev) => bytes += push_event(&mut io, ev, &mut inputs),
                        Err(_) => break,
                    }
                }
                let now = io.now_ms();
                pending.extend(inst.handle_many(now, inputs));
                io.handled(bytes);
            }
            _ = sleep => {
                let now = io.now_ms();
                let fired = io.due_timers().into_iter().map(Input::TimerFired);
                pending.extend(inst.handle_many(now, fired));
            }
            u = cfg_next => {
                let Some(u) = u else { continue };
                match &u.section {
                    Some(c) => match check(c) {
                        Ok(()) => {
                            let now = io.now_ms();
                            pending.extend(inst.handle(now, Input::Config(Box::new(c.clone()))));
                        }
                        Err(e) => tracing::error!("{e:#}; keeping the running configuration"),
                    },
                    None => tracing::warn!("BGP section removed; keeping the running configuration"),
                }
            }
            r = replays.changed() => {
                if r.is_ok() {
                    rib_feed::replay(&publisher, inst.rib_routes());
                }
            }
            nh = nexthops.next() => {
                if let Some(s) = nh {
                    let now = io.now_ms();
                    pending.extend(inst.handle(now, Input::Nexthop {
                        addr: s.address,
                        reachable: s.resolved,
                        metric: s.metric,
                    }));
                }
            }
            r = requests.recv() => {
                match r {
                    Some(Request::Show(words, reply)) => {
                        let memory = words == ["bgp", "memory"];
                        let res = api::request(&inst, &words).map(|mut r| {
                            if memory {
                                publisher_memory(&publisher, &mut r);
                            }
                            if let Some(c) = r.command {
                                let now = io.now_ms();
                                pending.extend(inst.handle(now, Input::Command(c)));
                            }
                            ShowOutput { text: r.text, json: r.json }
                        });
                        let _ = reply.send(res);
                    }
                    Some(Request::Metrics(reply)) => {
                        let _ = reply.send(api::metrics(&inst));
                    }
                    None => {}
                }
            }
        }
    }
}

/// Queues the input of `ev`; returns the bytes it carries.
fn push_event(io: &mut Io, ev: IoEvent, inputs: &mut Vec<Input>) -> usize {
    match ev {
        IoEvent::Input(i) => {
            let n = match &i {
                Input::Received { bytes, .. } => bytes.len(),
                _ => 0,
            };
            inputs.push(i);
            n
        }
        IoEvent::Up(conn, w, i) => {
            if let Some(i) = io.on_up(conn, w, i) {
                inputs.push(i);
            }
            0
        }
    }
}

fn write_mrt(file: Option<String>, data: Vec<u8>) {
    let Some(file) = file else {
        tracing::info!(bytes = data.len(), "MRT dump made; no mrt.file configured");
        return;
    };
    tokio::task::spawn_blocking(move || {
        let tmp = format!("{file}.tmp");
        match std::fs::write(&tmp, &data).and_then(|_| std::fs::rename(&tmp, &file)) {
            Ok(()) => tracing::info!(file, bytes = data.len(), "MRT dump written"),
            Err(e) => tracing::warn!(file, error = %e, "MRT dump failed"),
        }
    });
}

/// `show bgp memory`'s lines that only the process knows: the RIB publisher's
/// queue and the process's resident set (current and peak).
fn publisher_memory(p: &oxr_sdk::RibPublisher, r: &mut api::Reply) {
    let (pending, peak) = p.pending();
    let held = p.memory_bytes();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let (rss, hwm) = (kb("VmRSS:"), kb("VmHWM:"));
    r.text.push_str(&format!(
        "RIB publisher: {pending} changes pending (peak {peak}), {:.1} MiB held (no table copy)\n\
         Process: RSS {:.1} MiB, peak RSS {:.1} MiB\n",
        held as f64 / (1024.0 * 1024.0),
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    ));
    if let Some(o) = r.json.as_object_mut() {
        o.insert("publisher-pending".into(), pending.into());
        o.insert("publisher-pending-peak".into(), peak.into());
        o.insert("publisher-bytes".into(), held.into());
        o.insert("rss-kib".into(), rss.into());
        o.insert("peak-rss-kib".into(), hwm.into());
    }
}
