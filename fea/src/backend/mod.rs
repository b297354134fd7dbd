//! Forwarding backends: where the FIB goes. One trait, three implementations:
//! [`kernel`] (Linux FIB over rtnetlink), [`none`] (in memory) and [`fastpath`] (the kernel
//! plus the oxr-fastpath plugin).

pub mod fastpath;
pub mod kernel;
pub mod none;

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Serialize;

/// One way out of a route, resolved: a gateway (or none: on-link) and an interface.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Nexthop {
    pub gateway: Option<IpAddr>,
    /// Outgoing interface; required by the kernel backend for every next hop.
    pub ifindex: u32,
    /// ECMP weight, 1..=256.
    pub weight: u16,
}

/// What a route does with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Forward,
    /// Drop silently (RTN_BLACKHOLE).
    Blackhole,
    /// Drop with ICMP unreachable (RTN_UNREACHABLE).
    Reject,
}

/// A FIB route as the backends take and report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    pub prefix: IpNet,
    pub nexthops: Vec<Nexthop>,
    pub action: Action,
    /// The RIB's metric; informational (the kernel route is installed at the table's
    /// default priority so that oxr owns exactly one route per prefix).
    pub metric: u32,
    /// Origin protocol in the RIB (informational).
    pub protocol: String,
}

/// One change for a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FibOp {
    /// Install or replace the route for its prefix.
    Add(Route),
    /// Remove oxr's route for the prefix (absent counts as done).
    Delete(IpNet),
}

impl FibOp {
    /// The prefix the op is about.
    pub fn prefix(&self) -> IpNet {
        match self {
            FibOp::Add(r) => r.prefix,
            FibOp::Delete(p) => *p,
        }
    }
}

/// Counts a backend reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BackendStatus {
    pub backend: String,
    pub routes_ipv4: u64,
    pub routes_ipv6: u64,
    pub nexthop_objects: u64,
    pub nexthop_groups: u64,
    /// Routes found in the forwarding plane at start and not yet re-sent by the RIB.
    pub unconfirmed: u64,
    /// Netlink messages sent / `sendmsg` calls made (kernel backend).
    pub messages: u64,
    pub sends: u64,
}

/// Errors opening or loading a backend.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Netlink(#[from] crate::netlink::NlError),
    #[error("backend `{0}` is not implemented yet")]
    NotImplemented(&'static str),
}

/// A forwarding plane the FEA programs. Synchronous: the kernel backend blocks on netlink,
/// so callers run it on a blocking thread.
pub trait FibBackend: Send {
    /// "kernel", "none", "fastpath".
    fn name(&self) -> &'static str;

    /// Applies `ops` in order; one result per op. An add identical to what is installed
    /// sends nothing.
    fn apply(&mut self, ops: &[FibOp]) -> Vec<Result<(), String>>;

    /// Reads the routes oxr left in the forwarding plane (previous run) into the state as
    /// unconfirmed, without changing them. Returns how many routes were found.
    fn load_existing(&mut self) -> Result<usize, BackendError>;

    /// Up to `limit` routes after `after` (exclusive; `None`: from the first), sorted by
    /// prefix (IPv4 first): pages through a full table without copying it.
    fn routes_page(&self, after: Option<&IpNet>, limit: usize) -> Vec<Route>;

    /// Every route, sorted by prefix (a full copy: for tests and small tables).
    fn routes(&self) -> Vec<Route> {
        self.routes_page(None, usize::MAX)
    }

    /// The route for exactly `prefix`.
    fn get(&self, prefix: &IpNet) -> Option<Route>;

    /// Every prefix held (a full copy: for tests and small tables).
    fn prefixes(&self) -> Vec<IpNet> {
        self.routes().into_iter().map(|r| r.prefix).collect()
    }

    /// Opens a resynchronisation: from now on every added prefix is marked re-sent.
    fn sync_begin(&mut self);

    /// Up to `limit` prefixes after `after` (exclusive) held but not re-sent since the last
    /// [`FibBackend::sync_begin`].
    fn stale_page(&self, after: Option<&IpNet>, limit: usize) -> Vec<IpNet>;

    /// Whether the route for `prefix` came from the forwarding plane at start and has not
    /// been re-sent yet.
    fn is_unconfirmed(&self, _prefix: &IpNet) -> bool {
        false
    }

    /// Counts.
    fn status(&self) -> BackendStatus;

    /// Messages per `sendmsg` (kernel backend); others ignore it.
    fn set_batch(&mut self, _messages: usize) {}
}

/// Slot flag of a route added since the last [`FibBackend::sync_begin`].
pub const SYNC_MARK: u8 = 0x02;

/// Prefixes of `map` after `after` without [`SYNC_MARK`], at most `limit`.
pub fn unmarked_page(
    map: &crate::table::PrefixMap,
    after: Option<&IpNet>,
    limit: usize,
) -> Vec<IpNet> {
    let mut out = Vec::new();
    let mut cursor = after.copied();
    // Pages of the map, filtered, until `limit` stale ones or the end.
    loop {
        let page = map.page(cursor.as_ref(), 4096);
        let Some(last) = page.last() else {
            return out;
        };
        cursor = Some(last.0);
        for (p, s) in page {
            if s.flags & SYNC_MARK == 0 {
                out.push(p);
                if out.len() >= limit {
                    return out;
                }
            }
        }
    }
}

/// Which backend to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    Kernel,
    None,
    Fastpath,
}

impl From<oxr_config::Dataplane> for BackendKind {
    fn from(d: oxr_config::Dataplane) -> Self {
        match d {
            oxr_config::Dataplane::Kernel => BackendKind::Kernel,
            oxr_config::Dataplane::None => BackendKind::None,
            oxr_config::Dataplane::Fastpath => BackendKind::Fastpath,
        }
    }
}

/// Settings for opening a backend.
#[derive(Debug, Clone)]
pub struct BackendOptions {
    /// Kernel route protocol marking oxr's routes and nexthop objects.
    pub route_protocol: u8,
    /// Route messages per `sendmsg`.
    pub netlink_batch: usize,
    /// Network namespace to program (path like `/var/run/netns/NAME`); the current one if
    /// `None`.
    pub netns: Option<PathBuf>,
    /// `fea.fastpath` (engine, interfaces) for the fastpath backend.
    pub fastpath: oxr_config::FastpathConfig,
    /// Where oxr-fastpath serves (`<run-dir>/fastpath.sock`); required by the fastpath
    /// backend.
    pub fastpath_address: Option<oxr_proto::transport::Address>,
    /// Kernel backend: send each batch's IPv4 routes in bit-reversed address order
    /// ([`kernel::spread_ipv4`]) instead of arrival order (default on; oxr-fea reads
    /// `OXR_FEA_IPV4_ORDER=arrival` to turn it off for comparisons).
    pub spread_ipv4: bool,
}

impl Default for BackendOptions {
    fn default() -> Self {
        BackendOptions {
            route_protocol: oxr_config::DEFAULT_ROUTE_PROTOCOL,
            netlink_batch: 64,
            netns: None,
            fastpath: oxr_config::FastpathConfig::default(),
            fastpath_address: None,
            spread_ipv4: true,
        }
    }
}

/// Opens a backend and loads what it already holds.
pub fn open(kind: BackendKind, opts: &BackendOptions) -> Result<Box<dyn FibBackend>, BackendError> {
    let mut b: Box<dyn FibBackend> = match kind {
        BackendKind::Kernel => Box::new(kernel::KernelBackend::open(opts)?),
        BackendKind::None => Box::new(none::NoneBackend::default()),
        BackendKind::Fastpath => Box::new(fastpath::FastpathBackend::open(opts)?),
    };
    let found = b.load_existing()?;
    if found > 0 {
        tracing::info!(
            routes = found,
            backend = b.name(),
            "found routes from a previous run"
        );
    }
    Ok(b)
}
