//! What goes to the RIB: the instance's route outputs as SDK routes under protocol "rip",
//! distance 120.

use std::net::IpAddr;

use ipnet::IpNet;
use oxr_sdk::{Hello, Nexthop, RibSink, Route};

use crate::instance::Output;

/// Administrative distance of RIP routes.
pub const DISTANCE: u32 = 120;

/// The Publish stream's Hello.
pub fn hello() -> Hello {
    Hello {
        protocol: "rip".to_string(),
        instance: String::new(),
        default_distance: DISTANCE,
        stale_hold_secs: 0,
    }
}

/// Passes a route output to the RIB; returns true if `o` was one. The next hop carries its
/// interface, so the RIB needs no recursive resolution.
pub fn apply(sink: &mut impl RibSink, o: &Output) -> bool {
    match o {
        Output::RouteAdd {
            prefix,
            gateway,
            ifname,
            metric,
        } => {
            let mut r = Route::forward(
                IpNet::V4(*prefix),
                vec![Nexthop {
                    gateway: Some(IpAddr::V4(*gateway)),
                    interface: Some(ifname.clone()),
                    weight: 0,
                }],
            );
            r.metric = u32::from(*metric);
            sink.add(r);
            true
        }
        Output::RouteWithdraw { prefix } => {
            sink.withdraw(IpNet::V4(*prefix));
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxr_sdk::RibUpdate;

    #[derive(Default)]
    struct Sink(Vec<RibUpdate>);
    impl RibSink for Sink {
        fn add(&mut self, r: Route) {
            self.0.push(RibUpdate::Add(r));
        }
        fn withdraw(&mut self, p: IpNet) {
            self.0.push(RibUpdate::Withdraw(p));
        }
        fn end_of_rib(&mut self) {
            self.0.push(RibUpdate::EndOfRib);
        }
    }

    #[test]
    fn outputs_become_routes_with_interface_next_hops() {
        let mut s = Sink::default();
        let add = Output::RouteAdd {
            prefix: "10.9.0.0/16".parse().unwrap(),
            gateway: "10.0.0.2".parse().unwrap(),
            ifname: "eth0".into(),
            metric: 3,
        };
        assert!(apply(&mut s, &add));
        assert!(!apply(&mut s, &Output::Log("x".into())));
        let RibUpdate::Add(r) = &s.0[0] else { panic!() };
        assert_eq!(r.metric, 3);
        assert_eq!(r.nexthops[0].interface.as_deref(), Some("eth0"));
        assert_eq!(hello().default_distance, 120);
    }
}
