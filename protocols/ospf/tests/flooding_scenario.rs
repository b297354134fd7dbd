//! A receive-side scenario across the LSDB and the flooding decisions: new LSA, duplicate,
//! MinLSArrival, premature aging (flush) and removal of the MaxAge instance.

use std::net::Ipv4Addr;

use oxr_ospf::consts::MAX_AGE;
use oxr_ospf::flooding::{receive_lsa, Ack, DbCopy, FloodIface, FloodNbr, Receipt, ReceiveContext};
use oxr_ospf::interface::{IfState, IfType};
use oxr_ospf::lsdb::{maxage_removable, Lsdb, Scope};
use oxr_ospf::neighbor::NbrState;
use oxr_ospf::packet::lsa::{options, LinkType, RouterLink, RouterLsa, LSA_ROUTER};
use oxr_ospf::packet::{Lsa, LsaBody};
use oxr_ospf::BACKBONE;

fn lsa(seq: i32, metric: u16) -> Lsa {
    Lsa::new(
        options::E,
        LSA_ROUTER,
        Ipv4Addr::new(9, 9, 9, 9),
        Ipv4Addr::new(9, 9, 9, 9),
        seq,
        LsaBody::Router(RouterLsa {
            flags: 0,
            links: vec![RouterLink {
                link_id: Ipv4Addr::new(10, 9, 0, 0),
                link_data: Ipv4Addr::new(255, 255, 0, 0),
                link_type: LinkType::Stub,
                metric,
                tos: vec![],
            }],
        }),
    )
}

fn p2p(ifindex: u32, n: u8) -> FloodIface {
    FloodIface {
        ifindex,
        area: BACKBONE,
        stub: false,
        nssa: false,
        if_type: IfType::PointToPoint,
        state: IfState::PointToPoint,
        dr: Ipv4Addr::UNSPECIFIED,
        bdr: Ipv4Addr::UNSPECIFIED,
        neighbors: vec![FloodNbr {
            router_id: Ipv4Addr::new(n, n, n, n),
            addr: Ipv4Addr::new(10, 0, n, 2),
            state: NbrState::Full,
            request: None,
        }],
    }
}

#[test]
fn lsa_lifecycle_through_lsdb_and_flooding() {
    let ifaces = [p2p(1, 4), p2p(2, 5)];
    let scope = Scope::Area(BACKBONE);
    let mut db = Lsdb::new();
    let receive = |db: &Lsdb, l: &Lsa, now: u64, on_rxmt: bool| {
        let copy = db.get(scope, &l.key()).map(|e| DbCopy {
            header: e.header(now),
            within_min_ls_arrival: e.within_min_ls_arrival(now),
        });
        let ctx = ReceiveContext {
            router_id: Ipv4Addr::new(1, 1, 1, 1),
            own_addrs: &[],
            ifaces: &ifaces,
            ifindex: 1,
            from: Ipv4Addr::new(4, 4, 4, 4),
            from_addr: Ipv4Addr::new(10, 0, 4, 2),
            db_copy: copy,
            any_nbr_exchanging: false,
            on_sender_retransmission_list: on_rxmt,
            on_sender_request_list: false,
        };
        receive_lsa(&ctx, l)
    };

    // New: flooded out the other interface only, delayed ack, installed.
    let first = lsa(1, 10);
    let Receipt::Install { flood, ack, .. } = receive(&db, &first, 0, false) else {
        panic!()
    };
    assert_eq!(flood.out.len(), 1);
    assert_eq!(flood.retransmit, vec![(2, Ipv4Addr::new(5, 5, 5, 5))]);
    assert_eq!(ack, Ack::Delayed);
    assert!(db.install(scope, first.clone(), 0, true).contents_changed);

    // The same instance again: a duplicate, acknowledged directly.
    assert_eq!(
        receive(&db, &first, 100, false),
        Receipt::Duplicate {
            implied_ack: false,
            ack: Ack::Direct
        }
    );

    // A newer instance within MinLSArrival is dropped; a second later it is taken.
    let second = lsa(2, 20);
    assert_eq!(
        receive(&db, &second, 500, false),
        Receipt::Discard("min-ls-arrival")
    );
    assert!(matches!(
        receive(&db, &second, 1500, false),
        Receipt::Install { .. }
    ));
    assert!(
        db.install(scope, second.clone(), 1500, true)
            .contents_changed
    );

    // The originator flushes it: same sequence number at MaxAge is newer.
    let mut flushed = second.clone();
    flushed.header.age = MAX_AGE;
    let Receipt::Install { flood, .. } = receive(&db, &flushed, 5000, false) else {
        panic!()
    };
    assert_eq!(flood.retransmit.len(), 1);
    assert!(db.install(scope, flushed, 5000, true).contents_changed);
    assert_eq!(db.maxaged(5000), vec![(scope, second.key())]);
    // Once neighbor 5 acknowledged it (retransmission list empty) it can go.
    assert!(maxage_removable(false, false));
    db.remove(scope, &second.key());
    assert!(db.is_empty());

    // A MaxAge LSA we no longer have is acknowledged and dropped.
    let mut stale = lsa(2, 20);
    stale.header.age = MAX_AGE;
    assert_eq!(receive(&db, &stale, 6000, false), Receipt::AckAndDiscard);
}
