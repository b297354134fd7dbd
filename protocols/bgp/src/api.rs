//! Show commands, `clear` commands and Prometheus counters, rendered from an
//! [`Instance`]. Pure functions; `main.rs` serves them through the SDK's
//! `ShowHandler` by asking the event loop (which owns the instance).
//!
//! The SDK's shell routing only knows `show <words>` commands, so `clear bgp
//! neighbor ADDR [soft in|out]` is declared as the command words
//! `["clear", "bgp", "neighbor"]` and reached as a show-style request.

use std::fmt::Write;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::instance::{ClearMode, Command, Instance, PathView};

/// Commands declared to the shell (words after `show`) with help.
pub const COMMANDS: &[(&[&str], &str)] = &[
    (
        &["bgp", "summary"],
        "BGP neighbors, states and prefix counts",
    ),
    (&["bgp", "neighbors"], "BGP neighbor details [ADDR]"),
    (&["bgp", "routes"], "Loc-RIB paths, best marked [PREFIX]"),
    (
        &["bgp", "routes", "received", "neighbor"],
        "routes accepted from a neighbor ADDR",
    ),
    (
        &["bgp", "routes", "advertised", "neighbor"],
        "routes sent to a neighbor ADDR",
    ),
    (&["bgp", "mrt-dump"], "write an MRT dump of the Loc-RIB now"),
    (
        &["bgp", "memory"],
        "what the Loc-RIB, attribute sets and Adj-RIBs-Out hold",
    ),
    (
        &["clear", "bgp", "neighbor"],
        "reset a session: ADDR [soft in|soft out]",
    ),
];

/// What a request produced: output and possibly a command for the instance.
pub struct Reply {
    /// Human-readable text.
    pub text: String,
    /// The same as JSON.
    pub json: serde_json::Value,
    /// A command to run on the instance.
    pub command: Option<Command>,
}

fn reply(text: String, json: serde_json::Value) -> Result<Reply, String> {
    Ok(Reply {
        text,
        json,
        command: None,
    })
}

fn addr(w: Option<&String>) -> Result<IpAddr, String> {
    w.ok_or("missing neighbor address")?
        .parse()
        .map_err(|e| format!("bad address: {e}"))
}

/// Runs one request (`words` without the leading `show`).
pub fn request(inst: &Instance, words: &[String]) -> Result<Reply, String> {
    let w: Vec<&str> = words.iter().map(|s| s.as_str()).collect();
    match w.as_slice() {
        ["bgp", "summary"] => summary(inst),
        ["bgp", "neighbors"] => neighbors(inst, None),
        ["bgp", "neighbors", a] => neighbors(inst, Some(a.parse().map_err(|e| format!("{e}"))?)),
        ["bgp", "routes"] => paths(inst.routes(None)),
        ["bgp", "routes", "received", "neighbor", _] => paths(inst.received(addr(words.get(4))?)),
        ["bgp", "routes", "advertised", "neighbor", _] => {
            paths(inst.advertised(addr(words.get(4))?))
        }
        ["bgp", "routes", p] => {
            let p: IpNet = match p.parse::<IpNet>() {
                Ok(p) => p,
                Err(_) => {
                    let a: IpAddr = p.parse().map_err(|_| format!("bad prefix {p:?}"))?;
                    IpNet::from(a)
                }
            };
            paths(inst.routes(Some(p)))
        }
        ["bgp", "memory"] => memory(inst),
        ["bgp", "mrt-dump"] => Ok(Reply {
            text: "MRT dump requested".into(),
            json: serde_json::json!({"mrt-dump": true}),
            command: Some(Command::MrtDump),
        }),
        ["clear", "bgp", "neighbor", a, rest @ ..] => {
            let a: IpAddr = a.parse().map_err(|e| format!("bad address: {e}"))?;
            let mode = match rest {
                [] => ClearMode::Hard,
                ["soft", "in"] => ClearMode::SoftIn,
                ["soft", "out"] => ClearMode::SoftOut,
                ["soft"] => ClearMode::SoftOut,
                _ => return Err("expected: clear bgp neighbor ADDR [soft in|soft out]".into()),
            };
            if inst.state(a).is_none() {
                return Err(format!("no neighbor {a}"));
            }
            Ok(Reply {
                text: format!("clearing {a} ({mode:?})"),
                json: serde_json::json!({"neighbor": a, "mode": format!("{mode:?}")}),
                command: Some(Command::Clear(a, mode)),
            })
        }
        _ => Err(format!("unknown command: {}", words.join(" "))),
    }
}

fn memory(inst: &Instance) -> Result<Reply, String> {
    let rib = inst.loc_rib();
    let (sets_in, sets_out) = inst.interned();
    let bytes = rib.table_bytes();
    let t = format!(
        "Loc-RIB: {} prefixes, {} paths ({} distinct, shared), {:.1} MiB of table (attribute sets not included)\n\
         Attribute sets: {sets_in} received, {sets_out} exported (shared by every path using them)\n\
         Adj-RIB-Out: {} entries over all neighbors\n",
        rib.len(),
        rib.paths(),
        rib.distinct_paths(),
        bytes as f64 / (1024.0 * 1024.0),
        inst.adj_rib_out_len()
    );
    let json = serde_json::json!({
        "loc-rib-prefixes": rib.len(),
        "loc-rib-paths": rib.paths(),
        "loc-rib-distinct-paths": rib.distinct_paths(),
        "loc-rib-table-bytes": bytes,
        "attribute-sets-received": sets_in,
        "attribute-sets-exported": sets_out,
        "adj-rib-out-entries": inst.adj_rib_out_len(),
    });
    reply(t, json)
}

fn summary(inst: &Instance) -> Result<Reply, String> {
    let cfg = inst.config();
    let ns = inst.neighbors();
    let mut t = format!(
        "BGP router id {}, local AS {}, Loc-RIB {} prefixes\n\n",
        cfg.router_id,
        cfg.local_as,
        inst.loc_rib_len()
    );
    let _ = writeln!(
        t,
        "{:<40} {:>10} {:<12} {:>10} {:>10} {:>10}",
        "Neighbor", "AS", "State", "Up(s)", "Accepted", "Advertised"
    );
    for n in &ns {
        let _ = writeln!(
            t,
            "{:<40} {:>10} {:<12} {:>10} {:>10} {:>10}",
            n.address,
            n.remote_as,
            n.state,
            n.uptime_ms
                .map(|m| (m / 1000).to_string())
                .unwrap_or("-".into()),
            n.prefixes_accepted,
            n.prefixes_advertised
        );
    }
    let json = serde_json::json!({
        "router-id": cfg.router_id,
        "local-as": cfg.local_as,
        "loc-rib-prefixes": inst.loc_rib_len(),
        "neighbors": ns,
    });
    reply(t, json)
}

fn neighbors(inst: &Instance, only: Option<IpAddr>) -> Result<Reply, String> {
    let ns: Vec<_> = inst
        .neighbors()
        .into_iter()
        .filter(|n| only.is_none_or(|a| a == n.address))
        .collect();
    if let (Some(a), true) = (only, ns.is_empty()) {
        return Err(format!("no neighbor {a}"));
    }
    let mut t = String::new();
    for n in &ns {
        let _ = writeln!(
            t,
            "Neighbor {} remote AS {} local AS {}{}",
            n.address,
            n.remote_as,
            n.local_as,
            n.description
                .as_ref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            t,
            "  state {}, router id {}, hold time {}, families {}",
            n.state,
            n.router_id.map(|r| r.to_string()).unwrap_or("-".into()),
            n.hold_time.map(|h| h.to_string()).unwrap_or("-".into()),
            n.families.join(" ")
        );
        let c = &n.counters;
        let _ = writeln!(
            t,
            "  messages in {} out {}, updates in {} out {}, notifications in {} out {}",
            c.messages_in,
            c.messages_out,
            c.updates_in,
            c.updates_out,
            c.notifications_in,
            c.notifications_out
        );
        let _ = writeln!(
            t,
            "  prefixes received {} accepted {} rejected {} advertised {}{}",
            c.prefixes_received,
            n.prefixes_accepted,
            c.prefixes_rejected,
            n.prefixes_advertised,
            if n.graceful_restart_stale {
                ", graceful restart: stale routes held"
            } else {
                ""
            }
        );
        for (k, v) in &c.update_errors {
            let _ = writeln!(t, "  UPDATE error {k}: {v}");
        }
        if let Some(e) = &n.last_error {
            let _ = writeln!(t, "  last error: {e}");
        }
    }
    reply(t, serde_json::to_value(&ns).unwrap_or_default())
}

fn paths(v: Vec<PathView>) -> Result<Reply, String> {
    let mut t = format!(
        "{:<2} {:<28} {:<28} {:<28} {:>6} {:>6} {}\n",
        "", "Prefix", "Next hop", "Peer", "LPref", "MED", "AS path"
    );
    for p in &v {
        let flag = match (p.best, p.multipath, p.stale) {
            (true, _, false) => "*>",
            (true, _, true) => "S>",
            (false, true, _) => "*=",
            (false, false, true) => "S ",
            _ => "* ",
        };
        let _ = writeln!(
            t,
            "{:<2} {:<28} {:<28} {:<28} {:>6} {:>6} {} {}{}{}",
            flag,
            p.prefix.to_string(),
            p.next_hop.map(|a| a.to_string()).unwrap_or("-".into()),
            p.peer.map(|a| a.to_string()).unwrap_or("local".into()),
            p.local_pref.map(|x| x.to_string()).unwrap_or_default(),
            p.med.map(|x| x.to_string()).unwrap_or_default(),
            p.as_path,
            p.origin,
            if p.communities.is_empty() {
                String::new()
            } else {
                format!(" [{}]", p.communities.join(" "))
            },
            if p.large_communities.is_empty() {
                String::new()
            } else {
                format!(" [{}]", p.large_communities.join(" "))
            },
        );
    }
    let _ = writeln!(t, "{} paths", v.len());
    reply(t, serde_json::to_value(&v).unwrap_or_default())
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Per-neighbor counters in Prometheus text format.
pub fn metrics(inst: &Instance) -> String {
    let mut t = String::new();
    let ns = inst.neighbors();
    let gauge = |t: &mut String,
                 name: &str,
                 help: &str,
                 f: &dyn Fn(&crate::instance::NeighborStatus) -> u64| {
        let _ = writeln!(t, "# HELP oxr_bgp_{name} {help}");
        let _ = writeln!(t, "# TYPE oxr_bgp_{name} gauge");
        for n in &ns {
            let _ = writeln!(t, "oxr_bgp_{name}{{peer=\"{}\"}} {}", n.address, f(n));
        }
    };
    gauge(
        &mut t,
        "neighbor_established",
        "1 when the session is Established",
        &|n| u64::from(n.state == "Established"),
    );
    gauge(
        &mut t,
        "prefixes_received",
        "prefixes announced by the peer",
        &|n| n.counters.prefixes_received,
    );
    gauge(
        &mut t,
        "prefixes_accepted",
        "paths from the peer in the Loc-RIB",
        &|n| n.prefixes_accepted,
    );
    gauge(
        &mut t,
        "prefixes_advertised",
        "prefixes in the Adj-RIB-Out",
        &|n| n.prefixes_advertised,
    );
    gauge(&mut t, "updates_in", "UPDATE messages received", &|n| {
        n.counters.updates_in
    });
    gauge(&mut t, "updates_out", "UPDATE messages sent", &|n| {
        n.counters.updates_out
    });
    gauge(&mut t, "notifications_in", "NOTIFICATIONs received", &|n| {
        n.counters.notifications_in
    });
    gauge(&mut t, "notifications_out", "NOTIFICATIONs sent", &|n| {
        n.counters.notifications_out
    });
    let _ = writeln!(
        t,
        "# HELP oxr_bgp_update_errors UPDATE errors by RFC 7606 kind"
    );
    let _ = writeln!(t, "# TYPE oxr_bgp_update_errors counter");
    for n in &ns {
        for (k, v) in &n.counters.update_errors {
            let _ = writeln!(
                t,
                "oxr_bgp_update_errors{{peer=\"{}\",kind=\"{}\"}} {v}",
                n.address,
                esc(k)
            );
        }
    }
    let _ = writeln!(t, "# TYPE oxr_bgp_loc_rib_prefixes gauge");
    let _ = writeln!(t, "oxr_bgp_loc_rib_prefixes {}", inst.loc_rib_len());
    t
}
