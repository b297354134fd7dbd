//! Neighbor state machine (RFC 2328 10.3), the adjacency decision (10.4) and database
//! exchange (10.6-10.9), as pure functions over plain data.

use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;

use serde::Serialize;

use crate::interface::{IfState, IfType};
use crate::lsdb::{compare, Recency};
use crate::packet::lsa::{LSA_EXTERNAL, LSA_NSSA, LSA_SUMMARY_ASBR};
use crate::packet::{dd_flags, DbDesc, LsRequest, Lsa, LsaHeader, LsaKey};
use crate::RouterId;

/// Neighbor states (RFC 2328 10.1), ordered as the RFC compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum NbrState {
    /// Nothing heard recently.
    Down,
    /// NBMA only: Hellos being sent, nothing heard.
    Attempt,
    /// A Hello was seen, but it did not list us.
    Init,
    /// Bidirectional communication.
    TwoWay,
    /// Negotiating master/slave for the database exchange.
    ExStart,
    /// Exchanging Database Description packets.
    Exchange,
    /// Requesting the LSAs we lack.
    Loading,
    /// Fully adjacent.
    Full,
}

/// Neighbor events (RFC 2328 10.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum NbrEvent {
    /// A Hello was received from the neighbor.
    HelloReceived,
    /// NBMA: start sending Hellos to an eligible neighbor.
    Start,
    /// The neighbor's Hello lists us.
    TwoWayReceived,
    /// Master/slave negotiated.
    NegotiationDone,
    /// Both sides sent all their Database Description packets.
    ExchangeDone,
    /// The neighbor asked for an LSA we do not have.
    BadLsReq,
    /// The request list emptied in Loading.
    LoadingDone,
    /// Re-check whether an adjacency should exist (DR/BDR changed).
    AdjOk,
    /// A Database Description packet was out of sequence or inconsistent.
    SeqNumberMismatch,
    /// The neighbor's Hello no longer lists us.
    OneWay,
    /// Forget the neighbor.
    KillNbr,
    /// The inactivity timer fired.
    InactivityTimer,
    /// Lower-level protocols report the neighbor unreachable.
    LlDown,
}

/// What the caller must do after a neighbor transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum NbrAction {
    /// (Re)start the inactivity timer.
    RestartInactivityTimer,
    /// Stop every timer of this neighbor.
    StopTimers,
    /// NBMA: send a Hello to the neighbor.
    SendHello,
    /// Enter ExStart: bump the DD sequence number, declare master, send an empty DD with
    /// I, M and MS set and retransmit it every RxmtInterval ([`DbExchange::start`]).
    StartDbExchange,
    /// Build the summary list from the area database ([`DbExchange::negotiated`]).
    BuildSummaryList,
    /// Start sending Link State Requests for the request list.
    SendLsRequests,
    /// Clear the retransmission, summary and request lists.
    ClearLists,
    /// Generate the interface's NeighborChange event (2-Way boundary crossed).
    InterfaceNeighborChange,
    /// Re-originate the router-LSA (and the network-LSA when DR): Full was entered or left.
    OriginateLsas,
}

/// Result of a neighbor event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NbrTransition {
    /// New state.
    pub state: NbrState,
    /// Actions, in order.
    pub actions: Vec<NbrAction>,
}

/// Whether an adjacency should be formed with a neighbor (RFC 2328 10.4).
pub fn should_form_adjacency(
    if_type: IfType,
    if_state: IfState,
    nbr_addr: Ipv4Addr,
    dr: Ipv4Addr,
    bdr: Ipv4Addr,
) -> bool {
    match if_type {
        IfType::PointToPoint => true,
        IfType::Broadcast => {
            matches!(if_state, IfState::Dr | IfState::Backup) || nbr_addr == dr || nbr_addr == bdr
        }
    }
}

/// The neighbor state machine (RFC 2328 10.3). `adjacency` is [`should_form_adjacency`] for
/// this neighbor now (used by 2-WayReceived and AdjOK?). Events that do not apply leave the
/// state unchanged with no action.
pub fn neighbor_event(state: NbrState, event: NbrEvent, adjacency: bool) -> NbrTransition {
    use NbrAction as A;
    use NbrEvent as E;
    use NbrState as S;
    let to = |s, actions: Vec<NbrAction>| NbrTransition { state: s, actions };
    let stay = || to(state, vec![]);
    let mut t = match (state, event) {
        (S::Down, E::Start) => to(S::Attempt, vec![A::SendHello, A::RestartInactivityTimer]),
        (S::Down | S::Attempt, E::HelloReceived) => to(S::Init, vec![A::RestartInactivityTimer]),
        (_, E::HelloReceived) => to(state, vec![A::RestartInactivityTimer]),
        (S::Init, E::TwoWayReceived) if adjacency => to(S::ExStart, vec![A::StartDbExchange]),
        (S::Init, E::TwoWayReceived) => to(S::TwoWay, vec![]),
        (S::ExStart, E::NegotiationDone) => to(S::Exchange, vec![A::BuildSummaryList]),
        (S::Exchange, E::ExchangeDone) => to(S::Loading, vec![A::SendLsRequests]),
        (S::Loading, E::LoadingDone) => to(S::Full, vec![]),
        (S::TwoWay, E::AdjOk) if adjacency => to(S::ExStart, vec![A::StartDbExchange]),
        (S::ExStart | S::Exchange | S::Loading | S::Full, E::AdjOk) if !adjacency => {
            to(S::TwoWay, vec![A::ClearLists])
        }
        (S::Exchange | S::Loading | S::Full, E::SeqNumberMismatch | E::BadLsReq) => {
            to(S::ExStart, vec![A::ClearLists, A::StartDbExchange])
        }
        (_, E::KillNbr | E::LlDown | E::InactivityTimer) if state != S::Down => {
            to(S::Down, vec![A::ClearLists, A::StopTimers])
        }
        (s, E::OneWay) if s >= S::TwoWay => to(S::Init, vec![A::ClearLists]),
        _ => stay(),
    };
    // Side effects that follow from the state change itself rather than the event.
    if (state >= S::TwoWay) != (t.state >= S::TwoWay) {
        t.actions.push(A::InterfaceNeighborChange);
    }
    if (state == S::Full) != (t.state == S::Full) {
        t.actions.push(A::OriginateLsas);
    }
    t
}

/// ExchangeDone when the request list is already empty goes straight to Full (10.3).
pub fn exchange_done(request_list_empty: bool) -> NbrTransition {
    if request_list_empty {
        NbrTransition {
            state: NbrState::Full,
            actions: vec![NbrAction::OriginateLsas],
        }
    } else {
        neighbor_event(NbrState::Exchange, NbrEvent::ExchangeDone, true)
    }
}

/// Read access to the area database needed by the exchange.
pub trait DbView {
    /// The LSA headers to describe to a neighbor entering Exchange (all LSAs of the area,
    /// plus AS-external ones unless the area is stub; MaxAge ones excluded, RFC 10.3).
    fn summary(&self) -> Vec<LsaHeader>;
    /// The header of our instance of an LSA, if any.
    fn lookup(&self, key: &LsaKey) -> Option<LsaHeader>;
}

/// Fixed facts for processing Database Description packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DdContext {
    /// Our router ID.
    pub router_id: RouterId,
    /// The neighbor's router ID.
    pub nbr_router_id: RouterId,
    /// Our interface MTU (DDs announcing a larger one are dropped, 10.6).
    pub mtu: u16,
    /// Options we send.
    pub options: u8,
    /// The area is stub or NSSA (AS-external LSAs in a DD are an error).
    pub stub: bool,
    /// How many LSA headers fit in one DD (from the MTU).
    pub max_headers: usize,
}

/// Outcome of a received Database Description packet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DdResult {
    /// Neighbor events to apply, in order (e.g. NegotiationDone then ExchangeDone).
    pub events: Vec<NbrEvent>,
    /// A DD to send now.
    pub send: Option<DbDesc>,
    /// Dropped without effect; the reason names a counter.
    pub dropped: Option<&'static str>,
    /// In Init: apply 2-WayReceived first, then feed the packet again.
    pub reprocess: bool,
}

/// The database exchange state of one neighbor (RFC 2328 10.1's DD-related fields).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbExchange {
    /// We are master.
    pub master: bool,
    /// Current DD sequence number.
    pub dd_seq: u32,
    /// LSA headers still to describe.
    pub summary: VecDeque<LsaHeader>,
    /// LSAs to request: the neighbor has a newer instance than ours.
    pub requests: BTreeMap<LsaKey, LsaHeader>,
    /// (options, flags, seq) of the last DD received, for duplicate detection.
    pub last_rx: Option<(u8, u8, u32)>,
    /// The last DD sent, for retransmission.
    pub last_tx: Option<DbDesc>,
}

fn is_known_type(t: u8) -> bool {
    (1..=LSA_EXTERNAL).contains(&t) || t == LSA_NSSA
}

impl DbExchange {
    /// Enters ExStart: `seq` is a new DD sequence number (the caller uses a clock or a
    /// counter). Returns the empty I|M|MS packet to send and retransmit.
    pub fn start(&mut self, seq: u32, ctx: &DdContext) -> DbDesc {
        *self = DbExchange {
            master: true,
            dd_seq: seq,
            ..Default::default()
        };
        let dd = DbDesc {
            mtu: ctx.mtu,
            options: ctx.options,
            flags: dd_flags::I | dd_flags::M | dd_flags::MS,
            seq,
            lsa_headers: vec![],
        };
        self.last_tx = Some(dd.clone());
        dd
    }

    /// NegotiationDone: take the summary list from the database.
    pub fn negotiated(&mut self, db: &dyn DbView) {
        self.summary = db.summary().into();
    }

    fn next_dd(&mut self, ctx: &DdContext) -> DbDesc {
        let n = ctx.max_headers.max(1).min(self.summary.len());
        let lsa_headers: Vec<LsaHeader> = self.summary.drain(..n).collect();
        let mut flags = 0;
        if self.master {
            flags |= dd_flags::MS;
        }
        if !self.summary.is_empty() {
            flags |= dd_flags::M;
        }
        let dd = DbDesc {
            mtu: ctx.mtu,
            options: ctx.options,
            flags,
            seq: self.dd_seq,
            lsa_headers,
        };
        self.last_tx = Some(dd.clone());
        dd
    }

    fn we_sent_all(&self) -> bool {
        self.summary.is_empty()
            && self
                .last_tx
                .as_ref()
                .is_some_and(|d| d.flags & dd_flags::M == 0)
    }

    /// Processes a received Database Description packet in neighbor state `state`
    /// (RFC 2328 10.6 and 10.8).
    pub fn receive(
        &mut self,
        state: NbrState,
        dd: &DbDesc,
        ctx: &DdContext,
        db: &dyn DbView,
    ) -> DdResult {
        let mut res = DdResult::default();
        if dd.mtu > ctx.mtu {
            res.dropped = Some("mtu-mismatch");
            return res;
        }
        let rx = (dd.options, dd.flags, dd.seq);
        let dup = self.last_rx == Some(rx);
        match state {
            NbrState::Down | NbrState::Attempt | NbrState::TwoWay => {
                res.dropped = Some("dd-wrong-state");
            }
            NbrState::Init => res.reprocess = true,
            NbrState::ExStart => {
                let ims = dd_flags::I | dd_flags::M | dd_flags::MS;
                if dd.flags & ims == ims
                    && dd.lsa_headers.is_empty()
                    && u32::from(ctx.nbr_router_id) > u32::from(ctx.router_id)
                {
                    // The neighbor is master: adopt its sequence number and answer.
                    self.master = false;
                    self.dd_seq = dd.seq;
                    self.last_rx = Some(rx);
                    self.negotiated(db);
                    res.events.push(NbrEvent::NegotiationDone);
                    res.send = Some(self.next_dd(ctx));
                } else if dd.flags & (dd_flags::I | dd_flags::MS) == 0
                    && dd.seq == self.dd_seq
                    && u32::from(ctx.nbr_router_id) < u32::from(ctx.router_id)
                {
                    self.master = true;
                    self.negotiated(db);
                    res.events.push(NbrEvent::NegotiationDone);
                    self.accept(dd, rx, ctx, db, &mut res);
                } else {
                    res.dropped = Some("dd-negotiation");
                }
            }
            NbrState::Exchange => {
                if dup {
                    if !self.master {
                        res.send = self.last_tx.clone();
                    }
                    return res;
                }
                let ms_ok = (dd.flags & dd_flags::MS != 0) != self.master;
                let opts_ok = self.last_rx.is_none_or(|(o, _, _)| o == dd.options);
                let seq_ok = if self.master {
                    dd.seq == self.dd_seq
                } else {
                    dd.seq == self.dd_seq.wrapping_add(1)
                };
                if !ms_ok || dd.flags & dd_flags::I != 0 || !opts_ok || !seq_ok {
                    res.events.push(NbrEvent::SeqNumberMismatch);
                    return res;
                }
                self.accept(dd, rx, ctx, db, &mut res);
            }
            NbrState::Loading | NbrState::Full => {
                if dup {
                    if !self.master {
                        res.send = self.last_tx.clone();
                    }
                } else {
                    res.events.push(NbrEvent::SeqNumberMismatch);
                }
            }
        }
        res
    }

    fn accept(
        &mut self,
        dd: &DbDesc,
        rx: (u8, u8, u32),
        ctx: &DdContext,
        db: &dyn DbView,
        res: &mut DdResult,
    ) {
        self.last_rx = Some(rx);
        for h in &dd.lsa_headers {
            if !is_known_type(h.ls_type)
                || (ctx.stub && (h.ls_type == LSA_EXTERNAL || h.ls_type == LSA_SUMMARY_ASBR))
            {
                res.events.push(NbrEvent::SeqNumberMismatch);
                return;
            }
            let ours = db.lookup(&h.key());
            if ours.is_none_or(|o| compare(h, &o) == Recency::Newer) {
                self.requests.insert(h.key(), *h);
            }
        }
        let nbr_more = dd.flags & dd_flags::M != 0;
        if self.master {
            self.dd_seq = self.dd_seq.wrapping_add(1);
            if self.we_sent_all() && !nbr_more {
                res.events.push(NbrEvent::ExchangeDone);
            } else {
                res.send = Some(self.next_dd(ctx));
            }
        } else {
            self.dd_seq = dd.seq;
            res.send = Some(self.next_dd(ctx));
            if !nbr_more && self.we_sent_all() {
                res.events.push(NbrEvent::ExchangeDone);
            }
        }
    }

    /// The next Link State Request to send, at most `max` entries (10.9).
    pub fn next_request(&self, max: usize) -> Option<LsRequest> {
        let entries: Vec<LsaKey> = self.requests.keys().take(max).copied().collect();
        (!entries.is_empty()).then_some(LsRequest { entries })
    }
}

/// Answers a Link State Request (10.7): every requested LSA must be in the database,
/// otherwise the neighbor gets BadLSReq.
pub fn answer_request(
    req: &LsRequest,
    lookup: impl Fn(&LsaKey) -> Option<Lsa>,
) -> Result<Vec<Lsa>, NbrEvent> {
    req.entries
        .iter()
        .map(|k| lookup(k).ok_or(NbrEvent::BadLsReq))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::lsa::{LSA_ROUTER, LSA_SUMMARY_NET};

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn hello_two_way_and_adjacency() {
        let t = neighbor_event(NbrState::Down, NbrEvent::HelloReceived, false);
        assert_eq!(t.state, NbrState::Init);
        let t = neighbor_event(NbrState::Init, NbrEvent::TwoWayReceived, false);
        assert_eq!(t.state, NbrState::TwoWay);
        assert!(t.actions.contains(&NbrAction::InterfaceNeighborChange));
        let t = neighbor_event(NbrState::Init, NbrEvent::TwoWayReceived, true);
        assert_eq!(t.state, NbrState::ExStart);
        assert!(t.actions.contains(&NbrAction::StartDbExchange));
    }

    #[test]
    fn full_path_and_origination_on_full() {
        let t = neighbor_event(NbrState::ExStart, NbrEvent::NegotiationDone, true);
        assert_eq!(t.state, NbrState::Exchange);
        assert_eq!(exchange_done(true).state, NbrState::Full);
        let t = exchange_done(false);
        assert_eq!(t.state, NbrState::Loading);
        let t = neighbor_event(NbrState::Loading, NbrEvent::LoadingDone, true);
        assert_eq!(t.state, NbrState::Full);
        assert!(t.actions.contains(&NbrAction::OriginateLsas));
    }

    #[test]
    fn adjok_forms_and_tears_down_adjacencies() {
        assert_eq!(
            neighbor_event(NbrState::TwoWay, NbrEvent::AdjOk, true).state,
            NbrState::ExStart
        );
        assert_eq!(
            neighbor_event(NbrState::TwoWay, NbrEvent::AdjOk, false).state,
            NbrState::TwoWay
        );
        let t = neighbor_event(NbrState::Full, NbrEvent::AdjOk, false);
        assert_eq!(t.state, NbrState::TwoWay);
        assert!(t.actions.contains(&NbrAction::OriginateLsas));
        assert_eq!(
            neighbor_event(NbrState::Full, NbrEvent::AdjOk, true).state,
            NbrState::Full
        );
    }

    #[test]
    fn errors_restart_exchange_and_loss_goes_down() {
        for ev in [NbrEvent::SeqNumberMismatch, NbrEvent::BadLsReq] {
            let t = neighbor_event(NbrState::Full, ev, true);
            assert_eq!(t.state, NbrState::ExStart);
            assert_eq!(
                t.actions[..2],
                [NbrAction::ClearLists, NbrAction::StartDbExchange]
            );
        }
        for ev in [
            NbrEvent::KillNbr,
            NbrEvent::InactivityTimer,
            NbrEvent::LlDown,
        ] {
            let t = neighbor_event(NbrState::Loading, ev, true);
            assert_eq!(t.state, NbrState::Down);
            assert!(t.actions.contains(&NbrAction::InterfaceNeighborChange));
        }
        assert_eq!(
            neighbor_event(NbrState::Full, NbrEvent::OneWay, true).state,
            NbrState::Init
        );
        assert_eq!(
            neighbor_event(NbrState::Init, NbrEvent::OneWay, true).actions,
            vec![]
        );
        assert_eq!(
            neighbor_event(NbrState::Down, NbrEvent::Start, true).state,
            NbrState::Attempt
        );
    }

    #[test]
    fn adjacency_rules() {
        let dr = ip("10.0.0.2");
        let bdr = ip("10.0.0.3");
        let b = IfType::Broadcast;
        assert!(should_form_adjacency(b, IfState::DrOther, dr, dr, bdr));
        assert!(should_form_adjacency(b, IfState::DrOther, bdr, dr, bdr));
        assert!(!should_form_adjacency(
            b,
            IfState::DrOther,
            ip("10.0.0.4"),
            dr,
            bdr
        ));
        assert!(should_form_adjacency(
            b,
            IfState::Backup,
            ip("10.0.0.4"),
            dr,
            bdr
        ));
        assert!(should_form_adjacency(
            IfType::PointToPoint,
            IfState::PointToPoint,
            ip("10.0.0.4"),
            dr,
            bdr
        ));
    }

    struct Db(Vec<LsaHeader>);
    impl DbView for Db {
        fn summary(&self) -> Vec<LsaHeader> {
            self.0.clone()
        }
        fn lookup(&self, key: &LsaKey) -> Option<LsaHeader> {
            self.0.iter().find(|h| h.key() == *key).copied()
        }
    }

    fn hdr(t: u8, id: &str, adv: &str, seq: i32) -> LsaHeader {
        LsaHeader {
            age: 1,
            options: 2,
            ls_type: t,
            lsid: ip(id),
            adv_router: ip(adv),
            seq,
            checksum: 0x1234,
            length: 36,
        }
    }

    fn ctx(me: &str, nbr: &str) -> DdContext {
        DdContext {
            router_id: ip(me),
            nbr_router_id: ip(nbr),
            mtu: 1500,
            options: 2,
            stub: false,
            max_headers: 2,
        }
    }

    /// Drives two exchanges against each other until both report ExchangeDone.
    #[test]
    fn two_routers_exchange_databases_and_request_what_they_lack() {
        let a_db = Db(vec![
            hdr(LSA_ROUTER, "1.1.1.1", "1.1.1.1", 5),
            hdr(LSA_ROUTER, "3.3.3.3", "3.3.3.3", 9),
            hdr(LSA_SUMMARY_NET, "10.9.0.0", "1.1.1.1", 1),
        ]);
        let b_db = Db(vec![
            hdr(LSA_ROUTER, "2.2.2.2", "2.2.2.2", 1),
            hdr(LSA_ROUTER, "3.3.3.3", "3.3.3.3", 7),
        ]);
        let (ca, cb) = (ctx("1.1.1.1", "2.2.2.2"), ctx("2.2.2.2", "1.1.1.1"));
        let (mut a, mut b) = (DbExchange::default(), DbExchange::default());
        let (mut sa, mut sb) = (NbrState::ExStart, NbrState::ExStart);
        let a_first = a.start(100, &ca);
        let b_first = b.start(500, &cb);
        // A has the lower router ID: B's I|M|MS packet makes A the slave.
        let r = a.receive(sa, &b_first, &ca, &a_db);
        assert_eq!(r.events, vec![NbrEvent::NegotiationDone]);
        sa = NbrState::Exchange;
        assert!(!a.master);
        // B ignores A's initial packet (A has the lower router ID).
        assert_eq!(
            b.receive(sb, &a_first, &cb, &b_db).dropped,
            Some("dd-negotiation")
        );
        let mut to_b = r.send;
        let mut done = (false, false);
        for _ in 0..10 {
            let Some(p) = to_b.take() else { break };
            let rb = b.receive(sb, &p, &cb, &b_db);
            for e in &rb.events {
                match e {
                    NbrEvent::NegotiationDone => sb = NbrState::Exchange,
                    NbrEvent::ExchangeDone => done.1 = true,
                    e => panic!("unexpected {e:?}"),
                }
            }
            let Some(p) = rb.send else { break };
            let ra = a.receive(sa, &p, &ca, &a_db);
            if ra.events.contains(&NbrEvent::ExchangeDone) {
                done.0 = true;
            }
            assert!(!ra.events.contains(&NbrEvent::SeqNumberMismatch));
            to_b = ra.send;
        }
        assert_eq!(done, (true, true));
        assert!(b.master);
        // A lacks B's router-LSA; B lacks A's router and summary LSAs and has an older 3.3.3.3.
        let ak: Vec<_> = a.requests.keys().map(|k| k.lsid).collect();
        let bk: Vec<_> = b.requests.keys().map(|k| k.lsid).collect();
        assert_eq!(ak, vec![ip("2.2.2.2")]);
        assert_eq!(bk, vec![ip("1.1.1.1"), ip("3.3.3.3"), ip("10.9.0.0")]);
    }

    #[test]
    fn mtu_mismatch_is_dropped() {
        let mut x = DbExchange::default();
        let c = ctx("2.2.2.2", "1.1.1.1");
        let dd = DbDesc {
            mtu: 9000,
            options: 2,
            flags: dd_flags::I | dd_flags::M | dd_flags::MS,
            seq: 1,
            lsa_headers: vec![],
        };
        let r = x.receive(NbrState::ExStart, &dd, &c, &Db(vec![]));
        assert_eq!(r.dropped, Some("mtu-mismatch"));
    }

    #[test]
    fn out_of_sequence_and_duplicates_in_exchange() {
        let db = Db(vec![]);
        let mut slave = DbExchange::default();
        slave.start(1, &ctx("1.1.1.1", "2.2.2.2"));
        let init = DbDesc {
            mtu: 1500,
            options: 2,
            flags: dd_flags::I | dd_flags::M | dd_flags::MS,
            seq: 77,
            lsa_headers: vec![],
        };
        let c_slave = ctx("1.1.1.1", "2.2.2.2");
        let r = slave.receive(NbrState::ExStart, &init, &c_slave, &db);
        let resp = r.send.unwrap();
        // The master retransmits its last packet: the slave answers with its last again.
        let r = slave.receive(NbrState::Exchange, &init, &c_slave, &db);
        assert_eq!(r.send, Some(resp));
        // A jump in sequence number is a mismatch.
        let bad = DbDesc {
            flags: dd_flags::MS,
            seq: 90,
            ..init.clone()
        };
        let r = slave.receive(NbrState::Exchange, &bad, &c_slave, &db);
        assert_eq!(r.events, vec![NbrEvent::SeqNumberMismatch]);
        // External LSAs described in a stub area are a mismatch too.
        let mut stub_c = c_slave;
        stub_c.stub = true;
        let ext = DbDesc {
            flags: dd_flags::MS,
            seq: 78,
            lsa_headers: vec![hdr(LSA_EXTERNAL, "9.0.0.0", "9.9.9.9", 1)],
            ..init
        };
        let r = slave.receive(NbrState::Exchange, &ext, &stub_c, &db);
        assert_eq!(r.events, vec![NbrEvent::SeqNumberMismatch]);
    }

    #[test]
    fn ls_request_for_missing_lsa_is_bad_ls_req() {
        let req = LsRequest {
            entries: vec![hdr(LSA_ROUTER, "1.1.1.1", "1.1.1.1", 1).key()],
        };
        assert_eq!(answer_request(&req, |_| None), Err(NbrEvent::BadLsReq));
    }
}
