//! `show hello`: the prefixes heard (by origin, via which neighbour) as a table and JSON,
//! plus Prometheus counters. oxrsh learns the command from `Describe`: no shell change.
//!
//! The instance lives in the SDK's event loop (`Runtime::run_protocol`), which answers the
//! gRPC side between events with [`show`] and [`metrics`], pure functions of the instance.

use std::fmt::Write;

use oxr_sdk::ShowOutput;

use crate::instance::Instance;

/// The show commands the process answers.
pub fn commands() -> Vec<(Vec<&'static str>, &'static str)> {
    vec![(
        vec![crate::PROCESS],
        "Prefixes heard, by origin, and the routers heard",
    )]
}

/// `show <words>` at time `now`.
pub fn show(inst: &Instance, now: u64, words: &[String]) -> Result<ShowOutput, String> {
    if words != [crate::PROCESS] {
        return Err(format!("unknown command: show {}", words.join(" ")));
    }
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{:<20} {:<16} {:<10} Origin",
        "Prefix", "Via", "Interface"
    );
    for (origin, h) in &inst.origins {
        for p in &h.prefixes {
            let installed = inst.published.contains_key(&ipnet::IpNet::V4(*p));
            let mark = if installed { "" } else { " (not installed)" };
            let (via, ifname) = (h.via.to_string(), &h.ifname);
            let _ = writeln!(
                text,
                "{:<20} {via:<16} {ifname:<10} {origin}{mark}",
                p.to_string()
            );
        }
    }
    let _ = writeln!(
        text,
        "\n{:<16} {:>10} {:<16} {:<10} {:>8}",
        "Origin", "Seq", "Via", "Interface", "Hold(s)"
    );
    for (origin, h) in &inst.origins {
        let hold = h.expires.saturating_sub(now) / 1000;
        let (o, via) = (origin.to_string(), h.via.to_string());
        let _ = writeln!(
            text,
            "{o:<16} {:>10} {via:<16} {:<10} {hold:>8}",
            h.seq, h.ifname
        );
    }
    let json = serde_json::to_value(inst).map_err(|e| e.to_string())?;
    Ok(ShowOutput { text, json })
}

/// Counters in Prometheus text format.
pub fn metrics(inst: &Instance) -> String {
    format!(
        "# TYPE oxr_hello_routes gauge\noxr_hello_routes {}\n\
         # TYPE oxr_hello_origins gauge\noxr_hello_origins {}\n\
         # TYPE oxr_hello_relayed counter\noxr_hello_relayed {}\n\
         # TYPE oxr_hello_bad_packets counter\noxr_hello_bad_packets {}\n",
        inst.published.len(),
        inst.origins.len(),
        inst.relayed,
        inst.bad_packets
    )
}
