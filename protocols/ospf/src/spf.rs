//! Shortest-path tree of one area (RFC 2328 16.1) with equal-cost multipath next hops
//! (16.1.1).
//!
//! The area's router- and network-LSAs are turned into a dense graph first: every vertex gets
//! an index, every usable edge (one whose far end links back, 16.1 step 2b) is stored in a
//! compressed adjacency array, so the Dijkstra loop works on `u32` indices, a binary heap and
//! flat vectors, without hashing.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Serialize;

use crate::consts::MAX_AGE;
use crate::packet::lsa::{LinkType, NetworkLsa, RouterLsa, LSA_NETWORK, LSA_ROUTER};
use crate::packet::{Lsa, LsaBody};
use crate::{IfIndex, RouterId};

/// A next hop: the neighbor's address (0.0.0.0 for a directly attached destination) and
/// the outgoing interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct NextHop {
    /// Next-hop router address, or 0.0.0.0 when the destination is on the link.
    pub addr: Ipv4Addr,
    /// Outgoing interface.
    pub ifindex: IfIndex,
}

/// One of the root's interfaces in the area, to map the root's links to interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LocalIface {
    /// Interface.
    pub ifindex: IfIndex,
    /// Its address and prefix.
    pub prefix: Ipv4Net,
}

/// A vertex of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum VertexId {
    /// A router, by router ID.
    Router(RouterId),
    /// A transit network, by its network-LSA's Link State ID (the DR's address).
    Network(Ipv4Addr),
}

/// A reached vertex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reached<'a> {
    /// Which vertex.
    pub id: VertexId,
    /// Distance from the root.
    pub cost: u32,
    /// Equal-cost next hops (empty for the root).
    pub nexthops: Vec<NextHop>,
    /// Router-LSA flags (B, E) for routers.
    pub flags: u8,
    /// The LSA the vertex came from.
    #[serde(skip)]
    pub lsa: &'a Lsa,
}

/// The shortest-path tree of an area.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SpfTree<'a> {
    /// Reached vertices in order of distance (root first).
    pub reached: Vec<Reached<'a>>,
}

enum Body<'a> {
    Router(&'a RouterLsa),
    Network(&'a NetworkLsa),
}

struct Vertex<'a> {
    id: VertexId,
    lsa: &'a Lsa,
    body: Body<'a>,
}

#[derive(Clone, Copy)]
struct Edge {
    to: u32,
    cost: u32,
    /// Link Data of the link from the parent (the root's interface address on root edges).
    link_data: Ipv4Addr,
}

const INF: u32 = u32::MAX;

/// The dense graph of an area.
struct Graph<'a> {
    vertices: Vec<Vertex<'a>>,
    offsets: Vec<u32>,
    edges: Vec<Edge>,
    root: Option<u32>,
}

/// A multiplicative hash for the `u32`-like keys of graph building (router IDs, LSIDs):
/// much cheaper than SipHash, and these keys come from the area's own routers.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = (self.0 ^ u64::from(v)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IdMap<V> = HashMap<u32, V, std::hash::BuildHasherDefault<IdHasher>>;

fn build<'a>(root: RouterId, lsas: impl IntoIterator<Item = &'a Lsa>) -> Graph<'a> {
    let mut vertices = Vec::new();
    let mut routers: IdMap<u32> = IdMap::default();
    let mut networks: IdMap<u32> = IdMap::default();
    for lsa in lsas {
        if lsa.header.age >= MAX_AGE {
            continue;
        }
        let idx = vertices.len() as u32;
        match (&lsa.body, lsa.header.ls_type) {
            (LsaBody::Router(r), LSA_ROUTER) => {
                if routers
                    .insert(u32::from(lsa.header.adv_router), idx)
                    .is_some()
                {
                    continue;
                }
                vertices.push(Vertex {
                    id: VertexId::Router(lsa.header.adv_router),
                    lsa,
                    body: Body::Router(r),
                });
            }
            (LsaBody::Network(n), LSA_NETWORK) => {
                if networks.insert(u32::from(lsa.header.lsid), idx).is_some() {
                    continue;
                }
                vertices.push(Vertex {
                    id: VertexId::Network(lsa.header.lsid),
                    lsa,
                    body: Body::Network(n),
                });
            }
            _ => {}
        }
    }
    // Pass 1: every link whose far end has an LSA, in adjacency-array form.
    let mut offsets = Vec::with_capacity(vertices.len() + 1);
    let mut edges = Vec::new();
    for v in &vertices {
        offsets.push(edges.len() as u32);
        match v.body {
            Body::Router(r) => {
                for l in &r.links {
                    let target = match l.link_type {
                        LinkType::PointToPoint => routers.get(&u32::from(l.link_id)),
                        LinkType::Transit => networks.get(&u32::from(l.link_id)),
                        _ => None,
                    };
                    if let Some(&to) = target {
                        edges.push(Edge {
                            to,
                            cost: u32::from(l.metric),
                            link_data: l.link_data,
                        });
                    }
                }
            }
            Body::Network(n) => {
                for a in &n.attached {
                    if let Some(&to) = routers.get(&u32::from(*a)) {
                        edges.push(Edge {
                            to,
                            cost: 0,
                            link_data: Ipv4Addr::UNSPECIFIED,
                        });
                    }
                }
            }
        }
    }
    offsets.push(edges.len() as u32);
    // Pass 2 (16.1 step 2b): keep an edge only if the far end links back. Adjacency lists
    // are short, so a scan beats a hash set here.
    let links_back = |w: u32, v: u32| {
        let (s, e) = (
            offsets[w as usize] as usize,
            offsets[w as usize + 1] as usize,
        );
        edges[s..e].iter().any(|b| b.to == v)
    };
    let mut keep = Vec::with_capacity(edges.len());
    for v in 0..vertices.len() {
        let (s, e) = (offsets[v] as usize, offsets[v + 1] as usize);
        for ed in &edges[s..e] {
            keep.push(links_back(ed.to, v as u32));
        }
    }
    let mut new_offsets = Vec::with_capacity(offsets.len());
    let mut new_edges = Vec::with_capacity(edges.len());
    for v in 0..vertices.len() {
        new_offsets.push(new_edges.len() as u32);
        let (s, e) = (offsets[v] as usize, offsets[v + 1] as usize);
        new_edges.extend((s..e).filter(|&i| keep[i]).map(|i| edges[i]));
    }
    new_offsets.push(new_edges.len() as u32);
    Graph {
        root: routers.get(&u32::from(root)).copied(),
        vertices,
        offsets: new_offsets,
        edges: new_edges,
    }
}

fn iface_for(ifaces: &[LocalIface], addr: Ipv4Addr) -> Option<&LocalIface> {
    ifaces
        .iter()
        .find(|i| i.prefix.addr() == addr)
        .or_else(|| ifaces.iter().find(|i| i.prefix.contains(&addr)))
        .or_else(|| {
            // Unnumbered links carry the ifindex in Link Data.
            let idx = u32::from(addr);
            ifaces.iter().find(|i| i.ifindex == idx)
        })
}

/// Computes the shortest-path tree of an area rooted at `root` from the area's LSAs (types
/// other than 1 and 2, and MaxAge LSAs, are ignored). `ifaces` are the root's interfaces in
/// the area. Returns an empty tree if the root has no router-LSA.
pub fn spf<'a>(
    root: RouterId,
    lsas: impl IntoIterator<Item = &'a Lsa>,
    ifaces: &[LocalIface],
) -> SpfTree<'a> {
    let g = build(root, lsas);
    let Some(root_idx) = g.root else {
        return SpfTree::default();
    };
    let n = g.vertices.len();
    let mut dist = vec![INF; n];
    let mut done = vec![false; n];
    let mut nexthops: Vec<Vec<NextHop>> = vec![Vec::new(); n];
    // A network on the root's own interface: routers behind it are reached directly.
    let mut direct = vec![false; n];
    let mut heap = BinaryHeap::new();
    let is_router = |i: u32| matches!(g.vertices[i as usize].body, Body::Router(_));
    dist[root_idx as usize] = 0;
    heap.push(Reverse((0u32, true, root_idx)));
    let mut order = Vec::with_capacity(n);
    let mut scratch: Vec<NextHop> = Vec::new();
    while let Some(Reverse((d, _, v))) = heap.pop() {
        let vi = v as usize;
        if done[vi] || d != dist[vi] {
            continue;
        }
        done[vi] = true;
        order.push(v);
        let (start, end) = (g.offsets[vi] as usize, g.offsets[vi + 1] as usize);
        for e in &g.edges[start..end] {
            let wi = e.to as usize;
            if done[wi] {
                continue;
            }
            let nd = d.saturating_add(e.cost);
            if nd > dist[wi] {
                continue;
            }
            // 16.1.1: next hops of w through v.
            scratch.clear();
            if v == root_idx {
                if let Some(ifc) = iface_for(ifaces, e.link_data) {
                    let addr = match g.vertices[wi].body {
                        Body::Network(_) => Ipv4Addr::UNSPECIFIED,
                        Body::Router(r) => back_link_addr(r, root, ifc),
                    };
                    scratch.push(NextHop {
                        addr,
                        ifindex: ifc.ifindex,
                    });
                    if matches!(g.vertices[wi].body, Body::Network(_)) {
                        direct[wi] = true;
                    }
                }
            } else if direct[vi] && is_router(e.to) {
                let VertexId::Network(net_id) = g.vertices[vi].id else {
                    unreachable!("direct is only set on networks")
                };
                let Body::Router(r) = g.vertices[wi].body else {
                    unreachable!()
                };
                let addr = r
                    .links
                    .iter()
                    .find(|l| l.link_type == LinkType::Transit && l.link_id == net_id)
                    .map_or(Ipv4Addr::UNSPECIFIED, |l| l.link_data);
                scratch.extend(nexthops[vi].iter().map(|nh| NextHop {
                    addr,
                    ifindex: nh.ifindex,
                }));
            } else {
                scratch.extend_from_slice(&nexthops[vi]);
            }
            if nd < dist[wi] {
                dist[wi] = nd;
                nexthops[wi].clear();
                nexthops[wi].extend_from_slice(&scratch);
                // Networks before routers at equal cost (16.1 step 3).
                heap.push(Reverse((nd, is_router(e.to), e.to)));
            } else {
                for nh in &scratch {
                    if !nexthops[wi].contains(nh) {
                        nexthops[wi].push(*nh);
                    }
                }
            }
        }
    }
    let reached = order
        .into_iter()
        .map(|i| {
            let v = &g.vertices[i as usize];
            let mut nh = std::mem::take(&mut nexthops[i as usize]);
            nh.sort_unstable();
            Reached {
                id: v.id,
                cost: dist[i as usize],
                nexthops: nh,
                flags: match v.body {
                    Body::Router(r) => r.flags,
                    Body::Network(_) => 0,
                },
                lsa: v.lsa,
            }
        })
        .collect();
    SpfTree { reached }
}

/// The neighbor's address on a point-to-point link back to the root, preferring the link on
/// the subnet of our interface (parallel links).
fn back_link_addr(r: &RouterLsa, root: RouterId, ifc: &LocalIface) -> Ipv4Addr {
    let mut back = r
        .links
        .iter()
        .filter(|l| l.link_type == LinkType::PointToPoint && l.link_id == root);
    let first = back.clone().next();
    back.find(|l| ifc.prefix.contains(&l.link_data))
        .or(first)
        .map_or(Ipv4Addr::UNSPECIFIED, |l| l.link_data)
}
