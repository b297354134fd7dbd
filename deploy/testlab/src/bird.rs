//! BIRD 2 as a reference router inside a test's namespace: started from a config string,
//! driven through `birdc`, stopped on drop (also when the test fails).
//!
//! ```no_run
//! # use oxr_testlab::{bird::Bird, Netns, Scratch};
//! let (ns, dir) = (Netns::new("brd-example"), Scratch::new("example"));
//! let bird = Bird::start(&ns, &dir.0, "bird", "router id 10.0.0.1;\nprotocol device { }\n");
//! assert!(bird.birdc("show status").contains("Daemon is up"));
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::{wait_until, which, Daemon, Netns};

/// How long BIRD may take to read its config and open its control socket.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// One `bird -f -c CONF -s SOCK` in a namespace.
pub struct Bird {
    /// Its name in the scratch directory: `NAME.conf`, `NAME.ctl`, `NAME.log`.
    pub name: String,
    /// The control socket `birdc -s` talks to.
    pub sock: PathBuf,
    /// The process: its pid for figures, its log, `stop` or `kill`.
    pub daemon: Daemon,
}

impl Bird {
    /// Whether `bird` and `birdc` are installed; a test prints its skip line otherwise.
    pub fn available() -> bool {
        which("bird").is_some() && which("birdc").is_some()
    }

    /// Writes `config` to `DIR/NAME.conf`, starts BIRD with it inside `ns` (control socket
    /// `DIR/NAME.ctl`, output in `DIR/NAME.log`) and waits until `birdc show status` says
    /// the daemon is up. Panics with BIRD's log when it does not come up (a config error).
    pub fn start(ns: &Netns, dir: &Path, name: &str, config: &str) -> Bird {
        let mut b = Bird::spawn(ns, dir, name, config);
        b.wait_up();
        b
    }

    /// [`Bird::start`] without the wait, for a benchmark whose clock includes BIRD's start.
    pub fn spawn(ns: &Netns, dir: &Path, name: &str, config: &str) -> Bird {
        let bird = which("bird").expect("bird is not installed (check Bird::available first)");
        let conf = dir.join(format!("{name}.conf"));
        std::fs::write(&conf, config).unwrap_or_else(|e| panic!("{}: {e}", conf.display()));
        let sock = dir.join(format!("{name}.ctl"));
        let s = |p: &Path| p.to_str().expect("UTF-8 path").to_string();
        let daemon = ns.spawn(
            &[&s(&bird), "-f", "-c", &s(&conf), "-s", &s(&sock)],
            &dir.join(format!("{name}.log")),
        );
        Bird {
            name: name.to_string(),
            sock,
            daemon,
        }
    }

    /// Waits until `birdc show status` says the daemon is up; panics with BIRD's log when
    /// it exits or does not answer in time.
    pub fn wait_up(&mut self) {
        let (daemon, sock) = (&mut self.daemon, &self.sock);
        let up = wait_until(START_TIMEOUT, || {
            daemon.exited() || birdc(sock, "show status").contains("Daemon is up")
        });
        assert!(
            up && !self.daemon.exited(),
            "BIRD {} did not come up:\n{}",
            self.name,
            self.daemon.log_tail(40)
        );
    }

    /// `birdc -s SOCK CMD`: stdout and stderr (BIRD's answer, or why there is none). The
    /// socket is a file, so this works from outside the namespace.
    pub fn birdc(&self, cmd: &str) -> String {
        birdc(&self.sock, cmd)
    }

    /// The `show protocols` line of protocol `name` (columns: name, protocol, table, state,
    /// since, info — e.g. `Established` or `Running`), None when BIRD has no such protocol.
    pub fn protocol(&self, name: &str) -> Option<String> {
        protocol_line(&self.birdc("show protocols"), name)
    }

    /// Whether every protocol of `names` is a BGP session in state Established.
    pub fn established(&self, names: &[&str]) -> bool {
        let out = self.birdc("show protocols");
        names.iter().all(|n| {
            protocol_line(&out, n).is_some_and(|l| l.split_whitespace().any(|w| w == "Established"))
        })
    }

    /// The routes protocol `name` has imported (`Routes: N imported` of `show protocols
    /// all NAME`); 0 when BIRD does not say.
    pub fn imported(&self, name: &str) -> u64 {
        imported_routes(&self.birdc(&format!("show protocols all {name}")))
    }

    /// `show route PREFIX all`: the best route first, every attribute.
    pub fn route(&self, prefix: &str) -> String {
        self.birdc(&format!("show route {prefix} all"))
    }

    /// Whether `show ospf neighbors` lists router `router_id` in state Full.
    pub fn ospf_full(&self, router_id: &str) -> bool {
        self.birdc("show ospf neighbors")
            .lines()
            .any(|l| l.split_whitespace().next() == Some(router_id) && l.contains("Full"))
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        self.daemon.stop();
        let _ = std::fs::remove_file(&self.sock);
    }
}

/// `birdc -s SOCK CMD`: stdout and stderr.
fn birdc(sock: &Path, cmd: &str) -> String {
    let birdc = which("birdc").expect("birdc is not installed");
    let out = Command::new(birdc)
        .arg("-s")
        .arg(sock)
        .arg(cmd)
        .output()
        .unwrap_or_else(|e| panic!("birdc {cmd}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The line of `show protocols` output for protocol `name`.
fn protocol_line(show_protocols: &str, name: &str) -> Option<String> {
    show_protocols
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .map(str::to_string)
}

/// N of `Routes: N imported, ...` in `show protocols all` output.
fn imported_routes(show_protocols_all: &str) -> u64 {
    show_protocols_all
        .lines()
        .find(|l| l.trim_start().starts_with("Routes:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOW_PROTOCOLS: &str = "BIRD 2.0.12 ready.\n\
        Name       Proto      Table      State  Since         Info\n\
        device1    Device     ---        up     12:00:00.000  \n\
        oxr4       BGP        ---        up     12:00:01.000  Established   \n\
        oxr6       BGP        ---        start  12:00:01.000  Active        Socket: Connection refused\n";

    #[test]
    fn protocol_line_is_found_by_its_first_word_only() {
        let l = protocol_line(SHOW_PROTOCOLS, "oxr4").unwrap();
        assert!(l.contains("Established"));
        assert!(protocol_line(SHOW_PROTOCOLS, "oxr").is_none());
        assert!(protocol_line(SHOW_PROTOCOLS, "BGP").is_none());
    }

    #[test]
    fn imported_count_is_read_from_the_routes_line() {
        let all = "oxr4       BGP  ---  up  12:00:01.000  Established\n\
                   \x20 Channel ipv4\n    State:          UP\n\
                   \x20   Routes:         2 imported, 1 exported, 2 preferred\n";
        assert_eq!(imported_routes(all), 2);
        assert_eq!(imported_routes("no such protocol"), 0);
    }
}
