//! Interop with GoBGP and BIRD 2 in network namespaces (root only; skipped
//! visibly otherwise). One lab, set up once:
//!
//! ```text
//!   GoBGP (AS 4200000077) ==eBGP v4+v6== oxr (AS 4200000066, RR) --bridge-- BIRD A (client)
//!        10.98.1.2 / fd00:98:1::2         10.98.1.1 / 10.98.2.1          \-- BIRD B (client)
//! ```
//!
//! Checked: eBGP IPv4 and IPv6 with 4-octet ASNs both ways; route reflection
//! (A's route reaches B with ORIGINATOR_ID and CLUSTER_LIST); communities and
//! large communities end to end (GoBGP -> oxr -> BIRD B, BIRD A -> oxr ->
//! GoBGP); import policy that rejects a prefix and one that sets local-pref and
//! adds a community (in `show bgp routes` JSON and in BIRD's table); route
//! refresh both ways (`gobgp neighbor X softresetin`, `birdc reload in`, and
//! oxr's `clear bgp neighbor ADDR soft in`); the routes in oxr's kernel FIB
//! (protocol 201) with the right next hops. All processes of oxr read one
//! router TOML. The namespace, BIRD and GoBGP harness is `oxr_testlab`'s.

use std::path::Path;
use std::time::Duration;

use oxr_proto::process::process_client::ProcessClient;
use oxr_proto::process::ShowRequest;
use oxr_proto::transport::{connect, Address};
use oxr_testlab::bird::Bird;
use oxr_testlab::gobgp::GoBgp;
use oxr_testlab::lab_file::has_route;
use oxr_testlab::{log_tails, oxr_bin, veth, wait_for, Netns, Scratch};

const OXR_AS: u32 = 4_200_000_066;
const GOBGP_AS: u32 = 4_200_000_077;

/// `show <words>` on oxr-bgp's socket, as JSON.
fn oxr_show(run: &Path, words: &[&str]) -> serde_json::Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let Ok(ch) = connect(&Address::in_run_dir(run, "bgp")).await else {
            return serde_json::Value::Null;
        };
        let r = ProcessClient::new(ch)
            .show(ShowRequest {
                words: words.iter().map(|w| w.to_string()).collect(),
            })
            .await;
        match r {
            Ok(r) => serde_json::from_str(&r.into_inner().json).unwrap_or_default(),
            Err(e) => serde_json::json!({ "error": e.message() }),
        }
    })
}

fn neighbor<'a>(summary: &'a serde_json::Value, addr: &str) -> &'a serde_json::Value {
    summary["neighbors"]
        .as_array()
        .and_then(|ns| ns.iter().find(|n| n["address"] == addr))
        .unwrap_or(&serde_json::Value::Null)
}

fn counter(run: &Path, addr: &str, name: &str) -> u64 {
    neighbor(&oxr_show(run, &["bgp", "summary"]), addr)["counters"][name]
        .as_u64()
        .unwrap_or(0)
}

fn bird_conf(me: &str, extra: &str) -> String {
    format!(
        r#"
router id {me};
protocol device {{ }}
protocol direct {{ ipv4; }}
# GoBGP's network, to resolve the next hops oxr reflects unchanged.
protocol static reach {{ ipv4; route 10.98.1.0/24 via 10.98.2.1; }}
{extra}
protocol bgp toxr {{
  local {me} as {OXR_AS}; neighbor 10.98.2.1 as {OXR_AS};
  ipv4 {{
    import all;
    export filter {{
      if proto = "s4" then {{
        bgp_community.add((65001, 1));
        bgp_large_community.add(({OXR_AS}, 1, 2));
        accept;
      }}
      reject;
    }};
  }};
}}
"#
    )
}

#[test]
fn interop_with_gobgp_and_bird_route_reflection_policy_refresh_fib() {
    const NAME: &str = "interop_with_gobgp_and_bird_route_reflection_policy_refresh_fib";
    if !oxr_testlab::require_root(NAME) {
        return;
    }
    if !Bird::available() || !GoBgp::available() {
        println!("SKIPPED (needs bird, birdc, gobgpd, gobgp): {NAME}");
        return;
    }
    let pid = std::process::id();
    let dir = Scratch::new("bgp-interop");
    let [no, ng, na, nb] = ["o", "g", "a", "b"].map(|s| Netns::new(&format!("oxrbi-{s}-{pid}")));
    // oxr <-> GoBGP: one veth, IPv4 and IPv6.
    veth(&no, "vog", &ng, "vgo");
    for (n, ifc, v4, v6) in [
        (&no, "vog", "10.98.1.1/24", "fd00:98:1::1/64"),
        (&ng, "vgo", "10.98.1.2/24", "fd00:98:1::2/64"),
    ] {
        n.ip(&["addr", "add", v4, "dev", ifc]);
        n.ip(&["addr", "add", v6, "dev", ifc, "nodad"]);
        n.ip(&["link", "set", ifc, "up"]);
    }
    // oxr and the two BIRDs on one bridged LAN, so reflected next hops resolve.
    no.ip_lines(&[
        "link add br0 type bridge",
        "addr add 10.98.2.1/24 dev br0",
        "link set br0 up",
    ]);
    for (n, port, ifc, v4) in [
        (&na, "voa", "vao", "10.98.2.2/24"),
        (&nb, "vob", "vbo", "10.98.2.3/24"),
    ] {
        veth(&no, port, n, ifc);
        no.ip(&["link", "set", port, "master", "br0", "up"]);
        n.ip(&["addr", "add", v4, "dev", ifc]);
        n.ip(&["link", "set", ifc, "up"]);
    }

    // GoBGP: eBGP to oxr over IPv4 (ipv4-unicast) and IPv6 (ipv6-unicast).
    let gobgp = GoBgp::start(
        &ng,
        &dir.0,
        &format!(
            r#"
[global.config]
  as = {GOBGP_AS}
  router-id = "10.98.1.2"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.98.1.1"
    peer-as = {OXR_AS}
  [neighbors.timers.config]
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "fd00:98:1::1"
    peer-as = {OXR_AS}
  [neighbors.timers.config]
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
"#
        ),
        &[],
    );

    // BIRD A originates 172.21.1.0/24 (with communities), BIRD B nothing.
    let birds = [
        (
            &na,
            "10.98.2.2",
            "protocol static s4 { ipv4; route 172.21.1.0/24 blackhole; }",
        ),
        (&nb, "10.98.2.3", ""),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (n, me, extra))| Bird::start(n, &dir.0, &format!("bird-{i}"), &bird_conf(me, extra)))
    .collect::<Vec<_>>();

    // oxr: one router TOML for oxr-fea, oxr-rib and oxr-bgp.
    let router = format!(
        r#"
[router]
name = "interop"
[protocols.bgp]
local-as = {OXR_AS}
router-id = "10.98.0.1"
network = ["192.168.66.0/24", "fd00:66::/48"]
[protocols.bgp.neighbor."10.98.1.2"]
remote-as = {GOBGP_AS}
hold-time = 9
import-policy = ["FROM-GOBGP"]
export-policy = ["ALL"]
[protocols.bgp.neighbor."fd00:98:1::2"]
remote-as = {GOBGP_AS}
hold-time = 9
afi = ["ipv6-unicast"]
import-policy = ["ALL"]
export-policy = ["ALL"]
[protocols.bgp.neighbor."10.98.2.2"]
remote-as = {OXR_AS}
hold-time = 9
route-reflector-client = true
[protocols.bgp.neighbor."10.98.2.3"]
remote-as = {OXR_AS}
hold-time = 9
route-reflector-client = true
[protocols.bgp.policy.ALL.term.1.then]
action = "accept"
[protocols.bgp.policy.FROM-GOBGP.term.10.match]
prefix-list = ["172.20.9.0/24"]
[protocols.bgp.policy.FROM-GOBGP.term.10.then]
action = "reject"
[protocols.bgp.policy.FROM-GOBGP.term.20.match]
prefix-list = ["172.20.2.0/24"]
[protocols.bgp.policy.FROM-GOBGP.term.20.then]
local-pref = 250
community.add = ["65066:250"]
[protocols.bgp.policy.FROM-GOBGP.term.30.then]
action = "accept"
"#
    );
    let router_toml = dir.0.join("router.toml");
    std::fs::write(&router_toml, router).unwrap();
    let run = dir.0.join("run");
    let _oxr = ["fea", "rib", "bgp"].map(|name| {
        let bin = oxr_bin(&format!("oxr-{name}"));
        let log = dir.0.join(format!("oxr-{name}.log"));
        no.spawn_oxr(&bin, "interop", &run, &router_toml, &log)
    });

    let gobgp = |args: &[&str]| gobgp.gobgp(args);
    let birdc = |i: usize, cmd: &str| birds[i].birdc(cmd);
    let diag = || {
        format!(
            "oxr summary: {}\nbird A:\n{}\nbird B:\n{}\ngobgp:\n{}\n{}",
            oxr_show(&run, &["bgp", "summary"]),
            birdc(0, "show protocols all toxr"),
            birdc(1, "show protocols all toxr"),
            gobgp(&["neighbor"]),
            log_tails(&dir.0, 60)
        )
    };

    // All four sessions Established.
    let up = wait_for("four sessions Established", Duration::from_secs(40), || {
        let s = oxr_show(&run, &["bgp", "summary"]);
        ["10.98.1.2", "fd00:98:1::2", "10.98.2.2", "10.98.2.3"]
            .iter()
            .all(|a| neighbor(&s, a)["state"] == "Established")
    });
    assert!(up, "{}", diag());

    // GoBGP announces four IPv4 prefixes (one to be rejected, one modified) and
    // one IPv6 prefix, with communities and large communities.
    for p in ["172.20.1.0/24", "172.20.2.0/24", "172.20.9.0/24"] {
        let out = gobgp(&[
            "global",
            "rib",
            "add",
            p,
            "-a",
            "ipv4",
            "community",
            "65077:1",
            "large-community",
            &format!("{GOBGP_AS}:7:7"),
        ]);
        assert!(!out.contains("rror"), "gobgp rib add {p}: {out}");
    }
    let out = gobgp(&[
        "global",
        "rib",
        "add",
        "fd00:77::/48",
        "-a",
        "ipv6",
        "community",
        "65077:6",
    ]);
    assert!(!out.contains("rror"), "gobgp rib add v6: {out}");

    // oxr's Loc-RIB: the rejected prefix absent, the modified one modified,
    // A's route present with its communities.
    let route = |p: &str| -> Option<serde_json::Value> {
        oxr_show(&run, &["bgp", "routes", p])
            .as_array()
            .and_then(|a| a.iter().find(|r| r["best"] == true).cloned())
    };
    let all_in = wait_for("routes in oxr's Loc-RIB", Duration::from_secs(30), || {
        [
            "172.20.1.0/24",
            "172.20.2.0/24",
            "fd00:77::/48",
            "172.21.1.0/24",
        ]
        .iter()
        .all(|p| route(p).is_some())
    });
    assert!(all_in, "{}\n{}", oxr_show(&run, &["bgp", "routes"]), diag());
    assert!(
        route("172.20.9.0/24").is_none(),
        "rejected by import policy"
    );
    let r = route("172.20.2.0/24").unwrap();
    assert_eq!(r["local_pref"], 250, "{r}");
    let comms = r["communities"].to_string();
    assert!(
        comms.contains("65066:250") && comms.contains("65077:1"),
        "{r}"
    );
    let r = route("172.20.1.0/24").unwrap();
    assert_eq!(r["as_path"], GOBGP_AS.to_string(), "{r}");
    assert!(
        r["large_communities"]
            .to_string()
            .contains(&format!("{GOBGP_AS}:7:7")),
        "{r}"
    );
    let r = route("172.21.1.0/24").unwrap();
    assert_eq!(r["next_hop"], "10.98.2.2", "{r}");

    // oxr's networks and A's route at GoBGP (eBGP, 4-octet AS path, communities
    // of A kept).
    let ok = wait_for("oxr's routes at GoBGP", Duration::from_secs(20), || {
        let v4 = gobgp(&["global", "rib", "-a", "ipv4"]);
        let v6 = gobgp(&["global", "rib", "-a", "ipv6"]);
        v4.contains("192.168.66.0/24")
            && v4.contains("172.21.1.0/24")
            && v6.contains("fd00:66::/48")
    });
    assert!(
        ok,
        "{}\n{}\n{}",
        gobgp(&["global", "rib", "-a", "ipv4"]),
        gobgp(&["global", "rib", "-a", "ipv6"]),
        diag()
    );
    let a_at_g = gobgp(&["global", "rib", "-a", "ipv4", "172.21.1.0/24", "-j"]);
    assert!(
        a_at_g.contains(&OXR_AS.to_string()),
        "AS path has oxr's AS: {a_at_g}"
    );
    // GoBGP's JSON gives communities as 32-bit numbers: 65001:1 = 4259905537.
    assert!(
        a_at_g.contains(&((65001u64 << 16) | 1).to_string()),
        "community 65001:1 kept: {a_at_g}"
    );
    assert!(
        a_at_g.contains(&format!(
            "{{\"ASN\":{OXR_AS},\"LocalData1\":1,\"LocalData2\":2}}"
        )),
        "large community kept: {a_at_g}"
    );

    // Route reflection: A's route at B with ORIGINATOR_ID A and CLUSTER_LIST
    // oxr; GoBGP's routes at B with their communities and the policy's
    // local-pref and community; the rejected prefix nowhere.
    let ok = wait_for("routes at BIRD B", Duration::from_secs(20), || {
        let r = birdc(1, "show route all");
        r.contains("172.21.1.0/24") && r.contains("172.20.2.0/24") && r.contains("172.20.1.0/24")
    });
    assert!(ok, "{}\n{}", birdc(1, "show route all"), diag());
    let ra = birdc(1, "show route 172.21.1.0/24 all");
    assert!(ra.contains("BGP.originator_id: 10.98.2.2"), "{ra}");
    assert!(ra.contains("BGP.cluster_list: 10.98.0.1"), "{ra}");
    assert!(ra.contains("(65001,1)"), "{ra}");
    assert!(ra.contains(&format!("({OXR_AS}, 1, 2)")), "{ra}");
    let rg = birdc(1, "show route 172.20.2.0/24 all");
    assert!(rg.contains("BGP.local_pref: 250"), "{rg}");
    assert!(
        rg.contains("(65066,250)") && rg.contains("(65077,1)"),
        "{rg}"
    );
    assert!(rg.contains(&format!("({GOBGP_AS}, 7, 7)")), "{rg}");
    assert!(!birdc(1, "show route all").contains("172.20.9.0/24"));

    // Kernel FIB of the oxr namespace: protocol 201, the peers as next hops.
    let fib_ok = wait_for(
        "routes in oxr's kernel FIB",
        Duration::from_secs(30),
        || {
            let v4 = no.ip(&["route", "show", "proto", "201"]);
            let v6 = no.ip(&["-6", "route", "show", "proto", "201"]);
            has_route(&v4, "172.20.1.0/24 via 10.98.1.2 ")
                && has_route(&v4, "172.20.2.0/24 via 10.98.1.2 ")
                && has_route(&v4, "172.21.1.0/24 via 10.98.2.2 ")
                && !v4.contains("172.20.9.0")
                && (has_route(&v6, "fd00:77::/48 via fd00:98:1::2 ")
                    || has_route(&v6, "fd00:77::/48 via fe80"))
        },
    );
    assert!(
        fib_ok,
        "{}\n{}\n{}",
        no.ip(&["route"]),
        no.ip(&["-6", "route"]),
        diag()
    );

    // Route refresh. BIRD A asks oxr to re-send (`reload in` sends a
    // ROUTE-REFRESH, BIRD keeping no Adj-RIB-In): oxr's UPDATEs to A grow.
    // (GoBGP's `softresetin` only re-filters its own Adj-RIB-In; its
    // `softresetout` re-sends to oxr.)
    let g = "10.98.1.2";
    let before = counter(&run, g, "updates_in");
    gobgp(&["neighbor", "10.98.1.1", "softresetout", "-a", "ipv4"]);
    assert!(
        wait_for(
            "GoBGP re-sends to oxr",
            Duration::from_secs(10),
            || counter(&run, g, "updates_in") > before
        ),
        "{}",
        diag()
    );
    let before = counter(&run, "10.98.2.2", "updates_out");
    birdc(0, "reload in toxr");
    assert!(
        wait_for(
            "oxr re-sends to BIRD A",
            Duration::from_secs(10),
            || counter(&run, "10.98.2.2", "updates_out") > before
        ),
        "{}",
        diag()
    );
    // oxr asks GoBGP to re-send: oxr's UPDATEs in from GoBGP grow, the
    // session stays up and the routes stay.
    // Let GoBGP's re-sent UPDATEs settle before counting again.
    std::thread::sleep(Duration::from_millis(500));
    let before = counter(&run, g, "updates_in");
    let transitions = counter(&run, g, "established_transitions");
    let r = oxr_show(&run, &["clear", "bgp", "neighbor", g, "soft", "in"]);
    assert!(r.get("error").is_none(), "{r}");
    assert!(
        wait_for(
            "GoBGP re-sends to oxr",
            Duration::from_secs(10),
            || counter(&run, g, "updates_in") > before
        ),
        "{}",
        diag()
    );
    assert_eq!(
        counter(&run, g, "established_transitions"),
        transitions,
        "soft clear must not reset the session"
    );
    assert!(route("172.20.1.0/24").is_some() && route("172.20.9.0/24").is_none());
}
