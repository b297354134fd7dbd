//! `oxr-new-protocol NAME [--dir DIR]`: a new protocol crate, copied from oxr-template with
//! `template` renamed to NAME everywhere (crate, binary, config section, types).
//!
//! - Into the workspace (default `protocols/NAME`): the crate inherits the workspace's
//!   settings and is added to the root `Cargo.toml`'s members.
//! - Anywhere else (`--dir` outside the workspace): a standalone crate, its own workspace,
//!   depending on the SDK by path, with the workspace's dependency versions (`Cargo.lock`
//!   copied) and profiles, so it builds offline and shares a target dir's artifacts.
//!
//! The generator's own files (this binary, its test, the Cargo.toml lines between
//! `# generator-begin` and `# generator-end`) are not copied.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context};
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "oxr-new-protocol",
    version,
    about = "Create a new oxr protocol crate from oxr-template"
)]
struct Args {
    /// Protocol name: lowercase letters and digits, starting with a letter (`hello`).
    name: String,
    /// Where to create the crate; default: protocols/NAME in the workspace.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The template crate; default: the one this binary was built from.
    #[arg(long)]
    template: Option<PathBuf>,
}

/// Names that are processes or commands already.
const RESERVED: &[&str] = &["static", "fea", "rib", "routerd", "template", "lab", "sdk"];

/// Files of the template crate that belong to the generator, not to a protocol.
const NOT_COPIED: &[&str] = &["src/bin", "tests/new_protocol.rs", "target"];

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let name = args.name.as_str();
    let ok = name.len() <= 30
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    ensure!(
        ok,
        "bad name {name:?}: lowercase letters and digits, starting with a letter"
    );
    ensure!(!RESERVED.contains(&name), "{name:?} is taken");

    let template = args
        .template
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let template = template
        .canonicalize()
        .with_context(|| format!("template {}", template.display()))?;
    let root = template
        .parent()
        .and_then(Path::parent)
        .context("the template is not at <workspace>/protocols/template")?
        .to_path_buf();
    ensure!(
        root.join("Cargo.toml").is_file(),
        "no workspace Cargo.toml at {}",
        root.display()
    );
    let dir = args
        .dir
        .unwrap_or_else(|| root.join("protocols").join(name));
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("{} exists and is not empty", dir.display());
    }
    std::fs::create_dir_all(&dir)?;
    let dir = dir.canonicalize()?;

    let rename = Renamer::new(name);
    copy_tree(&template, &template, &dir, &rename)?;
    let manifest = dir.join("Cargo.toml");
    let in_workspace = dir.starts_with(&root);
    if in_workspace {
        let rel = dir.strip_prefix(&root)?.to_string_lossy().into_owned();
        add_member(&root.join("Cargo.toml"), &rel)?;
    } else {
        let text = std::fs::read_to_string(&manifest)?;
        let root_manifest = std::fs::read_to_string(root.join("Cargo.toml"))?;
        std::fs::write(
            &manifest,
            standalone_manifest(&text, &root_manifest, &root)?,
        )?;
        let lock = root.join("Cargo.lock");
        if lock.is_file() {
            std::fs::copy(&lock, dir.join("Cargo.lock"))?;
        }
    }

    let shown = dir.display();
    println!("Created oxr-{name} in {shown}.");
    if in_workspace {
        println!(
            "Added it to the workspace members in {}.",
            root.join("Cargo.toml").display()
        );
    } else {
        println!(
            "It is a standalone crate (its own workspace) using the SDK at {}.",
            root.display()
        );
    }
    println!(
        "\nNext steps (protocols/README.md walks through them):
  1. cargo test -p oxr-{name}   -- it builds, and its snapshot test passes
  2. make it yours, in {shown}/src:
     config.rs (the [protocols.{name}] section), packet.rs (wire format, UDP port),
     instance.rs (inputs -> outputs), rib.rs (routes), api.rs (show {name})
  3. cargo build --workspace --bins   -- oxr-routerd finds oxr-{name} beside itself
  4. put [protocols.{name}.interfaces.eth0] in a router config or a lab file
     (deploy/labs/hello.toml is one), then oxrsh: show {name}, show route protocol {name}"
    );
    Ok(())
}

/// The renaming of identifiers, longest first.
struct Renamer(Vec<(String, String)>);

impl Renamer {
    fn new(name: &str) -> Self {
        let camel = format!("{}{}", name[..1].to_ascii_uppercase(), &name[1..]);
        Renamer(vec![
            ("oxr-template".into(), format!("oxr-{name}")),
            ("oxr_template".into(), format!("oxr_{name}")),
            ("TEMPLATE".into(), name.to_ascii_uppercase()),
            ("Template".into(), camel),
            ("template".into(), name.to_string()),
        ])
    }

    fn apply(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (from, to) in &self.0 {
            out = out.replace(from, to);
        }
        out
    }
}

/// Drops the generator's own lines from the manifest.
fn strip_generator(text: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        match line.trim() {
            l if l.starts_with("# generator-begin") => skipping = true,
            l if l.starts_with("# generator-end") => skipping = false,
            _ if !skipping => {
                out.push_str(line);
                out.push('\n');
            }
            _ => {}
        }
    }
    out
}

fn copy_tree(base: &Path, from: &Path, to: &Path, rename: &Renamer) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let path = entry?.path();
        let rel = path.strip_prefix(base)?.to_string_lossy().into_owned();
        if NOT_COPIED.contains(&rel.as_str()) {
            continue;
        }
        let dest = to.join(rename.apply(&rel));
        if path.is_dir() {
            std::fs::create_dir_all(&dest)?;
            copy_tree(base, &path, to, rename)?;
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let text = if rel == "Cargo.toml" {
            let described = text
                .lines()
                .map(|l| {
                    if l.starts_with("description") {
                        "description = \"oxr-template: a routing protocol process for oxr\""
                    } else {
                        l
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            strip_generator(&described)
        } else {
            text
        };
        std::fs::write(&dest, rename.apply(&text))?;
    }
    Ok(())
}

/// Adds `member` to the root manifest's `members = [...]` (a text edit: the file's
/// comments and layout stay).
fn add_member(root_manifest: &Path, member: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(root_manifest)?;
    let quoted = format!("\"{member}\"");
    if text.contains(&quoted) {
        return Ok(());
    }
    let start = text
        .find("members = [")
        .context("no `members = [` in the root Cargo.toml")?;
    let end = start
        + text[start..]
            .find(']')
            .context("unterminated members list")?;
    let mut out = text[..end].trim_end().to_string();
    if !out.ends_with(',') && !out.ends_with('[') {
        out.push(',');
    }
    out.push_str(&format!("\n    {quoted},\n"));
    out.push_str(&text[end..]);
    std::fs::write(root_manifest, out)?;
    Ok(())
}

/// The crate's manifest without workspace inheritance: explicit package fields, the
/// workspace's dependency specs (path ones made absolute), its own `[workspace]`, and the
/// workspace's profiles (plus, for the path crates, the settings they get as workspace
/// members), so a shared target dir's artifacts stay valid.
fn standalone_manifest(text: &str, root_text: &str, root: &Path) -> anyhow::Result<String> {
    let mut m: toml::Table = toml::from_str(text)?;
    let root_m: toml::Table = toml::from_str(root_text)?;
    let ws = root_m
        .get("workspace")
        .and_then(|w| w.as_table())
        .context("no [workspace]")?;
    let ws_pkg = ws
        .get("package")
        .and_then(|p| p.as_table())
        .cloned()
        .unwrap_or_default();
    let ws_deps = ws
        .get("dependencies")
        .and_then(|d| d.as_table())
        .cloned()
        .unwrap_or_default();

    if let Some(pkg) = m.get_mut("package").and_then(|p| p.as_table_mut()) {
        for (k, v) in pkg.iter_mut() {
            if is_inherited(v) {
                *v = ws_pkg
                    .get(k)
                    .cloned()
                    .with_context(|| format!("workspace.package.{k}"))?;
            }
        }
    }
    let mut path_crates = Vec::new();
    for section in ["dependencies", "dev-dependencies"] {
        let Some(deps) = m.get_mut(section).and_then(|d| d.as_table_mut()) else {
            continue;
        };
        for (name, v) in deps.iter_mut() {
            if !is_inherited(v) {
                continue;
            }
            let mut spec = match ws_deps.get(name).cloned() {
                Some(toml::Value::String(ver)) => {
                    let mut t = toml::Table::new();
                    t.insert("version".into(), toml::Value::String(ver));
                    t
                }
                Some(toml::Value::Table(t)) => t,
                _ => bail!("dependency {name} is not in [workspace.dependencies]"),
            };
            if let Some(toml::Value::String(p)) = spec.get("path").cloned() {
                let abs = root.join(p);
                spec.insert(
                    "path".into(),
                    toml::Value::String(abs.display().to_string()),
                );
                path_crates.push(name.clone());
            }
            // Features a member adds on top of the workspace's (`foo = { workspace = true,
            // features = [..] }`) are kept.
            if let Some(toml::Value::Array(extra)) = v.get("features") {
                let mut all = spec
                    .get("features")
                    .and_then(|f| f.as_array())
                    .cloned()
                    .unwrap_or_default();
                all.extend(extra.iter().cloned());
                spec.insert("features".into(), toml::Value::Array(all));
            }
            *v = toml::Value::Table(spec);
        }
    }
    let mut lints = toml::Table::new();
    if let Some(l) = ws.get("lints") {
        lints = l.as_table().cloned().unwrap_or_default();
    }
    m.insert("lints".into(), toml::Value::Table(lints));
    m.insert("workspace".into(), toml::Value::Table(toml::Table::new()));

    let mut profile = root_m
        .get("profile")
        .and_then(|p| p.as_table())
        .cloned()
        .unwrap_or_default();
    // The SDK's crates are members there (plain dev settings), not `package."*"` here.
    // oxr-sdk's own path dependencies are members too.
    path_crates.extend(["oxr-proto".to_string(), "oxr-config".to_string()]);
    path_crates.sort();
    path_crates.dedup();
    if let Some(dev) = profile.get_mut("dev").and_then(|d| d.as_table_mut()) {
        let debug = dev.get("debug").cloned();
        let pkgs = dev
            .entry("package")
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let Some(pkgs) = pkgs.as_table_mut() {
            for c in &path_crates {
                let mut t = toml::Table::new();
                t.insert("opt-level".into(), toml::Value::Integer(0));
                if let Some(d) = &debug {
                    t.insert("debug".into(), d.clone());
                }
                t.insert("incremental".into(), toml::Value::Boolean(true));
                pkgs.insert(c.clone(), toml::Value::Table(t));
            }
        }
    }
    m.insert("profile".into(), toml::Value::Table(profile));
    Ok(format!(
        "# Made by oxr-new-protocol from oxr-template (standalone: outside the oxr workspace).\n{}",
        toml::to_string(&m)?
    ))
}

fn is_inherited(v: &toml::Value) -> bool {
    v.get("workspace").and_then(|w| w.as_bool()) == Some(true)
}
