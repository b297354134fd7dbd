//! Configuration paths (`protocols.static.route."10.9.0.0/16".via`) and edits by path on a
//! TOML document.

use std::fmt;

use toml::{Table, Value};

/// A path to a node of the configuration: table keys from the root.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigPath(pub Vec<String>);

/// A path that cannot be parsed or applied.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("empty path")]
    Empty,
    #[error("unterminated quote in path {0:?}")]
    UnterminatedQuote(String),
    #[error("empty segment in path {0:?}")]
    EmptySegment(String),
    #[error("{path}: is a {kind}, not a table")]
    NotATable { path: String, kind: &'static str },
    #[error("{0}: no such node")]
    NotFound(String),
}

impl ConfigPath {
    /// The root.
    pub fn root() -> Self {
        ConfigPath(Vec::new())
    }

    /// Parses dotted segments; a segment with dots or other punctuation is double-quoted.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(PathError::Empty);
        }
        let mut segments = Vec::new();
        let mut chars = text.chars().peekable();
        loop {
            let mut seg = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '"' {
                        closed = true;
                        break;
                    }
                    seg.push(c);
                }
                if !closed {
                    return Err(PathError::UnterminatedQuote(text.to_string()));
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == '.' {
                        break;
                    }
                    seg.push(c);
                    chars.next();
                }
                if seg.is_empty() {
                    return Err(PathError::EmptySegment(text.to_string()));
                }
            }
            segments.push(seg);
            match chars.next() {
                None => break,
                Some('.') => continue,
                Some(_) => return Err(PathError::EmptySegment(text.to_string())),
            }
        }
        Ok(ConfigPath(segments))
    }

    /// This path extended by one key.
    pub fn join(&self, key: impl Into<String>) -> Self {
        let mut p = self.clone();
        p.0.push(key.into());
        p
    }

    /// The value at this path, if any.
    pub fn get<'a>(&self, root: &'a Table) -> Option<&'a Value> {
        let (last, parents) = self.0.split_last()?;
        let mut table = root;
        for seg in parents {
            table = table.get(seg)?.as_table()?;
        }
        table.get(last)
    }

    /// Sets the value at this path, creating tables on the way. Setting a scalar on an
    /// existing array appends it (once), so lists grow one `set` at a time.
    pub fn set(&self, root: &mut Table, value: Value) -> Result<(), PathError> {
        let (last, parents) = self.0.split_last().ok_or(PathError::Empty)?;
        let mut table = root;
        for (i, seg) in parents.iter().enumerate() {
            let entry = table
                .entry(seg.clone())
                .or_insert_with(|| Value::Table(Table::new()));
            table = match entry {
                Value::Table(t) => t,
                other => {
                    return Err(PathError::NotATable {
                        path: ConfigPath(self.0[..=i].to_vec()).to_string(),
                        kind: other.type_str(),
                    })
                }
            };
        }
        match (table.get_mut(last), value) {
            (Some(Value::Array(items)), v) if !matches!(v, Value::Array(_) | Value::Table(_)) => {
                if !items.contains(&v) {
                    items.push(v);
                }
            }
            (_, v) => {
                table.insert(last.clone(), v);
            }
        }
        Ok(())
    }

    /// Deletes the node at this path. If the parent is an array, the last segment names the
    /// element to remove (`...via."10.0.0.1"`). Tables left empty are removed too.
    pub fn delete(&self, root: &mut Table) -> Result<(), PathError> {
        fn remove(table: &mut Table, segs: &[String]) -> bool {
            match segs {
                [] => false,
                [last] => table.remove(last).is_some(),
                [first, rest @ ..] => match table.get_mut(first) {
                    Some(Value::Table(t)) => {
                        let removed = remove(t, rest);
                        if removed && t.is_empty() {
                            table.remove(first);
                        }
                        removed
                    }
                    Some(Value::Array(items)) if rest.len() == 1 => {
                        let before = items.len();
                        items.retain(|v| scalar_text(v).as_deref() != Some(rest[0].as_str()));
                        let removed = items.len() != before;
                        if removed && items.is_empty() {
                            table.remove(first);
                        }
                        removed
                    }
                    _ => false,
                },
            }
        }
        if self.0.is_empty() {
            return Err(PathError::Empty);
        }
        if remove(root, &self.0) {
            Ok(())
        } else {
            Err(PathError::NotFound(self.to_string()))
        }
    }
}

/// The text of a scalar as a user types it (strings unquoted).
pub(crate) fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
        Value::Datetime(d) => Some(d.to_string()),
        Value::Array(_) | Value::Table(_) => None,
    }
}

fn needs_quotes(seg: &str) -> bool {
    seg.is_empty()
        || !seg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '[' | ']'))
}

impl fmt::Display for ConfigPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            if needs_quotes(seg) {
                write!(f, "\"{seg}\"")?;
            } else {
                f.write_str(seg)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_quoted_segments() {
        let p = ConfigPath::parse(r#"protocols.static.route."10.9.0.0/16".via"#).unwrap();
        assert_eq!(p.0, ["protocols", "static", "route", "10.9.0.0/16", "via"]);
        assert_eq!(p.to_string(), r#"protocols.static.route."10.9.0.0/16".via"#);
        assert!(ConfigPath::parse("a..b").is_err());
        assert!(ConfigPath::parse(r#"a."b"#).is_err());
    }

    #[test]
    fn set_creates_tables_and_appends_to_lists() {
        let mut t = Table::new();
        let p = ConfigPath::parse(r#"protocols.static.route."10.9.0.0/16".via"#).unwrap();
        p.set(&mut t, Value::Array(vec![Value::String("10.0.0.1".into())]))
            .unwrap();
        p.set(&mut t, Value::String("10.0.0.2".into())).unwrap();
        p.set(&mut t, Value::String("10.0.0.2".into())).unwrap();
        let via = p.get(&t).unwrap().as_array().unwrap();
        assert_eq!(via.len(), 2);
    }

    #[test]
    fn delete_removes_list_elements_and_empty_parents() {
        let mut t: Table = r#"
            [protocols.static.route."10.9.0.0/16"]
            via = ["10.0.0.1", "10.0.0.2"]
        "#
        .parse()
        .unwrap();
        let elem =
            ConfigPath::parse(r#"protocols.static.route."10.9.0.0/16".via."10.0.0.1""#).unwrap();
        elem.delete(&mut t).unwrap();
        let via = ConfigPath::parse(r#"protocols.static.route."10.9.0.0/16".via"#).unwrap();
        assert_eq!(via.get(&t).unwrap().as_array().unwrap().len(), 1);
        ConfigPath::parse(r#"protocols.static.route."10.9.0.0/16""#)
            .unwrap()
            .delete(&mut t)
            .unwrap();
        assert!(t.get("protocols").is_none(), "empty parents are pruned");
        assert!(matches!(elem.delete(&mut t), Err(PathError::NotFound(_))));
    }

    #[test]
    fn set_through_a_scalar_is_an_error() {
        let mut t: Table = "a = 1".parse().unwrap();
        let err = ConfigPath::parse("a.b")
            .unwrap()
            .set(&mut t, Value::Integer(2));
        assert!(matches!(err, Err(PathError::NotATable { .. })));
    }
}
