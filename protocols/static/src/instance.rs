//! The oxr-static event loop: config updates in, RIB updates out.
//!
//! ```text
//!   oxr-routerd ──WatchConfig──> ConfigWatcher ──Input::Config──┐
//!   (or --config FILE)                                          v
//!                                                          Instance (applied route set)
//!                                                               │ RibUpdate (diff only)
//!   oxr-rib <──Publish── RibPublisher <──────────────────────────┘
//!                        (batches, replays table + EndOfRib after a RIB restart)
//!   oxrsh ──Process.Show──> api::StaticShow <── watch: applied route set
//! ```
//!
//! [`Instance`] holds no I/O: tests feed it inputs and compare the updates it writes into a
//! `Vec<RibUpdate>` against expected files. [`run`] is the only place that touches
//! channels.

use std::sync::Arc;

use oxr_config::StaticConfig;
use oxr_sdk::{ConfigWatcher, RibPublisher, RibSink};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::config::desired_routes;
use crate::rib::{diff, RouteSet};

/// An input of the instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Input {
    /// The `protocols.static` section (None: not configured), new or changed.
    Config(Option<StaticConfig>),
}

/// oxr-static's state: the routes it has published.
#[derive(Debug, Default)]
pub struct Instance {
    applied: RouteSet,
    initial_sent: bool,
}

impl Instance {
    /// An instance that has published nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Handles one input, writing RIB updates into `out`. The first config publishes every
    /// route followed by EndOfRib; later ones publish only the prefixes that changed.
    pub fn handle(&mut self, input: Input, out: &mut impl RibSink) {
        match input {
            Input::Config(cfg) => {
                let desired = desired_routes(cfg.as_ref());
                for u in diff(&self.applied, &desired) {
                    out.apply(u);
                }
                self.applied = desired;
                if !self.initial_sent {
                    self.initial_sent = true;
                    out.end_of_rib();
                }
            }
        }
    }

    /// The routes published, by prefix.
    pub fn routes(&self) -> &RouteSet {
        &self.applied
    }
}

/// Runs the instance: applies each config section as it arrives and publishes the
/// differences; `routes` always holds the applied set, for show commands.
pub async fn run(
    mut config: ConfigWatcher<Option<StaticConfig>>,
    mut rib: RibPublisher,
    routes: watch::Sender<Arc<RouteSet>>,
) -> anyhow::Result<()> {
    let mut instance = Instance::new();
    while let Some(update) = config.next().await {
        let before = instance.routes().len();
        instance.handle(Input::Config(update.section.clone()), &mut rib);
        tracing::info!(
            revision = update.revision,
            routes = instance.routes().len(),
            before,
            "static config applied"
        );
        routes.send_replace(Arc::new(instance.routes().clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxr_sdk::RibUpdate;

    #[test]
    fn first_config_ends_with_end_of_rib_even_when_empty() {
        let mut i = Instance::new();
        let mut out: Vec<RibUpdate> = vec![];
        i.handle(Input::Config(None), &mut out);
        assert_eq!(out, [RibUpdate::EndOfRib]);
        out.clear();
        i.handle(Input::Config(None), &mut out);
        assert!(out.is_empty(), "EndOfRib once");
    }
}
