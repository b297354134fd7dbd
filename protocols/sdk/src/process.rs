//! What every oxr process does the same way: arguments, logging, where it listens, the
//! generic show service, shutdown on SIGTERM/SIGINT.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use oxr_proto::process::process_server::{Process, ProcessServer};
use oxr_proto::process::{
    CommandSpec, DescribeReply, DescribeRequest, MetricsReply, MetricsRequest, ShowReply,
    ShowRequest,
};
use oxr_proto::transport::{self, Address};
use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status};

/// Arguments shared by every oxr process (flatten into the process's own clap struct).
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Name of the virtual router this process belongs to.
    #[arg(long, default_value = "default")]
    pub router: String,
    /// The router's run directory (sockets live here); default /run/oxr/<router>.
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Where to serve gRPC: unix:PATH or tcp:HOST:PORT; default <run-dir>/<process>.sock.
    #[arg(long)]
    pub listen: Option<String>,
    /// Read this process's section from a router TOML file instead of oxr-routerd.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Log filter (tracing EnvFilter syntax), e.g. "info" or "oxr_rib=debug".
    #[arg(long, default_value = "info", env = "OXR_LOG")]
    pub log: String,
    /// Also serve the process's counters in Prometheus text format at
    /// http://ADDR:PORT/metrics (the same text as the Metrics RPC).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Print the JSON schema of this protocol's config section and exit (asked by
    /// oxr-routerd for a protocol it was not built with).
    #[arg(long)]
    pub config_schema: bool,
    /// Read this protocol's config section as JSON on stdin, print its errors as JSON
    /// `[{"path", "reason"}]` (paths relative to the section) and exit: 0 valid, 1 invalid.
    #[arg(long, conflicts_with = "config_schema")]
    pub check_config: bool,
}

impl CommonArgs {
    /// The run directory, created with mode 0700 if missing.
    pub fn run_dir(&self) -> anyhow::Result<PathBuf> {
        let dir = self
            .run_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/run/oxr").join(&self.router));
        create_private_dir(&dir)?;
        Ok(dir)
    }

    /// Address of `process` (this one or another) in the run directory.
    pub fn address_of(&self, process: &str) -> anyhow::Result<Address> {
        Ok(Address::in_run_dir(&self.run_dir()?, process))
    }

    /// Where this process serves.
    pub fn listen_address(&self, process: &str) -> anyhow::Result<Address> {
        match &self.listen {
            Some(l) => Ok(Address::parse(l)?),
            None => self.address_of(process),
        }
    }
}

/// Creates a directory (and parents) readable only by its owner.
pub fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("chmod 0700 {}", dir.display()))?;
    Ok(())
}

/// Starts logging to stderr with the given filter.
pub fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// A show command's answer: a table for people and the same data as JSON.
#[derive(Debug, Clone, Default)]
pub struct ShowOutput {
    pub text: String,
    pub json: serde_json::Value,
}

/// The show commands and counters of a process, served as `oxr.process.Process`.
#[tonic::async_trait]
pub trait ShowHandler: Send + Sync + 'static {
    /// The commands (words after `show`) with one line of help each.
    fn commands(&self) -> Vec<(Vec<&'static str>, &'static str)>;
    /// Runs one command; an error is shown to the user as one line.
    async fn show(&self, words: &[String]) -> Result<ShowOutput, String>;
    /// Counters in Prometheus text format.
    async fn metrics(&self) -> String {
        String::new()
    }
}

/// A show or metrics request on its way from the gRPC side to the event loop that owns the
/// state: what [`show_channel`]'s handler sends.
pub enum ShowQuery {
    /// `show <words>`.
    Show(Vec<String>, oneshot::Sender<Result<ShowOutput, String>>),
    /// Prometheus counters.
    Metrics(oneshot::Sender<String>),
}

impl ShowQuery {
    /// Answers with `show` or `metrics`, as the loop computes them from its state (a
    /// requester that gave up is not an error).
    pub fn answer(
        self,
        show: impl FnOnce(&[String]) -> Result<ShowOutput, String>,
        metrics: impl FnOnce() -> String,
    ) {
        match self {
            ShowQuery::Show(words, reply) => {
                let _ = reply.send(show(&words));
            }
            ShowQuery::Metrics(reply) => {
                let _ = reply.send(metrics());
            }
        }
    }
}

/// A [`ShowHandler`] for state owned by an event loop: it declares `commands` and forwards
/// every request over the returned channel, which the loop reads between events and answers
/// with [`ShowQuery::answer`].
pub fn show_channel(
    commands: Vec<(Vec<&'static str>, &'static str)>,
) -> (Arc<dyn ShowHandler>, mpsc::Receiver<ShowQuery>) {
    let (tx, rx) = mpsc::channel(16);
    (Arc::new(ForwardShow { commands, tx }), rx)
}

struct ForwardShow {
    commands: Vec<(Vec<&'static str>, &'static str)>,
    tx: mpsc::Sender<ShowQuery>,
}

#[tonic::async_trait]
impl ShowHandler for ForwardShow {
    fn commands(&self) -> Vec<(Vec<&'static str>, &'static str)> {
        self.commands.clone()
    }

    async fn show(&self, words: &[String]) -> Result<ShowOutput, String> {
        let (tx, rx) = oneshot::channel();
        let gone = |_| "the process is shutting down".to_string();
        self.tx
            .send(ShowQuery::Show(words.to_vec(), tx))
            .await
            .map_err(gone)?;
        rx.await.map_err(|_| "no answer".to_string())?
    }

    async fn metrics(&self) -> String {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(ShowQuery::Metrics(tx)).await.is_err() {
            return String::new();
        }
        rx.await.unwrap_or_default()
    }
}

struct ProcessService {
    name: String,
    handler: Arc<dyn ShowHandler>,
}

#[tonic::async_trait]
impl Process for ProcessService {
    async fn describe(
        &self,
        _: Request<DescribeRequest>,
    ) -> Result<Response<DescribeReply>, Status> {
        let commands = self
            .handler
            .commands()
            .into_iter()
            .map(|(words, help)| CommandSpec {
                words: words.into_iter().map(String::from).collect(),
                help: help.to_string(),
            })
            .collect();
        Ok(Response::new(DescribeReply {
            process: self.name.clone(),
            commands,
        }))
    }

    async fn show(&self, req: Request<ShowRequest>) -> Result<Response<ShowReply>, Status> {
        let out = self
            .handler
            .show(&req.into_inner().words)
            .await
            .map_err(Status::invalid_argument)?;
        Ok(Response::new(ShowReply {
            text: out.text,
            json: out.json.to_string(),
        }))
    }

    async fn metrics(&self, _: Request<MetricsRequest>) -> Result<Response<MetricsReply>, Status> {
        Ok(Response::new(MetricsReply {
            text: self.handler.metrics().await,
        }))
    }
}

/// The generic show service for `name`, to add to the process's tonic router.
pub fn process_service(name: &str, handler: Arc<dyn ShowHandler>) -> ProcessServer<impl Process> {
    ProcessServer::new(ProcessService {
        name: name.to_string(),
        handler,
    })
}

/// Serves a tonic router on `addr` until SIGTERM or SIGINT, then removes the socket file.
pub async fn serve(router: tonic::transport::server::Router, addr: &Address) -> anyhow::Result<()> {
    serve_until(router, addr, shutdown_signal()).await
}

/// How long in-flight calls get to finish after the stop signal. Long-lived streams
/// (Publish, WatchConfig, ...) never finish by themselves, so after this the server is
/// dropped and their peers see the stream break (which they are built to survive).
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts the `--metrics-listen` endpoint (when asked for) for a process that builds its own
/// server instead of running under [`crate::Runtime`] (oxr-rib, oxr-fea, oxr-fastpath). The
/// port is bound here, so a taken port fails the start; the endpoint lives as long as the
/// process.
pub async fn spawn_metrics(args: &CommonArgs, handler: Arc<dyn ShowHandler>) -> anyhow::Result<()> {
    if let Some(addr) = args.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("--metrics-listen {addr}"))?;
        tracing::info!(%addr, "serving Prometheus metrics at /metrics");
        tokio::spawn(crate::metrics::serve(listener, handler));
    }
    Ok(())
}

/// Serves a tonic router on `addr` until `stop` resolves (then gives calls
/// [`SHUTDOWN_GRACE`] to finish), and removes the socket file.
pub async fn serve_until(
    router: tonic::transport::server::Router,
    addr: &Address,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let (graceful_tx, graceful_rx) = tokio::sync::oneshot::channel::<()>();
    let graceful = async move {
        let _ = graceful_rx.await;
    };
    let result = match addr {
        Address::Unix(path) => {
            let incoming = transport::bind_unix(path)?;
            tracing::info!(socket = %path.display(), "serving");
            let server = router.serve_with_incoming_shutdown(incoming, graceful);
            let r = run_until(server, stop, graceful_tx).await;
            let _ = std::fs::remove_file(path);
            r
        }
        Address::Tcp(hostport) => {
            let sock = hostport
                .parse()
                .with_context(|| format!("listen address {hostport}"))?;
            tracing::info!(%hostport, "serving");
            let server = router.serve_with_shutdown(sock, graceful);
            run_until(server, stop, graceful_tx).await
        }
    };
    result.context("gRPC server")
}

async fn run_until<E>(
    server: impl std::future::Future<Output = Result<(), E>>,
    stop: impl std::future::Future<Output = ()>,
    graceful: tokio::sync::oneshot::Sender<()>,
) -> Result<(), E> {
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => r,
        _ = stop => {
            let _ = graceful.send(());
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::debug!("streams still open after the grace period; closing them");
                    Ok(())
                }
            }
        }
    }
}

/// Resolves when the process is asked to stop (SIGTERM or SIGINT).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}
