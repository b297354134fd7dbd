//! The forwarding state of oxr-fastpath, pure: routes from the FEA (with the begin/end sync
//! of `proto/dataplane.proto`), connected and local routes derived from the kernel's
//! interface addresses, interned next hops, the kernel's neighbor table mirrored, and the
//! oxr-lpm tables. Every change returns the [`EngineOp`]s an engine must apply, so the
//! engines stay dumb and this module is tested without sockets.
//!
//! ```text
//!   FEA Program batches ──> fea routes ─┐
//!                                        ├─> effective route per prefix (kernel-derived wins)
//!   netlink addresses ───> connected/    ┘        │ interned next hop (refcounted id)
//!                          local routes           v
//!                                        Lpm4 / Lpm6 (oxr-lpm) + EngineOps
//!   netlink neighbors ───> neighbors ──────────────> EngineOps (MACs, MTU per egress)
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;
use oxr_lpm::{Lpm4, Lpm6, NextHopId};
use serde::Serialize;

/// An Ethernet address.
pub type Mac = [u8; 6];

/// What a next hop does with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "gateway")]
pub enum NhKind {
    /// Forward to this gateway on the next hop's interface.
    Gateway(IpAddr),
    /// On-link: forward to the packet's own destination on the interface.
    Direct,
    /// One of our addresses: the kernel's.
    Local,
    /// Drop.
    Blackhole,
    /// Give to the kernel (reject routes, next hops the fast path cannot use).
    Kernel,
}

/// A next hop, interned to an id shared by every route using it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct NhKey {
    #[serde(flatten)]
    pub kind: NhKind,
    pub ifindex: u32,
}

impl NhKey {
    /// A next hop with no interface.
    pub const fn special(kind: NhKind) -> Self {
        NhKey { kind, ifindex: 0 }
    }
}

/// One change for an engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineOp {
    SetNexthop(u32, NhKey),
    ClearNexthop(u32),
    SetRoute(IpNet, u32),
    DelRoute(IpNet),
    /// A resolved neighbor with the rewrite data of its interface.
    SetNeighbor {
        ifindex: u32,
        addr: IpAddr,
        dmac: Mac,
        smac: Mac,
        mtu: u32,
    },
    DelNeighbor {
        ifindex: u32,
        addr: IpAddr,
    },
}

/// A route as the FEA sends it, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeaRoute {
    pub prefix: IpNet,
    pub nexthop: NhKey,
}

/// A Program batch, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub seq: u64,
    pub add: Vec<FeaRoute>,
    pub delete: Vec<IpNet>,
    pub begin_sync: bool,
    pub end_sync: bool,
    /// Entries that could not be decoded (counted as failed).
    pub invalid: u32,
}

/// An interface as the fast path needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Link {
    pub name: String,
    pub mac: Mac,
    pub mtu: u32,
    pub up: bool,
    pub loopback: bool,
    /// Addresses with their subnet's prefix length (host bits kept).
    pub addresses: Vec<IpNet>,
}

/// Counters of the control side.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TableCounters {
    pub batches: u64,
    pub routes_applied: u64,
    pub route_errors: u64,
    pub syncs_completed: u64,
    /// Routes deleted by the last completed sync because they were not re-sent.
    pub sync_removed: u64,
    pub neighbor_updates: u64,
}

/// The whole forwarding state.
#[derive(Default)]
pub struct Tables {
    fea: BTreeMap<IpNet, NhKey>,
    kernel: BTreeMap<IpNet, NhKey>,
    installed: BTreeMap<IpNet, u32>,
    nh_ids: HashMap<NhKey, (u32, u32)>,
    nh_slots: Vec<Option<NhKey>>,
    nh_free: Vec<u32>,
    lpm4: Lpm4,
    lpm6: Lpm6,
    neighbors: BTreeMap<(u32, IpAddr), Mac>,
    links: BTreeMap<u32, Link>,
    syncing: Option<HashSet<IpNet>>,
    counters: TableCounters,
}

/// The host route of an address (/32 or /128).
fn host_net(a: IpAddr) -> IpNet {
    IpNet::new(a, if a.is_ipv4() { 32 } else { 128 }).expect("host prefix length is valid")
}

impl Tables {
    /// Empty tables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counters.
    pub fn counters(&self) -> &TableCounters {
        &self.counters
    }

    /// Installed routes: (prefix, next hop id, next hop).
    pub fn routes(&self) -> impl Iterator<Item = (IpNet, u32, NhKey)> + '_ {
        self.installed.iter().map(|(p, id)| {
            let nh = self.nh_slots[*id as usize].expect("installed next hop exists");
            (*p, *id, nh)
        })
    }

    /// Number of installed routes.
    pub fn route_count(&self) -> usize {
        self.installed.len()
    }

    /// Routes received from the FEA.
    pub fn fea_route_count(&self) -> usize {
        self.fea.len()
    }

    /// Next hops in use.
    pub fn nexthop_count(&self) -> usize {
        self.nh_ids.len()
    }

    /// The mirrored neighbors.
    pub fn neighbors(&self) -> &BTreeMap<(u32, IpAddr), Mac> {
        &self.neighbors
    }

    /// The interfaces.
    pub fn links(&self) -> &BTreeMap<u32, Link> {
        &self.links
    }

    /// The next hop with id `id`.
    pub fn nexthop(&self, id: u32) -> Option<NhKey> {
        self.nh_slots.get(id as usize).copied().flatten()
    }

    /// The userspace LPM tables.
    pub fn lpm(&self) -> (&Lpm4, &Lpm6) {
        (&self.lpm4, &self.lpm6)
    }

    /// Bytes of the LPM tables.
    pub fn lpm_memory_bytes(&self) -> usize {
        self.lpm4.memory_bytes() + self.lpm6.memory_bytes()
    }

    /// Longest-prefix match in the userspace tables.
    pub fn lookup(&self, addr: IpAddr) -> Option<(u32, NhKey)> {
        let id = match addr {
            IpAddr::V4(a) => self.lpm4.lookup(u32::from(a)),
            IpAddr::V6(a) => self.lpm6.lookup(u128::from(a)),
        }?
        .get();
        Some((id, self.nexthop(id)?))
    }

    /// Every op that programs an empty engine with the current state.
    pub fn full_ops(&self) -> Vec<EngineOp> {
        let mut ops = Vec::new();
        for (key, (id, _)) in &self.nh_ids {
            ops.push(EngineOp::SetNexthop(*id, *key));
        }
        for (p, id) in &self.installed {
            ops.push(EngineOp::SetRoute(*p, *id));
        }
        for ((ifindex, addr), mac) in &self.neighbors {
            ops.extend(self.neighbor_op(*ifindex, *addr, Some(*mac)));
        }
        ops
    }

    fn intern(&mut self, key: NhKey, ops: &mut Vec<EngineOp>) -> u32 {
        if let Some((id, refs)) = self.nh_ids.get_mut(&key) {
            *refs += 1;
            return *id;
        }
        let id = match self.nh_free.pop() {
            Some(id) => id,
            None => {
                self.nh_slots.push(None);
                (self.nh_slots.len() - 1) as u32
            }
        };
        self.nh_slots[id as usize] = Some(key);
        self.nh_ids.insert(key, (id, 1));
        ops.push(EngineOp::SetNexthop(id, key));
        id
    }

    fn release(&mut self, id: u32, ops: &mut Vec<EngineOp>) {
        let Some(key) = self.nexthop(id) else { return };
        let Some((_, refs)) = self.nh_ids.get_mut(&key) else {
            return;
        };
        *refs -= 1;
        if *refs == 0 {
            self.nh_ids.remove(&key);
            self.nh_slots[id as usize] = None;
            self.nh_free.push(id);
            ops.push(EngineOp::ClearNexthop(id));
        }
    }

    /// Recomputes the effective route of `p` after either source changed.
    fn refresh(&mut self, p: IpNet, ops: &mut Vec<EngineOp>) {
        let want = self.kernel.get(&p).or_else(|| self.fea.get(&p)).copied();
        let old = self.installed.get(&p).copied();
        match (want, old) {
            (Some(k), Some(id)) if self.nexthop(id) == Some(k) => {}
            (Some(k), old) => {
                let id = self.intern(k, ops);
                let nh = NextHopId::new(id).expect("next-hop ids stay small");
                match p {
                    IpNet::V4(n) => {
                        self.lpm4.insert(n, nh);
                    }
                    IpNet::V6(n) => {
                        self.lpm6.insert(n, nh);
                    }
                }
                self.installed.insert(p, id);
                ops.push(EngineOp::SetRoute(p, id));
                if let Some(old) = old {
                    self.release(old, ops);
                }
            }
            (None, Some(id)) => {
                match p {
                    IpNet::V4(n) => {
                        self.lpm4.remove(n);
                    }
                    IpNet::V6(n) => {
                        self.lpm6.remove(n);
                    }
                }
                self.installed.remove(&p);
                ops.push(EngineOp::DelRoute(p));
                self.release(id, ops);
            }
            (None, None) => {}
        }
    }

    /// Applies one Program batch: deletes first (except prefixes the same batch adds), then
    /// adds; `begin_sync` opens a resync, `end_sync` removes every FEA route not re-sent
    /// since. Returns (applied, failed) and the engine ops.
    pub fn apply_batch(&mut self, b: &Batch) -> ((u32, u32), Vec<EngineOp>) {
        self.counters.batches += 1;
        let mut ops = Vec::new();
        if b.begin_sync {
            self.syncing = Some(HashSet::new());
        }
        let added: HashSet<IpNet> = b.add.iter().map(|r| r.prefix).collect();
        let mut applied = 0u32;
        for p in b.delete.iter().filter(|p| !added.contains(p)) {
            if let Some(s) = &mut self.syncing {
                s.remove(p);
            }
            self.fea.remove(p);
            self.refresh(*p, &mut ops);
            applied += 1;
        }
        for r in &b.add {
            if let Some(s) = &mut self.syncing {
                s.insert(r.prefix);
            }
            self.fea.insert(r.prefix, r.nexthop);
            self.refresh(r.prefix, &mut ops);
            applied += 1;
        }
        if b.end_sync {
            if let Some(resent) = self.syncing.take() {
                let stale: Vec<IpNet> = self
                    .fea
                    .keys()
                    .filter(|p| !resent.contains(p))
                    .copied()
                    .collect();
                self.counters.sync_removed = stale.len() as u64;
                for p in stale {
                    self.fea.remove(&p);
                    self.refresh(p, &mut ops);
                }
                self.counters.syncs_completed += 1;
            }
        }
        self.counters.routes_applied += u64::from(applied);
        self.counters.route_errors += u64::from(b.invalid);
        ((applied, b.invalid), ops)
    }

    /// Replaces one interface (or removes it with `None`): its connected and local routes,
    /// and the rewrite data of its neighbors.
    pub fn set_link(&mut self, ifindex: u32, link: Option<Link>) -> Vec<EngineOp> {
        let mut ops = Vec::new();
        let old = match &link {
            Some(l) => self.links.insert(ifindex, l.clone()),
            None => self.links.remove(&ifindex),
        };
        let derived = |l: &Option<Link>| -> BTreeMap<IpNet, NhKey> {
            let mut m = BTreeMap::new();
            let Some(l) = l else { return m };
            for a in &l.addresses {
                m.insert(host_net(a.addr()), NhKey::special(NhKind::Local));
                if l.loopback {
                    m.entry(a.trunc()).or_insert(NhKey::special(NhKind::Local));
                } else if l.up && a.prefix_len() < a.max_prefix_len() {
                    m.insert(
                        a.trunc(),
                        NhKey {
                            kind: NhKind::Direct,
                            ifindex,
                        },
                    );
                }
            }
            m
        };
        let before = derived(&old);
        let after = derived(&link);
        let mut touched: Vec<IpNet> = Vec::new();
        for (p, _) in before.iter().filter(|(p, k)| after.get(p) != Some(k)) {
            // Another interface may hold the same local/connected prefix: only drop ours.
            if self.kernel.get(p) == before.get(p) {
                self.kernel.remove(p);
            }
            touched.push(*p);
        }
        for (p, k) in after.iter().filter(|(p, k)| before.get(p) != Some(k)) {
            self.kernel.insert(*p, *k);
            touched.push(*p);
        }
        for p in touched {
            self.refresh(p, &mut ops);
        }
        let rewrite_changed = match (&old, &link) {
            (Some(a), Some(b)) => a.mac != b.mac || a.mtu != b.mtu,
            _ => true,
        };
        if rewrite_changed {
            let on_link: Vec<(IpAddr, Mac)> = self
                .neighbors
                .range((ifindex, IpAddr::from([0u8; 4]))..)
                .take_while(|((i, _), _)| *i == ifindex)
                .map(|((_, a), m)| (*a, *m))
                .collect();
            for (addr, mac) in on_link {
                ops.extend(self.neighbor_op(ifindex, addr, Some(mac)));
            }
        }
        ops
    }

    fn neighbor_op(&self, ifindex: u32, addr: IpAddr, dmac: Option<Mac>) -> Option<EngineOp> {
        match (dmac, self.links.get(&ifindex)) {
            (Some(dmac), Some(l)) => Some(EngineOp::SetNeighbor {
                ifindex,
                addr,
                dmac,
                smac: l.mac,
                mtu: l.mtu,
            }),
            _ => Some(EngineOp::DelNeighbor { ifindex, addr }),
        }
    }

    /// A neighbor resolved (`Some(mac)`) or gone / unusable (`None`).
    pub fn set_neighbor(&mut self, ifindex: u32, addr: IpAddr, mac: Option<Mac>) -> Vec<EngineOp> {
        let changed = match mac {
            Some(m) => self.neighbors.insert((ifindex, addr), m) != Some(m),
            None => self.neighbors.remove(&(ifindex, addr)).is_some(),
        };
        if !changed {
            return Vec::new();
        }
        self.counters.neighbor_updates += 1;
        self.neighbor_op(ifindex, addr, mac).into_iter().collect()
    }

    /// Replaces the whole neighbor table (after a dump).
    pub fn replace_neighbors(&mut self, all: BTreeMap<(u32, IpAddr), Mac>) -> Vec<EngineOp> {
        let mut ops = Vec::new();
        let gone: Vec<(u32, IpAddr)> = self
            .neighbors
            .keys()
            .filter(|k| !all.contains_key(k))
            .copied()
            .collect();
        for (i, a) in gone {
            ops.extend(self.set_neighbor(i, a, None));
        }
        for ((i, a), m) in all {
            ops.extend(self.set_neighbor(i, a, Some(m)));
        }
        ops
    }

    /// What the fast path would do with a packet to `dst`: the rewrite data when it can
    /// forward it, else why not. The afxdp engine's decision, and a test oracle.
    pub fn resolve(&self, dst: IpAddr) -> Resolution {
        let Some((_, nh)) = self.lookup(dst) else {
            return Resolution::NoRoute;
        };
        let target = match nh.kind {
            NhKind::Gateway(g) => g,
            NhKind::Direct => dst,
            NhKind::Local => return Resolution::Local,
            NhKind::Blackhole => return Resolution::Blackhole,
            NhKind::Kernel => return Resolution::Kernel,
        };
        match (
            self.neighbors.get(&(nh.ifindex, target)),
            self.links.get(&nh.ifindex),
        ) {
            (Some(dmac), Some(l)) => Resolution::Forward {
                ifindex: nh.ifindex,
                dmac: *dmac,
                smac: l.mac,
                mtu: l.mtu,
            },
            _ => Resolution::NoNeighbor,
        }
    }
}

/// See [`Tables::resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Forward {
        ifindex: u32,
        dmac: Mac,
        smac: Mac,
        mtu: u32,
    },
    NoRoute,
    NoNeighbor,
    Local,
    Blackhole,
    Kernel,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn gw(g: &str, ifindex: u32) -> NhKey {
        NhKey {
            kind: NhKind::Gateway(ip(g)),
            ifindex,
        }
    }
    fn add(p: &str, nh: NhKey) -> FeaRoute {
        FeaRoute {
            prefix: net(p),
            nexthop: nh,
        }
    }
    fn link(name: &str, mac: u8, addrs: &[&str]) -> Link {
        Link {
            name: name.into(),
            mac: [2, 0, 0, 0, 0, mac],
            mtu: 1500,
            up: true,
            loopback: false,
            addresses: addrs.iter().map(|a| net(a)).collect(),
        }
    }

    #[test]
    fn shared_next_hops_are_interned_and_freed_with_their_last_route() {
        let mut t = Tables::new();
        let b = Batch {
            add: vec![
                add("10.1.0.0/16", gw("10.0.0.2", 2)),
                add("10.2.0.0/16", gw("10.0.0.2", 2)),
            ],
            ..Default::default()
        };
        let ((applied, failed), ops) = t.apply_batch(&b);
        assert_eq!((applied, failed), (2, 0));
        assert_eq!(t.nexthop_count(), 1);
        assert_eq!(
            ops.iter()
                .filter(|o| matches!(o, EngineOp::SetNexthop(..)))
                .count(),
            1
        );
        let (_, ops) = t.apply_batch(&Batch {
            delete: vec![net("10.1.0.0/16")],
            ..Default::default()
        });
        assert_eq!(ops, vec![EngineOp::DelRoute(net("10.1.0.0/16"))]);
        let (_, ops) = t.apply_batch(&Batch {
            delete: vec![net("10.2.0.0/16")],
            ..Default::default()
        });
        assert_eq!(
            ops,
            vec![
                EngineOp::DelRoute(net("10.2.0.0/16")),
                EngineOp::ClearNexthop(0)
            ]
        );
        assert_eq!(t.nexthop_count(), 0);
    }

    #[test]
    fn end_sync_removes_routes_not_resent() {
        let mut t = Tables::new();
        t.apply_batch(&Batch {
            add: vec![
                add("10.1.0.0/16", gw("10.0.0.2", 2)),
                add("10.2.0.0/16", gw("10.0.0.3", 2)),
            ],
            ..Default::default()
        });
        t.apply_batch(&Batch {
            begin_sync: true,
            add: vec![add("10.1.0.0/16", gw("10.0.0.2", 2))],
            ..Default::default()
        });
        assert_eq!(t.route_count(), 2, "nothing removed before end_sync");
        let (_, ops) = t.apply_batch(&Batch {
            end_sync: true,
            ..Default::default()
        });
        assert!(ops.contains(&EngineOp::DelRoute(net("10.2.0.0/16"))));
        assert_eq!(t.route_count(), 1);
        assert_eq!(t.counters().sync_removed, 1);
        // Re-sending an identical route changes nothing in the engine.
        let (_, ops) = t.apply_batch(&Batch {
            add: vec![add("10.1.0.0/16", gw("10.0.0.2", 2))],
            ..Default::default()
        });
        assert!(ops.is_empty(), "{ops:?}");
    }

    #[test]
    fn a_batch_that_deletes_and_adds_a_prefix_keeps_the_add() {
        let mut t = Tables::new();
        t.apply_batch(&Batch {
            add: vec![add("10.1.0.0/16", gw("10.0.0.2", 2))],
            ..Default::default()
        });
        t.apply_batch(&Batch {
            add: vec![add("10.1.0.0/16", gw("10.0.0.9", 2))],
            delete: vec![net("10.1.0.0/16")],
            ..Default::default()
        });
        assert_eq!(t.lookup(ip("10.1.2.3")).unwrap().1, gw("10.0.0.9", 2));
    }

    #[test]
    fn addresses_make_local_and_connected_routes_that_win_over_fea_routes() {
        let mut t = Tables::new();
        t.apply_batch(&Batch {
            add: vec![add("10.0.1.0/24", gw("10.9.9.9", 3))],
            ..Default::default()
        });
        t.set_link(
            2,
            Some(link("eth0", 1, &["10.0.1.1/24", "2001:db8:1::1/64"])),
        );
        assert_eq!(t.lookup(ip("10.0.1.1")).unwrap().1.kind, NhKind::Local);
        assert_eq!(
            t.lookup(ip("10.0.1.7")).unwrap().1,
            NhKey {
                kind: NhKind::Direct,
                ifindex: 2
            }
        );
        assert_eq!(t.lookup(ip("2001:db8:1::1")).unwrap().1.kind, NhKind::Local);
        // The interface goes away: the FEA's route for the prefix is back.
        t.set_link(2, None);
        assert_eq!(t.lookup(ip("10.0.1.7")).unwrap().1, gw("10.9.9.9", 3));
        assert_eq!(t.lookup(ip("10.0.1.1")).unwrap().1, gw("10.9.9.9", 3));
    }

    #[test]
    fn resolution_needs_a_neighbor_on_the_egress_interface() {
        let mut t = Tables::new();
        t.set_link(2, Some(link("a", 1, &["10.0.1.1/24"])));
        t.set_link(3, Some(link("b", 2, &["10.0.2.1/24"])));
        t.apply_batch(&Batch {
            add: vec![add("192.0.2.0/24", gw("10.0.2.2", 3))],
            ..Default::default()
        });
        assert_eq!(t.resolve(ip("192.0.2.1")), Resolution::NoNeighbor);
        let ops = t.set_neighbor(3, ip("10.0.2.2"), Some([9; 6]));
        assert_eq!(
            ops,
            vec![EngineOp::SetNeighbor {
                ifindex: 3,
                addr: ip("10.0.2.2"),
                dmac: [9; 6],
                smac: [2, 0, 0, 0, 0, 2],
                mtu: 1500
            }]
        );
        assert_eq!(
            t.resolve(ip("192.0.2.1")),
            Resolution::Forward {
                ifindex: 3,
                dmac: [9; 6],
                smac: [2, 0, 0, 0, 0, 2],
                mtu: 1500
            }
        );
        // Direct: the destination itself must be a neighbor.
        assert_eq!(
            t.resolve(ip("10.0.2.2")),
            Resolution::Forward {
                ifindex: 3,
                dmac: [9; 6],
                smac: [2, 0, 0, 0, 0, 2],
                mtu: 1500
            }
        );
        assert_eq!(t.resolve(ip("10.0.2.3")), Resolution::NoNeighbor);
        assert_eq!(t.resolve(ip("10.0.2.1")), Resolution::Local);
        assert_eq!(t.resolve(ip("203.0.113.1")), Resolution::NoRoute);
        // A MAC change on the link re-sends its neighbors' rewrite data.
        let mut l = link("b", 7, &["10.0.2.1/24"]);
        l.mtu = 9000;
        let ops = t.set_link(3, Some(l));
        assert_eq!(
            ops,
            vec![EngineOp::SetNeighbor {
                ifindex: 3,
                addr: ip("10.0.2.2"),
                dmac: [9; 6],
                smac: [2, 0, 0, 0, 0, 7],
                mtu: 9000
            }]
        );
        assert!(t.set_neighbor(3, ip("10.0.2.2"), Some([9; 6])).is_empty());
        assert_eq!(
            t.set_neighbor(3, ip("10.0.2.2"), None),
            vec![EngineOp::DelNeighbor {
                ifindex: 3,
                addr: ip("10.0.2.2")
            }]
        );
    }

    #[test]
    fn full_ops_reprogram_everything() {
        let mut t = Tables::new();
        t.set_link(3, Some(link("b", 2, &["10.0.2.1/24"])));
        t.set_neighbor(3, ip("10.0.2.2"), Some([9; 6]));
        t.apply_batch(&Batch {
            add: vec![add("192.0.2.0/24", gw("10.0.2.2", 3))],
            ..Default::default()
        });
        let ops = t.full_ops();
        let routes = ops
            .iter()
            .filter(|o| matches!(o, EngineOp::SetRoute(..)))
            .count();
        assert_eq!(routes, t.route_count());
        assert_eq!(
            ops.iter()
                .filter(|o| matches!(o, EngineOp::SetNexthop(..)))
                .count(),
            t.nexthop_count()
        );
        assert!(ops
            .iter()
            .any(|o| matches!(o, EngineOp::SetNeighbor { .. })));
    }
}
