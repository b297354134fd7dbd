//! Network namespaces for root tests: unique names, deleted on drop.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// Whether the test may create namespaces; prints the skip line when not.
pub fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        println!("SKIPPED (needs root): {test}");
        false
    }
}

/// A network namespace that exists for the guard's lifetime.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates `oxrfea-<tag>-<pid>` with loopback up.
    pub fn new(tag: &str) -> Netns {
        let name = format!("oxrfea-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `/var/run/netns/<name>`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/var/run/netns").join(&self.name)
    }

    /// Runs `ip -n <name> ARGS`, panicking on failure; returns stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend_from_slice(args);
        run("ip", &a)
    }

    /// Runs `ip -n <name> ARGS` and returns whether it succeeded.
    pub fn ip_ok(&self, args: &[&str]) -> bool {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend_from_slice(args);
        Command::new("ip")
            .args(&a)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    }

    /// veth0 (10.0.0.1/16, 2001:db8:ffff::1/64) with its peer veth1, both up.
    pub fn with_veth(&self) -> u32 {
        self.ip(&[
            "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
        ]);
        self.ip(&["link", "set", "veth0", "up"]);
        self.ip(&["link", "set", "veth1", "up"]);
        self.ip(&["addr", "add", "10.0.0.1/16", "dev", "veth0"]);
        self.ip(&[
            "addr",
            "add",
            "2001:db8:ffff::1/64",
            "dev",
            "veth0",
            "nodad",
        ]);
        self.ifindex("veth0")
    }

    /// ifindex of `dev` in the namespace.
    pub fn ifindex(&self, dev: &str) -> u32 {
        let out = self.ip(&["-o", "link", "show", "dev", dev]);
        out.split(':').next().unwrap().trim().parse().unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Runs a command, panicking with its stderr on failure; returns stdout.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
