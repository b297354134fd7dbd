//! The `oxr.rib.Rib` gRPC service. Handlers only translate and forward to the RIB task.

use std::net::IpAddr;
use std::pin::Pin;

use futures::Stream;
use oxr_proto::convert::req_addr;
use oxr_proto::rib::rib_server::{Rib, RibServer};
use oxr_proto::rib::{
    GetRoutesRequest, LookupRequest, NexthopUpdate, NexthopWatchRequest, PublishRequest,
    PublishResponse, RedistributionRequest, RedistributionUpdate, RibEntries, RibSummary,
    SummaryRequest,
};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::{ReceiverStream, UnboundedReceiverStream, WatchStream};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use crate::actor::{Cmd, RibHandle};
use crate::publish;
use crate::state::RouteFilter;
use crate::table::Key;

/// Entries per GetRoutes message.
pub const ROUTES_CHUNK: usize = 2000;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The Rib service over a RIB task.
#[derive(Clone)]
pub struct RibService {
    handle: RibHandle,
}

impl RibService {
    /// A service forwarding to `handle`.
    pub fn new(handle: RibHandle) -> Self {
        RibService { handle }
    }

    /// As a tonic service, with message limits fit for full-table batches.
    pub fn server(handle: RibHandle) -> RibServer<RibService> {
        RibServer::new(RibService::new(handle))
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20)
    }
}

fn stopped<T>(_: T) -> Status {
    Status::unavailable("the RIB is shutting down")
}

fn bad(e: oxr_proto::ConvertError) -> Status {
    Status::invalid_argument(e.to_string())
}

#[tonic::async_trait]
impl Rib for RibService {
    type PublishStream = BoxStream<PublishResponse>;
    type WatchNexthopsStream = BoxStream<NexthopUpdate>;
    type WatchRedistributionStream = BoxStream<RedistributionUpdate>;
    type GetRoutesStream = BoxStream<RibEntries>;

    async fn publish(
        &self,
        req: Request<Streaming<PublishRequest>>,
    ) -> Result<Response<Self::PublishStream>, Status> {
        let mut inbound = req.into_inner();
        // Answer at once and read the Hello on the stream's own task: a client may wait for
        // the response headers before it sends anything.
        let (accepted_tx, accepted_rx) = oneshot::channel();
        let handle = self.handle.clone();
        tokio::spawn(async move {
            match publish::accept(&handle, &mut inbound).await {
                Ok((client, stream, acks)) => {
                    let _ = accepted_tx.send(Ok(acks));
                    publish::pump_stream(handle, client, stream, inbound).await;
                }
                Err(e) => {
                    let _ = accepted_tx.send(Err(e));
                }
            }
        });
        // Acks are cumulative counters: a slow reader sees the latest, never a backlog.
        let out = futures::StreamExt::flat_map(
            futures::stream::once(accepted_rx),
            |r| -> BoxStream<PublishResponse> {
                match r {
                    Ok(Ok(acks)) => Box::pin(WatchStream::from_changes(acks).map(Ok)),
                    Ok(Err(status)) => Box::pin(futures::stream::iter([Err(status)])),
                    Err(_) => Box::pin(futures::stream::iter([Err(Status::unavailable(
                        "the RIB is shutting down",
                    ))])),
                }
            },
        );
        Ok(Response::new(Box::pin(out)))
    }

    async fn watch_nexthops(
        &self,
        req: Request<Streaming<NexthopWatchRequest>>,
    ) -> Result<Response<Self::WatchNexthopsStream>, Status> {
        let mut inbound = req.into_inner();
        let id = self.handle.next_id();
        let (tx, rx) = mpsc::unbounded_channel();
        self.handle
            .send(Cmd::WatchOpen {
                id,
                sink: tx.clone(),
            })
            .await
            .map_err(stopped)?;
        let handle = self.handle.clone();
        tokio::spawn(async move {
            let parse = |v: &[oxr_proto::types::IpAddress]| -> Result<Vec<IpAddr>, Status> {
                v.iter().map(|a| IpAddr::try_from(a).map_err(bad)).collect()
            };
            while let Ok(Some(m)) = inbound.message().await {
                match (parse(&m.add), parse(&m.remove)) {
                    (Ok(add), Ok(remove)) => {
                        if handle
                            .send(Cmd::WatchChange { id, add, remove })
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                }
            }
            let _ = handle.send(Cmd::WatchClose { id }).await;
        });
        Ok(Response::new(Box::pin(UnboundedReceiverStream::new(rx))))
    }

    async fn watch_redistribution(
        &self,
        req: Request<RedistributionRequest>,
    ) -> Result<Response<Self::WatchRedistributionStream>, Status> {
        let req = req.into_inner();
        let within = req
            .within
            .iter()
            .map(Key::from_proto)
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        let id = self.handle.next_id();
        let (tx, rx) = mpsc::unbounded_channel();
        self.handle
            .send(Cmd::RedistOpen {
                id,
                protocols: req.protocols,
                within,
                sink: tx,
            })
            .await
            .map_err(stopped)?;
        // The RIB task notices a closed receiver on its next send and drops the watcher.
        Ok(Response::new(Box::pin(UnboundedReceiverStream::new(rx))))
    }

    async fn lookup(&self, req: Request<LookupRequest>) -> Result<Response<RibEntries>, Status> {
        let addr = req_addr(req.get_ref().address.as_ref(), "address").map_err(bad)?;
        let r = self
            .handle
            .call(move |s| s.lookup(addr))
            .await
            .map_err(stopped)?;
        Ok(Response::new(r))
    }

    async fn get_routes(
        &self,
        req: Request<GetRoutesRequest>,
    ) -> Result<Response<Self::GetRoutesStream>, Status> {
        let req = req.into_inner();
        let filter = RouteFilter {
            prefix: req
                .prefix
                .as_ref()
                .map(Key::from_proto)
                .transpose()
                .map_err(bad)?,
            protocol: req.protocol,
            selected_only: req.selected_only,
            family: req.family,
        };
        let (tx, rx) = mpsc::channel(2);
        let handle = self.handle.clone();
        tokio::spawn(async move {
            // Page by page, so a full-table dump never holds the RIB task for long.
            let mut after = None;
            loop {
                let f = filter.clone();
                let Ok((entries, next)) = handle
                    .call(move |s| s.routes_page(&f, after, ROUTES_CHUNK))
                    .await
                else {
                    return;
                };
                if !entries.is_empty() && tx.send(Ok(RibEntries { entries })).await.is_err() {
                    return;
                }
                match next {
                    Some(k) => after = Some(k),
                    None => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn summary(&self, _: Request<SummaryRequest>) -> Result<Response<RibSummary>, Status> {
        let r = self.handle.call(|s| s.summary()).await.map_err(stopped)?;
        Ok(Response::new(r))
    }
}
