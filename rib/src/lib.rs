//! oxr-rib: the routing information base. Protocols publish routes to it (`Publish`), it
//! selects the best per prefix (administrative distance, then metric, ECMP), resolves
//! recursive next hops through its own longest match, answers next-hop watches and
//! redistribution, and feeds the result to oxr-fea (`ProgramFib`).
//!
//! Modules follow XORP's RIB stages as concepts over one flat prefix map:
//! [`table`] (the map), [`selection`], [`resolve`], [`nexthop_watch`], [`redistribution`],
//! [`fib_feed`], [`connected`]; [`state`] runs them for each change, [`actor`] owns the state
//! in one task, [`api`]/[`publish`] are the gRPC front, [`show`] the show commands.

pub mod actor;
pub mod api;
pub mod connected;
pub mod fib_feed;
pub mod intern;
pub mod nexthop_watch;
pub mod publish;
pub mod redistribution;
pub mod resolve;
pub mod selection;
pub mod show;
pub mod state;
#[cfg(test)]
mod state_tests;
pub mod table;
pub mod testing;

pub use actor::{spawn, Cmd, RibHandle};
pub use state::{RibOptions, RibState};
