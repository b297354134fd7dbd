//! The lab run directory and its `state.json`: what a lab has created, written before each
//! resource is created, so `oxr-lab down` can remove everything even after oxr-lab itself
//! was killed half-way through `up`.
//!
//! ```text
//! /run/oxr-lab/<lab>/           mode 0700, created by `up` (its existence marks the lab up)
//!   state.json                  State below, replaced atomically (write + rename)
//!   <router>.toml | .conf       the config each router was started with
//!   <router>.log                oxr-routerd's or BIRD's stdout/stderr
//!   <router>/                   the router's run directory (sockets, per-process logs)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Default root of lab run directories.
pub const DEFAULT_ROOT: &str = "/run/oxr-lab";

/// Everything a lab created or is about to create.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Lab name.
    pub lab: String,
    /// The lab file it came from.
    pub file: Option<PathBuf>,
    /// When `up` started (seconds since the epoch).
    pub created_unix: u64,
    /// pid of the `oxr-lab up` that made it.
    pub up_pid: u32,
    /// True once `up` has created and started everything.
    pub complete: bool,
    /// Namespaces, recorded before each `ip netns add`.
    pub namespaces: Vec<String>,
    /// Host-side temporary veth names, recorded before the pair is created and removed once
    /// both ends are in their namespaces.
    pub temp_links: Vec<String>,
    /// Nodes by name.
    pub nodes: BTreeMap<String, NodeState>,
}

/// One node of a running lab.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeState {
    /// `oxr`, `bird` or `host`.
    pub kind: String,
    /// Its namespace.
    pub netns: String,
    /// Router run directory (oxr: routerd's `--run-dir`; bird: holds the control socket).
    pub run_dir: Option<PathBuf>,
    /// Protocols configured (oxr routers).
    #[serde(default)]
    pub protocols: Vec<String>,
    /// OSPF interfaces that should each reach a Full adjacency (non-passive, on a link to
    /// another router); `--wait` waits for them.
    #[serde(default)]
    pub ospf_links: Vec<String>,
    /// For an oxr router whose FEA programs the kernel (the default dataplane), its kernel
    /// route protocol (`fea.route-protocol`, default 201): `--wait` then also waits for the
    /// RIB's FIB routes to be in the kernel.
    #[serde(default)]
    pub kernel_fib: Option<u32>,
    /// The daemon started for it (oxr-routerd or bird), once spawned.
    pub process: Option<ProcessRecord>,
}

/// A process the lab started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    /// Its pid.
    pub pid: i32,
    /// Its start time (clock ticks since boot, /proc/PID/stat field 22): a pid reused by an
    /// unrelated process after ours died is never signalled.
    pub start_ticks: u64,
    /// When it was started (seconds since the epoch).
    pub started_unix: u64,
}

/// A lab's run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// `<root>/<lab>`.
    pub path: PathBuf,
}

impl RunDir {
    /// The run directory of `lab` under `root`.
    pub fn new(root: &Path, lab: &str) -> RunDir {
        RunDir {
            path: root.join(lab),
        }
    }

    /// `state.json`.
    pub fn state_file(&self) -> PathBuf {
        self.path.join("state.json")
    }

    /// Reads the state, None if there is none.
    pub fn load(&self) -> anyhow::Result<Option<State>> {
        match std::fs::read(self.state_file()) {
            Ok(b) => Ok(Some(serde_json::from_slice(&b).map_err(|e| {
                anyhow::anyhow!("{}: {e}", self.state_file().display())
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::anyhow!("{}: {e}", self.state_file().display())),
        }
    }

    /// Writes the state atomically: a crash leaves the old or the new file, never half.
    pub fn save(&self, state: &State) -> anyhow::Result<()> {
        let tmp = self.path.join("state.json.tmp");
        let text = serde_json::to_vec_pretty(state)?;
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, self.state_file()))
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.state_file().display()))
    }
}

/// Names of the labs that have a run directory under `root`.
pub fn list(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("state.json").exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    v.sort();
    v
}

/// Seconds since the epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_lists() {
        let root = tempfile::tempdir().unwrap();
        let rd = RunDir::new(root.path(), "lab1");
        std::fs::create_dir_all(&rd.path).unwrap();
        assert_eq!(rd.load().unwrap(), None);
        let mut s = State {
            lab: "lab1".into(),
            namespaces: vec!["lab1-r1".into()],
            ..Default::default()
        };
        s.nodes.insert(
            "r1".into(),
            NodeState {
                kind: "oxr".into(),
                netns: "lab1-r1".into(),
                process: Some(ProcessRecord {
                    pid: 42,
                    start_ticks: 7,
                    started_unix: 1,
                }),
                ..Default::default()
            },
        );
        rd.save(&s).unwrap();
        assert_eq!(rd.load().unwrap(), Some(s));
        std::fs::create_dir_all(root.path().join("not-a-lab")).unwrap();
        assert_eq!(list(root.path()), ["lab1"]);
    }
}
