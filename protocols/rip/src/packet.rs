//! RIPv2 wire format (RFC 2453 section 4) with RFC 4822 cryptographic authentication.
//! Pure encode/decode: no I/O, and [`decode`] never panics on any input.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +---------------+---------------+-------------------------------+
//! |  command (1)  |  version (1)  |       must be zero (2)        |
//! +---------------+---------------+-------------------------------+
//! |                                                               |
//! ~                Route Table Entry 1 .. 25 (20 each)            ~
//! |                                                               |
//! +---------------------------------------------------------------+
//! ```

use std::net::Ipv4Addr;

use hmac::{Hmac, Mac};
use ipnet::Ipv4Net;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// UDP port of RIP.
pub const RIP_PORT: u16 = 520;
/// The RIPv2 multicast group (RIP2-ROUTERS).
pub const RIP_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 9);
/// Metric meaning unreachable.
pub const INFINITY: u8 = 16;
/// Address family of IPv4 entries.
pub const AF_INET: u16 = 2;
/// Entries in one packet without authentication (512-byte payload).
pub const MAX_ENTRIES: usize = 25;
/// Entries in one authenticated packet (auth entry and trailer take the rest).
pub const MAX_ENTRIES_AUTH: usize = 23;

const HEADER_LEN: usize = 4;
const ENTRY_LEN: usize = 20;
const AFI_AUTH: u16 = 0xffff;
const AUTH_TYPE_PASSWORD: u16 = 2;
const AUTH_TYPE_CRYPTO: u16 = 3;
/// RFC 4822 section 2.5: the authentication data is filled with Apad while hashing.
const APAD: [u8; 4] = [0x87, 0x8f, 0xe1, 0xf3];

/// RIP command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Command {
    /// Asks for all or part of the routing table.
    Request = 1,
    /// Carries routes (answer, periodic or triggered update).
    Response = 2,
}

/// One route table entry.
///
/// ```text
/// +-------------------------------+-------------------------------+
/// | Address Family Identifier (2) |        Route Tag (2)          |
/// +-------------------------------+-------------------------------+
/// |                         IP Address (4)                        |
/// +---------------------------------------------------------------+
/// |                         Subnet Mask (4)                       |
/// +---------------------------------------------------------------+
/// |                         Next Hop (4)                          |
/// +---------------------------------------------------------------+
/// |                         Metric (4)                            |
/// +---------------------------------------------------------------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub afi: u16,
    pub tag: u16,
    pub addr: Ipv4Addr,
    pub mask: Ipv4Addr,
    pub next_hop: Ipv4Addr,
    pub metric: u32,
}

impl Entry {
    /// An IPv4 route entry.
    pub fn route(prefix: Ipv4Net, metric: u8, tag: u16) -> Self {
        Entry {
            afi: AF_INET,
            tag,
            addr: prefix.network(),
            mask: prefix.netmask(),
            next_hop: Ipv4Addr::UNSPECIFIED,
            metric: u32::from(metric),
        }
    }

    /// The "send me your whole table" entry (AFI 0, metric 16).
    pub fn whole_table() -> Self {
        Entry {
            afi: 0,
            tag: 0,
            addr: Ipv4Addr::UNSPECIFIED,
            mask: Ipv4Addr::UNSPECIFIED,
            next_hop: Ipv4Addr::UNSPECIFIED,
            metric: u32::from(INFINITY),
        }
    }

    /// The prefix, if the mask is contiguous and the address has no host bits.
    pub fn prefix(&self) -> Option<Ipv4Net> {
        let len = ipnet::ipv4_mask_to_prefix(self.mask).ok()?;
        let p = Ipv4Net::new(self.addr, len).ok()?;
        (p.network() == self.addr).then_some(p)
    }
}

/// A RIPv2 packet (without its authentication entries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packet {
    pub command: Command,
    pub version: u8,
    pub entries: Vec<Entry>,
}

impl Packet {
    /// Is this a request for the whole table (RFC 2453 3.9.1)?
    pub fn is_whole_table_request(&self) -> bool {
        self.command == Command::Request
            && self.entries.len() == 1
            && self.entries[0].afi == 0
            && self.entries[0].metric == u32::from(INFINITY)
    }
}

/// Hash of the cryptographic authentication.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// HMAC-SHA-256 (RFC 4822).
    #[default]
    #[serde(rename = "hmac-sha-256")]
    HmacSha256,
    /// Keyed MD5 (RFC 2082, kept by RFC 4822).
    KeyedMd5,
}

impl Algorithm {
    /// Length of the authentication data.
    pub fn digest_len(self) -> usize {
        match self {
            Algorithm::HmacSha256 => 32,
            Algorithm::KeyedMd5 => 16,
        }
    }
}

/// A key to sign or verify with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub id: u8,
    pub algorithm: Algorithm,
    pub secret: Vec<u8>,
}

/// The RFC 4822 authentication entry (first entry) of a received packet.
///
/// ```text
/// +-------------------------------+-------------------------------+
/// |             0xFFFF            |   Authentication Type=0x0003  |
/// +-------------------------------+---------------+---------------+
/// |     RIPv2 Packet Length       |    Key ID     | Auth Data Len |
/// +-------------------------------+---------------+---------------+
/// |               Sequence Number (non-decreasing)                |
/// +---------------------------------------------------------------+
/// |                      reserved must be zero                    |
/// +---------------------------------------------------------------+
/// |                      reserved must be zero                    |
/// +---------------------------------------------------------------+
/// ```
/// The trailer after the last entry: `0xFFFF 0x0001` then the authentication data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoAuth {
    pub key_id: u8,
    pub seq: u32,
    /// Offset of the trailer (the "RIPv2 Packet Length").
    pub body_len: usize,
    /// The authentication data as received.
    pub digest: Vec<u8>,
}

/// Why a packet was dropped; [`DecodeError::counter`] names the counter it increments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("packet too short ({0} bytes)")]
    TooShort(usize),
    #[error("length {0} is not a header plus whole entries")]
    BadLength(usize),
    #[error("unknown command {0}")]
    BadCommand(u8),
    #[error("unsupported version {0}")]
    BadVersion(u8),
    #[error("unsupported authentication type {0}")]
    UnsupportedAuth(u16),
    #[error("malformed authentication: {0}")]
    BadAuth(&'static str),
}

impl DecodeError {
    /// The counter this error increments.
    pub fn counter(&self) -> &'static str {
        match self {
            DecodeError::TooShort(_) | DecodeError::BadLength(_) => "rx-bad-length",
            DecodeError::BadCommand(_) => "rx-bad-command",
            DecodeError::BadVersion(_) => "rx-bad-version",
            DecodeError::UnsupportedAuth(_) | DecodeError::BadAuth(_) => "rx-auth-failures",
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn entry_at(b: &[u8], at: usize) -> Option<Entry> {
    Some(Entry {
        afi: u16_at(b, at)?,
        tag: u16_at(b, at + 2)?,
        addr: u32_at(b, at + 4)?.into(),
        mask: u32_at(b, at + 8)?.into(),
        next_hop: u32_at(b, at + 12)?.into(),
        metric: u32_at(b, at + 16)?,
    })
}

/// Decodes a packet; the authentication entry, if any, is returned separately for
/// [`verify`]. Entries are returned as received: their validation (metric range, address
/// class) is the receiver's, per entry (RFC 2453 3.9.2).
pub fn decode(buf: &[u8]) -> Result<(Packet, Option<CryptoAuth>), DecodeError> {
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::TooShort(buf.len()));
    }
    let command = match buf[0] {
        1 => Command::Request,
        2 => Command::Response,
        c => return Err(DecodeError::BadCommand(c)),
    };
    let version = buf[1];
    if version != 2 {
        return Err(DecodeError::BadVersion(version));
    }
    let mut auth = None;
    let mut end = buf.len();
    if u16_at(buf, HEADER_LEN) == Some(AFI_AUTH) {
        let ty = u16_at(buf, HEADER_LEN + 2).unwrap_or(0);
        if ty != AUTH_TYPE_CRYPTO {
            return Err(DecodeError::UnsupportedAuth(ty));
        }
        let a = HEADER_LEN;
        let body_len = usize::from(u16_at(buf, a + 4).ok_or(DecodeError::BadAuth("short"))?);
        let key_id = *buf.get(a + 6).ok_or(DecodeError::BadAuth("short"))?;
        let seq = u32_at(buf, a + 8).ok_or(DecodeError::BadAuth("short"))?;
        if body_len < HEADER_LEN + ENTRY_LEN
            || !(body_len - HEADER_LEN).is_multiple_of(ENTRY_LEN)
            || body_len + 4 > buf.len()
        {
            return Err(DecodeError::BadAuth("packet length"));
        }
        if u16_at(buf, body_len) != Some(AFI_AUTH) || u16_at(buf, body_len + 2) != Some(1) {
            return Err(DecodeError::BadAuth("no trailer"));
        }
        auth = Some(CryptoAuth {
            key_id,
            seq,
            body_len,
            digest: buf[body_len + 4..].to_vec(),
        });
        end = body_len;
    } else if !(buf.len() - HEADER_LEN).is_multiple_of(ENTRY_LEN) {
        return Err(DecodeError::BadLength(buf.len()));
    }
    let skip = usize::from(auth.is_some());
    let entries = (HEADER_LEN..end)
        .step_by(ENTRY_LEN)
        .skip(skip)
        .filter_map(|at| entry_at(buf, at))
        .collect::<Vec<_>>();
    if entries.iter().any(|e| e.afi == AFI_AUTH) {
        // A second authentication entry, or a password one after a crypto one.
        return Err(DecodeError::UnsupportedAuth(AUTH_TYPE_PASSWORD));
    }
    Ok((
        Packet {
            command,
            version,
            entries,
        },
        auth,
    ))
}

/// The key RFC 4822 section 2.5 hashes with: the secret padded with zeros to the hash
/// length, or hashed down to it if longer.
fn hmac_key(secret: &[u8]) -> Vec<u8> {
    if secret.len() > 32 {
        Sha256::digest(secret).to_vec()
    } else {
        let mut k = secret.to_vec();
        k.resize(32, 0);
        k
    }
}

/// The authentication data of `buf`, whose digest field (after `body_len + 4`) is ignored.
fn digest(buf: &[u8], body_len: usize, key: &Key) -> Vec<u8> {
    let n = key.algorithm.digest_len();
    let mut data = buf[..body_len + 4].to_vec();
    match key.algorithm {
        Algorithm::HmacSha256 => {
            data.extend(APAD.iter().cycle().take(n));
            let mut mac = <Hmac<Sha256>>::new_from_slice(&hmac_key(&key.secret))
                .expect("HMAC takes keys of any length");
            mac.update(&data);
            mac.finalize().into_bytes().to_vec()
        }
        Algorithm::KeyedMd5 => {
            let mut k = key.secret.clone();
            k.resize(n, 0);
            data.extend(k);
            Md5::digest(&data).to_vec()
        }
    }
}

/// Checks a received packet's authentication data against `key`.
pub fn verify(buf: &[u8], auth: &CryptoAuth, key: &Key) -> bool {
    auth.key_id == key.id
        && auth.digest.len() == key.algorithm.digest_len()
        && buf.len() >= auth.body_len + 4
        && digest(buf, auth.body_len, key) == auth.digest
}

/// Encodes a packet, signed with `auth` = (key, sequence number) if given.
pub fn encode(p: &Packet, auth: Option<(&Key, u32)>) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_LEN + ENTRY_LEN * (p.entries.len() + 2));
    b.extend([p.command as u8, p.version, 0, 0]);
    let body_len = HEADER_LEN + ENTRY_LEN * (p.entries.len() + 1);
    if let Some((key, seq)) = auth {
        b.extend(AFI_AUTH.to_be_bytes());
        b.extend(AUTH_TYPE_CRYPTO.to_be_bytes());
        b.extend((body_len as u16).to_be_bytes());
        b.extend([key.id, key.algorithm.digest_len() as u8]);
        b.extend(seq.to_be_bytes());
        b.extend([0; 8]);
    }
    for e in &p.entries {
        b.extend(e.afi.to_be_bytes());
        b.extend(e.tag.to_be_bytes());
        b.extend(e.addr.octets());
        b.extend(e.mask.octets());
        b.extend(e.next_hop.octets());
        b.extend(e.metric.to_be_bytes());
    }
    if let Some((key, _)) = auth {
        b.extend(AFI_AUTH.to_be_bytes());
        b.extend(1u16.to_be_bytes());
        let d = digest(&b, body_len, key);
        b.extend(d);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Packet {
        Packet {
            command: Command::Response,
            version: 2,
            entries: vec![
                Entry::route("10.1.0.0/16".parse().unwrap(), 1, 0),
                Entry::route("192.0.2.0/24".parse().unwrap(), 16, 7),
            ],
        }
    }

    #[test]
    fn rfc_layout_of_a_response() {
        let b = encode(&sample(), None);
        assert_eq!(b.len(), 4 + 2 * 20);
        assert_eq!(&b[..4], &[2, 2, 0, 0]);
        assert_eq!(
            &b[4..24],
            &[0, 2, 0, 0, 10, 1, 0, 0, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        );
        assert_eq!(decode(&b).unwrap(), (sample(), None));
    }

    #[test]
    fn whole_table_request() {
        let p = Packet {
            command: Command::Request,
            version: 2,
            entries: vec![Entry::whole_table()],
        };
        let (d, _) = decode(&encode(&p, None)).unwrap();
        assert!(d.is_whole_table_request());
        assert!(!sample().is_whole_table_request());
    }

    #[test]
    fn signed_packets_verify_and_tampering_is_caught() {
        for algorithm in [Algorithm::HmacSha256, Algorithm::KeyedMd5] {
            let key = Key {
                id: 3,
                algorithm,
                secret: b"secret".to_vec(),
            };
            let mut b = encode(&sample(), Some((&key, 42)));
            assert_eq!(b.len(), 4 + 20 * 3 + 4 + algorithm.digest_len());
            let (p, auth) = decode(&b).unwrap();
            assert_eq!(p, sample());
            let auth = auth.unwrap();
            assert_eq!((auth.key_id, auth.seq, auth.body_len), (3, 42, 64));
            assert!(verify(&b, &auth, &key));
            let wrong = Key {
                secret: b"Secret".to_vec(),
                ..key.clone()
            };
            assert!(!verify(&b, &auth, &wrong));
            b[30] ^= 1;
            let (_, auth) = decode(&b).unwrap();
            assert!(!verify(&b, &auth.unwrap(), &key));
        }
    }

    #[test]
    fn malformed_packets_are_typed_errors() {
        assert_eq!(decode(&[2]), Err(DecodeError::TooShort(1)));
        assert_eq!(decode(&[3, 2, 0, 0]), Err(DecodeError::BadCommand(3)));
        assert_eq!(decode(&[2, 1, 0, 0]), Err(DecodeError::BadVersion(1)));
        assert_eq!(decode(&[2, 2, 0, 0, 1]), Err(DecodeError::BadLength(5)));
        let mut pw = vec![2, 2, 0, 0, 0xff, 0xff, 0, 2];
        pw.extend([0; 16]);
        assert_eq!(decode(&pw), Err(DecodeError::UnsupportedAuth(2)));
        assert_eq!(
            DecodeError::UnsupportedAuth(2).counter(),
            "rx-auth-failures"
        );
    }

    #[test]
    fn entry_prefix_rejects_bad_masks_and_host_bits() {
        let mut e = Entry::route("10.0.0.0/8".parse().unwrap(), 1, 0);
        assert_eq!(e.prefix(), Some("10.0.0.0/8".parse().unwrap()));
        e.mask = Ipv4Addr::new(255, 0, 255, 0);
        assert_eq!(e.prefix(), None);
        e.mask = Ipv4Addr::new(255, 0, 0, 0);
        e.addr = Ipv4Addr::new(10, 0, 0, 1);
        assert_eq!(e.prefix(), None);
    }

    fn arb_entry() -> impl Strategy<Value = Entry> {
        (
            any::<u16>(),
            any::<u16>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
        )
            .prop_filter("not an auth entry", |e| e.0 != AFI_AUTH)
            .prop_map(|(afi, tag, a, m, n, metric)| Entry {
                afi,
                tag,
                addr: a.into(),
                mask: m.into(),
                next_hop: n.into(),
                metric,
            })
    }

    proptest! {
        #[test]
        fn round_trip(resp in any::<bool>(), entries in prop::collection::vec(arb_entry(), 0..25),
                      signed in any::<bool>(), seq in any::<u32>()) {
            let p = Packet {
                command: if resp { Command::Response } else { Command::Request },
                version: 2,
                entries,
            };
            let key = Key { id: 1, algorithm: Algorithm::HmacSha256, secret: b"k".to_vec() };
            let auth = signed.then_some((&key, seq));
            let b = encode(&p, auth);
            let (d, a) = decode(&b).unwrap();
            prop_assert_eq!(d, p);
            prop_assert_eq!(a.is_some(), signed);
            if let Some(a) = a {
                prop_assert!(verify(&b, &a, &key));
                prop_assert_eq!(a.seq, seq);
            }
        }

        #[test]
        fn decode_never_panics(b in prop::collection::vec(any::<u8>(), 0..600)) {
            if let Ok((_, Some(a))) = decode(&b) {
                let key = Key { id: a.key_id, algorithm: Algorithm::KeyedMd5, secret: vec![] };
                let _ = verify(&b, &a, &key);
            }
        }

        #[test]
        fn decode_never_panics_on_auth_like_input(
            tail in prop::collection::vec(any::<u8>(), 0..200), len in any::<u16>()) {
            let mut b = vec![2, 2, 0, 0, 0xff, 0xff, 0, 3];
            b.extend(len.to_be_bytes());
            b.extend(tail);
            let _ = decode(&b);
        }
    }
}
