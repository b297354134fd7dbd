//! Snapshot tests of a protocol instance: numbered steps of input files in a case directory,
//! each with the expected outputs as JSON files next to it.
//!
//! ```text
//! tests/snapshots/<case>/01-config.toml   input of step 1
//!                        01-rib.json      expected RIB updates of step 1
//!                        02-config.toml   ...
//! ```
//!
//! Run with `OXR_UPDATE_SNAPSHOTS=1` to (re)write the expected files from what the code
//! produces; review the diff before committing it.

use std::path::{Path, PathBuf};

/// Environment variable that makes [`check_json`] write instead of compare.
pub const UPDATE_ENV: &str = "OXR_UPDATE_SNAPSHOTS";

fn updating() -> bool {
    std::env::var(UPDATE_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Compares `actual` with the JSON in `path` (or writes it there when updating).
/// Panics with both documents when they differ.
pub fn check_json(path: &Path, actual: &serde_json::Value) {
    let pretty = serde_json::to_string_pretty(actual).expect("JSON value serializes") + "\n";
    if updating() {
        std::fs::write(path, &pretty)
            .unwrap_or_else(|e| panic!("writing snapshot {}: {e}", path.display()));
        return;
    }
    let expected_text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "snapshot {} unreadable ({e}); run with {UPDATE_ENV}=1 to create it",
            path.display()
        )
    });
    let expected: serde_json::Value = serde_json::from_str(&expected_text)
        .unwrap_or_else(|e| panic!("snapshot {} is not JSON: {e}", path.display()));
    if &expected != actual {
        panic!(
            "snapshot {} differs (run with {UPDATE_ENV}=1 to accept)\n--- expected\n{}\n--- actual\n{}",
            path.display(),
            expected_text.trim_end(),
            pretty.trim_end()
        );
    }
}

/// One step of a case: its number-prefixed stem (`01`) and input file.
#[derive(Debug, Clone)]
pub struct Step {
    /// The part of the file name before the first `-` (e.g. `01`).
    pub id: String,
    /// The input file.
    pub input: PathBuf,
    dir: PathBuf,
}

impl Step {
    /// The input file's contents.
    pub fn read_input(&self) -> String {
        std::fs::read_to_string(&self.input)
            .unwrap_or_else(|e| panic!("reading {}: {e}", self.input.display()))
    }

    /// Checks one output of this step against `<id>-<what>.json`.
    pub fn check(&self, what: &str, actual: &impl serde::Serialize) {
        let value = serde_json::to_value(actual).expect("output serializes to JSON");
        check_json(&self.dir.join(format!("{}-{what}.json", self.id)), &value);
    }
}

/// The steps of the case in `dir` whose input files end with `-<suffix>`, in name order.
pub fn steps(dir: &Path, suffix: &str) -> Vec<Step> {
    let end = format!("-{suffix}");
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading case directory {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(&end))
        })
        .collect();
    inputs.sort();
    assert!(
        !inputs.is_empty(),
        "case {} has no *-{suffix} input files",
        dir.display()
    );
    inputs
        .into_iter()
        .map(|input| {
            let name = input
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let id = name.split('-').next().unwrap_or_default().to_string();
            Step {
                id,
                dir: dir.to_path_buf(),
                input,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_ordered_and_checked_against_their_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("02-config.toml"), "b").unwrap();
        std::fs::write(dir.path().join("01-config.toml"), "a").unwrap();
        std::fs::write(dir.path().join("01-rib.json"), "[1, 2]").unwrap();
        let s = steps(dir.path(), "config.toml");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].id, "01");
        assert_eq!(s[0].read_input(), "a");
        s[0].check("rib", &vec![1, 2]);
        let mismatch = std::panic::catch_unwind(|| s[0].check("rib", &vec![1, 3]));
        assert!(mismatch.is_err());
    }
}
