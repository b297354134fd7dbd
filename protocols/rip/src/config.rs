//! The `protocols.rip` configuration section.
//!
//! ```toml
//! [protocols.rip.interfaces.eth0]
//! split-horizon = "poisoned-reverse"
//! authentication = { key-id = 1, key = "secret", algorithm = "hmac-sha-256" }
//!
//! [protocols.rip.interfaces.lo]
//! passive = true
//!
//! [protocols.rip.timers]
//! update-interval = 30
//! timeout = 180
//! garbage-collection = 120
//!
//! [protocols.rip.redistribute.static]
//! metric = 2
//! ```

use std::collections::BTreeMap;

use oxr_config::{ConfigError, ConfigPath, ProtocolSchema};
use oxr_sdk::{SectionConfig, SectionError, SectionSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::packet::{Algorithm, Key, INFINITY};

/// The RIP section.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RipConfig {
    /// Interfaces running RIP, keyed by name. Their networks are announced.
    #[serde(default)]
    pub interfaces: BTreeMap<String, InterfaceConfig>,
    /// Protocol timers.
    #[serde(default)]
    pub timers: TimersConfig,
    /// Routes of other protocols to announce, keyed by protocol (`static`, `connected`, ...).
    #[serde(default)]
    pub redistribute: BTreeMap<String, RedistributeConfig>,
}

/// One RIP interface.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct InterfaceConfig {
    /// Announce the interface's networks but send and accept no packets on it.
    #[serde(default)]
    pub passive: bool,
    /// Cost added to the metric of routes learned on this interface (1-15).
    #[serde(default = "one")]
    pub cost: u8,
    /// What is sent back on the interface a route was learned from.
    #[serde(default)]
    pub split_horizon: SplitHorizon,
    /// RFC 4822 cryptographic authentication; packets without it are dropped.
    #[serde(default)]
    pub authentication: Option<AuthConfig>,
}

/// Split horizon mode (RFC 2453 3.4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SplitHorizon {
    /// Announce such routes with metric 16.
    #[default]
    PoisonedReverse,
    /// Leave such routes out.
    Simple,
    /// Announce everything everywhere (for tests of count-to-infinity).
    Off,
}

/// Cryptographic authentication of an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AuthConfig {
    /// Key ID sent and expected.
    pub key_id: u8,
    /// The shared secret.
    pub key: String,
    /// `hmac-sha-256` (default) or `keyed-md5`.
    #[serde(default)]
    pub algorithm: Algorithm,
}

impl AuthConfig {
    /// As a codec key.
    pub fn key(&self) -> Key {
        Key {
            id: self.key_id,
            algorithm: self.algorithm,
            secret: self.key.as_bytes().to_vec(),
        }
    }
}

/// Timers, in seconds (RFC 2453 3.8 defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TimersConfig {
    /// Period of full updates.
    #[serde(default = "thirty")]
    pub update_interval: u32,
    /// A learned route not refreshed for this long becomes unreachable.
    #[serde(default = "one_eighty")]
    pub timeout: u32,
    /// An unreachable route is announced (metric 16) this long, then deleted.
    #[serde(default = "one_twenty")]
    pub garbage_collection: u32,
}

impl Default for TimersConfig {
    fn default() -> Self {
        TimersConfig {
            update_interval: 30,
            timeout: 180,
            garbage_collection: 120,
        }
    }
}

/// How one protocol's routes are announced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RedistributeConfig {
    /// Metric announced (1-15).
    #[serde(default = "one")]
    pub metric: u8,
}

impl Default for RedistributeConfig {
    fn default() -> Self {
        RedistributeConfig { metric: 1 }
    }
}

fn one() -> u8 {
    1
}
fn thirty() -> u32 {
    30
}
fn one_eighty() -> u32 {
    180
}
fn one_twenty() -> u32 {
    120
}

impl RipConfig {
    /// Semantic checks beyond deserialization.
    pub fn validate(&self) -> Vec<SectionError> {
        let mut errs = Vec::new();
        let mut err = |path: String, reason: &str| errs.push(SectionError::new(path, reason));
        for (name, i) in &self.interfaces {
            if i.cost == 0 || i.cost >= INFINITY {
                err(format!("interfaces.{name}.cost"), "must be 1-15");
            }
            if i.authentication.as_ref().is_some_and(|a| a.key.is_empty()) {
                err(
                    format!("interfaces.{name}.authentication.key"),
                    "must not be empty",
                );
            }
        }
        for (p, r) in &self.redistribute {
            if r.metric == 0 || r.metric >= INFINITY {
                err(format!("redistribute.{p}.metric"), "must be 1-15");
            }
        }
        let t = &self.timers;
        if t.update_interval == 0 || t.timeout == 0 || t.garbage_collection == 0 {
            err("timers".into(), "timers must be positive");
        }
        if t.timeout <= t.update_interval {
            err(
                "timers.timeout".into(),
                "must be longer than update-interval",
            );
        }
        errs
    }
}

impl SectionConfig for RipConfig {
    fn check(&self) -> Vec<SectionError> {
        self.validate()
    }
}

/// `protocols.rip` for a registry that compiles RIP in (oxr-routerd's).
pub struct RipSchema;

const SCHEMA: SectionSchema<RipConfig> = SectionSchema::new("rip");

impl ProtocolSchema for RipSchema {
    fn name(&self) -> &'static str {
        "rip"
    }
    fn validate(&self, v: &toml::Value, at: &ConfigPath) -> Vec<ConfigError> {
        SCHEMA.validate(v, at)
    }
    fn json_schema(&self) -> serde_json::Value {
        SCHEMA.json_schema()
    }
    fn section_json(&self, v: &toml::Value) -> serde_json::Value {
        SCHEMA.section_json(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_parses_with_defaults() {
        let c: RipConfig = toml::from_str(
            r#"
            [interfaces.eth0]
            authentication = { key-id = 1, key = "s" }
            [interfaces.eth1]
            authentication = { key-id = 2, key = "t", algorithm = "keyed-md5" }
            [interfaces.eth2]
            authentication = { key-id = 2, key = "t", algorithm = "hmac-sha-256" }
            [interfaces.lo]
            passive = true
            split-horizon = "simple"
            [timers]
            update-interval = 5
            [redistribute.static]
            "#,
        )
        .unwrap();
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        let eth0 = &c.interfaces["eth0"];
        assert_eq!(eth0.cost, 1);
        assert_eq!(eth0.split_horizon, SplitHorizon::PoisonedReverse);
        assert_eq!(
            eth0.authentication.as_ref().unwrap().algorithm,
            Algorithm::HmacSha256
        );
        let algo = |i: &str| c.interfaces[i].authentication.as_ref().unwrap().algorithm;
        assert_eq!(algo("eth1"), Algorithm::KeyedMd5);
        assert_eq!(algo("eth2"), Algorithm::HmacSha256);
        assert_eq!(c.timers.timeout, 180);
        assert_eq!(c.redistribute["static"].metric, 1);
    }

    #[test]
    fn semantic_errors_name_their_path() {
        let c: RipConfig = toml::from_str(
            "[interfaces.eth0]\ncost = 16\n[redistribute.static]\nmetric = 0\n[timers]\ntimeout = 10\nupdate-interval = 10",
        )
        .unwrap();
        let paths: Vec<_> = c.validate().into_iter().map(|e| e.path).collect();
        assert_eq!(
            paths,
            [
                "interfaces.eth0.cost",
                "redistribute.static.metric",
                "timers.timeout"
            ]
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(toml::from_str::<RipConfig>("[interfaces.eth0]\npasive = true").is_err());
    }
}
