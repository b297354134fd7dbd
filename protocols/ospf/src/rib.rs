//! What goes to the RIB: the instance's route outputs as SDK routes, the Hello that names
//! this publisher, and when the initial table is complete (end-of-RIB).

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};
use oxr_sdk::{Hello, Nexthop, RibSink, Route};

use crate::instance::{Instance, Output, RibRoute, DISTANCE};
use crate::neighbor::NbrState;

/// The Publish stream's Hello: protocol "ospf", distance 110.
pub fn hello() -> Hello {
    Hello {
        protocol: "ospf".to_string(),
        instance: String::new(),
        default_distance: DISTANCE,
        stale_hold_secs: 0,
    }
}

/// An OSPF route as an SDK route: every next hop carries its interface, so the RIB needs
/// no recursive resolution; distance is left to the Hello's default.
pub fn to_route(prefix: Ipv4Net, r: &RibRoute) -> Route {
    let mut route = Route::forward(
        IpNet::V4(prefix),
        r.nexthops
            .iter()
            .map(|nh| Nexthop {
                gateway: nh.gateway.map(IpAddr::V4),
                interface: Some(nh.ifname.clone()),
                weight: 0,
            })
            .collect(),
    );
    route.metric = r.metric;
    route
}

/// Passes the instance's route outputs to the RIB; returns true if `o` was one.
pub fn apply(sink: &mut impl RibSink, o: &Output) -> bool {
    match o {
        Output::RouteAdd { prefix, route } => {
            sink.add(to_route(*prefix, route));
            true
        }
        Output::RouteWithdraw { prefix } => {
            sink.withdraw(IpNet::V4(*prefix));
            true
        }
        _ => false,
    }
}

/// Decides when the initial routing table is complete, so that end-of-RIB (which lets the
/// RIB sweep routes a previous run left stale) is not sent before the adjacencies that will
/// re-learn them are up.
#[derive(Debug, Clone)]
pub struct EndOfRibGate {
    started: u64,
    sent: bool,
}

/// Longest wait for the initial convergence (ms).
pub const END_OF_RIB_MAX_WAIT_MS: u64 = 60_000;

impl EndOfRibGate {
    /// Started at `now` (ms).
    pub fn new(now: u64) -> Self {
        EndOfRibGate {
            started: now,
            sent: false,
        }
    }

    /// True exactly once: when end-of-RIB should be sent. Converged means: at least one
    /// Hello interval (plus a second) has passed since start so neighbors were heard, no
    /// neighbor is between Init and Loading, and SPF has run since the last change.
    pub fn check(&mut self, inst: &Instance, now: u64) -> bool {
        if self.sent {
            return false;
        }
        let elapsed = now.saturating_sub(self.started);
        let hello_wait = inst
            .interfaces()
            .iter()
            .filter(|i| !i.passive)
            .map(|i| u64::from(i.hello_interval) * 1000 + 1000)
            .max()
            .unwrap_or(0);
        let settled = inst
            .neighbors()
            .iter()
            .all(|n| matches!(n.state, NbrState::TwoWay | NbrState::Full) && n.requests == 0);
        let spf_done = !inst.spf_pending();
        if elapsed >= END_OF_RIB_MAX_WAIT_MS
            || (elapsed >= hello_wait && settled && spf_done && inst.router_id().is_some())
        {
            self.sent = true;
            return true;
        }
        false
    }
}
