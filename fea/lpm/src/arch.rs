//! The only `unsafe` of the crate: software prefetch and the switch to a code path compiled
//! with the `popcnt` instruction enabled.
//!
//! Why the second: the default `x86_64` target has no `popcnt`, and the Poptrie does one or
//! two population counts per trie level; the software fallback costs ~10 instructions each.
//! The workspace does not set `-C target-cpu`, so the lookup loops are compiled twice (once
//! plain, once inside a `#[target_feature(enable = "popcnt")]` function, into which the
//! `#[inline(always)]` bodies are inlined) and the CPU is probed once, when a table is created.

#![allow(unsafe_code)]

use crate::key::Key;
use crate::poptrie::Poptrie;
use crate::NextHopId;

/// Hints the CPU to fetch `slice[i]`, whether or not `i` is in bounds: the address is only
/// computed (wrapping), never dereferenced, so lookup code can prefetch without a branch.
#[inline(always)]
pub(crate) fn prefetch_index<T>(slice: &[T], i: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p = slice.as_ptr().wrapping_add(i);
        // SAFETY: prefetch is a hint: it never faults, even on an unmapped address, and
        // reads nothing into the program's state.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (slice, i);
}

/// Whether this CPU has a hardware population count (probed at run time).
pub(crate) fn has_popcnt() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("popcnt")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Batch lookup, on the `popcnt` code path when `fast` is true.
#[inline]
pub(crate) fn lookup_batch<K: Key>(
    t: &Poptrie<K>,
    fast: bool,
    addrs: &[K],
    out: &mut [Option<NextHopId>],
) {
    #[cfg(target_arch = "x86_64")]
    if fast {
        // SAFETY: `fast` is only true when `has_popcnt()` said this CPU has `popcnt`
        // (`Poptrie` sets it that way and never changes it), the one requirement of calling
        // a `#[target_feature(enable = "popcnt")]` function.
        return unsafe { batch_popcnt(t, addrs, out) };
    }
    let _ = fast;
    t.batch_body(addrs, out)
}

/// Single lookup, on the `popcnt` code path when `fast` is true.
#[inline]
pub(crate) fn lookup<K: Key>(t: &Poptrie<K>, fast: bool, addr: K) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if fast {
        // SAFETY: as in `lookup_batch`: `fast` implies the CPU has `popcnt`.
        return unsafe { lookup_popcnt(t, addr) };
    }
    let _ = fast;
    t.lookup_body(addr)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
fn batch_popcnt<K: Key>(t: &Poptrie<K>, addrs: &[K], out: &mut [Option<NextHopId>]) {
    t.batch_body(addrs, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
fn lookup_popcnt<K: Key>(t: &Poptrie<K>, addr: K) -> u32 {
    t.lookup_body(addr)
}
