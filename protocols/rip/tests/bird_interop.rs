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
//! are the workspace's, beside this test's own (deploy/test-all.sh builds them all).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// Kills what the test started and deletes its namespaces.
struct Lab {
    ns: Vec<String>,
    children: Vec<Child>,
    dir: PathBuf,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
        }
        std::thread::sleep(Duration::from_millis(300));
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
    fn logs(&self) -> String {
        let mut s = String::new();
        for f in ["routerd.log", "bird.log"] {
            s += &format!(
                "--- {f} ---\n{}\n",
                std::fs::read_to_string(self.dir.join(f)).unwrap_or_default()
            );
        }
        s
    }

    fn wait_for(&self, what: &str, secs: u64, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("timed out waiting for {what}\n{}", self.logs());
    }
}

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
    if !nix_is_root() {
        println!("SKIPPED (needs root): {test}");
        return;
    }
    let (Some(bird), Some(birdc)) = (which("bird"), which("birdc")) else {
        println!("SKIPPED (bird not installed): {test}");
        return;
    };
    let routerd = Path::new(env!("CARGO_BIN_EXE_oxr-rip")).with_file_name("oxr-routerd");
    assert!(
        routerd.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first",
        routerd.display()
    );
    let pid = std::process::id();
    let tag = auth.map_or("n", |a| &a.1[..1]);
    let (na, nb) = (format!("oxrip{tag}{pid}"), format!("brdrip{tag}{pid}"));
    let dir = std::env::temp_dir().join(format!("oxr-rip-{test}-{pid}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut lab = Lab {
        ns: vec![na.clone(), nb.clone()],
        children: vec![],
        dir: dir.clone(),
    };
    ok(&["ip", "netns", "add", &na]);
    ok(&["ip", "netns", "add", &nb]);
    let (va, vb) = (format!("vra{tag}{pid}"), format!("vrb{tag}{pid}"));
    ok(&[
        "ip", "link", "add", &va, "type", "veth", "peer", "name", &vb,
    ]);
    ok(&["ip", "link", "set", &va, "netns", &na]);
    ok(&["ip", "link", "set", &vb, "netns", &nb]);
    ok(&["ip", "-n", &na, "link", "set", &va, "name", "va"]);
    ok(&["ip", "-n", &nb, "link", "set", &vb, "name", "vb"]);
    for (ns, cmd) in [
        (&na, "addr add 10.0.12.1/24 dev va"),
        (&na, "link set va up"),
        (&na, "link set lo up"),
        (&na, "addr add 10.255.0.1/32 dev lo"),
        (&nb, "addr add 10.0.12.2/24 dev vb"),
        (&nb, "link set vb up"),
        (&nb, "link set lo up"),
    ] {
        let mut args = vec!["ip", "-n", ns.as_str()];
        args.extend(cmd.split(' '));
        ok(&args);
    }
    let bird_sock = dir.join("bird.sock");
    let bird_conf = dir.join("bird.conf");
    let (bird_auth, oxr_auth) = match auth {
        Some((b, o)) => (
            format!(
                "authentication cryptographic; password \"oxr-test\" {{ id 1; algorithm {b}; }};"
            ),
            format!("authentication = {{ key-id = 1, key = \"oxr-test\", algorithm = \"{o}\" }}\n"),
        ),
        None => (String::new(), String::new()),
    };
    std::fs::write(
        &bird_conf,
        format!(
            "router id 10.0.12.2;\nlog stderr all;\nprotocol device {{ }}\n\
         protocol static {{ ipv4; route 198.51.100.0/24 blackhole; }}\n\
         protocol rip rip1 {{\n  debug all;\n  ipv4 {{ import all; export all; }};\n\
           interface \"vb\" {{ version 2; update time 5; {bird_auth} }};\n}}\n"
        ),
    )
    .unwrap();
    let router = dir.join("oxr.toml");
    std::fs::write(
        &router,
        format!(
            "[router]\nname = \"oxrip\"\n\
         [protocols.static.route.\"203.0.113.0/24\"]\naction = \"blackhole\"\n\
         [protocols.rip.interfaces.va]\n{oxr_auth}[protocols.rip.interfaces.lo]\npassive = true\n\
         [protocols.rip.timers]\nupdate-interval = 5\ntimeout = 15\ngarbage-collection = 10\n\
         [protocols.rip.redistribute.static]\nmetric = 3\n"
        ),
    )
    .unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let log = |name: &str| std::fs::File::create(dir.join(name)).unwrap();
    let bird_log = log("bird.log");
    lab.children.push(
        Command::new("ip")
            .args(["netns", "exec", &nb])
            .args([&s(&bird), "-c", &s(&bird_conf), "-s", &s(&bird_sock), "-f"])
            .stdin(Stdio::null())
            .stdout(bird_log.try_clone().unwrap())
            .stderr(bird_log)
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    lab.children.push(
        Command::new(&routerd)
            .args(["--config", &s(&router), "--netns", &na])
            .args(["--run-dir", &s(&dir.join("run"))])
            .env("OXR_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log("routerd.log"))
            .spawn()
            .unwrap(),
    );
    let birdc = s(&birdc);
    let bird_sock = s(&bird_sock);
    lab.wait_for("BIRD's route in oxr's kernel table (proto 201)", 40, || {
        sh(&["ip", "-n", &na, "route", "show", "proto", "201"]).contains("198.51.100.0/24")
    });
    let learned = started.elapsed();
    let kernel = sh(&["ip", "-n", &na, "route", "show", "198.51.100.0/24"]);
    assert!(kernel.contains("10.0.12.2"), "{kernel}");
    let mut seen = String::new();
    lab.wait_for("oxr's routes in BIRD's RIP table", 40, || {
        seen = sh(&[
            &birdc, "-s", &bird_sock, "show", "route", "protocol", "rip1",
        ]);
        seen.contains("10.255.0.1/32") && seen.contains("203.0.113.0/24")
    });
    // Passive network: metric 1 + BIRD's cost 1; redistributed static: 3 + 1.
    let all = sh(&[
        &birdc, "-s", &bird_sock, "show", "route", "protocol", "rip1", "all",
    ]);
    assert!(all.contains("RIP.metric: 2"), "{all}");
    assert!(all.contains("RIP.metric: 4"), "{all}");
    println!(
        "{test}: BIRD's route in oxr's kernel after {:.1} s, oxr's in BIRD after {:.1} s",
        learned.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

fn nix_is_root() -> bool {
    // Through the `id` tool: geteuid would need `unsafe`, which the workspace forbids.
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
