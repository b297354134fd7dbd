//! The `xdp` engine: loads bpf/fastpath.c (compiled by build.rs), attaches it to interfaces
//! and keeps its maps equal to [`crate::tables::Tables`] through [`EngineOp`]s. Also the
//! loader the `afxdp` engine uses (same program in mode 1: forwardable frames go to the
//! AF_XDP socket of their queue instead of the devmap).
//!
//! Map values are the byte layouts of bpf/fastpath.h, built here with explicit
//! little-endian integers (BPF runs in host order; x86-64 and arm64 are little-endian).

use std::collections::BTreeMap;
use std::net::IpAddr;

use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Array, DevMapHash, HashMap, MapData, PerCpuArray};
use aya::programs::{Xdp, XdpMode};
use aya::Ebpf;
use ipnet::IpNet;

use crate::engine::{Engine, COUNTER_NAMES};
use crate::tables::{EngineOp, NhKey, NhKind, MAX_GROUPS, MAX_PATHS};

/// The compiled XDP program; empty when build.rs could not compile it.
static OBJECT: &[u8] = aya::include_bytes_aligned!(env!("OXR_FASTPATH_BPF_OBJ"));

/// Next-hop slots in the BPF `nexthops` array (bpf/fastpath.c).
pub const MAX_NEXTHOPS: u32 = 65536;

/// Whether the XDP program was built.
pub fn available() -> bool {
    !OBJECT.is_empty()
}

/// How the program hands over forwardable frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Rewrite and redirect through the devmap in XDP.
    Redirect = 0,
    /// Redirect untouched to the AF_XDP socket of the rx queue.
    Userspace = 1,
}

/// `struct fp_nexthop` (24 bytes).
pub fn nexthop_bytes(nh: &NhKey) -> [u8; 24] {
    let mut b = [0u8; 24];
    let kind: u32 = match nh.kind {
        NhKind::Gateway(_) => 1,
        NhKind::Direct => 2,
        NhKind::Local => 3,
        NhKind::Blackhole => 4,
        NhKind::Kernel => 5,
        NhKind::Group(_) => 6,
    };
    b[0..4].copy_from_slice(&kind.to_le_bytes());
    b[4..8].copy_from_slice(&nh.ifindex.to_le_bytes());
    match nh.kind {
        NhKind::Gateway(IpAddr::V4(a)) => b[8..12].copy_from_slice(&a.octets()),
        NhKind::Gateway(IpAddr::V6(a)) => b[8..24].copy_from_slice(&a.octets()),
        NhKind::Group(gid) => b[8..12].copy_from_slice(&gid.to_le_bytes()),
        _ => {}
    }
    b
}

/// Bytes of `struct fp_group`: a member count and up to [`MAX_PATHS`] next-hop ids.
pub const GROUP_BYTES: usize = 4 + 4 * MAX_PATHS;

/// `struct fp_group` (the members past [`MAX_PATHS`] are cut; tables never make more).
pub fn group_bytes(members: &[u32]) -> [u8; GROUP_BYTES] {
    let mut b = [0u8; GROUP_BYTES];
    let n = members.len().min(MAX_PATHS);
    b[0..4].copy_from_slice(&(n as u32).to_le_bytes());
    for (i, m) in members.iter().take(n).enumerate() {
        b[4 + 4 * i..8 + 4 * i].copy_from_slice(&m.to_le_bytes());
    }
    b
}

/// `struct fp_neigh_key` (24 bytes).
pub fn neigh_key_bytes(ifindex: u32, addr: IpAddr) -> [u8; 24] {
    let mut b = [0u8; 24];
    b[0..4].copy_from_slice(&ifindex.to_le_bytes());
    match addr {
        IpAddr::V4(a) => {
            b[4..8].copy_from_slice(&4u32.to_le_bytes());
            b[8..12].copy_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            b[4..8].copy_from_slice(&6u32.to_le_bytes());
            b[8..24].copy_from_slice(&a.octets());
        }
    }
    b
}

/// `struct fp_neigh` (16 bytes).
pub fn neigh_bytes(dmac: [u8; 6], smac: [u8; 6], mtu: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0..6].copy_from_slice(&dmac);
    b[6..12].copy_from_slice(&smac);
    b[12..16].copy_from_slice(&mtu.to_le_bytes());
    b
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The loaded program and its maps.
pub struct XdpEngine {
    bpf: Ebpf,
    name: &'static str,
    links: BTreeMap<u32, aya::programs::xdp::XdpLinkId>,
    /// Interfaces where the driver refused native XDP (generic mode).
    generic: std::collections::BTreeSet<u32>,
    routes: u64,
    neighbors: u64,
}

impl XdpEngine {
    /// Loads the program (not attached yet) in `mode`.
    pub fn load(mode: Mode) -> Result<Self, String> {
        if !available() {
            return Err(
                "the XDP program was not built (install clang and libbpf-dev, then \
                        rebuild oxr-fastpath)"
                    .into(),
            );
        }
        let mut bpf = Ebpf::load(OBJECT).map_err(|e| format!("loading the XDP program: {e}"))?;
        {
            let prog: &mut Xdp = bpf
                .program_mut("oxr_fastpath")
                .ok_or("program oxr_fastpath missing")?
                .try_into()
                .map_err(err)?;
            prog.load().map_err(|e| format!("verifier: {e}"))?;
        }
        let mut config: Array<&mut MapData, u32> =
            Array::try_from(bpf.map_mut("config").ok_or("map config missing")?).map_err(err)?;
        config.set(0, mode as u32, 0).map_err(err)?;
        Ok(XdpEngine {
            bpf,
            name: match mode {
                Mode::Redirect => "xdp",
                Mode::Userspace => "afxdp",
            },
            links: BTreeMap::new(),
            generic: Default::default(),
            routes: 0,
            neighbors: 0,
        })
    }

    /// The loaded object (the afxdp engine registers its sockets in `xsks`).
    pub fn bpf_mut(&mut self) -> &mut Ebpf {
        &mut self.bpf
    }

    fn apply_one(&mut self, op: &EngineOp) -> Result<(), String> {
        match op {
            EngineOp::SetNexthop(id, nh) => {
                if *id >= MAX_NEXTHOPS {
                    return Err(format!("next hop {id} past the map's {MAX_NEXTHOPS}"));
                }
                let mut m: Array<&mut MapData, [u8; 24]> =
                    Array::try_from(self.bpf.map_mut("nexthops").ok_or("nexthops")?)
                        .map_err(err)?;
                m.set(*id, nexthop_bytes(nh), 0).map_err(err)
            }
            EngineOp::ClearNexthop(id) => {
                if *id >= MAX_NEXTHOPS {
                    return Ok(());
                }
                let mut m: Array<&mut MapData, [u8; 24]> =
                    Array::try_from(self.bpf.map_mut("nexthops").ok_or("nexthops")?)
                        .map_err(err)?;
                m.set(*id, [0u8; 24], 0).map_err(err)
            }
            EngineOp::SetGroup(gid, members) => {
                if *gid >= MAX_GROUPS {
                    return Err(format!("ECMP group {gid} past the map's {MAX_GROUPS}"));
                }
                let mut m: Array<&mut MapData, [u8; GROUP_BYTES]> =
                    Array::try_from(self.bpf.map_mut("groups").ok_or("groups")?).map_err(err)?;
                m.set(*gid, group_bytes(members), 0).map_err(err)
            }
            EngineOp::ClearGroup(gid) => {
                if *gid >= MAX_GROUPS {
                    return Ok(());
                }
                let mut m: Array<&mut MapData, [u8; GROUP_BYTES]> =
                    Array::try_from(self.bpf.map_mut("groups").ok_or("groups")?).map_err(err)?;
                m.set(*gid, [0u8; GROUP_BYTES], 0).map_err(err)
            }
            EngineOp::SetRoute(p, id) => {
                self.route(*p, Some(*id))?;
                self.routes += 1;
                Ok(())
            }
            EngineOp::DelRoute(p) => {
                self.route(*p, None)?;
                self.routes = self.routes.saturating_sub(1);
                Ok(())
            }
            EngineOp::SetNeighbor {
                ifindex,
                addr,
                dmac,
                smac,
                mtu,
            } => {
                let mut m: HashMap<&mut MapData, [u8; 24], [u8; 16]> =
                    HashMap::try_from(self.bpf.map_mut("neighbors").ok_or("neighbors")?)
                        .map_err(err)?;
                m.insert(
                    neigh_key_bytes(*ifindex, *addr),
                    neigh_bytes(*dmac, *smac, *mtu),
                    0,
                )
                .map_err(err)?;
                self.neighbors += 1;
                Ok(())
            }
            EngineOp::DelNeighbor { ifindex, addr } => {
                let mut m: HashMap<&mut MapData, [u8; 24], [u8; 16]> =
                    HashMap::try_from(self.bpf.map_mut("neighbors").ok_or("neighbors")?)
                        .map_err(err)?;
                match m.remove(&neigh_key_bytes(*ifindex, *addr)) {
                    Ok(()) => {
                        self.neighbors = self.neighbors.saturating_sub(1);
                        Ok(())
                    }
                    // Absent (it was never resolved on an attached link) counts as done.
                    Err(_) => Ok(()),
                }
            }
        }
    }

    fn route(&mut self, p: IpNet, id: Option<u32>) -> Result<(), String> {
        match p {
            IpNet::V4(n) => {
                let mut m: LpmTrie<&mut MapData, [u8; 4], u32> =
                    LpmTrie::try_from(self.bpf.map_mut("routes4").ok_or("routes4")?)
                        .map_err(err)?;
                let key = Key::new(u32::from(n.prefix_len()), n.network().octets());
                match id {
                    Some(id) => m.insert(&key, id, 0).map_err(err),
                    None => m.remove(&key).or(Ok(())),
                }
            }
            IpNet::V6(n) => {
                let mut m: LpmTrie<&mut MapData, [u8; 16], u32> =
                    LpmTrie::try_from(self.bpf.map_mut("routes6").ok_or("routes6")?)
                        .map_err(err)?;
                let key = Key::new(u32::from(n.prefix_len()), n.network().octets());
                match id {
                    Some(id) => m.insert(&key, id, 0).map_err(err),
                    None => m.remove(&key).or(Ok(())),
                }
            }
        }
    }

    /// Sums the per-CPU outcome counters.
    pub fn read_counters(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        let Some(map) = self.bpf.map("counters") else {
            return out;
        };
        let Ok(arr) = PerCpuArray::<&MapData, u64>::try_from(map) else {
            return out;
        };
        for (i, name) in COUNTER_NAMES.iter().enumerate() {
            if let Ok(v) = arr.get(&(i as u32), 0) {
                out.insert((*name).to_string(), v.iter().sum());
            }
        }
        out
    }
}

impl XdpEngine {
    /// How the program is attached, for `show fastpath`.
    pub fn attach_mode(&self) -> String {
        if self.generic.is_empty() {
            "native XDP".into()
        } else {
            format!(
                "native XDP; generic (skb) XDP on ifindex {}",
                self.generic
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    }
}

impl Engine for XdpEngine {
    fn name(&self) -> &'static str {
        self.name
    }

    fn mode(&self) -> String {
        self.attach_mode()
    }

    fn attach(&mut self, ifindex: u32, name: &str) -> Result<(), String> {
        if self.links.contains_key(&ifindex) {
            return Ok(());
        }
        {
            let mut tx: DevMapHash<&mut MapData> =
                DevMapHash::try_from(self.bpf.map_mut("tx_ports").ok_or("tx_ports")?)
                    .map_err(err)?;
            tx.insert(ifindex, ifindex, None, 0).map_err(err)?;
        }
        let prog: &mut Xdp = self
            .bpf
            .program_mut("oxr_fastpath")
            .ok_or("program missing")?
            .try_into()
            .map_err(err)?;
        // Native mode first (veth, most NIC drivers); generic (skb) mode otherwise.
        let link = match prog.attach_to_if_index(ifindex, XdpMode::Driver) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(interface = name, error = %e, "native XDP refused; using generic mode");
                let l = prog
                    .attach_to_if_index(ifindex, XdpMode::Skb)
                    .map_err(|e| format!("attaching XDP to {name}: {e}"))?;
                self.generic.insert(ifindex);
                l
            }
        };
        self.links.insert(ifindex, link);
        Ok(())
    }

    fn detach(&mut self, ifindex: u32) -> Result<(), String> {
        if let Ok(mut tx) =
            DevMapHash::<&mut MapData>::try_from(self.bpf.map_mut("tx_ports").ok_or("tx_ports")?)
        {
            let _ = tx.remove(ifindex);
        }
        self.generic.remove(&ifindex);
        let Some(link) = self.links.remove(&ifindex) else {
            return Ok(());
        };
        let prog: &mut Xdp = self
            .bpf
            .program_mut("oxr_fastpath")
            .ok_or("program missing")?
            .try_into()
            .map_err(err)?;
        prog.detach(link).map_err(err)
    }

    fn apply(&mut self, ops: &[EngineOp]) -> usize {
        let mut failed = 0;
        for op in ops {
            if let Err(e) = self.apply_one(op) {
                failed += 1;
                tracing::warn!(?op, error = %e, "XDP map update failed");
            }
        }
        failed
    }

    fn counters(&self) -> BTreeMap<String, u64> {
        self.read_counters()
    }

    fn memory_bytes(&self) -> u64 {
        // Entry sizes plus the kernel's per-entry overhead (LPM trie node, hash bucket).
        self.routes * (32 + 24) + self.neighbors * (24 + 16 + 48) + u64::from(MAX_NEXTHOPS) * 24
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_values_have_the_c_layout() {
        let nh = NhKey {
            kind: NhKind::Gateway("10.0.0.2".parse().unwrap()),
            ifindex: 7,
        };
        let b = nexthop_bytes(&nh);
        assert_eq!(&b[0..4], &1u32.to_le_bytes());
        assert_eq!(&b[4..8], &7u32.to_le_bytes());
        assert_eq!(&b[8..12], &[10, 0, 0, 2]);
        let k = neigh_key_bytes(3, "2001:db8::1".parse().unwrap());
        assert_eq!(&k[4..8], &6u32.to_le_bytes());
        assert_eq!(k[8], 0x20);
        let g = nexthop_bytes(&NhKey::special(NhKind::Group(9)));
        assert_eq!(&g[0..4], &6u32.to_le_bytes());
        assert_eq!(&g[8..12], &9u32.to_le_bytes());
        let g = group_bytes(&[4, 7]);
        assert_eq!(&g[0..4], &2u32.to_le_bytes());
        assert_eq!(&g[4..12], &[4, 0, 0, 0, 7, 0, 0, 0]);
        let v = neigh_bytes([1; 6], [2; 6], 1500);
        assert_eq!(&v[6..12], &[2; 6]);
        assert_eq!(&v[12..16], &1500u32.to_le_bytes());
    }

    #[test]
    fn the_program_is_built_here() {
        // CI installs clang and libbpf-dev; a build without them must say so loudly.
        assert!(available(), "build.rs could not compile bpf/fastpath.c");
    }
}
