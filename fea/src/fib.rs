//! ProgramFib semantics on top of a backend: batches applied in order, and the
//! resynchronisation that lets any process restart without flushing the forwarding table.
//!
//! A batch with `begin_sync` opens a sync: the backend clears a per-route mark, and every
//! prefix added from then on is marked ([`FibBackend::sync_begin`]). The batch with
//! `end_sync` closes it: whatever the backend holds unmarked was not re-sent and is deleted,
//! a page at a time ([`SYNC_DELETE_PAGE`]), so no full-table set or list is ever built. Re-sent routes identical to what is installed cost nothing
//! (the backend compares), so a FEA restart followed by the RIB's full re-send changes
//! nothing in the kernel.

use std::collections::HashSet;

use ipnet::IpNet;
use oxr_proto::convert::{iter_packed_nets, packed_len, req_prefix, ConvertError};
use oxr_proto::fea::{FibAck, FibBatch, FibNexthop, FibRouteGroup};
use oxr_proto::types::RouteAction;
use serde::Serialize;

use crate::backend::{Action, FibBackend, FibOp, Nexthop, Route};

/// Most error strings carried in one ack (the counts are always complete).
pub const MAX_ACK_ERRORS: usize = 32;

/// Stale routes deleted per backend call when a sync ends.
pub const SYNC_DELETE_PAGE: usize = 4096;

/// One batch, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub seq: u64,
    pub add: Vec<Route>,
    pub delete: Vec<IpNet>,
    pub begin_sync: bool,
    pub end_sync: bool,
    /// Entries that could not be decoded (counted as failed).
    pub invalid: Vec<String>,
}

/// Counters of the FIB feed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FibCounters {
    pub batches: u64,
    pub routes_applied: u64,
    pub route_errors: u64,
    pub syncs_completed: u64,
    /// Routes re-sent in the last completed sync.
    pub reconciled_kept: u64,
    /// Routes deleted by the last completed sync because they were not re-sent.
    pub reconciled_removed: u64,
}

/// The backend plus the sync state.
pub struct Fib {
    backend: Box<dyn FibBackend>,
    syncing: bool,
    counters: FibCounters,
}

/// The ops for a batch: deletes first (except prefixes the same batch adds: the add wins),
/// then adds, so a batch that deletes and re-adds a prefix leaves the new route.
pub fn batch_ops(b: &Batch) -> Vec<FibOp> {
    into_ops(b.clone())
}

/// [`batch_ops`] consuming the batch, so routes move into the ops instead of being copied.
pub fn into_ops(b: Batch) -> Vec<FibOp> {
    let added: HashSet<IpNet> = if b.delete.is_empty() {
        HashSet::new()
    } else {
        b.add.iter().map(|r| r.prefix).collect()
    };
    let mut ops = Vec::with_capacity(b.add.len() + b.delete.len());
    ops.extend(
        b.delete
            .iter()
            .filter(|p| !added.contains(p))
            .map(|p| FibOp::Delete(*p)),
    );
    ops.extend(b.add.into_iter().map(FibOp::Add));
    ops
}

impl Fib {
    /// Wraps a backend (already loaded with what it found at start).
    pub fn new(backend: Box<dyn FibBackend>) -> Self {
        Fib {
            backend,
            syncing: false,
            counters: FibCounters::default(),
        }
    }

    /// The backend.
    pub fn backend(&self) -> &dyn FibBackend {
        self.backend.as_ref()
    }

    /// The backend, mutably (e.g. to change the netlink batch size).
    pub fn backend_mut(&mut self) -> &mut dyn FibBackend {
        self.backend.as_mut()
    }

    /// Counters.
    pub fn counters(&self) -> &FibCounters {
        &self.counters
    }

    /// Whether a sync is open.
    pub fn syncing(&self) -> bool {
        self.syncing
    }

    /// Applies one batch and returns its ack.
    pub fn apply(&mut self, mut b: Batch) -> FibAck {
        self.counters.batches += 1;
        if b.begin_sync {
            if self.syncing {
                tracing::info!("begin_sync while a sync was open: starting over");
            }
            self.syncing = true;
            self.backend.sync_begin();
        }
        let (seq, invalid, end_sync) = (b.seq, std::mem::take(&mut b.invalid), b.end_sync);
        let ops = into_ops(b);
        let mut ack = FibAck {
            seq,
            ..Default::default()
        };
        for e in invalid {
            ack.failed += 1;
            push_error(&mut ack, e);
        }
        let results = self.backend.apply(&ops);
        self.record(&mut ack, results);
        if end_sync {
            if std::mem::take(&mut self.syncing) {
                let mut removed = 0u64;
                let mut after: Option<IpNet> = None;
                loop {
                    let stale = self.backend.stale_page(after.as_ref(), SYNC_DELETE_PAGE);
                    let Some(last) = stale.last().copied() else {
                        break;
                    };
                    after = Some(last);
                    let ops: Vec<FibOp> = stale.into_iter().map(FibOp::Delete).collect();
                    for r in self.backend.apply(&ops) {
                        match r {
                            Ok(()) => removed += 1,
                            Err(e) => {
                                self.counters.route_errors += 1;
                                push_error(&mut ack, format!("sync delete {e}"));
                            }
                        }
                    }
                }
                let st = self.backend.status();
                let kept = (st.routes_ipv4 + st.routes_ipv6).saturating_sub(st.unconfirmed);
                self.counters.syncs_completed += 1;
                self.counters.reconciled_kept = kept;
                self.counters.reconciled_removed = removed;
                tracing::info!(kept, removed, "FIB synchronised with the RIB");
            } else {
                tracing::warn!("end_sync without begin_sync: ignored");
            }
        }
        ack
    }

    fn record(&mut self, ack: &mut FibAck, results: Vec<Result<(), String>>) {
        for r in results {
            match r {
                Ok(()) => {
                    ack.applied += 1;
                    self.counters.routes_applied += 1;
                }
                Err(e) => {
                    ack.failed += 1;
                    self.counters.route_errors += 1;
                    push_error(ack, e);
                }
            }
        }
    }
}

fn push_error(ack: &mut FibAck, e: String) {
    if ack.errors.len() < MAX_ACK_ERRORS {
        ack.errors.push(e);
    }
}

/// Decodes a wire batch. `ifindex_of` resolves next hops that name an interface without
/// its index.
pub fn batch_from_proto(b: &FibBatch, ifindex_of: &dyn Fn(&str) -> Option<u32>) -> Batch {
    let mut out = Batch {
        seq: b.seq,
        begin_sync: b.begin_sync,
        end_sync: b.end_sync,
        add: Vec::with_capacity(b.add.len()),
        ..Default::default()
    };
    for r in &b.add {
        match route_from_proto(r, ifindex_of) {
            Ok(r) => out.add.push(r),
            Err(e) => out.invalid.push(e),
        }
    }
    for g in &b.groups {
        decode_group(g, ifindex_of, &mut out);
    }
    for p in &b.delete {
        match IpNet::try_from(p) {
            Ok(p) => out.delete.push(p),
            Err(e) => out.invalid.push(format!("delete: {e}")),
        }
    }
    if let Some(p) = &b.delete_packed {
        out.delete.reserve(packed_len(p));
        for r in iter_packed_nets(p) {
            match r {
                Ok(p) => out.delete.push(p),
                Err(e) => out.invalid.push(format!("delete: {e}")),
            }
        }
    }
    out
}

/// Decodes a group of routes sharing next hops and attributes: those are decoded once,
/// each route only copies them.
fn decode_group(g: &FibRouteGroup, ifindex_of: &dyn Fn(&str) -> Option<u32>, out: &mut Batch) {
    let Some(prefixes) = &g.prefixes else { return };
    let action = match RouteAction::try_from(g.action) {
        Ok(RouteAction::Forward) => Ok(Action::Forward),
        Ok(RouteAction::Blackhole) => Ok(Action::Blackhole),
        Ok(RouteAction::Reject) => Ok(Action::Reject),
        Err(_) => Err(format!("unknown action {}", g.action)),
    };
    let nexthops = g
        .nexthops
        .iter()
        .map(|n| nexthop_from_proto(n, ifindex_of))
        .collect::<Result<Vec<_>, ConvertError>>()
        .map_err(|e| e.to_string());
    out.add.reserve(packed_len(prefixes));
    for r in iter_packed_nets(prefixes) {
        let prefix = match r {
            Ok(p) => p,
            Err(e) => {
                out.invalid.push(format!("prefix: {e}"));
                continue;
            }
        };
        match (&action, &nexthops) {
            (Ok(action), Ok(nexthops)) => out.add.push(Route {
                prefix,
                nexthops: nexthops.clone(),
                action: *action,
                metric: g.metric,
                protocol: g.protocol.clone(),
            }),
            (Err(e), _) | (_, Err(e)) => out.invalid.push(format!("{prefix}: {e}")),
        }
    }
}

/// Decodes one wire route.
pub fn route_from_proto(
    r: &oxr_proto::fea::FibRoute,
    ifindex_of: &dyn Fn(&str) -> Option<u32>,
) -> Result<Route, String> {
    let prefix = req_prefix(r.prefix.as_ref(), "prefix").map_err(|e| e.to_string())?;
    let action = match RouteAction::try_from(r.action) {
        Ok(RouteAction::Forward) => Action::Forward,
        Ok(RouteAction::Blackhole) => Action::Blackhole,
        Ok(RouteAction::Reject) => Action::Reject,
        Err(_) => return Err(format!("{prefix}: unknown action {}", r.action)),
    };
    let nexthops = r
        .nexthops
        .iter()
        .map(|n| nexthop_from_proto(n, ifindex_of))
        .collect::<Result<Vec<_>, ConvertError>>()
        .map_err(|e| format!("{prefix}: {e}"))?;
    Ok(Route {
        prefix,
        nexthops,
        action,
        metric: r.metric,
        protocol: r.protocol.clone(),
    })
}

fn nexthop_from_proto(
    n: &FibNexthop,
    ifindex_of: &dyn Fn(&str) -> Option<u32>,
) -> Result<Nexthop, ConvertError> {
    let gateway = match &n.gateway {
        Some(g) if !g.octets.is_empty() => Some(std::net::IpAddr::try_from(g)?),
        _ => None,
    };
    let ifindex = if n.ifindex != 0 || n.interface.is_empty() {
        n.ifindex
    } else {
        ifindex_of(&n.interface).unwrap_or(0)
    };
    Ok(Nexthop {
        gateway,
        ifindex,
        weight: u16::try_from(n.weight.clamp(1, 256)).unwrap_or(1),
    })
}

/// The wire form of a route (`name_of` gives interface names).
pub fn route_to_proto(r: &Route, name_of: &dyn Fn(u32) -> String) -> oxr_proto::fea::FibRoute {
    oxr_proto::fea::FibRoute {
        prefix: Some(r.prefix.into()),
        nexthops: r
            .nexthops
            .iter()
            .map(|n| FibNexthop {
                gateway: n.gateway.map(Into::into),
                ifindex: n.ifindex,
                interface: name_of(n.ifindex),
                weight: u32::from(n.weight),
            })
            .collect(),
        action: match r.action {
            Action::Forward => RouteAction::Forward,
            Action::Blackhole => RouteAction::Blackhole,
            Action::Reject => RouteAction::Reject,
        } as i32,
        metric: r.metric,
        protocol: r.protocol.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::none::NoneBackend;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn bh(p: &str) -> Route {
        Route {
            prefix: net(p),
            nexthops: vec![],
            action: Action::Blackhole,
            metric: 0,
            protocol: "static".into(),
        }
    }

    #[test]
    fn delete_and_add_of_one_prefix_in_a_batch_keeps_the_add() {
        let b = Batch {
            add: vec![bh("10.0.0.0/8")],
            delete: vec![net("10.0.0.0/8"), net("10.2.0.0/16")],
            ..Default::default()
        };
        let ops = batch_ops(&b);
        assert_eq!(
            ops,
            vec![
                FibOp::Delete(net("10.2.0.0/16")),
                FibOp::Add(bh("10.0.0.0/8"))
            ]
        );
    }

    #[test]
    fn end_sync_removes_routes_not_resent_and_counts() {
        let mut fib = Fib::new(Box::new(NoneBackend::default()));
        let a = fib.apply(Batch {
            seq: 1,
            add: vec![bh("10.0.0.0/8"), bh("10.1.0.0/16"), bh("2001:db8::/32")],
            ..Default::default()
        });
        assert_eq!((a.seq, a.applied, a.failed), (1, 3, 0));
        fib.apply(Batch {
            seq: 2,
            begin_sync: true,
            add: vec![bh("10.1.0.0/16")],
            ..Default::default()
        });
        assert!(fib.syncing());
        // A route deleted during the sync is not "re-sent" any more.
        fib.apply(Batch {
            seq: 3,
            add: vec![bh("2001:db8::/32")],
            ..Default::default()
        });
        let a = fib.apply(Batch {
            seq: 4,
            end_sync: true,
            ..Default::default()
        });
        assert_eq!(a.seq, 4);
        assert!(!fib.syncing());
        assert_eq!(
            fib.backend().prefixes(),
            vec![net("10.1.0.0/16"), net("2001:db8::/32")]
        );
        assert_eq!(fib.counters().reconciled_kept, 2);
        assert_eq!(fib.counters().reconciled_removed, 1);
    }

    #[test]
    fn end_sync_without_begin_deletes_nothing() {
        let mut fib = Fib::new(Box::new(NoneBackend::default()));
        fib.apply(Batch {
            add: vec![bh("10.0.0.0/8")],
            ..Default::default()
        });
        fib.apply(Batch {
            end_sync: true,
            ..Default::default()
        });
        assert_eq!(fib.backend().prefixes().len(), 1);
    }

    #[test]
    fn proto_routes_decode_with_interface_names_and_bad_ones_fail() {
        let good = oxr_proto::fea::FibRoute {
            prefix: Some(net("10.0.0.0/8").into()),
            nexthops: vec![FibNexthop {
                gateway: Some("192.0.2.1".parse::<std::net::IpAddr>().unwrap().into()),
                ifindex: 0,
                interface: "eth0".into(),
                weight: 0,
            }],
            action: 0,
            metric: 5,
            protocol: "static".into(),
        };
        let bad = oxr_proto::fea::FibRoute {
            prefix: None,
            ..good.clone()
        };
        let b = batch_from_proto(
            &FibBatch {
                seq: 9,
                add: vec![good, bad],
                ..Default::default()
            },
            &|n| (n == "eth0").then_some(7),
        );
        assert_eq!(b.add.len(), 1);
        assert_eq!(b.add[0].nexthops[0].ifindex, 7);
        assert_eq!(b.add[0].nexthops[0].weight, 1);
        assert_eq!(b.invalid.len(), 1);
        let mut fib = Fib::new(Box::new(NoneBackend::default()));
        let ack = fib.apply(b);
        assert_eq!((ack.applied, ack.failed), (1, 1));
        let wire = route_to_proto(&fib.backend().routes()[0], &|_| "eth0".into());
        assert_eq!(wire.nexthops[0].interface, "eth0");
        assert_eq!(wire.metric, 5);
    }
}
