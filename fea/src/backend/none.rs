//! The `none` backend: the FIB in memory only, for running without privileges and for
//! measuring the pipeline without the kernel.

use ipnet::IpNet;

use super::{Action, BackendError, BackendStatus, FibBackend, FibOp, Nexthop, Route, SYNC_MARK};
use crate::table::{Interner, PrefixMap, Slot};

/// Everything of a route but its prefix; a full table shares a handful of these.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Attrs {
    nexthops: Vec<Nexthop>,
    action: Action,
    metric: u32,
    protocol: String,
}

impl Attrs {
    fn of(r: &Route) -> Self {
        Attrs {
            nexthops: r.nexthops.clone(),
            action: r.action,
            metric: r.metric,
            protocol: r.protocol.clone(),
        }
    }

    fn matches(&self, r: &Route) -> bool {
        self.action == r.action
            && self.metric == r.metric
            && self.nexthops == r.nexthops
            && self.protocol == r.protocol
    }
}

/// Routes kept in a compact prefix map; nothing is programmed. Route attributes are
/// interned, so a route costs its 10 or 22-byte record and no allocation of its own.
#[derive(Debug, Default)]
pub struct NoneBackend {
    routes: PrefixMap,
    attrs: Interner<Attrs>,
    /// The attribute id of the last add: consecutive routes usually share them.
    last: Option<u32>,
}

impl NoneBackend {
    fn intern(&mut self, r: &Route) -> u32 {
        let id = match self
            .last
            .filter(|&i| self.attrs.get(i).is_some_and(|a| a.matches(r)))
        {
            Some(i) => {
                self.attrs.acquire_id(i);
                i
            }
            None => self.attrs.acquire(&Attrs::of(r)),
        };
        self.last = Some(id);
        id
    }

    fn route(&self, prefix: IpNet, s: Slot) -> Route {
        match self.attrs.get(s.val()) {
            Some(a) => Route {
                prefix,
                nexthops: a.nexthops.clone(),
                action: a.action,
                metric: a.metric,
                protocol: a.protocol.clone(),
            },
            None => Route {
                prefix,
                nexthops: Vec::new(),
                action: Action::Forward,
                metric: 0,
                protocol: String::new(),
            },
        }
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
                    if let Some(old) = self.routes.insert(r.prefix, Slot::new(a, SYNC_MARK)) {
                        self.attrs.release(old.val());
                    }
                }
                FibOp::Delete(p) => {
                    if let Some(old) = self.routes.remove(p) {
                        self.attrs.release(old.val());
                    }
                }
            }
        }
        vec![Ok(()); ops.len()]
    }

    fn load_existing(&mut self) -> Result<usize, BackendError> {
        Ok(0)
    }

    fn routes_page(&self, after: Option<&IpNet>, limit: usize) -> Vec<Route> {
        self.routes
            .page(after, limit)
            .into_iter()
            .map(|(p, s)| self.route(p, s))
            .collect()
    }

    fn get(&self, prefix: &IpNet) -> Option<Route> {
        self.routes.get(prefix).map(|s| self.route(*prefix, s))
    }

    fn sync_begin(&mut self) {
        self.routes.for_each_mut(|s| s.flags &= !SYNC_MARK);
    }

    fn stale_page(&self, after: Option<&IpNet>, limit: usize) -> Vec<IpNet> {
        super::unmarked_page(&self.routes, after, limit)
    }

    fn status(&self) -> BackendStatus {
        let v4 = self.routes.len_v4() as u64;
        BackendStatus {
            backend: "none".into(),
            routes_ipv4: v4,
            routes_ipv6: self.routes.len() as u64 - v4,
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
