//! Publisher throughput: routes/s from `RibPublisher::add` to a (counting) fake RIB over a
//! Unix socket, against the same routes sent as pre-built batches on a raw Publish stream
//! (the transport's own cost, the floor the SDK adds to).
//!
//! `cargo bench -p oxr-sdk --bench publish` (ROUTES=N to change the table size).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use ipnet::{IpNet, Ipv4Net};
use oxr_proto::rib::publish_request::Msg;
use oxr_proto::rib::rib_client::RibClient;
use oxr_proto::rib::{Hello, PublishRequest, RouteBatch};
use oxr_proto::transport::{self, Address};
use oxr_sdk::rib_client::{PublisherOptions, RibPublisher, DEFAULT_MAX_BATCH};
use oxr_sdk::testing::FakeRib;
use oxr_sdk::{Nexthop, RibUpdate, Route};

fn routes(n: u32) -> Vec<Route> {
    (0..n)
        .map(|i| {
            let net = Ipv4Net::new(Ipv4Addr::from(0x0100_0000 + (i << 8)), 24).unwrap();
            Route::forward(
                IpNet::V4(net),
                vec![Nexthop::gateway(IpAddr::from([
                    192,
                    0,
                    2,
                    (i % 4) as u8 + 1,
                ]))],
            )
        })
        .collect()
}

async fn wait_received(rib: &FakeRib, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while rib.routes_received() < n {
        assert!(Instant::now() < deadline, "fake RIB received too little");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn hello() -> Hello {
    Hello {
        protocol: "bench".into(),
        ..Default::default()
    }
}

#[tokio::main]
async fn main() {
    let n: u32 = std::env::var("ROUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let table = routes(n);
    let dir = tempfile::tempdir().unwrap();

    // Reference: pre-built wire batches on a raw stream.
    let sock = dir.path().join("raw.sock");
    let rib = FakeRib::start_counting(&sock);
    let batches: Vec<PublishRequest> = table
        .chunks(DEFAULT_MAX_BATCH)
        .map(|c| PublishRequest {
            msg: Some(Msg::Batch(RouteBatch {
                add: c.iter().map(Route::to_proto).collect(),
                withdraw: vec![],
            })),
        })
        .collect();
    let mut client = RibClient::new(transport::connect(&Address::Unix(sock)).await.unwrap());
    let t = Instant::now();
    let stream = tokio_stream::iter(
        std::iter::once(PublishRequest {
            msg: Some(Msg::Hello(hello())),
        })
        .chain(batches),
    );
    let _acks = client.publish(stream).await.unwrap();
    wait_received(&rib, u64::from(n)).await;
    let raw = t.elapsed();
    rib.kill();

    // The SDK: add() per route, coalescing and batching in the publisher task.
    let sock = dir.path().join("sdk.sock");
    let rib = FakeRib::start_counting(&sock);
    let p = RibPublisher::start_with(Address::Unix(sock), hello(), PublisherOptions::default());
    let mut st = p.watch_status();
    st.wait_for(|s| s.connected).await.unwrap();
    let t = Instant::now();
    for r in table.iter().cloned() {
        p.add(r);
    }
    let queued = t.elapsed();
    p.flush().await;
    let sdk = t.elapsed();
    wait_received(&rib, u64::from(n)).await;

    rib.kill();

    // The SDK with bulk hand-off: update_many() per 4096 routes.
    let sock = dir.path().join("bulk.sock");
    let rib = FakeRib::start_counting(&sock);
    let pb = RibPublisher::start_with(Address::Unix(sock), hello(), PublisherOptions::default());
    let mut st = pb.watch_status();
    st.wait_for(|s| s.connected).await.unwrap();
    let t = Instant::now();
    for chunk in table.chunks(DEFAULT_MAX_BATCH) {
        pb.update_many(chunk.iter().cloned().map(RibUpdate::Add).collect());
    }
    pb.flush().await;
    let bulk = t.elapsed();
    wait_received(&rib, u64::from(n)).await;

    let rate = |d: Duration| f64::from(n) / d.as_secs_f64();
    println!("publish {n} IPv4 routes over a Unix socket to a counting fake RIB");
    println!(
        "  raw Publish stream, pre-built batches of {DEFAULT_MAX_BATCH}: {:>8.3} s  {:>10.0} routes/s",
        raw.as_secs_f64(),
        rate(raw)
    );
    println!(
        "  RibPublisher::add + flush (acked):            {:>8.3} s  {:>10.0} routes/s  ({:.2}x raw)",
        sdk.as_secs_f64(),
        rate(sdk),
        sdk.as_secs_f64() / raw.as_secs_f64()
    );
    println!(
        "  RibPublisher::update_many(4096) + flush:       {:>8.3} s  {:>10.0} routes/s  ({:.2}x raw)",
        bulk.as_secs_f64(),
        rate(bulk),
        bulk.as_secs_f64() / raw.as_secs_f64()
    );
    println!(
        "  (add() loop alone: {:.3} s; batches sent by the add() publisher: {})",
        queued.as_secs_f64(),
        p.status().batches_sent
    );
}
