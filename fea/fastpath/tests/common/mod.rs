//! Helpers the fast-path integration tests share.

// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use oxr_testlab::{require_root, wait_until, Netns, Router};

/// A value from `/proc/net/snmp` inside `ns`, e.g. ("Ip", "ForwDatagrams").
pub fn snmp(ns: &Netns, group: &str, field: &str) -> u64 {
    let (_, text, _) = ns.exec(&["cat", "/proc/net/snmp"]);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{group}:")))
        .collect();
    let (names, values) = (lines[0], lines[1]);
    let i = names
        .split_whitespace()
        .position(|n| n == field)
        .unwrap_or_else(|| panic!("no {group} {field}"));
    values.split_whitespace().nth(i).unwrap().parse().unwrap()
}

/// `show fastpath | json`.
pub fn fastpath(r: &Router) -> serde_json::Value {
    let (ok, out, _) = r.sh(&["show fastpath | json"]);
    if !ok {
        return serde_json::Value::Null;
    }
    serde_json::from_str(&out).unwrap_or(serde_json::Value::Null)
}

pub fn counter(v: &serde_json::Value, name: &str) -> u64 {
    v["counters"][name].as_u64().unwrap_or(0)
}

pub fn ping(ns: &Netns, args: &[&str]) -> (bool, String) {
    let mut all = vec!["ping"];
    all.extend_from_slice(args);
    let (ok, out, err) = ns.exec(&all);
    (ok, format!("{out}{err}"))
}

/// Whether the tools the lab needs are installed (ethtool: GRO for NAPI on the hosts' veths).
pub fn have_tools(test: &str) -> bool {
    let ok = std::process::Command::new("ethtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!("SKIPPED (needs ethtool): {test}");
    }
    ok
}

/// Whether `test` can run here: root, the tools, and the XDP program built. Says SKIPPED
/// otherwise.
pub fn can_run(test: &str) -> bool {
    if !require_root(test) || !have_tools(test) {
        return false;
    }
    if !oxr_fastpath::xdp::available() {
        println!("SKIPPED (XDP program not built: install clang and libbpf-dev)");
        return false;
    }
    true
}

/// Starts router `name` (oxr-routerd with `config`) in `ns` and waits up to 20 s until its
/// fast path runs `engine` on `interfaces` interfaces and `ready` holds for `show fastpath
/// | json`. Panics with `what`, the fast path's state and the logs if it never does.
pub fn start_fastpath(
    ns: &Netns,
    name: &str,
    config: &str,
    dir: &Path,
    (engine, interfaces): (&str, usize),
    what: &str,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> Router {
    let r = Router::start(ns, name, config, dir, &[]);
    let up = wait_until(Duration::from_secs(20), || {
        let v = fastpath(&r);
        v["engine"] == engine
            && v["interfaces"]
                .as_object()
                .is_some_and(|o| o.len() == interfaces)
            && ready(&v)
    });
    assert!(up, "{what}: {}\n{}", fastpath(&r), r.logs());
    r
}

/// Runs `f` on a thread inside namespace `ns`.
pub fn in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("netns file");
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
}
