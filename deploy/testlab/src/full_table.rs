//! The real full Internet table the benches run on (`../shared/data/full-table-prefixes.txt.gz`,
//! or `OXR_FULL_TABLE`): one CIDR a line, gzip.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use ipnet::IpNet;

/// `OXR_FULL_TABLE`, else the shared data directory beside the workspace.
pub fn path() -> PathBuf {
    std::env::var_os("OXR_FULL_TABLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/data/full-table-prefixes.txt.gz")
        })
}

/// The table's distinct prefixes (host bits cleared; no default route, which is not a
/// table entry) in file order, the first `limit` if given. Panics naming the file if it
/// cannot be read.
pub fn load(limit: Option<usize>) -> Vec<IpNet> {
    let path = path();
    let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for line in BufReader::new(flate2::read::GzDecoder::new(f)).lines() {
        let line = line.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let Ok(p) = line.trim().parse::<IpNet>() else {
            continue;
        };
        let p = p.trunc();
        if p.prefix_len() == 0 || !seen.insert(p) {
            continue;
        }
        out.push(p);
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
    }
    out
}

/// `prefixes` in a fixed pseudo-random order (Fisher-Yates with xorshift), as a BGP peer
/// sends them (BIRD: hash order), the same in every run.
pub fn shuffled(prefixes: &[IpNet]) -> Vec<IpNet> {
    let mut v = prefixes.to_vec();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffled_is_a_fixed_permutation() {
        let v: Vec<IpNet> = (0..100u32)
            .map(|i| IpNet::V4(ipnet::Ipv4Net::new((i << 8).into(), 24).unwrap()))
            .collect();
        let a = shuffled(&v);
        assert_ne!(a, v, "the order changes");
        assert_eq!(a, shuffled(&v), "the same in every run");
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, v, "nothing lost or repeated");
    }
}
