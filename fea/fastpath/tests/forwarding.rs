//! The fast path in namespaces, once per engine:
//!
//! ```text
//!   hA (a0 10.71.1.2) ── r0 ┐                     ┌ r1 ── hB (b0 10.71.2.2, lo 192.0.2.1)
//!                           router (oxr-routerd,   │
//!                           fea.dataplane=fastpath)└ r2 ── hC (c0 10.71.3.2, lo 192.0.2.1)
//! ```
//!
//! Ping (IPv4 and IPv6) and a UDP stream cross the router while the router kernel's own forwarding counter
//! (`Ip: ForwDatagrams`) stays flat and the fast path's `forwarded` counter counts them; a
//! static route edit moves 192.0.2.0/24 from hB to hC within a second; TTL-expired packets
//! still get the kernel's ICMP; `kill -9` of oxr-fastpath is followed by a restart
//! (routerd) and a resync (oxr-fea) after which the fast path forwards again.

use oxr_testlab as lab;

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use lab::*;

mod common;
use common::*;

fn config(engine: &str, via: &str) -> String {
    format!(
        r#"
[router]
name = "fp"
router-id = "10.71.255.1"

[interfaces.r0]
address = ["10.71.1.1/24", "2001:db8:71:1::1/64"]
[interfaces.r1]
address = ["10.71.2.1/24", "2001:db8:71:2::1/64"]
[interfaces.r2]
address = ["10.71.3.1/24"]

[rib]
startup-hold-secs = 1

[fea]
dataplane = "fastpath"
[fea.fastpath]
engine = "{engine}"
interfaces = ["r0", "r1", "r2"]

[protocols.static.route."192.0.2.0/24"]
via = ["{via}"]
"#
    )
}

/// A value from `/proc/net/snmp6` inside `ns`.
fn snmp6(ns: &Netns, field: &str) -> u64 {
    let (_, text, _) = ns.exec(&["cat", "/proc/net/snmp6"]);
    text.lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(field)).then(|| w.next().unwrap().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no {field}"))
}

/// Sends `n` UDP datagrams from hA to hB:5001 and returns how many arrived.
fn udp_stream(a: &Netns, b: &Netns, n: u32) -> u32 {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let rx = in_ns(&b.name, move || {
        let s = UdpSocket::bind("0.0.0.0:5001").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        ready_tx.send(()).unwrap();
        let mut got = 0u32;
        let mut buf = [0u8; 2048];
        let deadline = Instant::now() + Duration::from_secs(10);
        while got < n && Instant::now() < deadline {
            match s.recv(&mut buf) {
                Ok(_) => got += 1,
                Err(_) => break,
            }
        }
        got
    });
    ready_rx.recv().unwrap();
    in_ns(&a.name, move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        let payload = [0x5au8; 64];
        for i in 0..n {
            s.send_to(&payload, "10.71.2.2:5001").unwrap();
            // Paced: the point is the path taken, not the veth queue's depth.
            if i % 50 == 49 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    })
    .join()
    .unwrap();
    rx.join().unwrap()
}

fn lab_for(engine: &str) {
    let tag = format!("{}{}", &engine[..2], std::process::id() % 100000);
    let ra = Netns::new(&format!("fpr{tag}"));
    let ha = Netns::new(&format!("fpa{tag}"));
    let hb = Netns::new(&format!("fpb{tag}"));
    let hc = Netns::new(&format!("fpc{tag}"));
    veth(&ha, "a0", &ra, "r0");
    veth(&hb, "b0", &ra, "r1");
    veth(&hc, "c0", &ra, "r2");
    for (ns, ifname, addr, gw) in [
        (&ha, "a0", "10.71.1.2/24", "10.71.1.1"),
        (&hb, "b0", "10.71.2.2/24", "10.71.2.1"),
        (&hc, "c0", "10.71.3.2/24", "10.71.3.1"),
    ] {
        ns.ip(&["addr", "add", addr, "dev", ifname]);
        ns.ip(&["link", "set", ifname, "up"]);
        ns.ip(&["route", "add", "default", "via", gw]);
        // A redirect into a veth is dropped unless the receiving end has NAPI: GRO gives it.
        // Checksums computed by the sender, as on a wire: veth otherwise leaves UDP/TCP
        // checksums to an "offload" that a frame going through XDP never gets.
        let (ok, _, err) = ns.exec(&["ethtool", "-K", ifname, "gro", "on", "tx", "off"]);
        assert!(ok, "ethtool -K {ifname} gro on tx off: {err}");
    }
    for ns in [&hb, &hc] {
        ns.ip(&["addr", "add", "192.0.2.1/32", "dev", "lo"]);
    }
    for (ns, ifname, addr, gw) in [
        (&ha, "a0", "2001:db8:71:1::2/64", "2001:db8:71:1::1"),
        (&hb, "b0", "2001:db8:71:2::2/64", "2001:db8:71:2::1"),
    ] {
        ns.ip(&["-6", "addr", "add", addr, "dev", ifname, "nodad"]);
        ns.ip(&["-6", "route", "add", "default", "via", gw]);
    }
    for k in [
        "net.ipv4.ip_forward=1",
        "net.ipv6.conf.all.forwarding=1",
        "net.ipv6.conf.r0.accept_dad=0",
        "net.ipv6.conf.r1.accept_dad=0",
    ] {
        let (ok, _, err) = ra.exec(&["sysctl", "-qw", k]);
        assert!(ok, "{k}: {err}");
    }

    let dir = Scratch::new(&format!("fastpath-{tag}"));
    let r = start_fastpath(
        &ra,
        "fp",
        &config(engine, "10.71.2.2"),
        &dir.0,
        (engine, 3),
        "fast path never attached",
        |v| v["fea_routes"].as_u64().unwrap_or(0) >= 1,
    );

    // The first packets resolve ARP through the kernel; the mirror then has the neighbors.
    let (ok, out) = ping(&ha, &["-c", "3", "-i", "0.2", "-W", "1", "10.71.2.2"]);
    assert!(ok, "warm-up ping failed: {out}\n{}", r.logs());
    let (ok, out) = ping(&ha, &["-c", "2", "-i", "0.2", "-W", "1", "192.0.2.1"]);
    assert!(ok, "warm-up ping to 192.0.2.1 failed: {out}");
    assert!(wait_until(Duration::from_secs(3), || {
        fastpath(&r)["neighbors"].as_u64().unwrap_or(0) >= 2
    }));

    // Ping and UDP cross without the router kernel forwarding them.
    let forw0 = snmp(&ra, "Ip", "ForwDatagrams");
    let fp0 = counter(&fastpath(&r), "forwarded");
    let (ok, out) = ping(&ha, &["-c", "50", "-i", "0.005", "-W", "1", "10.71.2.2"]);
    assert!(ok, "ping through the fast path failed: {out}");
    let sent = 2000;
    let got = udp_stream(&ha, &hb, sent);
    let forw1 = snmp(&ra, "Ip", "ForwDatagrams");
    let fp1 = counter(&fastpath(&r), "forwarded");
    println!(
        "{engine}: UDP {got}/{sent} received; kernel ForwDatagrams +{}; fast path forwarded +{}; counters {}",
        forw1 - forw0,
        fp1 - fp0,
        fastpath(&r)["counters"]
    );
    assert!(got >= sent * 95 / 100, "UDP: {got}/{sent} arrived");
    assert!(
        forw1 - forw0 <= 5,
        "the kernel forwarded {} packets (fast path {})",
        forw1 - forw0,
        fp1 - fp0
    );
    assert!(
        fp1 - fp0 >= u64::from(got) + 100,
        "fast path forwarded only {} (UDP {got} + 100 echo/replies expected)",
        fp1 - fp0
    );

    // IPv6 too: hop limit decremented, the kernel's Ip6OutForwDatagrams flat.
    let (ok, out) = ping(
        &ha,
        &["-6", "-c", "3", "-i", "0.2", "-W", "1", "2001:db8:71:2::2"],
    );
    assert!(ok, "IPv6 warm-up ping failed: {out}\n{}", r.logs());
    let forw6 = snmp6(&ra, "Ip6OutForwDatagrams");
    let fp6 = counter(&fastpath(&r), "forwarded");
    let (ok, out) = ping(
        &ha,
        &[
            "-6",
            "-c",
            "30",
            "-i",
            "0.01",
            "-W",
            "1",
            "2001:db8:71:2::2",
        ],
    );
    assert!(ok, "IPv6 ping through the fast path failed: {out}");
    assert!(snmp6(&ra, "Ip6OutForwDatagrams") - forw6 <= 3);
    assert!(counter(&fastpath(&r), "forwarded") - fp6 >= 60);

    // TTL expiry goes to the kernel, which answers with ICMP time exceeded.
    let (_, out) = ping(&ha, &["-c", "1", "-t", "1", "-W", "1", "10.71.2.2"]);
    assert!(
        out.contains("Time to live exceeded"),
        "no ICMP time exceeded: {out}"
    );
    assert!(counter(&fastpath(&r), "pass_ttl") >= 1);

    // A static route edit moves 192.0.2.0/24 from hB to hC within a second.
    let c0 = snmp(&hc, "Icmp", "InEchos");
    let (ok, out) = ping(&ha, &["-c", "3", "-i", "0.05", "-W", "1", "192.0.2.1"]);
    assert!(ok, "{out}");
    assert_eq!(
        snmp(&hc, "Icmp", "InEchos"),
        c0,
        "hC answered before the edit"
    );
    let file = r.run_dir.join("moved.toml");
    std::fs::write(&file, config(engine, "10.71.3.2")).unwrap();
    let load = format!("load {}", file.display());
    let (ok, out, err) = r.sh(&["configure", &load, "commit"]);
    assert!(ok, "commit failed: {out}{err}");
    let t = Instant::now();
    let moved = wait_until(Duration::from_secs(5), || {
        let _ = ping(&ha, &["-c", "1", "-W", "0.2", "192.0.2.1"]);
        snmp(&hc, "Icmp", "InEchos") > c0
    });
    let took = t.elapsed();
    println!("{engine}: static route edit redirected traffic after {took:?}");
    assert!(moved, "traffic never moved to hC\n{}", r.logs());
    assert!(took < Duration::from_secs(1), "redirect took {took:?}");
    // Once hC's neighbor is mirrored, the moved traffic is the fast path's too.
    let forw2 = snmp(&ra, "Ip", "ForwDatagrams");
    let (ok, out) = ping(&ha, &["-c", "20", "-i", "0.01", "-W", "1", "192.0.2.1"]);
    assert!(ok, "{out}");
    assert!(snmp(&ra, "Ip", "ForwDatagrams") - forw2 <= 3);

    // kill -9 of oxr-fastpath: routerd restarts it, oxr-fea resyncs, forwarding resumes.
    let old = r.pid_of("fastpath").expect("oxr-fastpath runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let t = Instant::now();
    let back = wait_until(Duration::from_secs(20), || {
        let v = fastpath(&r);
        r.pid_of("fastpath").is_some_and(|p| p != old)
            && v["interfaces"].as_object().is_some_and(|o| o.len() == 3)
            && v["fea_routes"].as_u64().unwrap_or(0) >= 1
    });
    assert!(
        back,
        "oxr-fastpath did not come back: {}\n{}",
        fastpath(&r),
        r.logs()
    );
    println!(
        "{engine}: restarted and resynchronised after {:?}",
        t.elapsed()
    );
    let v = fastpath(&r);
    let routes = v["routes"].as_u64().unwrap();
    assert!(routes >= 7, "routes after resync: {v}");
    let (ok, out) = ping(&ha, &["-c", "3", "-i", "0.2", "-W", "1", "192.0.2.1"]);
    assert!(ok, "{out}");
    let forw3 = snmp(&ra, "Ip", "ForwDatagrams");
    let fp3 = counter(&fastpath(&r), "forwarded");
    let (ok, out) = ping(&ha, &["-c", "30", "-i", "0.01", "-W", "1", "10.71.2.2"]);
    assert!(ok, "{out}");
    assert!(snmp(&ra, "Ip", "ForwDatagrams") - forw3 <= 3);
    assert!(counter(&fastpath(&r), "forwarded") - fp3 >= 60);

    // The show command people use.
    let (ok, out, _) = r.sh(&["show fastpath"]);
    assert!(
        ok && out.contains("Engine:") && out.contains("forwarded"),
        "{out}"
    );
    drop(r);
}

#[test]
fn xdp_engine_forwards_between_namespaces() {
    if can_run("xdp_engine_forwards_between_namespaces") {
        lab_for("xdp");
    }
}

#[test]
fn afxdp_engine_forwards_between_namespaces() {
    if can_run("afxdp_engine_forwards_between_namespaces") {
        lab_for("afxdp");
    }
}
