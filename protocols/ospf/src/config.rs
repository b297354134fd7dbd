//! The `protocols.ospf` configuration section.
//!
//! ```toml
//! [protocols.ospf]
//! router-id = "1.1.1.1"
//!
//! [protocols.ospf.areas."0.0.0.0"]
//! [protocols.ospf.areas."0.0.0.1"]
//! stub = true
//! no-summary = true
//!
//! [protocols.ospf.interfaces.eth0]
//! area = "0.0.0.0"
//! type = "point-to-point"
//! cost = 10
//! authentication = { type = "hmac-sha-256", key-id = 1, key = "secret" }
//!
//! [protocols.ospf.throttle.spf]
//! initial-delay = 0
//! short-delay = 50
//! long-delay = 2000
//! hold-down = 5000
//! time-to-learn = 500
//!
//! [protocols.ospf.redistribute.static]
//! metric = 20
//! metric-type = 2
//! ```

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use oxr_sdk::{SectionConfig, SectionError, SectionSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::interface::IfType;
use crate::packet::auth::{Auth, CryptoAlgo, CryptoKey};
use crate::throttle::ThrottleParams;
use crate::{AreaId, RouterId};

/// The OSPF section.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct OspfConfig {
    /// Router ID; when absent the process picks the highest interface address.
    #[serde(default)]
    pub router_id: Option<RouterId>,
    /// Areas keyed by area ID (dotted quad or decimal).
    #[serde(default)]
    pub areas: BTreeMap<String, AreaConfig>,
    /// Interfaces keyed by name.
    #[serde(default)]
    pub interfaces: BTreeMap<String, InterfaceConfig>,
    /// Back-off settings.
    #[serde(default)]
    pub throttle: ThrottleConfig,
    /// Routes of other protocols to announce as AS-external.
    #[serde(default)]
    pub redistribute: Redistribute,
    /// Interface MTU ignored in DD packets (interop escape hatch).
    #[serde(default)]
    pub mtu_ignore: bool,
}

/// One area.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AreaConfig {
    /// Stub area: no AS-external LSAs, a default summary instead.
    #[serde(default)]
    pub stub: bool,
    /// NSSA (RFC 3101): no type-5 LSAs, but its routers import externals as type-7 LSAs,
    /// which a border router translates into type-5 for the rest of the AS.
    #[serde(default)]
    pub nssa: bool,
    /// With stub or NSSA: no summaries either, only the default (totally stubby).
    #[serde(default)]
    pub no_summary: bool,
    /// Cost of the default an ABR announces into this stub area or NSSA (a type-3 summary,
    /// or for an NSSA without no-summary a type-7 LSA).
    #[serde(default = "one")]
    pub default_cost: u32,
    /// NSSA only: when this router, as a border router of the NSSA, translates its type-7
    /// LSAs into type-5 (RFC 3101 NSSATranslatorRole).
    #[serde(default)]
    pub nssa_translator: NssaTranslator,
}

/// An NSSA border router's translator role (RFC 3101 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NssaTranslator {
    /// Translates when elected: no reachable border router of the NSSA translates
    /// unconditionally and ours is the highest router ID among them.
    #[default]
    Candidate,
    /// Always translates (sets the Nt bit in its router LSA).
    Always,
}

fn one() -> u32 {
    1
}

/// One interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct InterfaceConfig {
    /// Area ID.
    pub area: String,
    /// Network type.
    #[serde(rename = "type", default = "broadcast")]
    #[schemars(with = "IfTypeSchema")]
    pub if_type: IfType,
    /// Output cost.
    #[serde(default = "ten")]
    pub cost: u16,
    /// HelloInterval (s).
    #[serde(default = "ten")]
    pub hello_interval: u16,
    /// RouterDeadInterval (s).
    #[serde(default = "forty")]
    pub dead_interval: u32,
    /// Router priority for DR election (0: never DR).
    #[serde(default = "prio")]
    pub priority: u8,
    /// RxmtInterval (s): retransmission of unacknowledged LSAs.
    #[serde(default = "five")]
    pub retransmit_interval: u16,
    /// Retransmission interval (ms) of the database exchange: DD packets in ExStart and
    /// Exchange, and LS Requests until answered. Shorter than RxmtInterval so one lost
    /// packet does not hold an adjacency for seconds; duplicates are harmless (10.6, 10.9).
    #[serde(default = "exchange_rxmt")]
    pub exchange_retransmit_ms: u32,
    /// InfTransDelay (s).
    #[serde(default = "one16")]
    pub transmit_delay: u16,
    /// Advertise the network but send no Hellos.
    #[serde(default)]
    pub passive: bool,
    /// Authentication.
    #[serde(default)]
    pub authentication: AuthConfig,
}

fn broadcast() -> IfType {
    IfType::Broadcast
}
fn ten() -> u16 {
    10
}
fn forty() -> u32 {
    40
}
fn prio() -> u8 {
    1
}
fn five() -> u16 {
    5
}
fn one16() -> u16 {
    1
}
/// Default [`InterfaceConfig::exchange_retransmit_ms`].
pub const EXCHANGE_RETRANSMIT_DEFAULT_MS: u32 = 250;
fn exchange_rxmt() -> u32 {
    EXCHANGE_RETRANSMIT_DEFAULT_MS
}

/// Authentication type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AuthType {
    /// None.
    #[default]
    None,
    /// Simple password (8 bytes, in clear).
    Simple,
    /// Keyed MD5.
    Md5,
    /// HMAC-SHA-1.
    #[serde(rename = "hmac-sha-1")]
    HmacSha1,
    /// HMAC-SHA-256.
    #[serde(rename = "hmac-sha-256")]
    HmacSha256,
    /// HMAC-SHA-384.
    #[serde(rename = "hmac-sha-384")]
    HmacSha384,
    /// HMAC-SHA-512.
    #[serde(rename = "hmac-sha-512")]
    HmacSha512,
}

/// Interface authentication.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AuthConfig {
    /// Type.
    #[serde(rename = "type", default)]
    pub auth_type: AuthType,
    /// Key ID (cryptographic types).
    #[serde(default)]
    pub key_id: Option<u8>,
    /// Password or key.
    #[serde(default)]
    pub key: Option<String>,
}

impl AuthConfig {
    /// The codec's view of this configuration (after [`OspfConfig::validate`]).
    pub fn to_auth(&self) -> Auth {
        let key = self.key.clone().unwrap_or_default();
        let algo = match self.auth_type {
            AuthType::None => return Auth::Null,
            AuthType::Simple => return Auth::simple(&key),
            AuthType::Md5 => CryptoAlgo::Md5,
            AuthType::HmacSha1 => CryptoAlgo::HmacSha1,
            AuthType::HmacSha256 => CryptoAlgo::HmacSha256,
            AuthType::HmacSha384 => CryptoAlgo::HmacSha384,
            AuthType::HmacSha512 => CryptoAlgo::HmacSha512,
        };
        Auth::Crypto(vec![CryptoKey {
            key_id: self.key_id.unwrap_or(0),
            algo,
            key: key.into_bytes(),
        }])
    }
}

/// Back-off settings for SPF and LSA generation (RFC 8405), in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ThrottleConfig {
    /// SPF scheduling.
    #[serde(default = "spf_default")]
    #[schemars(with = "ThrottleParamsSchema")]
    pub spf: ThrottleParams,
    /// LSA generation.
    #[serde(default = "lsa_default")]
    #[schemars(with = "ThrottleParamsSchema")]
    pub lsa: ThrottleParams,
    /// MinLSArrival (ms): a new instance of an LSA received by flooding sooner than this
    /// after the previous one is held until the interval ends (RFC 2328 13 step 5a drops
    /// it; see `Instance`'s deferral). The RFC's 1 s would hold back the 50 ms-spaced
    /// updates of the LSA throttle above, so it defaults lower.
    #[serde(default = "min_ls_arrival_default")]
    pub min_ls_arrival: u64,
}

/// Default MinLSArrival (ms), below the LSA throttle's short delay.
pub const MIN_LS_ARRIVAL_DEFAULT_MS: u64 = 25;

fn min_ls_arrival_default() -> u64 {
    MIN_LS_ARRIVAL_DEFAULT_MS
}

fn spf_default() -> ThrottleParams {
    ThrottleParams::SPF_DEFAULT
}
fn lsa_default() -> ThrottleParams {
    ThrottleParams::LSA_DEFAULT
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            spf: ThrottleParams::SPF_DEFAULT,
            lsa: ThrottleParams::LSA_DEFAULT,
            min_ls_arrival: MIN_LS_ARRIVAL_DEFAULT_MS,
        }
    }
}

/// Redistribution of other protocols' routes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Redistribute {
    /// Static routes.
    #[serde(default, rename = "static")]
    pub static_routes: Option<RedistributeTarget>,
    /// BGP routes.
    #[serde(default)]
    pub bgp: Option<RedistributeTarget>,
    /// Connected networks not covered by OSPF interfaces.
    #[serde(default)]
    pub connected: Option<RedistributeTarget>,
}

/// How redistributed routes are announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RedistributeTarget {
    /// Metric.
    #[serde(default = "twenty")]
    pub metric: u32,
    /// External metric type, 1 or 2.
    #[serde(default = "two")]
    pub metric_type: u8,
    /// External route tag.
    #[serde(default)]
    pub tag: u32,
}

fn twenty() -> u32 {
    20
}
fn two() -> u8 {
    2
}

/// Parses an area ID written as a dotted quad or a decimal number.
pub fn parse_area_id(s: &str) -> Option<AreaId> {
    s.parse::<Ipv4Addr>()
        .ok()
        .or_else(|| s.parse::<u32>().ok().map(Ipv4Addr::from))
}

impl OspfConfig {
    /// Semantic checks beyond deserialization. Returns every error found, each with its
    /// path below `protocols.ospf` (e.g. `interfaces.eth0.area`) and the reason.
    pub fn validate(&self) -> Vec<SectionError> {
        let mut errs = Vec::new();
        let mut err = |path: String, reason: &str| errs.push(SectionError::new(path, reason));
        if let Some(rid) = self.router_id {
            if rid.is_unspecified() || rid.is_broadcast() {
                err("router-id".into(), "must not be 0.0.0.0 or 255.255.255.255");
            }
        }
        let mut areas: BTreeMap<AreaId, &AreaConfig> = BTreeMap::new();
        for (name, a) in &self.areas {
            let path = format!("areas.\"{name}\"");
            let Some(id) = parse_area_id(name) else {
                err(path, "area ID must be a dotted quad or a 32-bit number");
                continue;
            };
            if areas.insert(id, a).is_some() {
                err(path.clone(), "same area as another key");
            }
            if a.stub && a.nssa {
                err(
                    format!("{path}.nssa"),
                    "an area cannot be both stub and NSSA",
                );
            }
            if id.is_unspecified() && (a.stub || a.nssa) {
                err(path.clone(), "the backbone cannot be stub or NSSA");
            }
            if a.no_summary && !(a.stub || a.nssa) {
                err(
                    format!("{path}.no-summary"),
                    "only applies to stub or NSSA areas",
                );
            }
            if a.nssa_translator != NssaTranslator::default() && !a.nssa {
                err(
                    format!("{path}.nssa-translator"),
                    "only applies to NSSA areas",
                );
            }
            if a.default_cost >= crate::consts::LS_INFINITY {
                err(format!("{path}.default-cost"), "must be below 16777215");
            }
        }
        for (name, i) in &self.interfaces {
            let path = format!("interfaces.{name}");
            match parse_area_id(&i.area) {
                None => err(format!("{path}.area"), "not an area ID"),
                Some(a) if !areas.contains_key(&a) => {
                    err(format!("{path}.area"), "area is not configured under areas")
                }
                _ => {}
            }
            if i.cost == 0 {
                err(format!("{path}.cost"), "must be 1-65535");
            }
            if i.hello_interval == 0 {
                err(format!("{path}.hello-interval"), "must be at least 1");
            }
            if i.dead_interval <= u32::from(i.hello_interval) {
                err(
                    format!("{path}.dead-interval"),
                    "must be greater than hello-interval",
                );
            }
            if i.retransmit_interval == 0 {
                err(format!("{path}.retransmit-interval"), "must be at least 1");
            }
            if i.exchange_retransmit_ms == 0
                || i.exchange_retransmit_ms > u32::from(i.retransmit_interval.max(1)) * 1000
            {
                err(
                    format!("{path}.exchange-retransmit-ms"),
                    "must be 1 ms to retransmit-interval",
                );
            }
            let a = &i.authentication;
            let apath = format!("{path}.authentication");
            let key_len = a.key.as_ref().map_or(0, String::len);
            match a.auth_type {
                AuthType::None => {
                    if a.key.is_some() || a.key_id.is_some() {
                        err(apath, "key or key-id given with type none");
                    }
                }
                AuthType::Simple => {
                    if a.key.is_none() {
                        err(format!("{apath}.key"), "required");
                    } else if key_len > 8 {
                        err(
                            format!("{apath}.key"),
                            "simple passwords are at most 8 bytes",
                        );
                    }
                }
                t => {
                    if a.key_id.is_none() {
                        err(
                            format!("{apath}.key-id"),
                            "required for cryptographic types",
                        );
                    }
                    if a.key.is_none() || key_len == 0 {
                        err(format!("{apath}.key"), "required");
                    } else if t == AuthType::Md5 && key_len > 16 {
                        err(format!("{apath}.key"), "MD5 keys are at most 16 bytes");
                    }
                }
            }
        }
        for (name, t) in [("spf", &self.throttle.spf), ("lsa", &self.throttle.lsa)] {
            if !(t.initial_delay <= t.short_delay && t.short_delay <= t.long_delay) {
                err(
                    format!("throttle.{name}"),
                    "need initial-delay <= short-delay <= long-delay",
                );
            }
            if t.hold_down == 0 {
                err(format!("throttle.{name}.hold-down"), "must be positive");
            }
        }
        for (name, r) in [
            ("static", &self.redistribute.static_routes),
            ("bgp", &self.redistribute.bgp),
            ("connected", &self.redistribute.connected),
        ] {
            let Some(r) = r else { continue };
            if r.metric >= crate::consts::LS_INFINITY {
                err(
                    format!("redistribute.{name}.metric"),
                    "must be below 16777215",
                );
            }
            if r.metric_type != 1 && r.metric_type != 2 {
                err(format!("redistribute.{name}.metric-type"), "must be 1 or 2");
            }
        }
        errs
    }
}

/// `router.router-id` from the top-level `[router]` section as oxr-routerd (and the SDK's
/// file loader) deliver it beside the OSPF section (`ConfigUpdate::router`, JSON).
pub fn router_section_id(router: &serde_json::Value) -> Option<RouterId> {
    router.get("router-id")?.as_str()?.parse().ok()
}

/// The section to run with: `protocols.ospf` as delivered, its router ID falling back to
/// `router.router-id` when the section names none. Errs with the validation errors of an
/// invalid section.
pub fn effective_config(
    section: Option<&OspfConfig>,
    router: &serde_json::Value,
) -> Result<Option<OspfConfig>, Vec<SectionError>> {
    let Some(c) = section else { return Ok(None) };
    let errs = c.validate();
    if !errs.is_empty() {
        return Err(errs);
    }
    let mut c = c.clone();
    c.router_id = c.router_id.or_else(|| router_section_id(router));
    Ok(Some(c))
}

/// Schema-only mirror of [`IfType`] (which lives with the interface state machine); a
/// test checks the two agree.
#[derive(JsonSchema)]
#[schemars(rename_all = "kebab-case")]
#[allow(dead_code)]
enum IfTypeSchema {
    /// Broadcast multi-access (Ethernet): Hellos elect a DR.
    Broadcast,
    /// Point-to-point: no election, always adjacent.
    PointToPoint,
}

/// Schema-only mirror of [`ThrottleParams`] (milliseconds); a test checks the two agree.
#[derive(JsonSchema)]
#[schemars(rename_all = "kebab-case", deny_unknown_fields)]
#[allow(dead_code)]
struct ThrottleParamsSchema {
    /// Delay after the first event in QUIET.
    initial_delay: u64,
    /// Delay while in SHORT_WAIT.
    short_delay: u64,
    /// Delay while in LONG_WAIT.
    long_delay: u64,
    /// Quiet time (no events) that returns the machine to QUIET.
    hold_down: u64,
    /// Time after the first event during which SHORT_WAIT lasts.
    time_to_learn: u64,
}

/// What oxr-routerd's `--check-config` and oxr-config's loader run on the section: typed
/// deserialization (unknown keys, wrong types), then [`OspfConfig::validate`].
impl SectionConfig for OspfConfig {
    fn check(&self) -> Vec<SectionError> {
        self.validate()
    }
}

/// The `protocols.ospf` schema for oxr-config's registry, derived from [`OspfConfig`]:
/// oxr-routerd registers it (`Registry::builtin().with(OspfSchema)`) to validate, deliver
/// and complete the section, and oxr-ospf registers it at start (through
/// `Runtime::protocol`) so `--config FILE` goes through the SDK's validated loader.
// A value named like the unit struct it replaces, so registries keep writing `OspfSchema`.
#[allow(non_upper_case_globals)]
pub const OspfSchema: SectionSchema<OspfConfig> = SectionSchema::new("ospf");

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
router-id = "1.1.1.1"

[areas."0.0.0.0"]
[areas."1"]
stub = true
no-summary = true

[interfaces.eth0]
area = "0.0.0.0"
type = "point-to-point"
cost = 10
authentication = { type = "hmac-sha-256", key-id = 1, key = "secret" }

[interfaces.eth1]
area = "0.0.0.1"
priority = 0
passive = true

[throttle.spf]
initial-delay = 0
short-delay = 50
long-delay = 2000
hold-down = 5000
time-to-learn = 500

[redistribute.static]
metric = 20
metric-type = 1
tag = 7
"#;

    #[test]
    fn example_parses_and_validates() {
        let c: OspfConfig = toml::from_str(EXAMPLE).unwrap();
        assert_eq!(c.validate(), vec![]);
        assert_eq!(c.interfaces["eth0"].if_type, IfType::PointToPoint);
        assert_eq!(c.interfaces["eth1"].dead_interval, 40);
        assert!(c.areas["1"].no_summary);
        assert_eq!(c.throttle.lsa, ThrottleParams::LSA_DEFAULT);
        assert_eq!(c.redistribute.static_routes.unwrap().metric_type, 1);
        assert!(matches!(
            c.interfaces["eth0"].authentication.to_auth(),
            Auth::Crypto(k) if k[0].algo == CryptoAlgo::HmacSha256 && k[0].key_id == 1
        ));
        // Round trip through TOML.
        let back: OspfConfig = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn router_id_falls_back_to_the_router_section() {
        // The `[router]` JSON exactly as oxr-routerd serializes it for WatchConfig.
        let text = "[router]\nname = \"r1\"\nrouter-id = \"10.9.9.9\"\n\
                    [protocols.ospf.areas.\"0\"]\n";
        let cfg = oxr_config::parse_and_validate_with(text, &registry()).unwrap();
        let router = serde_json::to_value(&cfg.router).unwrap();
        let section: Option<OspfConfig> = serde_json::from_value(cfg.section_json("ospf")).unwrap();
        assert_eq!(section.as_ref().unwrap().router_id, None);
        let eff = effective_config(section.as_ref(), &router)
            .unwrap()
            .unwrap();
        assert_eq!(eff.router_id, Some(Ipv4Addr::new(10, 9, 9, 9)));
        // The section's own router ID wins.
        let own = OspfConfig {
            router_id: Some(Ipv4Addr::new(1, 1, 1, 1)),
            ..OspfConfig::default()
        };
        let eff = effective_config(Some(&own), &router).unwrap().unwrap();
        assert_eq!(eff.router_id, Some(Ipv4Addr::new(1, 1, 1, 1)));
        // No router ID anywhere, or no section.
        let none = effective_config(Some(&OspfConfig::default()), &serde_json::json!({}));
        assert_eq!(none.unwrap().unwrap().router_id, None);
        assert_eq!(effective_config(None, &router), Ok(None));
        // An invalid section is refused with its errors.
        let bad = OspfConfig {
            router_id: Some(Ipv4Addr::UNSPECIFIED),
            ..OspfConfig::default()
        };
        assert_eq!(effective_config(Some(&bad), &router).unwrap_err().len(), 1);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(toml::from_str::<OspfConfig>("router-idd = \"1.1.1.1\"").is_err());
        assert!(
            toml::from_str::<OspfConfig>("[interfaces.e]\narea = \"0\"\ntype = \"nbma\"").is_err()
        );
    }

    fn paths(c: &str) -> Vec<String> {
        let c: OspfConfig = toml::from_str(c).unwrap();
        c.validate().into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn semantic_errors_name_their_paths() {
        assert_eq!(
            paths("router-id = \"0.0.0.0\"\n[areas.\"0.0.0.0\"]\nstub = true"),
            vec!["router-id", "areas.\"0.0.0.0\""]
        );
        assert_eq!(
            paths("[areas.x]\n[areas.\"0.0.0.2\"]\nstub = true\nnssa = true"),
            vec!["areas.\"0.0.0.2\".nssa", "areas.\"x\""]
        );
        assert_eq!(
            paths("[areas.\"2\"]\nno-summary = true"),
            vec!["areas.\"2\".no-summary"]
        );
        assert_eq!(
            paths("[areas.\"2\"]\nnssa-translator = \"always\""),
            vec!["areas.\"2\".nssa-translator"]
        );
        assert_eq!(
            paths("[areas.\"2\"]\nnssa = true\nno-summary = true\nnssa-translator = \"always\""),
            Vec::<String>::new()
        );
        assert_eq!(
            paths(
                "[areas.\"0\"]\n[interfaces.e0]\narea = \"9\"\ncost = 0\nhello-interval = 40\n\
                 [interfaces.e0.authentication]\ntype = \"md5\"\nkey = \"01234567890123456789\""
            ),
            vec![
                "interfaces.e0.area",
                "interfaces.e0.cost",
                "interfaces.e0.dead-interval",
                "interfaces.e0.authentication.key-id",
                "interfaces.e0.authentication.key",
            ]
        );
        assert_eq!(
            paths("[areas.\"0\"]\n[interfaces.e0]\narea = \"0\"\nauthentication = { type = \"simple\", key = \"123456789\" }"),
            vec!["interfaces.e0.authentication.key"]
        );
        assert_eq!(
            paths("[throttle.spf]\ninitial-delay = 100\nshort-delay = 50\nlong-delay = 10\nhold-down = 0\ntime-to-learn = 1\n[redistribute.bgp]\nmetric-type = 3\nmetric = 16777215"),
            vec![
                "throttle.spf",
                "throttle.spf.hold-down",
                "redistribute.bgp.metric",
                "redistribute.bgp.metric-type"
            ]
        );
    }

    #[test]
    fn check_names_the_path_and_the_reason_of_bad_sections() {
        use oxr_sdk::protocol::check_json;
        use serde_json::json;
        // A value of the wrong type: found by typed deserialization.
        let errs = check_json::<OspfConfig>(&json!({
            "areas": { "0": {} },
            "interfaces": { "eth0": { "area": "0", "cost": "ten" } },
        }));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].path, "interfaces.eth0.cost", "{errs:?}");
        assert!(errs[0].reason.contains("invalid type"), "{errs:?}");
        // A dead interval not above the hello interval: found by `check`.
        let errs = check_json::<OspfConfig>(&json!({
            "areas": { "0": {} },
            "interfaces": { "eth0": { "area": "0", "hello-interval": 10, "dead-interval": 10 } },
        }));
        assert_eq!(
            errs,
            [SectionError::new(
                "interfaces.eth0.dead-interval",
                "must be greater than hello-interval"
            )]
        );
        // A metric type OSPF does not have, under a redistributed protocol.
        let errs = check_json::<OspfConfig>(&json!({
            "redistribute": { "static": { "metric-type": 3 } },
        }));
        assert_eq!(
            errs,
            [SectionError::new(
                "redistribute.static.metric-type",
                "must be 1 or 2"
            )]
        );
    }

    fn registry() -> oxr_config::Registry {
        oxr_config::Registry::builtin().with(OspfSchema)
    }

    #[test]
    fn the_router_config_accepts_and_delivers_the_ospf_section() {
        let text = EXAMPLE
            .replace("[areas", "[protocols.ospf.areas")
            .replace("[interfaces", "[protocols.ospf.interfaces")
            .replace("[throttle", "[protocols.ospf.throttle")
            .replace("[redistribute", "[protocols.ospf.redistribute")
            .replace("router-id =", "[protocols.ospf]\nrouter-id =");
        let cfg = oxr_config::parse_and_validate_with(&text, &registry()).unwrap();
        assert_eq!(cfg.protocols.configured_names(), ["ospf"]);
        let section: Option<OspfConfig> = serde_json::from_value(cfg.section_json("ospf")).unwrap();
        let direct: OspfConfig = toml::from_str(EXAMPLE).unwrap();
        assert_eq!(section, Some(direct));
        let none: Option<OspfConfig> = serde_json::from_value(
            oxr_config::parse_and_validate_with("", &registry())
                .unwrap()
                .section_json("ospf"),
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
        let e = errs("[protocols.ospf.interfaces.eth0]\narea = \"0\"\ncots = 5\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("protocols.ospf.interfaces.eth0.cots: unknown field `cots`"),
            "{e:?}"
        );
        let e = errs(
            "[protocols.ospf.areas.\"0.0.0.0\"]\n[protocols.ospf.areas.x]\n\
             [protocols.ospf.interfaces.eth0]\narea = \"0.0.0.9\"\n",
        );
        assert_eq!(
            e,
            [
                "protocols.ospf.areas.x: area ID must be a dotted quad or a 32-bit number",
                "protocols.ospf.interfaces.eth0.area: area is not configured under areas",
            ]
        );
        let e = errs("[protocols.ospf.throttle]\nmin-ls-arrival = -1\n");
        assert!(
            e[0].starts_with("protocols.ospf.throttle.min-ls-arrival: "),
            "{e:?}"
        );
    }

    #[test]
    fn the_schema_mirrors_match_the_real_types() {
        use oxr_config::{node_kind_with, ConfigPath, NodeKind};
        let kind = |p: &str| node_kind_with(&ConfigPath::parse(p).unwrap(), &registry());
        let throttle = serde_json::to_value(ThrottleParams::SPF_DEFAULT).unwrap();
        for key in throttle.as_object().unwrap().keys() {
            let path = format!("protocols.ospf.throttle.spf.{key}");
            assert_eq!(kind(&path).unwrap(), NodeKind::Integer, "{path}");
        }
        let schema = oxr_config::schema_of::<ThrottleParamsSchema>();
        assert_eq!(
            schema["properties"].as_object().unwrap().len(),
            throttle.as_object().unwrap().len()
        );
        let if_types = oxr_config::schema_of::<IfTypeSchema>();
        let names: Vec<&str> = if_types["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v["const"].as_str())
            .collect();
        for t in [IfType::Broadcast, IfType::PointToPoint] {
            // Exhaustive: a new network type must be added to the mirror too.
            match t {
                IfType::Broadcast | IfType::PointToPoint => {}
            }
            let json = serde_json::to_value(t).unwrap();
            assert!(
                names.contains(&json.as_str().unwrap()),
                "{json} in {names:?}"
            );
        }
        assert_eq!(names.len(), 2);
        assert_eq!(
            kind("protocols.ospf.interfaces.eth0.type").unwrap(),
            NodeKind::Other
        );
        assert_eq!(
            kind("protocols.ospf.throttle.min-ls-arrival").unwrap(),
            NodeKind::Integer
        );
        assert_eq!(kind("protocols.ospf.router-id").unwrap(), NodeKind::String);
    }
}
