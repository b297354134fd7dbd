//! End-to-end harness shared by the workspace's namespace tests (a dev-dependency only):
//! namespaces and veths that clean up after themselves, virtual routers started through
//! oxr-routerd, one-shot oxrsh, and polling of the kernel's tables with a deadline.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod bird;
pub mod full_table;
pub mod gobgp;

/// True when the tests may create namespaces; otherwise prints a visible skip line.
pub fn require_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        eprintln!("SKIPPED (needs root): {test}");
        println!("SKIPPED (needs root): {test}");
        false
    }
}

/// Panics naming the binaries a test needs that are not built yet: deploy/test-all.sh builds
/// them all first, so a missing one is a broken build, not a reason to skip.
pub fn require_binaries(names: &[&str]) {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|b| !bin_dir().join(b).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "build the workspace's binaries first (cargo build --workspace --bins): {missing:?}"
    );
}

/// The preamble of a namespace test: false (with a visible skip line) without root;
/// panics when one of `binaries` is not built.
pub fn ready(test: &str, binaries: &[&str]) -> bool {
    if !require_root(test) {
        return false;
    }
    require_binaries(binaries);
    true
}

/// Runs a command, panicking with its output if it fails.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command and returns (success, stdout, stderr).
pub fn try_run(cmd: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} {args:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A network namespace, deleted (with every process still in it) when dropped.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(name: &str) -> Netns {
        let _ = try_run("ip", &["netns", "del", name]);
        run("ip", &["netns", "add", name]);
        let ns = Netns {
            name: name.to_string(),
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NS ARGS...`
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, args: &[&str]) -> (bool, String, String) {
        let mut all = vec!["netns", "exec", self.name.as_str()];
        all.extend_from_slice(args);
        try_run("ip", &all)
    }

    /// Kernel routes with oxr's protocol tag, one line each, sorted.
    pub fn oxr_routes(&self, family: &str) -> Vec<String> {
        let mut lines: Vec<String> = self
            .ip(&[family, "route", "show", "proto", "201"])
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        lines.sort();
        lines
    }

    /// Destination prefixes of oxr's kernel routes, sorted.
    pub fn oxr_prefixes(&self, family: &str) -> Vec<String> {
        self.oxr_routes(family)
            .iter()
            // A multipath route continues on "nexthop via ..." lines of its own.
            .filter(|l| !l.starts_with("nexthop"))
            .map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                // "blackhole 10.0.0.0/8 ..." and "unreachable ..." put the type first.
                match words.first() {
                    Some(&"blackhole") | Some(&"unreachable") | Some(&"prohibit") => {
                        words.get(1).copied().unwrap_or_default().to_string()
                    }
                    _ => words.first().copied().unwrap_or_default().to_string(),
                }
            })
            .collect()
    }

    /// `ip -n NS LINE` for each line (words split on white space), panicking on the first
    /// failure: `ns.ip_lines(&["addr add 10.0.0.1/24 dev va", "link set va up"])`.
    pub fn ip_lines(&self, lines: &[&str]) {
        for line in lines {
            let words: Vec<&str> = line.split_whitespace().collect();
            self.ip(&words);
        }
    }

    /// Starts `args` inside the namespace, stdout and stderr to `log`.
    pub fn spawn(&self, args: &[&str], log: &Path) -> Daemon {
        Daemon::spawn(self, args, log)
    }

    /// Starts one oxr process the way oxr-routerd does: `BIN --router ROUTER --run-dir RUN
    /// --config CONFIG` (creating RUN), its output to `log`.
    pub fn spawn_oxr(
        &self,
        bin: &Path,
        router: &str,
        run_dir: &Path,
        config: &Path,
        log: &Path,
    ) -> Daemon {
        std::fs::create_dir_all(run_dir)
            .unwrap_or_else(|e| panic!("creating {}: {e}", run_dir.display()));
        let s = |p: &Path| p.to_str().expect("UTF-8 path").to_string();
        let (bin, run_dir, config) = (s(bin), s(run_dir), s(config));
        self.spawn(
            &[
                &bin,
                "--router",
                router,
                "--run-dir",
                &run_dir,
                "--config",
                &config,
            ],
            log,
        )
    }

    /// Pids of processes running inside the namespace.
    pub fn pids(&self) -> Vec<i32> {
        let (_, out, _) = try_run("ip", &["netns", "pids", &self.name]);
        out.split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for pid in self.pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = try_run("ip", &["netns", "del", &self.name]);
    }
}

/// Creates a veth pair with one end in each namespace.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    // Temporary names in the host namespace, unique across the tests of this process.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp_a = format!("v{}a{n}", std::process::id() % 100000);
    let tmp_b = format!("v{}b{n}", std::process::id() % 100000);
    run(
        "ip",
        &[
            "link", "add", &tmp_a, "type", "veth", "peer", "name", &tmp_b,
        ],
    );
    run(
        "ip",
        &["link", "set", &tmp_a, "netns", &a.name, "name", a_if],
    );
    run(
        "ip",
        &["link", "set", &tmp_b, "netns", &b.name, "name", b_if],
    );
}

/// [`veth`] with an address on each end and both ends up.
pub fn veth_up(a: &Netns, a_if: &str, a_addr: &str, b: &Netns, b_if: &str, b_addr: &str) {
    veth(a, a_if, b, b_if);
    for (ns, ifname, addr) in [(a, a_if, a_addr), (b, b_if, b_addr)] {
        ns.ip(&["addr", "add", addr, "dev", ifname]);
        ns.ip(&["link", "set", ifname, "up"]);
    }
}

/// `name` on PATH, or in /usr/sbin or /sbin (where distributions put daemons such as
/// `bird`, outside a non-root PATH).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A workspace binary: `$OXR_<NAME>_BIN` when set (`OXR_FEA_BIN` for `oxr-fea`, `OXRSH_BIN`
/// for `oxrsh`), else the one in [`bin_dir`]. Panics when it is not built.
pub fn oxr_bin(name: &str) -> PathBuf {
    let var = format!("{}_BIN", name.to_uppercase().replace('-', "_"));
    if let Some(p) = std::env::var_os(&var) {
        return PathBuf::from(p);
    }
    require_binaries(&[name]);
    bin_dir().join(name)
}

/// The last `lines` lines of every `*.log` file in `dir` (sorted by name), each under a
/// `--- PATH` header: the part of the logs that explains a failure.
pub fn log_tails(dir: &Path, lines: usize) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files.iter().map(|f| file_tail(f, lines)).collect()
}

/// The last `lines` lines of one file under a `--- PATH` header (empty when unreadable).
pub fn file_tail(path: &Path, lines: usize) -> String {
    let Ok(text) = std::fs::read_to_string(path) else {
        return String::new();
    };
    let tail: Vec<&str> = text.lines().rev().take(lines).collect();
    let mut out = format!("--- {}\n", path.display());
    for l in tail.into_iter().rev() {
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// A process started inside a namespace with its output in a log file; stopped on drop
/// (SIGTERM, then SIGKILL), also when the test fails.
pub struct Daemon {
    child: Child,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

impl Daemon {
    /// `ip netns exec NS ARGS...`: `ip` execs the program, so the pid is the program's.
    pub fn spawn(ns: &Netns, args: &[&str], log: &Path) -> Daemon {
        let out = std::fs::File::create(log)
            .unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file handle"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {args:?} in {}: {e}", ns.name));
        Daemon {
            child,
            log: log.to_path_buf(),
        }
    }

    /// The process id (for CPU and memory figures).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, as a crash: nothing is cleaned up by the process itself.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then SIGKILL if it has not exited within 3 s.
    pub fn stop(&mut self) {
        if self.exited() {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        if !wait_until(Duration::from_secs(3), || self.exited()) {
            self.kill();
        }
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        file_tail(&self.log, lines)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `cond` every 200 ms (slow enough for conditions that run `birdc` or `gobgp`)
/// until it holds or `timeout` passes; on timeout says so on stderr, naming `what`.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            eprintln!("timed out after {timeout:?} waiting for {what}");
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Polls `probe` every 200 ms until `ok` holds for its output or `timeout` passes: Ok with
/// the matching output, or Err with the last one (for the failure message).
pub fn wait_for_output(
    timeout: Duration,
    mut probe: impl FnMut() -> String,
    ok: impl Fn(&str) -> bool,
) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let out = probe();
        if ok(&out) {
            return Ok(out);
        }
        if Instant::now() >= deadline {
            return Err(out);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Directory of the workspace's built binaries (`target/debug`, which deploy/test-all.sh
/// fills before the tests run): a test executable lives in `target/debug/deps`.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().expect("executable has a directory");
    if dir.ends_with("deps") {
        dir.parent().expect("deps has a parent").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// One virtual router: oxr-routerd running in a namespace with its own run directory.
pub struct Router {
    pub name: String,
    pub run_dir: PathBuf,
    pub child: Child,
}

impl Router {
    /// Starts oxr-routerd for `config` inside `ns`; waits until every process is running.
    pub fn start(ns: &Netns, name: &str, config: &str, base: &Path, extra: &[&str]) -> Router {
        let run_dir = base.join(name);
        std::fs::create_dir_all(&run_dir).unwrap();
        let cfg = base.join(format!("{name}.toml"));
        std::fs::write(&cfg, config).unwrap();
        let log = std::fs::File::create(base.join(format!("{name}-routerd.log"))).unwrap();
        let mut cmd = Command::new(bin_dir().join("oxr-routerd"));
        cmd.args(["--config", cfg.to_str().unwrap(), "--name", name])
            .args(["--run-dir", run_dir.to_str().unwrap(), "--netns", &ns.name])
            .args(extra)
            .env("OXR_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log);
        let child = cmd.spawn().expect("starting oxr-routerd");
        let r = Router {
            name: name.to_string(),
            run_dir,
            child,
        };
        r.wait_running(Duration::from_secs(20));
        r
    }

    /// `oxrsh --run-dir DIR -c CMD` -> (success, stdout, stderr).
    pub fn sh(&self, commands: &[&str]) -> (bool, String, String) {
        let mut args = vec![
            "--run-dir".to_string(),
            self.run_dir.to_str().unwrap().to_string(),
        ];
        for c in commands {
            args.push("-c".into());
            args.push((*c).to_string());
        }
        let out = Command::new(bin_dir().join("oxrsh"))
            .args(&args)
            .output()
            .expect("running oxrsh");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `show processes | json` as (name, pid, state).
    pub fn processes(&self) -> Vec<(String, u32, String)> {
        let (ok, out, err) = self.sh(&["show processes | json"]);
        if !ok {
            return Vec::new();
        }
        let v: serde_json::Value = match serde_json::from_str(&out) {
            Ok(v) => v,
            Err(_) => panic!("show processes | json is not JSON: {out}{err}"),
        };
        let list = v
            .get("processes")
            .and_then(|p| p.as_array())
            .cloned()
            .or_else(|| v.as_array().cloned())
            .unwrap_or_default();
        list.iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap_or_default().to_string(),
                    p["pid"].as_u64().unwrap_or_default() as u32,
                    p["state"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    pub fn pid_of(&self, process: &str) -> Option<u32> {
        self.processes()
            .into_iter()
            .find(|(n, _, s)| n == process && s == "running")
            .map(|(_, pid, _)| pid)
    }

    /// Waits until routerd answers and every process it lists is running.
    pub fn wait_running(&self, timeout: Duration) {
        let ok = wait_until(timeout, || {
            let ps = self.processes();
            !ps.is_empty() && ps.iter().all(|(_, _, s)| s == "running")
        });
        assert!(
            ok,
            "router {} did not come up: {:?}\n{}",
            self.name,
            self.processes(),
            self.logs()
        );
    }

    /// The tail of every log in the run directory, for failure messages.
    pub fn logs(&self) -> String {
        let parent = self.run_dir.parent().unwrap();
        let routerd = parent.join(format!("{}-routerd.log", self.name));
        log_tails(&self.run_dir, 15) + &file_tail(&routerd, 15)
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("oxr-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::env::var_os("OXR_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Labs from lab files, driven through the `oxr-lab` binary as a user would.
pub mod lab_file {
    use std::path::Path;
    use std::process::{Command, Output, Stdio};
    use std::time::{Duration, Instant};

    use super::{bin_dir, Scratch};

    /// Stdout and stderr of a finished command, for assertion messages.
    pub fn text(out: &Output) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Whether `fib` (`ip route` lines) has `want` ("PREFIX [via GW dev IF]"): the kernel puts
    /// `nhid N` between the prefix and the gateway.
    pub fn has_route(fib: &str, want: &str) -> bool {
        let (prefix, rest) = want.split_once(' ').unwrap_or((want, ""));
        fib.lines()
            .any(|l| l.trim().starts_with(&format!("{prefix} ")) && l.contains(rest))
    }

    /// A lab brought up from a file under a unique name and a run root of its own
    /// (`oxr-lab --root`), taken down on drop (also when the test fails or `up` itself
    /// failed half-way).
    pub struct LabUp {
        pub name: String,
        root: Scratch,
    }

    impl LabUp {
        /// `oxr-lab up FILE --name TAG-tPID --wait WAIT_SECS`, asserting it succeeds.
        pub fn up(file: &Path, tag: &str, wait_secs: u32) -> LabUp {
            let lab = LabUp::new(tag);
            let wait = wait_secs.to_string();
            let file = file.to_str().expect("lab file path is UTF-8");
            let up = lab.oxr_lab(&["up", file, "--name", &lab.name, "--wait", &wait]);
            assert!(up.status.success(), "oxr-lab up failed:\n{}", text(&up));
            lab
        }

        /// The name `TAG-tPID` and an empty run root, nothing started: for a test that
        /// runs `up` itself ([`command`](Self::command)).
        pub fn new(tag: &str) -> LabUp {
            super::require_binaries(&["oxr-lab", "oxr-routerd", "oxr-fea", "oxr-rib", "oxrsh"]);
            let name = format!("{tag}-t{}", std::process::id() % 100_000);
            let root = Scratch::new(&format!("lab-{name}"));
            LabUp { name, root }
        }

        /// The lab's run root (`<root>/<name>` holds its state while it is up).
        pub fn root(&self) -> &Path {
            &self.root.0
        }

        /// `oxr-lab --root ROOT ARGS` with the workspace's binaries, not started.
        pub fn command(&self, args: &[&str]) -> Command {
            let mut c = Command::new(bin_dir().join("oxr-lab"));
            c.arg("--root")
                .arg(self.root())
                .args(args)
                .env("OXR_BIN_DIR", bin_dir())
                .stdin(Stdio::null());
            c
        }

        /// Runs `oxr-lab ARGS` with the workspace's binaries.
        pub fn oxr_lab(&self, args: &[&str]) -> Output {
            self.command(args).output().expect("running oxr-lab")
        }

        /// The namespaces of this lab (`<name>-<node>`) that exist.
        pub fn namespaces(&self) -> Vec<String> {
            let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
            let prefix = format!("{}-", self.name);
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .filter(|n| n.starts_with(&prefix))
                .map(str::to_string)
                .collect()
        }

        /// Runs `cmd` in `node`'s namespace.
        pub fn exec(&self, node: &str, cmd: &[&str]) -> Output {
            let mut args = vec!["exec", self.name.as_str(), node, "--"];
            args.extend_from_slice(cmd);
            self.oxr_lab(&args)
        }

        /// One oxrsh command on `node`, its output.
        pub fn sh(&self, node: &str, cmd: &str) -> String {
            text(&self.oxr_lab(&["shell", &self.name, node, "-c", cmd]))
        }

        /// oxr's kernel routes on `node` (protocol 201), one per line.
        pub fn fib(&self, node: &str) -> String {
            let out = self.exec(node, &["ip", "route", "show", "proto", "201"]);
            String::from_utf8_lossy(&out.stdout).into_owned()
        }

        /// Waits until every route of `want` is in `node`'s FIB; returns how long it took.
        /// On timeout, panics with the FIB and the RIB (`show route`).
        pub fn wait_fib(&self, node: &str, want: &[&str], within: Duration) -> Duration {
            let start = Instant::now();
            loop {
                let fib = self.fib(node);
                if want.iter().all(|r| has_route(&fib, r)) {
                    return start.elapsed();
                }
                assert!(
                    start.elapsed() < within,
                    "{node}: want {want:#?} within {within:?}, FIB:\n{fib}{}",
                    self.sh(node, "show route")
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }

        /// `ping -c COUNT -I FROM TO` in `node`, asserting every reply came back.
        pub fn ping(&self, node: &str, from: &str, to: &str, count: u32) {
            let count = count.to_string();
            let out = self.exec(
                node,
                &["ping", "-c", &count, "-i", "0.2", "-W", "2", "-I", from, to],
            );
            assert!(
                out.status.success(),
                "ping {from} -> {to} in {node} failed:\n{}",
                text(&out)
            );
        }
    }

    impl Drop for LabUp {
        fn drop(&mut self) {
            let out = self.oxr_lab(&["down", &self.name]);
            if !out.status.success() {
                eprintln!("oxr-lab down {}: {}", self.name, text(&out));
            }
        }
    }
}
