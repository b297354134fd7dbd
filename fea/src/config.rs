//! The FEA's configuration: its section (`FeaSection`), from oxr-routerd's WatchConfig or a
//! router TOML file, and the interface settings it applies (addresses added if missing, MTU,
//! admin state). Deciding what to change is pure ([`plan_interfaces`]); the netlink requests
//! are built by [`action_message`] and sent by the server.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use oxr_config::{FeaSection, InterfaceConfig};

use crate::interfaces::InterfaceTable;
use crate::netlink::RtMessage;

/// Reads the `fea` section of a router TOML file (validated as a whole).
pub fn section_from_file(path: &Path) -> anyhow::Result<FeaSection> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let cfg = oxr_config::parse_and_validate_with(
        &text,
        &oxr_config::Registry::global().accept_unregistered(),
    )
    .map_err(|errs| {
        anyhow::anyhow!(
            "{}: {}",
            path.display(),
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?;
    section_from_json(&cfg.section_json("fea"))
}

/// Decodes the section JSON that WatchConfig delivers (null means defaults).
pub fn section_from_json(v: &serde_json::Value) -> anyhow::Result<FeaSection> {
    if v.is_null() {
        return Ok(FeaSection::default());
    }
    serde_json::from_value(v.clone()).context("decoding the fea section")
}

/// One change to an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfAction {
    AddAddress {
        ifindex: u32,
        name: String,
        address: IpNet,
    },
    SetMtu {
        ifindex: u32,
        name: String,
        mtu: u32,
    },
    SetAdmin {
        ifindex: u32,
        name: String,
        up: bool,
    },
}

/// What to change so the interfaces match `cfg`, and the configured interfaces that do not
/// exist (yet). Addresses not in the config are left alone.
pub fn plan_interfaces(
    table: &InterfaceTable,
    cfg: &BTreeMap<String, InterfaceConfig>,
) -> (Vec<IfAction>, Vec<String>) {
    let mut actions = Vec::new();
    let mut missing = Vec::new();
    for (name, c) in cfg {
        let Some(i) = table.by_name(name) else {
            missing.push(name.clone());
            continue;
        };
        for a in &c.address {
            if !i.addresses.iter().any(|x| x.prefix == *a) {
                actions.push(IfAction::AddAddress {
                    ifindex: i.ifindex,
                    name: name.clone(),
                    address: *a,
                });
            }
        }
        if let Some(mtu) = c.mtu {
            if mtu != i.mtu {
                actions.push(IfAction::SetMtu {
                    ifindex: i.ifindex,
                    name: name.clone(),
                    mtu,
                });
            }
        }
        let up = c.up.unwrap_or(true);
        if up != i.admin_up {
            actions.push(IfAction::SetAdmin {
                ifindex: i.ifindex,
                name: name.clone(),
                up,
            });
        }
    }
    (actions, missing)
}

/// Interfaces (name, ifindex) already brought to the current config. The FEA applies a
/// config to an interface once: when the config changes, or when the interface appears
/// (or is re-created with a new index). What an operator changes by hand afterwards (`ip
/// link set X down`, an address removed) is left alone until the next config change.
pub type Applied = std::collections::HashSet<(String, u32)>;

/// [`plan_interfaces`] for the configured interfaces not in `applied` only; records them
/// (those that exist) as applied.
pub fn plan_new_interfaces(
    table: &InterfaceTable,
    cfg: &BTreeMap<String, InterfaceConfig>,
    applied: &mut Applied,
) -> (Vec<IfAction>, Vec<String>) {
    let fresh: BTreeMap<String, InterfaceConfig> = cfg
        .iter()
        .filter(|(n, _)| {
            table
                .by_name(n)
                .is_none_or(|i| !applied.contains(&(n.to_string(), i.ifindex)))
        })
        .map(|(n, c)| (n.clone(), c.clone()))
        .collect();
    let planned = plan_interfaces(table, &fresh);
    for n in fresh.keys() {
        if let Some(i) = table.by_name(n) {
            applied.insert((n.clone(), i.ifindex));
        }
    }
    planned
}

/// The netlink request (and its flags) carrying out `a`.
pub fn action_message(a: &IfAction) -> (RtMessage, u16) {
    match a {
        IfAction::AddAddress {
            ifindex, address, ..
        } => {
            let mut m = AddressMessage::default();
            m.header.family = match address {
                IpNet::V4(_) => AddressFamily::Inet,
                IpNet::V6(_) => AddressFamily::Inet6,
            };
            m.header.prefix_len = address.prefix_len();
            m.header.index = *ifindex;
            if address.addr().is_ipv4() {
                m.attributes.push(AddressAttribute::Local(address.addr()));
            }
            m.attributes.push(AddressAttribute::Address(address.addr()));
            (
                RtMessage::Route(RouteNetlinkMessage::NewAddress(m)),
                NLM_F_CREATE | NLM_F_REPLACE,
            )
        }
        IfAction::SetMtu { ifindex, mtu, .. } => {
            let mut m = LinkMessage::default();
            m.header.index = *ifindex;
            m.attributes.push(LinkAttribute::Mtu(*mtu));
            (RtMessage::Route(RouteNetlinkMessage::SetLink(m)), 0)
        }
        IfAction::SetAdmin { ifindex, up, .. } => {
            let mut m = LinkMessage::default();
            m.header.index = *ifindex;
            m.header.change_mask = LinkFlags::Up;
            if *up {
                m.header.flags = LinkFlags::Up;
            }
            (RtMessage::Route(RouteNetlinkMessage::SetLink(m)), 0)
        }
    }
}

impl std::fmt::Display for IfAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IfAction::AddAddress { name, address, .. } => write!(f, "add {address} to {name}"),
            IfAction::SetMtu { name, mtu, .. } => write!(f, "set {name} mtu {mtu}"),
            IfAction::SetAdmin { name, up, .. } => {
                write!(f, "set {name} {}", if *up { "up" } else { "down" })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interfaces::{IfAddress, Interface};

    fn table() -> InterfaceTable {
        let mut t = InterfaceTable::default();
        t.interfaces.insert(
            3,
            Interface {
                ifindex: 3,
                name: "eth0".into(),
                admin_up: false,
                mtu: 1500,
                addresses: [IfAddress {
                    prefix: "10.0.0.1/24".parse().unwrap(),
                    peer: None,
                }]
                .into(),
                ..Default::default()
            },
        );
        t
    }

    #[test]
    fn plans_missing_addresses_mtu_and_admin_state() {
        let cfg: BTreeMap<String, InterfaceConfig> = [
            (
                "eth0".to_string(),
                InterfaceConfig {
                    address: vec![
                        "10.0.0.1/24".parse().unwrap(),
                        "2001:db8::1/64".parse().unwrap(),
                    ],
                    mtu: Some(9000),
                    up: None,
                },
            ),
            ("eth9".to_string(), InterfaceConfig::default()),
        ]
        .into();
        let (actions, missing) = plan_interfaces(&table(), &cfg);
        assert_eq!(missing, vec!["eth9".to_string()]);
        assert_eq!(
            actions,
            vec![
                IfAction::AddAddress {
                    ifindex: 3,
                    name: "eth0".into(),
                    address: "2001:db8::1/64".parse().unwrap()
                },
                IfAction::SetMtu {
                    ifindex: 3,
                    name: "eth0".into(),
                    mtu: 9000
                },
                IfAction::SetAdmin {
                    ifindex: 3,
                    name: "eth0".into(),
                    up: true
                },
            ]
        );
    }

    #[test]
    fn matching_interface_needs_nothing_and_up_false_is_respected() {
        let cfg: BTreeMap<String, InterfaceConfig> = [(
            "eth0".to_string(),
            InterfaceConfig {
                address: vec!["10.0.0.1/24".parse().unwrap()],
                mtu: Some(1500),
                up: Some(false),
            },
        )]
        .into();
        assert_eq!(plan_interfaces(&table(), &cfg), (vec![], vec![]));
    }

    #[test]
    fn config_is_applied_once_per_interface_so_an_operator_change_stays() {
        let mut t = table();
        let mut cfg = BTreeMap::new();
        cfg.insert(
            "eth0".to_string(),
            InterfaceConfig {
                up: Some(true),
                ..Default::default()
            },
        );
        cfg.insert("eth9".to_string(), InterfaceConfig::default());
        let mut applied = Applied::new();
        // eth0 is down: raised the first time.
        assert!(!t.interfaces[&3].admin_up);
        let (a, missing) = plan_new_interfaces(&t, &cfg, &mut applied);
        assert_eq!(a.len(), 1);
        assert!(matches!(a[0], IfAction::SetAdmin { up: true, .. }));
        assert_eq!(missing, vec!["eth9".to_string()]);
        // An operator sets it down again: not raised on later interface updates.
        let (a, _) = plan_new_interfaces(&t, &cfg, &mut applied);
        assert!(a.is_empty(), "{a:?}");
        // Re-created with a new index: configured again.
        let mut i = t.interfaces.remove(&3).unwrap();
        i.ifindex = 12;
        t.interfaces.insert(12, i);
        let (a, _) = plan_new_interfaces(&t, &cfg, &mut applied);
        assert_eq!(a.len(), 1);
        // A config change (cleared set) applies it again.
        applied.clear();
        let (a, _) = plan_new_interfaces(&t, &cfg, &mut applied);
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn address_message_has_local_for_ipv4() {
        let (m, _) = action_message(&IfAction::AddAddress {
            ifindex: 3,
            name: "eth0".into(),
            address: "10.0.0.1/24".parse().unwrap(),
        });
        let RtMessage::Route(RouteNetlinkMessage::NewAddress(a)) = m else {
            panic!("not an address message")
        };
        assert_eq!(a.header.prefix_len, 24);
        assert!(a
            .attributes
            .contains(&AddressAttribute::Local("10.0.0.1".parse().unwrap())));
    }

    #[test]
    fn section_json_null_is_defaults() {
        let s = section_from_json(&serde_json::Value::Null).unwrap();
        assert_eq!(s.fea.route_protocol, 201);
    }
}
