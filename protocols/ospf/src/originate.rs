//! Origination of the router's own LSAs (RFC 2328 12.4): the router-LSA of each area from
//! its interface states (12.4.1), the network-LSA of each network where we are DR (12.4.2),
//! and the sequence-number and rate rules around them.
//!
//! Pacing: each self-originated LSA has its own [`crate::throttle::Throttle`] with the LSA
//! parameters; its long delay plays MinLSInterval (5 s by default) while the initial delay
//! lets a first change go out at once (RFC 8405-style rather than a fixed 5 s hold).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Serialize;

use crate::flooding::{next_seq, NextSeq};
use crate::interface::{IfState, IfType};
use crate::packet::lsa::{
    router_flags, LinkType, NetworkLsa, RouterLink, RouterLsa, LSA_NETWORK, LSA_ROUTER,
};
use crate::packet::{Lsa, LsaBody};
use crate::{IfIndex, RouterId};

/// A fully adjacent neighbor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FullNbr {
    /// Router ID.
    pub router_id: RouterId,
    /// Interface address.
    pub addr: Ipv4Addr,
}

/// An interface of the area, as origination sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrigIface {
    /// Interface.
    pub ifindex: IfIndex,
    /// Network type.
    pub if_type: IfType,
    /// State.
    pub state: IfState,
    /// Our address and prefix length.
    pub prefix: Ipv4Net,
    /// Output cost.
    pub cost: u16,
    /// Passive: advertised as a stub network, no adjacencies.
    pub passive: bool,
    /// DR address (broadcast).
    pub dr: Ipv4Addr,
    /// Neighbors in state Full.
    pub full: Vec<FullNbr>,
}

/// The router-LSA body for one area (12.4.1). `abr`/`asbr` set the B and E bits.
pub fn router_lsa_body(ifaces: &[OrigIface], abr: bool, asbr: bool) -> RouterLsa {
    let mut links = Vec::new();
    let stub_net = |i: &OrigIface| RouterLink {
        link_id: i.prefix.network(),
        link_data: i.prefix.netmask(),
        link_type: LinkType::Stub,
        metric: i.cost,
        tos: vec![],
    };
    for i in ifaces {
        match i.state {
            IfState::Down => {}
            IfState::Loopback => links.push(RouterLink {
                link_id: i.prefix.addr(),
                link_data: Ipv4Addr::BROADCAST,
                link_type: LinkType::Stub,
                metric: 0,
                tos: vec![],
            }),
            _ if i.passive => links.push(stub_net(i)),
            _ => match i.if_type {
                IfType::PointToPoint => {
                    for n in &i.full {
                        links.push(RouterLink {
                            link_id: n.router_id,
                            link_data: i.prefix.addr(),
                            link_type: LinkType::PointToPoint,
                            metric: i.cost,
                            tos: vec![],
                        });
                    }
                    // 12.4.1.1 option 1: the subnet as a stub link.
                    links.push(stub_net(i));
                }
                IfType::Broadcast => {
                    let we_are_dr = i.state == IfState::Dr;
                    let transit = if we_are_dr {
                        !i.full.is_empty()
                    } else {
                        i.full.iter().any(|n| n.addr == i.dr)
                    };
                    if i.state != IfState::Waiting && transit {
                        links.push(RouterLink {
                            link_id: i.dr,
                            link_data: i.prefix.addr(),
                            link_type: LinkType::Transit,
                            metric: i.cost,
                            tos: vec![],
                        });
                    } else {
                        links.push(stub_net(i));
                    }
                }
            },
        }
    }
    let mut flags = 0;
    if abr {
        flags |= router_flags::B;
    }
    if asbr {
        flags |= router_flags::E;
    }
    RouterLsa { flags, links }
}

/// The network-LSA body for an interface where we are DR and fully adjacent to at least one
/// router (12.4.2); None otherwise (an existing one must then be flushed).
pub fn network_lsa_body(router_id: RouterId, i: &OrigIface) -> Option<NetworkLsa> {
    if i.if_type != IfType::Broadcast || i.state != IfState::Dr || i.full.is_empty() {
        return None;
    }
    let mut attached = vec![router_id];
    attached.extend(i.full.iter().map(|n| n.router_id));
    Some(NetworkLsa {
        mask: i.prefix.netmask(),
        attached,
    })
}

/// What to do to (re)originate an LSA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Origination {
    /// The current instance already says this: nothing to do (refresh is separate).
    Unchanged,
    /// Install and flood this instance.
    Originate(Lsa),
    /// The current instance has MaxSequenceNumber: flush it first (12.1.6).
    FlushFirst,
}

/// Builds the next instance of one of our LSAs given the current one, if any. With
/// `refresh` the LSA is re-originated even if unchanged (LSRefreshTime).
pub fn originate(
    current: Option<&Lsa>,
    options: u8,
    ls_type: u8,
    lsid: Ipv4Addr,
    router_id: RouterId,
    body: LsaBody,
    refresh: bool,
) -> Origination {
    if let Some(c) = current {
        if !refresh && !c.header.is_maxage() && c.header.options == options && c.body == body {
            return Origination::Unchanged;
        }
    }
    match next_seq(current.map(|c| c.header.seq)) {
        NextSeq::Use(seq) => {
            Origination::Originate(Lsa::new(options, ls_type, lsid, router_id, seq, body))
        }
        NextSeq::FlushFirst => Origination::FlushFirst,
    }
}

/// Convenience: the router-LSA of an area.
pub fn originate_router_lsa(
    current: Option<&Lsa>,
    router_id: RouterId,
    options: u8,
    ifaces: &[OrigIface],
    abr: bool,
    asbr: bool,
) -> Origination {
    let body = LsaBody::Router(router_lsa_body(ifaces, abr, asbr));
    originate(
        current, options, LSA_ROUTER, router_id, router_id, body, false,
    )
}

/// Convenience: the network-LSA of an interface, or None if we should not have one.
pub fn originate_network_lsa(
    current: Option<&Lsa>,
    router_id: RouterId,
    options: u8,
    iface: &OrigIface,
) -> Option<Origination> {
    let body = network_lsa_body(router_id, iface)?;
    Some(originate(
        current,
        options,
        LSA_NETWORK,
        iface.prefix.addr(),
        router_id,
        LsaBody::Network(body),
        false,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::{INITIAL_SEQUENCE_NUMBER, MAX_SEQUENCE_NUMBER};
    use crate::packet::checksum::lsa_checksum_ok;
    use crate::packet::lsa::options;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn bcast(state: IfState, dr: &str, full: &[(&str, &str)]) -> OrigIface {
        OrigIface {
            ifindex: 1,
            if_type: IfType::Broadcast,
            state,
            prefix: "10.0.0.1/24".parse().unwrap(),
            cost: 10,
            passive: false,
            dr: ip(dr),
            full: full
                .iter()
                .map(|(r, a)| FullNbr {
                    router_id: ip(r),
                    addr: ip(a),
                })
                .collect(),
        }
    }

    #[test]
    fn broadcast_links_follow_adjacency_with_dr() {
        let rid = ip("1.1.1.1");
        // Waiting: stub.
        let b = router_lsa_body(&[bcast(IfState::Waiting, "0.0.0.0", &[])], false, false);
        assert_eq!(b.links[0].link_type, LinkType::Stub);
        assert_eq!(b.links[0].link_id, ip("10.0.0.0"));
        // DROther fully adjacent to the DR: transit to the DR's address.
        let i = bcast(IfState::DrOther, "10.0.0.2", &[("2.2.2.2", "10.0.0.2")]);
        let b = router_lsa_body(std::slice::from_ref(&i), true, false);
        assert_eq!(b.links[0].link_type, LinkType::Transit);
        assert_eq!(b.links[0].link_id, ip("10.0.0.2"));
        assert_eq!(b.flags, router_flags::B);
        assert_eq!(network_lsa_body(rid, &i), None);
        // DR alone: stub, no network-LSA.
        let i = bcast(IfState::Dr, "10.0.0.1", &[]);
        assert_eq!(
            router_lsa_body(std::slice::from_ref(&i), false, false).links[0].link_type,
            LinkType::Stub
        );
        assert_eq!(network_lsa_body(rid, &i), None);
        // DR with a full neighbor: transit and a network-LSA listing both.
        let i = bcast(IfState::Dr, "10.0.0.1", &[("3.3.3.3", "10.0.0.3")]);
        assert_eq!(
            router_lsa_body(std::slice::from_ref(&i), false, true).links[0].link_type,
            LinkType::Transit
        );
        let n = network_lsa_body(rid, &i).unwrap();
        assert_eq!(n.attached, vec![rid, ip("3.3.3.3")]);
        assert_eq!(n.mask, ip("255.255.255.0"));
    }

    #[test]
    fn p2p_loopback_down_and_passive() {
        let mut p = bcast(IfState::PointToPoint, "0.0.0.0", &[("2.2.2.2", "10.0.0.2")]);
        p.if_type = IfType::PointToPoint;
        let mut lo = bcast(IfState::Loopback, "0.0.0.0", &[]);
        lo.prefix = "192.0.2.1/32".parse().unwrap();
        let down = bcast(IfState::Down, "0.0.0.0", &[]);
        let mut passive = bcast(IfState::Dr, "10.0.0.1", &[]);
        passive.passive = true;
        let b = router_lsa_body(&[p, lo, down, passive], false, false);
        let kinds: Vec<_> = b.links.iter().map(|l| (l.link_type, l.link_id)).collect();
        assert_eq!(
            kinds,
            vec![
                (LinkType::PointToPoint, ip("2.2.2.2")),
                (LinkType::Stub, ip("10.0.0.0")),
                (LinkType::Stub, ip("192.0.2.1")),
                (LinkType::Stub, ip("10.0.0.0")),
            ]
        );
    }

    #[test]
    fn origination_sequence_numbers_and_no_op() {
        let rid = ip("1.1.1.1");
        let ifs = [bcast(IfState::Waiting, "0.0.0.0", &[])];
        let Origination::Originate(first) =
            originate_router_lsa(None, rid, options::E, &ifs, false, false)
        else {
            panic!()
        };
        assert_eq!(first.header.seq, INITIAL_SEQUENCE_NUMBER);
        assert!(lsa_checksum_ok(&first.encode()));
        assert_eq!(
            originate_router_lsa(Some(&first), rid, options::E, &ifs, false, false),
            Origination::Unchanged
        );
        let Origination::Originate(second) =
            originate_router_lsa(Some(&first), rid, options::E, &ifs, true, false)
        else {
            panic!()
        };
        assert_eq!(second.header.seq, INITIAL_SEQUENCE_NUMBER + 1);
        let mut max = second.clone();
        max.header.seq = MAX_SEQUENCE_NUMBER;
        assert_eq!(
            originate_router_lsa(Some(&max), rid, options::E, &ifs, false, false),
            Origination::FlushFirst
        );
    }
}
