//! MRT TABLE_DUMP_V2 writer (RFC 6396 section 4.3): a PEER_INDEX_TABLE then one
//! RIB_IPV4_UNICAST / RIB_IPV6_UNICAST record per prefix, holding every
//! candidate path of the Loc-RIB.
//!
//! MRT common header (RFC 6396 section 2):
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                           Timestamp                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |             Type              |            Subtype            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                             Length                            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                      Message... (variable)
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use ipnet::IpNet;

use crate::decision::{PeerId, PeerInfo};
use crate::packet::attribute::{type_code, EncodeOptions, FLAG_OPTIONAL};
use crate::packet::encode_prefix;
use crate::rib::{LocRib, RibEntry};

/// MRT type TABLE_DUMP_V2.
pub const TABLE_DUMP_V2: u16 = 13;
/// Subtype PEER_INDEX_TABLE.
pub const PEER_INDEX_TABLE: u16 = 1;
/// Subtype RIB_IPV4_UNICAST.
pub const RIB_IPV4_UNICAST: u16 = 2;
/// Subtype RIB_IPV6_UNICAST.
pub const RIB_IPV6_UNICAST: u16 = 4;

fn record(out: &mut impl Write, ts: u32, subtype: u16, body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len()).map_err(|_| io::Error::other("MRT record too long"))?;
    out.write_all(&ts.to_be_bytes())?;
    out.write_all(&TABLE_DUMP_V2.to_be_bytes())?;
    out.write_all(&subtype.to_be_bytes())?;
    out.write_all(&len.to_be_bytes())?;
    out.write_all(body)
}

/// PEER_INDEX_TABLE body (RFC 6396 4.3.1).
///
/// ```text
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  |                      Collector BGP ID                         |
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  |       View Name Length        |     View Name (variable)      |
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  |          Peer Count           |    Peer Entries (variable)
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  each entry: Peer Type (1: bit0 IPv6, bit1 AS4), Peer BGP ID (4),
///              Peer IP Address (4 or 16), Peer AS (2 or 4)
/// ```
fn peer_index_table(
    collector: Ipv4Addr,
    view: &str,
    peers: &[Arc<PeerInfo>],
) -> io::Result<Vec<u8>> {
    let mut b = Vec::new();
    b.extend_from_slice(&collector.octets());
    let vlen = u16::try_from(view.len()).map_err(|_| io::Error::other("view name too long"))?;
    b.extend_from_slice(&vlen.to_be_bytes());
    b.extend_from_slice(view.as_bytes());
    let n = u16::try_from(peers.len()).map_err(|_| io::Error::other("too many peers"))?;
    b.extend_from_slice(&n.to_be_bytes());
    for p in peers {
        let v6 = p.address.is_ipv6();
        b.push(0x02 | u8::from(v6));
        b.extend_from_slice(&p.router_id.octets());
        match p.address {
            IpAddr::V4(a) => b.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => b.extend_from_slice(&a.octets()),
        }
        b.extend_from_slice(&p.asn.to_be_bytes());
    }
    Ok(b)
}

/// RIB_IPV4_UNICAST / RIB_IPV6_UNICAST body (RFC 6396 4.3.2).
///
/// ```text
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  |                         Sequence Number                       |
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  | Prefix Length |
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  |                        Prefix (variable)                      |
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  |         Entry Count           |  RIB Entries (variable)
///  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
///  each entry: Peer Index (2), Originated Time (4), Attribute Length (2),
///              BGP Attributes (4-octet ASes; MP_REACH abbreviated to the
///              next hop, RFC 6396 4.3.4)
/// ```
fn rib_record(
    seq: u32,
    prefix: &IpNet,
    entry: RibEntry<'_>,
    index: &BTreeMap<PeerId, u16>,
    ts: u32,
) -> io::Result<Vec<u8>> {
    let mut b = Vec::with_capacity(64);
    b.extend_from_slice(&seq.to_be_bytes());
    encode_prefix(prefix, &mut b);
    let n = u16::try_from(entry.paths().len()).map_err(|_| io::Error::other("too many paths"))?;
    b.extend_from_slice(&n.to_be_bytes());
    let opts = EncodeOptions {
        four_octet_as: true,
        skip_mp: true,
    };
    let mut attrs = Vec::with_capacity(64);
    for p in entry.paths() {
        let idx = index.get(&p.peer.id).copied().unwrap_or(0);
        attrs.clear();
        p.attrs
            .encode_with(opts, &mut attrs)
            .map_err(io::Error::other)?;
        if let (IpNet::V6(_), Some(mp)) = (prefix, &p.attrs.mp_reach) {
            let mut v = Vec::with_capacity(33);
            mp.next_hop.encode(&mut v);
            attrs.push(FLAG_OPTIONAL);
            attrs.push(type_code::MP_REACH_NLRI);
            attrs.push(v.len() as u8);
            attrs.extend_from_slice(&v);
        }
        let alen =
            u16::try_from(attrs.len()).map_err(|_| io::Error::other("attributes too long"))?;
        b.extend_from_slice(&idx.to_be_bytes());
        b.extend_from_slice(&ts.to_be_bytes());
        b.extend_from_slice(&alen.to_be_bytes());
        b.extend_from_slice(&attrs);
    }
    Ok(b)
}

/// Writes a TABLE_DUMP_V2 snapshot of `rib`: the peer index, then IPv4 then
/// IPv6 prefixes in ascending order. `timestamp` is used for the records and
/// as every path's originated time.
pub fn write_table_dump(
    rib: &LocRib,
    collector_id: Ipv4Addr,
    view_name: &str,
    timestamp: u32,
    out: &mut impl Write,
) -> io::Result<()> {
    let mut peers: BTreeMap<PeerId, Arc<PeerInfo>> = BTreeMap::new();
    for e in rib
        .iter_v4()
        .map(|(_, e)| e)
        .chain(rib.iter_v6().map(|(_, e)| e))
    {
        for p in e.paths() {
            peers.entry(p.peer.id).or_insert_with(|| p.peer.clone());
        }
    }
    let list: Vec<Arc<PeerInfo>> = peers.values().cloned().collect();
    let mut index = BTreeMap::new();
    for (i, id) in peers.keys().enumerate() {
        index.insert(
            *id,
            u16::try_from(i).map_err(|_| io::Error::other("too many peers"))?,
        );
    }
    record(
        out,
        timestamp,
        PEER_INDEX_TABLE,
        &peer_index_table(collector_id, view_name, &list)?,
    )?;
    let mut v4: Vec<_> = rib.iter_v4().collect();
    v4.sort_by_key(|(p, _)| **p);
    let mut v6: Vec<_> = rib.iter_v6().collect();
    v6.sort_by_key(|(p, _)| **p);
    let mut seq = 0u32;
    for (p, e) in v4 {
        let body = rib_record(seq, &IpNet::V4(*p), e, &index, timestamp)?;
        record(out, timestamp, RIB_IPV4_UNICAST, &body)?;
        seq = seq.wrapping_add(1);
    }
    for (p, e) in v6 {
        let body = rib_record(seq, &IpNet::V6(*p), e, &index, timestamp)?;
        record(out, timestamp, RIB_IPV6_UNICAST, &body)?;
        seq = seq.wrapping_add(1);
    }
    Ok(())
}
