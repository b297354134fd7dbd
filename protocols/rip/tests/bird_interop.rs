//! Interop with BIRD 2's RIP in network namespaces (root only; skipped visibly otherwise,
//! and when `bird` is not installed).
//!
//! ```text
//!   netns oxr: oxr-routerd (oxr-fea, oxr-rib,        netns bird: bird (rip1)
//!              oxr-static, oxr-rip)
//!     lo 10.255.0.1/32 (passive RIP interface)         static 198.51.100.0/24 blackhole
//!     static 203.0.113.0/24 blackhole (redistributed)
//!     va 10.0.12.1/24  ------------- veth -----------  vb 10.0.12.2/24
//! ```
//!
//! Asserts BIRD's static route in the oxr namespace's kernel table (protocol 201) and oxr's
//! passive network and redistributed static route in BIRD's RIP routes. The oxr binaries
//! are the workspace's, beside this test's own (deploy/test-all.sh builds them all); the
//! namespace, router and BIRD harness is `oxr_testlab`'s.

use std::time::{Duration, Instant};

use oxr_testlab::bird::Bird;
use oxr_testlab::{veth_up, wait_for_output, Netns, Router, Scratch};

#[test]
fn bird_interop_rip() {
    run("bird_interop_rip", None);
}

#[test]
fn bird_interop_rip_hmac_sha256() {
    run(
        "bird_interop_rip_hmac_sha256",
        Some(("hmac sha256", "hmac-sha-256")),
    );
}

#[test]
fn bird_interop_rip_keyed_md5() {
    run(
        "bird_interop_rip_keyed_md5",
        Some(("keyed md5", "keyed-md5")),
    );
}

/// One case; `auth` is (BIRD's algorithm name, oxr's) for RFC 4822 authentication.
fn run(test: &str, auth: Option<(&str, &str)>) {
    let bins = [
        "oxr-routerd",
        "oxr-fea",
        "oxr-rib",
        "oxr-static",
        "oxr-rip",
        "oxrsh",
    ];
    if !oxr_testlab::ready(test, &bins) {
        return;
    }
    if !Bird::available() {
        println!("SKIPPED (bird not installed): {test}");
        return;
    }
    let pid = std::process::id();
    let tag = auth.map_or("n", |a| &a.1[..1]);
    let dir = Scratch::new(&format!("rip-{test}"));
    let na = Netns::new(&format!("oxrip{tag}{pid}"));
    let nb = Netns::new(&format!("brdrip{tag}{pid}"));
    veth_up(&na, "va", "10.0.12.1/24", &nb, "vb", "10.0.12.2/24");
    na.ip_lines(&["addr add 10.255.0.1/32 dev lo"]);
    let (bird_auth, oxr_auth) = match auth {
        Some((b, o)) => (
            format!(
                "authentication cryptographic; password \"oxr-test\" {{ id 1; algorithm {b}; }};"
            ),
            format!("authentication = {{ key-id = 1, key = \"oxr-test\", algorithm = \"{o}\" }}\n"),
        ),
        None => (String::new(), String::new()),
    };
    let bird = Bird::start(
        &nb,
        &dir.0,
        "bird",
        &format!(
            "router id 10.0.12.2;\nlog stderr all;\nprotocol device {{ }}\n\
         protocol static {{ ipv4; route 198.51.100.0/24 blackhole; }}\n\
         protocol rip rip1 {{\n  debug all;\n  ipv4 {{ import all; export all; }};\n\
           interface \"vb\" {{ version 2; update time 5; {bird_auth} }};\n}}\n"
        ),
    );
    let started = Instant::now();
    let router = Router::start(
        &na,
        "oxrip",
        &format!(
            "[router]\nname = \"oxrip\"\n\
         [protocols.static.route.\"203.0.113.0/24\"]\naction = \"blackhole\"\n\
         [protocols.rip.interfaces.va]\n{oxr_auth}[protocols.rip.interfaces.lo]\npassive = true\n\
         [protocols.rip.timers]\nupdate-interval = 5\ntimeout = 15\ngarbage-collection = 10\n\
         [protocols.rip.redistribute.static]\nmetric = 3\n"
        ),
        &dir.0,
        &[],
    );
    let wait = |what: &str, probe: &dyn Fn() -> String, ok: &dyn Fn(&str) -> bool| {
        if let Err(out) = wait_for_output(Duration::from_secs(40), probe, ok) {
            panic!(
                "timed out waiting for {what}:\n{out}\n{}\n{}",
                router.logs(),
                bird.daemon.log_tail(40)
            );
        }
    };
    wait(
        "BIRD's route in oxr's kernel table (proto 201)",
        &|| na.ip(&["route", "show", "proto", "201"]),
        &|out| out.contains("198.51.100.0/24"),
    );
    let learned = started.elapsed();
    let kernel = na.ip(&["route", "show", "198.51.100.0/24"]);
    assert!(kernel.contains("10.0.12.2"), "{kernel}");
    wait(
        "oxr's routes in BIRD's RIP table",
        &|| bird.birdc("show route protocol rip1"),
        &|out| out.contains("10.255.0.1/32") && out.contains("203.0.113.0/24"),
    );
    // Passive network: metric 1 + BIRD's cost 1; redistributed static: 3 + 1.
    let all = bird.birdc("show route protocol rip1 all");
    assert!(all.contains("RIP.metric: 2"), "{all}");
    assert!(all.contains("RIP.metric: 4"), "{all}");
    println!(
        "{test}: BIRD's route in oxr's kernel after {:.1} s, oxr's in BIRD after {:.1} s",
        learned.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
