//! A small network-namespace lab shared by the root-only tests and the ring benchmark:
//! namespaces, veth links, processes inside them, all removed in Drop (also on panic).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Whether we run as root (namespaces need it).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `name` on PATH (or /usr/sbin, /sbin).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Runs a command, returns stdout + stderr.
pub fn sh(args: &[&str]) -> String {
    let o = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
}

/// Runs a command and asserts it succeeded.
pub fn ok(args: &[&str]) {
    let s = Command::new(args[0]).args(&args[1..]).status().unwrap();
    assert!(s.success(), "{args:?} failed");
}

/// Namespaces and processes; everything is removed when dropped.
pub struct Lab {
    /// Namespaces created (full names).
    pub ns: Vec<String>,
    children: Vec<Child>,
    /// Scratch directory (logs, configs, run dirs).
    pub dir: PathBuf,
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop_all();
        for n in &self.ns {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
        if std::env::var_os("OXR_KEEP_LAB").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Lab {
    /// A lab with its scratch directory `<tmp>/<name>-<pid>`.
    pub fn new(name: &str) -> Lab {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Lab {
            ns: vec![],
            children: vec![],
            dir,
        }
    }

    /// Creates a namespace with `lo` up.
    pub fn add_ns(&mut self, name: &str) {
        ok(&["ip", "netns", "add", name]);
        self.ns.push(name.to_string());
        ok(&["ip", "-n", name, "link", "set", "lo", "up"]);
    }

    /// Runs `ip -n ns <cmd>`.
    pub fn ip(&self, ns: &str, cmd: &str) {
        let mut args = vec!["ip", "-n", ns];
        args.extend(cmd.split(' '));
        ok(&args);
    }

    /// A veth pair `a_if` in `a` (address `a_addr`) to `b_if` in `b` (`b_addr`), both up.
    pub fn veth(&self, a: &str, a_if: &str, a_addr: &str, b: &str, b_if: &str, b_addr: &str) {
        // Temporary names unique on the host: the pid and a counter.
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pid = std::process::id() % 100_000;
        let (ta, tb) = (format!("xa{pid}.{n}"), format!("xb{pid}.{n}"));
        ok(&[
            "ip", "link", "add", &ta, "type", "veth", "peer", "name", &tb,
        ]);
        ok(&["ip", "link", "set", &ta, "netns", a]);
        ok(&["ip", "link", "set", &tb, "netns", b]);
        self.ip(a, &format!("link set {ta} name {a_if}"));
        self.ip(b, &format!("link set {tb} name {b_if}"));
        self.ip(a, &format!("addr add {a_addr} dev {a_if}"));
        self.ip(b, &format!("addr add {b_addr} dev {b_if}"));
        self.ip(a, &format!("link set {a_if} up"));
        self.ip(b, &format!("link set {b_if} up"));
    }

    /// Starts `cmd` inside `ns`, output to `<dir>/<log>`.
    pub fn spawn(&mut self, ns: &str, log: &str, cmd: &[&str]) {
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

    /// Kills every process started so far (the namespaces stay).
    pub fn stop_all(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
        }
        for c in &mut self.children {
            let _ = c.wait();
        }
        self.children.clear();
    }

    /// A log file's contents.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    /// A path inside the scratch directory, as a string.
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_string()
    }
}

/// An oxr binary next to `own` (the running test's or bench's executable, or its parent
/// `deps/` directory's parent), or from `env`.
pub fn oxr_bin(env: &str, own: &Path, name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let dir = own.parent()?;
    [dir.join(name), dir.parent()?.join(name)]
        .into_iter()
        .find(|p| p.is_file())
}
