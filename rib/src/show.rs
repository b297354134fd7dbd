//! `show route ...` for oxrsh, served through `oxr.process.Process`: text tables for people,
//! the same data as JSON for `| json`.

use std::fmt::Write;
use std::net::IpAddr;

use ipnet::IpNet;
use oxr_proto::rib::{RibEntry, RibSummary};
use oxr_proto::types as pb;
use oxr_sdk::{ShowHandler, ShowOutput};
use serde_json::{json, Value};

use crate::actor::RibHandle;
use crate::state::{RouteFilter, TrackedInfo};
use crate::table::{Action, Key};

/// The RIB's show commands.
pub struct RibShow {
    handle: RibHandle,
}

impl RibShow {
    /// Show commands answered from `handle`'s RIB.
    pub fn new(handle: RibHandle) -> Self {
        RibShow { handle }
    }

    async fn routes(&self, filter: RouteFilter) -> Result<Vec<RibEntry>, String> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let f = filter.clone();
            let (mut entries, next) = self
                .handle
                .call(move |s| s.routes_page(&f, after, 2000))
                .await
                .map_err(|e| e.to_string())?;
            out.append(&mut entries);
            match next {
                Some(k) => after = Some(k),
                None => return Ok(out),
            }
        }
    }
}

fn addr(a: &Option<pb::IpAddress>) -> String {
    a.as_ref()
        .and_then(|a| IpAddr::try_from(a).ok())
        .map_or_else(String::new, |a| a.to_string())
}

fn prefix(p: &Option<pb::Prefix>) -> String {
    p.as_ref()
        .and_then(|p| Key::from_proto(p).ok())
        .map_or_else(String::new, |k| k.to_string())
}

fn nexthop_text(n: &pb::Nexthop) -> String {
    match (addr(&n.gateway), n.interface.as_str()) {
        (g, "") => g,
        (g, i) if g.is_empty() => format!("dev {i}"),
        (g, i) => format!("{g} dev {i}"),
    }
}

fn nexthop_json(n: &pb::Nexthop) -> Value {
    json!({"gateway": addr(&n.gateway), "interface": n.interface, "weight": n.weight})
}

fn action_name(a: i32) -> &'static str {
    match Action::from_proto(a) {
        Action::Forward => "forward",
        Action::Blackhole => "blackhole",
        Action::Reject => "reject",
    }
}

/// The route table as text: one line per candidate, continuation lines for more next hops.
pub fn routes_text(entries: &[RibEntry]) -> String {
    let mut t = String::from("Flags: * selected, S stale, U unresolved\n");
    let _ = writeln!(
        t,
        "{:<4}{:<44}{:<12}{:<12}Next hops",
        "", "Prefix", "Protocol", "Dist/Metric"
    );
    for e in entries {
        let p = prefix(&e.prefix);
        for c in &e.candidates {
            let flags = format!(
                "{}{}{}",
                if c.selected { "*" } else { " " },
                if c.stale { "S" } else { " " },
                if c.selected && !c.resolved { "U" } else { " " },
            );
            let proto = if c.instance.is_empty() {
                c.protocol.clone()
            } else {
                format!("{}/{}", c.protocol, c.instance)
            };
            let mut hops: Vec<String> = match Action::from_proto(c.action) {
                Action::Forward => c.nexthops.iter().map(nexthop_text).collect(),
                other => vec![format!("{other:?}").to_lowercase()],
            };
            let resolved: Vec<String> = c.resolved_nexthops.iter().map(nexthop_text).collect();
            if !resolved.is_empty() && resolved != hops {
                hops = c
                    .nexthops
                    .iter()
                    .map(nexthop_text)
                    .chain(resolved.iter().map(|r| format!("  -> {r}")))
                    .collect();
            }
            let first = hops.first().cloned().unwrap_or_default();
            let _ = writeln!(
                t,
                "{:<4}{:<44}{:<12}{:<12}{}",
                flags,
                p,
                proto,
                format!("{}/{}", c.distance, c.metric),
                first
            );
            for h in hops.iter().skip(1) {
                let _ = writeln!(t, "{:<72}{}", "", h);
            }
        }
    }
    t
}

/// The route table as JSON.
pub fn routes_json(entries: &[RibEntry]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| {
                json!({
                    "prefix": prefix(&e.prefix),
                    "candidates": e.candidates.iter().map(|c| json!({
                        "protocol": c.protocol,
                        "instance": c.instance,
                        "distance": c.distance,
                        "metric": c.metric,
                        "tag": c.tag,
                        "action": action_name(c.action),
                        "selected": c.selected,
                        "stale": c.stale,
                        "resolved": c.resolved,
                        "age_secs": c.age_secs,
                        "nexthops": c.nexthops.iter().map(nexthop_json).collect::<Vec<_>>(),
                        "resolved_nexthops": c.resolved_nexthops.iter().map(nexthop_json).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

fn summary_output(s: &RibSummary, fib: &crate::fib_feed::FibCounters) -> ShowOutput {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<14}{:>10}{:>10}{:>10}{:>8}  Connected",
        "Protocol", "IPv4", "IPv6", "Selected", "Stale"
    );
    for p in &s.protocols {
        let _ = writeln!(
            t,
            "{:<14}{:>10}{:>10}{:>10}{:>8}  {}",
            p.protocol,
            p.ipv4,
            p.ipv6,
            p.selected,
            p.stale,
            if p.connected_client { "yes" } else { "no" }
        );
    }
    let _ = writeln!(
        t,
        "\nPrefixes: {} IPv4, {} IPv6; FIB routes {}; unresolved {}; next-hop watches {}",
        s.prefixes_ipv4, s.prefixes_ipv6, s.fib_routes, s.unresolved, s.nexthop_watches
    );
    let _ = writeln!(
        t,
        "FEA: {}; batches {}, adds {}, deletes {}, failed {}, syncs {}",
        if s.fea_connected {
            "connected"
        } else {
            "not connected"
        },
        fib.batches,
        fib.adds,
        fib.deletes,
        fib.failed,
        fib.syncs
    );
    let json = json!({
        "protocols": s.protocols.iter().map(|p| json!({
            "protocol": p.protocol, "ipv4": p.ipv4, "ipv6": p.ipv6,
            "selected": p.selected, "stale": p.stale, "connected": p.connected_client,
        })).collect::<Vec<_>>(),
        "prefixes_ipv4": s.prefixes_ipv4,
        "prefixes_ipv6": s.prefixes_ipv6,
        "fib_routes": s.fib_routes,
        "unresolved": s.unresolved,
        "nexthop_watches": s.nexthop_watches,
        "fea_connected": s.fea_connected,
        "fib": fib,
    });
    ShowOutput { text: t, json }
}

fn nexthops_output(list: &[TrackedInfo]) -> ShowOutput {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<40}{:<22}{:<12}{:>7}{:>9}{:>6}  {:<22}Next hops",
        "Address", "Via route", "Protocol", "Metric", "Routes", "Watch", "Covering"
    );
    for i in list {
        let _ = writeln!(
            t,
            "{:<40}{:<22}{:<12}{:>7}{:>9}{:>6}  {:<22}{}",
            i.address,
            i.via.as_deref().unwrap_or("unresolved"),
            i.via_protocol.as_deref().unwrap_or("-"),
            i.metric.map_or_else(|| "-".to_string(), |m| m.to_string()),
            i.dependents,
            i.watchers,
            i.covering.as_deref().unwrap_or("-"),
            i.nexthops.join(", ")
        );
    }
    ShowOutput {
        text: t,
        json: serde_json::to_value(list).unwrap_or(Value::Null),
    }
}

#[tonic::async_trait]
impl ShowHandler for RibShow {
    fn commands(&self) -> Vec<(Vec<&'static str>, &'static str)> {
        vec![
            (
                vec!["route"],
                "Routes in the RIB: every candidate, selected ones flagged",
            ),
            (
                vec!["route", "<ADDR|PREFIX>"],
                "Longest match for an address, or one prefix",
            ),
            (vec!["route", "protocol", "<P>"], "Routes of one protocol"),
            (
                vec!["route", "summary"],
                "Route counts per protocol and FIB feed state",
            ),
            (
                vec!["route", "nexthops"],
                "Watched and recursive next hops and how they resolve",
            ),
        ]
    }

    async fn show(&self, words: &[String]) -> Result<ShowOutput, String> {
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        let stopped = |e: crate::actor::Stopped| e.to_string();
        match w.as_slice() {
            ["route"] => {
                let entries = self.routes(RouteFilter::default()).await?;
                Ok(ShowOutput {
                    text: routes_text(&entries),
                    json: routes_json(&entries),
                })
            }
            ["route", "summary"] => {
                let (s, fib) = self
                    .handle
                    .call(|s| (s.summary(), s.fib.counters))
                    .await
                    .map_err(stopped)?;
                Ok(summary_output(&s, &fib))
            }
            ["route", "nexthops"] => {
                let list = self
                    .handle
                    .call(|s| s.tracked_info())
                    .await
                    .map_err(stopped)?;
                Ok(nexthops_output(&list))
            }
            ["route", "protocol", p] => {
                let entries = self
                    .routes(RouteFilter {
                        protocol: p.to_string(),
                        ..Default::default()
                    })
                    .await?;
                Ok(ShowOutput {
                    text: routes_text(&entries),
                    json: routes_json(&entries),
                })
            }
            ["route", arg] => {
                let entries = if let Ok(net) = arg.parse::<IpNet>() {
                    self.routes(RouteFilter {
                        prefix: Some(Key::from(net)),
                        ..Default::default()
                    })
                    .await?
                } else if let Ok(a) = arg.parse::<IpAddr>() {
                    self.handle
                        .call(move |s| s.lookup(a))
                        .await
                        .map_err(stopped)?
                        .entries
                } else {
                    return Err(format!("not an address or prefix: {arg}"));
                };
                if entries.is_empty() {
                    return Ok(ShowOutput {
                        text: format!("no route for {arg}\n"),
                        json: Value::Array(vec![]),
                    });
                }
                Ok(ShowOutput {
                    text: routes_text(&entries),
                    json: routes_json(&entries),
                })
            }
            _ => Err(format!("unknown command: show {}", words.join(" "))),
        }
    }

    async fn metrics(&self) -> String {
        let Ok((s, fib, errors)) = self
            .handle
            .call(|s| (s.summary(), s.fib.counters, s.parse_errors))
            .await
        else {
            return String::new();
        };
        let mut t = String::new();
        let _ = writeln!(t, "oxr_rib_prefixes{{family=\"ipv4\"}} {}", s.prefixes_ipv4);
        let _ = writeln!(t, "oxr_rib_prefixes{{family=\"ipv6\"}} {}", s.prefixes_ipv6);
        let _ = writeln!(t, "oxr_rib_fib_routes {}", s.fib_routes);
        let _ = writeln!(t, "oxr_rib_unresolved {}", s.unresolved);
        let _ = writeln!(t, "oxr_rib_nexthop_watches {}", s.nexthop_watches);
        let _ = writeln!(t, "oxr_rib_fib_batches_total {}", fib.batches);
        let _ = writeln!(t, "oxr_rib_fib_adds_total {}", fib.adds);
        let _ = writeln!(t, "oxr_rib_fib_deletes_total {}", fib.deletes);
        let _ = writeln!(t, "oxr_rib_fib_failed_total {}", fib.failed);
        let _ = writeln!(t, "oxr_rib_parse_errors_total {errors}");
        for p in &s.protocols {
            let _ = writeln!(
                t,
                "oxr_rib_routes{{protocol=\"{}\"}} {}",
                p.protocol,
                p.ipv4 + p.ipv6
            );
        }
        t
    }
}
