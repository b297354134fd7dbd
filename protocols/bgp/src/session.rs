//! The BGP FSM (RFC 4271 section 8) as a pure function of state and event,
//! OPEN validation with hold-time negotiation (section 6.2), and collision
//! detection (section 6.8).
//!
//! The event loop owns the TCP connection and timers; it feeds [`Event`]s into
//! [`transition`] and carries out the returned [`Action`]s in order. DelayOpen
//! is not implemented (its optional events never occur). Timers are restarted
//! by `StartTimer`; the loop also restarts the Keepalive timer whenever it sends
//! an UPDATE (RFC 4271 section 4.4).

use std::net::Ipv4Addr;

use crate::packet::capability::GracefulRestart;
use crate::packet::notification::{cease_subcode, code};
use crate::packet::{AfiSafi, Notification, Open, SessionContext};

/// Hold time used between connection setup and OPEN (RFC 4271 suggests 4 minutes).
pub const LARGE_HOLD_TIME: u32 = 240;

/// FSM states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Refuses connections.
    Idle,
    /// Waiting for our outgoing TCP connection.
    Connect,
    /// Listening for an incoming TCP connection.
    Active,
    /// OPEN sent, waiting for the peer's.
    OpenSent,
    /// OPENs exchanged, waiting for KEEPALIVE.
    OpenConfirm,
    /// Exchanging UPDATEs.
    Established,
}

/// Timers the FSM starts and stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// ConnectRetryTimer.
    ConnectRetry,
    /// HoldTimer.
    Hold,
    /// KeepaliveTimer.
    Keepalive,
    /// IdleHoldTimer (automatic restart with backoff, RFC 4271 8.1.1).
    IdleHold,
}

/// FSM input events (RFC 4271 section 8.1; numbers in the docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// 1: operator start.
    ManualStart,
    /// 2: operator stop.
    ManualStop,
    /// 3: automatic start.
    AutomaticStart,
    /// 4: operator start, listen only.
    ManualStartPassive,
    /// 5: automatic start, listen only.
    AutomaticStartPassive,
    /// 8: automatic stop.
    AutomaticStop,
    /// 9
    ConnectRetryTimerExpires,
    /// 10
    HoldTimerExpires,
    /// 11
    KeepaliveTimerExpires,
    /// 13: IdleHoldTimer expired (restart after backoff).
    IdleHoldTimerExpires,
    /// 16: our outgoing connection completed.
    TcpCrAcked,
    /// 17: an incoming connection was accepted.
    TcpConnectionConfirmed,
    /// 18: the connection failed or closed.
    TcpConnectionFails,
    /// 19: an OPEN was received (validated by the FSM).
    BgpOpen(Box<Open>),
    /// 21: a message header error; the notification to send.
    BgpHeaderErr(Notification),
    /// 22: an OPEN that failed to decode; the notification to send.
    BgpOpenMsgErr(Notification),
    /// 23: collision detection chose to drop this connection.
    OpenCollisionDump,
    /// 24: NOTIFICATION with a version error received.
    NotifMsgVerErr,
    /// 25: NOTIFICATION received.
    NotifMsg(Notification),
    /// 26: KEEPALIVE received.
    KeepAliveMsg,
    /// 27: UPDATE received (well formed, or handled per RFC 7606 without reset).
    UpdateMsg,
    /// 28: UPDATE error requiring session reset; the notification to send.
    UpdateMsgErr(Notification),
}

/// What the event loop must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a TCP connection to the peer.
    InitiateConnection,
    /// Close the TCP connection.
    DropConnection,
    /// Send our OPEN.
    SendOpen,
    /// Send a KEEPALIVE.
    SendKeepalive,
    /// Send a NOTIFICATION.
    SendNotification(Notification),
    /// Start or restart a timer for this many seconds.
    StartTimer(Timer, u32),
    /// Stop a timer.
    StopTimer(Timer),
    /// Release BGP resources: withdraw every route learned from the peer.
    ReleaseResources,
    /// The session reached Established with these parameters.
    SessionUp(Box<Negotiated>),
}

/// Per-peer configuration the FSM reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsmConfig {
    /// Our AS.
    pub local_as: u32,
    /// The peer's AS (checked against its OPEN).
    pub peer_as: u32,
    /// Our BGP Identifier.
    pub local_id: Ipv4Addr,
    /// Our proposed hold time (0 or >= 3).
    pub hold_time: u16,
    /// ConnectRetryTime in seconds.
    pub connect_retry_time: u32,
    /// Base IdleHoldTime in seconds for automatic restart (0: no automatic restart).
    pub idle_hold_time: u32,
    /// Families we announce.
    pub families: Vec<AfiSafi>,
}

/// What both OPENs agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Peer AS (4-octet).
    pub peer_as: u32,
    /// Peer BGP Identifier.
    pub peer_id: Ipv4Addr,
    /// Negotiated hold time (0: no keepalives, no hold timer).
    pub hold_time: u16,
    /// Keepalive interval: a third of the hold time.
    pub keepalive_time: u16,
    /// Both sides speak 4-octet AS.
    pub four_octet_as: bool,
    /// Families both sides announced.
    pub families: Vec<AfiSafi>,
    /// Peer supports ROUTE-REFRESH.
    pub route_refresh: bool,
    /// Peer's Graceful Restart capability.
    pub graceful_restart: Option<GracefulRestart>,
    /// eBGP session.
    pub ebgp: bool,
}

impl Negotiated {
    /// The decoding context for this session.
    pub fn context(&self) -> SessionContext {
        SessionContext {
            four_octet_as: self.four_octet_as,
            families: self.families.clone(),
            ebgp: self.ebgp,
        }
    }
}

/// Checks a received OPEN (RFC 4271 6.2, RFC 6793, RFC 6286) and negotiates.
///
/// We always announce 4-octet AS support, so it is negotiated when the peer
/// announces it too.
pub fn validate_open(cfg: &FsmConfig, open: &Open) -> Result<Negotiated, Notification> {
    let err = |s| Notification::new(code::OPEN_MESSAGE, s, Vec::new());
    if open.version != 4 {
        return Err(Notification::new(code::OPEN_MESSAGE, 1, vec![0, 4]));
    }
    let four = open.four_octet_as();
    if let Some(a4) = four {
        // A 2-octet AS must also be in My AS (RFC 6793 section 4.1).
        if a4 <= 0xffff && u32::from(open.my_as) != a4 {
            return Err(err(2));
        }
    }
    let peer_as = open.asn();
    if peer_as != cfg.peer_as {
        return Err(err(2));
    }
    let id = u32::from(open.bgp_id);
    // RFC 6286: any non-zero value, distinct from ours within one AS.
    if id == 0 || (peer_as == cfg.local_as && open.bgp_id == cfg.local_id) {
        return Err(err(3));
    }
    if open.hold_time == 1 || open.hold_time == 2 {
        return Err(err(6));
    }
    let hold_time = cfg.hold_time.min(open.hold_time);
    let theirs = open.families();
    // RFC 4760: without Multiprotocol capabilities, IPv4 unicast is implied.
    let theirs = if theirs.is_empty() {
        vec![AfiSafi::IPV4_UNICAST]
    } else {
        theirs
    };
    let families = cfg
        .families
        .iter()
        .copied()
        .filter(|f| theirs.contains(f))
        .collect();
    Ok(Negotiated {
        peer_as,
        peer_id: open.bgp_id,
        hold_time,
        keepalive_time: hold_time / 3,
        four_octet_as: four.is_some(),
        families,
        route_refresh: open.route_refresh(),
        graceful_restart: open.graceful_restart().cloned(),
        ebgp: peer_as != cfg.local_as,
    })
}

/// Which connection collision detection closes (RFC 4271 section 6.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollisionVerdict {
    /// Close the existing connection, keep the new one.
    CloseExisting,
    /// Close the new connection.
    CloseNew,
}

/// Resolves a collision between an existing connection in `existing_state`
/// and a new one on which the peer's OPEN carried `remote_id`.
/// `existing_outbound` says whether we initiated the existing connection.
pub fn resolve_collision(
    local_id: Ipv4Addr,
    remote_id: Ipv4Addr,
    existing_state: State,
    existing_outbound: bool,
) -> CollisionVerdict {
    match existing_state {
        // An Established session always wins.
        State::Established => CollisionVerdict::CloseNew,
        // Before OPEN was exchanged on the existing one there is no collision to
        // decide by identifier; the new connection (which has an OPEN) stays.
        State::Idle | State::Connect | State::Active => CollisionVerdict::CloseExisting,
        State::OpenSent | State::OpenConfirm => {
            // The lower identifier's connection (the one it initiated) is closed.
            let local_lower = u32::from(local_id) < u32::from(remote_id);
            let close_outbound = local_lower;
            if existing_outbound == close_outbound {
                CollisionVerdict::CloseExisting
            } else {
                CollisionVerdict::CloseNew
            }
        }
    }
}

/// FSM state plus the session attributes transitions update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fsm {
    /// Current state.
    pub state: State,
    /// ConnectRetryCounter.
    pub connect_retry_counter: u32,
    /// Set on entering OpenConfirm.
    pub negotiated: Option<Negotiated>,
    /// Whether the session was last started passively (for automatic restart).
    pub passive: bool,
}

impl Default for Fsm {
    fn default() -> Self {
        Fsm {
            state: State::Idle,
            connect_retry_counter: 0,
            negotiated: None,
            passive: false,
        }
    }
}

fn fsm_error(state: State) -> Notification {
    // RFC 6608 subcodes: unexpected message in OpenSent/OpenConfirm/Established.
    let sub = match state {
        State::OpenSent => 1,
        State::OpenConfirm => 2,
        State::Established => 3,
        _ => 0,
    };
    Notification::new(code::FSM, sub, Vec::new())
}

/// One FSM step: `(state, event) -> (new state, actions)`.
pub fn transition(cfg: &FsmConfig, fsm: &Fsm, event: &Event) -> (Fsm, Vec<Action>) {
    use Action::*;
    use Event as E;
    use State::*;
    let mut next = fsm.clone();
    let mut a = Vec::new();
    let crt = cfg.connect_retry_time;

    // Common exit to Idle: optionally notify, stop timers, drop, release, and
    // schedule an automatic restart with backoff when the counter grew.
    let to_idle =
        |next: &mut Fsm, a: &mut Vec<Action>, notify: Option<Notification>, bump: bool| {
            if let Some(n) = notify {
                a.push(SendNotification(n));
            }
            a.push(StopTimer(Timer::ConnectRetry));
            a.push(StopTimer(Timer::Hold));
            a.push(StopTimer(Timer::Keepalive));
            a.push(DropConnection);
            a.push(ReleaseResources);
            if bump {
                next.connect_retry_counter += 1;
                if cfg.idle_hold_time > 0 {
                    let shift = next.connect_retry_counter.min(6);
                    a.push(StartTimer(
                        Timer::IdleHold,
                        (cfg.idle_hold_time << shift).min(120),
                    ));
                }
            }
            next.state = Idle;
            next.negotiated = None;
        };

    match (fsm.state, event) {
        // ---- Idle ----
        (Idle, E::ManualStart | E::AutomaticStart | E::IdleHoldTimerExpires)
            if !(fsm.passive && matches!(event, E::IdleHoldTimerExpires)) =>
        {
            if matches!(event, E::ManualStart) {
                next.connect_retry_counter = 0;
            }
            next.passive = false;
            a.push(StartTimer(Timer::ConnectRetry, crt));
            a.push(InitiateConnection);
            next.state = Connect;
        }
        (Idle, E::ManualStartPassive | E::AutomaticStartPassive | E::IdleHoldTimerExpires) => {
            if matches!(event, E::ManualStartPassive) {
                next.connect_retry_counter = 0;
            }
            next.passive = true;
            a.push(StartTimer(Timer::ConnectRetry, crt));
            next.state = Active;
        }
        (Idle, _) => {}

        // ---- Connect / Active ----
        (Connect | Active, E::ManualStart | E::AutomaticStart)
        | (Connect | Active, E::ManualStartPassive | E::AutomaticStartPassive) => {}
        (Connect | Active, E::ManualStop) => {
            to_idle(&mut next, &mut a, None, false);
            next.connect_retry_counter = 0;
            a.retain(|x| !matches!(x, StartTimer(Timer::IdleHold, _)));
        }
        (Connect, E::ConnectRetryTimerExpires) => {
            a.push(DropConnection);
            a.push(StartTimer(Timer::ConnectRetry, crt));
            a.push(InitiateConnection);
        }
        (Active, E::ConnectRetryTimerExpires) => {
            a.push(StartTimer(Timer::ConnectRetry, crt));
            a.push(InitiateConnection);
            next.state = Connect;
        }
        (Connect | Active, E::TcpCrAcked | E::TcpConnectionConfirmed) => {
            a.push(StopTimer(Timer::ConnectRetry));
            a.push(SendOpen);
            a.push(StartTimer(Timer::Hold, LARGE_HOLD_TIME));
            next.state = OpenSent;
        }
        (Connect, E::TcpConnectionFails) => {
            // RFC 4271: without DelayOpen, Connect goes to Idle.
            to_idle(&mut next, &mut a, None, true);
        }
        (Active, E::TcpConnectionFails) => {
            to_idle(&mut next, &mut a, None, true);
        }
        (Connect | Active, _) => to_idle(&mut next, &mut a, None, true),

        // ---- OpenSent ----
        (OpenSent, E::ManualStop) => {
            to_idle(
                &mut next,
                &mut a,
                Some(Notification::cease(cease_subcode::ADMINISTRATIVE_SHUTDOWN)),
                false,
            );
            next.connect_retry_counter = 0;
        }
        (OpenSent | OpenConfirm | Established, E::AutomaticStop) => {
            to_idle(
                &mut next,
                &mut a,
                Some(Notification::cease(cease_subcode::ADMINISTRATIVE_RESET)),
                true,
            );
        }
        (OpenSent | OpenConfirm | Established, E::HoldTimerExpires) => {
            to_idle(
                &mut next,
                &mut a,
                Some(Notification::new(code::HOLD_TIMER_EXPIRED, 0, vec![])),
                true,
            );
        }
        (OpenSent, E::TcpConnectionFails) => {
            a.push(DropConnection);
            a.push(StopTimer(Timer::Hold));
            a.push(StartTimer(Timer::ConnectRetry, crt));
            next.state = Active;
        }
        (OpenSent, E::BgpOpen(open)) => match validate_open(cfg, open) {
            Ok(neg) => {
                a.push(StopTimer(Timer::ConnectRetry));
                a.push(SendKeepalive);
                if neg.hold_time > 0 {
                    a.push(StartTimer(Timer::Keepalive, u32::from(neg.keepalive_time)));
                    a.push(StartTimer(Timer::Hold, u32::from(neg.hold_time)));
                } else {
                    a.push(StopTimer(Timer::Hold));
                }
                next.negotiated = Some(neg);
                next.state = OpenConfirm;
            }
            Err(n) => to_idle(&mut next, &mut a, Some(n), true),
        },
        (OpenSent | OpenConfirm | Established, E::BgpHeaderErr(n) | E::BgpOpenMsgErr(n)) => {
            to_idle(&mut next, &mut a, Some(n.clone()), true);
        }
        (OpenSent | OpenConfirm | Established, E::OpenCollisionDump) => {
            to_idle(
                &mut next,
                &mut a,
                Some(Notification::cease(cease_subcode::CONNECTION_COLLISION)),
                true,
            );
        }
        (OpenSent | OpenConfirm | Established, E::NotifMsgVerErr) => {
            to_idle(&mut next, &mut a, None, false);
        }
        // A second connection is tracked by collision detection, not here.
        (OpenSent | OpenConfirm | Established, E::TcpCrAcked | E::TcpConnectionConfirmed) => {}
        (OpenSent | OpenConfirm | Established, E::ManualStart | E::AutomaticStart)
        | (
            OpenSent | OpenConfirm | Established,
            E::ManualStartPassive | E::AutomaticStartPassive,
        ) => {}

        // ---- OpenConfirm ----
        (OpenConfirm | Established, E::ManualStop) => {
            to_idle(
                &mut next,
                &mut a,
                Some(Notification::cease(cease_subcode::ADMINISTRATIVE_SHUTDOWN)),
                false,
            );
            next.connect_retry_counter = 0;
        }
        (OpenConfirm | Established, E::KeepaliveTimerExpires) => {
            a.push(SendKeepalive);
            if let Some(n) = &fsm.negotiated {
                a.push(StartTimer(Timer::Keepalive, u32::from(n.keepalive_time)));
            }
        }
        (OpenConfirm | Established, E::TcpConnectionFails | E::NotifMsg(_)) => {
            to_idle(&mut next, &mut a, None, true);
        }
        (OpenConfirm, E::KeepAliveMsg) => {
            if let Some(n) = &fsm.negotiated {
                if n.hold_time > 0 {
                    a.push(StartTimer(Timer::Hold, u32::from(n.hold_time)));
                }
                a.push(SessionUp(Box::new(n.clone())));
            }
            next.state = Established;
        }

        // ---- Established ----
        (Established, E::KeepAliveMsg | E::UpdateMsg) => {
            if let Some(n) = &fsm.negotiated {
                if n.hold_time > 0 {
                    a.push(StartTimer(Timer::Hold, u32::from(n.hold_time)));
                }
            }
        }
        (Established, E::UpdateMsgErr(n)) => to_idle(&mut next, &mut a, Some(n.clone()), true),

        // Anything else in OpenSent/OpenConfirm/Established is an FSM error.
        (s @ (OpenSent | OpenConfirm | Established), _) => {
            to_idle(&mut next, &mut a, Some(fsm_error(s)), true);
        }
    }
    (next, a)
}
