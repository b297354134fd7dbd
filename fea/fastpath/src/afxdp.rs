//! The `afxdp` engine: a poll-mode forwarder in user space on AF_XDP sockets (xdpilone).
//!
//! ```text
//!   bpf/fastpath.c in mode 1: forwardable? ──no──> XDP_PASS (kernel)
//!        │ yes (untouched frame)
//!        v
//!   xsks[xsk_base[ifindex] + queue] ──> forwarding thread of that queue (pinned):
//!        rx batch (every attached interface) ─> parse, oxr-lpm batch lookup, rewrite
//!        (TTL/hop limit with incremental checksum, MACs) ─> tx ring of the egress socket
//!        completions ─> free frames ─> fill rings
//! ```
//!
//! One thread per rx queue index, pinned to a core, owning one UMEM shared by the sockets
//! of that queue on every attached interface (XDP_SHARED_UMEM), so a frame received on one
//! interface is sent on another without a copy. The thread is a poll-mode loop
//! ([`worker`]): completions reaped in batches, every fill ring kept full, rx and tx in
//! batches of [`BATCH`], one table lock and one LPM batch lookup per batch, no allocation
//! and no system call per frame; the kernel is woken only when a ring asks for it
//! (`XDP_USE_NEED_WAKEUP`: a `sendto` per tx batch in copy mode, none in zero-copy mode
//! while the driver's NAPI runs). An idle thread spins a little, then sleeps in `poll(2)`
//! until a frame arrives. Sockets bind zero-copy when every driver offers it, copy mode
//! otherwise (veth: copy; `show fastpath` says which); busy polling
//! (`SO_PREFER_BUSY_POLL`) is optional ([`BUSY_POLL_ENV`]).
//!
//! The thread's tables ([`FwdState`], built from the same [`EngineOp`]s as the BPF maps,
//! ECMP groups included: the member is picked by [`flow_hash`] like the XDP program does)
//! sit behind a mutex taken once per batch: updates land between batches. Attaching or
//! detaching restarts the threads with the new socket set.
//! The XDP program makes the same decision on its maps first, so only frames the thread can
//! forward reach it; a frame it cannot forward anyway (a route removed in between) is
//! dropped and counted (`afxdp_dropped`).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use oxr_lpm::{Lpm4, Lpm6, NextHopId};

use crate::engine::Engine;
use crate::tables::{flow_hash, EngineOp, Mac, NhKey, NhKind};
use crate::xdp::{Mode, XdpEngine};

/// Frames per rx/tx batch.
const BATCH: u32 = 64;
/// Bytes per frame.
const FRAME_SIZE: u32 = 2048;
/// Ring sizes (rx, tx, fill, completion): 2048 frames of slack lets an ingress queue
/// ride out ~13 ms without its thread at 150 k frames/s.
const RING: u32 = 2048;
/// Socket slots per interface in the `xsks` map (rx queues supported per interface).
const SLOTS_PER_IF: u32 = 16;

/// Starts the AF_XDP engine (the XDP program in mode 1, no interface yet).
pub fn start() -> Result<Box<dyn Engine>, String> {
    let xdp = XdpEngine::load(Mode::Userspace)?;
    Ok(Box::new(AfxdpEngine {
        xdp,
        state: Arc::new(Mutex::new(FwdState::default())),
        ifaces: BTreeMap::new(),
        threads: Vec::new(),
        stats: Arc::new(Stats::default()),
        busy_poll_us: std::env::var(BUSY_POLL_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        zero_copy: None,
    }))
}

/// What the forwarding threads look up: built from [`EngineOp`]s only.
#[derive(Default)]
pub struct FwdState {
    lpm4: Lpm4,
    lpm6: Lpm6,
    nexthops: Vec<Option<NhKey>>,
    /// ECMP groups: member next-hop ids by group id.
    groups: Vec<Vec<u32>>,
    neighbors: HashMap<(u32, IpAddr), (Mac, Mac, u32)>,
}

/// Where a frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Rewritten in place; send on this interface.
    Forward(u32),
    /// Not forwardable here.
    Drop,
}

impl FwdState {
    /// Applies one table change.
    pub fn apply(&mut self, op: &EngineOp) {
        match op {
            EngineOp::SetNexthop(id, nh) => {
                let i = *id as usize;
                if self.nexthops.len() <= i {
                    self.nexthops.resize(i + 1, None);
                }
                self.nexthops[i] = Some(*nh);
            }
            EngineOp::ClearNexthop(id) => {
                if let Some(s) = self.nexthops.get_mut(*id as usize) {
                    *s = None;
                }
            }
            EngineOp::SetGroup(gid, members) => {
                let i = *gid as usize;
                if self.groups.len() <= i {
                    self.groups.resize(i + 1, Vec::new());
                }
                self.groups[i].clone_from(members);
            }
            EngineOp::ClearGroup(gid) => {
                if let Some(g) = self.groups.get_mut(*gid as usize) {
                    g.clear();
                }
            }
            EngineOp::SetRoute(p, id) => {
                let Some(nh) = NextHopId::new(*id) else {
                    return;
                };
                match p {
                    IpNet::V4(n) => {
                        self.lpm4.insert(*n, nh);
                    }
                    IpNet::V6(n) => {
                        self.lpm6.insert(*n, nh);
                    }
                }
            }
            EngineOp::DelRoute(p) => match p {
                IpNet::V4(n) => {
                    self.lpm4.remove(*n);
                }
                IpNet::V6(n) => {
                    self.lpm6.remove(*n);
                }
            },
            EngineOp::SetNeighbor {
                ifindex,
                addr,
                dmac,
                smac,
                mtu,
            } => {
                self.neighbors
                    .insert((*ifindex, *addr), (*dmac, *smac, *mtu));
            }
            EngineOp::DelNeighbor { ifindex, addr } => {
                self.neighbors.remove(&(*ifindex, *addr));
            }
        }
    }

    /// The rewrite data for a frame to `dst` whose route has next hop `nh`; `frame` gives
    /// the flow hash when that is an ECMP group.
    fn rewrite_data(
        &self,
        nh: Option<NextHopId>,
        dst: IpAddr,
        frame: &[u8],
    ) -> Option<(u32, Mac, Mac, u32)> {
        let mut nh = self.nexthops.get(nh?.get() as usize).copied().flatten()?;
        if let NhKind::Group(gid) = nh.kind {
            let members = self.groups.get(gid as usize)?;
            if members.is_empty() {
                return None;
            }
            let pick = members[(flow_hash(frame) % members.len() as u32) as usize];
            nh = self.nexthops.get(pick as usize).copied().flatten()?;
        }
        let target = match nh.kind {
            NhKind::Gateway(g) => g,
            NhKind::Direct => dst,
            _ => return None,
        };
        let (dmac, smac, mtu) = self.neighbors.get(&(nh.ifindex, target))?;
        Some((nh.ifindex, *dmac, *smac, *mtu))
    }

    /// Forwards a batch of frames in place: one LPM batch lookup for the IPv4 ones.
    pub fn forward_batch(&self, frames: &mut [&mut [u8]], out: &mut Vec<Verdict>) {
        out.clear();
        let mut v4 = [0u32; BATCH as usize];
        let mut v4_at = [usize::MAX; BATCH as usize];
        let mut n4 = 0;
        for (i, f) in frames.iter().enumerate().take(BATCH as usize) {
            if let Some(IpAddr::V4(d)) = destination(f) {
                v4[n4] = u32::from(d);
                v4_at[n4] = i;
                n4 += 1;
            }
        }
        let mut res4 = [None; BATCH as usize];
        self.lpm4.lookup_batch(&v4[..n4], &mut res4[..n4]);
        let mut j = 0;
        for (i, f) in frames.iter_mut().enumerate() {
            let (dst, nh) = if j < n4 && v4_at[j] == i {
                j += 1;
                (IpAddr::V4(Ipv4Addr::from(v4[j - 1])), res4[j - 1])
            } else {
                match destination(f) {
                    Some(IpAddr::V6(d)) => (IpAddr::V6(d), self.lpm6.lookup(u128::from(d))),
                    _ => {
                        out.push(Verdict::Drop);
                        continue;
                    }
                }
            };
            out.push(match self.rewrite_data(nh, dst, f) {
                Some((ifindex, dmac, smac, mtu)) if rewrite(f, dmac, smac, mtu) => {
                    Verdict::Forward(ifindex)
                }
                _ => Verdict::Drop,
            });
        }
    }
}

/// The destination of a forwardable IPv4 (no options, TTL > 1) or IPv6 (hop limit > 1)
/// frame.
pub fn destination(f: &[u8]) -> Option<IpAddr> {
    let ethertype = u16::from_be_bytes([*f.get(12)?, *f.get(13)?]);
    match ethertype {
        0x0800 => {
            let ip = f.get(14..34)?;
            if ip[0] != 0x45 || ip[8] <= 1 {
                return None;
            }
            Some(IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19])))
        }
        0x86dd => {
            let ip = f.get(14..54)?;
            if ip[0] >> 4 != 6 || ip[7] <= 1 {
                return None;
            }
            let d: [u8; 16] = ip[24..40].try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(d)))
        }
        _ => None,
    }
}

/// Decrements TTL (RFC 1624 incremental checksum) or hop limit and rewrites the MACs;
/// false if the packet is larger than `mtu` (the kernel's job: fragments or ICMP).
pub fn rewrite(f: &mut [u8], dmac: Mac, smac: Mac, mtu: u32) -> bool {
    let ip_len = f.len().saturating_sub(14) as u32;
    if ip_len > mtu {
        return false;
    }
    match u16::from_be_bytes([f[12], f[13]]) {
        0x0800 => {
            f[22] -= 1;
            let sum = u32::from(u16::from_be_bytes([f[24], f[25]])) + 0x0100;
            let sum = (sum & 0xffff) + (sum >> 16);
            f[24..26].copy_from_slice(&(sum as u16).to_be_bytes());
        }
        _ => f[21] -= 1,
    }
    f[0..6].copy_from_slice(&dmac);
    f[6..12].copy_from_slice(&smac);
    true
}

/// Busy polling of the AF_XDP sockets (`SO_PREFER_BUSY_POLL` + `SO_BUSY_POLL` +
/// `SO_BUSY_POLL_BUDGET`): the forwarding thread drives the device's NAPI itself instead of
/// waiting for its interrupt / softirq. Off (0) by default; set by [`BUSY_POLL_ENV`].
pub const BUSY_POLL_ENV: &str = "OXR_FASTPATH_BUSY_POLL_US";

/// Run the forwarding threads `SCHED_FIFO` at this priority (1-99; unset: normal
/// scheduling). On a shared machine a normal thread waits behind every other runnable task
/// of its core, and its fill ring runs dry meanwhile; keep it below the priority of the
/// NAPI threads of the same core, which feed it.
pub const RT_PRIO_ENV: &str = "OXR_FASTPATH_RT_PRIO";

/// Empty passes over the rings (a few hundred ns each) before a forwarding thread sleeps
/// in `poll(2)`: enough to catch the next frame of a burst, short enough that a lightly
/// loaded thread does not burn its core.
const SPIN: u32 = 32;
/// Longest `poll(2)` sleep of an idle forwarding thread (it also bounds how long a stop
/// request waits).
const IDLE_WAIT_MS: i32 = 20;

/// Counters of the forwarding threads, cumulative over restarts.
#[derive(Debug, Default)]
struct Stats {
    rx: AtomicU64,
    forwarded: AtomicU64,
    dropped: AtomicU64,
    tx_full: AtomicU64,
    /// Receive passes that found frames.
    batches: AtomicU64,
    /// `sendto` wake-ups of tx rings (only when the ring asks: need_wakeup).
    tx_wakeups: AtomicU64,
    /// `poll` wake-ups of fill rings (only when the ring asks).
    fill_wakeups: AtomicU64,
    /// Times an idle thread slept in `poll(2)`.
    idle_sleeps: AtomicU64,
}

/// The kernel's counters of one thread's sockets (`XDP_STATISTICS`), refreshed about once
/// a second; they restart with the sockets.
#[derive(Debug, Default)]
struct SockStats {
    rx_dropped: AtomicU64,
    rx_ring_full: AtomicU64,
    fill_ring_empty: AtomicU64,
    tx_ring_empty: AtomicU64,
}

/// One interface as the threads see it.
#[derive(Debug, Clone)]
struct Iface {
    ifindex: u32,
    name: String,
    queues: u32,
    slot: u32,
}

struct Worker {
    stop: Arc<AtomicBool>,
    sock_stats: Arc<SockStats>,
    thread: std::thread::JoinHandle<()>,
}

/// What a thread reports once its sockets are bound.
struct Bound {
    /// (xsks slot, socket fd) of every socket.
    fds: Vec<(u32, i32)>,
    zero_copy: bool,
}

/// The engine: the XDP program in mode 1 plus the forwarding threads.
pub struct AfxdpEngine {
    xdp: XdpEngine,
    state: Arc<Mutex<FwdState>>,
    ifaces: BTreeMap<u32, Iface>,
    threads: Vec<Worker>,
    stats: Arc<Stats>,
    busy_poll_us: u32,
    /// Whether the sockets bound in zero-copy mode (None before any is bound).
    zero_copy: Option<bool>,
}

fn rx_queues(name: &str) -> u32 {
    std::fs::read_dir(format!("/sys/class/net/{name}/queues"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count() as u32
        })
        .unwrap_or(1)
        .clamp(1, SLOTS_PER_IF)
}

impl AfxdpEngine {
    fn stop_threads(&mut self) {
        for w in self.threads.drain(..) {
            w.stop.store(true, Ordering::Relaxed);
            let _ = w.thread.join();
        }
    }

    /// Restarts one thread per queue index over the attached interfaces, and registers
    /// their sockets in the XDP program's maps.
    fn restart(&mut self) -> Result<(), String> {
        self.stop_threads();
        if self.ifaces.is_empty() {
            return Ok(());
        }
        let queues = self.ifaces.values().map(|i| i.queues).max().unwrap_or(1);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (fd_tx, fd_rx) = std::sync::mpsc::channel::<Result<Bound, String>>();
        for q in 0..queues {
            let ifaces: Vec<Iface> = self
                .ifaces
                .values()
                .filter(|i| q < i.queues)
                .cloned()
                .collect();
            let stop = Arc::new(AtomicBool::new(false));
            let sock_stats = Arc::new(SockStats::default());
            let ctx = WorkerCtx {
                queue: q,
                // Queue q on the last CPUs first: CPU 0 keeps the control plane.
                cpu: cpus - 1 - (q as usize % cpus),
                ifaces,
                state: self.state.clone(),
                stats: self.stats.clone(),
                sock_stats: sock_stats.clone(),
                stop: stop.clone(),
                busy_poll_us: self.busy_poll_us,
            };
            let tx = fd_tx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("afxdp-q{q}"))
                .spawn(move || worker(ctx, tx))
                .map_err(|e| e.to_string())?;
            self.threads.push(Worker {
                stop,
                sock_stats,
                thread,
            });
        }
        drop(fd_tx);
        for _ in 0..queues {
            let bound = fd_rx
                .recv_timeout(Duration::from_secs(10))
                .map_err(|_| "AF_XDP thread did not start".to_string())??;
            self.zero_copy = Some(bound.zero_copy);
            let mut xsks: aya::maps::XskMap<&mut aya::maps::MapData> =
                aya::maps::XskMap::try_from(self.xdp.bpf_mut().map_mut("xsks").ok_or("xsks")?)
                    .map_err(|e| e.to_string())?;
            for (slot, fd) in bound.fds {
                xsks.set(slot, fd, 0).map_err(|e| e.to_string())?;
            }
        }
        let mut base: aya::maps::HashMap<&mut aya::maps::MapData, u32, u32> =
            aya::maps::HashMap::try_from(self.xdp.bpf_mut().map_mut("xsk_base").ok_or("xsk_base")?)
                .map_err(|e| e.to_string())?;
        for i in self.ifaces.values() {
            base.insert(i.ifindex, i.slot * SLOTS_PER_IF, 0)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

impl Drop for AfxdpEngine {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

impl Engine for AfxdpEngine {
    fn name(&self) -> &'static str {
        "afxdp"
    }

    fn mode(&self) -> String {
        let copy = match self.zero_copy {
            Some(true) => "zero-copy",
            Some(false) => "copy mode (the driver offers no zero-copy AF_XDP)",
            None => "no socket bound yet",
        };
        let busy = match self.busy_poll_us {
            0 => "busy polling off".to_string(),
            us => format!("busy polling {us} us"),
        };
        let sched = match std::env::var(RT_PRIO_ENV) {
            Ok(p) => format!("SCHED_FIFO {p}"),
            Err(_) => "normal scheduling".into(),
        };
        format!(
            "{copy}; need_wakeup; batches of {BATCH}; {} forwarding thread(s), {sched}; {busy}; {}",
            self.threads.len(),
            self.xdp.attach_mode()
        )
    }

    fn set_busy_poll(&mut self, usecs: u32) {
        // The configured value, else the environment's (a way to try it without config).
        let us = match usecs {
            0 => std::env::var(BUSY_POLL_ENV)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            us => us,
        };
        if us != self.busy_poll_us {
            self.busy_poll_us = us;
            if !self.threads.is_empty() {
                if let Err(e) = self.restart() {
                    tracing::warn!(error = %e, "restarting the AF_XDP threads for busy polling");
                }
            }
        }
    }

    fn attach(&mut self, ifindex: u32, name: &str) -> Result<(), String> {
        if self.ifaces.contains_key(&ifindex) {
            return Ok(());
        }
        self.xdp.attach(ifindex, name)?;
        let slot = (0..)
            .find(|s| self.ifaces.values().all(|i| i.slot != *s))
            .unwrap_or(0);
        if (slot + 1) * SLOTS_PER_IF > 256 {
            let _ = self.xdp.detach(ifindex);
            return Err("too many AF_XDP interfaces (16 at most)".into());
        }
        self.ifaces.insert(
            ifindex,
            Iface {
                ifindex,
                name: name.to_string(),
                queues: rx_queues(name),
                slot,
            },
        );
        let r = self.restart();
        if r.is_err() {
            self.ifaces.remove(&ifindex);
            let _ = self.xdp.detach(ifindex);
            let _ = self.restart();
        }
        r
    }

    fn detach(&mut self, ifindex: u32) -> Result<(), String> {
        if self.ifaces.remove(&ifindex).is_none() {
            return Ok(());
        }
        if let Ok(mut base) = aya::maps::HashMap::<_, u32, u32>::try_from(
            self.xdp.bpf_mut().map_mut("xsk_base").ok_or("xsk_base")?,
        ) {
            let _ = base.remove(&ifindex);
        }
        // The interface may be gone already (its XDP link with it): detach is best effort.
        let r = self.xdp.detach(ifindex);
        self.restart()?;
        r
    }

    fn apply(&mut self, ops: &[EngineOp]) -> usize {
        {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            for op in ops {
                st.apply(op);
            }
        }
        self.xdp.apply(ops)
    }

    fn counters(&self) -> BTreeMap<String, u64> {
        let mut c = self.xdp.read_counters();
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let s = &self.stats;
        c.insert("forwarded".into(), get(&s.forwarded));
        c.insert("afxdp_rx".into(), get(&s.rx));
        c.insert("afxdp_dropped".into(), get(&s.dropped));
        c.insert("afxdp_tx_full".into(), get(&s.tx_full));
        c.insert("afxdp_rx_batches".into(), get(&s.batches));
        c.insert("afxdp_tx_wakeups".into(), get(&s.tx_wakeups));
        c.insert("afxdp_fill_wakeups".into(), get(&s.fill_wakeups));
        c.insert("afxdp_idle_sleeps".into(), get(&s.idle_sleeps));
        let sum = |f: fn(&SockStats) -> &AtomicU64| -> u64 {
            self.threads.iter().map(|w| get(f(&w.sock_stats))).sum()
        };
        c.insert("xsk_rx_dropped".into(), sum(|s| &s.rx_dropped));
        c.insert("xsk_rx_ring_full".into(), sum(|s| &s.rx_ring_full));
        c.insert("xsk_fill_ring_empty".into(), sum(|s| &s.fill_ring_empty));
        c.insert("xsk_tx_ring_empty".into(), sum(|s| &s.tx_ring_empty));
        c
    }

    fn memory_bytes(&self) -> u64 {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let socks: usize = self.ifaces.values().map(|i| i.queues as usize).sum();
        self.xdp.memory_bytes()
            + (st.lpm4.memory_bytes() + st.lpm6.memory_bytes()) as u64
            + (socks.max(2) * 2 * RING as usize * FRAME_SIZE as usize) as u64
    }
}

/// Pins the calling thread to `cpu` (best effort).
fn pin(cpu: usize) {
    let mut set = nix::sched::CpuSet::new();
    if set.set(cpu).is_ok() {
        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
    }
}

/// Everything a forwarding thread owns or shares.
struct WorkerCtx {
    queue: u32,
    cpu: usize,
    ifaces: Vec<Iface>,
    state: Arc<Mutex<FwdState>>,
    stats: Arc<Stats>,
    sock_stats: Arc<SockStats>,
    stop: Arc<AtomicBool>,
    busy_poll_us: u32,
}

/// The poll-mode loop of one queue index: reap completions and keep every fill ring full,
/// receive a batch per socket, forward it (one table lock and one LPM batch lookup per
/// batch), queue it on the egress tx rings and wake the kernel only where a ring asks for
/// it (need_wakeup). No allocation and no system call per frame; an idle thread spins
/// [`SPIN`] passes, then sleeps in `poll(2)` until a frame arrives.
fn worker(ctx: WorkerCtx, bound: std::sync::mpsc::Sender<Result<Bound, String>>) {
    let WorkerCtx {
        queue,
        cpu,
        ifaces,
        state,
        stats,
        sock_stats,
        stop,
        busy_poll_us,
    } = ctx;
    pin(cpu);
    if let Some(prio) = std::env::var(RT_PRIO_ENV)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|p| (1..=99).contains(p))
    {
        if let Err(e) = ring::realtime(prio) {
            tracing::warn!(prio, error = %e, "SCHED_FIFO refused");
        }
    }
    // The kernel releases a closed socket's hold on a queue asynchronously: a restart may
    // see the old binding for a moment (EBUSY).
    let mut attempt = 0;
    let mut ring = loop {
        match ring::Rings::open_best(queue, &ifaces, busy_poll_us) {
            Ok(r) => break r,
            Err(e) if e.contains("busy") && attempt < 40 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                let _ = bound.send(Err(e));
                return;
            }
        }
    };
    let _ = bound.send(Ok(Bound {
        fds: ring.socket_fds(),
        zero_copy: ring.zero_copy(),
    }));
    drop(bound);
    tracing::info!(
        queue,
        cpu,
        interfaces = ifaces.len(),
        zero_copy = ring.zero_copy(),
        busy_poll_us,
        "AF_XDP forwarding thread up"
    );
    let ifindex_of: Vec<u32> = ifaces.iter().map(|i| i.ifindex).collect();
    let mut verdicts = Vec::with_capacity(BATCH as usize);
    let mut idle = 0u32;
    let mut next_stats = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let fill_wakes = ring.recycle();
        let mut moved = 0;
        for s in 0..ifaces.len() {
            let got = ring.receive(s, |frames, egress| {
                let st = state.lock().unwrap_or_else(|e| e.into_inner());
                st.forward_batch(frames, &mut verdicts);
                drop(st);
                for (e, v) in egress.iter_mut().zip(&verdicts) {
                    *e = match v {
                        Verdict::Forward(out) => ifindex_of.iter().position(|i| i == out),
                        Verdict::Drop => None,
                    };
                }
            });
            if got.rx == 0 {
                continue;
            }
            moved += got.rx;
            stats.batches.fetch_add(1, Ordering::Relaxed);
            stats.rx.fetch_add(u64::from(got.rx), Ordering::Relaxed);
            stats
                .forwarded
                .fetch_add(u64::from(got.sent), Ordering::Relaxed);
            stats
                .dropped
                .fetch_add(u64::from(got.dropped), Ordering::Relaxed);
            stats
                .tx_full
                .fetch_add(u64::from(got.tx_full), Ordering::Relaxed);
        }
        let (tx_wakes, tx_left) = ring.kick();
        if fill_wakes > 0 {
            stats
                .fill_wakeups
                .fetch_add(u64::from(fill_wakes), Ordering::Relaxed);
        }
        if tx_wakes > 0 {
            stats
                .tx_wakeups
                .fetch_add(u64::from(tx_wakes), Ordering::Relaxed);
        }
        if moved > 0 || tx_left {
            idle = 0;
        } else {
            idle += 1;
            if busy_poll_us > 0 {
                // Drives the NAPI of the sockets' queues from here (SO_PREFER_BUSY_POLL).
                ring.busy_poll();
            }
            if idle > SPIN {
                stats.idle_sleeps.fetch_add(1, Ordering::Relaxed);
                ring.wait(IDLE_WAIT_MS);
                idle = 0;
            }
        }
        if idle == 0 && std::time::Instant::now() >= next_stats {
            next_stats = std::time::Instant::now() + Duration::from_secs(1);
            let k = ring.kernel_stats();
            sock_stats.rx_dropped.store(k[0], Ordering::Relaxed);
            sock_stats.rx_ring_full.store(k[1], Ordering::Relaxed);
            sock_stats.fill_ring_empty.store(k[2], Ordering::Relaxed);
            sock_stats.tx_ring_empty.store(k[3], Ordering::Relaxed);
        }
    }
}

/// The unsafe part: UMEM memory, frame access, and the few raw socket calls (poll,
/// setsockopt, recvfrom) xdpilone does not wrap.
#[allow(unsafe_code)]
mod ring {
    use std::alloc::Layout;
    use std::ffi::CString;
    use std::num::NonZeroU32;
    use std::ptr::NonNull;

    use xdpilone::xdp::XdpDesc;
    use xdpilone::{
        DeviceQueue, IfInfo, RingRx, RingTx, Socket, SocketConfig, Umem, UmemConfig, User,
    };

    use super::{Iface, BATCH, FRAME_SIZE, RING, SLOTS_PER_IF};

    /// `SO_BUSY_POLL`, `SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL_BUDGET` (asm-generic/socket.h).
    const SO_BUSY_POLL: libc::c_int = 46;
    const SO_PREFER_BUSY_POLL: libc::c_int = 69;
    const SO_BUSY_POLL_BUDGET: libc::c_int = 70;
    /// `SOL_XDP` / `XDP_MAX_TX_SKB_BUDGET` (Linux 6.17+): frames one copy-mode `sendto` may
    /// send (32 otherwise). Older kernels refuse it; the default then stands.
    const SOL_XDP: libc::c_int = 283;
    const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;
    const TX_BUDGET: libc::c_int = 256;

    /// Page-aligned memory for a UMEM, freed on drop (after the sockets using it).
    struct Area {
        ptr: NonNull<u8>,
        layout: Layout,
    }

    impl Area {
        fn new(len: usize) -> Result<Self, String> {
            let layout = Layout::from_size_align(len, 4096).map_err(|e| e.to_string())?;
            // SAFETY: the layout has a non-zero size; a null result is handled.
            let p = unsafe { std::alloc::alloc_zeroed(layout) };
            let ptr = NonNull::new(p).ok_or("UMEM allocation failed")?;
            Ok(Area { ptr, layout })
        }
    }

    impl Drop for Area {
        fn drop(&mut self) {
            // SAFETY: allocated in `new` with this layout; the sockets that shared it are
            // dropped first (field order of `Rings`).
            unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
        }
    }

    struct Sock {
        fq: DeviceQueue,
        rx: RingRx,
        tx: RingTx,
        user: User,
        /// Descriptors of the current batch bound for this socket's tx ring.
        pending: Vec<XdpDesc>,
        slot: u32,
    }

    /// What one receive pass did.
    pub struct Moved {
        pub rx: u32,
        pub sent: u32,
        pub dropped: u32,
        pub tx_full: u32,
    }

    /// The sockets of one queue index on every attached interface, over one UMEM.
    pub struct Rings {
        // Drop order: sockets, then the UMEM, then its memory.
        socks: Vec<Sock>,
        umem: Umem,
        area: Area,
        len: usize,
        free: Vec<u64>,
        zero_copy: bool,
        pollfds: Vec<libc::pollfd>,
    }

    fn setsockopt_int(fd: libc::c_int, opt: libc::c_int, v: libc::c_int) -> bool {
        setsockopt_at(fd, libc::SOL_SOCKET, opt, v)
    }

    fn setsockopt_at(
        fd: libc::c_int,
        level: libc::c_int,
        opt: libc::c_int,
        v: libc::c_int,
    ) -> bool {
        // SAFETY: `v` lives across the call and its size is passed; fd is a socket we own.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                opt,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            ) == 0
        }
    }

    /// Makes the calling thread `SCHED_FIFO` at `prio`.
    pub fn realtime(prio: i32) -> std::io::Result<()> {
        let param = libc::sched_param {
            sched_priority: prio,
        };
        // SAFETY: `param` is a valid sched_param for the call's duration; pid 0 is the
        // calling thread.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    impl Rings {
        /// Zero-copy if every interface's driver offers it, else copy mode.
        pub fn open_best(queue: u32, ifaces: &[Iface], busy_poll_us: u32) -> Result<Self, String> {
            match Self::open(queue, ifaces, true, busy_poll_us) {
                Ok(r) => Ok(r),
                Err(e) if e.contains("busy") => Err(e),
                Err(zc) => Self::open(queue, ifaces, false, busy_poll_us)
                    .map_err(|e| format!("{e} (zero-copy: {zc})")),
            }
        }

        fn open(
            queue: u32,
            ifaces: &[Iface],
            zero_copy: bool,
            busy_poll_us: u32,
        ) -> Result<Self, String> {
            // Every fill ring full plus as many frames again in flight (rx, tx, completion).
            let frames = (ifaces.len().max(2) as u32) * 2 * RING;
            let len = (frames * FRAME_SIZE) as usize;
            let area = Area::new(len)?;
            let mem = NonNull::slice_from_raw_parts(area.ptr, len);
            let cfg = UmemConfig {
                fill_size: RING,
                complete_size: RING,
                frame_size: FRAME_SIZE,
                headroom: 0,
                flags: 0,
            };
            // SAFETY: `mem` is page-aligned, `len` bytes, and outlives the UMEM (`Rings`
            // drops `umem` before `area`).
            let umem = unsafe { Umem::new(cfg, mem) }.map_err(|e| format!("UMEM: {e:?}"))?;
            let mut socks = Vec::new();
            for (n, i) in ifaces.iter().enumerate() {
                let name = CString::new(i.name.clone()).map_err(|e| e.to_string())?;
                let mut info = IfInfo::invalid();
                info.from_name(&name)
                    .map_err(|e| format!("{}: {e:?}", i.name))?;
                info.set_queue(queue);
                // The first socket is the UMEM's own; the others share it (bound after it).
                let sock = if n == 0 {
                    Socket::with_shared(&info, &umem)
                } else {
                    Socket::new(&info)
                }
                .map_err(|e| format!("AF_XDP socket on {}: {e:?}", i.name))?;
                let fq = umem
                    .fq_cq(&sock)
                    .map_err(|e| format!("fill/completion rings on {}: {e:?}", i.name))?;
                let mode = if zero_copy {
                    SocketConfig::XDP_BIND_ZEROCOPY
                } else {
                    SocketConfig::XDP_BIND_COPY
                };
                let user = umem
                    .rx_tx(
                        &sock,
                        &SocketConfig {
                            rx_size: NonZeroU32::new(RING),
                            tx_size: NonZeroU32::new(RING),
                            // Sockets sharing a UMEM may not pass flags: they inherit
                            // the first socket's.
                            bind_flags: if n == 0 {
                                SocketConfig::XDP_BIND_NEED_WAKEUP | mode
                            } else {
                                0
                            },
                        },
                    )
                    .map_err(|e| format!("rx/tx rings on {}: {e:?}", i.name))?;
                let rx = user.map_rx().map_err(|e| format!("{e:?}"))?;
                let tx = user.map_tx().map_err(|e| format!("{e:?}"))?;
                umem.bind(&user)
                    .map_err(|e| format!("binding AF_XDP on {} queue {queue}: {e:?}", i.name))?;
                if !zero_copy {
                    let _ =
                        setsockopt_at(user.as_raw_fd(), SOL_XDP, XDP_MAX_TX_SKB_BUDGET, TX_BUDGET);
                }
                if busy_poll_us > 0 {
                    let fd = user.as_raw_fd();
                    let ok = setsockopt_int(fd, SO_PREFER_BUSY_POLL, 1)
                        && setsockopt_int(fd, SO_BUSY_POLL, busy_poll_us as libc::c_int)
                        && setsockopt_int(fd, SO_BUSY_POLL_BUDGET, BATCH as libc::c_int);
                    if !ok {
                        tracing::warn!(interface = %i.name, "busy polling refused by the kernel");
                    }
                }
                socks.push(Sock {
                    fq,
                    rx,
                    tx,
                    user,
                    pending: Vec::with_capacity(BATCH as usize),
                    slot: i.slot * SLOTS_PER_IF + queue,
                });
            }
            let free = (0..u64::from(frames))
                .map(|f| f * u64::from(FRAME_SIZE))
                .collect();
            let pollfds = socks
                .iter()
                .map(|s| libc::pollfd {
                    fd: s.user.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            let mut r = Rings {
                socks,
                umem,
                area,
                len,
                free,
                zero_copy,
                pollfds,
            };
            r.recycle();
            Ok(r)
        }

        /// Whether the sockets are bound in zero-copy mode.
        pub fn zero_copy(&self) -> bool {
            self.zero_copy
        }

        /// (xsks slot, socket fd) of every socket.
        pub fn socket_fds(&self) -> Vec<(u32, i32)> {
            self.socks
                .iter()
                .map(|s| (s.slot, s.user.as_raw_fd()))
                .collect()
        }

        /// Reaps every tx completion into the free list and fills every fill ring to the
        /// brim; returns the fill-ring wake-ups it made (only for rings that ask).
        pub fn recycle(&mut self) -> u32 {
            for s in &mut self.socks {
                let mut c = s.fq.complete(RING);
                while let Some(addr) = c.read() {
                    self.free.push(addr);
                }
                c.release();
            }
            let mut wakes = 0;
            for s in &mut self.socks {
                let want = RING
                    .saturating_sub(s.fq.pending())
                    .min(self.free.len() as u32);
                // Two rounds: xdpilone reserves from its cached view of the kernel's consumer
                // and refreshes that view only once the cache shows no room at all.
                let mut left = want;
                for _ in 0..2 {
                    if left == 0 {
                        break;
                    }
                    let mut f = s.fq.fill(left);
                    let n = f.insert(self.free.iter().rev().copied()) as usize;
                    f.commit();
                    drop(f);
                    let keep = self.free.len() - n;
                    self.free.truncate(keep);
                    left -= n as u32;
                }
                if s.fq.needs_wakeup() {
                    s.fq.wake();
                    wakes += 1;
                }
            }
            wakes
        }

        /// Receives a batch on socket `s`, lets `decide` rewrite the frames in place and
        /// write each one's egress socket, and queues them on those tx rings.
        pub fn receive(
            &mut self,
            s: usize,
            decide: impl FnOnce(&mut [&mut [u8]], &mut [Option<usize>]),
        ) -> Moved {
            let mut descs = [XdpDesc::default(); BATCH as usize];
            let mut n = 0;
            {
                let mut r = self.socks[s].rx.receive(BATCH);
                while let Some(d) = r.read() {
                    descs[n] = d;
                    n += 1;
                }
                r.release();
            }
            let mut moved = Moved {
                rx: n as u32,
                sent: 0,
                dropped: 0,
                tx_full: 0,
            };
            if n == 0 {
                return moved;
            }
            let base = self.area.ptr.as_ptr();
            let mut frames: [&mut [u8]; BATCH as usize] =
                std::array::from_fn(|_| <&mut [u8]>::default());
            for (f, d) in frames.iter_mut().zip(&descs[..n]) {
                let (at, len) = (d.addr as usize, d.len as usize);
                if at.checked_add(len).is_none_or(|end| end > self.len) {
                    continue;
                }
                // SAFETY: the kernel handed this frame to us on the rx ring and it lies
                // inside the UMEM (checked just above); no ring holds it until we queue it
                // again, and the descriptors of one batch name distinct frames, so the
                // slices do not overlap.
                *f = unsafe { std::slice::from_raw_parts_mut(base.add(at), len) };
            }
            let mut egress = [None; BATCH as usize];
            decide(&mut frames[..n], &mut egress[..n]);
            for (d, o) in descs[..n].iter().zip(&egress[..n]) {
                match o {
                    Some(e) if *e < self.socks.len() => self.socks[*e].pending.push(*d),
                    _ => {
                        moved.dropped += 1;
                        // The frame's chunk start (rx addresses may carry an offset).
                        self.free.push(d.addr - d.addr % u64::from(FRAME_SIZE));
                    }
                }
            }
            for sock in &mut self.socks {
                if sock.pending.is_empty() {
                    continue;
                }
                // Two rounds, as for the fill ring: the first reservation may be cut short by
                // a stale cached consumer index while the ring has room; the second sees the
                // kernel's real one. Only a truly full ring drops frames (`afxdp_tx_full`).
                let mut sent = 0;
                for _ in 0..2 {
                    if sent == sock.pending.len() {
                        break;
                    }
                    let mut w = sock.tx.transmit((sock.pending.len() - sent) as u32);
                    sent += w.insert(sock.pending[sent..].iter().copied()) as usize;
                    w.commit();
                }
                moved.sent += sent as u32;
                for d in sock.pending.drain(sent..) {
                    moved.tx_full += 1;
                    self.free.push(d.addr - d.addr % u64::from(FRAME_SIZE));
                }
                sock.pending.clear();
            }
            moved
        }

        /// Wakes the kernel for tx rings that hold frames and ask for it (need_wakeup: always
        /// in copy mode, where each `sendto` sends a few dozen frames; only when the
        /// driver's NAPI is idle in zero-copy mode). Returns the wake-ups made and whether
        /// frames are still waiting to be sent.
        pub fn kick(&mut self) -> (u32, bool) {
            let mut wakes = 0;
            let mut left = false;
            for s in &mut self.socks {
                let mut k = 0;
                while s.tx.pending() > 0 && s.tx.needs_wakeup() && k < 4 {
                    s.tx.wake();
                    k += 1;
                }
                wakes += k;
                left |= s.tx.pending() > 0;
            }
            (wakes, left)
        }

        /// A non-blocking `recvfrom` per socket: with busy polling on, the kernel runs the
        /// queue's NAPI from this call.
        pub fn busy_poll(&mut self) {
            for s in &self.socks {
                // SAFETY: a zero-length receive with a null buffer is valid on AF_XDP
                // sockets (it only triggers the busy poll); the fd is ours.
                unsafe {
                    libc::recvfrom(
                        s.user.as_raw_fd(),
                        std::ptr::null_mut(),
                        0,
                        libc::MSG_DONTWAIT,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                    );
                }
            }
        }

        /// Sleeps until a socket has frames to read, or `timeout_ms`.
        pub fn wait(&mut self, timeout_ms: i32) {
            // SAFETY: `pollfds` is a live array of `len()` pollfd structs with our fds.
            unsafe {
                libc::poll(
                    self.pollfds.as_mut_ptr(),
                    self.pollfds.len() as libc::nfds_t,
                    timeout_ms,
                );
            }
        }

        /// The kernel's socket counters summed: rx dropped, rx ring full, fill ring empty,
        /// tx ring empty.
        pub fn kernel_stats(&self) -> [u64; 4] {
            let mut out = [0u64; 4];
            for s in &self.socks {
                if let Ok(st) = s.user.statistics_v2() {
                    out[0] += st.rx_dropped;
                    out[1] += st.rx_ring_full;
                    out[2] += st.rx_fill_ring_empty_descs;
                    out[3] += st.tx_ring_empty_descs;
                }
            }
            let _ = &self.umem;
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_frame(ttl: u8, dst: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&28u16.to_be_bytes());
        ip[8] = ttl;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[10, 71, 1, 2]);
        ip[16..20].copy_from_slice(&dst);
        let c = checksum(ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f
    }

    fn checksum(h: &[u8]) -> u16 {
        let mut sum = 0u32;
        for (i, w) in h.chunks(2).enumerate() {
            if i != 5 {
                sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
            }
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    fn state() -> FwdState {
        let mut s = FwdState::default();
        let nh = NhKey {
            kind: NhKind::Gateway("10.71.2.2".parse().unwrap()),
            ifindex: 5,
        };
        for op in [
            EngineOp::SetNexthop(0, nh),
            EngineOp::SetRoute("192.0.2.0/24".parse().unwrap(), 0),
            EngineOp::SetNeighbor {
                ifindex: 5,
                addr: "10.71.2.2".parse().unwrap(),
                dmac: [0xb; 6],
                smac: [0xa; 6],
                mtu: 1500,
            },
        ] {
            s.apply(&op);
        }
        s
    }

    #[test]
    fn ttl_decrement_keeps_the_checksum_valid() {
        for ttl in [2u8, 64, 255] {
            for dst in [[192, 0, 2, 1], [192, 0, 2, 255]] {
                let mut f = ipv4_frame(ttl, dst);
                assert!(rewrite(&mut f, [1; 6], [2; 6], 1500));
                let ip = &f[14..34];
                assert_eq!(ip[8], ttl - 1);
                assert_eq!(
                    u16::from_be_bytes([ip[10], ip[11]]),
                    checksum(ip),
                    "ttl {ttl}"
                );
                assert_eq!(&f[0..6], &[1; 6]);
                assert_eq!(&f[6..12], &[2; 6]);
            }
        }
    }

    #[test]
    fn batches_forward_what_resolves_and_drop_the_rest() {
        let s = state();
        let mut a = ipv4_frame(64, [192, 0, 2, 9]);
        let mut b = ipv4_frame(64, [198, 51, 100, 1]);
        let mut c = ipv4_frame(1, [192, 0, 2, 9]);
        let mut d = vec![0u8; 10];
        let mut frames: Vec<&mut [u8]> = vec![&mut a, &mut b, &mut c, &mut d];
        let mut out = Vec::new();
        s.forward_batch(&mut frames, &mut out);
        assert_eq!(
            out,
            [
                Verdict::Forward(5),
                Verdict::Drop,
                Verdict::Drop,
                Verdict::Drop
            ]
        );
        assert_eq!(a[14 + 8], 63);
        assert_eq!(&a[0..6], &[0xb; 6]);
        assert_eq!(b[14 + 8], 64, "a dropped frame is left alone");
    }

    #[test]
    fn table_ops_add_and_remove() {
        let mut s = state();
        let f = ipv4_frame(64, [192, 0, 2, 1]);
        assert!(s
            .rewrite_data(s.lpm4.lookup(0xC000_0201), "192.0.2.1".parse().unwrap(), &f)
            .is_some());
        s.apply(&EngineOp::DelNeighbor {
            ifindex: 5,
            addr: "10.71.2.2".parse().unwrap(),
        });
        assert!(s
            .rewrite_data(s.lpm4.lookup(0xC000_0201), "192.0.2.1".parse().unwrap(), &f)
            .is_none());
        s.apply(&EngineOp::DelRoute("192.0.2.0/24".parse().unwrap()));
        assert_eq!(s.lpm4.lookup(0xC000_0201), None);
    }
}
