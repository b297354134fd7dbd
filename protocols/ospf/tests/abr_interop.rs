//! oxr-ospf as area border router between the backbone and a stub area, with BIRD 2 on both
//! sides (root only; skipped visibly otherwise, and when `bird` is not installed).
//!
//! ```text
//!   netns b0: bird (area 0)       netns x: oxr-fea + oxr-rib + oxr-ospf    netns b1: bird (stub area 1)
//!     lo 10.255.0.2/32              lo 10.255.0.1/32 (area 0, passive)      lo 10.255.0.3/32
//!     v0 10.0.1.2/30 ------------- x0 10.0.1.1/30  x1 10.0.2.1/30 -------- v1 10.0.2.2/30
//!                                                                           vs0 192.0.2.1/24 (stub)
//! ```
//!
//! Asserts: BIRD in the stub area gets oxr's default summary (0.0.0.0/0) and the backbone's
//! networks as inter-area routes; BIRD in the backbone gets the stub area's networks through
//! oxr's summary LSAs; oxr's kernel table has both sides' networks (protocol 201).

mod netlab;

use std::path::Path;
use std::time::{Duration, Instant};

use netlab::{is_root, oxr_bin, sh, which, Lab};

fn bird_conf(rid: &str, area: &str) -> String {
    format!(
        "router id {rid};\nlog stderr all;\nprotocol device {{ }}\n\
         protocol kernel {{ ipv4 {{ export all; }}; }}\n\
         protocol ospf v2 o1 {{\n  ipv4 {{ import all; export none; }};\n  {area}\n}}\n"
    )
}

/// Polls `f` every 200 ms for up to `secs`; returns the last output when it never matched.
fn poll(secs: u64, mut f: impl FnMut() -> (bool, String)) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (ok, out) = f();
        if ok {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(out);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn abr_between_backbone_and_stub_area_with_bird() {
    let test = "abr_between_backbone_and_stub_area_with_bird";
    if !is_root() {
        println!("SKIPPED (needs root): {test}");
        return;
    }
    let (Some(bird), Some(birdc)) = (which("bird"), which("birdc")) else {
        println!("SKIPPED (bird not installed): {test}");
        return;
    };
    let own = Path::new(env!("CARGO_BIN_EXE_oxr-ospf"));
    let (Some(fea), Some(rib)) = (
        oxr_bin("OXR_FEA_BIN", own, "oxr-fea"),
        oxr_bin("OXR_RIB_BIN", own, "oxr-rib"),
    ) else {
        panic!("oxr-fea/oxr-rib missing beside oxr-ospf: run `cargo build --workspace --bins`");
    };
    let pid = std::process::id();
    let (b0, x, b1) = (
        format!("abrb0{pid}"),
        format!("abrx{pid}"),
        format!("abrb1{pid}"),
    );
    let mut lab = Lab::new("oxr-ospf-abr");
    for n in [&b0, &x, &b1] {
        lab.add_ns(n);
    }
    lab.veth(&b0, "v0", "10.0.1.2/30", &x, "x0", "10.0.1.1/30");
    lab.veth(&x, "x1", "10.0.2.1/30", &b1, "v1", "10.0.2.2/30");
    lab.ip(&b0, "addr add 10.255.0.2/32 dev lo");
    lab.ip(&x, "addr add 10.255.0.1/32 dev lo");
    lab.ip(&b1, "addr add 10.255.0.3/32 dev lo");
    lab.ip(&b1, "link add vs0 type veth peer name vs1");
    lab.ip(&b1, "addr add 192.0.2.1/24 dev vs0");
    lab.ip(&b1, "link set vs1 up");
    lab.ip(&b1, "link set vs0 up");

    let ptp = "type ptp; hello 1; dead 4; cost 10;";
    std::fs::write(
        lab.dir.join("b0.conf"),
        bird_conf(
            "10.255.0.2",
            &format!(
                "area 0 {{ interface \"v0\" {{ {ptp} }}; interface \"lo\" {{ stub yes; }}; }};"
            ),
        ),
    )
    .unwrap();
    std::fs::write(
        lab.dir.join("b1.conf"),
        bird_conf(
            "10.255.0.3",
            &format!(
                "area 0.0.0.1 {{ stub yes; interface \"v1\" {{ {ptp} }}; \
                 interface \"lo\" {{ stub yes; }}; interface \"vs0\" {{ stub yes; cost 5; }}; }};"
            ),
        ),
    )
    .unwrap();
    std::fs::write(
        lab.dir.join("router.toml"),
        "[router]\nname = \"x\"\nrouter-id = \"10.255.0.1\"\n\
         [protocols.ospf.areas.\"0.0.0.0\"]\n\
         [protocols.ospf.areas.\"0.0.0.1\"]\nstub = true\ndefault-cost = 3\n\
         [protocols.ospf.interfaces.lo]\narea = \"0.0.0.0\"\npassive = true\ncost = 1\n\
         [protocols.ospf.interfaces.x0]\narea = \"0.0.0.0\"\ntype = \"point-to-point\"\n\
         hello-interval = 1\ndead-interval = 4\ncost = 10\n\
         [protocols.ospf.interfaces.x1]\narea = \"0.0.0.1\"\ntype = \"point-to-point\"\n\
         hello-interval = 1\ndead-interval = 4\ncost = 10\n",
    )
    .unwrap();
    std::fs::create_dir_all(lab.dir.join("run")).unwrap();
    let (bird, birdc) = (
        bird.to_str().unwrap().to_string(),
        birdc.to_str().unwrap().to_string(),
    );
    for (ns, name) in [(&b0, "b0"), (&b1, "b1")] {
        let (conf, sock) = (
            lab.path(&format!("{name}.conf")),
            lab.path(&format!("{name}.sock")),
        );
        lab.spawn(
            ns,
            &format!("{name}.log"),
            &[&bird, "-c", &conf, "-s", &sock, "-f"],
        );
    }
    let (run, router) = (lab.path("run"), lab.path("router.toml"));
    for (bin, log) in [
        (fea.to_str().unwrap(), "fea.log"),
        (rib.to_str().unwrap(), "rib.log"),
        (own.to_str().unwrap(), "ospf.log"),
    ] {
        lab.spawn(
            &x,
            log,
            &[bin, "--router", "x", "--run-dir", &run, "--config", &router],
        );
    }
    let route = |name: &str, prefix: &str| {
        sh(&[
            &birdc,
            "-s",
            &lab.path(&format!("{name}.sock")),
            "show",
            "route",
            prefix,
        ])
    };
    let fail = |what: &str, out: String| -> ! {
        panic!(
            "timed out waiting for {what}:\n{out}\n--- oxr-ospf log ---\n{}\n--- b0 lsadb ---\n{}\n--- b1 lsadb ---\n{}",
            lab.log("ospf.log"),
            sh(&[&birdc, "-s", &lab.path("b0.sock"), "show", "ospf", "lsadb"]),
            sh(&[&birdc, "-s", &lab.path("b1.sock"), "show", "ospf", "lsadb"]),
        )
    };
    // Stub area: the default summary (cost 3 + 10) and the backbone's loopbacks, inter-area.
    if let Err(out) = poll(40, || {
        let o = route("b1", "0.0.0.0/0");
        (o.contains("IA") && o.contains("(150/13)"), o)
    }) {
        fail("the default summary in the stub area's BIRD", out);
    }
    for p in ["10.255.0.2/32", "10.255.0.1/32"] {
        if let Err(out) = poll(20, || {
            let o = route("b1", p);
            (o.contains("IA") && o.contains("10.255.0.1]"), o)
        }) {
            fail(&format!("{p} inter-area in the stub area's BIRD"), out);
        }
    }
    // Backbone: the stub area's networks through oxr's summary LSAs (10 + 10 + 5).
    if let Err(out) = poll(20, || {
        let o = route("b0", "192.0.2.0/24");
        (o.contains("IA") && o.contains("(150/25)"), o)
    }) {
        fail("the stub area's network in the backbone's BIRD", out);
    }
    if let Err(out) = poll(20, || {
        let o = route("b0", "10.255.0.3/32");
        (o.contains("IA"), o)
    }) {
        fail("the stub area's loopback in the backbone's BIRD", out);
    }
    // oxr's own FIB has both sides.
    if let Err(out) = poll(20, || {
        let o = sh(&["ip", "-n", &x, "route", "show", "proto", "201"]);
        (
            o.contains("192.0.2.0/24") && o.contains("10.255.0.2") && o.contains("10.255.0.3"),
            o,
        )
    }) {
        fail("both areas' networks in oxr's kernel table", out);
    }
    // The stub area's BIRD reaches the backbone's loopback through oxr (kernel routes).
    let kernel = sh(&["ip", "-n", &b1, "route", "show", "10.255.0.2"]);
    assert!(kernel.contains("10.0.2.1"), "{kernel}");
    println!("{test}: ok");
}
