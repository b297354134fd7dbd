//! The `fastpath` backend: the kernel backend plus a client of oxr-fastpath
//! (`proto/dataplane.proto`).
//!
//! Every route goes to both. The kernel keeps the full FIB as the slow path: packets the
//! fast path hands to it (TTL expiry, unresolved neighbors, local destinations, anything
//! the engine cannot parse) are forwarded or answered by the kernel as if there were no fast
//! path, and traffic the router itself originates uses it; the kernel also keeps its own
//! connected and local routes, from which oxr-fastpath derives its own (the RIB does not
//! send connected routes). The fast path receives every route oxr-fea installs, and
//! forwards whatever it can resolve before the kernel sees it.
//!
//! The kernel's answer is the op's result. The same successful ops are mirrored, in order,
//! to a task that owns the Program stream to oxr-fastpath: on every (re)connection it
//! attaches the configured interfaces (all but loopback when none are listed) with the
//! configured engine and sends the whole mirror between `begin_sync` and `end_sync`, so a
//! restarted oxr-fastpath (or oxr-fea) converges to exactly the kernel's routes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use oxr_proto::dataplane::dataplane_client::DataplaneClient;
use oxr_proto::dataplane::{AttachRequest, DataplaneBatch, DataplaneNexthop, DataplaneRoute};
use oxr_proto::transport::{self, Address};
use oxr_proto::types::RouteAction;
use tokio::sync::mpsc;

use super::kernel::KernelBackend;
use super::{Action, BackendError, BackendOptions, BackendStatus, FibBackend, FibOp, Route};

/// Routes per Program batch during a resync.
const SYNC_CHUNK: usize = 8192;

/// What the backend tells its stream task.
#[derive(Debug)]
enum Mirror {
    /// Ops the kernel accepted.
    Ops(Vec<FibOp>),
    /// The routes found in the kernel at start (mirrored until the RIB's sync settles them).
    Reset(Vec<Route>),
}

/// State of the link to oxr-fastpath, shared with the task.
#[derive(Debug, Default)]
struct Link {
    connected: AtomicBool,
    resyncs: AtomicU64,
    batches: AtomicU64,
    failed: AtomicU64,
}

/// The kernel backend, mirrored to oxr-fastpath.
pub struct FastpathBackend {
    kernel: KernelBackend,
    tx: mpsc::UnboundedSender<Mirror>,
    link: Arc<Link>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FastpathBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastpathBackend")
            .field("link", &self.link)
            .finish_non_exhaustive()
    }
}

/// The wire form of a route.
pub fn route_to_dataplane(r: &Route) -> DataplaneRoute {
    DataplaneRoute {
        prefix: Some(r.prefix.into()),
        nexthops: r
            .nexthops
            .iter()
            .map(|n| DataplaneNexthop {
                gateway: n.gateway.map(Into::into),
                ifindex: n.ifindex,
            })
            .collect(),
        action: match r.action {
            Action::Forward => RouteAction::Forward,
            Action::Blackhole => RouteAction::Blackhole,
            Action::Reject => RouteAction::Reject,
        } as i32,
    }
}

/// The batches of a full resync of `routes`: the first has `begin_sync`, the last `end_sync`
/// (one batch with both when few), sequence numbers from `seq`.
pub fn sync_batches(routes: &BTreeMap<IpNet, Route>, seq: &mut u64) -> Vec<DataplaneBatch> {
    let all: Vec<&Route> = routes.values().collect();
    let mut out: Vec<DataplaneBatch> = all
        .chunks(SYNC_CHUNK)
        .map(|c| DataplaneBatch {
            add: c.iter().map(|r| route_to_dataplane(r)).collect(),
            ..Default::default()
        })
        .collect();
    if out.is_empty() {
        out.push(DataplaneBatch::default());
    }
    out[0].begin_sync = true;
    out.last_mut().expect("at least one batch").end_sync = true;
    for b in &mut out {
        *seq += 1;
        b.seq = *seq;
    }
    out
}

/// The batch for `ops` (applied to `mirror` too).
fn ops_batch(ops: Vec<FibOp>, mirror: &mut BTreeMap<IpNet, Route>) -> DataplaneBatch {
    let mut b = DataplaneBatch::default();
    for op in ops {
        match op {
            FibOp::Add(r) => {
                b.add.push(route_to_dataplane(&r));
                mirror.insert(r.prefix, r);
            }
            FibOp::Delete(p) => {
                b.delete.push(p.into());
                mirror.remove(&p);
            }
        }
    }
    b
}

fn absorb(m: Mirror, mirror: &mut BTreeMap<IpNet, Route>) -> Option<DataplaneBatch> {
    match m {
        Mirror::Ops(ops) => Some(ops_batch(ops, mirror)),
        Mirror::Reset(routes) => {
            mirror.clear();
            mirror.extend(routes.into_iter().map(|r| (r.prefix, r)));
            None
        }
    }
}

/// The interfaces to attach: the configured ones, or `*` (every interface but loopback,
/// including those created later: oxr-fastpath attaches them as they appear).
fn interfaces(configured: &[String]) -> Vec<String> {
    if !configured.is_empty() {
        return configured.to_vec();
    }
    vec!["*".to_string()]
}

async fn stream_task(
    addr: Address,
    cfg: oxr_config::FastpathConfig,
    mut rx: mpsc::UnboundedReceiver<Mirror>,
    link: Arc<Link>,
) {
    let engine = match cfg.engine {
        oxr_config::FastpathEngine::Xdp => "xdp",
        oxr_config::FastpathEngine::Afxdp => "afxdp",
    };
    let mut mirror: BTreeMap<IpNet, Route> = BTreeMap::new();
    let mut seq = 0u64;
    let mut backoff = Duration::from_millis(100);
    loop {
        while let Ok(m) = rx.try_recv() {
            absorb(m, &mut mirror);
        }
        let mut client = DataplaneClient::new(transport::connect_lazy(&addr))
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20);
        // Attach first: a failed attach is logged and retried at the next reconnection,
        // routes are programmed regardless.
        let mut reachable = true;
        for name in interfaces(&cfg.interfaces) {
            match client
                .attach(AttachRequest {
                    interface: name.clone(),
                    engine: engine.into(),
                    busy_poll_usecs: cfg.busy_poll_usecs,
                })
                .await
            {
                Ok(r) if r.get_ref().ok => {}
                Ok(r) => {
                    tracing::warn!(interface = %name, error = %r.get_ref().error, "fast path attach failed")
                }
                Err(e) => {
                    tracing::debug!(error = %e, "oxr-fastpath not reachable");
                    reachable = false;
                    break;
                }
            }
        }
        if reachable {
            let (out_tx, out_rx) = mpsc::channel::<DataplaneBatch>(16);
            let sync = sync_batches(&mirror, &mut seq);
            let n = mirror.len();
            match client
                .program(tokio_stream::wrappers::ReceiverStream::new(out_rx))
                .await
            {
                Ok(resp) => {
                    let mut acks = resp.into_inner();
                    let mut ok = true;
                    for b in sync {
                        if out_tx.send(b).await.is_err() {
                            ok = false;
                            break;
                        }
                    }
                    if ok {
                        link.connected.store(true, Ordering::Relaxed);
                        link.resyncs.fetch_add(1, Ordering::Relaxed);
                        backoff = Duration::from_millis(100);
                        tracing::info!(routes = n, "fast path synchronised");
                        loop {
                            tokio::select! {
                                m = rx.recv() => {
                                    let Some(m) = m else { return };
                                    if let Some(mut b) = absorb(m, &mut mirror) {
                                        seq += 1;
                                        b.seq = seq;
                                        if out_tx.send(b).await.is_err() {
                                            break;
                                        }
                                    }
                                }
                                a = acks.message() => match a {
                                    Ok(Some(a)) => {
                                        link.batches.fetch_add(1, Ordering::Relaxed);
                                        if a.failed > 0 {
                                            link.failed.fetch_add(u64::from(a.failed), Ordering::Relaxed);
                                            tracing::warn!(seq = a.seq, failed = a.failed, "fast path refused routes");
                                        }
                                    }
                                    _ => break,
                                },
                            }
                        }
                        tracing::warn!("lost oxr-fastpath: reconnecting and resynchronising");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "Program stream"),
            }
        }
        link.connected.store(false, Ordering::Relaxed);
        // Keep absorbing ops while waiting, so the next resync is current.
        let sleep = tokio::time::sleep(backoff);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                m = rx.recv() => match m {
                    Some(m) => { absorb(m, &mut mirror); }
                    None => return,
                },
            }
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

impl FastpathBackend {
    /// Opens the kernel backend and starts the stream task (needs a tokio runtime).
    pub fn open(opts: &BackendOptions) -> Result<Self, BackendError> {
        let Some(addr) = opts.fastpath_address.clone() else {
            return Err(BackendError::NotImplemented(
                "fastpath without an oxr-fastpath address (no run directory)",
            ));
        };
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| BackendError::NotImplemented("fastpath outside a tokio runtime"))?;
        let kernel = KernelBackend::open(opts)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let link = Arc::new(Link::default());
        let task = handle.spawn(stream_task(addr, opts.fastpath.clone(), rx, link.clone()));
        Ok(FastpathBackend {
            kernel,
            tx,
            link,
            task,
        })
    }

    /// Whether the Program stream to oxr-fastpath is up.
    pub fn connected(&self) -> bool {
        self.link.connected.load(Ordering::Relaxed)
    }
}

impl Drop for FastpathBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FibBackend for FastpathBackend {
    fn name(&self) -> &'static str {
        "fastpath"
    }

    fn apply(&mut self, ops: &[FibOp]) -> Vec<Result<(), String>> {
        let results = self.kernel.apply(ops);
        let ok: Vec<FibOp> = ops
            .iter()
            .zip(&results)
            .filter(|(_, r)| r.is_ok())
            .map(|(o, _)| o.clone())
            .collect();
        if !ok.is_empty() {
            let _ = self.tx.send(Mirror::Ops(ok));
        }
        results
    }

    fn load_existing(&mut self) -> Result<usize, BackendError> {
        let n = self.kernel.load_existing()?;
        let _ = self.tx.send(Mirror::Reset(self.kernel.routes()));
        Ok(n)
    }

    fn routes_page(&self, after: Option<&IpNet>, limit: usize) -> Vec<Route> {
        self.kernel.routes_page(after, limit)
    }

    fn sync_begin(&mut self) {
        self.kernel.sync_begin();
    }

    fn stale_page(&self, after: Option<&IpNet>, limit: usize) -> Vec<IpNet> {
        self.kernel.stale_page(after, limit)
    }

    fn get(&self, prefix: &IpNet) -> Option<Route> {
        self.kernel.get(prefix)
    }

    fn is_unconfirmed(&self, prefix: &IpNet) -> bool {
        self.kernel.is_unconfirmed(prefix)
    }

    fn status(&self) -> BackendStatus {
        BackendStatus {
            backend: if self.connected() {
                "fastpath (connected)".into()
            } else {
                "fastpath (oxr-fastpath not connected)".into()
            },
            ..self.kernel.status()
        }
    }

    fn set_batch(&mut self, messages: usize) {
        self.kernel.set_batch(messages);
    }
}

#[cfg(test)]
mod tests {
    use super::super::Nexthop;
    use super::*;

    fn route(p: &str) -> Route {
        Route {
            prefix: p.parse().unwrap(),
            nexthops: vec![Nexthop {
                gateway: Some("10.0.0.2".parse().unwrap()),
                ifindex: 3,
                weight: 1,
            }],
            action: Action::Forward,
            metric: 0,
            protocol: "static".into(),
        }
    }

    #[test]
    fn opening_without_an_address_fails_with_a_clear_error() {
        let err = FastpathBackend::open(&BackendOptions::default()).unwrap_err();
        assert!(err.to_string().contains("oxr-fastpath address"), "{err}");
    }

    #[test]
    fn a_resync_brackets_every_route_and_numbers_batches() {
        let mut m = BTreeMap::new();
        let mut seq = 10;
        let b = sync_batches(&m, &mut seq);
        assert_eq!(b.len(), 1);
        assert!(b[0].begin_sync && b[0].end_sync && b[0].add.is_empty());
        for i in 0..(SYNC_CHUNK + 5) {
            let r = route(&format!("10.{}.{}.0/24", i / 256, i % 256));
            m.insert(r.prefix, r);
        }
        let b = sync_batches(&m, &mut seq);
        assert_eq!(b.len(), 2);
        assert!(b[0].begin_sync && !b[0].end_sync);
        assert!(!b[1].begin_sync && b[1].end_sync);
        assert_eq!(b[0].add.len() + b[1].add.len(), SYNC_CHUNK + 5);
        assert_eq!((b[0].seq, b[1].seq), (12, 13));
    }

    #[test]
    fn mirrored_ops_update_the_mirror_and_carry_the_wire_form() {
        let mut m = BTreeMap::new();
        let b = absorb(
            Mirror::Ops(vec![
                FibOp::Add(route("192.0.2.0/24")),
                FibOp::Delete("198.51.100.0/24".parse().unwrap()),
            ]),
            &mut m,
        )
        .unwrap();
        assert_eq!((b.add.len(), b.delete.len()), (1, 1));
        assert_eq!(b.add[0].nexthops[0].ifindex, 3);
        assert_eq!(m.len(), 1);
        assert!(absorb(Mirror::Reset(vec![]), &mut m).is_none());
        assert!(m.is_empty());
    }
}
