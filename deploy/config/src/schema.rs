//! The configuration types. Names are kebab-case; lists of named things are tables keyed by
//! name, so every node has a path.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One virtual router.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RouterConfig {
    #[serde(default)]
    pub router: RouterSection,
    /// Interfaces oxr configures (addresses, MTU, admin state), keyed by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub interfaces: BTreeMap<String, InterfaceConfig>,
    #[serde(default)]
    pub fea: FeaConfig,
    #[serde(default)]
    pub rib: RibConfig,
    #[serde(default)]
    pub protocols: ProtocolsConfig,
}

/// Router-wide settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RouterSection {
    /// Name of the virtual router; also its run directory `/run/oxr/<name>`.
    pub name: Option<String>,
    /// Router ID used by OSPF and BGP.
    #[schemars(with = "Option<String>")]
    pub router_id: Option<Ipv4Addr>,
}

/// An interface as oxr configures it. Addresses listed here are added if missing; others
/// on the interface are left alone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct InterfaceConfig {
    /// Addresses with prefix length, e.g. "10.0.12.1/24".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub address: Vec<IpNet>,
    pub mtu: Option<u32>,
    /// Bring the link up (default) or down.
    pub up: Option<bool>,
}

/// Which forwarding backend oxr-fea programs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Dataplane {
    /// The Linux kernel FIB through netlink.
    #[default]
    Kernel,
    /// In memory only; for running without privileges.
    None,
    /// The oxr-fastpath plugin.
    Fastpath,
}

/// The fast-path engine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FastpathEngine {
    #[default]
    Xdp,
    Afxdp,
}

/// oxr-fea settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FeaConfig {
    #[serde(default)]
    pub dataplane: Dataplane,
    /// Kernel route protocol number that marks oxr's routes.
    #[serde(default = "default_route_protocol")]
    pub route_protocol: u8,
    /// Route messages packed into one netlink sendmsg.
    #[serde(default = "default_netlink_batch")]
    pub netlink_batch: u32,
    #[serde(default)]
    pub fastpath: FastpathConfig,
}

/// oxr's kernel route protocol number (see /etc/iproute2/rt_protos).
pub const DEFAULT_ROUTE_PROTOCOL: u8 = 201;

fn default_route_protocol() -> u8 {
    DEFAULT_ROUTE_PROTOCOL
}
fn default_netlink_batch() -> u32 {
    64
}

impl Default for FeaConfig {
    fn default() -> Self {
        FeaConfig {
            dataplane: Dataplane::default(),
            route_protocol: DEFAULT_ROUTE_PROTOCOL,
            netlink_batch: default_netlink_batch(),
            fastpath: FastpathConfig::default(),
        }
    }
}

/// Fast-path settings (used when `fea.dataplane = "fastpath"`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FastpathConfig {
    #[serde(default)]
    pub engine: FastpathEngine,
    /// Interfaces the fast path attaches to; all non-loopback interfaces if empty
    /// (including interfaces created later).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<String>,
    /// `afxdp` engine: busy-poll its sockets for this many microseconds
    /// (SO_PREFER_BUSY_POLL + SO_BUSY_POLL); 0 = off.
    #[serde(default, skip_serializing_if = "busy_poll_off")]
    pub busy_poll_usecs: u32,
}

fn busy_poll_off(usecs: &u32) -> bool {
    *usecs == 0
}

/// oxr-rib settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RibConfig {
    /// How long a disconnected protocol's routes stay (stale) before they are swept.
    #[serde(default = "default_stale_hold")]
    pub stale_hold_secs: u64,
    /// Most equal-cost paths installed for one prefix.
    #[serde(default = "default_ecmp_width")]
    pub ecmp_width: u32,
    /// After the RIB starts, how long it waits for configured protocols' end-of-RIB before
    /// it completes its first synchronisation of the FIB (routes not re-sent by then are
    /// removed from the kernel).
    #[serde(default = "default_startup_hold")]
    pub startup_hold_secs: u64,
}

fn default_stale_hold() -> u64 {
    120
}
fn default_ecmp_width() -> u32 {
    8
}
fn default_startup_hold() -> u64 {
    30
}

impl Default for RibConfig {
    fn default() -> Self {
        RibConfig {
            stale_hold_secs: default_stale_hold(),
            ecmp_width: default_ecmp_width(),
            startup_hold_secs: default_startup_hold(),
        }
    }
}

/// Routing protocols, each a process of its own.
///
/// `static` is built in and typed; other protocols' sections (`protocols.ospf`, ...) are
/// validated by the [`ProtocolSchema`](crate::ProtocolSchema) registered for them and kept
/// in [`ProtocolsConfig::other`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ProtocolsConfig {
    /// Static routes (process oxr-static).
    #[serde(rename = "static", skip_serializing_if = "Option::is_none")]
    pub static_routes: Option<StaticConfig>,
    /// Sections of registered protocols, keyed by protocol name. Filled by
    /// [`validate_table_with`](crate::validate_table_with); plain deserialization of
    /// this type knows only the built-in protocols.
    #[serde(skip)]
    #[schemars(skip)]
    pub other: BTreeMap<String, ProtocolSection>,
}

/// A registered protocol's validated section.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtocolSection {
    /// The section as written.
    pub toml: toml::Value,
    /// What the process receives through `WatchConfig` (its schema's
    /// [`section_json`](crate::ProtocolSchema::section_json)).
    pub json: serde_json::Value,
}

// By hand, so registered protocols' sections serialize beside `static` (the derive cannot
// flatten them under `deny_unknown_fields`).
impl Serialize for ProtocolsConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        if let Some(st) = &self.static_routes {
            map.serialize_entry("static", st)?;
        }
        for (name, section) in &self.other {
            map.serialize_entry(name, &section.json)?;
        }
        map.end()
    }
}

impl ProtocolsConfig {
    /// Names of the configured protocols, i.e. the protocol processes to run: built-ins
    /// first, then registered protocols by name.
    pub fn configured_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if self.static_routes.is_some() {
            names.push("static".to_string());
        }
        names.extend(self.other.keys().cloned());
        names
    }
}

/// oxr-static.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct StaticConfig {
    /// Routes keyed by prefix, e.g. `route."10.9.0.0/16"`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, StaticRoute>")]
    pub route: BTreeMap<IpNet, StaticRoute>,
}

/// What a static route does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StaticAction {
    /// Forward via `via` gateways and/or `interface`.
    #[default]
    Forward,
    /// Drop silently.
    Blackhole,
    /// Drop and answer ICMP unreachable.
    Reject,
}

/// Default administrative distance of static routes.
pub const STATIC_DISTANCE: u32 = 1;

/// One static route.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct StaticRoute {
    /// Gateways; several make an ECMP route. A gateway not on a connected network is
    /// resolved recursively through the RIB.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub via: Vec<IpAddr>,
    /// Outgoing interface (alone: the destination is on that link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    #[serde(default)]
    pub action: StaticAction,
    /// Administrative distance (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance: Option<u32>,
    #[serde(default)]
    pub metric: u32,
    #[serde(default)]
    pub tag: u32,
}

/// What oxr-routerd hands oxr-fea: its own section plus the interfaces to configure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct FeaSection {
    pub fea: FeaConfig,
    pub interfaces: BTreeMap<String, InterfaceConfig>,
}

/// What oxr-routerd hands oxr-rib: its section plus the protocols it should expect an
/// end-of-RIB from before its first FIB synchronisation completes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RibSection {
    pub rib: RibConfig,
    pub protocols: Vec<String>,
}

impl RouterConfig {
    /// The JSON a process receives as its section (`WatchConfig`): `fea` gets a
    /// [`FeaSection`], `rib` a [`RibSection`], a protocol its own table (`null` if absent
    /// or not a protocol; a registered protocol's as its schema's `section_json` made it).
    pub fn section_json(&self, section: &str) -> serde_json::Value {
        let json = match section {
            "fea" => serde_json::to_value(FeaSection {
                fea: self.fea.clone(),
                interfaces: self.interfaces.clone(),
            }),
            "rib" => serde_json::to_value(RibSection {
                rib: self.rib.clone(),
                protocols: self.protocols.configured_names(),
            }),
            "static" => serde_json::to_value(&self.protocols.static_routes),
            other => Ok(self
                .protocols
                .other
                .get(other)
                .map_or(serde_json::Value::Null, |s| s.json.clone())),
        };
        json.expect("config types serialize to JSON")
    }
}
