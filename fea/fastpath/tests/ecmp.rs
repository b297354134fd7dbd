//! ECMP and late interfaces in the fast path, once per engine:
//!
//! ```text
//!                              ┌ r1 ── b1 10.72.2.2 ┐
//!   hA (a0 10.72.1.2) ── r0 router                  hB (lo 192.0.2.1)
//!                              └ r2 ── b2 10.72.3.2 ┘
//!                              └ r3 ── hC (c0 10.72.4.2)   created after the router started
//! ```
//!
//! The static route 192.0.2.0/24 has two equal-cost gateways; UDP flows from hA (one
//! source port each) are spread by the fast path's flow hash over r1 and r2, both carry
//! traffic, each flow stays on one path, and the router kernel's forwarding counter stays
//! flat. The config names no interface (`*`: all but loopback), so r3, created once the
//! router runs, is attached by oxr-fastpath as it appears, without a resync, and traffic to
//! hC through it is the fast path's too.

use oxr_testlab as lab;

use std::net::UdpSocket;
use std::time::Duration;

use lab::*;

mod common;
use common::*;

const CONFIG: &str = r#"
[router]
name = "ecmp"
router-id = "10.72.255.1"

[interfaces.r0]
address = ["10.72.1.1/24"]
[interfaces.r1]
address = ["10.72.2.1/24"]
[interfaces.r2]
address = ["10.72.3.1/24"]

[rib]
startup-hold-secs = 1

[fea]
dataplane = "fastpath"
[fea.fastpath]
engine = "ENGINE"

[protocols.static.route."192.0.2.0/24"]
via = ["10.72.2.2", "10.72.3.2"]
"#;

/// Frames received by `ifname` in `ns`.
fn rx_packets(ns: &Netns, ifname: &str) -> u64 {
    let (ok, out, err) = ns.exec(&[
        "cat",
        &format!("/sys/class/net/{ifname}/statistics/rx_packets"),
    ]);
    assert!(ok, "rx_packets of {ifname}: {err}");
    out.trim().parse().unwrap()
}

/// Sends `per_flow` datagrams on each of `flows` UDP sockets (distinct source ports) from
/// inside `ns` to 192.0.2.1:5001, paced.
fn udp_flows(ns: &str, flows: usize, per_flow: u32) {
    in_ns(ns, move || {
        let socks: Vec<UdpSocket> = (0..flows)
            .map(|_| UdpSocket::bind("0.0.0.0:0").unwrap())
            .collect();
        for i in 0..per_flow {
            for s in &socks {
                s.send_to(&[0x5a; 64], "192.0.2.1:5001").unwrap();
            }
            if i % 10 == 9 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    })
    .join()
    .unwrap();
}

/// Turns GRO on (NAPI for frames redirected into the veth) and tx checksum offload off.
fn napi(ns: &Netns, ifname: &str) {
    let (ok, _, err) = ns.exec(&["ethtool", "-K", ifname, "gro", "on", "tx", "off"]);
    assert!(ok, "ethtool -K {ifname}: {err}");
}

fn lab_for(engine: &str) {
    let tag = format!("{}{}", &engine[..2], std::process::id() % 100000);
    let ra = Netns::new(&format!("ecr{tag}"));
    let ha = Netns::new(&format!("eca{tag}"));
    let hb = Netns::new(&format!("ecb{tag}"));
    let hc = Netns::new(&format!("ecc{tag}"));
    veth(&ha, "a0", &ra, "r0");
    veth(&hb, "b1", &ra, "r1");
    veth(&hb, "b2", &ra, "r2");
    for (ns, ifname, addr) in [
        (&ha, "a0", "10.72.1.2/24"),
        (&hb, "b1", "10.72.2.2/24"),
        (&hb, "b2", "10.72.3.2/24"),
    ] {
        ns.ip(&["addr", "add", addr, "dev", ifname]);
        ns.ip(&["link", "set", ifname, "up"]);
        napi(ns, ifname);
    }
    ha.ip(&["route", "add", "default", "via", "10.72.1.1"]);
    hb.ip(&["route", "add", "default", "via", "10.72.2.1"]);
    hb.ip(&["addr", "add", "192.0.2.1/32", "dev", "lo"]);
    for k in [
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.default.rp_filter=0",
    ] {
        hb.exec(&["sysctl", "-qw", k]);
    }
    let (ok, _, err) = ra.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    assert!(ok, "ip_forward: {err}");

    let dir = Scratch::new(&format!("ecmp-{tag}"));
    let r = start_fastpath(
        &ra,
        "ecmp",
        &CONFIG.replace("ENGINE", engine),
        &dir.0,
        (engine, 3),
        "no ECMP route in the fast path",
        |v| v["ecmp_groups"].as_u64().unwrap_or(0) >= 1,
    );
    let (_, routes, _) = r.sh(&["show fastpath routes"]);
    assert!(routes.contains("ecmp group"), "{routes}");

    // Both gateways resolved (the kernel's ARP, mirrored by oxr-fastpath).
    for gw in ["10.72.2.2", "10.72.3.2"] {
        let (ok, out) = ping(&ha, &["-c", "2", "-i", "0.2", "-W", "1", gw]);
        assert!(ok, "warm-up ping to {gw}: {out}\n{}", r.logs());
    }
    assert!(wait_until(Duration::from_secs(3), || {
        fastpath(&r)["neighbors"].as_u64().unwrap_or(0) >= 3
    }));

    let forw0 = snmp(&ra, "Ip", "ForwDatagrams");
    let fp0 = fastpath(&r);
    let (b1, b2) = (rx_packets(&hb, "b1"), rx_packets(&hb, "b2"));
    let (flows, per_flow) = (16, 100);
    udp_flows(&ha.name, flows, per_flow);
    std::thread::sleep(Duration::from_millis(200));
    let (d1, d2) = (rx_packets(&hb, "b1") - b1, rx_packets(&hb, "b2") - b2);
    let forwarded = snmp(&ra, "Ip", "ForwDatagrams") - forw0;
    let fp1 = fastpath(&r);
    let ecmp = counter(&fp1, "ecmp") - counter(&fp0, "ecmp");
    println!(
        "{engine}: {flows} flows x {per_flow}: b1 +{d1}, b2 +{d2}; kernel ForwDatagrams +{forwarded}; \
         fast path forwarded +{}, ecmp picks +{ecmp}",
        counter(&fp1, "forwarded") - counter(&fp0, "forwarded")
    );
    let sent = (flows as u64) * u64::from(per_flow);
    assert!(d1 + d2 >= sent * 95 / 100, "{}/{sent} arrived", d1 + d2);
    assert!(
        d1 >= u64::from(per_flow) && d2 >= u64::from(per_flow),
        "both paths must carry flows: b1 +{d1}, b2 +{d2}"
    );
    // Every flow stays on one path: each path's count is a whole number of flows (give or
    // take a few frames lost or counted late).
    let off = |d: u64| (d % u64::from(per_flow)).min(u64::from(per_flow) - d % u64::from(per_flow));
    assert!(
        off(d1) <= 8 && off(d2) <= 8,
        "flows split across paths: b1 +{d1}, b2 +{d2}"
    );
    assert!(forwarded <= 5, "the kernel forwarded {forwarded}");
    assert!(ecmp >= sent * 95 / 100, "ECMP picks +{ecmp}");

    // An interface created now is attached as it appears: no resync, no restart.
    let syncs = counter(&fastpath(&r), "ctl_syncs_completed");
    veth(&hc, "c0", &ra, "r3");
    ra.ip(&["addr", "add", "10.72.4.1/24", "dev", "r3"]);
    ra.ip(&["link", "set", "r3", "up"]);
    hc.ip(&["addr", "add", "10.72.4.2/24", "dev", "c0"]);
    hc.ip(&["link", "set", "c0", "up"]);
    hc.ip(&["route", "add", "default", "via", "10.72.4.1"]);
    napi(&hc, "c0");
    let attached = wait_until(Duration::from_secs(5), || {
        fastpath(&r)["interfaces"]
            .as_object()
            .is_some_and(|o| o.contains_key("r3"))
    });
    assert!(
        attached,
        "r3 never attached: {}\n{}",
        fastpath(&r),
        r.logs()
    );
    assert_eq!(
        counter(&fastpath(&r), "ctl_syncs_completed"),
        syncs,
        "attaching r3 took a resync"
    );
    let (ok, out) = ping(&ha, &["-c", "3", "-i", "0.2", "-W", "1", "10.72.4.2"]);
    assert!(ok, "warm-up ping to hC: {out}\n{}", r.logs());
    let forw1 = snmp(&ra, "Ip", "ForwDatagrams");
    let f1 = counter(&fastpath(&r), "forwarded");
    let (ok, out) = ping(&ha, &["-c", "30", "-i", "0.01", "-W", "1", "10.72.4.2"]);
    assert!(ok, "ping through r3: {out}");
    assert!(snmp(&ra, "Ip", "ForwDatagrams") - forw1 <= 3);
    assert!(counter(&fastpath(&r), "forwarded") - f1 >= 60);
    drop(r);
}

#[test]
fn xdp_engine_spreads_flows_over_equal_cost_paths() {
    if can_run("xdp_engine_spreads_flows_over_equal_cost_paths") {
        lab_for("xdp");
    }
}

#[test]
fn afxdp_engine_spreads_flows_over_equal_cost_paths() {
    if can_run("afxdp_engine_spreads_flows_over_equal_cost_paths") {
        lab_for("afxdp");
    }
}
