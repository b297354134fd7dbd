//! The daemon: configuration source, backend, interface watcher, gRPC on `fea.sock`.
//!
//! ```text
//!   routerd.sock WatchConfig("fea") ──┐      (or --config FILE)
//!                                     v
//!                          watch<FeaSection> ──> config task: interfaces (addresses, MTU,
//!                                     |                       up/down), netlink batch size
//!   InterfaceWatcher thread ──────────┴──────> updates also re-run the interface plan
//!        │
//!   FeaService (WatchInterfaces, ProgramFib, GetFib, Status) ─┐
//!   FeaShow (show interfaces / fib / fea, metrics) ───────────┴─> fea.sock
//!        │
//!   Fib (sync) ─> FibBackend (kernel | none), on blocking threads
//! ```
//!
//! [`run_until`] runs it in-process with a caller-chosen shutdown (benchmarks, tests).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use oxr_config::FeaSection;
use oxr_proto::fea::fea_server::FeaServer;
use oxr_proto::routerd::routerd_client::RouterdClient;
use oxr_proto::routerd::WatchConfigRequest;
use oxr_proto::transport::{self, Address};
use oxr_sdk::process::{process_service, CommonArgs};
use tokio::sync::watch;

use crate::api::{FeaService, FeaShow, FeaState};
use crate::backend::{self, BackendKind, BackendOptions};
use crate::config::{
    action_message, plan_interfaces, plan_new_interfaces, section_from_file, section_from_json,
};
use crate::fib::Fib;
use crate::interfaces::InterfaceWatcher;

/// Largest gRPC message accepted (a FIB batch of tens of thousands of routes).
pub const MAX_MESSAGE: usize = 64 << 20;

/// How long open streams may keep the server up after a shutdown request.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// How long to wait for oxr-routerd's first config before starting with defaults.
const FIRST_CONFIG_WAIT: Duration = Duration::from_secs(5);

/// oxr-fea's command line.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "oxr-fea",
    about = "oxr's forwarding engine abstraction: interfaces and FIB"
)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Forwarding backend; overrides `fea.dataplane` from the configuration.
    #[arg(long, value_enum)]
    pub backend: Option<BackendKind>,
}

/// Runs until SIGTERM/SIGINT.
pub async fn run(args: Args) -> anyhow::Result<()> {
    run_until(args, oxr_sdk::process::shutdown_signal()).await
}

/// Runs until `shutdown` resolves.
pub async fn run_until(
    args: Args,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = args.common.listen_address("fea")?;
    let (cfg_tx, mut cfg_rx) = watch::channel::<Option<FeaSection>>(None);
    let _routerd_task = match &args.common.config {
        Some(path) => {
            cfg_tx.send_replace(Some(section_from_file(path)?));
            None
        }
        None => {
            let routerd = args.common.address_of("routerd")?;
            let task = tokio::spawn(watch_routerd(routerd, cfg_tx));
            if tokio::time::timeout(FIRST_CONFIG_WAIT, cfg_rx.changed())
                .await
                .is_err()
            {
                tracing::warn!("no configuration from oxr-routerd yet: starting with defaults");
            }
            Some(AbortOnDrop(task))
        }
    };
    let section = cfg_rx.borrow_and_update().clone().unwrap_or_default();
    let kind = args.backend.unwrap_or_else(|| section.fea.dataplane.into());
    let opts = BackendOptions {
        route_protocol: section.fea.route_protocol,
        netlink_batch: section.fea.netlink_batch as usize,
        netns: None,
        fastpath: section.fea.fastpath.clone(),
        fastpath_address: args.common.address_of("fastpath").ok(),
        // For A/B measurements of the kernel insertion order (fea/BENCHMARKS.part.md).
        spread_ipv4: std::env::var("OXR_FEA_IPV4_ORDER").as_deref() != Ok("arrival"),
    };
    let backend = tokio::task::spawn_blocking(move || backend::open(kind, &opts))
        .await
        .context("opening backend")??;
    tracing::info!(backend = backend.name(), "forwarding backend ready");
    let watcher = match InterfaceWatcher::start(None) {
        Ok(w) => Some(Arc::new(w)),
        Err(e) => {
            tracing::error!(error = %e, "interface watcher did not start");
            None
        }
    };
    let state = FeaState::new(Fib::new(backend), watcher);
    let _config_task = AbortOnDrop(tokio::spawn(config_task(state.clone(), cfg_rx, kind)));
    oxr_sdk::process::spawn_metrics(&args.common, Arc::new(FeaShow::new(state.clone()))).await?;
    serve(state, &addr, shutdown).await
}

/// Serves the Fea and Process services for `state` on `addr` until `shutdown`.
pub async fn serve(
    state: Arc<FeaState>,
    addr: &Address,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let router = tonic::transport::Server::builder()
        .add_service(
            FeaServer::new(FeaService::new(state.clone()))
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
        .add_service(process_service("fea", Arc::new(FeaShow::new(state))));
    // Graceful shutdown waits for open streams (the RIB's ProgramFib, WatchInterfaces
    // subscribers); they get a short grace period, then the server stops regardless.
    let (fired_tx, fired_rx) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        let _ = fired_tx.send(());
    };
    let grace = async move {
        if fired_rx.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    match addr {
        Address::Unix(path) => {
            let incoming = transport::bind_unix(path)?;
            tracing::info!(socket = %path.display(), "serving");
            let r = tokio::select! {
                r = router.serve_with_incoming_shutdown(incoming, signal) => r,
                _ = grace => Ok(()),
            };
            let _ = std::fs::remove_file(path);
            r.context("gRPC server")?;
        }
        Address::Tcp(hostport) => {
            let sock = hostport
                .parse()
                .with_context(|| format!("listen address {hostport}"))?;
            tracing::info!(%hostport, "serving");
            tokio::select! {
                r = router.serve_with_shutdown(sock, signal) => r.context("gRPC server")?,
                _ = grace => {}
            }
        }
    }
    Ok(())
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Follows `WatchConfig("fea")`, reconnecting quietly with backoff; the last config stays
/// in force while routerd is away.
async fn watch_routerd(addr: Address, tx: watch::Sender<Option<FeaSection>>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut client = RouterdClient::new(transport::connect_lazy(&addr));
        match client
            .watch_config(WatchConfigRequest {
                section: "fea".into(),
            })
            .await
        {
            Ok(resp) => {
                backoff = Duration::from_millis(100);
                let mut stream = resp.into_inner();
                while let Ok(Some(m)) = stream.message().await {
                    let parsed = serde_json::from_str::<serde_json::Value>(&m.json)
                        .map_err(anyhow::Error::from)
                        .and_then(|v| section_from_json(&v));
                    match parsed {
                        Ok(s) => {
                            tracing::info!(revision = m.revision, "configuration received");
                            tx.send_replace(Some(s));
                        }
                        Err(e) => tracing::error!(error = %e, "bad fea section from routerd"),
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "routerd not reachable"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Applies the config: netlink batch size now, interface settings now (once per
/// interface, see [`crate::config::Applied`]) and to interfaces that appear later. An
/// interface an operator sets down by hand stays down until the config changes.
async fn config_task(
    state: Arc<FeaState>,
    mut cfg_rx: watch::Receiver<Option<FeaSection>>,
    started_with: BackendKind,
) {
    let mut updates = state.interfaces.as_ref().map(|w| w.subscribe().1);
    let applied = Arc::new(std::sync::Mutex::new(crate::config::Applied::new()));
    let mut last_interfaces = None;
    let mut config_changed = true;
    loop {
        let section = cfg_rx.borrow_and_update().clone();
        if let Some(s) = section {
            if config_changed {
                let batch = s.fea.netlink_batch as usize;
                state
                    .with_fib(move |f| f.backend_mut().set_batch(batch))
                    .await;
                if BackendKind::from(s.fea.dataplane) != started_with {
                    tracing::warn!("fea.dataplane changed: restart oxr-fea to switch backends");
                }
                // The same interfaces re-sent (routerd reconnecting) are not a change.
                if last_interfaces.as_ref() != Some(&s.interfaces) {
                    applied.lock().expect("applied lock").clear();
                    last_interfaces = Some(s.interfaces.clone());
                }
            }
            if let Some(w) = state.interfaces.clone() {
                let ifs = s.interfaces.clone();
                let applied = applied.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    configure_interfaces_once(&w, &ifs, &mut applied.lock().expect("applied lock"))
                })
                .await;
            }
        }
        tokio::select! {
            r = cfg_rx.changed() => {
                if r.is_err() { return }
                config_changed = true;
            }
            _ = async {
                match &mut updates {
                    Some(u) => {
                        if let Err(tokio::sync::broadcast::error::RecvError::Closed) = u.recv().await {
                            std::future::pending::<()>().await
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
            } => config_changed = false,
        }
    }
}

/// [`configure_interfaces`] for the interfaces not yet in `applied` (see
/// [`crate::config::plan_new_interfaces`]); returns the actions that failed.
pub fn configure_interfaces_once(
    w: &InterfaceWatcher,
    cfg: &std::collections::BTreeMap<String, oxr_config::InterfaceConfig>,
    applied: &mut crate::config::Applied,
) -> Vec<String> {
    let (actions, missing) = plan_new_interfaces(&w.snapshot(), cfg, applied);
    run_actions(w, actions, missing)
}

/// Brings the interfaces to what `cfg` says; returns the actions that failed.
pub fn configure_interfaces(
    w: &InterfaceWatcher,
    cfg: &std::collections::BTreeMap<String, oxr_config::InterfaceConfig>,
) -> Vec<String> {
    let (actions, missing) = plan_interfaces(&w.snapshot(), cfg);
    run_actions(w, actions, missing)
}

fn run_actions(
    w: &InterfaceWatcher,
    actions: Vec<crate::config::IfAction>,
    missing: Vec<String>,
) -> Vec<String> {
    for m in &missing {
        tracing::debug!(interface = %m, "configured interface does not exist (yet)");
    }
    if actions.is_empty() {
        return Vec::new();
    }
    let reqs: Vec<_> = actions.iter().map(action_message).collect();
    let codes = w.with_socket(|s| s.transact(&reqs, 64));
    let mut failed = Vec::new();
    match codes {
        Ok(codes) => {
            for (a, c) in actions.iter().zip(codes) {
                if c == 0 {
                    tracing::info!("interface: {a}");
                } else {
                    let e = format!("{a}: {}", crate::netlink::errno_text(c));
                    tracing::warn!("interface: {e}");
                    failed.push(e);
                }
            }
        }
        Err(e) => failed.push(e.to_string()),
    }
    failed
}
