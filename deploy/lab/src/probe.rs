//! Asking a running oxr router how it is: one `oxrsh -c 'show processes | json' -c 'show
//! route summary | json'` call, and the pure decision of whether it has converged.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

/// One process of a router, as `show processes | json` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    /// `fea`, `rib`, `static`, ...
    pub name: String,
    /// Its pid (0 while not running).
    pub pid: u64,
    /// `running`, `starting`, `backoff`, ...
    pub state: String,
    /// Seconds since it started.
    pub uptime_secs: u64,
    /// Restarts so far.
    pub restarts: u64,
}

/// Routes one protocol has in the RIB (`show route summary | json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoRoutes {
    /// `connected`, `static`, `ospf`, ...
    pub protocol: String,
    /// IPv4 + IPv6 candidates.
    pub routes: u64,
    /// How many of them are selected.
    pub selected: u64,
}

/// What one probe of a router found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Processes, empty if routerd did not answer.
    pub processes: Vec<Proc>,
    /// Per-protocol route counts, None if the RIB did not answer.
    pub routes: Option<Vec<ProtoRoutes>>,
    /// Prefixes in the RIB (IPv4 + IPv6).
    pub prefixes: u64,
    /// Routes the RIB wants in the FIB.
    pub fib_routes: u64,
    /// OSPF neighbors as (interface, state), if asked for and answered.
    pub ospf_neighbors: Option<Vec<(String, String)>>,
    /// BGP neighbors as (address, state), if asked for and answered.
    pub bgp_neighbors: Option<Vec<(String, String)>>,
}

impl Report {
    /// Adjacencies and sessions in brief: `ospf 2/2 Full, bgp 1/3 Established`.
    pub fn adjacencies(&self) -> String {
        let mut parts = Vec::new();
        if let Some(n) = &self.ospf_neighbors {
            let full = n.iter().filter(|(_, s)| s == "Full").count();
            parts.push(format!("ospf {full}/{} Full", n.len()));
        }
        if let Some(n) = &self.bgp_neighbors {
            let est = n.iter().filter(|(_, s)| s == "Established").count();
            parts.push(format!("bgp {est}/{} Established", n.len()));
        }
        parts.join(", ")
    }
}

/// Parses the concatenated JSON documents oxrsh prints for `show processes | json` then
/// `show route summary | json` (either may be missing).
pub fn parse_report(out: &str) -> Report {
    let mut r = Report::default();
    for v in serde_json::Deserializer::from_str(out)
        .into_iter::<Value>()
        .map_while(Result::ok)
    {
        let is_neighbors = v
            .as_array()
            .and_then(|l| l.first())
            .is_some_and(|n| n.get("router_id").is_some());
        if is_neighbors || (v.as_array().is_some_and(Vec::is_empty) && !r.processes.is_empty()) {
            r.ospf_neighbors = v.as_array().map(|l| {
                l.iter()
                    .map(|n| {
                        (
                            n["interface"].as_str().unwrap_or_default().to_string(),
                            n["state"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            });
        } else if let Some(list) = v.as_array() {
            r.processes = list
                .iter()
                .map(|p| Proc {
                    name: p["name"].as_str().unwrap_or_default().to_string(),
                    pid: p["pid"].as_u64().unwrap_or_default(),
                    state: p["state"].as_str().unwrap_or_default().to_string(),
                    uptime_secs: p["uptime-secs"].as_u64().unwrap_or_default(),
                    restarts: p["restarts"].as_u64().unwrap_or_default(),
                })
                .collect();
        } else if let Some(list) = v.get("neighbors").and_then(Value::as_array) {
            r.bgp_neighbors = Some(
                list.iter()
                    .map(|n| {
                        (
                            match &n["address"] {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            },
                            n["state"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect(),
            );
        } else if let Some(list) = v.get("protocols").and_then(Value::as_array) {
            r.routes = Some(
                list.iter()
                    .map(|p| ProtoRoutes {
                        protocol: p["protocol"].as_str().unwrap_or_default().to_string(),
                        routes: p["ipv4"].as_u64().unwrap_or_default()
                            + p["ipv6"].as_u64().unwrap_or_default(),
                        selected: p["selected"].as_u64().unwrap_or_default(),
                    })
                    .collect(),
            );
            r.prefixes = v["prefixes_ipv4"].as_u64().unwrap_or_default()
                + v["prefixes_ipv6"].as_u64().unwrap_or_default();
            r.fib_routes = v["fib_routes"].as_u64().unwrap_or_default();
        }
    }
    r
}

/// Runs oxrsh once against a router's run directory and parses what it printed; with
/// `ospf`, also asks for the OSPF neighbors, with `bgp` for the BGP sessions.
pub fn probe(oxrsh: &Path, run_dir: &Path, ospf: bool, bgp: bool) -> Report {
    let mut cmd = Command::new(oxrsh);
    cmd.arg("--run-dir").arg(run_dir).args([
        "-c",
        "show processes | json",
        "-c",
        "show route summary | json",
    ]);
    if ospf {
        cmd.args(["-c", "show ospf neighbor | json"]);
    }
    if bgp {
        cmd.args(["-c", "show bgp summary | json"]);
    }
    let out = cmd.stdin(Stdio::null()).stderr(Stdio::null()).output();
    match out {
        Ok(o) => parse_report(&String::from_utf8_lossy(&o.stdout)),
        Err(_) => Report::default(),
    }
}

/// What a router is still waiting for; None when it has converged.
///
/// Converged = routerd answers, every process it runs is `running`, and every configured
/// protocol has at least one *selected* route in the RIB. Selected, not merely present: an
/// OSPF router has its own stub networks as OSPF routes before any adjacency, but they lose to
/// connected routes; a selected OSPF route means something was learned from a neighbor.
pub fn missing(report: &Report, protocols: &[String]) -> Option<String> {
    if report.processes.is_empty() {
        return Some("routerd".into());
    }
    let not_running: Vec<&str> = report
        .processes
        .iter()
        .filter(|p| p.state != "running")
        .map(|p| p.name.as_str())
        .collect();
    if !not_running.is_empty() {
        return Some(format!("processes ({})", not_running.join(", ")));
    }
    let Some(routes) = &report.routes else {
        return Some("rib".into());
    };
    let lacking: Vec<&str> = protocols
        .iter()
        .filter(|p| !routes.iter().any(|r| &r.protocol == *p && r.selected > 0))
        .map(String::as_str)
        .collect();
    if !lacking.is_empty() {
        return Some(format!("routes from {}", lacking.join(", ")));
    }
    None
}

/// OSPF interfaces (of `expected`) without a Full neighbor, with the best state seen there;
/// empty when every adjacency is up.
pub fn missing_adjacencies(report: &Report, expected: &[String]) -> Vec<String> {
    let neighbors = report.ospf_neighbors.as_deref().unwrap_or_default();
    expected
        .iter()
        .filter_map(|ifname| {
            let states: Vec<&str> = neighbors
                .iter()
                .filter(|(i, _)| i == ifname)
                .map(|(_, s)| s.as_str())
                .collect();
            if states.contains(&"Full") {
                None
            } else if let Some(s) = states.first() {
                Some(format!("{ifname} ({s})"))
            } else {
                Some(format!("{ifname} (no neighbor)"))
            }
        })
        .collect()
}

/// Total selected routes: convergence also waits for this to stop changing.
pub fn selected_total(report: &Report) -> u64 {
    report.routes.iter().flatten().map(|r| r.selected).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUT: &str = r#"[{"name":"fea","pid":10,"state":"running","restarts":0,"uptime-secs":5},
{"name":"rib","pid":11,"state":"running","restarts":1,"uptime-secs":4},
{"name":"ospf","pid":12,"state":"running","restarts":0,"uptime-secs":3}]
{"protocols":[{"protocol":"connected","ipv4":3,"ipv6":0,"selected":3},
{"protocol":"ospf","ipv4":4,"ipv6":0,"selected":0}],"prefixes_ipv4":5,"prefixes_ipv6":0,"fib_routes":2}
"#;

    #[test]
    fn both_documents_are_read() {
        let r = parse_report(OUT);
        assert_eq!(r.processes.len(), 3);
        assert_eq!(r.processes[1].restarts, 1);
        let routes = r.routes.as_ref().unwrap();
        assert_eq!(routes[1].protocol, "ospf");
        assert_eq!(routes[1].routes, 4);
        assert_eq!(r.prefixes, 5);
        assert_eq!(r.fib_routes, 2);
        assert_eq!(selected_total(&r), 3);
    }

    #[test]
    fn convergence_needs_selected_routes_of_every_protocol() {
        let mut r = parse_report(OUT);
        let protos = vec!["ospf".to_string()];
        assert_eq!(missing(&r, &protos).as_deref(), Some("routes from ospf"));
        r.routes.as_mut().unwrap()[1].selected = 1;
        assert_eq!(missing(&r, &protos), None);
        r.processes[2].state = "backoff".into();
        assert_eq!(missing(&r, &protos).as_deref(), Some("processes (ospf)"));
        assert_eq!(
            missing(&Report::default(), &protos).as_deref(),
            Some("routerd")
        );
        let no_rib = parse_report(OUT.lines().take(3).collect::<Vec<_>>().join("\n").as_str());
        assert_eq!(missing(&no_rib, &protos).as_deref(), Some("rib"));
        // A router with no protocols converges once its processes run.
        assert_eq!(missing(&no_rib, &[]).as_deref(), Some("rib"));
    }

    #[test]
    fn ospf_neighbors_are_told_apart_from_processes() {
        let out = format!(
            "{OUT}[{{\"interface\":\"eth0\",\"state\":\"Full\",\"router_id\":\"1.1.1.1\"}},
             {{\"interface\":\"eth1\",\"state\":\"ExStart\",\"router_id\":\"2.2.2.2\"}}]"
        );
        let r = parse_report(&out);
        assert_eq!(r.processes.len(), 3);
        assert_eq!(r.ospf_neighbors.as_ref().unwrap().len(), 2);
        let want = vec!["eth0".to_string(), "eth1".to_string(), "eth2".to_string()];
        assert_eq!(
            missing_adjacencies(&r, &want),
            ["eth1 (ExStart)", "eth2 (no neighbor)"]
        );
        // No neighbors at all is an empty list, not a process list.
        let r = parse_report(&format!("{OUT}[]"));
        assert_eq!(r.processes.len(), 3);
        assert_eq!(r.ospf_neighbors, Some(vec![]));
    }

    #[test]
    fn bgp_sessions_and_ospf_adjacencies_are_summed_up() {
        let out = format!(
            "{OUT}[{{\"interface\":\"eth0\",\"state\":\"Full\",\"router_id\":\"1.1.1.1\"}},
             {{\"interface\":\"eth1\",\"state\":\"Init\",\"router_id\":\"2.2.2.2\"}}]
             {{\"router-id\":\"10.0.0.1\",\"local-as\":65001,\"loc-rib-prefixes\":3,\"neighbors\":[
               {{\"address\":\"10.0.12.2\",\"remote_as\":65002,\"state\":\"Established\",\"router_id\":\"10.0.0.2\"}},
               {{\"address\":\"10.0.13.3\",\"remote_as\":65003,\"state\":\"Active\",\"router_id\":null}}]}}"
        );
        let r = parse_report(&out);
        assert_eq!(r.processes.len(), 3);
        assert_eq!(r.prefixes, 5);
        assert_eq!(
            r.bgp_neighbors.as_deref().unwrap()[0],
            ("10.0.12.2".to_string(), "Established".to_string())
        );
        assert_eq!(r.adjacencies(), "ospf 1/2 Full, bgp 1/2 Established");
        assert_eq!(parse_report(OUT).adjacencies(), "");
    }

    #[test]
    fn garbage_is_an_empty_report() {
        assert_eq!(parse_report("error: no such socket"), Report::default());
    }
}
