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
//! One thread per rx queue index, owning one UMEM shared by the sockets of that queue on
//! every attached interface (XDP_SHARED_UMEM), so a frame received on one interface is sent
//! on another without a copy. The thread's tables ([`FwdState`], built from the same
//! [`EngineOp`]s as the BPF maps) sit behind a mutex taken once per batch: updates land
//! between batches. Attaching or detaching restarts the threads with the new socket set.
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
use crate::tables::{EngineOp, Mac, NhKey, NhKind};
use crate::xdp::{Mode, XdpEngine};

/// Frames per rx/tx batch.
const BATCH: u32 = 64;
/// UMEM frames per forwarding thread.
const FRAMES: u32 = 4096;
/// Bytes per frame.
const FRAME_SIZE: u32 = 2048;
/// Ring sizes (rx, tx, fill, completion).
const RING: u32 = 1024;
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
    }))
}

/// What the forwarding threads look up: built from [`EngineOp`]s only.
#[derive(Default)]
pub struct FwdState {
    lpm4: Lpm4,
    lpm6: Lpm6,
    nexthops: Vec<Option<NhKey>>,
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

    fn rewrite_data(&self, nh: Option<NextHopId>, dst: IpAddr) -> Option<(u32, Mac, Mac, u32)> {
        let nh = self.nexthops.get(nh?.get() as usize).copied().flatten()?;
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
            out.push(match self.rewrite_data(nh, dst) {
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

/// Counters of the forwarding threads.
#[derive(Debug, Default)]
struct Stats {
    rx: AtomicU64,
    forwarded: AtomicU64,
    dropped: AtomicU64,
    tx_full: AtomicU64,
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
    thread: std::thread::JoinHandle<()>,
}

/// The engine: the XDP program in mode 1 plus the forwarding threads.
pub struct AfxdpEngine {
    xdp: XdpEngine,
    state: Arc<Mutex<FwdState>>,
    ifaces: BTreeMap<u32, Iface>,
    threads: Vec<Worker>,
    stats: Arc<Stats>,
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
        let (fd_tx, fd_rx) = std::sync::mpsc::channel::<Result<Vec<(u32, i32)>, String>>();
        for q in 0..queues {
            let ifaces: Vec<Iface> = self
                .ifaces
                .values()
                .filter(|i| q < i.queues)
                .cloned()
                .collect();
            let stop = Arc::new(AtomicBool::new(false));
            let (s, st, stats, tx) = (
                stop.clone(),
                self.state.clone(),
                self.stats.clone(),
                fd_tx.clone(),
            );
            // Queue q on the last CPUs first: CPU 0 keeps the control plane.
            let cpu = cpus - 1 - (q as usize % cpus);
            let thread = std::thread::Builder::new()
                .name(format!("afxdp-q{q}"))
                .spawn(move || worker(q, cpu, ifaces, st, stats, s, tx))
                .map_err(|e| e.to_string())?;
            self.threads.push(Worker { stop, thread });
        }
        drop(fd_tx);
        for _ in 0..queues {
            let fds = fd_rx
                .recv_timeout(Duration::from_secs(10))
                .map_err(|_| "AF_XDP thread did not start".to_string())??;
            let mut xsks: aya::maps::XskMap<&mut aya::maps::MapData> =
                aya::maps::XskMap::try_from(self.xdp.bpf_mut().map_mut("xsks").ok_or("xsks")?)
                    .map_err(|e| e.to_string())?;
            for (slot, fd) in fds {
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

    fn attach(&mut self, ifindex: u32, name: &str) -> Result<(), String> {
        if self.ifaces.contains_key(&ifindex) {
            return Ok(());
        }
        self.xdp.attach(ifindex, name)?;
        let slot = (0..)
            .find(|s| self.ifaces.values().all(|i| i.slot != *s))
            .unwrap_or(0);
        if (slot + 1) * SLOTS_PER_IF > 256 {
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
        self.xdp.detach(ifindex)?;
        self.restart()
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
        c.insert(
            "forwarded".into(),
            self.stats.forwarded.load(Ordering::Relaxed),
        );
        c.insert("afxdp_rx".into(), self.stats.rx.load(Ordering::Relaxed));
        c.insert(
            "afxdp_dropped".into(),
            self.stats.dropped.load(Ordering::Relaxed),
        );
        c.insert(
            "afxdp_tx_full".into(),
            self.stats.tx_full.load(Ordering::Relaxed),
        );
        c
    }

    fn memory_bytes(&self) -> u64 {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.xdp.memory_bytes()
            + (st.lpm4.memory_bytes() + st.lpm6.memory_bytes()) as u64
            + self.threads.len() as u64 * u64::from(FRAMES * FRAME_SIZE)
    }
}

/// Pins the calling thread to `cpu` (best effort).
fn pin(cpu: usize) {
    let mut set = nix::sched::CpuSet::new();
    if set.set(cpu).is_ok() {
        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
    }
}

fn worker(
    queue: u32,
    cpu: usize,
    ifaces: Vec<Iface>,
    state: Arc<Mutex<FwdState>>,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    fds: std::sync::mpsc::Sender<Result<Vec<(u32, i32)>, String>>,
) {
    pin(cpu);
    // The kernel releases a closed socket's hold on a queue asynchronously: a restart may
    // see the old binding for a moment (EBUSY).
    let mut attempt = 0;
    let mut ring = loop {
        match ring::Rings::open(queue, &ifaces) {
            Ok(r) => break r,
            Err(e) if e.contains("busy") && attempt < 40 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                let _ = fds.send(Err(e));
                return;
            }
        }
    };
    let _ = fds.send(Ok(ring.socket_fds()));
    drop(fds);
    tracing::info!(
        queue,
        cpu,
        interfaces = ifaces.len(),
        "AF_XDP forwarding thread up"
    );
    let ifindex_of: Vec<u32> = ifaces.iter().map(|i| i.ifindex).collect();
    let mut verdicts = Vec::with_capacity(BATCH as usize);
    let mut idle = 0u32;
    while !stop.load(Ordering::Relaxed) {
        ring.recycle();
        let mut moved = 0;
        for s in 0..ifaces.len() {
            let got = ring.receive(s, |frames| {
                let st = state.lock().unwrap_or_else(|e| e.into_inner());
                st.forward_batch(frames, &mut verdicts);
                verdicts
                    .iter()
                    .map(|v| match v {
                        Verdict::Forward(out) => ifindex_of.iter().position(|i| i == out),
                        Verdict::Drop => None,
                    })
                    .collect()
            });
            moved += got.rx;
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
        ring.kick();
        // Poll mode, but yield the core after a quiet spell (2-core CI machines).
        if moved == 0 {
            idle += 1;
            if idle > 256 {
                std::thread::sleep(Duration::from_micros(50));
            }
        } else {
            idle = 0;
        }
    }
}

/// The unsafe part: UMEM memory and frame access.
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

    use super::{Iface, BATCH, FRAMES, FRAME_SIZE, RING, SLOTS_PER_IF};

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
        /// Descriptors waiting for room in `tx`.
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
        free: Vec<u64>,
    }

    impl Rings {
        pub fn open(queue: u32, ifaces: &[Iface]) -> Result<Self, String> {
            let len = (FRAMES * FRAME_SIZE) as usize;
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
                let user = umem
                    .rx_tx(
                        &sock,
                        &SocketConfig {
                            rx_size: NonZeroU32::new(RING),
                            tx_size: NonZeroU32::new(RING),
                            // Sockets sharing a UMEM may not pass flags: they inherit
                            // the first socket's.
                            bind_flags: if n == 0 {
                                SocketConfig::XDP_BIND_NEED_WAKEUP
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
                socks.push(Sock {
                    fq,
                    rx,
                    tx,
                    user,
                    pending: Vec::with_capacity(BATCH as usize),
                    slot: i.slot * SLOTS_PER_IF + queue,
                });
            }
            let free = (0..u64::from(FRAMES))
                .map(|f| f * u64::from(FRAME_SIZE))
                .collect();
            let mut r = Rings {
                socks,
                umem,
                area,
                free,
            };
            r.recycle();
            Ok(r)
        }

        /// (xsks slot, socket fd) of every socket.
        pub fn socket_fds(&self) -> Vec<(u32, i32)> {
            self.socks
                .iter()
                .map(|s| (s.slot, s.user.as_raw_fd()))
                .collect()
        }

        /// Reaps tx completions into the free list and tops up every fill ring.
        pub fn recycle(&mut self) {
            let per_sock = (FRAMES as usize / self.socks.len().max(1) / 2) as u32;
            for s in &mut self.socks {
                let mut c = s.fq.complete(RING);
                while let Some(addr) = c.read() {
                    self.free.push(addr);
                }
                c.release();
            }
            for s in &mut self.socks {
                let want = per_sock
                    .min(RING)
                    .saturating_sub(s.fq.pending())
                    .min(self.free.len() as u32);
                if want == 0 {
                    continue;
                }
                let mut f = s.fq.fill(want);
                let n = f.insert(self.free.iter().rev().copied()) as usize;
                f.commit();
                drop(f);
                let keep = self.free.len() - n;
                self.free.truncate(keep);
                if s.fq.needs_wakeup() {
                    s.fq.wake();
                }
            }
        }

        /// Receives a batch on socket `s`, lets `decide` rewrite the frames in place and
        /// name each one's egress socket, and queues them there.
        pub fn receive(
            &mut self,
            s: usize,
            decide: impl FnOnce(&mut [&mut [u8]]) -> Vec<Option<usize>>,
        ) -> Moved {
            let mut descs: Vec<XdpDesc> = Vec::with_capacity(BATCH as usize);
            {
                let mut r = self.socks[s].rx.receive(BATCH);
                while let Some(d) = r.read() {
                    descs.push(d);
                }
                r.release();
            }
            let mut moved = Moved {
                rx: descs.len() as u32,
                sent: 0,
                dropped: 0,
                tx_full: 0,
            };
            if descs.is_empty() {
                return moved;
            }
            let base = self.area.ptr.as_ptr();
            let mut frames: Vec<&mut [u8]> = descs
                .iter()
                .map(|d| {
                    // SAFETY: the kernel handed this frame to us on the rx ring: it is
                    // inside the UMEM (addr + len <= FRAMES * FRAME_SIZE, checked by the
                    // kernel at bind/fill time), no ring holds it until we queue it again,
                    // and the descriptors of one batch name distinct frames.
                    unsafe {
                        std::slice::from_raw_parts_mut(base.add(d.addr as usize), d.len as usize)
                    }
                })
                .collect();
            let out = decide(&mut frames);
            drop(frames);
            for (d, o) in descs.into_iter().zip(out) {
                match o {
                    Some(e) => self.socks[e].pending.push(d),
                    None => {
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
                let mut w = sock.tx.transmit(sock.pending.len() as u32);
                let n = w.insert(sock.pending.iter().copied()) as usize;
                w.commit();
                drop(w);
                moved.sent += n as u32;
                for d in sock.pending.drain(n..) {
                    moved.tx_full += 1;
                    self.free.push(d.addr - d.addr % u64::from(FRAME_SIZE));
                }
                sock.pending.clear();
            }
            moved
        }

        /// Wakes the kernel for sockets whose tx rings have work.
        pub fn kick(&mut self) {
            for s in &mut self.socks {
                // Copy mode (veth, most drivers without AF_XDP support) sends only a few
                // dozen descriptors per kick: kick until the ring is drained (bounded).
                let mut kicks = 0;
                while s.tx.pending() > 0 && kicks < 64 {
                    if !s.tx.needs_wakeup() && kicks > 0 {
                        break;
                    }
                    s.tx.wake();
                    kicks += 1;
                }
            }
            let _ = &self.umem;
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
        assert!(s
            .rewrite_data(s.lpm4.lookup(0xC000_0201), "192.0.2.1".parse().unwrap())
            .is_some());
        s.apply(&EngineOp::DelNeighbor {
            ifindex: 5,
            addr: "10.71.2.2".parse().unwrap(),
        });
        assert!(s
            .rewrite_data(s.lpm4.lookup(0xC000_0201), "192.0.2.1".parse().unwrap())
            .is_none());
        s.apply(&EngineOp::DelRoute("192.0.2.0/24".parse().unwrap()));
        assert_eq!(s.lpm4.lookup(0xC000_0201), None);
    }
}
