//! The `none` backend: the FIB in memory only, for running without privileges and for
//! measuring the pipeline without the kernel.

use std::collections::BTreeMap;

use ipnet::IpNet;

use super::{BackendError, BackendStatus, FibBackend, FibOp, Route};

/// Routes kept in a map; nothing is programmed.
#[derive(Debug, Default)]
pub struct NoneBackend {
    routes: BTreeMap<IpNet, Route>,
    v4: u64,
}

impl FibBackend for NoneBackend {
    fn name(&self) -> &'static str {
        "none"
    }

    fn apply(&mut self, ops: &[FibOp]) -> Vec<Result<(), String>> {
        ops.iter()
            .map(|op| {
                match op {
                    FibOp::Add(r) => {
                        if self.routes.insert(r.prefix, r.clone()).is_none()
                            && r.prefix.addr().is_ipv4()
                        {
                            self.v4 += 1;
                        }
                    }
                    FibOp::Delete(p) => {
                        if self.routes.remove(p).is_some() && p.addr().is_ipv4() {
                            self.v4 -= 1;
                        }
                    }
                }
                Ok(())
            })
            .collect()
    }

    fn load_existing(&mut self) -> Result<usize, BackendError> {
        Ok(0)
    }

    fn routes(&self) -> Vec<Route> {
        self.routes.values().cloned().collect()
    }

    fn get(&self, prefix: &IpNet) -> Option<Route> {
        self.routes.get(prefix).cloned()
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
    use crate::backend::Action;

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
}
