//! The only `unsafe` of the crate: software prefetch, the switch to a code path compiled
//! with the `popcnt` instruction enabled, and the AVX-512 kernel of IPv4 batch lookups.
//!
//! Why the second: the default `x86_64` target has no `popcnt`, and the Poptrie does one or
//! two population counts per trie level; the software fallback costs ~10 instructions each.
//! The workspace does not set `-C target-cpu`, so the lookup loops are compiled twice (once
//! plain, once inside a `#[target_feature(enable = "popcnt")]` function, into which the
//! `#[inline(always)]` bodies are inlined) and the CPU is probed once, when a table is created.
//!
//! Why the third: on the full table the scalar batch spends most of its time on lane
//! bookkeeping and index arithmetic rather than waiting for memory; doing the node step of
//! 16 IPv4 lookups with a few vector instructions (gathers, `vpopcntq`) raised the batch
//! rate for addresses inside the table by ~40% (random addresses: about even, as 3 in 4
//! end at the direct-pointing level). It is probed the same way (AVX-512F and VPOPCNTDQ).

#![allow(unsafe_code)]

use crate::key::Key;
use crate::poptrie::{Node, Poptrie, DEEP, LEAF, STRIDE};
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

/// Whether this CPU has AVX-512F and AVX-512 VPOPCNTDQ (probed at run time), for
/// [`v4_raw`].
pub(crate) fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512vpopcntdq")
            && std::arch::is_x86_feature_detected!("popcnt")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// IPv4 lookups down to the first node level, 16 at a time: `raw[i]` receives the raw leaf
/// of `addrs[i]`, or `DEEP` if its walk goes on below that level (or if `avx512` is false),
/// which the caller finishes in scalar code. `addrs.len()` must be a multiple of 16.
///
/// On the full table fewer than 0.1% of lookups go below the first node level, so they
/// are left to the scalar walk rather than vectorised.
pub(crate) fn v4_raw(
    avx512: bool,
    direct: &[u32],
    nodes: &[Node],
    leaves: &[u32],
    addrs: &[u32],
    raw: &mut [u32],
) {
    assert!(addrs.len() == raw.len() && addrs.len().is_multiple_of(16));
    // The kernel's gathers index with signed 32-bit offsets in units of 4 bytes.
    let fits = direct.len() == 1 << u32::DIRECT_BITS
        && !nodes.is_empty()
        && nodes.len() <= (i32::MAX / 6) as usize
        && !leaves.is_empty()
        && leaves.len() <= i32::MAX as usize;
    #[cfg(target_arch = "x86_64")]
    if avx512 && fits {
        // SAFETY: `avx512` is only true when `has_avx512()` said this CPU has the features
        // the kernel is compiled with (`Poptrie` sets it that way and never changes it),
        // and `fits` is the kernel's precondition on the slice lengths.
        return unsafe { v4_raw_avx512(direct, nodes, leaves, addrs, raw) };
    }
    let _ = (avx512, fits);
    raw.fill(DEEP);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vpopcntdq,popcnt")]
fn v4_raw_avx512(direct: &[u32], nodes: &[Node], leaves: &[u32], addrs: &[u32], raw: &mut [u32]) {
    use core::arch::x86_64::*;
    // The offsets below assume the 24-byte node (`vector`, `leafvec`, `base0`, `base1`)
    // and the first node level at bits 18..24 (hence `a >> 8`).
    #[allow(clippy::eq_op)] // the point: fail to build if those constants change
    const _: () = assert!(size_of::<Node>() == 24 && u32::DIRECT_BITS == 18 && STRIDE == 6);
    // Group t (16 addresses) is prefetched in step t - 2, reads its direct entries in step
    // t, its node in step t + 1 and its leaf in step t + 2, each load prefetched one step
    // earlier: a step of other groups' work covers the latency (longer lags measured no
    // better). The direct entries are read with scalar loads (faster than a gather here),
    // which also prefetch the nodes.
    const LA: usize = 2;
    const LC: usize = 1;
    const LD: usize = 2;
    const RING: usize = 4;
    let groups = addrs.len() / 16;
    let np = nodes.as_ptr().cast::<i64>();
    let lp = leaves.as_ptr().cast::<i32>();
    let node_max = _mm512_set1_epi32((nodes.len() - 1) as i32);
    let leaf_max = _mm512_set1_epi32((leaves.len() - 1) as i32);
    let leaf_bit = _mm512_set1_epi32(LEAF as i32);
    let zero = _mm512_setzero_si512();
    let ones = _mm512_set1_epi64(-1);
    let one = _mm512_set1_epi64(1);
    let c63 = _mm512_set1_epi64(63);
    let mut dbuf = [[0u32; 16]; RING];
    let mut lbuf = [[0u32; 16]; RING];
    let mut kbuf = [(0u16, 0u16); RING];
    let group = |g: usize| &addrs[g * 16..g * 16 + 16];
    for a in addrs.iter().take(16 * LA) {
        prefetch_index(direct, (a >> (32 - u32::DIRECT_BITS)) as usize);
    }
    for t in 0..groups + LD {
        if t + LA < groups {
            for &a in group(t + LA) {
                prefetch_index(direct, (a >> (32 - u32::DIRECT_BITS)) as usize);
            }
        }
        if t < groups {
            let db = &mut dbuf[t % RING];
            for (e, &a) in db.iter_mut().zip(group(t)) {
                let d = direct[(a >> (32 - u32::DIRECT_BITS)) as usize];
                *e = d;
                prefetch_index(nodes, (d & 0u32.wrapping_sub((d >> 31) ^ 1)) as usize);
            }
        }
        if t >= LC && t - LC < groups {
            let g = t - LC;
            // SAFETY: 16 u32s each.
            let (a, d) = unsafe {
                (
                    _mm512_loadu_epi32(group(g).as_ptr().cast()),
                    _mm512_loadu_epi32(dbuf[g % RING].as_ptr().cast()),
                )
            };
            let node_m = _mm512_testn_epi32_mask(d, leaf_bit);
            // Clamped, so that the gathers stay inside `nodes` whatever the entries hold.
            let idx = _mm512_min_epu32(d, node_max);
            let off3 = _mm512_add_epi32(idx, _mm512_add_epi32(idx, idx));
            let off6 = _mm512_add_epi32(off3, off3);
            let (o_lo, o_hi) = (
                _mm512_castsi512_si256(off3),
                _mm512_extracti64x4_epi64::<1>(off3),
            );
            let (m_lo, m_hi) = (node_m as u8, (node_m >> 8) as u8);
            // SAFETY: offsets are 3 * (index < nodes.len()) 8-byte words: `vector` and
            // (one word on) `leafvec` of a node; `off6` indexes the 4-byte `base0` at byte
            // 16 of the node. Lanes outside the masks load nothing.
            let (vec_lo, vec_hi, lv_lo, lv_hi, base0) = unsafe {
                (
                    _mm512_mask_i32gather_epi64::<8>(zero, m_lo, o_lo, np),
                    _mm512_mask_i32gather_epi64::<8>(zero, m_hi, o_hi, np),
                    _mm512_mask_i32gather_epi64::<8>(zero, m_lo, o_lo, np.add(1)),
                    _mm512_mask_i32gather_epi64::<8>(zero, m_hi, o_hi, np.add(1)),
                    _mm512_mask_i32gather_epi32::<4>(zero, node_m, off6, np.add(2).cast()),
                )
            };
            let v = _mm512_and_si512(_mm512_srli_epi32::<8>(a), _mm512_set1_epi32(63));
            let v_lo = _mm512_cvtepu32_epi64(_mm512_castsi512_si256(v));
            let v_hi = _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64::<1>(v));
            let int_lo = _mm512_test_epi64_mask(_mm512_srlv_epi64(vec_lo, v_lo), one);
            let int_hi = _mm512_test_epi64_mask(_mm512_srlv_epi64(vec_hi, v_hi), one);
            let internal = u16::from(int_lo) | (u16::from(int_hi) << 8);
            // rank(leafvec, v): the set bits at positions 0..=v.
            let r_lo = _mm512_popcnt_epi64(_mm512_and_si512(
                lv_lo,
                _mm512_srlv_epi64(ones, _mm512_sub_epi64(c63, v_lo)),
            ));
            let r_hi = _mm512_popcnt_epi64(_mm512_and_si512(
                lv_hi,
                _mm512_srlv_epi64(ones, _mm512_sub_epi64(c63, v_hi)),
            ));
            let rank = _mm512_inserti64x4::<1>(
                _mm512_castsi256_si512(_mm512_cvtepi64_epi32(r_lo)),
                _mm512_cvtepi64_epi32(r_hi),
            );
            let li = _mm512_sub_epi32(_mm512_add_epi32(base0, rank), _mm512_set1_epi32(1));
            let leaf_m = node_m & !internal;
            let li = _mm512_maskz_mov_epi32(leaf_m, _mm512_min_epu32(li, leaf_max));
            let lb = &mut lbuf[g % RING];
            // SAFETY: 16 u32s.
            unsafe { _mm512_storeu_epi32(lb.as_mut_ptr().cast(), li) };
            kbuf[g % RING] = (leaf_m, internal);
            for &l in lb.iter() {
                prefetch_index(leaves, l as usize);
            }
        }
        if t >= LD {
            let g = t - LD;
            let (leaf_m, internal) = kbuf[g % RING];
            // SAFETY: 16 u32s each; leaf indices were clamped below leaves.len().
            let r = unsafe {
                let d = _mm512_loadu_epi32(dbuf[g % RING].as_ptr().cast());
                let li = _mm512_loadu_epi32(lbuf[g % RING].as_ptr().cast());
                let r = _mm512_and_si512(d, _mm512_set1_epi32(!LEAF as i32));
                _mm512_mask_i32gather_epi32::<4>(r, leaf_m, li, lp)
            };
            let r = _mm512_mask_mov_epi32(r, internal, _mm512_set1_epi32(DEEP as i32));
            // SAFETY: 16 u32s.
            unsafe { _mm512_storeu_epi32(raw[g * 16..g * 16 + 16].as_mut_ptr().cast(), r) };
        }
    }
}
