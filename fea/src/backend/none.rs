//! The `none` backend: the FIB in memory only, for running without privileges and for
//! measuring the pipeline without the kernel.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use ipnet::IpNet;

use super::{Action, BackendError, BackendStatus, FibBackend, FibOp, Nexthop, Route};

/// Everything of a route but its prefix; a full table shares a handful of these.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Attrs {
    nexthops: Vec<Nexthop>,
    action: Action,
    metric: u32,
    protocol: String,
}

impl Attrs {
    fn matches(&self, r: &Route) -> bool {
        self.action == r.action
            && self.metric == r.metric
            && self.nexthops == r.nexthops
            && self.protocol == r.protocol
    }
}

/// Routes kept in a map; nothing is programmed. Route attributes are interned, so a
/// route costs its map entry and no allocation of its own.
#[derive(Debug, Default)]
pub struct NoneBackend {
    routes: BTreeMap<IpNet, Arc<Attrs>>,
    attrs: HashSet<Arc<Attrs>>,
    /// The attributes of the last add: consecutive routes usually share them.
    last: Option<Arc<Attrs>>,
    collected_at: usize,
    v4: u64,
}

impl NoneBackend {
    fn intern(&mut self, r: &Route) -> Arc<Attrs> {
        if let Some(a) = self.last.as_ref().filter(|a| a.matches(r)) {
            return a.clone();
        }
        let attrs = Attrs {
            nexthops: r.nexthops.clone(),
            action: r.action,
            metric: r.metric,
            protocol: r.protocol.clone(),
        };
        let a = match self.attrs.get(&attrs) {
            Some(a) => a.clone(),
            None => {
                // Drop sets no route uses any more, once the interner has doubled.
                if self.attrs.len() >= 2 * self.collected_at + 1024 {
                    self.attrs.retain(|a| Arc::strong_count(a) > 1);
                    self.collected_at = self.attrs.len();
                }
                let a = Arc::new(attrs);
                self.attrs.insert(a.clone());
                a
            }
        };
        self.last = Some(a.clone());
        a
    }
}

fn route(prefix: IpNet, a: &Attrs) -> Route {
    Route {
        prefix,
        nexthops: a.nexthops.clone(),
        action: a.action,
        metric: a.metric,
        protocol: a.protocol.clone(),
    }
}

impl FibBackend for NoneBackend {
    fn name(&self) -> &'static str {
        "none"
    }

    fn apply(&mut self, ops: &[FibOp]) -> Vec<Result<(), String>> {
        for op in ops {
            match op {
                FibOp::Add(r) => {
                    let a = self.intern(r);
                    if self.routes.insert(r.prefix, a).is_none() && r.prefix.addr().is_ipv4() {
                        self.v4 += 1;
                    }
                }
                FibOp::Delete(p) => {
                    if self.routes.remove(p).is_some() && p.addr().is_ipv4() {
                        self.v4 -= 1;
                    }
                }
            }
        }
        vec![Ok(()); ops.len()]
    }

    fn load_existing(&mut self) -> Result<usize, BackendError> {
        Ok(0)
    }

    fn routes(&self) -> Vec<Route> {
        self.routes.iter().map(|(p, a)| route(*p, a)).collect()
    }

    fn get(&self, prefix: &IpNet) -> Option<Route> {
        self.routes.get(prefix).map(|a| route(*prefix, a))
    }

    fn prefixes(&self) -> Vec<IpNet> {
        self.routes.keys().copied().collect()
    }

    fn status(&self) -> BackendStatus {
        BackendStatus {
            backend: "none".into(),
            routes_ipv4: self.v4,
            routes_ipv6: self.routes.len() as u64 - self.v4,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(p: &str) -> Route {
        Route {
            prefix: p.parse().unwrap(),
            nexthops: vec![],
            action: Action::Blackhole,
            metric: 0,
            protocol: "static".into(),
        }
    }

    #[test]
    fn adds_replaces_and_deletes() {
        let mut b = NoneBackend::default();
        let r = b.apply(&[
            FibOp::Add(route("10.0.0.0/8")),
            FibOp::Add(route("2001:db8::/32")),
            FibOp::Add(route("10.0.0.0/8")),
        ]);
        assert!(r.iter().all(Result::is_ok));
        assert_eq!(b.status().routes_ipv4, 1);
        assert_eq!(b.status().routes_ipv6, 1);
        b.apply(&[
            FibOp::Delete("10.0.0.0/8".parse().unwrap()),
            FibOp::Delete("192.0.2.0/24".parse().unwrap()),
        ]);
        assert_eq!(
            b.prefixes(),
            vec!["2001:db8::/32".parse::<IpNet>().unwrap()]
        );
        assert_eq!(b.status().routes_ipv4, 0);
    }

    #[test]
    fn routes_sharing_attributes_share_one_copy() {
        let mut b = NoneBackend::default();
        b.apply(&[
            FibOp::Add(route("10.0.0.0/8")),
            FibOp::Add(route("11.0.0.0/8")),
            FibOp::Add(Route {
                metric: 5,
                ..route("12.0.0.0/8")
            }),
            FibOp::Add(route("13.0.0.0/8")),
        ]);
        assert_eq!(b.attrs.len(), 2);
        assert_eq!(b.get(&"12.0.0.0/8".parse().unwrap()).unwrap().metric, 5);
        assert_eq!(
            b.get(&"13.0.0.0/8".parse().unwrap()),
            Some(route("13.0.0.0/8"))
        );
        assert_eq!(b.routes().len(), 4);
    }
}
