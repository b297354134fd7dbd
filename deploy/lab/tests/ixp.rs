//! The IXP lab (deploy/labs/ixp.toml): a BIRD route server and four members (two oxr, two
//! BIRD) on one bridged LAN. `up --wait`, every member learns every other member's prefix
//! (in its kernel FIB, next hop straight across the LAN), a ping from an oxr member to a
//! BIRD member, `status` shows the sessions, `down` leaves no namespace or process.
//!
//! Needs root and bird (otherwise SKIPPED) and the workspace's binaries beside oxr-lab.

use std::path::Path;
use std::time::{Duration, Instant};

use oxr_testlab::lab_file::{text, LabUp};

fn skip(test: &str, why: &str) {
    println!("SKIPPED ({why}): {test}");
    eprintln!("SKIPPED ({why}): {test}");
}

/// The kernel route to `prefix` in a member's namespace ("" if none).
fn route(lab: &LabUp, node: &str, prefix: &str) -> String {
    let o = lab.exec(node, &["ip", "-4", "route", "show", prefix]);
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn ixp_members_learn_each_other_through_the_route_server() {
    let test = "ixp_members_learn_each_other_through_the_route_server";
    if !oxr_testlab::ready(
        test,
        &["oxr-routerd", "oxrsh", "oxr-fea", "oxr-rib", "oxr-bgp"],
    ) {
        return;
    }
    if !Path::new("/usr/sbin/bird").exists() {
        return skip(test, "needs bird");
    }
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../labs/ixp.toml");
    let lab = LabUp::up(&file, "ixp", 60);
    // rs, m1, m2, b3, b4 and the switch.
    assert_eq!(lab.namespaces().len(), 6);

    let members = [("m1", 1), ("m2", 2), ("b3", 3), ("b4", 4)];
    let deadline = Instant::now() + Duration::from_secs(40);
    let missing = loop {
        let mut missing = Vec::new();
        for (m, i) in members {
            for (_, j) in members.iter().filter(|(_, j)| *j != i) {
                let r = route(&lab, m, &format!("10.65.{j}.0/24"));
                // Learned through the route server, but the next hop is the member itself.
                if !r.contains(&format!("via 192.0.2.{j} ")) {
                    missing.push(format!("{m} lacks 10.65.{j}.0/24 via 192.0.2.{j} ({r:?})"));
                }
            }
        }
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(missing.is_empty(), "{missing:#?}");

    let ping = lab.exec(
        "m1",
        &["ping", "-c", "1", "-W", "2", "-I", "10.65.1.1", "10.65.3.1"],
    );
    assert!(ping.status.success(), "ping m1 -> b3:\n{}", text(&ping));

    let status = lab.oxr_lab(&["status", &lab.name]);
    let st = text(&status);
    assert!(status.status.success(), "{st}");
    for (node, want) in [
        ("m1", "bgp 1/1 Established"),
        ("m2", "bgp 1/1 Established"),
        ("rs", "bgp 4/4 Established"),
        ("b3", "bgp 1/1 Established"),
    ] {
        assert!(
            st.lines().any(|l| l.starts_with(node) && l.contains(want)),
            "status of {node} should say {want}:\n{st}"
        );
    }
    assert!(st
        .lines()
        .any(|l| l.starts_with("lan") && l.contains("switch")));

    let down = lab.oxr_lab(&["down", &lab.name]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(lab.namespaces().is_empty(), "{:?}", lab.namespaces());
    assert!(!lab.root().join(&lab.name).exists());
}
