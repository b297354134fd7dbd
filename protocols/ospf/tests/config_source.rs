//! The router-ID fallback through the SDK's config delivery: `router.router-id` of the
//! router TOML reaches oxr-ospf beside its section (no sockets; the file source).

use std::net::Ipv4Addr;

use oxr_ospf::config::{effective_config, OspfConfig, OspfSchema};
use oxr_sdk::ConfigWatcher;

#[test]
fn router_section_router_id_applies_when_ospf_names_none() {
    let _ = oxr_config::register(OspfSchema);
    let dir = std::env::temp_dir().join(format!("oxr-ospf-cfgsrc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("r1.toml");
    std::fs::write(
        &path,
        "[router]\nname = \"r1\"\nrouter-id = \"10.255.0.7\"\n\
         [protocols.ospf.areas.\"0.0.0.0\"]\n\
         [protocols.ospf.interfaces.eth0]\narea = \"0.0.0.0\"\n",
    )
    .unwrap();
    let w = ConfigWatcher::<Option<OspfConfig>>::from_file(&path, "ospf").unwrap();
    let u = w.current().expect("file delivers at once");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(u.section.as_ref().unwrap().router_id, None);
    let eff = effective_config(u.section.as_ref(), &u.router)
        .unwrap()
        .unwrap();
    assert_eq!(eff.router_id, Some(Ipv4Addr::new(10, 255, 0, 7)));
}
