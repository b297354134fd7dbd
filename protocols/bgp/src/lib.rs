//! oxr-bgp: a BGP-4 speaker (RFC 4271).
//!
//! This crate holds the socket-free core: the wire codec with RFC 7606 error
//! handling ([`packet`]), the session FSM ([`session`]), the decision process
//! ([`decision`]), Adj-RIB-In/Loc-RIB structures ([`rib`]), import/export policy
//! ([`policy`]), an MRT TABLE_DUMP_V2 writer ([`mrt`]) and configuration types
//! ([`config`]). The event loop, RIB client and gRPC service come on top.

pub mod packet;
pub mod session;
