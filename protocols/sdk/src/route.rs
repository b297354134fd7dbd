//! Routes as a protocol sees them (`std::net`/`ipnet` types, serde for snapshot files), the
//! updates a protocol instance produces for the RIB, and the sink it writes them into.
//!
//! An instance's event loop writes into a [`RibSink`]: in the process that is a
//! [`RibPublisher`](crate::rib_client::RibPublisher), in a test a `Vec<RibUpdate>` that the
//! test compares against an expected file. That is what keeps protocol logic testable
//! without sockets.

use std::net::IpAddr;

use ipnet::IpNet;
use oxr_proto::convert::{req_prefix, ConvertError};
use oxr_proto::types::{self as wire, RouteAction};
use oxr_proto::{rib, types};
use serde::{Deserialize, Serialize};

/// One way out for a route. A gateway without an interface is resolved by the RIB
/// (recursively if needed); an interface without a gateway means the destination is on-link.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Nexthop {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// ECMP weight; 0 means 1.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub weight: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl Nexthop {
    /// Via a gateway, interface left to the RIB's resolution.
    pub fn gateway(gw: IpAddr) -> Self {
        Nexthop {
            gateway: Some(gw),
            interface: None,
            weight: 0,
        }
    }

    /// Directly out of an interface (destination on-link).
    pub fn interface(name: impl Into<String>) -> Self {
        Nexthop {
            gateway: None,
            interface: Some(name.into()),
            weight: 0,
        }
    }

    /// The wire form.
    pub fn to_proto(&self) -> types::Nexthop {
        types::Nexthop {
            gateway: self.gateway.map(wire::IpAddress::from),
            interface: self.interface.clone().unwrap_or_default(),
            weight: self.weight,
        }
    }

    /// From the wire form.
    pub fn from_proto(nh: &types::Nexthop) -> Result<Self, ConvertError> {
        Ok(Nexthop {
            gateway: nh.gateway.as_ref().map(IpAddr::try_from).transpose()?,
            interface: (!nh.interface.is_empty()).then(|| nh.interface.clone()),
            weight: nh.weight,
        })
    }
}

/// What a route does with a packet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// To its next hops.
    #[default]
    Forward,
    /// Drop silently.
    Blackhole,
    /// Drop with ICMP unreachable.
    Reject,
}

impl Action {
    /// The wire form.
    pub fn to_proto(self) -> RouteAction {
        match self {
            Action::Forward => RouteAction::Forward,
            Action::Blackhole => RouteAction::Blackhole,
            Action::Reject => RouteAction::Reject,
        }
    }

    /// From the wire form (unknown values are taken as forward, proto3's default).
    pub fn from_proto(a: i32) -> Self {
        match RouteAction::try_from(a) {
            Ok(RouteAction::Blackhole) => Action::Blackhole,
            Ok(RouteAction::Reject) => Action::Reject,
            _ => Action::Forward,
        }
    }

    /// Lower-case name, as shown by show commands.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Forward => "forward",
            Action::Blackhole => "blackhole",
            Action::Reject => "reject",
        }
    }
}

/// A route as a protocol publishes it: one per prefix per publisher.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Route {
    pub prefix: IpNet,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nexthops: Vec<Nexthop>,
    #[serde(default)]
    pub action: Action,
    /// Administrative distance; 0 means the publisher's default (its Hello).
    #[serde(default)]
    pub distance: u32,
    #[serde(default)]
    pub metric: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tag: u32,
}

impl Route {
    /// A forwarding route with the given next hops, default distance, metric 0.
    pub fn forward(prefix: IpNet, nexthops: Vec<Nexthop>) -> Self {
        Route {
            prefix,
            nexthops,
            action: Action::Forward,
            distance: 0,
            metric: 0,
            tag: 0,
        }
    }

    /// The wire form.
    pub fn to_proto(&self) -> rib::Route {
        rib::Route {
            prefix: Some(self.prefix.into()),
            nexthops: self.nexthops.iter().map(Nexthop::to_proto).collect(),
            action: self.action.to_proto() as i32,
            distance: self.distance,
            metric: self.metric,
            tag: self.tag,
        }
    }

    /// From the wire form.
    pub fn from_proto(r: &rib::Route) -> Result<Self, ConvertError> {
        Ok(Route {
            prefix: req_prefix(r.prefix.as_ref(), "prefix")?,
            nexthops: r
                .nexthops
                .iter()
                .map(Nexthop::from_proto)
                .collect::<Result<_, _>>()?,
            action: Action::from_proto(r.action),
            distance: r.distance,
            metric: r.metric,
            tag: r.tag,
        })
    }
}

/// One output of a protocol instance towards the RIB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RibUpdate {
    /// Add or replace the route for its prefix.
    Add(Route),
    /// Remove the route for this prefix.
    Withdraw(IpNet),
    /// The initial state has been sent.
    EndOfRib,
}

/// Where a protocol instance writes its RIB updates.
pub trait RibSink {
    /// Add or replace the route for `route.prefix`.
    fn add(&mut self, route: Route);
    /// Remove the route for `prefix` (no-op if there is none).
    fn withdraw(&mut self, prefix: IpNet);
    /// The initial state has been sent.
    fn end_of_rib(&mut self);

    /// Applies one update.
    fn apply(&mut self, update: RibUpdate) {
        match update {
            RibUpdate::Add(r) => self.add(r),
            RibUpdate::Withdraw(p) => self.withdraw(p),
            RibUpdate::EndOfRib => self.end_of_rib(),
        }
    }
}

impl RibSink for Vec<RibUpdate> {
    fn add(&mut self, route: Route) {
        self.push(RibUpdate::Add(route));
    }
    fn withdraw(&mut self, prefix: IpNet) {
        self.push(RibUpdate::Withdraw(prefix));
    }
    fn end_of_rib(&mut self) {
        self.push(RibUpdate::EndOfRib);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_round_trips_through_the_wire_form() {
        let r = Route {
            prefix: "10.1.0.0/16".parse().unwrap(),
            nexthops: vec![
                Nexthop::gateway("192.0.2.1".parse().unwrap()),
                Nexthop {
                    gateway: Some("192.0.2.2".parse().unwrap()),
                    interface: Some("eth1".into()),
                    weight: 3,
                },
                Nexthop::interface("eth2"),
            ],
            action: Action::Forward,
            distance: 5,
            metric: 7,
            tag: 9,
        };
        let wire = r.to_proto();
        assert_eq!(wire.nexthops[0].interface, "");
        assert!(wire.nexthops[2].gateway.is_none());
        assert_eq!(Route::from_proto(&wire).unwrap(), r);
        let bh = Route {
            action: Action::Reject,
            nexthops: vec![],
            ..r
        };
        assert_eq!(bh.to_proto().action, RouteAction::Reject as i32);
        assert_eq!(Route::from_proto(&bh.to_proto()).unwrap(), bh);
    }

    #[test]
    fn route_without_prefix_is_an_error() {
        let wire = rib::Route::default();
        assert_eq!(
            Route::from_proto(&wire),
            Err(ConvertError::Missing("prefix"))
        );
    }

    #[test]
    fn updates_serialize_readably() {
        let u = vec![
            RibUpdate::Add(Route::forward(
                "10.0.0.0/8".parse().unwrap(),
                vec![Nexthop::gateway("10.1.1.1".parse().unwrap())],
            )),
            RibUpdate::Withdraw("10.2.0.0/16".parse().unwrap()),
            RibUpdate::EndOfRib,
        ];
        let json = serde_json::to_value(&u).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"add": {"prefix": "10.0.0.0/8", "nexthops": [{"gateway": "10.1.1.1"}],
                         "action": "forward", "distance": 0, "metric": 0}},
                {"withdraw": "10.2.0.0/16"},
                "end-of-rib"
            ])
        );
        let back: Vec<RibUpdate> = serde_json::from_value(json).unwrap();
        assert_eq!(back, u);
    }
}
