//! Forwarding rate of one router in namespaces, per dataplane, in the same run:
//! `kernel` (fea.dataplane = "kernel"), `xdp` and `afxdp` (fea.dataplane = "fastpath").
//!
//! hA sends 64-byte UDP datagrams to hB through the router as fast as one socket thread
//! can, for `OXR_BENCH_SECS` (default 2) seconds; hB counts what arrives. The generator is
//! a kernel socket on the same 2-core machine, so the figures are bounded by it (see the
//! printed sender rate); the ratio against `kernel` is what to read. Needs root.
//!
//! `cargo bench -p oxr-fastpath --bench forwarding` (after building the workspace's
//! binaries: oxr-routerd, oxr-fea, oxr-rib, oxr-static, oxrsh beside oxr-fastpath).

use oxr_testlab as lab;

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lab::*;

fn config(dataplane: &str) -> String {
    let fea = match dataplane {
        "kernel" => "[fea]\ndataplane = \"kernel\"\n".to_string(),
        e => format!(
            "[fea]\ndataplane = \"fastpath\"\n[fea.fastpath]\nengine = \"{e}\"\ninterfaces = [\"r0\", \"r1\"]\n"
        ),
    };
    format!(
        "[router]\nname = \"fpb\"\nrouter-id = \"10.72.255.1\"\n\
         [interfaces.r0]\naddress = [\"10.72.1.1/24\"]\n\
         [interfaces.r1]\naddress = [\"10.72.2.1/24\"]\n\
         [rib]\nstartup-hold-secs = 1\n{fea}"
    )
}

fn in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("netns file");
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
}

/// (sent/s, received/s).
fn blast(a: &Netns, b: &Netns, secs: f64) -> (f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let s2 = stop.clone();
    let rx = in_ns(&b.name, move || {
        let s = UdpSocket::bind("0.0.0.0:5001").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        ready_tx.send(()).unwrap();
        let mut got = 0u64;
        let mut buf = [0u8; 2048];
        while !s2.load(Ordering::Relaxed) {
            if s.recv(&mut buf).is_ok() {
                got += 1;
            }
        }
        got
    });
    ready_rx.recv().unwrap();
    let t = Instant::now();
    let sent = in_ns(&a.name, move || {
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        s.connect("10.72.2.2:5001").unwrap();
        let payload = [0x5au8; 18]; // 14 + 20 + 8 + 18 = 60 B + FCS = 64 B on a wire
        let mut n = 0u64;
        let end = Instant::now() + Duration::from_secs_f64(secs);
        while Instant::now() < end {
            for _ in 0..64 {
                if s.send(&payload).is_ok() {
                    n += 1;
                }
            }
        }
        n
    })
    .join()
    .unwrap();
    let elapsed = t.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let got = rx.join().unwrap();
    (sent as f64 / elapsed, got as f64 / elapsed)
}

fn run(dataplane: &str, secs: f64) -> Option<(f64, f64, u64)> {
    let tag = format!("{}{}", &dataplane[..2], std::process::id() % 100000);
    let ra = Netns::new(&format!("fbr{tag}"));
    let ha = Netns::new(&format!("fba{tag}"));
    let hb = Netns::new(&format!("fbb{tag}"));
    veth(&ha, "a0", &ra, "r0");
    veth(&hb, "b0", &ra, "r1");
    for (ns, ifname, addr, gw) in [
        (&ha, "a0", "10.72.1.2/24", "10.72.1.1"),
        (&hb, "b0", "10.72.2.2/24", "10.72.2.1"),
    ] {
        ns.ip(&["addr", "add", addr, "dev", ifname]);
        ns.ip(&["link", "set", ifname, "up"]);
        ns.ip(&["route", "add", "default", "via", gw]);
        ns.exec(&["ethtool", "-K", ifname, "gro", "on", "tx", "off"]);
    }
    ra.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    let dir = Scratch::new(&format!("fpbench-{tag}"));
    let r = Router::start(&ra, "fpb", &config(dataplane), &dir.0, &[]);
    if dataplane != "kernel" {
        let ok = wait_until(Duration::from_secs(20), || {
            let (ok, out, _) = r.sh(&["show fastpath | json"]);
            ok && serde_json::from_str::<serde_json::Value>(&out)
                .ok()
                .and_then(|v| v["interfaces"].as_object().map(|o| o.len()))
                == Some(2)
        });
        if !ok {
            eprintln!("{dataplane}: fast path did not attach\n{}", r.logs());
            return None;
        }
    }
    ha.exec(&["ping", "-c", "2", "-i", "0.2", "10.72.2.2"]);
    let forw = |ns: &Netns| -> u64 {
        let (_, t, _) = ns.exec(&["cat", "/proc/net/snmp"]);
        let l: Vec<&str> = t.lines().filter(|l| l.starts_with("Ip:")).collect();
        let i = l[0]
            .split_whitespace()
            .position(|w| w == "ForwDatagrams")
            .unwrap();
        l[1].split_whitespace().nth(i).unwrap().parse().unwrap()
    };
    let f0 = forw(&ra);
    let (sent, got) = blast(&ha, &hb, secs);
    let kernel_fwd = forw(&ra) - f0;
    drop(r);
    Some((sent, got, kernel_fwd))
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        println!("SKIPPED (needs root): fastpath forwarding bench");
        return;
    }
    let secs: f64 = std::env::var("OXR_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let mut base = None;
    println!("dataplane  sender pps  received pps  vs kernel  kernel-forwarded");
    for dp in ["kernel", "xdp", "afxdp"] {
        let Some((sent, got, kf)) = run(dp, secs) else {
            continue;
        };
        let b = *base.get_or_insert(got);
        println!(
            "{dp:<9} {sent:>11.0} {got:>13.0} {:>9.2}x {kf:>17}",
            got / b
        );
    }
}
