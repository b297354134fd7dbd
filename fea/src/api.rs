//! The gRPC face of the FEA: the `oxr.fea.Fea` service and the show commands / counters
//! served through `oxr.process.Process`.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::Stream;
use ipnet::IpNet;
use oxr_proto::fea::fea_server::Fea;
use oxr_proto::fea::{
    FeaStatus, FibAck, FibBatch, FibEntries, GetFibRequest, InterfaceUpdate, StatusRequest,
    WatchInterfacesRequest,
};
use oxr_sdk::process::{ShowHandler, ShowOutput};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::backend::{Action, Route};
use crate::fib::{batch_from_proto, route_to_proto, Fib};
use crate::interfaces::{InterfaceTable, InterfaceWatcher, Update};

/// Routes per GetFib message.
pub const FIB_CHUNK: usize = 1000;
/// Most routes `show fib` lists (the JSON and text must fit a gRPC message).
pub const SHOW_FIB_LIMIT: usize = 10_000;

/// State shared by the gRPC service and the show handler.
pub struct FeaState {
    /// The FIB; locked from blocking threads (the kernel backend blocks on netlink).
    pub fib: Arc<Mutex<Fib>>,
    /// Interface state, if the watcher could start.
    pub interfaces: Option<Arc<InterfaceWatcher>>,
    /// Open ProgramFib streams.
    pub rib_streams: AtomicU64,
    /// Times the FIB applier found no decoded batch ready (it waited for the RIB or the
    /// decoder), and the microseconds it waited: where the kernel backend sat idle.
    pub input_waits: AtomicU64,
    pub input_wait_us: AtomicU64,
}

impl FeaState {
    /// Shares `fib` and `interfaces`.
    pub fn new(fib: Fib, interfaces: Option<Arc<InterfaceWatcher>>) -> Arc<Self> {
        Arc::new(FeaState {
            fib: Arc::new(Mutex::new(fib)),
            interfaces,
            rib_streams: AtomicU64::new(0),
            input_waits: AtomicU64::new(0),
            input_wait_us: AtomicU64::new(0),
        })
    }

    fn table(&self) -> InterfaceTable {
        self.interfaces
            .as_ref()
            .map(|w| w.snapshot())
            .unwrap_or_default()
    }

    fn overruns(&self) -> u64 {
        self.interfaces.as_ref().map_or(0, |w| w.overruns())
    }

    /// Runs `f` on the FIB from a blocking thread.
    pub async fn with_fib<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Fib) -> T + Send + 'static,
    ) -> T {
        let fib = self.fib.clone();
        tokio::task::spawn_blocking(move || f(&mut fib.lock().expect("fib lock")))
            .await
            .expect("fib task panicked")
    }

    /// The status message.
    pub async fn status(&self) -> FeaStatus {
        let (st, c) = self
            .with_fib(|f| (f.backend().status(), f.counters().clone()))
            .await;
        FeaStatus {
            backend: st.backend,
            routes_ipv4: st.routes_ipv4,
            routes_ipv6: st.routes_ipv6,
            nexthop_objects: st.nexthop_objects,
            nexthop_groups: st.nexthop_groups,
            batches: c.batches,
            route_errors: c.route_errors,
            netlink_overruns: self.overruns(),
            reconciled_kept: c.reconciled_kept,
            reconciled_removed: c.reconciled_removed,
            rib_connected: self.rib_streams.load(Ordering::Relaxed) > 0,
        }
    }
}

/// The `oxr.fea.Fea` service.
#[derive(Clone)]
pub struct FeaService {
    state: Arc<FeaState>,
}

impl FeaService {
    /// A service over `state`.
    pub fn new(state: Arc<FeaState>) -> Self {
        FeaService { state }
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn name_lookup(t: &InterfaceTable) -> impl Fn(u32) -> String + '_ {
    move |i| {
        t.interfaces
            .get(&i)
            .map(|x| x.name.clone())
            .unwrap_or_default()
    }
}

/// The route for `net` if held exactly, else the longest held prefix covering it.
pub fn lookup(fib: &Fib, net: &IpNet) -> Option<Route> {
    if let Some(r) = fib.backend().get(net) {
        return Some(r);
    }
    (0..net.prefix_len()).rev().find_map(|len| {
        let p = IpNet::new(net.addr(), len).ok()?.trunc();
        fib.backend().get(&p)
    })
}

#[tonic::async_trait]
impl Fea for FeaService {
    type WatchInterfacesStream = BoxStream<InterfaceUpdate>;

    async fn watch_interfaces(
        &self,
        _: Request<WatchInterfacesRequest>,
    ) -> Result<Response<Self::WatchInterfacesStream>, Status> {
        let Some(w) = self.state.interfaces.clone() else {
            return Err(Status::unavailable("interface watcher not running"));
        };
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            let (table, mut updates) = w.subscribe();
            let first = Update {
                changed: table.interfaces.values().cloned().collect(),
                removed: Vec::new(),
                full_dump: true,
            };
            if tx.send(Ok(first.to_proto())).await.is_err() {
                return;
            }
            loop {
                let msg = match updates.recv().await {
                    Ok(u) => u.to_proto(),
                    // Fell behind: the subscriber gets the whole table again.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        let t = w.snapshot();
                        Update {
                            changed: t.interfaces.values().cloned().collect(),
                            removed: Vec::new(),
                            full_dump: true,
                        }
                        .to_proto()
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                if tx.send(Ok(msg)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type ProgramFibStream = BoxStream<FibAck>;

    async fn program_fib(
        &self,
        req: Request<Streaming<FibBatch>>,
    ) -> Result<Response<Self::ProgramFibStream>, Status> {
        let mut input = req.into_inner();
        let state = self.state.clone();
        let (tx, rx) = mpsc::channel(64);
        // Decoding the next batch overlaps with the kernel inserting this one: a reader task
        // decodes and converts into a short queue, this task applies in order and acks.
        let (decoded_tx, mut decoded) = mpsc::channel(4);
        let reader_state = state.clone();
        tokio::spawn(async move {
            loop {
                let batch = match input.message().await {
                    Ok(Some(b)) => b,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::info!(error = %e, "ProgramFib stream ended");
                        break;
                    }
                };
                let table = reader_state.table();
                let b = batch_from_proto(&batch, &|n| table.by_name(n).map(|i| i.ifindex));
                if decoded_tx.send(b).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            state.rib_streams.fetch_add(1, Ordering::Relaxed);
            loop {
                let b = match decoded.try_recv() {
                    Ok(b) => b,
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        let t = std::time::Instant::now();
                        let Some(b) = decoded.recv().await else { break };
                        state.input_waits.fetch_add(1, Ordering::Relaxed);
                        state
                            .input_wait_us
                            .fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                        b
                    }
                };
                let ack = state.with_fib(move |f| f.apply(b)).await;
                if ack.failed > 0 {
                    tracing::warn!(seq = ack.seq, failed = ack.failed, first = ?ack.errors.first(), "FIB batch had failures");
                }
                if tx.send(Ok(ack)).await.is_err() {
                    break;
                }
            }
            tracing::info!(
                input_waits = state.input_waits.load(Ordering::Relaxed),
                input_wait_ms = state.input_wait_us.load(Ordering::Relaxed) / 1000,
                "ProgramFib stream ended"
            );
            state.rib_streams.fetch_sub(1, Ordering::Relaxed);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type GetFibStream = BoxStream<FibEntries>;

    async fn get_fib(
        &self,
        req: Request<GetFibRequest>,
    ) -> Result<Response<Self::GetFibStream>, Status> {
        let req = req.into_inner();
        let prefix = match &req.prefix {
            Some(p) => {
                Some(IpNet::try_from(p).map_err(|e| Status::invalid_argument(e.to_string()))?)
            }
            None => None,
        };
        let family = req.family;
        let keep = move |r: &Route| match family {
            4 | 2 => r.prefix.addr().is_ipv4(),
            6 | 10 => r.prefix.addr().is_ipv6(),
            _ => true,
        };
        let state = self.state.clone();
        // A page of the table at a time (the FIB lock is taken per page), so a full table
        // is never copied whole.
        let (tx, rx) = mpsc::channel(2);
        tokio::spawn(async move {
            let mut after: Option<IpNet> = None;
            loop {
                let cursor = after;
                let page = state
                    .with_fib(move |f| match prefix {
                        Some(p) if cursor.is_none() => lookup(f, &p).into_iter().collect(),
                        Some(_) => Vec::new(),
                        None => f.backend().routes_page(cursor.as_ref(), FIB_CHUNK),
                    })
                    .await;
                let Some(last) = page.last() else { return };
                after = Some(last.prefix);
                let table = state.table();
                let names = name_lookup(&table);
                let routes: Vec<_> = page
                    .iter()
                    .filter(|r| keep(r))
                    .map(|r| route_to_proto(r, &names))
                    .collect();
                if !routes.is_empty() && tx.send(Ok(FibEntries { routes })).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<FeaStatus>, Status> {
        Ok(Response::new(self.state.status().await))
    }
}

/// `show interfaces`, `show fib [PREFIX]`, `show fea` and the Prometheus counters.
pub struct FeaShow {
    state: Arc<FeaState>,
}

impl FeaShow {
    /// Show commands over `state`.
    pub fn new(state: Arc<FeaState>) -> Self {
        FeaShow { state }
    }

    fn interfaces(&self) -> ShowOutput {
        let t = self.state.table();
        let mut text = format!(
            "{:<16} {:>7} {:<6} {:<6} {:>6}  {:<17}  {}\n",
            "Interface", "Index", "Admin", "Oper", "MTU", "MAC", "Addresses"
        );
        for i in t.interfaces.values() {
            let addrs: Vec<String> = i
                .addresses
                .iter()
                .map(|a| match a.peer {
                    Some(p) => format!("{} peer {p}", a.prefix),
                    None => a.prefix.to_string(),
                })
                .collect();
            text.push_str(&format!(
                "{:<16} {:>7} {:<6} {:<6} {:>6}  {:<17}  {}\n",
                i.name,
                i.ifindex,
                if i.admin_up { "up" } else { "down" },
                if i.oper_up { "up" } else { "down" },
                i.mtu,
                crate::interfaces::format_mac(&i.mac),
                addrs.join(", ")
            ));
        }
        let json = json!({ "interfaces": t.interfaces.values().collect::<Vec<_>>() });
        ShowOutput { text, json }
    }

    async fn fib(&self, prefix: Option<IpNet>) -> ShowOutput {
        let (routes, total, unconfirmed) = self
            .state
            .with_fib(move |f| {
                let routes: Vec<(Route, bool)> = match prefix {
                    Some(p) => lookup(f, &p).into_iter().collect::<Vec<_>>(),
                    None => f.backend().routes_page(None, SHOW_FIB_LIMIT),
                }
                .into_iter()
                .map(|r| {
                    let u = f.backend().is_unconfirmed(&r.prefix);
                    (r, u)
                })
                .collect();
                let st = f.backend().status();
                (routes, st.routes_ipv4 + st.routes_ipv6, st.unconfirmed)
            })
            .await;
        let table = self.state.table();
        let names = name_lookup(&table);
        let mut text = format!(
            "{:<44} {:<10} {:<10} {}\n",
            "Prefix", "Protocol", "Action", "Next hops"
        );
        let mut rows = Vec::with_capacity(routes.len());
        for (r, unconf) in &routes {
            let nhs: Vec<String> = r
                .nexthops
                .iter()
                .map(|n| {
                    let dev = names(n.ifindex);
                    let dev = if dev.is_empty() {
                        format!("if{}", n.ifindex)
                    } else {
                        dev
                    };
                    match (n.gateway, r.nexthops.len() > 1) {
                        (Some(g), true) => format!("via {g} dev {dev} weight {}", n.weight),
                        (Some(g), false) => format!("via {g} dev {dev}"),
                        (None, _) => format!("dev {dev}"),
                    }
                })
                .collect();
            let action = match r.action {
                Action::Forward => "forward",
                Action::Blackhole => "blackhole",
                Action::Reject => "reject",
            };
            let proto = if *unconf {
                "(restart)".to_string()
            } else {
                r.protocol.clone()
            };
            text.push_str(&format!(
                "{:<44} {:<10} {:<10} {}\n",
                r.prefix.to_string(),
                proto,
                action,
                nhs.join(", ")
            ));
            let mut v = serde_json::to_value(r).unwrap_or_default();
            v["unconfirmed"] = json!(unconf);
            rows.push(v);
        }
        if prefix.is_none() && (total as usize) > routes.len() {
            text.push_str(&format!(
                "... {} more routes not shown (show fib <PREFIX> for one)\n",
                total as usize - routes.len()
            ));
        }
        if prefix.is_some() && routes.is_empty() {
            text = "no route\n".to_string();
        }
        let _ = unconfirmed;
        ShowOutput {
            text,
            json: json!({ "routes": rows, "total": total }),
        }
    }

    async fn fea(&self) -> ShowOutput {
        let (st, c, syncing) = self
            .state
            .with_fib(|f| (f.backend().status(), f.counters().clone(), f.syncing()))
            .await;
        let overruns = self.state.overruns();
        let rib = self.state.rib_streams.load(Ordering::Relaxed) > 0;
        let text = format!(
            "Backend:              {}\n\
             Routes:               {} IPv4, {} IPv6 ({} unconfirmed from a previous run)\n\
             Nexthop objects:      {} ({} groups)\n\
             RIB connected:        {}{}\n\
             Batches:              {}\n\
             Routes applied:       {}\n\
             Route errors:         {}\n\
             Syncs completed:      {} (last: {} kept, {} removed)\n\
             Netlink messages:     {} in {} sendmsg calls\n\
             Waits for input:      {} ({} ms)\n\
             Interface overruns:   {}\n",
            st.backend,
            st.routes_ipv4,
            st.routes_ipv6,
            st.unconfirmed,
            st.nexthop_objects + st.nexthop_groups,
            st.nexthop_groups,
            if rib { "yes" } else { "no" },
            if syncing { " (sync in progress)" } else { "" },
            c.batches,
            c.routes_applied,
            c.route_errors,
            c.syncs_completed,
            c.reconciled_kept,
            c.reconciled_removed,
            st.messages,
            st.sends,
            self.state.input_waits.load(Ordering::Relaxed),
            self.state.input_wait_us.load(Ordering::Relaxed) / 1000,
            overruns,
        );
        ShowOutput {
            text,
            json: json!({
                "backend": st,
                "counters": c,
                "rib_connected": rib,
                "syncing": syncing,
                "netlink_overruns": overruns,
                "input_waits": self.state.input_waits.load(Ordering::Relaxed),
                "input_wait_us": self.state.input_wait_us.load(Ordering::Relaxed),
            }),
        }
    }
}

#[tonic::async_trait]
impl ShowHandler for FeaShow {
    fn commands(&self) -> Vec<(Vec<&'static str>, &'static str)> {
        vec![
            (vec!["interfaces"], "Interfaces, addresses and link state"),
            (vec!["fib"], "Routes in the forwarding plane"),
            (
                vec!["fib", "<PREFIX>"],
                "The FIB route for a prefix or address (longest match)",
            ),
            (vec!["fea"], "Forwarding backend status and counters"),
        ]
    }

    async fn show(&self, words: &[String]) -> Result<ShowOutput, String> {
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        match w.as_slice() {
            ["interfaces"] => Ok(self.interfaces()),
            ["fib"] => Ok(self.fib(None).await),
            ["fib", p] => Ok(self.fib(Some(parse_prefix_or_addr(p)?)).await),
            ["fea"] => Ok(self.fea().await),
            _ => Err(format!("unknown command: show {}", words.join(" "))),
        }
    }

    async fn metrics(&self) -> String {
        let (st, c) = self
            .state
            .with_fib(|f| (f.backend().status(), f.counters().clone()))
            .await;
        metrics_text(&st, &c, self.state.overruns())
    }
}

/// Counters in Prometheus text exposition format.
pub fn metrics_text(
    st: &crate::backend::BackendStatus,
    c: &crate::fib::FibCounters,
    overruns: u64,
) -> String {
    let mut s = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64, labels: &str| {
        if !s.contains(&format!("# TYPE {name} ")) {
            s.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        }
        s.push_str(&format!("{name}{labels} {value}\n"));
    };
    metric(
        "oxr_fea_batches_total",
        "counter",
        "FIB batches applied.",
        c.batches,
        "",
    );
    metric(
        "oxr_fea_routes_applied_total",
        "counter",
        "Route adds/deletes applied.",
        c.routes_applied,
        "",
    );
    metric(
        "oxr_fea_route_errors_total",
        "counter",
        "Route adds/deletes that failed.",
        c.route_errors,
        "",
    );
    metric(
        "oxr_fea_netlink_overruns_total",
        "counter",
        "Interface notification overruns (each followed by a re-dump).",
        overruns,
        "",
    );
    metric(
        "oxr_fea_netlink_messages_total",
        "counter",
        "Netlink messages sent to program the FIB.",
        st.messages,
        "",
    );
    metric(
        "oxr_fea_netlink_sends_total",
        "counter",
        "sendmsg calls made to program the FIB.",
        st.sends,
        "",
    );
    metric(
        "oxr_fea_syncs_total",
        "counter",
        "FIB resynchronisations completed.",
        c.syncs_completed,
        "",
    );
    metric(
        "oxr_fea_routes",
        "gauge",
        "Routes in the forwarding plane.",
        st.routes_ipv4,
        "{family=\"ipv4\"}",
    );
    metric(
        "oxr_fea_routes",
        "gauge",
        "Routes in the forwarding plane.",
        st.routes_ipv6,
        "{family=\"ipv6\"}",
    );
    metric(
        "oxr_fea_nexthop_objects",
        "gauge",
        "Kernel nexthop objects (single).",
        st.nexthop_objects,
        "",
    );
    metric(
        "oxr_fea_nexthop_groups",
        "gauge",
        "Kernel nexthop group objects.",
        st.nexthop_groups,
        "",
    );
    metric(
        "oxr_fea_unconfirmed_routes",
        "gauge",
        "Routes from a previous run not yet re-sent.",
        st.unconfirmed,
        "",
    );
    metric(
        "oxr_fea_reconciled_kept",
        "gauge",
        "Routes re-sent in the last sync.",
        c.reconciled_kept,
        "",
    );
    metric(
        "oxr_fea_reconciled_removed",
        "gauge",
        "Routes removed by the last sync.",
        c.reconciled_removed,
        "",
    );
    s
}

/// A prefix, or an address taken as a host prefix.
pub fn parse_prefix_or_addr(s: &str) -> Result<IpNet, String> {
    if let Ok(p) = s.parse::<IpNet>() {
        return Ok(p.trunc());
    }
    s.parse::<std::net::IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("not a prefix or address: {s}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::none::NoneBackend;
    use crate::backend::Nexthop;
    use crate::fib::Batch;

    fn state() -> Arc<FeaState> {
        let mut fib = Fib::new(Box::new(NoneBackend::default()));
        fib.apply(Batch {
            seq: 1,
            add: vec![
                Route {
                    prefix: "10.0.0.0/8".parse().unwrap(),
                    nexthops: vec![Nexthop {
                        gateway: Some("192.0.2.1".parse().unwrap()),
                        ifindex: 3,
                        weight: 1,
                    }],
                    action: Action::Forward,
                    metric: 1,
                    protocol: "static".into(),
                },
                Route {
                    prefix: "2001:db8::/32".parse().unwrap(),
                    nexthops: vec![],
                    action: Action::Reject,
                    metric: 0,
                    protocol: "static".into(),
                },
            ],
            ..Default::default()
        });
        FeaState::new(fib, None)
    }

    #[tokio::test]
    async fn show_fib_longest_match_and_json() {
        let show = FeaShow::new(state());
        let out = show
            .show(&["fib".to_string(), "10.1.2.3".to_string()])
            .await
            .unwrap();
        assert!(out.text.contains("10.0.0.0/8"), "{}", out.text);
        assert!(out.text.contains("via 192.0.2.1 dev if3"), "{}", out.text);
        assert_eq!(out.json["routes"][0]["prefix"], "10.0.0.0/8");
        let all = show.show(&["fib".to_string()]).await.unwrap();
        assert!(all.text.contains("reject"));
        assert_eq!(all.json["total"], 2);
        let none = show
            .show(&["fib".to_string(), "192.0.2.0/24".to_string()])
            .await
            .unwrap();
        assert_eq!(none.text, "no route\n");
        assert!(show.show(&["fib".into(), "bogus".into()]).await.is_err());
    }

    #[tokio::test]
    async fn show_fea_and_metrics_report_counts() {
        let show = FeaShow::new(state());
        let out = show.show(&["fea".to_string()]).await.unwrap();
        assert!(out.text.contains("1 IPv4, 1 IPv6"), "{}", out.text);
        assert_eq!(out.json["counters"]["batches"], 1);
        let m = show.metrics().await;
        assert!(m.contains("oxr_fea_routes{family=\"ipv6\"} 1"), "{m}");
        assert!(m.contains("oxr_fea_batches_total 1"));
        assert_eq!(m.matches("# TYPE oxr_fea_routes ").count(), 1);
    }

    #[tokio::test]
    async fn status_reports_backend_and_counts() {
        let st = state().status().await;
        assert_eq!(st.backend, "none");
        assert_eq!((st.routes_ipv4, st.routes_ipv6, st.batches), (1, 1, 1));
        assert!(!st.rib_connected);
    }
}
