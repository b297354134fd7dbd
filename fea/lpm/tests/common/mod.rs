//! Loading the real full Internet table, shared by the full-table test and the benchmark
//! (which includes this file with `#[path]`).

#![allow(dead_code)] // each includer uses a different subset

use flate2::read::GzDecoder;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use oxr_lpm::NextHopId;
use std::io::Read;
use std::path::PathBuf;

/// `OXR_FULL_TABLE`, or the shared data directory beside the workspace.
pub fn full_table_path() -> PathBuf {
    match std::env::var_os("OXR_FULL_TABLE") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/full-table-prefixes.txt.gz"),
    }
}

/// The full table's IPv4 and IPv6 prefixes, or `None` (with a printed notice) when the file
/// is absent.
pub fn load_full_table() -> Option<(Vec<Ipv4Net>, Vec<Ipv6Net>)> {
    let path = full_table_path();
    let Ok(file) = std::fs::File::open(&path) else {
        println!(
            "SKIPPED: full table not found at {} (set OXR_FULL_TABLE)",
            path.display()
        );
        return None;
    };
    let mut text = String::new();
    GzDecoder::new(file)
        .read_to_string(&mut text)
        .expect("full table is gzip text");
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.parse::<IpNet>() {
            Ok(IpNet::V4(n)) => v4.push(n.trunc()),
            Ok(IpNet::V6(n)) => v6.push(n.trunc()),
            Err(e) => panic!("bad prefix {line:?}: {e}"),
        }
    }
    Some((v4, v6))
}

/// A next hop for the i-th prefix drawn from `n_hops` values, spread by a hash so that
/// neighbouring prefixes usually differ (as they do behind different peers).
pub fn spread_nh(i: usize, n_hops: u32) -> NextHopId {
    let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    NextHopId::new(h as u32 % n_hops).expect("small next hop")
}

/// xorshift64*: a fast, reproducible source of addresses.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn next_u128(&mut self) -> u128 {
        (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64())
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}
