//! oxr-rip: RIPv2 (RFC 2453) with RFC 4822 cryptographic authentication, written only
//! against the protocol SDK (`oxr-sdk`), as its worked example.
//!
//! - [`packet`]: wire format, pure codec.
//! - [`instance`]: the protocol as a pure event loop (inputs -> outputs, fake-clock friendly).
//! - [`config`]: the `protocols.rip` section and its schema ([`config::RipSchema`]).
//! - [`rib`]: routes to the RIB (protocol "rip", distance 120).
//! - [`api`]: `show rip routes|neighbors|interfaces` and metrics.

pub mod api;
pub mod config;
pub mod instance;
pub mod packet;
pub mod rib;
