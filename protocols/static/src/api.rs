//! `show static routes`: the applied static routes, as a table and as JSON.

use std::fmt::Write;
use std::sync::Arc;

use oxr_sdk::rib_client::PublisherStatus;
use oxr_sdk::{Nexthop, RibPublisher, Route, ShowHandler, ShowOutput};
use tokio::sync::watch;

use crate::rib::RouteSet;

/// The show commands of oxr-static.
pub struct StaticShow {
    routes: watch::Receiver<Arc<RouteSet>>,
    rib: Option<RibPublisher>,
}

impl StaticShow {
    /// Shows the route set in `routes` and the state of the RIB publisher, if any.
    pub fn new(routes: watch::Receiver<Arc<RouteSet>>, rib: Option<RibPublisher>) -> Self {
        StaticShow { routes, rib }
    }
}

fn nexthop_text(nh: &Nexthop) -> String {
    match (&nh.gateway, &nh.interface) {
        (Some(gw), Some(ifname)) => format!("via {gw} dev {ifname}"),
        (Some(gw), None) => format!("via {gw}"),
        (None, Some(ifname)) => format!("dev {ifname}"),
        (None, None) => "-".into(),
    }
}

/// The table people read.
pub fn routes_text(routes: &RouteSet, rib: Option<&PublisherStatus>) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<24} {:<9} {:>8} {:>6}  Next hops",
        "Prefix", "Action", "Distance", "Metric"
    );
    for r in routes.values() {
        let nhs = if r.nexthops.is_empty() {
            "-".to_string()
        } else {
            r.nexthops
                .iter()
                .map(nexthop_text)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            t,
            "{:<24} {:<9} {:>8} {:>6}  {}",
            r.prefix.to_string(),
            r.action.as_str(),
            r.distance,
            r.metric,
            nhs
        );
    }
    let _ = write!(
        t,
        "{} route{}",
        routes.len(),
        if routes.len() == 1 { "" } else { "s" }
    );
    if let Some(s) = rib {
        let state = match (s.connected, s.end_of_rib_sent) {
            (true, true) => "connected, end-of-RIB sent",
            (true, false) => "connected",
            (false, _) => "not connected (retrying)",
        };
        let _ = write!(t, "; RIB: {state}");
    }
    t.push('\n');
    t
}

/// The same as JSON (`StaticRouteState` fields of proto/static.proto).
pub fn routes_json(routes: &RouteSet, rib: Option<&PublisherStatus>) -> serde_json::Value {
    let list: Vec<&Route> = routes.values().collect();
    let mut v = serde_json::json!({ "routes": list });
    if let Some(s) = rib {
        v["rib"] = serde_json::json!({
            "connected": s.connected,
            "end-of-rib-sent": s.end_of_rib_sent,
            "connections": s.connections,
            "batches-sent": s.batches_sent,
        });
    }
    v
}

#[tonic::async_trait]
impl ShowHandler for StaticShow {
    fn commands(&self) -> Vec<(Vec<&'static str>, &'static str)> {
        vec![(
            vec!["static", "routes"],
            "Configured static routes as published to the RIB",
        )]
    }

    async fn show(&self, words: &[String]) -> Result<ShowOutput, String> {
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["static", "routes"] => {
                let routes = self.routes.borrow().clone();
                let status = self.rib.as_ref().map(RibPublisher::status);
                Ok(ShowOutput {
                    text: routes_text(&routes, status.as_ref()),
                    json: routes_json(&routes, status.as_ref()),
                })
            }
            _ => Err(format!("unknown command: show {}", words.join(" "))),
        }
    }

    async fn metrics(&self) -> String {
        let mut m = String::new();
        let _ = writeln!(m, "# TYPE oxr_static_routes gauge");
        let _ = writeln!(m, "oxr_static_routes {}", self.routes.borrow().len());
        if let Some(s) = self.rib.as_ref().map(RibPublisher::status) {
            let _ = writeln!(m, "# TYPE oxr_static_rib_connected gauge");
            let _ = writeln!(m, "oxr_static_rib_connected {}", u8::from(s.connected));
            let _ = writeln!(m, "# TYPE oxr_static_rib_batches_sent counter");
            let _ = writeln!(m, "oxr_static_rib_batches_sent {}", s.batches_sent);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rib::to_route;
    use oxr_config::{StaticAction, StaticRoute};

    #[tokio::test]
    async fn show_static_routes_lists_every_route() {
        let mut set = RouteSet::new();
        let p = "10.9.0.0/16".parse().unwrap();
        set.insert(
            p,
            to_route(
                p,
                &StaticRoute {
                    via: vec!["10.0.12.2".parse().unwrap()],
                    interface: Some("eth1".into()),
                    ..Default::default()
                },
            ),
        );
        let q = "192.0.2.0/24".parse().unwrap();
        set.insert(
            q,
            to_route(
                q,
                &StaticRoute {
                    action: StaticAction::Reject,
                    ..Default::default()
                },
            ),
        );
        let (_tx, rx) = watch::channel(Arc::new(set));
        let show = StaticShow::new(rx, None);
        let out = show
            .show(&["static".to_string(), "routes".to_string()])
            .await
            .unwrap();
        assert!(out.text.contains("via 10.0.12.2 dev eth1"), "{}", out.text);
        assert!(out.text.contains("reject"), "{}", out.text);
        assert!(out.text.ends_with("2 routes\n"), "{}", out.text);
        assert_eq!(out.json["routes"][0]["prefix"], "10.9.0.0/16");
        assert_eq!(out.json["routes"][1]["action"], "reject");
        assert!(show.show(&["static".to_string()]).await.is_err());
        assert!(show.metrics().await.contains("oxr_static_routes 2"));
    }
}
