//! The route pipeline end to end: the real full Internet table published to oxr-rib over
//! gRPC, selected, resolved, and programmed by oxr-fea, first with the in-memory `none`
//! backend (the RIB's throughput) and then into the kernel of a fresh network namespace,
//! with `ip -batch` installing the same table in the same run as the reference.
//!
//! Run: `cargo build --release --workspace --bins && sudo cargo bench -p oxr-routerd --bench pipeline`
//! `OXR_BENCH_LIMIT=N` uses only the first N prefixes; `OXR_BENCH_NETLINK_BATCH=N` sets the
//! FEA's `fea.netlink-batch` (route messages per `sendmsg`, default 64).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use oxr_proto::convert::PackedBuilder;
use oxr_proto::fea::fea_client::FeaClient;
use oxr_proto::rib::publish_request::Msg;
use oxr_proto::rib::rib_client::RibClient;
use oxr_proto::rib::{EndOfRib, Hello, PublishRequest, Route, RouteBatch, RouteGroup};
use oxr_proto::transport::{connect, Address};
use oxr_proto::types::{IpAddress, Nexthop, Prefix};
use oxr_testlab::full_table;

const BATCH: usize = 2000;

fn bin(name: &str) -> PathBuf {
    // benches run from target/release/deps; the daemons are in target/release.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} missing: run `cargo build --release --workspace --bins` first",
        p.display()
    );
    p
}

struct Ns(String);
impl Ns {
    fn new(name: &str) -> Ns {
        // A namespace left by an aborted run; absent on a clean machine.
        if Path::new("/run/netns").join(name).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
        assert!(Command::new("ip")
            .args(["netns", "add", name])
            .status()
            .unwrap()
            .success());
        let ns = Ns(name.into());
        ns.ip("link set lo up");
        ns.ip("link add eth0 type veth peer name eth0p");
        ns.ip("link set eth0 up");
        ns.ip("link set eth0p up");
        ns.ip("addr add 10.0.0.1/16 dev eth0");
        ns.ip("-6 addr add 2001:db8:ffff::1/64 dev eth0 nodad");
        ns
    }
    fn ip(&self, args: &str) -> String {
        let mut cmd = Command::new("ip");
        cmd.args(["-n", &self.0]).args(args.split_whitespace());
        let out = cmd.output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    fn route_count(&self) -> usize {
        let v4 = self.ip("-4 route show proto 201").lines().count();
        let v6 = self.ip("-6 route show proto 201").lines().count();
        v4 + v6
    }
    fn flush(&self) {
        self.ip("-4 route flush proto 201");
        self.ip("-6 route flush proto 201");
        self.ip("nexthop flush");
    }
}
impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

struct Daemon {
    child: Child,
}
impl Daemon {
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(ns: &Ns, name: &'static str, run_dir: &Path, config: &Path, extra: &[&str]) -> Daemon {
    let log = std::fs::File::create(run_dir.join(format!("{name}.log"))).unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(bin(&format!("oxr-{name}")))
        .args(["--router", "bench", "--run-dir", run_dir.to_str().unwrap()])
        .args(["--config", config.to_str().unwrap(), "--log", "warn"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let sock = run_dir.join(format!("{name}.sock"));
    let t = Instant::now();
    while !sock.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{name} did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Daemon { child }
}

fn route_for(net: &IpNet) -> Route {
    let gw: std::net::IpAddr = match net {
        IpNet::V4(_) => "10.0.0.2".parse().unwrap(),
        IpNet::V6(_) => "2001:db8:ffff::2".parse().unwrap(),
    };
    Route {
        prefix: Some(Prefix::from(*net)),
        nexthops: vec![Nexthop {
            gateway: Some(IpAddress::from(gw)),
            interface: String::new(),
            weight: 0,
        }],
        ..Default::default()
    }
}

/// One batch in the compact form: a group per family (its gateway once), prefixes packed.
fn packed_batch(chunk: &[IpNet]) -> RouteBatch {
    let (mut v4, mut v6) = (PackedBuilder::new(), PackedBuilder::new());
    for net in chunk {
        match net {
            IpNet::V4(_) => v4.push(*net),
            IpNet::V6(_) => v6.push(*net),
        }
    }
    let groups = [(v4, "10.0.0.2"), (v6, "2001:db8:ffff::2")]
        .into_iter()
        .filter(|(p, _)| !p.is_empty())
        .map(|(p, gw)| RouteGroup {
            nexthops: vec![Nexthop {
                gateway: Some(IpAddress::from(gw.parse::<std::net::IpAddr>().unwrap())),
                interface: String::new(),
                weight: 0,
            }],
            prefixes: Some(p.finish()),
            ..Default::default()
        })
        .collect();
    RouteBatch {
        groups,
        ..Default::default()
    }
}

/// When the FEA held every route, and every route of each family (IPv4, IPv6).
struct Done {
    all: Duration,
    family: [Duration; 2],
}

/// Publishes the table (in packed groups, or as one `Route` message per route); returns
/// when the FEA reports holding all of it, with the elapsed times.
async fn publish_and_wait(run_dir: &Path, table: &[IpNet], packed: bool) -> Done {
    let rib = connect(&Address::in_run_dir(run_dir, "rib")).await.unwrap();
    let fea = connect(&Address::in_run_dir(run_dir, "fea")).await.unwrap();
    let mut fea = FeaClient::new(fea);
    // Wait until the RIB has learned the connected networks from the FEA.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let mut rib = RibClient::new(rib);
    let start = Instant::now();
    let call = tokio::spawn(async move {
        rib.publish(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    tx.send(PublishRequest {
        msg: Some(Msg::Hello(Hello {
            protocol: "bench".into(),
            default_distance: 20,
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    for chunk in table.chunks(BATCH) {
        let batch = if packed {
            packed_batch(chunk)
        } else {
            RouteBatch {
                add: chunk.iter().map(route_for).collect(),
                ..Default::default()
            }
        };
        tx.send(PublishRequest {
            msg: Some(Msg::Batch(batch)),
        })
        .await
        .unwrap();
    }
    tx.send(PublishRequest {
        msg: Some(Msg::EndOfRib(EndOfRib {})),
    })
    .await
    .unwrap();
    let want = table.len() as u64;
    let want_v4 = table.iter().filter(|n| matches!(n, IpNet::V4(_))).count() as u64;
    let want_family = [want_v4, want - want_v4];
    let mut family: [Option<Duration>; 2] = [None, None];
    loop {
        let st = fea
            .status(oxr_proto::fea::StatusRequest {})
            .await
            .unwrap()
            .into_inner();
        for (f, held) in [st.routes_ipv4, st.routes_ipv6].into_iter().enumerate() {
            if family[f].is_none() && held >= want_family[f] {
                family[f] = Some(start.elapsed());
            }
        }
        if st.routes_ipv4 + st.routes_ipv6 >= want {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "pipeline stalled at {st:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = start.elapsed();
    drop(tx);
    call.abort();
    Done {
        all: elapsed,
        family: family.map(|d| d.unwrap_or(elapsed)),
    }
}

fn ip_batch(ns: &Ns, table: &[IpNet], dir: &Path) -> Duration {
    let path = dir.join("routes.batch");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for net in table {
        match net {
            IpNet::V4(_) => writeln!(f, "route add {net} via 10.0.0.2 proto 201").unwrap(),
            IpNet::V6(_) => writeln!(f, "route add {net} via 2001:db8:ffff::2 proto 201").unwrap(),
        }
    }
    drop(f);
    let t = Instant::now();
    let st = Command::new("ip")
        // -force: keep going past a prefix the kernel refuses, as oxr does (counted, not fatal).
        .args(["-n", &ns.0, "-force", "-batch", path.to_str().unwrap()])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let elapsed = t.elapsed();
    if !st.success() {
        eprintln!("ip -batch reported errors (some prefixes refused)");
    }
    elapsed
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        println!("SKIPPED (needs root): pipeline benchmark");
        return;
    }
    let limit = std::env::var("OXR_BENCH_LIMIT")
        .ok()
        .and_then(|s| s.parse().ok());
    let table = full_table::load(limit);
    let v4 = table.iter().filter(|n| matches!(n, IpNet::V4(_))).count();
    println!(
        "table: {} prefixes ({} IPv4, {} IPv6) from {}",
        table.len(),
        v4,
        table.len() - v4,
        full_table::path().display()
    );
    let dir = std::env::temp_dir().join(format!("oxr-bench-pipeline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "[router]\nname = \"bench\"\n[rib]\nstartup-hold-secs = 1\n[fea]\nnetlink-batch = {}\n",
            std::env::var("OXR_BENCH_NETLINK_BATCH").unwrap_or_else(|_| "64".into())
        ),
    )
    .unwrap();
    let ns = Ns::new(&format!("oxr-bench-{}", std::process::id()));
    let rt = tokio::runtime::Runtime::new().unwrap();

    let mut report = Vec::new();
    for (backend, packed) in [("none", false), ("none", true), ("kernel", true)] {
        ns.flush();
        let run_dir = dir.join(format!("{backend}-{packed}"));
        std::fs::create_dir_all(&run_dir).unwrap();
        let fea = start(&ns, "fea", &run_dir, &config, &["--backend", backend]);
        let rib = start(&ns, "rib", &run_dir, &config, &[]);
        let done = rt.block_on(publish_and_wait(&run_dir, &table, packed));
        let in_kernel = if backend == "kernel" {
            ns.route_count()
        } else {
            0
        };
        let label = if packed {
            backend.to_string()
        } else {
            format!("{backend}, per-route msgs")
        };
        report.push((
            label,
            done.all,
            fea.peak_rss_kib(),
            rib.peak_rss_kib(),
            in_kernel,
            done.family,
        ));
        drop(rib);
        drop(fea);
    }
    ns.flush();
    let reference = ip_batch(&ns, &table, &dir);
    let ref_count = ns.route_count();
    ns.flush();

    let n = table.len() as f64;
    println!();
    println!(
        "{:<46} {:>9} {:>12} {:>10} {:>10}",
        "pipeline", "seconds", "routes/s", "fea MiB", "rib MiB"
    );
    for (backend, elapsed, fea_kib, rib_kib, _, _) in &report {
        println!(
            "{:<46} {:>9.2} {:>12.0} {:>10.1} {:>10.1}",
            format!("publish -> rib -> fea ({backend})"),
            elapsed.as_secs_f64(),
            n / elapsed.as_secs_f64(),
            *fea_kib as f64 / 1024.0,
            *rib_kib as f64 / 1024.0
        );
    }
    println!(
        "{:<46} {:>9.2} {:>12.0}",
        "ip -batch (reference)",
        reference.as_secs_f64(),
        n / reference.as_secs_f64()
    );
    let kernel = report.iter().find(|r| r.0 == "kernel").unwrap();
    let none = report.iter().find(|r| r.0 == "none").unwrap();
    println!();
    println!(
        "kernel held {} oxr routes (ip -batch: {})",
        kernel.4, ref_count
    );
    println!(
        "kernel: every IPv4 route held at {:.2} s, every IPv6 route at {:.2} s",
        kernel.5[0].as_secs_f64(),
        kernel.5[1].as_secs_f64()
    );
    println!(
        "ratio: oxr kernel time / ip -batch time = {:.2}x (goal <= 0.30x)",
        kernel.1.as_secs_f64() / reference.as_secs_f64()
    );
    println!(
        "RIB throughput with the none backend: {:.2} M routes/s (goal >= 1 M/s)",
        n / none.1.as_secs_f64() / 1e6
    );
    println!(
        "none backend: ip -batch time / oxr time = {:.1}x",
        reference.as_secs_f64() / none.1.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
