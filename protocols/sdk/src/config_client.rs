//! Config delivery: a process's typed config section, from oxr-routerd
//! (`Routerd.WatchConfig`) or, with `--config FILE`, from a router TOML file read once.
//!
//! The watcher yields the newest section only: a process applies a section by comparing it
//! with what it applied last, so intermediate revisions can be skipped safely. When
//! oxr-routerd goes away the watcher keeps the last section and reconnects quietly; a
//! reconnection that delivers the same section yields nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use oxr_proto::routerd::routerd_client::RouterdClient;
use oxr_proto::routerd::WatchConfigRequest;
use oxr_proto::transport::{self, Address};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::backoff::Backoff;
use crate::process::CommonArgs;

/// One delivered configuration section.
#[derive(Debug)]
pub struct ConfigUpdate<T> {
    /// Config revision (0 when read from a file).
    pub revision: u64,
    /// The process's section.
    pub section: T,
    /// Top-level router settings (`[router]`) as JSON.
    pub router: serde_json::Value,
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigLoadError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid router configuration:\n{errors}")]
    Invalid { path: PathBuf, errors: String },
    #[error("section `{section}` of {path} does not match its type: {source}")]
    Section {
        path: PathBuf,
        section: String,
        source: serde_json::Error,
    },
}

/// Reads a router TOML file, validates it whole, and returns `section` typed.
pub fn load_section<T: DeserializeOwned>(
    path: &Path,
    section: &str,
) -> Result<ConfigUpdate<T>, ConfigLoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigLoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let cfg = oxr_config::parse_and_validate_with(
        &text,
        &oxr_config::Registry::global().accept_unregistered(),
    )
    .map_err(|errs| ConfigLoadError::Invalid {
        path: path.to_path_buf(),
        errors: errs
            .iter()
            .map(|e| format!("  {}: {}", e.path, e.reason))
            .collect::<Vec<_>>()
            .join("\n"),
    })?;
    let section_value = serde_json::from_value(cfg.section_json(section)).map_err(|source| {
        ConfigLoadError::Section {
            path: path.to_path_buf(),
            section: section.to_string(),
            source,
        }
    })?;
    Ok(ConfigUpdate {
        revision: 0,
        section: section_value,
        router: serde_json::to_value(&cfg.router).unwrap_or_default(),
    })
}

type Slot<T> = Option<Arc<ConfigUpdate<T>>>;

/// Delivers a process's config section, typed as `T` (e.g. `Option<StaticConfig>`).
pub struct ConfigWatcher<T> {
    rx: watch::Receiver<Slot<T>>,
    /// Keeps the channel open for the file source (which never sends again) and stops the
    /// routerd task when the watcher is dropped.
    _keep: Keep<T>,
}

struct Keep<T> {
    _file: Option<watch::Sender<Slot<T>>>,
    _task: Option<AbortOnDrop>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T: DeserializeOwned + Send + Sync + 'static> ConfigWatcher<T> {
    /// The source the process's arguments name: `--config FILE` if given (read now, errors
    /// returned now), otherwise oxr-routerd in the run directory.
    pub fn start(args: &CommonArgs, section: &str) -> anyhow::Result<Self> {
        match &args.config {
            Some(path) => Ok(Self::from_file(path, section)?),
            None => Ok(Self::from_routerd(args.address_of("routerd")?, section)),
        }
    }

    /// Reads `section` from a router TOML file once.
    pub fn from_file(path: &Path, section: &str) -> Result<Self, ConfigLoadError> {
        let update = load_section(path, section)?;
        let (tx, mut rx) = watch::channel(None);
        rx.mark_changed();
        tx.send_replace(Some(Arc::new(update)));
        Ok(ConfigWatcher {
            rx,
            _keep: Keep {
                _file: Some(tx),
                _task: None,
            },
        })
    }

    /// Watches `section` through oxr-routerd at `addr`.
    pub fn from_routerd(addr: Address, section: &str) -> Self {
        Self::from_routerd_with(addr, section, Backoff::default())
    }

    /// Same, with an explicit reconnection backoff.
    pub fn from_routerd_with(addr: Address, section: &str, backoff: Backoff) -> Self {
        let (tx, rx) = watch::channel(None);
        let task = tokio::spawn(watch_routerd(addr, section.to_string(), backoff, tx));
        ConfigWatcher {
            rx,
            _keep: Keep {
                _file: None,
                _task: Some(AbortOnDrop(task)),
            },
        }
    }

    /// The next section not yet returned. Waits for the first one; after that, for a change.
    /// Never returns `None` while the watcher lives (a file source simply has no second
    /// section).
    pub async fn next(&mut self) -> Option<Arc<ConfigUpdate<T>>> {
        loop {
            self.rx.changed().await.ok()?;
            if let Some(u) = self.rx.borrow_and_update().clone() {
                return Some(u);
            }
        }
    }

    /// The last section received, if any.
    pub fn current(&self) -> Option<Arc<ConfigUpdate<T>>> {
        self.rx.borrow().clone()
    }
}

async fn watch_routerd<T: DeserializeOwned>(
    addr: Address,
    section: String,
    mut backoff: Backoff,
    tx: watch::Sender<Slot<T>>,
) {
    // The last (section, `[router]`) JSON delivered.
    let mut last_json: Option<(String, String)> = None;
    let mut first = true;
    let mut warned = false;
    loop {
        if !first {
            tokio::time::sleep(backoff.next_delay()).await;
        }
        first = false;
        let channel = match transport::connect(&addr).await {
            Ok(c) => c,
            Err(e) => {
                if !warned {
                    let kept = if last_json.is_some() {
                        "keeping the last config; "
                    } else {
                        ""
                    };
                    tracing::warn!(%addr, error = %e, "routerd not reachable; {kept}retrying");
                    warned = true;
                }
                continue;
            }
        };
        let mut stream = match RouterdClient::new(channel)
            .watch_config(WatchConfigRequest {
                section: section.clone(),
            })
            .await
        {
            Ok(r) => r.into_inner(),
            Err(e) => {
                tracing::warn!(%addr, error = %e, "WatchConfig refused; retrying");
                continue;
            }
        };
        warned = false;
        while let Ok(Some(msg)) = stream.message().await {
            backoff.reset();
            // Same section and same `[router]` again (e.g. after reconnecting): nothing new.
            // A change of `[router]` alone (router-id) is news to the protocol.
            if last_json
                .as_ref()
                .is_some_and(|(json, router)| *json == msg.json && *router == msg.router_json)
            {
                continue;
            }
            match serde_json::from_str::<T>(&msg.json) {
                Ok(value) => {
                    tracing::info!(revision = msg.revision, %section, "config received");
                    last_json = Some((msg.json.clone(), msg.router_json.clone()));
                    let router = serde_json::from_str(&msg.router_json).unwrap_or_default();
                    tx.send_replace(Some(Arc::new(ConfigUpdate {
                        revision: msg.revision,
                        section: value,
                        router,
                    })));
                }
                Err(e) => {
                    // routerd validated it, so this is a version mismatch between processes;
                    // keep running on the last good section.
                    tracing::error!(revision = msg.revision, %section, error = %e,
                        "config section does not match this process's schema; ignored");
                }
            }
        }
        tracing::warn!(%addr, "routerd went away; keeping the last config");
    }
}
