//! The `protocols.template` section.
//!
//! ```toml
//! [protocols.template]
//! hello-interval = 5                       # seconds between hellos (default 5)
//! [protocols.template.interfaces.eth0]     # send and hear hellos here
//! [protocols.template.route."10.99.0.0/24"]
//! via = "10.0.12.2"                        # published to the RIB
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use oxr_sdk::{SectionConfig, SectionError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The section. `deny_unknown_fields` everywhere: a typo is an error with its path.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TemplateConfig {
    /// Seconds between hellos on each interface (1-3600).
    #[serde(default = "default_hello_interval")]
    pub hello_interval: u32,
    /// Interfaces the protocol runs on, keyed by name.
    #[serde(default)]
    pub interfaces: BTreeMap<String, InterfaceConfig>,
    /// Routes to publish, keyed by prefix.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RouteConfig>")]
    pub route: BTreeMap<IpNet, RouteConfig>,
}

/// One interface (no settings yet: add yours here).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct InterfaceConfig {}

/// One published route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RouteConfig {
    /// The gateway.
    pub via: IpAddr,
    /// Metric (default 1).
    #[serde(default = "one")]
    pub metric: u32,
}

fn default_hello_interval() -> u32 {
    5
}

fn one() -> u32 {
    1
}

impl SectionConfig for TemplateConfig {
    fn check(&self) -> Vec<SectionError> {
        let mut errs = Vec::new();
        if !(1..=3600).contains(&self.hello_interval) {
            errs.push(SectionError::new("hello-interval", "must be 1-3600"));
        }
        for (prefix, r) in &self.route {
            if prefix.addr() != prefix.network() {
                errs.push(SectionError::new(
                    format!("route.\"{prefix}\""),
                    "host bits set",
                ));
            }
            if r.via.is_ipv4() != prefix.addr().is_ipv4() {
                errs.push(SectionError::new(
                    format!("route.\"{prefix}\".via"),
                    "gateway of the other address family",
                ));
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxr_sdk::protocol::check_json;
    use serde_json::json;

    #[test]
    fn defaults_and_errors_with_paths() {
        let ok =
            json!({"interfaces": {"eth0": {}}, "route": {"10.99.0.0/24": {"via": "10.0.12.2"}}});
        assert!(check_json::<TemplateConfig>(&ok).is_empty());
        let c: TemplateConfig = serde_json::from_value(ok).unwrap();
        assert_eq!(c.hello_interval, 5);
        let bad = json!({"hello-interval": 0, "route": {"10.99.0.1/24": {"via": "2001:db8::1"}}});
        let paths: Vec<String> = check_json::<TemplateConfig>(&bad)
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(
            paths,
            [
                "hello-interval",
                "route.\"10.99.0.1/24\"",
                "route.\"10.99.0.1/24\".via"
            ]
        );
        let typo = check_json::<TemplateConfig>(&json!({"interfaces": {"eth0": {"cost": 1}}}));
        assert_eq!(typo[0].path, "interfaces.eth0.cost");
    }
}
