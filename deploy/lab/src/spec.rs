//! Lab files: parsing and validation.
//!
//! A lab file is one TOML document:
//!
//! ```toml
//! [lab]
//! name = "demo"                      # prefixes every namespace: demo-r1, demo-r2, ...
//!
//! [router.r1]                        # kind = "oxr" (default): one oxr-routerd
//! [router.r1.config.interfaces.lo]   # the router's own config, inline (oxr-routerd schema)
//! address = ["10.255.0.1/32"]
//!
//! [router.r2]
//! config-file = "r2.toml"            # ... or a file, relative to the lab file
//!
//! [router.b1]
//! kind = "bird"                      # one BIRD daemon, config text inline (or config-file)
//! config = "router id 10.255.0.9; protocol device {}"
//! loopback = ["10.255.0.9/32"]       # addresses the lab puts on lo (any node)
//!
//! [host.src]                         # a plain namespace: a traffic endpoint
//! loopback = ["10.9.0.1/32"]
//! gateway = ["10.1.0.1"]             # default routes, at most one per address family
//!
//! [switch.lan]                      # a namespace holding a Linux bridge (br0): a shared
//!                                    # LAN; every link to it is a bridge port
//!
//! [[link]]                           # a veth pair
//! a = "src:eth0"
//! b = "r1:eth0"
//! a-address = "10.1.0.2/24"          # one CIDR or a list
//! b-address = ["10.1.0.1/24", "2001:db8:1::1/64"]
//! mtu = 1500
//! ```
//!
//! Validation reports every error with its path (`link[2].b: unknown node "r9"`), like the
//! router config does; an oxr router's config is validated with oxr-routerd's own registry and
//! its errors carry the lab path before the config path (`router.r1.config.protocols...`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

/// One problem in a lab file: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct SpecError {
    /// Dotted path inside the lab file (`router.r1.config-file`, `link[0].a`).
    pub path: String,
    /// What is wrong there.
    pub reason: String,
}

fn err(path: impl Into<String>, reason: impl Into<String>) -> SpecError {
    SpecError {
        path: path.into(),
        reason: reason.into(),
    }
}

/// All errors of one lab file, printed one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecErrors {
    /// The file they were found in (or `<inline>`).
    pub file: String,
    /// Each error.
    pub errors: Vec<SpecError>,
}

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {e}", self.file)?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

// ---- the document as written ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLab {
    lab: RawLabSection,
    #[serde(default)]
    router: BTreeMap<String, RawRouter>,
    #[serde(default)]
    host: BTreeMap<String, RawHost>,
    #[serde(default)]
    switch: BTreeMap<String, RawSwitch>,
    #[serde(default)]
    link: Vec<RawLink>,
}

/// A switch has no settings (yet): `[switch.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSwitch {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLabSection {
    name: String,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawKind {
    #[default]
    Oxr,
    Bird,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRouter {
    #[serde(default)]
    kind: RawKind,
    config: Option<toml::Value>,
    config_file: Option<String>,
    #[serde(default)]
    loopback: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawHost {
    #[serde(default)]
    loopback: Vec<String>,
    #[serde(default)]
    gateway: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLink {
    a: String,
    b: String,
    a_address: Option<OneOrMany>,
    b_address: Option<OneOrMany>,
    mtu: Option<u32>,
}

// ---- the validated lab ----

/// A validated lab.
#[derive(Debug, Clone, PartialEq)]
pub struct Lab {
    /// `lab.name` (or the `--name` override).
    pub name: String,
    /// Every node, routers and hosts, by name.
    pub nodes: BTreeMap<String, Node>,
    /// The links in file order.
    pub links: Vec<Link>,
    /// The lab file, if it came from one.
    pub file: Option<PathBuf>,
}

/// One node: a network namespace plus what runs in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Node name (`r1`).
    pub name: String,
    /// Its role.
    pub kind: NodeKind,
    /// Addresses the lab puts on `lo` (an oxr router may instead list them in its own
    /// config's `interfaces.lo`).
    pub loopback: Vec<IpNet>,
}

/// What a node is.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// An oxr virtual router: one oxr-routerd.
    Oxr {
        /// The router's configuration document (validated).
        config: toml::Table,
        /// Protocols configured under `protocols` (`static`, `ospf`, ...).
        protocols: Vec<String>,
    },
    /// A BIRD router.
    Bird {
        /// BIRD configuration text.
        config: String,
    },
    /// A plain namespace.
    Host {
        /// Default route gateways (at most one per family).
        gateway: Vec<std::net::IpAddr>,
    },
    /// A namespace holding a Linux bridge `br0`; every link to it is a port of the bridge.
    Switch,
}

impl NodeKind {
    /// `oxr`, `bird` or `host`.
    pub fn label(&self) -> &'static str {
        match self {
            NodeKind::Oxr { .. } => "oxr",
            NodeKind::Bird { .. } => "bird",
            NodeKind::Host { .. } => "host",
            NodeKind::Switch => "switch",
        }
    }
}

/// One end of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Node name.
    pub node: String,
    /// Interface name inside the node's namespace.
    pub ifname: String,
    /// Addresses the lab puts on it.
    pub addresses: Vec<IpNet>,
}

/// A veth pair between two nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// First end.
    pub a: Endpoint,
    /// Second end.
    pub b: Endpoint,
    /// MTU of both ends, if set.
    pub mtu: Option<u32>,
}

/// Longest lab name: namespace names are `<lab>-<node>` and stay readable.
pub const MAX_LAB_NAME: usize = 32;

/// True for 1..=max letters, digits, '-' or '_', starting with a letter or digit.
pub fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

/// Linux interface names: 1-15 bytes, no '/', ':' or whitespace.
fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && !s
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
}

/// Reads and validates a lab file; `name` overrides `lab.name`.
pub fn load(path: &Path, name: Option<&str>) -> Result<Lab, SpecErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| SpecErrors {
        file: file.clone(),
        errors: vec![err("", format!("cannot read: {e}"))],
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut lab = parse(&text, base, name).map_err(|errors| SpecErrors { file, errors })?;
    lab.file = Some(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()));
    Ok(lab)
}

/// Parses and validates lab text; `base` is where `config-file` paths are relative to.
pub fn parse(text: &str, base: &Path, name: Option<&str>) -> Result<Lab, Vec<SpecError>> {
    let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let at = e.span().map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("TOML syntax at line {line}, column {col}")
        });
        vec![err(
            at.unwrap_or_else(|| "TOML syntax".into()),
            e.message().to_string(),
        )]
    })?;
    let raw: RawLab = serde_path_to_error::deserialize(toml::Value::Table(doc))
        .map_err(|e| vec![err(e.path().to_string(), e.inner().message().to_string())])?;
    validate(raw, base, name)
}

fn addresses(list: Vec<String>, at: &str, errors: &mut Vec<SpecError>) -> Vec<IpNet> {
    list.iter()
        .enumerate()
        .filter_map(|(i, s)| match s.parse::<IpNet>() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push(err(
                    format!("{at}[{i}]"),
                    format!("\"{s}\" is not an address with prefix length (10.0.0.1/24)"),
                ));
                None
            }
        })
        .collect()
}

fn validate(raw: RawLab, base: &Path, name: Option<&str>) -> Result<Lab, Vec<SpecError>> {
    let mut errors = Vec::new();
    let lab_name = name.unwrap_or(&raw.lab.name).to_string();
    if !valid_name(&lab_name, MAX_LAB_NAME) {
        errors.push(err(
            if name.is_some() { "--name" } else { "lab.name" },
            format!(
                "\"{lab_name}\" must be 1-{MAX_LAB_NAME} letters, digits, '-' or '_', starting with a letter or digit"
            ),
        ));
    }
    for (sname, RawSwitch {}) in &raw.switch {
        let at = format!("switch.{sname}");
        if !valid_name(sname, 32) {
            errors.push(err(&at, "node names are 1-32 letters, digits, '-' or '_'"));
        }
        if raw.router.contains_key(sname) || raw.host.contains_key(sname) {
            errors.push(err(&at, format!("\"{sname}\" is also a router or host")));
        }
    }
    if raw.router.is_empty() && raw.host.is_empty() {
        errors.push(err("router", "a lab needs at least one router or host"));
    }
    let mut nodes = BTreeMap::new();
    for (rname, mut r) in raw.router {
        let at = format!("router.{rname}");
        if !valid_name(&rname, 32) {
            errors.push(err(&at, "node names are 1-32 letters, digits, '-' or '_'"));
        }
        let loopback = addresses(
            std::mem::take(&mut r.loopback),
            &format!("{at}.loopback"),
            &mut errors,
        );
        let kind = match router_kind(&rname, r, base, &at, &mut errors) {
            Some(k) => k,
            None => continue,
        };
        nodes.insert(
            rname.clone(),
            Node {
                name: rname,
                kind,
                loopback,
            },
        );
    }
    for (hname, h) in raw.host {
        let at = format!("host.{hname}");
        if !valid_name(&hname, 32) {
            errors.push(err(&at, "node names are 1-32 letters, digits, '-' or '_'"));
        }
        if nodes.contains_key(&hname) {
            errors.push(err(&at, format!("\"{hname}\" is also a router")));
            continue;
        }
        let loopback = addresses(h.loopback, &format!("{at}.loopback"), &mut errors);
        let mut gateway = Vec::new();
        let (mut v4, mut v6) = (false, false);
        for (i, g) in h.gateway.iter().enumerate() {
            match g.parse::<std::net::IpAddr>() {
                Ok(a) => {
                    let seen = if a.is_ipv4() { &mut v4 } else { &mut v6 };
                    if *seen {
                        errors.push(err(
                            format!("{at}.gateway[{i}]"),
                            "at most one default gateway per address family",
                        ));
                    }
                    *seen = true;
                    gateway.push(a);
                }
                Err(_) => errors.push(err(
                    format!("{at}.gateway[{i}]"),
                    format!("\"{g}\" is not an IP address"),
                )),
            }
        }
        nodes.insert(
            hname.clone(),
            Node {
                name: hname,
                kind: NodeKind::Host { gateway },
                loopback,
            },
        );
    }

    for sname in raw.switch.keys() {
        nodes.entry(sname.clone()).or_insert_with(|| Node {
            name: sname.clone(),
            kind: NodeKind::Switch,
            loopback: Vec::new(),
        });
    }
    let mut links = Vec::new();
    let mut used: BTreeSet<(String, String)> = BTreeSet::new();
    for (i, l) in raw.link.into_iter().enumerate() {
        let at = format!("link[{i}]");
        let mut end = |side: &str, spec: &str, addr: Option<OneOrMany>| -> Option<Endpoint> {
            let p = format!("{at}.{side}");
            let Some((node, ifname)) = spec.split_once(':') else {
                errors.push(err(&p, format!("\"{spec}\" is not NODE:INTERFACE")));
                return None;
            };
            let mut ok = true;
            if !nodes.contains_key(node) {
                errors.push(err(&p, format!("unknown node \"{node}\"")));
                ok = false;
            }
            let switch = nodes
                .get(node)
                .is_some_and(|n| matches!(n.kind, NodeKind::Switch));
            if switch && addr.is_some() {
                errors.push(err(
                    format!("{p}-address"),
                    "a switch port has no address (it is a bridge port)",
                ));
                ok = false;
            }
            if !valid_ifname(ifname) || ifname == "lo" || (switch && ifname == "br0") {
                errors.push(err(
                    &p,
                    format!(
                        "\"{ifname}\" is not a usable interface name (1-15 characters, not lo)"
                    ),
                ));
                ok = false;
            }
            if ok && !used.insert((node.to_string(), ifname.to_string())) {
                errors.push(err(
                    &p,
                    format!("{node}:{ifname} is already used by another link"),
                ));
                ok = false;
            }
            let addresses = addresses(
                addr.map(OneOrMany::into_vec).unwrap_or_default(),
                &format!("{p}-address"),
                &mut errors,
            );
            ok.then(|| Endpoint {
                node: node.to_string(),
                ifname: ifname.to_string(),
                addresses,
            })
        };
        let a = end("a", &l.a, l.a_address);
        let b = end("b", &l.b, l.b_address);
        if let Some(m) = l.mtu {
            if !(68..=65535).contains(&m) {
                errors.push(err(format!("{at}.mtu"), "must be 68-65535"));
            }
        }
        if let (Some(a), Some(b)) = (a, b) {
            links.push(Link { a, b, mtu: l.mtu });
        }
    }
    if errors.is_empty() {
        Ok(Lab {
            name: lab_name,
            nodes,
            links,
            file: None,
        })
    } else {
        Err(errors)
    }
}

fn router_kind(
    rname: &str,
    r: RawRouter,
    base: &Path,
    at: &str,
    errors: &mut Vec<SpecError>,
) -> Option<NodeKind> {
    let read = |file: &str, errors: &mut Vec<SpecError>| -> Option<String> {
        let p = base.join(file);
        match std::fs::read_to_string(&p) {
            Ok(t) => Some(t),
            Err(e) => {
                errors.push(err(
                    format!("{at}.config-file"),
                    format!("cannot read {}: {e}", p.display()),
                ));
                None
            }
        }
    };
    match (r.config, r.config_file) {
        (Some(_), Some(_)) => {
            errors.push(err(at, "give either config or config-file, not both"));
            None
        }
        (None, None) if r.kind == RawKind::Bird => {
            errors.push(err(at, "a BIRD router needs config (text) or config-file"));
            None
        }
        (config, file) => match r.kind {
            RawKind::Bird => {
                let text = match (config, file) {
                    (Some(toml::Value::String(s)), _) => s,
                    (Some(_), _) => {
                        errors.push(err(
                            format!("{at}.config"),
                            "a BIRD router's config is BIRD configuration text (a string)",
                        ));
                        return None;
                    }
                    (None, Some(f)) => read(&f, errors)?,
                    (None, None) => return None,
                };
                Some(NodeKind::Bird { config: text })
            }
            RawKind::Oxr => {
                let (table, cfg_at) = match (config, file) {
                    (Some(toml::Value::Table(t)), _) => (t, format!("{at}.config")),
                    (Some(_), _) => {
                        errors.push(err(
                            format!("{at}.config"),
                            "an oxr router's config is a table (the oxr-routerd schema)",
                        ));
                        return None;
                    }
                    (None, Some(f)) => {
                        let text = read(&f, errors)?;
                        match oxr_config::parse_toml(&text) {
                            Ok(t) => (t, format!("{at}.config-file({f})")),
                            Err(e) => {
                                errors.push(err(format!("{at}.config-file({f})"), e.to_string()));
                                return None;
                            }
                        }
                    }
                    // No config: a router with only interfaces and connected routes.
                    (None, None) => (toml::Table::new(), format!("{at}.config")),
                };
                let table = with_router_name(table, rname);
                if let Err(es) = oxr_config::validate_table_with(&table, &oxr_routerd::registry()) {
                    for e in es {
                        let p = if e.path.is_empty() {
                            cfg_at.clone()
                        } else {
                            format!("{cfg_at}.{}", e.path)
                        };
                        errors.push(err(p, e.reason));
                    }
                    return None;
                }
                let protocols = table
                    .get("protocols")
                    .and_then(|p| p.as_table())
                    .map(|p| p.keys().cloned().collect())
                    .unwrap_or_default();
                Some(NodeKind::Oxr {
                    config: table,
                    protocols,
                })
            }
        },
    }
}

/// Fills in `router.name` when the config leaves it out, so the router's own name (shell
/// prompt, logs) is its node name.
fn with_router_name(mut table: toml::Table, name: &str) -> toml::Table {
    let router = table
        .entry("router")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let Some(t) = router.as_table_mut() {
        t.entry("name")
            .or_insert_with(|| toml::Value::String(name.to_string()));
    }
    table
}

impl Lab {
    /// Namespace of a node: `<lab>-<node>`.
    pub fn netns(&self, node: &str) -> String {
        netns_name(&self.name, node)
    }
}

/// Namespace of a node: `<lab>-<node>`.
pub fn netns_name(lab: &str, node: &str) -> String {
    format!("{lab}-{node}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Lab {
        parse(text, Path::new("."), None).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn parse_err(text: &str) -> Vec<String> {
        parse(text, Path::new("."), None)
            .expect_err("should be refused")
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    const TWO: &str = r#"
[lab]
name = "t"
[router.r1.config.interfaces.lo]
address = ["10.255.0.1/32"]
[router.r1.config.protocols.static.route."10.255.0.2/32"]
via = ["10.0.12.2"]
[router.b1]
kind = "bird"
config = "protocol device {}"
[host.h1]
gateway = ["10.0.12.1", "2001:db8::1"]
[[link]]
a = "r1:eth0"
b = "b1:eth0"
a-address = "10.0.12.1/24"
b-address = ["10.0.12.2/24", "2001:db8::2/64"]
mtu = 9000
[[link]]
a = "r1:eth1"
b = "h1:eth0"
"#;

    #[test]
    fn a_mixed_lab_parses_with_defaults_filled_in() {
        let lab = parse_ok(TWO);
        assert_eq!(lab.name, "t");
        assert_eq!(lab.netns("r1"), "t-r1");
        let NodeKind::Oxr { config, protocols } = &lab.nodes["r1"].kind else {
            panic!("r1 is oxr by default");
        };
        assert_eq!(protocols, &["static"]);
        assert_eq!(config["router"]["name"].as_str(), Some("r1"));
        assert_eq!(lab.nodes["b1"].kind.label(), "bird");
        assert_eq!(lab.nodes["h1"].kind.label(), "host");
        assert_eq!(lab.links.len(), 2);
        assert_eq!(lab.links[0].mtu, Some(9000));
        assert_eq!(lab.links[0].b.addresses.len(), 2);
        assert_eq!(lab.links[1].b.ifname, "eth0");
    }

    #[test]
    fn name_override_replaces_lab_name() {
        let lab = parse(TWO, Path::new("."), Some("other")).unwrap();
        assert_eq!(lab.netns("r1"), "other-r1");
        let e = parse(TWO, Path::new("."), Some("bad name")).unwrap_err();
        assert_eq!(e[0].path, "--name");
    }

    #[test]
    fn link_errors_name_the_link_and_the_reason() {
        let errs = parse_err(
            r#"
[lab]
name = "t"
[host.h1]
[host.h2]
[[link]]
a = "h1:eth0"
b = "h9:eth0"
[[link]]
a = "h1"
b = "h2:eth0"
[[link]]
a = "h1:eth0"
b = "h2:this-name-is-too-long"
a-address = "10.0.0.300/24"
mtu = 10
"#,
        );
        assert!(
            errs.contains(&"link[0].b: unknown node \"h9\"".to_string()),
            "{errs:?}"
        );
        assert!(errs
            .iter()
            .any(|e| e.starts_with("link[1].a: \"h1\" is not NODE:INTERFACE")));
        assert!(errs
            .iter()
            .any(|e| e.starts_with("link[2].a: h1:eth0 is already used")));
        assert!(errs
            .iter()
            .any(|e| e.starts_with("link[2].b: \"this-name-is-too-long\"")));
        assert!(errs.iter().any(|e| e.starts_with("link[2].a-address[0]")));
        assert!(errs.iter().any(|e| e.starts_with("link[2].mtu")));
    }

    #[test]
    fn router_config_errors_carry_the_lab_path() {
        let errs = parse_err(
            r#"
[lab]
name = "t"
[router.r1.config.rib]
ecmp-width = 0
"#,
        );
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("router.r1.config.rib"), "{errs:?}");
    }

    #[test]
    fn unknown_keys_and_kinds_are_refused_with_their_path() {
        let errs = parse_err("[lab]\nname = \"t\"\n[router.r1]\nkind = \"frr\"\n");
        assert!(errs[0].starts_with("router.r1.kind"), "{errs:?}");
        let errs = parse_err("[lab]\nname = \"t\"\n[host.h1]\naddress = []\n");
        assert!(errs[0].starts_with("host.h1"), "{errs:?}");
        assert!(errs[0].contains("address"), "{errs:?}");
        let errs = parse_err("[lab]\nname = \"t\"\n[router.b1]\nkind = \"bird\"\n");
        assert_eq!(
            errs,
            ["router.b1: a BIRD router needs config (text) or config-file"]
        );
        let errs = parse_err("[lab]\nname = \"t\"\n[router.r1]\nconfig = \"text\"\n");
        assert!(errs[0].starts_with("router.r1.config: an oxr router's config is a table"));
    }

    #[test]
    fn hosts_and_names_are_checked() {
        let errs = parse_err(
            "[lab]\nname = \"-x\"\n[host.h1]\ngateway = [\"10.0.0.1\", \"10.0.0.2\", \"nope\"]\n",
        );
        assert!(errs.iter().any(|e| e.starts_with("lab.name")), "{errs:?}");
        assert!(errs
            .iter()
            .any(|e| e.starts_with("host.h1.gateway[1]: at most one")));
        assert!(errs.iter().any(|e| e.starts_with("host.h1.gateway[2]")));
        let errs = parse_err("[lab]\nname = \"t\"\n");
        assert!(errs[0].contains("at least one"));
    }

    #[test]
    fn config_file_is_relative_to_the_lab_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("r1.toml"),
            "[router]\nname = \"x\"\n[interfaces.lo]\naddress = [\"10.0.0.1/32\"]\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("lab.toml"),
            "[lab]\nname = \"t\"\n[router.r1]\nconfig-file = \"r1.toml\"\n[router.r2]\nconfig-file = \"missing.toml\"\n",
        )
        .unwrap();
        let e = load(&dir.path().join("lab.toml"), None).unwrap_err();
        assert_eq!(e.errors.len(), 1);
        assert_eq!(e.errors[0].path, "router.r2.config-file");
        std::fs::remove_file(dir.path().join("lab.toml")).unwrap();
        std::fs::write(
            dir.path().join("lab.toml"),
            "[lab]\nname = \"t\"\n[router.r1]\nconfig-file = \"r1.toml\"\n",
        )
        .unwrap();
        let lab = load(&dir.path().join("lab.toml"), None).unwrap();
        let NodeKind::Oxr { config, .. } = &lab.nodes["r1"].kind else {
            panic!()
        };
        // The file's own name is kept; routerd is told the node name with --name.
        assert_eq!(config["router"]["name"].as_str(), Some("x"));
    }

    #[test]
    fn the_shipped_labs_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../labs");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                match load(&p, None) {
                    Ok(_) => n += 1,
                    // A protocol outside the workspace registry (oxr-hello) is described by
                    // its own binary, found beside oxr-routerd, not beside this test.
                    Err(e)
                        if e.errors.iter().all(|e| {
                            e.reason.contains("unknown protocol")
                                || e.reason.contains("unknown node")
                        }) =>
                    {
                        println!("{}: skipped (external protocol): {e}", p.display())
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
        assert!(n >= 2, "labs in {}", dir.display());
    }

    #[test]
    fn the_containerlab_router_configs_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../containerlab");
        for r in ["r1", "r2", "r3"] {
            let text = std::fs::read_to_string(dir.join(format!("{r}.toml"))).unwrap();
            let table = oxr_config::parse_toml(&text).unwrap();
            if let Err(e) = oxr_config::validate_table_with(&table, &oxr_routerd::registry()) {
                panic!("{r}.toml: {e:?}");
            }
        }
    }

    #[test]
    fn switches_are_nodes_whose_ports_have_no_address() {
        let lab = parse_ok(
            r#"
[lab]
name = "ixp"
[switch.lan]
[host.h1]
[host.h2]
[[link]]
a = "h1:eth0"
b = "lan:p1"
a-address = "192.0.2.1/24"
[[link]]
a = "h2:eth0"
b = "lan:p2"
a-address = "192.0.2.2/24"
"#,
        );
        assert_eq!(lab.nodes["lan"].kind, NodeKind::Switch);
        assert_eq!(lab.nodes["lan"].kind.label(), "switch");
        assert_eq!(lab.links.len(), 2);
        let e =
            parse_err("[lab]\nname = \"x\"\n[switch.lan]\n[host.lan]\n[switch.bad]\nunknown = 1\n");
        assert!(e.iter().any(|m| m.contains("switch.bad")), "{e:?}");
        let e = parse_err("[lab]\nname = \"x\"\n[switch.lan]\n[host.lan]\n");
        assert!(
            e.iter().any(|m| m.contains("also a router or host")),
            "{e:?}"
        );
        let e = parse_err(
            r#"
[lab]
name = "ixp"
[switch.lan]
[host.h1]
[[link]]
a = "h1:eth0"
b = "lan:p1"
b-address = "192.0.2.9/24"
[[link]]
a = "h1:eth1"
b = "lan:br0"
"#,
        );
        assert!(
            e.iter()
                .any(|m| m.contains("link[0].b-address") && m.contains("bridge port")),
            "{e:?}"
        );
        assert!(
            e.iter()
                .any(|m| m.contains("link[1].b") && m.contains("br0")),
            "{e:?}"
        );
    }
}
