//! The process main loop: what a protocol binary's `main` does, in one call.
//!
//! ```text
//!   main() ── Runtime::new(name, args) ── logging, run dir (0700)
//!               │
//!               ├─ rt.config::<T>()        ConfigWatcher  (routerd.sock or --config FILE)
//!               ├─ rt.rib_publisher(hello) RibPublisher   (rib.sock, reconnecting)
//!               ├─ rt.interfaces()         InterfaceWatcher (fea.sock, reconnecting)
//!               │
//!               └─ rt.run(show, event_loop)
//!                    ├─ gRPC on <run-dir>/<name>.sock: oxr.process.Process (+ own services)
//!                    ├─ the protocol's event loop (owns the instance state)
//!                    ├─ --metrics-listen ADDR:PORT: GET /metrics (the Metrics RPC's text)
//!                    └─ SIGTERM/SIGINT -> stop both, remove the socket, return
//!
//!   Runtime::protocol::<Section>(name, args) does the same after answering
//!   --config-schema / --check-config for oxr-routerd (see crate::protocol).
//!
//!   rt.run_protocol(hello, instance) is all of the above for a protocol in the
//!   template's shape (config, interfaces, UDP per interface, timers, RIB; see
//!   crate::udp_protocol): the event loop and its show handler come from the SDK.
//! ```
//!
//! Graceful shutdown sends nothing special to the RIB: the Publish stream simply ends, and
//! oxr-rib keeps the process's routes, marked stale, for the stale hold time. If the process
//! comes back (routerd restarts it, or an operator does) it re-publishes and sends
//! end-of-RIB, and only routes it no longer has are swept. Forwarding never moves because a
//! protocol process stopped; to remove a protocol's routes, remove it from the config.

use std::future::Future;

use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;

use oxr_proto::transport::Address;
use serde::de::DeserializeOwned;

use crate::config_client::ConfigWatcher;
use crate::fea_client::InterfaceWatcher;
use crate::process::{self, init_logging, CommonArgs, ShowHandler};
use crate::protocol::{self, SectionConfig, SectionSchema};
use crate::rib_client::{Hello, NexthopWatcher, RibPublisher};
use crate::udp_protocol::{self, UdpProtocol};

/// A protocol process's surroundings: its name, arguments and run directory, and the
/// clients it can open to the other processes of its router.
pub struct Runtime {
    name: String,
    args: CommonArgs,
    run_dir: PathBuf,
}

impl Runtime {
    /// Starts logging and makes sure the run directory exists (mode 0700).
    pub fn new(name: &str, args: CommonArgs) -> anyhow::Result<Self> {
        // Only Runtime::protocol answers these; here they would start the daemon instead.
        anyhow::ensure!(
            !args.config_schema && !args.check_config,
            "oxr-{name} does not describe its section (its schema is built into oxr-routerd)"
        );
        init_logging(&args.log);
        let run_dir = args.run_dir()?;
        Ok(Runtime {
            name: name.to_string(),
            args,
            run_dir,
        })
    }

    /// The entry point of a protocol process whose config section is `T`: answers
    /// `--config-schema` and `--check-config` (printing, then exiting the process: this is
    /// how oxr-routerd learns a protocol it was not built with, see [`crate::protocol`]),
    /// registers the section's schema with oxr-config (so `--config FILE` validates it),
    /// then does what [`Runtime::new`] does.
    pub fn protocol<T: SectionConfig>(
        name: &'static str,
        args: CommonArgs,
    ) -> anyhow::Result<Self> {
        let stdin = || std::io::read_to_string(std::io::stdin());
        if let Some((out, code)) = protocol::answer_schema_flags::<T>(&args, stdin) {
            use std::io::Write;
            let mut stdout = std::io::stdout();
            let _ = stdout.write_all(out.as_bytes());
            let _ = stdout.flush();
            std::process::exit(code);
        }
        oxr_config::register(SectionSchema::<T>::new(name))?;
        Self::new(name, args)
    }

    /// This process's name (also its config section and socket name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The arguments it was started with.
    pub fn args(&self) -> &CommonArgs {
        &self.args
    }

    /// The router's run directory.
    pub fn run_dir(&self) -> &std::path::Path {
        &self.run_dir
    }

    /// Address of another process of this router.
    pub fn address_of(&self, process: &str) -> Address {
        Address::in_run_dir(&self.run_dir, process)
    }

    /// Watches this process's config section (named like the process).
    pub fn config<T: DeserializeOwned + Send + Sync + 'static>(
        &self,
    ) -> anyhow::Result<ConfigWatcher<T>> {
        ConfigWatcher::start(&self.args, &self.name)
    }

    /// Starts publishing to this router's RIB.
    pub fn rib_publisher(&self, hello: Hello) -> RibPublisher {
        RibPublisher::start(self.address_of("rib"), hello)
    }

    /// Starts watching next hops through this router's RIB.
    pub fn nexthop_watcher(&self) -> NexthopWatcher {
        NexthopWatcher::start(self.address_of("rib"))
    }

    /// Starts watching this router's interfaces.
    pub fn interfaces(&self) -> InterfaceWatcher {
        InterfaceWatcher::start(self.address_of("fea"))
    }

    /// Runs a protocol in the template's shape (see [`crate::udp_protocol`]): watches its
    /// section, the interfaces and its UDP sockets, publishes to the RIB (announced as
    /// `hello`), and feeds everything to `instance` in one event loop whose show handler
    /// answers from the instance, until SIGTERM/SIGINT or until a source ends. A binary's
    /// whole `main`:
    ///
    /// ```text
    /// let args = Args::parse();
    /// Runtime::protocol::<MyConfig>(PROCESS, args.common)?
    ///     .run_protocol(rib::hello(), Instance::new())
    ///     .await
    /// ```
    pub async fn run_protocol<P: UdpProtocol>(
        self,
        hello: Hello,
        instance: P,
    ) -> anyhow::Result<()> {
        let config = self.config::<Option<P::Section>>()?;
        let interfaces = self.interfaces();
        let rib = self.rib_publisher(hello);
        let (show, requests) = process::show_channel(P::commands());
        let event_loop = udp_protocol::event_loop(instance, config, interfaces, rib, requests);
        self.run(show, event_loop).await
    }

    /// Serves `oxr.process.Process` (with `show`) and runs `event_loop` until SIGTERM/SIGINT
    /// or until the loop ends. An error from the loop or the server is returned.
    pub async fn run<F>(self, show: Arc<dyn ShowHandler>, event_loop: F) -> anyhow::Result<()>
    where
        F: Future<Output = anyhow::Result<()>>,
    {
        self.run_with_services(show, |r| r, event_loop).await
    }

    /// Like [`run`](Self::run), with the process's own gRPC services added to the router
    /// (`|r| r.add_service(MyServer::new(..))`).
    pub async fn run_with_services<F>(
        self,
        show: Arc<dyn ShowHandler>,
        add_services: impl FnOnce(tonic::transport::server::Router) -> tonic::transport::server::Router,
        event_loop: F,
    ) -> anyhow::Result<()>
    where
        F: Future<Output = anyhow::Result<()>>,
    {
        let listen = self.args.listen_address(&self.name)?;
        // Bound before anything runs, so a taken port fails the start, not a later scrape.
        let metrics = match self.args.metrics_listen {
            Some(addr) => {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("--metrics-listen {addr}"))?;
                tracing::info!(%addr, "serving Prometheus metrics at /metrics");
                Some(AbortOnDrop(tokio::spawn(crate::metrics::serve(
                    l,
                    show.clone(),
                ))))
            }
            None => None,
        };
        let router = tonic::transport::Server::builder()
            .add_service(process::process_service(&self.name, show));
        let router = add_services(router);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = process::serve_until(router, &listen, async move {
            tokio::select! {
                _ = process::shutdown_signal() => {}
                _ = stop_rx => {}
            }
        });
        tokio::pin!(server);
        tokio::pin!(event_loop);
        let _metrics = metrics;
        tokio::select! {
            r = &mut server => {
                // Stopped by a signal (Ok) or failed to serve (Err).
                r
            }
            r = &mut event_loop => {
                let _ = stop_tx.send(());
                let served = server.await;
                if let Err(e) = &r {
                    tracing::error!(error = %e, "event loop failed");
                }
                r.and(served)
            }
        }
    }
}

/// Stops a background task (the metrics endpoint) when the run ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
