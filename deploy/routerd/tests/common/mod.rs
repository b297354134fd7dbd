//! Helpers shared by routerd's tests: fake process binaries and polling.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use oxr_proto::routerd::routerd_client::RouterdClient;
use oxr_proto::routerd::{ProcessInfo, ProcessStatusRequest};
use tonic::transport::Channel;

/// Writes `oxr-<name>` scripts that log their arguments and sleep (exec, so signals reach
/// the sleeping process itself).
pub fn fake_bin_dir(dir: &Path, names: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    for name in names {
        let path = dir.join(format!("oxr-{name}"));
        std::fs::write(&path, "#!/bin/sh\necho \"args: $*\"\nexec sleep 300\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// Polls `f` every 20 ms until it returns Some, or panics after `secs` seconds.
pub async fn wait_for<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The status of process `name`, if routerd lists it.
pub async fn process(client: &mut RouterdClient<Channel>, name: &str) -> Option<ProcessInfo> {
    let reply = client
        .process_status(ProcessStatusRequest {})
        .await
        .ok()?
        .into_inner();
    reply.processes.into_iter().find(|p| p.name == name)
}

/// Waits until `name` is running with a pid (other than `not_pid`), and returns its info.
pub async fn running(client: &mut RouterdClient<Channel>, name: &str, not_pid: u32) -> ProcessInfo {
    wait_for(&format!("{name} running"), 10, || {
        let mut c = client.clone();
        async move {
            process(&mut c, name)
                .await
                .filter(|p| p.state == "running" && p.pid != 0 && p.pid != not_pid)
        }
    })
    .await
}

/// Whether a process with this pid exists and is not a zombie (an orphan's zombie waits
/// for whatever reaps orphans here, which may be slow or nothing in a container).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// Sends a signal.
pub fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
}
