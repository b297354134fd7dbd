//! The engines behind oxr-fastpath: [`NullEngine`] (tables only, nothing attached), the
//! `xdp` engine ([`crate::xdp::XdpEngine`]) and the `afxdp` engine ([`crate::afxdp`]).

use std::collections::BTreeMap;

use crate::tables::EngineOp;

/// Names of the outcome counters, in the XDP program's index order (bpf/fastpath.h).
pub const COUNTER_NAMES: [&str; 15] = [
    "rx",
    "forwarded",
    "pass_not_ip",
    "pass_local",
    "pass_ttl",
    "pass_no_route",
    "pass_no_neighbor",
    "pass_ip_options",
    "drop_blackhole",
    "pass_reject",
    "pass_mtu",
    "pass_not_attached",
    "pass_other",
    "to_userspace",
    "ecmp",
];

/// A forwarding engine: receives the table changes, attaches to interfaces, counts.
pub trait Engine: Send {
    /// "none", "xdp", "afxdp".
    fn name(&self) -> &'static str;
    /// How the engine runs (for `show fastpath`): e.g. copy or zero-copy AF_XDP.
    fn mode(&self) -> String {
        String::new()
    }
    /// Busy polling for the engine's sockets, in microseconds (0: off); engines without
    /// sockets ignore it.
    fn set_busy_poll(&mut self, _usecs: u32) {}
    /// Starts forwarding on an interface.
    fn attach(&mut self, ifindex: u32, name: &str) -> Result<(), String>;
    /// Stops forwarding on an interface.
    fn detach(&mut self, ifindex: u32) -> Result<(), String>;
    /// Applies table changes; returns how many failed (each is logged).
    fn apply(&mut self, ops: &[EngineOp]) -> usize;
    /// Outcome counters summed over CPUs / queues.
    fn counters(&self) -> BTreeMap<String, u64>;
    /// Bytes held by the engine's own structures (maps, buffers).
    fn memory_bytes(&self) -> u64;
}

/// Keeps nothing: the state before any interface is attached.
#[derive(Debug, Default)]
pub struct NullEngine;

impl Engine for NullEngine {
    fn name(&self) -> &'static str {
        "none"
    }
    fn attach(&mut self, _: u32, name: &str) -> Result<(), String> {
        Err(format!("no engine to attach {name} to"))
    }
    fn detach(&mut self, _: u32) -> Result<(), String> {
        Ok(())
    }
    fn apply(&mut self, _: &[EngineOp]) -> usize {
        0
    }
    fn counters(&self) -> BTreeMap<String, u64> {
        BTreeMap::new()
    }
    fn memory_bytes(&self) -> u64 {
        0
    }
}
