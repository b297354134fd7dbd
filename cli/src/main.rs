//! `oxrsh`: the shell of an oxr virtual router.
//!
//! ```text
//! oxrsh -r r1                          interactive
//! oxrsh -r r1 -c 'show route'          one command
//! oxrsh -r r1 -c configure -c 'set protocols static route 10.9.0.0/16 via 10.0.12.2' -c commit
//! ```

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use oxrsh::repl;
use oxrsh::shell::{run_command, Context};

#[derive(Debug, Parser)]
#[command(
    name = "oxrsh",
    version,
    about = "Interactive shell of an oxr virtual router"
)]
struct Args {
    /// The virtual router (run directory /run/oxr/NAME).
    #[arg(short = 'r', long, env = "OXR_ROUTER")]
    router: Option<String>,
    /// The router's run directory, instead of /run/oxr/NAME.
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Run this command and exit (may be given several times; stops at the first that
    /// fails, and the exit status is then 1).
    #[arg(short = 'c', long = "command", value_name = "COMMAND")]
    commands: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (router, run_dir) = match (&args.router, &args.run_dir) {
        (Some(r), Some(d)) => (r.clone(), d.clone()),
        (Some(r), None) => (r.clone(), PathBuf::from("/run/oxr").join(r)),
        (None, Some(d)) => (
            d.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "oxr".into()),
            d.clone(),
        ),
        (None, None) => ("default".into(), PathBuf::from("/run/oxr/default")),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut ctx = Context::new(router, run_dir);
    if !args.commands.is_empty() {
        for command in &args.commands {
            match rt.block_on(run_command(&mut ctx, command)) {
                Ok(out) => repl::print_output(&out),
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            }
            if ctx.should_quit() {
                break;
            }
        }
        return ExitCode::SUCCESS;
    }
    match repl::interactive(&rt, &mut ctx) {
        // A script piped in fails if any of its commands did; a person's typos do not.
        Ok(failed) if failed > 0 && !std::io::stdin().is_terminal() => ExitCode::FAILURE,
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
