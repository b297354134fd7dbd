//! The RIB in-process behind its gRPC service on a temporary Unix socket, fed by the
//! generated client, feeding a fake FEA on another socket.

use std::net::IpAddr;
use std::time::Duration;

use oxr_proto::fea::{Interface, InterfaceAddress};
use oxr_proto::rib::rib_client::RibClient;
use oxr_proto::rib::{
    publish_request, EndOfRib, GetRoutesRequest, Hello, LookupRequest, NexthopWatchRequest,
    PublishRequest, Route, RouteBatch, SummaryRequest,
};
use oxr_proto::transport::{self, Address};
use oxr_proto::types::{IpAddress, Nexthop, Prefix};
use oxr_rib::api::RibService;
use oxr_rib::testing::FakeFea;
use oxr_rib::{connected, fib_feed, RibOptions};
use oxr_sdk::ShowHandler;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

fn prefix(s: &str) -> Prefix {
    Prefix::from(s.parse::<ipnet::IpNet>().unwrap())
}

fn addr(s: &str) -> IpAddress {
    IpAddress::from(s.parse::<IpAddr>().unwrap())
}

fn route(p: &str, gw: &str) -> Route {
    Route {
        prefix: Some(prefix(p)),
        nexthops: vec![Nexthop {
            gateway: Some(addr(gw)),
            interface: String::new(),
            weight: 0,
        }],
        ..Default::default()
    }
}

fn batch(add: Vec<Route>, withdraw: &[&str]) -> PublishRequest {
    PublishRequest {
        msg: Some(publish_request::Msg::Batch(RouteBatch {
            add,
            withdraw: withdraw.iter().map(|p| prefix(p)).collect(),
            ..Default::default()
        })),
    }
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_query_and_fib_feed_over_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let fea_sock = dir.path().join("fea.sock");
    let rib_sock = dir.path().join("rib.sock");

    let fea = FakeFea::new(
        vec![Interface {
            ifindex: 2,
            name: "eth0".into(),
            admin_up: true,
            oper_up: true,
            addresses: vec![InterfaceAddress {
                prefix: Some(Prefix {
                    addr: addr("192.0.2.1").octets,
                    len: 24,
                }),
                peer: None,
            }],
            ..Default::default()
        }],
        true,
    );
    tokio::spawn(fea.clone().serve(fea_sock.clone()));

    let handle = oxr_rib::spawn(RibOptions {
        expected_protocols: Some(vec!["static".into()]),
        ..Default::default()
    });
    let incoming = transport::bind_unix(&rib_sock).unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(RibService::server(handle.clone()))
            .serve_with_incoming(incoming),
    );
    let fea_addr = Address::Unix(fea_sock.clone());
    tokio::spawn(fib_feed::run(fea_addr.clone(), handle.clone()));
    tokio::spawn(connected::watch_interfaces(fea_addr, handle.clone()));

    let mut rib = RibClient::new(transport::connect(&Address::Unix(rib_sock)).await.unwrap());

    // Publish: Hello, one batch, wait for its ack.
    let (tx, rx) = mpsc::channel(8);
    tx.send(PublishRequest {
        msg: Some(publish_request::Msg::Hello(Hello {
            protocol: "static".into(),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    tx.send(batch(
        vec![
            route("10.0.0.0/8", "192.0.2.254"),
            route("2001:db8:1::/48", "2001:db8::1"),
        ],
        &[],
    ))
    .await
    .unwrap();
    let mut acks = rib
        .publish(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let ack = within("ack", acks.message()).await.unwrap().unwrap();
    assert_eq!(ack.acked_batches, 1);

    // The FEA gets a resynchronisation with the resolved route, but no end_sync before the
    // expected protocol's EndOfRib.
    within(
        "10.0.0.0/8 in the FIB",
        fea.wait_for(|r| {
            r.batches
                .iter()
                .flat_map(|b| &b.add)
                .any(|a| a.prefix == Some(prefix("10.0.0.0/8")))
        }),
    )
    .await;
    {
        let r = fea.received.lock().unwrap();
        assert!(r.batches[0].begin_sync);
        assert_eq!(r.end_syncs, 0);
        let a = r
            .batches
            .iter()
            .flat_map(|b| &b.add)
            .find(|a| a.prefix == Some(prefix("10.0.0.0/8")))
            .unwrap();
        assert_eq!(a.nexthops[0].interface, "eth0");
        assert_eq!(a.nexthops[0].ifindex, 2);
        assert_eq!(a.nexthops[0].gateway, Some(addr("192.0.2.254")));
        assert_eq!(a.protocol, "static");
        assert!(
            !r.batches
                .iter()
                .flat_map(|b| &b.add)
                .any(|a| a.prefix == Some(prefix("192.0.2.0/24"))),
            "connected routes stay out"
        );
    }
    tx.send(PublishRequest {
        msg: Some(publish_request::Msg::EndOfRib(EndOfRib {})),
    })
    .await
    .unwrap();
    within("end_sync", fea.wait_for(|r| r.end_syncs == 1)).await;

    // An incremental change.
    tx.send(batch(
        vec![route("11.0.0.0/8", "192.0.2.253")],
        &["10.0.0.0/8"],
    ))
    .await
    .unwrap();
    within(
        "incremental batch",
        fea.wait_for(|r| {
            r.batches.iter().any(|b| {
                b.delete == vec![prefix("10.0.0.0/8")]
                    && b.add.iter().any(|a| a.prefix == Some(prefix("11.0.0.0/8")))
                    && !b.begin_sync
            })
        }),
    )
    .await;

    // Queries.
    let l = rib
        .lookup(LookupRequest {
            address: Some(addr("11.2.3.4")),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(l.entries.len(), 1);
    assert_eq!(l.entries[0].prefix, Some(prefix("11.0.0.0/8")));
    let c = &l.entries[0].candidates[0];
    assert!(c.selected && c.resolved && !c.stale);
    assert_eq!(c.resolved_nexthops[0].interface, "eth0");
    let none = rib
        .lookup(LookupRequest {
            address: Some(addr("10.1.1.1")),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(none.entries.is_empty());

    let mut all = Vec::new();
    let mut s = rib
        .get_routes(GetRoutesRequest::default())
        .await
        .unwrap()
        .into_inner();
    while let Some(m) = s.message().await.unwrap() {
        all.extend(m.entries);
    }
    let prefixes: Vec<_> = all.iter().map(|e| e.prefix.clone().unwrap()).collect();
    assert_eq!(
        prefixes,
        vec![
            prefix("11.0.0.0/8"),
            prefix("192.0.2.0/24"),
            prefix("2001:db8:1::/48")
        ]
    );
    let mut only_v6 = rib
        .get_routes(GetRoutesRequest {
            family: 6,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let m = only_v6.message().await.unwrap().unwrap();
    assert_eq!(m.entries.len(), 1);
    assert!(!m.entries[0].candidates[0].resolved);

    let sum = rib.summary(SummaryRequest {}).await.unwrap().into_inner();
    assert_eq!(
        (
            sum.prefixes_ipv4,
            sum.prefixes_ipv6,
            sum.fib_routes,
            sum.unresolved
        ),
        (2, 1, 1, 1)
    );
    assert!(sum.fea_connected);

    // A watched next hop.
    let (wtx, wrx) = mpsc::channel(4);
    wtx.send(NexthopWatchRequest {
        add: vec![addr("11.0.0.1")],
        remove: vec![],
    })
    .await
    .unwrap();
    let mut updates = rib
        .watch_nexthops(ReceiverStream::new(wrx))
        .await
        .unwrap()
        .into_inner();
    let u = within("nexthop update", updates.message())
        .await
        .unwrap()
        .unwrap();
    assert!(u.resolved);
    assert_eq!(u.via_route, Some(prefix("11.0.0.0/8")));
    assert_eq!(u.covering, Some(prefix("11.0.0.0/8")));

    // Show.
    let show = oxr_rib::show::RibShow::new(handle.clone());
    let out = show
        .show(&["route".into(), "summary".into()])
        .await
        .unwrap();
    assert!(out.text.contains("static"), "{}", out.text);
    let out = show
        .show(&["route".into(), "11.9.9.9".into()])
        .await
        .unwrap();
    assert!(
        out.text.contains("11.0.0.0/8") && out.text.contains("eth0"),
        "{}",
        out.text
    );
    assert_eq!(out.json[0]["candidates"][0]["protocol"], "static");

    // The publisher goes away: its routes stay, stale.
    drop(tx);
    drop(acks);
    within("stale routes", async {
        loop {
            let l = rib
                .lookup(LookupRequest {
                    address: Some(addr("11.2.3.4")),
                })
                .await
                .unwrap()
                .into_inner();
            if l.entries[0].candidates[0].stale {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}
