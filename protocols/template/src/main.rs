//! `oxr-template`: the process. The SDK's event loop does all the I/O (config from
//! oxr-routerd, interfaces from oxr-fea, routes to oxr-rib, one UDP socket per active
//! interface, the clock and timers) and feeds the [`Instance`], which says what to do
//! through its [`UdpProtocol`](oxr_sdk::UdpProtocol) implementation.

use clap::Parser;
use oxr_sdk::{CommonArgs, Runtime};
use oxr_template::config::TemplateConfig;
use oxr_template::instance::Instance;
use oxr_template::{rib, PROCESS};

#[derive(Parser)]
#[command(name = "oxr-template", version, about = "oxr protocol template")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    Runtime::protocol::<TemplateConfig>(PROCESS, args.common)?
        .run_protocol(rib::hello(), Instance::new())
        .await
}
