//! oxr-hello: the tutorial protocol of `protocols/README.md`, grown from the template
//! (`oxr-new-protocol hello`). Every router floods "hello, here are my connected prefixes"
//! on its interfaces; whoever hears it relays it once and installs those prefixes via the
//! neighbour it heard them from; a router not heard from for `hold-time` is forgotten.
//!
//! - [`config`]: `protocols.hello` (interfaces, hello-interval, hold-time).
//! - [`packet`]: the hello (origin, sequence number, prefixes): pure codec.
//! - [`instance`]: flooding and aging as a pure event loop.
//! - [`rib`]: what the heard hellos add up to in the RIB.
//! - [`api`]: `show hello`.
//! - `main.rs`: the process, the SDK's event loop (`Runtime::run_protocol`): sockets,
//!   clock, SDK clients.

pub mod api;
pub mod config;
pub mod instance;
pub mod packet;
pub mod rib;

/// The process's name: config section, socket, RIB protocol and binary (`oxr-hello`).
pub const PROCESS: &str = "hello";
