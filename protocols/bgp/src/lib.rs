//! oxr-bgp: a BGP-4 speaker (RFC 4271).
//!
//! This crate holds the socket-free core: the wire codec with RFC 7606 error
//! handling ([`packet`]), the session FSM ([`session`]), the decision process
//! ([`decision`]), Adj-RIB-In/Loc-RIB structures ([`rib`]), import/export policy
//! ([`policy`]), an MRT TABLE_DUMP_V2 writer ([`mrt`]) and configuration types
//! ([`config`]); the speaker as a pure event loop ([`instance`]); UPDATE
//! packing ([`packet::pack`]). The process adds the socket layer ([`io`], the
//! only I/O and the only `unsafe`: TCP_MD5SIG), the RIB feed ([`rib_feed`])
//! and show/clear/metrics rendering ([`api`]); `src/main.rs` wires them to
//! the SDK (config watcher, RibPublisher, NexthopWatcher, ShowHandler).

pub mod api;
pub mod config;
pub mod decision;
pub mod instance;
pub mod io;
pub mod mrt;
pub mod packet;
pub mod policy;
pub mod rib;
pub mod rib_feed;
pub mod session;
