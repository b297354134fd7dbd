//! GoBGP as a reference BGP speaker inside a test's namespace: `gobgpd` started from a TOML
//! config string, driven through the `gobgp` CLI, stopped on drop.

use std::path::Path;
use std::time::Duration;

use crate::{try_run, wait_until, which, Daemon, Netns};

/// Where gobgpd's API listens: the namespace's own loopback, so labs do not collide.
const API: &str = "127.0.0.1";
const API_HOSTS: &str = "127.0.0.1:50051";

/// One `gobgpd` in a namespace.
pub struct GoBgp {
    ns: String,
    /// The process: its pid for figures, its log, `stop` or `kill`.
    pub daemon: Daemon,
}

impl GoBgp {
    /// Whether `gobgpd` and `gobgp` are installed; a test prints its skip line otherwise.
    pub fn available() -> bool {
        which("gobgpd").is_some() && which("gobgp").is_some()
    }

    /// Writes `config` to `DIR/gobgpd.toml`, starts `gobgpd -t toml` with it inside `ns`
    /// (extra arguments `extra`, e.g. `["-l", "warn"]`; output in `DIR/gobgpd.log`) and
    /// waits until its API answers. Panics with the log when it does not.
    pub fn start(ns: &Netns, dir: &Path, config: &str, extra: &[&str]) -> GoBgp {
        let conf = dir.join("gobgpd.toml");
        std::fs::write(&conf, config).unwrap_or_else(|e| panic!("{}: {e}", conf.display()));
        let conf = conf.to_str().expect("UTF-8 path");
        let mut args = vec!["gobgpd", "-f", conf, "-t", "toml", "--api-hosts", API_HOSTS];
        args.extend_from_slice(extra);
        let mut g = GoBgp {
            ns: ns.name.clone(),
            daemon: ns.spawn(&args, &dir.join("gobgpd.log")),
        };
        let up = wait_until(Duration::from_secs(20), || {
            g.daemon.exited() || g.gobgp(&["global"]).contains("AS")
        });
        assert!(
            up && !g.daemon.exited(),
            "gobgpd did not come up in {}:\n{}",
            ns.name,
            g.daemon.log_tail(40)
        );
        g
    }

    /// `gobgp -u 127.0.0.1 ARGS...` inside the namespace: stdout and stderr.
    pub fn gobgp(&self, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", self.ns.as_str(), "gobgp", "-u", API];
        all.extend_from_slice(args);
        let (_, out, err) = try_run("ip", &all);
        out + &err
    }

    /// `gobgp neighbor -j` as JSON (Null when gobgpd does not answer).
    pub fn neighbors(&self) -> serde_json::Value {
        serde_json::from_str(&self.gobgp(&["neighbor", "-j"])).unwrap_or_default()
    }
}
