//! Density: how many idle virtual routers fit on one host, and how fast they converge (the
//! `density` bench and `oxr-lab density`).
//!
//! For each kind (oxr: a full process set, oxr-routerd + fea + rib + ospf; BIRD; FRR zebra +
//! ospfd if installed) and each count N, brings up N routers on an OSPF ring
//! (point-to-point links, default timers: Hello 10 s, Dead 40 s; each router announces its
//! loopback 10.255.x.y/32), measures the time until every router's kernel FIB holds a route
//! to every other router's loopback, then the memory of every process of every router (RSS
//! and PSS from /proc/PID/smaps_rollup; PSS shares library pages out fairly), and tears the
//! lab down.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::ops::{self, Ctx};
use crate::{spec, sys};

const FRR_DIR: &str = "/usr/lib/frr";

fn loopback(i: usize) -> String {
    format!("10.255.{}.{}", i / 250, i % 250 + 1)
}

/// Ring link k between router k and router k+1 (mod n): a /30.
fn link_addrs(k: usize) -> (String, String) {
    let base = k * 4;
    (
        format!("172.16.{}.{}/30", base / 256, base % 256 + 1),
        format!("172.16.{}.{}/30", base / 256, base % 256 + 2),
    )
}

/// The ring's links as (a router, b router); eth1 of a to eth0 of b.
fn ring(n: usize) -> Vec<(usize, usize)> {
    match n {
        0 | 1 => vec![],
        2 => vec![(1, 2)],
        _ => (1..=n).map(|i| (i, i % n + 1)).collect(),
    }
}

fn lab_text(kind: &str, name: &str, n: usize) -> String {
    let mut t = format!("[lab]\nname = \"{name}\"\n");
    for i in 1..=n {
        let lo = loopback(i);
        match kind {
            "oxr" => t.push_str(&format!(
                r#"[router.r{i}]
loopback = ["{lo}/32"]
[router.r{i}.config]
router = {{ router-id = "{lo}" }}
[router.r{i}.config.protocols.ospf]
areas."0.0.0.0" = {{}}
interfaces.eth0 = {{ area = "0.0.0.0", type = "point-to-point" }}
interfaces.eth1 = {{ area = "0.0.0.0", type = "point-to-point" }}
interfaces.lo = {{ area = "0.0.0.0", passive = true }}
"#
            )),
            "bird" => t.push_str(&format!(
                r#"[router.r{i}]
kind = "bird"
loopback = ["{lo}/32"]
config = """
router id {lo};
protocol device {{ }}
protocol kernel {{ ipv4 {{ export where source = RTS_OSPF; }}; }}
protocol ospf v2 {{
  ipv4 {{ import all; export none; }};
  area 0 {{
    interface "eth*" {{ type ptp; }};
    interface "lo" {{ stub yes; }};
  }};
}}
"""
"#
            )),
            // FRR routers are plain namespaces here; the bench starts zebra and ospfd.
            _ => t.push_str(&format!("[host.r{i}]\nloopback = [\"{lo}/32\"]\n")),
        }
    }
    for (k, (a, b)) in ring(n).into_iter().enumerate() {
        let (aa, ba) = link_addrs(k);
        t.push_str(&format!(
            "[[link]]\na = \"r{a}:eth1\"\nb = \"r{b}:eth0\"\na-address = \"{aa}\"\nb-address = \"{ba}\"\n"
        ));
    }
    t
}

fn start_frr(ctx: &Ctx, lab: &str, i: usize, has: &[bool; 2]) -> anyhow::Result<()> {
    let ns = spec::netns_name(lab, &format!("r{i}"));
    let dir = ctx.run_dir(lab).path.join(format!("r{i}"));
    std::fs::create_dir_all(&dir)?;
    // FRR drops to its own user (root is not in its vty group): it must write here.
    let chown = Command::new("chown")
        .args(["-R", "frr:frr"])
        .arg(ctx.run_dir(lab).path)
        .status()?;
    anyhow::ensure!(chown.success(), "chown frr:frr of the run directory");
    let lo = loopback(i);
    let mut conf = format!("hostname r{i}\n");
    for (k, ifname) in ["eth0", "eth1"].iter().enumerate() {
        if has[k] {
            conf.push_str(&format!(
                "interface {ifname}\n ip ospf network point-to-point\n ip ospf area 0\n"
            ));
        }
    }
    conf.push_str(&format!(
        "interface lo\n ip ospf area 0\nrouter ospf\n ospf router-id {lo}\n passive-interface lo\n"
    ));
    std::fs::write(dir.join("frr.conf"), &conf)?;
    std::fs::write(dir.join("zebra.conf"), format!("hostname r{i}\n"))?;
    let z = dir.join("zserv.api");
    for (daemon, cfg) in [("zebra", "zebra.conf"), ("ospfd", "frr.conf")] {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &ns])
            .arg(Path::new(FRR_DIR).join(daemon))
            .arg("-d")
            .arg("-f")
            .arg(dir.join(cfg))
            .arg("-i")
            .arg(dir.join(format!("{daemon}.pid")))
            .arg("-z")
            .arg(&z)
            .arg("--vty_socket")
            .arg(&dir)
            .args(["-u", "frr", "-g", "frr", "-A", "127.0.0.1", "-P", "0"]);
        let out = c.stdin(Stdio::null()).output()?;
        if !out.status.success() {
            anyhow::bail!(
                "{daemon} in {ns}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        if daemon == "zebra" {
            // ospfd connects to zebra's socket.
            let t = Instant::now();
            while !z.exists() && t.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    Ok(())
}

/// Routers (by index) whose FIB lacks a route to some other router's loopback.
fn unconverged(lab: &str, n: usize) -> Vec<usize> {
    let all: BTreeSet<String> = (1..=n).map(loopback).collect();
    (1..=n)
        .filter(|&i| {
            let ns = spec::netns_name(lab, &format!("r{i}"));
            let out = sys::ip_ns(&ns, &["-4", "route", "show", "root", "10.255.0.0/16"])
                .unwrap_or_default();
            let have: BTreeSet<String> = out
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .map(|d| d.trim_end_matches("/32").to_string())
                .collect();
            let mine = loopback(i);
            all.iter().any(|a| *a != mine && !have.contains(a))
        })
        .collect()
}

/// Memory in KiB.
#[derive(Debug, Default, Clone, Copy)]
pub struct Mem {
    /// Resident set.
    pub rss_kib: u64,
    /// Proportional set.
    pub pss_kib: u64,
}

fn smaps_rollup(pid: i32) -> Mem {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    Mem {
        rss_kib: field("Rss:"),
        pss_kib: field("Pss:"),
    }
}

fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// One run: N routers of one kind.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `oxr`, `bird` or `frr`.
    pub kind: String,
    /// Routers.
    pub n: usize,
    /// Seconds `up` took (namespaces, links, daemons started).
    pub up_secs: f64,
    /// Seconds from then until every router had every loopback route (None: not by the
    /// deadline).
    pub converge_secs: Option<f64>,
    /// Per router, averaged: RSS and PSS in KiB.
    pub per_router: Mem,
    /// Per process name, summed over routers: (rss, pss, count of processes).
    pub per_process: BTreeMap<String, (u64, u64, usize)>,
    /// What went wrong, if anything.
    pub note: String,
}

/// Brings up `n` routers of `kind` on a ring, measures, tears down (also on error).
pub fn run_one(ctx: &Ctx, kind: &str, n: usize, timeout: Duration) -> anyhow::Result<Outcome> {
    let name = format!("dens-{kind}-{n}-{}", std::process::id());
    let lab = spec::parse(&lab_text(kind, &name, n), Path::new("."), None)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let t0 = Instant::now();
    let r = (|| -> anyhow::Result<Outcome> {
        ops::up(ctx, &lab, None)?;
        if kind == "frr" {
            let links = ring(n);
            for i in 1..=n {
                let has = [
                    links.iter().any(|l| l.1 == i),
                    links.iter().any(|l| l.0 == i),
                ];
                start_frr(ctx, &name, i, &has)?;
            }
        }
        let up_secs = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let mut converge_secs = None;
        let mut last = Vec::new();
        while t1.elapsed() < timeout {
            last = unconverged(&name, n);
            if last.is_empty() {
                converge_secs = Some(t1.elapsed().as_secs_f64());
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let note = if converge_secs.is_none() {
            format!(
                "not converged after {}s ({} routers lacking routes, e.g. r{})",
                timeout.as_secs(),
                last.len(),
                last.first().copied().unwrap_or(0)
            )
        } else {
            String::new()
        };
        // Every router's whole process set must be running before it is measured (a lone
        // router "converges" at once, before routerd has started its children).
        let want = match kind {
            "oxr" => 4,
            "frr" => 2,
            _ => 1,
        };
        let t2 = Instant::now();
        while t2.elapsed() < Duration::from_secs(15)
            && (1..=n)
                .any(|i| sys::netns_pids(&spec::netns_name(&name, &format!("r{i}"))).len() < want)
        {
            std::thread::sleep(Duration::from_millis(200));
        }
        let mut total = Mem::default();
        let mut per_process: BTreeMap<String, (u64, u64, usize)> = BTreeMap::new();
        for i in 1..=n {
            for pid in sys::netns_pids(&spec::netns_name(&name, &format!("r{i}"))) {
                let m = smaps_rollup(pid);
                total.rss_kib += m.rss_kib;
                total.pss_kib += m.pss_kib;
                let e = per_process.entry(comm(pid)).or_default();
                e.0 += m.rss_kib;
                e.1 += m.pss_kib;
                e.2 += 1;
            }
        }
        Ok(Outcome {
            kind: kind.into(),
            n,
            up_secs,
            converge_secs,
            per_router: Mem {
                rss_kib: total.rss_kib / n as u64,
                pss_kib: total.pss_kib / n as u64,
            },
            per_process,
            note,
        })
    })();
    let _ = ops::down(ctx, &name);
    r
}

/// Runs every (count, kind), printing per-process figures as it goes and the table at the
/// end; kinds whose daemon is not installed are skipped with a note.
pub fn run_all(ctx: &Ctx, counts: &[usize], kinds: &[String], timeout: Duration) -> Vec<Outcome> {
    let mut kinds = kinds.to_vec();
    for (k, bin) in [
        ("oxr", ctx.bin("oxr-ospf")),
        ("bird", std::path::PathBuf::from("/usr/sbin/bird")),
        ("frr", Path::new(FRR_DIR).join("ospfd")),
    ] {
        if kinds.iter().any(|x| x == k) && !bin.exists() {
            println!("{k}: {} missing, skipped", bin.display());
            kinds.retain(|x| x != k);
        }
    }
    let mut rows = Vec::new();
    for &n in counts {
        for kind in &kinds {
            println!("== {kind} x {n}");
            match run_one(ctx, kind, n, timeout) {
                Ok(o) => {
                    for (p, (rss, pss, c)) in &o.per_process {
                        println!(
                            "   {p:<14} x{c:<4} RSS {:>7.2} MiB  PSS {:>7.2} MiB (each)",
                            *rss as f64 / 1024.0 / *c as f64,
                            *pss as f64 / 1024.0 / *c as f64
                        );
                    }
                    println!(
                        "   converged: {}",
                        o.converge_secs
                            .map_or_else(|| o.note.clone(), |s| format!("{s:.1} s"))
                    );
                    rows.push(o)
                }
                Err(e) => println!("   {kind} x {n}: error: {e:#}"),
            }
        }
    }
    print!("{}", table(&rows));
    rows
}

/// The summary table.
pub fn table(rows: &[Outcome]) -> String {
    let mut t = format!(
        "\n{:<6} {:>5} {:>9} {:>12} {:>16} {:>16}  notes\n",
        "kind", "N", "up (s)", "converge (s)", "RSS/router MiB", "PSS/router MiB"
    );
    for o in rows {
        t.push_str(&format!(
            "{:<6} {:>5} {:>9.1} {:>12} {:>16.2} {:>16.2}  {}\n",
            o.kind,
            o.n,
            o.up_secs,
            o.converge_secs
                .map_or_else(|| "-".into(), |s| format!("{s:.1}")),
            o.per_router.rss_kib as f64 / 1024.0,
            o.per_router.pss_kib as f64 / 1024.0,
            o.note
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_labs_are_valid_and_shaped_like_a_ring() {
        assert!(ring(1).is_empty());
        assert_eq!(ring(2), [(1, 2)]);
        assert_eq!(ring(4), [(1, 2), (2, 3), (3, 4), (4, 1)]);
        for kind in ["oxr", "bird", "frr"] {
            for n in [1, 2, 5] {
                let lab = spec::parse(&lab_text(kind, "d", n), Path::new("."), None)
                    .unwrap_or_else(|e| panic!("{kind} {n}: {e:?}"));
                assert_eq!(lab.nodes.len(), n);
                assert_eq!(lab.links.len(), ring(n).len());
            }
        }
        // Loopbacks and link subnets stay distinct up to (and past) 100 routers.
        let l: BTreeSet<String> = (1..=300).map(loopback).collect();
        assert_eq!(l.len(), 300);
        let s: BTreeSet<(String, String)> = (0..300).map(link_addrs).collect();
        assert_eq!(s.len(), 300);
        assert_eq!(link_addrs(64).0, "172.16.1.1/30");
    }
}
