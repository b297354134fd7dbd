//! Connected routes: the FEA's interface addresses, on interfaces that are up, become routes
//! of the "connected" client (distance 0, next hop = the interface). They resolve gateways
//! but are never sent to the FEA (the kernel has them already).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use oxr_proto::fea::fea_client::FeaClient;
use oxr_proto::fea::{Interface, InterfaceUpdate, WatchInterfacesRequest};
use oxr_proto::transport::{self, Address};
use smallvec::SmallVec;

use crate::actor::{Cmd, RibHandle};
use crate::publish::RawNexthop;
use crate::table::Key;

/// Interface state as the FEA reports it.
#[derive(Debug, Default)]
pub struct Interfaces {
    by_index: BTreeMap<u32, Interface>,
    index_by_name: HashMap<String, u32>,
}

impl Interfaces {
    /// Applies an update; returns whether the name -> ifindex mapping changed.
    pub fn apply(&mut self, update: InterfaceUpdate) -> bool {
        if update.full_dump {
            self.by_index.clear();
        }
        for i in update.removed_ifindex {
            self.by_index.remove(&i);
        }
        for i in update.changed {
            self.by_index.insert(i.ifindex, i);
        }
        let names: HashMap<String, u32> = self
            .by_index
            .values()
            .map(|i| (i.name.clone(), i.ifindex))
            .collect();
        let changed = names != self.index_by_name;
        self.index_by_name = names;
        changed
    }

    /// The ifindex of a named interface (0 if unknown).
    pub fn ifindex(&self, name: &str) -> u32 {
        self.index_by_name.get(name).copied().unwrap_or(0)
    }

    /// The connected routes: every address's subnet on interfaces administratively and
    /// operationally up; a subnet present on several interfaces gets one next hop each.
    pub fn connected_routes(&self) -> BTreeMap<Key, SmallVec<[RawNexthop; 2]>> {
        let mut out: BTreeMap<Key, SmallVec<[RawNexthop; 2]>> = BTreeMap::new();
        for i in self.by_index.values() {
            if !(i.admin_up && i.oper_up) {
                continue;
            }
            for a in &i.addresses {
                let Some(Ok(key)) = a.prefix.as_ref().map(Key::from_proto) else {
                    continue;
                };
                let nhs = out.entry(key).or_default();
                nhs.push(RawNexthop {
                    gateway: None,
                    interface: i.name.clone(),
                    weight: 0,
                });
                // Point-to-point peers are reachable through the interface as well.
                if let Some(Ok(peer)) = a.peer.as_ref().map(std::net::IpAddr::try_from) {
                    let pk = Key::host(peer);
                    if pk != key {
                        out.entry(pk).or_default().push(RawNexthop {
                            gateway: None,
                            interface: i.name.clone(),
                            weight: 0,
                        });
                    }
                }
            }
        }
        for nhs in out.values_mut() {
            nhs.sort_by(|a, b| a.interface.cmp(&b.interface));
            nhs.dedup();
        }
        out
    }

    /// Every interface, for show commands.
    pub fn iter(&self) -> impl Iterator<Item = &Interface> {
        self.by_index.values()
    }
}

/// Follows `Fea.WatchInterfaces` for ever, reconnecting with backoff; each update goes to
/// the RIB task.
pub async fn watch_interfaces(fea: Address, handle: RibHandle) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match transport::connect(&fea).await {
            Ok(ch) => {
                let mut client = FeaClient::new(ch);
                match client.watch_interfaces(WatchInterfacesRequest {}).await {
                    Ok(resp) => {
                        backoff = Duration::from_millis(100);
                        tracing::info!("watching FEA interfaces");
                        let mut updates = resp.into_inner();
                        loop {
                            match updates.message().await {
                                Ok(Some(u)) => {
                                    if handle.send(Cmd::Interfaces(u)).await.is_err() {
                                        return;
                                    }
                                }
                                Ok(None) => break,
                                Err(e) => {
                                    tracing::info!(error = %e, "FEA interface stream broke");
                                    break;
                                }
                            }
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "WatchInterfaces refused"),
                }
            }
            Err(e) => tracing::debug!(error = %e, "FEA not reachable"),
        }
        if handle.is_closed() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxr_proto::fea::InterfaceAddress;

    fn iface(ifindex: u32, name: &str, up: bool, addrs: &[&str]) -> Interface {
        Interface {
            ifindex,
            name: name.into(),
            admin_up: true,
            oper_up: up,
            addresses: addrs
                .iter()
                .map(|a| InterfaceAddress {
                    prefix: Some(Key::from(a.parse::<ipnet::IpNet>().unwrap()).to_proto()),
                    peer: None,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn up_interfaces_make_connected_routes() {
        let mut i = Interfaces::default();
        // The address's host bits are cleared by the prefix parse.
        assert!(i.apply(InterfaceUpdate {
            changed: vec![
                iface(2, "eth0", true, &["192.0.2.1/24", "2001:db8::1/64"]),
                iface(3, "eth1", false, &["198.51.100.1/24"]),
            ],
            removed_ifindex: vec![],
            full_dump: true,
        }));
        let r = i.connected_routes();
        let keys: Vec<String> = r.keys().map(|k| k.to_string()).collect();
        assert_eq!(keys, vec!["192.0.2.0/24", "2001:db8::/64"]);
        assert_eq!(i.ifindex("eth1"), 3);
        // eth1 comes up, eth0 is removed.
        assert!(i.apply(InterfaceUpdate {
            changed: vec![iface(3, "eth1", true, &["198.51.100.1/24"])],
            removed_ifindex: vec![2],
            full_dump: false,
        }));
        let keys: Vec<String> = i.connected_routes().keys().map(|k| k.to_string()).collect();
        assert_eq!(keys, vec!["198.51.100.0/24"]);
        assert_eq!(i.ifindex("eth0"), 0);
    }

    #[test]
    fn full_dump_replaces_the_set() {
        let mut i = Interfaces::default();
        i.apply(InterfaceUpdate {
            changed: vec![iface(2, "eth0", true, &["192.0.2.1/24"])],
            removed_ifindex: vec![],
            full_dump: true,
        });
        i.apply(InterfaceUpdate {
            changed: vec![iface(4, "eth2", true, &["203.0.113.1/24"])],
            removed_ifindex: vec![],
            full_dump: true,
        });
        let keys: Vec<String> = i.connected_routes().keys().map(|k| k.to_string()).collect();
        assert_eq!(keys, vec!["203.0.113.0/24"]);
    }
}
