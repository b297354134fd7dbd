//! `oxr-hello`: the process (the template's, with `Instance::new(seq_base)`). The SDK's
//! event loop does all the I/O (config from oxr-routerd, interfaces from oxr-fea, routes to
//! oxr-rib, one UDP socket per active interface, the clock and timers) and feeds the
//! [`Instance`], which says what to do through its [`UdpProtocol`](oxr_sdk::UdpProtocol)
//! implementation.

use clap::Parser;
use oxr_hello::config::HelloConfig;
use oxr_hello::instance::Instance;
use oxr_hello::{rib, PROCESS};
use oxr_sdk::{CommonArgs, Runtime};

#[derive(Parser)]
#[command(
    name = "oxr-hello",
    version,
    about = "oxr tutorial protocol: flood connected prefixes"
)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // Wall-clock seconds: a restarted router's hellos are newer than its last ones.
    let seq_base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32);
    Runtime::protocol::<HelloConfig>(PROCESS, args.common)?
        .run_protocol(rib::hello(), Instance::new(seq_base))
        .await
}
