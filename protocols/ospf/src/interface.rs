//! Interface state machine (RFC 2328 9.1-9.3) and DR/BDR election (9.4), as pure functions.
//!
//! Only broadcast and point-to-point interfaces are modelled (NBMA, point-to-multipoint and
//! virtual links are not supported by oxr-ospf).

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::RouterId;

/// Interface network type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IfType {
    /// Broadcast multi-access (Ethernet): Hellos elect a DR.
    Broadcast,
    /// Point-to-point: no election, always adjacent.
    PointToPoint,
}

/// Interface states (RFC 2328 9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum IfState {
    /// Lower layers down.
    Down,
    /// Looped back; advertised as a host route.
    Loopback,
    /// Waiting to learn the DR before electing.
    Waiting,
    /// Point-to-point, up.
    PointToPoint,
    /// Broadcast, neither DR nor BDR.
    DrOther,
    /// Backup Designated Router.
    Backup,
    /// Designated Router.
    Dr,
}

/// Interface events (RFC 2328 9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum IfEvent {
    /// Lower layers came up.
    InterfaceUp,
    /// The Wait timer fired.
    WaitTimer,
    /// A neighbor declared itself BDR, or DR with no BDR.
    BackupSeen,
    /// Bidirectional communication with a neighbor began or ended, or a neighbor's DR/BDR
    /// declaration or priority changed.
    NeighborChange,
    /// The interface is looped back.
    LoopInd,
    /// The interface is no longer looped back.
    UnloopInd,
    /// Lower layers went down.
    InterfaceDown,
}

/// A router taking part in the election: a neighbor in state 2-Way or higher, or the
/// calculating router itself. On broadcast networks routers are named by interface address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// Router ID.
    pub router_id: RouterId,
    /// Interface address.
    pub addr: Ipv4Addr,
    /// Router priority; 0 is never elected.
    pub priority: u8,
    /// DR it declares (its Hello's DR field; 0.0.0.0 for none).
    pub dr: Ipv4Addr,
    /// BDR it declares.
    pub bdr: Ipv4Addr,
}

impl Candidate {
    fn declares_dr(&self) -> bool {
        self.dr == self.addr
    }
    fn declares_bdr(&self) -> bool {
        self.bdr == self.addr
    }
}

fn best<'a>(it: impl Iterator<Item = &'a Candidate>) -> Option<&'a Candidate> {
    // Highest priority, ties to the highest router ID (9.4 steps 2 and 3).
    it.max_by_key(|c| (c.priority, u32::from(c.router_id)))
}

fn calculate(all: &[Candidate]) -> (Ipv4Addr, Ipv4Addr) {
    let eligible = || all.iter().filter(|c| c.priority > 0);
    let not_dr = || eligible().filter(|c| !c.declares_dr());
    let bdr = best(not_dr().filter(|c| c.declares_bdr()))
        .or_else(|| best(not_dr()))
        .map_or(Ipv4Addr::UNSPECIFIED, |c| c.addr);
    let dr = best(eligible().filter(|c| c.declares_dr())).map_or(bdr, |c| c.addr);
    (dr, bdr)
}

/// DR/BDR election (RFC 2328 9.4). `me` carries the interface's current DR and BDR;
/// `neighbors` are the neighbors in state 2-Way or higher. Returns (DR, BDR) interface
/// addresses, 0.0.0.0 where none.
pub fn elect(me: Candidate, neighbors: &[Candidate]) -> (Ipv4Addr, Ipv4Addr) {
    let mut all: Vec<Candidate> = Vec::with_capacity(neighbors.len() + 1);
    all.push(me);
    all.extend_from_slice(neighbors);
    let (dr, bdr) = calculate(&all);
    let was = (me.declares_dr(), me.declares_bdr());
    let now = (dr == me.addr, bdr == me.addr);
    if was == now {
        return (dr, bdr);
    }
    // Step 4: our own role changed, so declare it and run steps 2 and 3 again; this keeps a
    // router from being elected both DR and BDR.
    all[0].dr = dr;
    all[0].bdr = bdr;
    calculate(&all)
}

/// What the interface is and knows, for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfView {
    /// Network type.
    pub if_type: IfType,
    /// Our router ID.
    pub router_id: RouterId,
    /// Our interface address.
    pub addr: Ipv4Addr,
    /// Our router priority.
    pub priority: u8,
    /// Current DR (interface address).
    pub dr: Ipv4Addr,
    /// Current BDR.
    pub bdr: Ipv4Addr,
    /// Neighbors in state 2-Way or higher.
    pub neighbors: Vec<Candidate>,
}

/// What the caller must do after a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum IfAction {
    /// Start the Wait timer (RouterDeadInterval).
    StartWaitTimer,
    /// Start the Hello timer.
    StartHelloTimer,
    /// Stop all interface timers.
    StopTimers,
    /// Generate KillNbr on every neighbor and forget them.
    KillNeighbors,
    /// Generate AdjOK? on every neighbor in 2-Way or higher (DR or BDR changed).
    AdjOkNeighbors,
    /// Re-originate the router-LSA of the interface's area.
    OriginateRouterLsa,
    /// We became DR: originate the network-LSA (when fully adjacent to someone).
    OriginateNetworkLsa,
    /// We stopped being DR: flush our network-LSA.
    FlushNetworkLsa,
}

/// Result of an interface event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IfTransition {
    /// New state.
    pub state: IfState,
    /// New DR.
    pub dr: Ipv4Addr,
    /// New BDR.
    pub bdr: Ipv4Addr,
    /// Actions, in order.
    pub actions: Vec<IfAction>,
}

fn run_election(v: &IfView, old: IfState) -> IfTransition {
    let me = Candidate {
        router_id: v.router_id,
        addr: v.addr,
        priority: v.priority,
        dr: v.dr,
        bdr: v.bdr,
    };
    let (dr, bdr) = elect(me, &v.neighbors);
    let state = if dr == v.addr {
        IfState::Dr
    } else if bdr == v.addr {
        IfState::Backup
    } else {
        IfState::DrOther
    };
    let mut actions = Vec::new();
    if (dr, bdr) != (v.dr, v.bdr) {
        actions.push(IfAction::AdjOkNeighbors);
    }
    if state != old {
        actions.push(IfAction::OriginateRouterLsa);
    }
    if state == IfState::Dr && old != IfState::Dr {
        actions.push(IfAction::OriginateNetworkLsa);
    }
    if old == IfState::Dr && state != IfState::Dr {
        actions.push(IfAction::FlushNetworkLsa);
    }
    IfTransition {
        state,
        dr,
        bdr,
        actions,
    }
}

/// The interface state machine (RFC 2328 9.3). Returns `None` when the event does not apply
/// in `state` (the RFC's "no action").
pub fn interface_event(v: &IfView, state: IfState, event: IfEvent) -> Option<IfTransition> {
    use IfEvent as E;
    use IfState as S;
    let none = Ipv4Addr::UNSPECIFIED;
    let down_like = |to: IfState| IfTransition {
        state: to,
        dr: none,
        bdr: none,
        actions: {
            let mut a = vec![IfAction::StopTimers, IfAction::KillNeighbors];
            if state == S::Dr {
                a.push(IfAction::FlushNetworkLsa);
            }
            a.push(IfAction::OriginateRouterLsa);
            a
        },
    };
    match (state, event) {
        (S::Down, E::InterfaceUp) => {
            let (to, mut actions) = match v.if_type {
                IfType::PointToPoint => (S::PointToPoint, vec![IfAction::StartHelloTimer]),
                IfType::Broadcast if v.priority == 0 => {
                    (S::DrOther, vec![IfAction::StartHelloTimer])
                }
                IfType::Broadcast => (
                    S::Waiting,
                    vec![IfAction::StartHelloTimer, IfAction::StartWaitTimer],
                ),
            };
            actions.push(IfAction::OriginateRouterLsa);
            Some(IfTransition {
                state: to,
                dr: none,
                bdr: none,
                actions,
            })
        }
        (S::Waiting, E::BackupSeen | E::WaitTimer) => Some(run_election(v, state)),
        (S::DrOther | S::Backup | S::Dr, E::NeighborChange) => {
            let t = run_election(v, state);
            (t.state != state || (t.dr, t.bdr) != (v.dr, v.bdr)).then_some(t)
        }
        (S::Down, E::InterfaceDown) => None,
        (S::Loopback, E::LoopInd) => None,
        (_, E::InterfaceDown) => Some(down_like(S::Down)),
        (_, E::LoopInd) => Some(down_like(S::Loopback)),
        (S::Loopback, E::UnloopInd) => Some(IfTransition {
            state: S::Down,
            dr: none,
            bdr: none,
            actions: vec![IfAction::OriginateRouterLsa],
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn cand(n: u8, pri: u8) -> Candidate {
        Candidate {
            router_id: Ipv4Addr::new(n, n, n, n),
            addr: Ipv4Addr::new(10, 0, 0, n),
            priority: pri,
            dr: Ipv4Addr::UNSPECIFIED,
            bdr: Ipv4Addr::UNSPECIFIED,
        }
    }

    #[test]
    fn fresh_election_winner_takes_dr_and_next_highest_is_bdr() {
        // From the highest-priority router's own view: it is elected BDR, then (step 3) DR,
        // then step 4 re-runs and the next highest becomes BDR.
        let (dr, bdr) = elect(cand(2, 5), &[cand(1, 1), cand(3, 3)]);
        assert_eq!(dr, ip("10.0.0.2"));
        assert_eq!(bdr, ip("10.0.0.3"));
    }

    #[test]
    fn priority_tie_broken_by_highest_router_id() {
        let (dr, bdr) = elect(cand(4, 1), &[cand(1, 1), cand(3, 1), cand(2, 1)]);
        assert_eq!(dr, ip("10.0.0.4"));
        assert_eq!(bdr, ip("10.0.0.3"));
        // Same priorities seen from a bystander once 4 declares itself DR.
        let mut n4 = cand(4, 1);
        n4.dr = n4.addr;
        let (dr, bdr) = elect(cand(1, 1), &[n4, cand(3, 1), cand(2, 1)]);
        assert_eq!((dr, bdr), (ip("10.0.0.4"), ip("10.0.0.3")));
    }

    #[test]
    fn priority_zero_is_never_elected() {
        let (dr, bdr) = elect(cand(9, 0), &[cand(1, 0), cand(2, 0)]);
        assert_eq!((dr, bdr), (Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED));
        let mut n1 = cand(1, 1);
        n1.dr = n1.addr;
        let (dr, bdr) = elect(cand(9, 0), &[n1]);
        assert_eq!(dr, ip("10.0.0.1"));
        assert_eq!(bdr, Ipv4Addr::UNSPECIFIED);
    }

    #[test]
    fn existing_dr_is_kept_when_higher_priority_router_joins() {
        // 2 is DR, 3 BDR; 9 with priority 100 arrives: no preemption, it becomes nothing.
        let mut n2 = cand(2, 1);
        n2.dr = n2.addr;
        n2.bdr = ip("10.0.0.3");
        let mut n3 = cand(3, 1);
        n3.dr = n2.addr;
        n3.bdr = n3.addr;
        let (dr, bdr) = elect(cand(9, 100), &[n2, n3]);
        assert_eq!(dr, ip("10.0.0.2"));
        assert_eq!(bdr, ip("10.0.0.3"));
    }

    #[test]
    fn bdr_is_promoted_when_dr_disappears() {
        // 2 was DR and 3 BDR; 2 left. Router 3's own view: it becomes DR and, through the
        // step 4 re-run, 1 becomes BDR.
        let mut me = cand(3, 1);
        me.dr = ip("10.0.0.2");
        me.bdr = me.addr;
        let mut n1 = cand(1, 1);
        n1.dr = ip("10.0.0.2");
        n1.bdr = ip("10.0.0.3");
        assert_eq!(elect(me, &[n1]), (ip("10.0.0.3"), ip("10.0.0.1")));
        // Router 1's view once 3 declares itself DR: 1 becomes BDR.
        let mut n3 = cand(3, 1);
        n3.dr = n3.addr;
        let mut me1 = cand(1, 1);
        me1.dr = ip("10.0.0.2");
        me1.bdr = ip("10.0.0.3");
        assert_eq!(elect(me1, &[n3]), (ip("10.0.0.3"), ip("10.0.0.1")));
    }

    #[test]
    fn alone_router_elects_itself_dr_without_bdr() {
        let (dr, bdr) = elect(cand(1, 1), &[]);
        assert_eq!(dr, ip("10.0.0.1"));
        assert_eq!(bdr, Ipv4Addr::UNSPECIFIED);
    }

    fn view(pri: u8, nbrs: Vec<Candidate>) -> IfView {
        IfView {
            if_type: IfType::Broadcast,
            router_id: ip("1.1.1.1"),
            addr: ip("10.0.0.1"),
            priority: pri,
            dr: Ipv4Addr::UNSPECIFIED,
            bdr: Ipv4Addr::UNSPECIFIED,
            neighbors: nbrs,
        }
    }

    #[test]
    fn broadcast_up_waits_then_elects_itself() {
        let v = view(1, vec![]);
        let t = interface_event(&v, IfState::Down, IfEvent::InterfaceUp).unwrap();
        assert_eq!(t.state, IfState::Waiting);
        assert!(t.actions.contains(&IfAction::StartWaitTimer));
        let t = interface_event(&v, IfState::Waiting, IfEvent::WaitTimer).unwrap();
        assert_eq!(t.state, IfState::Dr);
        assert!(t.actions.contains(&IfAction::OriginateNetworkLsa));
    }

    #[test]
    fn priority_zero_goes_straight_to_drother_and_p2p_to_pointtopoint() {
        let t = interface_event(&view(0, vec![]), IfState::Down, IfEvent::InterfaceUp).unwrap();
        assert_eq!(t.state, IfState::DrOther);
        let mut v = view(1, vec![]);
        v.if_type = IfType::PointToPoint;
        let t = interface_event(&v, IfState::Down, IfEvent::InterfaceUp).unwrap();
        assert_eq!(t.state, IfState::PointToPoint);
    }

    #[test]
    fn backup_seen_in_waiting_elects_existing_dr() {
        let mut n = cand(5, 1);
        n.dr = n.addr;
        let t = interface_event(&view(1, vec![n]), IfState::Waiting, IfEvent::BackupSeen).unwrap();
        assert_eq!(t.state, IfState::Backup);
        assert_eq!(t.dr, ip("10.0.0.5"));
        assert!(t.actions.contains(&IfAction::AdjOkNeighbors));
    }

    #[test]
    fn dr_losing_role_flushes_network_lsa() {
        // We are DR; a neighbor declares itself DR with higher priority and the same claim:
        // both declared DR, highest priority wins.
        let mut v = view(1, vec![]);
        v.dr = v.addr;
        let mut n = cand(5, 10);
        n.dr = n.addr;
        v.neighbors.push(n);
        let t = interface_event(&v, IfState::Dr, IfEvent::NeighborChange).unwrap();
        assert_eq!(t.state, IfState::Backup);
        assert!(t.actions.contains(&IfAction::FlushNetworkLsa));
    }

    #[test]
    fn neighbor_change_without_effect_is_no_action() {
        let mut v = view(1, vec![]);
        v.dr = v.addr;
        assert_eq!(
            interface_event(&v, IfState::Dr, IfEvent::NeighborChange),
            None
        );
    }

    #[test]
    fn down_loop_and_unloop() {
        let v = view(1, vec![]);
        let t = interface_event(&v, IfState::Dr, IfEvent::InterfaceDown).unwrap();
        assert_eq!(t.state, IfState::Down);
        assert!(t.actions.contains(&IfAction::KillNeighbors));
        assert!(t.actions.contains(&IfAction::FlushNetworkLsa));
        let t = interface_event(&v, IfState::DrOther, IfEvent::LoopInd).unwrap();
        assert_eq!(t.state, IfState::Loopback);
        let t = interface_event(&v, IfState::Loopback, IfEvent::UnloopInd).unwrap();
        assert_eq!(t.state, IfState::Down);
        assert_eq!(
            interface_event(&v, IfState::Down, IfEvent::InterfaceDown),
            None
        );
        assert_eq!(interface_event(&v, IfState::Down, IfEvent::WaitTimer), None);
    }
}
