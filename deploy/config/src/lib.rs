//! The configuration of one oxr virtual router: the typed schema (the single source of truth
//! for validation, process sections and the shell's completion), whole-document validation
//! that reports every error with its path, and edits by path.
//!
//! ```toml
//! [router]
//! name = "r1"
//! router-id = "10.0.0.1"
//!
//! [interfaces.veth0]
//! address = ["10.0.12.1/24"]
//!
//! [protocols.static.route."10.9.0.0/16"]
//! via = ["10.0.12.2"]
//! ```

mod node;
mod path;
mod schema;
mod validate;

pub use node::{node_kind, NodeKind};
pub use path::{ConfigPath, PathError};
pub use schema::*;
pub use validate::{parse_and_validate, parse_toml, validate_table, ConfigError};

/// Processes every router runs, whatever its configuration.
pub const CORE_PROCESSES: &[&str] = &["fea", "rib"];

/// Protocols whose schema oxr knows.
pub const KNOWN_PROTOCOLS: &[&str] = &["static"];

/// JSON schema of the whole configuration, for the shell's completion and help.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RouterConfig)).expect("schema serializes")
}
