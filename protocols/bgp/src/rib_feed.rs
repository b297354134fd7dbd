//! What goes to oxr-rib: the instance's [`RibChange`]s as SDK routes.
//!
//! Every BGP next hop is handed over as a gateway without an interface, so the
//! RIB resolves it: through the connected subnet for single-hop eBGP, and
//! recursively through the IGP for iBGP and multihop eBGP. The distance is per
//! route (20 eBGP, 200 iBGP; the Hello's default is 20) and the metric is MED.

use oxr_sdk::{Hello, Nexthop, RibPublisher, RibUpdate, Route};

use crate::instance::{RibChange, RibRoute, DISTANCE_EBGP};

/// The Hello oxr-bgp sends: protocol "bgp", default distance 20.
pub fn hello() -> Hello {
    Hello {
        protocol: "bgp".into(),
        instance: String::new(),
        default_distance: DISTANCE_EBGP,
        stale_hold_secs: 0,
    }
}

/// The SDK route for a Loc-RIB best path.
pub fn to_route(r: &RibRoute) -> Route {
    let mut route = Route::forward(
        r.prefix,
        r.nexthops.iter().map(|a| Nexthop::gateway(*a)).collect(),
    );
    route.distance = r.distance;
    route.metric = r.metric;
    route
}

/// The SDK updates for one flush of the Loc-RIB, in order.
pub fn to_updates(changes: Vec<RibChange>) -> Vec<RibUpdate> {
    changes.into_iter().map(to_update).collect()
}

/// Queues one flush's changes on the publisher (which coalesces them per
/// prefix) in a single hand-off: a full table is ~1M changes, and one
/// cross-task message per route cost more than the routes themselves.
pub fn publish(p: &RibPublisher, changes: Vec<RibChange>) {
    if changes.is_empty() {
        return;
    }
    // Converted as the publisher takes them: a flush can hold a few hundred
    // thousand changes, and a second vector of SDK routes (each with its own
    // next-hop vector) was tens of MB at the peak.
    p.update_iter(changes.into_iter().map(to_update));
}

/// The SDK update for one change.
pub fn to_update(c: RibChange) -> RibUpdate {
    match c {
        RibChange::Add(r) => RibUpdate::Add(to_route(&r)),
        RibChange::Withdraw(prefix) => RibUpdate::Withdraw(prefix),
    }
}

/// Hands the publisher the whole Loc-RIB after it asked for a replay (oxr-rib
/// restarted; the publisher keeps no copy of the table).
pub fn replay(p: &RibPublisher, routes: impl Iterator<Item = RibRoute>) {
    p.replay(routes.map(|r| to_route(&r)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ibgp_route_keeps_distance_metric_and_gateway() {
        let r = RibRoute {
            prefix: "192.0.2.0/24".parse().unwrap(),
            nexthops: vec!["10.0.0.2".parse().unwrap()],
            recursive: true,
            distance: 200,
            metric: 7,
        };
        let x = to_route(&r);
        assert_eq!(x.distance, 200);
        assert_eq!(x.metric, 7);
        assert_eq!(
            x.nexthops,
            vec![Nexthop::gateway("10.0.0.2".parse().unwrap())]
        );
    }

    #[test]
    fn one_flush_becomes_updates_in_order() {
        let p: ipnet::IpNet = "192.0.2.0/24".parse().unwrap();
        let r = RibRoute {
            prefix: p,
            nexthops: vec!["10.0.0.2".parse().unwrap()],
            recursive: false,
            distance: 20,
            metric: 0,
        };
        let u = to_updates(vec![RibChange::Add(r.clone()), RibChange::Withdraw(p)]);
        assert_eq!(
            u,
            vec![RibUpdate::Add(to_route(&r)), RibUpdate::Withdraw(p)]
        );
    }
}
