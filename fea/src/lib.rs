//! oxr-fea: the Forwarding Engine Abstraction. Learns interfaces from netlink and streams
//! them to subscribers; programs the RIB's FIB into a backend (the Linux kernel through
//! batched rtnetlink with nexthop objects, or memory), reconciling at start so that a
//! restart flushes nothing.
//!
//! Modules: [`netlink`] and [`nexthop`] (wire plumbing), [`interfaces`] (interface state),
//! [`backend`] (kernel / none / fastpath), [`fib`] (ProgramFib and sync semantics),
//! [`config`] (interfaces from config), [`api`] (gRPC and show commands), [`server`]
//! (the daemon, also usable in-process).

pub mod api;
pub mod backend;
pub mod config;
pub mod fib;
pub mod interfaces;
pub mod netlink;
pub mod nexthop;
pub mod server;
pub mod table;

pub use backend::{BackendKind, BackendOptions, FibBackend};
pub use server::{run, run_until, Args};
