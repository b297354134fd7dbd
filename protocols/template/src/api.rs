//! `show template`: the routes published and the neighbors heard, as a table and as JSON,
//! plus Prometheus counters. oxrsh learns the command from `Describe`: no shell change.
//!
//! The instance lives in the SDK's event loop (`Runtime::run_protocol`), which answers the
//! gRPC side between events with [`show`] and [`metrics`], pure functions of the instance.

use std::fmt::Write;

use oxr_sdk::ShowOutput;

use crate::instance::Instance;

/// The show commands the process answers.
pub fn commands() -> Vec<(Vec<&'static str>, &'static str)> {
    vec![(vec![crate::PROCESS], "Routes published and neighbors heard")]
}

/// `show <words>` at time `now`.
pub fn show(inst: &Instance, now: u64, words: &[String]) -> Result<ShowOutput, String> {
    if words != [crate::PROCESS] {
        return Err(format!("unknown command: show {}", words.join(" ")));
    }
    let mut text = String::new();
    let _ = writeln!(text, "{:<20} {:<18} {:>6}", "Prefix", "Via", "Metric");
    for (p, r) in &inst.published {
        let via = r.nexthops.first().and_then(|n| n.gateway);
        let via = via.map_or("-".into(), |g| g.to_string());
        let _ = writeln!(text, "{:<20} {:<18} {:>6}", p.to_string(), via, r.metric);
    }
    let _ = writeln!(
        text,
        "\n{:<16} {:<10} {:>7} {:>9}",
        "Neighbor", "Interface", "Hellos", "Heard(s)"
    );
    for (a, n) in &inst.neighbors {
        let ago = now.saturating_sub(n.last_heard) / 1000;
        let _ = writeln!(
            text,
            "{:<16} {:<10} {:>7} {:>9}",
            a.to_string(),
            n.ifname,
            n.hellos,
            ago
        );
    }
    let json = serde_json::to_value(inst).map_err(|e| e.to_string())?;
    Ok(ShowOutput { text, json })
}

/// Counters in Prometheus text format.
pub fn metrics(inst: &Instance) -> String {
    let p = crate::PROCESS;
    format!(
        "# TYPE oxr_{p}_routes gauge\noxr_{p}_routes {}\n\
         # TYPE oxr_{p}_neighbors gauge\noxr_{p}_neighbors {}\n\
         # TYPE oxr_{p}_bad_packets counter\noxr_{p}_bad_packets {}\n",
        inst.published.len(),
        inst.neighbors.len(),
        inst.bad_packets
    )
}
