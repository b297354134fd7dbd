//! In-process fakes of oxr-rib and oxr-routerd for protocol tests: real gRPC on a Unix
//! socket, each running on its own Tokio runtime so that [`FakeRib::kill`] drops every
//! connection at once, as a crashed process would.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipnet::IpNet;
use oxr_proto::rib::publish_request::Msg;
use oxr_proto::rib::rib_server::{Rib, RibServer};
use oxr_proto::rib::{
    GetRoutesRequest, LookupRequest, NexthopUpdate, NexthopWatchRequest, PublishRequest,
    PublishResponse, RedistributionRequest, RedistributionUpdate, RibEntries, RibSummary,
    SummaryRequest,
};
use oxr_proto::routerd::routerd_server::{Routerd, RouterdServer};
use oxr_proto::routerd::*;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::route::Route;

/// Runs a tonic router on `path` on a private runtime.
struct Served {
    rt: Option<tokio::runtime::Runtime>,
    path: PathBuf,
}

impl Served {
    fn start(path: &Path, router: tonic::transport::server::Router) -> Self {
        let _ = std::fs::remove_file(path);
        let std_listener =
            std::os::unix::net::UnixListener::bind(path).expect("binding fake server socket");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("fake server runtime");
        rt.spawn(async move {
            let listener =
                tokio::net::UnixListener::from_std(std_listener).expect("tokio listener");
            let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
            let _ = router.serve_with_incoming(incoming).await;
        });
        Served {
            rt: Some(rt),
            path: path.to_path_buf(),
        }
    }

    fn kill(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `f` until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One message received on a Publish stream.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishEvent {
    /// Which stream (0 for the first one this fake accepted).
    pub stream: u64,
    pub msg: Msg,
}

#[derive(Default)]
struct RibState {
    /// When false, messages are only counted (for benchmarks).
    record: bool,
    routes: AtomicU64,
    events: Mutex<Vec<PublishEvent>>,
    nexthops: Mutex<Vec<IpAddr>>,
    streams: AtomicU64,
}

/// A fake oxr-rib: records every Publish message, acknowledges every batch, answers every
/// watched next hop as resolved over its host prefix, and sends an empty redistribution dump.
pub struct FakeRib {
    state: Arc<RibState>,
    served: Served,
}

impl FakeRib {
    /// Serves on `path` (replacing a stale socket).
    pub fn start(path: &Path) -> Self {
        Self::start_inner(path, true)
    }

    /// Serves on `path`, counting routes instead of recording messages (for benchmarks).
    pub fn start_counting(path: &Path) -> Self {
        Self::start_inner(path, false)
    }

    fn start_inner(path: &Path, record: bool) -> Self {
        let state = Arc::new(RibState {
            record,
            ..Default::default()
        });
        let router = tonic::transport::Server::builder().add_service(RibServer::new(RibSvc {
            state: state.clone(),
        }));
        FakeRib {
            state,
            served: Served::start(path, router),
        }
    }

    /// Routes (adds plus withdraws) received so far.
    pub fn routes_received(&self) -> u64 {
        self.state.routes.load(Ordering::Relaxed)
    }

    /// Every message received so far, in order (empty for a counting fake).
    pub fn events(&self) -> Vec<PublishEvent> {
        self.state.events.lock().expect("not poisoned").clone()
    }

    /// Waits until `pred` holds for the messages received so far; returns them.
    pub async fn wait_for(
        &self,
        what: &str,
        pred: impl Fn(&[PublishEvent]) -> bool,
    ) -> Vec<PublishEvent> {
        wait_until(Duration::from_secs(10), what, || {
            let ev = self.events();
            pred(&ev).then_some(ev)
        })
        .await
    }

    /// Next-hop addresses registered through WatchNexthops so far, in order.
    pub fn nexthop_registrations(&self) -> Vec<IpAddr> {
        self.state.nexthops.lock().expect("not poisoned").clone()
    }

    /// The routes the client's messages add up to (adds minus withdraws, over all streams).
    pub fn table(&self) -> BTreeMap<IpNet, Route> {
        table_of(&self.events())
    }

    /// Stops the fake abruptly: every connection breaks, the socket disappears.
    pub fn kill(mut self) {
        self.served.kill();
    }
}

/// The routes a sequence of Publish messages adds up to.
pub fn table_of(events: &[PublishEvent]) -> BTreeMap<IpNet, Route> {
    let mut t = BTreeMap::new();
    for e in events {
        if let Msg::Batch(b) = &e.msg {
            for r in &b.add {
                let r = Route::from_proto(r).expect("valid route");
                t.insert(r.prefix, r);
            }
            for p in &b.withdraw {
                t.remove(&IpNet::try_from(p).expect("valid prefix"));
            }
        }
    }
    t
}

struct RibSvc {
    state: Arc<RibState>,
}

type RespStream<T> = ReceiverStream<Result<T, Status>>;

#[tonic::async_trait]
impl Rib for RibSvc {
    type PublishStream = RespStream<PublishResponse>;
    type WatchNexthopsStream = RespStream<NexthopUpdate>;
    type WatchRedistributionStream = RespStream<RedistributionUpdate>;
    type GetRoutesStream = RespStream<RibEntries>;

    async fn publish(
        &self,
        req: Request<Streaming<PublishRequest>>,
    ) -> Result<Response<Self::PublishStream>, Status> {
        let stream = self.state.streams.fetch_add(1, Ordering::SeqCst);
        let state = self.state.clone();
        let mut inbound = req.into_inner();
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            let mut batches = 0;
            while let Ok(Some(m)) = inbound.message().await {
                let Some(msg) = m.msg else { continue };
                let is_batch = matches!(msg, Msg::Batch(_));
                if let Msg::Batch(b) = &msg {
                    let n = crate::rib_client::batch_len(b);
                    state.routes.fetch_add(n as u64, Ordering::Relaxed);
                }
                if state.record {
                    // Recorded one route per entry, whichever form was sent.
                    let msg = match msg {
                        Msg::Batch(b) => Msg::Batch(crate::rib_client::expand_batch(b)),
                        other => other,
                    };
                    state
                        .events
                        .lock()
                        .expect("not poisoned")
                        .push(PublishEvent { stream, msg });
                }
                if is_batch {
                    batches += 1;
                    let ack = PublishResponse {
                        acked_batches: batches,
                        swept: 0,
                    };
                    if tx.send(Ok(ack)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn watch_nexthops(
        &self,
        req: Request<Streaming<NexthopWatchRequest>>,
    ) -> Result<Response<Self::WatchNexthopsStream>, Status> {
        let mut inbound = req.into_inner();
        let state = self.state.clone();
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            while let Ok(Some(m)) = inbound.message().await {
                for a in m.add {
                    let Ok(addr) = IpAddr::try_from(&a) else {
                        continue;
                    };
                    state.nexthops.lock().expect("not poisoned").push(addr);
                    let u = NexthopUpdate {
                        address: Some(a),
                        resolved: true,
                        covering: Some(IpNet::from(addr).into()),
                        via_protocol: "fake".into(),
                        ..Default::default()
                    };
                    if tx.send(Ok(u)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn watch_redistribution(
        &self,
        _: Request<RedistributionRequest>,
    ) -> Result<Response<Self::WatchRedistributionStream>, Status> {
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let _ = tx
                .send(Ok(RedistributionUpdate {
                    end_of_rib: true,
                    ..Default::default()
                }))
                .await;
            tx.closed().await;
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn lookup(&self, _: Request<LookupRequest>) -> Result<Response<RibEntries>, Status> {
        Err(Status::unimplemented("fake RIB"))
    }

    async fn get_routes(
        &self,
        _: Request<GetRoutesRequest>,
    ) -> Result<Response<Self::GetRoutesStream>, Status> {
        Err(Status::unimplemented("fake RIB"))
    }

    async fn summary(&self, _: Request<SummaryRequest>) -> Result<Response<RibSummary>, Status> {
        Err(Status::unimplemented("fake RIB"))
    }
}

// ---------------------------------------------------------------------------------------

/// What the fake routerd delivers: revision, the section, the `[router]` table.
type Delivered = (u64, serde_json::Value, serde_json::Value);

/// A fake oxr-routerd serving `WatchConfig` for any section from one JSON value that the
/// test changes with [`set_section`](Self::set_section) (and `[router]` with
/// [`set_router`](Self::set_router)).
pub struct FakeRouterd {
    section: watch::Sender<Delivered>,
    watches: Arc<AtomicU64>,
    served: Served,
}

impl FakeRouterd {
    /// Serves on `path`, delivering `section` as revision 1.
    pub fn start(path: &Path, section: serde_json::Value) -> Self {
        let (tx, _) = watch::channel((1, section, serde_json::json!({})));
        let watches = Arc::new(AtomicU64::new(0));
        let router =
            tonic::transport::Server::builder().add_service(RouterdServer::new(RouterdSvc {
                section: tx.clone(),
                watches: watches.clone(),
            }));
        FakeRouterd {
            section: tx,
            watches,
            served: Served::start(path, router),
        }
    }

    /// Commits a new section (next revision) to every watcher.
    pub fn set_section(&self, section: serde_json::Value) {
        self.section.send_modify(|(rev, s, _)| {
            *rev += 1;
            *s = section;
        });
    }

    /// Commits a new `[router]` table (next revision), the section unchanged.
    pub fn set_router(&self, router: serde_json::Value) {
        self.section.send_modify(|(rev, _, r)| {
            *rev += 1;
            *r = router;
        });
    }

    /// WatchConfig calls accepted so far.
    pub fn watches(&self) -> u64 {
        self.watches.load(Ordering::SeqCst)
    }

    /// Stops abruptly.
    pub fn kill(mut self) {
        self.served.kill();
    }
}

struct RouterdSvc {
    section: watch::Sender<Delivered>,
    watches: Arc<AtomicU64>,
}

fn unimpl<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("fake routerd"))
}

#[tonic::async_trait]
impl Routerd for RouterdSvc {
    type WatchConfigStream = RespStream<ConfigSection>;

    async fn get_config(
        &self,
        _: Request<GetConfigRequest>,
    ) -> Result<Response<ConfigText>, Status> {
        unimpl()
    }
    async fn set(&self, _: Request<SetRequest>) -> Result<Response<EditReply>, Status> {
        unimpl()
    }
    async fn delete(&self, _: Request<DeleteRequest>) -> Result<Response<EditReply>, Status> {
        unimpl()
    }
    async fn load_candidate(&self, _: Request<ConfigText>) -> Result<Response<EditReply>, Status> {
        unimpl()
    }
    async fn discard(&self, _: Request<DiscardRequest>) -> Result<Response<EditReply>, Status> {
        unimpl()
    }
    async fn validate(
        &self,
        _: Request<ValidateRequest>,
    ) -> Result<Response<ValidateReply>, Status> {
        unimpl()
    }
    async fn compare(&self, _: Request<CompareRequest>) -> Result<Response<CompareReply>, Status> {
        unimpl()
    }
    async fn commit(&self, _: Request<CommitRequest>) -> Result<Response<CommitReply>, Status> {
        unimpl()
    }
    async fn rollback(&self, _: Request<RollbackRequest>) -> Result<Response<CommitReply>, Status> {
        unimpl()
    }
    async fn list_revisions(
        &self,
        _: Request<ListRevisionsRequest>,
    ) -> Result<Response<Revisions>, Status> {
        unimpl()
    }
    async fn schema(&self, _: Request<SchemaRequest>) -> Result<Response<SchemaReply>, Status> {
        unimpl()
    }
    async fn process_status(
        &self,
        _: Request<ProcessStatusRequest>,
    ) -> Result<Response<ProcessStatusReply>, Status> {
        unimpl()
    }
    async fn restart_process(
        &self,
        _: Request<RestartProcessRequest>,
    ) -> Result<Response<RestartProcessReply>, Status> {
        unimpl()
    }

    async fn watch_config(
        &self,
        _: Request<WatchConfigRequest>,
    ) -> Result<Response<Self::WatchConfigStream>, Status> {
        self.watches.fetch_add(1, Ordering::SeqCst);
        let mut sub = self.section.subscribe();
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(async move {
            loop {
                let (revision, json, router) = sub.borrow_and_update().clone();
                let msg = ConfigSection {
                    revision,
                    json: json.to_string(),
                    router_json: router.to_string(),
                };
                if tx.send(Ok(msg)).await.is_err() || sub.changed().await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

// ---------------------------------------------------------------------------------------

/// Asks a protocol binary what oxr-routerd asks it (see [`crate::protocol`]):
/// runs `bin FLAG` (`--check-config` or `--config-schema`) with `stdin` and returns its
/// exit code and its stdout parsed as JSON. Panics, showing both outputs, when stdout is
/// not JSON: a test of these flags fails there.
pub fn ask_protocol_binary(bin: &Path, flag: &str, stdin: &str) -> (i32, serde_json::Value) {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let mut child = Command::new(bin)
        .arg(flag)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    // A binary that exits without reading stdin fails the write, not the test.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().expect("waiting for the binary");
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{} {flag}: stdout is not JSON ({e}): {}{}",
            bin.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}
