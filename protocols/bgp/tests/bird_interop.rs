//! Interop with BIRD 2 in network namespaces (root only; skipped visibly
//! otherwise): eBGP over IPv4 and IPv6 with 4-octet ASNs. BIRD's static
//! routes must reach the oxr namespace's kernel table (protocol 201) through
//! oxr-bgp -> oxr-rib -> oxr-fea with BIRD as next hop, and oxr's networks
//! must appear in BIRD's table.
//!
//! oxr-rib and oxr-fea are taken from `OXR_RIB_BIN` / `OXR_FEA_BIN`, else
//! beside this test (`oxr_testlab::oxr_bin`). The namespace and BIRD harness is
//! `oxr_testlab`'s.

use std::path::Path;
use std::time::Duration;

use oxr_testlab::bird::Bird;
use oxr_testlab::lab_file::has_route;
use oxr_testlab::{log_tails, oxr_bin, veth, wait_for, Netns, Scratch};

const BIRD_AS: u32 = 4_200_000_065;
const OXR_AS: u32 = 4_200_000_066;

#[test]
fn ebgp_with_bird_ipv4_and_ipv6_4_octet_asns() {
    if !oxr_testlab::require_root("ebgp_with_bird_ipv4_and_ipv6_4_octet_asns") {
        return;
    }
    if !Bird::available() {
        println!("SKIPPED (needs bird and birdc): ebgp_with_bird_ipv4_and_ipv6_4_octet_asns");
        return;
    }
    let pid = std::process::id();
    let dir = Scratch::new("bgp-bird");
    let nb = Netns::new(&format!("oxrbgp-b-{pid}"));
    let no = Netns::new(&format!("oxrbgp-o-{pid}"));
    veth(&nb, "vb", &no, "vo");
    for (n, ifc, v4, v6) in [
        (&nb, "vb", "10.99.0.1/24", "fd00:99::1/64"),
        (&no, "vo", "10.99.0.2/24", "fd00:99::2/64"),
    ] {
        n.ip(&["addr", "add", v4, "dev", ifc]);
        n.ip(&["addr", "add", v6, "dev", ifc, "nodad"]);
        n.ip(&["link", "set", ifc, "up"]);
    }

    // BIRD: two static networks per family, eBGP to oxr over IPv4 and IPv6.
    let bird = Bird::start(
        &nb,
        &dir.0,
        "bird",
        &format!(
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
    );

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
    let router_toml = dir.0.join("router.toml");
    std::fs::write(&router_toml, format!("{base}{bgp}")).unwrap();
    let run = dir.0.join("run");
    let log = |name: &str| dir.0.join(format!("{name}.log"));
    let _fea = no.spawn_oxr(
        &oxr_bin("oxr-fea"),
        "bgpinterop",
        &run,
        &router_toml,
        &log("fea"),
    );
    let _rib = no.spawn_oxr(
        &oxr_bin("oxr-rib"),
        "bgpinterop",
        &run,
        &router_toml,
        &log("rib"),
    );
    let bgp_bin = Path::new(env!("CARGO_BIN_EXE_oxr-bgp"));
    let mut bgp = no.spawn_oxr(bgp_bin, "bgpinterop", &run, &router_toml, &log("bgp"));

    let logs = || log_tails(&dir.0, 60);
    let up = wait_for(
        "both BIRD sessions Established",
        Duration::from_secs(30),
        || bird.established(&["oxr4", "oxr6"]),
    );
    assert!(up, "{}\n{}", bird.birdc("show protocols all"), logs());

    // oxr's networks in BIRD's table, next hop oxr.
    let ok = wait_for("oxr routes in BIRD", Duration::from_secs(20), || {
        let r4 = bird.route("192.168.66.0/24");
        let r6 = bird.route("fd00:66::/48");
        r4.contains("10.99.0.2") && r6.contains("fd00:99::2") && r4.contains(&OXR_AS.to_string())
    });
    assert!(
        ok,
        "{}\n{}\n{}",
        bird.birdc("show route all"),
        bird.birdc("show protocols all"),
        logs()
    );

    let kernel_ok = |secs: u64| {
        wait_for(
            "BIRD routes in the oxr kernel table",
            Duration::from_secs(secs),
            || {
                let v4 = no.ip(&["route", "show", "proto", "201"]);
                let v6 = no.ip(&["-6", "route", "show", "proto", "201"]);
                // "via GW " with its space: 10.99.0.1 is not 10.99.0.10.
                has_route(&v4, "172.16.1.0/24 via 10.99.0.1 ")
                    && has_route(&v4, "172.16.2.0/24 via 10.99.0.1 ")
                    && has_route(&v6, "fd00:1::/48 via fd00:99::1 ")
            },
        )
    };
    let kernel = || {
        format!(
            "kernel v4:\n{}\nkernel v6:\n{}",
            no.ip(&["route"]),
            no.ip(&["-6", "route"])
        )
    };
    assert!(kernel_ok(40), "{}\n{}", kernel(), logs());

    // Graceful restart of oxr-bgp: kill -9, BIRD keeps oxr's routes (stale) and
    // the oxr kernel keeps BIRD's (oxr-rib holds them stale); after the restart
    // the sessions come back and everything is still there.
    bgp.kill();
    std::thread::sleep(Duration::from_secs(2));
    let r4 = bird.route("192.168.66.0/24");
    assert!(
        r4.contains("10.99.0.2"),
        "BIRD dropped oxr's route during GR:\n{r4}\n{}",
        bird.birdc("show protocols all")
    );
    assert!(
        kernel_ok(1),
        "kernel lost routes when oxr-bgp died\n{}",
        kernel()
    );
    let bgp2 = no.spawn_oxr(bgp_bin, "bgpinterop", &run, &router_toml, &log("bgp2"));
    let up = wait_for(
        "sessions back after restart",
        Duration::from_secs(30),
        || bird.established(&["oxr4", "oxr6"]),
    );
    assert!(
        up,
        "{}\n{}",
        bird.birdc("show protocols all"),
        bgp2.log_tail(60)
    );
    std::thread::sleep(Duration::from_secs(2));
    let r4 = bird.route("192.168.66.0/24");
    assert!(r4.contains("10.99.0.2") && !r4.contains("stale"), "{r4}");
    assert!(kernel_ok(20), "{}", kernel());
}
