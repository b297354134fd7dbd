//! The configuration store: the running document, one shared candidate, and numbered
//! revisions. Pure: no I/O, no clock (callers pass the time); [`crate::revisions`] persists.
//!
//! Semantics (what the shell's configure mode sees):
//! - `set PATH VALUE`: VALUE is TOML (`5`, `true`, `"eth0"`, `["a", "b"]`); a bare word
//!   that is not TOML is a string. On a list node a scalar is appended (once); an array
//!   replaces the list. The path must exist in the schema.
//! - `delete PATH`: removes the node; `delete ...via."10.0.0.1"` removes one list element;
//!   tables left empty are removed.
//! - `commit`: validates the whole candidate; any error -> nothing changes. A candidate equal
//!   to running commits nothing and answers the running revision.
//! - `rollback N`: revision N's document, validated, becomes running as a new revision; the
//!   candidate is replaced by it.

use oxr_config::{
    json_schema_with, node_kind_in_schema, validate_table_with, ConfigError, ConfigPath, NodeKind,
    Registry, RouterConfig,
};
use toml::{Table, Value};

/// One committed revision.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RevisionInfo {
    /// 1 for the startup configuration, then one more per commit or rollback.
    pub number: u64,
    /// Seconds since the Unix epoch.
    pub unix_time: i64,
    /// The commit's comment; "startup: FILE" and "rollback to N" for routerd's own.
    pub comment: String,
}

/// A validated commit, not yet applied (so the caller can persist it first).
#[derive(Debug, Clone)]
pub struct PendingCommit {
    /// The revision it will be.
    pub info: RevisionInfo,
    /// The document that becomes running.
    pub table: Table,
    /// The same, typed (validated).
    pub config: RouterConfig,
    /// The document as stored in the revision file.
    pub text: String,
}

/// What a commit changed.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The new running revision.
    pub revision: u64,
    /// Running before the commit.
    pub old: RouterConfig,
    /// Running now.
    pub new: RouterConfig,
}

/// Running configuration, candidate and revision history of one router.
#[derive(Debug, Clone)]
pub struct ConfigStore {
    running: Table,
    running_config: RouterConfig,
    candidate: Table,
    revisions: Vec<RevisionInfo>,
    /// Text of every revision, by number (configurations are small).
    texts: std::collections::BTreeMap<u64, String>,
    current: u64,
    /// The protocols this router knows, and the schema they make (built once: `set`
    /// consults it for every edit).
    registry: Registry,
    schema: serde_json::Value,
}

fn error(path: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.into(),
        reason: reason.into(),
    }
}

/// The TOML text of a document, as shown, compared and stored.
pub fn to_text(table: &Table) -> String {
    toml::to_string(table).expect("a TOML table serializes")
}

/// Parses a value as typed after `set PATH`: TOML, or a bare word taken as a string.
pub fn parse_value(text: &str) -> Result<Value, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("missing value".into());
    }
    if let Ok(mut doc) = format!("v = {text}").parse::<Table>() {
        if doc.len() == 1 {
            if let Some(v) = doc.remove("v") {
                return Ok(v);
            }
        }
    }
    let word_like = !text
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '[' | ']' | '{' | '}' | '=' | '#'));
    if word_like {
        Ok(Value::String(text.to_string()))
    } else {
        Err(format!(
            "`{text}` is not a TOML value (quote strings: \"...\")"
        ))
    }
}

/// Adapts a parsed value to what the schema expects at the node: a scalar set on a list
/// becomes a one-element list (or is appended by [`ConfigPath::set`]); a number or boolean
/// typed where a string is expected becomes that string (`interface = 10` -> `"10"`).
fn fit_to_schema(kind: NodeKind, existing: Option<&Value>, value: Value) -> Value {
    let scalar = !matches!(value, Value::Array(_) | Value::Table(_));
    match kind {
        NodeKind::List if scalar && !matches!(existing, Some(Value::Array(_))) => {
            Value::Array(vec![value])
        }
        NodeKind::String => match value {
            Value::Integer(i) => Value::String(i.to_string()),
            Value::Float(f) => Value::String(f.to_string()),
            Value::Boolean(b) => Value::String(b.to_string()),
            other => other,
        },
        _ => value,
    }
}

impl ConfigStore {
    /// A store whose running configuration (revision 1) is `initial`, which must validate
    /// against routerd's [`registry`](crate::registry).
    pub fn new(initial: Table, unix_time: i64, comment: &str) -> Result<Self, Vec<ConfigError>> {
        Self::with_registry(initial, unix_time, comment, crate::registry())
    }

    /// [`ConfigStore::new`] with an explicit protocol registry.
    pub fn with_registry(
        initial: Table,
        unix_time: i64,
        comment: &str,
        registry: Registry,
    ) -> Result<Self, Vec<ConfigError>> {
        let config = validate_table_with(&initial, &registry)?;
        let info = RevisionInfo {
            number: 1,
            unix_time,
            comment: comment.to_string(),
        };
        let mut texts = std::collections::BTreeMap::new();
        texts.insert(1, to_text(&initial));
        Ok(ConfigStore {
            candidate: initial.clone(),
            running: initial,
            running_config: config,
            revisions: vec![info],
            texts,
            current: 1,
            schema: json_schema_with(&registry),
            registry,
        })
    }

    /// The protocols this store validates.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// JSON schema of the configuration, registered protocols included (the `Schema` RPC).
    pub fn json_schema(&self) -> &serde_json::Value {
        &self.schema
    }

    /// The running document.
    pub fn running(&self) -> &Table {
        &self.running
    }

    /// The running configuration, typed.
    pub fn running_config(&self) -> &RouterConfig {
        &self.running_config
    }

    /// The candidate document.
    pub fn candidate(&self) -> &Table {
        &self.candidate
    }

    /// Number of the running revision.
    pub fn current_revision(&self) -> u64 {
        self.current
    }

    /// Every revision, oldest first.
    pub fn revisions(&self) -> &[RevisionInfo] {
        &self.revisions
    }

    /// The stored text of revision `n`.
    pub fn revision_text(&self, n: u64) -> Option<&str> {
        self.texts.get(&n).map(String::as_str)
    }

    /// Whether the candidate differs from running.
    pub fn has_changes(&self) -> bool {
        self.candidate != self.running
    }

    /// `set PATH VALUE` on the candidate.
    pub fn set(&mut self, path: &str, value: &str) -> Result<(), ConfigError> {
        let p = ConfigPath::parse(path).map_err(|e| error(path, e.to_string()))?;
        let kind = node_kind_in_schema(&self.schema, &p)?;
        let value = parse_value(value).map_err(|r| error(p.to_string(), r))?;
        if kind == NodeKind::Table && !matches!(value, Value::Table(_)) {
            return Err(error(
                p.to_string(),
                format!(
                    "is a table; set one of its keys, not a {}",
                    value.type_str()
                ),
            ));
        }
        let value = fit_to_schema(kind, p.get(&self.candidate), value);
        p.set(&mut self.candidate, value)
            .map_err(|e| error(p.to_string(), e.to_string()))
    }

    /// `delete PATH` on the candidate.
    pub fn delete(&mut self, path: &str) -> Result<(), ConfigError> {
        let p = ConfigPath::parse(path).map_err(|e| error(path, e.to_string()))?;
        p.delete(&mut self.candidate).map_err(|e| match e {
            oxr_config::PathError::NotFound(_) => error(p.to_string(), "no such node"),
            other => error(p.to_string(), other.to_string()),
        })
    }

    /// Replaces the candidate with a whole document (`format` "toml" or "json"); it is
    /// validated at commit, only its syntax here.
    pub fn load_candidate(&mut self, text: &str, format: &str) -> Result<(), ConfigError> {
        let table = match format {
            "" | "toml" => oxr_config::parse_toml(text)?,
            "json" => {
                serde_json::from_str::<Table>(text).map_err(|e| error("", format!("JSON: {e}")))?
            }
            other => {
                return Err(error(
                    "",
                    format!("unknown format `{other}` (toml or json)"),
                ))
            }
        };
        self.candidate = table;
        Ok(())
    }

    /// Drops the candidate's changes.
    pub fn discard(&mut self) {
        self.candidate = self.running.clone();
    }

    /// Validates the whole candidate.
    pub fn validate(&self) -> Result<RouterConfig, Vec<ConfigError>> {
        validate_table_with(&self.candidate, &self.registry)
    }

    /// Unified diff from running to candidate ("" when equal).
    pub fn compare(&self) -> String {
        let old = to_text(&self.running);
        let new = to_text(&self.candidate);
        if old == new {
            return String::new();
        }
        similar::TextDiff::from_lines(&old, &new)
            .unified_diff()
            .context_radius(3)
            .header("running", "candidate")
            .to_string()
    }

    fn pending(
        &self,
        table: Table,
        config: RouterConfig,
        unix_time: i64,
        comment: String,
    ) -> PendingCommit {
        let number = self.revisions.last().map_or(0, |r| r.number) + 1;
        PendingCommit {
            info: RevisionInfo {
                number,
                unix_time,
                comment,
            },
            text: to_text(&table),
            table,
            config,
        }
    }

    /// Validates the candidate for commit: `Ok(None)` if it equals running (nothing to
    /// commit), the pending revision if valid, every error otherwise.
    pub fn prepare_commit(
        &self,
        comment: &str,
        unix_time: i64,
    ) -> Result<Option<PendingCommit>, Vec<ConfigError>> {
        let config = self.validate()?;
        if !self.has_changes() {
            return Ok(None);
        }
        Ok(Some(self.pending(
            self.candidate.clone(),
            config,
            unix_time,
            comment.to_string(),
        )))
    }

    /// Validates revision `n` for rollback: `Ok(None)` if it equals running.
    pub fn prepare_rollback(
        &self,
        n: u64,
        unix_time: i64,
    ) -> Result<Option<PendingCommit>, Vec<ConfigError>> {
        let text = self
            .revision_text(n)
            .ok_or_else(|| vec![error("", format!("no revision {n}"))])?;
        let table = oxr_config::parse_toml(text).map_err(|mut e| {
            e.reason = format!("revision {n}: {}", e.reason);
            vec![e]
        })?;
        let config = validate_table_with(&table, &self.registry)?;
        if table == self.running {
            return Ok(None);
        }
        Ok(Some(self.pending(
            table,
            config,
            unix_time,
            format!("rollback to {n}"),
        )))
    }

    /// Makes a prepared revision running (and the candidate).
    pub fn apply(&mut self, pending: PendingCommit) -> Committed {
        let old = std::mem::replace(&mut self.running_config, pending.config.clone());
        self.current = pending.info.number;
        self.texts.insert(pending.info.number, pending.text);
        self.revisions.push(pending.info);
        self.candidate = pending.table.clone();
        self.running = pending.table;
        Committed {
            revision: self.current,
            old,
            new: pending.config,
        }
    }

    /// Validates and applies the candidate: the new revision (or the running one if
    /// nothing changed), or every error with running untouched.
    pub fn commit(
        &mut self,
        comment: &str,
        unix_time: i64,
    ) -> Result<Option<Committed>, Vec<ConfigError>> {
        Ok(self
            .prepare_commit(comment, unix_time)?
            .map(|p| self.apply(p)))
    }

    /// Rolls back to revision `n` as a new revision.
    pub fn rollback(
        &mut self,
        n: u64,
        unix_time: i64,
    ) -> Result<Option<Committed>, Vec<ConfigError>> {
        Ok(self.prepare_rollback(n, unix_time)?.map(|p| self.apply(p)))
    }
}

/// The subtree at `path` of `table` ("" for all), as a TOML document that keeps the
/// subtree's full path (so it reads in context and loads back), or as JSON of the node.
pub fn render(table: &Table, path: &str, format: &str) -> Result<String, ConfigError> {
    let (node, wrapped) = if path.trim().is_empty() {
        (Value::Table(table.clone()), table.clone())
    } else {
        let p = ConfigPath::parse(path).map_err(|e| error(path, e.to_string()))?;
        let node = p
            .get(table)
            .cloned()
            .ok_or_else(|| error(p.to_string(), "no such node"))?;
        let mut wrapped = Table::new();
        p.set(&mut wrapped, node.clone())
            .map_err(|e| error(p.to_string(), e.to_string()))?;
        (node, wrapped)
    };
    match format {
        "" | "toml" => Ok(to_text(&wrapped)),
        "json" => Ok(serde_json::to_string_pretty(&node).expect("TOML values serialize to JSON")),
        other => Err(error(
            "",
            format!("unknown format `{other}` (toml or json)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
        [router]
        name = "r1"
        [interfaces.veth0]
        address = ["10.0.12.1/24"]
    "#;

    fn store() -> ConfigStore {
        ConfigStore::new(BASE.parse().unwrap(), 1000, "startup").unwrap()
    }

    #[test]
    fn values_are_toml_or_bare_words() {
        assert_eq!(parse_value("5").unwrap(), Value::Integer(5));
        assert_eq!(parse_value("true").unwrap(), Value::Boolean(true));
        assert_eq!(
            parse_value("\"eth0\"").unwrap(),
            Value::String("eth0".into())
        );
        assert_eq!(
            parse_value("10.0.0.1").unwrap(),
            Value::String("10.0.0.1".into())
        );
        assert_eq!(
            parse_value("2001:db8::1").unwrap(),
            Value::String("2001:db8::1".into())
        );
        assert_eq!(
            parse_value("blackhole").unwrap(),
            Value::String("blackhole".into())
        );
        assert_eq!(
            parse_value(r#"["10.0.0.1", "10.0.0.2"]"#)
                .unwrap()
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert!(parse_value("two words").is_err());
        assert!(
            parse_value("1\nx = 2").is_err(),
            "no smuggling of extra keys"
        );
        assert!(parse_value("").is_err());
    }

    #[test]
    fn set_appends_to_lists_and_commit_makes_a_revision() {
        let mut s = store();
        let via = r#"protocols.static.route."10.9.0.0/16".via"#;
        s.set(via, "10.0.12.2").unwrap();
        s.set(via, "10.0.12.3").unwrap();
        s.set(via, "10.0.12.3").unwrap();
        s.set(r#"protocols.static.route."10.9.0.0/16".metric"#, "7")
            .unwrap();
        assert!(
            s.compare()
                .contains("+via = [\"10.0.12.2\", \"10.0.12.3\"]"),
            "{}",
            s.compare()
        );
        assert!(s.compare().starts_with("--- running\n+++ candidate\n"));
        let c = s.commit("add route", 1001).unwrap().unwrap();
        assert_eq!(c.revision, 2);
        assert!(c.old.protocols.static_routes.is_none());
        let st = c.new.protocols.static_routes.unwrap();
        let route = st.route.values().next().unwrap();
        assert_eq!(route.via.len(), 2);
        assert_eq!(route.metric, 7);
        assert_eq!(s.compare(), "");
        assert_eq!(s.revisions().len(), 2);
        assert_eq!(s.revisions()[1].comment, "add route");
        assert_eq!(s.revisions()[1].unix_time, 1001);
    }

    #[test]
    fn set_refuses_unknown_paths_and_scalars_on_tables() {
        let mut s = store();
        let e = s
            .set(
                r#"protocols.static.route."10.9.0.0/16".gateway"#,
                "10.0.0.1",
            )
            .unwrap_err();
        assert!(e.reason.starts_with("unknown key `gateway`"), "{e}");
        let e = s.set("protocols.static", "1").unwrap_err();
        assert!(e.reason.contains("is a table"), "{e}");
        let e = s.set("router.name", "two words").unwrap_err();
        assert_eq!(e.path, "router.name");
        assert!(!s.has_changes());
        // A number where a string is expected is that string.
        s.set(r#"protocols.static.route."10.9.0.0/16".interface"#, "10")
            .unwrap();
        let p = ConfigPath::parse(r#"protocols.static.route."10.9.0.0/16".interface"#).unwrap();
        assert_eq!(p.get(s.candidate()).unwrap().as_str(), Some("10"));
    }

    #[test]
    fn commit_with_errors_changes_nothing_and_lists_every_error() {
        let mut s = store();
        let before = s.running().clone();
        s.load_candidate(
            r#"
            [router]
            name = "r1"
            colour = "blue"
            [protocols.static.route."10.9.0.0/33"]
            via = ["10.0.12.2"]
            [protocols.static.route."10.8.0.0/16"]
            via = ["not-an-address"]
            [protocols.static.route."10.7.0.0/16"]
            via = ["10.0.12.2"]
            [protocols.static.route."2001:db8::/32"]
            interface = "veth0"
            [protocols.static.route."2001:0db8::/32"]
            interface = "veth0"
            "#,
            "toml",
        )
        .unwrap();
        let errs = s.commit("bad", 1001).unwrap_err();
        let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert!(
            text.iter()
                .any(|e| e.starts_with("router.colour: unknown field `colour`")),
            "{text:#?}"
        );
        assert!(
            text.iter().any(
                |e| e.starts_with(r#"protocols.static.route."10.9.0.0/33": "#)
                    && e.contains("not a prefix")
            ),
            "{text:#?}"
        );
        assert!(
            text.iter().any(|e| e
                .starts_with(r#"protocols.static.route."10.8.0.0/16".via[0]: invalid IP address"#)),
            "{text:#?}"
        );
        assert!(
            text.contains(
                &r#"protocols.static.route."2001:0db8::/32": duplicate of route "2001:db8::/32""#
                    .to_string()
            ),
            "{text:#?}"
        );
        assert_eq!(text.len(), 4, "{text:#?}");
        assert_eq!(s.running(), &before);
        assert_eq!(s.current_revision(), 1);
        assert_eq!(s.revisions().len(), 1);
        assert!(
            s.has_changes(),
            "the candidate keeps the user's edits to fix"
        );
    }

    #[test]
    fn duplicate_prefix_spellings_are_refused_at_commit() {
        let mut s = store();
        s.set(
            r#"protocols.static.route."2001:db8::/32".interface"#,
            "veth0",
        )
        .unwrap();
        s.set(
            r#"protocols.static.route."2001:0db8::/32".interface"#,
            "veth0",
        )
        .unwrap();
        let errs = s.commit("", 1).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].reason.contains("duplicate"), "{}", errs[0]);
    }

    #[test]
    fn unchanged_commit_makes_no_revision() {
        let mut s = store();
        assert!(s.commit("noop", 5).unwrap().is_none());
        assert_eq!(s.revisions().len(), 1);
    }

    #[test]
    fn rollback_commits_an_old_revision_as_a_new_one() {
        let mut s = store();
        s.set(
            r#"protocols.static.route."10.9.0.0/16".action"#,
            "blackhole",
        )
        .unwrap();
        assert_eq!(s.commit("r2", 2).unwrap().unwrap().revision, 2);
        s.delete(r#"protocols.static.route."10.9.0.0/16""#).unwrap();
        assert!(
            s.candidate().get("protocols").is_none(),
            "empty parents pruned"
        );
        s.set("rib.ecmp-width", "4").unwrap();
        assert_eq!(s.commit("r3", 3).unwrap().unwrap().revision, 3);
        // An uncommitted edit is dropped by the rollback.
        s.set("rib.stale-hold-secs", "10").unwrap();
        let c = s.rollback(2, 4).unwrap().unwrap();
        assert_eq!(c.revision, 4);
        assert!(c.new.protocols.static_routes.is_some());
        assert_eq!(c.new.rib.ecmp_width, 8);
        assert_eq!(s.revisions()[3].comment, "rollback to 2");
        assert!(!s.has_changes());
        assert_eq!(s.revision_text(4), s.revision_text(2));
        assert!(
            s.rollback(4, 5).unwrap().is_none(),
            "rollback to running is a no-op"
        );
        assert!(s.rollback(99, 5).unwrap_err()[0]
            .reason
            .contains("no revision 99"));
    }

    #[test]
    fn discard_and_delete_errors() {
        let mut s = store();
        s.set("rib.ecmp-width", "2").unwrap();
        assert!(s.has_changes());
        s.discard();
        assert!(!s.has_changes());
        let e = s.delete("rib.ecmp-width").unwrap_err();
        assert_eq!(e.to_string(), "rib.ecmp-width: no such node");
        s.delete(r#"interfaces.veth0.address."10.0.12.1/24""#)
            .unwrap();
        assert!(s.candidate().get("interfaces").is_none());
        assert!(s
            .load_candidate("[[", "toml")
            .unwrap_err()
            .reason
            .starts_with("TOML syntax"));
    }

    #[test]
    fn renders_subtrees_in_context() {
        let s = store();
        let t = render(s.running(), "interfaces.veth0", "toml").unwrap();
        assert_eq!(t.trim(), "[interfaces.veth0]\naddress = [\"10.0.12.1/24\"]");
        let j = render(s.running(), "interfaces.veth0.address", "json").unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&j).unwrap(),
            serde_json::json!(["10.0.12.1/24"])
        );
        assert_eq!(
            render(s.running(), "rib", "toml").unwrap_err().reason,
            "no such node"
        );
        assert!(render(s.running(), "", "toml")
            .unwrap()
            .contains("[router]"));
    }
}
