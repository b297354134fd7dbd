//! The process set: one task per process that starts it, waits for it, and restarts it with
//! backoff; commands (restart, stop, keep) reach the task over a channel.
//!
//! ```text
//!   Supervisor::reconcile(desired) --Keep/Stop--> +-------------------+
//!   Supervisor::restart(name) -------Restart----> | task per process  |--spawn/wait/kill--> child
//!   Supervisor::status() <------shared Status---- | running / backoff |
//!                                                 | stopped / failed  |
//!                                                 +-------------------+
//! ```

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::process::Child;
use tokio::sync::{mpsc, oneshot};

use crate::backoff::{Backoff, BackoffPolicy};
use crate::spawn::{describe_exit, spawn, ProcessSpec};

/// Where and how processes are started.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    pub router: String,
    pub run_dir: PathBuf,
    /// Directory holding `oxr-fea`, `oxr-rib`, `oxr-<protocol>`.
    pub bin_dir: PathBuf,
    /// `--log` passed to every child.
    pub log_filter: String,
    pub backoff: BackoffPolicy,
    /// SIGTERM -> SIGKILL delay when stopping or restarting a process.
    pub stop_timeout: Duration,
    /// How long a process removed from the configuration keeps running after it was told
    /// its section is gone (so it can withdraw its routes) before it is stopped.
    pub removal_grace: Duration,
}

impl SupervisorConfig {
    /// Defaults: backoff 100 ms doubling to 30 s, stop timeout 3 s, removal grace 2 s.
    pub fn new(router: &str, run_dir: PathBuf, bin_dir: PathBuf, log_filter: &str) -> Self {
        SupervisorConfig {
            router: router.to_string(),
            run_dir,
            bin_dir,
            log_filter: log_filter.to_string(),
            backoff: BackoffPolicy::default(),
            stop_timeout: Duration::from_secs(3),
            removal_grace: Duration::from_secs(2),
        }
    }

    fn spec(&self, name: &str) -> ProcessSpec {
        ProcessSpec::standard(
            name,
            &self.bin_dir,
            &self.router,
            &self.run_dir,
            &self.log_filter,
        )
    }
}

/// Lifecycle state of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    Running,
    /// Exited; waiting before the next start.
    Backoff,
    /// Stopped on purpose (removed from the configuration, or routerd stopping).
    Stopped,
    /// Its executable could not be started; retried with backoff.
    Failed,
}

impl ProcState {
    /// The name shown by `show processes`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProcState::Running => "running",
            ProcState::Backoff => "backoff",
            ProcState::Stopped => "stopped",
            ProcState::Failed => "failed",
        }
    }
}

/// What `show processes` says about one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStatus {
    pub name: String,
    pub state: ProcState,
    pub pid: Option<u32>,
    /// Starts after the first one (after exits and manual restarts).
    pub restarts: u32,
    pub started: Option<Instant>,
    /// How the last run ended ("exit 1", "signal 9 (SIGKILL)", "cannot start: ...").
    pub last_exit: String,
    /// When the next start is due (in backoff or failed).
    pub next_start: Option<Instant>,
}

enum Cmd {
    Restart(oneshot::Sender<Result<(), String>>),
    Stop {
        grace: Duration,
        done: oneshot::Sender<()>,
    },
    /// Cancels a pending stop (the process is configured again).
    Keep,
}

struct Managed {
    name: String,
    status: Arc<Mutex<ProcStatus>>,
    tx: mpsc::UnboundedSender<Cmd>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts, supervises and stops the router's processes.
pub struct Supervisor {
    cfg: SupervisorConfig,
    procs: Mutex<Vec<Managed>>,
}

impl Supervisor {
    /// A supervisor with no process yet.
    pub fn new(cfg: SupervisorConfig) -> Self {
        Supervisor {
            cfg,
            procs: Mutex::new(Vec::new()),
        }
    }

    /// Its settings.
    pub fn config(&self) -> &SupervisorConfig {
        &self.cfg
    }

    /// Makes the running set `desired` (in start order): starts what is missing, keeps what
    /// is there (cancelling a pending stop), and stops the others after the removal grace.
    pub fn reconcile(&self, desired: &[String]) {
        let mut procs = self.procs.lock().expect("supervisor lock");
        for name in desired {
            match procs.iter_mut().find(|m| &m.name == name) {
                Some(m) if !m.task.is_finished() => {
                    let _ = m.tx.send(Cmd::Keep);
                }
                Some(m) => *m = self.start(name),
                None => procs.push(self.start(name)),
            }
        }
        for m in procs.iter().filter(|m| !desired.contains(&m.name)) {
            if !m.task.is_finished() {
                let (done, _) = oneshot::channel();
                let _ = m.tx.send(Cmd::Stop {
                    grace: self.cfg.removal_grace,
                    done,
                });
            }
        }
    }

    fn start(&self, name: &str) -> Managed {
        let status = Arc::new(Mutex::new(ProcStatus {
            name: name.to_string(),
            state: ProcState::Backoff,
            pid: None,
            restarts: 0,
            started: None,
            last_exit: String::new(),
            next_start: None,
        }));
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(supervise(
            self.cfg.spec(name),
            self.cfg.backoff,
            self.cfg.stop_timeout,
            status.clone(),
            rx,
        ));
        tracing::info!(process = name, "starting");
        Managed {
            name: name.to_string(),
            status,
            tx,
            task,
        }
    }

    /// Status of every process routerd has started, in start order.
    pub fn status(&self) -> Vec<ProcStatus> {
        let procs = self.procs.lock().expect("supervisor lock");
        procs
            .iter()
            .map(|m| m.status.lock().expect("status lock").clone())
            .collect()
    }

    /// Stops (SIGTERM, SIGKILL after the stop timeout) and starts a process again; a
    /// process in backoff is started at once. Resets its backoff.
    pub async fn restart(&self, name: &str) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        {
            let procs = self.procs.lock().expect("supervisor lock");
            let m = procs
                .iter()
                .find(|m| m.name == name)
                .ok_or_else(|| format!("no process `{name}`"))?;
            if m.task.is_finished() {
                return Err(format!(
                    "process `{name}` is stopped (not in the configuration)"
                ));
            }
            m.tx.send(Cmd::Restart(tx))
                .map_err(|_| format!("process `{name}` is stopping"))?;
        }
        rx.await
            .map_err(|_| format!("process `{name}` stopped while restarting"))?
    }

    /// Stops every process (SIGTERM, then SIGKILL after the stop timeout), all at once, and
    /// waits until they are gone.
    pub async fn shutdown(&self) {
        let mut waits = Vec::new();
        {
            let mut procs = self.procs.lock().expect("supervisor lock");
            for m in procs.iter_mut() {
                let (done, rx) = oneshot::channel();
                if m.tx
                    .send(Cmd::Stop {
                        grace: Duration::ZERO,
                        done,
                    })
                    .is_ok()
                {
                    waits.push(rx);
                }
            }
        }
        // Each task answers after its child is reaped and its status says stopped.
        for w in waits {
            let _ = w.await;
        }
    }
}

/// How a run of the child ended.
enum RunEnd {
    Exited(String, Duration),
    Restart,
    Stop,
}

/// What to do after waiting out a backoff.
enum AfterWait {
    Start,
    Stop,
}

/// The life of one process: start, wait, restart with backoff, obey commands.
async fn supervise(
    spec: ProcessSpec,
    policy: BackoffPolicy,
    stop_timeout: Duration,
    status: Arc<Mutex<ProcStatus>>,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
) {
    let update = |f: &mut dyn FnMut(&mut ProcStatus)| f(&mut status.lock().expect("status lock"));
    let mut backoff = Backoff::new(policy);
    let mut stop_waiters: Vec<oneshot::Sender<()>> = Vec::new();
    // A pending stop survives a restart: a process removed from the configuration and
    // restarted by hand during its grace period still goes.
    let mut stop_at: Option<tokio::time::Instant> = None;
    let mut first = true;
    loop {
        if !first {
            update(&mut |s| s.restarts += 1);
        }
        first = false;
        let end = match spawn(&spec) {
            Ok(child) => {
                let pid = child.id();
                tracing::info!(process = %spec.name, pid, "started");
                update(&mut |s| {
                    s.state = ProcState::Running;
                    s.pid = pid;
                    s.started = Some(Instant::now());
                    s.next_start = None;
                });
                run(
                    child,
                    stop_timeout,
                    &mut rx,
                    &mut stop_waiters,
                    &mut stop_at,
                    &mut backoff,
                )
                .await
            }
            Err(e) => {
                tracing::warn!(process = %spec.name, program = %spec.program.display(), "cannot start: {e}");
                update(&mut |s| {
                    s.state = ProcState::Failed;
                    s.last_exit = format!("cannot start {}: {e}", spec.program.display());
                });
                RunEnd::Exited(String::new(), Duration::ZERO)
            }
        };
        match end {
            RunEnd::Restart => {
                update(&mut |s| s.last_exit = "restarted".into());
                continue;
            }
            RunEnd::Stop => break,
            RunEnd::Exited(how, uptime) => {
                let delay = backoff.on_exit(uptime);
                update(&mut |s| {
                    if !how.is_empty() {
                        s.state = ProcState::Backoff;
                        s.last_exit = how.clone();
                    }
                    s.pid = None;
                    s.started = None;
                    s.next_start = Some(Instant::now() + delay);
                });
                if !how.is_empty() {
                    tracing::warn!(process = %spec.name, "exited ({how}); restarting in {delay:?}");
                }
                match wait_backoff(delay, &mut rx, &mut stop_waiters, &mut backoff).await {
                    AfterWait::Start => continue,
                    AfterWait::Stop => break,
                }
            }
        }
    }
    update(&mut |s| {
        s.state = ProcState::Stopped;
        s.pid = None;
        s.started = None;
        s.next_start = None;
    });
    tracing::info!(process = %spec.name, "stopped");
    for w in stop_waiters {
        let _ = w.send(());
    }
}

/// Waits for the running child to exit or a command to end its run.
async fn run(
    mut child: Child,
    stop_timeout: Duration,
    rx: &mut mpsc::UnboundedReceiver<Cmd>,
    stop_waiters: &mut Vec<oneshot::Sender<()>>,
    stop_at: &mut Option<tokio::time::Instant>,
    backoff: &mut Backoff,
) -> RunEnd {
    let started = Instant::now();
    loop {
        let due = *stop_at;
        let stop_due = async move {
            match due {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            status = child.wait() => {
                let how = match status {
                    Ok(s) => describe_exit(s),
                    Err(e) => format!("wait failed: {e}"),
                };
                return RunEnd::Exited(how, started.elapsed());
            }
            cmd = rx.recv() => match cmd {
                None => {
                    terminate(&mut child, stop_timeout).await;
                    return RunEnd::Stop;
                }
                Some(Cmd::Restart(reply)) => {
                    terminate(&mut child, stop_timeout).await;
                    backoff.reset();
                    let _ = reply.send(Ok(()));
                    return RunEnd::Restart;
                }
                Some(Cmd::Stop { grace, done }) => {
                    stop_waiters.push(done);
                    let at = tokio::time::Instant::now() + grace;
                    *stop_at = Some(stop_at.map_or(at, |t| t.min(at)));
                }
                Some(Cmd::Keep) => *stop_at = None,
            },
            _ = stop_due => {
                terminate(&mut child, stop_timeout).await;
                return RunEnd::Stop;
            }
        }
    }
}

/// Waits out a backoff delay, obeying commands meanwhile.
async fn wait_backoff(
    delay: Duration,
    rx: &mut mpsc::UnboundedReceiver<Cmd>,
    stop_waiters: &mut Vec<oneshot::Sender<()>>,
    backoff: &mut Backoff,
) -> AfterWait {
    let until = tokio::time::Instant::now() + delay;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => return AfterWait::Start,
            cmd = rx.recv() => match cmd {
                None => return AfterWait::Stop,
                Some(Cmd::Restart(reply)) => {
                    backoff.reset();
                    let _ = reply.send(Ok(()));
                    return AfterWait::Start;
                }
                Some(Cmd::Stop { done, .. }) => {
                    stop_waiters.push(done);
                    return AfterWait::Stop;
                }
                Some(Cmd::Keep) => {}
            },
        }
    }
}

/// SIGTERM, then SIGKILL if the child is still there after `timeout`; reaps it.
async fn terminate(child: &mut Child, timeout: Duration) {
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        if tokio::time::timeout(timeout, child.wait()).await.is_ok() {
            return;
        }
        tracing::warn!(pid, "did not stop within {timeout:?}; SIGKILL");
    }
    let _ = child.kill().await;
}
