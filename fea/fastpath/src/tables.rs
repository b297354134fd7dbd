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
    /// An ECMP group (its members are gateway/direct next hops, see [`EngineOp::SetGroup`]):
    /// each flow takes the member its [`flow_hash`] picks.
    Group(u32),
}

/// Paths kept in one ECMP group (more are cut: the BPF group record holds this many).
pub const MAX_PATHS: usize = 16;

/// ECMP groups the engines hold (size of the BPF `groups` array).
pub const MAX_GROUPS: u32 = 4096;

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
    /// ECMP group `gid` holds these next-hop ids (set before any next hop names it).
    SetGroup(u32, Vec<u32>),
    /// ECMP group `gid` is unused.
    ClearGroup(u32),
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
    /// More equal-cost paths (gateway/direct next hops): empty for a single path.
    pub ecmp: Vec<NhKey>,
}

/// The flow hash that picks an ECMP member, identical in bpf/fastpath.c (`flow_hash`): the
/// IPv4/IPv6 source and destination, the protocol, and for TCP/UDP/SCTP the 4 bytes of
/// ports, as 32-bit little-endian words of the wire bytes, FNV-1a mixed and finalized with
/// murmur3's fmix32. `frame` starts at the Ethernet header; 0 when it is not IP.
pub fn flow_hash(frame: &[u8]) -> u32 {
    fn word(b: &[u8], at: usize) -> u32 {
        b.get(at..at + 4)
            .map_or(0, |w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
    }
    let mut h: u32 = 0x811c_9dc5;
    let mut mix = |w: u32| h = (h ^ w).wrapping_mul(0x0100_0193);
    let (proto, l4) = match frame.get(12..14) {
        Some([0x08, 0x00]) if frame.len() >= 34 => {
            mix(word(frame, 26));
            mix(word(frame, 30));
            (frame[23], 14 + usize::from(frame[14] & 0xf) * 4)
        }
        Some([0x86, 0xdd]) if frame.len() >= 54 => {
            for at in (22..54).step_by(4) {
                mix(word(frame, at));
            }
            (frame[20], 54)
        }
        _ => return 0,
    };
    let ports = match proto {
        6 | 17 | 132 => word(frame, l4),
        _ => 0,
    };
    mix(ports);
    mix(u32::from(proto));
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
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
    /// ECMP groups: sorted members -> (group id, FEA routes using it).
    groups: HashMap<Vec<NhKey>, (u32, u32)>,
    /// Group id -> (members, their next-hop ids in the same order).
    group_slots: Vec<Option<(Vec<NhKey>, Vec<u32>)>>,
    group_free: Vec<u32>,
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

    /// The next-hop ids of ECMP group `gid`.
    pub fn group(&self, gid: u32) -> Option<&[u32]> {
        self.group_slots
            .get(gid as usize)
            .and_then(|g| g.as_ref())
            .map(|(_, ids)| ids.as_slice())
    }

    /// ECMP groups in use.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Every op that programs an empty engine with the current state (group members, then
    /// groups, then the next hops naming groups, then routes).
    pub fn full_ops(&self) -> Vec<EngineOp> {
        let mut ops = Vec::new();
        let is_group = |k: &NhKey| matches!(k.kind, NhKind::Group(_));
        for (key, (id, _)) in self.nh_ids.iter().filter(|(k, _)| !is_group(k)) {
            ops.push(EngineOp::SetNexthop(*id, *key));
        }
        for (gid, g) in self.group_slots.iter().enumerate() {
            if let Some((_, ids)) = g {
                ops.push(EngineOp::SetGroup(gid as u32, ids.clone()));
            }
        }
        for (key, (id, _)) in self.nh_ids.iter().filter(|(k, _)| is_group(k)) {
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

    /// The next hop an FEA route stands for: its single path, or its ECMP group (interned:
    /// each call takes a reference that [`Tables::unref_group`] gives back).
    fn route_key(&mut self, r: &FeaRoute, ops: &mut Vec<EngineOp>) -> NhKey {
        if r.ecmp.is_empty() {
            return r.nexthop;
        }
        let mut members: Vec<NhKey> = std::iter::once(r.nexthop)
            .chain(r.ecmp.iter().copied())
            .collect();
        if members
            .iter()
            .any(|m| !matches!(m.kind, NhKind::Gateway(_) | NhKind::Direct))
        {
            return NhKey::special(NhKind::Kernel);
        }
        members.sort();
        members.dedup();
        members.truncate(MAX_PATHS);
        if members.len() == 1 {
            return members[0];
        }
        if let Some((gid, refs)) = self.groups.get_mut(&members) {
            *refs += 1;
            return NhKey::special(NhKind::Group(*gid));
        }
        let ids: Vec<u32> = members.iter().map(|m| self.intern(*m, ops)).collect();
        let gid = match self.group_free.pop() {
            Some(g) => g,
            None => {
                self.group_slots.push(None);
                (self.group_slots.len() - 1) as u32
            }
        };
        self.group_slots[gid as usize] = Some((members.clone(), ids.clone()));
        self.groups.insert(members, (gid, 1));
        ops.push(EngineOp::SetGroup(gid, ids));
        NhKey::special(NhKind::Group(gid))
    }

    /// Gives back the group reference [`Tables::route_key`] took for `key`, if a group.
    fn unref_group(&mut self, key: NhKey, ops: &mut Vec<EngineOp>) {
        let NhKind::Group(gid) = key.kind else { return };
        let Some((members, ids)) = self.group_slots.get(gid as usize).cloned().flatten() else {
            return;
        };
        let Some((_, refs)) = self.groups.get_mut(&members) else {
            return;
        };
        *refs -= 1;
        if *refs == 0 {
            self.groups.remove(&members);
            self.group_slots[gid as usize] = None;
            self.group_free.push(gid);
            ops.push(EngineOp::ClearGroup(gid));
            for id in ids {
                self.release(id, ops);
            }
        }
    }

    /// Sets (or with `None` removes) the FEA's route for `p`, then its effective route.
    fn set_fea(&mut self, p: IpNet, key: Option<NhKey>, ops: &mut Vec<EngineOp>) {
        let old = match key {
            Some(k) => self.fea.insert(p, k),
            None => self.fea.remove(&p),
        };
        self.refresh(p, ops);
        if let Some(old) = old {
            self.unref_group(old, ops);
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
            self.set_fea(*p, None, &mut ops);
            applied += 1;
        }
        for r in &b.add {
            if let Some(s) = &mut self.syncing {
                s.insert(r.prefix);
            }
            let key = self.route_key(r, &mut ops);
            self.set_fea(r.prefix, Some(key), &mut ops);
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
                    self.set_fea(p, None, &mut ops);
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
        self.resolve_flow(dst, 0)
    }

    /// [`Tables::resolve`] for a flow with [`flow_hash`] `hash` (which picks the ECMP path).
    pub fn resolve_flow(&self, dst: IpAddr, hash: u32) -> Resolution {
        let Some((_, mut nh)) = self.lookup(dst) else {
            return Resolution::NoRoute;
        };
        if let NhKind::Group(gid) = nh.kind {
            let Some(ids) = self.group(gid).filter(|g| !g.is_empty()) else {
                return Resolution::NoRoute;
            };
            let Some(member) = self.nexthop(ids[(hash % ids.len() as u32) as usize]) else {
                return Resolution::NoRoute;
            };
            nh = member;
        }
        let target = match nh.kind {
            NhKind::Gateway(g) => g,
            NhKind::Direct => dst,
            NhKind::Local => return Resolution::Local,
            NhKind::Blackhole => return Resolution::Blackhole,
            NhKind::Kernel | NhKind::Group(_) => return Resolution::Kernel,
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
            ecmp: Vec::new(),
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
    fn ecmp(p: &str, paths: &[NhKey]) -> FeaRoute {
        FeaRoute {
            prefix: net(p),
            nexthop: paths[0],
            ecmp: paths[1..].to_vec(),
        }
    }

    /// An IPv4/UDP frame from 10.9.0.1:`sport` to `dst`:5001.
    fn udp_frame(dst: [u8; 4], sport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 8];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[14 + 8] = 64;
        f[14 + 9] = 17;
        f[26..30].copy_from_slice(&[10, 9, 0, 1]);
        f[30..34].copy_from_slice(&dst);
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&5001u16.to_be_bytes());
        f
    }

    #[test]
    fn ecmp_routes_share_a_group_whose_members_are_next_hops() {
        let mut t = Tables::new();
        let (a, b) = (gw("10.0.1.2", 2), gw("10.0.2.2", 3));
        let (_, ops) = t.apply_batch(&Batch {
            add: vec![
                ecmp("192.0.2.0/24", &[a, b]),
                ecmp("198.51.100.0/24", &[b, a]),
            ],
            ..Default::default()
        });
        assert_eq!(
            t.group_count(),
            1,
            "the same set of paths in any order is one group"
        );
        // Members first, then the group, then the next hop naming it, then the route.
        let kinds: Vec<&str> = ops
            .iter()
            .map(|o| match o {
                EngineOp::SetNexthop(_, k) if matches!(k.kind, NhKind::Group(_)) => "group-nh",
                EngineOp::SetNexthop(..) => "nh",
                EngineOp::SetGroup(..) => "group",
                EngineOp::SetRoute(..) => "route",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["nh", "nh", "group", "group-nh", "route", "route"]);
        let (_, key) = t.lookup(ip("192.0.2.9")).unwrap();
        let NhKind::Group(gid) = key.kind else {
            panic!("{key:?}")
        };
        let members: Vec<NhKey> = t
            .group(gid)
            .unwrap()
            .iter()
            .map(|id| t.nexthop(*id).unwrap())
            .collect();
        assert_eq!(members, vec![a, b]);
        // One path left: the route uses it directly; the group goes with its last route.
        let (_, ops) = t.apply_batch(&Batch {
            add: vec![ecmp("192.0.2.0/24", &[a])],
            ..Default::default()
        });
        assert!(!ops.iter().any(|o| matches!(o, EngineOp::ClearGroup(_))));
        let (_, ops) = t.apply_batch(&Batch {
            delete: vec![net("198.51.100.0/24")],
            ..Default::default()
        });
        assert!(ops
            .iter()
            .any(|o| matches!(o, EngineOp::ClearGroup(g) if *g == gid)));
        assert_eq!(t.group_count(), 0);
        assert_eq!(t.nexthop_count(), 1, "only path a is still used: {ops:?}");
        // A path the fast path cannot use sends the whole route to the kernel.
        t.apply_batch(&Batch {
            add: vec![ecmp("203.0.113.0/24", &[a, NhKey::special(NhKind::Kernel)])],
            ..Default::default()
        });
        assert_eq!(t.resolve(ip("203.0.113.1")), Resolution::Kernel);
        // A resync that drops the group's routes frees it too.
        t.apply_batch(&Batch {
            add: vec![ecmp("192.0.2.0/24", &[a, b])],
            ..Default::default()
        });
        assert_eq!(t.group_count(), 1);
        t.apply_batch(&Batch {
            begin_sync: true,
            end_sync: true,
            ..Default::default()
        });
        assert_eq!((t.group_count(), t.nexthop_count()), (0, 0));
    }

    #[test]
    fn flows_spread_over_the_paths_and_each_flow_keeps_its_path() {
        let mut t = Tables::new();
        t.set_link(2, Some(link("a", 1, &["10.0.1.1/24"])));
        t.set_link(3, Some(link("b", 2, &["10.0.2.1/24"])));
        t.set_neighbor(2, ip("10.0.1.2"), Some([7; 6]));
        t.set_neighbor(3, ip("10.0.2.2"), Some([8; 6]));
        t.apply_batch(&Batch {
            add: vec![ecmp(
                "192.0.2.0/24",
                &[gw("10.0.1.2", 2), gw("10.0.2.2", 3)],
            )],
            ..Default::default()
        });
        let mut per_path = BTreeMap::new();
        for sport in 1000..1064u16 {
            let f = udp_frame([192, 0, 2, 1], sport);
            let h = flow_hash(&f);
            assert_eq!(
                h,
                flow_hash(&f.clone()),
                "a flow hashes the same every time"
            );
            let Resolution::Forward { ifindex, .. } = t.resolve_flow(ip("192.0.2.1"), h) else {
                panic!("not forwarded")
            };
            *per_path.entry(ifindex).or_insert(0) += 1;
        }
        assert_eq!(per_path.len(), 2, "{per_path:?}");
        assert!(per_path.values().all(|n| *n >= 16), "{per_path:?}");
        // Everything but addresses, protocol and ports is left out of the hash.
        let mut a = udp_frame([192, 0, 2, 1], 1000);
        let h = flow_hash(&a);
        a[14 + 8] = 3;
        a[0] = 0xff;
        assert_eq!(flow_hash(&a), h);
        a[35] ^= 1;
        assert_ne!(flow_hash(&a), h);
        assert_eq!(flow_hash(&[0u8; 10]), 0);
    }

    #[test]
    fn full_ops_program_groups_before_the_next_hops_naming_them() {
        let mut t = Tables::new();
        t.apply_batch(&Batch {
            add: vec![
                ecmp("192.0.2.0/24", &[gw("10.0.1.2", 2), gw("10.0.2.2", 3)]),
                add("198.51.100.0/24", gw("10.0.1.2", 2)),
            ],
            ..Default::default()
        });
        let ops = t.full_ops();
        let group_at = ops
            .iter()
            .position(|o| matches!(o, EngineOp::SetGroup(..)))
            .unwrap();
        let named_at = ops
            .iter()
            .position(
                |o| matches!(o, EngineOp::SetNexthop(_, k) if matches!(k.kind, NhKind::Group(_))),
            )
            .unwrap();
        let last_member = ops
            .iter()
            .rposition(
                |o| matches!(o, EngineOp::SetNexthop(_, k) if !matches!(k.kind, NhKind::Group(_))),
            )
            .unwrap();
        assert!(last_member < group_at && group_at < named_at, "{ops:?}");
    }
}
