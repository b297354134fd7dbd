//! Client of oxr-fea's interface stream (`WatchInterfaces`): the current interfaces with
//! their addresses and link state, and change events, surviving restarts of oxr-fea.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use oxr_proto::convert::addr_from_octets;
use oxr_proto::fea::fea_client::FeaClient;
use oxr_proto::fea::{self as wire, WatchInterfacesRequest};
use oxr_proto::transport::{self, Address};
use tokio::sync::{mpsc, watch};

use crate::backoff::Backoff;

/// One address of an interface: the local address with the subnet's length
/// (`192.0.2.1/24`, host bits kept), and the peer on point-to-point links.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InterfaceAddress {
    pub addr: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<IpAddr>,
}

/// An interface as oxr-fea reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Interface {
    pub ifindex: u32,
    pub name: String,
    pub admin_up: bool,
    /// Carrier / operational state.
    pub oper_up: bool,
    pub mtu: u32,
    #[serde(default)]
    pub mac: Vec<u8>,
    #[serde(default)]
    pub addresses: Vec<InterfaceAddress>,
    #[serde(default)]
    pub loopback: bool,
}

impl Interface {
    /// Administratively and operationally up.
    pub fn is_up(&self) -> bool {
        self.admin_up && self.oper_up
    }

    /// From the wire form; addresses that do not parse are skipped.
    pub fn from_proto(i: &wire::Interface) -> Self {
        Interface {
            ifindex: i.ifindex,
            name: i.name.clone(),
            admin_up: i.admin_up,
            oper_up: i.oper_up,
            mtu: i.mtu,
            mac: i.mac.to_vec(),
            addresses: i
                .addresses
                .iter()
                .filter_map(|a| {
                    let p = a.prefix.as_ref()?;
                    let addr = addr_from_octets(&p.addr).ok()?;
                    // Not IpNet::try_from(Prefix): that clears host bits, and here the host
                    // part is the interface's own address.
                    let addr = IpNet::new(addr, u8::try_from(p.len).ok()?).ok()?;
                    let peer = a.peer.as_ref().and_then(|p| IpAddr::try_from(p).ok());
                    Some(InterfaceAddress { addr, peer })
                })
                .collect(),
            loopback: i.loopback,
        }
    }
}

/// A change to the interface set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterfaceEvent {
    /// New or changed interface (its full new state).
    Changed(Interface),
    /// Interface gone (its last state).
    Removed(Interface),
}

/// The interface table, without I/O: applies stream messages and says what changed.
#[derive(Debug, Clone, Default)]
pub struct InterfaceTable {
    by_index: BTreeMap<u32, Interface>,
}

impl InterfaceTable {
    /// Interfaces by ifindex.
    pub fn interfaces(&self) -> &BTreeMap<u32, Interface> {
        &self.by_index
    }

    /// Looks an interface up by name.
    pub fn by_name(&self, name: &str) -> Option<&Interface> {
        self.by_index.values().find(|i| i.name == name)
    }

    /// Applies one message. A full dump (first message of every stream, and after a kernel
    /// overrun) replaces the table: interfaces absent from it are reported removed, and
    /// interfaces identical to what was known are not reported at all, so a restart of
    /// oxr-fea causes no events when nothing changed.
    pub fn apply(&mut self, u: &wire::InterfaceUpdate) -> Vec<InterfaceEvent> {
        let mut events = Vec::new();
        let changed: Vec<Interface> = u.changed.iter().map(Interface::from_proto).collect();
        if u.full_dump {
            let keep: std::collections::HashSet<u32> = changed.iter().map(|i| i.ifindex).collect();
            let gone: Vec<u32> = self
                .by_index
                .keys()
                .filter(|i| !keep.contains(i))
                .copied()
                .collect();
            for i in gone {
                if let Some(old) = self.by_index.remove(&i) {
                    events.push(InterfaceEvent::Removed(old));
                }
            }
        }
        for i in u.removed_ifindex.iter() {
            if let Some(old) = self.by_index.remove(i) {
                events.push(InterfaceEvent::Removed(old));
            }
        }
        for i in changed {
            if self.by_index.get(&i.ifindex) != Some(&i) {
                self.by_index.insert(i.ifindex, i.clone());
                events.push(InterfaceEvent::Changed(i));
            }
        }
        events
    }
}

/// Watches oxr-fea's interfaces, reconnecting after it restarts; keeps the last known
/// table meanwhile.
pub struct InterfaceWatcher {
    events: mpsc::UnboundedReceiver<InterfaceEvent>,
    current: watch::Receiver<Arc<BTreeMap<u32, Interface>>>,
}

impl InterfaceWatcher {
    /// Starts watching the FEA at `addr`.
    pub fn start(addr: Address) -> Self {
        Self::start_with(addr, Backoff::default())
    }

    /// Same, with an explicit reconnection backoff.
    pub fn start_with(addr: Address, mut backoff: Backoff) -> Self {
        let (tx, events) = mpsc::unbounded_channel();
        let (cur_tx, current) = watch::channel(Arc::new(BTreeMap::new()));
        tokio::spawn(async move {
            let mut table = InterfaceTable::default();
            let mut first = true;
            loop {
                if !first {
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                first = false;
                if tx.is_closed() {
                    return;
                }
                let Ok(channel) = transport::connect(&addr).await else {
                    continue;
                };
                let mut stream = match FeaClient::new(channel)
                    .watch_interfaces(WatchInterfacesRequest {})
                    .await
                {
                    Ok(r) => r.into_inner(),
                    Err(_) => continue,
                };
                while let Ok(Some(u)) = stream.message().await {
                    backoff.reset();
                    let evs = table.apply(&u);
                    if !evs.is_empty() {
                        cur_tx.send_replace(Arc::new(table.interfaces().clone()));
                    }
                    for e in evs {
                        if tx.send(e).is_err() {
                            return;
                        }
                    }
                }
                tracing::warn!(%addr, "WatchInterfaces stream broke; reconnecting");
            }
        });
        InterfaceWatcher { events, current }
    }

    /// The next change.
    pub async fn next(&mut self) -> Option<InterfaceEvent> {
        self.events.recv().await
    }

    /// The current interfaces by ifindex.
    pub fn current(&self) -> Arc<BTreeMap<u32, Interface>> {
        self.current.borrow().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxr_proto::types::Prefix;

    fn iface(ifindex: u32, name: &str, up: bool, addr: &str) -> wire::Interface {
        let net: IpNet = addr.parse().unwrap();
        wire::Interface {
            ifindex,
            name: name.into(),
            admin_up: true,
            oper_up: up,
            mtu: 1500,
            addresses: vec![wire::InterfaceAddress {
                prefix: Some(Prefix {
                    addr: oxr_proto::convert::addr_octets(net.addr()),
                    len: u32::from(net.prefix_len()),
                }),
                peer: None,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn interface_addresses_keep_their_host_part() {
        let i = Interface::from_proto(&iface(2, "eth0", true, "192.0.2.1/24"));
        assert_eq!(i.addresses[0].addr.to_string(), "192.0.2.1/24");
    }

    #[test]
    fn full_dump_reports_only_differences() {
        let mut t = InterfaceTable::default();
        let first = t.apply(&wire::InterfaceUpdate {
            changed: vec![
                iface(1, "lo", true, "127.0.0.1/8"),
                iface(2, "eth0", true, "192.0.2.1/24"),
            ],
            removed_ifindex: vec![],
            full_dump: true,
        });
        assert_eq!(first.len(), 2);
        // A restarted FEA re-dumps: eth0 went down, lo unchanged, eth1 gone/absent.
        let again = t.apply(&wire::InterfaceUpdate {
            changed: vec![
                iface(1, "lo", true, "127.0.0.1/8"),
                iface(2, "eth0", false, "192.0.2.1/24"),
            ],
            removed_ifindex: vec![],
            full_dump: true,
        });
        assert!(
            matches!(&again[..], [InterfaceEvent::Changed(i)] if i.name == "eth0" && !i.is_up())
        );
        let gone = t.apply(&wire::InterfaceUpdate {
            changed: vec![iface(1, "lo", true, "127.0.0.1/8")],
            removed_ifindex: vec![],
            full_dump: true,
        });
        assert!(matches!(&gone[..], [InterfaceEvent::Removed(i)] if i.ifindex == 2));
        assert!(t.by_name("eth0").is_none());
        assert!(t.by_name("lo").is_some());
    }
}
