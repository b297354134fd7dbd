//! `oxr-lab`: see the library docs and `oxr-lab --help`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use oxr_lab::ops::{self, Ctx};
use oxr_lab::{spec, state};

#[derive(Parser, Debug)]
#[command(
    name = "oxr-lab",
    version,
    about = "Topologies of oxr virtual routers in network namespaces on one host"
)]
struct Cli {
    /// Root of the labs' run directories.
    #[arg(long, global = true, env = "OXR_LAB_ROOT", default_value = state::DEFAULT_ROOT)]
    root: PathBuf,
    /// Directory holding oxr-routerd, oxrsh and the process binaries; default: oxr-lab's own.
    #[arg(long, global = true, env = "OXR_BIN_DIR")]
    bin_dir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create the lab's namespaces and links and start its routers.
    Up {
        /// The lab file (TOML).
        lab: PathBuf,
        /// Use this lab name instead of the file's `lab.name` (to run a file twice).
        #[arg(long)]
        name: Option<String>,
        /// Return once every router has converged; fail naming the ones that have not after
        /// this many seconds.
        #[arg(long, value_name = "SECS")]
        wait: Option<u64>,
    },
    /// Wait for a running lab's routers to converge.
    Wait {
        /// Lab name (or its file).
        lab: String,
        /// Deadline in seconds.
        #[arg(long, default_value_t = 30)]
        secs: u64,
    },
    /// Kill every process of the lab and delete its namespaces and run directory.
    Down {
        /// Lab name (or its file).
        lab: String,
    },
    /// Per node: namespace, daemon, up time, routes, processes.
    Status {
        /// Lab name (or its file); default: every lab.
        lab: Option<String>,
    },
    /// The labs that are up.
    List,
    /// Run oxrsh (birdc for a BIRD router) attached to a router.
    Shell {
        /// Lab name (or its file).
        lab: String,
        /// Router.
        router: String,
        /// Further arguments for oxrsh (e.g. -c 'show route').
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run a command in a node's namespace.
    Exec {
        /// Lab name (or its file).
        lab: String,
        /// Node.
        node: String,
        /// The command, after `--`.
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
    /// RFC 2544 throughput through a chain of virtual routers (binary search for the highest
    /// zero-loss rate per frame size).
    Rfc2544 {
        /// Router counts, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
        routers: Vec<usize>,
        /// Frame sizes in bytes, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "64,512,1518")]
        sizes: Vec<usize>,
        /// Dataplanes, comma-separated: kernel, xdp, afxdp (the last two: the fast path; a
        /// dataplane this build lacks is reported unavailable).
        #[arg(long, value_delimiter = ',', default_value = "kernel")]
        dataplane: Vec<String>,
        /// Leave veths in the sender's softirq (no threaded NAPI, no pinning).
        #[arg(long)]
        no_napi: bool,
        /// The generator's core (the sink's NAPI thread shares it).
        #[arg(long, default_value_t = 0)]
        gen_cpu: usize,
        /// The routers' core (their NAPI threads are pinned there).
        #[arg(long, default_value_t = 1)]
        router_cpu: usize,
        /// Generator: socket (UDP sendmmsg, sink rx counter) or xdp (XDP-native: one thread
        /// on the generator's core injects live XDP frames with BPF_PROG_RUN in small
        /// batches paced by a token bucket; an XDP program on the sink counts them).
        #[arg(long, value_enum, default_value = "socket")]
        generator: oxr_lab::rfc2544::Generator,
        /// Run the NAPI threads and the generator SCHED_FIFO at this priority (1-98; the sink one higher), so
        /// that other work on a shared machine does not make the rings overflow.
        #[arg(long, value_name = "PRIO", value_parser = clap::value_parser!(u8).range(1..=98))]
        rt: Option<u8>,
        /// Seconds per trial.
        #[arg(long, default_value_t = 2.0)]
        trial_secs: f64,
        /// Highest rate offered (frames/s); default the generator's ceiling.
        #[arg(long, default_value_t = 0)]
        max_rate: u64,
        /// Search resolution, a fraction of the upper bound.
        #[arg(long, default_value_t = 0.01)]
        resolution: f64,
        /// Most search trials per point (plus the confirming one).
        #[arg(long, default_value_t = 12)]
        max_trials: u32,
        /// XDP generator: most frames per BPF_PROG_RUN call (a burst into the first
        /// router's 256-frame ring).
        #[arg(long, default_value_t = oxr_lab::rfc2544::XDP_BURST)]
        gen_burst: u64,
        /// XDP generator: pacing tick in microseconds (batches of rate x tick frames).
        #[arg(long, default_value_t = oxr_lab::rfc2544::XDP_TICK * 1e6)]
        gen_tick_us: f64,
        /// XDP generator: busy-wait (instead of sleeping) for waits shorter than this (us).
        #[arg(long, default_value_t = oxr_lab::rfc2544::XDP_SPIN * 1e6)]
        gen_spin_us: f64,
        /// napi_defer_hard_irqs on the routers' ingress veths (0: kernel default).
        #[arg(long, default_value_t = 0)]
        napi_defer: u32,
        /// gro_flush_timeout (us) on the routers' ingress veths (0: kernel default).
        #[arg(long, default_value_t = 0)]
        gro_flush_us: u32,
        /// AF_XDP busy polling for the afxdp engine, us (fea.fastpath.busy-poll-usecs).
        #[arg(long, default_value_t = 0)]
        busy_poll_us: u32,
        /// napi_defer_hard_irqs on the sink's veth (0: kernel default): while deferred, the
        /// last router does not wake the sink's NAPI thread on the other core.
        #[arg(long, default_value_t = oxr_lab::rfc2544::SINK_NAPI_DEFER)]
        sink_napi_defer: u32,
        /// gro_flush_timeout (us) on the sink's veth (0: kernel default).
        #[arg(long, default_value_t = oxr_lab::rfc2544::SINK_GRO_FLUSH_US)]
        sink_gro_flush_us: u32,
        /// Let each trial lose up to this fraction of its frames (e.g. 0.005): the search
        /// then finds a partial drop rate, not RFC 2544's zero-loss throughput.
        #[arg(long, default_value_t = 0.0)]
        loss_tolerance: f64,
        /// Also write the report as JSON here (and the plot beside it, `.svg`).
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write PREFIX.txt (the table), PREFIX.json and PREFIX.svg (the plot).
        #[arg(long, value_name = "PREFIX")]
        out: Option<PathBuf>,
    },
    /// The traffic generator (run by rfc2544 in the source namespace): UDP in sendmmsg
    /// batches; prints one JSON line.
    #[command(hide = true)]
    Gen {
        #[arg(long)]
        dst: std::net::SocketAddr,
        #[arg(long, default_value_t = 18)]
        payload: usize,
        /// Datagrams per second; 0 = as fast as possible.
        #[arg(long, default_value_t = 0)]
        rate: u64,
        #[arg(long, default_value_t = 1.0)]
        secs: f64,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Pin to this core.
        #[arg(long)]
        cpu: Option<usize>,
    },
    /// The XDP-native generator (run by rfc2544 in the source namespace); prints one JSON
    /// line.
    #[command(hide = true)]
    Xdpgen {
        #[arg(long)]
        ifname: String,
        #[arg(long)]
        dst_mac: String,
        #[arg(long, default_value_t = 64)]
        size: usize,
        #[arg(long, default_value_t = 0)]
        rate: u64,
        #[arg(long, default_value_t = 1.0)]
        secs: f64,
        #[arg(long)]
        cpu: Option<usize>,
        /// Most frames per BPF_PROG_RUN call.
        #[arg(long, default_value_t = oxr_lab::rfc2544::XDP_BURST)]
        burst: u64,
        /// Pacing tick in microseconds (batches of rate x tick frames).
        #[arg(long, default_value_t = oxr_lab::rfc2544::XDP_TICK * 1e6)]
        tick_us: f64,
        /// Do not keep the program in the XDP dispatcher (each call then waits ~25 ms for
        /// an RCU grace period): for comparison only.
        #[arg(long)]
        no_keep: bool,
        /// Busy-wait for waits shorter than this (us) instead of sleeping.
        #[arg(long, default_value_t = oxr_lab::rfc2544::XDP_SPIN * 1e6)]
        spin_us: f64,
    },
    /// The XDP sink (run by rfc2544 in the sink namespace): prints its count for each line
    /// read.
    #[command(hide = true)]
    Xdpsink {
        #[arg(long)]
        ifname: String,
    },
    /// Density benchmark: N idle routers per kind on an OSPF ring; memory per router and
    /// time to converge (the same as `cargo bench -p oxr-lab --bench density`).
    Density {
        /// Router counts, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,10,50,100")]
        counts: Vec<usize>,
        /// Kinds, comma-separated: oxr, bird, frr.
        #[arg(long, value_delimiter = ',', default_value = "oxr,bird,frr")]
        kinds: Vec<String>,
        /// Convergence deadline per run, seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// Check a lab file and print what it describes.
    Check {
        /// The lab file (TOML).
        lab: PathBuf,
    },
}

/// A lab is named by its name, or by its file (whose `lab.name` is read).
fn lab_name(arg: &str) -> String {
    let p = std::path::Path::new(arg);
    if arg.ends_with(".toml") && p.is_file() {
        if let Ok(lab) = spec::load(p, None) {
            return lab.name;
        }
    }
    arg.to_string()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = Ctx {
        root: cli.root,
        bin_dir: cli.bin_dir.unwrap_or_else(ops::default_bin_dir),
    };
    // Lab files are validated with routerd's registry, which asks protocol binaries outside
    // the workspace (oxr-hello, generated ones) for their schema: look where the lab runs them.
    oxr_routerd::set_bin_dir(Some(ctx.bin_dir.clone()));
    let result: anyhow::Result<()> = match cli.cmd {
        Cmd::Up { lab, name, wait } => match spec::load(&lab, name.as_deref()) {
            Ok(l) => ops::up(&ctx, &l, wait.map(Duration::from_secs)),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        },
        Cmd::Check { lab } => match spec::load(&lab, None) {
            Ok(l) => {
                println!("lab {}: ok", l.name);
                for n in l.nodes.values() {
                    println!(
                        "  {:<10} {:<5} netns {}",
                        n.name,
                        n.kind.label(),
                        l.netns(&n.name)
                    );
                }
                for k in &l.links {
                    println!(
                        "  link {}:{} -- {}:{}",
                        k.a.node, k.a.ifname, k.b.node, k.b.ifname
                    );
                }
                Ok(())
            }
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        },
        Cmd::Wait { lab, secs } => ops::load_state(&ctx, &lab_name(&lab))
            .and_then(|s| ops::wait_converged(&ctx, &s, Duration::from_secs(secs))),
        Cmd::Down { lab } => {
            let name = lab_name(&lab);
            ops::down(&ctx, &name).map(|found| {
                if found {
                    println!("lab {name} removed");
                } else {
                    println!("no lab {name} (nothing to do)");
                }
            })
        }
        Cmd::Status { lab } => {
            let labs = match lab {
                Some(l) => vec![lab_name(&l)],
                None => state::list(&ctx.root),
            };
            labs.iter()
                .try_for_each(|l| ops::status(&ctx, l).map(|s| print!("{s}")))
        }
        Cmd::Rfc2544 {
            routers,
            sizes,
            dataplane,
            no_napi,
            gen_cpu,
            router_cpu,
            generator,
            rt,
            trial_secs,
            max_rate,
            resolution,
            max_trials,
            gen_burst,
            gen_tick_us,
            gen_spin_us,
            napi_defer,
            gro_flush_us,
            busy_poll_us,
            sink_napi_defer,
            sink_gro_flush_us,
            loss_tolerance,
            json,
            out,
        } => {
            let opts = oxr_lab::rfc2544::Options {
                routers,
                sizes,
                dataplanes: dataplane,
                trial_secs,
                max_rate,
                resolution,
                max_trials,
                napi: !no_napi,
                gen_cpu,
                router_cpu,
                generator,
                rt,
                xdp_gen: oxr_lab::rfc2544::XdpGenOptions {
                    burst: gen_burst,
                    tick: gen_tick_us * 1e-6,
                    keep_in_dispatcher: true,
                    spin: gen_spin_us * 1e-6,
                },
                napi_defer,
                gro_flush_us,
                busy_poll_us,
                sink_napi_defer,
                sink_gro_flush_us,
                loss_tolerance,
            };
            oxr_lab::rfc2544::run(&ctx, &opts).and_then(|r| {
                let table = r.table();
                print!("{table}");
                let with = |p: &PathBuf, ext: &str| {
                    let mut s = p.clone().into_os_string();
                    s.push(ext);
                    PathBuf::from(s)
                };
                if let Some(p) = &json {
                    std::fs::write(p, serde_json::to_vec_pretty(&r)?)?;
                    std::fs::write(p.with_extension("svg"), r.svg())?;
                    println!(
                        "wrote {} and {}",
                        p.display(),
                        p.with_extension("svg").display()
                    );
                }
                if let Some(p) = &out {
                    std::fs::write(with(p, ".txt"), &table)?;
                    std::fs::write(with(p, ".json"), serde_json::to_vec_pretty(&r)?)?;
                    std::fs::write(with(p, ".svg"), r.svg())?;
                    println!("wrote {}.{{txt,json,svg}}", p.display());
                }
                Ok(())
            })
        }
        Cmd::Gen {
            dst,
            payload,
            rate,
            secs,
            batch,
            cpu,
        } => oxr_lab::rfc2544::generate(dst, payload, rate, secs, batch, cpu).and_then(|g| {
            println!("{}", serde_json::to_string(&g)?);
            Ok(())
        }),
        Cmd::Xdpgen {
            ifname,
            dst_mac,
            size,
            rate,
            secs,
            cpu,
            burst,
            tick_us,
            no_keep,
            spin_us,
        } => {
            let o = oxr_lab::rfc2544::XdpGenOptions {
                burst,
                tick: tick_us * 1e-6,
                keep_in_dispatcher: !no_keep,
                spin: spin_us * 1e-6,
            };
            oxr_lab::rfc2544::check_live_frames()
                .and_then(|()| {
                    oxr_lab::rfc2544::xdp_generate(&ifname, &dst_mac, size, rate, secs, cpu, &o)
                })
                .and_then(|g| {
                    println!("{}", serde_json::to_string(&g)?);
                    Ok(())
                })
        }
        Cmd::Xdpsink { ifname } => oxr_lab::rfc2544::xdp_sink(&ifname),
        Cmd::Density {
            counts,
            kinds,
            timeout,
        } => {
            oxr_lab::density::run_all(&ctx, &counts, &kinds, Duration::from_secs(timeout));
            Ok(())
        }
        Cmd::List => {
            print!("{}", ops::list(&ctx));
            Ok(())
        }
        Cmd::Shell { lab, router, args } => Err(ops::shell(&ctx, &lab_name(&lab), &router, &args)),
        Cmd::Exec { lab, node, cmd } => Err(ops::exec(&ctx, &lab_name(&lab), &node, &cmd)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oxr-lab: {e:#}");
            ExitCode::from(1)
        }
    }
}
