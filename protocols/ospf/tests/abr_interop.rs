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

use std::path::Path;
use std::time::Duration;

use oxr_testlab::bird::Bird;
use oxr_testlab::{oxr_bin, veth_up, wait_for_output, Daemon, Netns, Scratch};

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

/// The lab of the module diagram, running: BIRD in b0 (area 0) and b1 (area 1 as
/// `b1_area`: the BIRD area options, e.g. `stub yes;`), oxr in x with `area1_toml` under
/// its area 1. Fields drop in order: processes first, then namespaces, then files.
struct Abr {
    b0: Bird,
    b1: Bird,
    _oxr: Vec<Daemon>,
    ns_b0: Netns,
    x: Netns,
    ns_b1: Netns,
    dir: Scratch,
}

impl Abr {
    /// None when skipped (printed).
    fn start(
        test: &str,
        b1_area: &str,
        b1_export: &str,
        b1_extra: &str,
        area1_toml: &str,
    ) -> Option<Abr> {
        if !oxr_testlab::require_root(test) {
            return None;
        }
        if !Bird::available() {
            println!("SKIPPED (bird not installed): {test}");
            return None;
        }
        let (fea, rib) = (oxr_bin("oxr-fea"), oxr_bin("oxr-rib"));
        let ospf = Path::new(env!("CARGO_BIN_EXE_oxr-ospf"));
        // Unique per test and process: the two tests may run at once.
        let tag: String = test
            .chars()
            .filter(|c| c.is_ascii_alphabetic())
            .take(4)
            .collect();
        let pid = std::process::id();
        let dir = Scratch::new(&format!("ospf-abr-{tag}"));
        let ns_b0 = Netns::new(&format!("abrb0{tag}{pid}"));
        let x = Netns::new(&format!("abrx{tag}{pid}"));
        let ns_b1 = Netns::new(&format!("abrb1{tag}{pid}"));
        veth_up(&ns_b0, "v0", "10.0.1.2/30", &x, "x0", "10.0.1.1/30");
        veth_up(&x, "x1", "10.0.2.1/30", &ns_b1, "v1", "10.0.2.2/30");
        ns_b0.ip_lines(&["addr add 10.255.0.2/32 dev lo"]);
        x.ip_lines(&["addr add 10.255.0.1/32 dev lo"]);
        ns_b1.ip_lines(&[
            "addr add 10.255.0.3/32 dev lo",
            "link add vs0 type veth peer name vs1",
            "addr add 192.0.2.1/24 dev vs0",
            "link set vs1 up",
            "link set vs0 up",
        ]);

        let ptp = "type ptp; hello 1; dead 4; cost 10;";
        let b0 = Bird::start(
            &ns_b0,
            &dir.0,
            "b0",
            &bird_conf(
                "10.255.0.2",
                &format!(
                    "area 0 {{ interface \"v0\" {{ {ptp} }}; interface \"lo\" {{ stub yes; }}; }};"
                ),
            ),
        );
        let b1 = Bird::start(
            &ns_b1,
            &dir.0,
            "b1",
            &bird_conf_with(
                "10.255.0.3",
                &format!(
                    "area 0.0.0.1 {{ {b1_area} interface \"v1\" {{ {ptp} }}; \
                     interface \"lo\" {{ stub yes; }}; interface \"vs0\" {{ stub yes; cost 5; }}; }};"
                ),
                b1_export,
                b1_extra,
            ),
        );
        let router = dir.0.join("router.toml");
        std::fs::write(
            &router,
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
        let run = dir.0.join("run");
        let oxr = [
            (fea.as_path(), "fea"),
            (rib.as_path(), "rib"),
            (ospf, "ospf"),
        ]
        .map(|(bin, name)| {
            let log = dir.0.join(format!("{name}.log"));
            x.spawn_oxr(bin, "x", &run, &router, &log)
        })
        .into();
        Some(Abr {
            b0,
            b1,
            _oxr: oxr,
            ns_b0,
            x,
            ns_b1,
            dir,
        })
    }

    /// BIRD b0 or b1.
    fn bird(&self, name: &str) -> &Bird {
        if name == "b0" {
            &self.b0
        } else {
            &self.b1
        }
    }

    /// `birdc show route PREFIX all` of b0 or b1.
    fn route(&self, name: &str, prefix: &str) -> String {
        self.bird(name).route(prefix)
    }

    /// Waits up to `secs` for `ok` on `probe`'s output; panics with the last output, oxr's
    /// log and both BIRDs' LSDBs otherwise.
    fn wait(
        &self,
        what: &str,
        secs: u64,
        probe: impl FnMut() -> String,
        ok: impl Fn(&str) -> bool,
    ) {
        if let Err(out) = wait_for_output(Duration::from_secs(secs), probe, ok) {
            panic!(
                "timed out waiting for {what}:\n{out}\n{}\n--- b0 lsadb ---\n{}\n--- b1 lsadb ---\n{}",
                oxr_testlab::file_tail(&self.dir.0.join("ospf.log"), 60),
                self.b0.birdc("show ospf lsadb"),
                self.b1.birdc("show ospf lsadb"),
            )
        }
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
    // Stub area: the default summary (cost 3 + 10) and the backbone's loopbacks, inter-area.
    abr.wait(
        "the default summary in the stub area's BIRD",
        40,
        || abr.route("b1", "0.0.0.0/0"),
        |o| o.contains("IA") && o.contains("(150/13)"),
    );
    for p in ["10.255.0.2/32", "10.255.0.1/32"] {
        abr.wait(
            &format!("{p} inter-area in the stub area's BIRD"),
            20,
            || abr.route("b1", p),
            |o| o.contains("IA") && o.contains("10.255.0.1]"),
        );
    }
    // Backbone: the stub area's networks through oxr's summary LSAs (10 + 10 + 5).
    abr.wait(
        "the stub area's network in the backbone's BIRD",
        20,
        || abr.route("b0", "192.0.2.0/24"),
        |o| o.contains("IA") && o.contains("(150/25)"),
    );
    abr.wait(
        "the stub area's loopback in the backbone's BIRD",
        20,
        || abr.route("b0", "10.255.0.3/32"),
        |o| o.contains("IA"),
    );
    // oxr's own FIB has both sides.
    abr.wait(
        "both areas' networks in oxr's kernel table",
        20,
        || abr.x.ip(&["route", "show", "proto", "201"]),
        |o| o.contains("192.0.2.0/24") && o.contains("10.255.0.2") && o.contains("10.255.0.3"),
    );
    // The stub area's BIRD reaches the backbone's loopback through oxr (kernel routes).
    let kernel = abr.ns_b1.ip(&["route", "show", "10.255.0.2"]);
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
    // The type-7 arrives at oxr and is used (E2, next hop the NSSA's BIRD).
    abr.wait(
        "the NSSA's type-7 route in oxr's kernel table",
        40,
        || {
            abr.x
                .ip(&["route", "show", "198.51.100.0/24", "proto", "201"])
        },
        |o| o.contains("via 10.0.2.2"),
    );
    // Translated: the backbone's BIRD has it as an external route from oxr's type-5 and
    // puts it into its kernel table through oxr.
    abr.wait(
        "the translated external route in the backbone's BIRD",
        20,
        || abr.route("b0", "198.51.100.0/24"),
        |o| o.contains("E2"),
    );
    abr.wait(
        "the translated route in the backbone BIRD's kernel table",
        20,
        || abr.ns_b0.ip(&["route", "show", "198.51.100.0/24"]),
        |o| o.contains("via 10.0.1.1"),
    );
    let lsadb = abr.b0.birdc("show ospf lsadb");
    assert!(lsadb.contains("198.51.100.0"), "{lsadb}");
    // The NSSA's BIRD: oxr's type-7 default (E1, 10 + 3) and the backbone's loopback.
    abr.wait(
        "the type-7 default in the NSSA's BIRD",
        20,
        || abr.route("b1", "0.0.0.0/0"),
        |o| o.contains("E1") && o.contains("(150/13)"),
    );
    abr.wait(
        "the backbone's loopback inter-area in the NSSA's BIRD",
        20,
        || abr.route("b1", "10.255.0.2/32"),
        |o| o.contains("IA"),
    );
    println!("{test}: ok");
}
