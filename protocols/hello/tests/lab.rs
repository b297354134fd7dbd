//! The tutorial's lab, run as the guide runs it: `oxr-lab up deploy/labs/hello.toml`
//! (three oxr routers in a chain, each oxr-routerd starting oxr-hello, which it was not
//! built with), then a ping from r1's loopback to r3's over the kernel routes oxr-hello
//! installed (protocol 201), `show hello` through oxrsh, and `oxr-lab down`.
//! Needs root and the workspace's binaries (deploy/test-all.sh builds them first).

use std::path::Path;
use std::time::Duration;

use oxr_testlab::lab_file::LabUp;

#[test]
fn three_hello_routers_forward_loopback_to_loopback() {
    if !oxr_testlab::require_root("three_hello_routers_forward_loopback_to_loopback") {
        return;
    }
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/labs/hello.toml");
    let lab = LabUp::up(&file, "hello", 60);

    // Every loopback reaches every router, through the kernel, via the neighbour.
    let want = [
        ("r1", "10.255.0.3 via 10.0.12.2 dev eth0"),
        ("r1", "10.0.23.0/24 via 10.0.12.2 dev eth0"),
        ("r3", "10.255.0.1 via 10.0.23.2 dev eth0"),
        ("r2", "10.255.0.1 via 10.0.12.1 dev eth0"),
        ("r2", "10.255.0.3 via 10.0.23.3 dev eth1"),
    ];
    for (node, route) in want {
        lab.wait_fib(node, &[route], Duration::from_secs(20));
    }
    lab.ping("r1", "10.255.0.1", "10.255.0.3", 3);

    // The tutorial's last step: the routes in oxrsh.
    let shown = lab.sh("r1", "show hello");
    assert!(
        shown.contains("10.255.0.3/32") && shown.contains("10.0.12.2"),
        "{shown}"
    );
    let rib = lab.sh("r1", "show route protocol hello");
    assert!(rib.contains("10.255.0.3/32"), "{rib}");
}
