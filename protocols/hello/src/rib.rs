//! What goes to the RIB: every prefix heard, via the neighbour it was heard from, and the
//! updates that turn one published set into another.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};
use oxr_sdk::{Hello, Nexthop, RibUpdate, Route};

use crate::instance::Heard;

/// Administrative distance of hello routes (after RIP's 120).
pub const DISTANCE: u32 = 130;

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

/// The routes the origins heard add up to: each prefix not connected here, via the
/// neighbour its hello came from (the lowest origin wins a prefix two announce).
pub fn routes(origins: &BTreeMap<Ipv4Addr, Heard>, connected: &BTreeSet<Ipv4Net>) -> RouteSet {
    let mut set = RouteSet::new();
    for h in origins.values() {
        for p in h.prefixes.iter().filter(|p| !connected.contains(p)) {
            let nh = Nexthop {
                gateway: Some(IpAddr::V4(h.via)),
                interface: Some(h.ifname.clone()),
                weight: 0,
            };
            let mut r = Route::forward(IpNet::V4(*p), vec![nh]);
            r.distance = DISTANCE;
            set.entry(r.prefix).or_insert(r);
        }
    }
    set
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
