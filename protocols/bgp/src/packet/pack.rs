//! UPDATE packing: many prefixes sharing one attribute set go in as few
//! UPDATEs as fit in 4096 octets (RFC 4271 section 4.3), withdrawals likewise,
//! and End-of-RIB markers (RFC 4724 section 2).
//!
//! IPv4 unicast uses the UPDATE's own Withdrawn Routes and NLRI fields; IPv6
//! unicast goes in MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760).

use ipnet::IpNet;

use super::attribute::{MpReach, MpUnreach, PathAttributes};
use super::{AfiSafi, Message, SessionContext, Update, HEADER_LEN, MAX_MESSAGE_LEN};

/// Octets a prefix takes in NLRI encoding.
fn prefix_size(p: &IpNet) -> usize {
    1 + usize::from(p.prefix_len()).div_ceil(8)
}

/// Splits `prefixes` into runs whose encoded size stays within `budget`.
fn runs(prefixes: &[IpNet], budget: usize) -> Vec<&[IpNet]> {
    let mut out = Vec::new();
    let (mut start, mut used) = (0, 0);
    for (i, p) in prefixes.iter().enumerate() {
        let n = prefix_size(p);
        if used + n > budget && i > start {
            out.push(&prefixes[start..i]);
            start = i;
            used = 0;
        }
        used += n;
    }
    if start < prefixes.len() {
        out.push(&prefixes[start..]);
    }
    out
}

/// Fixed part of an UPDATE: header, Withdrawn Routes Length, Total Path
/// Attribute Length.
const UPDATE_OVERHEAD: usize = HEADER_LEN + 4;
/// MP_UNREACH_NLRI header with extended length, AFI and SAFI.
const MP_UNREACH_OVERHEAD: usize = 4 + 3;

/// Appends UPDATEs withdrawing `prefixes` (any mix of IPv4 and IPv6) to `out`;
/// returns how many messages were written.
pub fn withdrawals(ctx: &SessionContext, prefixes: &[IpNet], out: &mut Vec<u8>) -> usize {
    let (v4, v6): (Vec<IpNet>, Vec<IpNet>) = prefixes.iter().partition(|p| p.addr().is_ipv4());
    let mut n = 0;
    for run in runs(&v4, MAX_MESSAGE_LEN - UPDATE_OVERHEAD) {
        let u = Update {
            withdrawn: run
                .iter()
                .filter_map(|p| match p {
                    IpNet::V4(p) => Some(*p),
                    IpNet::V6(_) => None,
                })
                .collect(),
            ..Default::default()
        };
        n += push(ctx, u, out);
    }
    for run in runs(&v6, MAX_MESSAGE_LEN - UPDATE_OVERHEAD - MP_UNREACH_OVERHEAD) {
        let u = Update {
            attributes: PathAttributes {
                mp_unreach: Some(MpUnreach {
                    afi_safi: AfiSafi::IPV6_UNICAST,
                    withdrawn: run.to_vec(),
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        n += push(ctx, u, out);
    }
    n
}

/// Appends UPDATEs announcing `prefixes` (one family, the one `ipv6` names)
/// with `attrs` to `out`; returns how many messages were written (0 when the
/// attributes alone do not fit a message).
///
/// `attrs` must carry the next hop for the family: NEXT_HOP for IPv4, an
/// MP_REACH_NLRI (its NLRI ignored) for IPv6.
pub fn announcements(
    ctx: &SessionContext,
    attrs: &PathAttributes,
    ipv6: bool,
    prefixes: &[IpNet],
    out: &mut Vec<u8>,
) -> usize {
    let mut base = attrs.clone();
    base.mp_unreach = None;
    if ipv6 {
        base.next_hop = None;
        let Some(mp) = &mut base.mp_reach else {
            return 0;
        };
        mp.nlri.clear();
    } else {
        base.mp_reach = None;
    }
    let mut enc = Vec::new();
    if base.encode(ctx.four_octet_as, &mut enc).is_err() {
        return 0;
    }
    // +1: MP_REACH may switch to the extended length form once NLRI are added.
    let fixed = UPDATE_OVERHEAD + enc.len() + usize::from(ipv6);
    let Some(budget) = MAX_MESSAGE_LEN.checked_sub(fixed).filter(|b| *b >= 17) else {
        return 0;
    };
    let mut n = 0;
    for run in runs(prefixes, budget) {
        let mut a = base.clone();
        let u = if ipv6 {
            if let Some(mp) = &mut a.mp_reach {
                *mp = MpReach {
                    afi_safi: AfiSafi::IPV6_UNICAST,
                    next_hop: mp.next_hop,
                    nlri: run.to_vec(),
                };
            }
            Update {
                attributes: a,
                ..Default::default()
            }
        } else {
            Update {
                attributes: a,
                nlri: run
                    .iter()
                    .filter_map(|p| match p {
                        IpNet::V4(p) => Some(*p),
                        IpNet::V6(_) => None,
                    })
                    .collect(),
                ..Default::default()
            }
        };
        n += push(ctx, u, out);
    }
    n
}

/// Appends the End-of-RIB marker for `family`.
pub fn end_of_rib(ctx: &SessionContext, family: AfiSafi, out: &mut Vec<u8>) {
    let u = if family == AfiSafi::IPV4_UNICAST {
        Update::default()
    } else {
        Update {
            attributes: PathAttributes {
                mp_unreach: Some(MpUnreach {
                    afi_safi: family,
                    withdrawn: Vec::new(),
                }),
                ..Default::default()
            },
            ..Default::default()
        }
    };
    push(ctx, u, out);
}

fn push(ctx: &SessionContext, u: Update, out: &mut Vec<u8>) -> usize {
    match Message::Update(u).encode(ctx) {
        Ok(b) => {
            out.extend_from_slice(&b);
            1
        }
        // Budgets above keep every message within 4096 octets.
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::attribute::{AsPath, MpNextHop, Origin};
    use crate::packet::header::frame;
    use std::net::Ipv4Addr;

    fn split(mut b: &[u8]) -> Vec<Message> {
        let ctx = SessionContext::new_4byte(false);
        let mut v = Vec::new();
        while let Ok(Some(n)) = frame(b) {
            v.push(Message::decode(&b[..n], &ctx).unwrap());
            b = &b[n..];
        }
        assert!(b.is_empty());
        v
    }

    fn attrs() -> PathAttributes {
        PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::from_sequence(vec![4_200_000_000, 65001])),
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
            mp_reach: Some(MpReach {
                afi_safi: AfiSafi::IPV6_UNICAST,
                next_hop: MpNextHop::V6 {
                    global: "2001:db8::1".parse().unwrap(),
                    link_local: None,
                },
                nlri: vec![],
            }),
            ..Default::default()
        }
    }

    #[test]
    fn thousands_of_ipv4_prefixes_pack_into_full_messages() {
        let ctx = SessionContext::new_4byte(false);
        let ps: Vec<IpNet> = (0..3000u32)
            .map(|i| {
                IpNet::V4(ipnet::Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).unwrap())
            })
            .collect();
        let mut out = Vec::new();
        let n = announcements(&ctx, &attrs(), false, &ps, &mut out);
        assert!((3..=4).contains(&n), "{n} messages");
        let msgs = split(&out);
        let total: usize = msgs
            .iter()
            .map(|m| match m {
                Message::Update(u) => {
                    assert!(u.attributes.mp_reach.is_none());
                    u.nlri.len()
                }
                _ => panic!(),
            })
            .sum();
        assert_eq!(total, 3000);
    }

    #[test]
    fn ipv6_prefixes_go_in_mp_reach_and_withdrawals_in_mp_unreach() {
        let ctx = SessionContext::new_4byte(false);
        let ps: Vec<IpNet> = (0..2000u32)
            .map(|i| format!("2001:db8:{:x}::/48", i).parse().unwrap())
            .collect();
        let mut out = Vec::new();
        let n = announcements(&ctx, &attrs(), true, &ps, &mut out);
        assert!(n >= 4, "{n}");
        let got: usize = split(&out)
            .iter()
            .map(|m| match m {
                Message::Update(u) => {
                    assert!(u.nlri.is_empty() && u.attributes.next_hop.is_none());
                    u.attributes.mp_reach.as_ref().unwrap().nlri.len()
                }
                _ => panic!(),
            })
            .sum();
        assert_eq!(got, 2000);
        let mut out = Vec::new();
        withdrawals(&ctx, &ps, &mut out);
        let got: usize = split(&out)
            .iter()
            .map(|m| match m {
                Message::Update(u) => u.all_withdrawn().len(),
                _ => panic!(),
            })
            .sum();
        assert_eq!(got, 2000);
    }

    #[test]
    fn end_of_rib_markers_decode_as_such() {
        let ctx = SessionContext::new_4byte(false);
        for f in [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST] {
            let mut out = Vec::new();
            end_of_rib(&ctx, f, &mut out);
            match &split(&out)[0] {
                Message::Update(u) => assert_eq!(u.end_of_rib(), Some(f)),
                _ => panic!(),
            }
        }
    }
}
