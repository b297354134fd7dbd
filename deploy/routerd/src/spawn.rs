//! Starting one child process: its command line, its log file, and the parent-death signal
//! that takes it down if routerd is killed with SIGKILL. The crate's only `unsafe` is here.

use std::path::{Path, PathBuf};
use std::process::Stdio;

/// How to start one process of the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    /// Process name: "fea", "rib", "static", ...
    pub name: String,
    /// The executable (`<bin-dir>/oxr-<name>`).
    pub program: PathBuf,
    pub args: Vec<String>,
    /// stdout and stderr are appended here.
    pub log_file: PathBuf,
}

impl ProcessSpec {
    /// The standard command line: `oxr-<name> --router R --run-dir D --log FILTER`.
    pub fn standard(name: &str, bin_dir: &Path, router: &str, run_dir: &Path, log: &str) -> Self {
        ProcessSpec {
            name: name.to_string(),
            program: bin_dir.join(format!("oxr-{name}")),
            args: vec![
                "--router".into(),
                router.into(),
                "--run-dir".into(),
                run_dir.display().to_string(),
                "--log".into(),
                log.into(),
            ],
            log_file: run_dir.join(format!("{name}.log")),
        }
    }
}

/// Starts the process: own process group (a Ctrl-C meant for routerd reaches the children
/// only through routerd's orderly stop), stdin from /dev/null, output appended to its log,
/// SIGKILL on routerd's death.
pub fn spawn(spec: &ProcessSpec) -> std::io::Result<tokio::process::Child> {
    use std::os::unix::fs::OpenOptionsExt;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&spec.log_file)?;
    let mut cmd = tokio::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .kill_on_drop(true);
    set_parent_death_signal(&mut cmd);
    cmd.spawn()
}

/// Asks the kernel to SIGKILL the child when the thread that forked it dies. routerd
/// forks from its runtime's main thread (a current-thread runtime), which lives as long as
/// routerd, so this means "when routerd dies".
#[allow(unsafe_code)]
fn set_parent_death_signal(cmd: &mut tokio::process::Command) {
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child before exec and only makes two
    // async-signal-safe system calls (prctl, getppid); it allocates nothing and takes no
    // locks (io::Error::from_raw_os_error does not allocate).
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
            // routerd may have died between fork and prctl: then nobody would kill us.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc_esrch()));
            }
            Ok(())
        });
    }
}

fn libc_esrch() -> i32 {
    nix::errno::Errno::ESRCH as i32
}

/// "exit 1", "signal 9 (SIGKILL)".
pub fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        format!("exit {code}")
    } else if let Some(sig) = status.signal() {
        match nix::sys::signal::Signal::try_from(sig) {
            Ok(s) => format!("signal {sig} ({})", s.as_str()),
            Err(_) => format!("signal {sig}"),
        }
    } else {
        "unknown".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_command_line() {
        let s = ProcessSpec::standard(
            "static",
            Path::new("/opt/oxr/bin"),
            "r1",
            Path::new("/run/oxr/r1"),
            "info",
        );
        assert_eq!(s.program, Path::new("/opt/oxr/bin/oxr-static"));
        assert_eq!(
            s.args,
            [
                "--router",
                "r1",
                "--run-dir",
                "/run/oxr/r1",
                "--log",
                "info"
            ]
        );
        assert_eq!(s.log_file, Path::new("/run/oxr/r1/static.log"));
    }

    #[test]
    fn describes_exits() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            describe_exit(std::process::ExitStatus::from_raw(1 << 8)),
            "exit 1"
        );
        assert_eq!(
            describe_exit(std::process::ExitStatus::from_raw(9)),
            "signal 9 (SIGKILL)"
        );
    }
}
