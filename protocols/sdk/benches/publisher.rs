//! Publisher throughput: routes/s from a tight loop of `RibPublisher::add` (and
//! `update_many`) until the RIB acknowledged them, against the same routes sent as
//! pre-built batches on a raw Publish stream in the same run (the transport's own cost, the
//! floor the SDK adds to), in both wire forms (one `Route` message per route, and packed
//! `RouteGroup`s, which the publisher sends).
//!
//! Two receivers: a counting fake RIB (the client side alone), and, when it has been built,
//! the real `oxr-rib` daemon (`cargo build --release -p oxr-rib`), timed until its
//! `Summary` counts every prefix ("into the RIB").
//!
//! `cargo bench -p oxr-sdk --bench publisher` (`ROUTES=N` to change the table size).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ipnet::{IpNet, Ipv4Net};
use oxr_proto::convert::PackedBuilder;
use oxr_proto::rib::publish_request::Msg;
use oxr_proto::rib::rib_client::RibClient;
use oxr_proto::rib::{Hello, PublishRequest, RouteBatch, RouteGroup, SummaryRequest};
use oxr_proto::transport::{self, Address};
use oxr_sdk::rib_client::{PublisherOptions, RibPublisher, DEFAULT_MAX_BATCH};
use oxr_sdk::testing::FakeRib;
use oxr_sdk::{Nexthop, RibUpdate, Route};

/// `n` IPv4 /24s through 4 gateways, round robin (so consecutive routes differ).
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

fn hello() -> Hello {
    Hello {
        protocol: "bench".into(),
        ..Default::default()
    }
}

/// Pre-built wire batches: one `Route` message per route, or grouped by next hop with
/// packed prefixes.
fn wire_batches(table: &[Route], packed: bool) -> Vec<PublishRequest> {
    table
        .chunks(DEFAULT_MAX_BATCH)
        .map(|c| {
            let batch = if packed {
                let mut groups: Vec<(Vec<Nexthop>, PackedBuilder)> = Vec::new();
                for r in c {
                    match groups.iter_mut().find(|(nh, _)| *nh == r.nexthops) {
                        Some((_, p)) => p.push(r.prefix),
                        None => {
                            let mut p = PackedBuilder::new();
                            p.push(r.prefix);
                            groups.push((r.nexthops.clone(), p));
                        }
                    }
                }
                RouteBatch {
                    groups: groups
                        .into_iter()
                        .map(|(nh, p)| RouteGroup {
                            nexthops: nh.iter().map(Nexthop::to_proto).collect(),
                            prefixes: Some(p.finish()),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }
            } else {
                RouteBatch {
                    add: c.iter().map(Route::to_proto).collect(),
                    ..Default::default()
                }
            };
            PublishRequest {
                msg: Some(Msg::Batch(batch)),
            }
        })
        .collect()
}

/// Where routes go, and how to know they arrived.
enum Sink {
    Fake(FakeRib),
    Real { child: Child, sock: PathBuf },
}

impl Sink {
    fn address(&self, fake_sock: &Path) -> Address {
        match self {
            Sink::Fake(_) => Address::Unix(fake_sock.to_path_buf()),
            Sink::Real { sock, .. } => Address::Unix(sock.clone()),
        }
    }

    async fn wait_received(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(120);
        match self {
            Sink::Fake(rib) => {
                while rib.routes_received() < n {
                    assert!(Instant::now() < deadline, "fake RIB received too little");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            Sink::Real { sock, .. } => {
                let ch = transport::connect(&Address::Unix(sock.clone()))
                    .await
                    .unwrap();
                let mut c = RibClient::new(ch);
                loop {
                    let s = c.summary(SummaryRequest {}).await.unwrap().into_inner();
                    if s.prefixes_ipv4 + s.prefixes_ipv6 >= n {
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "oxr-rib received too little: {s:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Sink::Real { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The release `oxr-rib` beside this bench's directory, if built.
fn rib_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.parent()?.join("oxr-rib");
    p.exists().then_some(p)
}

fn start_sink(real: bool, dir: &Path, name: &str) -> Sink {
    if !real {
        return Sink::Fake(FakeRib::start_counting(&dir.join(format!("{name}.sock"))));
    }
    let run_dir = dir.join(name);
    std::fs::create_dir_all(&run_dir).unwrap();
    let config = run_dir.join("bench.toml");
    std::fs::write(&config, "[router]\nname = \"bench\"\n").unwrap();
    let child = Command::new(rib_binary().expect("oxr-rib built"))
        .args(["--router", "bench", "--run-dir", run_dir.to_str().unwrap()])
        .args(["--config", config.to_str().unwrap(), "--log", "error"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let sock = run_dir.join("rib.sock");
    let t = Instant::now();
    while !sock.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "oxr-rib did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Sink::Real { child, sock }
}

async fn raw(table: &[Route], packed: bool, real: bool, dir: &Path, name: &str) -> Duration {
    let sink = start_sink(real, dir, name);
    let batches = wire_batches(table, packed);
    let addr = sink.address(&dir.join(format!("{name}.sock")));
    let mut client = RibClient::new(transport::connect(&addr).await.unwrap())
        .max_encoding_message_size(64 << 20);
    let t = Instant::now();
    let stream = tokio_stream::iter(
        std::iter::once(PublishRequest {
            msg: Some(Msg::Hello(hello())),
        })
        .chain(batches),
    );
    let _acks = client.publish(stream).await.unwrap();
    sink.wait_received(table.len() as u64).await;
    t.elapsed()
}

async fn sdk(table: &[Route], bulk: bool, real: bool, dir: &Path, name: &str) -> (Duration, u64) {
    let sink = start_sink(real, dir, name);
    let addr = sink.address(&dir.join(format!("{name}.sock")));
    let p = RibPublisher::start_with(addr, hello(), PublisherOptions::default());
    let mut st = p.watch_status();
    st.wait_for(|s| s.connected).await.unwrap();
    let t = Instant::now();
    if bulk {
        for chunk in table.chunks(DEFAULT_MAX_BATCH) {
            p.update_many(chunk.iter().cloned().map(RibUpdate::Add).collect());
        }
    } else {
        for r in table.iter().cloned() {
            p.add(r);
        }
    }
    p.flush().await;
    sink.wait_received(table.len() as u64).await;
    (t.elapsed(), p.status().batches_sent)
}

#[tokio::main]
async fn main() {
    let n: u32 = std::env::var("ROUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let table = routes(n);
    let dir = tempfile::tempdir().unwrap();
    let rate = |d: Duration| f64::from(n) / d.as_secs_f64();
    println!("publish {n} IPv4 routes (4 next hops, round robin) over a Unix socket");
    for real in [false, true] {
        if real && rib_binary().is_none() {
            println!("(oxr-rib not built in release: `cargo build --release -p oxr-rib` for the real-RIB rows)");
            continue;
        }
        let to = if real { "oxr-rib" } else { "counting fake RIB" };
        let k = if real { "real" } else { "fake" };
        let reference = raw(&table, true, real, dir.path(), &format!("{k}-raw-packed")).await;
        let per_route = raw(&table, false, real, dir.path(), &format!("{k}-raw")).await;
        let (add, batches) = sdk(&table, false, real, dir.path(), &format!("{k}-add")).await;
        let (bulk, _) = sdk(&table, true, real, dir.path(), &format!("{k}-bulk")).await;
        println!("to {to}:");
        let row = |what: &str, d: Duration| {
            println!(
                "  {what:<52} {:>7.3} s {:>10.0} routes/s  {:>5.2}x raw packed time",
                d.as_secs_f64(),
                rate(d),
                d.as_secs_f64() / reference.as_secs_f64()
            )
        };
        row(
            "raw Publish stream, pre-built packed batches (reference)",
            reference,
        );
        row(
            "raw Publish stream, pre-built per-route messages",
            per_route,
        );
        row("RibPublisher::add loop + flush", add);
        row("RibPublisher::update_many(4096) + flush", bulk);
        println!("  (batches sent by the add() publisher: {batches})");
    }
}
