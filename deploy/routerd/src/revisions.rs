//! Revision files: `<state-dir>/<N>.toml` per revision and `<state-dir>/index.json`
//! (`{"running": N, "revisions": [{"number", "unix_time", "comment"}]}`), each written to a
//! temporary file and renamed, so a crash leaves the old or the new file, never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::store::RevisionInfo;

/// The revision directory of one router.
#[derive(Debug, Clone)]
pub struct RevisionDir {
    dir: PathBuf,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Index {
    running: u64,
    revisions: Vec<RevisionInfo>,
}

impl RevisionDir {
    /// Opens (creating, mode 0700) a revision directory. Revisions of an earlier run of
    /// routerd are removed: numbering starts again at 1 with the startup configuration.
    pub fn create_fresh(dir: &Path) -> anyhow::Result<Self> {
        oxr_sdk::process::create_private_dir(dir)?;
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let ours = name == "index.json"
                || name
                    .strip_suffix(".toml")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if ours {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing old revision {}", path.display()))?;
            }
        }
        Ok(RevisionDir {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes revision `info.number`'s text, then the index listing `all` with `running`.
    pub fn save(
        &self,
        text: &str,
        info: &RevisionInfo,
        all: &[RevisionInfo],
        running: u64,
    ) -> anyhow::Result<()> {
        write_atomic(
            &self.dir.join(format!("{}.toml", info.number)),
            text.as_bytes(),
        )?;
        let mut revisions = all.to_vec();
        if !revisions.iter().any(|r| r.number == info.number) {
            revisions.push(info.clone());
        }
        let index = Index { running, revisions };
        let json = serde_json::to_vec_pretty(&index).expect("index serializes");
        write_atomic(&self.dir.join("index.json"), &json)
    }

    /// Reads back the index: the running revision and the list.
    pub fn load_index(&self) -> anyhow::Result<(u64, Vec<RevisionInfo>)> {
        let path = self.dir.join("index.json");
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let index: Index = serde_json::from_slice(&bytes)
            .with_context(|| format!("parsing {}", path.display()))?;
        Ok((index.running, index.revisions))
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(n: u64) -> RevisionInfo {
        RevisionInfo {
            number: n,
            unix_time: 100 + n as i64,
            comment: format!("c{n}"),
        }
    }

    #[test]
    fn saves_files_and_index_and_starts_fresh() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("config");
        let r = RevisionDir::create_fresh(&dir).unwrap();
        r.save("a = 1\n", &info(1), &[], 1).unwrap();
        r.save("a = 2\n", &info(2), &[info(1)], 2).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("2.toml")).unwrap(),
            "a = 2\n"
        );
        let (running, list) = r.load_index().unwrap();
        assert_eq!(running, 2);
        assert_eq!(list, vec![info(1), info(2)]);
        std::fs::write(dir.join("notes.txt"), "keep").unwrap();
        let r = RevisionDir::create_fresh(&dir).unwrap();
        assert!(r.load_index().is_err());
        assert!(!dir.join("1.toml").exists());
        assert!(
            dir.join("notes.txt").exists(),
            "only our own files are removed"
        );
    }
}
