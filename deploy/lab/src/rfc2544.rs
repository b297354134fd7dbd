//! RFC 2544 throughput (section 26.1), a first cut: a source host, a chain of N oxr routers
//! with static routes, a sink host; per frame size, the highest offered rate with zero loss
//! by binary search over trials of fixed duration, then a confirming trial.
//!
//! ```text
//!   src 10.1.0.2 -- r1 -- r2 -- ... -- rN -- 10.2.0.2 sink
//!   UDP to 10.2.0.99: rN (or src with no routers) has a permanent neighbor entry for it with
//!   the sink's MAC, so the sink receives every frame and drops it unanswered (not its
//!   address, forwarding off): no ICMP flows back, no ARP in the measured path.
//! ```
//!
//! Offered frames are what the generator (`oxr-lab gen`, run in the source namespace:
//! batched `sendmmsg` on a connected UDP socket, paced per batch) says it sent; received
//! frames are the sink interface's rx counter. The generator's own ceiling is measured first
//! with no router (source straight to sink) and every result is also given as a percent of
//! it; a trial whose generator fell short of the offered rate is flagged `generator-bound`.
//!
//! Not yet: the XDP-native generator mode, the fast-path dataplane, CPU ns/packet of the
//! router cores, the plot.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;

use crate::ops::{self, Ctx};
use crate::spec;
use crate::sys;

/// Ethernet header + FCS + IPv4 + UDP: frame size minus this is the UDP payload.
pub const FRAME_OVERHEAD: usize = 14 + 4 + 20 + 8;

/// A trial counts only if the generator sent at least this fraction of the offered frames.
pub const REACHED: f64 = 0.97;

/// The address the generator sends to (see the module docs).
pub const TARGET: &str = "10.2.0.99";

/// The binary search over offered rates, as a pure state machine: feed it each trial's
/// outcome, it says the next rate to try or that it is done.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// Highest rate with zero loss so far (frames/s).
    pub lo: u64,
    /// Lowest rate with loss so far (or the ceiling).
    pub hi: u64,
    /// Stop when (hi - lo) is at most this fraction of hi.
    pub resolution: f64,
    /// Trials left.
    pub budget: u32,
    /// Whether the ceiling itself passed (then there is nothing above to search).
    ceiling_tried: bool,
}

impl Search {
    /// A search in [0, ceiling]; the ceiling is tried first.
    pub fn new(ceiling: u64, resolution: f64, budget: u32) -> Search {
        Search {
            lo: 0,
            hi: ceiling,
            resolution,
            budget,
            ceiling_tried: false,
        }
    }

    /// The next rate to try, or None when the search has converged (or ran out of trials).
    pub fn next_rate(&self) -> Option<u64> {
        if self.budget == 0 || self.hi == 0 {
            return None;
        }
        if !self.ceiling_tried {
            return Some(self.hi);
        }
        if (self.hi - self.lo) as f64 <= self.resolution * self.hi as f64 || self.hi - self.lo <= 1
        {
            return None;
        }
        Some(self.lo + (self.hi - self.lo) / 2)
    }

    /// Records the outcome of a trial at `rate`.
    pub fn record(&mut self, rate: u64, lossless: bool) {
        self.budget = self.budget.saturating_sub(1);
        if !self.ceiling_tried {
            self.ceiling_tried = true;
            if lossless {
                self.lo = rate;
                self.hi = rate;
                return;
            }
        }
        if lossless {
            self.lo = self.lo.max(rate);
        } else {
            self.hi = self.hi.min(rate);
        }
    }
}

/// The lab file text for `routers` routers between src and sink.
pub fn chain_lab(name: &str, routers: usize) -> String {
    let mut t = format!("[lab]\nname = \"{name}\"\n\n[host.src]\n[host.sink]\n");
    if routers == 0 {
        t.push_str(
            "[[link]]\na = \"src:eth0\"\nb = \"sink:eth0\"\na-address = \"10.2.0.1/24\"\nb-address = \"10.2.0.2/24\"\n",
        );
        return t;
    }
    t = t.replace("[host.src]\n", "[host.src]\ngateway = [\"10.1.0.1\"]\n");
    for i in 1..=routers {
        t.push_str(&format!(
            "[router.r{i}.config]\nrib = {{ startup-hold-secs = 5 }}\n"
        ));
        if i < routers {
            t.push_str(&format!(
                "[router.r{i}.config.protocols.static.route]\n\"10.2.0.0/24\" = {{ via = [\"10.0.{i}.2\"] }}\n"
            ));
        }
    }
    t.push_str("[[link]]\na = \"src:eth0\"\nb = \"r1:eth0\"\na-address = \"10.1.0.2/24\"\nb-address = \"10.1.0.1/24\"\n");
    for i in 1..routers {
        t.push_str(&format!(
            "[[link]]\na = \"r{i}:eth1\"\nb = \"r{}:eth0\"\na-address = \"10.0.{i}.1/24\"\nb-address = \"10.0.{i}.2/24\"\n",
            i + 1
        ));
    }
    t.push_str(&format!(
        "[[link]]\na = \"r{routers}:eth1\"\nb = \"sink:eth0\"\na-address = \"10.2.0.1/24\"\nb-address = \"10.2.0.2/24\"\n"
    ));
    t
}

/// What the generator reports (one JSON line on stdout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct GenReport {
    /// Datagrams handed to the kernel.
    pub sent: u64,
    /// Send errors (ENOBUFS and the like): offered but never sent.
    pub errors: u64,
    /// Seconds the run took.
    pub secs: f64,
}

/// The generator: `rate` datagrams/s (0 = as fast as possible) of `payload` bytes to `dst`
/// for `secs`, in `sendmmsg` batches of `batch`.
pub fn generate(
    dst: SocketAddr,
    payload: usize,
    rate: u64,
    secs: f64,
    batch: usize,
) -> anyhow::Result<GenReport> {
    use nix::sys::socket::{sendmmsg, setsockopt, sockopt, MsgFlags, MultiHeaders, SockaddrIn};
    use std::io::IoSlice;
    let sock = UdpSocket::bind("0.0.0.0:0")?;
    sock.connect(dst)?;
    // A deep send buffer: a burst of batches must not fail on the socket before the qdisc.
    let _ = setsockopt(&sock, sockopt::SndBuf, &(8 << 20));
    let buf = vec![0x5au8; payload];
    let batch = batch.max(1);
    let iovs: Vec<[IoSlice<'_>; 1]> = (0..batch).map(|_| [IoSlice::new(&buf)]).collect();
    let addrs: Vec<Option<SockaddrIn>> = vec![None; batch];
    let mut headers = MultiHeaders::<SockaddrIn>::preallocate(batch, None);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let (mut sent, mut errors) = (0u64, 0u64);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let mut n = batch;
        if rate > 0 {
            // Pace per batch: send only what is due by now.
            let due = (now.duration_since(start).as_secs_f64() * rate as f64) as u64;
            let owed = due.saturating_sub(sent + errors) as usize;
            if owed == 0 {
                std::thread::sleep(Duration::from_micros(50));
                continue;
            }
            n = owed.min(batch);
        }
        match sendmmsg(
            sock.as_raw_fd(),
            &mut headers,
            &iovs[..n],
            &addrs[..n],
            [],
            MsgFlags::empty(),
        ) {
            Ok(res) => {
                let k = res.count() as u64;
                sent += k;
                errors += n as u64 - k;
            }
            Err(_) => errors += n as u64,
        }
    }
    Ok(GenReport {
        sent,
        errors,
        secs: start.elapsed().as_secs_f64(),
    })
}

/// Options of one experiment.
#[derive(Debug, Clone)]
pub struct Options {
    /// Router counts to measure.
    pub routers: Vec<usize>,
    /// Frame sizes (bytes, Ethernet with FCS).
    pub sizes: Vec<usize>,
    /// Seconds per trial.
    pub trial_secs: f64,
    /// Cap on offered rate (frames/s); 0 = the generator's ceiling.
    pub max_rate: u64,
    /// Search resolution (fraction of the upper bound).
    pub resolution: f64,
    /// Most trials per search (plus one confirming trial).
    pub max_trials: u32,
}

/// One measured point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    /// Virtual routers in the chain.
    pub routers: usize,
    /// Frame size (bytes).
    pub frame_size: usize,
    /// Dataplane (`kernel`).
    pub dataplane: String,
    /// Highest zero-loss rate found (frames/s), confirmed.
    pub frames_per_sec: u64,
    /// The same in Mbit/s of frames (without preamble and gap).
    pub mbit_per_sec: f64,
    /// Percent of the generator's own ceiling at this size.
    pub percent_of_generator: f64,
    /// The generator's ceiling at this size (frames/s, source straight to sink).
    pub generator_ceiling: u64,
    /// Trials run (search plus confirmation).
    pub trials: u32,
    /// True if the confirming trial passed (zero loss).
    pub confirmed: bool,
    /// True if the result is at (95 % of) the generator's own ceiling: the generator, not
    /// the routers, was the limit.
    pub generator_bound: bool,
}

/// The whole result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Seconds per trial.
    pub trial_secs: f64,
    /// Points, by router count then frame size.
    pub points: Vec<Point>,
}

impl Report {
    /// The table: one row per (routers, size).
    pub fn table(&self) -> String {
        let mut t = format!(
            "RFC 2544 throughput (zero loss, {} s trials)\n{:>7} {:>6} {:>9} {:>12} {:>9} {:>7} {:>7}  notes\n",
            self.trial_secs, "routers", "size", "dataplane", "frames/s", "Mbit/s", "% gen", "trials"
        );
        for p in &self.points {
            t.push_str(&format!(
                "{:>7} {:>6} {:>9} {:>12} {:>9.1} {:>7.1} {:>7}  {}{}\n",
                p.routers,
                p.frame_size,
                p.dataplane,
                p.frames_per_sec,
                p.mbit_per_sec,
                p.percent_of_generator,
                p.trials,
                if p.confirmed { "" } else { "unconfirmed " },
                if p.generator_bound {
                    "generator-bound"
                } else {
                    ""
                }
            ));
        }
        t
    }
}

/// rx (sink) or tx packets of an interface in a namespace.
fn counter(ns: &str, ifname: &str, dir: &str) -> anyhow::Result<u64> {
    let out = sys::ip_ns(ns, &["-s", "-j", "link", "show", "dev", ifname])?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    v[0]["stats64"][dir]["packets"]
        .as_u64()
        .with_context(|| format!("no {dir} counter for {ns}:{ifname}"))
}

/// One trial: (offered datagrams, received frames, generator reached the rate).
fn trial(
    ctx: &Ctx,
    lab: &str,
    payload: usize,
    rate: u64,
    secs: f64,
) -> anyhow::Result<(u64, u64, GenReport)> {
    let sink = spec::netns_name(lab, "sink");
    let src = spec::netns_name(lab, "src");
    let before = counter(&sink, "eth0", "rx")?;
    // This very binary is the generator (a release oxr-lab with routers from elsewhere).
    let me = std::env::current_exe().unwrap_or_else(|_| ctx.bin("oxr-lab"));
    let out = Command::new("ip")
        .args(["netns", "exec", &src])
        .arg(me)
        .args(["gen", "--dst", &format!("{TARGET}:9")])
        .args([
            "--payload",
            &payload.to_string(),
            "--rate",
            &rate.to_string(),
        ])
        .args(["--secs", &secs.to_string()])
        .stdin(Stdio::null())
        .output()
        .context("running the generator")?;
    if !out.status.success() {
        bail!("generator: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let g: GenReport = serde_json::from_slice(&out.stdout).context("generator output")?;
    // Frames still in flight through the chain.
    std::thread::sleep(Duration::from_millis(100));
    let after = counter(&sink, "eth0", "rx")?;
    Ok((g.sent, after.saturating_sub(before), g))
}

/// A lab of `routers` routers, up and converged, with the permanent neighbor for TARGET.
fn lab_up(ctx: &Ctx, name: &str, routers: usize) -> anyhow::Result<()> {
    let lab = spec::parse(&chain_lab(name, routers), Path::new("."), None)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    ops::up(ctx, &lab, Some(Duration::from_secs(30)))?;
    let sink = spec::netns_name(name, "sink");
    let mac_json = sys::ip_ns(&sink, &["-j", "link", "show", "dev", "eth0"])?;
    let v: serde_json::Value = serde_json::from_str(&mac_json)?;
    let mac = v[0]["address"].as_str().context("sink MAC")?.to_string();
    let (last, dev) = if routers == 0 {
        ("src".to_string(), "eth0")
    } else {
        (format!("r{routers}"), "eth1")
    };
    let ns = spec::netns_name(name, &last);
    sys::ip_ns(
        &ns,
        &[
            "neigh",
            "replace",
            TARGET,
            "lladdr",
            &mac,
            "dev",
            dev,
            "nud",
            "permanent",
        ],
    )?;
    if routers == 0 {
        sys::ip_ns(&ns, &["route", "replace", "default", "dev", "eth0"])?;
    }
    Ok(())
}

/// Runs the experiment; every lab it makes is removed again, also on error.
pub fn run(ctx: &Ctx, opts: &Options) -> anyhow::Result<Report> {
    let base = format!("rfc2544-{}", std::process::id());
    // The generator's ceiling per size: no router, unpaced.
    let ceilings = {
        let name = format!("{base}-gen");
        let r = lab_up(ctx, &name, 0).and_then(|_| {
            opts.sizes
                .iter()
                .map(|&size| {
                    let payload = size.saturating_sub(FRAME_OVERHEAD);
                    let (sent, _, g) = trial(ctx, &name, payload, 0, opts.trial_secs)?;
                    Ok((sent as f64 / g.secs.max(1e-3)) as u64)
                })
                .collect::<anyhow::Result<Vec<u64>>>()
        });
        let _ = ops::down(ctx, &name);
        let c = r?;
        println!("generator ceiling (frames/s, no router): {c:?}");
        c
    };
    let mut points = Vec::new();
    for &n in &opts.routers {
        let name = format!("{base}-{n}");
        let r = lab_up(ctx, &name, n).and_then(|_| {
            let mut pts = Vec::new();
            for (i, &size) in opts.sizes.iter().enumerate() {
                pts.push(search_point(ctx, &name, n, size, ceilings[i], opts)?);
            }
            Ok(pts)
        });
        let _ = ops::down(ctx, &name);
        points.extend(r?);
    }
    Ok(Report {
        trial_secs: opts.trial_secs,
        points,
    })
}

fn search_point(
    ctx: &Ctx,
    lab: &str,
    routers: usize,
    size: usize,
    ceiling: u64,
    opts: &Options,
) -> anyhow::Result<Point> {
    let payload = size.saturating_sub(FRAME_OVERHEAD);
    let top = if opts.max_rate > 0 {
        ceiling.min(opts.max_rate)
    } else {
        ceiling
    };
    let mut s = Search::new(top, opts.resolution, opts.max_trials);
    let mut trials = 0;
    while let Some(rate) = s.next_rate() {
        let (sent, received, g) = trial(ctx, lab, payload, rate, opts.trial_secs)?;
        trials += 1;
        let lossless = received >= sent && g.errors == 0;
        // On veth the sender's core also carries the frames through every router (a veth
        // delivers inside the sender's softirq), so a chain that cannot keep up slows the
        // generator down instead of dropping: falling short of the offered rate is a
        // failed trial too.
        let reached = sent as f64 >= REACHED * rate as f64 * g.secs;
        let pass = lossless && reached;
        println!(
            "  routers {routers} size {size}: {rate} frames/s offered, sent {sent} ({:.0}/s), received {received}{}",
            sent as f64 / g.secs.max(1e-3),
            match (lossless, reached) {
                (true, true) => " (pass)",
                (false, _) => " (loss)",
                (true, false) => " (generator slowed: rate not reached)",
            }
        );
        s.record(rate, pass);
    }
    // At the generator's own ceiling the generator, not the router, is the limit.
    let generator_bound = ceiling > 0 && s.lo as f64 >= 0.95 * ceiling as f64;
    // The confirming trial at the rate found.
    let mut confirmed = s.lo == 0;
    if s.lo > 0 {
        let (sent, received, g) = trial(ctx, lab, payload, s.lo, opts.trial_secs)?;
        trials += 1;
        confirmed =
            received >= sent && g.errors == 0 && sent as f64 >= REACHED * s.lo as f64 * g.secs;
    }
    Ok(Point {
        routers,
        frame_size: size,
        dataplane: "kernel".into(),
        frames_per_sec: s.lo,
        mbit_per_sec: s.lo as f64 * size as f64 * 8.0 / 1e6,
        percent_of_generator: if ceiling > 0 {
            100.0 * s.lo as f64 / ceiling as f64
        } else {
            0.0
        },
        generator_ceiling: ceiling,
        trials,
        confirmed,
        generator_bound,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_search(ceiling: u64, capacity: u64) -> Search {
        let mut s = Search::new(ceiling, 0.01, 30);
        while let Some(r) = s.next_rate() {
            s.record(r, r <= capacity);
        }
        s
    }

    #[test]
    fn search_converges_on_the_capacity() {
        let s = run_search(1_000_000, 312_345);
        assert!(s.lo <= 312_345 && s.hi > 312_345, "{s:?}");
        assert!((s.hi - s.lo) as f64 <= 0.01 * s.hi as f64);
        // The ceiling passing ends the search at once.
        let s = run_search(1000, 5000);
        assert_eq!((s.lo, s.budget), (1000, 29));
        // Nothing passes: zero.
        assert_eq!(run_search(1000, 0).lo, 0);
    }

    #[test]
    fn search_stops_when_the_budget_is_spent() {
        let mut s = Search::new(1 << 40, 0.0, 3);
        let mut n = 0;
        while let Some(r) = s.next_rate() {
            s.record(r, false);
            n += 1;
        }
        assert_eq!(n, 3);
    }

    #[test]
    fn chain_labs_are_valid_for_any_length() {
        for n in [0, 1, 2, 4, 8] {
            let lab = spec::parse(&chain_lab("x", n), Path::new("."), None)
                .unwrap_or_else(|e| panic!("{n}: {e:?}"));
            assert_eq!(lab.nodes.len(), n + 2);
            assert_eq!(lab.links.len(), n + 1);
        }
    }

    #[test]
    fn the_generator_sends_about_the_rate_asked() {
        let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
        let g = generate(sink.local_addr().unwrap(), 18, 2000, 0.2, 32).unwrap();
        assert!(
            g.sent + g.errors >= 300 && g.sent + g.errors <= 440,
            "{g:?}"
        );
    }
}
