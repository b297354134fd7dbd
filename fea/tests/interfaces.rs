//! The interface watcher and interface configuration against a real kernel (needs root).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{root_or_skip, Netns};
use oxr_fea::interfaces::{InterfaceTable, InterfaceWatcher};

fn wait_for(w: &InterfaceWatcher, what: &str, f: impl Fn(&InterfaceTable) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if f(&w.snapshot()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}: {:?}", w.snapshot());
}

#[test]
fn watcher_follows_veth_creation_state_and_addresses_and_redumps() {
    if !root_or_skip("watcher_follows_veth_creation_state_and_addresses_and_redumps") {
        return;
    }
    let ns = Netns::new("ifwatch");
    let w = InterfaceWatcher::start(Some(&ns.path())).expect("watcher");
    let (first, mut rx) = w.subscribe();
    assert!(first
        .by_name("lo")
        .is_some_and(|i| i.loopback && i.admin_up));

    ns.ip(&[
        "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
    ]);
    wait_for(&w, "veth0 to appear", |t| t.by_name("veth0").is_some());
    assert!(!w.snapshot().by_name("veth0").unwrap().admin_up);
    ns.ip(&["link", "set", "veth0", "up"]);
    ns.ip(&["link", "set", "veth1", "up"]);
    wait_for(&w, "veth0 up and running", |t| {
        t.by_name("veth0").is_some_and(|i| i.admin_up && i.oper_up)
    });
    ns.ip(&["addr", "add", "192.0.2.1/24", "dev", "veth0"]);
    ns.ip(&["addr", "add", "2001:db8::1/64", "dev", "veth0", "nodad"]);
    wait_for(&w, "addresses", |t| {
        t.by_name("veth0").is_some_and(|i| {
            let a: Vec<String> = i.addresses.iter().map(|a| a.prefix.to_string()).collect();
            a.contains(&"192.0.2.1/24".into()) && a.contains(&"2001:db8::1/64".into())
        })
    });
    // Incremental updates were published (never a full dump so far).
    let mut saw_veth = false;
    while let Ok(u) = rx.try_recv() {
        assert!(!u.full_dump);
        saw_veth |= u.changed.iter().any(|i| i.name == "veth0");
    }
    assert!(saw_veth);

    ns.ip(&["link", "del", "veth0"]);
    wait_for(&w, "veth0 removal", |t| {
        t.by_name("veth0").is_none() && t.by_name("veth1").is_none()
    });

    // The overrun path: a re-dump replaces the table and is published as a full dump.
    w.redump().expect("redump");
    let deadline = Instant::now() + Duration::from_secs(2);
    let full = loop {
        match rx.try_recv() {
            Ok(u) if u.full_dump => break u,
            Ok(_) => {}
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("no full dump published: {e:?}"),
        }
    };
    let names: Vec<&str> = full.changed.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, vec!["lo"]);
    assert_eq!(w.overruns(), 0);
}

#[test]
fn configured_interfaces_get_addresses_mtu_and_admin_state() {
    if !root_or_skip("configured_interfaces_get_addresses_mtu_and_admin_state") {
        return;
    }
    let ns = Netns::new("ifcfg");
    ns.ip(&[
        "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
    ]);
    let w = InterfaceWatcher::start(Some(&ns.path())).expect("watcher");
    let cfg: BTreeMap<String, oxr_config::InterfaceConfig> = [
        (
            "veth0".to_string(),
            oxr_config::InterfaceConfig {
                address: vec![
                    "10.9.0.1/24".parse().unwrap(),
                    "2001:db8:9::1/64".parse().unwrap(),
                ],
                mtu: Some(1400),
                up: None,
            },
        ),
        (
            "absent0".to_string(),
            oxr_config::InterfaceConfig::default(),
        ),
    ]
    .into();
    let failed = oxr_fea::server::configure_interfaces(&w, &cfg);
    assert!(failed.is_empty(), "{failed:?}");
    let link = ns.ip(&["link", "show", "veth0"]);
    assert!(link.contains("mtu 1400") && link.contains(",UP"), "{link}");
    let addrs = ns.ip(&["addr", "show", "veth0"]);
    assert!(
        addrs.contains("10.9.0.1/24") && addrs.contains("2001:db8:9::1/64"),
        "{addrs}"
    );
    // Applied again once the watcher caught up: nothing left to do.
    wait_for(&w, "config to be visible", |t| {
        t.by_name("veth0")
            .is_some_and(|i| i.mtu == 1400 && i.addresses.len() >= 2)
    });
    let (actions, missing) = oxr_fea::config::plan_interfaces(&w.snapshot(), &cfg);
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(missing, vec!["absent0".to_string()]);
}
