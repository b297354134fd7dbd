//! oxr-static: static routes from the router's config, published to oxr-rib.
//!
//! `oxr-static --router R --run-dir D [--config FILE]`: takes `protocols.static` from
//! oxr-routerd (or FILE), publishes to `D/rib.sock`, serves `show static routes` on
//! `D/static.sock`. On SIGTERM it just exits: the RIB keeps its routes as stale until it
//! returns (see `oxr_sdk::runtime`).

use std::sync::Arc;

use clap::Parser;
use oxr_config::{StaticConfig, STATIC_DISTANCE};
use oxr_sdk::{CommonArgs, Hello, Runtime};
use oxr_static::{api, instance, PROCESS};

#[derive(Parser)]
#[command(name = "oxr-static", version, about = "oxr static routes")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = Runtime::new(PROCESS, args.common)?;
    let config = rt.config::<Option<StaticConfig>>()?;
    let rib = rt.rib_publisher(Hello {
        protocol: PROCESS.into(),
        instance: String::new(),
        default_distance: STATIC_DISTANCE,
        stale_hold_secs: 0,
    });
    let (routes_tx, routes_rx) = tokio::sync::watch::channel(Arc::default());
    let show = Arc::new(api::StaticShow::new(routes_rx, Some(rib.clone())));
    rt.run(show, instance::run(config, rib, routes_tx)).await
}
