//! Interop with BIRD 2 in network namespaces (root only; skipped visibly otherwise, and when
//! `bird`, `oxr-fea` or `oxr-rib` cannot be found).
//!
//! ```text
//!   netns oxa: oxr-fea + oxr-rib + oxr-ospf      netns brd: bird
//!     lo 10.255.0.1/32 (passive)                   lo 10.255.0.2/32, vs0 192.0.2.1/24 (stub)
//!     va 10.0.12.1/24  ---------- veth ----------  vb 10.0.12.2/24
//! ```
//!
//! Each case asserts: adjacency Full on both sides (`birdc show ospf neighbors`, and
//! `oxrsh show ospf neighbor` when oxrsh is found), BIRD's stub network in the oxr
//! namespace's kernel table with protocol 201, and oxr's loopback in BIRD's table with
//! cost 11, and oxr's static route 203.0.113.0/24 redistributed (`redistribute.static`) in
//! BIRD's table as an E2 route with metric 20 and tag 7. All oxr processes read the same
//! router TOML. `oxr-fea`/`oxr-rib`/`oxr-static`/`oxrsh` are taken from
//! OXR_FEA_BIN/OXR_RIB_BIN/OXR_STATIC_BIN/OXRSH_BIN or beside this test
//! (`oxr_testlab::oxr_bin`). The namespace and BIRD harness is `oxr_testlab`'s.

use std::path::Path;
use std::time::{Duration, Instant};

use oxr_testlab::bird::Bird;
use oxr_testlab::{oxr_bin, veth_up, wait_for_output, Netns, Scratch};

#[derive(Clone, Copy)]
struct Case {
    name: &'static str,
    broadcast: bool,
    md5: bool,
    oxr_priority: u8,
    bird_priority: u8,
}

fn run(case: Case) {
    let test = format!("bird_interop_{}", case.name);
    if !oxr_testlab::require_root(&test) {
        return;
    }
    if !Bird::available() {
        println!("SKIPPED (bird not installed): {test}");
        return;
    }
    let (fea, rib, stat) = (
        oxr_bin("oxr-fea"),
        oxr_bin("oxr-rib"),
        oxr_bin("oxr-static"),
    );
    let ospf = Path::new(env!("CARGO_BIN_EXE_oxr-ospf"));
    let pid = std::process::id();
    let tag = &case.name[..3];
    let dir = Scratch::new(&format!("ospf-{test}"));
    let na = Netns::new(&format!("oxa{tag}{pid}"));
    let nb = Netns::new(&format!("brd{tag}{pid}"));
    veth_up(&na, "va", "10.0.12.1/24", &nb, "vb", "10.0.12.2/24");
    na.ip_lines(&["addr add 10.255.0.1/32 dev lo"]);
    nb.ip_lines(&[
        "addr add 10.255.0.2/32 dev lo",
        "link add vs0 type veth peer name vs1",
        "addr add 192.0.2.1/24 dev vs0",
        "link set vs1 up",
        "link set vs0 up",
    ]);
    let (bird_type, oxr_type) = if case.broadcast {
        ("broadcast", "broadcast")
    } else {
        ("ptp", "point-to-point")
    };
    let bird_auth = if case.md5 {
        "authentication cryptographic; password \"oxr-test\" { id 1; algorithm keyed md5; };"
    } else {
        ""
    };
    let oxr_auth = if case.md5 {
        "authentication = { type = \"md5\", key-id = 1, key = \"oxr-test\" }"
    } else {
        ""
    };
    let bird = Bird::start(
        &nb,
        &dir.0,
        "bird",
        &format!(
            "router id 10.255.0.2;\nlog stderr all;\nprotocol device {{ }}\n\
             protocol kernel {{ ipv4 {{ export all; }}; }}\n\
             protocol ospf v2 o1 {{\n  ipv4 {{ import all; export none; }};\n  area 0 {{\n\
             interface \"vb\" {{ type {bird_type}; hello 1; dead 4; cost 10; priority {}; {bird_auth} }};\n\
             interface \"vs0\" {{ stub yes; cost 5; }};\n\
             interface \"lo\" {{ stub yes; }};\n  }};\n}}\n",
            case.bird_priority
        ),
    );
    // One router TOML for every process; the router ID comes from the router section.
    let router = dir.0.join("router.toml");
    std::fs::write(
        &router,
        format!(
            "[router]\nname = \"oxa\"\nrouter-id = \"10.255.0.1\"\n\
             [protocols.ospf.areas.\"0.0.0.0\"]\n\
             [protocols.ospf.interfaces.va]\narea = \"0.0.0.0\"\ntype = \"{oxr_type}\"\n\
             hello-interval = 1\ndead-interval = 4\ncost = 10\npriority = {}\n{oxr_auth}\n\
             [protocols.ospf.interfaces.lo]\narea = \"0.0.0.0\"\npassive = true\ncost = 1\n\
             [protocols.ospf.redistribute.static]\nmetric = 20\nmetric-type = 2\ntag = 7\n\
             [protocols.static.route.\"203.0.113.0/24\"]\naction = \"blackhole\"\n",
            case.oxr_priority
        ),
    )
    .unwrap();
    let run_dir = dir.0.join("run");
    let log = |name: &str| dir.0.join(format!("{name}.log"));
    let mut oxr = Vec::new();
    for (bin, name) in [(&fea, "fea"), (&rib, "rib"), (&stat, "static")] {
        oxr.push(na.spawn_oxr(bin, "oxa", &run_dir, &router, &log(name)));
    }
    let started = Instant::now();
    oxr.push(na.spawn_oxr(ospf, "oxa", &run_dir, &router, &log("ospf")));
    let wait = |what: &str, secs: u64, probe: &dyn Fn() -> String, ok: &dyn Fn(&str) -> bool| {
        if let Err(out) = wait_for_output(Duration::from_secs(secs), probe, ok) {
            panic!(
                "timed out waiting for {what}:\n{out}\n{}",
                oxr_testlab::log_tails(&dir.0, 30)
            );
        }
    };
    let kernel = || na.ip(&["route", "show", "proto", "201"]);
    wait(
        "BIRD sees oxr Full",
        30,
        &|| bird.birdc("show ospf neighbors"),
        &|_| bird.ospf_full("10.255.0.1"),
    );
    let full = started.elapsed();
    let run_s = run_dir.to_str().unwrap();
    let oxrsh = oxr_bin("oxrsh");
    wait(
        "oxr sees BIRD Full",
        10,
        &|| {
            let (_, out, err) = oxr_testlab::try_run(
                oxrsh.to_str().unwrap(),
                &["--run-dir", run_s, "-c", "show ospf neighbor"],
            );
            out + &err
        },
        &|out| out.contains("10.255.0.2") && out.contains("Full"),
    );
    wait(
        "BIRD's stub in oxr's kernel table (proto 201)",
        30,
        &kernel,
        &|out| out.contains("192.0.2.0/24"),
    );
    let routed = started.elapsed();
    wait(
        "oxr's loopback in BIRD's table, cost 11",
        30,
        &|| bird.route("10.255.0.1/32"),
        &|out| out.contains("(150/11)"),
    );
    // The static route, redistributed: an OSPF E2 route with metric 20 in BIRD.
    wait(
        "oxr's redistributed static route in BIRD's table as E2 20 tag 7",
        30,
        &|| bird.route("203.0.113.0/24"),
        &|out| {
            out.contains("E2")
                && out.contains("(150/10/20)")
                && out.contains("OSPF.tag: 0x00000007")
        },
    );
    let kernel = kernel();
    assert!(kernel.contains("192.0.2.0/24 nhid") || kernel.contains("192.0.2.0/24 via"));
    assert!(kernel.contains("10.255.0.2"), "{kernel}");
    if case.broadcast {
        // The higher priority is DR.
        let out = bird.birdc("show ospf interface");
        let want = if case.oxr_priority > case.bird_priority {
            "Designated router (ID): 10.255.0.1"
        } else {
            "Designated router (ID): 10.255.0.2"
        };
        assert!(out.contains(want), "{out}");
    }
    println!(
        "{test}: Full after {:.1} s, BIRD's stub in the kernel after {:.1} s",
        full.as_secs_f64(),
        routed.as_secs_f64()
    );
}

#[test]
fn bird_interop_point_to_point() {
    run(Case {
        name: "ptp",
        broadcast: false,
        md5: false,
        oxr_priority: 1,
        bird_priority: 1,
    });
}

#[test]
fn bird_interop_broadcast_oxr_dr() {
    run(Case {
        name: "bdr",
        broadcast: true,
        md5: false,
        oxr_priority: 10,
        bird_priority: 1,
    });
}

#[test]
fn bird_interop_broadcast_bird_dr() {
    run(Case {
        name: "bnd",
        broadcast: true,
        md5: false,
        oxr_priority: 1,
        bird_priority: 10,
    });
}

#[test]
fn bird_interop_md5() {
    run(Case {
        name: "md5",
        broadcast: false,
        md5: true,
        oxr_priority: 1,
        bird_priority: 1,
    });
}
