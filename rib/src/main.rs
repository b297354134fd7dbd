//! oxr-rib: the RIB daemon. Serves `oxr.rib.Rib` and `oxr.process.Process` on
//! `<run-dir>/rib.sock`, feeds oxr-fea over `ProgramFib` and follows its interfaces
//! (retrying for ever: the FEA may start later or restart), and takes its configuration
//! from oxr-routerd (`WatchConfig("rib")`) or from `--config FILE`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use oxr_config::RibSection;
use oxr_proto::routerd::routerd_client::RouterdClient;
use oxr_proto::routerd::WatchConfigRequest;
use oxr_proto::transport::{self, Address};
use oxr_rib::api::RibService;
use oxr_rib::show::RibShow;
use oxr_rib::{connected, fib_feed, RibHandle, RibOptions};
use oxr_sdk::process::{init_logging, process_service, serve};
use oxr_sdk::CommonArgs;

#[derive(Debug, Parser)]
#[command(name = "oxr-rib", about = "oxr's routing information base")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

fn options_from_json(json: &str) -> anyhow::Result<RibOptions> {
    let section: RibSection = serde_json::from_str(json).context("rib section")?;
    Ok(RibOptions::from_section(&section))
}

/// Follows the "rib" section from oxr-routerd; keeps the last one while routerd is away.
async fn watch_config(routerd: Address, handle: RibHandle) {
    let mut backoff = Duration::from_millis(200);
    loop {
        if let Ok(ch) = transport::connect(&routerd).await {
            let mut client = RouterdClient::new(ch);
            if let Ok(resp) = client
                .watch_config(WatchConfigRequest {
                    section: "rib".into(),
                })
                .await
            {
                backoff = Duration::from_millis(200);
                let mut stream = resp.into_inner();
                while let Ok(Some(sec)) = stream.message().await {
                    match options_from_json(&sec.json) {
                        Ok(opts) => {
                            tracing::info!(revision = sec.revision, "configuration received");
                            if handle.set_config(opts).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "bad rib section from routerd"),
                    }
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(&args.common.log);
    let opts = match &args.common.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let cfg = oxr_config::parse_and_validate_with(
                &text,
                &oxr_config::Registry::global().accept_unregistered(),
            )
            .map_err(|errs| {
                let lines: Vec<String> = errs
                    .iter()
                    .map(|e| format!("{}: {}", e.path, e.reason))
                    .collect();
                anyhow::anyhow!(
                    "{}: invalid configuration:\n{}",
                    path.display(),
                    lines.join("\n")
                )
            })?;
            Some(options_from_json(&cfg.section_json("rib").to_string())?)
        }
        None => None,
    };
    let handle = oxr_rib::spawn(opts.clone().unwrap_or_default());
    if opts.is_none() {
        tokio::spawn(watch_config(
            args.common.address_of("routerd")?,
            handle.clone(),
        ));
    }
    let fea = args.common.address_of("fea")?;
    tokio::spawn(fib_feed::run(fea.clone(), handle.clone()));
    tokio::spawn(connected::watch_interfaces(fea, handle.clone()));
    let show = Arc::new(RibShow::new(handle.clone()));
    oxr_sdk::process::spawn_metrics(&args.common, show.clone()).await?;
    let router = tonic::transport::Server::builder()
        .add_service(RibService::server(handle))
        .add_service(process_service("rib", show));
    serve(router, &args.common.listen_address("rib")?).await
}
