//! What the FEA's benches share: the full table.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use ipnet::IpNet;

/// The full table's distinct prefixes (host bits cleared, no default route), in file
/// order: `OXR_FULL_TABLE` or `../shared/data/full-table-prefixes.txt.gz`, the first
/// `limit` if given.
pub fn load_table(limit: Option<usize>) -> Vec<IpNet> {
    let path = std::env::var_os("OXR_FULL_TABLE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/data/full-table-prefixes.txt.gz")
        });
    let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let r = BufReader::new(flate2::read::GzDecoder::new(f));
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for line in r.lines() {
        let line = line.expect("reading table");
        let Ok(p) = line.trim().parse::<IpNet>() else {
            continue;
        };
        let p = p.trunc();
        // The kernel would take a default route too, but it is not a table entry.
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
