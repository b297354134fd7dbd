//! Decode errors and the checked reader every decoder uses.

use std::net::Ipv4Addr;

/// Why a received packet or LSA was rejected. Each variant maps to a counter name
/// ([`DecodeError::counter`]); the receive path bumps that counter and logs, never panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The buffer ended before a field that must be there.
    #[error("truncated {what}: need {need} bytes, have {have}")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// The version field is not 2.
    #[error("bad OSPF version {0}")]
    BadVersion(u8),
    /// Unknown packet type.
    #[error("bad packet type {0}")]
    BadPacketType(u8),
    /// The header length field is inconsistent with the buffer or the packet type.
    #[error("bad packet length {length} (buffer {buffer})")]
    BadLength {
        /// Value of the length field.
        length: usize,
        /// Size of the received buffer.
        buffer: usize,
    },
    /// The packet checksum does not verify.
    #[error("bad packet checksum")]
    BadChecksum,
    /// An LSA's Fletcher checksum does not verify.
    #[error("bad LSA checksum")]
    BadLsaChecksum,
    /// An LSA's length field is below 20, runs past its packet, or does not fit its body.
    #[error("truncated LSA: length {length}, {available} bytes available")]
    TruncatedLsa {
        /// LSA length field.
        length: usize,
        /// Bytes left in the packet.
        available: usize,
    },
    /// An LSA body is malformed (e.g. router-LSA link count disagrees with its length).
    #[error("malformed LSA body: {0}")]
    BadLsa(&'static str),
    /// The packet's AuType differs from the interface's.
    #[error("authentication type mismatch: got {got}, want {want}")]
    AuthTypeMismatch {
        /// AuType received.
        got: u16,
        /// AuType configured.
        want: u16,
    },
    /// Wrong password or wrong message digest.
    #[error("authentication failure")]
    AuthFailure,
    /// Cryptographic authentication with a key id we do not have.
    #[error("unknown authentication key id {0}")]
    UnknownKeyId(u8),
    /// Cryptographic authentication with a digest length that does not fit the algorithm.
    #[error("bad authentication data length {0}")]
    BadAuthLength(u8),
    /// The cryptographic sequence number went backwards (RFC 2328 D.5.2).
    #[error("cryptographic sequence number {got} below last seen {last}")]
    AuthSequence {
        /// Sequence number received.
        got: u32,
        /// Highest sequence number seen from this neighbor.
        last: u32,
    },
    /// A field value the RFC forbids (e.g. a Hello from router ID 0.0.0.0).
    #[error("bad field {0}")]
    BadField(&'static str),
    /// The packet is from ourselves or names an address we cannot accept.
    #[error("bad source {0}")]
    BadSource(Ipv4Addr),
}

impl DecodeError {
    /// The counter this error increments (`ospf_rx_errors{reason=...}`).
    pub fn counter(&self) -> &'static str {
        match self {
            DecodeError::Truncated { .. } => "truncated",
            DecodeError::BadVersion(_) => "bad-version",
            DecodeError::BadPacketType(_) => "bad-packet-type",
            DecodeError::BadLength { .. } => "bad-length",
            DecodeError::BadChecksum => "bad-checksum",
            DecodeError::BadLsaChecksum => "bad-lsa-checksum",
            DecodeError::TruncatedLsa { .. } => "truncated-lsa",
            DecodeError::BadLsa(_) => "bad-lsa",
            DecodeError::AuthTypeMismatch { .. } => "auth-type-mismatch",
            DecodeError::AuthFailure => "auth-failure",
            DecodeError::UnknownKeyId(_) => "auth-unknown-key",
            DecodeError::BadAuthLength(_) => "auth-bad-length",
            DecodeError::AuthSequence { .. } => "auth-sequence",
            DecodeError::BadField(_) => "bad-field",
            DecodeError::BadSource(_) => "bad-source",
        }
    }
}

/// A cursor over a byte slice whose reads fail instead of panicking.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated {
                what: self.what,
                need: n,
                have: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u24(&mut self) -> Result<u32, DecodeError> {
        let b = self.bytes(3)?;
        Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn addr(&mut self) -> Result<Ipv4Addr, DecodeError> {
        Ok(Ipv4Addr::from(self.u32()?))
    }
}
