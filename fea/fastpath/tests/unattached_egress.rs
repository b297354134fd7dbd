//! A route whose egress the fast path is not attached to: the xdp engine must hand the frame
//! to the kernel untouched, so that the kernel forwards it once.
//!
//! ```text
//!   hA (a0 10.73.1.2) ── r0 [xdp attached]  router  r1 [not attached] ── hB (b0 10.73.2.2)
//! ```
//!
//! The XDP program sets up the devmap redirect before it rewrites anything and falls back to
//! XDP_PASS when the egress is not in the devmap. If it decremented the TTL before finding
//! that out, the kernel would decrement it again: a ping sent with TTL 2 would then expire
//! at the router instead of reaching hB.

use std::time::Duration;

use oxr_testlab::{require_root, veth, wait_until, Netns, Router, Scratch};

const CONFIG: &str = r#"
[router]
name = "unatt"
router-id = "10.73.255.1"

[interfaces.r0]
address = ["10.73.1.1/24"]
[interfaces.r1]
address = ["10.73.2.1/24"]

[rib]
startup-hold-secs = 1

[fea]
dataplane = "fastpath"
[fea.fastpath]
engine = "xdp"
interfaces = ["r0"]
"#;

fn show_fastpath(r: &Router) -> serde_json::Value {
    let (ok, out, _) = r.sh(&["show fastpath | json"]);
    if !ok {
        return serde_json::Value::Null;
    }
    serde_json::from_str(&out).unwrap_or(serde_json::Value::Null)
}

fn counter(v: &serde_json::Value, name: &str) -> u64 {
    v["counters"][name].as_u64().unwrap_or(0)
}

fn ping(ns: &Netns, args: &[&str]) -> (bool, String) {
    let mut all = vec!["ping"];
    all.extend_from_slice(args);
    let (ok, out, err) = ns.exec(&all);
    (ok, format!("{out}{err}"))
}

#[test]
fn an_unattached_egress_is_left_to_the_kernel_untouched() {
    let test = "an_unattached_egress_is_left_to_the_kernel_untouched";
    if !require_root(test) {
        return;
    }
    if !oxr_fastpath::xdp::available() {
        println!("SKIPPED (XDP program not built: install clang and libbpf-dev): {test}");
        return;
    }
    let tag = std::process::id() % 100000;
    let ra = Netns::new(&format!("uer{tag}"));
    let ha = Netns::new(&format!("uea{tag}"));
    let hb = Netns::new(&format!("ueb{tag}"));
    veth(&ha, "a0", &ra, "r0");
    veth(&hb, "b0", &ra, "r1");
    for (ns, ifname, addr, gw) in [
        (&ha, "a0", "10.73.1.2/24", "10.73.1.1"),
        (&hb, "b0", "10.73.2.2/24", "10.73.2.1"),
    ] {
        ns.ip(&["addr", "add", addr, "dev", ifname]);
        ns.ip(&["link", "set", ifname, "up"]);
        ns.ip(&["route", "add", "default", "via", gw]);
    }
    let (ok, _, err) = ra.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    assert!(ok, "ip_forward: {err}");

    let dir = Scratch::new(&format!("unattached-{tag}"));
    let r = Router::start(&ra, "unatt", CONFIG, &dir.0, &[]);
    let up = wait_until(Duration::from_secs(20), || {
        let v = show_fastpath(&r);
        v["engine"] == "xdp" && v["interfaces"].as_object().is_some_and(|o| o.len() == 1)
    });
    assert!(up, "fast path not up: {}\n{}", show_fastpath(&r), r.logs());

    // Resolve hB (the kernel's ARP, mirrored by oxr-fastpath), so the program gets as far
    // as the egress check.
    let (ok, out) = ping(&ha, &["-c", "2", "-i", "0.2", "-W", "1", "10.73.2.2"]);
    assert!(ok, "warm-up ping: {out}\n{}", r.logs());
    assert!(wait_until(Duration::from_secs(3), || {
        show_fastpath(&r)["neighbors"].as_u64().unwrap_or(0) >= 2
    }));

    let before = show_fastpath(&r);
    let (ok, out) = ping(
        &ha,
        &["-c", "3", "-i", "0.2", "-W", "1", "-t", "2", "10.73.2.2"],
    );
    let after = show_fastpath(&r);
    assert!(
        ok,
        "TTL 2 through one router must arrive (TTL decremented once): {out}\n{after}"
    );
    let grew = |name: &str| counter(&after, name) - counter(&before, name);
    assert!(grew("pass_not_attached") >= 3, "{before}\n{after}");
    assert_eq!(grew("forwarded"), 0, "{before}\n{after}");
}
