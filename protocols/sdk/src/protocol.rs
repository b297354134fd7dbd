//! What makes a process a protocol that oxr-routerd can validate, deliver and run without
//! being rebuilt: its config section type, and the two questions routerd asks its binary.
//!
//! ```text
//!   oxr-routerd (a config has [protocols.NAME], no compiled-in schema knows NAME)
//!     ├─ <bin-dir>/oxr-NAME --config-schema          -> stdout: the section's JSON schema
//!     └─ <bin-dir>/oxr-NAME --check-config < SECTION -> stdout: [{"path": .., "reason": ..}]
//!          (SECTION: the section as JSON; paths are relative to it; [] means valid)
//! ```
//!
//! A protocol implements [`SectionConfig`] for its section type (usually just
//! `impl SectionConfig for MyConfig {}` plus semantic checks in [`SectionConfig::check`])
//! and starts with [`Runtime::protocol`](crate::Runtime::protocol), which answers both
//! flags and registers the schema for `--config FILE`. Nothing else is needed for
//! `[protocols.NAME]` to be accepted by routerd, completed by oxrsh and delivered to the
//! process.

use std::marker::PhantomData;

use oxr_config::{ConfigError, ConfigPath, ProtocolSchema};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::process::CommonArgs;

/// A protocol's config section type.
pub trait SectionConfig: DeserializeOwned + Serialize + JsonSchema + Send + Sync + 'static {
    /// Semantic checks beyond typed deserialization, each error with its path relative to
    /// the section (`interfaces.eth0.cost`). Empty when valid.
    fn check(&self) -> Vec<SectionError> {
        Vec::new()
    }
}

/// One error in a section: where (relative to the section) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionError {
    /// Dotted path inside the section; empty for the section itself.
    pub path: String,
    /// What is wrong there.
    pub reason: String,
}

impl SectionError {
    /// An error at `path` (relative to the section).
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        SectionError {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// Typed deserialization plus [`SectionConfig::check`] of a section given as TOML.
pub fn check_toml<T: SectionConfig>(value: &toml::Value) -> Vec<SectionError> {
    match oxr_config::deserialize_at::<T>(value, &ConfigPath::root()) {
        Ok(cfg) => cfg.check(),
        Err(e) => vec![SectionError::new(e.path, e.reason)],
    }
}

/// The same for a section given as JSON (what `--check-config` reads).
pub fn check_json<T: SectionConfig>(value: &serde_json::Value) -> Vec<SectionError> {
    match toml::Value::try_from(value) {
        Ok(v) => check_toml::<T>(&v),
        Err(e) => vec![SectionError::new("", format!("not a config section: {e}"))],
    }
}

/// The JSON schema of a section type, as `--config-schema` prints it.
pub fn schema_json<T: SectionConfig>() -> serde_json::Value {
    oxr_config::schema_of::<T>()
}

/// A [`ProtocolSchema`] made from a [`SectionConfig`]: what a protocol registers with
/// oxr-config (done by [`Runtime::protocol`](crate::Runtime::protocol)), or what a
/// registry that compiles the protocol in uses (`Registry::builtin().with(..)`).
pub struct SectionSchema<T> {
    name: &'static str,
    _section: PhantomData<fn() -> T>,
}

impl<T> SectionSchema<T> {
    /// The schema of section `protocols.<name>`.
    pub const fn new(name: &'static str) -> Self {
        SectionSchema {
            name,
            _section: PhantomData,
        }
    }
}

impl<T: SectionConfig> ProtocolSchema for SectionSchema<T> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn validate(&self, value: &toml::Value, at: &ConfigPath) -> Vec<ConfigError> {
        check_toml::<T>(value)
            .into_iter()
            .map(|e| absolute(at, e))
            .collect()
    }

    fn json_schema(&self) -> serde_json::Value {
        schema_json::<T>()
    }

    fn section_json(&self, value: &toml::Value) -> serde_json::Value {
        oxr_config::section_json_of::<T>(value)
    }
}

/// A section error as a router config error at its full path below `at`.
pub fn absolute(at: &ConfigPath, e: SectionError) -> ConfigError {
    let path = if e.path.is_empty() {
        at.to_string()
    } else {
        match ConfigPath::parse(&e.path) {
            Ok(rel) => ConfigPath([at.0.clone(), rel.0].concat()).to_string(),
            Err(_) => format!("{at}.{}", e.path),
        }
    };
    ConfigError {
        path,
        reason: e.reason,
    }
}

/// What to do for `--config-schema` / `--check-config`: the text to print on stdout and
/// the exit status (0: valid, 1: errors printed, 2: unreadable input), or None when
/// neither flag was given and the process should run. `stdin` is read only for
/// `--check-config`.
pub fn answer_schema_flags<T: SectionConfig>(
    args: &CommonArgs,
    stdin: impl FnOnce() -> std::io::Result<String>,
) -> Option<(String, i32)> {
    if args.config_schema {
        let schema = serde_json::to_string_pretty(&schema_json::<T>()).unwrap_or_default();
        return Some((schema + "\n", 0));
    }
    if !args.check_config {
        return None;
    }
    let input = match stdin() {
        Ok(s) => s,
        Err(e) => {
            let errs = [SectionError::new("", format!("reading stdin: {e}"))];
            return Some((json_line(&errs), 2));
        }
    };
    let value: serde_json::Value = match serde_json::from_str(&input) {
        Ok(v) => v,
        Err(e) => {
            let errs = [SectionError::new("", format!("stdin is not JSON: {e}"))];
            return Some((json_line(&errs), 2));
        }
    };
    let errs = check_json::<T>(&value);
    let code = i32::from(!errs.is_empty());
    Some((json_line(&errs), code))
}

fn json_line(errs: &[SectionError]) -> String {
    serde_json::to_string(errs).unwrap_or_else(|_| "[]".into()) + "\n"
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use clap::Parser;

    #[derive(Debug, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "kebab-case", deny_unknown_fields)]
    struct Demo {
        #[serde(default)]
        interfaces: BTreeMap<String, Iface>,
    }

    #[derive(Debug, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "kebab-case", deny_unknown_fields)]
    struct Iface {
        #[serde(default = "one")]
        cost: u8,
    }

    fn one() -> u8 {
        1
    }

    impl SectionConfig for Demo {
        fn check(&self) -> Vec<SectionError> {
            self.interfaces
                .iter()
                .filter(|(_, i)| i.cost == 0)
                .map(|(n, _)| {
                    let path = ConfigPath::root().join("interfaces").join(n.clone());
                    SectionError::new(path.join("cost").to_string(), "must be 1-255")
                })
                .collect()
        }
    }

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        common: CommonArgs,
    }

    fn args(a: &[&str]) -> CommonArgs {
        Args::parse_from(std::iter::once("x").chain(a.iter().copied())).common
    }

    #[test]
    fn check_config_prints_relative_paths_and_reasons() {
        let run = |input: &str| {
            answer_schema_flags::<Demo>(&args(&["--check-config"]), || Ok(input.to_string()))
                .unwrap()
        };
        assert_eq!(run(r#"{"interfaces": {"eth0": {}}}"#), ("[]\n".into(), 0));
        let (out, code) = run(r#"{"interfaces": {"eth0": {"colour": 1}}}"#);
        assert_eq!(code, 1);
        let errs: Vec<SectionError> = serde_json::from_str(&out).unwrap();
        assert_eq!(errs[0].path, "interfaces.eth0.colour");
        assert!(errs[0].reason.contains("unknown field `colour`"), "{out}");
        let (out, code) = run(r#"{"interfaces": {"eth0": {"cost": 0}}}"#);
        assert_eq!(code, 1);
        assert!(out.contains(r#""path":"interfaces.eth0.cost","reason":"must be 1-255""#));
        assert_eq!(run("nope").1, 2);
    }

    #[test]
    fn config_schema_prints_the_section_schema_and_no_flag_runs() {
        let (out, code) =
            answer_schema_flags::<Demo>(&args(&["--config-schema"]), || unreachable!()).unwrap();
        assert_eq!(code, 0);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(v["properties"]["interfaces"].is_object(), "{v}");
        assert!(answer_schema_flags::<Demo>(&args(&[]), || unreachable!()).is_none());
    }

    #[test]
    fn section_schema_validates_at_full_paths() {
        let schema = SectionSchema::<Demo>::new("demo");
        let at = ConfigPath::parse("protocols.demo").unwrap();
        let v: toml::Value = toml::from_str("[interfaces.\"eth0.5\"]\ncost = 0\n").unwrap();
        let errs = schema.validate(&v, &at);
        assert_eq!(
            errs[0].to_string(),
            "protocols.demo.interfaces.\"eth0.5\".cost: must be 1-255"
        );
        assert_eq!(
            schema.section_json(&toml::from_str("[interfaces.eth0]\n").unwrap()),
            serde_json::json!({"interfaces": {"eth0": {"cost": 1}}})
        );
    }
}
