//! oxr-ospf as area border router between the backbone and a stub area or an NSSA, with
//! BIRD 2 on both sides (root only; skipped visibly otherwise, and when `bird` is not
//! installed).
//!
//! ```text
//!   netns b0: bird (area 0)       netns x: oxr-fea + oxr-rib + oxr-ospf    netns b1: bird (area 1)
//!     lo 10.255.0.2/32              lo 10.255.0.1/32 (area 0, passive)      lo 10.255.0.3/32
//!     v0 10.0.1.2/30 ------------- x0 10.0.1.1/30  x1 10.0.2.1/30 -------- v1 10.0.2.2/30
//!                                                                           vs0 192.0.2.1/24 (stub)
//! ```
//!
//! Stub area 1: BIRD in the stub area gets oxr's default summary (0.0.0.0/0) and the
//! backbone's networks as inter-area routes; BIRD in the backbone gets the stub area's
//! networks through oxr's summary LSAs; oxr's kernel table has both sides' networks
//! (protocol 201).
//!
//! NSSA area 1: BIRD in the NSSA redistributes a static route (198.51.100.0/24) as a type-7
//! LSA; oxr installs it, translates it into a type-5 LSA, and the backbone's BIRD puts the
//! route into its kernel table through oxr; BIRD in the NSSA gets oxr's type-7 default.

mod netlab;

use std::path::Path;
use std::time::{Duration, Instant};

use netlab::{is_root, oxr_bin, sh, which, Lab};

fn bird_conf(rid: &str, area: &str) -> String {
    bird_conf_with(rid, area, "none", "")
}

/// A BIRD config exporting `export` (a filter) into OSPF, with extra protocols.
fn bird_conf_with(rid: &str, area: &str, export: &str, extra: &str) -> String {
    format!(
        "router id {rid};\nlog stderr all;\nprotocol device {{ }}\n\
         protocol kernel {{ ipv4 {{ export all; }}; }}\n{extra}\n\
         protocol ospf v2 o1 {{\n  ipv4 {{ import all; export {export}; }};\n  {area}\n}}\n"
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

/// The lab of the module diagram, running: BIRD in b0 (area 0) and b1 (area 1 as
/// `b1_area`: the BIRD area options, e.g. `stub yes;`), oxr in x with `area1_toml` under
/// its area 1. None when skipped (printed).
struct Abr {
    lab: Lab,
    b0: String,
    x: String,
    b1: String,
    birdc: String,
}

impl Abr {
    fn start(
        test: &str,
        b1_area: &str,
        b1_export: &str,
        b1_extra: &str,
        area1_toml: &str,
    ) -> Option<Abr> {
        if !is_root() {
            println!("SKIPPED (needs root): {test}");
            return None;
        }
        let (Some(bird), Some(birdc)) = (which("bird"), which("birdc")) else {
            println!("SKIPPED (bird not installed): {test}");
            return None;
        };
        let own = Path::new(env!("CARGO_BIN_EXE_oxr-ospf"));
        let (Some(fea), Some(rib)) = (
            oxr_bin("OXR_FEA_BIN", own, "oxr-fea"),
            oxr_bin("OXR_RIB_BIN", own, "oxr-rib"),
        ) else {
            panic!("oxr-fea/oxr-rib missing beside oxr-ospf: run `cargo build --workspace --bins`");
        };
        // Unique per test and process: the two tests may run at once.
        let tag: String = test
            .chars()
            .filter(|c| c.is_ascii_alphabetic())
            .take(4)
            .collect();
        let pid = std::process::id();
        let (b0, x, b1) = (
            format!("abrb0{tag}{pid}"),
            format!("abrx{tag}{pid}"),
            format!("abrb1{tag}{pid}"),
        );
        let mut lab = Lab::new(&format!("oxr-ospf-abr-{tag}"));
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
            bird_conf_with(
                "10.255.0.3",
                &format!(
                    "area 0.0.0.1 {{ {b1_area} interface \"v1\" {{ {ptp} }}; \
                     interface \"lo\" {{ stub yes; }}; interface \"vs0\" {{ stub yes; cost 5; }}; }};"
                ),
                b1_export,
                b1_extra,
            ),
        )
        .unwrap();
        std::fs::write(
            lab.dir.join("router.toml"),
            format!(
                "[router]\nname = \"x\"\nrouter-id = \"10.255.0.1\"\n\
                 [protocols.ospf.areas.\"0.0.0.0\"]\n\
                 [protocols.ospf.areas.\"0.0.0.1\"]\n{area1_toml}\n\
                 [protocols.ospf.interfaces.lo]\narea = \"0.0.0.0\"\npassive = true\ncost = 1\n\
                 [protocols.ospf.interfaces.x0]\narea = \"0.0.0.0\"\ntype = \"point-to-point\"\n\
                 hello-interval = 1\ndead-interval = 4\ncost = 10\n\
                 [protocols.ospf.interfaces.x1]\narea = \"0.0.0.1\"\ntype = \"point-to-point\"\n\
                 hello-interval = 1\ndead-interval = 4\ncost = 10\n"
            ),
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
        Some(Abr {
            lab,
            b0,
            x,
            b1,
            birdc,
        })
    }

    /// `birdc show route PREFIX` of b0 or b1.
    fn route(&self, name: &str, prefix: &str) -> String {
        sh(&[
            &self.birdc,
            "-s",
            &self.lab.path(&format!("{name}.sock")),
            "show",
            "route",
            prefix,
        ])
    }

    fn fail(&self, what: &str, out: String) -> ! {
        let lsadb = |n: &str| {
            sh(&[
                &self.birdc,
                "-s",
                &self.lab.path(&format!("{n}.sock")),
                "show",
                "ospf",
                "lsadb",
            ])
        };
        panic!(
            "timed out waiting for {what}:\n{out}\n--- oxr-ospf log ---\n{}\n--- b0 lsadb ---\n{}\n--- b1 lsadb ---\n{}",
            self.lab.log("ospf.log"),
            lsadb("b0"),
            lsadb("b1"),
        )
    }
}

#[test]
fn abr_between_backbone_and_stub_area_with_bird() {
    let test = "abr_between_backbone_and_stub_area_with_bird";
    let Some(abr) = Abr::start(
        test,
        "stub yes;",
        "none",
        "",
        "stub = true\ndefault-cost = 3",
    ) else {
        return;
    };
    let (x, b1) = (&abr.x, &abr.b1);
    let route = |name: &str, prefix: &str| abr.route(name, prefix);
    let fail = |what: &str, out: String| -> ! { abr.fail(what, out) };
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
        let o = sh(&["ip", "-n", x, "route", "show", "proto", "201"]);
        (
            o.contains("192.0.2.0/24") && o.contains("10.255.0.2") && o.contains("10.255.0.3"),
            o,
        )
    }) {
        fail("both areas' networks in oxr's kernel table", out);
    }
    // The stub area's BIRD reaches the backbone's loopback through oxr (kernel routes).
    let kernel = sh(&["ip", "-n", b1, "route", "show", "10.255.0.2"]);
    assert!(kernel.contains("10.0.2.1"), "{kernel}");
    println!("{test}: ok");
}

#[test]
fn abr_translates_type7_from_bird_in_an_nssa() {
    let test = "abr_translates_type7_from_bird_in_an_nssa";
    let Some(abr) = Abr::start(
        test,
        "nssa;",
        "where source = RTS_STATIC",
        "protocol static { ipv4; route 198.51.100.0/24 blackhole; }",
        "nssa = true\ndefault-cost = 3",
    ) else {
        return;
    };
    let fail = |what: &str, out: String| -> ! { abr.fail(what, out) };
    // The type-7 arrives at oxr and is used (E2, next hop the NSSA's BIRD).
    if let Err(out) = poll(40, || {
        let o = sh(&[
            "ip",
            "-n",
            &abr.x,
            "route",
            "show",
            "198.51.100.0/24",
            "proto",
            "201",
        ]);
        (o.contains("via 10.0.2.2"), o)
    }) {
        fail("the NSSA's type-7 route in oxr's kernel table", out);
    }
    // Translated: the backbone's BIRD has it as an external route from oxr's type-5 and
    // puts it into its kernel table through oxr.
    if let Err(out) = poll(20, || {
        let o = abr.route("b0", "198.51.100.0/24");
        (o.contains("E2"), o)
    }) {
        fail("the translated external route in the backbone's BIRD", out);
    }
    if let Err(out) = poll(20, || {
        let o = sh(&["ip", "-n", &abr.b0, "route", "show", "198.51.100.0/24"]);
        (o.contains("via 10.0.1.1"), o)
    }) {
        fail(
            "the translated route in the backbone BIRD's kernel table",
            out,
        );
    }
    let lsadb = sh(&[
        &abr.birdc,
        "-s",
        &abr.lab.path("b0.sock"),
        "show",
        "ospf",
        "lsadb",
    ]);
    assert!(lsadb.contains("198.51.100.0"), "{lsadb}");
    // The NSSA's BIRD: oxr's type-7 default (E1, 10 + 3) and the backbone's loopback.
    if let Err(out) = poll(20, || {
        let o = abr.route("b1", "0.0.0.0/0");
        (o.contains("E1") && o.contains("(150/13)"), o)
    }) {
        fail("the type-7 default in the NSSA's BIRD", out);
    }
    if let Err(out) = poll(20, || {
        let o = abr.route("b1", "10.255.0.2/32");
        (o.contains("IA"), o)
    }) {
        fail("the backbone's loopback inter-area in the NSSA's BIRD", out);
    }
    println!("{test}: ok");
}
