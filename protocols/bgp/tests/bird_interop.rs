//! Interop with BIRD 2 in network namespaces (root only; skipped visibly
//! otherwise): eBGP over IPv4 and IPv6 with 4-octet ASNs. BIRD's static
//! routes must reach the oxr namespace's kernel table (protocol 201) through
//! oxr-bgp -> oxr-rib -> oxr-fea with BIRD as next hop, and oxr's networks
//! must appear in BIRD's table.
//!
//! oxr-rib and oxr-fea are taken from `OXR_RIB_BIN` / `OXR_FEA_BIN`, else
//! from the target directory; without them only the BGP part is checked.

use std::path::PathBuf;
use std::time::{Duration, Instant};

const BIRD_AS: u32 = 4_200_000_065;
const OXR_AS: u32 = 4_200_000_066;

mod netns;
use netns::*;

fn find_bin(env: &str, name: &str) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Some(PathBuf::from(p));
    }
    // The workspace's other binaries sit beside this crate's (deploy/test-all.sh builds
    // them all before the tests run).
    let p = PathBuf::from(env!("CARGO_BIN_EXE_oxr-bgp")).with_file_name(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        p.display()
    );
    Some(p)
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("timed out waiting for {what}");
    false
}

#[test]
fn ebgp_with_bird_ipv4_and_ipv6_4_octet_asns() {
    if !is_root() {
        println!("SKIPPED (needs root): ebgp_with_bird_ipv4_and_ipv6_4_octet_asns");
        return;
    }
    if !which("bird") || !which("birdc") {
        println!("SKIPPED (needs bird and birdc): ebgp_with_bird_ipv4_and_ipv6_4_octet_asns");
        return;
    }
    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("oxr-bgp-bird-{pid}"));
    std::fs::create_dir_all(&dir).unwrap();
    let (nb, no) = (format!("oxrbgp-b-{pid}"), format!("oxrbgp-o-{pid}"));
    let mut lab = Lab {
        ns: vec![],
        children: vec![],
        dir: dir.clone(),
    };
    for n in [&nb, &no] {
        sh(&["ip", "netns", "add", n]);
        lab.ns.push(n.clone());
        sh(&["ip", "-n", n, "link", "set", "lo", "up"]);
    }
    sh(&[
        "ip", "link", "add", "vb", "netns", &nb, "type", "veth", "peer", "vo", "netns", &no,
    ]);
    for (n, ifc, v4, v6) in [
        (&nb, "vb", "10.99.0.1/24", "fd00:99::1/64"),
        (&no, "vo", "10.99.0.2/24", "fd00:99::2/64"),
    ] {
        sh(&["ip", "-n", n, "addr", "add", v4, "dev", ifc]);
        sh(&["ip", "-n", n, "addr", "add", v6, "dev", ifc, "nodad"]);
        sh(&["ip", "-n", n, "link", "set", ifc, "up"]);
    }

    // BIRD: two static networks per family, eBGP to oxr over IPv4 and IPv6.
    let bird_conf = dir.join("bird.conf");
    std::fs::write(
        &bird_conf,
        format!(
            r#"
router id 10.99.0.1;
protocol device {{ }}
protocol static s4 {{ ipv4; route 172.16.1.0/24 blackhole; route 172.16.2.0/24 blackhole; }}
protocol static s6 {{ ipv6; route fd00:1::/48 blackhole; }}
protocol bgp oxr4 {{
  local 10.99.0.1 as {BIRD_AS}; neighbor 10.99.0.2 as {OXR_AS};
  graceful restart on;
  ipv4 {{ import all; export where proto = "s4"; }};
}}
protocol bgp oxr6 {{
  local fd00:99::1 as {BIRD_AS}; neighbor fd00:99::2 as {OXR_AS};
  graceful restart on;
  ipv6 {{ import all; export where proto = "s6"; }};
}}
"#
        ),
    )
    .unwrap();
    let sock = dir.join("bird.ctl");
    let sock_s = sock.to_str().unwrap().to_string();
    lab.children.push(spawn_in(
        &nb,
        &[
            "bird",
            "-c",
            bird_conf.to_str().unwrap(),
            "-s",
            &sock_s,
            "-f",
        ],
        &dir.join("bird.log"),
    ));

    // oxr: one router TOML for every process (oxr-rib and oxr-fea keep the
    // BGP section as written; the RIB waits for BGP's end-of-RIB).
    let base = "[router]\nname = \"bgpinterop\"\n";
    let bgp = format!(
        r#"
[protocols.bgp]
local-as = {OXR_AS}
router-id = "10.99.0.2"
network = ["192.168.66.0/24", "fd00:66::/48"]
[protocols.bgp.neighbor."10.99.0.1"]
remote-as = {BIRD_AS}
import-policy = ["ALL"]
export-policy = ["V4"]
graceful-restart = {{ enabled = true, restart-time = 120 }}
[protocols.bgp.neighbor."fd00:99::1"]
remote-as = {BIRD_AS}
afi = ["ipv6-unicast"]
import-policy = ["ALL"]
export-policy = ["ALL"]
graceful-restart = {{ enabled = true, restart-time = 120 }}
[protocols.bgp.policy.ALL.term.1.then]
action = "accept"
[protocols.bgp.policy.V4.term.1.match]
prefix-list = ["0.0.0.0/0 le 32"]
[protocols.bgp.policy.V4.term.1.then]
action = "accept"
"#
    );
    let router_toml = dir.join("router.toml");
    std::fs::write(&router_toml, format!("{base}{bgp}")).unwrap();
    let run = dir.join("run");
    let run_s = run.to_str().unwrap().to_string();
    let rib = find_bin("OXR_RIB_BIN", "oxr-rib");
    let fea = find_bin("OXR_FEA_BIN", "oxr-fea");
    let with_fib = rib.is_some() && fea.is_some();
    if let (Some(rib), Some(fea)) = (&rib, &fea) {
        for (bin, name) in [(fea, "fea"), (rib, "rib")] {
            lab.children.push(spawn_in(
                &no,
                &[
                    bin.to_str().unwrap(),
                    "--router",
                    "bgpinterop",
                    "--run-dir",
                    &run_s,
                    "--config",
                    router_toml.to_str().unwrap(),
                ],
                &dir.join(format!("{name}.log")),
            ));
        }
    } else {
        println!("oxr-rib/oxr-fea not found: checking BGP only (set OXR_RIB_BIN, OXR_FEA_BIN)");
    }
    let bgp_args = [
        env!("CARGO_BIN_EXE_oxr-bgp"),
        "--router",
        "bgpinterop",
        "--run-dir",
        &run_s,
        "--config",
        router_toml.to_str().unwrap(),
    ];
    lab.children
        .push(spawn_in(&no, &bgp_args, &dir.join("bgp.log")));

    let birdc = |cmd: &str| sh_ok(&["ip", "netns", "exec", &nb, "birdc", "-s", &sock_s, cmd]);
    let up = wait_for("both BIRD sessions Established", 30, || {
        let p = birdc("show protocols");
        p.lines()
            .filter(|l| l.starts_with("oxr") && l.contains("Established"))
            .count()
            == 2
    });
    let logs = || {
        ["bird.log", "bgp.log", "rib.log", "fea.log"]
            .iter()
            .map(|f| {
                format!(
                    "--- {f}\n{}",
                    std::fs::read_to_string(dir.join(f)).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(up, "{}\n{}", birdc("show protocols all"), logs());

    // oxr's networks in BIRD's table, next hop oxr.
    let ok = wait_for("oxr routes in BIRD", 20, || {
        let r4 = birdc("show route 192.168.66.0/24 all");
        let r6 = birdc("show route fd00:66::/48 all");
        r4.contains("10.99.0.2") && r6.contains("fd00:99::2") && r4.contains(&OXR_AS.to_string())
    });
    assert!(
        ok,
        "{}\n{}\n{}",
        birdc("show route all"),
        birdc("show protocols all"),
        logs()
    );

    let kernel_ok = |secs: u64| {
        wait_for("BIRD routes in the oxr kernel table", secs, || {
            let v4 = sh_ok(&["ip", "-n", &no, "route", "show", "proto", "201"]);
            let v6 = sh_ok(&["ip", "-n", &no, "-6", "route", "show", "proto", "201"]);
            // `ip route` may print "nhid N" between prefix and gateway.
            let has = |t: &str, p: &str, gw: &str| {
                t.lines()
                    .any(|l| l.starts_with(&format!("{p} ")) && l.contains(&format!("via {gw} ")))
            };
            has(&v4, "172.16.1.0/24", "10.99.0.1")
                && has(&v4, "172.16.2.0/24", "10.99.0.1")
                && has(&v6, "fd00:1::/48", "fd00:99::1")
        })
    };
    let kernel = || {
        format!(
            "kernel v4:\n{}\nkernel v6:\n{}",
            sh_ok(&["ip", "-n", &no, "route"]),
            sh_ok(&["ip", "-n", &no, "-6", "route"])
        )
    };
    if with_fib {
        assert!(kernel_ok(40), "{}\n{}", kernel(), logs());
    }

    // Graceful restart of oxr-bgp: kill -9, BIRD keeps oxr's routes (stale) and
    // the oxr kernel keeps BIRD's (oxr-rib holds them stale); after the restart
    // the sessions come back and everything is still there.
    let mut bgp = lab.children.pop().expect("oxr-bgp");
    bgp.kill().unwrap();
    bgp.wait().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let r4 = birdc("show route 192.168.66.0/24 all");
    assert!(
        r4.contains("10.99.0.2"),
        "BIRD dropped oxr's route during GR:\n{r4}\n{}",
        birdc("show protocols all")
    );
    if with_fib {
        assert!(
            kernel_ok(1),
            "kernel lost routes when oxr-bgp died\n{}",
            kernel()
        );
    }
    lab.children
        .push(spawn_in(&no, &bgp_args, &dir.join("bgp2.log")));
    let up = wait_for("sessions back after restart", 30, || {
        let p = birdc("show protocols");
        p.lines()
            .filter(|l| l.starts_with("oxr") && l.contains("Established"))
            .count()
            == 2
    });
    assert!(
        up,
        "{}\n{}",
        birdc("show protocols all"),
        std::fs::read_to_string(dir.join("bgp2.log")).unwrap_or_default()
    );
    std::thread::sleep(Duration::from_secs(2));
    let r4 = birdc("show route 192.168.66.0/24 all");
    assert!(r4.contains("10.99.0.2") && !r4.contains("stale"), "{r4}");
    if with_fib {
        assert!(kernel_ok(20), "{}", kernel());
    }
}
