//! SPF and routing-table build on synthetic areas.
//!
//! Topologies: a grid and a random graph (ring plus random chords, average degree ~4) of
//! 1,000 and 10,000 routers, each router with a /32 loopback stub; the 10,000-router cases
//! also carry 200,000 AS-external LSAs from 100 ASBRs. Prints the median of several runs of:
//! SPF alone (graph build + Dijkstra), intra-area route build, external route build, and,
//! as the reference measured in the same run, a straightforward Dijkstra keyed by router ID
//! in hash maps (what the dense-index design is meant to beat).
//!
//! Run: `cargo bench -p oxr-ospf --bench spf`

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use oxr_ospf::packet::lsa::*;
use oxr_ospf::packet::{Lsa, LsaBody};
use oxr_ospf::route::{external_routes, intra_area_routes, RoutingTable};
use oxr_ospf::spf::{spf, LocalIface};
use oxr_ospf::BACKBONE;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn rid(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(0x0100_0000 + i as u32 + 1)
}

/// Router-LSAs for an undirected graph given as (a, b, cost) edges; links are unnumbered
/// (Link Data = local link number), so the root's interfaces are found by ifindex.
fn router_lsas(n: usize, edges: &[(usize, usize, u16)], asbrs: usize) -> Vec<Lsa> {
    let mut links: Vec<Vec<RouterLink>> = vec![Vec::new(); n];
    for &(a, b, c) in edges {
        for (x, y) in [(a, b), (b, a)] {
            let k = links[x].len() as u32 + 1;
            links[x].push(RouterLink {
                link_id: rid(y),
                link_data: Ipv4Addr::from(k),
                link_type: LinkType::PointToPoint,
                metric: c,
                tos: vec![],
            });
        }
    }
    links
        .into_iter()
        .enumerate()
        .map(|(i, mut l)| {
            l.push(RouterLink {
                link_id: rid(i),
                link_data: Ipv4Addr::BROADCAST,
                link_type: LinkType::Stub,
                metric: 0,
                tos: vec![],
            });
            // Router 1, 1+step, ...: never the root (router 0), whose own LSAs are skipped.
            let flags = if asbrs > 0 && i % (n / asbrs).max(1) == 1 {
                router_flags::E
            } else {
                0
            };
            Lsa::new(
                options::E,
                LSA_ROUTER,
                rid(i),
                rid(i),
                1,
                LsaBody::Router(RouterLsa { flags, links: l }),
            )
        })
        .collect()
}

fn grid(n: usize, rng: &mut Rng) -> Vec<(usize, usize, u16)> {
    let side = (n as f64).sqrt() as usize;
    let mut e = Vec::new();
    for i in 0..n {
        let (r, c) = (i / side, i % side);
        if c + 1 < side && i + 1 < n {
            e.push((i, i + 1, 1 + rng.below(20) as u16));
        }
        if r + 1 < n.div_ceil(side) && i + side < n {
            e.push((i, i + side, 1 + rng.below(20) as u16));
        }
    }
    e
}

fn random(n: usize, rng: &mut Rng) -> Vec<(usize, usize, u16)> {
    let mut e: Vec<_> = (0..n)
        .map(|i| (i, (i + 1) % n, 1 + rng.below(100) as u16))
        .collect();
    while e.len() < 2 * n {
        let (a, b) = (rng.below(n as u64) as usize, rng.below(n as u64) as usize);
        if a != b {
            e.push((a, b, 1 + rng.below(100) as u16));
        }
    }
    e
}

fn externals(n: usize, count: usize, asbrs: usize) -> Vec<Lsa> {
    let step = (n / asbrs).max(1);
    (0..count)
        .map(|i| {
            let adv = rid((i % asbrs) * step + 1);
            Lsa::new(
                options::E,
                LSA_EXTERNAL,
                Ipv4Addr::from(0x6400_0000u32 + ((i as u32) << 8)),
                adv,
                1,
                LsaBody::External(ExternalLsa {
                    mask: Ipv4Addr::new(255, 255, 255, 0),
                    type2: i % 2 == 0,
                    metric: 1 + (i % 50) as u32,
                    forwarding: Ipv4Addr::UNSPECIFIED,
                    tag: 0,
                    tos: vec![],
                }),
            )
        })
        .collect()
}

/// The reference: Dijkstra over router-LSAs looked up by router ID in a hash map at every
/// step, next hops as the first-hop router.
fn reference_spf(root: Ipv4Addr, lsas: &[Lsa]) -> usize {
    let by_id: HashMap<Ipv4Addr, &RouterLsa> = lsas
        .iter()
        .filter_map(|l| match &l.body {
            LsaBody::Router(r) => Some((l.header.adv_router, r)),
            _ => None,
        })
        .collect();
    let mut dist: HashMap<Ipv4Addr, (u32, Ipv4Addr)> = HashMap::new();
    let mut heap = BinaryHeap::new();
    heap.push(Reverse((0u32, u32::from(root), u32::from(root))));
    let mut done = 0;
    while let Some(Reverse((d, v, first))) = heap.pop() {
        let v = Ipv4Addr::from(v);
        if dist.contains_key(&v) {
            continue;
        }
        dist.insert(v, (d, Ipv4Addr::from(first)));
        done += 1;
        let Some(r) = by_id.get(&v) else { continue };
        for l in &r.links {
            if l.link_type != LinkType::PointToPoint || dist.contains_key(&l.link_id) {
                continue;
            }
            let back = by_id
                .get(&l.link_id)
                .is_some_and(|w| w.links.iter().any(|b| b.link_id == v));
            if back {
                let f = if v == root {
                    l.link_id
                } else {
                    Ipv4Addr::from(first)
                };
                heap.push(Reverse((
                    d + u32::from(l.metric),
                    u32::from(l.link_id),
                    u32::from(f),
                )));
            }
        }
    }
    done
}

/// CPU time of this thread (ns) from /proc: on a shared, loaded machine wall time mostly
/// measures the other tenants, so both are reported.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Median wall time and mean CPU time of up to `runs` runs (at least 3, stopping after
/// `budget`). The kernel accounts CPU time in scheduler ticks, so the mean over many runs is
/// what has useful resolution.
fn median(mut runs: usize, budget: Duration, mut f: impl FnMut()) -> (Duration, Duration) {
    let start = Instant::now();
    let cpu0 = cpu_ns();
    let mut wall = Vec::new();
    while runs > 0 {
        let t = Instant::now();
        f();
        wall.push(t.elapsed());
        runs -= 1;
        if start.elapsed() > budget && wall.len() >= 3 {
            break;
        }
    }
    let cpu = Duration::from_nanos(cpu_ns().saturating_sub(cpu0) / wall.len() as u64);
    wall.sort();
    (wall[wall.len() / 2], cpu)
}

fn ms((wall, cpu): (Duration, Duration)) -> String {
    format!(
        "{:7.2}/{:<7.2}",
        wall.as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e3
    )
}

fn main() {
    let ifaces: Vec<LocalIface> = (1..=8)
        .map(|k| LocalIface {
            ifindex: k,
            prefix: "192.0.2.1/32".parse().unwrap(),
        })
        .collect();
    println!(
        "{:<12} {:>7} {:>15} {:>15} {:>15} {:>9} {:>15} {:>8}",
        "topology",
        "routers",
        "spf",
        "reference",
        "intra-routes",
        "externals",
        "ext-routes",
        "speedup"
    );
    println!("(each time: median wall ms / mean CPU ms)");
    for (name, n, ext) in [
        ("grid", 1_000, 0),
        ("random-deg4", 1_000, 0),
        ("grid", 10_000, 200_000),
        ("random-deg4", 10_000, 200_000),
    ] {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ n as u64);
        let edges = if name == "grid" {
            grid(n, &mut rng)
        } else {
            random(n, &mut rng)
        };
        let lsas = router_lsas(n, &edges, if ext > 0 { 100 } else { 0 });
        let exts = externals(n, ext, 100);
        let root = rid(0);
        let runs = if n <= 1000 { 1000 } else { 40 };
        let budget = Duration::from_secs(4);
        let mut reached = 0;
        let t_spf = median(runs, budget, || {
            reached = spf(root, lsas.iter(), &ifaces).reached.len();
        });
        assert_eq!(reached, n, "{name}: not all routers reached");
        let t_ref = median(runs, budget, || {
            assert_eq!(reference_spf(root, &lsas), n);
        });
        let tree = spf(root, lsas.iter(), &ifaces);
        let mut routes = 0;
        let t_intra = median(runs, budget, || {
            let mut t = RoutingTable::default();
            intra_area_routes(&mut t, BACKBONE, &tree, &ifaces);
            routes = t.networks.len();
        });
        assert_eq!(routes, n);
        let mut base = RoutingTable::default();
        intra_area_routes(&mut base, BACKBONE, &tree, &ifaces);
        let t_ext = if ext > 0 {
            let mut ext_routes = 0;
            let d = median(8, budget, || {
                let mut t = base.clone();
                external_routes(&mut t, root, exts.iter());
                ext_routes = t.networks.len() - n;
            });
            assert_eq!(ext_routes, ext);
            ms(d)
        } else {
            format!("{:>15}", "-")
        };
        println!(
            "{:<12} {:>7} {} {} {} {:>9} {} {:>7.1}x",
            name,
            n,
            ms(t_spf),
            ms(t_ref),
            ms(t_intra),
            ext,
            t_ext,
            t_ref.1.as_secs_f64() / t_spf.1.as_secs_f64()
        );
    }
    println!("(speedup: reference CPU time / spf CPU time; ext-routes includes cloning and");
    println!(" dropping the table it fills)");
}
