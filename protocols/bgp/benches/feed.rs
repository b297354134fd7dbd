//! Full-table ingest, oxr against BIRD (root only; says so and exits
//! otherwise). A BIRD feeder in one namespace holds the real full table
//! (../shared/data/full-table-prefixes.txt.gz, IPv4 and IPv6, as static
//! routes generated into its config) and announces it over eBGP (one IPv4 and
//! one IPv6 session) to the router under test in another namespace: first oxr
//! (oxr-fea + oxr-rib + oxr-bgp, one router TOML), then BIRD with kernel
//! protocols exporting everything. Printed per router: seconds from
//! Established until the Loc-RIB holds every prefix, seconds until the kernel
//! FIB does, the peak RSS (VmHWM) summed over the router's processes, and
//! their CPU seconds. Before them (phase `sink`), the feeder's own ceiling:
//! the same feeder sends the same table to a minimal BGP sink (this binary
//! re-executed in a third namespace: OPEN/KEEPALIVE, then it only counts
//! NLRI), timed the same way, with the feeder's CPU for every phase; the end
//! of the report compares the <= 0.5x BIRD goal against that ceiling.
//!
//! Run: `cargo build --release -p oxr-rib -p oxr-fea -p oxr-bgp --bins &&
//! cargo bench -p oxr-bgp --bench feed`. `OXR_BENCH_LIMIT=N` keeps the first N
//! prefixes of each family (quick runs); `OXR_BENCH_ROUTERS` picks the phases
//! (default `oxr,bird`; `sink,oxr,bird` adds the feeder ceiling, which does
//! not work yet: the sink's sessions never reach Established).
//! `OXR_BENCH_OXR_DATAPLANE=none` runs oxr-fea without the kernel (diagnostic:
//! "FIB complete" is then when oxr-rib holds every prefix).
//! `OXR_BENCH_NETLINK_BATCH=N` sets oxr-fea's `fea.netlink-batch` (default 64).
//!
//! Counting is cheap on purpose, so polling does not slow the router: oxr's
//! `show bgp summary` and `show fea` (counters), BIRD's per-protocol route
//! counters (imported; exported by its kernel protocols). Once the router
//! reports every route in the kernel, the kernel's per-namespace totals
//! (/proc/net/fib_triestat "Prefixes" of the main table, /proc/net/rt6_stats
//! route entries, minus the counts before the feed) must agree. Not read earlier,
//! because reading fib_triestat walks the whole trie under RCU and would slow the
//! inserts it measures. FIB complete is when the router reported it if the kernel
//! agrees at the first look (both routers count only routes the kernel
//! acknowledged, so the 0.1-0.2 s that look takes is not the router's), else when
//! the kernel does. A full `ip route show proto ...` count confirms the end state.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use oxr_proto::process::process_client::ProcessClient;
use oxr_proto::process::ShowRequest;
use oxr_proto::transport::{connect, Address};

const FEED_AS: u32 = 65001;
const ROUTER_AS: u32 = 65002;
/// Longest a phase may take before the run gives up.
const PHASE_LIMIT: Duration = Duration::from_secs(240);

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sh_ok(args: &[&str]) -> String {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Namespaces, processes and files, torn down on drop.
struct Lab {
    ns: Vec<String>,
    children: Vec<Child>,
    dir: PathBuf,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &self.ns {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Lab {
    /// Starts `args` in `ns`; `ip netns exec` execs, so the pid is the program's.
    fn spawn(&mut self, ns: &str, args: &[&str], log: &str) -> u32 {
        let f = std::fs::File::create(self.dir.join(log)).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let pid = child.id();
        self.children.push(child);
        pid
    }

    fn stop(&mut self, pids: &[u32]) {
        for c in self.children.iter_mut().filter(|c| pids.contains(&c.id())) {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.children.retain(|c| !pids.contains(&c.id()));
    }
}

fn wait_until(limit: Duration, step: Duration, mut f: impl FnMut() -> bool) -> Option<Instant> {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return Some(Instant::now());
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(step);
    }
}

/// Routes in the namespace's kernel tables: (IPv4 main-table prefixes, IPv6 entries).
fn kernel_counts(ns: &str) -> (u64, u64) {
    let tri = sh_ok(&["ip", "netns", "exec", ns, "cat", "/proc/net/fib_triestat"]);
    // "Main:" then "\tAver depth: ..." ... "\tPrefixes:\t\tN".
    let v4 = tri
        .split("Main:")
        .nth(1)
        .and_then(|m| {
            m.lines()
                .find(|l| l.trim_start().starts_with("Prefixes:"))
                .and_then(|l| l.split_whitespace().last())
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0);
    let rt6 = sh_ok(&["ip", "netns", "exec", ns, "cat", "/proc/net/rt6_stats"]);
    let v6 = rt6
        .split_whitespace()
        .nth(3)
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .unwrap_or(0);
    (v4, v6)
}

/// (VmHWM kB summed, CPU seconds summed) of `pids`.
fn usage(pids: &[u32]) -> (u64, f64) {
    let tick = 100.0; // USER_HZ
    let mut kb = 0;
    let mut cpu = 0.0;
    for p in pids {
        let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
        kb += status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        // Fields after the ")" of the command name: utime is the 12th, stime the 13th.
        let rest: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, r)| r.split_whitespace().collect())
            .unwrap_or_default();
        let t = |i: usize| {
            rest.get(i)
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        cpu += (t(11) + t(12)) / tick;
    }
    (kb, cpu)
}

struct Figures {
    router: &'static str,
    prefixes: usize,
    loc_rib_secs: f64,
    fib_secs: f64,
    fib_confirmed: (usize, usize),
    peak_rss_mb: f64,
    cpu_secs: f64,
    /// The BIRD feeder's CPU seconds during the phase.
    feeder_cpu_secs: f64,
}

fn birdc(ns: &str, sock: &str, cmd: &str) -> String {
    sh_ok(&["ip", "netns", "exec", ns, "birdc", "-s", sock, cmd])
}

/// "Routes: N imported" of a BIRD protocol.
fn bird_imported(ns: &str, sock: &str, proto: &str) -> u64 {
    let out = birdc(ns, sock, &format!("show protocols all {proto}"));
    out.lines()
        .find(|l| l.trim_start().starts_with("Routes:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// "Routes: ..., N exported" of a BIRD protocol (for a kernel protocol: routes it
/// installed, each acknowledged by the kernel before the next is sent).
fn bird_exported(ns: &str, sock: &str, proto: &str) -> u64 {
    let out = birdc(ns, sock, &format!("show protocols all {proto}"));
    out.lines()
        .find(|l| l.trim_start().starts_with("Routes:"))
        .and_then(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let at = w
                .iter()
                .position(|x| x.trim_end_matches(',') == "exported")?;
            w.get(at.checked_sub(1)?)?.parse().ok()
        })
        .unwrap_or(0)
}

fn established(ns: &str, sock: &str, protos: &[&str]) -> bool {
    let out = birdc(ns, sock, "show protocols");
    protos.iter().all(|p| {
        out.lines()
            .any(|l| l.starts_with(&format!("{p} ")) && l.contains("Established"))
    })
}

/// `show <words>` of an oxr process, as JSON (`null` if it does not answer).
fn oxr_show(
    rt: &tokio::runtime::Runtime,
    run: &Path,
    process: &str,
    words: &[&str],
) -> serde_json::Value {
    rt.block_on(async {
        let Ok(ch) = connect(&Address::in_run_dir(run, process)).await else {
            return serde_json::Value::Null;
        };
        let Ok(r) = ProcessClient::new(ch)
            .show(ShowRequest {
                words: words.iter().map(|w| w.to_string()).collect(),
            })
            .await
        else {
            return serde_json::Value::Null;
        };
        serde_json::from_str(&r.into_inner().json).unwrap_or_default()
    })
}

fn oxr_loc_rib(rt: &tokio::runtime::Runtime, run: &Path) -> u64 {
    oxr_show(rt, run, "bgp", &["bgp", "summary"])["loc-rib-prefixes"]
        .as_u64()
        .unwrap_or(0)
}

/// Prefixes oxr-rib holds (all protocols).
fn oxr_rib_prefixes(rt: &tokio::runtime::Runtime, run: &Path) -> u64 {
    let j = oxr_show(rt, run, "rib", &["route", "summary"]);
    j["prefixes_ipv4"].as_u64().unwrap_or(0) + j["prefixes_ipv6"].as_u64().unwrap_or(0)
}

fn count_proto(ns: &str, proto: &str) -> (usize, usize) {
    let c = |fam: &str| {
        sh_ok(&["ip", "-n", ns, fam, "route", "show", "proto", proto])
            .lines()
            .count()
    };
    (c("-4"), c("-6"))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, n4, n6] = &args[..] {
        if flag == "--feed-sink" {
            feed_sink(n4.parse().unwrap(), n6.parse().unwrap());
            return;
        }
    }
    if !is_root() {
        println!("SKIPPED (needs root): feed");
        return;
    }
    let data = oxr_testlab::full_table::path();
    let limit: usize = std::env::var("OXR_BENCH_LIMIT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(usize::MAX);
    // `sink` (the feeder ceiling) is not in the default: its sessions do not
    // reach Established yet (to be debugged).
    // `none`: oxr-fea keeps the FIB in memory, to see the rest of the pipeline without
    // the kernel's route inserts (a diagnostic; the goal is with `kernel`).
    let oxr_dataplane =
        std::env::var("OXR_BENCH_OXR_DATAPLANE").unwrap_or_else(|_| "kernel".into());
    let routers = std::env::var("OXR_BENCH_ROUTERS").unwrap_or_else(|_| "oxr,bird".into());
    let netlink_batch: u32 = std::env::var("OXR_BENCH_NETLINK_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let mut all = oxr_testlab::full_table::load(None);
    all.sort();
    let v4: Vec<IpNet> = all
        .iter()
        .filter(|p| matches!(p, IpNet::V4(_)))
        .take(limit)
        .copied()
        .collect();
    let v6: Vec<IpNet> = all
        .iter()
        .filter(|p| matches!(p, IpNet::V6(_)))
        .take(limit)
        .copied()
        .collect();
    let (n4, n6) = (v4.len() as u64, v6.len() as u64);
    let total = n4 + n6;
    println!(
        "full-table feed: {n4} IPv4 + {n6} IPv6 prefixes from {}",
        data.display()
    );

    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("oxr-bgp-feed-{pid}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut lab = Lab {
        ns: vec![],
        children: vec![],
        dir: dir.clone(),
    };
    let [nf, no, nb, ns_sink] = ["f", "o", "b", "s"].map(|s| format!("oxrfeed-{s}-{pid}"));
    for n in [&nf, &no, &nb, &ns_sink] {
        sh(&["ip", "netns", "add", n]);
        lab.ns.push(n.clone());
        sh(&["ip", "-n", n, "link", "set", "lo", "up"]);
    }
    // Feeder <-> oxr on 10.97.1.0/24, feeder <-> BIRD on 10.97.2.0/24, feeder
    // <-> the counting sink (feeder ceiling) on 10.97.3.0/24.
    for (i, n, fi, ri) in [
        (1, &no, "fo", "of"),
        (2, &nb, "fb", "bf"),
        (3, &ns_sink, "fs", "sf"),
    ] {
        sh(&[
            "ip", "link", "add", fi, "netns", &nf, "type", "veth", "peer", ri, "netns", n,
        ]);
        for (ns, ifc, host) in [(&nf, fi, 1), (n, ri, 2)] {
            sh(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("10.97.{i}.{host}/24"),
                "dev",
                ifc,
            ]);
            sh(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("fd00:97:{i}::{host}/64"),
                "dev",
                ifc,
                "nodad",
            ]);
            sh(&["ip", "-n", ns, "link", "set", ifc, "up"]);
        }
    }

    // The feeder: every prefix a static route, sessions disabled until a phase starts.
    let feed_conf = dir.join("feeder.conf");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&feed_conf).unwrap());
        writeln!(f, "router id 10.97.0.1;\nprotocol device {{ }}").unwrap();
        for (name, fam, list) in [("s4", "ipv4", &v4), ("s6", "ipv6", &v6)] {
            writeln!(f, "protocol static {name} {{\n  {fam};").unwrap();
            for p in list.iter() {
                writeln!(f, "  route {p} blackhole;").unwrap();
            }
            writeln!(f, "}}").unwrap();
        }
        // (Not "s": the static protocols are s4 and s6.)
        for (name, i) in [("o", 1), ("b", 2), ("x", 3)] {
            writeln!(
                f,
                "protocol bgp {name}4 {{ disabled; local 10.97.{i}.1 as {FEED_AS}; \
                 neighbor 10.97.{i}.2 as {ROUTER_AS}; ipv4 {{ import none; export all; }}; }}\n\
                 protocol bgp {name}6 {{ disabled; local fd00:97:{i}::1 as {FEED_AS}; \
                 neighbor fd00:97:{i}::2 as {ROUTER_AS}; ipv6 {{ import none; export all; }}; }}"
            )
            .unwrap();
        }
    }
    let feed_sock = dir.join("feeder.ctl").to_str().unwrap().to_string();
    let t = Instant::now();
    let feeder = lab.spawn(
        &nf,
        &[
            "bird",
            "-f",
            "-c",
            feed_conf.to_str().unwrap(),
            "-s",
            &feed_sock,
        ],
        "feeder.log",
    );
    let loaded = wait_until(PHASE_LIMIT, Duration::from_millis(200), || {
        bird_imported(&nf, &feed_sock, "s4") == n4 && bird_imported(&nf, &feed_sock, "s6") == n6
    });
    assert!(loaded.is_some(), "feeder did not load its static routes");
    println!(
        "feeder ready in {:.1} s (peak RSS {:.0} MB)",
        t.elapsed().as_secs_f64(),
        usage(&[feeder]).0 as f64 / 1024.0
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut results = Vec::new();

    for router in routers.split(',') {
        let (ns, i, pfx) = match router {
            "oxr" => (&no, 1, "o"),
            "bird" => (&nb, 2, "b"),
            "sink" => (&ns_sink, 3, "x"),
            other => panic!("unknown router {other:?} in OXR_BENCH_ROUTERS"),
        };
        let run = dir.join(format!("run-{router}"));
        let bird_sock = dir.join("router.ctl").to_str().unwrap().to_string();
        let mut sink_out = None;
        let pids: Vec<u32> = match router {
            "sink" => {
                let mut child = Command::new("ip")
                    .args(["netns", "exec", ns])
                    .arg(std::env::current_exe().unwrap())
                    .args(["--feed-sink", &n4.to_string(), &n6.to_string()])
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .expect("sink");
                let mut out = BufReader::new(child.stdout.take().unwrap());
                let mut line = String::new();
                out.read_line(&mut line).unwrap();
                assert_eq!(line.trim(), "ready", "sink did not start");
                sink_out = Some(out);
                let pid = child.id();
                lab.children.push(child);
                vec![pid]
            }
            "oxr" => {
                let toml = dir.join("oxr.toml");
                std::fs::write(
                    &toml,
                    format!(
                        r#"[router]
name = "feed"
[protocols.bgp]
local-as = {ROUTER_AS}
router-id = "10.97.{i}.2"
[protocols.bgp.neighbor."10.97.{i}.1"]
remote-as = {FEED_AS}
import-policy = ["ALL"]
[protocols.bgp.neighbor."fd00:97:{i}::1"]
remote-as = {FEED_AS}
afi = ["ipv6-unicast"]
import-policy = ["ALL"]
[protocols.bgp.policy.ALL.term.1.then]
action = "accept"
[fea]
dataplane = "{oxr_dataplane}"
netlink-batch = {netlink_batch}
"#
                    ),
                )
                .unwrap();
                let bin = |n: &str| {
                    let p = Path::new(env!("CARGO_BIN_EXE_oxr-bgp")).with_file_name(n);
                    assert!(
                        p.exists(),
                        "{} missing: cargo build --release -p oxr-rib -p oxr-fea --bins",
                        p.display()
                    );
                    p.to_str().unwrap().to_string()
                };
                let run_s = run.to_str().unwrap().to_string();
                let mut pids = Vec::new();
                for name in ["fea", "rib", "bgp"] {
                    pids.push(lab.spawn(
                        ns,
                        &[
                            &bin(&format!("oxr-{name}")),
                            "--router",
                            "feed",
                            "--run-dir",
                            &run_s,
                            "--config",
                            toml.to_str().unwrap(),
                            "--log",
                            "warn",
                        ],
                        &format!("oxr-{name}.log"),
                    ));
                }
                let ready = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
                    run.join("bgp.sock").exists() && run.join("fea.sock").exists()
                });
                assert!(ready.is_some(), "oxr did not start");
                pids
            }
            _ => {
                let conf = dir.join("router.conf");
                std::fs::write(
                    &conf,
                    format!(
                        r#"router id 10.97.{i}.2;
protocol device {{ }}
protocol kernel k4 {{ ipv4 {{ import none; export all; }}; }}
protocol kernel k6 {{ ipv6 {{ import none; export all; }}; }}
protocol bgp f4 {{ local 10.97.{i}.2 as {ROUTER_AS}; neighbor 10.97.{i}.1 as {FEED_AS}; ipv4 {{ import all; export none; }}; }}
protocol bgp f6 {{ local fd00:97:{i}::2 as {ROUTER_AS}; neighbor fd00:97:{i}::1 as {FEED_AS}; ipv6 {{ import all; export none; }}; }}
"#
                    ),
                )
                .unwrap();
                let pid = lab.spawn(
                    ns,
                    &["bird", "-f", "-c", conf.to_str().unwrap(), "-s", &bird_sock],
                    "router-bird.log",
                );
                let ready = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
                    birdc(ns, &bird_sock, "show status").contains("Daemon is up")
                });
                assert!(ready.is_some(), "BIRD did not start");
                vec![pid]
            }
        };
        let base = kernel_counts(ns);
        let feeder_cpu0 = usage(&[feeder]).1;
        let (p4, p6) = (format!("{pfx}4"), format!("{pfx}6"));
        let waker = FeederWaker::start(&feed_sock);
        birdc(&nf, &feed_sock, &format!("enable {p4}"));
        birdc(&nf, &feed_sock, &format!("enable {p6}"));
        let est = wait_until(Duration::from_secs(30), Duration::from_millis(10), || {
            established(&nf, &feed_sock, &[&p4, &p6])
        })
        .unwrap_or_else(|| {
            panic!(
                "sessions not Established: {}",
                birdc(&nf, &feed_sock, &format!("show protocols all {p4}"))
            )
        });
        let loc_rib = |router: &str| -> u64 {
            match router {
                "oxr" => oxr_loc_rib(&rt, &run),
                _ => bird_imported(ns, &bird_sock, "f4") + bird_imported(ns, &bird_sock, "f6"),
            }
        };
        if let Some(mut out) = sink_out {
            // The sink says "done" the moment both counts are in.
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            let done = Instant::now();
            assert_eq!(line.trim(), "done", "sink failed");
            let secs = (done - est).as_secs_f64();
            let feeder_cpu = usage(&[feeder]).1 - feeder_cpu0;
            println!(
                "sink  feeder ceiling: every prefix at a counting sink {secs:>6.2} s after \
                 Established, feeder CPU {feeder_cpu:.2} s"
            );
            results.push(Figures {
                router: "sink",
                prefixes: total as usize,
                loc_rib_secs: secs,
                fib_secs: f64::NAN,
                fib_confirmed: (0, 0),
                peak_rss_mb: usage(&pids).0 as f64 / 1024.0,
                cpu_secs: usage(&pids).1,
                feeder_cpu_secs: feeder_cpu,
            });
            birdc(&nf, &feed_sock, &format!("disable {p4}"));
            birdc(&nf, &feed_sock, &format!("disable {p6}"));
            lab.stop(&pids);
            continue;
        }
        let trace = std::env::var_os("OXR_BENCH_TRACE").is_some();
        let rib_done = wait_until(PHASE_LIMIT, Duration::from_millis(100), || {
            let n = loc_rib(router);
            if trace {
                // With oxr, oxr-bgp's RSS as the table grows (its pid is last).
                let rss = match (router, pids.last()) {
                    ("oxr", Some(p)) => std::fs::read_to_string(format!("/proc/{p}/status"))
                        .unwrap_or_default()
                        .lines()
                        .find_map(|l| l.strip_prefix("VmRSS:").map(str::trim).map(String::from))
                        .map(|r| format!(", oxr-bgp RSS {r}"))
                        .unwrap_or_default(),
                    _ => String::new(),
                };
                println!("  {:>7.2} s Loc-RIB {n}{rss}", est.elapsed().as_secs_f64());
            }
            n >= total
        });
        let Some(rib_done) = rib_done else {
            panic!("{router}: Loc-RIB stuck at {} of {total}", loc_rib(router));
        };
        // For oxr, also when oxr-rib holds every prefix: splits the way to the
        // FIB into bgp -> rib (the SDK's RibPublisher) and rib -> fea -> kernel.
        let mut rib_proc_done: Option<Instant> = None;
        // Routes the router itself reports installed in the kernel (acknowledged by it):
        // oxr-fea's backend table, BIRD's kernel protocols' export counters. Cheap to poll,
        // unlike the kernel's own IPv4 count: /proc/net/fib_triestat walks the whole trie
        // under RCU (~0.1 s of kernel time with a full table), which holds up every RCU
        // grace period the inserting router waits for; polled every 100 ms from the start,
        // it made oxr's FIB time 6.7 s against 4.3-5.4 s without (2026-12-07).
        let router_fib_routes = |router: &str| -> (u64, u64) {
            match router {
                "oxr" => {
                    let b = &oxr_show(&rt, &run, "fea", &["fea"])["backend"];
                    let n = |f: &str| b[f].as_u64().unwrap_or(0);
                    (n("routes_ipv4"), n("routes_ipv6"))
                }
                _ => (
                    bird_exported(ns, &bird_sock, "k4"),
                    bird_exported(ns, &bird_sock, "k6"),
                ),
            }
        };
        // When the router first reported every route installed, and whether the kernel's
        // count agreed at the first look after that.
        let mut reported_at: Option<Instant> = None;
        let mut kernel_looks = 0;
        let fib_done = wait_until(PHASE_LIMIT, Duration::from_millis(100), || {
            if router == "oxr" && rib_proc_done.is_none() && oxr_rib_prefixes(&rt, &run) >= total {
                rib_proc_done = Some(Instant::now());
            }
            if router == "oxr" && oxr_dataplane == "none" {
                // No kernel FIB: "FIB complete" is when oxr-rib holds every prefix.
                return rib_proc_done.is_some();
            }
            // The kernel's count is read only once the router reports every route
            // installed (see `router_fib_routes`), then until it agrees.
            if reported_at.is_none() {
                let (r4, r6) = router_fib_routes(router);
                if r4 < n4 || r6 < n6 {
                    return false;
                }
                reported_at = Some(Instant::now());
            }
            kernel_looks += 1;
            let (k4, k6) = kernel_counts(ns);
            k4.saturating_sub(base.0) >= n4 && k6.saturating_sub(base.1) >= n6
        });
        // Both routers count only routes the kernel acknowledged, so when the kernel agrees
        // at once, the FIB was complete when the router said so: reading the kernel's count
        // (a walk of the whole trie, 0.1-0.2 s) is not part of either router's time.
        let fib_done = match (fib_done, reported_at) {
            (Some(_), Some(at)) if kernel_looks == 1 => Some(at),
            (done, _) => done,
        };
        let Some(fib_done) = fib_done else {
            panic!(
                "{router}: FIB stuck at {:?} (before {:?}) of {n4}+{n6}",
                kernel_counts(ns),
                base
            );
        };
        let rib_proc_done = rib_proc_done.unwrap_or(fib_done);
        let (kb, cpu) = usage(&pids);
        let feeder_cpu = usage(&[feeder]).1 - feeder_cpu0;
        if router == "oxr" {
            println!(
                "oxr   oxr-rib holds every prefix {:.2} s after Established",
                (rib_proc_done - est).as_secs_f64()
            );
            for (name, p) in ["oxr-fea", "oxr-rib", "oxr-bgp"].iter().zip(&pids) {
                let (kb, cpu) = usage(&[*p]);
                println!(
                    "oxr   {name}: peak RSS {:.0} MB, CPU {cpu:.2} s",
                    kb as f64 / 1024.0
                );
            }
            // How the routes went down: a route sent or applied more than once is
            // work the kernel phase did twice.
            let r = &oxr_show(&rt, &run, "rib", &["route", "summary"])["fib"];
            let f = &oxr_show(&rt, &run, "fea", &["fea"]);
            println!(
                "oxr   oxr-rib -> oxr-fea: {} batches, {} adds; oxr-fea applied {} routes, \
                 {} netlink messages in {} sendmsg calls, waited {} times for input",
                r["batches"],
                r["adds"],
                f["counters"]["routes_applied"],
                f["backend"]["messages"],
                f["backend"]["sends"],
                f["input_waits"],
            );
            // What of oxr-bgp's memory is its own tables (the rest: the
            // process, the SDK's RibPublisher copy and queue, buffers).
            let m = oxr_show(&rt, &run, "bgp", &["bgp", "memory"]);
            println!(
                "oxr   oxr-bgp Loc-RIB table {:.1} MB for {} paths, {} attribute sets",
                m["loc-rib-table-bytes"].as_f64().unwrap_or(0.0) / (1024.0 * 1024.0),
                m["loc-rib-paths"],
                m["attribute-sets-received"]
            );
            // Peak minus what is left after the feed: the transients.
            println!(
                "oxr   oxr-bgp RSS now {:.1} MB (peak {:.1} MB); RibPublisher pending peak {} \
                 changes, {:.1} MB held now",
                m["rss-kib"].as_f64().unwrap_or(0.0) / 1024.0,
                m["peak-rss-kib"].as_f64().unwrap_or(0.0) / 1024.0,
                m["publisher-pending-peak"],
                m["publisher-bytes"].as_f64().unwrap_or(0.0) / (1024.0 * 1024.0)
            );
        }
        let confirmed = count_proto(ns, if router == "oxr" { "201" } else { "bird" });
        let f = Figures {
            router: if router == "oxr" { "oxr" } else { "BIRD" },
            prefixes: total as usize,
            loc_rib_secs: (rib_done - est).as_secs_f64(),
            fib_secs: (fib_done - est).as_secs_f64(),
            fib_confirmed: confirmed,
            peak_rss_mb: kb as f64 / 1024.0,
            cpu_secs: cpu,
            feeder_cpu_secs: feeder_cpu,
        };
        println!(
            "{:<5} Loc-RIB complete {:>6.2} s, FIB complete {:>6.2} s, peak RSS {:>6.0} MB, \
             CPU {:>6.2} s, feeder CPU {:.2} s (kernel: {} v4 + {} v6 routes; \
             kernel count read {} time(s) after the router reported)",
            f.router,
            f.loc_rib_secs,
            f.fib_secs,
            f.peak_rss_mb,
            f.cpu_secs,
            f.feeder_cpu_secs,
            f.fib_confirmed.0,
            f.fib_confirmed.1,
            kernel_looks
        );
        results.push(f);
        // Free the CPU for the next router.
        drop(waker);
        birdc(&nf, &feed_sock, &format!("disable {p4}"));
        birdc(&nf, &feed_sock, &format!("disable {p6}"));
        lab.stop(&pids);
    }

    println!(
        "\n| router | prefixes | Loc-RIB complete (s) | FIB complete (s) | peak RSS (MB) | CPU (s) | feeder CPU (s) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for f in &results {
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} |",
            f.router,
            f.prefixes,
            f.loc_rib_secs,
            f.fib_secs,
            f.peak_rss_mb,
            f.cpu_secs,
            f.feeder_cpu_secs
        );
    }
    // The goals against what the feeder can deliver at all.
    let find = |r: &str| results.iter().find(|f| f.router == r);
    if let (Some(sink), Some(bird)) = (find("sink"), find("BIRD")) {
        let goal = 0.5 * bird.loc_rib_secs;
        println!(
            "\nfeeder ceiling {:.2} s = {:.2}x BIRD's Loc-RIB time; goal <= 0.5x BIRD = {goal:.2} s: {}",
            sink.loc_rib_secs,
            sink.loc_rib_secs / bird.loc_rib_secs,
            if sink.loc_rib_secs > goal {
                "NOT reachable with this feeder (its ceiling is above the goal)"
            } else {
                "reachable in principle"
            }
        );
        if let Some(oxr) = find("oxr") {
            println!(
                "oxr / BIRD: Loc-RIB {:.2}x, FIB {:.2}x; oxr / feeder ceiling: Loc-RIB {:.2}x, FIB {:.2}x; \
                 BIRD / feeder ceiling: Loc-RIB {:.2}x",
                oxr.loc_rib_secs / bird.loc_rib_secs,
                oxr.fib_secs / bird.fib_secs,
                oxr.loc_rib_secs / sink.loc_rib_secs,
                oxr.fib_secs / sink.loc_rib_secs,
                bird.loc_rib_secs / sink.loc_rib_secs
            );
        }
    }
}

// ---------------------------------------------------------------------------
/// Keeps the feeder's event loop awake during a phase: a connection to its
/// control socket every 100 ms. BIRD 2's I/O loop otherwise sleeps up to its
/// 3 s poll timeout before it sends the last UPDATE and End-of-RIB of a table
/// (seen with `ss -ti`: every byte but the last ~110 sent within ~1 s, the
/// rest 3 s later), which would be timed as the router's. Connecting to the
/// unix socket needs no namespace and costs the feeder one accept.
struct FeederWaker {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FeederWaker {
    fn start(sock: &str) -> FeederWaker {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (flag, sock) = (stop.clone(), sock.to_string());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                if let Ok(mut c) = std::os::unix::net::UnixStream::connect(&sock) {
                    let _ = c.set_read_timeout(Some(Duration::from_millis(50)));
                    let mut greeting = [0u8; 64];
                    let _ = std::io::Read::read(&mut c, &mut greeting);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        FeederWaker {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FeederWaker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// Feeder ceiling: a minimal BGP sink (this binary re-executed inside the sink
// namespace with `--feed-sink`), so the report can show how fast the BIRD
// feeder itself delivers the table to a peer that does nothing but count.

/// An OPEN from AS `asn` (2-octet field, it fits) with router id `id`, hold
/// time 240 s, capabilities: multiprotocol `afi`/unicast and 4-octet AS.
fn sink_open(asn: u32, id: [u8; 4], afi: u16) -> Vec<u8> {
    let caps: Vec<u8> = [
        vec![1, 4],
        afi.to_be_bytes().to_vec(),
        vec![0, 1],
        vec![65, 4],
        asn.to_be_bytes().to_vec(),
    ]
    .concat();
    let mut body = vec![4];
    body.extend_from_slice(&(asn as u16).to_be_bytes());
    body.extend_from_slice(&240u16.to_be_bytes());
    body.extend_from_slice(&id);
    body.push(caps.len() as u8 + 2);
    body.extend_from_slice(&[2, caps.len() as u8]);
    body.extend_from_slice(&caps);
    sink_message(1, &body)
}

fn sink_message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

/// NLRI in a packed prefix list (length byte, then the significant octets).
fn sink_count_prefixes(mut b: &[u8]) -> u64 {
    let mut n = 0;
    while let Some((&len, rest)) = b.split_first() {
        let octets = usize::from(len).div_ceil(8);
        b = rest.get(octets..).unwrap_or(&[]);
        n += 1;
    }
    n
}

/// Prefixes announced by one UPDATE body: IPv4 NLRI plus MP_REACH_NLRI's.
fn sink_count_update(u: &[u8]) -> u64 {
    let be16 = |b: &[u8], i: usize| {
        b.get(i..i + 2)
            .map_or(0, |x| usize::from(u16::from_be_bytes([x[0], x[1]])))
    };
    let wlen = be16(u, 0);
    let alen = be16(u, 2 + wlen);
    let attrs_at = 4 + wlen;
    let Some(attrs) = u.get(attrs_at..attrs_at + alen) else {
        return 0;
    };
    let mut n = sink_count_prefixes(u.get(attrs_at + alen..).unwrap_or(&[]));
    let mut a = attrs;
    while a.len() >= 3 {
        let (flags, kind) = (a[0], a[1]);
        let (hdr, len) = if flags & 0x10 != 0 {
            (4, be16(a, 2))
        } else {
            (3, usize::from(a[2]))
        };
        let Some(v) = a.get(hdr..hdr + len) else {
            break;
        };
        if kind == 14 && v.len() >= 5 {
            let nh = usize::from(v[3]);
            n += sink_count_prefixes(v.get(5 + nh..).unwrap_or(&[]));
        }
        a = &a[hdr + len..];
    }
    n
}

/// One session: answers the OPEN, then reads and counts until `expect`
/// prefixes came in; returns when that happened, or None if the peer left.
fn sink_session(mut s: std::net::TcpStream, afi: u16, expect: u64) -> Option<Instant> {
    use std::io::Read;
    let mut buf = vec![0u8; 1 << 20];
    let (mut have, mut count, mut opened) = (0usize, 0u64, false);
    loop {
        let n = s.read(&mut buf[have..]).ok()?;
        if n == 0 {
            return None;
        }
        have += n;
        let mut at = 0;
        while have - at >= 19 {
            let len = usize::from(u16::from_be_bytes([buf[at + 16], buf[at + 17]]));
            if len < 19 || have - at < len {
                break;
            }
            match buf[at + 18] {
                1 if !opened => {
                    opened = true;
                    s.write_all(&sink_open(ROUTER_AS, [10, 97, 3, 2], afi))
                        .ok()?;
                    s.write_all(&sink_message(4, &[])).ok()?;
                }
                2 => count += sink_count_update(&buf[at + 19..at + len]),
                _ => {}
            }
            at += len;
            if count >= expect {
                return Some(Instant::now());
            }
        }
        buf.copy_within(at..have, 0);
        have -= at;
        if have == buf.len() {
            return None; // a message longer than the buffer: not BGP
        }
    }
}

/// `--feed-sink N4 N6`: listens on 10.97.3.2 and fd00:97:3::2 port 179,
/// prints "ready", then "done" once both sessions delivered their counts.
fn feed_sink(n4: u64, n6: u64) {
    let l4 = std::net::TcpListener::bind("10.97.3.2:179").expect("bind 10.97.3.2:179");
    let l6 = std::net::TcpListener::bind("[fd00:97:3::2]:179").expect("bind [fd00:97:3::2]:179");
    println!("ready");
    let _ = std::io::stdout().flush();
    let t4 = std::thread::spawn(move || sink_session(l4.accept().ok()?.0, 1, n4));
    let t6 = std::thread::spawn(move || sink_session(l6.accept().ok()?.0, 2, n6));
    let (d4, d6) = (t4.join().ok().flatten(), t6.join().ok().flatten());
    match (d4, d6) {
        (Some(_), Some(_)) => println!("done"),
        _ => println!("failed"),
    }
    let _ = std::io::stdout().flush();
    // Stay connected until killed: a closed session would make the feeder
    // withdraw and retry.
    std::thread::sleep(Duration::from_secs(600));
}
