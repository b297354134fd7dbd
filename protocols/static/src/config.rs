//! The configured section -> the set of routes it asks for.

use oxr_config::StaticConfig;

use crate::rib::{to_route, RouteSet};

/// The routes `cfg` asks for; no section means no routes.
pub fn desired_routes(cfg: Option<&StaticConfig>) -> RouteSet {
    cfg.map(|c| {
        c.route
            .iter()
            .map(|(prefix, r)| (*prefix, to_route(*prefix, r)))
            .collect()
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(toml_text: &str) -> Option<StaticConfig> {
        let cfg = oxr_config::parse_and_validate(toml_text).expect("valid config");
        serde_json::from_value(cfg.section_json("static")).unwrap()
    }

    #[test]
    fn every_configured_prefix_becomes_one_route() {
        let s = section(
            r#"
            [protocols.static.route."10.9.0.0/16"]
            via = ["10.0.12.2", "10.0.13.2"]
            [protocols.static.route."192.0.2.0/24"]
            action = "blackhole"
            [protocols.static.route."2001:db8:99::/48"]
            interface = "eth1"
            distance = 250
            "#,
        );
        let routes = desired_routes(s.as_ref());
        let keys: Vec<String> = routes.keys().map(|p| p.to_string()).collect();
        assert_eq!(keys, ["10.9.0.0/16", "192.0.2.0/24", "2001:db8:99::/48"]);
        assert_eq!(routes.values().next().unwrap().nexthops.len(), 2);
        assert_eq!(routes.values().last().unwrap().distance, 250);
    }

    #[test]
    fn no_section_means_no_routes() {
        assert!(desired_routes(None).is_empty());
        assert!(desired_routes(section("").as_ref()).is_empty());
    }
}
