//! Protocols routerd was not built with. For a config section `protocols.NAME` that no
//! compiled-in schema knows, routerd looks for `oxr-NAME` in its bin dir and asks it:
//!
//! ```text
//!   oxr-NAME --config-schema            -> stdout: the section's JSON schema (exit 0)
//!   oxr-NAME --check-config < SECTION   -> stdout: [{"path": "...", "reason": "..."}]
//!                                          (SECTION as JSON; paths relative to it)
//! ```
//!
//! The answers make an ordinary [`ProtocolSchema`]: validation (every error with its full
//! path), the shell's completion (`Schema`), `WatchConfig` delivery, and the supervisor
//! runs `oxr-NAME` while its section exists. Every process built on the SDK's
//! `Runtime::protocol` answers both flags, so a new protocol needs no change here.
//!
//! A schema is asked once per binary (cached by path and modification time);
//! `--check-config` runs at every validation of a config holding the section.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use oxr_config::{ConfigError, ConfigPath, ProtocolSchema, SchemaResolver};
use serde::Deserialize;

/// How long a protocol binary gets to answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Binaries of the bin dir that are not protocols, never asked.
const NOT_PROTOCOLS: &[&str] = &["routerd", "fea", "rib", "lab", "fastpath", "new-protocol"];

/// The schema of `protocols.NAME` as `oxr-NAME` describes it.
#[derive(Debug)]
pub struct ExternalSchema {
    name: &'static str,
    program: PathBuf,
    schema: serde_json::Value,
}

#[derive(Deserialize)]
struct SectionError {
    path: String,
    reason: String,
}

impl ExternalSchema {
    /// Asks `program --config-schema`; None if it does not answer with a JSON object.
    pub fn ask(name: &str, program: &Path) -> Option<ExternalSchema> {
        let out = run(program, &["--config-schema"], None).ok()?;
        if !out.status.success() {
            return None;
        }
        let schema: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        if !schema.is_object() {
            return None;
        }
        tracing::info!(protocol = name, program = %program.display(), "protocol schema learned");
        Some(ExternalSchema {
            name: Box::leak(name.to_string().into_boxed_str()),
            program: program.to_path_buf(),
            schema,
        })
    }

    fn check(&self, section: &serde_json::Value) -> Result<Vec<SectionError>, String> {
        let input = section.to_string();
        let out = run(&self.program, &["--check-config"], Some(input.as_bytes()))
            .map_err(|e| e.to_string())?;
        match (out.status.code(), serde_json::from_slice(&out.stdout)) {
            (Some(0 | 1), Ok(errs)) => Ok(errs),
            _ => Err(format!(
                "{}: {}",
                crate::spawn::describe_exit(out.status),
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        }
    }
}

impl ProtocolSchema for ExternalSchema {
    fn name(&self) -> &'static str {
        self.name
    }

    fn validate(&self, value: &toml::Value, at: &ConfigPath) -> Vec<ConfigError> {
        if !value.is_table() {
            return vec![ConfigError {
                path: at.to_string(),
                reason: "expected a table".into(),
            }];
        }
        let json = self.section_json(value);
        match self.check(&json) {
            Ok(errs) => errs
                .into_iter()
                .map(|e| ConfigError {
                    path: full_path(at, &e.path),
                    reason: e.reason,
                })
                .collect(),
            Err(why) => vec![ConfigError {
                path: at.to_string(),
                reason: format!("{} --check-config failed: {why}", self.program.display()),
            }],
        }
    }

    fn json_schema(&self) -> serde_json::Value {
        self.schema.clone()
    }

    /// The section as written: the process fills in its defaults when it deserializes.
    fn section_json(&self, value: &toml::Value) -> serde_json::Value {
        serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
    }
}

fn full_path(at: &ConfigPath, rel: &str) -> String {
    if rel.is_empty() {
        return at.to_string();
    }
    match ConfigPath::parse(rel) {
        Ok(r) => ConfigPath([at.0.clone(), r.0].concat()).to_string(),
        Err(_) => format!("{at}.{rel}"),
    }
}

/// Runs `program args`, feeding `stdin`, killing it after [`ANSWER_TIMEOUT`].
fn run(
    program: &Path,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> std::io::Result<std::process::Output> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("OXR_LOG", "error")
        .spawn()?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A section is small; a child that does not read it fails the write, not us.
        let _ = pipe.write_all(data);
    }
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(ANSWER_TIMEOUT) {
        Ok(out) => out,
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {ANSWER_TIMEOUT:?}"),
            ))
        }
    }
}

type Cache = HashMap<PathBuf, (SystemTime, Option<&'static ExternalSchema>)>;

/// Schemas of the `oxr-NAME` binaries in one directory.
#[derive(Debug, Clone)]
pub struct BinDirSchemas {
    dir: PathBuf,
}

/// Answers by binary, shared by every registry of the process (routerd builds one per
/// validation).
static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

impl BinDirSchemas {
    /// Looks in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        BinDirSchemas { dir: dir.into() }
    }
}

impl SchemaResolver for BinDirSchemas {
    fn resolve(&self, name: &str) -> Option<&'static dyn ProtocolSchema> {
        if NOT_PROTOCOLS.contains(&name) {
            return None;
        }
        let program = self.dir.join(format!("oxr-{name}"));
        let mtime = std::fs::metadata(&program)
            .and_then(|m| m.modified())
            .ok()?;
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        let cache = cache.get_or_insert_with(HashMap::new);
        if let Some((t, s)) = cache.get(&program) {
            if *t == mtime {
                return s.map(|s| s as &dyn ProtocolSchema);
            }
        }
        let found = ExternalSchema::ask(name, &program).map(|s| &*Box::leak(Box::new(s)));
        cache.insert(program, (mtime, found));
        found.map(|s| s as &dyn ProtocolSchema)
    }

    fn available(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                let file = e.file_name().into_string().ok()?;
                let name = file.strip_prefix("oxr-")?;
                let executable = {
                    use std::os::unix::fs::PermissionsExt;
                    e.metadata().ok()?.permissions().mode() & 0o111 != 0
                };
                (executable && !name.contains('.') && !NOT_PROTOCOLS.contains(&name))
                    .then(|| name.to_string())
            })
            .collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A protocol binary as a shell script: a schema with one key, and a check that
    /// refuses any section mentioning "colour".
    fn fake_protocol(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(format!("oxr-{name}"));
        let script = r#"#!/bin/sh
case "$1" in
  --config-schema) echo '{"type": "object", "properties": {"interval": {"type": "integer"}}}' ;;
  --check-config)
    if grep -q colour; then
      echo '[{"path": "interfaces.eth0.colour", "reason": "unknown field `colour`"}]'; exit 1
    fi
    echo '[]' ;;
  *) exit 2 ;;
esac
"#;
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn a_binary_in_the_bin_dir_validates_its_section() {
        let dir = tempfile::tempdir().unwrap();
        fake_protocol(dir.path(), "demo");
        std::fs::write(dir.path().join("oxr-notes.txt"), "").unwrap();
        let reg = oxr_config::Registry::builtin().with_resolver(BinDirSchemas::new(dir.path()));
        assert_eq!(reg.registered(), ["demo"]);
        let ok = "[protocols.demo]\ninterval = 3\n";
        let cfg = oxr_config::parse_and_validate_with(ok, &reg).unwrap();
        assert_eq!(cfg.section_json("demo"), serde_json::json!({"interval": 3}));
        assert_eq!(cfg.protocols.configured_names(), ["demo"]);
        let bad = "[protocols.demo.interfaces.eth0]\ncolour = 1\n";
        let errs = oxr_config::parse_and_validate_with(bad, &reg).unwrap_err();
        assert_eq!(
            errs[0].to_string(),
            "protocols.demo.interfaces.eth0.colour: unknown field `colour`"
        );
        let schema = oxr_config::json_schema_with(&reg);
        assert!(schema["$defs"]["demo"]["properties"]["interval"].is_object());
        let errs = oxr_config::parse_and_validate_with("[protocols.nope]\n", &reg).unwrap_err();
        assert_eq!(errs[0].path, "protocols.nope");
    }

    #[test]
    fn a_binary_that_does_not_answer_is_no_protocol() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oxr-mute");
        std::fs::write(&path, "#!/bin/sh\necho not json\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let r = BinDirSchemas::new(dir.path());
        assert!(r.resolve("mute").is_none());
        assert!(r.resolve("absent").is_none());
    }
}
