//! The process's state ([`Core`]: tables + engine) and its gRPC faces: `oxr.dataplane.Dataplane`
//! for oxr-fea and the generic show service (`show fastpath ...`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use ipnet::IpNet;
use oxr_proto::convert::req_prefix;
use oxr_proto::dataplane::dataplane_server::Dataplane;
use oxr_proto::dataplane::{
    AttachReply, AttachRequest, CountersReply, CountersRequest, DataplaneAck, DataplaneBatch,
    DataplaneNexthop, DataplaneRoute, DetachRequest,
};
use oxr_proto::types::RouteAction;
use oxr_sdk::process::{ShowHandler, ShowOutput};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::engine::{Engine, NullEngine};
use crate::tables::{Batch, EngineOp, FeaRoute, NhKey, NhKind, Tables};

/// Builds an engine by name.
pub type EngineFactory = dyn Fn(&str) -> Result<Box<dyn Engine>, String> + Send + Sync;

/// Tables, the engine, and what is attached.
pub struct Core {
    pub tables: Tables,
    pub engine: Box<dyn Engine>,
    /// Attached interfaces: name -> ifindex.
    pub attached: BTreeMap<String, u32>,
    /// Engine updates that failed.
    pub engine_errors: u64,
    /// Interfaces asked for by name: attached now, or as soon as they appear.
    pub wanted: std::collections::BTreeSet<String>,
    /// `*` was asked for: every non-loopback interface, including those created later.
    pub want_all: bool,
    /// Busy polling asked for by the last Attach (afxdp), microseconds.
    pub busy_poll_us: u32,
    factory: Arc<EngineFactory>,
}

/// The interface name that asks for every non-loopback interface.
pub const ALL_INTERFACES: &str = "*";

impl Core {
    /// Empty state; engines are made by `factory` on the first Attach.
    pub fn new(factory: Arc<EngineFactory>) -> Self {
        Core {
            tables: Tables::new(),
            engine: Box::new(NullEngine),
            attached: BTreeMap::new(),
            engine_errors: 0,
            wanted: Default::default(),
            want_all: false,
            busy_poll_us: 0,
            factory,
        }
    }

    /// Hands table changes to the engine.
    pub fn apply(&mut self, ops: &[EngineOp]) {
        if !ops.is_empty() {
            self.engine_errors += self.engine.apply(ops) as u64;
        }
    }

    /// Attaches `interface` with `engine` ("xdp", "afxdp"); the first attach (or one after
    /// everything was detached) chooses the engine. The interface is remembered: one that
    /// does not exist yet is attached when it appears (and again if it is re-created);
    /// [`ALL_INTERFACES`] asks for every non-loopback interface, present and future.
    pub fn attach(&mut self, interface: &str, engine: &str) -> Result<(), String> {
        self.load_engine(engine)?;
        if interface == ALL_INTERFACES {
            self.want_all = true;
            let all: Vec<(u32, String)> = self
                .tables
                .links()
                .iter()
                .filter(|(_, l)| !l.loopback)
                .map(|(i, l)| (*i, l.name.clone()))
                .collect();
            let mut failed = Vec::new();
            for (ifindex, name) in all {
                if let Err(e) = self.attach_link(ifindex, &name) {
                    failed.push(format!("{name}: {e}"));
                }
            }
            return if failed.is_empty() {
                Ok(())
            } else {
                Err(failed.join("; "))
            };
        }
        self.wanted.insert(interface.to_string());
        let Some(ifindex) = self
            .tables
            .links()
            .iter()
            .find(|(_, l)| l.name == interface)
            .map(|(i, _)| *i)
        else {
            tracing::info!(interface, "not present yet: attached when it appears");
            return Ok(());
        };
        self.attach_link(ifindex, interface)
    }

    /// Makes `engine` the engine (programmed with the whole table) unless it already is.
    fn load_engine(&mut self, engine: &str) -> Result<(), String> {
        if self.engine.name() != engine {
            if !self.attached.is_empty() {
                return Err(format!(
                    "engine {} is attached to {}; detach them before switching to {engine}",
                    self.engine.name(),
                    self.attached.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            let mut e = (self.factory)(engine)?;
            let failed = e.apply(&self.tables.full_ops());
            self.engine_errors += failed as u64;
            self.engine = e;
            tracing::info!(engine, "engine loaded");
        }
        self.engine.set_busy_poll(self.busy_poll_us);
        Ok(())
    }

    fn attach_link(&mut self, ifindex: u32, interface: &str) -> Result<(), String> {
        if self.attached.get(interface) == Some(&ifindex) {
            return Ok(());
        }
        if let Some(old) = self.attached.remove(interface) {
            // Same name, new ifindex: the interface was re-created.
            let _ = self.engine.detach(old);
        }
        self.engine.attach(ifindex, interface)?;
        self.attached.insert(interface.to_string(), ifindex);
        tracing::info!(interface, ifindex, engine = self.engine.name(), "attached");
        Ok(())
    }

    /// Detaches `interface` (absent is fine) and forgets it; [`ALL_INTERFACES`] detaches
    /// every interface not also asked for by name.
    pub fn detach(&mut self, interface: &str) -> Result<(), String> {
        if interface == ALL_INTERFACES {
            self.want_all = false;
            let extra: Vec<String> = self
                .attached
                .keys()
                .filter(|n| !self.wanted.contains(*n))
                .cloned()
                .collect();
            for n in extra {
                self.detach(&n)?;
            }
            return Ok(());
        }
        self.wanted.remove(interface);
        if let Some(ifindex) = self.attached.remove(interface) {
            self.engine.detach(ifindex)?;
            tracing::info!(interface, "detached");
        }
        Ok(())
    }

    /// An interface appeared, changed (`Some`) or went away (`None`): updates the tables
    /// and the engine, attaches an interface that is asked for and not attached yet (no
    /// resync needed: the engine already holds every route), and forgets the attachment
    /// of one that is gone.
    pub fn set_link(&mut self, ifindex: u32, link: Option<crate::tables::Link>) {
        let ops = self.tables.set_link(ifindex, link.clone());
        self.apply(&ops);
        match link {
            Some(l) => {
                let wanted = self.wanted.contains(&l.name) || (self.want_all && !l.loopback);
                if wanted
                    && self.engine.name() != "none"
                    && self.attached.get(&l.name) != Some(&ifindex)
                {
                    if let Err(e) = self.attach_link(ifindex, &l.name) {
                        tracing::warn!(interface = %l.name, error = %e, "attaching a new interface");
                    }
                }
            }
            None => {
                let gone: Vec<String> = self
                    .attached
                    .iter()
                    .filter(|(_, i)| **i == ifindex)
                    .map(|(n, _)| n.clone())
                    .collect();
                for n in gone {
                    self.attached.remove(&n);
                    let _ = self.engine.detach(ifindex);
                    tracing::info!(interface = %n, "interface gone: detached");
                }
            }
        }
    }

    /// Every counter: the engine's outcomes and the tables' control counters.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        let mut c = self.engine.counters();
        let t = self.tables.counters();
        c.insert("ctl_batches".into(), t.batches);
        c.insert("ctl_routes_applied".into(), t.routes_applied);
        c.insert("ctl_route_errors".into(), t.route_errors);
        c.insert("ctl_syncs_completed".into(), t.syncs_completed);
        c.insert("ctl_neighbor_updates".into(), t.neighbor_updates);
        c.insert("ctl_engine_errors".into(), self.engine_errors);
        c
    }

    /// Bytes of the LPM tables plus the engine's structures.
    pub fn memory_bytes(&self) -> u64 {
        self.tables.lpm_memory_bytes() as u64 + self.engine.memory_bytes()
    }
}

/// The shared state.
pub type Shared = Arc<Mutex<Core>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Core> {
    // A panic while holding the lock leaves tables that are still consistent enough to
    // show and resync; keep serving.
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// Decodes one wire route; `None` if it is malformed.
pub fn decode_route(r: &DataplaneRoute) -> Option<FeaRoute> {
    let prefix = req_prefix(r.prefix.as_ref(), "prefix").ok()?;
    // A path the fast path can forward on; `Kernel` for one it cannot (no interface).
    let path = |nh: &DataplaneNexthop| -> Option<NhKey> {
        if nh.ifindex == 0 {
            return Some(NhKey::special(NhKind::Kernel));
        }
        Some(match &nh.gateway {
            Some(g) => NhKey {
                kind: NhKind::Gateway(IpAddr::try_from(g).ok()?),
                ifindex: nh.ifindex,
            },
            None => NhKey {
                kind: NhKind::Direct,
                ifindex: nh.ifindex,
            },
        })
    };
    let mut ecmp = Vec::new();
    let nexthop = match RouteAction::try_from(r.action).unwrap_or(RouteAction::Forward) {
        RouteAction::Blackhole => NhKey::special(NhKind::Blackhole),
        RouteAction::Reject => NhKey::special(NhKind::Kernel),
        // ECMP: every path goes into a group the engines pick from by flow hash; a route
        // with any path the fast path cannot use is left whole to the kernel.
        RouteAction::Forward => match r.nexthops.split_first() {
            Some((first, rest)) => {
                let first = path(first)?;
                for nh in rest {
                    ecmp.push(path(nh)?);
                }
                if first.kind == NhKind::Kernel || ecmp.iter().any(|k| k.kind == NhKind::Kernel) {
                    ecmp.clear();
                    NhKey::special(NhKind::Kernel)
                } else {
                    first
                }
            }
            None => NhKey::special(NhKind::Kernel),
        },
    };
    Some(FeaRoute {
        prefix,
        nexthop,
        ecmp,
    })
}

/// Decodes a wire batch.
pub fn decode_batch(b: &DataplaneBatch) -> Batch {
    let mut out = Batch {
        seq: b.seq,
        begin_sync: b.begin_sync,
        end_sync: b.end_sync,
        ..Default::default()
    };
    for r in &b.add {
        match decode_route(r) {
            Some(r) => out.add.push(r),
            None => out.invalid += 1,
        }
    }
    for p in &b.delete {
        match IpNet::try_from(p) {
            Ok(p) => out.delete.push(p),
            Err(_) => out.invalid += 1,
        }
    }
    out
}

/// Applies a wire batch under the lock; returns its ack.
pub fn program(shared: &Shared, b: &DataplaneBatch) -> DataplaneAck {
    let batch = decode_batch(b);
    let mut core = lock(shared);
    let ((applied, failed), ops) = core.tables.apply_batch(&batch);
    core.apply(&ops);
    DataplaneAck {
        seq: b.seq,
        applied,
        failed,
    }
}

/// `oxr.dataplane.Dataplane`.
pub struct DataplaneService {
    shared: Shared,
}

impl DataplaneService {
    /// Serves `shared`.
    pub fn new(shared: Shared) -> Self {
        DataplaneService { shared }
    }
}

#[tonic::async_trait]
impl Dataplane for DataplaneService {
    type ProgramStream = ReceiverStream<Result<DataplaneAck, Status>>;

    async fn program(
        &self,
        req: Request<Streaming<DataplaneBatch>>,
    ) -> Result<Response<Self::ProgramStream>, Status> {
        let mut inbound = req.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            while let Some(Ok(b)) = inbound.next().await {
                let s = shared.clone();
                // Map updates are system calls; a full table takes a while: off the runtime.
                let ack = match tokio::task::spawn_blocking(move || program(&s, &b)).await {
                    Ok(a) => a,
                    Err(e) => {
                        let _ = tx.send(Err(Status::internal(e.to_string()))).await;
                        return;
                    }
                };
                if tx.send(Ok(ack)).await.is_err() {
                    return;
                }
            }
            tracing::info!("Program stream closed");
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn attach(&self, req: Request<AttachRequest>) -> Result<Response<AttachReply>, Status> {
        let r = req.into_inner();
        let s = self.shared.clone();
        let res = tokio::task::spawn_blocking(move || {
            let mut core = lock(&s);
            core.busy_poll_us = r.busy_poll_usecs;
            core.attach(&r.interface, &r.engine)
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(reply(res)))
    }

    async fn detach(&self, req: Request<DetachRequest>) -> Result<Response<AttachReply>, Status> {
        let r = req.into_inner();
        let s = self.shared.clone();
        let res = tokio::task::spawn_blocking(move || lock(&s).detach(&r.interface))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(reply(res)))
    }

    async fn counters(
        &self,
        _: Request<CountersRequest>,
    ) -> Result<Response<CountersReply>, Status> {
        let core = lock(&self.shared);
        Ok(Response::new(CountersReply {
            engine: core.engine.name().to_string(),
            interfaces: core.attached.keys().cloned().collect(),
            counters: core.counters().into_iter().collect(),
            routes: core.tables.route_count() as u64,
            memory_bytes: core.memory_bytes(),
        }))
    }
}

fn reply(r: Result<(), String>) -> AttachReply {
    match r {
        Ok(()) => AttachReply {
            ok: true,
            error: String::new(),
        },
        Err(error) => AttachReply { ok: false, error },
    }
}

fn mac_text(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn nh_text(core: &Core, nh: &NhKey) -> String {
    let ifname = |i: u32| {
        core.tables
            .links()
            .get(&i)
            .map_or_else(|| format!("if{i}"), |l| l.name.clone())
    };
    match nh.kind {
        NhKind::Gateway(g) => format!("via {g} dev {}", ifname(nh.ifindex)),
        NhKind::Direct => format!("dev {}", ifname(nh.ifindex)),
        NhKind::Local => "local".into(),
        NhKind::Blackhole => "blackhole".into(),
        NhKind::Kernel => "to kernel".into(),
        NhKind::Group(gid) => {
            let paths: Vec<String> = core
                .tables
                .group(gid)
                .unwrap_or_default()
                .iter()
                .filter_map(|id| core.tables.nexthop(*id))
                .map(|m| nh_text(core, &m))
                .collect();
            format!("ecmp group {gid}: {}", paths.join(", "))
        }
    }
}

/// `show fastpath`, `show fastpath routes`, `show fastpath neighbors`.
pub struct FastpathShow {
    shared: Shared,
}

impl FastpathShow {
    /// Shows `shared`.
    pub fn new(shared: Shared) -> Self {
        FastpathShow { shared }
    }
}

/// The summary as text and JSON.
pub fn summary(core: &Core) -> ShowOutput {
    let counters = core.counters();
    let mut text = format!(
        "Engine:      {}{}\nInterfaces:  {}\nRoutes:      {} ({} from oxr-fea, the rest connected/local)\n\
         Next hops:   {} ({} ECMP groups)\nNeighbors:   {}\nMemory:      {} bytes (LPM tables {} + engine {})\n\nCounters:\n",
        core.engine.name(),
        match core.engine.mode() {
            m if m.is_empty() => String::new(),
            m => format!(" ({m})"),
        },
        if core.attached.is_empty() {
            "-".to_string()
        } else {
            core.attached.keys().cloned().collect::<Vec<_>>().join(", ")
        },
        core.tables.route_count(),
        core.tables.fea_route_count(),
        core.tables.nexthop_count(),
        core.tables.group_count(),
        core.tables.neighbors().len(),
        core.memory_bytes(),
        core.tables.lpm_memory_bytes(),
        core.engine.memory_bytes(),
    );
    for (k, v) in &counters {
        text.push_str(&format!("  {k:<22} {v}\n"));
    }
    let json = serde_json::json!({
        "engine": core.engine.name(),
        "engine_mode": core.engine.mode(),
        "interfaces": core.attached,
        "routes": core.tables.route_count(),
        "fea_routes": core.tables.fea_route_count(),
        "nexthops": core.tables.nexthop_count(),
        "ecmp_groups": core.tables.group_count(),
        "neighbors": core.tables.neighbors().len(),
        "memory_bytes": core.memory_bytes(),
        "lpm_memory_bytes": core.tables.lpm_memory_bytes(),
        "counters": counters,
    });
    ShowOutput { text, json }
}

#[tonic::async_trait]
impl ShowHandler for FastpathShow {
    fn commands(&self) -> Vec<(Vec<&'static str>, &'static str)> {
        vec![
            (
                vec!["fastpath"],
                "Fast path: engine, attached interfaces, counters, routes, memory",
            ),
            (vec!["fastpath", "routes"], "Fast-path routes and next hops"),
            (
                vec!["fastpath", "neighbors"],
                "Neighbors mirrored from the kernel",
            ),
        ]
    }

    async fn show(&self, words: &[String]) -> Result<ShowOutput, String> {
        let core = lock(&self.shared);
        let sub: Vec<&str> = words.iter().map(String::as_str).collect();
        match sub.as_slice() {
            ["fastpath"] => Ok(summary(&core)),
            ["fastpath", "routes"] => {
                let mut text = format!("{:<44} {:>5}  next hop\n", "prefix", "nh");
                let mut rows = Vec::new();
                for (p, id, nh) in core.tables.routes() {
                    let n = nh_text(&core, &nh);
                    text.push_str(&format!("{:<44} {:>5}  {n}\n", p.to_string(), id));
                    rows.push(serde_json::json!({"prefix": p, "nexthop_id": id, "nexthop": nh}));
                }
                Ok(ShowOutput {
                    text,
                    json: serde_json::Value::Array(rows),
                })
            }
            ["fastpath", "neighbors"] => {
                let mut text = format!("{:<40} {:<12} mac\n", "address", "interface");
                let mut rows = Vec::new();
                for ((i, a), m) in core.tables.neighbors() {
                    let name = core
                        .tables
                        .links()
                        .get(i)
                        .map_or_else(|| format!("if{i}"), |l| l.name.clone());
                    text.push_str(&format!(
                        "{:<40} {:<12} {}\n",
                        a.to_string(),
                        name,
                        mac_text(m)
                    ));
                    rows.push(
                        serde_json::json!({"address": a, "interface": name, "mac": mac_text(m)}),
                    );
                }
                Ok(ShowOutput {
                    text,
                    json: serde_json::Value::Array(rows),
                })
            }
            _ => Err(format!("unknown command: show {}", words.join(" "))),
        }
    }

    async fn metrics(&self) -> String {
        let core = lock(&self.shared);
        let mut out = String::from("# TYPE oxr_fastpath_events_total counter\n");
        for (k, v) in core.counters() {
            out.push_str(&format!("oxr_fastpath_events_total{{event=\"{k}\"}} {v}\n"));
        }
        out.push_str(&format!(
            "# TYPE oxr_fastpath_routes gauge\noxr_fastpath_routes {}\n\
             # TYPE oxr_fastpath_memory_bytes gauge\noxr_fastpath_memory_bytes {}\n",
            core.tables.route_count(),
            core.memory_bytes()
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Arc::new(Mutex::new(Core::new(Arc::new(|name: &str| {
            Err(format!("no engine {name} in tests"))
        }))))
    }

    fn route(p: &str, gw: Option<&str>, ifindex: u32) -> DataplaneRoute {
        DataplaneRoute {
            prefix: Some(p.parse::<IpNet>().unwrap().into()),
            nexthops: vec![DataplaneNexthop {
                gateway: gw.map(|g| g.parse::<IpAddr>().unwrap().into()),
                ifindex,
            }],
            action: RouteAction::Forward as i32,
        }
    }

    #[test]
    fn decoding_maps_actions_and_next_hops() {
        let r = decode_route(&route("10.0.0.0/8", Some("10.1.1.1"), 3)).unwrap();
        assert_eq!(r.nexthop.kind, NhKind::Gateway("10.1.1.1".parse().unwrap()));
        let r = decode_route(&route("10.0.0.0/8", None, 3)).unwrap();
        assert_eq!(r.nexthop.kind, NhKind::Direct);
        // A gateway without interface cannot be forwarded by the fast path.
        let r = decode_route(&route("10.0.0.0/8", Some("10.1.1.1"), 0)).unwrap();
        assert_eq!(r.nexthop.kind, NhKind::Kernel);
        let mut b = route("10.0.0.0/8", None, 3);
        b.action = RouteAction::Blackhole as i32;
        assert_eq!(decode_route(&b).unwrap().nexthop.kind, NhKind::Blackhole);
        let mut bad = route("10.0.0.0/8", None, 3);
        bad.prefix = None;
        assert!(decode_route(&bad).is_none());
        let batch = decode_batch(&DataplaneBatch {
            seq: 4,
            add: vec![bad, route("10.0.0.0/8", None, 3)],
            ..Default::default()
        });
        assert_eq!((batch.invalid, batch.add.len()), (1, 1));
    }

    #[tokio::test]
    async fn program_acks_and_show_lists_routes() {
        let s = shared();
        let ack = program(
            &s,
            &DataplaneBatch {
                seq: 9,
                add: vec![route("192.0.2.0/24", Some("10.0.0.2"), 3)],
                begin_sync: true,
                end_sync: true,
                ..Default::default()
            },
        );
        assert_eq!((ack.seq, ack.applied, ack.failed), (9, 1, 0));
        let show = FastpathShow::new(s.clone());
        let out = show.show(&["fastpath".into()]).await.unwrap();
        assert_eq!(out.json["routes"], 1);
        assert_eq!(out.json["engine"], "none");
        let out = show
            .show(&["fastpath".into(), "routes".into()])
            .await
            .unwrap();
        assert!(out.text.contains("192.0.2.0/24"), "{}", out.text);
        assert!(out.text.contains("via 10.0.0.2 dev if3"), "{}", out.text);
        assert!(show.show(&["fastpath".into(), "x".into()]).await.is_err());
        // Attach needs an engine the factory can build.
        let e = lock(&s).attach("nope0", "xdp").unwrap_err();
        assert!(e.contains("no engine xdp"), "{e}");
        assert!(show.metrics().await.contains("oxr_fastpath_routes 1"));
    }
    /// An engine that records what it is asked to attach.
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl Engine for Recorder {
        fn name(&self) -> &'static str {
            "xdp"
        }
        fn attach(&mut self, ifindex: u32, name: &str) -> Result<(), String> {
            self.0.lock().unwrap().push(format!("+{name}/{ifindex}"));
            Ok(())
        }
        fn detach(&mut self, ifindex: u32) -> Result<(), String> {
            self.0.lock().unwrap().push(format!("-{ifindex}"));
            Ok(())
        }
        fn apply(&mut self, _: &[EngineOp]) -> usize {
            0
        }
        fn counters(&self) -> BTreeMap<String, u64> {
            BTreeMap::new()
        }
        fn memory_bytes(&self) -> u64 {
            0
        }
    }

    fn link(name: &str, loopback: bool) -> crate::tables::Link {
        crate::tables::Link {
            name: name.into(),
            mtu: 1500,
            up: true,
            loopback,
            ..Default::default()
        }
    }

    #[test]
    fn interfaces_that_appear_later_are_attached_as_asked() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let mut core = Core::new(Arc::new(move |_: &str| {
            Ok(Box::new(Recorder(l.clone())) as Box<dyn Engine>)
        }));
        core.set_link(1, Some(link("lo", true)));
        core.set_link(2, Some(link("eth0", false)));
        // By name, before the interface exists: attached when it appears, and again when
        // it is re-created with a new ifindex.
        core.attach("eth9", "xdp").unwrap();
        assert!(core.attached.is_empty());
        core.set_link(9, Some(link("eth9", false)));
        core.set_link(9, Some(link("eth9", false)));
        core.set_link(9, None);
        core.set_link(10, Some(link("eth9", false)));
        assert_eq!(*log.lock().unwrap(), ["+eth9/9", "-9", "+eth9/10"]);
        // Everything: present interfaces but loopback now, future ones as they appear.
        log.lock().unwrap().clear();
        core.attach(ALL_INTERFACES, "xdp").unwrap();
        core.set_link(11, Some(link("veth7", false)));
        assert_eq!(*log.lock().unwrap(), ["+eth0/2", "+veth7/11"]);
        assert_eq!(core.attached.len(), 3);
        // Detaching `*` keeps what was asked for by name.
        core.detach(ALL_INTERFACES).unwrap();
        assert_eq!(core.attached.keys().collect::<Vec<_>>(), ["eth9"]);
        core.set_link(12, Some(link("veth8", false)));
        assert_eq!(core.attached.len(), 1);
    }
}
