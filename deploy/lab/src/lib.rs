//! oxr-lab: topologies of virtual routers on one host.
//!
//! A lab file ([`spec`]) names oxr routers (one `oxr-routerd` each), BIRD routers, plain
//! hosts and the veth links between them. `oxr-lab up` ([`ops::up`]) makes one network
//! namespace per node (`<lab>-<node>`, so labs coexist), the links and addresses, and starts
//! the daemons, recording everything first in the lab's run directory ([`state`]) so that
//! `oxr-lab down` removes it all even after oxr-lab itself was killed. `--wait` polls each
//! router through oxrsh ([`probe`]) until it has converged; `status` adds each router's
//! adjacencies and sessions. `[switch.NAME]` nodes are bridges (shared LANs, e.g. an IXP).
//!
//! Experiments: [`rfc2544`] (throughput through a chain of routers, with threaded NAPI and
//! core pinning from [`tune`], an XDP-native generator from [`bpf`], a plot from [`plot`])
//! and [`density`] (memory and convergence of many idle routers, against BIRD and FRR).

pub mod bpf;
pub mod density;
pub mod ops;
pub mod plot;
pub mod probe;
pub mod rfc2544;
pub mod spec;
pub mod state;
pub mod sys;
pub mod tune;
