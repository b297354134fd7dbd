//! Link-state advertisements: the common header and the bodies of types 1-5 (RFC 2328 A.4)
//! and 7 (RFC 3101).

use std::net::Ipv4Addr;

use super::checksum::{lsa_checksum_ok, set_lsa_checksum};
use super::error::{DecodeError, Reader};
use crate::consts::MAX_AGE;
use crate::RouterId;

/// Router-LSA.
pub const LSA_ROUTER: u8 = 1;
/// Network-LSA.
pub const LSA_NETWORK: u8 = 2;
/// Summary-LSA for an IP network (type 3).
pub const LSA_SUMMARY_NET: u8 = 3;
/// Summary-LSA for an AS boundary router (type 4).
pub const LSA_SUMMARY_ASBR: u8 = 4;
/// AS-external-LSA.
pub const LSA_EXTERNAL: u8 = 5;
/// NSSA-LSA (RFC 3101).
pub const LSA_NSSA: u8 = 7;

/// Length of the LSA header.
pub const LSA_HEADER_LEN: usize = 20;

/// Options field bits (RFC 2328 A.2, RFC 3101).
pub mod options {
    /// E: AS-external-LSAs are flooded (area is not stub).
    pub const E: u8 = 0x02;
    /// MC: multicast extensions.
    pub const MC: u8 = 0x04;
    /// N/P: NSSA support in Hellos; propagate (translate) bit in type-7 LSAs.
    pub const NP: u8 = 0x08;
    /// EA: external attributes LSAs.
    pub const EA: u8 = 0x10;
    /// DC: demand circuits.
    pub const DC: u8 = 0x20;
    /// O: opaque LSAs (RFC 5250).
    pub const O: u8 = 0x40;
}

/// Router-LSA flag bits.
pub mod router_flags {
    /// B: area border router.
    pub const B: u8 = 0x01;
    /// E: AS boundary router.
    pub const E: u8 = 0x02;
    /// V: virtual link endpoint.
    pub const V: u8 = 0x04;
    /// Nt: NSSA translator (RFC 3101).
    pub const NT: u8 = 0x10;
}

/// The key identifying an LSA in the database (RFC 2328 12.1: type, Link State ID,
/// Advertising Router); the area comes from where the database is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct LsaKey {
    /// LS type.
    pub ls_type: u8,
    /// Link State ID.
    pub lsid: Ipv4Addr,
    /// Advertising Router.
    pub adv_router: RouterId,
}

/// LSA header (RFC 2328 A.4.1).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |            LS age             |    Options    |    LS type    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                        Link State ID                          |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     Advertising Router                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     LS sequence number                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |         LS checksum           |             length            |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LsaHeader {
    /// LS age in seconds (DoNotAge bit not supported).
    pub age: u16,
    /// Options.
    pub options: u8,
    /// LS type.
    pub ls_type: u8,
    /// Link State ID.
    pub lsid: Ipv4Addr,
    /// Advertising Router.
    pub adv_router: RouterId,
    /// LS sequence number (signed, linear space of RFC 2328 12.1.6).
    pub seq: i32,
    /// Fletcher checksum.
    pub checksum: u16,
    /// Length of the whole LSA including this header.
    pub length: u16,
}

impl LsaHeader {
    /// Decodes an LSA header (20 bytes).
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf, "LSA header");
        Self::read(&mut r)
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(LsaHeader {
            age: r.u16()?,
            options: r.u8()?,
            ls_type: r.u8()?,
            lsid: r.addr()?,
            adv_router: r.addr()?,
            seq: r.u32()? as i32,
            checksum: r.u16()?,
            length: r.u16()?,
        })
    }

    /// Appends the 20-byte encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.age.to_be_bytes());
        out.push(self.options);
        out.push(self.ls_type);
        out.extend_from_slice(&self.lsid.octets());
        out.extend_from_slice(&self.adv_router.octets());
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.checksum.to_be_bytes());
        out.extend_from_slice(&self.length.to_be_bytes());
    }

    /// The database key of this LSA.
    pub fn key(&self) -> LsaKey {
        LsaKey {
            ls_type: self.ls_type,
            lsid: self.lsid,
            adv_router: self.adv_router,
        }
    }

    /// Whether the age is MaxAge (the LSA is being flushed).
    pub fn is_maxage(&self) -> bool {
        self.age >= MAX_AGE
    }
}

/// One link of a router-LSA (RFC 2328 A.4.2).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RouterLink {
    /// Link ID (meaning depends on type).
    pub link_id: Ipv4Addr,
    /// Link Data (interface address, ifindex, or mask).
    pub link_data: Ipv4Addr,
    /// Link type.
    pub link_type: LinkType,
    /// TOS 0 metric.
    pub metric: u16,
    /// Additional TOS metrics (TOS, metric), kept for round trips; routing uses TOS 0.
    pub tos: Vec<(u8, u16)>,
}

/// Router-LSA link type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum LinkType {
    /// 1: point-to-point connection to another router.
    PointToPoint,
    /// 2: connection to a transit network.
    Transit,
    /// 3: connection to a stub network.
    Stub,
    /// 4: virtual link.
    Virtual,
    /// Any other value, kept for round trips and ignored by SPF.
    Other(u8),
}

impl LinkType {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => LinkType::PointToPoint,
            2 => LinkType::Transit,
            3 => LinkType::Stub,
            4 => LinkType::Virtual,
            o => LinkType::Other(o),
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            LinkType::PointToPoint => 1,
            LinkType::Transit => 2,
            LinkType::Stub => 3,
            LinkType::Virtual => 4,
            LinkType::Other(o) => o,
        }
    }
}

/// Router-LSA body (RFC 2328 A.4.2).
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |    0    |V|E|B|        0      |            # links            |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                          Link ID                              |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         Link Data                             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |     Type      |     # TOS     |            metric             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |      TOS      |        0      |          TOS  metric          |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                          Link ID  ...                         |
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RouterLsa {
    /// V/E/B (and Nt) flags, see [`router_flags`].
    pub flags: u8,
    /// Links.
    pub links: Vec<RouterLink>,
}

/// Network-LSA body (RFC 2328 A.4.3).
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         Network Mask                          |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                        Attached Router                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                              ...                              |
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NetworkLsa {
    /// Network mask.
    pub mask: Ipv4Addr,
    /// Routers fully adjacent to the DR, the DR included.
    pub attached: Vec<RouterId>,
}

/// Summary-LSA body, types 3 and 4 (RFC 2328 A.4.4).
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         Network Mask                          |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |      0        |                  metric                       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |     TOS       |                TOS  metric                    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SummaryLsa {
    /// Network mask (0 for type 4).
    pub mask: Ipv4Addr,
    /// TOS 0 metric (24 bits).
    pub metric: u32,
    /// Additional TOS metrics.
    pub tos: Vec<(u8, u32)>,
}

/// AS-external-LSA (type 5) and NSSA-LSA (type 7) body (RFC 2328 A.4.5, RFC 3101 2.3).
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         Network Mask                          |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |E|     0       |                  metric                       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                      Forwarding address                       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                      External Route Tag                       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |E|    TOS      |                TOS  metric                    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                      Forwarding address  ...                  |
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExternalLsa {
    /// Network mask.
    pub mask: Ipv4Addr,
    /// E bit: type 2 metric when set.
    pub type2: bool,
    /// TOS 0 metric (24 bits).
    pub metric: u32,
    /// Forwarding address (0.0.0.0: forward to the advertising router).
    pub forwarding: Ipv4Addr,
    /// External route tag.
    pub tag: u32,
    /// Additional TOS entries as raw 12-byte records, kept for round trips.
    pub tos: Vec<[u8; 12]>,
}

/// An LSA body, by type.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum LsaBody {
    /// Type 1.
    Router(RouterLsa),
    /// Type 2.
    Network(NetworkLsa),
    /// Types 3 and 4.
    Summary(SummaryLsa),
    /// Types 5 and 7.
    External(ExternalLsa),
    /// Any other type (e.g. opaque), kept as bytes so it can be flooded unchanged.
    Unknown(Vec<u8>),
}

/// A whole LSA.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Lsa {
    /// Header.
    pub header: LsaHeader,
    /// Body.
    pub body: LsaBody,
}

impl Lsa {
    /// Builds an LSA with age 0 and fills in length and checksum.
    pub fn new(
        options: u8,
        ls_type: u8,
        lsid: Ipv4Addr,
        adv_router: RouterId,
        seq: i32,
        body: LsaBody,
    ) -> Self {
        let mut lsa = Lsa {
            header: LsaHeader {
                age: 0,
                options,
                ls_type,
                lsid,
                adv_router,
                seq,
                checksum: 0,
                length: 0,
            },
            body,
        };
        lsa.finalize();
        lsa
    }

    /// Recomputes the length and checksum fields from the body (after editing an LSA).
    pub fn finalize(&mut self) {
        let bytes = self.encode_with(0, 0);
        self.header.length = bytes.len() as u16;
        let mut bytes = bytes;
        bytes[18..20].copy_from_slice(&self.header.length.to_be_bytes());
        set_lsa_checksum(&mut bytes);
        self.header.checksum = u16::from_be_bytes([bytes[16], bytes[17]]);
    }

    /// Encodes the LSA; length is taken from the body, checksum from the header.
    pub fn encode(&self) -> Vec<u8> {
        self.encode_with(self.header.checksum, self.header.age)
    }

    /// Appends the encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.encode());
    }

    fn encode_with(&self, checksum: u16, age: u16) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        let mut h = self.header;
        h.checksum = checksum;
        h.age = age;
        h.encode(&mut out);
        encode_body(&self.body, &mut out);
        let len = out.len() as u16;
        out[18..20].copy_from_slice(&len.to_be_bytes());
        out
    }

    /// Decodes one LSA from the front of `buf`, verifying its checksum; returns the LSA and
    /// the number of bytes it took.
    pub fn decode(buf: &[u8]) -> Result<(Lsa, usize), DecodeError> {
        let header = LsaHeader::decode(buf)?;
        let length = usize::from(header.length);
        if length < LSA_HEADER_LEN || length > buf.len() {
            return Err(DecodeError::TruncatedLsa {
                length,
                available: buf.len(),
            });
        }
        let raw = &buf[..length];
        if !lsa_checksum_ok(raw) {
            return Err(DecodeError::BadLsaChecksum);
        }
        let body = decode_body(header.ls_type, &raw[LSA_HEADER_LEN..])?;
        Ok((Lsa { header, body }, length))
    }

    /// The database key.
    pub fn key(&self) -> LsaKey {
        self.header.key()
    }
}

fn push_u24(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes()[1..]);
}

fn encode_body(body: &LsaBody, out: &mut Vec<u8>) {
    match body {
        LsaBody::Router(r) => {
            out.push(r.flags);
            out.push(0);
            out.extend_from_slice(&(r.links.len() as u16).to_be_bytes());
            for l in &r.links {
                out.extend_from_slice(&l.link_id.octets());
                out.extend_from_slice(&l.link_data.octets());
                out.push(l.link_type.to_u8());
                out.push(l.tos.len() as u8);
                out.extend_from_slice(&l.metric.to_be_bytes());
                for (tos, m) in &l.tos {
                    out.push(*tos);
                    out.push(0);
                    out.extend_from_slice(&m.to_be_bytes());
                }
            }
        }
        LsaBody::Network(n) => {
            out.extend_from_slice(&n.mask.octets());
            for a in &n.attached {
                out.extend_from_slice(&a.octets());
            }
        }
        LsaBody::Summary(s) => {
            out.extend_from_slice(&s.mask.octets());
            out.push(0);
            push_u24(out, s.metric);
            for (tos, m) in &s.tos {
                out.push(*tos);
                push_u24(out, *m);
            }
        }
        LsaBody::External(e) => {
            out.extend_from_slice(&e.mask.octets());
            out.push(if e.type2 { 0x80 } else { 0 });
            push_u24(out, e.metric);
            out.extend_from_slice(&e.forwarding.octets());
            out.extend_from_slice(&e.tag.to_be_bytes());
            for t in &e.tos {
                out.extend_from_slice(t);
            }
        }
        LsaBody::Unknown(b) => out.extend_from_slice(b),
    }
}

fn decode_body(ls_type: u8, b: &[u8]) -> Result<LsaBody, DecodeError> {
    let mut r = Reader::new(b, "LSA body");
    Ok(match ls_type {
        LSA_ROUTER => {
            let flags = r.u8()?;
            r.u8()?;
            let n = r.u16()?;
            let mut links = Vec::with_capacity(usize::from(n).min(b.len() / 12));
            for _ in 0..n {
                let link_id = r.addr()?;
                let link_data = r.addr()?;
                let link_type = LinkType::from_u8(r.u8()?);
                let ntos = r.u8()?;
                let metric = r.u16()?;
                let mut tos = Vec::new();
                for _ in 0..ntos {
                    let t = r.u8()?;
                    r.u8()?;
                    tos.push((t, r.u16()?));
                }
                links.push(RouterLink {
                    link_id,
                    link_data,
                    link_type,
                    metric,
                    tos,
                });
            }
            if !r.is_empty() {
                return Err(DecodeError::BadLsa("router-LSA longer than its links"));
            }
            LsaBody::Router(RouterLsa { flags, links })
        }
        LSA_NETWORK => {
            let mask = r.addr()?;
            if !r.remaining().is_multiple_of(4) {
                return Err(DecodeError::BadLsa(
                    "network-LSA length not a multiple of 4",
                ));
            }
            let mut attached = Vec::with_capacity(r.remaining() / 4);
            while !r.is_empty() {
                attached.push(r.addr()?);
            }
            LsaBody::Network(NetworkLsa { mask, attached })
        }
        LSA_SUMMARY_NET | LSA_SUMMARY_ASBR => {
            let mask = r.addr()?;
            r.u8()?;
            let metric = r.u24()?;
            if !r.remaining().is_multiple_of(4) {
                return Err(DecodeError::BadLsa(
                    "summary-LSA length not a multiple of 4",
                ));
            }
            let mut tos = Vec::new();
            while !r.is_empty() {
                tos.push((r.u8()?, r.u24()?));
            }
            LsaBody::Summary(SummaryLsa { mask, metric, tos })
        }
        LSA_EXTERNAL | LSA_NSSA => {
            let mask = r.addr()?;
            let e = r.u8()?;
            let metric = r.u24()?;
            let forwarding = r.addr()?;
            let tag = r.u32()?;
            if !r.remaining().is_multiple_of(12) {
                return Err(DecodeError::BadLsa(
                    "external-LSA length not a multiple of 12",
                ));
            }
            let mut tos = Vec::new();
            while !r.is_empty() {
                let mut t = [0u8; 12];
                t.copy_from_slice(r.bytes(12)?);
                tos.push(t);
            }
            LsaBody::External(ExternalLsa {
                mask,
                type2: e & 0x80 != 0,
                metric,
                forwarding,
                tag,
                tos,
            })
        }
        _ => LsaBody::Unknown(b.to_vec()),
    })
}
