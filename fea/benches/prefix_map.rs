//! oxr-fea's route table ([`PrefixMap`]) with the full table, the way the kernel backend's
//! planner uses it (a lookup, then an insert, per route), in three orders: sorted, the
//! RIB's feed order for IPv4 (/16 buckets bit-reversed), and random. Reference in the same
//! run: `std::collections::BTreeMap<IpNet, u32>`. Also the longest time a block of
//! [`BLOCK`] routes took: a stall there holds up the planner (and, if longer than its
//! pipeline of datagrams, the kernel).
//!
//! ```text
//! cargo bench -p oxr-fea --bench prefix_map
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use oxr_fea::table::{PrefixMap, Slot};

mod common;

/// Routes timed together (a datagram's worth is 64; timing each one costs more than the
/// operation).
const BLOCK: usize = 1024;

/// A deterministic shuffle (xorshift), so runs compare.
fn shuffled(mut v: Vec<IpNet>) -> Vec<IpNet> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

/// IPv4 by /16 bucket in bit-reversed bucket order, then IPv6 sorted: how oxr-rib sends a
/// backlog.
fn feed_order(mut v: Vec<IpNet>) -> Vec<IpNet> {
    v.sort_by_key(|p| match p {
        IpNet::V4(n) => {
            let a = u32::from(n.network());
            (
                0u8,
                ((a >> 16) as u16).reverse_bits() as u128,
                a as u128,
                n.prefix_len(),
            )
        }
        IpNet::V6(n) => (1, u128::from(n.network()), 0, n.prefix_len()),
    });
    v
}

struct Run {
    total: Duration,
    worst: Duration,
    heap_mib: f64,
}

fn prefix_map(order: &[IpNet]) -> Run {
    let mut m = PrefixMap::default();
    let mut worst = Duration::ZERO;
    let t = Instant::now();
    for (b, block) in order.chunks(BLOCK).enumerate() {
        let s = Instant::now();
        for (i, p) in block.iter().enumerate() {
            let had = m.get(p).is_some();
            m.insert(*p, Slot::new((b * BLOCK + i) as u32 | had as u32, 0));
        }
        worst = worst.max(s.elapsed());
    }
    let total = t.elapsed();
    assert_eq!(m.len(), order.len());
    Run {
        total,
        worst,
        heap_mib: m.heap_bytes() as f64 / (1 << 20) as f64,
    }
}

fn btree(order: &[IpNet]) -> Run {
    let mut m = BTreeMap::new();
    let mut worst = Duration::ZERO;
    let t = Instant::now();
    for (b, block) in order.chunks(BLOCK).enumerate() {
        let s = Instant::now();
        for (i, p) in block.iter().enumerate() {
            let had = m.contains_key(p);
            m.insert(*p, (b * BLOCK + i) as u32 | had as u32);
        }
        worst = worst.max(s.elapsed());
    }
    let total = t.elapsed();
    assert_eq!(m.len(), order.len());
    // Node layout is private: this is only the entries' own size.
    let entry = std::mem::size_of::<(IpNet, u32)>();
    Run {
        total,
        worst,
        heap_mib: (m.len() * entry) as f64 / (1 << 20) as f64,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let table = common::load_table(None);
    println!("PrefixMap: {} prefixes, get + insert each", table.len());
    println!("| order | PrefixMap (ns/route) | longest block (ms) | heap (MiB) | BTreeMap (ns/route) | longest block (ms) | ratio |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut sorted = table.clone();
    sorted.sort();
    for (name, order) in [
        ("sorted", sorted),
        ("feed order", feed_order(table.clone())),
        ("random", shuffled(table)),
    ] {
        let ours = prefix_map(&order);
        let reference = btree(&order);
        let ns = |r: &Run| r.total.as_nanos() as f64 / order.len() as f64;
        println!(
            "| {name} | {:.0} | {:.2} | {:.1} | {:.0} | {:.2} | {:.2}x |",
            ns(&ours),
            ours.worst.as_secs_f64() * 1e3,
            ours.heap_mib,
            ns(&reference),
            reference.worst.as_secs_f64() * 1e3,
            ns(&ours) / ns(&reference),
        );
    }
}
