//! Message header (RFC 4271 section 4.1) and stream framing.

use super::error::{DecodeError, EncodeError};

/// Header length in octets.
pub const HEADER_LEN: usize = 19;
/// Maximum message length (RFC 4271; extended messages, RFC 8654, not negotiated).
pub const MAX_MESSAGE_LEN: usize = 4096;

/// Message type codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// 1
    Open = 1,
    /// 2
    Update = 2,
    /// 3
    Notification = 3,
    /// 4
    Keepalive = 4,
    /// 5 (RFC 2918)
    RouteRefresh = 5,
}

impl MessageType {
    /// From the wire code.
    pub fn from_u8(t: u8) -> Option<Self> {
        Some(match t {
            1 => Self::Open,
            2 => Self::Update,
            3 => Self::Notification,
            4 => Self::Keepalive,
            5 => Self::RouteRefresh,
            _ => return None,
        })
    }

    /// Smallest and largest legal total length for this type.
    fn length_range(self) -> (u16, u16) {
        match self {
            Self::Open => (29, 4096),
            Self::Update => (23, 4096),
            Self::Notification => (21, 4096),
            Self::Keepalive => (19, 19),
            Self::RouteRefresh => (23, 23),
        }
    }
}

/// Message header.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  |                                                               |
///  +                                                               +
///  |                                                               |
///  +                                                               +
///  |                           Marker                              |
///  +                                                               +
///  |                                                               |
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  |          Length               |      Type     |
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Total message length, header included.
    pub length: u16,
    /// Message type.
    pub message_type: MessageType,
}

impl Header {
    /// Decodes and validates a header (marker, length range per type, type).
    pub fn decode(buf: &[u8]) -> Result<Header, DecodeError> {
        let h = buf.get(..HEADER_LEN).ok_or(DecodeError::ShortHeader)?;
        if h[..16].iter().any(|&b| b != 0xff) {
            return Err(DecodeError::BadMarker);
        }
        let length = u16::from_be_bytes([h[16], h[17]]);
        let message_type = MessageType::from_u8(h[18]).ok_or(DecodeError::BadType(h[18]))?;
        let (min, max) = message_type.length_range();
        if length < min || length > max {
            return Err(DecodeError::BadLength(length));
        }
        Ok(Header {
            length,
            message_type,
        })
    }
}

/// Frames a byte stream: `Ok(Some(n))` when the first `n` bytes of `buf` are one
/// whole message, `Ok(None)` when more bytes are needed.
pub fn frame(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let h = Header::decode(buf)?;
    let n = usize::from(h.length);
    Ok((buf.len() >= n).then_some(n))
}

/// Starts a message: marker and placeholder length/type.
pub(crate) fn begin(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xff; 16]);
    out.extend_from_slice(&[0, 0, 0]);
}

/// Fills in length and type; fails when the body made the message too long.
pub(crate) fn finish(out: &mut [u8], t: MessageType) -> Result<(), EncodeError> {
    if out.len() > MAX_MESSAGE_LEN {
        return Err(EncodeError::TooLong(out.len()));
    }
    let len = out.len() as u16;
    out[16..18].copy_from_slice(&len.to_be_bytes());
    out[18] = t as u8;
    Ok(())
}
