//! The hello: pure encode/decode, no I/O; decoding never panics.
//!
//! Sent by UDP to port [`PORT`], broadcast on each interface, and relayed unchanged by
//! every router that hears it first:
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Version (1)  |   Type (1)    |        Length (octets)        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Origin (the announcing router's ID)           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        Sequence number                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         Prefix address                        |  \
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+   > one per
//! | Prefix length |                  Reserved (0)                 |  /  connected prefix
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// UDP port of the hello protocol.
pub const PORT: u16 = 5361;
/// Version sent and accepted.
pub const VERSION: u8 = 1;
/// The only message type.
pub const TYPE_HELLO: u8 = 1;
/// Octets before the first prefix.
pub const HEADER_LEN: usize = 12;
/// Octets per prefix.
pub const ENTRY_LEN: usize = 8;
/// Most prefixes in one hello (keeps it in one unfragmented datagram).
pub const MAX_PREFIXES: usize = 170;

/// A hello: who announces, how fresh it is, and the announcer's connected prefixes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub origin: Ipv4Addr,
    pub seq: u32,
    pub prefixes: Vec<Ipv4Net>,
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
    #[error("prefix length {0} is more than 32")]
    PrefixLength(u8),
}

impl Hello {
    /// The datagram (at most [`MAX_PREFIXES`] prefixes are sent).
    pub fn encode(&self) -> Vec<u8> {
        let prefixes = &self.prefixes[..self.prefixes.len().min(MAX_PREFIXES)];
        let len = HEADER_LEN + ENTRY_LEN * prefixes.len();
        let mut b = Vec::with_capacity(len);
        b.extend_from_slice(&[VERSION, TYPE_HELLO]);
        b.extend_from_slice(&(len as u16).to_be_bytes());
        b.extend_from_slice(&self.origin.octets());
        b.extend_from_slice(&self.seq.to_be_bytes());
        for p in prefixes {
            b.extend_from_slice(&p.network().octets());
            b.extend_from_slice(&[p.prefix_len(), 0, 0, 0]);
        }
        b
    }

    /// Parses a datagram.
    pub fn decode(b: &[u8]) -> Result<Hello, DecodeError> {
        let header: [u8; HEADER_LEN] = b
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(DecodeError::Short(b.len()))?;
        if header[0] != VERSION {
            return Err(DecodeError::Version(header[0]));
        }
        if header[1] != TYPE_HELLO {
            return Err(DecodeError::Type(header[1]));
        }
        let field = usize::from(u16::from_be_bytes([header[2], header[3]]));
        if field != b.len() || !(field - HEADER_LEN).is_multiple_of(ENTRY_LEN) {
            return Err(DecodeError::Length {
                field,
                actual: b.len(),
            });
        }
        let origin = Ipv4Addr::new(header[4], header[5], header[6], header[7]);
        let seq = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        let mut prefixes = Vec::new();
        for e in b[HEADER_LEN..].chunks_exact(ENTRY_LEN) {
            let addr = Ipv4Addr::new(e[0], e[1], e[2], e[3]);
            let p = Ipv4Net::new(addr, e[4]).map_err(|_| DecodeError::PrefixLength(e[4]))?;
            prefixes.push(p.trunc());
        }
        Ok(Hello {
            origin,
            seq,
            prefixes,
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
            origin: Ipv4Addr::new(10, 255, 0, 1),
            seq: 7,
            prefixes: vec!["10.0.12.0/24".parse().unwrap()],
        };
        let b = h.encode();
        assert_eq!(
            b,
            [1, 1, 0, 20, 10, 255, 0, 1, 0, 0, 0, 7, 10, 0, 12, 0, 24, 0, 0, 0]
        );
        assert_eq!(Hello::decode(&b), Ok(h));
    }

    #[test]
    fn bad_datagrams_are_typed_errors() {
        let good = [
            1, 1, 0, 20, 10, 255, 0, 1, 0, 0, 0, 7, 10, 0, 12, 0, 24, 0, 0, 0,
        ];
        assert_eq!(Hello::decode(&good[..5]), Err(DecodeError::Short(5)));
        let mut b = good;
        b[0] = 2;
        assert_eq!(Hello::decode(&b), Err(DecodeError::Version(2)));
        let mut b = good;
        b[1] = 3;
        assert_eq!(Hello::decode(&b), Err(DecodeError::Type(3)));
        assert!(matches!(
            Hello::decode(&good[..19]),
            Err(DecodeError::Length { .. })
        ));
        let mut b = good;
        b[16] = 33;
        assert_eq!(Hello::decode(&b), Err(DecodeError::PrefixLength(33)));
    }

    proptest! {
        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = Hello::decode(&data);
        }

        #[test]
        fn round_trip(origin: u32, seq: u32, ps in proptest::collection::vec((any::<u32>(), 0u8..=32), 0..20)) {
            let prefixes: Vec<Ipv4Net> = ps.iter()
                .map(|(a, l)| Ipv4Net::new(Ipv4Addr::from(*a), *l).unwrap().trunc())
                .collect();
            let h = Hello { origin: Ipv4Addr::from(origin), seq, prefixes };
            prop_assert_eq!(Hello::decode(&h.encode()), Ok(h));
        }
    }
}
