//! `oxr-routerd --config FILE [--name N] [--run-dir D] [--netns NS] [--bin-dir B] [--log F]
//! [--state-dir S]`: see the library docs.

use std::process::ExitCode;

use clap::Parser;
use oxr_routerd::{enter_netns, load_config, router_name, run, Args};

fn main() -> ExitCode {
    let args = Args::parse();
    // Protocols not compiled in are looked up there while the config is validated.
    oxr_routerd::set_bin_dir(args.bin_dir.clone());
    let (table, cfg) = match load_config(&args.config) {
        Ok(v) => v,
        Err(errs) => {
            for e in &errs {
                eprintln!("{e}");
            }
            eprintln!(
                "oxr-routerd: {}: {} error{}",
                args.config.display(),
                errs.len(),
                if errs.len() == 1 { "" } else { "s" }
            );
            return ExitCode::from(1);
        }
    };
    let name = match router_name(&args, &cfg) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("oxr-routerd: {e:#}");
            return ExitCode::from(2);
        }
    };
    // Before the runtime exists: every thread created later inherits the namespace.
    if let Some(ns) = &args.netns {
        if let Err(e) = enter_netns(ns) {
            eprintln!("oxr-routerd: {e:#}");
            return ExitCode::from(1);
        }
    }
    oxr_sdk::process::init_logging(&args.log);
    // One thread: children are forked from it, so their parent-death signal fires only
    // when routerd itself dies (see spawn.rs).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("oxr-routerd: tokio runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(args, table, name)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oxr-routerd: {e:#}");
            ExitCode::from(1)
        }
    }
}
