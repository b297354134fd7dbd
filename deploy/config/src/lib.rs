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
//!
//! The built-in protocol (`static`) is typed here; every other protocol brings its section's
//! schema as a [`ProtocolSchema`] in a [`Registry`] (whose docs say who builds which): the
//! `*_with(&Registry)` functions validate, describe and deliver it; the plain functions use
//! the process-wide registry ([`Registry::global`], built-ins plus [`register`]ed schemas).

mod node;
mod path;
mod registry;
mod schema;
mod validate;

pub use node::{node_kind, node_kind_in_schema, node_kind_with, NodeKind};
pub use path::{ConfigPath, PathError};
pub use registry::{
    deserialize_at, register, schema_of, section_json_of, ProtocolSchema, Registry, RegistryError,
    SchemaResolver,
};
pub use schema::*;
pub use validate::{
    parse_and_validate, parse_and_validate_with, parse_toml, validate_table, validate_table_with,
    ConfigError,
};

/// Processes every router runs, whatever its configuration.
pub const CORE_PROCESSES: &[&str] = &["fea", "rib"];

/// Protocols built into this crate's schema; others come from a [`Registry`].
pub const KNOWN_PROTOCOLS: &[&str] = &["static"];

/// JSON schema of the whole configuration with the process-wide registry's protocols
/// ([`Registry::global`]), for the shell's completion and help.
pub fn json_schema() -> serde_json::Value {
    json_schema_with(&Registry::global())
}

/// JSON schema of the whole configuration, each protocol of `registry` under
/// `protocols.<name>` (its types in `$defs` as `<name>.<Type>`).
pub fn json_schema_with(registry: &Registry) -> serde_json::Value {
    let mut root =
        serde_json::to_value(schemars::schema_for!(RouterConfig)).expect("schema serializes");
    for name in registry.registered() {
        if let Some(schema) = registry.get(name) {
            registry::insert_protocol_schema(&mut root, name, &schema.json_schema());
        }
    }
    root
}
