//! Whole-document validation: typed deserialization of each node plus semantic checks,
//! collecting every error with its path instead of stopping at the first.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::de::DeserializeOwned;
use toml::{Table, Value};

use crate::path::ConfigPath;
use crate::registry::Registry;
use crate::schema::*;

/// One problem in a configuration: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigError {
    pub path: String,
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

struct Errors(Vec<ConfigError>);

impl Errors {
    fn add(&mut self, path: &ConfigPath, reason: impl Into<String>) {
        self.0.push(ConfigError {
            path: path.to_string(),
            reason: reason.into(),
        });
    }

    /// Deserializes one node, recording the error (with the full path) if it does not fit.
    fn typed<T: DeserializeOwned>(&mut self, value: &Value, at: &ConfigPath) -> Option<T> {
        match crate::registry::deserialize_at(value, at) {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(e);
                None
            }
        }
    }

    fn table<'a>(&mut self, value: &'a Value, at: &ConfigPath) -> Option<&'a Table> {
        let t = value.as_table();
        if t.is_none() {
            self.add(
                at,
                format!("expected a table, found a {}", value.type_str()),
            );
        }
        t
    }
}

/// Parses TOML text and validates it whole against the process-wide registry
/// ([`Registry::global`]: the built-in protocols plus those added with
/// [`register`](crate::register)).
pub fn parse_and_validate(text: &str) -> Result<RouterConfig, Vec<ConfigError>> {
    parse_and_validate_with(text, &Registry::global())
}

/// Parses TOML text and validates it whole against `registry`.
pub fn parse_and_validate_with(
    text: &str,
    registry: &Registry,
) -> Result<RouterConfig, Vec<ConfigError>> {
    validate_table_with(&parse_toml(text).map_err(|e| vec![e])?, registry)
}

/// Parses a TOML document; a syntax error is one line with its position
/// (`TOML syntax at line 3, column 7: ...`).
pub fn parse_toml(text: &str) -> Result<Table, ConfigError> {
    text.parse::<Table>().map_err(|e| {
        let at = e.span().map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!(" at line {line}, column {column}")
        });
        ConfigError {
            path: String::new(),
            reason: format!(
                "TOML syntax{}: {}",
                at.unwrap_or_default(),
                one_line(e.message())
            ),
        }
    })
}

/// Error messages are shown one per line: fold the deserializer's multi-line messages.
pub(crate) fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Validates a configuration document against the process-wide registry
/// ([`Registry::global`]), returning the typed config or every error found.
pub fn validate_table(table: &Table) -> Result<RouterConfig, Vec<ConfigError>> {
    validate_table_with(table, &Registry::global())
}

/// Validates a configuration document against `registry`: a protocol section is accepted
/// if the protocol is built in or registered there. Returns the typed config or every
/// error found.
pub fn validate_table_with(
    table: &Table,
    registry: &Registry,
) -> Result<RouterConfig, Vec<ConfigError>> {
    let mut errs = Errors(Vec::new());
    let mut cfg = RouterConfig::default();
    let root = ConfigPath::root();
    for (key, value) in table {
        let at = root.join(key.clone());
        match key.as_str() {
            "router" => {
                if let Some(v) = errs.typed(value, &at) {
                    cfg.router = v;
                }
            }
            "fea" => {
                if let Some(v) = errs.typed(value, &at) {
                    cfg.fea = v;
                }
            }
            "rib" => {
                if let Some(v) = errs.typed(value, &at) {
                    cfg.rib = v;
                }
            }
            "interfaces" => {
                if let Some(t) = errs.table(value, &at) {
                    for (name, v) in t {
                        if let Some(i) = errs.typed(v, &at.join(name.clone())) {
                            cfg.interfaces.insert(name.clone(), i);
                        }
                    }
                }
            }
            "protocols" => {
                if let Some(t) = errs.table(value, &at) {
                    for (name, v) in t {
                        let at = at.join(name.clone());
                        match name.as_str() {
                            "static" => {
                                cfg.protocols.static_routes = static_config(v, &at, &mut errs)
                            }
                            other => match registry.get(other) {
                                Some(schema) => {
                                    let found = schema.validate(v, &at);
                                    if found.is_empty() {
                                        cfg.protocols.other.insert(
                                            other.to_string(),
                                            ProtocolSection {
                                                toml: v.clone(),
                                                json: schema.section_json(v),
                                            },
                                        );
                                    }
                                    errs.0.extend(found);
                                }
                                None if registry.accepts_unregistered() => {
                                    if errs.table(v, &at).is_some() {
                                        let json = serde_json::to_value(v)
                                            .unwrap_or(serde_json::Value::Null);
                                        cfg.protocols.other.insert(
                                            other.to_string(),
                                            ProtocolSection {
                                                toml: v.clone(),
                                                json,
                                            },
                                        );
                                    }
                                }
                                None => errs.add(
                                    &at,
                                    format!(
                                        "unknown protocol `{other}`, expected one of {}",
                                        registry.names().join(", ")
                                    ),
                                ),
                            },
                        }
                    }
                }
            }
            other => errs.add(
                &at,
                format!("unknown key `{other}`, expected one of router, interfaces, fea, rib, protocols"),
            ),
        }
    }
    check_router(&cfg, &mut errs);
    if errs.0.is_empty() {
        Ok(cfg)
    } else {
        Err(errs.0)
    }
}

fn static_config(value: &Value, at: &ConfigPath, errs: &mut Errors) -> Option<StaticConfig> {
    let table = errs.table(value, at)?;
    let mut cfg = StaticConfig::default();
    let mut seen: BTreeMap<IpNet, String> = BTreeMap::new();
    for (key, v) in table {
        let at = at.join(key.clone());
        if key != "route" {
            errs.add(&at, format!("unknown key `{key}`, expected route"));
            continue;
        }
        let Some(routes) = errs.table(v, &at) else {
            continue;
        };
        for (text, route) in routes {
            let at = at.join(text.clone());
            let prefix = match text.parse::<IpNet>() {
                Ok(p) => p,
                Err(_) => {
                    errs.add(
                        &at,
                        format!("`{text}` is not a prefix (expected ADDRESS/LENGTH)"),
                    );
                    continue;
                }
            };
            if prefix.trunc() != prefix {
                errs.add(
                    &at,
                    format!(
                        "host bits set in `{text}`; did you mean {}?",
                        prefix.trunc()
                    ),
                );
                continue;
            }
            if let Some(first) = seen.insert(prefix, text.clone()) {
                errs.add(&at, format!("duplicate of route \"{first}\""));
                continue;
            }
            if let Some(r) = errs.typed::<StaticRoute>(route, &at) {
                check_static_route(prefix, &r, &at, errs);
                cfg.route.insert(prefix, r);
            }
        }
    }
    Some(cfg)
}

fn check_static_route(prefix: IpNet, r: &StaticRoute, at: &ConfigPath, errs: &mut Errors) {
    match r.action {
        StaticAction::Forward => {
            if r.via.is_empty() && r.interface.is_none() {
                errs.add(at, "a forwarding route needs `via` or `interface`");
            }
        }
        StaticAction::Blackhole | StaticAction::Reject => {
            if !r.via.is_empty() || r.interface.is_some() {
                errs.add(
                    &at.join("action"),
                    "a blackhole or reject route takes no `via` or `interface`",
                );
            }
        }
    }
    let mut seen = Vec::new();
    for (i, gw) in r.via.iter().enumerate() {
        let at = at.join("via");
        let at = ConfigPath({
            let mut segs = at.0;
            if let Some(last) = segs.last_mut() {
                last.push_str(&format!("[{i}]"));
            }
            segs
        });
        if gw.is_ipv4() != matches!(prefix, IpNet::V4(_)) {
            errs.add(
                &at,
                format!("gateway {gw} is not of the prefix's address family"),
            );
        } else if gw.is_unspecified() || gw.is_multicast() || is_broadcast(gw) {
            errs.add(&at, format!("gateway {gw} is not a unicast address"));
        } else if seen.contains(gw) {
            errs.add(&at, format!("duplicate gateway {gw}"));
        }
        seen.push(*gw);
    }
    if let Some(d) = r.distance {
        if !(1..=255).contains(&d) {
            errs.add(&at.join("distance"), "distance must be between 1 and 255");
        }
    }
}

fn is_broadcast(a: &IpAddr) -> bool {
    matches!(a, IpAddr::V4(v4) if v4.is_broadcast())
}

fn check_router(cfg: &RouterConfig, errs: &mut Errors) {
    let root = ConfigPath::root();
    if let Some(name) = &cfg.router.name {
        let ok = !name.is_empty()
            && name.len() <= 32
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            errs.add(
                &root.join("router").join("name"),
                "name must be 1-32 letters, digits, '-' or '_'",
            );
        }
    }
    let mut owners: BTreeMap<IpAddr, &str> = BTreeMap::new();
    for (ifname, ifc) in &cfg.interfaces {
        let at = root.join("interfaces").join(ifname.clone());
        if ifname.is_empty() || ifname.len() > 15 || ifname.contains(['/', ' ']) {
            errs.add(
                &at,
                "not a valid interface name (1-15 characters, no '/' or space)",
            );
        }
        for a in &ifc.address {
            if let Some(other) = owners.insert(a.addr(), ifname) {
                errs.add(
                    &at.join("address"),
                    format!("duplicate address {} (also on {other})", a.addr()),
                );
            }
        }
        if let Some(mtu) = ifc.mtu {
            if !(68..=65535).contains(&mtu) {
                errs.add(&at.join("mtu"), "mtu must be between 68 and 65535");
            }
        }
    }
    let rib = root.join("rib");
    if !(1..=64).contains(&cfg.rib.ecmp_width) {
        errs.add(&rib.join("ecmp-width"), "must be between 1 and 64");
    }
    if cfg.rib.stale_hold_secs > 86_400 {
        errs.add(&rib.join("stale-hold-secs"), "must be at most 86400");
    }
    let fea = root.join("fea");
    if !(1..=1024).contains(&cfg.fea.netlink_batch) {
        errs.add(&fea.join("netlink-batch"), "must be between 1 and 1024");
    }
    if cfg.fea.route_protocol < 5 || cfg.fea.route_protocol == u8::MAX {
        errs.add(
            &fea.join("route-protocol"),
            "must be between 5 and 254 (0-4 are the kernel's own)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        parse_and_validate(text)
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn accepts_a_full_example() {
        let cfg = parse_and_validate(
            r#"
            [router]
            name = "r1"
            router-id = "10.0.0.1"
            [interfaces.veth0]
            address = ["10.0.12.1/24", "2001:db8:12::1/64"]
            [rib]
            ecmp-width = 4
            [protocols.static.route."10.9.0.0/16"]
            via = ["10.0.12.2", "10.0.13.2"]
            [protocols.static.route."192.0.2.0/24"]
            action = "blackhole"
            [protocols.static.route."2001:db8:99::/48"]
            interface = "veth0"
            distance = 5
            "#,
        )
        .unwrap();
        let st = cfg.protocols.static_routes.as_ref().unwrap();
        assert_eq!(st.route.len(), 3);
        assert_eq!(cfg.rib.ecmp_width, 4);
        assert_eq!(cfg.rib.stale_hold_secs, 120, "defaults fill the rest");
        assert_eq!(cfg.protocols.configured_names(), ["static"]);
    }

    #[test]
    fn reports_every_error_with_its_path() {
        let errs = errors(
            r#"
            [router]
            colour = "blue"
            [protocols.static.route."10.9.0.0/33"]
            via = ["10.0.12.2"]
            [protocols.static.route."10.8.0.0/16"]
            via = ["not-an-address"]
            [protocols.static.route."10.7.0.1/16"]
            via = ["10.0.12.2"]
            [protocols.static.route."10.6.0.0/16"]
            via = ["10.0.12.2", "10.0.12.2"]
            "#,
        );
        assert_eq!(errs.len(), 5, "{errs:#?}");
        assert!(
            errs.iter().all(|e| !e.contains('\n')),
            "one line each: {errs:#?}"
        );
        assert!(
            errs[0].starts_with("router.colour: unknown field `colour`"),
            "{}",
            errs[0]
        );
        assert!(errs[1]
            .starts_with(r#"protocols.static.route."10.9.0.0/33": `10.9.0.0/33` is not a prefix"#));
        assert!(
            errs[2]
                .starts_with(r#"protocols.static.route."10.8.0.0/16".via[0]: invalid IP address"#),
            "{}",
            errs[2]
        );
        assert!(errs[3].contains("host bits set"));
        assert_eq!(
            errs[4],
            r#"protocols.static.route."10.6.0.0/16".via[1]: duplicate gateway 10.0.12.2"#
        );
    }

    #[test]
    fn duplicate_prefix_spellings_are_refused() {
        let errs = errors(
            r#"
            [protocols.static.route."2001:db8::/32"]
            interface = "eth0"
            [protocols.static.route."2001:0db8::/32"]
            interface = "eth0"
            "#,
        );
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].contains("duplicate of route \"2001:db8::/32\""),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn duplicate_toml_keys_are_syntax_errors() {
        let errs = errors("[router]\nname = \"a\"\nname = \"b\"\n");
        assert!(
            errs[0].starts_with("TOML syntax at line 3, column 1: duplicate key"),
            "{}",
            errs[0]
        );
        assert!(!errs[0].contains('\n'));
    }

    #[test]
    fn semantic_checks() {
        let errs = errors(
            r#"
            [protocols.static.route."10.1.0.0/16"]
            [protocols.static.route."10.2.0.0/16"]
            action = "reject"
            via = ["10.0.0.1"]
            [protocols.static.route."10.3.0.0/16"]
            via = ["2001:db8::1"]
            [protocols.bogus]
            x = 1
            "#,
        );
        assert_eq!(errs.len(), 4, "{errs:#?}");
        assert!(errs
            .iter()
            .any(|e| e.starts_with("protocols.bogus: unknown protocol `bogus`")));
        assert!(errs
            .iter()
            .any(|e| e.contains("needs `via` or `interface`")));
        assert!(errs.iter().any(|e| e.contains("takes no `via`")));
        assert!(errs
            .iter()
            .any(|e| e.contains("not of the prefix's address family")));
    }
}
