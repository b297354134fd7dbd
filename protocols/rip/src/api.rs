//! Show commands and counters: `show rip routes|neighbors|interfaces` as text tables and
//! JSON, and Prometheus-format metrics. The instance lives in the event loop, so the gRPC
//! side ([`RipShow`]) asks it through a channel; [`show`] and [`metrics`] are pure.

use std::fmt::Write;

use oxr_sdk::{ShowHandler, ShowOutput};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::instance::{Instance, Source};

/// The commands this process declares (words after `show`).
pub const COMMANDS: &[(&[&str], &str)] = &[
    (&["rip", "routes"], "RIP routing table"),
    (&["rip", "neighbors"], "RIP neighbors heard from"),
    (&["rip", "interfaces"], "RIP interfaces"),
];

/// A request from the gRPC side to the event loop.
pub enum Request {
    /// `show <words>`.
    Show(Vec<String>, oneshot::Sender<Result<ShowOutput, String>>),
    /// Prometheus metrics.
    Metrics(oneshot::Sender<String>),
}

/// The `ShowHandler` of the process: forwards to the event loop.
pub struct RipShow {
    tx: mpsc::Sender<Request>,
}

impl RipShow {
    /// A handler sending requests on `tx`.
    pub fn new(tx: mpsc::Sender<Request>) -> Self {
        RipShow { tx }
    }
}

#[tonic::async_trait]
impl ShowHandler for RipShow {
    fn commands(&self) -> Vec<(Vec<&'static str>, &'static str)> {
        COMMANDS.iter().map(|(w, h)| (w.to_vec(), *h)).collect()
    }

    async fn show(&self, words: &[String]) -> Result<ShowOutput, String> {
        let gone = || "oxr-rip is shutting down".to_string();
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Request::Show(words.to_vec(), tx))
            .await
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    async fn metrics(&self) -> String {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Request::Metrics(tx)).await.is_err() {
            return String::new();
        }
        rx.await.unwrap_or_default()
    }
}

fn secs(now: u64, at: Option<u64>) -> String {
    at.map_or("-".into(), |t| format!("{}", t.saturating_sub(now) / 1000))
}

/// Renders `show <words>` at time `now`.
pub fn show(inst: &Instance, now: u64, words: &[String]) -> Result<ShowOutput, String> {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let mut text = String::new();
    let json = match w.as_slice() {
        ["rip", "routes"] => {
            let _ = writeln!(
                text,
                "{:<20} {:>6} {:<24} {:>7} {:>4}",
                "Prefix", "Metric", "Source", "Expires", "GC"
            );
            for (p, r) in &inst.routes {
                let src = match &r.source {
                    Source::Interface(i) => format!("interface {i}"),
                    Source::Redistributed(p) => format!("redistributed {p}"),
                    Source::Learned { ifname, from } => format!("{from} via {ifname}"),
                };
                let _ = writeln!(
                    text,
                    "{:<20} {:>6} {:<24} {:>7} {:>4}",
                    p.to_string(),
                    r.metric,
                    src,
                    secs(now, r.expires),
                    secs(now, r.gc)
                );
            }
            json!(inst.routes)
        }
        ["rip", "neighbors"] => {
            let _ = writeln!(
                text,
                "{:<16} {:<10} {:>8} {:>8} {:>8} {:>6}",
                "Address", "Interface", "Packets", "BadPkts", "BadRtes", "Age"
            );
            for (a, n) in &inst.neighbors {
                let _ = writeln!(
                    text,
                    "{:<16} {:<10} {:>8} {:>8} {:>8} {:>6}",
                    a.to_string(),
                    n.ifname,
                    n.packets,
                    n.bad_packets,
                    n.bad_routes,
                    now.saturating_sub(n.last_heard) / 1000
                );
            }
            json!(inst.neighbors)
        }
        ["rip", "interfaces"] => {
            let _ = writeln!(
                text,
                "{:<10} {:<6} {:<8} {:<5} {:<18} {:<5} Addresses",
                "Name", "State", "Passive", "Cost", "Split-horizon", "Auth"
            );
            for (n, i) in &inst.ifaces {
                let addrs: Vec<String> = i.state.addrs.iter().map(ToString::to_string).collect();
                let _ = writeln!(
                    text,
                    "{:<10} {:<6} {:<8} {:<5} {:<18} {:<5} {}",
                    n,
                    if i.active() {
                        "active"
                    } else if i.state.up {
                        "up"
                    } else {
                        "down"
                    },
                    i.config.passive,
                    i.config.cost,
                    format!("{:?}", i.config.split_horizon),
                    i.config.authentication.is_some(),
                    addrs.join(" ")
                );
            }
            json!(inst
                .ifaces
                .iter()
                .map(|(n, i)| (
                    n.clone(),
                    json!({
                        "active": i.active(), "up": i.state.up, "passive": i.config.passive,
                        "cost": i.config.cost, "split-horizon": i.config.split_horizon,
                        "authentication": i.config.authentication.is_some(),
                        "addresses": i.state.addrs,
                    })
                ))
                .collect::<serde_json::Map<_, _>>())
        }
        _ => return Err(format!("unknown command: show {}", words.join(" "))),
    };
    Ok(ShowOutput { text, json })
}

/// Counters in Prometheus text format.
pub fn metrics(inst: &Instance) -> String {
    let mut s = String::new();
    for (name, v) in &inst.counters {
        let _ = writeln!(s, "oxr_rip_{} {v}", name.replace('-', "_"));
    }
    let _ = writeln!(s, "oxr_rip_routes {}", inst.routes.len());
    let _ = writeln!(s, "oxr_rip_neighbors {}", inst.neighbors.len());
    s
}
