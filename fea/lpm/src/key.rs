//! Address keys: the bit operations the Poptrie needs on an IPv4 (`u32`) or IPv6 (`u128`)
//! address, plus the conversion from `ipnet` prefix types.
//!
//! Bits are numbered from the most significant bit (bit 0 is the first bit of the address),
//! as in a prefix.

use ipnet::{Ipv4Net, Ipv6Net};
use std::fmt::Debug;
use std::hash::Hash;

mod sealed {
    pub trait Sealed {}
    impl Sealed for u32 {}
    impl Sealed for u128 {}
}

/// An address type usable as a Poptrie key: `u32` for IPv4, `u128` for IPv6.
///
/// Sealed: the table layout (direct-pointing width, stride) is tuned per family.
pub trait Key: sealed::Sealed + Copy + Ord + Eq + Hash + Debug + Send + Sync + 'static {
    /// Address width in bits (32 or 128).
    const BITS: u32;
    /// Width of the direct-pointing first level (18 for IPv4, 16 for IPv6).
    const DIRECT_BITS: u32;
    /// The `ipnet` prefix type of this family.
    type Net: Copy + Debug;

    /// The `width` bits starting at bit `offset`, zero-padded past the end of the address.
    /// `width` is at most 24 and `offset < BITS`.
    fn chunk(self, offset: u32, width: u32) -> usize;
    /// The address with every bit at or after `len` cleared (the network address of
    /// the `/len` prefix containing it).
    fn mask(self, len: u32) -> Self;
    /// The address with every bit at or after `len` set (the last address of the `/len`
    /// prefix containing it).
    fn last(self, len: u32) -> Self;
    /// The first address of direct-pointing slot `slot`.
    fn from_slot(slot: usize) -> Self;
    /// Network address (host bits cleared) and length of a prefix.
    fn from_net(net: &Self::Net) -> (Self, u8);
    /// The prefix `addr/len`.
    fn to_net(self, len: u8) -> Self::Net;
    /// These addresses as IPv4 keys, or `None` for IPv6: lets the batch lookup pick its
    /// IPv4-only vector path without specialization.
    #[doc(hidden)]
    fn as_v4(addrs: &[Self]) -> Option<&[u32]> {
        let _ = addrs;
        None
    }
}

impl Key for u32 {
    const BITS: u32 = 32;
    const DIRECT_BITS: u32 = 18;
    type Net = Ipv4Net;

    #[inline(always)]
    fn chunk(self, offset: u32, width: u32) -> usize {
        // Widen to 64 bits so that a chunk reaching past bit 31 reads zeros.
        let x = (u64::from(self) << 32) << offset;
        (x >> (64 - width)) as usize
    }
    #[inline]
    fn mask(self, len: u32) -> Self {
        if len == 0 {
            0
        } else {
            self & (u32::MAX << (32 - len))
        }
    }
    #[inline]
    fn last(self, len: u32) -> Self {
        self | !u32::MAX.checked_shl(32 - len).unwrap_or(0)
    }
    #[inline]
    fn from_slot(slot: usize) -> Self {
        (slot as u32) << (32 - Self::DIRECT_BITS)
    }
    fn from_net(net: &Ipv4Net) -> (Self, u8) {
        let n = net.trunc();
        (u32::from(n.addr()), n.prefix_len())
    }
    fn as_v4(addrs: &[u32]) -> Option<&[u32]> {
        Some(addrs)
    }
    fn to_net(self, len: u8) -> Ipv4Net {
        // Lengths stored in the table are <= 32 by construction.
        Ipv4Net::new(self.into(), len.min(32))
            .unwrap_or_default()
            .trunc()
    }
}

impl Key for u128 {
    const BITS: u32 = 128;
    const DIRECT_BITS: u32 = 16;
    type Net = Ipv6Net;

    #[inline(always)]
    fn chunk(self, offset: u32, width: u32) -> usize {
        // `offset < 128`; bits shifted in from the right are zeros, which is the padding.
        ((self << offset) >> (128 - width)) as usize
    }
    #[inline]
    fn mask(self, len: u32) -> Self {
        if len == 0 {
            0
        } else {
            self & (u128::MAX << (128 - len))
        }
    }
    #[inline]
    fn last(self, len: u32) -> Self {
        self | !u128::MAX.checked_shl(128 - len).unwrap_or(0)
    }
    #[inline]
    fn from_slot(slot: usize) -> Self {
        (slot as u128) << (128 - Self::DIRECT_BITS)
    }
    fn from_net(net: &Ipv6Net) -> (Self, u8) {
        let n = net.trunc();
        (u128::from(n.addr()), n.prefix_len())
    }
    fn to_net(self, len: u8) -> Ipv6Net {
        Ipv6Net::new(self.into(), len.min(128))
            .unwrap_or_default()
            .trunc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_chunk_pads_with_zeros_past_the_end() {
        let a: u32 = 0xC0A8_01FF; // 192.168.1.255
        assert_eq!(a.chunk(0, 8), 0xC0);
        assert_eq!(a.chunk(0, 18), (0xC0A8_01FFu32 >> 14) as usize);
        assert_eq!(a.chunk(30, 6), 0b11_0000);
        assert_eq!(a.chunk(24, 6), 0b11_1111);
    }

    #[test]
    fn v6_chunk_pads_with_zeros_past_the_end() {
        let a: u128 = u128::MAX;
        assert_eq!(a.chunk(124, 6), 0b11_1100);
        assert_eq!(a.chunk(0, 16), 0xFFFF);
    }

    #[test]
    fn mask_and_last_bound_the_prefix() {
        let a: u32 = 0x0A01_0203;
        assert_eq!(a.mask(8), 0x0A00_0000);
        assert_eq!(a.last(8), 0x0AFF_FFFF);
        assert_eq!(a.mask(0), 0);
        assert_eq!(a.last(0), u32::MAX);
        assert_eq!(a.mask(32), a);
        assert_eq!(a.last(32), a);
        let b: u128 = 0x2001_0db8u128 << 96;
        assert_eq!(b.last(32), (0x2001_0db8u128 << 96) | ((1u128 << 96) - 1));
        assert_eq!(b.mask(128), b);
        assert_eq!(b.last(0), u128::MAX);
    }
}
