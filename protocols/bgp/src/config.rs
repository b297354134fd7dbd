//! Configuration types for the `protocols.bgp` section (serde, kebab-case).
//!
//! ```toml
//! local-as = 65000
//! router-id = "192.0.2.1"
//! [neighbor."192.0.2.2"]
//! remote-as = 65001
//! import-policy = ["FROM-PEER"]
//! export-policy = ["TO-PEER"]
//! afi = ["ipv4-unicast", "ipv6-unicast"]
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use oxr_sdk::{SectionConfig, SectionError, SectionSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::packet::AfiSafi;
use crate::policy::{self, PolicySet};

/// Address families a neighbor can carry.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// IPv4 unicast.
    Ipv4Unicast,
    /// IPv6 unicast.
    Ipv6Unicast,
}

impl Family {
    /// The wire identifiers.
    pub fn afi_safi(self) -> AfiSafi {
        match self {
            Family::Ipv4Unicast => AfiSafi::IPV4_UNICAST,
            Family::Ipv6Unicast => AfiSafi::IPV6_UNICAST,
        }
    }
}

fn default_hold_time() -> u16 {
    90
}

fn default_families() -> Vec<Family> {
    vec![Family::Ipv4Unicast]
}

fn default_restart_time() -> u16 {
    120
}

/// Graceful restart settings (RFC 4724).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GracefulRestartConfig {
    /// Announce the capability.
    #[serde(default)]
    pub enabled: bool,
    /// Restart time in seconds (up to 4095).
    #[serde(default = "default_restart_time")]
    pub restart_time: u16,
}

/// One neighbor (`neighbor."ADDRESS"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NeighborConfig {
    /// Peer AS.
    pub remote_as: u32,
    /// Our AS towards this peer (default: the global `local-as`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_as: Option<u32>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Only accept connections, never connect.
    #[serde(default)]
    pub passive: bool,
    /// eBGP multihop TTL (absent: directly connected, TTL 1 / GTSM-free).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multihop: Option<u8>,
    /// Set ourselves as next hop on routes sent to this peer.
    #[serde(default)]
    pub next_hop_self: bool,
    /// Reflect iBGP routes to this peer (RFC 4456).
    #[serde(default)]
    pub route_reflector_client: bool,
    /// TCP MD5 signature key (RFC 2385).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5_password: Option<String>,
    /// Proposed hold time (0, or 3..=65535).
    #[serde(default = "default_hold_time")]
    pub hold_time: u16,
    /// Import policy chain (names under `policy`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub import_policy: Vec<String>,
    /// Export policy chain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub export_policy: Vec<String>,
    /// Families to negotiate.
    #[serde(default = "default_families")]
    pub afi: Vec<Family>,
    /// Graceful restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graceful_restart: Option<GracefulRestartConfig>,
    /// Local source address for the TCP connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_address: Option<IpAddr>,
    /// The peer's TCP port (default 179).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Administratively down: configured but no session.
    #[serde(default)]
    pub shutdown: bool,
}

fn default_max_paths() -> u8 {
    1
}

/// The `protocols.bgp` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BgpConfig {
    /// Our AS.
    pub local_as: u32,
    /// Our BGP Identifier.
    pub router_id: Ipv4Addr,
    /// Route reflector cluster id (default: router id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<Ipv4Addr>,
    /// Multipath width (1: off).
    #[serde(default = "default_max_paths")]
    pub max_paths: u8,
    /// Neighbors by address.
    #[serde(default)]
    pub neighbor: BTreeMap<IpAddr, NeighborConfig>,
    /// Policies by name.
    #[serde(default)]
    pub policy: PolicySet,
    /// Prefixes this speaker originates (ORIGIN IGP, empty AS path, next hop
    /// self); exported through each neighbor's export policy like any route.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub network: Vec<IpNet>,
    /// Periodic MRT TABLE_DUMP_V2 dumps of the Loc-RIB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mrt: Option<MrtConfig>,
}

fn default_mrt_interval() -> u32 {
    0
}

/// MRT dump settings (`mrt`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MrtConfig {
    /// File written by each dump (replaced atomically).
    pub file: String,
    /// Seconds between dumps (0: only on command).
    #[serde(default = "default_mrt_interval")]
    pub interval_secs: u32,
}

impl BgpConfig {
    /// Semantic checks; (path, reason) per error, paths relative to this section.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut e: Vec<(String, String)> = Vec::new();
        if self.local_as == 0 {
            e.push(("local-as".into(), "AS 0 is reserved (RFC 7607)".into()));
        }
        if self.router_id.is_unspecified() {
            e.push(("router-id".into(), "must be non-zero".into()));
        }
        if self.max_paths == 0 {
            e.push(("max-paths".into(), "must be at least 1".into()));
        }
        for (addr, n) in &self.neighbor {
            let p = |f: &str| format!("neighbor.\"{addr}\".{f}");
            if n.remote_as == 0 {
                e.push((p("remote-as"), "AS 0 is reserved (RFC 7607)".into()));
            }
            if n.local_as == Some(0) {
                e.push((p("local-as"), "AS 0 is reserved (RFC 7607)".into()));
            }
            if n.hold_time == 1 || n.hold_time == 2 {
                e.push((p("hold-time"), "must be 0 or at least 3 (RFC 4271)".into()));
            }
            if n.multihop == Some(0) {
                e.push((p("multihop"), "TTL must be 1..=255".into()));
            }
            let local_as = n.local_as.unwrap_or(self.local_as);
            let ibgp = n.remote_as == local_as;
            if n.route_reflector_client && !ibgp {
                e.push((
                    p("route-reflector-client"),
                    "only for iBGP neighbors".into(),
                ));
            }
            if n.md5_password
                .as_ref()
                .is_some_and(|k| k.is_empty() || k.len() > 80)
            {
                e.push((
                    p("md5-password"),
                    "must be 1..=80 octets (TCP_MD5SIG_MAXKEYLEN)".into(),
                ));
            }
            if n.afi.is_empty() {
                e.push((p("afi"), "at least one family".into()));
            }
            let mut fams = n.afi.clone();
            fams.sort();
            fams.dedup();
            if fams.len() != n.afi.len() {
                e.push((p("afi"), "duplicate family".into()));
            }
            if let Some(gr) = &n.graceful_restart {
                if gr.restart_time > 4095 {
                    e.push((
                        p("graceful-restart.restart-time"),
                        "at most 4095 (12 bits)".into(),
                    ));
                }
            }
            for (field, chain) in [
                ("import-policy", &n.import_policy),
                ("export-policy", &n.export_policy),
            ] {
                for (i, name) in chain.iter().enumerate() {
                    if !self.policy.contains_key(name) {
                        e.push((
                            format!("{}[{i}]", p(field)),
                            format!("no policy named {name:?}"),
                        ));
                    }
                }
            }
        }
        e.extend(policy::validate(&self.policy));
        e
    }
}

/// What oxr-routerd's `--check-config` and oxr-config's loader run on the section: typed
/// deserialization (unknown keys, wrong types), then [`BgpConfig::validate`].
impl SectionConfig for BgpConfig {
    fn check(&self) -> Vec<SectionError> {
        self.validate()
            .into_iter()
            .map(|(path, reason)| SectionError::new(path, reason))
            .collect()
    }
}

/// The `protocols.bgp` schema for oxr-config's registry, derived from [`BgpConfig`]:
/// oxr-routerd registers it (`Registry::builtin().with(BgpSchema)`) to validate, deliver
/// and complete the section, and oxr-bgp registers it at start (through
/// `Runtime::protocol`) so `--config FILE` goes through the SDK's validated loader.
// A value named like the unit struct it replaces, so registries keep writing `BgpSchema`.
#[allow(non_upper_case_globals)]
pub const BgpSchema: SectionSchema<BgpConfig> = SectionSchema::new("bgp");

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> oxr_config::Registry {
        oxr_config::Registry::builtin().with(BgpSchema)
    }

    const ROUTER: &str = r#"
[protocols.bgp]
local-as = 4200000066
router-id = "192.0.2.1"
network = ["198.51.100.0/24"]
[protocols.bgp.neighbor."192.0.2.2"]
remote-as = 65001
import-policy = ["IN"]
afi = ["ipv4-unicast", "ipv6-unicast"]
[protocols.bgp.policy.IN.term.10.match]
prefix-list = ["10.0.0.0/8 le 32"]
[protocols.bgp.policy.IN.term.10.then]
action = "accept"
"#;

    #[test]
    fn the_router_config_accepts_and_delivers_the_bgp_section() {
        let cfg = oxr_config::parse_and_validate_with(ROUTER, &registry()).unwrap();
        assert_eq!(cfg.protocols.configured_names(), ["bgp"]);
        let section: Option<BgpConfig> = serde_json::from_value(cfg.section_json("bgp")).unwrap();
        let section = section.unwrap();
        assert_eq!(section.local_as, 4_200_000_066);
        let n = &section.neighbor[&"192.0.2.2".parse::<IpAddr>().unwrap()];
        assert_eq!(n.hold_time, 90, "defaults filled in");
        assert_eq!(n.import_policy, ["IN"]);
        let none: Option<BgpConfig> = serde_json::from_value(
            oxr_config::parse_and_validate_with("", &registry())
                .unwrap()
                .section_json("bgp"),
        )
        .unwrap();
        assert_eq!(none, None);
    }

    #[test]
    fn router_config_errors_name_full_paths() {
        let errs = |text: &str| -> Vec<String> {
            oxr_config::parse_and_validate_with(text, &registry())
                .unwrap_err()
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        let e = errs(&ROUTER.replace("remote-as = 65001", "remote-as = 65001\nhold-tim = 3"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("protocols.bgp.neighbor"), "{e:?}");
        let e = errs(&ROUTER.replace("remote-as = 65001", "remote-as = 65001\nhold-time = 2"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("protocols.bgp.neighbor.\"192.0.2.2\".hold-time"),
            "{e:?}"
        );
        let e = errs(&ROUTER.replace("[\"IN\"]", "[\"OUT\"]"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("import-policy"), "{e:?}");
    }

    #[test]
    fn the_schema_names_bgp_keys() {
        let schema = oxr_config::json_schema_with(&registry());
        let text = schema.to_string();
        for key in [
            "local-as",
            "remote-as",
            "import-policy",
            "prefix-list",
            "interval-secs",
        ] {
            assert!(text.contains(key), "{key} missing from the schema");
        }
    }
}
