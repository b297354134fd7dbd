//! From the words a user types (`set protocols static route 10.9.0.0/16 via 10.0.12.2`) to
//! configuration paths and TOML values, by walking the JSON schema of the configuration
//! (schemars, draft 2020-12: `$defs`/`$ref`, `properties`, `additionalProperties` for tables
//! keyed by name, `items` for lists, `enum`/`oneOf` of `const` for enums).
//!
//! Everything here is pure: the schema and the candidate configuration (as JSON) come in,
//! edits and completion entries go out.

use std::fmt;

use oxr_config::ConfigPath;
use serde_json::{Map, Value};

/// The JSON schema of the configuration.
#[derive(Debug, Clone)]
pub struct Schema {
    root: Value,
}

/// Scalar value types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarType {
    String,
    Integer,
    Number,
    Boolean,
}

/// What a schema node is, once `$ref`s and `null` alternatives are looked through.
#[derive(Debug, Clone)]
pub enum Kind<'a> {
    /// A table with named properties (and possibly also free keys).
    Object {
        properties: &'a Map<String, Value>,
        additional: Option<&'a Value>,
    },
    /// A table keyed by names the user chooses (interfaces, route prefixes); the schema of
    /// each entry.
    Map(&'a Value),
    /// A list; the schema of its items.
    Array(&'a Value),
    /// One of fixed strings, each with its help.
    Enum(Vec<(String, String)>),
    /// A number, string or boolean, with the bounds the schema gives.
    Scalar {
        ty: ScalarType,
        min: Option<f64>,
        max: Option<f64>,
    },
    /// A node this walker does not understand: taken as a free value.
    Any,
}

impl<'a> Kind<'a> {
    /// A table (object or map): words go on naming children.
    pub fn is_table(&self) -> bool {
        matches!(self, Kind::Object { .. } | Kind::Map(_))
    }

    /// A short type description for help: `integer 0..255`, `list of string`, ...
    pub fn type_help(&self, schema: &'a Schema) -> String {
        match self {
            Kind::Object { .. } | Kind::Map(_) => "table".into(),
            Kind::Array(items) => format!("list of {}", schema.kind(items).type_help(schema)),
            Kind::Enum(values) => {
                let v: Vec<&str> = values.iter().map(|(v, _)| v.as_str()).collect();
                format!("one of {}", v.join(", "))
            }
            Kind::Scalar { ty, min, max } => {
                let name = match ty {
                    ScalarType::String => "string",
                    ScalarType::Integer => "integer",
                    ScalarType::Number => "number",
                    ScalarType::Boolean => "boolean",
                };
                match (min, max) {
                    (Some(lo), Some(hi)) => format!("{name} {lo}..{hi}"),
                    (Some(lo), None) if *lo == 0.0 && *ty == ScalarType::Integer => {
                        format!("{name} >= 0")
                    }
                    _ => name.into(),
                }
            }
            Kind::Any => "value".into(),
        }
    }
}

/// A path or value the schema does not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalkError {
    /// `set`/`delete` with no path at all.
    Empty,
    /// A word that names nothing at this point.
    Unknown {
        at: String,
        word: String,
        expected: Vec<String>,
    },
    /// A word that abbreviates several names.
    Ambiguous {
        at: String,
        word: String,
        candidates: Vec<String>,
    },
    /// A leaf with no value.
    MissingValue { path: String, expected: String },
    /// A value of the wrong type or out of range.
    BadValue { path: String, reason: String },
    /// Words after a complete path where none may follow.
    Unexpected { path: String, words: String },
}

fn at_text(at: &str) -> &str {
    if at.is_empty() {
        "top level"
    } else {
        at
    }
}

impl fmt::Display for WalkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalkError::Empty => f.write_str("missing configuration path"),
            WalkError::Unknown { at, word, expected } => {
                write!(f, "{}: unknown word {word:?}", at_text(at))?;
                if !expected.is_empty() {
                    write!(f, " (expected one of: {})", expected.join(", "))?;
                }
                Ok(())
            }
            WalkError::Ambiguous {
                at,
                word,
                candidates,
            } => write!(
                f,
                "{}: ambiguous word {word:?} (could be: {})",
                at_text(at),
                candidates.join(", ")
            ),
            WalkError::MissingValue { path, expected } => {
                write!(f, "{path}: missing value ({expected})")
            }
            WalkError::BadValue { path, reason } => write!(f, "{path}: {reason}"),
            WalkError::Unexpected { path, words } => {
                write!(f, "{}: unexpected {words:?}", at_text(path))
            }
        }
    }
}

impl std::error::Error for WalkError {}

/// Where a walk over words stopped.
#[derive(Debug, Clone)]
pub struct Walk<'a> {
    /// The configuration path the consumed words name.
    pub path: ConfigPath,
    /// The schema node at that path.
    pub node: &'a Value,
    /// How many words named the path; the rest are values.
    pub consumed: usize,
}

/// One `Routerd.Set` call: a path and a TOML value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetOp {
    pub path: ConfigPath,
    pub value: String,
}

/// What a completion or help list is for: the entries differ (`delete` offers only what
/// exists, `set` offers values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Set,
    Delete,
    Show,
}

/// One thing that may come next, with one line of help. A `word` in angle brackets
/// (`<name>`, `<value>`) is a placeholder for something the user types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub word: String,
    pub help: String,
}

impl Entry {
    /// A new entry.
    pub fn new(word: impl Into<String>, help: impl Into<String>) -> Self {
        Entry {
            word: word.into(),
            help: help.into(),
        }
    }

    /// Whether this is a placeholder rather than a literal word.
    pub fn is_placeholder(&self) -> bool {
        self.word.starts_with('<')
    }
}

/// The first sentence of a description, on one line (doc comments wrap).
fn first_line(s: &str) -> String {
    let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut from = 0;
    while let Some(i) = flat[from..].find(". ") {
        let end = from + i;
        let word_before = flat[..end].rsplit(' ').next().unwrap_or("");
        if !matches!(word_before, "e.g" | "i.e" | "etc") {
            return flat[..=end].to_string();
        }
        from = end + 2;
    }
    flat
}

impl Schema {
    /// Wraps a JSON schema document.
    pub fn new(root: Value) -> Self {
        Schema { root }
    }

    /// The schema of `oxr-config` compiled into this binary (used when oxr-routerd cannot
    /// be asked).
    pub fn builtin() -> Self {
        Schema::new(oxr_config::json_schema())
    }

    /// The root node.
    pub fn root(&self) -> &Value {
        &self.root
    }

    fn lookup_ref(&self, reference: &str) -> Option<&Value> {
        let name = reference
            .strip_prefix("#/$defs/")
            .or_else(|| reference.strip_prefix("#/definitions/"))?;
        self.root
            .get("$defs")
            .or_else(|| self.root.get("definitions"))?
            .get(name)
    }

    /// Looks through `$ref` and `anyOf`/`oneOf` whose other alternatives are all `null`
    /// (how an `Option<T>` is written).
    pub fn resolve<'a>(&'a self, mut node: &'a Value) -> &'a Value {
        for _ in 0..32 {
            if let Some(target) = node
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| self.lookup_ref(r))
            {
                node = target;
                continue;
            }
            let alts = node
                .get("anyOf")
                .or_else(|| node.get("oneOf"))
                .and_then(Value::as_array);
            if let Some(alts) = alts {
                let non_null: Vec<&Value> = alts
                    .iter()
                    .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
                    .collect();
                if non_null.len() == 1 && non_null[0].get("const").is_none() {
                    node = non_null[0];
                    continue;
                }
            }
            break;
        }
        node
    }

    /// What a node is.
    pub fn kind<'a>(&'a self, node: &'a Value) -> Kind<'a> {
        let n = self.resolve(node);
        if let Some(values) = n.get("enum").and_then(Value::as_array) {
            return Kind::Enum(
                values
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|v| (v.to_string(), String::new()))
                    .collect(),
            );
        }
        if let Some(alts) = n
            .get("oneOf")
            .or_else(|| n.get("anyOf"))
            .and_then(Value::as_array)
        {
            let consts: Vec<(String, String)> = alts
                .iter()
                .map(|a| self.resolve(a))
                .filter_map(|a| {
                    let c = a.get("const")?.as_str()?;
                    let help = a.get("description").and_then(Value::as_str).unwrap_or("");
                    Some((c.to_string(), first_line(help)))
                })
                .collect();
            if !consts.is_empty() {
                return Kind::Enum(consts);
            }
        }
        let ty = match n.get("type") {
            Some(Value::String(t)) => Some(t.as_str()),
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
            _ => None,
        };
        let ty = ty.or_else(|| {
            (n.get("properties").is_some() || n.get("additionalProperties").is_some())
                .then_some("object")
        });
        let bound = |k: &str| n.get(k).and_then(Value::as_f64);
        match ty {
            Some("object") => {
                let additional = n.get("additionalProperties").filter(|a| a.is_object());
                match n.get("properties").and_then(Value::as_object) {
                    Some(properties) if !properties.is_empty() => Kind::Object {
                        properties,
                        additional,
                    },
                    _ => match additional {
                        Some(a) => Kind::Map(a),
                        None => Kind::Any,
                    },
                }
            }
            Some("array") => Kind::Array(n.get("items").unwrap_or(&Value::Null)),
            Some("string") => Kind::Scalar {
                ty: ScalarType::String,
                min: None,
                max: None,
            },
            Some("integer") => Kind::Scalar {
                ty: ScalarType::Integer,
                min: bound("minimum"),
                max: bound("maximum"),
            },
            Some("number") => Kind::Scalar {
                ty: ScalarType::Number,
                min: bound("minimum"),
                max: bound("maximum"),
            },
            Some("boolean") => Kind::Scalar {
                ty: ScalarType::Boolean,
                min: None,
                max: None,
            },
            _ => Kind::Any,
        }
    }

    /// The first line of a node's description (its own, or its definition's).
    pub fn help(&self, node: &Value) -> String {
        node.get("description")
            .or_else(|| self.resolve(node).get("description"))
            .and_then(Value::as_str)
            .map(first_line)
            .unwrap_or_default()
    }

    /// Help for a property: its description, or else its type and default.
    fn property_help(&self, node: &Value) -> String {
        let help = self.help(node);
        if !help.is_empty() {
            return help;
        }
        let kind = self.kind(node);
        match self.default_text(node) {
            Some(d) => format!("{} (default {d})", kind.type_help(self)),
            None => kind.type_help(self),
        }
    }

    /// The default value of a node, as JSON text, if the schema gives one.
    fn default_text(&self, node: &Value) -> Option<String> {
        let d = node
            .get("default")
            .or_else(|| self.resolve(node).get("default"))?;
        match d {
            Value::Object(_) | Value::Array(_) | Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    /// Follows words through tables: property names (or unambiguous abbreviations of them)
    /// and map keys. Stops at the first leaf (list, enum, scalar) or when words run out.
    pub fn walk<'a>(&'a self, words: &[String]) -> Result<Walk<'a>, WalkError> {
        let mut node = &self.root;
        let mut path = ConfigPath::root();
        let mut i = 0;
        while i < words.len() {
            let word = &words[i];
            match self.kind(node) {
                Kind::Object {
                    properties,
                    additional,
                } => {
                    if let Some(child) = properties.get(word) {
                        path = path.join(word.clone());
                        node = child;
                    } else if let Some(a) = additional {
                        path = path.join(word.clone());
                        node = a;
                    } else {
                        let matches: Vec<&String> =
                            properties.keys().filter(|k| k.starts_with(word)).collect();
                        match matches.as_slice() {
                            [one] => {
                                path = path.join((*one).clone());
                                node = &properties[*one];
                            }
                            [] => {
                                return Err(WalkError::Unknown {
                                    at: path.to_string(),
                                    word: word.clone(),
                                    expected: properties.keys().cloned().collect(),
                                })
                            }
                            many => {
                                return Err(WalkError::Ambiguous {
                                    at: path.to_string(),
                                    word: word.clone(),
                                    candidates: many.iter().map(|s| s.to_string()).collect(),
                                })
                            }
                        }
                    }
                }
                Kind::Map(entry) => {
                    path = path.join(word.clone());
                    node = entry;
                }
                _ => break,
            }
            i += 1;
        }
        Ok(Walk {
            path,
            node,
            consumed: i,
        })
    }

    /// A typed word as a TOML literal for a leaf of this kind.
    fn literal(&self, kind: &Kind<'_>, word: &str, path: &ConfigPath) -> Result<String, WalkError> {
        let bad = |reason: String| WalkError::BadValue {
            path: path.to_string(),
            reason,
        };
        let value = match kind {
            Kind::Enum(values) => {
                if !values.iter().any(|(v, _)| v == word) {
                    let names: Vec<&str> = values.iter().map(|(v, _)| v.as_str()).collect();
                    return Err(bad(format!("{word:?} is not one of: {}", names.join(", "))));
                }
                toml::Value::String(word.to_string())
            }
            Kind::Scalar {
                ty: ScalarType::Integer,
                min,
                max,
            } => {
                let n: i64 = word
                    .parse()
                    .map_err(|_| bad(format!("expected an integer, got {word:?}")))?;
                let (lo, hi) = (min.unwrap_or(f64::MIN), max.unwrap_or(f64::MAX));
                if (n as f64) < lo || (n as f64) > hi {
                    return Err(bad(format!(
                        "{n} is out of range ({})",
                        kind.type_help(self)
                    )));
                }
                toml::Value::Integer(n)
            }
            Kind::Scalar {
                ty: ScalarType::Number,
                ..
            } => toml::Value::Float(
                word.parse()
                    .map_err(|_| bad(format!("expected a number, got {word:?}")))?,
            ),
            Kind::Scalar {
                ty: ScalarType::Boolean,
                ..
            } => match word {
                "true" => toml::Value::Boolean(true),
                "false" => toml::Value::Boolean(false),
                _ => return Err(bad(format!("expected true or false, got {word:?}"))),
            },
            _ => toml::Value::String(word.to_string()),
        };
        Ok(value.to_string())
    }

    /// The `Routerd.Set` calls for `set WORDS...`. `config` is the candidate as JSON: it
    /// decides whether a list exists already (then each value is appended, as routerd's
    /// `ConfigPath::set` does for a scalar) or must be created (sent as an array), and
    /// whether a table named without a value exists already (then nothing is sent, so
    /// `set protocols static` never wipes the routes under it).
    pub fn plan_set(&self, config: &Value, words: &[String]) -> Result<Vec<SetOp>, WalkError> {
        if words.is_empty() {
            return Err(WalkError::Empty);
        }
        let walk = self.walk(words)?;
        let values = &words[walk.consumed..];
        let path = walk.path;
        let kind = self.kind(walk.node);
        match &kind {
            Kind::Object { .. } | Kind::Map(_) => {
                if json_get(config, &path).is_some() {
                    Ok(Vec::new())
                } else {
                    Ok(vec![SetOp {
                        path,
                        value: "{}".into(),
                    }])
                }
            }
            Kind::Array(items) => {
                let item_kind = self.kind(items);
                if values.is_empty() {
                    return Err(WalkError::MissingValue {
                        path: path.to_string(),
                        expected: kind.type_help(self),
                    });
                }
                let literals = values
                    .iter()
                    .map(|v| self.literal(&item_kind, v, &path))
                    .collect::<Result<Vec<_>, _>>()?;
                match json_get(config, &path) {
                    Some(Value::Array(_)) => Ok(literals
                        .into_iter()
                        .map(|value| SetOp {
                            path: path.clone(),
                            value,
                        })
                        .collect()),
                    _ => Ok(vec![SetOp {
                        path,
                        value: format!("[{}]", literals.join(", ")),
                    }]),
                }
            }
            _ => match values {
                [] => Err(WalkError::MissingValue {
                    path: path.to_string(),
                    expected: kind.type_help(self),
                }),
                [one] => {
                    let value = self.literal(&kind, one, &path)?;
                    Ok(vec![SetOp { path, value }])
                }
                [_, rest @ ..] => Err(WalkError::Unexpected {
                    path: path.to_string(),
                    words: rest.join(" "),
                }),
            },
        }
    }

    /// The path for `delete WORDS...`: a table or leaf, or one element of a list
    /// (`... via 10.0.12.2`). A value after a scalar leaf is accepted and names the leaf.
    pub fn plan_delete(&self, words: &[String]) -> Result<ConfigPath, WalkError> {
        if words.is_empty() {
            return Err(WalkError::Empty);
        }
        let walk = self.walk(words)?;
        let values = &words[walk.consumed..];
        match (self.kind(walk.node), values) {
            (_, []) => Ok(walk.path),
            (Kind::Array(_), [one]) => Ok(walk.path.join(one.clone())),
            (k, [_]) if !k.is_table() => Ok(walk.path),
            (_, values) => Err(WalkError::Unexpected {
                path: walk.path.to_string(),
                words: values[1..].join(" "),
            }),
        }
    }

    /// The subtree path for `show WORDS...` (empty words: the whole configuration).
    pub fn plan_show(&self, words: &[String]) -> Result<ConfigPath, WalkError> {
        let walk = self.walk(words)?;
        if walk.consumed < words.len() {
            return Err(WalkError::Unexpected {
                path: walk.path.to_string(),
                words: words[walk.consumed..].join(" "),
            });
        }
        Ok(walk.path)
    }

    /// What may follow `words` (the words after `set`/`delete`/`show`), with help.
    /// `config` is the configuration the command acts on, for existing names and values.
    pub fn next_entries(&self, config: &Value, words: &[String], purpose: Purpose) -> Vec<Entry> {
        let Ok(walk) = self.walk(words) else {
            return Vec::new();
        };
        let existing = json_get(config, &walk.path);
        let keys_of = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default()
        };
        let kind = self.kind(walk.node);
        let values_given = words.len() - walk.consumed;
        let mut out = Vec::new();
        match &kind {
            Kind::Object {
                properties,
                additional,
            } => {
                let present = keys_of(existing);
                let mut names: Vec<&String> = properties.keys().collect();
                names.sort();
                for name in names {
                    let child = &properties[name];
                    if purpose != Purpose::Set && !present.contains(name) {
                        continue;
                    }
                    out.push(Entry::new(name.clone(), self.property_help(child)));
                }
                if let Some(a) = additional {
                    for k in present.iter().filter(|k| !properties.contains_key(*k)) {
                        out.push(Entry::new(k.clone(), self.help(a)));
                    }
                    if purpose == Purpose::Set {
                        out.push(Entry::new("<name>", self.help(walk.node)));
                    }
                }
            }
            Kind::Map(entry) => {
                for k in keys_of(existing) {
                    out.push(Entry::new(k, self.help(entry)));
                }
                if purpose == Purpose::Set {
                    let help = self.help(walk.node);
                    out.push(Entry::new("<name>", help));
                }
            }
            leaf => match purpose {
                Purpose::Show => {}
                Purpose::Delete => {
                    if values_given == 0 {
                        if let Some(Value::Array(items)) = existing {
                            for item in items {
                                out.push(Entry::new(json_scalar_text(item), ""));
                            }
                        }
                    }
                }
                Purpose::Set => {
                    let is_list = matches!(leaf, Kind::Array(_));
                    if values_given > 0 && !is_list {
                        return out;
                    }
                    let value_kind = match leaf {
                        Kind::Array(items) => self.kind(items),
                        other => other.clone(),
                    };
                    let mut help = self.help(walk.node);
                    if let Some(d) = self.default_text(walk.node) {
                        help = if help.is_empty() {
                            format!("default {d}")
                        } else {
                            format!("{help} (default {d})")
                        };
                    }
                    match &value_kind {
                        Kind::Enum(values) => {
                            for (v, h) in values {
                                out.push(Entry::new(v.clone(), h.clone()));
                            }
                        }
                        Kind::Scalar {
                            ty: ScalarType::Boolean,
                            ..
                        } => {
                            out.push(Entry::new("true", help.clone()));
                            out.push(Entry::new("false", help));
                        }
                        _ => {
                            let placeholder = format!("<{}>", kind.type_help(self));
                            out.push(Entry::new(placeholder, help));
                        }
                    }
                }
            },
        }
        out
    }
}

/// The JSON node at a configuration path.
pub fn json_get<'a>(root: &'a Value, path: &ConfigPath) -> Option<&'a Value> {
    let mut node = root;
    for seg in &path.0 {
        node = node.as_object()?.get(seg)?;
    }
    Some(node)
}

/// A scalar as a user types it.
fn json_scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn w(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    fn schema() -> Schema {
        Schema::builtin()
    }

    fn words_of(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|e| e.word.as_str()).collect()
    }

    #[test]
    fn set_of_a_new_list_sends_an_array() {
        let ops = schema()
            .plan_set(
                &json!({}),
                &w("protocols static route 10.9.0.0/16 via 10.0.12.2"),
            )
            .unwrap();
        assert_eq!(
            ops,
            [SetOp {
                path: ConfigPath::parse(r#"protocols.static.route."10.9.0.0/16".via"#).unwrap(),
                value: r#"["10.0.12.2"]"#.into(),
            }]
        );
        assert_eq!(
            ops[0].path.to_string(),
            r#"protocols.static.route."10.9.0.0/16".via"#
        );
    }

    #[test]
    fn set_on_an_existing_list_appends_each_value() {
        let cand =
            json!({"protocols": {"static": {"route": {"10.9.0.0/16": {"via": ["10.0.12.2"]}}}}});
        let ops = schema()
            .plan_set(
                &cand,
                &w("protocols static route 10.9.0.0/16 via 10.0.13.2 10.0.14.2"),
            )
            .unwrap();
        let values: Vec<&str> = ops.iter().map(|o| o.value.as_str()).collect();
        assert_eq!(values, [r#""10.0.13.2""#, r#""10.0.14.2""#]);
    }

    #[test]
    fn scalars_become_typed_toml_literals() {
        let s = schema();
        let one = |line: &str| s.plan_set(&json!({}), &w(line)).unwrap().remove(0);
        let op = one("protocols static route 10.9.0.0/16 distance 5");
        assert_eq!(op.value, "5");
        assert_eq!(
            op.path.to_string(),
            r#"protocols.static.route."10.9.0.0/16".distance"#
        );
        assert_eq!(one("interfaces veth0 up false").value, "false");
        assert_eq!(
            one("protocols static route ::/0 action blackhole").value,
            r#""blackhole""#
        );
        assert_eq!(one("router router-id 10.0.0.1").value, r#""10.0.0.1""#);
        assert_eq!(one("fea dataplane none").value, r#""none""#);
        // Interface names are map keys: anything goes, including dots.
        assert_eq!(
            one("interfaces eth0.100 mtu 1500").path.to_string(),
            r#"interfaces."eth0.100".mtu"#
        );
    }

    #[test]
    fn bad_values_name_the_path_and_reason() {
        let s = schema();
        let err = |line: &str| s.plan_set(&json!({}), &w(line)).unwrap_err().to_string();
        assert_eq!(
            err("fea route-protocol 300"),
            "fea.route-protocol: 300 is out of range (integer 0..255)"
        );
        assert_eq!(
            err("fea route-protocol x"),
            r#"fea.route-protocol: expected an integer, got "x""#
        );
        assert_eq!(
            err("fea dataplane dpdk"),
            r#"fea.dataplane: "dpdk" is not one of: kernel, none, fastpath"#
        );
        assert_eq!(
            err("protocols static route 10.0.0.0/8 metric"),
            r#"protocols.static.route."10.0.0.0/8".metric: missing value (integer >= 0)"#
        );
        assert!(err("protocols bgp")
            .starts_with(r#"protocols: unknown word "bgp" (expected one of: static)"#));
        assert!(err("r x").starts_with("top level: ambiguous word \"r\""));
        assert_eq!(s.plan_set(&json!({}), &[]).unwrap_err(), WalkError::Empty);
    }

    #[test]
    fn abbreviations_expand_when_unique() {
        let op = schema()
            .plan_set(&json!({}), &w("prot stat route 10.9.0.0/16 met 3"))
            .unwrap()
            .remove(0);
        assert_eq!(
            op.path.to_string(),
            r#"protocols.static.route."10.9.0.0/16".metric"#
        );
    }

    #[test]
    fn set_of_a_table_creates_it_only_if_missing() {
        let s = schema();
        let ops = s.plan_set(&json!({}), &w("protocols static")).unwrap();
        assert_eq!(ops[0].value, "{}");
        let existing = json!({"protocols": {"static": {"route": {}}}});
        assert!(s
            .plan_set(&existing, &w("protocols static"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn delete_paths_name_tables_leaves_and_list_elements() {
        let s = schema();
        assert_eq!(
            s.plan_delete(&w("protocols static route 10.9.0.0/16"))
                .unwrap()
                .to_string(),
            r#"protocols.static.route."10.9.0.0/16""#
        );
        assert_eq!(
            s.plan_delete(&w("protocols static route 10.9.0.0/16 via 10.0.12.2"))
                .unwrap()
                .to_string(),
            r#"protocols.static.route."10.9.0.0/16".via."10.0.12.2""#
        );
        assert_eq!(
            s.plan_delete(&w("fea dataplane none")).unwrap().to_string(),
            "fea.dataplane"
        );
        assert!(s.plan_delete(&w("fea dataplane none extra")).is_err());
        assert_eq!(
            s.plan_show(&w("protocols static")).unwrap().to_string(),
            "protocols.static"
        );
        assert!(s.plan_show(&w("fea dataplane none")).is_err());
    }

    #[test]
    fn entries_offer_properties_keys_and_enum_values() {
        let s = schema();
        let cand = json!({"interfaces": {"veth0": {"address": ["10.0.12.1/24"]}}});
        let top = s.next_entries(&cand, &[], Purpose::Set);
        assert_eq!(
            words_of(&top),
            ["fea", "interfaces", "protocols", "rib", "router"]
        );
        assert!(top
            .iter()
            .any(|e| e.word == "rib" && e.help == "oxr-rib settings."));

        let ifs = s.next_entries(&cand, &w("interfaces"), Purpose::Set);
        assert_eq!(words_of(&ifs), ["veth0", "<name>"]);

        let action = s.next_entries(
            &cand,
            &w("protocols static route 10.0.0.0/8 action"),
            Purpose::Set,
        );
        assert_eq!(words_of(&action), ["forward", "blackhole", "reject"]);
        assert_eq!(action[1].help, "Drop silently.");

        let up = s.next_entries(&cand, &w("interfaces veth0 up"), Purpose::Set);
        assert_eq!(words_of(&up), ["true", "false"]);

        let proto = s.next_entries(&cand, &w("fea route-protocol"), Purpose::Set);
        assert_eq!(words_of(&proto), ["<integer 0..255>"]);
        assert!(proto[0].help.contains("(default 201)"), "{:?}", proto[0]);

        // A scalar that has its value takes nothing more; a list takes more values.
        assert!(s
            .next_entries(&cand, &w("fea route-protocol 5"), Purpose::Set)
            .is_empty());
        let via = s.next_entries(
            &cand,
            &w("protocols static route 10.0.0.0/8 via 10.0.0.1"),
            Purpose::Set,
        );
        assert_eq!(words_of(&via), ["<list of string>"]);
    }

    #[test]
    fn delete_entries_offer_only_what_exists() {
        let s = schema();
        let cand = json!({"interfaces": {"veth0": {"address": ["10.0.12.1/24", "10.0.13.1/24"]}}});
        assert_eq!(
            words_of(&s.next_entries(&cand, &[], Purpose::Delete)),
            ["interfaces"]
        );
        assert_eq!(
            words_of(&s.next_entries(&cand, &w("interfaces"), Purpose::Delete)),
            ["veth0"]
        );
        assert_eq!(
            words_of(&s.next_entries(&cand, &w("interfaces veth0"), Purpose::Delete)),
            ["address"]
        );
        assert_eq!(
            words_of(&s.next_entries(&cand, &w("interfaces veth0 address"), Purpose::Delete)),
            ["10.0.12.1/24", "10.0.13.1/24"]
        );
    }

    #[test]
    fn help_is_the_first_sentence_or_the_type() {
        assert_eq!(
            first_line("Gateways; several make an ECMP route. A gateway not on\na connected"),
            "Gateways; several make an ECMP route."
        );
        assert_eq!(
            first_line("Addresses with prefix length, e.g. \"10.0.12.1/24\"."),
            "Addresses with prefix length, e.g. \"10.0.12.1/24\"."
        );
        let s = schema();
        let e = s.next_entries(
            &json!({}),
            &w("protocols static route 10.0.0.0/8"),
            Purpose::Set,
        );
        let metric = e.iter().find(|e| e.word == "metric").unwrap();
        assert_eq!(metric.help, "integer >= 0 (default 0)");
    }

    #[test]
    fn walker_reads_plain_enums_and_nullable_refs() {
        let s = schema();
        let eng = s.next_entries(&json!({}), &w("fea fastpath engine"), Purpose::Set);
        assert_eq!(words_of(&eng), ["xdp", "afxdp"]);
        // `protocols.static` is `anyOf [$ref StaticConfig, null]`.
        let st = s.next_entries(&json!({}), &w("protocols static"), Purpose::Set);
        assert_eq!(words_of(&st), ["route"]);
    }
}
