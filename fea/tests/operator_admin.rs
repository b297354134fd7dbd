//! oxr-fea does not fight an operator: an interface set down by hand stays down while the
//! daemon runs, even as other interface events arrive (needs root).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{root_or_skip, Netns};

/// The daemon, killed on drop (before the namespace guard declared earlier is dropped).
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn admin_up(ns: &Netns, dev: &str) -> bool {
    let out = ns.ip(&["-o", "link", "show", "dev", dev]);
    // `2: veth0@veth1: <BROADCAST,MULTICAST,UP,LOWER_UP> ...`: UP is the admin flag.
    out.split('<')
        .nth(1)
        .and_then(|s| s.split('>').next())
        .is_some_and(|flags| flags.split(',').any(|f| f == "UP"))
}

fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn an_interface_set_down_by_hand_stays_down() {
    if !root_or_skip("an_interface_set_down_by_hand_stays_down") {
        return;
    }
    let ns = Netns::new("admin");
    ns.ip(&[
        "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("router.toml");
    std::fs::write(
        &cfg,
        "[fea]\ndataplane = \"none\"\n\n[interfaces.veth0]\naddress = [\"192.0.2.1/24\"]\n",
    )
    .unwrap();
    let child = Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .arg(env!("CARGO_BIN_EXE_oxr-fea"))
        .args(["--run-dir", dir.path().to_str().unwrap()])
        .args(["--config", cfg.to_str().unwrap(), "--backend", "none"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("oxr-fea");
    let daemon = Daemon(child);

    // The config asks for veth0 (up by default, with an address): the FEA applies it.
    wait_until("oxr-fea to bring veth0 up", || admin_up(&ns, "veth0"));
    wait_until("the configured address", || {
        ns.ip(&["-o", "addr", "show", "dev", "veth0"])
            .contains("192.0.2.1/24")
    });

    // The operator takes it down; other interface events follow.
    ns.ip(&["link", "set", "veth0", "down"]);
    ns.ip(&["link", "set", "veth1", "up"]);
    ns.ip(&["addr", "add", "198.51.100.1/24", "dev", "veth1"]);
    ns.ip(&[
        "link", "add", "veth2", "type", "veth", "peer", "name", "veth3",
    ]);
    ns.ip(&["link", "set", "veth2", "up"]);
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        assert!(
            !admin_up(&ns, "veth0"),
            "oxr-fea raised veth0 again after the operator set it down"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // An interface the config does not name is never touched.
    ns.ip(&["link", "set", "veth2", "down"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!admin_up(&ns, "veth2"));
    assert!(!admin_up(&ns, "veth0"));
    drop(daemon);
}
