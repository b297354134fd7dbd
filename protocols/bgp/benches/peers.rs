//! Many eBGP peers at once, oxr against BIRD, GoBGP and FRR (root only; says so
//! and exits otherwise).
//!
//! One BIRD feeder namespace holds N sessions (default 200), each from its own
//! address (10.98.1.1.. on one veth) and its own AS (65101..), to the router
//! under test (AS 65000) in another namespace; the router has one address per
//! session too (10.98.65.1..), because BIRD allows one session per neighbor
//! address. The feeder connects 1 s after a session is enabled (`connect
//! delay time 1`, BIRD's default is 5 s), so times show the router's speed. Each session
//! announces 1,000 IPv4 prefixes: mode `distinct`, different per peer (N x 1,000
//! prefixes, one path each); mode `shared`, the same 1,000 from every peer
//! (1,000 prefixes with N paths each). The routers under test are passive and
//! accept everything; the clock starts when the feeder's sessions are enabled.
//! Printed per router and mode: seconds until every session is Established,
//! seconds until every path is in the Loc-RIB, peak RSS (VmHWM) and CPU
//! seconds of the router's processes (oxr: oxr-bgp alone and with oxr-rib +
//! oxr-fea `--backend none`).
//!
//! Run: `cargo build --release -p oxr-rib -p oxr-fea -p oxr-bgp --bins &&
//! cargo bench -p oxr-bgp --bench peers`. Environment: `OXR_PEERS_ROUTERS`
//! (default `oxr,bird,frr,gobgp`; a router whose binary is missing is skipped
//! with a note), `OXR_PEERS_MODES` (`distinct,shared`), `OXR_PEERS_N` (200),
//! `OXR_PEERS_PREFIXES` (1000), `OXR_PEERS_LIMIT_SECS` (per run, 240).
//! Namespaces, processes and files of each run are removed when it ends,
//! also when it fails or times out.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use oxr_proto::process::process_client::ProcessClient;
use oxr_proto::process::ShowRequest;
use oxr_proto::transport::{connect, Address};

#[path = "../tests/netns/mod.rs"]
mod netns;

use netns::{is_root, sh, sh_ok, which, Lab};

const ROUTER_AS: u32 = 65000;
const FEED_AS_BASE: u32 = 65100;
const ROUTER_ADDR: &str = "10.98.0.1";
const FRR_BGPD: &str = "/usr/lib/frr/bgpd";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The feeder's address of session `i` (1-based): 10.98.1.1, 10.98.1.2, ...
/// (up to 10.98.8.x for 2,000 sessions).
fn peer_addr(i: usize) -> String {
    format!("10.98.{}.{}", 1 + i / 256, i % 256)
}

/// The router's address of session `i`: 10.98.65.1, 10.98.65.2, ... BIRD
/// locks each neighbor address to one session, so the feeder needs a distinct
/// remote address per session; every router under test simply has them all.
fn router_addr(i: usize) -> String {
    format!("10.98.{}.{}", 65 + i / 256, i % 256)
}

/// The k-th /24 of the feed (16.0.0.0/24, 16.0.1.0/24, ...).
fn prefix(j: usize) -> String {
    format!("{}.{}.{}.0/24", 16 + (j >> 16), (j >> 8) & 255, j & 255)
}

/// (VmHWM kB, CPU seconds) of one process.
fn usage(pid: u32) -> (u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let t = |i: usize| {
        rest.get(i)
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime, in USER_HZ (100).
    (kb, (t(11) + t(12)) / 100.0)
}

/// What the router under test reports: (sessions Established, paths received).
type Progress = (usize, usize);

struct Figures {
    router: String,
    mode: String,
    established_secs: Option<f64>,
    complete_secs: Option<f64>,
    reached: Progress,
    peak_mb: f64,
    cpu_secs: f64,
    note: String,
}

fn birdc(ns: &str, sock: &str, cmd: &str) -> String {
    sh_ok(&["ip", "netns", "exec", ns, "birdc", "-s", sock, cmd])
}

fn wait_until(limit: Duration, step: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(step);
    }
}

/// The feeder's BIRD configuration: N sessions, disabled until the run starts.
fn feeder_conf(n: usize, per_peer: usize, distinct: bool) -> String {
    let mut c = String::from("router id 10.98.255.1;\nprotocol device { }\n");
    if !distinct {
        c += "protocol static st {\n  ipv4;\n";
        for k in 0..per_peer {
            c += &format!("  route {} blackhole;\n", prefix(k));
        }
        c += "}\n";
    }
    for i in 1..=n {
        let table = if distinct {
            c += &format!("ipv4 table t{i};\nprotocol static s{i} {{\n  ipv4 {{ table t{i}; }};\n");
            for k in 0..per_peer {
                c += &format!("  route {} blackhole;\n", prefix((i - 1) * per_peer + k));
            }
            c += "}\n";
            format!("table t{i}; ")
        } else {
            String::new()
        };
        c += &format!(
            "protocol bgp p{i} {{ disabled; local {} as {}; neighbor {} as {ROUTER_AS}; \
             connect delay time 1; connect retry time 1; ipv4 {{ {table}import none; export all; }}; }}\n",
            peer_addr(i),
            FEED_AS_BASE + i as u32,
            router_addr(i)
        );
    }
    c
}

fn oxr_toml(n: usize) -> String {
    let mut t = format!(
        "[router]\nname = \"peers\"\n[protocols.bgp]\nlocal-as = {ROUTER_AS}\n\
         router-id = \"{ROUTER_ADDR}\"\n[protocols.bgp.policy.ALL.term.1.then]\naction = \"accept\"\n"
    );
    for i in 1..=n {
        t += &format!(
            "[protocols.bgp.neighbor.\"{}\"]\nremote-as = {}\npassive = true\nimport-policy = [\"ALL\"]\n",
            peer_addr(i),
            FEED_AS_BASE + i as u32
        );
    }
    t
}

fn bird_conf(n: usize) -> String {
    let mut c = format!("router id {ROUTER_ADDR};\nprotocol device {{ }}\n");
    for i in 1..=n {
        c += &format!(
            "protocol bgp r{i} {{ local {} as {ROUTER_AS}; neighbor {} as {}; passive on; \
             ipv4 {{ import all; export none; }}; }}\n",
            router_addr(i),
            peer_addr(i),
            FEED_AS_BASE + i as u32
        );
    }
    c
}

fn gobgp_conf(n: usize) -> String {
    let mut c = format!("[global.config]\n  as = {ROUTER_AS}\n  router-id = \"{ROUTER_ADDR}\"\n");
    for i in 1..=n {
        c += &format!(
            "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{}\"\n    peer-as = {}\n\
             \x20 [neighbors.transport.config]\n    passive-mode = true\n\
             \x20 [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"ipv4-unicast\"\n",
            peer_addr(i),
            FEED_AS_BASE + i as u32
        );
    }
    c
}

fn frr_conf(n: usize) -> String {
    let mut c = format!(
        "hostname peers\nrouter bgp {ROUTER_AS}\n bgp router-id {ROUTER_ADDR}\n no bgp ebgp-requires-policy\n"
    );
    for i in 1..=n {
        c += &format!(
            " neighbor {a} remote-as {}\n neighbor {a} passive\n",
            FEED_AS_BASE + i as u32,
            a = peer_addr(i)
        );
    }
    c += " address-family ipv4 unicast\n";
    for i in 1..=n {
        c += &format!("  neighbor {} activate\n", peer_addr(i));
    }
    c += " exit-address-family\n";
    c
}

/// `show <words>` of an oxr process, as JSON (`null` if it does not answer).
fn oxr_show(rt: &tokio::runtime::Runtime, run: &Path, words: &[&str]) -> serde_json::Value {
    rt.block_on(async {
        let Ok(ch) = connect(&Address::in_run_dir(run, "bgp")).await else {
            return serde_json::Value::Null;
        };
        let Ok(r) = ProcessClient::new(ch)
            .show(ShowRequest {
                words: words.iter().map(|w| w.to_string()).collect(),
            })
            .await
        else {
            return serde_json::Value::Null;
        };
        serde_json::from_str(&r.into_inner().json).unwrap_or_default()
    })
}

fn json_progress<'a>(
    peers: impl Iterator<Item = &'a serde_json::Value>,
    st: &str,
    rx: &str,
) -> Progress {
    let mut p = (0, 0);
    for v in peers {
        if v[st].as_str().is_some_and(|s| s.starts_with("Established")) {
            p.0 += 1;
        }
        p.1 += v[rx].as_u64().unwrap_or(0) as usize;
    }
    p
}

/// One router under test in one mode.
fn run_one(
    router: &str,
    mode: &str,
    n: usize,
    per_peer: usize,
    limit: Duration,
    rt: &tokio::runtime::Runtime,
) -> Figures {
    let distinct = mode == "distinct";
    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("oxr-bgp-peers-{pid}-{router}-{mode}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut lab = Lab {
        ns: vec![],
        children: vec![],
        dir: dir.clone(),
    };
    let (nf, nr) = (format!("oxrpeers-f-{pid}"), format!("oxrpeers-r-{pid}"));
    for ns in [&nf, &nr] {
        sh(&["ip", "netns", "add", ns]);
        lab.ns.push(ns.clone());
        sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
    }
    sh(&[
        "ip", "link", "add", "pf", "netns", &nf, "type", "veth", "peer", "pr", "netns", &nr,
    ]);
    sh(&[
        "ip",
        "-n",
        &nr,
        "addr",
        "add",
        &format!("{ROUTER_ADDR}/16"),
        "dev",
        "pr",
    ]);
    for (ns, ifc, addr) in [
        (&nf, "pf", peer_addr as fn(usize) -> String),
        (&nr, "pr", router_addr),
    ] {
        let mut batch = String::new();
        for i in 1..=n {
            batch += &format!("addr add {}/16 dev {ifc}\n", addr(i));
        }
        let batch_file = dir.join(format!("addrs-{ifc}.batch"));
        std::fs::write(&batch_file, batch).unwrap();
        sh(&["ip", "-n", ns, "-batch", batch_file.to_str().unwrap()]);
    }
    for (ns, ifc) in [(&nf, "pf"), (&nr, "pr")] {
        sh(&["ip", "-n", ns, "link", "set", ifc, "up"]);
    }

    // Feeder first: it must hold its routes before the clock starts.
    let feed_conf = dir.join("feeder.conf");
    std::fs::write(&feed_conf, feeder_conf(n, per_peer, distinct)).unwrap();
    let feed_sock = dir.join("feeder.ctl").to_str().unwrap().to_string();
    lab.spawn(
        &nf,
        &[
            "bird",
            "-f",
            "-c",
            feed_conf.to_str().unwrap(),
            "-s",
            &feed_sock,
        ],
        "feeder.log",
    );
    let want_static = n * per_peer;
    let loaded = wait_until(Duration::from_secs(60), Duration::from_millis(200), || {
        let out = birdc(&nf, &feed_sock, "show route table all count");
        // "N of M routes for K networks in table T", summed over tables.
        let total: usize = out
            .lines()
            .filter(|l| l.contains(" in table "))
            .filter_map(|l| l.split_whitespace().next()?.parse::<usize>().ok())
            .sum();
        total >= if distinct { want_static } else { per_peer }
    });
    assert!(loaded, "feeder did not load its routes:\n{}", lab.logs());

    let first = lab.children.len();
    let run = dir.join("run");
    let sock = dir.join("router.ctl").to_str().unwrap().to_string();
    let mut note = String::new();
    match router {
        "oxr" => {
            let toml = dir.join("oxr.toml");
            std::fs::write(&toml, oxr_toml(n)).unwrap();
            let bin = |name: &str| {
                let p = Path::new(env!("CARGO_BIN_EXE_oxr-bgp")).with_file_name(name);
                assert!(
                    p.exists(),
                    "{} missing: cargo build --release -p oxr-rib -p oxr-fea --bins",
                    p.display()
                );
                p.to_str().unwrap().to_string()
            };
            let run_s = run.to_str().unwrap().to_string();
            for name in ["bgp", "rib", "fea"] {
                let mut args = vec![
                    bin(&format!("oxr-{name}")),
                    "--router".into(),
                    "peers".into(),
                    "--run-dir".into(),
                    run_s.clone(),
                    "--config".into(),
                    toml.to_str().unwrap().into(),
                    "--log".into(),
                    "warn".into(),
                ];
                if name == "fea" {
                    args.extend(["--backend".into(), "none".into()]);
                }
                let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
                lab.spawn(&nr, &a, &format!("oxr-{name}.log"));
            }
            let ready = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
                !oxr_show(rt, &run, &["bgp", "summary"]).is_null()
            });
            assert!(ready, "oxr did not start:\n{}", lab.logs());
        }
        "bird" => {
            let conf = dir.join("router.conf");
            std::fs::write(&conf, bird_conf(n)).unwrap();
            lab.spawn(
                &nr,
                &["bird", "-f", "-c", conf.to_str().unwrap(), "-s", &sock],
                "router-bird.log",
            );
            let ready = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
                birdc(&nr, &sock, "show status").contains("Daemon is up")
            });
            assert!(ready, "BIRD did not start:\n{}", lab.logs());
        }
        "gobgp" => {
            let conf = dir.join("gobgpd.toml");
            std::fs::write(&conf, gobgp_conf(n)).unwrap();
            lab.spawn(
                &nr,
                &[
                    "gobgpd",
                    "-f",
                    conf.to_str().unwrap(),
                    "-t",
                    "toml",
                    "-l",
                    "warn",
                    "--api-hosts",
                    "127.0.0.1:50051",
                ],
                "gobgpd.log",
            );
            let ready = wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
                sh_ok(&[
                    "ip",
                    "netns",
                    "exec",
                    &nr,
                    "gobgp",
                    "-u",
                    "127.0.0.1",
                    "global",
                ])
                .contains("AS")
            });
            assert!(ready, "gobgpd did not start:\n{}", lab.logs());
        }
        "frr" => {
            let conf = dir.join("bgpd.conf");
            std::fs::write(&conf, frr_conf(n)).unwrap();
            let vty = dir.to_str().unwrap().to_string();
            lab.spawn(
                &nr,
                &[
                    FRR_BGPD,
                    "-f",
                    conf.to_str().unwrap(),
                    "-i",
                    dir.join("bgpd.pid").to_str().unwrap(),
                    "--vty_socket",
                    &vty,
                    "-Z",
                    "-n",
                    "-S",
                    "-P",
                    "0",
                    "--log",
                    "stdout",
                    "--log-level",
                    "warn",
                ],
                "bgpd.log",
            );
            let ready = wait_until(Duration::from_secs(20), Duration::from_millis(200), || {
                frr_show(&nr, &vty).is_object()
            });
            assert!(ready, "FRR bgpd did not start:\n{}", lab.logs());
            note = "bgpd -Z (no zebra)".into();
        }
        other => panic!("unknown router {other:?}"),
    }
    let pids: Vec<u32> = lab.children[first..].iter().map(|c| c.id()).collect();
    let vty = dir.to_str().unwrap().to_string();

    let progress = |rt: &tokio::runtime::Runtime| -> Progress {
        match router {
            "oxr" => {
                let j = oxr_show(rt, &run, &["bgp", "summary"]);
                j["neighbors"]
                    .as_array()
                    .map(|a| json_progress(a.iter(), "state", "prefixes_accepted"))
                    .unwrap_or_default()
            }
            "bird" => {
                let up = birdc(&nr, &sock, "show protocols")
                    .lines()
                    .filter(|l| l.starts_with('r') && l.contains("Established"))
                    .count();
                // "N of M routes for K networks in table master4": M is every path.
                let paths = birdc(&nr, &sock, "show route count")
                    .lines()
                    .find(|l| l.contains(" routes for "))
                    .and_then(|l| l.split_whitespace().nth(2)?.parse().ok())
                    .unwrap_or(0);
                (up, paths)
            }
            "gobgp" => {
                let out = sh_ok(&[
                    "ip",
                    "netns",
                    "exec",
                    &nr,
                    "gobgp",
                    "-u",
                    "127.0.0.1",
                    "neighbor",
                    "-j",
                ]);
                let j: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
                let mut p = (0, 0);
                for v in j.as_array().into_iter().flatten() {
                    if v["state"]["session_state"].as_u64() == Some(6)
                        || v["state"]["session_state"].as_str() == Some("established")
                    {
                        p.0 += 1;
                    }
                    for af in v["afi_safis"].as_array().into_iter().flatten() {
                        p.1 += af["state"]["received"].as_u64().unwrap_or(0) as usize;
                    }
                }
                p
            }
            _ => {
                let j = frr_show(&nr, &vty);
                j["ipv4Unicast"]["peers"]
                    .as_object()
                    .map(|m| json_progress(m.values(), "state", "pfxRcd"))
                    .unwrap_or_default()
            }
        }
    };

    let total = n * per_peer;
    let t0 = Instant::now();
    birdc(&nf, &feed_sock, "enable \"p*\"");
    let mut established = None;
    let mut complete = None;
    let mut reached = (0, 0);
    let end = t0 + limit;
    while Instant::now() < end {
        reached = progress(rt);
        if established.is_none() && reached.0 >= n {
            established = Some(t0.elapsed().as_secs_f64());
        }
        if reached.0 >= n && reached.1 >= total {
            complete = Some(t0.elapsed().as_secs_f64());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut peak_kb = 0;
    let mut cpu = 0.0;
    for (k, p) in pids.iter().enumerate() {
        let (kb, c) = usage(*p);
        if router == "oxr" {
            let name = ["oxr-bgp", "oxr-rib", "oxr-fea"][k];
            println!(
                "  oxr {mode}: {name} peak RSS {:.1} MB, CPU {c:.2} s",
                kb as f64 / 1024.0
            );
        }
        peak_kb += kb;
        cpu += c;
    }
    if router == "oxr" {
        let m = oxr_show(rt, &run, &["bgp", "memory"]);
        println!(
            "  oxr {mode}: oxr-bgp Loc-RIB table {:.1} MB for {} paths, {} attribute sets",
            m["loc-rib-table-bytes"].as_f64().unwrap_or(0.0) / (1024.0 * 1024.0),
            m["loc-rib-paths"],
            m["attribute-sets-received"]
        );
    }
    if complete.is_none() {
        note = format!("{note} TIMEOUT after {} s", limit.as_secs())
            .trim()
            .to_string();
    }
    // `lab` drops here: processes killed, namespaces and files removed.
    Figures {
        router: router.into(),
        mode: mode.into(),
        established_secs: established,
        complete_secs: complete,
        reached,
        peak_mb: peak_kb as f64 / 1024.0,
        cpu_secs: cpu,
        note,
    }
}

fn frr_show(ns: &str, vty: &str) -> serde_json::Value {
    let out = sh_ok(&[
        "ip",
        "netns",
        "exec",
        ns,
        "vtysh",
        "--vty_socket",
        vty,
        "-d",
        "bgpd",
        "-c",
        "show bgp summary json",
    ]);
    // vtysh may print a warning line before the JSON.
    out.find('{')
        .and_then(|i| serde_json::from_str(&out[i..]).ok())
        .unwrap_or_default()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !is_root() {
        println!("SKIPPED (needs root): peers");
        return;
    }
    let n: usize = env_or("OXR_PEERS_N", 200).clamp(1, 2000);
    let per_peer: usize = env_or("OXR_PEERS_PREFIXES", 1000).clamp(1, 60_000);
    let limit = Duration::from_secs(env_or("OXR_PEERS_LIMIT_SECS", 240));
    let routers =
        std::env::var("OXR_PEERS_ROUTERS").unwrap_or_else(|_| "oxr,bird,frr,gobgp".into());
    let modes = std::env::var("OXR_PEERS_MODES").unwrap_or_else(|_| "distinct,shared".into());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{n} eBGP peers x {per_peer} IPv4 prefixes; limit {} s per run",
        limit.as_secs()
    );
    let mut results: Vec<Figures> = Vec::new();
    for mode in modes.split(',') {
        assert!(
            matches!(mode, "distinct" | "shared"),
            "unknown mode {mode:?}"
        );
        for router in routers.split(',') {
            let present = match router {
                "oxr" => true,
                "bird" => which("bird") && which("birdc"),
                "gobgp" => which("gobgpd") && which("gobgp"),
                "frr" => Path::new(FRR_BGPD).exists() && which("vtysh"),
                _ => false,
            };
            if !present {
                println!("{router}: not installed, left out");
                continue;
            }
            let f = run_one(router, mode, n, per_peer, limit, &rt);
            println!(
                "{:<6} {:<8} Established {:>7} s, Loc-RIB complete {:>7} s ({} up, {} paths), \
                 peak RSS {:>6.1} MB, CPU {:>6.2} s {}",
                f.router,
                f.mode,
                fmt(f.established_secs),
                fmt(f.complete_secs),
                f.reached.0,
                f.reached.1,
                f.peak_mb,
                f.cpu_secs,
                f.note
            );
            let _ = std::io::stdout().flush();
            results.push(f);
        }
    }
    println!("\n| mode | router | all Established (s) | Loc-RIB complete (s) | peak RSS (MB) | CPU (s) | note |");
    println!("|---|---|---|---|---|---|---|");
    for f in &results {
        println!(
            "| {} | {} | {} | {} | {:.1} | {:.2} | {} |",
            f.mode,
            f.router,
            fmt(f.established_secs),
            fmt(f.complete_secs),
            f.peak_mb,
            f.cpu_secs,
            f.note
        );
    }
}

fn fmt(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.2}")).unwrap_or_else(|| "-".into())
}
