//! Typed decode/encode errors, each mapped to the NOTIFICATION it calls for.

use super::notification::{code, Notification};
use super::update::UpdateErrorKind;

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than a header.
    #[error("message shorter than the 19-octet header")]
    ShortHeader,
    /// The marker is not all ones.
    #[error("connection not synchronized (bad marker)")]
    BadMarker,
    /// The length field is out of range for the type, or disagrees with the buffer.
    #[error("bad message length {0}")]
    BadLength(u16),
    /// Unknown message type.
    #[error("bad message type {0}")]
    BadType(u8),
    /// OPEN version other than 4.
    #[error("unsupported BGP version {0}")]
    UnsupportedVersion(u8),
    /// OPEN body shorter than its fields say.
    #[error("malformed OPEN: {0}")]
    MalformedOpen(&'static str),
    /// An optional parameter other than Capabilities (RFC 5492).
    #[error("unsupported optional parameter {0}")]
    UnsupportedOptionalParameter(u8),
    /// A known capability with a wrong length.
    #[error("malformed capability {0}")]
    MalformedCapability(u8),
    /// NOTIFICATION shorter than 2 octets of body.
    #[error("malformed NOTIFICATION")]
    MalformedNotification,
    /// ROUTE-REFRESH body is not exactly 4 octets.
    #[error("bad ROUTE-REFRESH length")]
    BadRouteRefreshLength,
    /// An UPDATE error (strict decoding only).
    #[error("UPDATE error: {}", kind.as_str())]
    Update {
        /// The RFC 7606 error kind.
        kind: UpdateErrorKind,
        /// The NOTIFICATION RFC 4271 would send.
        notification: Notification,
    },
}

impl DecodeError {
    /// The NOTIFICATION to send for this error, or `None` when none may be sent
    /// (a malformed NOTIFICATION is never answered, RFC 4271 section 6.4).
    pub fn notification(&self) -> Option<Notification> {
        use code::*;
        let n = |c, s, d: Vec<u8>| Some(Notification::new(c, s, d));
        match self {
            DecodeError::ShortHeader => n(MESSAGE_HEADER, 2, vec![]),
            DecodeError::BadMarker => n(MESSAGE_HEADER, 1, vec![]),
            DecodeError::BadLength(l) => n(MESSAGE_HEADER, 2, l.to_be_bytes().to_vec()),
            DecodeError::BadType(t) => n(MESSAGE_HEADER, 3, vec![*t]),
            // Data: the largest version we support, 2 octets (RFC 4271 6.2).
            DecodeError::UnsupportedVersion(_) => n(OPEN_MESSAGE, 1, vec![0, 4]),
            DecodeError::MalformedOpen(_) => n(OPEN_MESSAGE, 0, vec![]),
            DecodeError::UnsupportedOptionalParameter(_) => n(OPEN_MESSAGE, 4, vec![]),
            DecodeError::MalformedCapability(_) => n(OPEN_MESSAGE, 0, vec![]),
            DecodeError::MalformedNotification => None,
            // RFC 7313 section 5: Invalid Message Length.
            DecodeError::BadRouteRefreshLength => n(ROUTE_REFRESH, 1, vec![]),
            DecodeError::Update { notification, .. } => Some(notification.clone()),
        }
    }
}

/// Why a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The message would exceed 4096 octets.
    #[error("message too long ({0} octets)")]
    TooLong(usize),
    /// A field does not fit its wire size.
    #[error("field too long: {0}")]
    FieldTooLong(&'static str),
}
