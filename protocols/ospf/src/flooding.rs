//! The flooding procedure (RFC 2328 13-13.5) as pure decisions.
//!
//! [`receive_lsa`] takes one LSA from a Link State Update and everything the router knows
//! that matters for it, and says what to do: install, flood where, whose retransmission and
//! request lists change, and what to acknowledge. [`flood_plan`] is 13.3 alone, also used for
//! the router's own LSAs. Self-originated LSAs (13.4) and sequence number wrap (12.1.6) are
//! [`self_originated_action`] and [`next_seq`].

use std::net::Ipv4Addr;

use serde::Serialize;

use crate::consts::{INITIAL_SEQUENCE_NUMBER, MAX_SEQUENCE_NUMBER};
use crate::interface::{IfState, IfType};
use crate::lsdb::{compare, Recency};
use crate::neighbor::NbrState;
use crate::packet::lsa::{LSA_EXTERNAL, LSA_NETWORK, LSA_NSSA, LSA_SUMMARY_ASBR};
use crate::packet::{Lsa, LsaBody, LsaHeader};
use crate::{AreaId, IfIndex, RouterId};

/// A neighbor, as flooding sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FloodNbr {
    /// Router ID.
    pub router_id: RouterId,
    /// Interface address.
    pub addr: Ipv4Addr,
    /// State.
    pub state: NbrState,
    /// The entry for this LSA on the neighbor's request list, if any.
    pub request: Option<LsaHeader>,
}

/// An interface, as flooding sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FloodIface {
    /// Interface.
    pub ifindex: IfIndex,
    /// Its area.
    pub area: AreaId,
    /// The area is stub or NSSA (no AS-external flooding).
    pub stub: bool,
    /// The area is an NSSA (type-7 LSAs allowed).
    pub nssa: bool,
    /// Network type.
    pub if_type: IfType,
    /// Interface state.
    pub state: IfState,
    /// DR address.
    pub dr: Ipv4Addr,
    /// BDR address.
    pub bdr: Ipv4Addr,
    /// Neighbors.
    pub neighbors: Vec<FloodNbr>,
}

/// Where a flooded LSA goes on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Dest {
    /// 224.0.0.5.
    AllSpfRouters,
    /// 224.0.0.6 (sent by DROthers on broadcast networks).
    AllDRouters,
}

/// The output of 13.3.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FloodPlan {
    /// Interfaces to send the LSA out of, and to which address.
    pub out: Vec<(IfIndex, Dest)>,
    /// Neighbors whose retransmission list gets the LSA.
    pub retransmit: Vec<(IfIndex, RouterId)>,
    /// Neighbors whose request list entry for this LSA is satisfied.
    pub remove_request: Vec<(IfIndex, RouterId)>,
    /// The LSA goes back out of the interface it came in on.
    pub flooded_back: bool,
}

/// Acknowledgment to send for a received LSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Ack {
    /// None.
    None,
    /// Unicast to the sender at once.
    Direct,
    /// Batched on the interface, sent within the ack delay.
    Delayed,
}

/// What to do with one received LSA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Receipt {
    /// Drop it, with the counter's name.
    Discard(&'static str),
    /// Step 4: MaxAge LSA we do not have: acknowledge directly and drop.
    AckAndDiscard,
    /// Step 5: newer than ours (or new): install, flood, acknowledge.
    Install {
        /// Flooding.
        flood: FloodPlan,
        /// Ack.
        ack: Ack,
        /// Remove the old instance from every retransmission list.
        remove_old_from_retransmission: bool,
        /// 13.4: it claims to be ours; see [`self_originated_action`].
        self_originated: bool,
    },
    /// Step 6: it is on the sender's request list although we have it: BadLSReq.
    BadLsReq,
    /// Step 7: same instance as ours.
    Duplicate {
        /// It was on the sender's retransmission list: treat as an ack and remove it there.
        implied_ack: bool,
        /// Ack to send.
        ack: Ack,
    },
    /// Step 8: ours is newer: send our copy back to the sender (unless sent within
    /// MinLSArrival), no ack.
    SendOurs,
}

/// Our current instance of the LSA, as flooding needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbCopy {
    /// Header with the current age.
    pub header: LsaHeader,
    /// Installed from flooding less than MinLSArrival ago.
    pub within_min_ls_arrival: bool,
}

/// Everything [`receive_lsa`] needs besides the LSA.
#[derive(Debug, Clone)]
pub struct ReceiveContext<'a> {
    /// Our router ID.
    pub router_id: RouterId,
    /// Our interface addresses (a network-LSA with one of them as ID is ours).
    pub own_addrs: &'a [Ipv4Addr],
    /// All interfaces.
    pub ifaces: &'a [FloodIface],
    /// Interface it arrived on.
    pub ifindex: IfIndex,
    /// Sending neighbor's router ID.
    pub from: RouterId,
    /// Sending neighbor's interface address.
    pub from_addr: Ipv4Addr,
    /// Our instance, if any.
    pub db_copy: Option<DbCopy>,
    /// Some neighbor (any interface) is in Exchange or Loading.
    pub any_nbr_exchanging: bool,
    /// The LSA is on the sending neighbor's retransmission list.
    pub on_sender_retransmission_list: bool,
    /// The LSA is on the sending neighbor's request list.
    pub on_sender_request_list: bool,
}

/// 13.4: is this LSA ours?
pub fn is_self_originated(h: &LsaHeader, router_id: RouterId, own_addrs: &[Ipv4Addr]) -> bool {
    h.adv_router == router_id || (h.ls_type == LSA_NETWORK && own_addrs.contains(&h.lsid))
}

/// RFC 2328 13, steps 1-8, for one LSA of a Link State Update that decoded (checksum and
/// format are verified by the codec: step 1).
pub fn receive_lsa(ctx: &ReceiveContext<'_>, lsa: &Lsa) -> Receipt {
    let h = &lsa.header;
    let Some(rx_if) = ctx.ifaces.iter().find(|i| i.ifindex == ctx.ifindex) else {
        return Receipt::Discard("unknown-interface");
    };
    // Step 2.
    if matches!(lsa.body, LsaBody::Unknown(_)) {
        return Receipt::Discard("unknown-lsa-type");
    }
    // Step 3 (and RFC 3101: type 7 only in NSSAs, type 4 not in stub areas).
    if (h.ls_type == LSA_EXTERNAL || h.ls_type == LSA_SUMMARY_ASBR) && rx_if.stub
        || h.ls_type == LSA_NSSA && !rx_if.nssa
    {
        return Receipt::Discard("lsa-wrong-area-type");
    }
    // Step 4.
    if h.is_maxage() && ctx.db_copy.is_none() && !ctx.any_nbr_exchanging {
        return Receipt::AckAndDiscard;
    }
    let recency = ctx
        .db_copy
        .map_or(Recency::Newer, |d| compare(h, &d.header));
    let from_dr = ctx.from_addr == rx_if.dr;
    match recency {
        Recency::Newer => {
            // Step 5a. Not for an instance we asked this neighbor for: discarding it would
            // leave the request pending (and the adjacency Loading) until the LS Request
            // is retransmitted, RxmtInterval later.
            if ctx.db_copy.is_some_and(|d| d.within_min_ls_arrival) && !ctx.on_sender_request_list {
                return Receipt::Discard("min-ls-arrival");
            }
            let flood = flood_plan(ctx.ifaces, rx_if.area, h, Some((ctx.ifindex, ctx.from)));
            // 13.5, table 19.
            let ack = if flood.flooded_back {
                Ack::None
            } else if rx_if.state == IfState::Backup {
                if from_dr {
                    Ack::Delayed
                } else {
                    Ack::None
                }
            } else {
                Ack::Delayed
            };
            Receipt::Install {
                flood,
                ack,
                remove_old_from_retransmission: ctx.db_copy.is_some(),
                self_originated: is_self_originated(h, ctx.router_id, ctx.own_addrs),
            }
        }
        // Step 6.
        _ if ctx.on_sender_request_list => Receipt::BadLsReq,
        // Step 7.
        Recency::Same => {
            if ctx.on_sender_retransmission_list {
                let ack = if rx_if.state == IfState::Backup && from_dr {
                    Ack::Delayed
                } else {
                    Ack::None
                };
                Receipt::Duplicate {
                    implied_ack: true,
                    ack,
                }
            } else {
                Receipt::Duplicate {
                    implied_ack: false,
                    ack: Ack::Direct,
                }
            }
        }
        // Step 8.
        Recency::Older => {
            let d = ctx.db_copy.map(|d| d.header);
            if d.is_some_and(|d| d.is_maxage() && d.seq == MAX_SEQUENCE_NUMBER) {
                Receipt::Discard("maxage-maxseq")
            } else {
                Receipt::SendOurs
            }
        }
    }
}

/// RFC 2328 13.3: the interfaces and neighbors an LSA of `area` goes to. `from` is the
/// interface and neighbor it came from (None for our own LSAs).
pub fn flood_plan(
    ifaces: &[FloodIface],
    area: AreaId,
    h: &LsaHeader,
    from: Option<(IfIndex, RouterId)>,
) -> FloodPlan {
    let mut plan = FloodPlan::default();
    let as_scope = h.ls_type == LSA_EXTERNAL;
    for iface in ifaces {
        let eligible = if as_scope {
            !iface.stub
        } else {
            iface.area == area
        };
        if !eligible || iface.state == IfState::Down {
            continue;
        }
        let mut added = false;
        for n in &iface.neighbors {
            // 1a.
            if n.state < NbrState::Exchange {
                continue;
            }
            // 1b.
            if n.state < NbrState::Full {
                if let Some(req) = &n.request {
                    match compare(h, req) {
                        Recency::Older => continue,
                        Recency::Same => {
                            plan.remove_request.push((iface.ifindex, n.router_id));
                            continue;
                        }
                        Recency::Newer => plan.remove_request.push((iface.ifindex, n.router_id)),
                    }
                }
            }
            // 1c.
            if from == Some((iface.ifindex, n.router_id)) {
                continue;
            }
            // 1d.
            plan.retransmit.push((iface.ifindex, n.router_id));
            added = true;
        }
        // 2.
        if !added {
            continue;
        }
        if let Some((rx_if, rx_nbr)) = from {
            if rx_if == iface.ifindex {
                // 3: the DR or BDR sent it here; the DR floods it.
                let from_addr = iface
                    .neighbors
                    .iter()
                    .find(|n| n.router_id == rx_nbr)
                    .map(|n| n.addr);
                if from_addr.is_some_and(|a| a == iface.dr || a == iface.bdr) {
                    continue;
                }
                // 4: a BDR leaves flooding back to the DR.
                if iface.state == IfState::Backup {
                    continue;
                }
                plan.flooded_back = true;
            }
        }
        // 5.
        let dest = match (iface.if_type, iface.state) {
            (IfType::Broadcast, IfState::DrOther) => Dest::AllDRouters,
            _ => Dest::AllSpfRouters,
        };
        plan.out.push((iface.ifindex, dest));
    }
    plan
}

/// What to do about a received instance of one of our own LSAs that is newer than ours
/// (13.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SelfOrigAction {
    /// We still originate it: send a new instance with this sequence number.
    Reoriginate(i32),
    /// The received sequence number is MaxSequenceNumber: flush it first, then originate
    /// with InitialSequenceNumber once the flush is acknowledged.
    FlushThenReoriginate,
    /// We no longer originate it (e.g. network-LSA after losing DR, or from a previous
    /// incarnation): flush it by setting MaxAge and flooding.
    Flush,
}

/// 13.4 decision. `still_wanted`: we currently originate an LSA with this key.
pub fn self_originated_action(received: &LsaHeader, still_wanted: bool) -> SelfOrigAction {
    if !still_wanted {
        return SelfOrigAction::Flush;
    }
    match next_seq(Some(received.seq)) {
        NextSeq::Use(s) => SelfOrigAction::Reoriginate(s),
        NextSeq::FlushFirst => SelfOrigAction::FlushThenReoriginate,
    }
}

/// Sequence number for the next instance of an LSA (12.1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum NextSeq {
    /// Use this number.
    Use(i32),
    /// The current instance has MaxSequenceNumber: flush it, then start again at
    /// InitialSequenceNumber.
    FlushFirst,
}

/// The next sequence number after `current` (None: first instance).
pub fn next_seq(current: Option<i32>) -> NextSeq {
    match current {
        None => NextSeq::Use(INITIAL_SEQUENCE_NUMBER),
        Some(MAX_SEQUENCE_NUMBER) => NextSeq::FlushFirst,
        Some(s) => NextSeq::Use(s + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::MAX_AGE;
    use crate::packet::lsa::{options, RouterLsa, LSA_ROUTER};

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn lsa(adv: &str, seq: i32) -> Lsa {
        Lsa::new(
            options::E,
            LSA_ROUTER,
            ip(adv),
            ip(adv),
            seq,
            LsaBody::Router(RouterLsa {
                flags: 0,
                links: vec![],
            }),
        )
    }

    fn nbr(n: u8, state: NbrState) -> FloodNbr {
        FloodNbr {
            router_id: Ipv4Addr::new(n, n, n, n),
            addr: Ipv4Addr::new(10, 0, 0, n),
            state,
            request: None,
        }
    }

    /// Interface 1: broadcast, we are DR, neighbors 2 (BDR) and 3, both Full.
    /// Interface 2: point-to-point to 4 (Full). Interface 3: a stub area, neighbor 5.
    fn ifaces() -> Vec<FloodIface> {
        vec![
            FloodIface {
                ifindex: 1,
                area: ip("0.0.0.0"),
                stub: false,
                nssa: false,
                if_type: IfType::Broadcast,
                state: IfState::Dr,
                dr: ip("10.0.0.1"),
                bdr: ip("10.0.0.2"),
                neighbors: vec![nbr(2, NbrState::Full), nbr(3, NbrState::Full)],
            },
            FloodIface {
                ifindex: 2,
                area: ip("0.0.0.0"),
                stub: false,
                nssa: false,
                if_type: IfType::PointToPoint,
                state: IfState::PointToPoint,
                dr: Ipv4Addr::UNSPECIFIED,
                bdr: Ipv4Addr::UNSPECIFIED,
                neighbors: vec![nbr(4, NbrState::Full)],
            },
            FloodIface {
                ifindex: 3,
                area: ip("0.0.0.1"),
                stub: true,
                nssa: false,
                if_type: IfType::PointToPoint,
                state: IfState::PointToPoint,
                dr: Ipv4Addr::UNSPECIFIED,
                bdr: Ipv4Addr::UNSPECIFIED,
                neighbors: vec![nbr(5, NbrState::Full)],
            },
        ]
    }

    fn ctx<'a>(ifs: &'a [FloodIface], ifindex: IfIndex, from: u8) -> ReceiveContext<'a> {
        ReceiveContext {
            router_id: ip("1.1.1.1"),
            own_addrs: &[],
            ifaces: ifs,
            ifindex,
            from: Ipv4Addr::new(from, from, from, from),
            from_addr: Ipv4Addr::new(10, 0, 0, from),
            db_copy: None,
            any_nbr_exchanging: false,
            on_sender_retransmission_list: false,
            on_sender_request_list: false,
        }
    }

    #[test]
    fn new_lsa_from_drother_is_flooded_back_by_dr_and_everywhere_in_area() {
        let ifs = ifaces();
        let r = receive_lsa(&ctx(&ifs, 1, 3), &lsa("9.9.9.9", 1));
        let Receipt::Install { flood, ack, .. } = r else {
            panic!("{r:?}")
        };
        assert_eq!(
            flood.out,
            vec![(1, Dest::AllSpfRouters), (2, Dest::AllSpfRouters)]
        );
        assert_eq!(
            flood.retransmit,
            vec![(1, ip("2.2.2.2")), (2, ip("4.4.4.4"))]
        );
        assert!(flood.flooded_back);
        // Flooded back out the receiving interface: that is the ack.
        assert_eq!(ack, Ack::None);
    }

    #[test]
    fn lsa_from_bdr_is_not_flooded_back_and_gets_delayed_ack() {
        let ifs = ifaces();
        let r = receive_lsa(&ctx(&ifs, 1, 2), &lsa("9.9.9.9", 1));
        let Receipt::Install { flood, ack, .. } = r else {
            panic!("{r:?}")
        };
        assert_eq!(flood.out, vec![(2, Dest::AllSpfRouters)]);
        assert!(!flood.flooded_back);
        assert_eq!(ack, Ack::Delayed);
    }

    #[test]
    fn backup_acks_only_what_the_dr_sent() {
        let mut ifs = ifaces();
        ifs[0].state = IfState::Backup;
        ifs[0].dr = ip("10.0.0.3");
        ifs[0].bdr = ip("10.0.0.1");
        // From DR 3: delayed ack, no flooding back.
        let Receipt::Install { ack, flood, .. } = receive_lsa(&ctx(&ifs, 1, 3), &lsa("9.9.9.9", 1))
        else {
            panic!()
        };
        assert_eq!(ack, Ack::Delayed);
        assert!(!flood.out.iter().any(|(i, _)| *i == 1));
        // From DROther 2: the BDR does not flood back and does not ack.
        ifs[0].bdr = ip("10.0.0.1");
        let Receipt::Install { ack, .. } = receive_lsa(&ctx(&ifs, 1, 2), &lsa("9.9.9.9", 1)) else {
            panic!()
        };
        assert_eq!(ack, Ack::None);
    }

    #[test]
    fn drother_floods_to_alldrouters() {
        let mut ifs = ifaces();
        ifs[0].state = IfState::DrOther;
        ifs[0].dr = ip("10.0.0.2");
        ifs[0].bdr = ip("10.0.0.3");
        let Receipt::Install { flood, .. } = receive_lsa(&ctx(&ifs, 2, 4), &lsa("9.9.9.9", 1))
        else {
            panic!()
        };
        assert_eq!(flood.out, vec![(1, Dest::AllDRouters)]);
    }

    #[test]
    fn duplicates_implied_and_direct_acks() {
        let ifs = ifaces();
        let l = lsa("9.9.9.9", 1);
        let mut c = ctx(&ifs, 2, 4);
        c.db_copy = Some(DbCopy {
            header: l.header,
            within_min_ls_arrival: false,
        });
        assert_eq!(
            receive_lsa(&c, &l),
            Receipt::Duplicate {
                implied_ack: false,
                ack: Ack::Direct
            }
        );
        c.on_sender_retransmission_list = true;
        assert_eq!(
            receive_lsa(&c, &l),
            Receipt::Duplicate {
                implied_ack: true,
                ack: Ack::None
            }
        );
        c.on_sender_request_list = true;
        assert_eq!(receive_lsa(&c, &l), Receipt::BadLsReq);
    }

    #[test]
    fn older_instance_gets_ours_back_and_min_ls_arrival_discards() {
        let ifs = ifaces();
        let mut c = ctx(&ifs, 2, 4);
        c.db_copy = Some(DbCopy {
            header: lsa("9.9.9.9", 5).header,
            within_min_ls_arrival: true,
        });
        assert_eq!(receive_lsa(&c, &lsa("9.9.9.9", 4)), Receipt::SendOurs);
        assert_eq!(
            receive_lsa(&c, &lsa("9.9.9.9", 6)),
            Receipt::Discard("min-ls-arrival")
        );
        // A newer instance we requested from this neighbor is taken all the same.
        c.on_sender_request_list = true;
        assert!(matches!(
            receive_lsa(&c, &lsa("9.9.9.9", 6)),
            Receipt::Install { .. }
        ));
    }

    #[test]
    fn maxage_unknown_lsa_is_acked_and_dropped_unless_exchanging() {
        let ifs = ifaces();
        let mut l = lsa("9.9.9.9", 5);
        l.header.age = MAX_AGE;
        let mut c = ctx(&ifs, 2, 4);
        assert_eq!(receive_lsa(&c, &l), Receipt::AckAndDiscard);
        c.any_nbr_exchanging = true;
        assert!(matches!(receive_lsa(&c, &l), Receipt::Install { .. }));
    }

    #[test]
    fn external_lsas_skip_stub_areas_and_are_refused_from_them() {
        let ifs = ifaces();
        let ext = Lsa::new(
            0,
            LSA_EXTERNAL,
            ip("192.0.2.0"),
            ip("9.9.9.9"),
            1,
            LsaBody::External(crate::packet::lsa::ExternalLsa {
                mask: ip("255.255.255.0"),
                type2: true,
                metric: 1,
                forwarding: Ipv4Addr::UNSPECIFIED,
                tag: 0,
                tos: vec![],
            }),
        );
        let Receipt::Install { flood, .. } = receive_lsa(&ctx(&ifs, 2, 4), &ext) else {
            panic!()
        };
        assert!(!flood.out.iter().any(|(i, _)| *i == 3));
        assert_eq!(
            receive_lsa(&ctx(&ifs, 3, 5), &ext),
            Receipt::Discard("lsa-wrong-area-type")
        );
    }

    #[test]
    fn neighbors_in_exchange_get_request_list_handling() {
        let mut ifs = ifaces();
        let l = lsa("9.9.9.9", 5);
        ifs[1].neighbors[0].state = NbrState::Loading;
        ifs[1].neighbors[0].request = Some(lsa("9.9.9.9", 5).header);
        let p = flood_plan(&ifs, ip("0.0.0.0"), &l.header, None);
        assert_eq!(p.remove_request, vec![(2, ip("4.4.4.4"))]);
        assert!(!p.out.iter().any(|(i, _)| *i == 2));
        ifs[1].neighbors[0].request = Some(lsa("9.9.9.9", 4).header);
        let p = flood_plan(&ifs, ip("0.0.0.0"), &l.header, None);
        assert!(p.retransmit.contains(&(2, ip("4.4.4.4"))));
        ifs[1].neighbors[0].state = NbrState::ExStart;
        let p = flood_plan(&ifs, ip("0.0.0.0"), &l.header, None);
        assert!(!p.out.iter().any(|(i, _)| *i == 2));
    }

    #[test]
    fn self_originated_lsas_are_recognised_and_reoriginated_or_flushed() {
        let ifs = ifaces();
        let mut c = ctx(&ifs, 2, 4);
        let own = [ip("10.0.0.1")];
        c.own_addrs = &own;
        let Receipt::Install {
            self_originated, ..
        } = receive_lsa(&c, &lsa("1.1.1.1", 40))
        else {
            panic!()
        };
        assert!(self_originated);
        let h = lsa("1.1.1.1", 40).header;
        assert_eq!(
            self_originated_action(&h, true),
            SelfOrigAction::Reoriginate(41)
        );
        assert_eq!(self_originated_action(&h, false), SelfOrigAction::Flush);
        let mut max = h;
        max.seq = MAX_SEQUENCE_NUMBER;
        assert_eq!(
            self_originated_action(&max, true),
            SelfOrigAction::FlushThenReoriginate
        );
        let mut net = h;
        net.ls_type = LSA_NETWORK;
        net.adv_router = ip("7.7.7.7");
        net.lsid = ip("10.0.0.1");
        assert!(is_self_originated(&net, ip("1.1.1.1"), &own));
    }

    #[test]
    fn sequence_numbers_start_increment_and_wrap_via_flush() {
        assert_eq!(next_seq(None), NextSeq::Use(INITIAL_SEQUENCE_NUMBER));
        assert_eq!(next_seq(Some(-5)), NextSeq::Use(-4));
        assert_eq!(next_seq(Some(MAX_SEQUENCE_NUMBER)), NextSeq::FlushFirst);
    }
}
