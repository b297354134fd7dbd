//! oxr-static: static routes from the router's configuration (`protocols.static`),
//! published to oxr-rib through the SDK.
//!
//! - [`config`]: the configured section -> the set of routes it asks for.
//! - [`rib`]: one configured route -> the route published; old set vs new set -> updates.
//! - [`instance`]: the event loop (config updates in, RIB updates out).
//! - [`api`]: `show static routes`.

pub mod api;
pub mod config;
pub mod instance;
pub mod rib;

/// The process's name: its socket (`static.sock`), config section and RIB protocol name.
pub const PROCESS: &str = "static";
