//! The Publish stream (protocol -> RIB): parsing of batches (done on the stream's own task,
//! in parallel with the RIB task) and the stream's lifecycle: Hello, batches, EndOfRib, and
//! the break that makes the client's routes stale.

use std::net::IpAddr;

use oxr_proto::convert::{iter_packed, packed_len};
use oxr_proto::rib::{publish_request, PublishRequest, PublishResponse, RouteBatch};
use oxr_proto::types::{Nexthop, PackedPrefixes};
use smallvec::SmallVec;
use tokio::sync::watch;
use tonic::{Status, Streaming};

use crate::actor::{Cmd, RibHandle};
use crate::table::{Action, Key};

/// A next hop as received, before interning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawNexthop {
    /// Gateway, if any.
    pub gateway: Option<IpAddr>,
    /// Interface name, "" for none.
    pub interface: String,
    /// ECMP weight.
    pub weight: u32,
}

/// A route as received, with its prefix parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedRoute {
    /// The prefix.
    pub key: Key,
    /// Next hops (invalid ones dropped).
    pub nexthops: SmallVec<[RawNexthop; 2]>,
    /// Forward, blackhole, reject.
    pub action: Action,
    /// 0: the client's default.
    pub distance: u32,
    /// Metric.
    pub metric: u32,
    /// Tag.
    pub tag: u32,
}

/// Routes sharing everything but their prefix (a wire `RouteGroup`), parsed: the next
/// hops are interned once for the whole group.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedGroup {
    /// Next hops (invalid ones dropped).
    pub nexthops: SmallVec<[RawNexthop; 2]>,
    /// Forward, blackhole, reject.
    pub action: Action,
    /// 0: the client's default.
    pub distance: u32,
    /// Metric.
    pub metric: u32,
    /// Tag.
    pub tag: u32,
    /// The prefixes.
    pub keys: Vec<Key>,
}

/// A batch as received.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParsedBatch {
    /// Adds (or replacements).
    pub add: Vec<ParsedRoute>,
    /// Adds in groups, applied after `add`.
    pub groups: Vec<ParsedGroup>,
    /// Withdraws.
    pub withdraw: Vec<Key>,
    /// Routes or next hops dropped because a prefix or address was malformed.
    pub errors: usize,
}

/// Parses wire next hops; malformed or empty ones are dropped and counted in `errors`.
fn parse_nexthops(nhs: Vec<Nexthop>, errors: &mut usize) -> SmallVec<[RawNexthop; 2]> {
    let mut nexthops = SmallVec::new();
    for nh in nhs {
        let gateway = match nh.gateway.as_ref().map(IpAddr::try_from) {
            None => None,
            Some(Ok(g)) => Some(g),
            Some(Err(_)) => {
                *errors += 1;
                continue;
            }
        };
        if gateway.is_none() && nh.interface.is_empty() {
            *errors += 1;
            continue;
        }
        nexthops.push(RawNexthop {
            gateway,
            interface: nh.interface,
            weight: nh.weight,
        });
    }
    nexthops
}

/// Parses packed prefixes, counting malformed records in `errors`.
fn parse_packed(p: Option<&PackedPrefixes>, out: &mut Vec<Key>, errors: &mut usize) {
    let Some(p) = p else { return };
    out.reserve(packed_len(p));
    for r in iter_packed(p) {
        match r {
            Ok((v6, addr, len)) => out.push(Key { v6, addr, len }),
            Err(_) => *errors += 1,
        }
    }
}

/// Parses a wire batch. Malformed prefixes drop their route; malformed or empty next hops
/// are dropped; both are counted.
pub fn parse_batch(batch: RouteBatch) -> ParsedBatch {
    let mut out = ParsedBatch {
        add: Vec::with_capacity(batch.add.len()),
        groups: Vec::with_capacity(batch.groups.len()),
        withdraw: Vec::with_capacity(batch.withdraw.len()),
        errors: 0,
    };
    for p in &batch.withdraw {
        match Key::from_proto(p) {
            Ok(k) => out.withdraw.push(k),
            Err(_) => out.errors += 1,
        }
    }
    parse_packed(
        batch.withdraw_packed.as_ref(),
        &mut out.withdraw,
        &mut out.errors,
    );
    for g in batch.groups {
        let mut keys = Vec::new();
        parse_packed(g.prefixes.as_ref(), &mut keys, &mut out.errors);
        out.groups.push(ParsedGroup {
            nexthops: parse_nexthops(g.nexthops, &mut out.errors),
            action: Action::from_proto(g.action),
            distance: g.distance,
            metric: g.metric,
            tag: g.tag,
            keys,
        });
    }
    for r in batch.add {
        let Some(Ok(key)) = r.prefix.as_ref().map(Key::from_proto) else {
            out.errors += 1;
            continue;
        };
        let nexthops = parse_nexthops(r.nexthops, &mut out.errors);
        out.add.push(ParsedRoute {
            key,
            nexthops,
            action: Action::from_proto(r.action),
            distance: r.distance,
            metric: r.metric,
            tag: r.tag,
        });
    }
    out
}

/// Runs one Publish stream after its Hello was accepted: forwards batches and EndOfRib to
/// the RIB task, and reports the break (or end) of the stream.
pub(crate) async fn pump_stream(
    handle: RibHandle,
    client: u32,
    stream: u64,
    mut inbound: Streaming<PublishRequest>,
) {
    loop {
        match inbound.message().await {
            Ok(Some(PublishRequest { msg: Some(msg) })) => {
                let cmd = match msg {
                    publish_request::Msg::Batch(b) => Cmd::Batch {
                        client,
                        stream,
                        batch: parse_batch(b),
                    },
                    publish_request::Msg::EndOfRib(_) => Cmd::EndOfRib { client, stream },
                    publish_request::Msg::Hello(_) => {
                        tracing::warn!(client, "second Hello on a Publish stream ignored");
                        continue;
                    }
                };
                if handle.send(cmd).await.is_err() {
                    return;
                }
            }
            Ok(Some(PublishRequest { msg: None })) => {}
            Ok(None) => break,
            Err(e) => {
                tracing::info!(client, error = %e, "Publish stream broke");
                break;
            }
        }
    }
    let _ = handle.send(Cmd::StreamClosed { client, stream }).await;
}

/// Accepts the first message of a Publish stream, which must be a Hello.
pub(crate) async fn accept(
    handle: &RibHandle,
    inbound: &mut Streaming<PublishRequest>,
) -> Result<(u32, u64, watch::Receiver<PublishResponse>), Status> {
    let first = inbound
        .message()
        .await?
        .ok_or_else(|| Status::invalid_argument("Publish stream ended before Hello"))?;
    let Some(publish_request::Msg::Hello(hello)) = first.msg else {
        return Err(Status::failed_precondition(
            "the first message of a Publish stream must be Hello",
        ));
    };
    let stream = handle.next_id();
    let (resp_tx, resp_rx) = watch::channel(PublishResponse::default());
    let (reply, rx) = tokio::sync::oneshot::channel();
    handle
        .send(Cmd::Hello {
            stream,
            hello,
            resp: resp_tx,
            reply,
        })
        .await
        .map_err(|_| Status::unavailable("RIB is shutting down"))?;
    let client = rx
        .await
        .map_err(|_| Status::unavailable("RIB is shutting down"))?
        .map_err(Status::invalid_argument)?;
    Ok((client, stream, resp_rx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxr_proto::rib::Route;
    use oxr_proto::types::{IpAddress, Prefix};

    #[test]
    fn malformed_routes_and_next_hops_are_dropped_and_counted() {
        let good = Key::from("10.0.0.0/8".parse::<ipnet::IpNet>().unwrap());
        let batch = RouteBatch {
            groups: vec![],
            withdraw_packed: None,
            add: vec![
                Route {
                    prefix: Some(good.to_proto()),
                    nexthops: vec![
                        Nexthop {
                            gateway: Some(IpAddress::from("192.0.2.1".parse::<IpAddr>().unwrap())),
                            interface: String::new(),
                            weight: 0,
                        },
                        Nexthop {
                            gateway: Some(IpAddress {
                                octets: bytes::Bytes::from_static(&[1, 2]),
                            }),
                            interface: String::new(),
                            weight: 0,
                        },
                        Nexthop::default(),
                    ],
                    ..Default::default()
                },
                Route {
                    prefix: Some(Prefix {
                        addr: bytes::Bytes::from_static(&[1]),
                        len: 8,
                    }),
                    ..Default::default()
                },
                Route::default(),
            ],
            withdraw: vec![good.to_proto()],
        };
        let p = parse_batch(batch);
        assert_eq!(p.add.len(), 1);
        assert_eq!(p.add[0].nexthops.len(), 1);
        assert_eq!(p.withdraw, vec![good]);
        assert_eq!(p.errors, 4);
    }

    #[test]
    fn groups_and_packed_withdraws_parse_with_bad_records_counted() {
        let mut b = oxr_proto::convert::PackedBuilder::new();
        b.push("10.0.0.0/8".parse().unwrap());
        b.push("2001:db8::/32".parse().unwrap());
        let mut w = oxr_proto::convert::PackedBuilder::new();
        w.push("192.0.2.0/24".parse().unwrap());
        let mut withdraw = w.finish();
        // A truncated trailing record.
        withdraw.v4 = bytes::Bytes::from([&withdraw.v4[..], &[1, 2][..]].concat());
        let batch = RouteBatch {
            groups: vec![oxr_proto::rib::RouteGroup {
                nexthops: vec![Nexthop {
                    gateway: Some(IpAddress::from("192.0.2.1".parse::<IpAddr>().unwrap())),
                    interface: String::new(),
                    weight: 0,
                }],
                action: 0,
                distance: 20,
                metric: 7,
                tag: 0,
                prefixes: Some(b.finish()),
            }],
            withdraw_packed: Some(withdraw),
            ..Default::default()
        };
        let p = parse_batch(batch);
        assert_eq!(p.errors, 1);
        assert_eq!(
            p.withdraw,
            vec![Key::from("192.0.2.0/24".parse::<ipnet::IpNet>().unwrap())]
        );
        assert_eq!(p.groups.len(), 1);
        let g = &p.groups[0];
        assert_eq!((g.distance, g.metric, g.nexthops.len()), (20, 7, 1));
        assert_eq!(
            g.keys,
            vec![
                Key::from("10.0.0.0/8".parse::<ipnet::IpNet>().unwrap()),
                Key::from("2001:db8::/32".parse::<ipnet::IpNet>().unwrap())
            ]
        );
    }
}
