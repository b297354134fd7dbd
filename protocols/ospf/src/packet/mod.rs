//! OSPFv2 wire format (RFC 2328 appendix A): pure encode/decode, no I/O.
//!
//! [`decode`] takes the payload of an IP protocol 89 datagram and the receiving interface's
//! [`Auth`], checks version, length, checksum and authentication, and returns the packet or a
//! typed [`DecodeError`] (each naming its counter). [`encode`] is its inverse.

pub mod auth;
pub mod checksum;
mod error;
pub mod lsa;

use std::net::Ipv4Addr;

pub use auth::{Auth, CryptoAlgo, CryptoKey};
pub use error::DecodeError;
use error::Reader;
pub use lsa::{Lsa, LsaBody, LsaHeader, LsaKey};

use crate::{AreaId, RouterId};

/// OSPF version handled here.
pub const OSPF_VERSION: u8 = 2;
/// Length of the OSPF packet header.
pub const HEADER_LEN: usize = 24;

/// OSPF packet type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum PacketType {
    /// 1: Hello.
    Hello = 1,
    /// 2: Database Description.
    DbDesc = 2,
    /// 3: Link State Request.
    LsRequest = 3,
    /// 4: Link State Update.
    LsUpdate = 4,
    /// 5: Link State Acknowledgment.
    LsAck = 5,
}

impl PacketType {
    fn from_u8(v: u8) -> Result<Self, DecodeError> {
        Ok(match v {
            1 => PacketType::Hello,
            2 => PacketType::DbDesc,
            3 => PacketType::LsRequest,
            4 => PacketType::LsUpdate,
            5 => PacketType::LsAck,
            o => return Err(DecodeError::BadPacketType(o)),
        })
    }
}

/// OSPF packet header (RFC 2328 A.3.1).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Version #   |     Type      |         Packet length         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                          Router ID                            |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                           Area ID                             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |           Checksum            |             AuType            |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       Authentication                          |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       Authentication                          |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// With cryptographic authentication the Authentication field is:
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |              0                |    Key ID     | Auth Data Len |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                 Cryptographic sequence number                 |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Version (2).
    pub version: u8,
    /// Packet type.
    pub packet_type: PacketType,
    /// Packet length including the header, excluding any crypto trailer.
    pub length: u16,
    /// Sender's router ID.
    pub router_id: RouterId,
    /// Area of the packet.
    pub area_id: AreaId,
    /// Internet checksum (0 with cryptographic auth).
    pub checksum: u16,
    /// Authentication type.
    pub au_type: u16,
    /// Authentication field.
    pub auth: [u8; 8],
}

impl Header {
    /// Decodes and sanity-checks the header against the buffer length.
    pub fn decode(buf: &[u8]) -> Result<Header, DecodeError> {
        let mut r = Reader::new(buf, "OSPF header");
        let version = r.u8()?;
        let ty = r.u8()?;
        let length = r.u16()?;
        let router_id = r.addr()?;
        let area_id = r.addr()?;
        let checksum = r.u16()?;
        let au_type = r.u16()?;
        let mut auth = [0u8; 8];
        auth.copy_from_slice(r.bytes(8)?);
        if version != OSPF_VERSION {
            return Err(DecodeError::BadVersion(version));
        }
        let packet_type = PacketType::from_u8(ty)?;
        if usize::from(length) < HEADER_LEN || usize::from(length) > buf.len() {
            return Err(DecodeError::BadLength {
                length: usize::from(length),
                buffer: buf.len(),
            });
        }
        Ok(Header {
            version,
            packet_type,
            length,
            router_id,
            area_id,
            checksum,
            au_type,
            auth,
        })
    }
}

/// Hello packet body (RFC 2328 A.3.2).
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                        Network Mask                           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |         HelloInterval         |    Options    |    Rtr Pri    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     RouterDeadInterval                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                      Designated Router                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                   Backup Designated Router                    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                          Neighbor                             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                              ...                              |
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hello {
    /// Network mask of the sending interface.
    pub network_mask: Ipv4Addr,
    /// HelloInterval (s).
    pub hello_interval: u16,
    /// Options.
    pub options: u8,
    /// Router priority.
    pub priority: u8,
    /// RouterDeadInterval (s).
    pub dead_interval: u32,
    /// Designated Router (interface address) or 0.0.0.0.
    pub dr: Ipv4Addr,
    /// Backup Designated Router or 0.0.0.0.
    pub bdr: Ipv4Addr,
    /// Router IDs of neighbors heard from within RouterDeadInterval.
    pub neighbors: Vec<RouterId>,
}

/// Database Description flag bits.
pub mod dd_flags {
    /// MS: sender is master.
    pub const MS: u8 = 0x01;
    /// M: more DD packets follow.
    pub const M: u8 = 0x02;
    /// I: initial packet of the sequence.
    pub const I: u8 = 0x04;
}

/// Database Description packet body (RFC 2328 A.3.3).
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |         Interface MTU         |    Options    |0|0|0|0|0|I|M|MS
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     DD sequence number                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                                                               |
/// +-                                                             -+
/// |                             An LSA Header                     |
/// +-                                                             -+
/// |                              ...                              |
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DbDesc {
    /// Interface MTU of the sender.
    pub mtu: u16,
    /// Options.
    pub options: u8,
    /// I/M/MS flags, see [`dd_flags`].
    pub flags: u8,
    /// DD sequence number.
    pub seq: u32,
    /// LSA headers summarising the sender's database.
    pub lsa_headers: Vec<LsaHeader>,
}

/// One Link State Request entry (RFC 2328 A.3.4).
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                          LS type                              |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       Link State ID                           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     Advertising Router                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LsRequest {
    /// Requested LSAs.
    pub entries: Vec<LsaKey>,
}

/// Link State Update body (RFC 2328 A.3.5).
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                            # LSAs                             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                                                               |
/// +-                                                            +-+
/// |                             LSAs                              |
/// +-                                                            +-+
/// |                              ...                              |
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LsUpdate {
    /// LSAs that decoded and verified.
    pub lsas: Vec<Lsa>,
    /// LSAs that were framed correctly but failed their checksum or body checks; RFC 2328
    /// 13 (1) discards them one by one and goes on with the rest. Not encoded.
    #[serde(skip)]
    pub rejected: Vec<DecodeError>,
}

/// Link State Acknowledgment body (RFC 2328 A.3.6): a list of LSA headers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LsAck {
    /// Acknowledged LSA headers.
    pub lsa_headers: Vec<LsaHeader>,
}

/// A packet body.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Body {
    /// Hello.
    Hello(Hello),
    /// Database Description.
    DbDesc(DbDesc),
    /// Link State Request.
    LsRequest(LsRequest),
    /// Link State Update.
    LsUpdate(LsUpdate),
    /// Link State Acknowledgment.
    LsAck(LsAck),
}

impl Body {
    /// The packet type of this body.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Body::Hello(_) => PacketType::Hello,
            Body::DbDesc(_) => PacketType::DbDesc,
            Body::LsRequest(_) => PacketType::LsRequest,
            Body::LsUpdate(_) => PacketType::LsUpdate,
            Body::LsAck(_) => PacketType::LsAck,
        }
    }
}

/// An OSPF packet (authentication is applied by [`encode`] and checked by [`decode`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Packet {
    /// Sender's router ID.
    pub router_id: RouterId,
    /// Area ID.
    pub area_id: AreaId,
    /// Body.
    pub body: Body,
}

/// A packet that passed [`decode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The packet.
    pub packet: Packet,
    /// Cryptographic sequence number, with AuType 2; the caller checks it against the
    /// neighbor's last one (RFC 2328 D.5.2) with [`check_crypto_seq`].
    pub crypto_seq: Option<u32>,
}

/// RFC 2328 D.5.2: a cryptographic sequence number lower than the last one seen from the
/// neighbor means a replay.
pub fn check_crypto_seq(last: Option<u32>, got: u32) -> Result<(), DecodeError> {
    match last {
        Some(last) if got < last => Err(DecodeError::AuthSequence { got, last }),
        _ => Ok(()),
    }
}

fn bad_len(length: usize, buffer: usize) -> DecodeError {
    DecodeError::BadLength { length, buffer }
}

/// Decodes an OSPF packet (the IP payload) received on an interface configured with `auth`.
pub fn decode(buf: &[u8], auth: &Auth) -> Result<Decoded, DecodeError> {
    let h = Header::decode(buf)?;
    let len = usize::from(h.length);
    let packet = &buf[..len];
    if h.au_type != auth.au_type() {
        return Err(DecodeError::AuthTypeMismatch {
            got: h.au_type,
            want: auth.au_type(),
        });
    }
    let crypto_seq = match auth {
        Auth::Null | Auth::Simple(_) => {
            // The checksum covers the packet minus the 64-bit authentication field.
            let mut copy = packet.to_vec();
            copy[16..24].fill(0);
            if checksum::internet_checksum(&copy) != 0 {
                return Err(DecodeError::BadChecksum);
            }
            if let Auth::Simple(pw) = auth {
                if !auth::digest_eq(&h.auth, pw) {
                    return Err(DecodeError::AuthFailure);
                }
            }
            None
        }
        Auth::Crypto(keys) => Some(auth::verify_crypto(keys, &h.auth, packet, &buf[len..])?),
    };
    let body = decode_body(h.packet_type, &packet[HEADER_LEN..])?;
    if let Body::Hello(_) | Body::DbDesc(_) = &body {
        if h.router_id.is_unspecified() {
            return Err(DecodeError::BadField("router ID 0.0.0.0"));
        }
    }
    Ok(Decoded {
        packet: Packet {
            router_id: h.router_id,
            area_id: h.area_id,
            body,
        },
        crypto_seq,
    })
}

fn decode_body(ty: PacketType, b: &[u8]) -> Result<Body, DecodeError> {
    let mut r = Reader::new(b, "OSPF packet body");
    let total = b.len() + HEADER_LEN;
    Ok(match ty {
        PacketType::Hello => {
            let network_mask = r.addr()?;
            let hello_interval = r.u16()?;
            let options = r.u8()?;
            let priority = r.u8()?;
            let dead_interval = r.u32()?;
            let dr = r.addr()?;
            let bdr = r.addr()?;
            if !r.remaining().is_multiple_of(4) {
                return Err(bad_len(total, total));
            }
            let mut neighbors = Vec::with_capacity(r.remaining() / 4);
            while !r.is_empty() {
                neighbors.push(r.addr()?);
            }
            Body::Hello(Hello {
                network_mask,
                hello_interval,
                options,
                priority,
                dead_interval,
                dr,
                bdr,
                neighbors,
            })
        }
        PacketType::DbDesc => {
            let mtu = r.u16()?;
            let options = r.u8()?;
            let flags = r.u8()?;
            let seq = r.u32()?;
            if !r.remaining().is_multiple_of(lsa::LSA_HEADER_LEN) {
                return Err(bad_len(total, total));
            }
            let mut lsa_headers = Vec::with_capacity(r.remaining() / lsa::LSA_HEADER_LEN);
            while !r.is_empty() {
                lsa_headers.push(LsaHeader::read(&mut r)?);
            }
            Body::DbDesc(DbDesc {
                mtu,
                options,
                flags,
                seq,
                lsa_headers,
            })
        }
        PacketType::LsRequest => {
            if !r.remaining().is_multiple_of(12) {
                return Err(bad_len(total, total));
            }
            let mut entries = Vec::with_capacity(r.remaining() / 12);
            while !r.is_empty() {
                let t = r.u32()?;
                let lsid = r.addr()?;
                let adv_router = r.addr()?;
                let ls_type = u8::try_from(t).map_err(|_| DecodeError::BadField("LS type"))?;
                entries.push(LsaKey {
                    ls_type,
                    lsid,
                    adv_router,
                });
            }
            Body::LsRequest(LsRequest { entries })
        }
        PacketType::LsUpdate => {
            let n = r.u32()?;
            let mut rest = &b[4..];
            let mut lsas = Vec::with_capacity((n as usize).min(rest.len() / lsa::LSA_HEADER_LEN));
            let mut rejected = Vec::new();
            for _ in 0..n {
                // Framing errors lose our place in the packet: reject the whole update.
                let h = LsaHeader::decode(rest).map_err(|_| DecodeError::TruncatedLsa {
                    length: lsa::LSA_HEADER_LEN,
                    available: rest.len(),
                })?;
                let l = usize::from(h.length);
                if l < lsa::LSA_HEADER_LEN || l > rest.len() {
                    return Err(DecodeError::TruncatedLsa {
                        length: l,
                        available: rest.len(),
                    });
                }
                match Lsa::decode(&rest[..l]) {
                    Ok((lsa, _)) => lsas.push(lsa),
                    Err(e) => rejected.push(e),
                }
                rest = &rest[l..];
            }
            if !rest.is_empty() {
                return Err(bad_len(total, total - rest.len()));
            }
            Body::LsUpdate(LsUpdate { lsas, rejected })
        }
        PacketType::LsAck => {
            if !r.remaining().is_multiple_of(lsa::LSA_HEADER_LEN) {
                return Err(bad_len(total, total));
            }
            let mut lsa_headers = Vec::with_capacity(r.remaining() / lsa::LSA_HEADER_LEN);
            while !r.is_empty() {
                lsa_headers.push(LsaHeader::read(&mut r)?);
            }
            Body::LsAck(LsAck { lsa_headers })
        }
    })
}

fn encode_body(body: &Body, out: &mut Vec<u8>) {
    match body {
        Body::Hello(h) => {
            out.extend_from_slice(&h.network_mask.octets());
            out.extend_from_slice(&h.hello_interval.to_be_bytes());
            out.push(h.options);
            out.push(h.priority);
            out.extend_from_slice(&h.dead_interval.to_be_bytes());
            out.extend_from_slice(&h.dr.octets());
            out.extend_from_slice(&h.bdr.octets());
            for n in &h.neighbors {
                out.extend_from_slice(&n.octets());
            }
        }
        Body::DbDesc(d) => {
            out.extend_from_slice(&d.mtu.to_be_bytes());
            out.push(d.options);
            out.push(d.flags);
            out.extend_from_slice(&d.seq.to_be_bytes());
            for h in &d.lsa_headers {
                h.encode(out);
            }
        }
        Body::LsRequest(r) => {
            for e in &r.entries {
                out.extend_from_slice(&u32::from(e.ls_type).to_be_bytes());
                out.extend_from_slice(&e.lsid.octets());
                out.extend_from_slice(&e.adv_router.octets());
            }
        }
        Body::LsUpdate(u) => {
            out.extend_from_slice(&(u.lsas.len() as u32).to_be_bytes());
            for l in &u.lsas {
                l.encode_into(out);
            }
        }
        Body::LsAck(a) => {
            for h in &a.lsa_headers {
                h.encode(out);
            }
        }
    }
}

/// Encodes a packet with the interface's authentication. `crypto_seq` is the cryptographic
/// sequence number (used with AuType 2 only; the caller keeps it non-decreasing).
pub fn encode(packet: &Packet, auth: &Auth, crypto_seq: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.push(OSPF_VERSION);
    out.push(packet.body.packet_type() as u8);
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&packet.router_id.octets());
    out.extend_from_slice(&packet.area_id.octets());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&auth.au_type().to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    encode_body(&packet.body, &mut out);
    let len = out.len() as u16;
    out[2..4].copy_from_slice(&len.to_be_bytes());
    match auth {
        Auth::Null | Auth::Simple(_) => {
            let c = checksum::internet_checksum(&out);
            out[12..14].copy_from_slice(&c.to_be_bytes());
            if let Auth::Simple(pw) = auth {
                out[16..24].copy_from_slice(pw);
            }
        }
        Auth::Crypto(keys) => {
            if let Some(key) = keys.first() {
                out[18] = key.key_id;
                out[19] = key.algo.digest_len() as u8;
                out[20..24].copy_from_slice(&crypto_seq.to_be_bytes());
                let d = auth::digest(key, &out);
                out.extend_from_slice(&d);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
