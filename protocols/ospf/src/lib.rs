//! oxr-ospf: OSPFv2 (RFC 2328) for oxr.
//!
//! The pure core of the protocol (everything below is a function of its inputs), the
//! instance that glues it into one event loop, and the process around it (`oxr-ospf`,
//! src/main.rs):
//!
//! - [`instance`]: the instance as a pure event loop (`handle(now, input) -> outputs`).
//! - [`io`]: raw IP protocol 89 sockets, the crate's only socket code.
//! - [`rib`], [`api`]: routes to oxr-rib, show commands and Prometheus counters.
//!
//! - [`packet`]: wire codec (header, the five packet types, LSAs, checksums, authentication).
//! - [`interface`]: interface state machine and DR/BDR election (RFC 2328 9).
//! - [`neighbor`]: neighbor state machine and database exchange (RFC 2328 10).
//! - [`lsdb`], [`flooding`], [`originate`]: link-state database, flooding decisions (13) and
//!   origination of the router's own LSAs (12.4).
//! - [`throttle`]: RFC 8405 back-off for SPF and LSA generation.
//! - [`spf`], [`route`]: shortest-path tree (16.1) and the routing table (16.1-16.4), ABR
//!   summary origination.
//! - [`config`]: the configuration section (`protocols.ospf`) with validation.

pub mod api;
pub mod config;
pub mod flooding;
pub mod instance;
pub mod interface;
pub mod io;
pub mod lsdb;
pub mod neighbor;
pub mod originate;
pub mod packet;
pub mod rib;
pub mod route;
pub mod spf;
pub mod throttle;

use std::net::Ipv4Addr;

/// An OSPF router ID (a 32-bit number written as an IPv4 address).
pub type RouterId = Ipv4Addr;
/// An OSPF area ID (a 32-bit number written as an IPv4 address); `0.0.0.0` is the backbone.
pub type AreaId = Ipv4Addr;
/// Identifies a local interface (the kernel ifindex in the daemon; any number in tests).
pub type IfIndex = u32;

/// The backbone area, `0.0.0.0`.
pub const BACKBONE: AreaId = Ipv4Addr::UNSPECIFIED;

/// Architectural constants of RFC 2328 appendix B.
pub mod consts {
    /// Refresh interval of self-originated LSAs (s).
    pub const LS_REFRESH_TIME: u16 = 1800;
    /// Minimum time between originations of one LSA (s).
    pub const MIN_LS_INTERVAL: u32 = 5;
    /// Minimum time between accepting new instances of one LSA from flooding (s).
    pub const MIN_LS_ARRIVAL: u32 = 1;
    /// Age at which an LSA is removed from the database (s).
    pub const MAX_AGE: u16 = 3600;
    /// Interval at which the database checksums are verified (s).
    pub const CHECK_AGE: u16 = 300;
    /// Age difference beyond which two instances are considered different (s).
    pub const MAX_AGE_DIFF: u16 = 900;
    /// Metric meaning "unreachable" in summary and AS-external LSAs.
    pub const LS_INFINITY: u32 = 0x00FF_FFFF;
    /// Sequence number of the first instance of an LSA.
    pub const INITIAL_SEQUENCE_NUMBER: i32 = 0x8000_0001u32 as i32;
    /// Largest sequence number; an LSA reaching it must be flushed before wrapping.
    pub const MAX_SEQUENCE_NUMBER: i32 = 0x7FFF_FFFF;
}
