//! FSM transitions, OPEN validation and collision detection.

use std::net::Ipv4Addr;

use oxr_bgp::packet::capability::Capability;
use oxr_bgp::packet::{AfiSafi, Notification, Open};
use oxr_bgp::session::*;

fn cfg() -> FsmConfig {
    FsmConfig {
        local_as: 65000,
        peer_as: 65001,
        local_id: Ipv4Addr::new(192, 0, 2, 1),
        hold_time: 90,
        connect_retry_time: 30,
        idle_hold_time: 5,
        families: vec![AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST],
    }
}

fn peer_open(hold: u16) -> Open {
    Open::new(
        65001,
        hold,
        Ipv4Addr::new(192, 0, 2, 2),
        vec![Capability::Multiprotocol(AfiSafi::IPV4_UNICAST)],
    )
}

fn run(fsm: &Fsm, events: &[Event]) -> (Fsm, Vec<Action>) {
    let mut f = fsm.clone();
    let mut all = Vec::new();
    for e in events {
        let (n, a) = transition(&cfg(), &f, e);
        f = n;
        all.extend(a);
    }
    (f, all)
}

fn established() -> Fsm {
    let (f, _) = run(
        &Fsm::default(),
        &[
            Event::ManualStart,
            Event::TcpCrAcked,
            Event::BgpOpen(Box::new(peer_open(30))),
            Event::KeepAliveMsg,
        ],
    );
    f
}

#[test]
fn active_open_reaches_established() {
    let c = cfg();
    let (f, a) = transition(&c, &Fsm::default(), &Event::ManualStart);
    assert_eq!(f.state, State::Connect);
    assert_eq!(
        a,
        vec![
            Action::StartTimer(Timer::ConnectRetry, 30),
            Action::InitiateConnection
        ]
    );
    let (f, a) = transition(&c, &f, &Event::TcpCrAcked);
    assert_eq!(f.state, State::OpenSent);
    assert!(a.contains(&Action::SendOpen));
    assert!(a.contains(&Action::StartTimer(Timer::Hold, LARGE_HOLD_TIME)));
    let (f, a) = transition(&c, &f, &Event::BgpOpen(Box::new(peer_open(30))));
    assert_eq!(f.state, State::OpenConfirm);
    // Hold time negotiated to the smaller one, keepalive a third of it.
    assert!(a.contains(&Action::SendKeepalive));
    assert!(a.contains(&Action::StartTimer(Timer::Hold, 30)));
    assert!(a.contains(&Action::StartTimer(Timer::Keepalive, 10)));
    let (f, a) = transition(&c, &f, &Event::KeepAliveMsg);
    assert_eq!(f.state, State::Established);
    assert!(a.iter().any(|x| matches!(x, Action::SessionUp(n) if n.hold_time == 30 && n.ebgp && n.families == vec![AfiSafi::IPV4_UNICAST])));
}

#[test]
fn passive_start_waits_in_active() {
    let (f, a) = transition(&cfg(), &Fsm::default(), &Event::ManualStartPassive);
    assert_eq!(f.state, State::Active);
    assert!(!a.contains(&Action::InitiateConnection));
    let (f, a) = transition(&cfg(), &f, &Event::TcpConnectionConfirmed);
    assert_eq!(f.state, State::OpenSent);
    assert!(a.contains(&Action::SendOpen));
}

#[test]
fn connect_retry_expiry_retries_the_connection() {
    let (f, _) = run(&Fsm::default(), &[Event::ManualStart]);
    let (f, a) = transition(&cfg(), &f, &Event::ConnectRetryTimerExpires);
    assert_eq!(f.state, State::Connect);
    assert_eq!(
        a,
        vec![
            Action::DropConnection,
            Action::StartTimer(Timer::ConnectRetry, 30),
            Action::InitiateConnection
        ]
    );
}

#[test]
fn hold_timer_expiry_sends_notification_and_schedules_restart() {
    let (f, a) = transition(&cfg(), &established(), &Event::HoldTimerExpires);
    assert_eq!(f.state, State::Idle);
    assert_eq!(
        a[0],
        Action::SendNotification(Notification::new(4, 0, vec![]))
    );
    assert!(a.contains(&Action::ReleaseResources));
    assert_eq!(f.connect_retry_counter, 1);
    assert!(a.contains(&Action::StartTimer(Timer::IdleHold, 10)));
    let (f, a) = transition(&cfg(), &f, &Event::IdleHoldTimerExpires);
    assert_eq!(f.state, State::Connect);
    assert!(a.contains(&Action::InitiateConnection));
}

#[test]
fn manual_stop_sends_cease_and_does_not_restart() {
    let (f, a) = transition(&cfg(), &established(), &Event::ManualStop);
    assert_eq!(f.state, State::Idle);
    assert_eq!(a[0], Action::SendNotification(Notification::cease(2)));
    assert!(!a
        .iter()
        .any(|x| matches!(x, Action::StartTimer(Timer::IdleHold, _))));
    assert_eq!(f.connect_retry_counter, 0);
}

#[test]
fn keepalive_timer_sends_keepalive_in_established() {
    let (f, a) = transition(&cfg(), &established(), &Event::KeepaliveTimerExpires);
    assert_eq!(f.state, State::Established);
    assert_eq!(
        a,
        vec![
            Action::SendKeepalive,
            Action::StartTimer(Timer::Keepalive, 10)
        ]
    );
    let (_, a) = transition(&cfg(), &f, &Event::UpdateMsg);
    assert_eq!(a, vec![Action::StartTimer(Timer::Hold, 30)]);
}

#[test]
fn unexpected_messages_are_fsm_errors() {
    let (f, _) = run(&Fsm::default(), &[Event::ManualStart, Event::TcpCrAcked]);
    let (f2, a) = transition(&cfg(), &f, &Event::UpdateMsg);
    assert_eq!(f2.state, State::Idle);
    assert_eq!(
        a[0],
        Action::SendNotification(Notification::new(5, 1, vec![]))
    );
    let (_, a) = transition(
        &cfg(),
        &established(),
        &Event::BgpOpen(Box::new(peer_open(90))),
    );
    assert_eq!(
        a[0],
        Action::SendNotification(Notification::new(5, 3, vec![]))
    );
}

#[test]
fn update_error_resets_with_its_notification() {
    let n = Notification::new(3, 1, vec![]);
    let (f, a) = transition(&cfg(), &established(), &Event::UpdateMsgErr(n.clone()));
    assert_eq!(f.state, State::Idle);
    assert_eq!(a[0], Action::SendNotification(n));
}

#[test]
fn tcp_failure_in_open_sent_goes_active() {
    let (f, _) = run(&Fsm::default(), &[Event::ManualStart, Event::TcpCrAcked]);
    let (f, a) = transition(&cfg(), &f, &Event::TcpConnectionFails);
    assert_eq!(f.state, State::Active);
    assert!(a.contains(&Action::StartTimer(Timer::ConnectRetry, 30)));
}

#[test]
fn open_validation_errors() {
    let c = cfg();
    let ok = peer_open(90);
    assert!(validate_open(&c, &ok).is_ok());
    let sub = |o: &Open| validate_open(&c, o).unwrap_err().subcode;
    assert_eq!(
        sub(&Open {
            version: 3,
            ..ok.clone()
        }),
        1
    );
    assert_eq!(sub(&Open::new(65009, 90, ok.bgp_id, vec![])), 2);
    assert_eq!(
        sub(&Open {
            bgp_id: Ipv4Addr::UNSPECIFIED,
            ..ok.clone()
        }),
        3
    );
    assert_eq!(
        sub(&Open {
            hold_time: 2,
            ..ok.clone()
        }),
        6
    );
    assert_eq!(
        sub(&Open {
            hold_time: 1,
            ..ok.clone()
        }),
        6
    );
    // Hold time 0 is legal: no keepalives.
    let n = validate_open(
        &c,
        &Open {
            hold_time: 0,
            ..ok.clone()
        },
    )
    .unwrap();
    assert_eq!((n.hold_time, n.keepalive_time), (0, 0));
    // Same identifier inside one AS is refused (RFC 6286).
    let ibgp = FsmConfig {
        peer_as: 65000,
        ..cfg()
    };
    let same = Open::new(65000, 90, ibgp.local_id, vec![]);
    assert_eq!(validate_open(&ibgp, &same).unwrap_err().subcode, 3);
}

#[test]
fn four_octet_peer_as_is_checked_via_capability() {
    let c = FsmConfig {
        peer_as: 4_200_000_000,
        ..cfg()
    };
    let o = Open::new(4_200_000_000, 90, Ipv4Addr::new(192, 0, 2, 2), vec![]);
    assert_eq!(o.my_as, 23456);
    let n = validate_open(&c, &o).unwrap();
    assert!(n.four_octet_as);
    // No MP capability: IPv4 unicast is implied (RFC 4760).
    assert_eq!(n.families, vec![AfiSafi::IPV4_UNICAST]);
    // A 2-octet speaker cannot claim a 4-octet AS.
    let old = Open {
        capabilities: vec![],
        ..o
    };
    assert_eq!(validate_open(&c, &old).unwrap_err().subcode, 2);
}

#[test]
fn collision_keeps_the_connection_of_the_higher_identifier() {
    let lo = Ipv4Addr::new(10, 0, 0, 1);
    let hi = Ipv4Addr::new(10, 0, 0, 2);
    // We are lower: our outbound connection is closed.
    assert_eq!(
        resolve_collision(lo, hi, State::OpenConfirm, true),
        CollisionVerdict::CloseExisting
    );
    assert_eq!(
        resolve_collision(lo, hi, State::OpenConfirm, false),
        CollisionVerdict::CloseNew
    );
    // We are higher: the peer's connection is closed.
    assert_eq!(
        resolve_collision(hi, lo, State::OpenSent, true),
        CollisionVerdict::CloseNew
    );
    assert_eq!(
        resolve_collision(hi, lo, State::OpenSent, false),
        CollisionVerdict::CloseExisting
    );
    // Established always wins.
    assert_eq!(
        resolve_collision(lo, hi, State::Established, true),
        CollisionVerdict::CloseNew
    );
    let (f, a) = transition(&cfg(), &established(), &Event::OpenCollisionDump);
    assert_eq!(f.state, State::Idle);
    assert_eq!(a[0], Action::SendNotification(Notification::cease(7)));
}
