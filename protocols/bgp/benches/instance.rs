//! Full table through the whole speaker: a scripted eBGP peer sends the
//! table (IPv4 + IPv6 from ../shared/data/full-table-prefixes.txt.gz, ~8
//! prefixes per attribute set) to an `Instance` in 1 MiB reads, as the socket
//! layer delivers them; timed from Established until every prefix is in the
//! Loc-RIB and its RIB batch is out. A second run adds an eBGP neighbor that
//! receives the whole table (export policy, Adj-RIB-Out, UPDATE packing).
//!
//! Run: `cargo bench -p oxr-bgp --bench instance` (optionally `-- PATH`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use oxr_bgp::config::BgpConfig;
use oxr_bgp::instance::{Input, Instance, Output, ACCEPTED_CONN_BASE};
use oxr_bgp::packet::{AfiSafi, Capability, Message, Open, SessionContext};
use oxr_bgp::session::State;

mod stream;
use stream::{build_stream, load};

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

fn cfg(second: bool) -> BgpConfig {
    let mut s = String::from(
        r#"
local-as = 4200000001
router-id = "10.0.0.1"
[neighbor."10.0.0.9"]
remote-as = 64999
afi = ["ipv4-unicast", "ipv6-unicast"]
import-policy = ["ALL"]
export-policy = ["ALL"]
[policy.ALL.term.1.then]
action = "accept"
"#,
    );
    if second {
        s.push_str(
            r#"
[neighbor."10.0.0.8"]
remote-as = 64998
afi = ["ipv4-unicast", "ipv6-unicast"]
import-policy = ["ALL"]
export-policy = ["ALL"]
"#,
        );
    }
    toml::from_str(&s).unwrap()
}

fn bring_up(inst: &mut Instance, now: u64, conn: u64, peer: &str, asn: u32) -> usize {
    let ctx = SessionContext::new_4byte(true);
    let peer: IpAddr = peer.parse().unwrap();
    inst.handle(
        now,
        Input::Accepted {
            conn,
            peer: SocketAddr::new(peer, 40000),
            local: SocketAddr::new("10.0.0.1".parse().unwrap(), 179),
        },
    );
    let open = Open::new(
        asn,
        90,
        match peer {
            IpAddr::V4(a) => a,
            _ => Ipv4Addr::new(1, 1, 1, 1),
        },
        vec![
            Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
            Capability::Multiprotocol(AfiSafi::IPV6_UNICAST),
        ],
    );
    let mut b = Message::Open(open).encode(&ctx).unwrap();
    b.extend(Message::Keepalive.encode(&ctx).unwrap());
    let outs = inst.handle(now, Input::Received { conn, bytes: b });
    assert_eq!(inst.state(peer), Some(State::Established));
    outs.len()
}

fn run(stream: &[u8], total: usize, second: bool) {
    let rss0 = rss_kib();
    let mut inst = Instance::new(cfg(second));
    inst.start(0);
    let feeder = ACCEPTED_CONN_BASE + 1;
    bring_up(&mut inst, 1, feeder, "10.0.0.9", 64999);
    if second {
        bring_up(&mut inst, 1, ACCEPTED_CONN_BASE + 2, "10.0.0.8", 64998);
    }
    let t = Instant::now();
    let (mut rib_routes, mut sent) = (0usize, 0usize);
    for chunk in stream.chunks(1 << 20) {
        for o in inst.handle(
            2,
            Input::Received {
                conn: feeder,
                bytes: chunk.to_vec(),
            },
        ) {
            match o {
                Output::Rib(c) => rib_routes += c.len(),
                Output::Send { bytes, .. } => sent += bytes.len(),
                _ => {}
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(inst.loc_rib_len(), total, "Loc-RIB complete");
    let (ins, outs) = inst.interned();
    println!(
        "{}: {} prefixes in {:.3} s = {:.2} M prefixes/s; RIB changes {}, bytes sent {} ; attr sets in/out {}/{}; RSS +{} MiB",
        if second { "feeder + 1 receiving eBGP peer" } else { "feeder only" },
        total,
        secs,
        total as f64 / secs / 1e6,
        rib_routes,
        sent,
        ins,
        outs,
        (rss_kib().saturating_sub(rss0)) / 1024
    );
}

fn main() {
    let path = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "../../../shared/data/full-table-prefixes.txt.gz".to_string());
    let mut prefixes = load(&path);
    prefixes.sort();
    prefixes.dedup();
    // IPv4 first, then IPv6, as a feeder would send them.
    prefixes.sort_by_key(|p| p.addr().is_ipv6());
    let ctx = SessionContext::new_4byte(true);
    let stream = build_stream(&prefixes, &ctx);
    let mut counted = 0;
    let mut rest = &stream[..];
    while let Ok(Some(n)) = oxr_bgp::packet::header::frame(rest) {
        if let Ok(Message::Update(u)) = Message::decode(&rest[..n], &ctx) {
            counted += u.all_announced().len();
        }
        rest = &rest[n..];
    }
    println!(
        "stream: {} bytes of UPDATEs, {} prefixes",
        stream.len(),
        counted
    );
    run(&stream, counted, false);
    run(&stream, counted, true);
}
