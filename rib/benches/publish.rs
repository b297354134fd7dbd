//! Full-table throughput: Publish (gRPC over a Unix socket) -> selection -> resolution ->
//! ProgramFib to a fake FEA that only counts (the `none` backend's role).
//!
//! Loads `/work/shared/data/full-table-prefixes.txt.gz` (or `$OXR_FULL_TABLE`), publishes it
//! in batches of 2000 routes with next hops via a connected network, and prints routes/s
//! until the fake FEA holds every route, then the same for withdrawing them all, next to a
//! reference measured in the same run (inserting the prefixes into a plain `BTreeMap`), and
//! the process's peak RSS (VmHWM).
//!
//! `cargo bench -p oxr-rib --bench publish`

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use oxr_proto::fea::{Interface, InterfaceAddress};
use oxr_proto::rib::rib_client::RibClient;
use oxr_proto::rib::{
    publish_request, EndOfRib, Hello, PublishRequest, Route, RouteBatch, SummaryRequest,
};
use oxr_proto::transport::{self, Address};
use oxr_proto::types::{IpAddress, Nexthop, Prefix};
use oxr_rib::api::RibService;
use oxr_rib::testing::FakeFea;
use oxr_rib::{connected, fib_feed, RibOptions};
use oxr_testlab::full_table;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

const BATCH: usize = 2000;

fn vm(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn ip(s: &str) -> IpAddress {
    IpAddress::from(s.parse::<IpAddr>().unwrap())
}

fn connected_iface() -> Interface {
    let a = |s: &str| InterfaceAddress {
        prefix: Some(Prefix::from(s.parse::<IpNet>().unwrap())),
        peer: None,
    };
    Interface {
        ifindex: 2,
        name: "eth0".into(),
        admin_up: true,
        oper_up: true,
        addresses: vec![a("192.0.2.1/24"), a("2001:db8:ffff::1/64")],
        ..Default::default()
    }
}

fn batches(prefixes: &[IpNet], withdraw: bool) -> Vec<PublishRequest> {
    let (gw4, gw6) = (ip("192.0.2.254"), ip("2001:db8:ffff::fe"));
    prefixes
        .chunks(BATCH)
        .map(|chunk| {
            let mut b = RouteBatch::default();
            for n in chunk {
                if withdraw {
                    b.withdraw.push(Prefix::from(*n));
                } else {
                    b.add.push(Route {
                        prefix: Some(Prefix::from(*n)),
                        nexthops: vec![Nexthop {
                            gateway: Some(if n.addr().is_ipv4() {
                                gw4.clone()
                            } else {
                                gw6.clone()
                            }),
                            interface: String::new(),
                            weight: 0,
                        }],
                        metric: 10,
                        ..Default::default()
                    });
                }
            }
            PublishRequest {
                msg: Some(publish_request::Msg::Batch(b)),
            }
        })
        .collect()
}

/// The RIB state alone, no gRPC: parsed batches in, FIB batches out (drained and acked).
fn core_only(prefixes: &[IpNet], n: u64) -> f64 {
    use oxr_rib::publish::parse_batch;
    let parsed: Vec<_> = batches(prefixes, false)
        .into_iter()
        .filter_map(|r| match r.msg {
            Some(publish_request::Msg::Batch(b)) => Some(parse_batch(b)),
            _ => None,
        })
        .collect();
    let mut s = oxr_rib::RibState::new(RibOptions::default());
    s.startup_hold_expired();
    s.interfaces(oxr_proto::fea::InterfaceUpdate {
        changed: vec![connected_iface()],
        removed_ifindex: vec![],
        full_dump: true,
    });
    let (atx, _arx) = tokio::sync::watch::channel(Default::default());
    let client = s
        .hello(
            1,
            &Hello {
                protocol: "bench".into(),
                ..Default::default()
            },
            atx,
        )
        .unwrap();
    let (ftx, mut frx) = mpsc::channel(64);
    s.fea_up(1, ftx);
    let mut sent = 0u64;
    let t = Instant::now();
    for b in parsed {
        s.batch(client, 1, b);
        s.pump_fib();
        while let Ok(out) = frx.try_recv() {
            sent += out.add.len() as u64;
            s.fib.ack(1, 0);
        }
    }
    while sent < n {
        s.pump_fib();
        while let Ok(out) = frx.try_recv() {
            sent += out.add.len() as u64;
            s.fib.ack(1, 0);
        }
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let t = Instant::now();
    let prefixes = full_table::load(None);
    let v4 = prefixes.iter().filter(|p| p.addr().is_ipv4()).count();
    println!(
        "loaded {} prefixes ({} IPv4, {} IPv6) in {:.2}s",
        prefixes.len(),
        v4,
        prefixes.len() - v4,
        t.elapsed().as_secs_f64()
    );
    // Duplicates in the file count once in the RIB and the FIB.
    let unique: std::collections::BTreeSet<IpNet> = prefixes.iter().copied().collect();
    let n = unique.len() as u64;

    // Reference: the same prefixes into a plain ordered map, measured here.
    let t = Instant::now();
    let mut m = BTreeMap::new();
    for p in &prefixes {
        m.insert(*p, ());
    }
    let ref_rate = prefixes.len() as f64 / t.elapsed().as_secs_f64();
    drop(m);

    let core_rate = core_only(&prefixes, n);
    // A BGP peer sends its table in its own order (BIRD: hash order), not sorted: every
    // lookup then misses the cache.
    let core_rate_shuffled = core_only(&full_table::shuffled(&prefixes), n);
    let adds = batches(&prefixes, false);
    let withdraws = batches(&prefixes, true);

    let dir = tempfile::tempdir().unwrap();
    let fea_sock = dir.path().join("fea.sock");
    let rib_sock = dir.path().join("rib.sock");
    let fea = FakeFea::new(vec![connected_iface()], false);
    tokio::spawn(fea.clone().serve(fea_sock.clone()));
    let handle = oxr_rib::spawn(RibOptions {
        expected_protocols: Some(vec!["bench".into()]),
        ..Default::default()
    });
    let incoming = transport::bind_unix(&rib_sock).unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(RibService::server(handle.clone()))
            .serve_with_incoming(incoming),
    );
    let fea_addr = Address::Unix(fea_sock);
    tokio::spawn(fib_feed::run(fea_addr.clone(), handle.clone()));
    tokio::spawn(connected::watch_interfaces(fea_addr, handle.clone()));
    let mut rib = RibClient::new(transport::connect(&Address::Unix(rib_sock)).await.unwrap())
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    // Wait for the FEA session and the connected routes.
    loop {
        let s = rib.summary(SummaryRequest {}).await.unwrap().into_inner();
        if s.fea_connected && s.prefixes_ipv4 + s.prefixes_ipv6 >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let hwm_before = vm("VmHWM:");

    let (tx, rx) = mpsc::channel(16);
    let t = Instant::now();
    let mut acks = rib
        .publish(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let sender = tokio::spawn(async move {
        tx.send(PublishRequest {
            msg: Some(publish_request::Msg::Hello(Hello {
                protocol: "bench".into(),
                ..Default::default()
            })),
        })
        .await
        .unwrap();
        for b in adds {
            tx.send(b).await.unwrap();
        }
        tx.send(PublishRequest {
            msg: Some(publish_request::Msg::EndOfRib(EndOfRib {})),
        })
        .await
        .unwrap();
        tx
    });
    tokio::spawn(async move { while let Ok(Some(_)) = acks.message().await {} });
    if std::env::var("OXR_BENCH_DEBUG").is_ok() {
        let (f, h) = (fea.clone(), handle.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let (a, b) = {
                    let r = f.received.lock().unwrap();
                    (r.adds, r.sessions)
                };
                let s = h
                    .call(|s| (s.summary(), s.fib.pending(), s.fib.counters))
                    .await;
                eprintln!(
                    "fea adds {a} sessions {b}; rib {:?}",
                    s.map(|(s, p, c)| (s.prefixes_ipv4, s.prefixes_ipv6, s.fib_routes, p, c))
                );
            }
        });
    }
    fea.wait_for(|r| r.adds >= n).await;
    let load = t.elapsed();
    let hwm_after = vm("VmHWM:");
    let table_bytes = handle.call(|s| s.table.heap_bytes()).await.unwrap();
    fea.wait_for(|r| r.end_syncs >= 1).await;
    let tx = sender.await.unwrap();

    let t = Instant::now();
    for b in withdraws {
        tx.send(b).await.unwrap();
    }
    fea.wait_for(|r| r.deletes >= n).await;
    let withdraw = t.elapsed();

    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "reference: BTreeMap insert of the same prefixes   {:>12.0} routes/s",
        ref_rate
    );
    println!(
        "RIB core only (RibState: select, resolve, FIB)    {:>12.0} routes/s",
        core_rate
    );
    println!(
        "RIB core only, prefixes in random order           {:>12.0} routes/s",
        core_rate_shuffled
    );
    println!(
        "publish -> RIB -> FIB (fake FEA), full table      {:>12.0} routes/s  ({} routes in {:.3}s)",
        rate(load),
        n,
        load.as_secs_f64()
    );
    println!(
        "withdraw -> RIB -> FIB deletes, full table        {:>12.0} routes/s  ({:.3}s)",
        rate(withdraw),
        withdraw.as_secs_f64()
    );
    println!(
        "peak RSS (VmHWM, whole bench process): {} MiB before publishing (table + prebuilt batches), {} MiB with the table loaded (+{} MiB)",
        hwm_before / 1024,
        hwm_after / 1024,
        hwm_after.saturating_sub(hwm_before) / 1024
    );
    let [i4, i6, slab] = table_bytes;
    let v6 = n as usize - v4.min(n as usize);
    println!(
        "table heap: IPv4 index {:.1} MiB ({:.1} B/route), IPv6 index {:.1} MiB ({:.1} B/route), slab {:.1} MiB ({:.1} B/route)",
        i4 as f64 / 1048576.0,
        i4 as f64 / v4.max(1) as f64,
        i6 as f64 / 1048576.0,
        i6 as f64 / v6.max(1) as f64,
        slab as f64 / 1048576.0,
        slab as f64 / n as f64
    );
}
