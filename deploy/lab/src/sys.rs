//! The I/O oxr-lab does on the host: `ip` commands, sysctls inside a namespace, and
//! processes found through /proc.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Runs `ip ARGS`, failing with its error output.
pub fn ip(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip -n NS ARGS`.
pub fn ip_ns(ns: &str, args: &[&str]) -> anyhow::Result<String> {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    ip(&all)
}

/// Network namespaces that exist (`ip netns list`, names only).
pub fn netns_list() -> Vec<String> {
    ip(&["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// True if the namespace exists.
pub fn netns_exists(ns: &str) -> bool {
    Path::new("/var/run/netns").join(ns).exists()
}

/// Sets sysctls inside a namespace by writing /proc/sys through `ip netns exec`.
pub fn sysctl_ns(ns: &str, settings: &[&str]) -> anyhow::Result<()> {
    let mut args = vec!["netns", "exec", ns, "sysctl", "-q"];
    for s in settings {
        args.push("-w");
        args.push(s);
    }
    ip(&args).map(|_| ())
}

/// True if a host-namespace link of this name exists.
pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// pids of processes inside a namespace.
pub fn netns_pids(ns: &str) -> Vec<i32> {
    ip(&["netns", "pids", ns])
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Start time (clock ticks since boot) and state letter of a process, from /proc/PID/stat.
pub fn proc_stat(pid: i32) -> Option<(u64, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses /proc/PID/stat: the command name is in parentheses and may hold spaces or ')',
/// so fields are counted from the last ')'.
pub fn parse_stat(text: &str) -> Option<(u64, char)> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); starttime is field 22.
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((start, state))
}

/// True if `pid` is alive (not a zombie) and, when given, started at `start_ticks`.
pub fn alive(pid: i32, start_ticks: Option<u64>) -> bool {
    match proc_stat(pid) {
        Some((start, state)) => state != 'Z' && start_ticks.is_none_or(|s| s == start),
        None => false,
    }
}

/// Processes whose command line mentions `needle` (a lab's run directory): catches daemons
/// whose pid was not recorded (oxr-lab killed between spawn and save) and their children.
pub fn pids_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let hit = cmd
                .split(|b| *b == 0)
                .any(|arg| String::from_utf8_lossy(arg).contains(needle));
            if hit {
                v.push(pid);
            }
        }
    }
    v
}

/// Sends SIGTERM to every pid, waits up to `grace` for them to go, then SIGKILLs the rest.
pub fn terminate(pids: &[(i32, Option<u64>)], grace: Duration) {
    for &(pid, start) in pids {
        if alive(pid, start) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && pids.iter().any(|&(p, s)| alive(p, s)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for &(pid, start) in pids {
        if alive(pid, start) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Last `n` lines of a file, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_is_parsed_from_the_last_paren() {
        let line =
            "1234 (a) b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        assert_eq!(parse_stat(line), Some((98765, 'S')));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) Z 1"), None);
    }

    #[test]
    fn our_own_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = std::process::id() as i32;
        let (start, _) = proc_stat(me).unwrap();
        assert!(alive(me, Some(start)));
        assert!(alive(me, None));
        assert!(!alive(me, Some(start + 1)));
    }
}
