//! What the schema says about one configuration path: whether it exists and whether it is a
//! table, a list or a scalar. Used to give `set` immediate feedback and to turn
//! `set ... via 10.0.0.1` into a list element rather than a scalar.

use serde_json::Value as Json;

use crate::path::ConfigPath;
use crate::registry::Registry;
use crate::validate::ConfigError;

/// The shape of a node in the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// A table (fixed keys or keyed by name).
    Table,
    /// A list of scalars.
    List,
    /// A string.
    String,
    /// An integer.
    Integer,
    /// A boolean.
    Boolean,
    /// Anything else the schema allows (enums, free-form values).
    Other,
}

/// Walks the JSON schema along `path`: the kind of the node there, or an error naming the
/// first segment the schema does not know. Uses the process-wide registry's schema.
pub fn node_kind(path: &ConfigPath) -> Result<NodeKind, ConfigError> {
    node_kind_in_schema(&crate::json_schema(), path)
}

/// [`node_kind`] with `registry`'s protocols.
pub fn node_kind_with(path: &ConfigPath, registry: &Registry) -> Result<NodeKind, ConfigError> {
    node_kind_in_schema(&crate::json_schema_with(registry), path)
}

/// [`node_kind`] in a schema made by [`json_schema_with`](crate::json_schema_with) (for
/// callers that keep one instead of rebuilding it per lookup).
pub fn node_kind_in_schema(schema: &Json, path: &ConfigPath) -> Result<NodeKind, ConfigError> {
    let mut node = schema;
    for (i, seg) in path.0.iter().enumerate() {
        let branches = branches(schema, node);
        let next = branches.iter().find_map(|b| child(b, seg));
        match next {
            Some(n) => node = n,
            None => {
                let mut known: Vec<&str> = branches
                    .iter()
                    .filter_map(|b| b.get("properties").and_then(Json::as_object))
                    .flat_map(|p| p.keys().map(String::as_str))
                    .collect();
                known.sort_unstable();
                let at = ConfigPath(path.0[..=i].to_vec()).to_string();
                let reason = if known.is_empty() {
                    format!("`{seg}`: the node above is not a table")
                } else {
                    format!("unknown key `{seg}`, expected one of {}", known.join(", "))
                };
                return Err(ConfigError { path: at, reason });
            }
        }
    }
    Ok(kind(&branches(schema, node)))
}

/// The concrete alternatives of a schema node: `$ref` resolved, `anyOf`/`oneOf`/`allOf`
/// flattened, `null` alternatives (Option) dropped.
fn branches<'a>(root: &'a Json, node: &'a Json) -> Vec<&'a Json> {
    let mut out = Vec::new();
    let mut stack = vec![node];
    // Bounded: a schema's references form no cycles along one path, but guard anyway.
    let mut budget = 64;
    while let Some(n) = stack.pop() {
        budget -= 1;
        if budget == 0 {
            break;
        }
        if let Some(r) = n.get("$ref").and_then(Json::as_str) {
            if let Some(target) = resolve(root, r) {
                stack.push(target);
            }
            continue;
        }
        let mut composite = false;
        for key in ["anyOf", "oneOf", "allOf"] {
            if let Some(list) = n.get(key).and_then(Json::as_array) {
                composite = true;
                stack.extend(list.iter());
            }
        }
        if composite && n.get("type").is_none() {
            continue;
        }
        if n.get("type").and_then(Json::as_str) == Some("null") {
            continue;
        }
        out.push(n);
    }
    out
}

fn resolve<'a>(root: &'a Json, reference: &str) -> Option<&'a Json> {
    let pointer = reference.strip_prefix('#')?;
    root.pointer(pointer)
}

/// A schema that accepts anything.
static ANY: Json = Json::Bool(true);

fn child<'a>(node: &'a Json, seg: &str) -> Option<&'a Json> {
    if let Some(p) = node.get("properties").and_then(|p| p.get(seg)) {
        return Some(p);
    }
    match node.get("additionalProperties") {
        Some(Json::Bool(false)) | None => None,
        Some(Json::Bool(true)) => Some(&ANY),
        Some(schema) => Some(schema),
    }
}

fn kind(branches: &[&Json]) -> NodeKind {
    let types: Vec<&str> = branches
        .iter()
        .flat_map(|b| match b.get("type") {
            Some(Json::String(s)) => vec![s.as_str()],
            Some(Json::Array(a)) => a.iter().filter_map(Json::as_str).collect(),
            _ => vec![],
        })
        .filter(|t| *t != "null")
        .collect();
    match types.as_slice() {
        ["object", ..] => NodeKind::Table,
        ["array", ..] => NodeKind::List,
        ["integer", ..] => NodeKind::Integer,
        ["boolean", ..] => NodeKind::Boolean,
        ["string"]
            if branches
                .iter()
                .all(|b| b.get("const").is_none() && b.get("enum").is_none()) =>
        {
            NodeKind::String
        }
        _ => NodeKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(path: &str) -> Result<NodeKind, ConfigError> {
        node_kind(&ConfigPath::parse(path).unwrap())
    }

    #[test]
    fn knows_tables_lists_and_scalars() {
        assert_eq!(kind_of("protocols.static").unwrap(), NodeKind::Table);
        assert_eq!(
            kind_of(r#"protocols.static.route."10.0.0.0/8""#).unwrap(),
            NodeKind::Table
        );
        assert_eq!(
            kind_of(r#"protocols.static.route."10.0.0.0/8".via"#).unwrap(),
            NodeKind::List
        );
        assert_eq!(
            kind_of(r#"protocols.static.route."10.0.0.0/8".metric"#).unwrap(),
            NodeKind::Integer
        );
        assert_eq!(
            kind_of(r#"protocols.static.route."10.0.0.0/8".interface"#).unwrap(),
            NodeKind::String
        );
        assert_eq!(
            kind_of(r#"protocols.static.route."10.0.0.0/8".action"#).unwrap(),
            NodeKind::Other
        );
        assert_eq!(kind_of("interfaces.eth0.address").unwrap(), NodeKind::List);
        assert_eq!(kind_of("interfaces.eth0.up").unwrap(), NodeKind::Boolean);
        assert_eq!(kind_of("router.router-id").unwrap(), NodeKind::String);
        assert_eq!(kind_of("fea.fastpath.interfaces").unwrap(), NodeKind::List);
    }

    #[test]
    fn names_the_unknown_segment() {
        let e = kind_of(r#"protocols.static.route."10.0.0.0/8".gateway"#).unwrap_err();
        assert_eq!(e.path, r#"protocols.static.route."10.0.0.0/8".gateway"#);
        assert!(
            e.reason
                .starts_with("unknown key `gateway`, expected one of action,"),
            "{}",
            e.reason
        );
        let e = kind_of("protocols.bogus.x").unwrap_err();
        assert_eq!(e.path, "protocols.bogus");
        let e = kind_of("router.name.x").unwrap_err();
        assert_eq!(e.path, "router.name.x");
    }
}
