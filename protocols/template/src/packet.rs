//! The wire format: pure encode/decode, no I/O. Decoding never panics: every read is
//! checked and every failure is a [`DecodeError`].
//!
//! One message, the hello, sent by UDP to port [`PORT`] as a broadcast on each interface:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Version (1)  |   Type (1)    |        Length (octets)        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                     Sender's interface address                |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// UDP port of the protocol (pick your own for a new protocol).
pub const PORT: u16 = 5360;
/// Protocol version sent and accepted.
pub const VERSION: u8 = 1;
/// Type of the hello message.
pub const TYPE_HELLO: u8 = 1;
/// Length of the header.
pub const HEADER_LEN: usize = 8;

/// A hello.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The sender's address on the link.
    pub sender: Ipv4Addr,
}

/// Why a datagram is not a valid hello.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("datagram of {0} octets is shorter than the header")]
    Short(usize),
    #[error("version {0} not supported")]
    Version(u8),
    #[error("unknown message type {0}")]
    Type(u8),
    #[error("length field {field} does not match the datagram's {actual} octets")]
    Length { field: usize, actual: usize },
}

impl Hello {
    /// The datagram.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEADER_LEN);
        b.push(VERSION);
        b.push(TYPE_HELLO);
        b.extend_from_slice(&(HEADER_LEN as u16).to_be_bytes());
        b.extend_from_slice(&self.sender.octets());
        b
    }

    /// Parses a datagram.
    pub fn decode(b: &[u8]) -> Result<Hello, DecodeError> {
        let header: &[u8; HEADER_LEN] = b
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(DecodeError::Short(b.len()))?;
        let [version, kind, l0, l1, a, b1, c, d] = *header;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        if kind != TYPE_HELLO {
            return Err(DecodeError::Type(kind));
        }
        let field = usize::from(u16::from_be_bytes([l0, l1]));
        if field != b.len() {
            return Err(DecodeError::Length {
                field,
                actual: b.len(),
            });
        }
        Ok(Hello {
            sender: Ipv4Addr::new(a, b1, c, d),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hello_round_trips_with_known_bytes() {
        let h = Hello {
            sender: Ipv4Addr::new(10, 0, 12, 1),
        };
        assert_eq!(h.encode(), [1, 1, 0, 8, 10, 0, 12, 1]);
        assert_eq!(Hello::decode(&h.encode()), Ok(h));
    }

    #[test]
    fn bad_datagrams_are_typed_errors() {
        assert_eq!(Hello::decode(&[1, 1, 0]), Err(DecodeError::Short(3)));
        assert_eq!(
            Hello::decode(&[2, 1, 0, 8, 0, 0, 0, 0]),
            Err(DecodeError::Version(2))
        );
        assert_eq!(
            Hello::decode(&[1, 9, 0, 8, 0, 0, 0, 0]),
            Err(DecodeError::Type(9))
        );
        assert_eq!(
            Hello::decode(&[1, 1, 0, 9, 0, 0, 0, 0]),
            Err(DecodeError::Length {
                field: 9,
                actual: 8
            })
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Hello::decode(&data);
        }
    }
}
