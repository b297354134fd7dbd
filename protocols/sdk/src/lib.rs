//! The library every oxr process is built on.
//!
//! - [`process`]: the entry point pieces (common arguments, run directory, logging, serving
//!   gRPC on the process's socket together with the generic `oxr.process.Process` show
//!   service, graceful shutdown, [`show_channel`] for state owned by an event loop).
//! - [`runtime`]: the main loop of a protocol process in one call ([`Runtime`]).
//! - [`route`]: routes as protocols see them, [`RibUpdate`] and [`RibSink`], the seam that
//!   keeps a protocol's event loop testable without sockets.
//! - [`rib_client`]: [`RibPublisher`] (batched, coalescing, replaying after RIB restarts),
//!   [`NexthopWatcher`], [`RedistributionWatcher`].
//! - [`fea_client`]: [`InterfaceWatcher`], interfaces and addresses from oxr-fea.
//! - [`config_client`]: [`ConfigWatcher`], the typed config section from oxr-routerd or a file.
//! - [`snapshot`]: step-by-step snapshot tests of an instance against JSON files.
//! - [`testing`]: in-process fake oxr-rib and oxr-routerd servers for tests.
//! - [`protocol`]: [`SectionConfig`], what lets oxr-routerd run a protocol it was not built
//!   with (`--config-schema`, `--check-config`).
//! - [`metrics`]: `GET /metrics` for Prometheus on `--metrics-listen`.
//! - [`sockets`]: UDP, multicast and raw IP sockets bound to one interface, and
//!   [`UdpPerInterface`](sockets::UdpPerInterface), one per active interface.
//! - [`timers`]: [`Timers`], an event loop's named deadlines.
//! - [`udp_protocol`]: [`UdpProtocol`], the event loop of a protocol in the template's shape
//!   (config, interfaces, one UDP socket per interface, timers, RIB, show), run by
//!   [`Runtime::run_protocol`].

pub mod backoff;
pub mod config_client;
pub mod fea_client;
pub mod metrics;
pub mod process;
pub mod protocol;
pub mod rib_client;
pub mod route;
pub mod runtime;
pub mod snapshot;
pub mod sockets;
pub mod testing;
pub mod timers;
pub mod udp_protocol;

pub use config_client::{ConfigUpdate, ConfigWatcher};
pub use fea_client::{Interface, InterfaceEvent, InterfaceWatcher};
pub use process::{show_channel, CommonArgs, ShowHandler, ShowOutput, ShowQuery};
pub use protocol::{SectionConfig, SectionError, SectionSchema};
pub use rib_client::{Hello, NexthopWatcher, RedistributionWatcher, RibPublisher};
pub use route::{Action, Nexthop, RibSink, RibUpdate, Route};
pub use runtime::Runtime;
pub use timers::Timers;
/// For `#[oxr_sdk::async_trait] impl ShowHandler for ..` without a direct tonic dependency.
pub use tonic::async_trait;
pub use udp_protocol::UdpProtocol;
