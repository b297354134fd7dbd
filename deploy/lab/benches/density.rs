//! The density benchmark (see `oxr_lab::density`): 1, 10, 50 and 100 idle virtual routers
//! on an OSPF ring, per kind (oxr, BIRD, FRR), memory per router and time to converge.
//!
//! ```text
//! sudo cargo bench -p oxr-lab --bench density            # needs root, bird, frr
//! DENSITY_COUNTS=1,10 DENSITY_KINDS=oxr,bird DENSITY_TIMEOUT=120 sudo -E cargo bench ...
//! ```
//!
//! oxr-routerd and friends are looked for beside this bench's oxr-lab (build them first:
//! `cargo build --release -p oxr-lab -p oxr-routerd -p oxrsh -p oxr-fea -p oxr-rib
//! -p oxr-ospf`), or in `OXR_BIN_DIR`. `oxr-lab density` runs the same.

use std::path::{Path, PathBuf};
use std::time::Duration;

use oxr_lab::ops::Ctx;

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        println!("SKIPPED (needs root): density");
        return;
    }
    let bin_dir = std::env::var_os("OXR_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_BIN_EXE_oxr-lab"))
                .parent()
                .unwrap()
                .to_path_buf()
        });
    let root = tempfile::Builder::new()
        .prefix("oxr-density")
        .tempdir()
        .expect("temp dir");
    let ctx = Ctx {
        root: root.path().into(),
        bin_dir,
    };
    let counts: Vec<usize> = env_list("DENSITY_COUNTS", "1,10,50,100")
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let kinds = env_list("DENSITY_KINDS", "oxr,bird,frr");
    let timeout = Duration::from_secs(
        std::env::var("DENSITY_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(120),
    );
    oxr_lab::density::run_all(&ctx, &counts, &kinds, timeout);
}
