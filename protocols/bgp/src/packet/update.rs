//! UPDATE message (RFC 4271 section 4.3) and RFC 7606 revised error handling.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net};

use super::attribute::{
    expected_flags, type_code as tc, Aggregator, AsPath, Community, ExtendedCommunity,
    LargeCommunity, MpNextHop, MpReach, MpUnreach, Origin, PathAttributes, RawAttribute,
    FLAG_EXTENDED_LENGTH, FLAG_OPTIONAL, FLAG_TRANSITIVE,
};
use super::error::EncodeError;
use super::notification::{code, update_subcode as sub, Notification};
use super::{
    decode_ipv4_prefixes, decode_prefixes, encode_ipv4_prefix, Afi, AfiSafi, Reader, Safi,
    SessionContext, AS_TRANS,
};

/// UPDATE message.
///
/// ```text
///  +-----------------------------------------------------+
///  |   Withdrawn Routes Length (2 octets)                |
///  +-----------------------------------------------------+
///  |   Withdrawn Routes (variable)                       |
///  +-----------------------------------------------------+
///  |   Total Path Attribute Length (2 octets)            |
///  +-----------------------------------------------------+
///  |   Path Attributes (variable)                        |
///  +-----------------------------------------------------+
///  |   Network Layer Reachability Information (variable) |
///  +-----------------------------------------------------+
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Update {
    /// Withdrawn IPv4 unicast prefixes.
    pub withdrawn: Vec<Ipv4Net>,
    /// Path attributes (MP_REACH/MP_UNREACH carry the other families).
    pub attributes: PathAttributes,
    /// Reachable IPv4 unicast prefixes.
    pub nlri: Vec<Ipv4Net>,
}

impl Update {
    /// The End-of-RIB marker's family (RFC 4724 section 2), if this is one:
    /// an empty UPDATE for IPv4 unicast, or only an empty MP_UNREACH.
    pub fn end_of_rib(&self) -> Option<AfiSafi> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() {
            return None;
        }
        let a = &self.attributes;
        if *a == PathAttributes::default() {
            return Some(AfiSafi::IPV4_UNICAST);
        }
        let only_unreach = PathAttributes {
            mp_unreach: a.mp_unreach.clone(),
            ..Default::default()
        };
        match &a.mp_unreach {
            Some(mp) if mp.withdrawn.is_empty() && *a == only_unreach => Some(mp.afi_safi),
            _ => None,
        }
    }

    /// Every prefix this UPDATE withdraws (IPv4 field and MP_UNREACH).
    pub fn all_withdrawn(&self) -> Vec<IpNet> {
        let mut v: Vec<IpNet> = self.withdrawn.iter().copied().map(IpNet::V4).collect();
        if let Some(mp) = &self.attributes.mp_unreach {
            v.extend_from_slice(&mp.withdrawn);
        }
        v
    }

    /// Every prefix this UPDATE announces (IPv4 field and MP_REACH).
    pub fn all_announced(&self) -> Vec<IpNet> {
        let mut v: Vec<IpNet> = self.nlri.iter().copied().map(IpNet::V4).collect();
        if let Some(mp) = &self.attributes.mp_reach {
            v.extend_from_slice(&mp.nlri);
        }
        v
    }

    pub(crate) fn encode_body(
        &self,
        ctx: &SessionContext,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let start = out.len();
        out.extend_from_slice(&[0, 0]);
        for p in &self.withdrawn {
            encode_ipv4_prefix(p, out);
        }
        let wlen = out.len() - start - 2;
        let wlen = u16::try_from(wlen).map_err(|_| EncodeError::TooLong(wlen))?;
        out[start..start + 2].copy_from_slice(&wlen.to_be_bytes());
        let astart = out.len();
        out.extend_from_slice(&[0, 0]);
        self.attributes.encode(ctx.four_octet_as, out)?;
        let alen = out.len() - astart - 2;
        let alen = u16::try_from(alen).map_err(|_| EncodeError::TooLong(alen))?;
        out[astart..astart + 2].copy_from_slice(&alen.to_be_bytes());
        for p in &self.nlri {
            encode_ipv4_prefix(p, out);
        }
        Ok(())
    }
}

/// The kinds of UPDATE error, one counter key each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpdateErrorKind {
    /// Withdrawn/attribute lengths run past the message (RFC 7606 section 4).
    LengthInconsistent,
    /// Withdrawn Routes field does not parse (RFC 7606 5.3).
    InvalidWithdrawn,
    /// NLRI field does not parse (RFC 7606 5.3).
    InvalidNlri,
    /// Attribute header does not fit what remains (RFC 7606 section 4).
    AttributeHeaderTruncated,
    /// Attribute length runs past Total Path Attribute Length (RFC 7606 section 4).
    AttributeLengthOverrun,
    /// Optional/Transitive bits disagree with the type (RFC 7606 3 c).
    BadAttributeFlags,
    /// A non-MP attribute appears twice (RFC 7606 3 g).
    DuplicateAttribute,
    /// MP_REACH/MP_UNREACH appears twice (RFC 7606 3 g).
    DuplicateMpAttribute,
    /// An unrecognized well-known attribute (RFC 4271 6.3).
    UnrecognizedWellKnown,
    /// ORIGIN missing with reachable NLRI (RFC 7606 3 d).
    MissingOrigin,
    /// AS_PATH missing with reachable NLRI.
    MissingAsPath,
    /// NEXT_HOP missing with IPv4 NLRI.
    MissingNextHop,
    /// ORIGIN length or value (RFC 7606 7.1).
    MalformedOrigin,
    /// AS_PATH malformed (RFC 7606 7.2).
    MalformedAsPath,
    /// NEXT_HOP length (RFC 7606 7.3).
    MalformedNextHop,
    /// MED length (RFC 7606 7.4).
    MalformedMed,
    /// LOCAL_PREF length (RFC 7606 7.5).
    MalformedLocalPref,
    /// LOCAL_PREF from an external peer (RFC 7606 7.5).
    LocalPrefFromEbgp,
    /// ATOMIC_AGGREGATE length (RFC 7606 7.6).
    MalformedAtomicAggregate,
    /// AGGREGATOR length (RFC 7606 7.7).
    MalformedAggregator,
    /// COMMUNITIES length (RFC 7606 7.8).
    MalformedCommunities,
    /// ORIGINATOR_ID length (RFC 7606 7.9).
    MalformedOriginatorId,
    /// ORIGINATOR_ID from an external peer (RFC 7606 7.9).
    OriginatorIdFromEbgp,
    /// CLUSTER_LIST length (RFC 7606 7.10).
    MalformedClusterList,
    /// CLUSTER_LIST from an external peer (RFC 7606 7.10).
    ClusterListFromEbgp,
    /// MP_REACH_NLRI malformed (RFC 7606 7.11).
    MalformedMpReach,
    /// MP_UNREACH_NLRI malformed (RFC 7606 7.12).
    MalformedMpUnreach,
    /// MP attribute for a family not negotiated.
    UnnegotiatedFamily,
    /// EXTENDED COMMUNITIES length (RFC 7606 7.14).
    MalformedExtendedCommunities,
    /// LARGE_COMMUNITY length (RFC 8092 section 6).
    MalformedLargeCommunities,
    /// AS4_PATH malformed (RFC 6793 section 6).
    MalformedAs4Path,
    /// AS4_AGGREGATOR malformed (RFC 6793 section 6).
    MalformedAs4Aggregator,
    /// AS4_PATH/AS4_AGGREGATOR from a 4-octet speaker (RFC 6793 4.2.2).
    As4AttributeFromNewSpeaker,
    /// Catch-all used in strict decoding.
    MalformedAttributeList,
}

/// How severe an error is; RFC 7606 section 3: the most severe one applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Drop the attribute, use the rest.
    AttributeDiscard,
    /// Withdraw every prefix in the UPDATE.
    TreatAsWithdraw,
    /// Send NOTIFICATION and close.
    SessionReset,
}

impl UpdateErrorKind {
    /// Counter key.
    pub fn as_str(self) -> &'static str {
        use UpdateErrorKind::*;
        match self {
            LengthInconsistent => "length-inconsistent",
            InvalidWithdrawn => "invalid-withdrawn",
            InvalidNlri => "invalid-nlri",
            AttributeHeaderTruncated => "attribute-header-truncated",
            AttributeLengthOverrun => "attribute-length-overrun",
            BadAttributeFlags => "bad-attribute-flags",
            DuplicateAttribute => "duplicate-attribute",
            DuplicateMpAttribute => "duplicate-mp-attribute",
            UnrecognizedWellKnown => "unrecognized-well-known",
            MissingOrigin => "missing-origin",
            MissingAsPath => "missing-as-path",
            MissingNextHop => "missing-next-hop",
            MalformedOrigin => "malformed-origin",
            MalformedAsPath => "malformed-as-path",
            MalformedNextHop => "malformed-next-hop",
            MalformedMed => "malformed-med",
            MalformedLocalPref => "malformed-local-pref",
            LocalPrefFromEbgp => "local-pref-from-ebgp",
            MalformedAtomicAggregate => "malformed-atomic-aggregate",
            MalformedAggregator => "malformed-aggregator",
            MalformedCommunities => "malformed-communities",
            MalformedOriginatorId => "malformed-originator-id",
            OriginatorIdFromEbgp => "originator-id-from-ebgp",
            MalformedClusterList => "malformed-cluster-list",
            ClusterListFromEbgp => "cluster-list-from-ebgp",
            MalformedMpReach => "malformed-mp-reach",
            MalformedMpUnreach => "malformed-mp-unreach",
            UnnegotiatedFamily => "unnegotiated-family",
            MalformedExtendedCommunities => "malformed-extended-communities",
            MalformedLargeCommunities => "malformed-large-communities",
            MalformedAs4Path => "malformed-as4-path",
            MalformedAs4Aggregator => "malformed-as4-aggregator",
            As4AttributeFromNewSpeaker => "as4-attribute-from-new-speaker",
            MalformedAttributeList => "malformed-attribute-list",
        }
    }

    /// The RFC 7606 approach for this error.
    pub fn severity(self) -> Severity {
        use UpdateErrorKind::*;
        match self {
            LengthInconsistent
            | InvalidWithdrawn
            | InvalidNlri
            | DuplicateMpAttribute
            | UnrecognizedWellKnown
            | MalformedMpReach
            | MalformedMpUnreach
            | MalformedAttributeList => Severity::SessionReset,
            AttributeHeaderTruncated
            | AttributeLengthOverrun
            | BadAttributeFlags
            | MissingOrigin
            | MissingAsPath
            | MissingNextHop
            | MalformedOrigin
            | MalformedAsPath
            | MalformedNextHop
            | MalformedMed
            | MalformedLocalPref
            | MalformedCommunities
            | MalformedOriginatorId
            | MalformedClusterList
            | MalformedExtendedCommunities
            | MalformedLargeCommunities => Severity::TreatAsWithdraw,
            DuplicateAttribute
            | LocalPrefFromEbgp
            | MalformedAtomicAggregate
            | MalformedAggregator
            | OriginatorIdFromEbgp
            | ClusterListFromEbgp
            | UnnegotiatedFamily
            | MalformedAs4Path
            | MalformedAs4Aggregator
            | As4AttributeFromNewSpeaker => Severity::AttributeDiscard,
        }
    }

    /// The NOTIFICATION RFC 4271 section 6.3 names for this error (sent on
    /// session reset, and by strict decoding).
    pub fn notification(self) -> Notification {
        use UpdateErrorKind::*;
        let s = match self {
            InvalidWithdrawn | InvalidNlri => sub::INVALID_NETWORK_FIELD,
            UnrecognizedWellKnown => sub::UNRECOGNIZED_WELL_KNOWN,
            MissingOrigin | MissingAsPath | MissingNextHop => sub::MISSING_WELL_KNOWN,
            BadAttributeFlags => sub::ATTRIBUTE_FLAGS,
            MalformedOrigin => sub::INVALID_ORIGIN,
            MalformedAsPath => sub::MALFORMED_AS_PATH,
            MalformedNextHop => sub::INVALID_NEXT_HOP,
            MalformedAtomicAggregate | MalformedMed | MalformedLocalPref => sub::ATTRIBUTE_LENGTH,
            MalformedAggregator
            | MalformedCommunities
            | MalformedOriginatorId
            | MalformedClusterList
            | MalformedExtendedCommunities
            | MalformedLargeCommunities
            | MalformedAs4Path
            | MalformedAs4Aggregator => sub::OPTIONAL_ATTRIBUTE,
            _ => sub::MALFORMED_ATTRIBUTE_LIST,
        };
        Notification::new(code::UPDATE_MESSAGE, s, Vec::new())
    }
}

/// One attribute dropped under "attribute discard".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Discarded {
    /// Type code of the dropped attribute.
    pub attr: u8,
    /// Why.
    pub reason: UpdateErrorKind,
}

/// Result of decoding an UPDATE body under RFC 7606.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// No error.
    Parsed(Update),
    /// Some attributes were dropped; the update is otherwise used.
    AttributeDiscard {
        /// The update without the dropped attributes.
        update: Update,
        /// What was dropped and why.
        discarded: Vec<Discarded>,
    },
    /// Every prefix the UPDATE carried (announced or withdrawn) must be
    /// withdrawn.
    TreatAsWithdraw {
        /// Prefixes to withdraw.
        prefixes: Vec<IpNet>,
        /// The first error of this severity.
        reason: UpdateErrorKind,
    },
    /// Send the NOTIFICATION and reset the session.
    SessionReset {
        /// What to send.
        notification: Notification,
        /// Why.
        reason: UpdateErrorKind,
    },
}

impl UpdateOutcome {
    /// The counter keys of every error in this outcome.
    pub fn error_kinds(&self) -> Vec<UpdateErrorKind> {
        match self {
            UpdateOutcome::Parsed(_) => vec![],
            UpdateOutcome::AttributeDiscard { discarded, .. } => {
                discarded.iter().map(|d| d.reason).collect()
            }
            UpdateOutcome::TreatAsWithdraw { reason, .. } => vec![*reason],
            UpdateOutcome::SessionReset { reason, .. } => vec![*reason],
        }
    }
}

/// Errors gathered while walking the attributes; the worst one wins.
#[derive(Default)]
struct Faults {
    reset: Option<UpdateErrorKind>,
    withdraw: Option<UpdateErrorKind>,
    discarded: Vec<Discarded>,
}

impl Faults {
    fn add(&mut self, attr: u8, kind: UpdateErrorKind) {
        match kind.severity() {
            Severity::SessionReset => {
                self.reset.get_or_insert(kind);
            }
            Severity::TreatAsWithdraw => {
                self.withdraw.get_or_insert(kind);
            }
            Severity::AttributeDiscard => self.discarded.push(Discarded { attr, reason: kind }),
        }
    }
}

fn reset(kind: UpdateErrorKind) -> UpdateOutcome {
    UpdateOutcome::SessionReset {
        notification: kind.notification(),
        reason: kind,
    }
}

/// Decodes an UPDATE body (the bytes after the header) applying RFC 7606.
/// Never panics.
pub fn decode_update(body: &[u8], ctx: &SessionContext) -> UpdateOutcome {
    use UpdateErrorKind::*;
    let mut r = Reader::new(body);
    // RFC 7606 section 4: lengths that disagree with the message reset the session.
    let Some(wlen) = r.u16() else {
        return reset(LengthInconsistent);
    };
    let Some(wbytes) = r.take(usize::from(wlen)) else {
        return reset(LengthInconsistent);
    };
    let Some(alen) = r.u16() else {
        return reset(LengthInconsistent);
    };
    let Some(abytes) = r.take(usize::from(alen)) else {
        return reset(LengthInconsistent);
    };
    let nlri_bytes = r.rest();

    let mut withdrawn = Vec::new();
    if decode_ipv4_prefixes(wbytes, &mut withdrawn).is_err() {
        return reset(InvalidWithdrawn);
    }
    let mut nlri = Vec::new();
    if decode_ipv4_prefixes(nlri_bytes, &mut nlri).is_err() {
        return reset(InvalidNlri);
    }

    let mut attrs = PathAttributes::default();
    let mut faults = Faults::default();
    let mut seen = [false; 256];
    // 2-octet sessions: AS4 attributes, merged after the walk.
    let mut as4_path: Option<AsPath> = None;
    let mut as4_aggregator: Option<Aggregator> = None;
    // MP NLRI of a family we do not take, still needed to withdraw on error.
    let mut a = Reader::new(abytes);
    while !a.is_empty() {
        if a.remaining() < 3 {
            faults.add(0, AttributeHeaderTruncated);
            break;
        }
        let (Some(flags), Some(t)) = (a.u8(), a.u8()) else {
            break;
        };
        let len = if flags & FLAG_EXTENDED_LENGTH != 0 {
            match a.u16() {
                Some(l) => usize::from(l),
                None => {
                    faults.add(t, AttributeHeaderTruncated);
                    break;
                }
            }
        } else {
            a.u8().map(usize::from).unwrap_or(0)
        };
        let Some(val) = a.take(len) else {
            faults.add(t, AttributeLengthOverrun);
            break;
        };
        if seen[usize::from(t)] {
            if t == tc::MP_REACH_NLRI || t == tc::MP_UNREACH_NLRI {
                faults.add(t, DuplicateMpAttribute);
            } else {
                faults.add(t, DuplicateAttribute);
            }
            continue;
        }
        seen[usize::from(t)] = true;
        let flags_ok = match expected_flags(t) {
            Some(e) => flags & (FLAG_OPTIONAL | FLAG_TRANSITIVE) == e,
            None => true,
        };
        if !flags_ok {
            faults.add(t, BadAttributeFlags);
            // MP attributes are still parsed: their prefixes must be withdrawn.
            if t != tc::MP_REACH_NLRI && t != tc::MP_UNREACH_NLRI {
                continue;
            }
        }
        if let Err(kind) = decode_attribute(
            t,
            flags,
            val,
            ctx,
            &mut attrs,
            &mut as4_path,
            &mut as4_aggregator,
        ) {
            faults.add(t, kind);
        }
    }

    if !ctx.four_octet_as {
        merge_as4(&mut attrs, as4_path, as4_aggregator);
    }

    if let Some(kind) = faults.reset {
        return reset(kind);
    }
    // RFC 7606 3 d: mandatory attributes are needed only with reachable NLRI.
    let reach = !nlri.is_empty() || attrs.mp_reach.is_some();
    if reach && faults.withdraw.is_none() {
        if attrs.origin.is_none() {
            faults.withdraw = Some(MissingOrigin);
        } else if attrs.as_path.is_none() {
            faults.withdraw = Some(MissingAsPath);
        } else if !nlri.is_empty() && attrs.next_hop.is_none() {
            faults.withdraw = Some(MissingNextHop);
        }
    }
    if let Some(reason) = faults.withdraw {
        let mut prefixes: Vec<IpNet> = withdrawn.iter().copied().map(IpNet::V4).collect();
        prefixes.extend(nlri.iter().copied().map(IpNet::V4));
        if let Some(mp) = &attrs.mp_unreach {
            prefixes.extend_from_slice(&mp.withdrawn);
        }
        if let Some(mp) = &attrs.mp_reach {
            prefixes.extend_from_slice(&mp.nlri);
        }
        return UpdateOutcome::TreatAsWithdraw { prefixes, reason };
    }
    let update = Update {
        withdrawn,
        attributes: attrs,
        nlri,
    };
    if faults.discarded.is_empty() {
        UpdateOutcome::Parsed(update)
    } else {
        UpdateOutcome::AttributeDiscard {
            update,
            discarded: faults.discarded,
        }
    }
}

/// RFC 6793 section 4.2.3: reconcile AGGREGATOR/AS4_AGGREGATOR and
/// AS_PATH/AS4_PATH received from a 2-octet speaker.
fn merge_as4(attrs: &mut PathAttributes, as4_path: Option<AsPath>, as4_agg: Option<Aggregator>) {
    // Only when both AGGREGATOR and AS4_AGGREGATOR arrive does an AGGREGATOR other than
    // AS_TRANS mean a 2-octet speaker aggregated later, making the AS4 attributes stale.
    if let (Some(agg), Some(a4)) = (attrs.aggregator, as4_agg) {
        if agg.asn != AS_TRANS {
            return;
        }
        attrs.aggregator = Some(a4);
    }
    if let (Some(p), Some(p4)) = (&attrs.as_path, as4_path) {
        attrs.as_path = Some(p.merge_as4(&p4));
    }
}

fn u32_exact(val: &[u8], kind: UpdateErrorKind) -> Result<u32, UpdateErrorKind> {
    match val {
        [a, b, c, d] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        _ => Err(kind),
    }
}

/// Decodes one attribute value into `attrs`; `Err` names the error kind, whose
/// severity decides the outcome.
fn decode_attribute(
    t: u8,
    flags: u8,
    val: &[u8],
    ctx: &SessionContext,
    attrs: &mut PathAttributes,
    as4_path: &mut Option<AsPath>,
    as4_aggregator: &mut Option<Aggregator>,
) -> Result<(), UpdateErrorKind> {
    use UpdateErrorKind::*;
    match t {
        tc::ORIGIN => {
            let [v] = val else {
                return Err(MalformedOrigin);
            };
            attrs.origin = Some(Origin::from_u8(*v).ok_or(MalformedOrigin)?);
        }
        tc::AS_PATH => {
            attrs.as_path = Some(AsPath::decode(val, ctx.four_octet_as).ok_or(MalformedAsPath)?);
        }
        tc::NEXT_HOP => {
            attrs.next_hop = Some(Ipv4Addr::from(u32_exact(val, MalformedNextHop)?));
        }
        tc::MED => attrs.med = Some(u32_exact(val, MalformedMed)?),
        tc::LOCAL_PREF => {
            let lp = u32_exact(val, MalformedLocalPref)?;
            if ctx.ebgp {
                return Err(LocalPrefFromEbgp);
            }
            attrs.local_pref = Some(lp);
        }
        tc::ATOMIC_AGGREGATE => {
            if !val.is_empty() {
                return Err(MalformedAtomicAggregate);
            }
            attrs.atomic_aggregate = true;
        }
        tc::AGGREGATOR => {
            let mut r = Reader::new(val);
            let (asn, want) = if ctx.four_octet_as {
                (r.u32(), 8)
            } else {
                (r.u16().map(u32::from), 6)
            };
            let (Some(asn), Some(address)) = (asn, r.ipv4()) else {
                return Err(MalformedAggregator);
            };
            if val.len() != want {
                return Err(MalformedAggregator);
            }
            attrs.aggregator = Some(Aggregator { asn, address });
        }
        tc::COMMUNITIES => {
            if val.is_empty() || !val.len().is_multiple_of(4) {
                return Err(MalformedCommunities);
            }
            attrs.communities = val
                .chunks_exact(4)
                .map(|c| Community(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect();
        }
        tc::ORIGINATOR_ID => {
            let id = u32_exact(val, MalformedOriginatorId)?;
            if ctx.ebgp {
                return Err(OriginatorIdFromEbgp);
            }
            attrs.originator_id = Some(Ipv4Addr::from(id));
        }
        tc::CLUSTER_LIST => {
            if val.is_empty() || !val.len().is_multiple_of(4) {
                return Err(MalformedClusterList);
            }
            if ctx.ebgp {
                return Err(ClusterListFromEbgp);
            }
            attrs.cluster_list = val
                .chunks_exact(4)
                .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3]))
                .collect();
        }
        tc::MP_REACH_NLRI => attrs.mp_reach = decode_mp_reach(val, ctx)?,
        tc::MP_UNREACH_NLRI => attrs.mp_unreach = decode_mp_unreach(val, ctx)?,
        tc::EXTENDED_COMMUNITIES => {
            if val.is_empty() || !val.len().is_multiple_of(8) {
                return Err(MalformedExtendedCommunities);
            }
            attrs.extended_communities = val
                .chunks_exact(8)
                .map(|c| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(c);
                    ExtendedCommunity(a)
                })
                .collect();
        }
        tc::LARGE_COMMUNITIES => {
            if val.is_empty() || !val.len().is_multiple_of(12) {
                return Err(MalformedLargeCommunities);
            }
            attrs.large_communities = val
                .chunks_exact(12)
                .map(|c| LargeCommunity {
                    global: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                    local1: u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
                    local2: u32::from_be_bytes([c[8], c[9], c[10], c[11]]),
                })
                .collect();
        }
        tc::AS4_PATH => {
            if ctx.four_octet_as {
                return Err(As4AttributeFromNewSpeaker);
            }
            *as4_path = Some(AsPath::decode(val, true).ok_or(MalformedAs4Path)?);
        }
        tc::AS4_AGGREGATOR => {
            if ctx.four_octet_as {
                return Err(As4AttributeFromNewSpeaker);
            }
            let mut r = Reader::new(val);
            match (r.u32(), r.ipv4()) {
                (Some(asn), Some(address)) if val.len() == 8 => {
                    *as4_aggregator = Some(Aggregator { asn, address })
                }
                _ => return Err(MalformedAs4Aggregator),
            }
        }
        _ => {
            if flags & FLAG_OPTIONAL == 0 {
                return Err(UnrecognizedWellKnown);
            }
            attrs.unknown.push(RawAttribute {
                flags: flags & !FLAG_EXTENDED_LENGTH,
                type_code: t,
                value: val.to_vec(),
            });
        }
    }
    Ok(())
}

/// Reads AFI/SAFI and says whether the family is one we take.
fn mp_family(r: &mut Reader<'_>, ctx: &SessionContext) -> Result<(AfiSafi, bool), ()> {
    let afi = r.u16().ok_or(())?;
    let safi = r.u8().ok_or(())?;
    let f = AfiSafi {
        afi: Afi(afi),
        safi: Safi(safi),
    };
    Ok((f, f.is_supported() && ctx.has_family(f)))
}

fn decode_mp_reach(val: &[u8], ctx: &SessionContext) -> Result<Option<MpReach>, UpdateErrorKind> {
    use UpdateErrorKind::*;
    let mut r = Reader::new(val);
    let (afi_safi, ok) = mp_family(&mut r, ctx).map_err(|_| MalformedMpReach)?;
    if !ok {
        return Err(UnnegotiatedFamily);
    }
    let nh_len = r.u8().ok_or(MalformedMpReach)?;
    let nh = r.take(usize::from(nh_len)).ok_or(MalformedMpReach)?;
    let mut n = Reader::new(nh);
    let next_hop = match (afi_safi.afi, nh_len) {
        (Afi::IPV4, 4) => MpNextHop::V4(n.ipv4().ok_or(MalformedMpReach)?),
        (Afi::IPV6, 16) => MpNextHop::V6 {
            global: ipv6(&mut n)?,
            link_local: None,
        },
        (Afi::IPV6, 32) => MpNextHop::V6 {
            global: ipv6(&mut n)?,
            link_local: Some(ipv6(&mut n)?),
        },
        _ => return Err(MalformedMpReach),
    };
    let _reserved = r.u8().ok_or(MalformedMpReach)?;
    let mut nlri = Vec::new();
    decode_prefixes(afi_safi, r.rest(), &mut nlri).map_err(|_| MalformedMpReach)?;
    Ok(Some(MpReach {
        afi_safi,
        next_hop,
        nlri,
    }))
}

fn ipv6(r: &mut Reader<'_>) -> Result<Ipv6Addr, UpdateErrorKind> {
    r.ipv6().ok_or(UpdateErrorKind::MalformedMpReach)
}

fn decode_mp_unreach(
    val: &[u8],
    ctx: &SessionContext,
) -> Result<Option<MpUnreach>, UpdateErrorKind> {
    use UpdateErrorKind::*;
    let mut r = Reader::new(val);
    let (afi_safi, ok) = mp_family(&mut r, ctx).map_err(|_| MalformedMpUnreach)?;
    if !ok {
        return Err(UnnegotiatedFamily);
    }
    let mut withdrawn = Vec::new();
    decode_prefixes(afi_safi, r.rest(), &mut withdrawn).map_err(|_| MalformedMpUnreach)?;
    Ok(Some(MpUnreach {
        afi_safi,
        withdrawn,
    }))
}
