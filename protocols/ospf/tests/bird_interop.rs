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
//! OXR_FEA_BIN/OXR_RIB_BIN/OXR_STATIC_BIN/OXRSH_BIN or
//! the workspace's target directories.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn find_bin(env: &str, name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    // The workspace's other binaries sit beside this crate's (deploy/test-all.sh builds
    // them all before the tests run).
    let p = Path::new(env!("CARGO_BIN_EXE_oxr-ospf")).with_file_name(name);
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first",
        p.display()
    );
    Some(p)
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn sh(args: &[&str]) -> String {
    let o = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
}

fn ok(args: &[&str]) {
    let s = Command::new(args[0]).args(&args[1..]).status().unwrap();
    assert!(s.success(), "{args:?} failed");
}

/// Deletes the namespaces and kills the processes this test started.
struct Lab {
    ns: Vec<String>,
    children: Vec<Child>,
    dir: PathBuf,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in &self.ns {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
        if std::env::var_os("OXR_KEEP_LAB").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Lab {
    fn spawn(&mut self, ns: &str, log: &str, cmd: &[&str]) {
        let log = std::fs::File::create(self.dir.join(log)).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.children.push(child);
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }
}

fn wait_for(what: &str, secs: u64, lab: &Lab, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!(
        "timed out waiting for {what}\n--- oxr-ospf log ---\n{}\n--- bird log ---\n{}",
        lab.log("ospf.log"),
        lab.log("bird.log")
    );
}

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
    if !is_root() {
        println!("SKIPPED (needs root): {test}");
        return;
    }
    let (Some(bird), Some(birdc)) = (which("bird"), which("birdc")) else {
        println!("SKIPPED (bird not installed): {test}");
        return;
    };
    let (Some(fea), Some(rib), Some(stat)) = (
        find_bin("OXR_FEA_BIN", "oxr-fea"),
        find_bin("OXR_RIB_BIN", "oxr-rib"),
        find_bin("OXR_STATIC_BIN", "oxr-static"),
    ) else {
        println!("SKIPPED (oxr-fea/oxr-rib/oxr-static not built): {test}");
        return;
    };
    let oxrsh = find_bin("OXRSH_BIN", "oxrsh");
    let ospf = env!("CARGO_BIN_EXE_oxr-ospf");
    let pid = std::process::id();
    let tag = &case.name[..3];
    let (na, nb) = (format!("oxa{tag}{pid}"), format!("brd{tag}{pid}"));
    let dir = std::env::temp_dir().join(format!("oxr-ospf-{test}-{pid}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("run")).unwrap();
    let mut lab = Lab {
        ns: vec![na.clone(), nb.clone()],
        children: vec![],
        dir: dir.clone(),
    };
    ok(&["ip", "netns", "add", &na]);
    ok(&["ip", "netns", "add", &nb]);
    let (va, vb) = (format!("va{tag}{pid}"), format!("vb{tag}{pid}"));
    let (va, vb) = (&va[..va.len().min(15)], &vb[..vb.len().min(15)]);
    ok(&["ip", "link", "add", va, "type", "veth", "peer", "name", vb]);
    ok(&["ip", "link", "set", va, "netns", &na]);
    ok(&["ip", "link", "set", vb, "netns", &nb]);
    ok(&["ip", "-n", &na, "link", "set", va, "name", "va"]);
    ok(&["ip", "-n", &nb, "link", "set", vb, "name", "vb"]);
    for (ns, cmd) in [
        (&na, "addr add 10.0.12.1/24 dev va"),
        (&na, "link set va up"),
        (&na, "link set lo up"),
        (&na, "addr add 10.255.0.1/32 dev lo"),
        (&nb, "addr add 10.0.12.2/24 dev vb"),
        (&nb, "link set vb up"),
        (&nb, "link set lo up"),
        (&nb, "addr add 10.255.0.2/32 dev lo"),
        (&nb, "link add vs0 type veth peer name vs1"),
        (&nb, "addr add 192.0.2.1/24 dev vs0"),
        (&nb, "link set vs1 up"),
        (&nb, "link set vs0 up"),
    ] {
        let mut args = vec!["ip", "-n", ns.as_str()];
        args.extend(cmd.split(' '));
        ok(&args);
    }
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
    let bird_sock = dir.join("bird.sock");
    let bird_conf = dir.join("bird.conf");
    std::fs::write(
        &bird_conf,
        format!(
            "router id 10.255.0.2;\nlog stderr all;\nprotocol device {{ }}\n\
             protocol kernel {{ ipv4 {{ export all; }}; }}\n\
             protocol ospf v2 o1 {{\n  ipv4 {{ import all; export none; }};\n  area 0 {{\n\
             interface \"vb\" {{ type {bird_type}; hello 1; dead 4; cost 10; priority {}; {bird_auth} }};\n\
             interface \"vs0\" {{ stub yes; cost 5; }};\n\
             interface \"lo\" {{ stub yes; }};\n  }};\n}}\n",
            case.bird_priority
        ),
    )
    .unwrap();
    // One router TOML for every process; the router ID comes from the router section.
    let router = dir.join("router.toml");
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
    let run_dir = dir.join("run");
    let run_dir = run_dir.to_str().unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    lab.spawn(
        &nb,
        "bird.log",
        &[&s(&bird), "-c", &s(&bird_conf), "-s", &s(&bird_sock), "-f"],
    );
    for (bin, log) in [(&fea, "fea.log"), (&rib, "rib.log"), (&stat, "static.log")] {
        lab.spawn(
            &na,
            log,
            &[
                &s(bin),
                "--router",
                "oxa",
                "--run-dir",
                run_dir,
                "--config",
                &s(&router),
            ],
        );
    }
    let started = Instant::now();
    lab.spawn(
        &na,
        "ospf.log",
        &[
            ospf,
            "--router",
            "oxa",
            "--run-dir",
            run_dir,
            "--config",
            &s(&router),
        ],
    );
    let birdc = s(&birdc);
    let bird_sock = s(&bird_sock);
    wait_for("BIRD sees oxr Full", 30, &lab, || {
        let out = sh(&[&birdc, "-s", &bird_sock, "show", "ospf", "neighbors"]);
        out.contains("10.255.0.1") && out.contains("Full")
    });
    let full = started.elapsed();
    if let Some(oxrsh) = &oxrsh {
        wait_for("oxr sees BIRD Full", 10, &lab, || {
            let out = sh(&[&s(oxrsh), "--run-dir", run_dir, "-c", "show ospf neighbor"]);
            out.contains("10.255.0.2") && out.contains("Full")
        });
    }
    wait_for(
        "BIRD's stub in oxr's kernel table (proto 201)",
        30,
        &lab,
        || sh(&["ip", "-n", &na, "route", "show", "proto", "201"]).contains("192.0.2.0/24"),
    );
    let routed = started.elapsed();
    wait_for("oxr's loopback in BIRD's table, cost 11", 30, &lab, || {
        sh(&[&birdc, "-s", &bird_sock, "show", "route", "10.255.0.1/32"]).contains("(150/11)")
    });
    // The static route, redistributed: an OSPF E2 route with metric 20 in BIRD.
    let mut seen = String::new();
    let found = (0..150).any(|_| {
        seen = sh(&[
            &birdc,
            "-s",
            &bird_sock,
            "show",
            "route",
            "203.0.113.0/24",
            "all",
        ]);
        let ok = seen.contains("E2")
            && seen.contains("(150/10/20)")
            && seen.contains("OSPF.tag: 0x00000007");
        if !ok {
            std::thread::sleep(Duration::from_millis(200));
        }
        ok
    });
    assert!(
        found,
        "oxr's redistributed static route not in BIRD's table as E2 20 tag 7:\n{seen}\n{}",
        lab.log("ospf.log")
    );
    let kernel = sh(&["ip", "-n", &na, "route", "show", "proto", "201"]);
    assert!(kernel.contains("192.0.2.0/24 nhid") || kernel.contains("192.0.2.0/24 via"));
    assert!(kernel.contains("10.255.0.2"), "{kernel}");
    if case.broadcast {
        // The higher priority is DR.
        let out = sh(&[&birdc, "-s", &bird_sock, "show", "ospf", "interface"]);
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
