//! A fake oxr-fea for tests and benchmarks: serves a fixed interface list and records (or
//! only counts) the FibBatches it receives, acknowledging each one — the role of the
//! FEA's `none` backend, without the FEA.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures::Stream;
use oxr_proto::fea::fea_server::{Fea, FeaServer};
use oxr_proto::fea::{
    FeaStatus, FibAck, FibBatch, FibEntries, GetFibRequest, Interface, InterfaceUpdate,
    StatusRequest, WatchInterfacesRequest,
};
use tokio::sync::{mpsc, Notify};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::fib_feed::{batch_counts, expand_batch};

/// What the fake FEA received.
#[derive(Debug, Default)]
pub struct Received {
    /// Every batch (only when recording).
    pub batches: Vec<FibBatch>,
    /// Routes added, over all batches.
    pub adds: u64,
    /// Routes deleted.
    pub deletes: u64,
    /// Batches with begin_sync.
    pub begin_syncs: u64,
    /// Batches with end_sync.
    pub end_syncs: u64,
    /// ProgramFib streams opened.
    pub sessions: u64,
}

/// The fake FEA.
#[derive(Clone)]
pub struct FakeFea {
    interfaces: Vec<Interface>,
    record: bool,
    /// What it received.
    pub received: Arc<Mutex<Received>>,
    /// Notified after every batch.
    pub changed: Arc<Notify>,
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

impl FakeFea {
    /// A fake FEA with these interfaces; `record` keeps every batch (tests), otherwise only
    /// counts (benchmarks).
    pub fn new(interfaces: Vec<Interface>, record: bool) -> Self {
        FakeFea {
            interfaces,
            record,
            received: Arc::default(),
            changed: Arc::default(),
        }
    }

    /// Serves it on a Unix socket until the task is dropped.
    pub async fn serve(self, path: PathBuf) -> anyhow::Result<()> {
        let incoming = oxr_proto::transport::bind_unix(&path)?;
        tonic::transport::Server::builder()
            .add_service(
                FeaServer::new(self)
                    .max_decoding_message_size(64 << 20)
                    .max_encoding_message_size(64 << 20),
            )
            .serve_with_incoming(incoming)
            .await?;
        Ok(())
    }

    /// Waits until `pred` holds for what was received.
    pub async fn wait_for(&self, mut pred: impl FnMut(&Received) -> bool) {
        loop {
            let notified = self.changed.notified();
            if pred(&self.received.lock().expect("not poisoned")) {
                return;
            }
            notified.await;
        }
    }
}

#[tonic::async_trait]
impl Fea for FakeFea {
    type WatchInterfacesStream = BoxStream<InterfaceUpdate>;
    type ProgramFibStream = BoxStream<FibAck>;
    type GetFibStream = BoxStream<FibEntries>;

    async fn watch_interfaces(
        &self,
        _: Request<WatchInterfacesRequest>,
    ) -> Result<Response<Self::WatchInterfacesStream>, Status> {
        let (tx, rx) = mpsc::channel(1);
        let dump = InterfaceUpdate {
            changed: self.interfaces.clone(),
            removed_ifindex: vec![],
            full_dump: true,
        };
        tokio::spawn(async move {
            let _ = tx.send(Ok(dump)).await;
            // Keep the stream open, as the real FEA does.
            tx.closed().await;
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn program_fib(
        &self,
        req: Request<Streaming<FibBatch>>,
    ) -> Result<Response<Self::ProgramFibStream>, Status> {
        let mut inbound = req.into_inner();
        let (tx, rx) = mpsc::channel(64);
        let me = self.clone();
        me.received.lock().expect("not poisoned").sessions += 1;
        tokio::spawn(async move {
            while let Ok(Some(b)) = inbound.message().await {
                let (adds, deletes) = batch_counts(&b);
                let ack = FibAck {
                    seq: b.seq,
                    applied: (adds + deletes) as u32,
                    failed: 0,
                    errors: vec![],
                };
                {
                    let mut r = me.received.lock().expect("not poisoned");
                    r.adds += adds as u64;
                    r.deletes += deletes as u64;
                    r.begin_syncs += u64::from(b.begin_sync);
                    r.end_syncs += u64::from(b.end_sync);
                    if me.record {
                        // Recorded one route per entry, whichever form was sent.
                        r.batches.push(expand_batch(b));
                    }
                }
                me.changed.notify_waiters();
                if tx.send(Ok(ack)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_fib(
        &self,
        _: Request<GetFibRequest>,
    ) -> Result<Response<Self::GetFibStream>, Status> {
        Err(Status::unimplemented("fake FEA"))
    }

    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<FeaStatus>, Status> {
        Ok(Response::new(FeaStatus {
            backend: "fake".into(),
            ..Default::default()
        }))
    }
}
