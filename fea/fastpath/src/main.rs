//! oxr-fastpath: the fast-path dataplane process (see the library docs).

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = oxr_fastpath::server::Args::parse();
    oxr_sdk::process::init_logging(&args.common.log);
    oxr_fastpath::server::run(args).await
}
