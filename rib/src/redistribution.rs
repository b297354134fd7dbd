//! WatchRedistribution: the selected routes of the asked protocols (optionally only those
//! inside some prefixes) as a stream: an initial dump, a message with `end_of_rib`, then
//! every change.

use oxr_proto::rib::{RedistributedRoute, RedistributionUpdate, Route};
use oxr_proto::types as pb;
use tokio::sync::mpsc;
use tonic::Status;

use crate::selection::Selected;
use crate::table::Key;

/// Routes per message of the dump and of change bursts.
pub const CHUNK: usize = 2000;

/// Where updates go.
pub type RedistSink = mpsc::UnboundedSender<Result<RedistributionUpdate, Status>>;

/// One WatchRedistribution stream.
#[derive(Debug)]
pub struct RedistWatcher {
    /// Stream id.
    pub id: u64,
    /// Protocols asked for.
    pub protocols: Vec<String>,
    /// If not empty, only routes inside one of these.
    pub within: Vec<Key>,
    sink: RedistSink,
    pending: RedistributionUpdate,
    /// The receiver went away.
    pub closed: bool,
}

/// The wire form of a selected route as redistributed (next hops as published).
pub fn route_proto(key: Key, sel: &Selected) -> Route {
    Route {
        prefix: Some(key.to_proto()),
        nexthops: sel
            .nexthops
            .iter()
            .map(|n| pb::Nexthop {
                gateway: n.gateway.map(pb::IpAddress::from),
                interface: n.interface.as_deref().unwrap_or("").to_string(),
                weight: n.weight,
            })
            .collect(),
        action: sel.action.to_proto() as i32,
        distance: sel.distance,
        metric: sel.metric,
        tag: sel.tag,
    }
}

impl RedistWatcher {
    /// A watcher for `protocols`, optionally restricted to `within`.
    pub fn new(id: u64, protocols: Vec<String>, within: Vec<Key>, sink: RedistSink) -> Self {
        RedistWatcher {
            id,
            protocols,
            within,
            sink,
            pending: RedistributionUpdate::default(),
            closed: false,
        }
    }

    /// Whether a route of `protocol` for `key` is of interest.
    pub fn wants(&self, protocol: &str, key: Key) -> bool {
        self.protocols.iter().any(|p| p == protocol)
            && (self.within.is_empty() || self.within.iter().any(|w| w.contains(key)))
    }

    /// Records a change of the selected route for `key`: `old` and `new` are the origin
    /// protocol and selection before and after.
    pub fn change(&mut self, key: Key, old: Option<&str>, new: Option<(&str, &Selected)>) {
        match new {
            Some((p, sel)) if self.wants(p, key) => self.add(key, p, sel),
            _ => {
                if old.is_some_and(|p| self.wants(p, key)) {
                    self.pending.withdraw.push(key.to_proto());
                    self.flush_if_full();
                }
            }
        }
    }

    /// Queues an add (used by the dump too).
    pub fn add(&mut self, key: Key, protocol: &str, sel: &Selected) {
        self.pending.add.push(RedistributedRoute {
            route: Some(route_proto(key, sel)),
            protocol: protocol.to_string(),
        });
        self.flush_if_full();
    }

    fn flush_if_full(&mut self) {
        if self.pending.add.len() + self.pending.withdraw.len() >= CHUNK {
            self.flush();
        }
    }

    /// Ends the initial dump.
    pub fn end_of_rib(&mut self) {
        self.pending.end_of_rib = true;
        self.flush();
    }

    /// Sends what is queued.
    pub fn flush(&mut self) {
        let p = &self.pending;
        if p.add.is_empty() && p.withdraw.is_empty() && !p.end_of_rib {
            return;
        }
        let msg = std::mem::take(&mut self.pending);
        if self.sink.send(Ok(msg)).is_err() {
            self.closed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Action;

    fn k(s: &str) -> Key {
        Key::from(s.parse::<ipnet::IpNet>().unwrap())
    }

    fn sel() -> Selected {
        Selected {
            primary: 1,
            distance: 1,
            metric: 0,
            tag: 7,
            action: Action::Blackhole,
            nexthops: Vec::new().into(),
        }
    }

    #[test]
    fn changes_follow_protocol_and_within() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut w = RedistWatcher::new(1, vec!["static".into()], vec![k("10.0.0.0/8")], tx);
        let s = sel();
        w.change(k("10.1.0.0/16"), None, Some(("static", &s)));
        w.change(k("11.0.0.0/8"), None, Some(("static", &s))); // outside `within`
        w.change(k("10.2.0.0/16"), None, Some(("ospf", &s))); // other protocol
        w.change(k("10.3.0.0/16"), Some("static"), Some(("ospf", &s))); // static lost it
        w.change(k("10.4.0.0/16"), Some("static"), None);
        w.flush();
        let m = rx.try_recv().unwrap().unwrap();
        assert_eq!(m.add.len(), 1);
        assert_eq!(m.add[0].route.as_ref().unwrap().tag, 7);
        assert_eq!(
            m.withdraw,
            vec![k("10.3.0.0/16").to_proto(), k("10.4.0.0/16").to_proto()]
        );
        assert!(!m.end_of_rib);
        w.end_of_rib();
        assert!(rx.try_recv().unwrap().unwrap().end_of_rib);
    }
}
