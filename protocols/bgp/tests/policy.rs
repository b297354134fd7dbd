//! Policy evaluation and the config/policy TOML shape.

use std::net::Ipv4Addr;

use ipnet::IpNet;
use oxr_bgp::config::BgpConfig;
use oxr_bgp::packet::attribute::{
    AsPath, AsSegment, Community, LargeCommunity, Origin, PathAttributes, SegmentType,
};
use oxr_bgp::policy::*;

const CONFIG: &str = r#"
local-as = 65000
router-id = "192.0.2.1"

[neighbor."192.0.2.2"]
remote-as = 65001
import-policy = ["FROM-PEER"]
export-policy = ["TO-PEER"]
afi = ["ipv4-unicast", "ipv6-unicast"]
graceful-restart = { enabled = true, restart-time = 120 }

[policy.FROM-PEER.term.10.match]
prefix-list = ["0.0.0.0/0 ge 25", "10.0.0.0/8 le 32"]
[policy.FROM-PEER.term.10.then]
action = "reject"

[policy.FROM-PEER.term.20.match]
as-path = "_65001$"
[policy.FROM-PEER.term.20.then]
local-pref = 200
community.add = ["65000:200"]
community.remove = ["65001:1"]
action = "accept"

[policy.FROM-PEER.term.30.match]
community = ["no-export"]
[policy.FROM-PEER.term.30.then]
med = 7
large-community.replace = ["65000:1:1"]
as-path-prepend = { count = 2 }
next-hop = "self"
action = "accept"

[policy.TO-PEER.term.1.then]
action = "accept"
"#;

fn cfg() -> BgpConfig {
    toml::from_str(CONFIG).unwrap()
}

fn ctx() -> PolicyContext {
    PolicyContext {
        local_as: 65000,
        self_v4: Some(Ipv4Addr::new(192, 0, 2, 1)),
        self_v6: None,
    }
}

fn attrs(path: &[u32]) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::from_sequence(path.to_vec())),
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 2)),
        communities: vec![Community::new(65001, 1)],
        ..Default::default()
    }
}

fn from_peer() -> CompiledPolicy {
    cfg().policy["FROM-PEER"].compile("FROM-PEER").unwrap()
}

fn p(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn config_parses_validates_and_round_trips() {
    let c = cfg();
    assert!(c.validate().is_empty(), "{:?}", c.validate());
    let again: BgpConfig = toml::from_str(&toml::to_string(&c).unwrap()).unwrap();
    assert_eq!(again, c);
}

#[test]
fn prefix_list_rejects_long_prefixes_and_rfc1918() {
    let pol = from_peer();
    for pfx in ["198.51.100.0/25", "10.1.0.0/16", "10.0.0.0/8"] {
        let r = apply_chain(&[&pol], &p(pfx), &attrs(&[65001]), &ctx(), true);
        assert!(r.is_none(), "{pfx} should be rejected");
    }
}

#[test]
fn as_path_regex_sets_local_pref_and_edits_communities() {
    let out = apply_chain(
        &[&from_peer()],
        &p("198.51.100.0/24"),
        &attrs(&[65002, 65001]),
        &ctx(),
        true,
    )
    .unwrap();
    assert_eq!(out.local_pref, Some(200));
    assert_eq!(out.communities, vec![Community::new(65000, 200)]);
    // `_65001$` must not match 165001.
    assert!(apply_chain(
        &[&from_peer()],
        &p("198.51.100.0/24"),
        &attrs(&[165001]),
        &ctx(),
        true
    )
    .is_none());
}

#[test]
fn community_match_applies_med_prepend_next_hop_large_community() {
    let mut a = attrs(&[65009]);
    a.communities.push(Community::NO_EXPORT);
    a.large_communities = vec![LargeCommunity {
        global: 1,
        local1: 2,
        local2: 3,
    }];
    let out = apply_chain(&[&from_peer()], &p("198.51.100.0/24"), &a, &ctx(), true).unwrap();
    assert_eq!(out.med, Some(7));
    assert_eq!(out.as_path.unwrap().to_string(), "65000 65000 65009");
    assert_eq!(out.next_hop, Some(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(
        out.large_communities,
        vec![LargeCommunity {
            global: 65000,
            local1: 1,
            local2: 1
        }]
    );
}

#[test]
fn rfc8212_default_rejects_ebgp_and_accepts_ibgp() {
    let a = attrs(&[65009]);
    assert!(apply_chain(&[], &p("198.51.100.0/24"), &a, &ctx(), true).is_none());
    assert_eq!(
        apply_chain(&[], &p("198.51.100.0/24"), &a, &ctx(), false),
        Some(a.clone())
    );
    // A chain that decides nothing falls to the same default.
    assert!(apply_chain(&[&from_peer()], &p("198.51.100.0/24"), &a, &ctx(), true).is_none());
}

#[test]
fn prefix_ranges() {
    let r: PrefixRange = "10.0.0.0/8 ge 16 le 24".parse().unwrap();
    assert!(r.matches(&p("10.1.0.0/16")) && r.matches(&p("10.1.2.0/24")));
    assert!(
        !r.matches(&p("10.0.0.0/8"))
            && !r.matches(&p("10.1.2.0/25"))
            && !r.matches(&p("11.0.0.0/16"))
    );
    let exact: PrefixRange = "2001:db8::/32".parse().unwrap();
    assert!(exact.matches(&p("2001:db8::/32")) && !exact.matches(&p("2001:db8::/48")));
    assert!("10.0.0.0/8 ge 4".parse::<PrefixRange>().is_err());
    assert!("10.0.0.0/8 le 33".parse::<PrefixRange>().is_err());
}

#[test]
fn as_path_regex_underscore_matches_set_boundaries() {
    let re = compile_as_path_regex("_65003_").unwrap();
    let mut path = AsPath::from_sequence(vec![65001]);
    path.segments.push(AsSegment {
        kind: SegmentType::Set,
        asns: vec![65002, 65003],
    });
    assert_eq!(path.to_string(), "65001 {65002,65003}");
    assert!(re.is_match(&path.to_string()));
    assert!(!re.is_match("650031 1"));
}

#[test]
fn validate_reports_paths_and_reasons() {
    let bad = r#"
local-as = 0
router-id = "0.0.0.0"
[neighbor."192.0.2.2"]
remote-as = 65001
hold-time = 2
route-reflector-client = true
import-policy = ["MISSING"]
[policy.P.term.x.then]
action = "accept"
[policy.P.term.10.match]
prefix-list = ["10.0.0.0/33"]
as-path = "(("
community = ["65536:1"]
[policy.P.term.10.then]
next-hop = "me"
"#;
    let c: BgpConfig = toml::from_str(bad).unwrap();
    let errs: Vec<String> = c.validate().into_iter().map(|(path, _)| path).collect();
    for want in [
        "local-as",
        "router-id",
        "neighbor.\"192.0.2.2\".hold-time",
        "neighbor.\"192.0.2.2\".route-reflector-client",
        "neighbor.\"192.0.2.2\".import-policy[0]",
        "policy.P.term.x",
        "policy.P.term.10.match.prefix-list[0]",
        "policy.P.term.10.match.as-path",
        "policy.P.term.10.match.community[0]",
        "policy.P.term.10.then.next-hop",
    ] {
        assert!(errs.iter().any(|e| e == want), "missing {want} in {errs:?}");
    }
}

#[test]
fn unknown_keys_are_rejected() {
    let r: Result<BgpConfig, _> =
        toml::from_str("local-as = 1\nrouter-id = \"1.1.1.1\"\nbogus = 1\n");
    assert!(r.is_err());
}
