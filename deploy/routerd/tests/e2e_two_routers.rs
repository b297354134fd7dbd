//! Two virtual routers connected by veth pairs, each run by oxr-routerd in its own network
//! namespace: static routes from the config reach the kernel FIB with oxr's protocol tag,
//! a ping crosses, ECMP becomes a multipath route, and every process can be killed -9
//! without the forwarding table moving.

use oxr_testlab as lab;

use std::time::Duration;

use lab::*;

fn r1_config() -> String {
    r#"
[router]
name = "r1"
router-id = "10.255.0.1"

[interfaces.lo]
address = ["10.255.0.1/32"]
[interfaces.eth0]
address = ["10.0.12.1/24", "2001:db8:12::1/64"]
[interfaces.eth1]
address = ["10.0.13.1/24"]

[rib]
startup-hold-secs = 5

# The other router's loopback, via its address on the first link.
[protocols.static.route."10.255.0.2/32"]
via = ["10.0.12.2"]
# ECMP over both links.
[protocols.static.route."10.200.0.0/16"]
via = ["10.0.12.2", "10.0.13.2"]
# Recursive: the gateway is the other loopback, reached through the route above.
[protocols.static.route."10.250.0.0/16"]
via = ["10.255.0.2"]
[protocols.static.route."192.0.2.0/24"]
action = "blackhole"
[protocols.static.route."198.51.100.0/24"]
action = "reject"
[protocols.static.route."2001:db8:2::/48"]
via = ["2001:db8:12::2"]
"#
    .to_string()
}

fn r2_config() -> String {
    r#"
[router]
name = "r2"
[interfaces.lo]
address = ["10.255.0.2/32"]
[interfaces.eth0]
address = ["10.0.12.2/24", "2001:db8:12::2/64"]
[interfaces.eth1]
address = ["10.0.13.2/24"]
[rib]
startup-hold-secs = 5
[protocols.static.route."10.255.0.1/32"]
via = ["10.0.12.1"]
"#
    .to_string()
}

const R1_PREFIXES_V4: &[&str] = &[
    "10.200.0.0/16",
    "10.250.0.0/16",
    "10.255.0.2",
    "192.0.2.0/24",
    "198.51.100.0/24",
];

struct Lab {
    // Field order is drop order: routers stop before their namespaces go.
    r1: Router,
    r2: Router,
    ns1: Netns,
    ns2: Netns,
    _dir: Scratch,
}

fn lab(tag: &str, routerd_args: &[&str]) -> Lab {
    let dir = Scratch::new(tag);
    let pid = std::process::id();
    let ns1 = Netns::new(&format!("oxr-{tag}-{pid}-r1"));
    let ns2 = Netns::new(&format!("oxr-{tag}-{pid}-r2"));
    for ns in [&ns1, &ns2] {
        // Addresses are usable at once (no duplicate address detection delay).
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"]);
        ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0"]);
    }
    veth(&ns1, "eth0", &ns2, "eth0");
    veth(&ns1, "eth1", &ns2, "eth1");
    let r1 = Router::start(&ns1, "r1", &r1_config(), &dir.0, routerd_args);
    let r2 = Router::start(&ns2, "r2", &r2_config(), &dir.0, routerd_args);
    Lab {
        r1,
        r2,
        ns1,
        ns2,
        _dir: dir,
    }
}

fn wait_for_r1_routes(lab: &Lab) {
    let ok = wait_until(Duration::from_secs(20), || {
        lab.ns1.oxr_prefixes("-4") == R1_PREFIXES_V4
            && lab.ns1.oxr_prefixes("-6") == ["2001:db8:2::/48"]
    });
    assert!(
        ok,
        "r1's FIB never matched its config: {:?} {:?}\n{}",
        lab.ns1.oxr_routes("-4"),
        lab.ns1.oxr_routes("-6"),
        lab.r1.logs()
    );
}

#[test]
fn static_routes_reach_the_kernel_and_a_ping_crosses() {
    if !require_root("static_routes_reach_the_kernel_and_a_ping_crosses") {
        return;
    }
    let lab = lab("e2e-fib", &[]);
    wait_for_r1_routes(&lab);
    assert!(wait_until(Duration::from_secs(20), || {
        lab.ns2.oxr_prefixes("-4") == ["10.255.0.1"]
    }));

    // Each kind of route has the right shape in the kernel.
    let show = |p: &str| lab.ns1.ip(&["route", "show", p]);
    assert!(show("10.255.0.2").contains("via 10.0.12.2 dev eth0"));
    let ecmp = show("10.200.0.0/16");
    assert!(
        ecmp.contains("nexthop via 10.0.12.2 dev eth0")
            && ecmp.contains("nexthop via 10.0.13.2 dev eth1"),
        "ECMP route is not multipath: {ecmp}"
    );
    assert!(
        show("10.250.0.0/16").contains("via 10.0.12.2 dev eth0"),
        "recursive route resolves through the /32: {}",
        show("10.250.0.0/16")
    );
    assert!(show("192.0.2.0/24").starts_with("blackhole"));
    assert!(show("198.51.100.0/24").starts_with("unreachable"));
    assert!(lab
        .ns1
        .ip(&["-6", "route", "show", "2001:db8:2::/48"])
        .contains("via 2001:db8:12::2 dev eth0"));

    // A ping from r1's loopback address to r2's crosses the link both ways.
    let (ok, out, err) = lab.ns1.exec(&[
        "ping",
        "-c",
        "2",
        "-W",
        "2",
        "-I",
        "10.255.0.1",
        "10.255.0.2",
    ]);
    assert!(ok, "ping failed: {out}{err}");

    // The shell shows the same routes.
    let (ok, out, err) = lab.r1.sh(&["show route 10.250.0.0/16"]);
    assert!(
        ok && out.contains("10.250.0.0/16") && out.contains("static"),
        "{out}{err}"
    );
    let (ok, out, err) = lab.r2.sh(&["show route 10.255.0.1"]);
    assert!(ok && out.contains("10.255.0.1/32"), "{out}{err}");
    let (ok, out, _) = lab.r1.sh(&["show route summary | json"]);
    assert!(ok);
    serde_json::from_str::<serde_json::Value>(&out).expect("show route summary | json is JSON");
}

/// Kills one process, checks the FIB never moved while it was down, waits for the new one.
fn kill_and_check(lab: &Lab, process: &str, before: &(Vec<String>, Vec<String>)) -> u32 {
    let old = lab
        .r1
        .pid_of(process)
        .unwrap_or_else(|| panic!("{process} not running"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let mut checks = 0;
    let back = wait_until(Duration::from_secs(20), || {
        let now = (lab.ns1.oxr_routes("-4"), lab.ns1.oxr_routes("-6"));
        assert_eq!(&now, before, "FIB moved while {process} was down");
        checks += 1;
        matches!(lab.r1.pid_of(process), Some(p) if p != old)
    });
    assert!(back, "{process} did not come back\n{}", lab.r1.logs());
    assert!(checks > 1, "the FIB was checked while {process} was down");
    lab.r1.pid_of(process).unwrap()
}

#[test]
fn killing_rib_static_and_fea_never_moves_the_fib() {
    if !require_root("killing_rib_static_and_fea_never_moves_the_fib") {
        return;
    }
    // A slow first restart leaves a window to change the config while oxr-static is down.
    let lab = lab("e2e-kill", &["--restart-backoff-ms", "1500"]);
    wait_for_r1_routes(&lab);
    let before = (lab.ns1.oxr_routes("-4"), lab.ns1.oxr_routes("-6"));

    for process in ["rib", "static", "fea"] {
        kill_and_check(&lab, process, &before);
        // After the restart and the sweep, the FIB is still exactly the config's.
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(
            (lab.ns1.oxr_routes("-4"), lab.ns1.oxr_routes("-6")),
            before,
            "FIB changed after {process} came back\n{}",
            lab.r1.logs()
        );
    }

    // Delete a route while oxr-static is down: it is gone once oxr-static returns.
    let old = lab.r1.pid_of("static").unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let (ok, out, err) = lab.r1.sh(&[
        "configure",
        "delete protocols static route 10.250.0.0/16",
        "commit",
    ]);
    assert!(ok, "commit failed: {out}{err}");
    assert!(
        lab.r1.pid_of("static").is_none_or(|p| p == old),
        "the commit happened while oxr-static was down"
    );
    assert!(lab
        .ns1
        .oxr_prefixes("-4")
        .contains(&"10.250.0.0/16".to_string()));
    assert!(wait_until(Duration::from_secs(20), || {
        matches!(lab.r1.pid_of("static"), Some(p) if p != old)
    }));
    let gone = wait_until(Duration::from_secs(10), || {
        !lab.ns1
            .oxr_prefixes("-4")
            .contains(&"10.250.0.0/16".to_string())
    });
    assert!(
        gone,
        "deleted route survived: {:?}",
        lab.ns1.oxr_routes("-4")
    );
    let mut expected: Vec<String> = R1_PREFIXES_V4.iter().map(|s| s.to_string()).collect();
    expected.retain(|p| p != "10.250.0.0/16");
    assert_eq!(lab.ns1.oxr_prefixes("-4"), expected);
}

#[test]
fn a_config_with_errors_is_refused_whole() {
    if !require_root("a_config_with_errors_is_refused_whole") {
        return;
    }
    let lab = lab("e2e-bad", &[]);
    wait_for_r1_routes(&lab);
    let fib_before = lab.ns1.oxr_routes("-4");
    let (_, running_before, _) = lab.r1.sh(&["show configuration"]);

    // The running config plus one route of each error kind.
    let broken = format!(
        r#"{}
[protocols.static.route."10.8.0.0/16"]
via = ["10.0.12.2"]
colour = "blue"
[protocols.static.route."10.9.0.0/33"]
via = ["10.0.12.2"]
[protocols.static.route."10.7.0.0/16"]
via = ["not-an-address"]
[protocols.static.route."10.6.0.0/16"]
via = ["10.0.12.2", "10.0.12.2"]
"#,
        r1_config()
    );
    let file = lab.r1.run_dir.join("broken.toml");
    std::fs::write(&file, broken).unwrap();
    let load = format!("load {}", file.display());
    let (ok, out, err) = lab.r1.sh(&["configure", &load, "commit"]);
    let all = format!("{out}{err}");
    assert!(!ok, "commit of a broken candidate succeeded: {all}");
    for expected in [
        r#"protocols.static.route."10.8.0.0/16".colour"#,
        r#"protocols.static.route."10.9.0.0/33""#,
        r#"protocols.static.route."10.7.0.0/16".via[0]"#,
        r#"protocols.static.route."10.6.0.0/16".via[1]"#,
    ] {
        assert!(
            all.contains(expected),
            "missing error for {expected}: {all}"
        );
    }
    assert!(
        all.contains("unknown field") && all.contains("not a prefix") && all.contains("duplicate")
    );

    let (_, running_after, _) = lab.r1.sh(&["show configuration"]);
    assert_eq!(running_before, running_after, "running config changed");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lab.ns1.oxr_routes("-4"), fib_before, "FIB changed");
}

#[test]
fn routerd_refuses_a_bad_config_file_naming_each_error() {
    let dir = Scratch::new("e2e-badfile");
    let cfg = dir.0.join("bad.toml");
    std::fs::write(
        &cfg,
        "[router]\nname = \"bad\"\ncolour = 1\n[protocols.static.route.\"10.1.0.0/16\"]\nvia = [\"x\"]\n",
    )
    .unwrap();
    let out = std::process::Command::new(bin_dir().join("oxr-routerd"))
        .args(["--config", cfg.to_str().unwrap()])
        .args(["--run-dir", dir.0.join("run").to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("router.colour"), "{text}");
    assert!(
        text.contains(r#"protocols.static.route."10.1.0.0/16".via[0]"#),
        "{text}"
    );
}
