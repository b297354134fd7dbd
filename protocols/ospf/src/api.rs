//! Show commands and counters: `show ospf neighbor|interface|database|route|spf` as text
//! tables and JSON, and Prometheus-format metrics. The instance lives in the event loop, so
//! the gRPC side ([`OspfShow`]) asks it through a channel; [`show`] and [`metrics`] are the
//! pure renderers.

use std::fmt::Write;
use std::net::Ipv4Addr;

use oxr_sdk::{ShowHandler, ShowOutput};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::instance::Instance;
use crate::packet::lsa::{
    LSA_EXTERNAL, LSA_NETWORK, LSA_NSSA, LSA_ROUTER, LSA_SUMMARY_ASBR, LSA_SUMMARY_NET,
};
use crate::packet::LsaBody;

/// The commands this process declares (words after `show`).
pub const COMMANDS: &[(&[&str], &str)] = &[
    (&["ospf", "neighbor"], "OSPF neighbors and their states"),
    (&["ospf", "interface"], "OSPF interfaces, DR/BDR, costs"),
    (
        &["ospf", "database"],
        "link-state database [router|network|summary|asbr-summary|external|TYPE] [LSID]",
    ),
    (&["ospf", "route"], "OSPF routing table"),
    (&["ospf", "spf"], "recent SPF runs and their durations"),
];

/// A request from the gRPC side to the event loop.
pub enum Request {
    /// `show <words>`.
    Show(Vec<String>, oneshot::Sender<Result<ShowOutput, String>>),
    /// Prometheus metrics.
    Metrics(oneshot::Sender<String>),
}

/// The `ShowHandler` of the process: forwards to the event loop.
pub struct OspfShow {
    tx: mpsc::Sender<Request>,
}

impl OspfShow {
    /// A handler sending requests on `tx`.
    pub fn new(tx: mpsc::Sender<Request>) -> Self {
        OspfShow { tx }
    }
}

#[tonic::async_trait]
impl ShowHandler for OspfShow {
    fn commands(&self) -> Vec<(Vec<&'static str>, &'static str)> {
        COMMANDS.iter().map(|(w, h)| (w.to_vec(), *h)).collect()
    }

    async fn show(&self, words: &[String]) -> Result<ShowOutput, String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Request::Show(words.to_vec(), tx))
            .await
            .map_err(|_| "oxr-ospf is shutting down".to_string())?;
        rx.await
            .map_err(|_| "oxr-ospf is shutting down".to_string())?
    }

    async fn metrics(&self) -> String {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Request::Metrics(tx)).await.is_err() {
            return String::new();
        }
        rx.await.unwrap_or_default()
    }
}

fn ls_type_name(t: u8) -> String {
    match t {
        LSA_ROUTER => "router".into(),
        LSA_NETWORK => "network".into(),
        LSA_SUMMARY_NET => "summary".into(),
        LSA_SUMMARY_ASBR => "asbr-summary".into(),
        LSA_EXTERNAL => "external".into(),
        LSA_NSSA => "nssa".into(),
        t => format!("type-{t}"),
    }
}

fn parse_ls_type(s: &str) -> Option<u8> {
    Some(match s {
        "router" => LSA_ROUTER,
        "network" => LSA_NETWORK,
        "summary" => LSA_SUMMARY_NET,
        "asbr-summary" => LSA_SUMMARY_ASBR,
        "external" => LSA_EXTERNAL,
        "nssa" => LSA_NSSA,
        n => n.parse().ok()?,
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Runs one show command against the instance (`words` start with "ospf").
pub fn show(inst: &Instance, words: &[String]) -> Result<ShowOutput, String> {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let mut text = String::new();
    match w.as_slice() {
        ["ospf", "neighbor", ..] | ["ospf", "neighbors", ..] => {
            let ns = inst.neighbors();
            writeln!(
                text,
                "{:<16} {:<4} {:<10} {:<16} {:<12} {:>8} {:>5} {:>5}",
                "Neighbor ID", "Pri", "State", "Address", "Interface", "Uptime", "Rxmt", "Req"
            )
            .ok();
            for n in &ns {
                writeln!(
                    text,
                    "{:<16} {:<4} {:<10} {:<16} {:<12} {:>7}s {:>5} {:>5}",
                    n.router_id.to_string(),
                    n.priority,
                    format!("{:?}", n.state),
                    n.address.to_string(),
                    n.interface,
                    n.since_ms / 1000,
                    n.retransmit,
                    n.requests
                )
                .ok();
            }
            Ok(ShowOutput {
                text,
                json: to_json(&ns),
            })
        }
        ["ospf", "interface", ..] | ["ospf", "interfaces", ..] => {
            let is = inst.interfaces();
            writeln!(
                text,
                "{:<12} {:<10} {:<14} {:<9} {:<18} {:>5} {:<16} {:<16} {:>6}",
                "Interface", "Area", "Type", "State", "Address", "Cost", "DR", "BDR", "Adj"
            )
            .ok();
            for i in &is {
                writeln!(
                    text,
                    "{:<12} {:<10} {:<14} {:<9} {:<18} {:>5} {:<16} {:<16} {:>3}/{:<2}",
                    i.name,
                    i.area.to_string(),
                    format!("{:?}{}", i.if_type, if i.passive { "*" } else { "" }),
                    format!("{:?}", i.state),
                    i.address.map_or("-".into(), |a| a.to_string()),
                    i.cost,
                    i.dr.to_string(),
                    i.bdr.to_string(),
                    i.adjacent,
                    i.neighbors
                )
                .ok();
            }
            if is.iter().any(|i| i.passive) {
                writeln!(text, "* passive").ok();
            }
            Ok(ShowOutput {
                text,
                json: to_json(&is),
            })
        }
        ["ospf", "database", rest @ ..] => {
            let ls_type = match rest.first() {
                Some(t) => Some(parse_ls_type(t).ok_or_else(|| format!("unknown LSA type {t}"))?),
                None => None,
            };
            let lsid = match rest.get(1) {
                Some(l) => Some(
                    l.parse::<Ipv4Addr>()
                        .map_err(|_| format!("bad link state ID {l}"))?,
                ),
                None => None,
            };
            let db = inst.database(ls_type, lsid);
            writeln!(
                text,
                "{:<10} {:<13} {:<16} {:<16} {:>5} {:>10} {:>6}  Contents",
                "Area", "Type", "Link State ID", "Adv Router", "Age", "Seq", "Cksum"
            )
            .ok();
            for l in &db {
                let h = &l.header;
                let contents = match &l.body {
                    LsaBody::Router(r) => format!("{} links, flags {:#x}", r.links.len(), r.flags),
                    LsaBody::Network(n) => format!(
                        "/{} {} routers",
                        u32::from(n.mask).leading_ones(),
                        n.attached.len()
                    ),
                    LsaBody::Summary(s) => {
                        format!("/{} metric {}", u32::from(s.mask).leading_ones(), s.metric)
                    }
                    LsaBody::External(e) => format!(
                        "/{} E{} metric {} tag {}",
                        u32::from(e.mask).leading_ones(),
                        if e.type2 { 2 } else { 1 },
                        e.metric,
                        e.tag
                    ),
                    LsaBody::Unknown(b) => format!("{} bytes", b.len()),
                };
                writeln!(
                    text,
                    "{:<10} {:<13} {:<16} {:<16} {:>5} {:>#10x} {:>#6x}  {}",
                    l.area.map_or("AS".into(), |a| a.to_string()),
                    ls_type_name(h.ls_type),
                    h.lsid.to_string(),
                    h.adv_router.to_string(),
                    h.age,
                    h.seq as u32,
                    h.checksum,
                    contents
                )
                .ok();
            }
            Ok(ShowOutput {
                text,
                json: to_json(&db),
            })
        }
        ["ospf", "route", ..] | ["ospf", "routes", ..] => {
            let rs = inst.routes();
            writeln!(
                text,
                "{:<20} {:<11} {:>8} {:<10} Next hops",
                "Prefix", "Type", "Cost", "Area"
            )
            .ok();
            for r in &rs {
                let cost = match r.path_type {
                    crate::route::PathType::External2 => format!("{}/{}", r.cost, r.type2_cost),
                    _ => r.cost.to_string(),
                };
                let nh: Vec<String> = r
                    .nexthops
                    .iter()
                    .map(|(a, i)| {
                        if a.is_unspecified() {
                            format!("direct {i}")
                        } else {
                            format!("{a} {i}")
                        }
                    })
                    .collect();
                writeln!(
                    text,
                    "{:<20} {:<11} {:>8} {:<10} {}",
                    r.prefix.to_string(),
                    format!("{:?}", r.path_type),
                    cost,
                    r.area.map_or("-".into(), |a| a.to_string()),
                    nh.join(", ")
                )
                .ok();
            }
            Ok(ShowOutput {
                text,
                json: to_json(&rs),
            })
        }
        ["ospf", "spf", ..] => {
            let runs = inst.spf_runs();
            let c = inst.counters();
            writeln!(
                text,
                "SPF runs {}, total {} us, throttle {:?}{}",
                c.spf_runs,
                c.spf_time_us,
                inst.spf_throttle_state(),
                if inst.spf_pending() {
                    ", run pending"
                } else {
                    ""
                }
            )
            .ok();
            writeln!(
                text,
                "{:>12} {:>10} {:>7} {:>8}",
                "At (ms)", "Took (us)", "Routes", "Changes"
            )
            .ok();
            for r in &runs {
                writeln!(
                    text,
                    "{:>12} {:>10} {:>7} {:>8}",
                    r.at, r.duration_us, r.routes, r.changes
                )
                .ok();
            }
            Ok(ShowOutput {
                text,
                json: json!({
                    "runs": c.spf_runs,
                    "total_us": c.spf_time_us,
                    "throttle": to_json(&inst.spf_throttle_state()),
                    "recent": to_json(&runs),
                }),
            })
        }
        _ => Err(format!("unknown command: show {}", words.join(" "))),
    }
}

/// Counters in Prometheus text format.
pub fn metrics(inst: &Instance) -> String {
    let c = inst.counters();
    let mut s = String::new();
    let mut counter = |name: &str, help: &str, rows: Vec<(String, u64)>| {
        writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter").ok();
        for (labels, v) in rows {
            writeln!(s, "{name}{labels} {v}").ok();
        }
    };
    counter(
        "oxr_ospf_rx_packets_total",
        "OSPF packets received and accepted, by type.",
        c.rx.iter()
            .map(|(t, v)| (format!("{{type=\"{t}\"}}"), *v))
            .collect(),
    );
    counter(
        "oxr_ospf_tx_packets_total",
        "OSPF packets sent, by type.",
        c.tx.iter()
            .map(|(t, v)| (format!("{{type=\"{t}\"}}"), *v))
            .collect(),
    );
    counter(
        "oxr_ospf_rx_errors_total",
        "OSPF packets or LSAs dropped, by reason.",
        c.errors
            .iter()
            .map(|(t, v)| (format!("{{reason=\"{t}\"}}"), *v))
            .collect(),
    );
    counter(
        "oxr_ospf_spf_runs_total",
        "SPF runs.",
        vec![(String::new(), c.spf_runs)],
    );
    counter(
        "oxr_ospf_spf_microseconds_total",
        "Time spent in SPF and route computation, microseconds.",
        vec![(String::new(), c.spf_time_us)],
    );
    counter(
        "oxr_ospf_adjacency_changes_total",
        "Neighbors entering (up) and leaving (down) Full.",
        vec![
            ("{direction=\"up\"}".into(), c.adjacency_up),
            ("{direction=\"down\"}".into(), c.adjacency_down),
        ],
    );
    counter(
        "oxr_ospf_lsa_originated_total",
        "LSA instances originated or flushed by this router.",
        vec![(String::new(), c.lsa_originated)],
    );
    counter(
        "oxr_ospf_lsa_installed_total",
        "Newer LSA instances received and installed.",
        vec![(String::new(), c.lsa_installed)],
    );
    counter(
        "oxr_ospf_lsa_retransmitted_total",
        "LSAs retransmitted.",
        vec![(String::new(), c.lsa_retransmitted)],
    );
    counter(
        "oxr_ospf_exchange_retransmitted_total",
        "DD packets and LS Requests retransmitted during database exchange.",
        vec![(String::new(), c.exchange_retransmitted)],
    );
    counter(
        "oxr_ospf_lsa_deferred_total",
        "Newer LSA instances received within MinLSArrival, processed when it ended.",
        vec![(String::new(), c.lsa_deferred)],
    );
    let mut gauge = |name: &str, help: &str, v: usize| {
        writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}").ok();
    };
    gauge(
        "oxr_ospf_adjacencies",
        "Neighbors in state Full.",
        inst.full_adjacencies(),
    );
    gauge(
        "oxr_ospf_lsdb_lsas",
        "LSAs in the database.",
        inst.lsdb_len(),
    );
    gauge(
        "oxr_ospf_routes",
        "Routes published to the RIB.",
        inst.published().len(),
    );
    s
}
