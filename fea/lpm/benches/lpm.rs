//! Full-table benchmark: oxr-lpm (Poptrie) against the `prefix-trie` crate and a plain binary
//! trie, IPv4 and IPv6, one core. Run: `cargo bench -p oxr-lpm --bench lpm`.
//!
//! Prints, per structure: build time, memory, update rate (remove + re-insert of sampled
//! routes on the built table), and lookups/s for uniformly random addresses and for addresses
//! drawn inside the table's prefixes (prefix chosen uniformly, host bits random). Each rate
//! is measured `ROUNDS` times in turn with the others, best kept. Then checks every prefix's first and last address
//! against the binary trie (after the update churn).
//!
//! Env: `OXR_FULL_TABLE` (table path), `OXR_LPM_NEXT_HOPS` (distinct next hops, default 64),
//! `OXR_LPM_FAMILY` (`v4` or `v6` to run one family only).

#[path = "../tests/common/mod.rs"]
mod common;

use common::{spread_nh, Rng};
use oxr_lpm::key::Key;
use oxr_lpm::reference::BinaryTrie;
use oxr_lpm::{NextHopId, Poptrie};
use prefix_trie::PrefixMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

/// How long each rate is measured per round (updates: in total).
const BUDGET: Duration = Duration::from_millis(450);
/// Rounds over all lookup figures. The machine is shared: measuring every figure in turn,
/// several times, and keeping each one's best spreads interference over all of them.
const ROUNDS: u32 = 4;
/// Addresses per lookup set: 2^20, so that lookups spread over the whole table as the
/// destinations of a busy link do (a small set would let the tries live in cache).
const N_ADDRS: usize = 1 << 20;
/// Addresses per `lookup_batch` call, as a dataplane's receive burst.
const BURST: usize = 256;
/// Routes removed and re-added in the update measurement.
const N_UPDATES: usize = 200_000;

/// Heap accounting, to report the memory of structures that do not report their own.
#[allow(unsafe_code)]
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

    pub static LIVE: AtomicIsize = AtomicIsize::new(0);

    pub struct Counting;

    // SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
    // `System`'s guarantees carry over; the counter has no effect on the allocations.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            LIVE.fetch_add(l.size() as isize, Relaxed);
            // SAFETY: forwarded contract (see the impl).
            unsafe { System.alloc(l) }
        }
        unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
            LIVE.fetch_add(l.size() as isize, Relaxed);
            // SAFETY: forwarded contract (see the impl).
            unsafe { System.alloc_zeroed(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            LIVE.fetch_sub(l.size() as isize, Relaxed);
            // SAFETY: forwarded contract (see the impl).
            unsafe { System.dealloc(p, l) }
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
            LIVE.fetch_add(new as isize - l.size() as isize, Relaxed);
            // SAFETY: forwarded contract (see the impl).
            unsafe { System.realloc(p, l, new) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    pub fn live() -> isize {
        LIVE.load(Relaxed)
    }
}

/// Builds with `f`, returning the structure, the build CPU time and the heap it kept.
fn build<T>(f: impl FnOnce() -> T) -> (T, Duration, isize) {
    let before = counting::live();
    let c = Clock::start();
    let t = f();
    let dt = Duration::from_secs_f64(account(&c));
    (t, dt, counting::live() - before)
}

/// Nanoseconds this thread has spent on a CPU (Linux schedstat), if readable. The machine
/// this runs on is shared, so rates are per second of CPU actually received, not of wall
/// time (both are printed at the end).
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Wall and CPU seconds spent by `f`.
struct Clock {
    wall: Instant,
    cpu: Option<u64>,
}

impl Clock {
    fn start() -> Self {
        Clock {
            wall: Instant::now(),
            cpu: thread_cpu_ns(),
        }
    }
    fn wall(&self) -> Duration {
        self.wall.elapsed()
    }
    /// CPU seconds since start (wall seconds when schedstat is unavailable).
    fn secs(&self) -> f64 {
        match (self.cpu, thread_cpu_ns()) {
            (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e9,
            _ => self.wall.elapsed().as_secs_f64(),
        }
    }
}

/// Sum of CPU and wall seconds over all measurements, to report how contended the run was.
static CPU_WALL: std::sync::Mutex<(f64, f64)> = std::sync::Mutex::new((0.0, 0.0));

fn account(c: &Clock) -> f64 {
    let secs = c.secs();
    if let Ok(mut t) = CPU_WALL.lock() {
        t.0 += secs;
        t.1 += c.wall().as_secs_f64();
    }
    secs
}

/// Trials per rate and round; the best is kept, since interference only slows.
const TRIALS: u32 = 3;

/// Repeats `pass` (which does `n` operations) for `BUDGET` split into `TRIALS` trials;
/// the best trial's operations per CPU second.
fn rate(n: usize, mut pass: impl FnMut() -> u64) -> f64 {
    let mut best = 0f64;
    let mut sink = 0u64;
    for _ in 0..TRIALS {
        let c = Clock::start();
        let mut ops = 0usize;
        while c.wall() < BUDGET / TRIALS {
            sink = sink.wrapping_add(pass());
            ops += n;
        }
        best = best.max(ops as f64 / account(&c));
    }
    black_box(sink);
    best
}

/// Lookups/s of `f` one address per call. Every structure stores its answers in a burst
/// buffer handed to `black_box`, so none is charged for consuming them differently.
fn single_rate<K: Copy>(addrs: &[K], f: impl Fn(K) -> Option<NextHopId>) -> f64 {
    let mut out = vec![None; BURST];
    rate(addrs.len(), || {
        for c in addrs.chunks(BURST) {
            for (o, &a) in out.iter_mut().zip(c) {
                *o = f(a);
            }
            black_box(&mut out);
        }
        0
    })
}

/// Lookups/s of `lookup_batch` in bursts of `BURST`.
fn batch_rate<K: Key>(t: &Poptrie<K>, addrs: &[K]) -> f64 {
    let mut out = vec![None; BURST];
    rate(addrs.len(), || {
        for c in addrs.chunks(BURST) {
            t.lookup_batch(c, &mut out[..c.len()]);
            black_box(&mut out);
        }
        0
    })
}

struct Row {
    name: &'static str,
    build: Duration,
    bytes: isize,
    note: String,
    updates: f64,
    random: f64,
    in_table: f64,
}

fn print_rows(rows: &[Row]) {
    println!(
        "  {:<22} {:>9} {:>10} {:>12} {:>11} {:>11}  notes",
        "structure", "build ms", "heap MiB", "updates/s", "random M/s", "in-tbl M/s"
    );
    for r in rows {
        println!(
            "  {:<22} {:>9.0} {:>10.2} {:>12.0} {:>11.1} {:>11.1}  {}",
            r.name,
            r.build.as_secs_f64() * 1e3,
            r.bytes as f64 / (1 << 20) as f64,
            r.updates,
            r.random / 1e6,
            r.in_table / 1e6,
            r.note
        );
    }
}

/// Per-family adapter for `prefix-trie`'s prefix type.
trait Family: Key {
    fn host(self) -> Self::Net;
    fn random(rng: &mut Rng) -> Self;
    /// This network address with the host bits (past `len`) taken from `r`.
    fn with_host(self, r: Self, len: u8) -> Self;
}

impl Family for u32 {
    fn host(self) -> ipnet::Ipv4Net {
        ipnet::Ipv4Net::new_assert(self.into(), 32)
    }
    fn random(rng: &mut Rng) -> Self {
        rng.next_u64() as u32
    }
    fn with_host(self, r: Self, len: u8) -> Self {
        self | (r & u32::MAX.checked_shr(u32::from(len)).unwrap_or(0))
    }
}

impl Family for u128 {
    fn host(self) -> ipnet::Ipv6Net {
        ipnet::Ipv6Net::new_assert(self.into(), 128)
    }
    fn random(rng: &mut Rng) -> Self {
        rng.next_u128()
    }
    fn with_host(self, r: Self, len: u8) -> Self {
        self | (r & u128::MAX.checked_shr(u32::from(len)).unwrap_or(0))
    }
}

fn bench_family<K>(label: &str, nets: &[K::Net], n_hops: u32)
where
    K: Family,
    K::Net: prefix_trie::Prefix,
{
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let routes: Vec<(K::Net, NextHopId)> = nets
        .iter()
        .enumerate()
        .map(|(i, &n)| (n, spread_nh(i, n_hops)))
        .collect();
    let random: Vec<K> = (0..N_ADDRS).map(|_| K::random(&mut rng)).collect();
    let in_table: Vec<K> = (0..N_ADDRS)
        .map(|_| {
            let (a, l) = K::from_net(&nets[rng.below(nets.len())]);
            a.with_host(K::random(&mut rng), l)
        })
        .collect();
    let mut samples: Vec<usize> = (0..N_UPDATES.min(nets.len()))
        .map(|_| rng.below(nets.len()))
        .collect();
    samples.sort_unstable();
    samples.dedup();
    println!(
        "\n{label}: {} prefixes, {n_hops} distinct next hops, {} addresses per set, \
         lookup_batch bursts of {BURST}; lookup rates: best of {ROUNDS}x{TRIALS} trials of {:?}",
        nets.len(),
        N_ADDRS,
        BUDGET / TRIALS
    );

    // ---- builds ----
    let (mut pt, b_pt, h_pt) = build(|| Poptrie::<K>::from_routes(routes.iter().copied()));
    let st = pt.stats();
    let unique = Poptrie::<K>::from_routes(
        nets.iter()
            .enumerate()
            .map(|(i, &n)| (n, NextHopId::new(i as u32).expect("fits"))),
    )
    .memory_bytes();
    let (mut pm, b_pm, h_pm) = build(|| {
        let mut m = PrefixMap::<K::Net, u32>::new();
        for &(n, nh) in &routes {
            m.insert(n, nh.get());
        }
        m
    });
    let pm_lookup = |pm: &PrefixMap<K::Net, u32>, a: K| {
        pm.get_lpm(&a.host())
            .map(|(_, &v)| NextHopId::new(v).expect("fits"))
    };
    let (mut bt, b_bt, h_bt) = build(|| BinaryTrie::<K>::from_routes(routes.iter().copied()));

    // ---- lookups: all figures in turn, ROUNDS times, best kept (see `rate`) ----
    let mut best = [0f64; 8];
    for _ in 0..ROUNDS {
        let figures = [
            batch_rate(&pt, &random),
            batch_rate(&pt, &in_table),
            single_rate(&random, |a| pt.lookup(a)),
            single_rate(&in_table, |a| pt.lookup(a)),
            single_rate(&random, |a| pm_lookup(&pm, a)),
            single_rate(&in_table, |a| pm_lookup(&pm, a)),
            single_rate(&random, |a| bt.lookup(a)),
            single_rate(&in_table, |a| bt.lookup(a)),
        ];
        for (b, f) in best.iter_mut().zip(figures) {
            *b = b.max(f);
        }
    }
    let [r_pt, i_pt, r_pt1, i_pt1, r_pm, i_pm, r_bt, i_bt] = best;

    // ---- updates ----
    let u_pt = update_rate(&samples, |i| {
        let n = routes[i].0;
        pt.remove(n);
        pt.insert(n, routes[i].1);
    });
    let st_after = pt.stats();
    let u_pm = update_rate(&samples, |i| {
        let n = routes[i].0;
        pm.remove(&n);
        pm.insert(n, routes[i].1.get());
    });
    let u_bt = update_rate(&samples, |i| {
        let n = routes[i].0;
        bt.remove(n);
        bt.insert(n, routes[i].1);
    });

    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    print_rows(&[
        Row {
            name: "oxr-lpm lookup_batch",
            build: b_pt,
            bytes: h_pt,
            note: format!(
                "lookup structure {:.2} MiB ({} nodes, {} leaves; {:.2} MiB after churn; \
                 {:.2} MiB with unique next hops), writer state ~{:.1} MiB",
                mib(st.lookup_bytes),
                st.nodes,
                st.leaves,
                mib(st_after.lookup_bytes),
                mib(unique),
                mib(st.control_bytes)
            ),
            updates: u_pt,
            random: r_pt,
            in_table: i_pt,
        },
        Row {
            name: "oxr-lpm lookup",
            build: b_pt,
            bytes: h_pt,
            note: "same table, one address per call".into(),
            updates: u_pt,
            random: r_pt1,
            in_table: i_pt1,
        },
        Row {
            name: "prefix-trie 0.10",
            build: b_pm,
            bytes: h_pm,
            note: "PrefixMap::get_lpm on a host prefix".into(),
            updates: u_pm,
            random: r_pm,
            in_table: i_pm,
        },
        Row {
            name: "binary trie (ref)",
            build: b_bt,
            bytes: h_bt,
            note: format!("{:.2} MiB of nodes", mib(bt.memory_bytes())),
            updates: u_bt,
            random: r_bt,
            in_table: i_bt,
        },
    ]);
    println!(
        "  ratio oxr-lpm batch / prefix-trie: random {:.1}x, in-table {:.1}x; \
         single / prefix-trie: {:.1}x, {:.1}x",
        r_pt / r_pm,
        i_pt / i_pm,
        r_pt1 / r_pm,
        i_pt1 / i_pm
    );

    // ---- correctness over the whole table, after the churn ----
    let mut probes = Vec::with_capacity(nets.len() * 2);
    for n in nets {
        let (a, l) = K::from_net(n);
        probes.push(a);
        probes.push(a.last(u32::from(l)));
    }
    probes.extend_from_slice(&random[..1 << 16]);
    let mut got = vec![None; probes.len()];
    pt.lookup_batch(&probes, &mut got);
    let bad = probes
        .iter()
        .zip(&got)
        .filter(|(a, o)| **o != bt.lookup(**a))
        .count();
    let bad_pm = probes
        .iter()
        .zip(&got)
        .filter(|(a, o)| **o != pm_lookup(&pm, **a))
        .count();
    println!(
        "  check: {} addresses (every prefix's first and last, 65536 random): {} \
         mismatches vs binary trie, {} vs prefix-trie",
        probes.len(),
        bad,
        bad_pm
    );
    assert_eq!(bad + bad_pm, 0, "{label}: lookup mismatches");
}

/// Measures remove + re-insert of the sampled routes (two updates each), for `BUDGET`.
fn update_rate(samples: &[usize], mut op: impl FnMut(usize)) -> f64 {
    let c = Clock::start();
    let mut n = 0usize;
    for &i in samples.iter().cycle() {
        op(i);
        n += 2;
        if n.is_multiple_of(256) && c.wall() >= BUDGET {
            break;
        }
    }
    n as f64 / account(&c)
}

fn main() {
    let Some((v4, v6)) = common::load_full_table() else {
        return;
    };
    let n_hops = std::env::var("OXR_LPM_NEXT_HOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let only = std::env::var("OXR_LPM_FAMILY").unwrap_or_default();
    println!("oxr-lpm full-table benchmark (one core; rates per second of CPU time received)");
    if only != "v6" {
        bench_family::<u32>("IPv4", &v4, n_hops);
    }
    if only != "v4" {
        bench_family::<u128>("IPv6", &v6, n_hops);
    }
    if let Ok(t) = CPU_WALL.lock() {
        println!(
            "\nmeasured: {:.1} s CPU over {:.1} s wall ({:.0}% of a core: the machine was shared)",
            t.0,
            t.1,
            100.0 * t.0 / t.1
        );
    }
}
