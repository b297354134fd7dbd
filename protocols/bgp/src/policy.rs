//! Import/export policy: serde definitions (embedded in the TOML config) and
//! their evaluation.
//!
//! ```toml
//! [policy.FROM-TRANSIT.term.10.match]
//! prefix-list = ["0.0.0.0/0 ge 25", "10.0.0.0/8 le 32"]
//! [policy.FROM-TRANSIT.term.10.then]
//! action = "reject"
//! [policy.FROM-TRANSIT.term.20.match]
//! as-path = "_65001$"
//! community = ["65000:100"]
//! [policy.FROM-TRANSIT.term.20.then]
//! local-pref = 200
//! community.add = ["65000:200"]
//! action = "accept"
//! ```
//!
//! Terms run in numeric order. A term matches when every condition it names
//! matches; its `then` modifications apply, and its `action`, if any, ends the
//! evaluation. A chain of policies runs in order until one decides. When none
//! decides -- or no policy is configured -- the default is RFC 8212's: reject
//! for eBGP (import and export), accept for iBGP.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;
use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::packet::attribute::{Community, LargeCommunity, MpNextHop, MpReach, PathAttributes};
use crate::packet::AfiSafi;

/// All policies by name (`policy.NAME`).
pub type PolicySet = BTreeMap<String, Policy>;

/// One named policy.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Policy {
    /// Terms keyed by sequence number (as a string, TOML keys being strings).
    #[serde(default)]
    pub term: BTreeMap<String, Term>,
}

/// One term: conditions and what to do when they hold.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Term {
    /// Conditions (all must hold; none means always).
    #[serde(default, rename = "match")]
    pub match_: Match,
    /// Modifications and verdict.
    #[serde(default)]
    pub then: Then,
}

/// Match conditions.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Match {
    /// Prefix ranges, `PREFIX [ge N] [le M]`; any may match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix_list: Vec<String>,
    /// Regular expression over the AS path rendered as space-separated numbers;
    /// `_` matches a boundary (start, end, space, set/confed brackets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_path: Option<String>,
    /// Communities `ASN:VALUE` or `no-export`/`no-advertise`/`no-export-subconfed`;
    /// any may match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub community: Vec<String>,
    /// Large communities `G:L1:L2`; any may match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub large_community: Vec<String>,
}

/// Accept or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Take the route.
    Accept,
    /// Drop the route.
    Reject,
}

/// Community list edits.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CommunityAction {
    /// Set the list to exactly these (applied first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<Vec<String>>,
    /// Remove these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
    /// Add these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<String>,
}

/// AS path prepending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Prepend {
    /// AS to prepend (default: the local AS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// How many times (1..=16).
    pub count: u8,
}

/// Modifications and verdict.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Then {
    /// Set LOCAL_PREF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,
    /// Set MED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub med: Option<u32>,
    /// Edit communities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<CommunityAction>,
    /// Edit large communities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub large_community: Option<CommunityAction>,
    /// `"self"` or an address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<String>,
    /// Prepend to the AS path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_path_prepend: Option<Prepend>,
    /// Verdict; absent means go on to the next term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Verdict>,
}

/// A prefix with a length range: matches prefixes inside `prefix` whose length
/// is within `ge..=le`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixRange {
    /// Covering prefix.
    pub prefix: IpNet,
    /// Minimum length.
    pub ge: u8,
    /// Maximum length.
    pub le: u8,
}

impl PrefixRange {
    /// Whether `p` falls in the range.
    pub fn matches(&self, p: &IpNet) -> bool {
        let l = p.prefix_len();
        l >= self.ge
            && l <= self.le
            && l >= self.prefix.prefix_len()
            && self.prefix.contains(&p.network())
    }
}

impl FromStr for PrefixRange {
    type Err = String;
    /// `PREFIX`, `PREFIX ge N`, `PREFIX le M`, `PREFIX ge N le M` (Cisco meaning:
    /// `ge` alone runs to the maximum length, `le` alone starts at the prefix's).
    fn from_str(s: &str) -> Result<Self, String> {
        let mut it = s.split_whitespace();
        let prefix: IpNet = it
            .next()
            .ok_or("empty prefix")?
            .parse()
            .map_err(|e| format!("bad prefix in {s:?}: {e}"))?;
        let prefix = prefix.trunc();
        let (mut ge, mut le) = (None, None);
        while let Some(k) = it.next() {
            let v: u8 = it
                .next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{k:?} needs a length in {s:?}"))?;
            match k {
                "ge" => ge = Some(v),
                "le" => le = Some(v),
                _ => return Err(format!("unknown keyword {k:?} in {s:?}")),
            }
        }
        let len = prefix.prefix_len();
        let max = prefix.max_prefix_len();
        let (ge, le) = match (ge, le) {
            (None, None) => (len, len),
            (Some(g), None) => (g, max),
            (None, Some(l)) => (len, l),
            (Some(g), Some(l)) => (g, l),
        };
        if !(len <= ge && ge <= le && le <= max) {
            return Err(format!("need {len} <= ge <= le <= {max} in {s:?}"));
        }
        Ok(PrefixRange { prefix, ge, le })
    }
}

/// Parses `ASN:VALUE` or a well-known community name.
pub fn parse_community(s: &str) -> Result<Community, String> {
    match s {
        "no-export" => return Ok(Community::NO_EXPORT),
        "no-advertise" => return Ok(Community::NO_ADVERTISE),
        "no-export-subconfed" => return Ok(Community::NO_EXPORT_SUBCONFED),
        _ => {}
    }
    let (a, v) = s
        .split_once(':')
        .ok_or_else(|| format!("community {s:?} is not ASN:VALUE"))?;
    match (a.parse::<u16>(), v.parse::<u16>()) {
        (Ok(a), Ok(v)) => Ok(Community::new(a, v)),
        _ => Err(format!("community {s:?}: both parts must be 0..=65535")),
    }
}

/// Parses `GLOBAL:LOCAL1:LOCAL2`.
pub fn parse_large_community(s: &str) -> Result<LargeCommunity, String> {
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        [g, l1, l2] => match (g.parse(), l1.parse(), l2.parse()) {
            (Ok(global), Ok(local1), Ok(local2)) => Ok(LargeCommunity {
                global,
                local1,
                local2,
            }),
            _ => Err(format!(
                "large community {s:?}: parts must be 0..=4294967295"
            )),
        },
        _ => Err(format!("large community {s:?} is not G:L1:L2")),
    }
}

/// Translates a Cisco-style AS path regex: `_` becomes a boundary.
pub fn compile_as_path_regex(s: &str) -> Result<Regex, String> {
    let translated = s.replace('_', r"(?:^|$|[ ,{}()\[\]])");
    Regex::new(&translated).map_err(|e| format!("bad as-path regex {s:?}: {e}"))
}

/// What a policy may need from the session it runs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyContext {
    /// Our AS (default for prepending).
    pub local_as: u32,
    /// Our address towards the peer, IPv4 (`next-hop = "self"`).
    pub self_v4: Option<Ipv4Addr>,
    /// Our address towards the peer, IPv6.
    pub self_v6: Option<Ipv6Addr>,
}

#[derive(Debug, Clone)]
enum NextHopAction {
    SelfAddr,
    Addr(IpAddr),
}

#[derive(Debug, Clone, Default)]
struct ListEdit<T> {
    replace: Option<Vec<T>>,
    remove: Vec<T>,
    add: Vec<T>,
}

impl<T: PartialEq + Clone> ListEdit<T> {
    fn apply(&self, list: &mut Vec<T>) {
        if let Some(r) = &self.replace {
            list.clone_from(r);
        }
        list.retain(|c| !self.remove.contains(c));
        for c in &self.add {
            if !list.contains(c) {
                list.push(c.clone());
            }
        }
    }
}

#[derive(Debug, Clone)]
struct CompiledTerm {
    prefixes: Vec<PrefixRange>,
    as_path: Option<Regex>,
    communities: Vec<Community>,
    large: Vec<LargeCommunity>,
    then: Then,
    community_edit: Option<ListEdit<Community>>,
    large_edit: Option<ListEdit<LargeCommunity>>,
    next_hop: Option<NextHopAction>,
}

/// A policy ready to evaluate.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    /// Its name.
    pub name: String,
    terms: Vec<CompiledTerm>,
}

type Errors = Vec<(String, String)>;

fn collect<T>(
    items: &[String],
    path: &str,
    errs: &mut Errors,
    f: impl Fn(&str) -> Result<T, String>,
) -> Vec<T> {
    let mut out = Vec::new();
    for (i, s) in items.iter().enumerate() {
        match f(s) {
            Ok(v) => out.push(v),
            Err(e) => errs.push((format!("{path}[{i}]"), e)),
        }
    }
    out
}

fn compile_edit<T>(
    a: &CommunityAction,
    path: &str,
    errs: &mut Errors,
    f: impl Fn(&str) -> Result<T, String> + Copy,
) -> ListEdit<T> {
    ListEdit {
        replace: a
            .replace
            .as_ref()
            .map(|r| collect(r, &format!("{path}.replace"), errs, f)),
        remove: collect(&a.remove, &format!("{path}.remove"), errs, f),
        add: collect(&a.add, &format!("{path}.add"), errs, f),
    }
}

impl Policy {
    /// Checks and compiles; errors carry the config path (`policy.NAME...`).
    pub fn compile(&self, name: &str) -> Result<CompiledPolicy, Errors> {
        let mut errs = Errors::new();
        let mut terms: Vec<(u32, CompiledTerm)> = Vec::new();
        for (key, t) in &self.term {
            let base = format!("policy.{name}.term.{key}");
            let Ok(seq) = key.parse::<u32>() else {
                errs.push((base, "term key must be a number".into()));
                continue;
            };
            let m = &t.match_;
            let mpath = format!("{base}.match");
            let prefixes = collect(
                &m.prefix_list,
                &format!("{mpath}.prefix-list"),
                &mut errs,
                |s| s.parse::<PrefixRange>(),
            );
            let as_path = m
                .as_path
                .as_deref()
                .and_then(|r| match compile_as_path_regex(r) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        errs.push((format!("{mpath}.as-path"), e));
                        None
                    }
                });
            let communities = collect(
                &m.community,
                &format!("{mpath}.community"),
                &mut errs,
                parse_community,
            );
            let large = collect(
                &m.large_community,
                &format!("{mpath}.large-community"),
                &mut errs,
                parse_large_community,
            );
            let tpath = format!("{base}.then");
            let community_edit = t.then.community.as_ref().map(|a| {
                compile_edit(a, &format!("{tpath}.community"), &mut errs, parse_community)
            });
            let large_edit = t.then.large_community.as_ref().map(|a| {
                compile_edit(
                    a,
                    &format!("{tpath}.large-community"),
                    &mut errs,
                    parse_large_community,
                )
            });
            let next_hop = match t.then.next_hop.as_deref() {
                None => None,
                Some("self") => Some(NextHopAction::SelfAddr),
                Some(s) => match s.parse::<IpAddr>() {
                    Ok(a) => Some(NextHopAction::Addr(a)),
                    Err(_) => {
                        errs.push((
                            format!("{tpath}.next-hop"),
                            format!("{s:?} is not \"self\" or an address"),
                        ));
                        None
                    }
                },
            };
            if let Some(p) = t.then.as_path_prepend {
                if !(1..=16).contains(&p.count) {
                    errs.push((
                        format!("{tpath}.as-path-prepend.count"),
                        "must be 1..=16".into(),
                    ));
                }
            }
            terms.push((
                seq,
                CompiledTerm {
                    prefixes,
                    as_path,
                    communities,
                    large,
                    then: t.then.clone(),
                    community_edit,
                    large_edit,
                    next_hop,
                },
            ));
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        terms.sort_by_key(|(s, _)| *s);
        Ok(CompiledPolicy {
            name: name.to_string(),
            terms: terms.into_iter().map(|(_, t)| t).collect(),
        })
    }
}

/// Checks every policy; returns (path, reason) for each error.
pub fn validate(policies: &PolicySet) -> Vec<(String, String)> {
    policies
        .iter()
        .filter_map(|(n, p)| p.compile(n).err())
        .flatten()
        .collect()
}

impl CompiledTerm {
    fn matches(&self, prefix: &IpNet, attrs: &PathAttributes) -> bool {
        if !self.prefixes.is_empty() && !self.prefixes.iter().any(|r| r.matches(prefix)) {
            return false;
        }
        if let Some(re) = &self.as_path {
            let rendered = attrs
                .as_path
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default();
            if !re.is_match(&rendered) {
                return false;
            }
        }
        if !self.communities.is_empty()
            && !self
                .communities
                .iter()
                .any(|c| attrs.communities.contains(c))
        {
            return false;
        }
        if !self.large.is_empty()
            && !self
                .large
                .iter()
                .any(|c| attrs.large_communities.contains(c))
        {
            return false;
        }
        true
    }

    fn apply(&self, prefix: &IpNet, attrs: &mut PathAttributes, ctx: &PolicyContext) {
        let t = &self.then;
        if let Some(lp) = t.local_pref {
            attrs.local_pref = Some(lp);
        }
        if let Some(m) = t.med {
            attrs.med = Some(m);
        }
        if let Some(e) = &self.community_edit {
            e.apply(&mut attrs.communities);
        }
        if let Some(e) = &self.large_edit {
            e.apply(&mut attrs.large_communities);
        }
        if let Some(p) = t.as_path_prepend {
            let asn = p.asn.unwrap_or(ctx.local_as);
            attrs
                .as_path
                .get_or_insert_with(Default::default)
                .prepend(asn, usize::from(p.count));
        }
        let nh = match &self.next_hop {
            None => None,
            Some(NextHopAction::Addr(a)) => Some(*a),
            Some(NextHopAction::SelfAddr) => match prefix {
                IpNet::V4(_) => ctx.self_v4.map(IpAddr::V4),
                IpNet::V6(_) => ctx.self_v6.map(IpAddr::V6),
            },
        };
        match (prefix, nh) {
            (IpNet::V4(_), Some(IpAddr::V4(a))) => attrs.next_hop = Some(a),
            (IpNet::V6(_), Some(IpAddr::V6(a))) => match &mut attrs.mp_reach {
                Some(mp) => {
                    mp.next_hop = MpNextHop::V6 {
                        global: a,
                        link_local: None,
                    }
                }
                None => {
                    attrs.mp_reach = Some(MpReach {
                        afi_safi: AfiSafi::IPV6_UNICAST,
                        next_hop: MpNextHop::V6 {
                            global: a,
                            link_local: None,
                        },
                        nlri: Vec::new(),
                    })
                }
            },
            // A next hop of the other family does not apply to this route.
            _ => {}
        }
    }
}

impl CompiledPolicy {
    /// Whether the outcome can differ between prefixes sharing one attribute
    /// set (a term matches on prefixes). When not, callers evaluate once per set.
    pub fn prefix_dependent(&self) -> bool {
        self.terms.iter().any(|t| !t.prefixes.is_empty())
    }

    /// Runs the terms over `attrs` (modified in place). `None`: no term decided.
    pub fn evaluate(
        &self,
        prefix: &IpNet,
        attrs: &mut PathAttributes,
        ctx: &PolicyContext,
    ) -> Option<Verdict> {
        for t in &self.terms {
            if t.matches(prefix, attrs) {
                t.apply(prefix, attrs, ctx);
                if let Some(v) = t.then.action {
                    return Some(v);
                }
            }
        }
        None
    }
}

/// The verdict when no policy decided (RFC 8212 for eBGP).
pub fn default_verdict(ebgp: bool) -> Verdict {
    if ebgp {
        Verdict::Reject
    } else {
        Verdict::Accept
    }
}

/// Runs a chain of policies; returns the modified attributes when accepted.
/// With an empty chain an eBGP route is rejected (RFC 8212).
pub fn apply_chain(
    chain: &[&CompiledPolicy],
    prefix: &IpNet,
    attrs: &PathAttributes,
    ctx: &PolicyContext,
    ebgp: bool,
) -> Option<PathAttributes> {
    let mut a = attrs.clone();
    let verdict = chain
        .iter()
        .find_map(|p| p.evaluate(prefix, &mut a, ctx))
        .unwrap_or_else(|| default_verdict(ebgp));
    (verdict == Verdict::Accept).then_some(a)
}
