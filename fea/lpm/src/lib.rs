//! `oxr-lpm`: longest-prefix-match tables for the oxr fast path. No I/O.
//!
//! [`Lpm4`] and [`Lpm6`] are [Poptrie]s (Asai & Ohara, SIGCOMM 2015): a direct-pointing
//! first level (18 bits for IPv4, 16 for IPv6) and then 6-bit levels of popcount-compressed
//! nodes with leaf compression. A full IPv4 Internet table takes a few MiB (see
//! `BENCHMARKS.md`), so the hot part stays in cache, unlike DIR-24-8's 64 MiB first
//! level. IPv6 uses the same layout with 128-bit keys; most IPv6 routes are /48 or shorter,
//! i.e. at most 6 levels below the direct one.
//!
//! ```
//! use oxr_lpm::{Lpm4, NextHopId};
//! let nh = |v| NextHopId::new(v).unwrap();
//! let mut t = Lpm4::from_routes([
//!     ("10.0.0.0/8".parse().unwrap(), nh(1)),
//!     ("10.1.2.0/24".parse().unwrap(), nh(2)),
//! ]);
//! t.insert("10.1.2.128/25".parse().unwrap(), nh(3));
//! let addrs = [0x0A01_0201, 0x0A01_0281, 0x0B00_0000];
//! let mut out = [None; 3];
//! t.lookup_batch(&addrs, &mut out);
//! assert_eq!(out, [Some(nh(2)), Some(nh(3)), None]);
//! assert_eq!(t.lookup(0x0A09_0909), Some(nh(1)));
//! ```
//!
//! # Updates and lookups: single writer, updates between batches
//!
//! A table is plain owned data: lookups take `&self`, [`insert`](Poptrie::insert) and
//! [`remove`](Poptrie::remove) take `&mut self` and patch the structure in place, touching
//! only the subtree of the direct-pointing slot(s) the prefix covers (see [`poptrie`] for the
//! details; a /24 change rebuilds one /18 slot's subtree, typically a few dozen routes).
//! The intended use is that each dataplane thread owns its table (or the one table, with one
//! forwarding thread) and applies the [`Update`]s it received over a channel *between* two
//! packet batches ([`Poptrie::apply`]), so a batch never sees a half-applied update and no
//! lookup pays for any synchronisation (`tests/single_writer.rs` runs exactly that loop). The borrow checker enforces the interleaving: no `&mut` while a batch
//! holds `&self`. A burst of updates costs microseconds each (see the benchmark's update
//! rate), so the pause between batches stays short; a writer that must not stall a reader
//! can instead keep two copies and swap them (left-right), since `Poptrie` is `Clone` and
//! every update is a pure function of the route set.
//!
//! Next hops are [`NextHopId`]s, indices into the dataplane's own next-hop array; a
//! [`Poptrie`] keeps the authoritative route set (a `BTreeMap`) beside the lookup structure,
//! which is what makes incremental updates possible.
//!
//! [Poptrie]: https://doi.org/10.1145/2785956.2787474

mod arch;
pub mod key;
pub mod poptrie;
pub mod reference;

pub use key::Key;
pub use poptrie::{Poptrie, Stats, Update};

/// IPv4 table: keys are addresses as host-order `u32` (`u32::from(Ipv4Addr)`).
pub type Lpm4 = Poptrie<u32>;
/// IPv6 table: keys are addresses as host-order `u128` (`u128::from(Ipv6Addr)`).
pub type Lpm6 = Poptrie<u128>;

/// A next hop: an index into the dataplane's next-hop table, `0..=NextHopId::MAX`.
///
/// 31 bits, because the top bit of a direct-pointing entry tells a leaf from a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NextHopId(u32);

impl NextHopId {
    /// The largest next-hop index (`2^31 - 2`; `2^31 - 1` encodes "no route").
    pub const MAX: u32 = poptrie::NONE_RAW - 1;

    /// The next hop `v`, or `None` if `v > NextHopId::MAX`.
    pub const fn new(v: u32) -> Option<Self> {
        if v <= Self::MAX {
            Some(NextHopId(v))
        } else {
            None
        }
    }

    /// The index.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl From<u16> for NextHopId {
    fn from(v: u16) -> Self {
        NextHopId(u32::from(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_hop_range_excludes_the_no_route_code() {
        assert_eq!(
            NextHopId::new(NextHopId::MAX).map(NextHopId::get),
            Some(NextHopId::MAX)
        );
        assert_eq!(NextHopId::new(NextHopId::MAX + 1), None);
        assert_eq!(NextHopId::from(7u16).get(), 7);
    }
}
