//! The OSPF routing table (RFC 2328 16): intra-area routes from each area's shortest-path
//! tree (16.1), inter-area routes from summary-LSAs (16.2), AS-external routes (16.4, and
//! NSSA type-7 routes inside their NSSA, RFC 3101 2.5), what an area border router
//! summarises into each area (12.4.3), and an NSSA border router's translator election and
//! type-7 to type-5 translations (RFC 3101 3.1, 3.2).
//!
//! Not done: transit areas (16.3, only needed with virtual links, which oxr-ospf does not
//! support), area address ranges (aggregation at the ABR, also of translated type-7s), the
//! translator's TranslatorStabilityInterval, and the RFC1583Compatibility-off preference
//! rules of 16.4.1 (the cheapest ASBR path wins, intra-area before inter-area).

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Serialize;

use crate::consts::LS_INFINITY;
use crate::packet::lsa::{
    options, router_flags, ExternalLsa, LinkType, LSA_EXTERNAL, LSA_NSSA, LSA_ROUTER,
    LSA_SUMMARY_ASBR, LSA_SUMMARY_NET,
};
use crate::packet::{Lsa, LsaBody};
use crate::spf::{spf, LocalIface, NextHop, SpfTree, VertexId};
use crate::{AreaId, RouterId, BACKBONE};

/// Path type, best first (RFC 2328 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum PathType {
    /// Within an area.
    IntraArea,
    /// From another area via summary-LSAs.
    InterArea,
    /// External, type 1 metric (comparable with OSPF costs).
    External1,
    /// External, type 2 metric (larger than any OSPF cost).
    External2,
}

/// A route to a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// Path type.
    pub path_type: PathType,
    /// Cost (for type 2 externals, the cost to the ASBR or forwarding address).
    pub cost: u32,
    /// Type 2 external metric (0 otherwise).
    pub type2_cost: u32,
    /// Area the path goes through (None for external routes).
    pub area: Option<AreaId>,
    /// External route tag (0 otherwise).
    pub tag: u32,
    /// Equal-cost next hops, sorted. Empty-address next hops are directly connected.
    pub nexthops: Vec<NextHop>,
}

impl Route {
    fn key(&self) -> (PathType, u32, u32) {
        match self.path_type {
            PathType::External2 => (self.path_type, self.type2_cost, self.cost),
            _ => (self.path_type, self.cost, 0),
        }
    }
}

/// A route to an area border or AS boundary router.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouterRoute {
    /// Intra- or inter-area.
    pub path_type: PathType,
    /// Cost.
    pub cost: u32,
    /// Is an area border router.
    pub abr: bool,
    /// Is an AS boundary router.
    pub asbr: bool,
    /// Next hops.
    pub nexthops: Vec<NextHop>,
}

/// The routing table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RoutingTable {
    /// Routes to networks.
    pub networks: HashMap<Ipv4Net, Route>,
    /// Routes to ABRs and ASBRs, per area.
    pub routers: HashMap<(AreaId, RouterId), RouterRoute>,
}

impl RoutingTable {
    /// Network routes in prefix order (for display and snapshots).
    pub fn sorted(&self) -> BTreeMap<Ipv4Net, Route> {
        self.networks.iter().map(|(k, v)| (*k, v.clone())).collect()
    }

    /// Longest-prefix match over intra- and inter-area routes (forwarding addresses).
    fn lookup_internal(&self, addr: Ipv4Addr) -> Option<&Route> {
        (0..=32u8).rev().find_map(|len| {
            let p = Ipv4Net::new(addr, len).ok()?.trunc();
            self.networks
                .get(&p)
                .filter(|r| r.path_type <= PathType::InterArea)
        })
    }
}

/// One attached area's input.
#[derive(Debug, Clone)]
pub struct AreaInput<'a> {
    /// Area ID.
    pub area: AreaId,
    /// The area is an NSSA (its type-7 LSAs yield external routes).
    pub nssa: bool,
    /// The area's LSAs (types 1-4 and 7).
    pub lsas: Vec<&'a Lsa>,
    /// Our interfaces in the area.
    pub ifaces: Vec<LocalIface>,
}

fn merge(table: &mut HashMap<Ipv4Net, Route>, prefix: Ipv4Net, new: Route) {
    match table.get_mut(&prefix) {
        None => {
            table.insert(prefix, new);
        }
        Some(old) => match new.key().cmp(&old.key()) {
            std::cmp::Ordering::Less => *old = new,
            std::cmp::Ordering::Equal => {
                for nh in new.nexthops {
                    if !old.nexthops.contains(&nh) {
                        old.nexthops.push(nh);
                    }
                }
                old.nexthops.sort_unstable();
            }
            std::cmp::Ordering::Greater => {}
        },
    }
}

fn prefix(addr: Ipv4Addr, mask: Ipv4Addr) -> Option<Ipv4Net> {
    let len = u32::from(mask);
    // Only contiguous masks name a prefix.
    if len.leading_ones() + len.trailing_zeros() != 32 {
        return None;
    }
    Ipv4Net::new(addr, len.leading_ones() as u8)
        .ok()
        .map(|p| p.trunc())
}

/// Adds the intra-area routes of one area's tree (16.1 steps 2 and 3 outputs).
pub fn intra_area_routes(
    table: &mut RoutingTable,
    area: AreaId,
    tree: &SpfTree<'_>,
    ifaces: &[LocalIface],
) {
    for v in &tree.reached {
        match (v.id, &v.lsa.body) {
            (VertexId::Router(rid), LsaBody::Router(r)) => {
                let abr = v.flags & router_flags::B != 0;
                let asbr = v.flags & router_flags::E != 0;
                if (abr || asbr) && v.cost > 0 {
                    table.routers.insert(
                        (area, rid),
                        RouterRoute {
                            path_type: PathType::IntraArea,
                            cost: v.cost,
                            abr,
                            asbr,
                            nexthops: v.nexthops.clone(),
                        },
                    );
                }
                // Stub networks (16.1 step 2).
                for l in r.links.iter().filter(|l| l.link_type == LinkType::Stub) {
                    let Some(p) = prefix(l.link_id, l.link_data) else {
                        continue;
                    };
                    let nexthops = if v.cost == 0 {
                        connected(ifaces, p)
                    } else {
                        v.nexthops.clone()
                    };
                    let route = Route {
                        path_type: PathType::IntraArea,
                        cost: v.cost.saturating_add(u32::from(l.metric)),
                        type2_cost: 0,
                        area: Some(area),
                        tag: 0,
                        nexthops,
                    };
                    merge(&mut table.networks, p, route);
                }
            }
            (VertexId::Network(id), LsaBody::Network(n)) => {
                let Some(p) = prefix(id, n.mask) else {
                    continue;
                };
                let nexthops = if v.nexthops.iter().all(|nh| nh.addr.is_unspecified()) {
                    connected(ifaces, p)
                } else {
                    v.nexthops.clone()
                };
                let route = Route {
                    path_type: PathType::IntraArea,
                    cost: v.cost,
                    type2_cost: 0,
                    area: Some(area),
                    tag: 0,
                    nexthops: if nexthops.is_empty() {
                        v.nexthops.clone()
                    } else {
                        nexthops
                    },
                };
                merge(&mut table.networks, p, route);
            }
            _ => {}
        }
    }
}

fn connected(ifaces: &[LocalIface], p: Ipv4Net) -> Vec<NextHop> {
    ifaces
        .iter()
        .filter(|i| i.prefix.trunc() == p || (p.prefix_len() == 32 && i.prefix.addr() == p.addr()))
        .map(|i| NextHop {
            addr: Ipv4Addr::UNSPECIFIED,
            ifindex: i.ifindex,
        })
        .collect()
}

/// Inter-area routes (16.2) from the summary-LSAs of `area` (the backbone when we are an
/// ABR, otherwise our only area).
pub fn inter_area_routes(
    table: &mut RoutingTable,
    router_id: RouterId,
    area: AreaId,
    lsas: &[&Lsa],
) {
    let mut nets = Vec::new();
    let mut asbrs = Vec::new();
    for lsa in lsas {
        let h = &lsa.header;
        let LsaBody::Summary(s) = &lsa.body else {
            continue;
        };
        if h.is_maxage() || s.metric >= LS_INFINITY || h.adv_router == router_id {
            continue;
        }
        let Some(abr) = table.routers.get(&(area, h.adv_router)) else {
            continue;
        };
        if !abr.abr || abr.path_type != PathType::IntraArea {
            continue;
        }
        let cost = abr.cost.saturating_add(s.metric);
        let nexthops = abr.nexthops.clone();
        match h.ls_type {
            LSA_SUMMARY_NET => {
                if let Some(p) = prefix(h.lsid, s.mask) {
                    nets.push((p, cost, nexthops));
                }
            }
            LSA_SUMMARY_ASBR => asbrs.push((h.lsid, cost, nexthops)),
            _ => {}
        }
    }
    for (p, cost, nexthops) in nets {
        if table
            .networks
            .get(&p)
            .is_some_and(|r| r.path_type == PathType::IntraArea)
        {
            continue;
        }
        let route = Route {
            path_type: PathType::InterArea,
            cost,
            type2_cost: 0,
            area: Some(area),
            tag: 0,
            nexthops,
        };
        merge(&mut table.networks, p, route);
    }
    for (rid, cost, nexthops) in asbrs {
        let e = table.routers.entry((area, rid)).or_insert(RouterRoute {
            path_type: PathType::InterArea,
            cost,
            abr: false,
            asbr: true,
            nexthops: vec![],
        });
        if e.path_type == PathType::IntraArea || cost > e.cost {
            continue;
        }
        if cost < e.cost || e.nexthops.is_empty() {
            e.cost = cost;
            e.nexthops = nexthops;
        } else {
            for nh in nexthops {
                if !e.nexthops.contains(&nh) {
                    e.nexthops.push(nh);
                }
            }
        }
    }
}

/// AS-external routes (16.4) from type-5 LSAs and NSSA type-7 LSAs.
pub fn external_routes<'a>(
    table: &mut RoutingTable,
    router_id: RouterId,
    lsas: impl IntoIterator<Item = &'a Lsa>,
) {
    // Best path to each ASBR, looked up once rather than per LSA.
    let mut asbrs: HashMap<RouterId, &RouterRoute> = HashMap::new();
    for ((_, rid), rr) in &table.routers {
        if !rr.asbr {
            continue;
        }
        let e = asbrs.entry(*rid).or_insert(rr);
        if (rr.path_type, rr.cost) < (e.path_type, e.cost) {
            *e = rr;
        }
    }
    let lsas = lsas.into_iter();
    table.networks.reserve(lsas.size_hint().0);
    for lsa in lsas {
        let h = &lsa.header;
        let LsaBody::External(e) = &lsa.body else {
            continue;
        };
        if !(h.ls_type == LSA_EXTERNAL || h.ls_type == LSA_NSSA)
            || h.is_maxage()
            || e.metric >= LS_INFINITY
            || h.adv_router == router_id
        {
            continue;
        }
        let Some(p) = prefix(h.lsid, e.mask) else {
            continue;
        };
        if table
            .networks
            .get(&p)
            .is_some_and(|r| r.path_type <= PathType::InterArea)
        {
            continue;
        }
        let Some(asbr) = asbrs.get(&h.adv_router) else {
            continue;
        };
        let (x, nexthops) = if e.forwarding.is_unspecified() {
            (asbr.cost, asbr.nexthops.clone())
        } else {
            let Some(r) = table.lookup_internal(e.forwarding) else {
                continue;
            };
            let nh = r
                .nexthops
                .iter()
                .map(|nh| NextHop {
                    addr: if nh.addr.is_unspecified() {
                        e.forwarding
                    } else {
                        nh.addr
                    },
                    ifindex: nh.ifindex,
                })
                .collect();
            (r.cost, nh)
        };
        let route = if e.type2 {
            Route {
                path_type: PathType::External2,
                cost: x,
                type2_cost: e.metric,
                area: None,
                tag: e.tag,
                nexthops,
            }
        } else {
            Route {
                path_type: PathType::External1,
                cost: x.saturating_add(e.metric),
                type2_cost: 0,
                area: None,
                tag: e.tag,
                nexthops,
            }
        };
        // External entries never shadow the intra/inter check above, so one map will do.
        merge(&mut table.networks, p, route);
    }
}

/// The whole routing table (16.1, 16.2, 16.4). `externals` are the type-5 LSAs.
pub fn compute<'a>(
    router_id: RouterId,
    areas: &[AreaInput<'a>],
    externals: impl IntoIterator<Item = &'a Lsa>,
) -> RoutingTable {
    let mut table = RoutingTable::default();
    for a in areas {
        let tree = spf(router_id, a.lsas.iter().copied(), &a.ifaces);
        intra_area_routes(&mut table, a.area, &tree, &a.ifaces);
    }
    let abr = areas.len() > 1;
    for a in areas {
        if abr && a.area != BACKBONE {
            continue;
        }
        inter_area_routes(&mut table, router_id, a.area, &a.lsas);
    }
    // A border router installs a type-7 default only with the P-bit (RFC 3101 2.4): not
    // the P-bit-clear defaults of the NSSA's other border routers.
    let nssa_lsas = areas
        .iter()
        .filter(|a| a.nssa)
        .flat_map(|a| a.lsas.iter().copied())
        .filter(|l| l.header.ls_type == LSA_NSSA)
        .filter(move |l| {
            !(abr
                && l.header.options & options::NP == 0
                && l.header.lsid.is_unspecified()
                && matches!(&l.body, LsaBody::External(e) if e.mask.is_unspecified()))
        });
    external_routes(
        &mut table,
        router_id,
        externals.into_iter().chain(nssa_lsas),
    );
    table
}

/// An attached area as the ABR sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AreaKind {
    /// Area ID.
    pub area: AreaId,
    /// Stub or NSSA: no type 4/5 into it.
    pub stub: bool,
    /// NSSA: the default comes as a type-7 LSA ([`nssa_default`]), except with no-summary.
    pub nssa: bool,
    /// Totally stubby (no-summary): only the default summary.
    pub no_summary: bool,
    /// Cost of the default announced into a stub area or NSSA.
    pub default_cost: u32,
}

/// A summary-LSA an ABR should originate into an area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SummarySpec {
    /// 3 (network) or 4 (ASBR).
    pub ls_type: u8,
    /// Link State ID: network address, or the ASBR's router ID.
    pub lsid: Ipv4Addr,
    /// Network mask (0 for type 4).
    pub mask: Ipv4Addr,
    /// Metric.
    pub metric: u32,
}

/// What an ABR summarises into each attached area (12.4.3), given the routing table: a
/// default summary into stub areas and no-summary NSSAs (RFC 3101 2.7; a plain NSSA gets a
/// type-7 default instead). Not an ABR (fewer than two areas): nothing.
pub fn abr_summaries(
    table: &RoutingTable,
    areas: &[AreaKind],
) -> BTreeMap<AreaId, Vec<SummarySpec>> {
    let mut out = BTreeMap::new();
    if areas.len() < 2 {
        return out;
    }
    for a in areas {
        let mut v = Vec::new();
        if a.stub && (!a.nssa || a.no_summary) {
            v.push(SummarySpec {
                ls_type: LSA_SUMMARY_NET,
                lsid: Ipv4Addr::UNSPECIFIED,
                mask: Ipv4Addr::UNSPECIFIED,
                metric: a.default_cost,
            });
        }
        if !a.no_summary {
            for (p, r) in &table.networks {
                let advertise = match r.path_type {
                    PathType::IntraArea => r.area != Some(a.area),
                    // Learned from the backbone: goes into the other areas only.
                    PathType::InterArea => a.area != BACKBONE && r.area != Some(a.area),
                    _ => false,
                };
                if advertise && r.cost < LS_INFINITY {
                    v.push(SummarySpec {
                        ls_type: LSA_SUMMARY_NET,
                        lsid: p.network(),
                        mask: p.netmask(),
                        metric: r.cost,
                    });
                }
            }
            if !a.stub {
                // ASBRs inside stub areas or NSSAs are not summarised: their externals do
                // not leave the area (an NSSA's leave translated, from the translator).
                let ext_area = |x: &AreaId| areas.iter().any(|k| k.area == *x && !k.stub);
                let mut asbrs: BTreeMap<RouterId, u32> = BTreeMap::new();
                for ((area, rid), rr) in &table.routers {
                    if rr.asbr
                        && *area != a.area
                        && ext_area(area)
                        && rr.path_type == PathType::IntraArea
                    {
                        let c = asbrs.entry(*rid).or_insert(rr.cost);
                        *c = (*c).min(rr.cost);
                    }
                }
                v.extend(asbrs.into_iter().map(|(rid, cost)| SummarySpec {
                    ls_type: LSA_SUMMARY_ASBR,
                    lsid: rid,
                    mask: Ipv4Addr::UNSPECIFIED,
                    metric: cost,
                }));
            }
        }
        v.sort_unstable();
        out.insert(a.area, v);
    }
    out
}

/// The type-7 default an NSSA border router announces into a (summary-receiving) NSSA
/// (RFC 3101 2.7): type 1 metric `cost`, P-bit clear so no translator exports it, no
/// forwarding address.
pub fn nssa_default(cost: u32) -> ExternalLsa {
    ExternalLsa {
        mask: Ipv4Addr::UNSPECIFIED,
        type2: false,
        metric: cost.min(LS_INFINITY - 1),
        forwarding: Ipv4Addr::UNSPECIFIED,
        tag: 0,
        tos: vec![],
    }
}

/// RFC 3101 3.1: whether this NSSA border router translates the NSSA's type-7 LSAs. With
/// `always` it does. Otherwise it is elected when no other reachable border router of the
/// NSSA translates unconditionally (Nt bit) and its router ID is the highest of them all.
/// `lsas` are the NSSA's LSAs, `table` the routing table (reachability of the NSSA's border
/// routers comes from its intra-area router routes).
pub fn nssa_translator(
    router_id: RouterId,
    area: AreaId,
    always: bool,
    table: &RoutingTable,
    lsas: &[&Lsa],
) -> bool {
    if always {
        return true;
    }
    for l in lsas {
        let h = &l.header;
        let LsaBody::Router(r) = &l.body else {
            continue;
        };
        if h.ls_type != LSA_ROUTER || h.is_maxage() || h.adv_router == router_id {
            continue;
        }
        // A border router of the NSSA that we can reach inside it.
        let reachable = table
            .routers
            .get(&(area, h.adv_router))
            .is_some_and(|rr| rr.path_type == PathType::IntraArea);
        if r.flags & router_flags::B == 0 || !reachable {
            continue;
        }
        if r.flags & router_flags::NT != 0 || h.adv_router > router_id {
            return false;
        }
    }
    true
}

/// RFC 3101 3.2: the AS-external LSAs (prefix, body) a translator originates for an NSSA's
/// type-7 LSAs: those with the P-bit and a forwarding address, from an ASBR reachable in
/// the NSSA, one per prefix (the preferred one: type 1 before type 2, then the lower
/// metric, then the higher forwarding address as a tie-break). Ours are left out (we
/// originate those type-5s directly).
pub fn nssa_translations(
    router_id: RouterId,
    area: AreaId,
    table: &RoutingTable,
    lsas: &[&Lsa],
) -> BTreeMap<Ipv4Net, ExternalLsa> {
    let mut out: BTreeMap<Ipv4Net, ExternalLsa> = BTreeMap::new();
    for l in lsas {
        let h = &l.header;
        let LsaBody::External(e) = &l.body else {
            continue;
        };
        if h.ls_type != LSA_NSSA
            || h.is_maxage()
            || h.adv_router == router_id
            || h.options & options::NP == 0
            || e.forwarding.is_unspecified()
            || e.metric >= LS_INFINITY
        {
            continue;
        }
        let reachable = table
            .routers
            .get(&(area, h.adv_router))
            .is_some_and(|rr| rr.asbr && rr.path_type == PathType::IntraArea);
        let Some(p) = prefix(h.lsid, e.mask) else {
            continue;
        };
        if !reachable {
            continue;
        }
        let rank = |x: &ExternalLsa| (x.type2, x.metric, std::cmp::Reverse(x.forwarding));
        let new = ExternalLsa {
            mask: e.mask,
            type2: e.type2,
            metric: e.metric,
            forwarding: e.forwarding,
            tag: e.tag,
            tos: vec![],
        };
        match out.get(&p) {
            Some(old) if rank(old) <= rank(&new) => {}
            _ => {
                out.insert(p, new);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
