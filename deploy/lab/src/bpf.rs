//! The XDP-native traffic generator and sink: two tiny eBPF programs, assembled here (no
//! clang, no ELF loader), loaded with the `bpf(2)` system call.
//!
//! - Generator: a program that returns `XDP_TX`, run with `BPF_PROG_RUN` and
//!   `BPF_F_TEST_XDP_LIVE_FRAMES` on one prepared frame, `repeat` times per call. Live frames
//!   are really transmitted: `XDP_TX` sends each out of the `ingress_ifindex` given in the
//!   context (the source's veth), whose peer receives it through `ndo_xdp_xmit` straight
//!   into its NAPI ring: no socket, no qdisc, no copy.
//! - Sink: a program attached to the sink's veth (a BPF link) that adds one to a per-CPU
//!   counter and returns `XDP_DROP`; the counter is read from user space.
//!
//! The only `unsafe` is the system call itself ([`sys_bpf`]); attributes are built as byte
//! buffers at the kernel's documented offsets (include/uapi/linux/bpf.h).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

const BPF_MAP_CREATE: u32 = 0;
const BPF_MAP_LOOKUP_ELEM: u32 = 1;
const BPF_PROG_LOAD: u32 = 5;
const BPF_PROG_TEST_RUN: u32 = 10;
const BPF_LINK_CREATE: u32 = 28;
const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;
const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;
const XDP_DROP: i32 = 1;
const XDP_TX: i32 = 3;

/// `bpf(cmd, attr, size)`; returns the (non-negative) result.
#[allow(unsafe_code)]
fn sys_bpf(cmd: u32, attr: &mut [u8]) -> io::Result<i32> {
    // SAFETY: `attr` is a live, writable buffer of `attr.len()` bytes laid out as the
    // kernel's `union bpf_attr` for `cmd`; every pointer stored inside it (by the callers
    // below) points to a buffer that outlives this call and is as large as the size given
    // beside it. The kernel reads and writes only within those bounds.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr.as_mut_ptr(),
            attr.len(),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as i32)
    }
}

fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_ne_bytes());
}

fn get32(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

#[allow(unsafe_code)]
fn fd(r: i32) -> OwnedFd {
    // SAFETY: `r` is a file descriptor the kernel just returned to us and nobody else owns.
    unsafe { OwnedFd::from_raw_fd(r as RawFd) }
}

/// One eBPF instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// Destination register.
    pub dst: u8,
    /// Source register.
    pub src: u8,
    /// Offset.
    pub off: i16,
    /// Immediate.
    pub imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    /// The 8-byte encoding (little-endian host: dst in the low nibble).
    pub fn encode(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = (self.src << 4) | (self.dst & 0x0f);
        b[2..4].copy_from_slice(&self.off.to_le_bytes());
        b[4..8].copy_from_slice(&self.imm.to_le_bytes());
        b
    }
}

/// `r0 = XDP_TX; exit`.
pub fn tx_program() -> Vec<Insn> {
    vec![
        Insn::new(0xb7, 0, 0, 0, XDP_TX), // mov64 r0, XDP_TX
        Insn::new(0x95, 0, 0, 0, 0),      // exit
    ]
}

/// Counts into slot 0 of the per-CPU array `map_fd`, then drops.
pub fn count_program(map_fd: i32) -> Vec<Insn> {
    vec![
        Insn::new(0x62, 10, 0, -4, 0), // *(u32 *)(r10 - 4) = 0      (the key)
        Insn::new(0xbf, 2, 10, 0, 0),  // r2 = r10
        Insn::new(0x07, 2, 0, 0, -4),  // r2 += -4
        Insn::new(0x18, 1, 1, 0, map_fd), // r1 = map (ld_imm64, BPF_PSEUDO_MAP_FD)
        Insn::new(0x00, 0, 0, 0, 0),   //   (second half of ld_imm64)
        Insn::new(0x85, 0, 0, 0, 1),   // call bpf_map_lookup_elem
        Insn::new(0x15, 0, 0, 3, 0),   // if r0 == 0 goto drop
        Insn::new(0x79, 1, 0, 0, 0),   // r1 = *(u64 *)(r0 + 0)
        Insn::new(0x07, 1, 0, 0, 1),   // r1 += 1
        Insn::new(0x7b, 0, 1, 0, 0),   // *(u64 *)(r0 + 0) = r1   (per CPU: no atomics)
        Insn::new(0xb7, 0, 0, 0, XDP_DROP), // drop: r0 = XDP_DROP
        Insn::new(0x95, 0, 0, 0, 0),   // exit
    ]
}

/// Loads an XDP program; the verifier's log is in the error if it is refused.
pub fn load_xdp(insns: &[Insn]) -> io::Result<OwnedFd> {
    let code: Vec<u8> = insns.iter().flat_map(|i| i.encode()).collect();
    let license = b"GPL\0";
    let mut log = vec![0u8; 16 * 1024];
    let mut attr = [0u8; 128];
    put32(&mut attr, 0, BPF_PROG_TYPE_XDP);
    put32(&mut attr, 4, insns.len() as u32);
    put64(&mut attr, 8, code.as_ptr() as u64);
    put64(&mut attr, 16, license.as_ptr() as u64);
    put32(&mut attr, 24, 1); // log_level
    put32(&mut attr, 28, log.len() as u32);
    put64(&mut attr, 32, log.as_mut_ptr() as u64);
    attr[48..56].copy_from_slice(b"oxr_lab\0");
    put32(&mut attr, 68, BPF_XDP); // expected_attach_type
    match sys_bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(r) => Ok(fd(r)),
        Err(e) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            Err(io::Error::new(
                e.kind(),
                format!(
                    "loading the XDP program: {e}: {}",
                    String::from_utf8_lossy(&log[..end]).trim()
                ),
            ))
        }
    }
}

/// A per-CPU array of one u64.
pub fn percpu_counter() -> io::Result<OwnedFd> {
    let mut attr = [0u8; 128];
    put32(&mut attr, 0, BPF_MAP_TYPE_PERCPU_ARRAY);
    put32(&mut attr, 4, 4);
    put32(&mut attr, 8, 8);
    put32(&mut attr, 12, 1);
    sys_bpf(BPF_MAP_CREATE, &mut attr).map(fd)
}

/// CPUs the kernel may have (sizes per-CPU map values): /sys/devices/system/cpu/possible.
pub fn possible_cpus() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .ok()
        .and_then(|s| parse_cpu_range(&s))
        .unwrap_or(1)
}

/// "0-3,5" -> 6 (the highest CPU plus one).
pub fn parse_cpu_range(s: &str) -> Option<usize> {
    let mut max = None;
    for part in s.trim().split(',') {
        let hi = part.rsplit('-').next()?.trim().parse::<usize>().ok()?;
        max = Some(max.map_or(hi, |m: usize| m.max(hi)));
    }
    max.map(|m| m + 1)
}

/// The sum over CPUs of slot 0 of a per-CPU counter map.
pub fn read_counter(map: &OwnedFd) -> io::Result<u64> {
    use std::os::fd::AsRawFd;
    let key = 0u32.to_ne_bytes();
    let mut value = vec![0u8; 8 * possible_cpus()];
    let mut attr = [0u8; 128];
    put32(&mut attr, 0, map.as_raw_fd() as u32);
    put64(&mut attr, 8, key.as_ptr() as u64);
    put64(&mut attr, 16, value.as_mut_ptr() as u64);
    sys_bpf(BPF_MAP_LOOKUP_ELEM, &mut attr)?;
    Ok(value
        .chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
        .sum())
}

/// Attaches an XDP program to an interface (of the caller's namespace) through a BPF link:
/// detached again when the returned descriptor is closed.
pub fn attach_xdp(prog: &OwnedFd, ifindex: u32) -> io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    let mut attr = [0u8; 128];
    put32(&mut attr, 0, prog.as_raw_fd() as u32);
    put32(&mut attr, 4, ifindex);
    put32(&mut attr, 8, BPF_XDP);
    sys_bpf(BPF_LINK_CREATE, &mut attr).map(fd)
}

/// Sends `repeat` copies of `frame` out of `ifindex` as live XDP frames (the program must
/// return `XDP_TX`), `batch` frames per kernel batch (0: the kernel's default, 64); returns
/// the program's last return value.
///
/// Each call with `repeat` > 1 adds the program to the kernel's XDP dispatcher for its
/// duration and removes it after, and each change of the dispatcher waits for an RCU grace
/// period (~25-30 ms here) unless the program is already in it: keep it there while
/// generating with [`attach_xdp`] on an idle interface (see [`crate::rfc2544::xdp_generate`]).
pub fn run_live(
    prog: &OwnedFd,
    frame: &[u8],
    ifindex: u32,
    repeat: u32,
    batch: u32,
) -> io::Result<u32> {
    use std::os::fd::AsRawFd;
    // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
    // egress_ifindex.
    let mut ctx = [0u8; 24];
    put32(&mut ctx, 4, frame.len() as u32);
    put32(&mut ctx, 12, ifindex);
    let mut attr = [0u8; 80];
    put32(&mut attr, 0, prog.as_raw_fd() as u32);
    put32(&mut attr, 8, frame.len() as u32);
    put64(&mut attr, 16, frame.as_ptr() as u64);
    put32(&mut attr, 32, repeat);
    put32(&mut attr, 40, ctx.len() as u32);
    put64(&mut attr, 48, ctx.as_ptr() as u64);
    put32(&mut attr, 64, BPF_F_TEST_XDP_LIVE_FRAMES);
    put32(&mut attr, 72, batch); // batch_size
    sys_bpf(BPF_PROG_TEST_RUN, &mut attr)?;
    Ok(get32(&attr, 4))
}

/// Whether this kernel refuses `BPF_PROG_RUN` with live frames (EPERM even for root:
/// some kernel builds disable it), so the XDP-native generator cannot run here. Probed
/// with one frame through a program that drops it.
pub fn live_frames_refused() -> io::Result<bool> {
    let prog = load_xdp(&[
        Insn::new(0xb7, 0, 0, 0, XDP_DROP), // mov64 r0, XDP_DROP
        Insn::new(0x95, 0, 0, 0, 0),        // exit
    ])?;
    let frame = udp_frame(
        [0xff; 6],
        [0x02, 0, 0, 0, 0, 1],
        std::net::Ipv4Addr::new(192, 0, 2, 1),
        std::net::Ipv4Addr::new(192, 0, 2, 2),
        64,
    );
    let mut attr = [0u8; 80];
    put32(&mut attr, 0, std::os::fd::AsRawFd::as_raw_fd(&prog) as u32);
    put32(&mut attr, 8, frame.len() as u32);
    put64(&mut attr, 16, frame.as_ptr() as u64);
    put32(&mut attr, 32, 1); // repeat
    put32(&mut attr, 64, BPF_F_TEST_XDP_LIVE_FRAMES);
    match sys_bpf(BPF_PROG_TEST_RUN, &mut attr) {
        Ok(_) => Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Ok(true),
        Err(e) => Err(e),
    }
}

/// An Ethernet + IPv4 + UDP frame of `size` bytes on the wire (FCS included in `size`, not
/// in the buffer), checksummed; UDP checksum 0 (none, allowed over IPv4).
pub fn udp_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: std::net::Ipv4Addr,
    dst: std::net::Ipv4Addr,
    size: usize,
) -> Vec<u8> {
    let len = size.saturating_sub(4).max(14 + 20 + 8);
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (len - 14) as u16;
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[8] = 64; // TTL
    ip[9] = 17; // UDP
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let sum = ipv4_checksum(ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let udp = &mut f[34..42];
    udp[0..2].copy_from_slice(&9u16.to_be_bytes());
    udp[2..4].copy_from_slice(&9u16.to_be_bytes());
    udp[4..6].copy_from_slice(&(ip_len - 20).to_be_bytes());
    f
}

/// The Internet checksum of an IPv4 header (its checksum field zero).
pub fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut s: u32 = h
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let v: Vec<u8> = s
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).ok())
        .collect::<Option<_>>()?;
    v.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_encode_like_the_kernel_expects() {
        // mov64 r0, 3
        assert_eq!(tx_program()[0].encode(), [0xb7, 0x00, 0, 0, 3, 0, 0, 0]);
        // ld_imm64 r1 with a map fd: src register 1 (BPF_PSEUDO_MAP_FD), dst 1.
        let p = count_program(7);
        assert_eq!(p[3].encode(), [0x18, 0x11, 0, 0, 7, 0, 0, 0]);
        // The jump skips exactly to `r0 = XDP_DROP`.
        assert_eq!(p[6 + 1 + p[6].off as usize].imm, XDP_DROP);
        // *(u32 *)(r10 - 4) = 0: offset -4.
        assert_eq!(p[0].encode()[1..4], [0x0a, 0xfc, 0xff]);
    }

    #[test]
    fn frames_have_the_asked_size_and_a_valid_ip_checksum() {
        let f = udp_frame(
            [2; 6],
            [4; 6],
            "10.1.0.2".parse().unwrap(),
            "10.2.0.99".parse().unwrap(),
            64,
        );
        assert_eq!(f.len(), 60);
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        // A header with its checksum in place sums to zero.
        assert_eq!(ipv4_checksum(&f[14..34]), 0);
        assert_eq!(u16::from_be_bytes([f[16], f[17]]), 46);
        assert_eq!(u16::from_be_bytes([f[38], f[39]]), 26);
        assert_eq!(
            udp_frame([0; 6], [0; 6], [0; 4].into(), [0; 4].into(), 1518).len(),
            1514
        );
    }

    #[test]
    fn cpu_ranges_and_macs_parse() {
        assert_eq!(parse_cpu_range("0-1\n"), Some(2));
        assert_eq!(parse_cpu_range("0-3,8"), Some(9));
        assert_eq!(parse_cpu_range("0"), Some(1));
        assert_eq!(parse_cpu_range("x"), None);
        assert_eq!(
            parse_mac("02:00:0a:ff:00:01"),
            Some([2, 0, 0x0a, 0xff, 0, 1])
        );
        assert_eq!(parse_mac("02:00"), None);
    }
}
