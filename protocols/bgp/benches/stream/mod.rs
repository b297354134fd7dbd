//! The synthetic UPDATE stream both benches feed: the real full table packed 8 prefixes per
//! attribute set, like real tables.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;

use ipnet::IpNet;
use oxr_bgp::packet::attribute::{AsPath, Community, MpNextHop, MpReach, Origin, PathAttributes};
use oxr_bgp::packet::{AfiSafi, Message, SessionContext, Update};

pub fn load(path: &str) -> Vec<IpNet> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let r = BufReader::new(flate2::read::GzDecoder::new(f));
    r.lines()
        .map_while(Result::ok)
        .filter_map(|l| l.trim().parse::<IpNet>().ok())
        .map(|p| p.trunc())
        .collect()
}

/// About 1 attribute set per 8 prefixes, like real tables (paths of 2-6 ASes).
pub fn attrs_for(group: usize, v6: bool) -> PathAttributes {
    let h = (group as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let len = 2 + (h % 5) as usize;
    let path: Vec<u32> = (0..len)
        .map(|i| 1 + ((h >> (i * 7)) % 60_000) as u32)
        .collect();
    let mut a = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::from_sequence(path)),
        communities: vec![Community::new(65000, (h % 100) as u16)],
        med: Some((h % 3) as u32),
        ..Default::default()
    };
    if v6 {
        a.mp_reach = Some(MpReach {
            afi_safi: AfiSafi::IPV6_UNICAST,
            next_hop: MpNextHop::V6 {
                global: "2001:db8::1".parse().unwrap(),
                link_local: None,
            },
            nlri: vec![],
        });
    } else {
        a.next_hop = Some(Ipv4Addr::new(192, 0, 2, 1));
    }
    a
}

/// Packs prefixes into UPDATEs of up to 4096 octets, 8 prefixes per attribute set.
pub fn build_stream(prefixes: &[IpNet], ctx: &SessionContext) -> Vec<u8> {
    let mut out = Vec::new();
    for (g, chunk) in prefixes.chunks(8).enumerate() {
        let v6 = matches!(chunk[0], IpNet::V6(_));
        let mut a = attrs_for(g, v6);
        let mut u = Update::default();
        for p in chunk {
            match (p, &mut a.mp_reach) {
                (IpNet::V4(p), _) => u.nlri.push(*p),
                (IpNet::V6(_), Some(mp)) => mp.nlri.push(*p),
                _ => {}
            }
        }
        // Mixed families in one chunk (at the v4/v6 boundary) are skipped.
        if v6 && !u.nlri.is_empty() {
            continue;
        }
        u.attributes = a;
        out.extend(Message::Update(u).encode(ctx).expect("fits in 4096"));
    }
    out
}
