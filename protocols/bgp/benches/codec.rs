//! UPDATE decode rate and Loc-RIB insert rate on a synthetic full table built
//! from ../shared/data/full-table-prefixes.txt.gz.
//!
//! Run: `cargo bench -p oxr-bgp --bench codec` (optionally `-- PATH` to the
//! prefix file). Each measurement is a fixed number of passes (bounded time).
//! Reference in the same run: bgpkit-parser decoding the same byte stream.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ipnet::IpNet;
use oxr_bgp::decision::PeerInfo;
use oxr_bgp::packet::update::decode_update;
use oxr_bgp::packet::{header, SessionContext, UpdateOutcome, HEADER_LEN};
use oxr_bgp::rib::{AttrInterner, LocRib, RibPath};

mod stream;
use stream::{build_stream, load};

fn decode_pass(stream: &[u8], ctx: &SessionContext) -> usize {
    let mut n = 0;
    let mut rest = stream;
    while let Ok(Some(len)) = header::frame(rest) {
        if let UpdateOutcome::Parsed(u) = decode_update(&rest[HEADER_LEN..len], ctx) {
            n += u.nlri.len() + u.attributes.mp_reach.as_ref().map_or(0, |m| m.nlri.len());
        }
        rest = &rest[len..];
    }
    n
}

fn bgpkit_pass(stream: &[u8]) -> usize {
    let mut n = 0;
    let mut rest = stream;
    while let Ok(Some(len)) = header::frame(rest) {
        let mut b = Bytes::copy_from_slice(&rest[..len]);
        if let Ok(bgpkit_parser::models::BgpMessage::Update(u)) =
            bgpkit_parser::parser::bgp::parse_bgp_message(
                &mut b,
                false,
                &bgpkit_parser::models::AsnLength::Bits32,
            )
        {
            n += u.announced_prefixes.len()
                + u.attributes
                    .get_reachable_nlri()
                    .map_or(0, |r| r.prefixes.len());
        }
        rest = &rest[len..];
    }
    n
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn best_of<F: FnMut() -> usize>(passes: usize, mut f: F) -> (usize, f64) {
    let mut best = f64::MAX;
    let mut n = 0;
    for _ in 0..passes {
        let t = Instant::now();
        n = f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    (n, best)
}

fn main() {
    let path = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| {
            format!(
                "{}/../../../shared/data/full-table-prefixes.txt.gz",
                env!("CARGO_MANIFEST_DIR")
            )
        });
    let mut prefixes = load(&path);
    prefixes.sort_by_key(|p| matches!(p, IpNet::V6(_)));
    let v6 = prefixes
        .iter()
        .filter(|p| matches!(p, IpNet::V6(_)))
        .count();
    println!(
        "prefixes: {} ({} IPv4, {} IPv6)",
        prefixes.len(),
        prefixes.len() - v6,
        v6
    );
    let ctx = SessionContext::new_4byte(true);

    let t = Instant::now();
    let stream = build_stream(&prefixes, &ctx);
    let msgs = {
        let (mut n, mut r) = (0, &stream[..]);
        while let Ok(Some(l)) = header::frame(r) {
            n += 1;
            r = &r[l..];
        }
        n
    };
    println!(
        "stream: {} UPDATEs, {:.1} MiB, built in {:.2} s",
        msgs,
        stream.len() as f64 / 1048576.0,
        t.elapsed().as_secs_f64()
    );

    let (n, s) = best_of(3, || decode_pass(&stream, &ctx));
    println!("oxr-bgp decode_update:      {:>6.2} M prefixes/s  ({:.0} MiB/s, {} prefixes in {:.3} s, best of 3)", n as f64 / s / 1e6, stream.len() as f64 / s / 1048576.0, n, s);
    let (n2, s2) = best_of(3, || bgpkit_pass(&stream));
    println!(
        "reference bgpkit-parser:    {:>6.2} M prefixes/s  ({} prefixes in {:.3} s, best of 3)",
        n2 as f64 / s2 / 1e6,
        n2,
        s2
    );
    println!(
        "ratio oxr/bgpkit:           {:>6.2}x",
        (n as f64 / s) / (n2 as f64 / s2)
    );

    // Loc-RIB: decode, intern, insert, from two peers (second pass runs the
    // decision process with two candidates per prefix).
    let rss0 = rss_kib();
    let mut interner = AttrInterner::new();
    let mut rib = LocRib::new(1);
    let peers: Vec<Arc<PeerInfo>> = (1..=2)
        .map(|i| {
            Arc::new(PeerInfo {
                id: i,
                address: std::net::IpAddr::V4(Ipv4Addr::new(192, 0, 2, i as u8)),
                router_id: Ipv4Addr::new(10, 0, 0, i as u8),
                asn: 65000 + i,
                ibgp: false,
            })
        })
        .collect();
    for peer in &peers {
        let t = Instant::now();
        let mut n = 0usize;
        let mut rest = &stream[..];
        while let Ok(Some(len)) = header::frame(rest) {
            if let UpdateOutcome::Parsed(u) = decode_update(&rest[HEADER_LEN..len], &ctx) {
                let attrs = interner.intern(u.attributes.for_rib());
                let mut add = |p: IpNet| {
                    rib.update(
                        p,
                        RibPath {
                            peer: peer.clone(),
                            attrs: attrs.clone(),
                            weight: 0,
                            igp_cost: Some(peer.id),
                            stale: false,
                        },
                    );
                    n += 1;
                };
                u.nlri.iter().for_each(|p| add(IpNet::V4(*p)));
                if let Some(mp) = &u.attributes.mp_reach {
                    mp.nlri.iter().for_each(|p| add(*p));
                }
            }
            rest = &rest[len..];
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "decode+intern+loc-rib insert, peer {}: {:>6.2} M prefixes/s  ({} prefixes in {:.3} s)",
            peer.id,
            n as f64 / s / 1e6,
            n,
            s
        );
    }
    let rss1 = rss_kib();
    println!(
        "loc-rib: {} prefixes, 2 paths each, {} distinct attribute sets; RSS grew {:.0} MiB ({:.0} B/prefix)",
        rib.len(),
        interner.len(),
        (rss1.saturating_sub(rss0)) as f64 / 1024.0,
        (rss1.saturating_sub(rss0)) as f64 * 1024.0 / rib.len() as f64
    );
}
