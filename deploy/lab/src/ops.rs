//! The commands: `up`, `down`, `status`, `list`, and what `shell`/`exec` need.
//!
//! `up` records every resource in `state.json` *before* creating it; `down` trusts only that
//! file (plus the namespaces and processes it names), so it works after oxr-lab was killed at
//! any point and is idempotent.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::probe;
use crate::spec::{Lab, NodeKind};
use crate::state::{now_unix, NodeState, ProcessRecord, RunDir, State};
use crate::sys;

/// Where labs live and where the binaries are.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Root of lab run directories (`/run/oxr-lab`).
    pub root: PathBuf,
    /// Directory of oxr-routerd and oxrsh.
    pub bin_dir: PathBuf,
}

impl Ctx {
    /// A binary of the oxr set.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }

    /// The run directory of a lab.
    pub fn run_dir(&self, lab: &str) -> RunDir {
        RunDir::new(&self.root, lab)
    }
}

/// The directory of oxr-lab's own executable: the workspace's binaries are built beside it.
pub fn default_bin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Host-side temporary veth names: unique per oxr-lab process and link, at most 15 bytes.
pub fn temp_link_names(pid: u32, index: usize) -> (String, String) {
    (format!("ol{pid}x{index}a"), format!("ol{pid}x{index}b"))
}

/// Brings a lab up. On failure, removes whatever it created and returns the error.
pub fn up(ctx: &Ctx, lab: &Lab, wait: Option<Duration>) -> anyhow::Result<()> {
    for tool in ["oxr-routerd", "oxrsh"] {
        let needs = lab
            .nodes
            .values()
            .any(|n| matches!(n.kind, NodeKind::Oxr { .. }));
        if needs && !ctx.bin(tool).exists() {
            bail!(
                "{} not found (build the workspace's binaries, or give --bin-dir)",
                ctx.bin(tool).display()
            );
        }
    }
    std::fs::create_dir_all(&ctx.root)
        .with_context(|| format!("creating {}", ctx.root.display()))?;
    let rd = ctx.run_dir(&lab.name);
    // create_dir, not create_dir_all: the directory is the lab's lock.
    if let Err(e) = std::fs::create_dir(&rd.path) {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            bail!(
                "lab {} is already up ({} exists); `oxr-lab down {}` first",
                lab.name,
                rd.path.display(),
                lab.name
            );
        }
        return Err(e).with_context(|| format!("creating {}", rd.path.display()));
    }
    std::fs::set_permissions(&rd.path, std::fs::Permissions::from_mode(0o700))?;
    let mut state = State {
        lab: lab.name.clone(),
        file: lab.file.clone(),
        created_unix: now_unix(),
        up_pid: std::process::id(),
        ..Default::default()
    };
    rd.save(&state)?;
    match build(ctx, lab, &rd, &mut state) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("oxr-lab: up failed: {e:#}; removing what was created");
            let _ = down(ctx, &lab.name);
            return Err(e);
        }
    }
    println!(
        "lab {} is up: {} nodes, {} links (run dir {})",
        lab.name,
        lab.nodes.len(),
        lab.links.len(),
        rd.path.display()
    );
    if let Some(w) = wait {
        wait_converged(ctx, &state, w)?;
    }
    Ok(())
}

fn build(ctx: &Ctx, lab: &Lab, rd: &RunDir, state: &mut State) -> anyhow::Result<()> {
    // Namespaces, recorded first.
    for node in lab.nodes.values() {
        let ns = lab.netns(&node.name);
        if sys::netns_exists(&ns) {
            bail!("namespace {ns} already exists (left over, or another lab's)");
        }
        let run_dir = match node.kind {
            NodeKind::Host { .. } | NodeKind::Switch => None,
            _ => Some(rd.path.join(&node.name)),
        };
        let protocols = match &node.kind {
            NodeKind::Oxr { protocols, .. } => protocols.clone(),
            _ => Vec::new(),
        };
        let kernel_fib = match &node.kind {
            NodeKind::Oxr { config, .. } => {
                let fea = config.get("fea");
                let kernel = fea
                    .and_then(|f| f.get("dataplane"))
                    .and_then(|d| d.as_str())
                    .is_none_or(|d| d == "kernel");
                let proto = fea
                    .and_then(|f| f.get("route-protocol"))
                    .and_then(|p| p.as_integer())
                    .unwrap_or(201);
                kernel.then_some(proto as u32)
            }
            _ => None,
        };
        state.namespaces.push(ns.clone());
        state.nodes.insert(
            node.name.clone(),
            NodeState {
                kind: node.kind.label().into(),
                netns: ns.clone(),
                run_dir,
                protocols,
                ospf_links: ospf_links(lab, &node.name),
                kernel_fib,
                process: None,
            },
        );
        rd.save(state)?;
        sys::ip(&["netns", "add", &ns])?;
        sys::ip_ns(&ns, &["link", "set", "lo", "up"])?;
        // Before any link moves in: addresses must be usable at once (no DAD), and routers
        // forward.
        let mut sysctls = vec![
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        ];
        if !matches!(node.kind, NodeKind::Host { .. } | NodeKind::Switch) {
            sysctls.extend([
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
                "net.ipv6.conf.default.forwarding=1",
            ]);
        }
        sys::sysctl_ns(&ns, &sysctls)?;
        if matches!(node.kind, NodeKind::Switch) {
            // STP off (the default): ports forward as soon as they are up.
            sys::ip_ns(&ns, &["link", "add", "br0", "type", "bridge"])?;
            sys::ip_ns(&ns, &["link", "set", "br0", "up"])?;
        }
    }
    // Links: temporary host-side names, recorded before creation, then moved and renamed.
    for (i, link) in lab.links.iter().enumerate() {
        let (ta, tb) = temp_link_names(std::process::id(), i);
        state.temp_links.extend([ta.clone(), tb.clone()]);
        rd.save(state)?;
        sys::ip(&["link", "add", &ta, "type", "veth", "peer", "name", &tb])?;
        for (tmp, end) in [(&ta, &link.a), (&tb, &link.b)] {
            let ns = lab.netns(&end.node);
            sys::ip(&["link", "set", tmp, "netns", &ns, "name", &end.ifname])?;
        }
        state.temp_links.retain(|t| t != &ta && t != &tb);
        rd.save(state)?;
        for end in [&link.a, &link.b] {
            let ns = lab.netns(&end.node);
            if let Some(mtu) = link.mtu {
                sys::ip_ns(&ns, &["link", "set", &end.ifname, "mtu", &mtu.to_string()])?;
            }
            for a in &end.addresses {
                sys::ip_ns(&ns, &["addr", "add", &a.to_string(), "dev", &end.ifname])?;
            }
            if lab
                .nodes
                .get(&end.node)
                .is_some_and(|n| matches!(n.kind, NodeKind::Switch))
            {
                sys::ip_ns(&ns, &["link", "set", &end.ifname, "master", "br0"])?;
            }
            sys::ip_ns(&ns, &["link", "set", &end.ifname, "up"])?;
        }
    }
    // Loopback addresses; hosts' default routes.
    for node in lab.nodes.values() {
        let ns = lab.netns(&node.name);
        for a in &node.loopback {
            sys::ip_ns(&ns, &["addr", "add", &a.to_string(), "dev", "lo"])?;
        }
        if let NodeKind::Host { gateway } = &node.kind {
            for g in gateway {
                let fam = if g.is_ipv4() { "-4" } else { "-6" };
                sys::ip_ns(
                    &ns,
                    &[fam, "route", "add", "default", "via", &g.to_string()],
                )?;
            }
        }
    }
    // Routers.
    for node in lab.nodes.values() {
        let ns = lab.netns(&node.name);
        let run_dir = rd.path.join(&node.name);
        let log = rd.path.join(format!("{}.log", node.name));
        let mut cmd = match &node.kind {
            NodeKind::Host { .. } | NodeKind::Switch => continue,
            NodeKind::Oxr { config, .. } => {
                let cfg = rd.path.join(format!("{}.toml", node.name));
                std::fs::write(&cfg, toml::to_string(config)?)?;
                std::fs::create_dir_all(&run_dir)?;
                std::fs::set_permissions(&run_dir, std::fs::Permissions::from_mode(0o700))?;
                println!("starting {} (oxr-routerd in {ns})", node.name);
                let mut c = Command::new(ctx.bin("oxr-routerd"));
                c.arg("--config")
                    .arg(&cfg)
                    .args(["--name", &node.name, "--netns", &ns])
                    .arg("--run-dir")
                    .arg(&run_dir)
                    .arg("--bin-dir")
                    .arg(&ctx.bin_dir);
                c
            }
            NodeKind::Bird { config } => {
                let cfg = rd.path.join(format!("{}.conf", node.name));
                std::fs::write(&cfg, config)?;
                std::fs::create_dir_all(&run_dir)?;
                println!("starting {} (bird in {ns})", node.name);
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &ns, "bird", "-f", "-c"])
                    .arg(&cfg)
                    .arg("-s")
                    .arg(run_dir.join("bird.ctl"));
                c
            }
        };
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            // Its own process group: a Ctrl-C at the terminal running `up --wait` leaves
            // the lab running.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", node.name))?;
        let pid = child.id() as i32;
        let start_ticks = sys::proc_stat(pid).map(|(s, _)| s).unwrap_or_default();
        if let Some(n) = state.nodes.get_mut(&node.name) {
            n.process = Some(ProcessRecord {
                pid,
                start_ticks,
                started_unix: now_unix(),
            });
        }
        rd.save(state)?;
        // The daemon outlives oxr-lab: the Child handle is dropped without waiting.
        drop(child);
    }
    state.complete = true;
    rd.save(state)
}

/// How long a converged router's selected route count must hold still: covers LSAs still
/// being flooded after the last adjacency came up.
const SETTLE: Duration = Duration::from_secs(2);
/// The same with BIRD routers in the lab: BIRD re-originates its router-LSA for a new
/// adjacency only MinLSInterval (5 s) after its previous one.
const SETTLE_BIRD: Duration = Duration::from_secs(6);

/// Waits until every oxr router has converged (see [`probe::missing`]), its OSPF adjacencies
/// are Full, the RIB's FIB routes are in the kernel, and its selected route count has held
/// still for [`SETTLE`] ([`SETTLE_BIRD`] in labs with BIRD); names the first router that has not by the
/// deadline.
pub fn wait_converged(ctx: &Ctx, state: &State, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let oxrsh = ctx.bin("oxrsh");
    let mut last_msg: std::collections::BTreeMap<String, String> = Default::default();
    // Per router: (selected total, since when it has had that value).
    let mut stable: std::collections::BTreeMap<String, (u64, Instant)> = Default::default();
    let settle = if state.nodes.values().any(|n| n.kind == "bird") {
        SETTLE_BIRD
    } else {
        SETTLE
    };
    loop {
        let mut pending = Vec::new();
        for (name, node) in &state.nodes {
            let why = match node.kind.as_str() {
                "oxr" => {
                    if let Some(p) = node.process {
                        if !sys::alive(p.pid, Some(p.start_ticks)) {
                            let log = ctx.run_dir(&state.lab).path.join(format!("{name}.log"));
                            bail!(
                                "{name}: oxr-routerd exited; {}:\n{}",
                                log.display(),
                                sys::tail(&log, 10)
                            );
                        }
                    }
                    let Some(rd) = &node.run_dir else { continue };
                    let ospf = !node.ospf_links.is_empty();
                    let report = probe::probe(&oxrsh, rd, ospf, false);
                    let mut missing = probe::missing(&report, &node.protocols);
                    if missing.is_none() && ospf {
                        let lacking = probe::missing_adjacencies(&report, &node.ospf_links);
                        if !lacking.is_empty() {
                            missing = Some(format!("OSPF adjacency on {}", lacking.join(", ")));
                        }
                    }
                    if let (None, Some(proto)) = (&missing, node.kernel_fib) {
                        let installed = kernel_routes(&node.netns, proto);
                        if installed < report.fib_routes {
                            missing = Some(format!(
                                "kernel FIB ({installed} of {} routes)",
                                report.fib_routes
                            ));
                        }
                    }
                    match missing {
                        Some(m) => {
                            stable.remove(name);
                            Some(m)
                        }
                        None => {
                            let total = probe::selected_total(&report);
                            let e = stable
                                .entry(name.clone())
                                .or_insert((total, Instant::now()));
                            if e.0 != total {
                                *e = (total, Instant::now());
                            }
                            (e.1.elapsed() < settle)
                                .then(|| format!("routes settling ({total} selected)"))
                        }
                    }
                }
                "bird" => {
                    let alive = node
                        .process
                        .is_some_and(|p| sys::alive(p.pid, Some(p.start_ticks)));
                    let sock = node.run_dir.as_ref().map(|d| d.join("bird.ctl"));
                    if !alive {
                        bail!(
                            "{name}: bird exited; see {}",
                            ctx.run_dir(&state.lab)
                                .path
                                .join(format!("{name}.log"))
                                .display()
                        );
                    }
                    (!sock.is_some_and(|s| s.exists())).then(|| "bird control socket".into())
                }
                _ => None,
            };
            if let Some(why) = why {
                if last_msg.get(name) != Some(&why) {
                    println!("waiting for {name}: {why}");
                    last_msg.insert(name.clone(), why.clone());
                }
                pending.push((name.clone(), why));
            }
        }
        if pending.is_empty() {
            println!("lab {}: every router has converged", state.lab);
            return Ok(());
        }
        if Instant::now() >= deadline {
            let list: Vec<String> = pending
                .iter()
                .map(|(n, w)| format!("{n} (waiting for {w})"))
                .collect();
            bail!(
                "not converged after {}s: {}",
                timeout.as_secs(),
                list.join(", ")
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The OSPF interfaces of an oxr router that should form an adjacency: configured, not
/// passive, and on a lab link whose other end is a router (oxr running OSPF, or BIRD).
pub fn ospf_links(lab: &Lab, node: &str) -> Vec<String> {
    let runs_ospf = |n: &str| match lab.nodes.get(n).map(|n| &n.kind) {
        Some(NodeKind::Oxr { protocols, .. }) => protocols.iter().any(|p| p == "ospf"),
        Some(NodeKind::Bird { .. }) => true,
        _ => false,
    };
    let Some(NodeKind::Oxr { config, .. }) = lab.nodes.get(node).map(|n| &n.kind) else {
        return Vec::new();
    };
    let Some(ifaces) = config
        .get("protocols")
        .and_then(|p| p.get("ospf"))
        .and_then(|o| o.get("interfaces"))
        .and_then(|i| i.as_table())
    else {
        return Vec::new();
    };
    let mut v = Vec::new();
    for (ifname, conf) in ifaces {
        if conf.get("passive").and_then(|p| p.as_bool()) == Some(true) {
            continue;
        }
        for l in &lab.links {
            for (me, peer) in [(&l.a, &l.b), (&l.b, &l.a)] {
                if me.node == node && &me.ifname == ifname && runs_ospf(&peer.node) {
                    v.push(ifname.clone());
                }
            }
        }
    }
    v
}

/// Routes carrying oxr's route protocol in a namespace's kernel FIB, IPv4 and IPv6.
fn kernel_routes(ns: &str, proto: u32) -> u64 {
    let proto = proto.to_string();
    ["-4", "-6"]
        .iter()
        .map(|fam| {
            sys::ip_ns(ns, &[fam, "route", "show", "proto", &proto])
                .unwrap_or_default()
                .lines()
                // A multipath route continues on "nexthop via ..." lines of its own.
                .filter(|l| !l.trim_start().starts_with("nexthop") && !l.trim().is_empty())
                .count() as u64
        })
        .sum()
}

/// Removes a lab: kills its processes, deletes its namespaces and left-over temporary links,
/// removes its run directory. Idempotent; returns false if there was no such lab.
pub fn down(ctx: &Ctx, lab: &str) -> anyhow::Result<bool> {
    let rd = ctx.run_dir(lab);
    let Some(state) = rd.load()? else {
        if rd.path.exists() {
            // `up` died before its first save: nothing was created yet.
            std::fs::remove_dir_all(&rd.path)?;
            return Ok(true);
        }
        return Ok(false);
    };
    // The daemons first, gracefully: routerd stops its children.
    let mut pids: Vec<(i32, Option<u64>)> = state
        .nodes
        .values()
        .filter_map(|n| n.process)
        .map(|p| (p.pid, Some(p.start_ticks)))
        .collect();
    // Anything whose command line names the lab's run directory (a daemon spawned but not yet
    // recorded, or a child of one); but never the `up` that may still be running: it would
    // only start more. It is killed below first.
    let needle = format!("{}/", rd.path.display());
    if state.up_pid != std::process::id() && sys::alive(state.up_pid as i32, None) {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", state.up_pid)).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("oxr-lab") {
            sys::terminate(&[(state.up_pid as i32, None)], Duration::from_millis(500));
        }
    }
    pids.extend(sys::pids_mentioning(&needle).into_iter().map(|p| (p, None)));
    sys::terminate(&pids, Duration::from_secs(5));
    for ns in &state.namespaces {
        if !sys::netns_exists(ns) {
            continue;
        }
        let left: Vec<(i32, Option<u64>)> =
            sys::netns_pids(ns).into_iter().map(|p| (p, None)).collect();
        sys::terminate(&left, Duration::from_millis(500));
        // Deleting the namespace destroys the veths inside it (and their peers).
        sys::ip(&["netns", "del", ns]).with_context(|| format!("deleting namespace {ns}"))?;
    }
    for t in &state.temp_links {
        if sys::link_exists(t) {
            let _ = sys::ip(&["link", "del", t]);
        }
    }
    std::fs::remove_dir_all(&rd.path).with_context(|| format!("removing {}", rd.path.display()))?;
    Ok(true)
}

/// Loads a running lab's state, or says there is none.
pub fn load_state(ctx: &Ctx, lab: &str) -> anyhow::Result<State> {
    ctx.run_dir(lab)
        .load()?
        .with_context(|| format!("no lab {lab} is up (see `oxr-lab list`)"))
}

fn format_secs(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        _ => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

/// `oxr-lab status LAB` as text: one block per node.
pub fn status(ctx: &Ctx, lab: &str) -> anyhow::Result<String> {
    use std::fmt::Write;
    let state = load_state(ctx, lab)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "lab {}{} ({})",
        state.lab,
        if state.complete {
            ""
        } else {
            " (incomplete: up did not finish)"
        },
        state
            .file
            .as_ref()
            .map(|f| f.display().to_string())
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "{:<10} {:<6} {:<20} {:<9} {:>8} {:>7} {:>6}  {:<34} processes",
        "node", "kind", "netns", "state", "uptime", "routes", "fib", "adjacencies/sessions"
    );
    for (name, node) in &state.nodes {
        let up = node
            .process
            .filter(|p| sys::alive(p.pid, Some(p.start_ticks)));
        let ns_ok = sys::netns_exists(&node.netns);
        let (st, uptime) = match (&node.kind[..], up, ns_ok) {
            (_, _, false) => ("no netns", String::new()),
            ("host" | "switch", _, true) => ("up", String::new()),
            (_, Some(p), true) => (
                "running",
                format_secs(now_unix().saturating_sub(p.started_unix)),
            ),
            (_, None, true) => ("stopped", String::new()),
        };
        let (mut routes, mut fib, mut procs) = (String::new(), String::new(), String::new());
        let mut adj = String::new();
        if node.kind == "oxr" && up.is_some() {
            if let Some(rd) = &node.run_dir {
                let has = |p: &str| node.protocols.iter().any(|x| x == p);
                let r = probe::probe(&ctx.bin("oxrsh"), rd, has("ospf"), has("bgp"));
                adj = r.adjacencies();
                routes = r.prefixes.to_string();
                fib = r.fib_routes.to_string();
                procs = r
                    .processes
                    .iter()
                    .map(|p| {
                        let mut s = format!("{}:{}", p.name, p.state);
                        if p.state == "running" {
                            s.push_str(&format!("/{}", format_secs(p.uptime_secs)));
                        }
                        if p.restarts > 0 {
                            s.push_str(&format!("/{}restarts", p.restarts));
                        }
                        s
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
            }
        }
        if node.kind == "bird" && up.is_some() {
            if let Some(rd) = &node.run_dir {
                adj = bird_protocols(&rd.join("bird.ctl"));
            }
        }
        let _ = writeln!(
            out,
            "{:<10} {:<6} {:<20} {:<9} {:>8} {:>7} {:>6}  {:<34} {}",
            name, node.kind, node.netns, st, uptime, routes, fib, adj, procs
        );
    }
    Ok(out)
}

/// A BIRD router's OSPF and BGP protocols in brief (`birdc show protocols`): for BGP, how
/// many sessions are Established; for OSPF, how many instances are Running.
fn bird_protocols(sock: &Path) -> String {
    let out = Command::new("birdc")
        .arg("-s")
        .arg(sock)
        .args(["show", "protocols"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    bird_summary(&text)
}

/// Parses `birdc show protocols` (name, proto, table, state, since, info) into
/// `ospf 1/1 Running, bgp 2/3 Established`.
pub fn bird_summary(text: &str) -> String {
    let (mut ospf, mut ospf_up, mut bgp, mut bgp_up) = (0, 0, 0, 0);
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        match f.get(1).copied() {
            Some("OSPF") => {
                ospf += 1;
                ospf_up += usize::from(l.contains("Running"));
            }
            Some("BGP") => {
                bgp += 1;
                bgp_up += usize::from(l.contains("Established"));
            }
            _ => {}
        }
    }
    let mut parts = Vec::new();
    if ospf > 0 {
        parts.push(format!("ospf {ospf_up}/{ospf} Running"));
    }
    if bgp > 0 {
        parts.push(format!("bgp {bgp_up}/{bgp} Established"));
    }
    parts.join(", ")
}

/// Replaces oxr-lab with oxrsh (or birdc) attached to a router. Returns only on error.
pub fn shell(ctx: &Ctx, lab: &str, node: &str, extra: &[String]) -> anyhow::Error {
    let state = match load_state(ctx, lab) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let Some(n) = state.nodes.get(node) else {
        return anyhow::anyhow!("lab {lab} has no node {node}");
    };
    let Some(rd) = &n.run_dir else {
        return anyhow::anyhow!("{node} is a host; use `oxr-lab exec {lab} {node} -- CMD`");
    };
    let err = if n.kind == "bird" {
        Command::new("birdc")
            .arg("-s")
            .arg(rd.join("bird.ctl"))
            .args(extra)
            .exec()
    } else {
        Command::new(ctx.bin("oxrsh"))
            .arg("--run-dir")
            .arg(rd)
            .args(extra)
            .exec()
    };
    anyhow::anyhow!("exec: {err}")
}

/// Replaces oxr-lab with `ip netns exec NS CMD...`. Returns only on error.
pub fn exec(ctx: &Ctx, lab: &str, node: &str, cmd: &[String]) -> anyhow::Error {
    let state = match load_state(ctx, lab) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let Some(n) = state.nodes.get(node) else {
        return anyhow::anyhow!("lab {lab} has no node {node}");
    };
    if cmd.is_empty() {
        return anyhow::anyhow!("nothing to run: oxr-lab exec {lab} {node} -- CMD...");
    }
    let err = Command::new("ip")
        .args(["netns", "exec", &n.netns])
        .args(cmd)
        .exec();
    anyhow::anyhow!("exec: {err}")
}

/// `oxr-lab list`: one line per lab.
pub fn list(ctx: &Ctx) -> String {
    let mut out = String::new();
    for name in crate::state::list(&ctx.root) {
        let Ok(Some(s)) = ctx.run_dir(&name).load() else {
            continue;
        };
        let running = s
            .nodes
            .values()
            .filter_map(|n| n.process)
            .filter(|p| sys::alive(p.pid, Some(p.start_ticks)))
            .count();
        let daemons = s
            .nodes
            .values()
            .filter(|n| n.kind == "oxr" || n.kind == "bird")
            .count();
        out.push_str(&format!(
            "{:<20} {} nodes, {running}/{daemons} routers running, up {}{}  {}\n",
            name,
            s.nodes.len(),
            format_secs(now_unix().saturating_sub(s.created_unix)),
            if s.complete { "" } else { " (incomplete)" },
            s.file.map(|f| f.display().to_string()).unwrap_or_default()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_link_names_fit_an_interface_name() {
        let (a, b) = temp_link_names(4_194_304, 999);
        assert!(a.len() <= 15 && b.len() <= 15, "{a} {b}");
        assert_ne!(a, b);
        assert_ne!(temp_link_names(1, 1).0, temp_link_names(1, 2).0);
    }

    #[test]
    fn down_of_an_unknown_lab_is_a_no_op() {
        let root = tempfile::tempdir().unwrap();
        let ctx = Ctx {
            root: root.path().into(),
            bin_dir: ".".into(),
        };
        assert!(!down(&ctx, "nothing").unwrap());
        // A run dir without state (up died before its first save) is just removed.
        std::fs::create_dir(root.path().join("half")).unwrap();
        assert!(down(&ctx, "half").unwrap());
        assert!(!root.path().join("half").exists());
    }

    #[test]
    fn ospf_adjacencies_are_expected_on_links_to_ospf_routers() {
        let lab = crate::spec::parse(
            r#"
[lab]
name = "t"
[router.r1.config.protocols.ospf]
areas."0" = {}
interfaces.eth0 = { area = "0" }
interfaces.eth1 = { area = "0" }
interfaces.eth2 = { area = "0", passive = true }
interfaces.lo = { area = "0", passive = true }
[router.r2.config.protocols.ospf]
areas."0" = {}
interfaces.eth0 = { area = "0" }
[router.b1]
kind = "bird"
config = ""
[host.h1]
[[link]]
a = "r1:eth0"
b = "r2:eth0"
[[link]]
a = "r1:eth1"
b = "h1:eth0"
[[link]]
a = "r1:eth2"
b = "b1:eth0"
[[link]]
a = "r1:eth3"
b = "b1:eth1"
"#,
            Path::new("."),
            None,
        )
        .unwrap();
        // eth1 faces a host, eth2 is passive, eth3 is not an OSPF interface.
        assert_eq!(ospf_links(&lab, "r1"), ["eth0"]);
        assert_eq!(ospf_links(&lab, "r2"), ["eth0"]);
        assert!(ospf_links(&lab, "b1").is_empty());
    }

    #[test]
    fn bird_protocols_are_summed_up() {
        let text = "BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     12:00:01.000
ospf1      OSPF       master4    up     12:00:01.000  Running
m1         BGP        ---        up     12:00:03.000  Established
m2         BGP        ---        start  12:00:01.000  Active        Socket: Connection refused
";
        assert_eq!(bird_summary(text), "ospf 1/1 Running, bgp 1/2 Established");
        assert_eq!(bird_summary(""), "");
    }

    #[test]
    fn uptimes_read_naturally() {
        assert_eq!(format_secs(5), "5s");
        assert_eq!(format_secs(65), "1m5s");
        assert_eq!(format_secs(7260), "2h1m");
    }
}
