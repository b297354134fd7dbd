//! Protocol schemas that live outside this crate.
//!
//! oxr-config cannot depend on the protocol crates (they depend on it through oxr-sdk), so a
//! protocol brings its own schema: it implements [`ProtocolSchema`] next to its config types,
//! and whoever validates a router configuration puts it in a [`Registry`]:
//!
//! - oxr-routerd builds its registry explicitly (`Registry::builtin().with(OspfSchema)`) and
//!   validates with [`validate_table_with`](crate::validate_table_with).
//! - A protocol process started with `--config FILE` calls [`register`] once at start, so
//!   the SDK's loader ([`parse_and_validate`](crate::parse_and_validate), which uses
//!   [`Registry::global`]) accepts its section and hands it over through
//!   [`RouterConfig::section_json`](crate::RouterConfig::section_json).
//!
//! The built-in protocol (`static`) is typed in [`ProtocolsConfig`](crate::ProtocolsConfig);
//! a registered protocol's section is kept as written (TOML) plus the JSON its process
//! receives, both computed once at validation.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::path::ConfigPath;
use crate::validate::ConfigError;
use crate::{CORE_PROCESSES, KNOWN_PROTOCOLS};

/// The schema of one protocol's section, `protocols.<name>`.
///
/// Implementations are usually a unit struct beside the protocol's config types:
///
/// ```ignore
/// pub struct OspfSchema;
/// impl oxr_config::ProtocolSchema for OspfSchema {
///     fn name(&self) -> &'static str { "ospf" }
///     fn validate(&self, value: &toml::Value, at: &ConfigPath) -> Vec<ConfigError> {
///         match oxr_config::deserialize_at::<OspfConfig>(value, at) {
///             Ok(cfg) => /* semantic checks, paths below `at` */,
///             Err(e) => vec![e],
///         }
///     }
///     fn json_schema(&self) -> serde_json::Value { oxr_config::schema_of::<OspfConfig>() }
///     fn section_json(&self, value: &toml::Value) -> serde_json::Value {
///         oxr_config::section_json_of::<OspfConfig>(value)
///     }
/// }
/// ```
pub trait ProtocolSchema: Send + Sync + 'static {
    /// The protocol's name: its section `protocols.<name>`, its process `oxr-<name>`, its
    /// `WatchConfig` section and socket `<name>.sock`.
    fn name(&self) -> &'static str;

    /// Typed deserialization plus semantic checks of the section at `at`
    /// (`protocols.<name>`); every error carries its full path. Empty if valid.
    fn validate(&self, value: &toml::Value, at: &ConfigPath) -> Vec<ConfigError>;

    /// JSON schema of the section (as [`schema_of`] makes it: a root schema whose `$defs`
    /// hold the named types). The registry files it under `protocols.<name>`.
    fn json_schema(&self) -> serde_json::Value;

    /// The JSON the process receives for a valid section (defaults filled in).
    fn section_json(&self, value: &toml::Value) -> serde_json::Value;
}

/// Why a schema cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The name is a built-in protocol or a core process.
    #[error("protocol name `{0}` is reserved")]
    Reserved(&'static str),
    /// The name is not lowercase letters, digits and '-'.
    #[error("protocol name `{0}` must be 1-32 lowercase letters, digits or '-'")]
    BadName(&'static str),
}

/// The protocol schemas a configuration is validated against: the built-in `static` plus
/// registered ones.
///
/// - oxr-routerd builds its registry explicitly (`oxr_routerd::registry()`:
///   `Registry::builtin().with(OspfSchema)`) and validates with
///   [`validate_table_with`](crate::validate_table_with).
/// - A protocol process started with `--config FILE` calls [`register`] once at start, so
///   the SDK's loader ([`parse_and_validate`](crate::parse_and_validate), which uses
///   [`Registry::global`]) accepts its section and hands it over through
///   [`RouterConfig::section_json`](crate::RouterConfig::section_json).
#[derive(Clone, Default)]
pub struct Registry {
    protocols: BTreeMap<&'static str, Arc<dyn ProtocolSchema>>,
    /// Keep sections of protocols not registered here as written instead of refusing them.
    accept_unregistered: bool,
    /// Where schemas of protocols this registry was not built with come from.
    resolver: Option<Arc<dyn SchemaResolver>>,
}

/// A source of schemas for protocols a registry was not built with: oxr-routerd's asks
/// `oxr-<name> --config-schema` in its bin dir (`oxr_routerd::external`), so a new
/// protocol runs without rebuilding routerd. Only names that are not built-in, not
/// registered and well formed (lowercase letters, digits, '-') are asked for.
pub trait SchemaResolver: Send + Sync + 'static {
    /// The schema of protocol `name`, if there is one. Called often: cache. (A schema
    /// lives as long as the process, hence `'static`; leak what you make.)
    fn resolve(&self, name: &str) -> Option<&'static dyn ProtocolSchema>;
    /// Names worth offering (for the shell's completion): each is then [`resolve`]d.
    ///
    /// [`resolve`]: SchemaResolver::resolve
    fn available(&self) -> Vec<String> {
        Vec::new()
    }
}

fn well_formed(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("protocols", &self.protocols.keys())
            .field("accept_unregistered", &self.accept_unregistered)
            .field("resolver", &self.resolver.is_some())
            .finish()
    }
}

/// Schemas registered process-wide with [`register`].
static GLOBAL: RwLock<Registry> = RwLock::new(Registry::builtin());

/// Adds `schema` to the process-wide registry that [`parse_and_validate`](crate::parse_and_validate),
/// [`validate_table`](crate::validate_table), [`json_schema`](crate::json_schema) and
/// [`node_kind`](crate::node_kind) use. Call it at process start, before loading a
/// configuration; registering a name again replaces the earlier schema.
pub fn register(schema: impl ProtocolSchema) -> Result<(), RegistryError> {
    let mut global = GLOBAL.write().unwrap_or_else(|e| e.into_inner());
    global.register(schema)
}

impl Registry {
    /// Only the built-in protocols (`static`).
    pub const fn builtin() -> Self {
        Registry {
            protocols: BTreeMap::new(),
            accept_unregistered: false,
            resolver: None,
        }
    }

    /// This registry, asking `resolver` about protocols it does not know.
    pub fn with_resolver(mut self, resolver: impl SchemaResolver) -> Self {
        self.resolver = Some(Arc::new(resolver));
        self
    }

    fn resolve(&self, name: &str) -> Option<&'static dyn ProtocolSchema> {
        let r = self.resolver.as_ref()?;
        let reserved = KNOWN_PROTOCOLS.contains(&name)
            || CORE_PROCESSES.contains(&name)
            || name == "routerd"
            || self.protocols.contains_key(name);
        if reserved || !well_formed(name) {
            return None;
        }
        r.resolve(name).filter(|s| s.name() == name)
    }

    /// This registry, keeping a section of a protocol it does not know as written (its
    /// JSON the TOML converted, unvalidated) instead of refusing it. For a process that
    /// reads the whole router file only for its own section (`--config FILE`): the other
    /// protocols' sections are not its to judge, yet they still count in
    /// [`configured_names`](crate::ProtocolsConfig::configured_names) (the RIB waits for
    /// their end-of-RIB). oxr-routerd, which judges the whole file, never uses it.
    pub fn accept_unregistered(mut self) -> Self {
        self.accept_unregistered = true;
        self
    }

    /// Whether [`Registry::accept_unregistered`] is set.
    pub fn accepts_unregistered(&self) -> bool {
        self.accept_unregistered
    }

    /// The process-wide registry: built-ins plus whatever [`register`] added.
    pub fn global() -> Self {
        GLOBAL.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Adds (or replaces) a protocol schema.
    pub fn register(&mut self, schema: impl ProtocolSchema) -> Result<(), RegistryError> {
        let name = schema.name();
        if KNOWN_PROTOCOLS.contains(&name) || CORE_PROCESSES.contains(&name) || name == "routerd" {
            return Err(RegistryError::Reserved(name));
        }
        if !well_formed(name) {
            return Err(RegistryError::BadName(name));
        }
        self.protocols.insert(name, Arc::new(schema));
        Ok(())
    }

    /// This registry with `schema` added.
    ///
    /// # Panics
    /// If the name is reserved or malformed (a programming error, caught by any test).
    pub fn with(mut self, schema: impl ProtocolSchema) -> Self {
        if let Err(e) = self.register(schema) {
            panic!("{e}");
        }
        self
    }

    /// The schema registered under `name` (never a built-in).
    pub fn get(&self, name: &str) -> Option<&dyn ProtocolSchema> {
        match self.protocols.get(name) {
            Some(s) => Some(s.as_ref()),
            None => self.resolve(name),
        }
    }

    /// Every protocol this registry accepts: built-ins first, then registered ones by name.
    pub fn names(&self) -> Vec<&'static str> {
        KNOWN_PROTOCOLS
            .iter()
            .copied()
            .chain(self.registered())
            .collect()
    }

    /// Names of the registered (non built-in) protocols.
    pub fn registered(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.protocols.keys().copied().collect();
        if let Some(r) = &self.resolver {
            let found = r.available().into_iter().filter_map(|n| self.resolve(&n));
            names.extend(found.map(|s| s.name()));
            names.sort_unstable();
            names.dedup();
        }
        names
    }

    /// Whether `name` is a protocol this registry accepts.
    pub fn knows(&self, name: &str) -> bool {
        KNOWN_PROTOCOLS.contains(&name)
            || self.protocols.contains_key(name)
            || self.resolve(name).is_some()
    }
}

/// Deserializes a section (or any node) as `T`; on failure the error's path is the full
/// path of the offending node below `at` (`protocols.ospf.interfaces.eth0.cost`).
pub fn deserialize_at<T: DeserializeOwned>(
    value: &toml::Value,
    at: &ConfigPath,
) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize::<_, T>(value.clone()).map_err(|e| {
        let mut path = at.clone();
        for seg in e.path().iter() {
            match seg {
                serde_path_to_error::Segment::Map { key } => path = path.join(key.clone()),
                serde_path_to_error::Segment::Seq { index } => {
                    if let Some(last) = path.0.last_mut() {
                        last.push_str(&format!("[{index}]"));
                    }
                }
                _ => {}
            }
        }
        ConfigError {
            path: path.to_string(),
            reason: crate::validate::one_line(e.into_inner().message()),
        }
    })
}

/// The JSON schema of `T`, as [`ProtocolSchema::json_schema`] returns it.
pub fn schema_of<T: JsonSchema>() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(T)).expect("schema serializes")
}

/// A valid section as `T`, in JSON (defaults filled in); `null` if it does not fit `T`
/// (which validation has ruled out).
pub fn section_json_of<T: DeserializeOwned + Serialize>(value: &toml::Value) -> serde_json::Value {
    value
        .clone()
        .try_into::<T>()
        .ok()
        .and_then(|t| serde_json::to_value(t).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// Files `schema` (a protocol's root schema) into `root` (the router's) as
/// `protocols.<name>`: its `$defs` move to the root's as `<name>.<Def>` (so two protocols'
/// `InterfaceConfig` do not collide) and its `$ref`s follow.
pub(crate) fn insert_protocol_schema(
    root: &mut serde_json::Value,
    name: &str,
    schema: &serde_json::Value,
) {
    use serde_json::Value as Json;
    fn rename_refs(node: &mut Json, name: &str) {
        match node {
            Json::Object(map) => {
                for (k, v) in map.iter_mut() {
                    match (k.as_str(), v) {
                        ("$ref", Json::String(r)) => {
                            if let Some(def) = r.strip_prefix("#/$defs/") {
                                *r = format!("#/$defs/{name}.{def}");
                            } else if r == "#" {
                                // Self-reference of the section's root type.
                                *r = format!("#/$defs/{name}");
                            }
                        }
                        (_, v) => rename_refs(v, name),
                    }
                }
            }
            Json::Array(items) => items.iter_mut().for_each(|v| rename_refs(v, name)),
            _ => {}
        }
    }
    let mut section = schema.clone();
    rename_refs(&mut section, name);
    let defs = section
        .as_object_mut()
        .and_then(|o| {
            o.remove("$schema");
            o.remove("$defs")
        })
        .and_then(|d| match d {
            Json::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default();
    let Some(root_obj) = root.as_object_mut() else {
        return;
    };
    let root_defs = root_obj
        .entry("$defs")
        .or_insert_with(|| Json::Object(Default::default()));
    if let Some(root_defs) = root_defs.as_object_mut() {
        for (def, v) in defs {
            root_defs.insert(format!("{name}.{def}"), v);
        }
        // The section itself is a named definition too, so a self-reference resolves.
        root_defs.insert(name.to_string(), section);
        // Optional, as `protocols.static` is: absent means the protocol does not run.
        if let Some(props) = root_defs
            .get_mut("ProtocolsConfig")
            .and_then(|p| p.get_mut("properties"))
            .and_then(Json::as_object_mut)
        {
            props.insert(
                name.to_string(),
                serde_json::json!({ "$ref": format!("#/$defs/{name}") }),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;
    use crate::{
        json_schema_with, node_kind_with, parse_and_validate, parse_and_validate_with, NodeKind,
        RibSection,
    };

    /// A protocol whose types collide by name with the router's (`InterfaceConfig`).
    #[derive(Debug, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "kebab-case", deny_unknown_fields)]
    struct DemoConfig {
        #[serde(default)]
        interfaces: BTreeMap<String, InterfaceConfig>,
        #[serde(default = "hello")]
        hello_interval: u16,
    }

    fn hello() -> u16 {
        10
    }

    #[derive(Debug, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "kebab-case", deny_unknown_fields)]
    struct InterfaceConfig {
        cost: u16,
    }

    struct DemoSchema(&'static str);

    impl ProtocolSchema for DemoSchema {
        fn name(&self) -> &'static str {
            self.0
        }
        fn validate(&self, value: &toml::Value, at: &ConfigPath) -> Vec<ConfigError> {
            match deserialize_at::<DemoConfig>(value, at) {
                Ok(c) => c
                    .interfaces
                    .iter()
                    .filter(|(_, i)| i.cost == 0)
                    .map(|(name, _)| ConfigError {
                        path: at
                            .join("interfaces")
                            .join(name.clone())
                            .join("cost")
                            .to_string(),
                        reason: "must be 1-65535".into(),
                    })
                    .collect(),
                Err(e) => vec![e],
            }
        }
        fn json_schema(&self) -> serde_json::Value {
            schema_of::<DemoConfig>()
        }
        fn section_json(&self, value: &toml::Value) -> serde_json::Value {
            section_json_of::<DemoConfig>(value)
        }
    }

    const DEMO: &str = "[protocols.static.route.\"10.0.0.0/8\"]\naction = \"reject\"\n\
                        [protocols.demo.interfaces.\"eth0.5\"]\ncost = 3\n";

    fn registry() -> Registry {
        Registry::builtin().with(DemoSchema("demo"))
    }

    #[test]
    fn a_registered_protocol_is_validated_delivered_and_run() {
        let errs = parse_and_validate_with(DEMO, &Registry::builtin()).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].path, "protocols.demo");
        assert_eq!(
            errs[0].reason,
            "unknown protocol `demo`, expected one of static"
        );

        let cfg = parse_and_validate_with(DEMO, &registry()).unwrap();
        assert_eq!(cfg.protocols.configured_names(), ["static", "demo"]);
        assert_eq!(
            cfg.section_json("demo"),
            serde_json::json!({"interfaces": {"eth0.5": {"cost": 3}}, "hello-interval": 10}),
            "defaults are filled in"
        );
        let rib: RibSection = serde_json::from_value(cfg.section_json("rib")).unwrap();
        assert_eq!(rib.protocols, ["static", "demo"]);
        assert_eq!(cfg.section_json("other"), serde_json::Value::Null);
        // The whole config serializes with the registered section beside `static`.
        let json = serde_json::to_value(&cfg).unwrap();
        assert_eq!(json["protocols"]["demo"]["hello-interval"], 10);
        assert!(json["protocols"]["static"]["route"].is_object());
    }

    #[test]
    fn registered_protocol_errors_carry_full_paths() {
        let text = "[protocols.demo]\nhello-interval = \"x\"\n\
                    [protocols.static.route.\"10.0.0.0/8\"]\n";
        let errs = parse_and_validate_with(text, &registry()).unwrap_err();
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 2, "{shown:#?}");
        assert!(
            shown[0].starts_with("protocols.demo.hello-interval: invalid type"),
            "{shown:#?}"
        );
        assert!(
            shown[1].contains("needs `via` or `interface`"),
            "{shown:#?}"
        );

        let text = "[protocols.demo.interfaces.\"eth0.5\"]\ncost = 0\n\
                    [protocols.demo.interfaces.eth1]\ncost = 1\ncolour = 2\n";
        let errs = parse_and_validate_with(text, &registry()).unwrap_err();
        assert_eq!(
            errs.len(),
            1,
            "one typed error stops that section: {errs:?}"
        );
        assert!(errs[0]
            .to_string()
            .starts_with("protocols.demo.interfaces.eth1.colour: unknown field `colour`"));
        let text = "[protocols.demo.interfaces.\"eth0.5\"]\ncost = 0\n";
        let errs = parse_and_validate_with(text, &registry()).unwrap_err();
        assert_eq!(
            errs[0].to_string(),
            "protocols.demo.interfaces.\"eth0.5\".cost: must be 1-65535"
        );
    }

    #[test]
    fn the_schema_files_registered_protocols_without_name_clashes() {
        let reg = registry();
        let schema = json_schema_with(&reg);
        let kind = |p: &str| node_kind_in_schema_str(&schema, p);
        assert_eq!(kind("protocols.demo").unwrap(), NodeKind::Table);
        assert_eq!(
            kind("protocols.demo.interfaces.eth0.cost").unwrap(),
            NodeKind::Integer
        );
        assert_eq!(
            kind("protocols.demo.hello-interval").unwrap(),
            NodeKind::Integer
        );
        // The router's own InterfaceConfig is untouched by the demo's.
        assert_eq!(kind("interfaces.eth0.address").unwrap(), NodeKind::List);
        let e = kind("protocols.demo.interfaces.eth0.address").unwrap_err();
        assert_eq!(e.path, "protocols.demo.interfaces.eth0.address");
        assert!(e.reason.contains("expected one of cost"), "{}", e.reason);
        assert!(schema["$defs"]["demo.InterfaceConfig"].is_object());
        // Without the registration the section is unknown.
        let path = ConfigPath::parse("protocols.demo").unwrap();
        assert!(node_kind_with(&path, &Registry::builtin()).is_err());
        assert_eq!(node_kind_with(&path, &reg).unwrap(), NodeKind::Table);
    }

    fn node_kind_in_schema_str(
        schema: &serde_json::Value,
        p: &str,
    ) -> Result<NodeKind, ConfigError> {
        crate::node_kind_in_schema(schema, &ConfigPath::parse(p).unwrap())
    }

    #[test]
    fn a_lenient_registry_keeps_unknown_sections_as_written() {
        let text = "[protocols.bgp]\nlocal-as = 65001\n[protocols.demo]\nhello-interval = 0\n";
        let lenient = registry().accept_unregistered();
        let cfg = parse_and_validate_with(text, &lenient).unwrap();
        assert_eq!(cfg.protocols.configured_names(), ["bgp", "demo"]);
        assert_eq!(
            cfg.section_json("bgp"),
            serde_json::json!({"local-as": 65001})
        );
        // Registered protocols are still judged, and a section must still be a table.
        let errs = parse_and_validate_with("[protocols.demo]\nhello-interval = \"x\"\n", &lenient)
            .unwrap_err();
        assert_eq!(errs[0].path, "protocols.demo.hello-interval");
        let errs = parse_and_validate_with("[protocols]\nbgp = 1\n", &lenient).unwrap_err();
        assert_eq!(
            errs[0].to_string(),
            "protocols.bgp: expected a table, found a integer"
        );
        assert!(parse_and_validate_with(text, &registry()).is_err());
    }

    #[test]
    fn reserved_and_malformed_names_are_refused() {
        let mut reg = Registry::builtin();
        for name in ["static", "fea", "rib", "routerd"] {
            assert!(matches!(
                reg.register(DemoSchema(name)),
                Err(RegistryError::Reserved(_))
            ));
        }
        for name in ["", "Ospf", "a.b", "a b"] {
            assert!(matches!(
                reg.register(DemoSchema(name)),
                Err(RegistryError::BadName(_))
            ));
        }
        assert_eq!(reg.names(), ["static"]);
        reg.register(DemoSchema("demo")).unwrap();
        reg.register(DemoSchema("demo")).unwrap();
        assert_eq!(reg.names(), ["static", "demo"]);
        assert!(reg.knows("demo") && reg.knows("static") && !reg.knows("bgp"));
    }

    /// Resolves `ext-*` names to a leaked demo schema, counting questions.
    struct Ext(&'static std::sync::atomic::AtomicUsize);

    impl SchemaResolver for Ext {
        fn resolve(&self, name: &str) -> Option<&'static dyn ProtocolSchema> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let name: &'static str = Box::leak(name.to_string().into_boxed_str());
            name.starts_with("ext-")
                .then(|| &*Box::leak(Box::new(DemoSchema(name))) as &dyn ProtocolSchema)
        }
        fn available(&self) -> Vec<String> {
            vec!["ext-a".into(), "nope".into()]
        }
    }

    #[test]
    fn a_resolver_supplies_protocols_the_registry_was_not_built_with() {
        static ASKED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let reg = registry().with_resolver(Ext(&ASKED));
        assert!(reg.knows("ext-b") && !reg.knows("other"));
        assert_eq!(
            reg.registered(),
            ["demo", "ext-a"],
            "available ones that resolve"
        );
        let text = "[protocols.ext-b.interfaces.eth0]\ncost = 0\n";
        let errs = parse_and_validate_with(text, &reg).unwrap_err();
        assert_eq!(
            errs[0].to_string(),
            "protocols.ext-b.interfaces.eth0.cost: must be 1-65535"
        );
        let errs = parse_and_validate_with("[protocols.other]\n", &reg).unwrap_err();
        assert!(errs[0].reason.contains("static, demo, ext-a"), "{errs:?}");
        assert!(json_schema_with(&reg)["$defs"]["ext-a"].is_object());
        // Never asked about built-ins, registered, reserved or malformed names.
        let before = ASKED.load(std::sync::atomic::Ordering::Relaxed);
        for n in ["static", "demo", "fea", "rib", "routerd", "../x", "A"] {
            assert!(reg.get(n).is_none_or(|s| s.name() == "demo"), "{n}");
        }
        assert_eq!(ASKED.load(std::sync::atomic::Ordering::Relaxed), before);
    }

    #[test]
    fn the_global_registry_extends_the_default_functions() {
        // A name no other test uses: tests share the process-wide registry.
        let text = "[protocols.globaldemo.interfaces.eth0]\ncost = 1\n";
        assert!(!Registry::global().knows("globaldemo"));
        register(DemoSchema("globaldemo")).unwrap();
        let cfg = parse_and_validate(text).unwrap();
        assert_eq!(cfg.section_json("globaldemo")["hello-interval"], 10);
        assert!(crate::json_schema()["$defs"]["globaldemo"].is_object());
        assert!(
            parse_and_validate_with(text, &Registry::builtin()).is_err(),
            "an explicit registry is not affected"
        );
    }
}
