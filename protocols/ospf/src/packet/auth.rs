//! OSPFv2 authentication (RFC 2328 appendix D, RFC 5709).
//!
//! - AuType 0: null, the packet checksum protects the packet.
//! - AuType 1: simple password, eight bytes in the header in clear.
//! - AuType 2: cryptographic. The header's authentication field carries a key ID, the digest
//!   length and a non-decreasing sequence number; the digest is appended after the packet
//!   (outside the header's length) and the packet checksum is not computed. Keyed MD5 is
//!   RFC 2328 D.4.3; HMAC-SHA-1/256/384/512 is RFC 5709, whose Apad constant fills the digest
//!   position while the HMAC is computed.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Sha256, Sha384, Sha512};

use super::error::DecodeError;

/// AuType 0.
pub const AUTYPE_NULL: u16 = 0;
/// AuType 1.
pub const AUTYPE_SIMPLE: u16 = 1;
/// AuType 2.
pub const AUTYPE_CRYPTO: u16 = 2;

/// RFC 5709 3.3: Apad is 0x878FE1F3 repeated to the hash length.
const APAD_WORD: [u8; 4] = [0x87, 0x8F, 0xE1, 0xF3];

/// Digest algorithm of a cryptographic key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CryptoAlgo {
    /// Keyed MD5 (RFC 2328 D.4.3).
    Md5,
    /// HMAC-SHA-1 (RFC 5709).
    #[serde(rename = "hmac-sha-1")]
    HmacSha1,
    /// HMAC-SHA-256 (RFC 5709).
    #[serde(rename = "hmac-sha-256")]
    HmacSha256,
    /// HMAC-SHA-384 (RFC 5709).
    #[serde(rename = "hmac-sha-384")]
    HmacSha384,
    /// HMAC-SHA-512 (RFC 5709).
    #[serde(rename = "hmac-sha-512")]
    HmacSha512,
}

impl CryptoAlgo {
    /// Digest length in bytes (the Auth Data Len field).
    pub fn digest_len(self) -> usize {
        match self {
            CryptoAlgo::Md5 => 16,
            CryptoAlgo::HmacSha1 => 20,
            CryptoAlgo::HmacSha256 => 32,
            CryptoAlgo::HmacSha384 => 48,
            CryptoAlgo::HmacSha512 => 64,
        }
    }
}

/// One cryptographic key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoKey {
    /// Key ID carried in packets.
    pub key_id: u8,
    /// Algorithm.
    pub algo: CryptoAlgo,
    /// Secret.
    pub key: Vec<u8>,
}

/// The authentication configured on an interface.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Auth {
    /// AuType 0.
    #[default]
    Null,
    /// AuType 1, password padded with zeros to 8 bytes.
    Simple([u8; 8]),
    /// AuType 2. The first key signs what we send; any listed key ID is accepted on receipt,
    /// which is what key rollover needs.
    Crypto(Vec<CryptoKey>),
}

impl Auth {
    /// Simple password auth from a string (truncated to 8 bytes).
    pub fn simple(password: &str) -> Self {
        let mut p = [0u8; 8];
        for (d, s) in p.iter_mut().zip(password.bytes()) {
            *d = s;
        }
        Auth::Simple(p)
    }

    /// The AuType this configuration sends and expects.
    pub fn au_type(&self) -> u16 {
        match self {
            Auth::Null => AUTYPE_NULL,
            Auth::Simple(_) => AUTYPE_SIMPLE,
            Auth::Crypto(_) => AUTYPE_CRYPTO,
        }
    }
}

type HmacSha1 = Hmac<Sha1>;

/// Computes the digest to append after `packet` (the OSPF packet, header length bytes).
pub(crate) fn digest(key: &CryptoKey, packet: &[u8]) -> Vec<u8> {
    match key.algo {
        CryptoAlgo::Md5 => {
            // D.4.3: MD5 over the packet followed by the key padded with zeros to 16 bytes.
            let mut k = [0u8; 16];
            for (d, s) in k.iter_mut().zip(&key.key) {
                *d = *s;
            }
            let mut h = Md5::new();
            h.update(packet);
            h.update(k);
            h.finalize().to_vec()
        }
        CryptoAlgo::HmacSha1 => hmac_digest::<HmacSha1, Sha1>(key, packet),
        CryptoAlgo::HmacSha256 => hmac_digest::<Hmac<Sha256>, Sha256>(key, packet),
        CryptoAlgo::HmacSha384 => hmac_digest::<Hmac<Sha384>, Sha384>(key, packet),
        CryptoAlgo::HmacSha512 => hmac_digest::<Hmac<Sha512>, Sha512>(key, packet),
    }
}

fn hmac_digest<M, H>(key: &CryptoKey, packet: &[u8]) -> Vec<u8>
where
    M: Mac + hmac::digest::KeyInit,
    H: Digest,
{
    let l = key.algo.digest_len();
    // RFC 5709 3.3: a key longer than L is first hashed to L bytes; a shorter one is padded
    // with zeros to L, which HMAC's own zero padding to the block size already does.
    let k: Vec<u8> = if key.key.len() > l {
        H::digest(&key.key).to_vec()
    } else {
        key.key.clone()
    };
    let mut mac =
        <M as hmac::digest::KeyInit>::new_from_slice(&k).expect("HMAC accepts keys of any length");
    mac.update(packet);
    let apad: Vec<u8> = APAD_WORD.iter().copied().cycle().take(l).collect();
    mac.update(&apad);
    mac.finalize().into_bytes().to_vec()
}

/// Compares two digests without an early exit.
pub(crate) fn digest_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Verifies a cryptographic trailer; `packet` is the OSPF packet (length bytes), `trailer`
/// what follows it in the datagram. Returns the crypto sequence number.
pub(crate) fn verify_crypto(
    keys: &[CryptoKey],
    auth_field: &[u8; 8],
    packet: &[u8],
    trailer: &[u8],
) -> Result<u32, DecodeError> {
    let key_id = auth_field[2];
    let len = auth_field[3];
    let seq = u32::from_be_bytes([auth_field[4], auth_field[5], auth_field[6], auth_field[7]]);
    let key = keys
        .iter()
        .find(|k| k.key_id == key_id)
        .ok_or(DecodeError::UnknownKeyId(key_id))?;
    if usize::from(len) != key.algo.digest_len() {
        return Err(DecodeError::BadAuthLength(len));
    }
    let got = trailer
        .get(..usize::from(len))
        .ok_or(DecodeError::Truncated {
            what: "authentication digest",
            need: usize::from(len),
            have: trailer.len(),
        })?;
    if !digest_eq(&digest(key, packet), got) {
        return Err(DecodeError::AuthFailure);
    }
    Ok(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_manual_construction() {
        // HMAC(K, m || Apad) computed by hand from SHA-256 per RFC 2104.
        let key = CryptoKey {
            key_id: 1,
            algo: CryptoAlgo::HmacSha256,
            key: b"secret".to_vec(),
        };
        let msg = b"ospf packet bytes";
        let mut kp = [0u8; 64];
        kp[..6].copy_from_slice(b"secret");
        let ipad: Vec<u8> = kp.iter().map(|b| b ^ 0x36).collect();
        let opad: Vec<u8> = kp.iter().map(|b| b ^ 0x5c).collect();
        let mut inner = Sha256::new();
        inner.update(&ipad);
        inner.update(msg);
        for _ in 0..8 {
            inner.update(APAD_WORD);
        }
        let inner = inner.finalize();
        let mut outer = Sha256::new();
        outer.update(&opad);
        outer.update(inner);
        assert_eq!(digest(&key, msg), outer.finalize().to_vec());
    }

    #[test]
    fn long_hmac_key_is_hashed_first() {
        let long = vec![7u8; 100];
        let k1 = CryptoKey {
            key_id: 1,
            algo: CryptoAlgo::HmacSha1,
            key: long.clone(),
        };
        let k2 = CryptoKey {
            key_id: 1,
            algo: CryptoAlgo::HmacSha1,
            key: Sha1::digest(&long).to_vec(),
        };
        assert_eq!(digest(&k1, b"x"), digest(&k2, b"x"));
        assert_eq!(digest(&k1, b"x").len(), 20);
    }

    #[test]
    fn md5_digest_is_md5_of_packet_and_padded_key() {
        let key = CryptoKey {
            key_id: 1,
            algo: CryptoAlgo::Md5,
            key: b"abc".to_vec(),
        };
        let mut m = b"hello".to_vec();
        m.extend_from_slice(b"abc");
        m.extend_from_slice(&[0u8; 13]);
        assert_eq!(digest(&key, b"hello"), Md5::digest(&m).to_vec());
    }
}
