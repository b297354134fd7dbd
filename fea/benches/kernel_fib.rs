//! Installs the real full table into a fresh network namespace through the kernel backend,
//! then the same table with `ip -batch` as the reference, and prints both and their ratio.
//!
//! Needs root (skips otherwise). `OXR_BENCH_LIMIT=N` takes the first N prefixes;
//! `OXR_FULL_TABLE=PATH` points at another table (gzip, one CIDR per line).
//!
//! ```text
//! cargo bench -p oxr-fea --bench kernel_fib
//! OXR_BENCH_LIMIT=100000 cargo bench -p oxr-fea --bench kernel_fib
//! OXR_FEA_IPV4_ORDER=arrival cargo bench -p oxr-fea --bench kernel_fib   # no spread order
//! ```

use std::io::Write;
use std::process::Command;
use std::time::Instant;

use ipnet::IpNet;
use oxr_fea::backend::kernel::KernelBackend;
use oxr_fea::backend::{Action, BackendOptions, FibBackend, FibOp, Nexthop, Route};

use oxr_testlab::full_table;

/// Ops per `apply` call, like a RIB batch.
const RIB_BATCH: usize = 10_000;

struct Netns(String);

impl Netns {
    fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .arg("-n")
            .arg(&self.0)
            .args(args)
            .output()
            .expect("ip");
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn count_routes(&self) -> usize {
        let v4 = self.ip(&["-4", "route", "show", "proto", "201"]);
        let v6 = self.ip(&["-6", "route", "show", "proto", "201"]);
        v4.lines()
            .chain(v6.lines())
            .filter(|l| !l.starts_with(char::is_whitespace))
            .count()
    }

    /// Deleting the nexthop objects takes their routes with them; `ip route flush` then
    /// removes routes without objects (the `ip -batch` run's).
    fn flush(&self) {
        for args in [
            &["nexthop", "flush"][..],
            &["-4", "route", "flush", "proto", "201"],
            &["-6", "route", "flush", "proto", "201"],
        ] {
            let _ = Command::new("ip")
                .arg("-n")
                .arg(&self.0)
                .args(args)
                .output();
        }
        assert_eq!(self.count_routes(), 0, "flush left routes");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        println!("SKIPPED (needs root): kernel_fib");
        return;
    }
    let limit = std::env::var("OXR_BENCH_LIMIT")
        .ok()
        .and_then(|s| s.parse().ok());
    let table = full_table::load(limit);
    let v4 = table.iter().filter(|p| p.addr().is_ipv4()).count();
    println!(
        "table: {} prefixes ({} IPv4, {} IPv6)",
        table.len(),
        v4,
        table.len() - v4
    );

    let ns = Netns(format!("oxrfea-bench-{}", std::process::id()));
    let _ = Command::new("ip").args(["netns", "del", &ns.0]).output();
    let st = Command::new("ip")
        .args(["netns", "add", &ns.0])
        .status()
        .unwrap();
    assert!(st.success());
    ns.ip(&["link", "set", "lo", "up"]);
    ns.ip(&[
        "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
    ]);
    ns.ip(&["link", "set", "veth0", "up"]);
    ns.ip(&["link", "set", "veth1", "up"]);
    ns.ip(&["addr", "add", "10.0.0.1/16", "dev", "veth0"]);
    ns.ip(&[
        "addr",
        "add",
        "2001:db8:ffff::1/64",
        "dev",
        "veth0",
        "nodad",
    ]);
    let out = ns.ip(&["-o", "link", "show", "dev", "veth0"]);
    let ifindex: u32 = out.split(':').next().unwrap().trim().parse().unwrap();

    let gw4 = ["10.0.0.2", "10.0.0.3"];
    let gw6 = ["2001:db8:ffff::2", "2001:db8:ffff::3"];
    let gw = |i: usize, p: &IpNet| -> &str {
        if p.addr().is_ipv4() {
            gw4[i % 2]
        } else {
            gw6[i % 2]
        }
    };

    // --- oxr kernel backend ---
    let batch: usize = std::env::var("OXR_NETLINK_BATCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let ops: Vec<FibOp> = table
        .iter()
        .enumerate()
        .map(|(i, p)| {
            FibOp::Add(Route {
                prefix: *p,
                nexthops: vec![Nexthop {
                    gateway: Some(gw(i, p).parse().unwrap()),
                    ifindex,
                    weight: 1,
                }],
                action: Action::Forward,
                metric: 0,
                protocol: "bgp".into(),
            })
        })
        .collect();
    let mut backend = KernelBackend::open(&BackendOptions {
        route_protocol: 201,
        netlink_batch: batch,
        netns: Some(std::path::PathBuf::from("/var/run/netns").join(&ns.0)),
        spread_ipv4: std::env::var("OXR_FEA_IPV4_ORDER").as_deref() != Ok("arrival"),
        ..Default::default()
    })
    .expect("kernel backend");
    backend.load_existing().expect("load");
    let t = Instant::now();
    let mut failed = 0;
    for chunk in ops.chunks(RIB_BATCH) {
        failed += backend.apply(chunk).iter().filter(|r| r.is_err()).count();
    }
    let oxr_secs = t.elapsed().as_secs_f64();
    let st = backend.status();
    drop(backend);
    let installed = ns.count_routes();
    println!(
        "oxr kernel backend: {:.2} s, {:.0} routes/s ({} failed; {} in kernel; {} netlink messages in {} sendmsg, batch {batch}, {} nexthop objects)",
        oxr_secs,
        table.len() as f64 / oxr_secs,
        failed,
        installed,
        st.messages,
        st.sends,
        st.nexthop_objects
    );
    assert_eq!(failed, 0, "routes failed");
    let t = Instant::now();
    ns.flush();
    println!("(flush: {:.2} s)", t.elapsed().as_secs_f64());

    // --- reference: ip -batch ---
    let file = std::env::temp_dir().join(format!("oxrfea-bench-{}.batch", std::process::id()));
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        for (i, p) in table.iter().enumerate() {
            writeln!(w, "route add {p} via {} dev veth0 proto 201", gw(i, p)).unwrap();
        }
    }
    let t = Instant::now();
    let st = Command::new("ip")
        .args(["-n", &ns.0, "-batch"])
        .arg(&file)
        .status()
        .unwrap();
    let ip_secs = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&file);
    assert!(st.success(), "ip -batch failed");
    let installed = ns.count_routes();
    println!(
        "ip -batch:          {:.2} s, {:.0} routes/s ({} in kernel)",
        ip_secs,
        table.len() as f64 / ip_secs,
        installed
    );
    println!(
        "ratio oxr / ip -batch: {:.2}x the time ({:.1}x faster)",
        oxr_secs / ip_secs,
        ip_secs / oxr_secs
    );
    ns.flush();
}
