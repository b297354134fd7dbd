//! Five oxr-rip routers in a ring (deploy/labs/rip-ring.toml, RIP timers shortened 15-fold:
//! update 2 s, timeout 12 s, garbage collection 8 s), brought up with oxr-lab: every router's
//! kernel FIB gets every loopback by the shorter way round; then the r1 - r2 link is cut and
//! both ends must reach each other the long way round within the route timeout.
//! Needs root and the workspace's binaries (deploy/test-all.sh builds them first).

use std::path::Path;
use std::time::Duration;

use oxr_testlab::lab_file::{text, LabUp};

/// The route timeout of the lab file (RFC 2453's 180 s, shortened 15-fold).
const TIMEOUT: Duration = Duration::from_secs(12);

#[test]
fn five_router_ring_converges_and_reconverges_after_a_link_cut() {
    if !oxr_testlab::require_root("five_router_ring_converges_and_reconverges_after_a_link_cut") {
        return;
    }
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/labs/rip-ring.toml");
    let lab = LabUp::up(&file, "ripring", 60);

    // Converged: each loopback the shorter way round (two hops at most).
    let converge = Duration::from_secs(30);
    lab.wait_fib(
        "r1",
        &[
            "10.255.0.2 via 10.0.12.2 dev eth0",
            "10.255.0.3 via 10.0.12.2 dev eth0",
            "10.255.0.4 via 10.0.15.5 dev eth1",
            "10.255.0.5 via 10.0.15.5 dev eth1",
            "10.0.34.0/24",
        ],
        converge,
    );
    lab.wait_fib(
        "r3",
        &[
            "10.255.0.1 via 10.0.23.2 dev eth0",
            "10.255.0.5 via 10.0.34.4 dev eth1",
            "10.0.15.0/24",
        ],
        converge,
    );

    // Cut r1 - r2 (delete the veth pair: `link set down` would be undone by oxr-fea, which
    // keeps configured interfaces up): both ends go the long way round.
    let cut = lab.exec("r1", &["ip", "link", "del", "eth0"]);
    assert!(cut.status.success(), "{}", text(&cut));
    let r1 = lab.wait_fib(
        "r1",
        &[
            "10.255.0.2 via 10.0.15.5 dev eth1",
            "10.255.0.3 via 10.0.15.5 dev eth1",
        ],
        TIMEOUT,
    );
    let r2 = lab.wait_fib(
        "r2",
        &[
            "10.255.0.1 via 10.0.23.3 dev eth1",
            "10.255.0.5 via 10.0.23.3 dev eth1",
        ],
        TIMEOUT,
    );
    println!("reconverged after the cut: r1 in {r1:?}, r2 in {r2:?} (timeout {TIMEOUT:?})");
    lab.ping("r1", "10.255.0.1", "10.255.0.2", 2);
}
