//! The kernel's neighbor table, mirrored over netlink (RTNLGRP_NEIGH): the kernel resolves
//! ARP and ND, oxr-fastpath only reads the result. The subscription is opened before the
//! dump so no change is lost; after an overrun (ENOBUFS) everything is dumped again.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::RouteNetlinkMessage;
use oxr_fea::netlink::{NlError, NlSocket, Received, RtMessage};

use crate::tables::Mac;

/// `RTNLGRP_NEIGH`.
pub const RTNLGRP_NEIGH: u32 = 3;

/// One neighbor change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NeighEvent {
    /// A neighbor usable for forwarding (`Some(mac)`) or not / gone (`None`).
    One(u32, IpAddr, Option<Mac>),
    /// The complete table (first dump, or after an overrun).
    Full(BTreeMap<(u32, IpAddr), Mac>),
}

/// Decodes a neighbor message: (ifindex, address, MAC if the entry can be used).
///
/// Reachable, stale, delay, probe, permanent and noarp entries carry a MAC the kernel itself
/// would use; incomplete and failed ones do not. Deletions (`del`) always yield `None`.
pub fn neighbor_from_message(
    m: &NeighbourMessage,
    del: bool,
) -> Option<(u32, IpAddr, Option<Mac>)> {
    let mut addr = None;
    let mut mac = None;
    for a in &m.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                addr = Some(IpAddr::V4(*v4))
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                addr = Some(IpAddr::V6(*v6))
            }
            NeighbourAttribute::LinkLayerAddress(l) if l.len() == 6 => {
                mac = Some([l[0], l[1], l[2], l[3], l[4], l[5]])
            }
            _ => {}
        }
    }
    let addr = addr?;
    let usable = matches!(
        m.header.state,
        NeighbourState::Reachable
            | NeighbourState::Stale
            | NeighbourState::Delay
            | NeighbourState::Probe
            | NeighbourState::Permanent
            | NeighbourState::Noarp
    );
    let mac = if del || !usable { None } else { mac };
    Some((m.header.ifindex, addr, mac))
}

fn dump(sock: &mut NlSocket) -> Result<BTreeMap<(u32, IpAddr), Mac>, NlError> {
    let msgs = sock.dump(&RtMessage::Route(RouteNetlinkMessage::GetNeighbour(
        NeighbourMessage::default(),
    )))?;
    let mut all = BTreeMap::new();
    for m in msgs {
        if let RtMessage::Route(RouteNetlinkMessage::NewNeighbour(n)) = m {
            if let Some((i, a, Some(mac))) = neighbor_from_message(&n, false) {
                all.insert((i, a), mac);
            }
        }
    }
    Ok(all)
}

/// Follows the neighbor table on a thread; stops when dropped.
pub struct NeighborWatcher {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NeighborWatcher {
    /// Subscribes, dumps (delivered as one [`NeighEvent::Full`] before this returns) and
    /// follows changes, calling `on_event` from the watcher thread.
    pub fn start(on_event: impl Fn(NeighEvent) + Send + 'static) -> Result<Self, NlError> {
        let mut sub = NlSocket::open(None)?;
        sub.set_rcvbuf(4 << 20);
        sub.join(RTNLGRP_NEIGH)?;
        sub.set_recv_timeout(Duration::from_millis(250))?;
        let mut dump_sock = NlSocket::open(None)?;
        on_event(NeighEvent::Full(dump(&mut dump_sock)?));
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("fastpath-neigh".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    match sub.recv() {
                        Ok(msgs) => {
                            for r in msgs {
                                let Received::Message {
                                    msg: RtMessage::Route(m),
                                    ..
                                } = r
                                else {
                                    continue;
                                };
                                let ev = match &m {
                                    RouteNetlinkMessage::NewNeighbour(n) => {
                                        neighbor_from_message(n, false)
                                    }
                                    RouteNetlinkMessage::DelNeighbour(n) => {
                                        neighbor_from_message(n, true)
                                    }
                                    _ => None,
                                };
                                if let Some((i, a, mac)) = ev {
                                    on_event(NeighEvent::One(i, a, mac));
                                }
                            }
                        }
                        Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                            tracing::warn!("neighbor notifications overran: re-dumping");
                            match dump(&mut dump_sock) {
                                Ok(all) => on_event(NeighEvent::Full(all)),
                                Err(e) => tracing::error!(error = %e, "neighbor re-dump"),
                            }
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock
                                    | std::io::ErrorKind::TimedOut
                                    | std::io::ErrorKind::Interrupted
                            ) => {}
                        Err(e) => {
                            tracing::error!(error = %e, "neighbor notification socket");
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    }
                }
            })
            .map_err(NlError::Io)?;
        Ok(NeighborWatcher {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for NeighborWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(state: NeighbourState, attrs: Vec<NeighbourAttribute>) -> NeighbourMessage {
        let mut m = NeighbourMessage::default();
        m.header.ifindex = 4;
        m.header.state = state;
        m.attributes = attrs;
        m
    }

    #[test]
    fn usable_states_carry_the_mac_others_do_not() {
        let attrs = vec![
            NeighbourAttribute::Destination(NeighbourAddress::Inet("10.0.0.2".parse().unwrap())),
            NeighbourAttribute::LinkLayerAddress(vec![2, 0, 0, 0, 0, 9]),
        ];
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        for s in [
            NeighbourState::Reachable,
            NeighbourState::Stale,
            NeighbourState::Permanent,
        ] {
            assert_eq!(
                neighbor_from_message(&msg(s, attrs.clone()), false),
                Some((4, ip, Some([2, 0, 0, 0, 0, 9])))
            );
        }
        for s in [NeighbourState::Failed, NeighbourState::Incomplete] {
            assert_eq!(
                neighbor_from_message(&msg(s, attrs.clone()), false),
                Some((4, ip, None))
            );
        }
        assert_eq!(
            neighbor_from_message(&msg(NeighbourState::Reachable, attrs), true),
            Some((4, ip, None))
        );
        assert_eq!(
            neighbor_from_message(&msg(NeighbourState::Reachable, vec![]), false),
            None
        );
    }
}
