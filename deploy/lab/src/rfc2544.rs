//! RFC 2544 throughput (section 26.1): a source host, a chain of N oxr routers
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
//! Two generator modes ([`Generator`]): `socket` (this binary's `gen`, run in the source
//! namespace: batched `sendmmsg` on a connected UDP socket, paced per batch; received =
//! the sink veth's rx counter) and `xdp` (`xdpgen`: live XDP frames injected with
//! `BPF_PROG_RUN`, see [`crate::bpf`]; received = an XDP counter on the sink), so that the
//! veth medium (skb allocation, the socket layer) is not what is measured.
//!
//! Cores ([`crate::tune`]): every receiving veth gets threaded NAPI; the routers' NAPI
//! threads are pinned to `router_cpu`, the generator and the sink's NAPI thread to
//! `gen_cpu`. The routers' CPU time per forwarded frame (their NAPI threads plus their
//! processes, from /proc/PID/schedstat) is reported beside frames/s, with how busy their
//! core was. The generator's own ceiling is measured first with no router (source straight
//! to sink) and every result is also given as a percent of it; a point at (95 % of) the
//! ceiling, or whose failed trials all failed by the generator falling short of the offered
//! rate, is flagged `generator-bound`; one where the routers had spare CPU (less than
//! [`SPARE`] of their core) is flagged `router core spare`: the frames were lost elsewhere
//! than in the routers' CPU, e.g. at a full veth ring at a router's ingress when its NAPI
//! thread ran late (the lossy trials print the `ethtool -S` counters that say where).
//!
//! Dataplanes: `kernel` (oxr-fea programs the kernel FIB), `xdp` and `afxdp` (`fea.dataplane
//! = "fastpath"` with that engine); a dataplane this build cannot run is reported
//! `unavailable` with the reason, the others are still measured.

use std::collections::BTreeMap;
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
use crate::tune;

/// Ethernet header + FCS + IPv4 + UDP: frame size minus this is the UDP payload.
pub const FRAME_OVERHEAD: usize = 14 + 4 + 20 + 8;

/// A trial counts only if the generator sent at least this fraction of the offered frames.
pub const REACHED: f64 = 0.97;

/// Routers using less of their core than this (percent) at the zero-loss rate were not the
/// bottleneck.
pub const SPARE: f64 = 85.0;

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

/// The `fea` table of a router for a dataplane: nothing for `kernel`; `xdp` and `afxdp`
/// select the fast path with that engine on both of the router's links.
pub fn fea_config(dataplane: &str) -> String {
    fea_config_with(dataplane, 0)
}

/// [`fea_config`] with AF_XDP busy polling (`fea.fastpath.busy-poll-usecs`, the `afxdp`
/// engine only; 0 = off).
pub fn fea_config_with(dataplane: &str, busy_poll_us: u32) -> String {
    match dataplane {
        "kernel" => String::new(),
        engine => {
            let bp = if engine == "afxdp" && busy_poll_us > 0 {
                format!(", busy-poll-usecs = {busy_poll_us}")
            } else {
                String::new()
            };
            format!(
                "fea = {{ dataplane = \"fastpath\", fastpath = {{ engine = \"{engine}\", interfaces = [\"eth0\", \"eth1\"]{bp} }} }}\n"
            )
        }
    }
}

/// The lab file text for `routers` routers between src and sink, with `dataplane`.
pub fn chain_lab(name: &str, routers: usize, dataplane: &str) -> String {
    chain_lab_with(name, routers, dataplane, 0)
}

/// [`chain_lab`] with the afxdp engine's busy polling (see [`fea_config_with`]).
pub fn chain_lab_with(name: &str, routers: usize, dataplane: &str, busy_poll_us: u32) -> String {
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
            "[router.r{i}.config]\nrib = {{ startup-hold-secs = 5 }}\n{}",
            fea_config_with(dataplane, busy_poll_us)
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
    /// XDP generator: `BPF_PROG_RUN` calls made.
    #[serde(default)]
    pub calls: u64,
    /// XDP generator: frames due that it could not send in time (its token bucket
    /// overflowed); the trial then falls short of the offered rate.
    #[serde(default)]
    pub missed: u64,
    /// XDP generator: the most frames one call injected (its largest burst).
    #[serde(default)]
    pub max_batch: u64,
    /// XDP generator: calls refused (`ENOSPC`: no memory-model id left for the call's page
    /// pool; `ENOMEM`), each followed by a 2 ms back-off.
    #[serde(default)]
    pub backoffs: u64,
}

/// The generator: `rate` datagrams/s (0 = as fast as possible) of `payload` bytes to `dst`
/// for `secs`, in `sendmmsg` batches of `batch`, pinned to `cpu` if given.
pub fn generate(
    dst: SocketAddr,
    payload: usize,
    rate: u64,
    secs: f64,
    batch: usize,
    cpu: Option<usize>,
) -> anyhow::Result<GenReport> {
    use nix::sys::socket::{sendmmsg, setsockopt, sockopt, MsgFlags, MultiHeaders, SockaddrIn};
    use std::io::IoSlice;
    if let Some(c) = cpu {
        tune::pin(0, c)?;
    }
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
        ..GenReport::default()
    })
}

/// How the XDP-native generator injects frames: at most `burst` frames per `BPF_PROG_RUN`
/// call (back to back into the next veth's 256-frame ring), and while paced, batches of
/// (rate x `tick`) frames, so that it makes at most 1/`tick` calls per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct XdpGenOptions {
    /// Most frames per call (and the token bucket's depth is 1.5 times this).
    pub burst: u64,
    /// Pacing tick (seconds).
    pub tick: f64,
    /// Keep the generator program in the kernel's XDP dispatcher for the whole run by
    /// attaching it to an idle veth pair of the source namespace (see [`crate::bpf::run_live`]);
    /// without, every call waits ~25 ms for an RCU grace period.
    pub keep_in_dispatcher: bool,
    /// Waits for the next batch shorter than this (seconds) are busy-waited on the
    /// generator's core instead of slept: a sleep of tens of microseconds overshoots by
    /// about as much again, which bunches the batches.
    pub spin: f64,
}

impl Default for XdpGenOptions {
    fn default() -> Self {
        XdpGenOptions {
            burst: XDP_BURST,
            tick: XDP_TICK,
            keep_in_dispatcher: true,
            spin: XDP_SPIN,
        }
    }
}

/// Most frames one XDP generator call injects back to back (half a veth ring).
///
/// Fewer, larger calls: each call creates a page pool, and one whose frames are still in
/// flight when the call returns (always, through a router) is released by a kworker on the
/// generator's core ~1 s later, walking every memory-model id still registered
/// (`mem_allocator_disconnect`): the cost per call grows with the calls per second. At
/// 64 frames and a 100 us tick that kworker took a third of the generator's core and the
/// generator reached ~350 kframes/s through an xdp router; at 128 and 250 us, 820k.
pub const XDP_BURST: u64 = 128;
/// The XDP generator's pacing tick (seconds): at most 4 000 calls/s below 512 kframes/s
/// (see [`XDP_BURST`]; the 65 534 memory-model ids are far away).
pub const XDP_TICK: f64 = 250e-6;
/// The sink veth's `napi_defer_hard_irqs` by default: its NAPI stays armed on a timer while
/// frames flow, so the last router's transmit does not wake the sink's thread on the other
/// core (see [`Options::sink_napi_defer`]). 200 polls (10 ms at 50 us) without a frame
/// before it rests: with 2, the sink's polls between two bursts of the router found
/// nothing, it rested, and the router paid the wake-up again (18 % of an xdp router's
/// core in `__napi_schedule` at 600 kframes/s; gone at 200).
pub const SINK_NAPI_DEFER: u32 = 200;
/// The sink veth's `gro_flush_timeout` by default (us): the sink polls its 256-frame ring at
/// least this often while frames flow (50 us: ~50 frames at 1 Mframes/s).
pub const SINK_GRO_FLUSH_US: u32 = 50;
/// Waits shorter than this are busy-waited by the XDP generator (seconds).
pub const XDP_SPIN: f64 = 0.0;

/// A token bucket on a monotonic clock (seconds since the start), as a pure state machine:
/// `rate` tokens a second, at most `depth` banked; frames are sent in batches of at least
/// `min_batch` (unless the bucket is full) and at most `burst`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pacer {
    rate: f64,
    depth: f64,
    min_batch: f64,
    burst: u64,
    tokens: f64,
    last: f64,
    /// Tokens thrown away because the bucket was full: the generator fell behind (it was not
    /// scheduled, or its calls are slower than the rate).
    pub missed: f64,
}

impl Pacer {
    /// A pacer for `rate` frames/s (0: as fast as possible, `burst` per call).
    pub fn new(rate: u64, burst: u64, tick: f64) -> Pacer {
        let burst = burst.max(1);
        Pacer {
            rate: rate as f64,
            // One and a half bursts: after a stall of the generator, at most that many
            // frames go out back to back (192 of a 256-frame ring at the default burst).
            depth: 1.5 * burst as f64,
            min_batch: (rate as f64 * tick).clamp(1.0, burst as f64),
            burst,
            tokens: 0.0,
            last: 0.0,
            missed: 0.0,
        }
    }

    /// At time `t`: `Ok(n)`, send n frames now (and call [`Pacer::spent`]), or `Err(wait)`,
    /// nothing is due for `wait` seconds.
    pub fn poll(&mut self, t: f64) -> Result<u64, f64> {
        if self.rate <= 0.0 {
            return Ok(self.burst);
        }
        let dt = (t - self.last).max(0.0);
        self.last = self.last.max(t);
        self.tokens += dt * self.rate;
        if self.tokens > self.depth {
            self.missed += self.tokens - self.depth;
            self.tokens = self.depth;
        }
        // A little slack against rounding: a wait shorter than the clock's resolution would
        // never let the bucket fill.
        if self.tokens + 1e-6 >= self.min_batch {
            Ok(((self.tokens + 1e-6) as u64).clamp(1, self.burst))
        } else {
            Err(((self.min_batch - self.tokens) / self.rate).max(1e-7))
        }
    }

    /// Most frames banked (sent back to back after a stall).
    pub fn depth(&self) -> f64 {
        self.depth
    }

    /// `n` frames were sent.
    pub fn spent(&mut self, n: u64) {
        self.tokens -= n as f64;
    }
}

/// The idle veth pair the generator program stays attached to (removed on drop).
struct DispatcherKeep {
    _link: std::os::fd::OwnedFd,
    dev: &'static str,
}

impl DispatcherKeep {
    const DEV: &'static str = "oxrgenkeep0";

    fn new(prog: &std::os::fd::OwnedFd) -> anyhow::Result<DispatcherKeep> {
        let ip = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .status()
        };
        let _ = ip(&["link", "del", Self::DEV]);
        let st = ip(&[
            "link",
            "add",
            Self::DEV,
            "type",
            "veth",
            "peer",
            "name",
            "oxrgenkeep1",
        ])
        .context("running ip")?;
        if !st.success() {
            bail!("could not create the veth {}", Self::DEV);
        }
        let ifindex: u32 =
            std::fs::read_to_string(format!("/sys/class/net/{}/ifindex", Self::DEV))?
                .trim()
                .parse()?;
        let link = crate::bpf::attach_xdp(prog, ifindex);
        let keep = link.map(|l| DispatcherKeep {
            _link: l,
            dev: Self::DEV,
        });
        if keep.is_err() {
            let _ = ip(&["link", "del", Self::DEV]);
        }
        keep.context("attaching the generator program to its idle veth")
    }
}

impl Drop for DispatcherKeep {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", self.dev])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Fails, before any lab is built, where the kernel refuses the XDP-native generator's
/// live frames.
pub fn check_live_frames() -> anyhow::Result<()> {
    if crate::bpf::live_frames_refused().context("probing BPF_PROG_RUN with live frames")? {
        anyhow::bail!("{LIVE_FRAMES_REFUSED}: use --generator socket");
    }
    Ok(())
}

/// What the error says where the kernel refuses live frames (its test checks for it).
pub const LIVE_FRAMES_REFUSED: &str =
    "this kernel refuses BPF_PROG_RUN with live frames (EPERM for root too), which the XDP-native generator needs";

/// The XDP-native generator: live frames of `size` bytes to `dst_mac` out of `ifname`
/// (see [`crate::bpf`]), `rate` frames/s (0 = as fast as possible) for `secs`, pinned to
/// `cpu` if given. Frames go to [`TARGET`] from the source's address.
///
/// One thread, paced by a [`Pacer`]: each `BPF_PROG_RUN` call injects one small batch (at
/// most `o.burst` frames, in one kernel batch), so the next veth's ring sees at most that
/// many frames at once, never the bursts of several threads.
pub fn xdp_generate(
    ifname: &str,
    dst_mac: &str,
    size: usize,
    rate: u64,
    secs: f64,
    cpu: Option<usize>,
    o: &XdpGenOptions,
) -> anyhow::Result<GenReport> {
    use crate::bpf;
    if let Some(c) = cpu {
        tune::pin(0, c)?;
    }
    // Sleeps of tens of microseconds: the default 50 us timer slack would double them.
    let _ = nix::sys::prctl::set_timerslack(1000);
    let dst = bpf::parse_mac(dst_mac).with_context(|| format!("bad MAC {dst_mac}"))?;
    let sys_net = Path::new("/sys/class/net").join(ifname);
    let src_mac = std::fs::read_to_string(sys_net.join("address"))
        .ok()
        .and_then(|m| bpf::parse_mac(m.trim()))
        .with_context(|| format!("MAC of {ifname}"))?;
    let ifindex: u32 = std::fs::read_to_string(sys_net.join("ifindex"))?
        .trim()
        .parse()?;
    let frame = bpf::udp_frame(dst, src_mac, "10.1.0.2".parse()?, TARGET.parse()?, size);
    let prog = bpf::load_xdp(&bpf::tx_program())?;
    let _keep = if o.keep_in_dispatcher {
        Some(DispatcherKeep::new(&prog)?)
    } else {
        None
    };
    let mut pacer = Pacer::new(rate, o.burst, o.tick);
    let (mut sent, mut calls, mut max_batch, mut backoffs) = (0u64, 0u64, 0u64, 0u64);
    let start = Instant::now();
    loop {
        let t = start.elapsed().as_secs_f64();
        if t >= secs {
            break;
        }
        match pacer.poll(t) {
            Ok(n) => {
                match bpf::run_live(&prog, &frame, ifindex, n as u32, n as u32) {
                    Ok(_) => {
                        pacer.spent(n);
                        sent += n;
                        calls += 1;
                        max_batch = max_batch.max(n);
                    }
                    // Every call registers a page pool under a memory-model id (at most
                    // 65 534), and a pool whose frames were still in flight when the call
                    // ended is freed only ~1 s later: at tens of thousands of calls a second
                    // the ids run out for a moment. Back off; what falls due meanwhile is
                    // missed (the trial then falls short of its rate). The same for a
                    // page pool the kernel could not allocate just then (ENOMEM).
                    Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::ENOMEM)) => {
                        backoffs += 1;
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    Err(e) => return Err(e).context("BPF_PROG_RUN with live frames"),
                }
            }
            Err(wait) if wait < o.spin => {
                let until = t + wait;
                while start.elapsed().as_secs_f64() < until {
                    std::hint::spin_loop();
                }
            }
            Err(wait) => std::thread::sleep(Duration::from_secs_f64(wait.min(secs - t))),
        }
    }
    Ok(GenReport {
        sent,
        errors: 0,
        secs: start.elapsed().as_secs_f64(),
        calls,
        missed: pacer.missed as u64,
        max_batch,
        backoffs,
    })
}

/// The XDP sink: counts and drops every frame arriving on `ifname`; prints the count for
/// every line read on stdin, detaches at EOF.
pub fn xdp_sink(ifname: &str) -> anyhow::Result<()> {
    use crate::bpf;
    use std::io::{BufRead, Write};
    let ifindex: u32 =
        std::fs::read_to_string(Path::new("/sys/class/net").join(ifname).join("ifindex"))
            .with_context(|| format!("no interface {ifname}"))?
            .trim()
            .parse()?;
    let map = bpf::percpu_counter().context("creating the counter map")?;
    let prog = bpf::load_xdp(&bpf::count_program(std::os::fd::AsRawFd::as_raw_fd(&map)))?;
    let _link = bpf::attach_xdp(&prog, ifindex).context("attaching the XDP sink")?;
    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        line?;
        let mut o = stdout.lock();
        writeln!(o, "{}", bpf::read_counter(&map)?)?;
        o.flush()?;
    }
    Ok(())
}

/// Options of one experiment.
#[derive(Debug, Clone)]
pub struct Options {
    /// Router counts to measure.
    pub routers: Vec<usize>,
    /// Frame sizes (bytes, Ethernet with FCS).
    pub sizes: Vec<usize>,
    /// Dataplanes: `kernel`, `xdp`, `afxdp` (the last two: oxr-fastpath engines).
    pub dataplanes: Vec<String>,
    /// Seconds per trial.
    pub trial_secs: f64,
    /// Cap on offered rate (frames/s); 0 = the generator's ceiling.
    pub max_rate: u64,
    /// Search resolution (fraction of the upper bound).
    pub resolution: f64,
    /// Most trials per search (plus one confirming trial).
    pub max_trials: u32,
    /// Threaded NAPI on the receiving veths, routers' NAPI threads pinned to `router_cpu`.
    pub napi: bool,
    /// The generator's core (the sink's NAPI thread runs there too).
    pub gen_cpu: usize,
    /// The routers' core.
    pub router_cpu: usize,
    /// How frames are made and counted.
    pub generator: Generator,
    /// SCHED_FIFO priority for the routers' and the sink's NAPI threads and the generator
    /// (None: normal scheduling).
    pub rt: Option<u8>,
    /// The XDP-native generator's batching and pacing.
    pub xdp_gen: XdpGenOptions,
    /// `napi_defer_hard_irqs` on the routers' ingress veths (0: the kernel's default).
    pub napi_defer: u32,
    /// `gro_flush_timeout` (us) on the routers' ingress veths (0: the kernel's default).
    pub gro_flush_us: u32,
    /// AF_XDP busy polling for the afxdp engine (`fea.fastpath.busy-poll-usecs`; 0 = off).
    pub busy_poll_us: u32,
    /// `napi_defer_hard_irqs` and `gro_flush_timeout` (us) on the sink's veth (0, 0: the
    /// kernel's defaults). While its NAPI stays deferred, the last router's transmit does
    /// not wake the sink's NAPI thread on the other core (a cross-core wake-up per flush,
    /// charged to the router, that no NIC would cost it).
    pub sink_napi_defer: u32,
    /// See [`Options::sink_napi_defer`].
    pub sink_gro_flush_us: u32,
    /// Fraction of the frames a trial may lose and still pass (0: RFC 2544's zero loss).
    /// Above 0 the search finds a partial drop rate (FD.io CSIT's PDR, e.g. 0.005), not
    /// the RFC 2544 throughput: the routers' capacity where sporadic ring overflows (a
    /// router thread held off its core for a millisecond) would stop a zero-loss search.
    pub loss_tolerance: f64,
}

/// Whether `received` of `sent` frames is within `tolerance` (a fraction) of no loss.
pub fn within_loss(sent: u64, received: u64, tolerance: f64) -> bool {
    received >= sent || (sent - received) as f64 <= tolerance * sent as f64
}

/// The traffic generator's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Generator {
    /// UDP in `sendmmsg` batches; received frames counted by the sink veth's rx counter.
    Socket,
    /// Live XDP frames (`BPF_PROG_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES`, `XDP_TX` out of
    /// the source veth); received frames counted by an XDP program on the sink.
    Xdp,
}

/// One measured point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    /// Virtual routers in the chain.
    pub routers: usize,
    /// Frame size (bytes).
    pub frame_size: usize,
    /// Dataplane (`kernel`, `xdp`, `afxdp`).
    pub dataplane: String,
    /// None when measured; why not otherwise (`unavailable: ...`).
    pub unavailable: Option<String>,
    /// Highest zero-loss rate found (frames/s).
    pub frames_per_sec: u64,
    /// The same in Mbit/s of frames (without preamble and gap).
    pub mbit_per_sec: f64,
    /// Percent of the generator's own ceiling at this size.
    pub percent_of_generator: f64,
    /// The generator's ceiling at this size (frames/s, source straight to sink).
    pub generator_ceiling: u64,
    /// CPU time of the routers (their NAPI threads and processes) per forwarded frame, whole
    /// chain, during the confirming trial (ns).
    pub router_ns_per_packet: Option<f64>,
    /// The part of it spent in the routers' NAPI threads (forwarding proper).
    pub napi_ns_per_packet: Option<f64>,
    /// The same divided by the number of routers.
    pub ns_per_hop: Option<f64>,
    /// How busy the routers' core was during the confirming trial (percent, all tasks,
    /// including other work on a shared machine).
    pub router_core_busy_percent: Option<f64>,
    /// How much of one core the routers themselves used at the rate found (percent:
    /// ns/packet x frames/s). Well below 100 means the routers had time to spare: the
    /// generator's side was the limit.
    pub router_core_share_percent: Option<f64>,
    /// Trials run (search plus confirmation).
    pub trials: u32,
    /// Failed trials that lost frames.
    pub failed_with_loss: u32,
    /// Failed trials where the generator fell short of the offered rate without loss.
    pub failed_generator_slow: u32,
    /// True if the confirming trial passed (zero loss).
    pub confirmed: bool,
    /// True if the generator, not the routers, was the limit: the result is at (95 % of)
    /// the generator's ceiling, or every failed trial failed by the generator falling short.
    pub generator_bound: bool,
    /// True if (with threaded NAPI, so the routers have a core of their own) the routers
    /// used less than [`SPARE`] of their core at the rate found, below the generator's
    /// ceiling: the loss that stopped the search was not the routers' CPU.
    pub router_core_spare: bool,
    /// XDP generator, confirming trial: mean frames per `BPF_PROG_RUN` call (each call's
    /// frames reach the first router's ring back to back) and the largest call.
    pub gen_frames_per_call: Option<f64>,
    /// The largest call of the confirming trial.
    pub gen_max_batch: Option<u64>,
}

/// The whole result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Seconds per trial.
    pub trial_secs: f64,
    /// Threaded NAPI with routers on their own core.
    pub napi: bool,
    /// The generator's core.
    pub gen_cpu: usize,
    /// The routers' core.
    pub router_cpu: usize,
    /// The generator's mode.
    pub generator: Generator,
    /// SCHED_FIFO priority of the NAPI threads and the generator, if any.
    pub rt: Option<u8>,
    /// The generator's ceiling per frame size: (size, frames/s).
    pub generator_ceiling: Vec<(usize, u64)>,
    /// XDP generator: most frames per call, pacing tick (us), busy-wait below (us).
    pub xdp_gen_burst: u64,
    /// XDP generator pacing tick (us).
    pub xdp_gen_tick_us: f64,
    /// XDP generator: waits shorter than this are busy-waited (us).
    pub xdp_gen_spin_us: f64,
    /// Router ingress tuning: `napi_defer_hard_irqs`, `gro_flush_timeout` (us); afxdp busy
    /// polling (us).
    pub napi_defer: u32,
    /// `gro_flush_timeout` (us) on the routers' ingress.
    pub gro_flush_us: u32,
    /// afxdp busy polling (us).
    pub busy_poll_us: u32,
    /// The sink veth's `napi_defer_hard_irqs`.
    pub sink_napi_defer: u32,
    /// The sink veth's `gro_flush_timeout` (us).
    pub sink_gro_flush_us: u32,
    /// Loss a trial may have and pass (fraction; 0 = RFC 2544 zero loss).
    #[serde(default)]
    pub loss_tolerance: f64,
    /// Points, by dataplane, router count, frame size.
    pub points: Vec<Point>,
}

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.prec$}"))
}

impl Report {
    /// The table: one row per (dataplane, routers, size).
    pub fn table(&self) -> String {
        let mut t = format!(
            "RFC 2544 throughput ({}, {} s trials; {:?} generator; {}{})\n",
            if self.loss_tolerance > 0.0 {
                format!(
                    "loss up to {}% per trial: a partial drop rate, not zero loss",
                    self.loss_tolerance * 100.0
                )
            } else {
                "zero loss".into()
            },
            self.trial_secs,
            self.generator,
            self.rt
                .map(|p| format!("SCHED_FIFO {p}; "))
                .unwrap_or_default(),
            if self.napi {
                format!(
                    "threaded NAPI, generator on cpu{}, routers on cpu{}",
                    self.gen_cpu, self.router_cpu
                )
            } else {
                "veth in the sender's softirq, no pinning".into()
            }
        );
        let ceil: Vec<String> = self
            .generator_ceiling
            .iter()
            .map(|(s, f)| format!("{s} B: {f}"))
            .collect();
        t.push_str(&format!(
            "generator ceiling (frames/s, no router): {}\n",
            ceil.join(", ")
        ));
        if self.generator == Generator::Xdp {
            t.push_str(&format!(
                "XDP generator: at most {} frames per call, batches of rate x {:.0} us, waits under {:.0} us busy-waited\n",
                self.xdp_gen_burst, self.xdp_gen_tick_us, self.xdp_gen_spin_us
            ));
        }
        if self.napi_defer > 0
            || self.gro_flush_us > 0
            || self.busy_poll_us > 0
            || self.sink_napi_defer > 0
            || self.sink_gro_flush_us > 0
        {
            t.push_str(&format!(
                "napi_defer_hard_irqs / gro_flush_timeout: routers' ingress {} / {} us, sink {} / {} us; afxdp busy polling {} us\n",
                self.napi_defer,
                self.gro_flush_us,
                self.sink_napi_defer,
                self.sink_gro_flush_us,
                self.busy_poll_us
            ));
        }
        t.push_str(&format!(
            "{:>7} {:>6} {:>9} {:>10} {:>9} {:>6} {:>8} {:>8} {:>7} {:>6} {:>6} {:>5}  notes\n",
            "routers",
            "size",
            "dataplane",
            "frames/s",
            "Mbit/s",
            "% gen",
            "ns/pkt",
            "napi ns",
            "ns/hop",
            "rtr%",
            "trials",
            "f/call"
        ));
        let mut unavailable: Vec<(&str, &str)> = Vec::new();
        for p in &self.points {
            if let Some(why) = &p.unavailable {
                if !unavailable.contains(&(p.dataplane.as_str(), why.as_str())) {
                    unavailable.push((p.dataplane.as_str(), why.as_str()));
                }
                continue;
            }
            let mut notes = Vec::new();
            if !p.confirmed {
                notes.push("unconfirmed");
            }
            if p.generator_bound {
                notes.push("generator-bound");
            }
            if p.router_core_spare {
                notes.push("router core spare");
            }
            t.push_str(&format!(
                "{:>7} {:>6} {:>9} {:>10} {:>9.1} {:>6.1} {:>8} {:>8} {:>7} {:>6} {:>6} {:>5}  {}\n",
                p.routers,
                p.frame_size,
                p.dataplane,
                p.frames_per_sec,
                p.mbit_per_sec,
                p.percent_of_generator,
                opt(p.router_ns_per_packet, 0),
                opt(p.napi_ns_per_packet, 0),
                opt(p.ns_per_hop, 0),
                opt(p.router_core_share_percent, 0),
                p.trials,
                opt(p.gen_frames_per_call, 0),
                notes.join(" ")
            ));
        }
        for (dp, why) in unavailable {
            t.push_str(&format!("{dp:>24}: {why}\n"));
        }
        t.push_str(
            "ns/pkt: the routers' CPU time (NAPI threads + processes) per forwarded frame, whole \
             chain; napi ns: its NAPI part; ns/hop: ns/pkt / routers; rtr%: share of one core \
             the routers used at that rate; f/call: XDP generator frames per call (a burst) at \
             that rate; router core spare: the routers used less than 85% \
             of their core, so the loss was not their CPU (see the ethtool counters above)\n",
        );
        t
    }

    /// The plot: throughput against frame size, one line per dataplane and router count,
    /// the generator's ceiling dashed.
    pub fn svg(&self) -> String {
        let mut series: Vec<crate::plot::Series> = Vec::new();
        for p in self.points.iter().filter(|p| p.unavailable.is_none()) {
            let label = format!(
                "{}, {} router{}",
                p.dataplane,
                p.routers,
                if p.routers == 1 { "" } else { "s" }
            );
            match series.iter_mut().find(|s| s.label == label) {
                Some(s) => s.points.push((p.frame_size, p.frames_per_sec as f64)),
                None => series.push(crate::plot::Series {
                    label,
                    points: vec![(p.frame_size, p.frames_per_sec as f64)],
                    dashed: false,
                }),
            }
        }
        series.push(crate::plot::Series {
            label: "generator ceiling".into(),
            points: self
                .generator_ceiling
                .iter()
                .map(|&(s, f)| (s, f as f64))
                .collect(),
            dashed: true,
        });
        crate::plot::svg(
            "RFC 2544 zero-loss throughput through oxr virtual routers",
            &series,
        )
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

/// What one lab of the experiment is: its name and what to measure the routers by.
struct Bench {
    lab: String,
    /// The routers' NAPI threads and processes (their CPU time is the routers').
    router_tasks: Vec<i32>,
    /// The routers' NAPI threads alone.
    napi_tasks: Vec<i32>,
    gen_cpu: Option<usize>,
    router_cpu: usize,
    rt: Option<u8>,
    /// XDP mode: the first hop's MAC (frames are addressed to it) and the sink counter.
    xdp: Option<(String, XdpSink)>,
    /// Every veth end of the chain (namespace, device): their drop counters say where a
    /// trial lost frames.
    veths: Vec<(String, String)>,
    /// The XDP generator's batching and pacing.
    xdp_gen: XdpGenOptions,
}

/// `ethtool -S DEV` in namespace `ns`: counter name -> value.
pub fn ethtool_stats(ns: &str, dev: &str) -> BTreeMap<String, u64> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "ethtool", "-S", dev])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    out.map(|o| parse_ethtool_stats(&String::from_utf8_lossy(&o.stdout)))
        .unwrap_or_default()
}

/// Parses `ethtool -S` output (`     name: value` lines).
pub fn parse_ethtool_stats(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// The counters that say a frame was lost (drops, errors, ring full) that grew between two
/// snapshots, as `name +delta`.
pub fn loss_counters(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> Vec<String> {
    after
        .iter()
        .filter(|(k, _)| k.contains("drop") || k.contains("err") || k.contains("full"))
        .filter_map(|(k, &v)| {
            let d = v.saturating_sub(before.get(k).copied().unwrap_or(0));
            (d > 0).then(|| format!("{k} +{d}"))
        })
        .collect()
}

/// `oxr-lab xdpsink` running in the sink's namespace: a line on its stdin asks for the
/// counter, which it prints; EOF detaches the program and ends it.
struct XdpSink {
    child: std::process::Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl XdpSink {
    fn start(ns: &str, ifname: &str) -> anyhow::Result<XdpSink> {
        let me = std::env::current_exe().context("own executable")?;
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(me)
            .args(["xdpsink", "--ifname", ifname])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting the XDP sink")?;
        let out = std::io::BufReader::new(child.stdout.take().context("sink stdout")?);
        let mut s = XdpSink { child, out };
        s.count().context("the XDP sink did not start")?;
        Ok(s)
    }

    fn count(&mut self) -> anyhow::Result<u64> {
        use std::io::{BufRead, Write};
        let stdin = self.child.stdin.as_mut().context("sink stdin")?;
        stdin.write_all(b"\n")?;
        stdin.flush()?;
        let mut line = String::new();
        self.out.read_line(&mut line)?;
        line.trim()
            .parse()
            .with_context(|| format!("XDP sink said {line:?}"))
    }
}

impl Drop for XdpSink {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// One trial's outcome.
struct Trial {
    sent: u64,
    received: u64,
    gen: GenReport,
    router_ns: u64,
    napi_ns: u64,
    core_busy: Option<f64>,
    /// How long the routers' NAPI threads were runnable but off their core (ns).
    napi_wait_ns: u64,
}

/// One trial at `rate` (0 = unpaced).
fn trial(ctx: &Ctx, b: &mut Bench, size: usize, rate: u64, secs: f64) -> anyhow::Result<Trial> {
    let payload = size.saturating_sub(FRAME_OVERHEAD);
    let sink = spec::netns_name(&b.lab, "sink");
    let src = spec::netns_name(&b.lab, "src");
    let received = |b: &mut Bench| match &mut b.xdp {
        Some((_, s)) => s.count(),
        None => counter(&sink, "eth0", "rx"),
    };
    let stats0: Vec<_> = b.veths.iter().map(|(n, d)| ethtool_stats(n, d)).collect();
    let before = received(b)?;
    let ns0 = tune::cpu_ns(&b.router_tasks);
    let napi0 = tune::cpu_ns(&b.napi_tasks);
    let wait0 = tune::wait_ns(&b.napi_tasks);
    let j0 = tune::cpu_jiffies(b.router_cpu);
    // This very binary is the generator (a release oxr-lab with routers from elsewhere).
    let me = std::env::current_exe().unwrap_or_else(|_| ctx.bin("oxr-lab"));
    // The XDP generator too: it no longer waits for RCU in its calls (its program stays in
    // the XDP dispatcher), and on a loaded machine it needs its core (measured at load 18:
    // 140 kframes/s SCHED_OTHER, 2.29 M SCHED_FIFO).
    let mut cmd = match b.rt {
        Some(p) => {
            let mut c = Command::new("chrt");
            c.args(["-f", &p.to_string(), "ip"]);
            c
        }
        None => Command::new("ip"),
    };
    cmd.args(["netns", "exec", &src]).arg(me);
    match &b.xdp {
        Some((mac, _)) => cmd
            .args(["xdpgen", "--ifname", "eth0", "--dst-mac", mac])
            .args(["--size", &size.to_string()])
            .args(["--burst", &b.xdp_gen.burst.to_string()])
            .args(["--tick-us", &(b.xdp_gen.tick * 1e6).to_string()])
            .args(["--spin-us", &(b.xdp_gen.spin * 1e6).to_string()]),
        None => cmd
            .args(["gen", "--dst", &format!("{TARGET}:9")])
            .args(["--payload", &payload.to_string()]),
    };
    cmd.args(["--rate", &rate.to_string()])
        .args(["--secs", &secs.to_string()]);
    if let Some(c) = b.gen_cpu {
        cmd.args(["--cpu", &c.to_string()]);
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .context("running the generator")?;
    if !out.status.success() {
        bail!("generator: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let g: GenReport = serde_json::from_slice(&out.stdout).context("generator output")?;
    // Frames still in flight through the chain.
    std::thread::sleep(Duration::from_millis(100));
    let after = received(b)?;
    if after.saturating_sub(before) < g.sent {
        // Where the frames went: the drop counters of every veth that grew (but the XDP
        // sink's own drops, which are how it counts).
        let last = b.veths.len().saturating_sub(1);
        for (i, ((n, d), s0)) in b.veths.iter().zip(&stats0).enumerate() {
            let mut grew = loss_counters(s0, &ethtool_stats(n, d));
            if i == last && b.xdp.is_some() {
                grew.retain(|c| !c.contains("xdp_drops"));
            }
            if !grew.is_empty() {
                println!("    lost at {n}:{d}: {}", grew.join(", "));
            }
        }
    }
    let napi_wait_ns = tune::wait_ns(&b.napi_tasks).saturating_sub(wait0);
    let router_ns = tune::cpu_ns(&b.router_tasks).saturating_sub(ns0);
    let napi_ns = tune::cpu_ns(&b.napi_tasks).saturating_sub(napi0);
    let core_busy = match (j0, tune::cpu_jiffies(b.router_cpu)) {
        (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
            Some(100.0 * (b1 - b0) as f64 / (t1 - t0) as f64)
        }
        _ => None,
    };
    Ok(Trial {
        sent: g.sent,
        received: after.saturating_sub(before),
        gen: g,
        router_ns,
        napi_ns,
        core_busy,
        napi_wait_ns,
    })
}

/// A lab of `routers` routers, up and converged, with the permanent neighbor for TARGET
/// and, with `opts.napi`, threaded NAPI on every receiving veth.
fn lab_up(
    ctx: &Ctx,
    name: &str,
    routers: usize,
    dataplane: &str,
    opts: &Options,
) -> anyhow::Result<Bench> {
    let lab = spec::parse(
        &chain_lab_with(name, routers, dataplane, opts.busy_poll_us),
        Path::new("."),
        None,
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "{}",
            e.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    ops::up(ctx, &lab, Some(Duration::from_secs(30)))?;
    let ns = |n: &str| spec::netns_name(name, n);
    let sink = ns("sink");
    let mac_json = sys::ip_ns(&sink, &["-j", "link", "show", "dev", "eth0"])?;
    let v: serde_json::Value = serde_json::from_str(&mac_json)?;
    let mac = v[0]["address"].as_str().context("sink MAC")?.to_string();
    let (last, dev) = if routers == 0 {
        ("src".to_string(), "eth0")
    } else {
        (format!("r{routers}"), "eth1")
    };
    let last_ns = ns(&last);
    sys::ip_ns(
        &last_ns,
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
        sys::ip_ns(&last_ns, &["route", "replace", "default", "dev", "eth0"])?;
    }
    // Every next hop resolved for good: no ARP in the measured path (a flood can starve the
    // softirq that would carry an ARP reply back, and the chain then drops at every rate).
    for i in 1..routers {
        let next = ns(&format!("r{}", i + 1));
        let j = sys::ip_ns(&next, &["-j", "link", "show", "dev", "eth0"])?;
        let v: serde_json::Value = serde_json::from_str(&j)?;
        let mac = v[0]["address"]
            .as_str()
            .context("next hop MAC")?
            .to_string();
        sys::ip_ns(
            &ns(&format!("r{i}")),
            &[
                "neigh",
                "replace",
                &format!("10.0.{i}.2"),
                "lladdr",
                &mac,
                "dev",
                "eth1",
                "nud",
                "permanent",
            ],
        )?;
    }
    let mut router_tasks = Vec::new();
    let mut napi_tasks = Vec::new();
    for i in 1..=routers {
        router_tasks.extend(sys::netns_pids(&ns(&format!("r{i}"))));
    }
    if opts.napi {
        // Each router's ingress veth: its NAPI thread does that router's forwarding.
        for i in 1..=routers {
            let sender = if i == 1 {
                (ns("src"), "eth0")
            } else {
                (ns(&format!("r{}", i - 1)), "eth1")
            };
            napi_tasks.extend(tune::threaded_napi(
                &ns(&format!("r{i}")),
                "eth0",
                &sender.0,
                sender.1,
                opts.router_cpu,
                opts.rt,
            )?);
            tune::napi_defer(
                &ns(&format!("r{i}")),
                "eth0",
                opts.napi_defer,
                u64::from(opts.gro_flush_us) * 1000,
            )?;
        }
        // The sink's NAPI thread shares the generator's core: the routers' core carries only
        // the routers, and the ceiling (no router) is measured the same way. Real-time, it
        // must outrank the generator, which never yields: else its ring overflows.
        tune::threaded_napi(
            &sink,
            "eth0",
            &last_ns,
            dev,
            opts.gen_cpu,
            opts.rt.map(|p| p.saturating_add(1).min(99)),
        )?;
        tune::napi_defer(
            &sink,
            "eth0",
            opts.sink_napi_defer,
            u64::from(opts.sink_gro_flush_us) * 1000,
        )?;
    }
    router_tasks.extend(&napi_tasks);
    let mut veths = vec![(ns("src"), "eth0".to_string())];
    for i in 1..=routers {
        for d in ["eth0", "eth1"] {
            veths.push((ns(&format!("r{i}")), d.to_string()));
        }
    }
    veths.push((sink.clone(), "eth0".to_string()));
    let xdp = match opts.generator {
        Generator::Socket => None,
        Generator::Xdp => {
            let (hop, hop_dev) = if routers == 0 {
                (sink.clone(), "eth0")
            } else {
                (ns("r1"), "eth0")
            };
            if routers > 0 && !opts.napi {
                // A live frame sent into a veth whose receiving end has no NAPI (no XDP
                // program, GRO off) is dropped: give the first router's ingress NAPI
                // (not threaded: polled in the generator's softirq).
                let st = Command::new("ip")
                    .args(["netns", "exec", &hop, "ethtool", "-K", hop_dev, "gro", "on"])
                    .stdin(Stdio::null())
                    .output();
                if !st.is_ok_and(|o| o.status.success()) {
                    bail!("the XDP generator needs ethtool (GRO on at the first router's ingress)");
                }
            }
            let j = sys::ip_ns(&hop, &["-j", "link", "show", "dev", hop_dev])?;
            let v: serde_json::Value = serde_json::from_str(&j)?;
            let mac = v[0]["address"]
                .as_str()
                .context("first hop MAC")?
                .to_string();
            Some((mac, XdpSink::start(&sink, "eth0")?))
        }
    };
    Ok(Bench {
        lab: name.to_string(),
        router_tasks,
        napi_tasks,
        gen_cpu: opts.napi.then_some(opts.gen_cpu),
        router_cpu: opts.router_cpu,
        rt: opts.rt,
        xdp,
        veths,
        xdp_gen: opts.xdp_gen,
    })
}

/// Why a dataplane cannot be measured in this build, if it cannot: its chain lab does not
/// validate (oxr-routerd's registry rejects the config).
pub fn dataplane_unavailable(dataplane: &str) -> Option<String> {
    if !matches!(dataplane, "kernel" | "xdp" | "afxdp") {
        return Some(format!(
            "unknown dataplane \"{dataplane}\" (kernel, xdp, afxdp)"
        ));
    }
    spec::parse(&chain_lab("probe", 1, dataplane), Path::new("."), None)
        .err()
        .map(|e| {
            format!(
                "unavailable: {}",
                e.first().map(|e| e.reason.clone()).unwrap_or_default()
            )
        })
}

fn unavailable_point(routers: usize, size: usize, dataplane: &str, why: &str) -> Point {
    Point {
        routers,
        frame_size: size,
        dataplane: dataplane.into(),
        unavailable: Some(why.into()),
        frames_per_sec: 0,
        mbit_per_sec: 0.0,
        percent_of_generator: 0.0,
        generator_ceiling: 0,
        router_ns_per_packet: None,
        napi_ns_per_packet: None,
        ns_per_hop: None,
        router_core_busy_percent: None,
        router_core_share_percent: None,
        trials: 0,
        failed_with_loss: 0,
        failed_generator_slow: 0,
        confirmed: false,
        generator_bound: false,
        router_core_spare: false,
        gen_frames_per_call: None,
        gen_max_batch: None,
    }
}

/// Runs the experiment; every lab it makes is removed again, also on error.
pub fn run(ctx: &Ctx, opts: &Options) -> anyhow::Result<Report> {
    if opts.generator == Generator::Xdp {
        check_live_frames()?;
    }
    let base = format!("rfc2544-{}", std::process::id());
    let mut opts = opts.clone();
    if opts.napi
        && (opts.gen_cpu.max(opts.router_cpu) >= tune::cpus() || opts.gen_cpu == opts.router_cpu)
    {
        println!(
            "note: cpu{} / cpu{} not two distinct online cores ({} online): generator and routers share a core",
            opts.gen_cpu,
            opts.router_cpu,
            tune::cpus()
        );
        opts.gen_cpu = 0;
        opts.router_cpu = 0;
    }
    if opts.napi && Command::new("ethtool").arg("--version").output().is_err() {
        println!(
            "note: ethtool not found: no threaded NAPI (veths deliver in the sender's softirq)"
        );
        opts.napi = false;
    }
    if opts.rt.is_some() && Command::new("chrt").arg("--version").output().is_err() {
        println!("note: chrt not found: normal scheduling");
        opts.rt = None;
    }
    let opts = &opts;
    // The generator's ceiling per size: no router, unpaced.
    let ceilings = {
        let name = format!("{base}-gen");
        let r = lab_up(ctx, &name, 0, "kernel", opts).and_then(|mut b| {
            opts.sizes
                .iter()
                .map(|&size| {
                    // What reached the sink: frames the generator sent faster than the
                    // sink could count are not part of its ceiling.
                    let t = trial(ctx, &mut b, size, 0, opts.trial_secs)?;
                    Ok((
                        size,
                        (t.sent.min(t.received) as f64 / t.gen.secs.max(1e-3)) as u64,
                    ))
                })
                .collect::<anyhow::Result<Vec<(usize, u64)>>>()
        });
        let _ = ops::down(ctx, &name);
        let c = r?;
        println!("generator ceiling (frames/s, no router): {c:?}");
        c
    };
    let mut points = Vec::new();
    for dp in &opts.dataplanes {
        let why = dataplane_unavailable(dp);
        for &n in &opts.routers {
            if let Some(why) = &why {
                println!("dataplane {dp}: {why}");
                points.extend(opts.sizes.iter().map(|&s| unavailable_point(n, s, dp, why)));
                continue;
            }
            let name = format!("{base}-{dp}-{n}");
            let r = lab_up(ctx, &name, n, dp, opts);
            let r = match r {
                Err(e) if dp != "kernel" => {
                    let _ = ops::down(ctx, &name);
                    let why = format!(
                        "unavailable: {}",
                        format!("{e:#}").lines().next().unwrap_or("")
                    );
                    println!("dataplane {dp}, {n} routers: {why}");
                    points.extend(
                        opts.sizes
                            .iter()
                            .map(|&s| unavailable_point(n, s, dp, &why)),
                    );
                    continue;
                }
                r => r.and_then(|mut b| {
                    let mut pts = Vec::new();
                    for &(size, ceiling) in &ceilings {
                        pts.push(search_point(ctx, &mut b, n, size, dp, ceiling, opts)?);
                    }
                    Ok(pts)
                }),
            };
            let _ = ops::down(ctx, &name);
            points.extend(r?);
        }
    }
    Ok(Report {
        trial_secs: opts.trial_secs,
        napi: opts.napi,
        gen_cpu: opts.gen_cpu,
        router_cpu: opts.router_cpu,
        generator: opts.generator,
        rt: opts.rt,
        generator_ceiling: ceilings,
        xdp_gen_burst: opts.xdp_gen.burst,
        xdp_gen_tick_us: opts.xdp_gen.tick * 1e6,
        xdp_gen_spin_us: opts.xdp_gen.spin * 1e6,
        napi_defer: opts.napi_defer,
        gro_flush_us: opts.gro_flush_us,
        busy_poll_us: opts.busy_poll_us,
        sink_napi_defer: opts.sink_napi_defer,
        sink_gro_flush_us: opts.sink_gro_flush_us,
        loss_tolerance: opts.loss_tolerance,
        points,
    })
}

fn search_point(
    ctx: &Ctx,
    b: &mut Bench,
    routers: usize,
    size: usize,
    dataplane: &str,
    ceiling: u64,
    opts: &Options,
) -> anyhow::Result<Point> {
    let top = if opts.max_rate > 0 {
        ceiling.min(opts.max_rate)
    } else {
        ceiling
    };
    let mut s = Search::new(top, opts.resolution, opts.max_trials);
    let (mut trials, mut loss, mut slow) = (0, 0, 0);
    while let Some(rate) = s.next_rate() {
        let t = trial(ctx, b, size, rate, opts.trial_secs)?;
        trials += 1;
        let lossless = within_loss(t.sent, t.received, opts.loss_tolerance) && t.gen.errors == 0;
        // A generator that falls short of the offered rate did not test it: a failed trial,
        // but one that says the generator (or its core) is the limit, not the routers.
        let reached = t.sent as f64 >= REACHED * rate as f64 * t.gen.secs;
        let pass = lossless && reached;
        if !lossless {
            loss += 1;
        } else if !reached {
            slow += 1;
        }
        println!(
            "  {dataplane} routers {routers} size {size}: {rate} frames/s offered, sent {} ({:.0}/s, {} calls, {} refused), received {}, router cpu {:.0} ns/frame, NAPI waited {:.2} ms{}",
            t.sent,
            t.sent as f64 / t.gen.secs.max(1e-3),
            t.gen.calls,
            t.gen.backoffs,
            t.received,
            t.router_ns as f64 / t.received.max(1) as f64,
            t.napi_wait_ns as f64 / 1e6,
            match (lossless, reached) {
                (true, true) => " (pass)",
                (false, _) => " (loss)",
                (true, false) => " (generator slowed: rate not reached)",
            }
        );
        s.record(rate, pass);
    }
    // Without NAPI a chain that cannot keep up slows the generator down (it runs in the
    // generator's softirq): falling short then says nothing about the generator.
    let generator_bound = ceiling > 0
        && (s.lo as f64 >= 0.95 * ceiling as f64 || (opts.napi && slow > 0 && loss == 0));
    // The confirming trial at the rate found; it also gives the CPU figures.
    let mut confirmed = s.lo == 0;
    let (mut ns_pkt, mut napi_pkt, mut busy) = (None, None, None);
    let (mut per_call, mut max_batch) = (None, None);
    if s.lo > 0 {
        let t = trial(ctx, b, size, s.lo, opts.trial_secs)?;
        if t.gen.calls > 0 {
            per_call = Some(t.sent as f64 / t.gen.calls as f64);
            max_batch = Some(t.gen.max_batch);
        }
        trials += 1;
        confirmed = within_loss(t.sent, t.received, opts.loss_tolerance)
            && t.gen.errors == 0
            && t.sent as f64 >= REACHED * s.lo as f64 * t.gen.secs;
        // Without NAPI the routers' forwarding is charged to the generator's softirq, not to
        // any task of theirs: not measurable.
        if t.received > 0 && routers > 0 && opts.napi {
            ns_pkt = Some(t.router_ns as f64 / t.received as f64);
            napi_pkt = b
                .napi_tasks
                .first()
                .map(|_| t.napi_ns as f64 / t.received as f64);
        }
        busy = t.core_busy;
    }
    let share = ns_pkt.map(|n| n * s.lo as f64 / 1e7);
    let router_core_spare = opts.napi && !generator_bound && share.is_some_and(|sh| sh < SPARE);
    Ok(Point {
        routers,
        frame_size: size,
        dataplane: dataplane.into(),
        unavailable: None,
        frames_per_sec: s.lo,
        mbit_per_sec: s.lo as f64 * size as f64 * 8.0 / 1e6,
        percent_of_generator: if ceiling > 0 {
            100.0 * s.lo as f64 / ceiling as f64
        } else {
            0.0
        },
        generator_ceiling: ceiling,
        router_ns_per_packet: ns_pkt,
        napi_ns_per_packet: napi_pkt,
        ns_per_hop: ns_pkt.map(|v| v / routers.max(1) as f64),
        router_core_busy_percent: busy,
        router_core_share_percent: share,
        trials,
        failed_with_loss: loss,
        failed_generator_slow: slow,
        confirmed,
        generator_bound,
        router_core_spare,
        gen_frames_per_call: per_call,
        gen_max_batch: max_batch,
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
            let lab = spec::parse(&chain_lab("x", n, "kernel"), Path::new("."), None)
                .unwrap_or_else(|e| panic!("{n}: {e:?}"));
            assert_eq!(lab.nodes.len(), n + 2);
            assert_eq!(lab.links.len(), n + 1);
        }
    }

    /// Runs a pacer over `secs` of simulated time, each call taking `call` seconds, with a
    /// stall of `stall` seconds at 0.5 s; returns (sent, calls, smallest and largest batch).
    fn pace(rate: u64, secs: f64, call: f64, stall: f64) -> (u64, u64, u64, u64, Pacer) {
        let mut p = Pacer::new(rate, XDP_BURST, XDP_TICK);
        let (mut t, mut sent, mut calls, mut lo, mut hi) = (0.0, 0, 0, u64::MAX, 0);
        let mut stalled = false;
        while t < secs {
            if !stalled && t >= 0.5 {
                stalled = true;
                t += stall;
            }
            match p.poll(t) {
                Ok(n) => {
                    p.spent(n);
                    sent += n;
                    calls += 1;
                    lo = lo.min(n);
                    hi = hi.max(n);
                    t += call;
                }
                Err(w) => {
                    assert!(w > 0.0);
                    t += w;
                }
            }
        }
        (sent, calls, lo, hi, p)
    }

    #[test]
    fn the_pacer_sends_the_rate_in_small_even_batches() {
        // 100 kframes/s: batches of rate x tick frames, 1 / tick calls a second.
        let (sent, calls, lo, hi, p) = pace(100_000, 1.0, 2e-6, 0.0);
        let batch = (100_000.0 * XDP_TICK).round() as u64;
        let per_sec = (1.0 / XDP_TICK) as u64;
        assert!((99_000..=100_000).contains(&sent), "{sent}");
        assert!(
            (per_sec * 95 / 100..=per_sec * 101 / 100).contains(&calls),
            "{calls}"
        );
        assert_eq!((lo, hi), (batch, batch));
        assert_eq!(p.missed, 0.0);
        // 1 Mframes/s with calls of 40 us: batches grow to keep up, within the burst.
        let (sent, _, _, hi, p) = pace(1_000_000, 0.2, 40e-6, 0.0);
        assert!(sent >= 199_000 && hi <= XDP_BURST, "{sent} {hi}");
        assert_eq!(p.missed, 0.0);
        // Slow frames: one a call, never a burst.
        let (sent, _, lo, hi, _) = pace(1000, 1.0, 2e-6, 0.0);
        assert!((999..=1000).contains(&sent) && (lo, hi) == (1, 1), "{sent}");
    }

    #[test]
    fn a_stalled_pacer_drops_what_it_cannot_bank() {
        // 10 ms without running at 100 kframes/s: 1000 frames due, the bucket holds 1.5
        // bursts; the rest is missed, not sent in one burst that would overflow a ring.
        let (sent, _, _, hi, p) = pace(100_000, 1.0, 2e-6, 0.01);
        assert!(hi <= XDP_BURST);
        assert!(p.depth() < 256.0);
        assert!((p.missed - (1000.0 - p.depth())).abs() < 30.0, "{p:?}");
        assert!(sent < 100_000 - 800, "{sent}");
        // Unpaced: always a full burst.
        assert_eq!(Pacer::new(0, 32, XDP_TICK).poll(0.0), Ok(32));
    }

    #[test]
    fn loss_tolerance_is_a_fraction_of_the_frames_sent() {
        assert!(within_loss(1000, 1000, 0.0));
        assert!(within_loss(1000, 1001, 0.0));
        assert!(!within_loss(1000, 999, 0.0));
        assert!(within_loss(100_000, 99_500, 0.005));
        assert!(!within_loss(100_000, 99_499, 0.005));
        assert!(within_loss(0, 0, 0.0));
    }

    #[test]
    fn ethtool_stats_parse_and_losses_are_named() {
        let a = parse_ethtool_stats(
            "NIC statistics:\n     peer_ifindex: 7\n     rx_queue_0_xdp_drops: 3\n     tx_queue_0_xdp_xmit_errors: 0\n",
        );
        assert_eq!(a.get("peer_ifindex"), Some(&7));
        let mut b = a.clone();
        b.insert("rx_queue_0_xdp_drops".into(), 10);
        b.insert("tx_queue_0_xdp_xmit_errors".into(), 2);
        b.insert("peer_ifindex".into(), 9);
        assert_eq!(
            loss_counters(&a, &b),
            ["rx_queue_0_xdp_drops +7", "tx_queue_0_xdp_xmit_errors +2"]
        );
    }

    #[test]
    fn the_generator_sends_about_the_rate_asked() {
        let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
        let g = generate(sink.local_addr().unwrap(), 18, 2000, 0.2, 32, None).unwrap();
        assert!(
            g.sent + g.errors >= 300 && g.sent + g.errors <= 440,
            "{g:?}"
        );
    }
}
