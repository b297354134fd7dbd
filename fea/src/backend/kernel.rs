//! The kernel backend: the Linux FIB over rtnetlink.
//!
//! - Every route and nexthop object carries oxr's route protocol (`fea.route-protocol`).
//! - Next hops are kernel nexthop objects (ids from [`FIRST_NH_ID`]), shared and refcounted;
//!   an ECMP route points at a nexthop-group object; routes carry only `RTA_NH_ID`.
//! - Many messages go in one `sendmsg` (see [`NlSocket::transact`]); nexthop objects a batch
//!   needs are created in front of the routes that use them, in the same datagrams.
//! - At start the kernel's oxr routes and nexthop objects are adopted as unconfirmed state
//!   ([`KernelState::adopt`]), so a restart changes nothing in the kernel.
//!
//! [`KernelState`] decides (pure: ops -> netlink messages, acks -> new state);
//! [`KernelBackend`] only moves its messages through the socket.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{
    Action, BackendError, BackendOptions, BackendStatus, FibBackend, FibOp, Nexthop, Route,
    SYNC_MARK,
};
use crate::netlink::{errno_text, frame_into, NlSocket, RtMessage};
use crate::nexthop::{
    GroupMember, NexthopMessage, AF_INET, AF_INET6, AF_UNSPEC, RTM_DELNEXTHOP, RTM_GETNEXTHOP,
    RTM_NEWNEXTHOP,
};
use crate::table::{Interner, PrefixMap, Slot};
use netlink_packet_core::NLM_F_ACK;

/// oxr's nexthop object ids start here, clear of ids other software picks.
pub const FIRST_NH_ID: u32 = 1_000_000;

const RT_TABLE_MAIN: u8 = RouteHeader::RT_TABLE_MAIN;

/// A single next hop object's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NhKey {
    /// `AF_INET`/`AF_INET6`: the gateway's family, or the route's when on-link.
    pub family: u8,
    pub gateway: Option<IpAddr>,
    pub ifindex: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NhObject {
    Single {
        key: NhKey,
        refs: u32,
    },
    Group {
        members: Vec<GroupMember>,
        refs: u32,
    },
}

impl NhObject {
    fn refs_mut(&mut self) -> &mut u32 {
        match self {
            NhObject::Single { refs, .. } | NhObject::Group { refs, .. } => refs,
        }
    }
    fn refs(&self) -> u32 {
        match self {
            NhObject::Single { refs, .. } | NhObject::Group { refs, .. } => *refs,
        }
    }
}

/// Nexthop objects and groups with their reference counts (routes using an object, plus
/// groups containing it).
#[derive(Debug, Default)]
pub struct NexthopTable {
    singles: HashMap<NhKey, u32>,
    groups: HashMap<Vec<GroupMember>, u32>,
    objects: HashMap<u32, NhObject>,
    next_id: u32,
    /// Objects whose count dropped to zero; deleted by [`NexthopTable::collect_garbage`]
    /// unless reused first.
    candidates: Vec<u32>,
}

/// A route's next hops in canonical form: one object, or a group of (object, weight).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Canonical {
    Single(NhKey),
    Group(Vec<(NhKey, u16)>),
}

/// Checks a route's next hops and puts them in canonical form (sorted, duplicates merged).
pub fn canonical(prefix: &IpNet, nexthops: &[Nexthop]) -> Result<Canonical, String> {
    if nexthops.is_empty() {
        return Err("forward route without next hops".into());
    }
    let route_family = family_of(prefix.addr());
    let mut keys: Vec<(NhKey, u16)> = Vec::with_capacity(nexthops.len());
    for nh in nexthops {
        if nh.ifindex == 0 {
            return Err(format!(
                "next hop {} has no interface (the RIB must resolve it)",
                nh.gateway.map(|g| g.to_string()).unwrap_or_default()
            ));
        }
        let family = match nh.gateway {
            Some(g) => family_of(g),
            None => route_family,
        };
        if route_family == AF_INET6 && family == AF_INET {
            return Err(format!("IPv6 route {prefix} via an IPv4 gateway"));
        }
        let key = NhKey {
            family,
            gateway: nh.gateway,
            ifindex: nh.ifindex,
        };
        if !keys.iter().any(|(k, _)| *k == key) {
            keys.push((key, nh.weight.clamp(1, 256)));
        }
    }
    if keys.len() == 1 {
        return Ok(Canonical::Single(keys[0].0));
    }
    keys.sort();
    Ok(Canonical::Group(keys))
}

fn family_of(a: IpAddr) -> u8 {
    if a.is_ipv4() {
        AF_INET
    } else {
        AF_INET6
    }
}

impl NexthopTable {
    fn new() -> Self {
        NexthopTable {
            next_id: FIRST_NH_ID,
            ..Default::default()
        }
    }

    /// The object id for `c` if it exists (no change).
    pub fn lookup(&self, c: &Canonical) -> Option<u32> {
        match c {
            Canonical::Single(k) => self.singles.get(k).copied(),
            Canonical::Group(members) => {
                let mut g = Vec::with_capacity(members.len());
                for (k, w) in members {
                    g.push(GroupMember {
                        id: *self.singles.get(k)?,
                        weight: *w,
                    });
                }
                g.sort();
                self.groups.get(&g).copied()
            }
        }
    }

    fn alloc_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(FIRST_NH_ID);
        id
    }

    fn acquire_single(&mut self, key: NhKey, protocol: u8, out: &mut Vec<RtMessage>) -> u32 {
        if let Some(&id) = self.singles.get(&key) {
            if let Some(o) = self.objects.get_mut(&id) {
                *o.refs_mut() += 1;
            }
            return id;
        }
        let id = self.alloc_id();
        self.singles.insert(key, id);
        self.objects.insert(id, NhObject::Single { key, refs: 1 });
        out.push(nexthop_add_message(protocol, id, &key));
        id
    }

    /// Takes a reference on the object for `c`, creating it (and its members) if needed;
    /// creation messages are appended to `out` in dependency order.
    pub fn acquire(&mut self, c: &Canonical, protocol: u8, out: &mut Vec<RtMessage>) -> u32 {
        match c {
            Canonical::Single(k) => self.acquire_single(*k, protocol, out),
            Canonical::Group(members) => {
                if let Some(id) = self.lookup(c) {
                    if let Some(o) = self.objects.get_mut(&id) {
                        *o.refs_mut() += 1;
                    }
                    return id;
                }
                // The group holds one reference on each member.
                let mut g: Vec<GroupMember> = members
                    .iter()
                    .map(|(k, w)| GroupMember {
                        id: self.acquire_single(*k, protocol, out),
                        weight: *w,
                    })
                    .collect();
                g.sort();
                let id = self.alloc_id();
                out.push(group_add_message(protocol, id, &g));
                self.groups.insert(g.clone(), id);
                self.objects.insert(
                    id,
                    NhObject::Group {
                        members: g,
                        refs: 1,
                    },
                );
                id
            }
        }
    }

    /// Drops a reference; an object left unused becomes a garbage candidate.
    pub fn release(&mut self, id: u32) {
        if let Some(o) = self.objects.get_mut(&id) {
            let r = o.refs_mut();
            *r = r.saturating_sub(1);
            if *r == 0 {
                self.candidates.push(id);
            }
        }
    }

    /// Removes unused objects; returns their ids, groups before the singles they contained.
    pub fn collect_garbage(&mut self) -> Vec<u32> {
        let mut groups = Vec::new();
        let mut singles = Vec::new();
        while let Some(id) = self.candidates.pop() {
            if self.objects.get(&id).is_none_or(|o| o.refs() != 0) {
                continue;
            }
            match self.objects.remove(&id) {
                Some(NhObject::Group { members, .. }) => {
                    if self.groups.get(&members) == Some(&id) {
                        self.groups.remove(&members);
                    }
                    for m in &members {
                        self.release(m.id);
                    }
                    groups.push(id);
                }
                Some(NhObject::Single { key, .. }) => {
                    if self.singles.get(&key) == Some(&id) {
                        self.singles.remove(&key);
                    }
                    singles.push(id);
                }
                None => {}
            }
        }
        groups.extend(singles);
        groups
    }

    /// Reference count of object `id`.
    pub fn refs(&self, id: u32) -> Option<u32> {
        self.objects.get(&id).map(NhObject::refs)
    }

    /// Next hops of object `id` as routes report them.
    pub fn nexthops_of(&self, id: u32) -> Vec<Nexthop> {
        match self.objects.get(&id) {
            Some(NhObject::Single { key, .. }) => vec![Nexthop {
                gateway: key.gateway,
                ifindex: key.ifindex,
                weight: 1,
            }],
            Some(NhObject::Group { members, .. }) => members
                .iter()
                .filter_map(|m| match self.objects.get(&m.id) {
                    Some(NhObject::Single { key, .. }) => Some(Nexthop {
                        gateway: key.gateway,
                        ifindex: key.ifindex,
                        weight: m.weight,
                    }),
                    _ => None,
                })
                .collect(),
            None => Vec::new(),
        }
    }

    /// (single objects, groups).
    pub fn counts(&self) -> (u64, u64) {
        let g = self
            .objects
            .values()
            .filter(|o| matches!(o, NhObject::Group { .. }))
            .count() as u64;
        (self.objects.len() as u64 - g, g)
    }
}

/// What an installed route points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// A nexthop object or group.
    Nh(u32),
    Blackhole,
    Reject,
    /// Found at start without a nexthop object of ours (replaced when re-sent).
    Foreign,
}

/// Everything the state keeps of a route besides its prefix; interned, so a full table
/// through a few next hops shares a handful of these and a route costs one compact record
/// ([`PrefixMap`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct KAttrs {
    target: Target,
    metric: u32,
    proto: u16,
}

/// Slot flag of a route found at start and not re-sent yet.
const UNCONFIRMED: u8 = 0x01;

/// `RTM_NEWROUTE` for `prefix` pointing at `target` (main table, oxr's protocol).
pub fn route_add_message(protocol: u8, prefix: &IpNet, target: Target) -> RtMessage {
    let mut m = route_header(protocol, prefix);
    m.header.scope = RouteScope::Universe;
    m.header.kind = match target {
        Target::Blackhole => RouteType::BlackHole,
        Target::Reject => RouteType::Unreachable,
        Target::Nh(_) | Target::Foreign => RouteType::Unicast,
    };
    if let Target::Nh(id) = target {
        m.attributes.push(RouteAttribute::NhId(id));
    }
    RtMessage::Route(RouteNetlinkMessage::NewRoute(m))
}

/// `RTM_DELROUTE` for oxr's route to `prefix` (any scope and type, oxr's protocol only).
pub fn route_del_message(protocol: u8, prefix: &IpNet) -> RtMessage {
    let mut m = route_header(protocol, prefix);
    m.header.scope = RouteScope::NoWhere;
    m.header.kind = RouteType::Unspec;
    RtMessage::Route(RouteNetlinkMessage::DelRoute(m))
}

fn route_header(protocol: u8, prefix: &IpNet) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = match prefix {
        IpNet::V4(_) => AddressFamily::Inet,
        IpNet::V6(_) => AddressFamily::Inet6,
    };
    m.header.destination_prefix_length = prefix.prefix_len();
    m.header.table = RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::from(protocol);
    m.attributes
        .push(RouteAttribute::Destination(RouteAddress::from(
            prefix.network(),
        )));
    m
}

/// `RTM_NEWNEXTHOP` for a single next hop.
pub fn nexthop_add_message(protocol: u8, id: u32, key: &NhKey) -> RtMessage {
    RtMessage::Nexthop(
        RTM_NEWNEXTHOP,
        NexthopMessage {
            family: key.family,
            protocol,
            id: Some(id),
            oif: Some(key.ifindex),
            gateway: key.gateway,
            ..Default::default()
        },
    )
}

/// `RTM_NEWNEXTHOP` for a multipath group.
pub fn group_add_message(protocol: u8, id: u32, members: &[GroupMember]) -> RtMessage {
    RtMessage::Nexthop(
        RTM_NEWNEXTHOP,
        NexthopMessage {
            family: AF_UNSPEC,
            protocol,
            id: Some(id),
            group: members.to_vec(),
            ..Default::default()
        },
    )
}

/// `RTM_DELNEXTHOP`.
pub fn nexthop_del_message(id: u32) -> RtMessage {
    RtMessage::Nexthop(
        RTM_DELNEXTHOP,
        NexthopMessage {
            id: Some(id),
            ..Default::default()
        },
    )
}

const ADD_FLAGS: u16 = NLM_F_CREATE | NLM_F_REPLACE;

/// One route message of a plan: an add (replace) pointing at `target`, or a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteReq {
    pub prefix: IpNet,
    /// `None`: delete.
    pub target: Option<Target>,
}

impl RouteReq {
    /// The message and its flags (the slow, general form; [`frame_route`] writes the same
    /// bytes directly).
    pub fn message(&self, protocol: u8) -> (RtMessage, u16) {
        match self.target {
            Some(t) => (route_add_message(protocol, &self.prefix, t), ADD_FLAGS),
            None => (route_del_message(protocol, &self.prefix), 0),
        }
    }
}

/// Appends the framed `RTM_NEWROUTE`/`RTM_DELROUTE` of `req` (with `NLM_F_REQUEST` and
/// `extra_flags`) to `out`: the same bytes as [`frame_into`] of [`RouteReq::message`],
/// written without building a message object (this runs once per route).
pub fn frame_route(out: &mut Vec<u8>, protocol: u8, req: &RouteReq, extra_flags: u16, seq: u32) {
    const RTM_NEWROUTE: u16 = 24;
    const RTM_DELROUTE: u16 = 25;
    let (family, addr_len, dst_len): (u8, usize, u8) = match req.prefix {
        IpNet::V4(n) => (AF_INET, 4, n.prefix_len()),
        IpNet::V6(n) => (AF_INET6, 16, n.prefix_len()),
    };
    let nh = match req.target {
        Some(Target::Nh(id)) => Some(id),
        _ => None,
    };
    let len = 16 + 12 + 4 + addr_len + if nh.is_some() { 8 } else { 0 };
    let (mtype, flags, scope, kind) = match req.target {
        Some(t) => (
            RTM_NEWROUTE,
            NLM_F_REQUEST | ADD_FLAGS | extra_flags,
            0u8,
            match t {
                Target::Blackhole => 6u8,
                Target::Reject => 7,
                Target::Nh(_) | Target::Foreign => 1,
            },
        ),
        None => (RTM_DELROUTE, NLM_F_REQUEST | extra_flags, 255, 0),
    };
    out.reserve(len);
    out.extend_from_slice(&(len as u32).to_ne_bytes());
    out.extend_from_slice(&mtype.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&[
        family,
        dst_len,
        0,
        0,
        RT_TABLE_MAIN,
        protocol,
        scope,
        kind,
        0,
        0,
        0,
        0,
    ]);
    out.extend_from_slice(&((4 + addr_len) as u16).to_ne_bytes());
    out.extend_from_slice(&1u16.to_ne_bytes());
    match req.prefix {
        IpNet::V4(n) => out.extend_from_slice(&n.network().octets()),
        IpNet::V6(n) => out.extend_from_slice(&n.network().octets()),
    }
    if let Some(id) = nh {
        out.extend_from_slice(&8u16.to_ne_bytes());
        out.extend_from_slice(&30u16.to_ne_bytes());
        out.extend_from_slice(&id.to_ne_bytes());
    }
}

/// A route message in a plan and what to do with its answer.
#[derive(Debug)]
enum Pending {
    Add {
        op: usize,
        prefix: IpNet,
        target: Target,
        metric: u32,
        proto: u16,
    },
    Delete {
        op: usize,
        prefix: IpNet,
    },
}

/// The messages for a set of ops (no prefix twice), and how to read their answers.
#[derive(Debug)]
pub struct Plan {
    /// Nexthop objects to create first.
    pub nexthops: Vec<RtMessage>,
    /// Route messages, in op order.
    pub routes: Vec<RouteReq>,
    pending: Vec<Pending>,
    /// Results decided without the kernel (identical routes, invalid ops).
    decided: Vec<Option<Result<(), String>>>,
}

/// The kernel backend's state and decisions, without I/O.
#[derive(Debug)]
pub struct KernelState {
    protocol: u8,
    routes: PrefixMap,
    attrs: Interner<KAttrs>,
    nh: NexthopTable,
    protos: Vec<String>,
    proto_ids: HashMap<String, u16>,
    /// The last protocol name interned, with its id (routes come in runs).
    last_proto: Option<(String, u16)>,
    unconfirmed: u64,
}

impl KernelState {
    /// Empty state for routes and objects tagged `protocol`.
    pub fn new(protocol: u8) -> Self {
        let mut s = KernelState {
            protocol,
            routes: PrefixMap::default(),
            attrs: Interner::default(),
            nh: NexthopTable::new(),
            protos: Vec::new(),
            proto_ids: HashMap::new(),
            last_proto: None,
            unconfirmed: 0,
        };
        s.intern("");
        s
    }

    fn intern(&mut self, p: &str) -> u16 {
        if let Some((name, i)) = &self.last_proto {
            if name == p {
                return *i;
            }
        }
        let i = self.intern_slow(p);
        self.last_proto = Some((p.to_string(), i));
        i
    }

    fn intern_slow(&mut self, p: &str) -> u16 {
        if let Some(&i) = self.proto_ids.get(p) {
            return i;
        }
        let i = u16::try_from(self.protos.len()).unwrap_or(0);
        if i != 0 || self.protos.is_empty() {
            self.protos.push(p.to_string());
            self.proto_ids.insert(p.to_string(), i);
        }
        i
    }

    /// The nexthop table (for inspection).
    pub fn nexthops(&self) -> &NexthopTable {
        &self.nh
    }

    /// The nexthop object id the route for `prefix` uses.
    pub fn target(&self, prefix: &IpNet) -> Option<Target> {
        self.attrs_of(prefix).map(|a| a.target)
    }

    fn attrs_of(&self, prefix: &IpNet) -> Option<KAttrs> {
        self.routes
            .get(prefix)
            .and_then(|s| self.attrs.get(s.val()).copied())
    }

    /// Plans `ops`, which must not name a prefix twice.
    pub fn plan(&mut self, ops: &[FibOp]) -> Plan {
        self.plan_refs(ops.iter(), ops.len())
    }

    /// [`KernelState::plan`] over `len` borrowed ops (a family's share of a segment).
    pub fn plan_refs<'a>(&mut self, ops: impl Iterator<Item = &'a FibOp>, len: usize) -> Plan {
        let mut plan = Plan {
            nexthops: Vec::new(),
            routes: Vec::with_capacity(len),
            pending: Vec::with_capacity(len),
            decided: vec![None; len],
        };
        for (i, op) in ops.enumerate() {
            match op {
                FibOp::Add(r) => self.plan_add(i, r, &mut plan),
                FibOp::Delete(p) => {
                    if self.routes.contains(p) {
                        plan.routes.push(RouteReq {
                            prefix: *p,
                            target: None,
                        });
                        plan.pending.push(Pending::Delete { op: i, prefix: *p });
                    } else {
                        plan.decided[i] = Some(Ok(()));
                    }
                }
            }
        }
        plan
    }

    fn plan_add(&mut self, i: usize, r: &Route, plan: &mut Plan) {
        let proto = self.intern(&r.protocol);
        let canon = match r.action {
            Action::Blackhole | Action::Reject => None,
            Action::Forward => match canonical(&r.prefix, &r.nexthops) {
                Ok(c) => Some(c),
                Err(e) => {
                    plan.decided[i] = Some(Err(e));
                    return;
                }
            },
        };
        let existing = self.target(&r.prefix);
        let same = match (&canon, existing) {
            (None, Some(Target::Blackhole)) => r.action == Action::Blackhole,
            (None, Some(Target::Reject)) => r.action == Action::Reject,
            (Some(c), Some(Target::Nh(id))) => self.nh.lookup(c) == Some(id),
            _ => false,
        };
        if same {
            // Identical to the kernel: no message, only bookkeeping.
            let slot = self.routes.get(&r.prefix).expect("checked above");
            let old = self.attrs.get(slot.val()).copied().expect("interned");
            let new = KAttrs {
                metric: r.metric,
                proto,
                ..old
            };
            let mut val = slot.val();
            if new != old {
                val = self.attrs.acquire(&new);
                self.attrs.release(slot.val());
            }
            if slot.flags & UNCONFIRMED != 0 {
                self.unconfirmed -= 1;
            }
            let s = self.routes.get_mut(&r.prefix).expect("checked above");
            s.set_val(val);
            s.flags = SYNC_MARK;
            plan.decided[i] = Some(Ok(()));
            return;
        }
        let target = match (&canon, r.action) {
            (Some(c), _) => Target::Nh(self.nh.acquire(c, self.protocol, &mut plan.nexthops)),
            (None, Action::Reject) => Target::Reject,
            (None, _) => Target::Blackhole,
        };
        plan.routes.push(RouteReq {
            prefix: r.prefix,
            target: Some(target),
        });
        plan.pending.push(Pending::Add {
            op: i,
            prefix: r.prefix,
            target,
            metric: r.metric,
            proto,
        });
    }

    /// Applies the kernel's answers (0 or -errno per message of the plan, nexthops first)
    /// to the state; returns one result per op.
    pub fn commit(
        &mut self,
        plan: Plan,
        nexthop_codes: &[i32],
        route_codes: &[i32],
    ) -> Vec<Result<(), String>> {
        let mut nh_errors: HashMap<u32, i32> = HashMap::new();
        for (m, &c) in plan.nexthops.iter().zip(nexthop_codes) {
            if let (RtMessage::Nexthop(_, m), true) = (m, c != 0) {
                if let Some(id) = m.id {
                    nh_errors.insert(id, c);
                }
            }
        }
        let mut results = plan.decided;
        for (p, &code) in plan.pending.into_iter().zip(route_codes) {
            match p {
                Pending::Add {
                    op,
                    prefix,
                    target,
                    metric,
                    proto,
                } => {
                    if code == 0 {
                        let id = self.attrs.acquire(&KAttrs {
                            target,
                            metric,
                            proto,
                        });
                        if let Some(old) = self.routes.insert(prefix, Slot::new(id, SYNC_MARK)) {
                            self.forget(old);
                        }
                        results[op] = Some(Ok(()));
                    } else {
                        let mut msg = format!("{prefix}: {}", errno_text(code));
                        if let Target::Nh(id) = target {
                            if let Some(c) = nh_errors.get(&id) {
                                msg = format!("{msg}; nexthop object {id}: {}", errno_text(*c));
                            }
                            self.nh.release(id);
                        }
                        // The kernel kept what it had: it still counts as re-sent.
                        if let Some(s) = self.routes.get_mut(&prefix) {
                            s.flags |= SYNC_MARK;
                        }
                        results[op] = Some(Err(msg));
                    }
                }
                Pending::Delete { op, prefix } => {
                    // Already gone is as good as deleted.
                    if code == 0 || code == -libc::ESRCH || code == -libc::ENOENT {
                        if let Some(old) = self.routes.remove(&prefix) {
                            self.forget(old);
                        }
                        results[op] = Some(Ok(()));
                    } else {
                        results[op] = Some(Err(format!("{prefix}: {}", errno_text(code))));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err("no answer from the kernel".into())))
            .collect()
    }

    fn forget(&mut self, old: Slot) {
        if let Some(KAttrs {
            target: Target::Nh(id),
            ..
        }) = self.attrs.get(old.val())
        {
            self.nh.release(*id);
        }
        self.attrs.release(old.val());
        if old.flags & UNCONFIRMED != 0 {
            self.unconfirmed -= 1;
        }
    }

    /// Deletion messages for nexthop objects no longer used.
    pub fn garbage_messages(&mut self) -> Vec<RtMessage> {
        self.nh
            .collect_garbage()
            .into_iter()
            .map(nexthop_del_message)
            .collect()
    }

    /// Takes over what a previous run left in the kernel: nexthop objects and routes that
    /// carry our protocol, as unconfirmed state. `all_nexthop_ids` are every object id in
    /// the kernel (whoever owns it), so new ids avoid them. Returns the routes adopted.
    pub fn adopt(
        &mut self,
        nexthops: &[NexthopMessage],
        routes: &[RouteMessage],
        all_nexthop_ids: &[u32],
    ) -> usize {
        self.adopt_nexthops(nexthops, all_nexthop_ids);
        let adopted = routes.iter().filter(|r| self.adopt_route(r)).count();
        self.adopt_finish();
        adopted
    }

    /// [`KernelState::adopt`] in steps, so routes can be taken one at a time as a dump
    /// reads them: the nexthop objects first.
    pub fn adopt_nexthops(&mut self, nexthops: &[NexthopMessage], all_nexthop_ids: &[u32]) {
        if let Some(max) = all_nexthop_ids
            .iter()
            .copied()
            .filter(|&i| i >= FIRST_NH_ID)
            .max()
        {
            self.nh.next_id = self.nh.next_id.max(max.saturating_add(1));
        }
        for m in nexthops.iter().filter(|m| m.protocol == self.protocol) {
            let Some(id) = m.id else { continue };
            if !m.group.is_empty() {
                let mut g = m.group.clone();
                g.sort();
                self.nh.groups.entry(g.clone()).or_insert(id);
                self.nh.objects.insert(
                    id,
                    NhObject::Group {
                        members: g,
                        refs: 0,
                    },
                );
            } else if let (Some(oif), false) = (m.oif, m.blackhole) {
                let key = NhKey {
                    family: m.family,
                    gateway: m.gateway,
                    ifindex: oif,
                };
                self.nh.singles.entry(key).or_insert(id);
                self.nh
                    .objects
                    .insert(id, NhObject::Single { key, refs: 0 });
            }
        }
        // Groups hold references on their members.
        let members: Vec<u32> = self
            .nh
            .objects
            .values()
            .filter_map(|o| match o {
                NhObject::Group { members, .. } => Some(members.iter().map(|m| m.id)),
                _ => None,
            })
            .flatten()
            .collect();
        for id in members {
            if let Some(o) = self.nh.objects.get_mut(&id) {
                *o.refs_mut() += 1;
            }
        }
    }

    /// Takes one dumped route if it is ours; returns whether it was.
    pub fn adopt_route(&mut self, r: &RouteMessage) -> bool {
        let proto = self.intern("");
        {
            if u8::from(r.header.protocol) != self.protocol || route_table(r) != 254 {
                return false;
            }
            let Some(prefix) = route_prefix(r) else {
                return false;
            };
            let target = match r.header.kind {
                RouteType::BlackHole => Target::Blackhole,
                RouteType::Unreachable => Target::Reject,
                _ => {
                    let id = r.attributes.iter().find_map(|a| match a {
                        RouteAttribute::NhId(id) => Some(*id),
                        _ => None,
                    });
                    match id.and_then(|id| self.nh.objects.get_mut(&id).map(|o| (id, o))) {
                        Some((id, o)) => {
                            *o.refs_mut() += 1;
                            Target::Nh(id)
                        }
                        None => Target::Foreign,
                    }
                }
            };
            let id = self.attrs.acquire(&KAttrs {
                target,
                metric: 0,
                proto,
            });
            if let Some(old) = self.routes.insert(prefix, Slot::new(id, UNCONFIRMED)) {
                self.forget(old);
            }
            self.unconfirmed += 1;
        }
        true
    }

    /// Ends an adoption: objects nothing uses are collected with the next batch.
    pub fn adopt_finish(&mut self) {
        let unused: Vec<u32> = self
            .nh
            .objects
            .iter()
            .filter(|(_, o)| o.refs() == 0)
            .map(|(id, _)| *id)
            .collect();
        self.nh.candidates.extend(unused);
    }

    fn route_of(&self, prefix: &IpNet, s: Slot) -> Route {
        let k = self.attrs.get(s.val()).copied().unwrap_or(KAttrs {
            target: Target::Foreign,
            metric: 0,
            proto: 0,
        });
        let (action, nexthops) = match k.target {
            Target::Nh(id) => (Action::Forward, self.nh.nexthops_of(id)),
            Target::Blackhole => (Action::Blackhole, Vec::new()),
            Target::Reject => (Action::Reject, Vec::new()),
            Target::Foreign => (Action::Forward, Vec::new()),
        };
        Route {
            prefix: *prefix,
            nexthops,
            action,
            metric: k.metric,
            protocol: self
                .protos
                .get(usize::from(k.proto))
                .cloned()
                .unwrap_or_default(),
        }
    }

    /// Every route, sorted.
    pub fn routes(&self) -> Vec<Route> {
        self.routes_page(None, usize::MAX)
    }

    /// Up to `limit` routes after `after`, sorted.
    pub fn routes_page(&self, after: Option<&IpNet>, limit: usize) -> Vec<Route> {
        self.routes
            .page(after, limit)
            .into_iter()
            .map(|(p, s)| self.route_of(&p, s))
            .collect()
    }

    /// The route for `prefix`.
    pub fn get(&self, prefix: &IpNet) -> Option<Route> {
        self.routes.get(prefix).map(|s| self.route_of(prefix, s))
    }

    /// Every prefix.
    pub fn prefixes(&self) -> Vec<IpNet> {
        self.routes
            .page(None, usize::MAX)
            .into_iter()
            .map(|x| x.0)
            .collect()
    }

    fn is_unconfirmed(&self, prefix: &IpNet) -> bool {
        self.routes
            .get(prefix)
            .is_some_and(|s| s.flags & UNCONFIRMED != 0)
    }

    /// Clears every route's re-sent mark (a resynchronisation starts).
    pub fn sync_begin(&mut self) {
        self.routes.for_each_mut(|s| s.flags &= !SYNC_MARK);
    }

    /// Routes not re-sent since [`KernelState::sync_begin`], after `after`.
    pub fn stale_page(&self, after: Option<&IpNet>, limit: usize) -> Vec<IpNet> {
        super::unmarked_page(&self.routes, after, limit)
    }

    /// Approximate heap bytes of the route map (for `show fea` and the benchmarks).
    pub fn route_bytes(&self) -> usize {
        self.routes.heap_bytes()
    }
}

fn route_table(r: &RouteMessage) -> u32 {
    r.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(r.header.table))
}

fn route_prefix(r: &RouteMessage) -> Option<IpNet> {
    let len = r.header.destination_prefix_length;
    let addr = r.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(a)) => Some(IpAddr::V4(*a)),
        RouteAttribute::Destination(RouteAddress::Inet6(a)) => Some(IpAddr::V6(*a)),
        _ => None,
    });
    let addr = match (addr, r.header.address_family) {
        (Some(a), _) => a,
        // The default route carries no RTA_DST.
        (None, AddressFamily::Inet) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        (None, AddressFamily::Inet6) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        _ => return None,
    };
    IpNet::new(addr, len).ok().map(|n| n.trunc())
}

/// Sorts IPv4 op indices (`prefix_of(i)` is op `i`'s prefix) by their network address
/// with the bits reversed, stably (same-address prefixes keep their order).
///
/// Why: the kernel's IPv4 FIB is an LC-trie that inflates and re-parents nodes as they
/// fill; prefixes arriving in address order (a RIB walking its table, a BGP dump) keep
/// growing the same right edge, so most insertions pay a `resize`/`put_child` pass.
/// Consecutive inserts spread over the batch's address range fill every node a little at
/// a time instead: measured on 6.18 with the full table in windows of 2,000 routes,
/// 2.49-2.60 s of kernel time against 2.92-3.10 s in address order (fea/BENCHMARKS.part.md).
/// Applied to distinct prefixes only (a segment), so the final state is the same.
/// IPv6 routes (a radix tree, no gain measured) keep their order.
pub fn spread_ipv4(indices: &mut [usize], prefix_of: impl Fn(usize) -> IpNet) {
    indices.sort_by_key(|&i| match prefix_of(i) {
        IpNet::V4(n) => u32::from(n.network()).reverse_bits(),
        IpNet::V6(_) => u32::MAX,
    });
}

/// Datagrams queued to each inserter thread before the planner waits for answers.
const PIPELINE_DEPTH: usize = 16;

/// One datagram for the inserter: `count` framed messages with consecutive sequence
/// numbers from `first_seq`, the last one asking for an ack.
struct Job {
    buf: Vec<u8>,
    first_seq: u32,
    count: u32,
}

/// An inserter's answer: which inserter ([`V4`] or [`V6`]), the buffer back (for reuse)
/// and the failed messages (index in the datagram, -errno), or why the datagram could not
/// be sent. Each inserter answers its datagrams in order.
struct Done {
    inserter: usize,
    buf: Vec<u8>,
    errors: Result<Vec<(u32, i32)>, String>,
}

/// A thread that only moves datagrams through its own netlink socket, so the kernel
/// inserts one datagram while the planner decides and frames the next ones.
struct Inserter {
    jobs: Option<std::sync::mpsc::SyncSender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Inserter {
    /// Starts inserter number `inserter`, answering on `done`.
    fn start(
        mut sock: NlSocket,
        inserter: usize,
        done: std::sync::mpsc::Sender<Done>,
    ) -> std::io::Result<Self> {
        let (jobs, job_rx) = std::sync::mpsc::sync_channel::<Job>(PIPELINE_DEPTH);
        let thread = std::thread::Builder::new()
            .name("fea-netlink".into())
            .spawn(move || {
                while let Ok(job) = job_rx.recv() {
                    let errors = sock
                        .send_batch(&job.buf, job.first_seq, job.count)
                        .map_err(|e| e.to_string());
                    let answer = Done {
                        inserter,
                        buf: job.buf,
                        errors,
                    };
                    if done.send(answer).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Inserter {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    fn send(&self, job: Job) -> bool {
        self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok())
    }
}

impl Drop for Inserter {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A planned chunk whose datagram is with an inserter.
struct InFlight {
    plan: Plan,
    /// Messages in the datagram (nexthop objects first); 0: nothing was sent.
    count: usize,
    /// The chunk's ops as indices into the segment, in plan order.
    ops: Vec<usize>,
}

/// Inserter for IPv4 routes and every nexthop object outside a route chunk.
const V4: usize = 0;
/// Inserter for IPv6 routes. The kernel inserts IPv6 routes without serializing them
/// with IPv4 ones (measured on 6.18: 100k + 100k routes by two `ip -batch` at once take
/// half the time of one after the other), so the families go through separate sockets
/// and threads and are inserted in parallel when a batch carries both.
const V6: usize = 1;

/// The kernel FIB over rtnetlink.
pub struct KernelBackend {
    state: KernelState,
    /// For dumps at start.
    sock: NlSocket,
    /// [`V4`] and [`V6`].
    inserters: [Inserter; 2],
    /// Both inserters' answers.
    done: std::sync::mpsc::Receiver<Done>,
    seq: u32,
    batch: usize,
    messages: u64,
    sends: u64,
    /// Datagram buffers returned by the inserter, reused.
    free: Vec<Vec<u8>>,
    /// Send each segment's IPv4 routes in [`spread_ipv4`] order.
    spread_ipv4: bool,
}

impl KernelBackend {
    /// Opens the netlink sockets (in `opts.netns` if set) and the inserter thread. Call
    /// [`FibBackend::load_existing`] before applying anything.
    pub fn open(opts: &BackendOptions) -> Result<Self, BackendError> {
        let sock = NlSocket::open(opts.netns.as_deref())?;
        let (done_tx, done) = std::sync::mpsc::channel();
        let inserter = |number: usize| -> Result<Inserter, BackendError> {
            let isock = NlSocket::open(opts.netns.as_deref())?;
            // Error answers for a whole queue of datagrams must fit.
            isock.set_rcvbuf(4 << 20);
            Ok(Inserter::start(isock, number, done_tx.clone())
                .map_err(crate::netlink::NlError::from)?)
        };
        let inserters = [inserter(V4)?, inserter(V6)?];
        Ok(KernelBackend {
            state: KernelState::new(opts.route_protocol),
            sock,
            inserters,
            done,
            seq: 0,
            batch: opts.netlink_batch.max(1),
            messages: 0,
            sends: 0,
            free: Vec::new(),
            spread_ipv4: opts.spread_ipv4,
        })
    }

    /// The decision state (for tests and inspection).
    pub fn state(&self) -> &KernelState {
        &self.state
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Frames `plan`'s messages into one datagram and queues it to `inserter`; returns
    /// the count (0: nothing to send), or an error if the inserter is gone.
    fn submit(&mut self, plan: &Plan, inserter: usize) -> Result<usize, String> {
        let count = plan.nexthops.len() + plan.routes.len();
        if count == 0 {
            return Ok(0);
        }
        let mut buf = self.free.pop().unwrap_or_default();
        buf.clear();
        let first_seq = self.seq.wrapping_add(1).max(1);
        let mut n = 0;
        for m in &plan.nexthops {
            n += 1;
            let ack = if n == count { NLM_F_ACK } else { 0 };
            let seq = self.next_seq();
            frame_into(&mut buf, m, NLM_F_REQUEST | NLM_F_CREATE | ack, seq);
        }
        for r in &plan.routes {
            n += 1;
            let ack = if n == count { NLM_F_ACK } else { 0 };
            let seq = self.next_seq();
            frame_route(&mut buf, self.state.protocol, r, ack, seq);
        }
        // A wrapped sequence in the middle of a datagram would break index matching.
        if self.seq < first_seq {
            self.seq = 0;
            buf.clear();
            return self.submit(plan, inserter);
        }
        self.messages += count as u64;
        self.sends += 1;
        let job = Job {
            buf,
            first_seq,
            count: count as u32,
        };
        if !self.inserters[inserter].send(job) {
            tracing::error!("netlink inserter thread stopped");
            return Err("netlink inserter thread stopped".into());
        }
        Ok(count)
    }

    /// The next answer from either inserter; `None` once both are gone.
    fn next_done(&mut self) -> Option<Done> {
        self.done.recv().ok()
    }

    /// One code per message of a datagram of `count` messages from its answer.
    fn codes(&mut self, done: Done, count: usize) -> Vec<i32> {
        let mut codes = vec![0i32; count];
        match done.errors {
            Ok(errors) => {
                for (i, c) in errors {
                    if let Some(x) = codes.get_mut(i as usize) {
                        *x = c;
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "netlink send failed");
                codes.fill(-libc::EIO);
            }
        }
        if self.free.len() < PIPELINE_DEPTH && !done.buf.is_empty() {
            self.free.push(done.buf);
        }
        codes
    }

    /// Commits a chunk with its messages' codes (empty: nothing was sent).
    fn commit(&mut self, f: InFlight, codes: &[i32], results: &mut [Option<Result<(), String>>]) {
        let (codes_nh, codes_routes) = if codes.is_empty() {
            (&[][..], &[][..])
        } else {
            codes.split_at(f.plan.nexthops.len())
        };
        let committed = self.state.commit(f.plan, codes_nh, codes_routes);
        for (i, r) in f.ops.into_iter().zip(committed) {
            results[i] = Some(r);
        }
    }

    /// Waits for the next answer from either inserter and commits the chunk it answers
    /// (that inserter's oldest in `queues`). If the inserters are gone, everything in
    /// flight fails.
    fn finish_next(
        &mut self,
        queues: &mut [std::collections::VecDeque<InFlight>; 2],
        results: &mut [Option<Result<(), String>>],
    ) {
        let Some(done) = self.next_done() else {
            tracing::error!("netlink inserter threads stopped");
            for f in queues.iter_mut().flat_map(std::mem::take) {
                let codes = vec![-libc::EIO; f.count];
                self.commit(f, &codes, results);
            }
            return;
        };
        let Some(f) = queues[done.inserter].pop_front() else {
            tracing::error!(
                inserter = done.inserter,
                "netlink answer without a datagram"
            );
            return;
        };
        let codes = self.codes(done, f.count);
        self.commit(f, &codes, results);
    }

    /// Plans, frames and sends `ops` (distinct prefixes) a datagram at a time, IPv4 and
    /// IPv6 chunks alternately to their own inserters, keeping up to [`PIPELINE_DEPTH`]
    /// datagrams queued to each and committing answers as they come from either, so the
    /// kernel never waits for the planner. A family whose queue is full never holds up
    /// the other: with both cores busy one inserter can fall behind while the other has
    /// room (seen in the BGP full-table feed, where each gets a third of a core). A chunk
    /// that creates nexthop objects is answered before anything else is sent: a route of
    /// the other family may use them, and the two sockets are not ordered with each other.
    fn apply_segment(&mut self, ops: &[FibOp], results: &mut Vec<Result<(), String>>) {
        let mut slots: Vec<Option<Result<(), String>>> = vec![None; ops.len()];
        let by_family: [Vec<usize>; 2] = {
            let (mut v4, v6): (Vec<usize>, Vec<usize>) =
                (0..ops.len()).partition(|&i| matches!(ops[i].prefix(), IpNet::V4(_)));
            if self.spread_ipv4 {
                spread_ipv4(&mut v4, |i| ops[i].prefix());
            }
            [v4, v6]
        };
        let mut chunks = [
            by_family[V4].chunks(self.batch).peekable(),
            by_family[V6].chunks(self.batch).peekable(),
        ];
        let mut queues: [std::collections::VecDeque<InFlight>; 2] = Default::default();
        let mut turn = V4;
        loop {
            let ready =
                [V4, V6].map(|f| chunks[f].peek().is_some() && queues[f].len() < PIPELINE_DEPTH);
            let family = if ready[turn] {
                turn
            } else if ready[1 - turn] {
                1 - turn
            } else if queues.iter().any(|q| !q.is_empty()) {
                self.finish_next(&mut queues, &mut slots);
                continue;
            } else {
                break;
            };
            let chunk = chunks[family].next().expect("peeked");
            let plan = self
                .state
                .plan_refs(chunk.iter().map(|&i| &ops[i]), chunk.len());
            let creates_nexthops = !plan.nexthops.is_empty();
            let submitted = self.submit(&plan, family);
            let flight = InFlight {
                plan,
                count: 0,
                ops: chunk.to_vec(),
            };
            match submitted {
                Ok(0) => self.commit(flight, &[], &mut slots),
                Ok(count) => queues[family].push_back(InFlight { count, ..flight }),
                Err(_) => {
                    let count = flight.plan.nexthops.len() + flight.plan.routes.len();
                    self.commit(flight, &vec![-libc::EIO; count], &mut slots);
                }
            }
            if creates_nexthops {
                while queues.iter().any(|q| !q.is_empty()) {
                    self.finish_next(&mut queues, &mut slots);
                }
            }
            turn = 1 - family;
        }
        results.extend(
            slots
                .into_iter()
                .map(|r| r.unwrap_or_else(|| Err("no answer from the kernel".into()))),
        );
    }

    fn collect_garbage(&mut self) {
        let dels: Vec<RtMessage> = self.state.garbage_messages();
        for chunk in dels.chunks(self.batch) {
            let plan = Plan {
                nexthops: chunk.to_vec(),
                routes: Vec::new(),
                pending: Vec::new(),
                decided: Vec::new(),
            };
            // Deletions carry no NLM_F_CREATE, but the kernel ignores it on deletes. Nothing
            // else is in flight here, so the next answer is this datagram's.
            let codes = match self.submit(&plan, V4) {
                Ok(0) | Err(_) => continue,
                Ok(count) => match self.next_done() {
                    Some(done) => self.codes(done, count),
                    None => vec![-libc::EIO; count],
                },
            };
            for c in codes {
                if c != 0 && c != -libc::ENOENT {
                    tracing::warn!(error = %errno_text(c), "deleting a nexthop object");
                }
            }
        }
    }
}

impl FibBackend for KernelBackend {
    fn name(&self) -> &'static str {
        "kernel"
    }

    fn apply(&mut self, ops: &[FibOp]) -> Vec<Result<(), String>> {
        // A plan must not name a prefix twice (its decisions read the state before the
        // plan), so ops are cut into segments where every prefix is distinct.
        let mut results = Vec::with_capacity(ops.len());
        let mut start = 0;
        let mut seen = HashSet::new();
        for (i, op) in ops.iter().enumerate() {
            if !seen.insert(op.prefix()) {
                self.apply_segment(&ops[start..i], &mut results);
                seen.clear();
                seen.insert(op.prefix());
                start = i;
            }
        }
        self.apply_segment(&ops[start..], &mut results);
        self.collect_garbage();
        results
    }

    fn load_existing(&mut self) -> Result<usize, BackendError> {
        let nh_req = RtMessage::Nexthop(
            RTM_GETNEXTHOP,
            NexthopMessage {
                family: AF_UNSPEC,
                ..Default::default()
            },
        );
        let nexthops: Vec<NexthopMessage> = match self.sock.dump(&nh_req) {
            Ok(v) => v
                .into_iter()
                .filter_map(|m| match m {
                    RtMessage::Nexthop(_, n) => Some(n),
                    _ => None,
                })
                .collect(),
            // Kernels without nexthop objects (< 5.3) answer EINVAL/EOPNOTSUPP.
            Err(e) => {
                tracing::warn!(error = %e, "cannot dump nexthop objects");
                Vec::new()
            }
        };
        let all_ids: Vec<u32> = nexthops.iter().filter_map(|n| n.id).collect();
        self.state.adopt_nexthops(&nexthops, &all_ids);
        // Routes are adopted as the dump reads them: a full table is never held twice.
        let mut adopted = 0;
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut req = RouteMessage::default();
            req.header.address_family = family;
            let state = &mut self.state;
            self.sock
                .dump_each(&RtMessage::Route(RouteNetlinkMessage::GetRoute(req)), |m| {
                    if let RtMessage::Route(RouteNetlinkMessage::NewRoute(r)) = m {
                        if state.adopt_route(&r) {
                            adopted += 1;
                        }
                    }
                })
                .map_err(BackendError::from)?;
        }
        self.state.adopt_finish();
        Ok(adopted)
    }

    fn routes_page(&self, after: Option<&IpNet>, limit: usize) -> Vec<Route> {
        self.state.routes_page(after, limit)
    }

    fn get(&self, prefix: &IpNet) -> Option<Route> {
        self.state.get(prefix)
    }

    fn sync_begin(&mut self) {
        self.state.sync_begin();
    }

    fn stale_page(&self, after: Option<&IpNet>, limit: usize) -> Vec<IpNet> {
        self.state.stale_page(after, limit)
    }

    fn is_unconfirmed(&self, prefix: &IpNet) -> bool {
        self.state.is_unconfirmed(prefix)
    }

    fn status(&self) -> BackendStatus {
        let (singles, groups) = self.state.nh.counts();
        let v4 = self.state.routes.len_v4() as u64;
        BackendStatus {
            backend: "kernel".into(),
            routes_ipv4: v4,
            routes_ipv6: self.state.routes.len() as u64 - v4,
            nexthop_objects: singles,
            nexthop_groups: groups,
            unconfirmed: self.state.unconfirmed,
            messages: self.messages,
            sends: self.sends,
        }
    }

    fn set_batch(&mut self, messages: usize) {
        self.batch = messages.max(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u8 = 201;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn via(p: &str, gws: &[&str]) -> Route {
        Route {
            prefix: net(p),
            nexthops: gws
                .iter()
                .map(|g| Nexthop {
                    gateway: Some(g.parse().unwrap()),
                    ifindex: 2,
                    weight: 1,
                })
                .collect(),
            action: Action::Forward,
            metric: 0,
            protocol: "static".into(),
        }
    }

    fn typed(p: &str, action: Action) -> Route {
        Route {
            prefix: net(p),
            nexthops: vec![],
            action,
            metric: 0,
            protocol: "static".into(),
        }
    }

    /// Plans and commits as if the kernel accepted everything.
    fn apply_ok(s: &mut KernelState, ops: &[FibOp]) -> (usize, usize, Vec<RtMessage>) {
        let plan = s.plan(ops);
        let (n, r) = (plan.nexthops.len(), plan.routes.len());
        let res = s.commit(plan, &vec![0; n], &vec![0; r]);
        assert!(res.iter().all(Result::is_ok), "{res:?}");
        (n, r, s.garbage_messages())
    }

    #[test]
    fn route_message_carries_protocol_table_and_nh_id() {
        let RtMessage::Route(RouteNetlinkMessage::NewRoute(m)) =
            route_add_message(P, &net("10.1.0.0/16"), Target::Nh(1_000_000))
        else {
            panic!()
        };
        assert_eq!(m.header.address_family, AddressFamily::Inet);
        assert_eq!(m.header.destination_prefix_length, 16);
        assert_eq!(m.header.table, 254);
        assert_eq!(u8::from(m.header.protocol), 201);
        assert_eq!(m.header.kind, RouteType::Unicast);
        assert!(m.attributes.contains(&RouteAttribute::NhId(1_000_000)));
        // Wire bytes: rtmsg then RTA_DST(1) and RTA_NH_ID(30).
        let mut buf = Vec::new();
        frame_into(
            &mut buf,
            &RtMessage::Route(RouteNetlinkMessage::NewRoute(m)),
            0,
            1,
        );
        assert_eq!(u16::from_ne_bytes([buf[4], buf[5]]), 24); // RTM_NEWROUTE
        let rtm = &buf[16..28];
        assert_eq!(rtm, &[2, 16, 0, 0, 254, 201, 0, 1, 0, 0, 0, 0]);
        assert_eq!(&buf[28..36], &[8, 0, 1, 0, 10, 1, 0, 0]);
        assert_eq!(&buf[36..40], &[8, 0, 30, 0]);
        assert_eq!(&buf[40..44], &1_000_000u32.to_ne_bytes());
    }

    #[test]
    fn direct_framing_matches_the_message_builder() {
        let cases = [
            ("10.1.0.0/16", Some(Target::Nh(1_000_000))),
            ("0.0.0.0/0", Some(Target::Nh(7))),
            ("2001:db8::/32", Some(Target::Nh(1_000_001))),
            ("2001:db8::/32", Some(Target::Blackhole)),
            ("192.0.2.0/24", Some(Target::Reject)),
            ("192.0.2.0/24", Some(Target::Foreign)),
            ("192.0.2.0/24", None),
            ("2001:db8:1::/48", None),
        ];
        for (p, target) in cases {
            let req = RouteReq {
                prefix: net(p),
                target,
            };
            for (ack, seq) in [(0, 1), (NLM_F_ACK, 77)] {
                let (m, flags) = req.message(P);
                let mut want = Vec::new();
                frame_into(&mut want, &m, NLM_F_REQUEST | flags | ack, seq);
                let mut got = Vec::new();
                frame_route(&mut got, P, &req, ack, seq);
                assert_eq!(got, want, "{p} {target:?}");
            }
        }
    }

    #[test]
    fn blackhole_reject_and_delete_messages() {
        let RtMessage::Route(RouteNetlinkMessage::NewRoute(b)) =
            route_add_message(P, &net("2001:db8::/32"), Target::Blackhole)
        else {
            panic!()
        };
        assert_eq!(b.header.kind, RouteType::BlackHole);
        assert_eq!(b.header.address_family, AddressFamily::Inet6);
        assert!(!b
            .attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::NhId(_))));
        let RtMessage::Route(RouteNetlinkMessage::NewRoute(r)) =
            route_add_message(P, &net("192.0.2.0/24"), Target::Reject)
        else {
            panic!()
        };
        assert_eq!(r.header.kind, RouteType::Unreachable);
        let RtMessage::Route(RouteNetlinkMessage::DelRoute(d)) =
            route_del_message(P, &net("192.0.2.0/24"))
        else {
            panic!()
        };
        assert_eq!(d.header.scope, RouteScope::NoWhere);
        assert_eq!(u8::from(d.header.protocol), 201);
    }

    #[test]
    fn shared_next_hop_is_one_object_with_a_refcount() {
        let mut s = KernelState::new(P);
        let (n, r, gc) = apply_ok(
            &mut s,
            &[
                FibOp::Add(via("10.1.0.0/16", &["10.0.0.2"])),
                FibOp::Add(via("10.2.0.0/16", &["10.0.0.2"])),
                FibOp::Add(via("10.3.0.0/16", &["10.0.0.3"])),
            ],
        );
        assert_eq!((n, r), (2, 3));
        assert!(gc.is_empty());
        let Some(Target::Nh(a)) = s.target(&net("10.1.0.0/16")) else {
            panic!()
        };
        assert_eq!(a, FIRST_NH_ID);
        assert_eq!(s.target(&net("10.2.0.0/16")), Some(Target::Nh(a)));
        assert_eq!(s.nexthops().refs(a), Some(2));
        // Deleting both users frees the object, and only then.
        let (_, _, gc) = apply_ok(&mut s, &[FibOp::Delete(net("10.1.0.0/16"))]);
        assert!(gc.is_empty());
        assert_eq!(s.nexthops().refs(a), Some(1));
        let (_, _, gc) = apply_ok(&mut s, &[FibOp::Delete(net("10.2.0.0/16"))]);
        assert_eq!(gc, vec![nexthop_del_message(a)]);
        assert_eq!(s.nexthops().refs(a), None);
    }

    #[test]
    fn ecmp_route_uses_a_group_holding_its_members() {
        let mut s = KernelState::new(P);
        let plan = s.plan(&[FibOp::Add(via("10.1.0.0/16", &["10.0.0.3", "10.0.0.2"]))]);
        // Two members, then the group, then the route.
        assert_eq!(plan.nexthops.len(), 3);
        let RtMessage::Nexthop(_, g) = &plan.nexthops[2] else {
            panic!()
        };
        assert_eq!(g.group.len(), 2);
        assert_eq!(g.family, AF_UNSPEC);
        let gid = g.id.unwrap();
        s.commit(plan, &[0, 0, 0], &[0]);
        assert_eq!(s.target(&net("10.1.0.0/16")), Some(Target::Nh(gid)));
        // The same set in another order is the same group: no new objects, and re-sending
        // the route is no message at all.
        let (n, r, _) = apply_ok(
            &mut s,
            &[
                FibOp::Add(via("10.2.0.0/16", &["10.0.0.2", "10.0.0.3"])),
                FibOp::Add(via("10.1.0.0/16", &["10.0.0.2", "10.0.0.3"])),
            ],
        );
        assert_eq!((n, r), (0, 1));
        assert_eq!(s.nexthops().refs(gid), Some(2));
        let reported = s.get(&net("10.1.0.0/16")).unwrap();
        assert_eq!(reported.nexthops.len(), 2);
        // Removing both routes frees the group first, then its members.
        let (_, _, gc) = apply_ok(
            &mut s,
            &[
                FibOp::Delete(net("10.1.0.0/16")),
                FibOp::Delete(net("10.2.0.0/16")),
            ],
        );
        assert_eq!(gc.len(), 3);
        assert_eq!(gc[0], nexthop_del_message(gid));
        assert_eq!(s.nexthops().counts(), (0, 0));
    }

    #[test]
    fn changed_next_hop_replaces_the_route_and_frees_the_old_object() {
        let mut s = KernelState::new(P);
        apply_ok(&mut s, &[FibOp::Add(via("10.1.0.0/16", &["10.0.0.2"]))]);
        let old = s.target(&net("10.1.0.0/16"));
        let (n, r, gc) = apply_ok(&mut s, &[FibOp::Add(via("10.1.0.0/16", &["10.0.0.3"]))]);
        assert_eq!((n, r), (1, 1));
        let Some(Target::Nh(old)) = old else { panic!() };
        assert_eq!(gc, vec![nexthop_del_message(old)]);
        // Turning it into a blackhole sends only the route.
        let (n, r, _) = apply_ok(
            &mut s,
            &[FibOp::Add(typed("10.1.0.0/16", Action::Blackhole))],
        );
        assert_eq!((n, r), (0, 1));
        let (n, r, _) = apply_ok(
            &mut s,
            &[FibOp::Add(typed("10.1.0.0/16", Action::Blackhole))],
        );
        assert_eq!((n, r), (0, 0));
    }

    #[test]
    fn kernel_errors_are_reported_per_route_and_state_kept() {
        let mut s = KernelState::new(P);
        let plan = s.plan(&[
            FibOp::Add(via("10.1.0.0/16", &["10.0.0.2"])),
            FibOp::Add(via("10.2.0.0/16", &["10.0.0.2"])),
        ]);
        let res = s.commit(plan, &[0], &[0, -libc::EINVAL]);
        assert!(res[0].is_ok());
        assert!(res[1].as_ref().unwrap_err().contains("10.2.0.0/16"));
        assert!(s.target(&net("10.2.0.0/16")).is_none());
        let Some(Target::Nh(id)) = s.target(&net("10.1.0.0/16")) else {
            panic!()
        };
        assert_eq!(s.nexthops().refs(id), Some(1));
        // Delete of a route the kernel no longer has counts as done.
        let plan = s.plan(&[FibOp::Delete(net("10.1.0.0/16"))]);
        let res = s.commit(plan, &[], &[-libc::ESRCH]);
        assert!(res[0].is_ok());
        assert!(s.prefixes().is_empty());
    }

    #[test]
    fn invalid_next_hops_are_refused_without_messages() {
        let mut s = KernelState::new(P);
        let mut r = via("10.1.0.0/16", &["10.0.0.2"]);
        r.nexthops[0].ifindex = 0;
        let mut v6 = via("2001:db8::/32", &["10.0.0.2"]);
        v6.protocol = "bgp".into();
        let plan = s.plan(&[FibOp::Add(r), FibOp::Add(v6)]);
        assert!(plan.routes.is_empty() && plan.nexthops.is_empty());
        let res = s.commit(plan, &[], &[]);
        assert!(res.iter().all(Result::is_err));
    }

    #[test]
    fn adoption_keeps_ids_and_makes_resent_routes_free() {
        // What a previous run left: nh 1000005 via 10.0.0.2, group 1000007 of 5 and 6.
        let nh = |id, gw: &str| NexthopMessage {
            family: AF_INET,
            protocol: P,
            id: Some(id),
            oif: Some(2),
            gateway: Some(gw.parse().unwrap()),
            ..Default::default()
        };
        let group = NexthopMessage {
            protocol: P,
            id: Some(1_000_007),
            group: vec![
                GroupMember {
                    id: 1_000_005,
                    weight: 1,
                },
                GroupMember {
                    id: 1_000_006,
                    weight: 1,
                },
            ],
            ..Default::default()
        };
        let route = |p: &str, id: u32| {
            let RtMessage::Route(RouteNetlinkMessage::NewRoute(m)) =
                route_add_message(P, &net(p), Target::Nh(id))
            else {
                panic!()
            };
            m
        };
        let mut other = route("10.9.0.0/16", 1_000_005);
        other.header.protocol = RouteProtocol::Static;
        let mut s = KernelState::new(P);
        let n = s.adopt(
            &[nh(1_000_005, "10.0.0.2"), nh(1_000_006, "10.0.0.3"), group],
            &[
                route("10.1.0.0/16", 1_000_005),
                route("10.2.0.0/16", 1_000_007),
                route("10.3.0.0/16", 1_000_005),
                other,
            ],
            &[1_000_005, 1_000_006, 1_000_007, 1_000_020],
        );
        assert_eq!(n, 3);
        assert!(s.is_unconfirmed(&net("10.1.0.0/16")));
        // Re-sending identical routes: no message.
        let (nn, r, gc) = apply_ok(
            &mut s,
            &[
                FibOp::Add(via("10.1.0.0/16", &["10.0.0.2"])),
                FibOp::Add(via("10.2.0.0/16", &["10.0.0.2", "10.0.0.3"])),
            ],
        );
        assert_eq!((nn, r), (0, 0));
        assert!(gc.is_empty());
        assert!(!s.is_unconfirmed(&net("10.1.0.0/16")));
        assert!(s.is_unconfirmed(&net("10.3.0.0/16")));
        // New objects get ids past every id in the kernel.
        let (nn, _, _) = apply_ok(&mut s, &[FibOp::Add(via("10.4.0.0/16", &["10.0.0.4"]))]);
        assert_eq!(nn, 1);
        assert_eq!(s.target(&net("10.4.0.0/16")), Some(Target::Nh(1_000_021)));
    }

    #[test]
    fn spread_order_interleaves_consecutive_addresses() {
        let ps: Vec<IpNet> = ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"]
            .iter()
            .map(|p| net(p))
            .collect();
        let mut idx: Vec<usize> = (0..ps.len()).collect();
        spread_ipv4(&mut idx, |i| ps[i]);
        // Lowest differing bit first: .0 and .2 (bit 8 clear) before .1 and .3.
        assert_eq!(idx, vec![0, 2, 1, 3]);
    }

    #[test]
    fn spread_order_keeps_same_address_prefixes_in_op_order() {
        let ps = [net("10.0.0.0/16"), net("10.0.0.0/8"), net("10.128.0.0/9")];
        let mut idx = vec![0, 1, 2];
        spread_ipv4(&mut idx, |i| ps[i]);
        assert_eq!(idx, vec![0, 1, 2]);
        let mut idx = vec![1, 0, 2];
        spread_ipv4(&mut idx, |i| ps[i]);
        assert_eq!(idx, vec![1, 0, 2]);
    }

    proptest::proptest! {
        /// The spread order is a permutation of the indices, sorted by reversed address.
        #[test]
        fn spread_order_is_a_sorted_permutation(addrs in proptest::collection::vec((proptest::num::u32::ANY, 8u8..=32), 0..200)) {
            let ps: Vec<IpNet> = addrs
                .iter()
                .map(|&(a, l)| IpNet::V4(ipnet::Ipv4Net::new(a.into(), l).unwrap().trunc()))
                .collect();
            let mut idx: Vec<usize> = (0..ps.len()).rev().collect();
            spread_ipv4(&mut idx, |i| ps[i]);
            let mut seen = idx.clone();
            seen.sort_unstable();
            proptest::prop_assert_eq!(seen, (0..ps.len()).collect::<Vec<_>>());
            let key = |i: usize| match ps[i] {
                IpNet::V4(n) => u32::from(n.network()).reverse_bits(),
                IpNet::V6(_) => unreachable!(),
            };
            for w in idx.windows(2) {
                proptest::prop_assert!(key(w[0]) <= key(w[1]));
            }
        }
    }

    proptest::proptest! {
        /// Whatever sequence of adds and deletes, refcounts equal the users of each object
        /// and nothing unused survives garbage collection.
        #[test]
        fn refcounts_match_users(ops in proptest::collection::vec((0u8..6, 0u8..4, proptest::bool::ANY), 1..60)) {
            let mut s = KernelState::new(P);
            let gws = ["10.0.0.2", "10.0.0.3", "10.0.0.4"];
            for (p, nh, del) in ops {
                let prefix = format!("10.{p}.0.0/16");
                let op = if del {
                    FibOp::Delete(net(&prefix))
                } else {
                    match nh {
                        3 => FibOp::Add(via(&prefix, &gws[..2])),
                        n => FibOp::Add(via(&prefix, &[gws[n as usize]])),
                    }
                };
                apply_ok(&mut s, &[op]);
                check_refs(&s)?;
            }
        }
    }

    fn check_refs(s: &KernelState) -> Result<(), proptest::test_runner::TestCaseError> {
        {
            let mut users: HashMap<u32, u32> = HashMap::new();
            for p in s.prefixes() {
                if let Some(Target::Nh(id)) = s.target(&p) {
                    *users.entry(id).or_default() += 1;
                }
            }
            for o in s.nh.objects.values() {
                if let NhObject::Group { members, .. } = o {
                    for m in members {
                        *users.entry(m.id).or_default() += 1;
                    }
                }
            }
            for (id, o) in &s.nh.objects {
                proptest::prop_assert_eq!(o.refs(), users.get(id).copied().unwrap_or(0));
                proptest::prop_assert!(o.refs() > 0);
            }
        }
        Ok(())
    }
}
