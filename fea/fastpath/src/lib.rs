//! `oxr-fastpath`: oxr's fast-path dataplane process. oxr-fea programs it through
//! `proto/dataplane.proto` (batched routes with begin/end sync, interface attach/detach,
//! counters); it keeps the routes in oxr-lpm tables, mirrors the kernel's interfaces,
//! addresses and neighbors over netlink (ARP/ND stay the kernel's job), and forwards with
//! one of two engines:
//!
//! - `xdp` ([`xdp`]): bpf/fastpath.c, an XDP router over BPF maps (LPM trie, next-hop array,
//!   neighbor hash, devmap) that this process keeps equal to its tables;
//! - `afxdp` ([`afxdp`]): a poll-mode forwarder on AF_XDP sockets using oxr-lpm.
//!
//! Whatever an engine cannot forward goes to the kernel (local destinations, TTL expiry, no
//! route, unresolved neighbor, ARP/ND, IP options), which keeps the full FIB as the slow
//! path: oxr-fea programs every route into the kernel *and* into the fast path.
//!
//! Modules: [`tables`] (pure state and the engine ops), [`neigh`] (netlink neighbor mirror),
//! [`engine`] (the engine trait), [`service`] (gRPC and show), [`server`] (the daemon).

pub mod afxdp;
pub mod engine;
pub mod neigh;
pub mod server;
pub mod service;
pub mod tables;
pub mod xdp;
