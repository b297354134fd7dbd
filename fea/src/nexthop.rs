//! Kernel nexthop objects (`RTM_NEWNEXTHOP` / `RTM_DELNEXTHOP` / `RTM_GETNEXTHOP`, Linux
//! 5.3+): the codec. netlink-packet-route 0.34 has no nexthop messages, so this module
//! encodes and decodes them on top of netlink-packet-core's attribute helpers. Pure: no I/O.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{DefaultNla, Emitable, NlasIterator, Parseable};

/// `RTM_NEWNEXTHOP`.
pub const RTM_NEWNEXTHOP: u16 = 104;
/// `RTM_DELNEXTHOP`.
pub const RTM_DELNEXTHOP: u16 = 105;
/// `RTM_GETNEXTHOP`.
pub const RTM_GETNEXTHOP: u16 = 106;

const NHA_ID: u16 = 1;
const NHA_GROUP: u16 = 2;
const NHA_GROUP_TYPE: u16 = 3;
const NHA_BLACKHOLE: u16 = 4;
const NHA_OIF: u16 = 5;
const NHA_GATEWAY: u16 = 6;

/// `AF_INET` / `AF_INET6` / `AF_UNSPEC` as the nexthop header carries them.
pub const AF_UNSPEC: u8 = 0;
/// IPv4 address family.
pub const AF_INET: u8 = 2;
/// IPv6 address family.
pub const AF_INET6: u8 = 10;

const NHMSG_LEN: usize = 8;
const NH_GRP_LEN: usize = 8;

/// Errors decoding a nexthop message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NexthopDecodeError {
    #[error("nexthop message is {0} bytes, shorter than its 8-byte header")]
    Short(usize),
    #[error("nexthop attribute {kind} has bad length {len}")]
    AttrLength { kind: u16, len: usize },
    #[error("malformed nexthop attribute: {0}")]
    Attr(String),
}

/// One member of a nexthop group (`struct nexthop_grp`).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +---------------------------------------------------------------+
/// |                          nexthop id                           |
/// +---------------+---------------+-------------------------------+
/// |  weight - 1   |  weight_high  |           reserved            |
/// +---------------+---------------+-------------------------------+
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupMember {
    /// Member nexthop object id.
    pub id: u32,
    /// ECMP weight, 1..=256.
    pub weight: u16,
}

/// A nexthop object message (`struct nhmsg` plus attributes).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +---------------+---------------+---------------+---------------+
/// |   nh_family   |   nh_scope    |  nh_protocol  |   reserved    |
/// +---------------+---------------+---------------+---------------+
/// |                           nh_flags                            |
/// +---------------------------------------------------------------+
/// |  attributes: NHA_ID, NHA_OIF, NHA_GATEWAY, NHA_GROUP, ...     |
/// +---------------------------------------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NexthopMessage {
    /// `AF_INET` / `AF_INET6` for a single next hop, `AF_UNSPEC` for a group.
    pub family: u8,
    /// Scope (set by the kernel in answers).
    pub scope: u8,
    /// Route protocol that owns the object.
    pub protocol: u8,
    /// `RTNH_F_*` flags.
    pub flags: u32,
    /// NHA_ID.
    pub id: Option<u32>,
    /// NHA_OIF.
    pub oif: Option<u32>,
    /// NHA_GATEWAY.
    pub gateway: Option<IpAddr>,
    /// NHA_BLACKHOLE.
    pub blackhole: bool,
    /// NHA_GROUP (empty when not a group).
    pub group: Vec<GroupMember>,
    /// NHA_GROUP_TYPE (0 = multipath).
    pub group_type: Option<u16>,
    /// Attributes this codec does not interpret, kept for round trips.
    pub other: Vec<DefaultNla>,
}

impl NexthopMessage {
    fn attributes(&self) -> Vec<DefaultNla> {
        let mut attrs = Vec::with_capacity(4);
        if let Some(id) = self.id {
            attrs.push(DefaultNla::new(NHA_ID, id.to_ne_bytes().to_vec()));
        }
        if !self.group.is_empty() {
            let mut v = Vec::with_capacity(self.group.len() * NH_GRP_LEN);
            for m in &self.group {
                let w = m.weight.clamp(1, 256) - 1;
                v.extend_from_slice(&m.id.to_ne_bytes());
                v.push((w & 0xff) as u8);
                v.push((w >> 8) as u8);
                v.extend_from_slice(&[0, 0]);
            }
            attrs.push(DefaultNla::new(NHA_GROUP, v));
        }
        if let Some(t) = self.group_type {
            attrs.push(DefaultNla::new(NHA_GROUP_TYPE, t.to_ne_bytes().to_vec()));
        }
        if self.blackhole {
            attrs.push(DefaultNla::new(NHA_BLACKHOLE, Vec::new()));
        }
        if let Some(oif) = self.oif {
            attrs.push(DefaultNla::new(NHA_OIF, oif.to_ne_bytes().to_vec()));
        }
        if let Some(gw) = self.gateway {
            let v = match gw {
                IpAddr::V4(a) => a.octets().to_vec(),
                IpAddr::V6(a) => a.octets().to_vec(),
            };
            attrs.push(DefaultNla::new(NHA_GATEWAY, v));
        }
        attrs.extend(self.other.iter().cloned());
        attrs
    }

    /// Decodes the payload of an `RTM_*NEXTHOP` message (after the netlink header).
    pub fn parse(payload: &[u8]) -> Result<Self, NexthopDecodeError> {
        if payload.len() < NHMSG_LEN {
            return Err(NexthopDecodeError::Short(payload.len()));
        }
        let mut msg = NexthopMessage {
            family: payload[0],
            scope: payload[1],
            protocol: payload[2],
            flags: u32::from_ne_bytes([payload[4], payload[5], payload[6], payload[7]]),
            ..Default::default()
        };
        for nla in NlasIterator::new(&payload[NHMSG_LEN..]) {
            let nla = nla.map_err(|e| NexthopDecodeError::Attr(e.to_string()))?;
            let kind = nla.kind();
            let v = nla.value();
            let bad = || NexthopDecodeError::AttrLength { kind, len: v.len() };
            match kind {
                NHA_ID => msg.id = Some(u32_of(v).ok_or_else(bad)?),
                NHA_OIF => msg.oif = Some(u32_of(v).ok_or_else(bad)?),
                NHA_GROUP_TYPE => {
                    let b: [u8; 2] = v.try_into().map_err(|_| bad())?;
                    msg.group_type = Some(u16::from_ne_bytes(b));
                }
                NHA_BLACKHOLE => msg.blackhole = true,
                NHA_GATEWAY => {
                    msg.gateway = Some(match v.len() {
                        4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(v).map_err(|_| bad())?)),
                        16 => {
                            IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(v).map_err(|_| bad())?))
                        }
                        _ => return Err(bad()),
                    })
                }
                NHA_GROUP => {
                    if v.len() % NH_GRP_LEN != 0 {
                        return Err(bad());
                    }
                    msg.group = v
                        .chunks_exact(NH_GRP_LEN)
                        .map(|c| GroupMember {
                            id: u32::from_ne_bytes([c[0], c[1], c[2], c[3]]),
                            weight: (u16::from(c[4]) | (u16::from(c[5]) << 8)) + 1,
                        })
                        .collect();
                }
                _ => msg.other.push(
                    DefaultNla::parse(&nla).map_err(|e| NexthopDecodeError::Attr(e.to_string()))?,
                ),
            }
        }
        Ok(msg)
    }
}

fn u32_of(v: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(v.try_into().ok()?))
}

impl Emitable for NexthopMessage {
    fn buffer_len(&self) -> usize {
        NHMSG_LEN + self.attributes().as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        buffer[0] = self.family;
        buffer[1] = self.scope;
        buffer[2] = self.protocol;
        buffer[3] = 0;
        buffer[4..8].copy_from_slice(&self.flags.to_ne_bytes());
        self.attributes().as_slice().emit(&mut buffer[NHMSG_LEN..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emit(m: &NexthopMessage) -> Vec<u8> {
        let mut buf = vec![0u8; m.buffer_len()];
        m.emit(&mut buf);
        buf
    }

    #[test]
    fn single_nexthop_encodes_like_iproute2() {
        // `ip nexthop add id 1000000 via 10.0.0.2 dev <7> proto 201`
        let m = NexthopMessage {
            family: AF_INET,
            protocol: 201,
            id: Some(1_000_000),
            oif: Some(7),
            gateway: Some("10.0.0.2".parse().unwrap()),
            ..Default::default()
        };
        let b = emit(&m);
        let mut expect = vec![AF_INET, 0, 201, 0, 0, 0, 0, 0];
        expect.extend_from_slice(&[8, 0, 1, 0]);
        expect.extend_from_slice(&1_000_000u32.to_ne_bytes());
        expect.extend_from_slice(&[8, 0, 5, 0]);
        expect.extend_from_slice(&7u32.to_ne_bytes());
        expect.extend_from_slice(&[8, 0, 6, 0, 10, 0, 0, 2]);
        assert_eq!(b, expect);
        assert_eq!(NexthopMessage::parse(&b).unwrap(), m);
    }

    #[test]
    fn group_round_trips_with_weights() {
        let m = NexthopMessage {
            family: AF_UNSPEC,
            protocol: 201,
            id: Some(1_000_002),
            group: vec![
                GroupMember {
                    id: 1_000_000,
                    weight: 1,
                },
                GroupMember {
                    id: 1_000_001,
                    weight: 256,
                },
            ],
            ..Default::default()
        };
        let b = emit(&m);
        // weight is carried as weight-1: 0 and 255
        assert_eq!(&b[8 + 8 + 4 + 4..8 + 8 + 4 + 6], &[0, 0]);
        assert_eq!(&b[8 + 8 + 4 + 12..8 + 8 + 4 + 14], &[255, 0]);
        assert_eq!(NexthopMessage::parse(&b).unwrap(), m);
    }

    #[test]
    fn ipv6_gateway_and_blackhole_round_trip() {
        let m = NexthopMessage {
            family: AF_INET6,
            protocol: 201,
            id: Some(5),
            oif: Some(3),
            gateway: Some("2001:db8::2".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(NexthopMessage::parse(&emit(&m)).unwrap(), m);
        let bh = NexthopMessage {
            family: AF_INET,
            id: Some(6),
            blackhole: true,
            ..Default::default()
        };
        assert_eq!(NexthopMessage::parse(&emit(&bh)).unwrap(), bh);
    }

    #[test]
    fn truncated_and_malformed_input_is_an_error_not_a_panic() {
        assert_eq!(
            NexthopMessage::parse(&[2, 0, 201]),
            Err(NexthopDecodeError::Short(3))
        );
        // NHA_ID with 3 bytes of value
        let b = [2, 0, 201, 0, 0, 0, 0, 0, 7, 0, 1, 0, 1, 2, 3, 0];
        assert!(matches!(
            NexthopMessage::parse(&b),
            Err(NexthopDecodeError::AttrLength { kind: 1, len: 3 })
        ));
        // attribute length past the end
        let b = [2, 0, 201, 0, 0, 0, 0, 0, 40, 0, 1, 0, 1, 2, 3, 4];
        assert!(NexthopMessage::parse(&b).is_err());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..96)) {
            let _ = NexthopMessage::parse(&bytes);
        }
    }
}
