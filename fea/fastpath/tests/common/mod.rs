//! Helpers the fast-path integration tests share.

use oxr_testlab::{Netns, Router};

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
