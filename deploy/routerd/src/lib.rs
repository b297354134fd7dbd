//! oxr-routerd: one virtual router's process-set manager and configuration API.
//!
//! It reads the router's TOML configuration, keeps it as revision 1, serves
//! `oxr.routerd.Routerd` (config edits, commit, rollback, process control, config delivery
//! through `WatchConfig`) and `oxr.process.Process` (`show processes`) on
//! `<run-dir>/routerd.sock`, then starts and supervises oxr-fea, oxr-rib and one process per
//! configured protocol.
//!
//! ```text
//!  oxrsh / processes --gRPC--> service::Api --+-- store::ConfigStore (running, candidate, revisions)
//!                                             +-- revisions::RevisionDir (<state-dir>/<N>.toml, index.json)
//!                                             +-- section watchers (WatchConfig streams)
//!                                             +-- supervisor::Supervisor --> oxr-fea, oxr-rib, oxr-<protocol>
//! ```

pub mod backoff;
pub mod external;
pub mod revisions;
pub mod service;
pub mod spawn;
pub mod store;
pub mod supervisor;

use std::path::{Path, PathBuf};

use anyhow::Context;
use oxr_config::{ConfigError, Registry, RouterConfig};

pub use service::Routerd;
pub use store::ConfigStore;
pub use supervisor::{Supervisor, SupervisorConfig};

/// Command line of `oxr-routerd`.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "oxr-routerd",
    version,
    about = "oxr virtual router: process set and configuration API"
)]
pub struct Args {
    /// The router's configuration (TOML).
    #[arg(long)]
    pub config: PathBuf,
    /// Router name; default: `router.name` from the configuration, else the file's stem.
    #[arg(long)]
    pub name: Option<String>,
    /// Run directory (sockets, logs, pid file); default /run/oxr/<name>, created mode 0700.
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Enter this network namespace (/var/run/netns/NAME, or a path such as
    /// /proc/PID/ns/net) before starting anything.
    #[arg(long)]
    pub netns: Option<String>,
    /// Directory holding oxr-fea, oxr-rib, oxr-<protocol>; default: routerd's own directory.
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Log filter (tracing EnvFilter syntax), also passed to every process.
    #[arg(long, default_value = "info", env = "OXR_LOG")]
    pub log: String,
    /// Where revisions are kept; default <run-dir>/config.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// First delay before restarting a process that died (doubles per quick failure, up
    /// to 30 s).
    #[arg(long, default_value_t = 100)]
    pub restart_backoff_ms: u64,
}

/// The protocols routerd validates, delivers and runs beyond the built-in `static`: each
/// protocol crate's [`ProtocolSchema`](oxr_config::ProtocolSchema) compiled in here, and
/// any other `oxr-<name>` of the bin dir ([`bin_dir`]) that describes its section
/// ([`external`]). A protocol is accepted under `protocols.<name>`, completed by the shell
/// (`Schema`), delivered as `WatchConfig` section `<name>` and run as `oxr-<name>` while
/// its section exists.
pub fn registry() -> Registry {
    Registry::builtin()
        .with(oxr_ospf::config::OspfSchema)
        .with(oxr_bgp::config::BgpSchema)
        .with(oxr_rip::config::RipSchema)
        .with_resolver(external::BinDirSchemas::new(bin_dir()))
}

static BIN_DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Sets where the processes' binaries are (`--bin-dir`), before anything asks
/// [`registry`] or [`bin_dir`]; later calls are ignored.
pub fn set_bin_dir(dir: Option<PathBuf>) {
    if let Some(d) = dir {
        let _ = BIN_DIR.set(d);
    }
}

/// Where `oxr-fea`, `oxr-rib`, `oxr-<protocol>` are: [`set_bin_dir`]'s, else the
/// directory of the running executable.
pub fn bin_dir() -> PathBuf {
    BIN_DIR
        .get_or_init(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| PathBuf::from("."))
        })
        .clone()
}

/// Reads and validates the configuration file: the document and its typed form, or every
/// error found.
pub fn load_config(path: &Path) -> Result<(toml::Table, RouterConfig), Vec<ConfigError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError {
            path: String::new(),
            reason: format!("cannot read {}: {e}", path.display()),
        }]
    })?;
    let table = oxr_config::parse_toml(&text).map_err(|e| vec![e])?;
    let cfg = oxr_config::validate_table_with(&table, &registry())?;
    Ok((table, cfg))
}

/// The router's name: `--name`, else `router.name`, else the config file's stem.
pub fn router_name(args: &Args, cfg: &RouterConfig) -> anyhow::Result<String> {
    let name = args
        .name
        .clone()
        .or_else(|| cfg.router.name.clone())
        .or_else(|| {
            args.config
                .file_stem()
                .and_then(|s| s.to_str())
                .map(String::from)
        })
        .unwrap_or_default();
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name != "."
        && name != "..";
    anyhow::ensure!(
        ok,
        "bad router name {name:?}: use 1-32 letters, digits, '-', '_' or '.'"
    );
    Ok(name)
}

/// Moves the calling thread into a network namespace. Call before any other thread exists:
/// threads created afterwards inherit it.
pub fn enter_netns(name: &str) -> anyhow::Result<()> {
    let path = if name.contains('/') {
        PathBuf::from(name)
    } else {
        PathBuf::from("/var/run/netns").join(name)
    };
    let file = std::fs::File::open(&path)
        .with_context(|| format!("network namespace {name}: cannot open {}", path.display()))?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("entering network namespace {name}"))?;
    Ok(())
}

/// Runs routerd until SIGTERM or SIGINT: revision 1, the API on `<run-dir>/routerd.sock`,
/// the processes; then stops the processes and removes the socket and pid file.
pub async fn run(args: Args, table: toml::Table, name: String) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // Handlers first, so a stop request during startup is not fatal to routerd alone.
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;

    let run_dir = args
        .run_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("/run/oxr").join(&name));
    oxr_sdk::process::create_private_dir(&run_dir)?;
    let pid_file = run_dir.join("routerd.pid");
    std::fs::write(&pid_file, format!("{}\n", std::process::id()))
        .with_context(|| format!("writing {}", pid_file.display()))?;

    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| run_dir.join("config"));
    let revisions = revisions::RevisionDir::create_fresh(&state_dir)?;
    let comment = format!("startup: {}", args.config.display());
    let store = ConfigStore::new(table, service::unix_now(), &comment)
        .map_err(|errs| anyhow::anyhow!("configuration: {}", errs[0]))?;
    let first = &store.revisions()[0];
    revisions.save(store.revision_text(1).unwrap_or_default(), first, &[], 1)?;

    set_bin_dir(args.bin_dir.clone());
    let bin_dir = self::bin_dir();
    let mut supervisor_config = SupervisorConfig::new(&name, run_dir.clone(), bin_dir, &args.log);
    supervisor_config.backoff.initial = std::time::Duration::from_millis(args.restart_backoff_ms);
    let supervisor = Supervisor::new(supervisor_config);
    let routerd = Routerd::new(&name, &run_dir, store, Some(revisions), supervisor);

    // Serve before spawning: the processes ask for their configuration at once.
    let sock = run_dir.join("routerd.sock");
    let incoming = oxr_proto::transport::bind_unix(&sock)?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(routerd.grpc_router().serve_with_incoming_shutdown(
        incoming,
        async move {
            let _ = stop_rx.await;
        },
    ));
    tracing::info!(router = %name, socket = %sock.display(), "serving");
    routerd.start_processes().await;

    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
    }
    routerd.supervisor().shutdown().await;
    let _ = stop_tx.send(());
    match tokio::time::timeout(std::time::Duration::from_secs(2), server).await {
        Ok(Ok(Err(e))) => tracing::warn!("gRPC server: {e}"),
        Ok(_) => {}
        // Long-lived WatchConfig streams may hold the graceful shutdown; do not wait for them.
        Err(_) => {}
    }
    let _ = std::fs::remove_file(&sock);
    let _ = std::fs::remove_file(&pid_file);
    tracing::info!("stopped");
    Ok(())
}
