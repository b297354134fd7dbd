//! BGP-4 wire format (RFC 4271 section 4): pure encode/decode, no I/O.
//!
//! Two entry points decode a message:
//! - [`Message::decode`] is strict: any error is a [`DecodeError`] carrying the
//!   NOTIFICATION to send.
//! - [`update::decode_update`] applies RFC 7606 revised error handling to an UPDATE
//!   body and yields an [`update::UpdateOutcome`] (parsed, attribute-discard,
//!   treat-as-withdraw or session reset). The event loop uses this one.

pub mod attribute;
pub mod capability;
pub mod error;
pub mod header;
pub mod notification;
pub mod open;
pub mod pack;
pub mod update;

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

pub use attribute::PathAttributes;
pub use capability::Capability;
pub use error::{DecodeError, EncodeError};
pub use header::{Header, MessageType, HEADER_LEN, MAX_MESSAGE_LEN};
pub use notification::Notification;
pub use open::Open;
pub use update::{Update, UpdateErrorKind, UpdateOutcome};

/// The AS number a 2-octet speaker sees in place of a 4-octet one (RFC 6793).
pub const AS_TRANS: u32 = 23456;

/// Address Family Identifier (IANA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Afi(pub u16);

impl Afi {
    /// IPv4.
    pub const IPV4: Afi = Afi(1);
    /// IPv6.
    pub const IPV6: Afi = Afi(2);
}

/// Subsequent Address Family Identifier (IANA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Safi(pub u8);

impl Safi {
    /// Unicast forwarding.
    pub const UNICAST: Safi = Safi(1);
    /// Multicast RPF.
    pub const MULTICAST: Safi = Safi(2);
}

/// An (AFI, SAFI) pair: one address family a session can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AfiSafi {
    /// Address family.
    pub afi: Afi,
    /// Subsequent address family.
    pub safi: Safi,
}

impl AfiSafi {
    /// IPv4 unicast, the family of the plain UPDATE NLRI fields.
    pub const IPV4_UNICAST: AfiSafi = AfiSafi {
        afi: Afi::IPV4,
        safi: Safi::UNICAST,
    };
    /// IPv6 unicast (RFC 4760 + RFC 2545).
    pub const IPV6_UNICAST: AfiSafi = AfiSafi {
        afi: Afi::IPV6,
        safi: Safi::UNICAST,
    };

    /// Whether this crate can decode NLRI of this family.
    pub fn is_supported(self) -> bool {
        self == Self::IPV4_UNICAST || self == Self::IPV6_UNICAST
    }
}

/// What the decoder needs to know about the session (negotiated in OPEN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionContext {
    /// Both sides announced the 4-octet AS capability (RFC 6793).
    pub four_octet_as: bool,
    /// Families negotiated with Multiprotocol capabilities (IPv4 unicast implied
    /// when the peer sent none).
    pub families: Vec<AfiSafi>,
    /// The peer is external (eBGP): LOCAL_PREF, ORIGINATOR_ID, CLUSTER_LIST from
    /// it are discarded (RFC 7606 sections 7.5, 7.9, 7.10).
    pub ebgp: bool,
}

impl SessionContext {
    /// A context for a 4-octet-AS session carrying IPv4 and IPv6 unicast.
    pub fn new_4byte(ebgp: bool) -> Self {
        SessionContext {
            four_octet_as: true,
            families: vec![AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST],
            ebgp,
        }
    }

    /// Whether the family was negotiated.
    pub fn has_family(&self, f: AfiSafi) -> bool {
        self.families.contains(&f)
    }
}

impl Default for SessionContext {
    fn default() -> Self {
        Self::new_4byte(false)
    }
}

/// A BGP message.
// UPDATE dominates the traffic; boxing it would add an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// OPEN (type 1).
    Open(Open),
    /// UPDATE (type 2).
    Update(Update),
    /// NOTIFICATION (type 3).
    Notification(Notification),
    /// KEEPALIVE (type 4): a header alone.
    Keepalive,
    /// ROUTE-REFRESH (type 5, RFC 2918).
    RouteRefresh(RouteRefresh),
}

impl Message {
    /// The message type code.
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Open(_) => MessageType::Open,
            Message::Update(_) => MessageType::Update,
            Message::Notification(_) => MessageType::Notification,
            Message::Keepalive => MessageType::Keepalive,
            Message::RouteRefresh(_) => MessageType::RouteRefresh,
        }
    }

    /// Encodes the whole message, header included.
    pub fn encode(&self, ctx: &SessionContext) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(64);
        header::begin(&mut out);
        match self {
            Message::Open(o) => o.encode_body(&mut out)?,
            Message::Update(u) => u.encode_body(ctx, &mut out)?,
            Message::Notification(n) => n.encode_body(&mut out),
            Message::Keepalive => {}
            Message::RouteRefresh(r) => r.encode_body(&mut out),
        }
        header::finish(&mut out, self.message_type())?;
        Ok(out)
    }

    /// Decodes one whole message (`buf` is exactly one message, header included).
    ///
    /// Strict: an UPDATE that RFC 7606 would partially accept is an error here;
    /// use [`update::decode_update`] for the revised handling.
    pub fn decode(buf: &[u8], ctx: &SessionContext) -> Result<Message, DecodeError> {
        let h = Header::decode(buf)?;
        if buf.len() != usize::from(h.length) {
            return Err(DecodeError::BadLength(h.length));
        }
        let body = &buf[HEADER_LEN..];
        Ok(match h.message_type {
            MessageType::Open => Message::Open(Open::decode_body(body)?),
            MessageType::Update => match update::decode_update(body, ctx) {
                UpdateOutcome::Parsed(u) => Message::Update(u),
                UpdateOutcome::AttributeDiscard { discarded, .. } => {
                    let kind = discarded
                        .first()
                        .map(|d| d.reason)
                        .unwrap_or(UpdateErrorKind::MalformedAttributeList);
                    return Err(DecodeError::Update {
                        kind,
                        notification: kind.notification(),
                    });
                }
                UpdateOutcome::TreatAsWithdraw { reason, .. } => {
                    return Err(DecodeError::Update {
                        kind: reason,
                        notification: reason.notification(),
                    })
                }
                UpdateOutcome::SessionReset {
                    notification,
                    reason,
                } => {
                    return Err(DecodeError::Update {
                        kind: reason,
                        notification,
                    })
                }
            },
            MessageType::Notification => Message::Notification(Notification::decode_body(body)?),
            MessageType::Keepalive => Message::Keepalive,
            MessageType::RouteRefresh => Message::RouteRefresh(RouteRefresh::decode_body(body)?),
        })
    }
}

/// ROUTE-REFRESH message (RFC 2918 section 3).
///
/// ```text
///  0       7      15      23      31
///  +-------+-------+-------+-------+
///  |      AFI      | Res.  | SAFI  |
///  +-------+-------+-------+-------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRefresh {
    /// The family to re-send.
    pub afi_safi: AfiSafi,
    /// The reserved octet (the message subtype in RFC 7313); kept as received.
    pub subtype: u8,
}

impl RouteRefresh {
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.afi_safi.afi.0.to_be_bytes());
        out.push(self.subtype);
        out.push(self.afi_safi.safi.0);
    }

    fn decode_body(body: &[u8]) -> Result<RouteRefresh, DecodeError> {
        let mut r = Reader::new(body);
        let afi = r.u16().ok_or(DecodeError::BadRouteRefreshLength)?;
        let subtype = r.u8().ok_or(DecodeError::BadRouteRefreshLength)?;
        let safi = r.u8().ok_or(DecodeError::BadRouteRefreshLength)?;
        if !r.is_empty() {
            return Err(DecodeError::BadRouteRefreshLength);
        }
        Ok(RouteRefresh {
            afi_safi: AfiSafi {
                afi: Afi(afi),
                safi: Safi(safi),
            },
            subtype,
        })
    }
}

/// A bounds-checked big-endian reader: every read returns `None` past the end,
/// so decoders cannot panic on short input.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf
    }
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Some(a)
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn ipv4(&mut self) -> Option<Ipv4Addr> {
        self.u32().map(Ipv4Addr::from)
    }
    pub(crate) fn ipv6(&mut self) -> Option<Ipv6Addr> {
        self.take(16).map(|b| {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            Ipv6Addr::from(a)
        })
    }
}

/// Why an NLRI prefix could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// The length octet exceeds the address size.
    #[error("prefix length {0} too long")]
    TooLong(u8),
    /// The prefix bytes run past the field.
    #[error("prefix truncated")]
    Truncated,
}

/// Decodes a run of IPv4 prefixes (RFC 4271 section 4.3 NLRI encoding:
/// a length octet then the minimal number of address octets). Host bits past the
/// length are ignored, as the RFC says they are irrelevant.
pub fn decode_ipv4_prefixes(buf: &[u8], out: &mut Vec<Ipv4Net>) -> Result<(), PrefixError> {
    let mut i = 0;
    while i < buf.len() {
        let len = buf[i];
        if len > 32 {
            return Err(PrefixError::TooLong(len));
        }
        let n = usize::from(len).div_ceil(8);
        let bytes = buf.get(i + 1..i + 1 + n).ok_or(PrefixError::Truncated)?;
        let mut a = [0u8; 4];
        a[..n].copy_from_slice(bytes);
        let addr = u32::from_be_bytes(a);
        let mask = if len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(len))
        };
        // Length checked above, so the constructor cannot fail.
        if let Ok(p) = Ipv4Net::new(Ipv4Addr::from(addr & mask), len) {
            out.push(p);
        }
        i += 1 + n;
    }
    Ok(())
}

/// Decodes a run of IPv6 prefixes (same encoding as IPv4, up to /128).
pub fn decode_ipv6_prefixes(buf: &[u8], out: &mut Vec<Ipv6Net>) -> Result<(), PrefixError> {
    let mut i = 0;
    while i < buf.len() {
        let len = buf[i];
        if len > 128 {
            return Err(PrefixError::TooLong(len));
        }
        let n = usize::from(len).div_ceil(8);
        let bytes = buf.get(i + 1..i + 1 + n).ok_or(PrefixError::Truncated)?;
        let mut a = [0u8; 16];
        a[..n].copy_from_slice(bytes);
        let addr = u128::from_be_bytes(a);
        let mask = if len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(len))
        };
        if let Ok(p) = Ipv6Net::new(Ipv6Addr::from(addr & mask), len) {
            out.push(p);
        }
        i += 1 + n;
    }
    Ok(())
}

/// Decodes prefixes of a supported family into `IpNet`s.
pub(crate) fn decode_prefixes(
    family: AfiSafi,
    buf: &[u8],
    out: &mut Vec<IpNet>,
) -> Result<(), PrefixError> {
    if family.afi == Afi::IPV6 {
        let mut v = Vec::new();
        decode_ipv6_prefixes(buf, &mut v)?;
        out.extend(v.into_iter().map(IpNet::V6));
    } else {
        let mut v = Vec::new();
        decode_ipv4_prefixes(buf, &mut v)?;
        out.extend(v.into_iter().map(IpNet::V4));
    }
    Ok(())
}

/// Appends one prefix in NLRI encoding.
pub fn encode_prefix(p: &IpNet, out: &mut Vec<u8>) {
    let len = p.prefix_len();
    let n = usize::from(len).div_ceil(8);
    out.push(len);
    match p {
        IpNet::V4(p) => out.extend_from_slice(&p.network().octets()[..n]),
        IpNet::V6(p) => out.extend_from_slice(&p.network().octets()[..n]),
    }
}

/// Appends one IPv4 prefix in NLRI encoding.
pub fn encode_ipv4_prefix(p: &Ipv4Net, out: &mut Vec<u8>) {
    let n = usize::from(p.prefix_len()).div_ceil(8);
    out.push(p.prefix_len());
    out.extend_from_slice(&p.network().octets()[..n]);
}
