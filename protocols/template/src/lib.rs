//! oxr-template: a minimal oxr routing protocol process, the starting point of a new one
//! (`oxr-new-protocol NAME` copies this crate, renaming `template` to NAME).
//!
//! It does the three things every protocol does, in the standard shape of an oxr protocol
//! crate (see `protocols/README.md`):
//!
//! - [`config`]: its section `protocols.template` (typed, checked; oxr-routerd learns it
//!   from this binary, no routerd change needed).
//! - [`packet`]: a wire format (pure encode/decode): a hello naming its sender.
//! - [`instance`]: the event loop's state machine, pure: config, interfaces, packets and
//!   timers in; packets, timers and RIB updates out.
//! - [`rib`]: the routes it publishes (here: the configured `route."PREFIX".via`).
//! - [`api`]: its show command (`show template`), served to oxrsh with no shell change.
//! - `main.rs`: the process: `Runtime::run_protocol` runs the instance in the SDK's event
//!   loop, the only I/O (sockets, clock, SDK clients).

pub mod api;
pub mod config;
pub mod instance;
pub mod packet;
pub mod rib;

/// The process's name: its config section, socket (`template.sock`), RIB protocol name and
/// binary (`oxr-template`).
pub const PROCESS: &str = "template";
