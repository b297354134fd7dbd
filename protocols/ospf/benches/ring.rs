//! Convergence of a 10-router ring (issue 6, "What it must show"), oxr against BIRD 2 in the
//! same run. Root only; prints `SKIPPED` otherwise.
//!
//! ```text
//!   r0 -right--left- r1 -right--left- r2 ... r9 -right--left- r0      (point-to-point veths)
//!   router i: lo 10.255.0.(i+1)/32, right 10.1.i.1/30, left 10.1.(i-1).2/30
//! ```
//!
//! Each router runs oxr-fea + oxr-rib + oxr-ospf (hello 1 s, dead 3 s, cost 10), then in a
//! fresh set of namespaces BIRD 2 with the same timers. Every namespace's kernel table is
//! polled every 50 ms (`ip -o route`) and three times are measured, each phase starting
//! after 6 s of quiet (longer than the 5 s throttle hold-down):
//! - start: from starting the routing processes until every router has a route to every
//!   other router's loopback;
//! - cut: from link r0-r1 being down on both ends (both `ip link set` returned) until every
//!   route goes the other way round (the only path left);
//! - restore: from it being up again until every route is shortest again (either or both
//!   directions for the router opposite).
//!
//! Binaries are taken beside this bench (`cargo build --release -p oxr-fea -p oxr-rib
//! -p oxr-ospf` first) or from OXR_FEA_BIN / OXR_RIB_BIN / OXR_OSPF_BIN.
//! Run: `cargo bench -p oxr-ospf --bench ring` (OXR_RING_SKIP_BIRD=1 skips the reference).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oxr_testlab::bird::Bird;
use oxr_testlab::{oxr_bin, veth_up, Daemon, Netns, Scratch};

const N: usize = 10;
const POLL: Duration = Duration::from_millis(50);
/// Quiet time before the cut and before the restore.
const SETTLE: Duration = Duration::from_secs(6);
/// The link cut and restored: r0's "right" to r1's "left".
const CUT: usize = 0;

#[derive(Clone, Copy, PartialEq)]
enum Want {
    /// A route to every loopback.
    Reach,
    /// Every route along a shortest path of the whole ring.
    Shortest,
    /// Every route avoiding the cut link.
    AroundCut,
}

fn loopback(i: usize) -> String {
    format!("10.255.0.{}", i + 1)
}

/// The devices allowed for router `i`'s route to `j`, as alternatives.
fn allowed(i: usize, j: usize, want: Want) -> Vec<BTreeSet<&'static str>> {
    let set = |v: &[&'static str]| v.iter().copied().collect::<BTreeSet<_>>();
    let cw = (j + N - i) % N;
    let ccw = (i + N - j) % N;
    match want {
        Want::Reach => vec![set(&["right"]), set(&["left"]), set(&["left", "right"])],
        Want::Shortest if cw < ccw => vec![set(&["right"])],
        Want::Shortest if cw > ccw => vec![set(&["left"])],
        Want::Shortest => vec![set(&["right"]), set(&["left"]), set(&["left", "right"])],
        Want::AroundCut => {
            // Going clockwise from i to j crosses the cut link iff it steps from CUT to CUT+1.
            let crosses = (0..cw).any(|k| (i + k) % N == CUT);
            vec![set(&[if crosses { "left" } else { "right" }])]
        }
    }
}

/// Whether router `i`'s kernel table (one `ip -o route` dump) satisfies `want`.
fn table_ok(i: usize, table: &str, want: Want) -> bool {
    (0..N).filter(|&j| j != i).all(|j| {
        let lo = loopback(j);
        let Some(line) = table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(lo.as_str()))
        else {
            debug(|| format!("r{i}: no route to {lo}"));
            return false;
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let devs: BTreeSet<&str> = words
            .windows(2)
            .filter(|w| w[0] == "dev")
            .map(|w| w[1])
            .collect();
        allowed(i, j, want)
            .iter()
            .any(|a| a.len() == devs.len() && a.iter().all(|d| devs.contains(d)))
    })
}

/// With OXR_RING_DEBUG set: prints why a table is not yet as wanted.
fn debug(f: impl FnOnce() -> String) {
    if std::env::var_os("OXR_RING_DEBUG").is_some() {
        eprintln!("{:?} {}", std::time::SystemTime::now(), f());
    }
}

/// The processes running a ring's routers: oxr's or BIRD's (stopped on drop).
type Procs = (Vec<Daemon>, Vec<Bird>);

/// Fields drop in order: processes, then namespaces, then the scratch directory.
struct Ring {
    _procs: Procs,
    ns: Vec<Netns>,
    dir: Scratch,
}

impl Ring {
    fn new(tag: &str) -> Ring {
        let pid = std::process::id() % 100_000;
        let dir = Scratch::new(&format!("ring-{tag}"));
        let ns: Vec<Netns> = (0..N)
            .map(|i| Netns::new(&format!("ring{tag}{pid}r{i}")))
            .collect();
        for i in 0..N {
            let k = (i + 1) % N;
            veth_up(
                &ns[i],
                "right",
                &format!("10.1.{i}.1/30"),
                &ns[k],
                "left",
                &format!("10.1.{i}.2/30"),
            );
            ns[i].ip(&["addr", "add", &format!("{}/32", loopback(i)), "dev", "lo"]);
        }
        Ring {
            _procs: (Vec::new(), Vec::new()),
            ns,
            dir,
        }
    }

    fn all_ok(&self, want: Want) -> bool {
        self.ns.iter().enumerate().all(|(i, n)| {
            let t = n.ip(&["-o", "-4", "route", "show", "table", "main"]);
            table_ok(i, &t, want)
        })
    }

    /// Polls every 50 ms until `want` holds; the time since `from`, or None after `limit`.
    fn wait(&self, from: Instant, want: Want, limit: Duration) -> Option<Duration> {
        let mut next = Instant::now();
        loop {
            if self.all_ok(want) {
                return Some(from.elapsed());
            }
            if from.elapsed() > limit {
                return None;
            }
            next += POLL;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            } else {
                next = now;
            }
        }
    }

    fn set_cut(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        self.ns[CUT].ip(&["link", "set", "right", state]);
        self.ns[(CUT + 1) % N].ip(&["link", "set", "left", state]);
    }

    /// start, cut, restore (None: not reached within the limit).
    fn measure(&mut self, start: impl FnOnce(&[Netns], &Path) -> Procs) -> [Option<Duration>; 3] {
        let limit = Duration::from_secs(30);
        let t0 = Instant::now();
        self._procs = start(&self.ns, &self.dir.0);
        let started = self.wait(t0, Want::Reach, limit);
        // Let the ring settle on shortest paths and go quiet before cutting (longer than
        // oxr's 5 s SPF/LSA hold-down, so each phase starts from a steady state).
        let _ = self.wait(Instant::now(), Want::Shortest, limit);
        std::thread::sleep(SETTLE);
        // The clock starts once both ends are down (up): `ip link set` on a veth waits for
        // an RCU grace period, up to ~0.5 s each on this loaded VM.
        self.set_cut(false);
        let t1 = Instant::now();
        let cut = self.wait(t1, Want::AroundCut, limit);
        std::thread::sleep(SETTLE);
        self.set_cut(true);
        let t2 = Instant::now();
        let restored = self.wait(t2, Want::Shortest, limit);
        [started, cut, restored]
    }
}

fn oxr_start(ns: &[Netns], dir: &Path, bins: &[PathBuf; 3]) -> Procs {
    let mut procs = Vec::new();
    for (i, n) in ns.iter().enumerate() {
        // OXR_RING_RXMT: a retransmit interval other than the default 5 s (diagnostics).
        let rxmt = std::env::var("OXR_RING_RXMT")
            .map(|v| format!("retransmit-interval = {v}\n"))
            .unwrap_or_default();
        let p2p = format!(
            "type = \"point-to-point\"\nhello-interval = 1\ndead-interval = 3\ncost = 10\n{rxmt}"
        );
        // OXR_RING_OSPF: extra lines for `[protocols.ospf]` (diagnostics).
        let extra = std::env::var("OXR_RING_OSPF").unwrap_or_default();
        let conf = format!(
            "[router]\nname = \"r{i}\"\nrouter-id = \"{}\"\n\
             [protocols.ospf]\n{extra}\n\
             [protocols.ospf.areas.\"0.0.0.0\"]\n\
             [protocols.ospf.interfaces.lo]\narea = \"0.0.0.0\"\npassive = true\ncost = 1\n\
             [protocols.ospf.interfaces.left]\narea = \"0.0.0.0\"\n{p2p}\
             [protocols.ospf.interfaces.right]\narea = \"0.0.0.0\"\n{p2p}",
            loopback(i)
        );
        let path = dir.join(format!("r{i}.toml"));
        std::fs::write(&path, conf).unwrap();
        let run = dir.join(format!("run{i}"));
        for (bin, what) in bins.iter().zip(["fea", "rib", "ospf"]) {
            let log = dir.join(format!("r{i}-{what}.log"));
            procs.push(n.spawn_oxr(bin, &format!("r{i}"), &run, &path, &log));
        }
    }
    (procs, Vec::new())
}

fn bird_start(ns: &[Netns], dir: &Path) -> Procs {
    let birds = ns.iter().enumerate().map(|(i, n)| {
        let conf = format!(
            "router id {};\nlog stderr all;\nprotocol device {{ }}\n\
             protocol kernel {{ ipv4 {{ export all; }}; merge paths yes; }}\n\
             protocol ospf v2 o1 {{\n  ipv4 {{ import all; export none; }};\n  area 0 {{\n\
             interface \"left\", \"right\" {{ type ptp; hello 1; dead 3; cost 10; }};\n\
             interface \"lo\" {{ stub yes; }};\n  }};\n}}\n",
            loopback(i)
        );
        // Not waiting for each to come up: the clock runs from the first start.
        Bird::spawn(n, dir, &format!("bird{i}"), &conf)
    });
    (Vec::new(), birds.collect())
}

fn fmt(d: Option<Duration>) -> String {
    d.map_or("> 30 s".into(), |d| format!("{:.2} s", d.as_secs_f64()))
}

fn main() {
    // `cargo test --all-targets` runs bench binaries too; only `cargo bench` passes --bench.
    if !std::env::args().any(|a| a == "--bench") {
        println!("ring: run with `cargo bench -p oxr-ospf --bench ring`");
        return;
    }
    if !oxr_testlab::require_root("ring convergence benchmark") {
        return;
    }
    // Beside this bench (`cargo build --release -p oxr-fea -p oxr-rib -p oxr-ospf`) or
    // OXR_FEA_BIN / OXR_RIB_BIN / OXR_OSPF_BIN.
    let bins = ["oxr-fea", "oxr-rib", "oxr-ospf"].map(oxr_bin);
    let mut rows = Vec::new();
    {
        let mut ring = Ring::new("o");
        let r = ring.measure(|ns, dir| oxr_start(ns, dir, &bins));
        rows.push(("oxr-ospf", r));
    }
    if Bird::available() && std::env::var_os("OXR_RING_SKIP_BIRD").is_none() {
        let mut ring = Ring::new("b");
        let r = ring.measure(bird_start);
        rows.push(("BIRD 2", r));
    } else {
        println!("(BIRD reference skipped)");
    }
    println!("10-router ring, hello 1 s / dead 3 s, kernel tables polled every 50 ms");
    println!("| implementation | start | cut | restore |");
    println!("|---|---|---|---|");
    for (name, [s, c, r]) in rows {
        println!("| {name} | {} | {} | {} |", fmt(s), fmt(c), fmt(r));
    }
}
