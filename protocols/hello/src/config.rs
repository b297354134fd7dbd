//! The `protocols.hello` section.
//!
//! ```toml
//! [protocols.hello]
//! hello-interval = 5        # seconds between hellos (default 5)
//! hold-time = 15            # forget a router not heard for this long (default 15)
//! [protocols.hello.interfaces.eth0]
//! ```

use std::collections::BTreeMap;

use oxr_sdk::{SectionConfig, SectionError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The section.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HelloConfig {
    /// Seconds between hellos (1-3600).
    #[serde(default = "five")]
    pub hello_interval: u32,
    /// Seconds after which a router not heard from is forgotten (more than hello-interval).
    #[serde(default = "fifteen")]
    pub hold_time: u32,
    /// Interfaces to send and hear hellos on, keyed by name.
    #[serde(default)]
    pub interfaces: BTreeMap<String, InterfaceConfig>,
}

/// One interface (no settings).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct InterfaceConfig {}

fn five() -> u32 {
    5
}

fn fifteen() -> u32 {
    15
}

impl SectionConfig for HelloConfig {
    fn check(&self) -> Vec<SectionError> {
        let mut errs = Vec::new();
        if !(1..=3600).contains(&self.hello_interval) {
            errs.push(SectionError::new("hello-interval", "must be 1-3600"));
        }
        if self.hold_time <= self.hello_interval {
            errs.push(SectionError::new(
                "hold-time",
                "must be longer than hello-interval",
            ));
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
        let c: HelloConfig = serde_json::from_value(json!({"interfaces": {"eth0": {}}})).unwrap();
        assert_eq!((c.hello_interval, c.hold_time), (5, 15));
        assert!(c.check().is_empty());
        let errs = check_json::<HelloConfig>(&json!({"hello-interval": 20}));
        assert_eq!(errs[0].path, "hold-time");
        let errs = check_json::<HelloConfig>(&json!({"interfaces": {"eth0": {"cost": 1}}}));
        assert_eq!(errs[0].path, "interfaces.eth0.cost");
        assert!(
            errs[0].reason.contains("unknown field"),
            "{}",
            errs[0].reason
        );
    }
}
