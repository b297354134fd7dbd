//! Path attributes (RFC 4271 section 4.3 and 5, plus the RFCs named per type).
//!
//! Each attribute on the wire:
//!
//! ```text
//!  0                   1
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Attr. Flags  |Attr. Type Code|   then 1 length octet, or 2 when
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+   Extended Length is set, then the value
//!
//! Flags: O(ptional) 0x80, T(ransitive) 0x40, P(artial) 0x20, E(xtended length) 0x10
//! ```
//!
//! Decoded attributes live in one [`PathAttributes`] struct with a typed field
//! per known type, so an attribute set can be hashed and interned whole.
//! AS4_PATH and AS4_AGGREGATOR never appear in it: on a 2-octet session they are
//! merged into `as_path`/`aggregator` on decode and re-derived on encode.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::error::EncodeError;
use super::{encode_prefix, AfiSafi, AS_TRANS};

/// Attribute flag: optional.
pub const FLAG_OPTIONAL: u8 = 0x80;
/// Attribute flag: transitive.
pub const FLAG_TRANSITIVE: u8 = 0x40;
/// Attribute flag: partial.
pub const FLAG_PARTIAL: u8 = 0x20;
/// Attribute flag: extended (2-octet) length.
pub const FLAG_EXTENDED_LENGTH: u8 = 0x10;

/// Attribute type codes.
pub mod type_code {
    /// ORIGIN (RFC 4271).
    pub const ORIGIN: u8 = 1;
    /// AS_PATH (RFC 4271).
    pub const AS_PATH: u8 = 2;
    /// NEXT_HOP (RFC 4271).
    pub const NEXT_HOP: u8 = 3;
    /// MULTI_EXIT_DISC (RFC 4271).
    pub const MED: u8 = 4;
    /// LOCAL_PREF (RFC 4271).
    pub const LOCAL_PREF: u8 = 5;
    /// ATOMIC_AGGREGATE (RFC 4271).
    pub const ATOMIC_AGGREGATE: u8 = 6;
    /// AGGREGATOR (RFC 4271, RFC 6793).
    pub const AGGREGATOR: u8 = 7;
    /// COMMUNITIES (RFC 1997).
    pub const COMMUNITIES: u8 = 8;
    /// ORIGINATOR_ID (RFC 4456).
    pub const ORIGINATOR_ID: u8 = 9;
    /// CLUSTER_LIST (RFC 4456).
    pub const CLUSTER_LIST: u8 = 10;
    /// MP_REACH_NLRI (RFC 4760).
    pub const MP_REACH_NLRI: u8 = 14;
    /// MP_UNREACH_NLRI (RFC 4760).
    pub const MP_UNREACH_NLRI: u8 = 15;
    /// EXTENDED COMMUNITIES (RFC 4360).
    pub const EXTENDED_COMMUNITIES: u8 = 16;
    /// AS4_PATH (RFC 6793).
    pub const AS4_PATH: u8 = 17;
    /// AS4_AGGREGATOR (RFC 6793).
    pub const AS4_AGGREGATOR: u8 = 18;
    /// LARGE_COMMUNITY (RFC 8092).
    pub const LARGE_COMMUNITIES: u8 = 32;
}

/// The Optional/Transitive bits a known attribute must carry; `None` for types
/// this crate does not model.
pub fn expected_flags(type_code: u8) -> Option<u8> {
    use type_code::*;
    const WELL_KNOWN: u8 = FLAG_TRANSITIVE;
    const OPT_TRANS: u8 = FLAG_OPTIONAL | FLAG_TRANSITIVE;
    const OPT: u8 = FLAG_OPTIONAL;
    Some(match type_code {
        ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE => WELL_KNOWN,
        MED | ORIGINATOR_ID | CLUSTER_LIST | MP_REACH_NLRI | MP_UNREACH_NLRI => OPT,
        AGGREGATOR | COMMUNITIES | EXTENDED_COMMUNITIES | AS4_PATH | AS4_AGGREGATOR
        | LARGE_COMMUNITIES => OPT_TRANS,
        _ => return None,
    })
}

/// ORIGIN values (RFC 4271 section 5.1.1); lower is preferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// 0: learned from an interior protocol.
    Igp = 0,
    /// 1: learned via EGP.
    Egp = 1,
    /// 2: learned some other way.
    Incomplete = 2,
}

impl Origin {
    /// From the wire value.
    pub fn from_u8(v: u8) -> Option<Origin> {
        Some(match v {
            0 => Origin::Igp,
            1 => Origin::Egp,
            2 => Origin::Incomplete,
            _ => return None,
        })
    }
}

/// AS_PATH segment types (RFC 4271, RFC 5065).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentType {
    /// 1: unordered set (from aggregation).
    Set = 1,
    /// 2: ordered sequence.
    Sequence = 2,
    /// 3: confederation member sequence.
    ConfedSequence = 3,
    /// 4: confederation member set.
    ConfedSet = 4,
}

impl SegmentType {
    /// From the wire value.
    pub fn from_u8(v: u8) -> Option<SegmentType> {
        Some(match v {
            1 => Self::Set,
            2 => Self::Sequence,
            3 => Self::ConfedSequence,
            4 => Self::ConfedSet,
            _ => return None,
        })
    }
}

/// One AS_PATH segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AsSegment {
    /// Segment type.
    pub kind: SegmentType,
    /// AS numbers, 1 to 255 of them on the wire.
    pub asns: Vec<u32>,
}

/// AS_PATH, with 4-octet AS numbers in memory.
///
/// ```text
///  each segment: +----------+-------------+---------------------------+
///                | seg type | seg len (N) | N ASes, 2 or 4 octets each |
///                +----------+-------------+---------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AsPath {
    /// Segments in order.
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    /// A path of one AS_SEQUENCE.
    pub fn from_sequence(asns: Vec<u32>) -> AsPath {
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns,
            }],
        }
    }

    /// Path length for the decision process (RFC 4271 9.1.2.2 a): an AS_SET
    /// counts 1, confederation segments count 0 (RFC 5065 section 5.3).
    pub fn length(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                SegmentType::Sequence => s.asns.len(),
                SegmentType::Set => 1,
                SegmentType::ConfedSequence | SegmentType::ConfedSet => 0,
            })
            .sum()
    }

    /// Count used by the RFC 6793 AS4_PATH merge: sets count 1, sequences
    /// (confederation ones included) their length.
    fn merge_count(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                SegmentType::Sequence | SegmentType::ConfedSequence => s.asns.len(),
                SegmentType::Set | SegmentType::ConfedSet => 1,
            })
            .sum()
    }

    /// The neighbouring AS (leftmost AS of a leading AS_SEQUENCE, skipping
    /// confederation segments), used to decide whether MEDs compare.
    pub fn neighbor_as(&self) -> Option<u32> {
        self.segments
            .iter()
            .find(|s| !matches!(s.kind, SegmentType::ConfedSequence | SegmentType::ConfedSet))
            .and_then(|s| (s.kind == SegmentType::Sequence).then(|| s.asns.first().copied()))
            .flatten()
    }

    /// The originating AS (rightmost AS of a trailing AS_SEQUENCE).
    pub fn origin_as(&self) -> Option<u32> {
        self.segments
            .last()
            .filter(|s| s.kind == SegmentType::Sequence)
            .and_then(|s| s.asns.last().copied())
    }

    /// Whether `asn` appears anywhere (loop detection).
    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| s.asns.contains(&asn))
    }

    /// Prepends `asn` `count` times to the leading AS_SEQUENCE.
    pub fn prepend(&mut self, asn: u32, count: usize) {
        match self.segments.first_mut() {
            Some(s) if s.kind == SegmentType::Sequence && s.asns.len() + count <= 255 => {
                s.asns.splice(0..0, std::iter::repeat_n(asn, count));
            }
            _ => self.segments.insert(
                0,
                AsSegment {
                    kind: SegmentType::Sequence,
                    asns: vec![asn; count.min(255)],
                },
            ),
        }
    }

    /// Whether any AS number needs 4 octets.
    pub fn has_4byte(&self) -> bool {
        self.segments
            .iter()
            .any(|s| s.asns.iter().any(|&a| a > 0xffff))
    }

    /// Encodes the segments; `four_octet` picks the AS width, and in 2-octet
    /// form large ASes become AS_TRANS.
    pub fn encode(&self, four_octet: bool, out: &mut Vec<u8>) {
        for s in &self.segments {
            // A segment holds at most 255 ASes; longer ones are split.
            for chunk in s.asns.chunks(255) {
                out.push(s.kind as u8);
                out.push(chunk.len() as u8);
                for &a in chunk {
                    if four_octet {
                        out.extend_from_slice(&a.to_be_bytes());
                    } else {
                        let a = u16::try_from(a).unwrap_or(AS_TRANS as u16);
                        out.extend_from_slice(&a.to_be_bytes());
                    }
                }
            }
        }
    }

    /// Decodes segments; `None` when malformed (RFC 7606 7.2: unknown segment
    /// type, empty segment, overrun; RFC 7607: AS 0).
    pub fn decode(buf: &[u8], four_octet: bool) -> Option<AsPath> {
        let width = if four_octet { 4 } else { 2 };
        let mut segments = Vec::new();
        let mut i = 0;
        while i < buf.len() {
            let kind = SegmentType::from_u8(*buf.get(i)?)?;
            let n = usize::from(*buf.get(i + 1)?);
            if n == 0 {
                return None;
            }
            let body = buf.get(i + 2..i + 2 + n * width)?;
            let asns: Vec<u32> = body
                .chunks_exact(width)
                .map(|c| {
                    if four_octet {
                        u32::from_be_bytes([c[0], c[1], c[2], c[3]])
                    } else {
                        u32::from(u16::from_be_bytes([c[0], c[1]]))
                    }
                })
                .collect();
            if asns.contains(&0) {
                return None;
            }
            segments.push(AsSegment { kind, asns });
            i += 2 + n * width;
        }
        Some(AsPath { segments })
    }

    /// RFC 6793 section 4.2.3: rebuild the true path from a 2-octet AS_PATH and
    /// the AS4_PATH. Returns `self` unchanged when AS4_PATH is longer.
    pub fn merge_as4(&self, as4: &AsPath) -> AsPath {
        let (n2, n4) = (self.merge_count(), as4.merge_count());
        if n2 < n4 {
            return self.clone();
        }
        let mut keep = n2 - n4;
        let mut out: Vec<AsSegment> = Vec::new();
        for s in &self.segments {
            if keep == 0 {
                break;
            }
            match s.kind {
                SegmentType::Set | SegmentType::ConfedSet => {
                    out.push(s.clone());
                    keep -= 1;
                }
                _ => {
                    let take = keep.min(s.asns.len());
                    out.push(AsSegment {
                        kind: s.kind,
                        asns: s.asns[..take].to_vec(),
                    });
                    keep -= take;
                }
            }
        }
        for s in &as4.segments {
            // Join adjacent sequences so the result has the canonical shape.
            match out.last_mut() {
                Some(last)
                    if last.kind == SegmentType::Sequence
                        && s.kind == SegmentType::Sequence
                        && last.asns.len() + s.asns.len() <= 255 =>
                {
                    last.asns.extend_from_slice(&s.asns)
                }
                _ => out.push(s.clone()),
            }
        }
        AsPath { segments: out }
    }

    /// The path without confederation segments (what AS4_PATH carries).
    fn without_confed(&self) -> AsPath {
        AsPath {
            segments: self
                .segments
                .iter()
                .filter(|s| matches!(s.kind, SegmentType::Sequence | SegmentType::Set))
                .cloned()
                .collect(),
        }
    }
}

impl fmt::Display for AsPath {
    /// Space-separated AS numbers; sets as `{a,b}`, confederation sequences as
    /// `(a b)` and confederation sets as `[a,b]`. Policy regexes match on this.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.segments.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            let (open, sep, close) = match s.kind {
                SegmentType::Sequence => ("", " ", ""),
                SegmentType::Set => ("{", ",", "}"),
                SegmentType::ConfedSequence => ("(", " ", ")"),
                SegmentType::ConfedSet => ("[", ",", "]"),
            };
            f.write_str(open)?;
            for (j, a) in s.asns.iter().enumerate() {
                if j > 0 {
                    f.write_str(sep)?;
                }
                write!(f, "{a}")?;
            }
            f.write_str(close)?;
        }
        Ok(())
    }
}

/// AGGREGATOR (RFC 4271 5.1.7; 4-octet AS in memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aggregator {
    /// The aggregating AS.
    pub asn: u32,
    /// The aggregating speaker's address.
    pub address: Ipv4Addr,
}

/// A standard community (RFC 1997): AS:value in one 32-bit word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    /// NO_EXPORT.
    pub const NO_EXPORT: Community = Community(0xFFFF_FF01);
    /// NO_ADVERTISE.
    pub const NO_ADVERTISE: Community = Community(0xFFFF_FF02);
    /// NO_EXPORT_SUBCONFED.
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xFFFF_FF03);

    /// From `asn:value`.
    pub fn new(asn: u16, value: u16) -> Community {
        Community((u32::from(asn) << 16) | u32::from(value))
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0 >> 16, self.0 & 0xffff)
    }
}

/// An extended community (RFC 4360): 8 opaque octets (type, subtype, value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtendedCommunity(pub [u8; 8]);

/// A large community (RFC 8092).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    /// Global administrator (an AS number).
    pub global: u32,
    /// First local data part.
    pub local1: u32,
    /// Second local data part.
    pub local2: u32,
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.global, self.local1, self.local2)
    }
}

/// The next hop in MP_REACH_NLRI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MpNextHop {
    /// 4 octets (IPv4 unicast carried in MP_REACH).
    V4(Ipv4Addr),
    /// 16 or 32 octets: global, then an optional link-local (RFC 2545 section 3).
    V6 {
        /// Global address.
        global: Ipv6Addr,
        /// Link-local address, when the peer shares the link.
        link_local: Option<Ipv6Addr>,
    },
}

impl MpNextHop {
    /// The address routes resolve through (the global one for IPv6).
    pub fn addr(&self) -> IpAddr {
        match self {
            MpNextHop::V4(a) => IpAddr::V4(*a),
            MpNextHop::V6 { global, .. } => IpAddr::V6(*global),
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            MpNextHop::V4(a) => {
                out.push(4);
                out.extend_from_slice(&a.octets());
            }
            MpNextHop::V6 { global, link_local } => {
                out.push(if link_local.is_some() { 32 } else { 16 });
                out.extend_from_slice(&global.octets());
                if let Some(ll) = link_local {
                    out.extend_from_slice(&ll.octets());
                }
            }
        }
    }
}

/// MP_REACH_NLRI (RFC 4760 section 3).
///
/// ```text
///  +---------------------------------------------------------+
///  | Address Family Identifier (2 octets)                    |
///  +---------------------------------------------------------+
///  | Subsequent Address Family Identifier (1 octet)          |
///  +---------------------------------------------------------+
///  | Length of Next Hop Network Address (1 octet)            |
///  +---------------------------------------------------------+
///  | Network Address of Next Hop (variable)                  |
///  +---------------------------------------------------------+
///  | Reserved (1 octet)                                      |
///  +---------------------------------------------------------+
///  | Network Layer Reachability Information (variable)       |
///  +---------------------------------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MpReach {
    /// Family (IPv4 or IPv6 unicast).
    pub afi_safi: AfiSafi,
    /// Next hop.
    pub next_hop: MpNextHop,
    /// Reachable prefixes.
    pub nlri: Vec<IpNet>,
}

/// MP_UNREACH_NLRI (RFC 4760 section 4). Empty `withdrawn` is End-of-RIB
/// (RFC 4724) for the family.
///
/// ```text
///  +---------------------------------------------------------+
///  | Address Family Identifier (2 octets)                    |
///  +---------------------------------------------------------+
///  | Subsequent Address Family Identifier (1 octet)          |
///  +---------------------------------------------------------+
///  | Withdrawn Routes (variable)                             |
///  +---------------------------------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MpUnreach {
    /// Family.
    pub afi_safi: AfiSafi,
    /// Withdrawn prefixes.
    pub withdrawn: Vec<IpNet>,
}

/// An attribute this crate does not model, kept raw for pass-through.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawAttribute {
    /// Flags as received, Extended Length bit cleared (it is recomputed).
    pub flags: u8,
    /// Type code.
    pub type_code: u8,
    /// Value octets.
    pub value: Vec<u8>,
}

/// All path attributes of one UPDATE (or one RIB entry).
///
/// Empty community lists mean "absent": RFC 7606 makes zero-length
/// COMMUNITIES, EXTENDED COMMUNITIES, LARGE_COMMUNITY and CLUSTER_LIST malformed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct PathAttributes {
    /// ORIGIN (well-known mandatory).
    pub origin: Option<Origin>,
    /// AS_PATH (well-known mandatory), 4-octet ASes.
    pub as_path: Option<AsPath>,
    /// NEXT_HOP (mandatory with IPv4 NLRI in the UPDATE NLRI field).
    pub next_hop: Option<Ipv4Addr>,
    /// MULTI_EXIT_DISC.
    pub med: Option<u32>,
    /// LOCAL_PREF (iBGP only).
    pub local_pref: Option<u32>,
    /// ATOMIC_AGGREGATE present.
    pub atomic_aggregate: bool,
    /// AGGREGATOR.
    pub aggregator: Option<Aggregator>,
    /// COMMUNITIES.
    pub communities: Vec<Community>,
    /// ORIGINATOR_ID (route reflection).
    pub originator_id: Option<Ipv4Addr>,
    /// CLUSTER_LIST (route reflection).
    pub cluster_list: Vec<Ipv4Addr>,
    /// MP_REACH_NLRI.
    pub mp_reach: Option<MpReach>,
    /// MP_UNREACH_NLRI.
    pub mp_unreach: Option<MpUnreach>,
    /// EXTENDED COMMUNITIES.
    pub extended_communities: Vec<ExtendedCommunity>,
    /// LARGE_COMMUNITY.
    pub large_communities: Vec<LargeCommunity>,
    /// Unrecognized optional attributes, in the order received.
    pub unknown: Vec<RawAttribute>,
}

/// Options for [`PathAttributes::encode_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Encode AS numbers in 4 octets (otherwise AS_TRANS + AS4_PATH/AS4_AGGREGATOR).
    pub four_octet_as: bool,
    /// Leave out MP_REACH/MP_UNREACH (MRT writes its own abbreviated form).
    pub skip_mp: bool,
}

impl PathAttributes {
    /// The attribute set as it should be re-advertised (RFC 4271 5 and 9.1.4):
    /// unknown optional non-transitive attributes are dropped, unknown optional
    /// transitive ones are kept with the Partial bit set.
    pub fn propagate_unknown(&mut self) {
        self.unknown.retain(|a| a.flags & FLAG_TRANSITIVE != 0);
        for a in &mut self.unknown {
            a.flags |= FLAG_PARTIAL;
        }
    }

    /// The next hop for routes of `family` in this set: MP_REACH's next hop, or
    /// NEXT_HOP for IPv4.
    pub fn next_hop_for(&self, ipv6: bool) -> Option<IpAddr> {
        match &self.mp_reach {
            Some(mp) if (mp.afi_safi.afi == super::Afi::IPV6) == ipv6 => Some(mp.next_hop.addr()),
            _ if !ipv6 => self.next_hop.map(IpAddr::V4),
            _ => None,
        }
    }

    /// Encodes every attribute (the UPDATE's Path Attributes field).
    pub fn encode(&self, four_octet_as: bool, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.encode_with(
            EncodeOptions {
                four_octet_as,
                skip_mp: false,
            },
            out,
        )
    }

    /// Encodes with options. MP attributes go first (RFC 7606 section 5.1),
    /// then the rest in type-code order.
    pub fn encode_with(&self, opt: EncodeOptions, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        use type_code::*;
        const WK: u8 = FLAG_TRANSITIVE;
        const OT: u8 = FLAG_OPTIONAL | FLAG_TRANSITIVE;
        const ON: u8 = FLAG_OPTIONAL;
        let mut v = Vec::with_capacity(64);
        if !opt.skip_mp {
            if let Some(mp) = &self.mp_reach {
                v.clear();
                v.extend_from_slice(&mp.afi_safi.afi.0.to_be_bytes());
                v.push(mp.afi_safi.safi.0);
                mp.next_hop.encode(&mut v);
                v.push(0);
                for p in &mp.nlri {
                    encode_prefix(p, &mut v);
                }
                put(out, ON, MP_REACH_NLRI, &v)?;
            }
            if let Some(mp) = &self.mp_unreach {
                v.clear();
                v.extend_from_slice(&mp.afi_safi.afi.0.to_be_bytes());
                v.push(mp.afi_safi.safi.0);
                for p in &mp.withdrawn {
                    encode_prefix(p, &mut v);
                }
                put(out, ON, MP_UNREACH_NLRI, &v)?;
            }
        }
        if let Some(o) = self.origin {
            put(out, WK, ORIGIN, &[o as u8])?;
        }
        let mut as4_path = None;
        if let Some(p) = &self.as_path {
            v.clear();
            p.encode(opt.four_octet_as, &mut v);
            put(out, WK, AS_PATH, &v)?;
            if !opt.four_octet_as && p.has_4byte() {
                as4_path = Some(p.without_confed());
            }
        }
        if let Some(nh) = self.next_hop {
            put(out, WK, NEXT_HOP, &nh.octets())?;
        }
        if let Some(m) = self.med {
            put(out, ON, MED, &m.to_be_bytes())?;
        }
        if let Some(lp) = self.local_pref {
            put(out, WK, LOCAL_PREF, &lp.to_be_bytes())?;
        }
        if self.atomic_aggregate {
            put(out, WK, ATOMIC_AGGREGATE, &[])?;
        }
        let mut as4_agg = None;
        if let Some(a) = self.aggregator {
            v.clear();
            if opt.four_octet_as {
                v.extend_from_slice(&a.asn.to_be_bytes());
            } else {
                let short = u16::try_from(a.asn).unwrap_or(AS_TRANS as u16);
                v.extend_from_slice(&short.to_be_bytes());
                if a.asn > 0xffff {
                    as4_agg = Some(a);
                }
            }
            v.extend_from_slice(&a.address.octets());
            put(out, OT, AGGREGATOR, &v)?;
        }
        if !self.communities.is_empty() {
            v.clear();
            for c in &self.communities {
                v.extend_from_slice(&c.0.to_be_bytes());
            }
            put(out, OT, COMMUNITIES, &v)?;
        }
        if let Some(id) = self.originator_id {
            put(out, ON, ORIGINATOR_ID, &id.octets())?;
        }
        if !self.cluster_list.is_empty() {
            v.clear();
            for c in &self.cluster_list {
                v.extend_from_slice(&c.octets());
            }
            put(out, ON, CLUSTER_LIST, &v)?;
        }
        if !self.extended_communities.is_empty() {
            v.clear();
            for c in &self.extended_communities {
                v.extend_from_slice(&c.0);
            }
            put(out, OT, EXTENDED_COMMUNITIES, &v)?;
        }
        if let Some(p) = as4_path {
            v.clear();
            p.encode(true, &mut v);
            put(out, OT, AS4_PATH, &v)?;
        }
        if let Some(a) = as4_agg {
            v.clear();
            v.extend_from_slice(&a.asn.to_be_bytes());
            v.extend_from_slice(&a.address.octets());
            put(out, OT, AS4_AGGREGATOR, &v)?;
        }
        if !self.large_communities.is_empty() {
            v.clear();
            for c in &self.large_communities {
                v.extend_from_slice(&c.global.to_be_bytes());
                v.extend_from_slice(&c.local1.to_be_bytes());
                v.extend_from_slice(&c.local2.to_be_bytes());
            }
            put(out, OT, LARGE_COMMUNITIES, &v)?;
        }
        for a in &self.unknown {
            put(out, a.flags & !FLAG_EXTENDED_LENGTH, a.type_code, &a.value)?;
        }
        Ok(())
    }
}

/// Appends one attribute, using the extended length form only when needed.
fn put(out: &mut Vec<u8>, flags: u8, type_code: u8, value: &[u8]) -> Result<(), EncodeError> {
    if value.len() > 255 {
        let len = u16::try_from(value.len()).map_err(|_| EncodeError::FieldTooLong("attribute"))?;
        out.push(flags | FLAG_EXTENDED_LENGTH);
        out.push(type_code);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(flags);
        out.push(type_code);
        out.push(value.len() as u8);
    }
    out.extend_from_slice(value);
    Ok(())
}

impl PathAttributes {
    /// The per-route part stripped off, so the set can be interned and shared by
    /// many prefixes: MP_REACH keeps its next hop but no NLRI, MP_UNREACH goes.
    pub fn for_rib(&self) -> PathAttributes {
        let mut a = self.clone();
        if let Some(mp) = &mut a.mp_reach {
            mp.nlri.clear();
        }
        a.mp_unreach = None;
        a
    }
}
