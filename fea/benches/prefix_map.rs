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
use oxr_testlab::full_table;

/// Routes timed together (a datagram's worth is 64; timing each one costs more than the
/// operation).
const BLOCK: usize = 1024;

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
}

/// Runs `op` on every route of `order` (with its index), timing the whole and the slowest
/// block of [`BLOCK`].
fn timed(order: &[IpNet], mut op: impl FnMut(usize, &IpNet)) -> Run {
    let mut worst = Duration::ZERO;
    let t = Instant::now();
    for (b, block) in order.chunks(BLOCK).enumerate() {
        let s = Instant::now();
        for (i, p) in block.iter().enumerate() {
            op(b * BLOCK + i, p);
        }
        worst = worst.max(s.elapsed());
    }
    Run {
        total: t.elapsed(),
        worst,
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let table = full_table::load(None);
    println!("PrefixMap: {} prefixes, get + insert each", table.len());
    println!("| order | PrefixMap (ns/route) | longest block (ms) | heap (MiB) | BTreeMap (ns/route) | longest block (ms) | ratio |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut sorted = table.clone();
    sorted.sort();
    for (name, order) in [
        ("sorted", sorted),
        ("feed order", feed_order(table.clone())),
        ("random", full_table::shuffled(&table)),
    ] {
        let mut map = PrefixMap::default();
        let ours = timed(&order, |i, p| {
            let had = map.get(p).is_some();
            map.insert(*p, Slot::new(i as u32 | had as u32, 0));
        });
        assert_eq!(map.len(), order.len());
        let mut tree = BTreeMap::new();
        let reference = timed(&order, |i, p| {
            let had = tree.contains_key(p);
            tree.insert(*p, i as u32 | had as u32);
        });
        assert_eq!(tree.len(), order.len());
        let ns = |r: &Run| r.total.as_nanos() as f64 / order.len() as f64;
        println!(
            "| {name} | {:.0} | {:.2} | {:.1} | {:.0} | {:.2} | {:.2}x |",
            ns(&ours),
            ours.worst.as_secs_f64() * 1e3,
            map.heap_bytes() as f64 / (1 << 20) as f64,
            ns(&reference),
            reference.worst.as_secs_f64() * 1e3,
            ns(&ours) / ns(&reference),
        );
    }
}
