//! Next-hop resolution: turning a selected route's published next hops into the
//! (gateway, interface) pairs the FEA installs.
//!
//! Levels, so that resolution can never loop:
//! - `Direct`: every next hop carries an interface (connected routes, static routes out of
//!   an interface). Needs nothing else.
//! - `ViaDirect`: every gateway-only next hop's longest match among `Direct` routes exists
//!   ("resolves through connected"). Depends on `Direct` routes only.
//! - `Recursive`: resolved, but through something that is itself not `Direct`.
//!
//! A gateway resolves by its longest match among `Direct` and `ViaDirect` routes (never
//! through a `Recursive` route, never through the route being resolved). Because `ViaDirect`
//! depends only on `Direct` routes, the dependency graph has no cycles and re-resolution
//! after a change always terminates.

use std::net::IpAddr;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::selection::Selected;
use crate::table::{Action, ClientId, Entry, FibNexthop, FibNhSet, Key, Table};

/// How a selected route resolved; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Level {
    /// Every next hop carries an interface.
    Direct,
    /// Resolves through `Direct` routes.
    ViaDirect,
    /// Resolves through a `ViaDirect` route.
    Recursive,
}

/// The result of resolving a selected route.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Resolution {
    /// None for blackhole/reject routes (installed, but nothing resolves through them).
    pub level: Option<Level>,
    /// What goes to the FIB.
    pub nexthops: FibNhSet,
}

impl Resolution {
    /// Whether gateways may resolve through this route.
    pub fn eligible(&self) -> bool {
        matches!(self.level, Some(Level::Direct | Level::ViaDirect))
    }
}

/// How one address (a gateway or a watched next hop) resolves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    /// The route it resolves through (its longest eligible match).
    pub route: Key,
    /// That route's origin.
    pub client: ClientId,
    /// That route's metric (the IGP cost to the address).
    pub metric: u32,
    /// Directly connected next hops towards the address.
    pub nexthops: FibNhSet,
}

/// Whether a selected route needs no resolution (every next hop has an interface).
pub fn is_direct(sel: &Selected) -> bool {
    sel.action == Action::Forward
        && !sel.nexthops.is_empty()
        && sel.nexthops.iter().all(|n| n.interface.is_some())
}

fn entry_is_direct(e: &Entry) -> bool {
    matches!(
        e.res.as_deref(),
        Some(Resolution {
            level: Some(Level::Direct),
            ..
        })
    )
}

fn entry_is_eligible(e: &Entry) -> bool {
    e.res.as_deref().is_some_and(Resolution::eligible)
}

/// Longest match of `addr` among `Direct` routes.
pub fn lpm_direct(table: &Table, addr: IpAddr) -> Option<Key> {
    table
        .longest_match(Key::host(addr), |_, e| entry_is_direct(e))
        .map(|(k, _)| k)
}

/// Longest match of `addr` among routes gateways may resolve through, except `exclude`.
pub fn lpm_eligible(table: &Table, addr: IpAddr, exclude: Option<Key>) -> Option<Via> {
    let (key, e) = table.longest_match(Key::host(addr), |k, e| {
        Some(*k) != exclude && entry_is_eligible(e)
    })?;
    Some(via_for(addr, key, e))
}

/// The answer for `addr` resolving through route `key`: its resolved next hops, with
/// on-link ones (no gateway) pointed at `addr` itself.
pub fn via_for(addr: IpAddr, key: Key, e: &Entry) -> Via {
    let sel = e.sel.as_ref().expect("eligible entries are selected");
    let res = e.res.as_ref().expect("eligible entries are resolved");
    let nexthops = if res.nexthops.iter().all(|n| n.gateway.is_some()) {
        res.nexthops.clone()
    } else {
        res.nexthops
            .iter()
            .map(|n| FibNexthop {
                gateway: n.gateway.or(Some(addr)),
                ..n.clone()
            })
            .collect()
    };
    Via {
        route: key,
        client: sel.primary,
        metric: sel.metric,
        nexthops,
    }
}

/// What resolution needs to know about one gateway: whether it has a `Direct` match, and
/// its eligible match (if any).
#[derive(Clone, Debug, Default)]
pub struct GatewayAnswer {
    /// A `Direct` route contains the gateway.
    pub direct: bool,
    /// The eligible route it resolves through.
    pub via: Option<Via>,
}

/// Resolves a selected route. `ifindex` names interfaces; `gateway` answers for each
/// gateway-only next hop. None means unresolvable: kept in the RIB, held back from the FIB.
pub fn resolve<F, G>(
    sel: &Selected,
    ecmp_width: usize,
    ifindex: F,
    mut gateway: G,
) -> Option<Resolution>
where
    F: Fn(&str) -> u32,
    G: FnMut(IpAddr) -> GatewayAnswer,
{
    if sel.action != Action::Forward {
        return Some(Resolution {
            level: None,
            nexthops: Arc::from(Vec::new()),
        });
    }
    let width = ecmp_width.max(1);
    if let [nh] = &*sel.nexthops {
        if nh.interface.is_none() {
            // The common case (one recursive or adjacent gateway): share the gateway's set.
            let ans = gateway(nh.gateway?);
            let via = ans.via?;
            return Some(Resolution {
                level: Some(if ans.direct {
                    Level::ViaDirect
                } else {
                    Level::Recursive
                }),
                nexthops: via.nexthops,
            });
        }
    }
    let mut out: SmallVec<[FibNexthop; 8]> = SmallVec::new();
    let mut all_interface = true;
    let mut all_direct = true;
    for nh in sel.nexthops.iter() {
        let add = |out: &mut SmallVec<[FibNexthop; 8]>, f: FibNexthop| {
            if out.len() < width && !out.contains(&f) {
                out.push(f);
            }
        };
        match (&nh.interface, nh.gateway) {
            (Some(name), gw) => add(
                &mut out,
                FibNexthop {
                    gateway: gw,
                    ifindex: ifindex(name),
                    interface: name.clone(),
                    weight: nh.weight,
                },
            ),
            (None, Some(gw)) => {
                all_interface = false;
                let ans = gateway(gw);
                all_direct &= ans.direct;
                match ans.via {
                    Some(via) => {
                        for f in via.nexthops.iter() {
                            add(&mut out, f.clone());
                        }
                    }
                    None => all_direct = false,
                }
            }
            (None, None) => all_interface = false,
        }
    }
    if out.is_empty() {
        return None;
    }
    let level = if all_interface {
        Level::Direct
    } else if all_direct {
        Level::ViaDirect
    } else {
        Level::Recursive
    };
    Some(Resolution {
        level: Some(level),
        nexthops: out.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Nexthop;

    fn sel(nhs: Vec<Nexthop>) -> Selected {
        Selected {
            primary: 1,
            distance: 1,
            metric: 0,
            tag: 0,
            action: Action::Forward,
            nexthops: nhs.into(),
        }
    }

    fn gw(s: &str) -> Nexthop {
        Nexthop {
            gateway: Some(s.parse().unwrap()),
            interface: None,
            weight: 0,
        }
    }

    fn fib(gw: &str, ifindex: u32, name: &str) -> FibNexthop {
        FibNexthop {
            gateway: Some(gw.parse().unwrap()),
            ifindex,
            interface: name.into(),
            weight: 0,
        }
    }

    #[test]
    fn interface_next_hops_are_direct() {
        let s = sel(vec![Nexthop {
            gateway: None,
            interface: Some("eth0".into()),
            weight: 0,
        }]);
        let r = resolve(&s, 8, |_| 7, |_| panic!("no gateway to resolve")).unwrap();
        assert_eq!(r.level, Some(Level::Direct));
        assert_eq!(r.nexthops[0].ifindex, 7);
        assert!(r.eligible());
    }

    #[test]
    fn gateways_take_their_via_next_hops_and_level() {
        let via = Via {
            route: Key::from("10.0.0.0/24".parse::<ipnet::IpNet>().unwrap()),
            client: 0,
            metric: 0,
            nexthops: vec![fib("10.0.0.1", 2, "eth0")].into(),
        };
        let s = sel(vec![gw("10.0.0.1")]);
        let v = via.clone();
        let r = resolve(
            &s,
            8,
            |_| 0,
            |_| GatewayAnswer {
                direct: true,
                via: Some(v.clone()),
            },
        )
        .unwrap();
        assert_eq!(r.level, Some(Level::ViaDirect));
        assert!(Arc::ptr_eq(&r.nexthops, &via.nexthops));
        let r = resolve(
            &s,
            8,
            |_| 0,
            |_| GatewayAnswer {
                direct: false,
                via: Some(via.clone()),
            },
        )
        .unwrap();
        assert_eq!(r.level, Some(Level::Recursive));
        assert!(!r.eligible());
        assert!(resolve(&s, 8, |_| 0, |_| GatewayAnswer::default()).is_none());
    }

    #[test]
    fn ecmp_keeps_resolvable_gateways_up_to_width() {
        let s = sel(vec![gw("10.0.0.1"), gw("10.9.9.9"), gw("10.0.1.1")]);
        let r = resolve(
            &s,
            8,
            |_| 0,
            |g| {
                let ip = g.to_string();
                if ip == "10.9.9.9" {
                    return GatewayAnswer::default();
                }
                GatewayAnswer {
                    direct: true,
                    via: Some(Via {
                        route: Key::host(g),
                        client: 0,
                        metric: 0,
                        nexthops: vec![fib(&ip, 2, "eth0")].into(),
                    }),
                }
            },
        )
        .unwrap();
        assert_eq!(
            &*r.nexthops,
            &[fib("10.0.0.1", 2, "eth0"), fib("10.0.1.1", 2, "eth0")]
        );
        assert_eq!(
            r.level,
            Some(Level::Recursive),
            "one gateway did not resolve"
        );
    }

    #[test]
    fn blackhole_needs_no_next_hops() {
        let mut s = sel(vec![]);
        s.action = Action::Blackhole;
        let r = resolve(&s, 8, |_| 0, |_| GatewayAnswer::default()).unwrap();
        assert_eq!(r.level, None);
        assert!(!r.eligible());
    }
}
