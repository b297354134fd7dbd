//! What goes to the RIB: a configured route as the route published, and the updates that
//! turn one published set into another.

use std::collections::BTreeMap;

use ipnet::IpNet;
use oxr_config::{StaticAction, StaticRoute, STATIC_DISTANCE};
use oxr_sdk::{Action, Nexthop, RibUpdate, Route};

/// The published routes, by prefix.
pub type RouteSet = BTreeMap<IpNet, Route>;

/// The route published for one configured static route.
///
/// A gateway is sent without an interface unless the config names one: resolving it
/// (recursively if it is not on a connected network) is the RIB's job. Next hops are
/// sorted so that reordering `via` in the config is not a change.
pub fn to_route(prefix: IpNet, r: &StaticRoute) -> Route {
    let (action, mut nexthops) = match r.action {
        StaticAction::Blackhole => (Action::Blackhole, vec![]),
        StaticAction::Reject => (Action::Reject, vec![]),
        StaticAction::Forward if r.via.is_empty() => (
            Action::Forward,
            r.interface.iter().map(Nexthop::interface).collect(),
        ),
        StaticAction::Forward => (
            Action::Forward,
            r.via
                .iter()
                .map(|gw| Nexthop {
                    gateway: Some(*gw),
                    interface: r.interface.clone(),
                    weight: 0,
                })
                .collect(),
        ),
    };
    nexthops.sort();
    nexthops.dedup();
    Route {
        prefix,
        nexthops,
        action,
        distance: r.distance.unwrap_or(STATIC_DISTANCE),
        metric: r.metric,
        tag: r.tag,
    }
}

/// The updates that turn `old` into `new`, in prefix order: a withdraw for each prefix
/// gone, an add for each prefix new or changed, nothing for the rest.
pub fn diff(old: &RouteSet, new: &RouteSet) -> Vec<RibUpdate> {
    let mut out = Vec::new();
    let mut o = old.iter().peekable();
    let mut n = new.iter().peekable();
    loop {
        match (o.peek(), n.peek()) {
            (None, None) => break,
            (Some((op, _)), Some((np, _))) if op < np => {
                out.push(RibUpdate::Withdraw(**op));
                o.next();
            }
            (Some(_), None) => {
                let (op, _) = o.next().expect("peeked");
                out.push(RibUpdate::Withdraw(*op));
            }
            (Some((op, or)), Some((np, nr))) if op == np => {
                if or != nr {
                    out.push(RibUpdate::Add((*nr).clone()));
                }
                o.next();
                n.next();
            }
            (_, Some(_)) => {
                let (_, nr) = n.next().expect("peeked");
                out.push(RibUpdate::Add(nr.clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn via(gws: &[&str]) -> StaticRoute {
        StaticRoute {
            via: gws.iter().map(|g| g.parse().unwrap()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn gateway_route_leaves_the_interface_to_the_rib() {
        let r = to_route(p("10.9.0.0/16"), &via(&["10.0.12.2"]));
        assert_eq!(r.nexthops, [Nexthop::gateway("10.0.12.2".parse().unwrap())]);
        assert_eq!(r.action, Action::Forward);
        assert_eq!(r.distance, STATIC_DISTANCE);
    }

    #[test]
    fn interface_route_and_gateway_with_interface() {
        let on_link = StaticRoute {
            interface: Some("eth1".into()),
            ..Default::default()
        };
        assert_eq!(
            to_route(p("10.1.0.0/16"), &on_link).nexthops,
            [Nexthop::interface("eth1")]
        );
        let both = StaticRoute {
            interface: Some("eth1".into()),
            ..via(&["10.0.12.2"])
        };
        let nh = &to_route(p("10.1.0.0/16"), &both).nexthops;
        assert_eq!(nh.len(), 1);
        assert_eq!(nh[0].gateway, Some("10.0.12.2".parse().unwrap()));
        assert_eq!(nh[0].interface.as_deref(), Some("eth1"));
    }

    #[test]
    fn blackhole_and_reject_have_no_next_hops() {
        for (action, want) in [
            (StaticAction::Blackhole, Action::Blackhole),
            (StaticAction::Reject, Action::Reject),
        ] {
            let r = to_route(
                p("192.0.2.0/24"),
                &StaticRoute {
                    action,
                    ..Default::default()
                },
            );
            assert_eq!(r.action, want);
            assert!(r.nexthops.is_empty());
        }
    }

    #[test]
    fn distance_metric_tag_and_ecmp_order() {
        let r = to_route(
            p("2001:db8:99::/48"),
            &StaticRoute {
                distance: Some(200),
                metric: 10,
                tag: 7,
                ..via(&["2001:db8::2", "2001:db8::1"])
            },
        );
        assert_eq!((r.distance, r.metric, r.tag), (200, 10, 7));
        let reordered = to_route(
            p("2001:db8:99::/48"),
            &StaticRoute {
                distance: Some(200),
                metric: 10,
                tag: 7,
                ..via(&["2001:db8::1", "2001:db8::2"])
            },
        );
        assert_eq!(r, reordered, "ECMP next hops are a set");
        assert_eq!(r.nexthops.len(), 2);
    }

    fn set(routes: &[(&str, &str)]) -> RouteSet {
        routes
            .iter()
            .map(|(pf, gw)| (p(pf), to_route(p(pf), &via(&[gw]))))
            .collect()
    }

    #[test]
    fn diff_sends_only_what_changed() {
        let old = set(&[
            ("10.1.0.0/16", "10.0.0.1"),
            ("10.2.0.0/16", "10.0.0.1"),
            ("10.3.0.0/16", "10.0.0.1"),
        ]);
        assert!(diff(&old, &old).is_empty());

        let added = set(&[
            ("10.1.0.0/16", "10.0.0.1"),
            ("10.2.0.0/16", "10.0.0.1"),
            ("10.2.5.0/24", "10.0.0.1"),
            ("10.3.0.0/16", "10.0.0.1"),
        ]);
        assert_eq!(
            diff(&old, &added),
            [RibUpdate::Add(added[&p("10.2.5.0/24")].clone())]
        );

        let regw = set(&[
            ("10.1.0.0/16", "10.0.0.1"),
            ("10.2.0.0/16", "10.0.0.9"),
            ("10.3.0.0/16", "10.0.0.1"),
        ]);
        assert_eq!(
            diff(&old, &regw),
            [RibUpdate::Add(regw[&p("10.2.0.0/16")].clone())]
        );

        let deleted = set(&[("10.1.0.0/16", "10.0.0.1"), ("10.3.0.0/16", "10.0.0.1")]);
        assert_eq!(
            diff(&old, &deleted),
            [RibUpdate::Withdraw(p("10.2.0.0/16"))]
        );

        assert_eq!(
            diff(&old, &RouteSet::new()),
            [
                RibUpdate::Withdraw(p("10.1.0.0/16")),
                RibUpdate::Withdraw(p("10.2.0.0/16")),
                RibUpdate::Withdraw(p("10.3.0.0/16")),
            ]
        );
        assert_eq!(diff(&RouteSet::new(), &old).len(), 3);
    }
}
