//! oxrsh driven through a pseudo-terminal (tmux): completion offers the next keywords,
//! `set` + `commit` puts a route in the kernel, `rollback 1` takes it out again.

use oxr_testlab as lab;

use std::process::Command;
use std::time::Duration;

use lab::*;

struct Tmux(String);

impl Tmux {
    fn start(session: &str, command: &str) -> Tmux {
        run(
            "tmux",
            &[
                "new-session",
                "-d",
                "-s",
                session,
                "-x",
                "160",
                "-y",
                "50",
                command,
            ],
        );
        Tmux(session.to_string())
    }
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.0.as_str()];
        args.extend_from_slice(keys);
        run("tmux", &args);
    }
    fn screen(&self) -> String {
        run("tmux", &["capture-pane", "-p", "-t", &self.0, "-S", "-200"])
    }
    fn wait_for(&self, what: &str) -> bool {
        wait_until(Duration::from_secs(10), || self.screen().contains(what))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

#[test]
fn shell_completes_commits_and_rolls_back_in_a_terminal() {
    if !require_root("shell_completes_commits_and_rolls_back_in_a_terminal") {
        return;
    }
    let dir = Scratch::new("e2e-pty");
    let pid = std::process::id();
    let ns = Netns::new(&format!("oxr-e2e-pty-{pid}"));
    let peer = Netns::new(&format!("oxr-e2e-ptyp-{pid}"));
    veth(&ns, "eth0", &peer, "eth0");
    // The link has carrier only when both ends are up; the gateway is reachable only then.
    peer.ip(&["link", "set", "eth0", "up"]);
    let router = Router::start(
        &ns,
        "p1",
        "[router]\nname = \"p1\"\n[interfaces.eth0]\naddress = [\"10.0.12.1/24\"]\n[rib]\nstartup-hold-secs = 2\n",
        &dir.0,
        &[],
    );
    let shell = format!(
        "HOME={} {} --run-dir {}",
        dir.0.display(),
        bin_dir().join("oxrsh").display(),
        router.run_dir.display()
    );
    let tmux = Tmux::start(&format!("oxr-e2e-{pid}"), &shell);
    assert!(tmux.wait_for(">"), "no prompt: {}", tmux.screen());

    // Tab completes a unique keyword, and lists the choices when there are several.
    tmux.keys(&["sh"]);
    assert!(tmux.wait_for("> sh"), "{}", tmux.screen());
    tmux.keys(&["Tab"]);
    // (capture-pane trims the trailing space the completion adds)
    assert!(tmux.wait_for("> show"), "{}", tmux.screen());
    tmux.keys(&["ro"]);
    assert!(tmux.wait_for("show ro"), "{}", tmux.screen());
    tmux.keys(&["Tab"]);
    assert!(tmux.wait_for("show route"), "{}", tmux.screen());
    tmux.keys(&["C-u"]);
    // `?` lists what can come next, with help.
    tmux.keys(&["show route ?"]);
    assert!(tmux.wait_for("summary"), "{}", tmux.screen());
    tmux.keys(&["C-u", "Enter"]);

    tmux.keys(&["configure", "Enter"]);
    tmux.keys(&[
        "set protocols static route 10.77.0.0/16 via 10.0.12.2",
        "Enter",
    ]);
    tmux.keys(&["commit", "Enter"]);
    let added = wait_until(Duration::from_secs(15), || {
        ns.oxr_prefixes("-4").contains(&"10.77.0.0/16".to_string())
    });
    assert!(
        added,
        "route not installed: {}\n{}",
        tmux.screen(),
        router.logs()
    );

    tmux.keys(&["rollback 1", "Enter"]);
    let removed = wait_until(Duration::from_secs(15), || {
        !ns.oxr_prefixes("-4").contains(&"10.77.0.0/16".to_string())
    });
    assert!(
        removed,
        "rollback left the route: {}\n{}",
        tmux.screen(),
        router.logs()
    );
    tmux.keys(&["exit", "Enter"]);
    drop(tmux);
    drop(router);
}
