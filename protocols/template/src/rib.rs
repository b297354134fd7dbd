//! What goes to the RIB: the configured routes, and the updates that turn one published
//! set into another.

use std::collections::BTreeMap;

use ipnet::IpNet;
use oxr_sdk::{Hello, Nexthop, RibUpdate, Route};

use crate::config::TemplateConfig;

/// Administrative distance of this protocol's routes (below RIP's 120: pick yours).
pub const DISTANCE: u32 = 150;

/// The published routes, by prefix.
pub type RouteSet = BTreeMap<IpNet, Route>;

/// The Publish stream's Hello: who we are to oxr-rib.
pub fn hello() -> Hello {
    Hello {
        protocol: crate::PROCESS.into(),
        instance: String::new(),
        default_distance: DISTANCE,
        stale_hold_secs: 0,
    }
}

/// The routes a section asks for.
pub fn configured_routes(cfg: Option<&TemplateConfig>) -> RouteSet {
    let Some(cfg) = cfg else {
        return RouteSet::new();
    };
    cfg.route
        .iter()
        .map(|(prefix, r)| {
            let mut route = Route::forward(*prefix, vec![Nexthop::gateway(r.via)]);
            route.distance = DISTANCE;
            route.metric = r.metric;
            (*prefix, route)
        })
        .collect()
}

/// Withdraws for prefixes gone, adds for prefixes new or changed, nothing for the rest.
pub fn diff(old: &RouteSet, new: &RouteSet) -> Vec<RibUpdate> {
    let gone = old
        .keys()
        .filter(|p| !new.contains_key(p))
        .map(|p| RibUpdate::Withdraw(*p));
    let changed = new
        .iter()
        .filter(|(p, r)| old.get(p) != Some(r))
        .map(|(_, r)| RibUpdate::Add(r.clone()));
    gone.chain(changed).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_sends_only_changes() {
        let cfg: TemplateConfig = serde_json::from_value(serde_json::json!({
            "route": {"10.99.0.0/24": {"via": "10.0.12.2"}, "10.98.0.0/24": {"via": "10.0.12.2"}}
        }))
        .unwrap();
        let a = configured_routes(Some(&cfg));
        assert_eq!(a.len(), 2);
        assert!(diff(&a, &a).is_empty());
        let mut b = a.clone();
        b.remove(&"10.98.0.0/24".parse().unwrap());
        assert_eq!(
            diff(&a, &b),
            [RibUpdate::Withdraw("10.98.0.0/24".parse().unwrap())]
        );
        assert_eq!(diff(&RouteSet::new(), &a).len(), 2);
    }
}
