//! oxr-fea: serves `oxr.fea.Fea` and `oxr.process.Process` on `<run-dir>/fea.sock`.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = oxr_fea::Args::parse();
    oxr_sdk::process::init_logging(&args.common.log);
    oxr_fea::run(args).await
}
