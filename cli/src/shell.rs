//! The shell's state and the commands that talk to the router: discovery of the processes
//! in the run directory, show commands routed to them, configure-mode edits through
//! oxr-routerd. [`run_command`] runs one line, for the interactive loop, `-c`, and tests.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use oxr_config::ConfigPath;
use oxr_proto::process::process_client::ProcessClient;
use oxr_proto::process::{DescribeRequest, ShowReply, ShowRequest};
use oxr_proto::routerd::routerd_client::RouterdClient;
use oxr_proto::routerd::{
    CommitReply, CommitRequest, CompareRequest, ConfigError, ConfigText, ConfigWhich,
    DeleteRequest, DiscardRequest, EditReply, GetConfigRequest, ListRevisionsRequest,
    ProcessStatusRequest, RestartProcessRequest, RollbackRequest, SchemaRequest, SetRequest,
    ValidateRequest,
};
use oxr_proto::transport::{self, Address};
use serde_json::{json, Value};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::complete::{self, Builtin, Mode, OpCommand, Owner};
use crate::line::{self, Pipe, Token};
use crate::schema_walk::{Schema, SetOp};

/// A failed command: one or more lines, each printed as `error: LINE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellError {
    lines: Vec<String>,
}

impl ShellError {
    /// An error of one line.
    pub fn new(msg: impl Into<String>) -> Self {
        ShellError {
            lines: vec![msg.into()],
        }
    }

    /// The lines, without the `error: ` prefix.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// `PATH: REASON` for each configuration error, then a summary line.
    fn config(errors: &[ConfigError], summary: &str) -> Self {
        let mut lines: Vec<String> = errors
            .iter()
            .map(|e| {
                if e.path.is_empty() {
                    e.reason.clone()
                } else {
                    format!("{}: {}", e.path, e.reason)
                }
            })
            .collect();
        if lines.is_empty() || !summary.is_empty() {
            lines.push(summary.to_string());
        }
        ShellError { lines }
    }
}

impl std::fmt::Display for ShellError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, l) in self.lines.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "error: {l}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ShellError {}

macro_rules! one_line_from {
    ($($t:ty),*) => {$(
        impl From<$t> for ShellError {
            fn from(e: $t) -> Self {
                ShellError::new(e.to_string())
            }
        }
    )*};
}
one_line_from!(
    crate::line::LineError,
    crate::schema_walk::WalkError,
    crate::complete::ResolveError,
    oxr_config::PathError
);

/// The result of a shell command: its output text.
pub type Result<T> = std::result::Result<T, ShellError>;

/// A process found in the run directory.
#[derive(Debug, Clone)]
struct ProcessHandle {
    name: String,
    socket: PathBuf,
    channel: Channel,
}

/// The shell's state: where the router is, the mode, what the processes declared.
pub struct Context {
    router: String,
    run_dir: PathBuf,
    mode: Mode,
    quit: bool,
    commands: Vec<OpCommand>,
    processes: Vec<ProcessHandle>,
    process_names: Vec<String>,
    discovered: bool,
    schema: Option<Schema>,
    schema_from_routerd: bool,
    config: Value,
    routerd: Option<RouterdClient<Channel>>,
    rpc_timeout: Duration,
    commit_timeout: Duration,
}

impl Context {
    /// A shell for router `router` whose sockets are in `run_dir`. Nothing is contacted
    /// until a command needs it.
    pub fn new(router: impl Into<String>, run_dir: impl Into<PathBuf>) -> Self {
        Context {
            router: router.into(),
            run_dir: run_dir.into(),
            mode: Mode::Operational,
            quit: false,
            commands: complete::build_commands(Vec::new()),
            processes: Vec::new(),
            process_names: Vec::new(),
            discovered: false,
            schema: None,
            schema_from_routerd: false,
            config: Value::Object(Default::default()),
            routerd: None,
            rpc_timeout: Duration::from_secs(10),
            commit_timeout: Duration::from_secs(60),
        }
    }

    /// The prompt: `r1> ` in operational mode, `r1# ` in configure mode.
    pub fn prompt(&self) -> String {
        match self.mode {
            Mode::Operational => format!("{}> ", self.router),
            Mode::Configure => format!("{}# ", self.router),
        }
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether `exit`/`quit` asked to leave the shell.
    pub fn should_quit(&self) -> bool {
        self.quit
    }

    /// The run directory.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    fn routerd_socket(&self) -> PathBuf {
        self.run_dir.join("routerd.sock")
    }

    /// Asks every `*.sock` in the run directory what it is and which show commands it
    /// answers. Sockets nobody answers on (stale files) are skipped.
    pub async fn discover(&mut self) {
        let mut sockets: Vec<PathBuf> = std::fs::read_dir(&self.run_dir)
            .map(|dir| {
                dir.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "sock"))
                    .collect()
            })
            .unwrap_or_default();
        sockets.sort();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, socket) in sockets.into_iter().enumerate() {
            tasks.spawn(async move {
                let probe = async {
                    let channel = transport::connect(&Address::Unix(socket.clone()))
                        .await
                        .ok()?;
                    let reply = ProcessClient::new(channel.clone())
                        .describe(DescribeRequest {})
                        .await
                        .ok()?
                        .into_inner();
                    Some((channel, reply))
                };
                let (channel, reply) = tokio::time::timeout(Duration::from_secs(3), probe)
                    .await
                    .ok()??;
                let name = if reply.process.is_empty() {
                    socket.file_stem()?.to_string_lossy().into_owned()
                } else {
                    reply.process.clone()
                };
                Some((i, name, socket, channel, reply.commands))
            });
        }
        let mut found = Vec::new();
        while let Some(r) = tasks.join_next().await {
            if let Ok(Some(x)) = r {
                found.push(x);
            }
        }
        found.sort_by_key(|x| x.0);
        let mut declared = Vec::new();
        self.processes.clear();
        for (_, name, socket, channel, commands) in found {
            for c in &commands {
                declared.push(OpCommand::from_process(&name, &c.words, &c.help));
            }
            self.processes.push(ProcessHandle {
                name,
                socket,
                channel,
            });
        }
        self.commands = complete::build_commands(declared);
        self.discovered = true;
        let mut names: Vec<String> = self.processes.iter().map(|p| p.name.clone()).collect();
        if let Ok(status) = self
            .routerd_call(self.rpc_timeout, |mut c| async move {
                c.process_status(ProcessStatusRequest {}).await
            })
            .await
        {
            names.extend(status.processes.into_iter().map(|p| p.name));
        }
        names.sort();
        names.dedup();
        self.process_names = names;
    }

    /// Makes sure the command tree, the schema and the configuration are loaded (for
    /// completion and help); failures leave what is known.
    pub async fn ensure_ready(&mut self) {
        if !self.discovered {
            self.discover().await;
        }
        self.refresh().await;
    }

    /// Reloads the configuration the mode acts on (and the schema, if it came from the
    /// compiled-in fallback), for completion.
    pub async fn refresh(&mut self) {
        if !self.schema_from_routerd {
            self.load_schema().await;
        }
        if let Ok(v) = self.config_json(self.mode_config()).await {
            self.config = v;
        }
    }

    fn mode_config(&self) -> ConfigWhich {
        match self.mode {
            Mode::Operational => ConfigWhich::Running,
            Mode::Configure => ConfigWhich::Candidate,
        }
    }

    /// What completion and `?` need, as a snapshot.
    pub fn completion_context(&self) -> complete::Context {
        complete::Context {
            mode: self.mode,
            commands: self.commands.clone(),
            schema: self.schema.clone().unwrap_or_else(Schema::builtin),
            config: self.config.clone(),
            processes: self.process_names.clone(),
        }
    }

    async fn load_schema(&mut self) {
        let reply = self
            .routerd_call(self.rpc_timeout, |mut c| async move {
                c.schema(SchemaRequest {}).await
            })
            .await;
        match reply
            .ok()
            .and_then(|r| serde_json::from_str::<Value>(&r.json_schema).ok())
        {
            Some(v) if v.is_object() => {
                self.schema = Some(Schema::new(v));
                self.schema_from_routerd = true;
            }
            _ => {
                if self.schema.is_none() {
                    self.schema = Some(Schema::builtin());
                }
            }
        }
    }

    async fn schema(&mut self) -> Schema {
        if self.schema.is_none() {
            self.load_schema().await;
        }
        self.schema.clone().unwrap_or_else(Schema::builtin)
    }

    fn routerd_client(&mut self) -> RouterdClient<Channel> {
        let socket = self.routerd_socket();
        self.routerd
            .get_or_insert_with(|| {
                RouterdClient::new(transport::connect_lazy(&Address::Unix(socket)))
            })
            .clone()
    }

    /// One call to oxr-routerd, with a deadline, its failure turned into one line.
    async fn routerd_call<T, F, Fut>(&mut self, deadline: Duration, f: F) -> Result<T>
    where
        F: FnOnce(RouterdClient<Channel>) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, Status>>,
    {
        let client = self.routerd_client();
        match tokio::time::timeout(deadline, f(client)).await {
            Ok(Ok(reply)) => Ok(reply.into_inner()),
            Ok(Err(status)) => Err(status_error(
                "oxr-routerd",
                &self.routerd_socket(),
                &self.router,
                &status,
            )),
            Err(_) => Err(ShellError::new(format!(
                "oxr-routerd did not answer within {} s",
                deadline.as_secs()
            ))),
        }
    }

    async fn config_text(
        &mut self,
        which: ConfigWhich,
        path: &ConfigPath,
        pipe: Pipe,
    ) -> Result<String> {
        let path = path.to_string();
        let format = match pipe {
            Pipe::Text => "toml",
            Pipe::Json => "json",
        };
        let reply = self
            .routerd_call(self.rpc_timeout, |mut c| async move {
                c.get_config(GetConfigRequest {
                    which: which as i32,
                    path,
                    format: format.into(),
                })
                .await
            })
            .await?;
        Ok(match pipe {
            Pipe::Text => reply.text,
            Pipe::Json => pretty_json(&reply.text),
        })
    }

    async fn config_json(&mut self, which: ConfigWhich) -> Result<Value> {
        let text = self
            .config_text(which, &ConfigPath::root(), Pipe::Json)
            .await?;
        serde_json::from_str(&text).map_err(|e| {
            ShellError::new(format!(
                "oxr-routerd sent a configuration that is not JSON: {e}"
            ))
        })
    }

    async fn compare(&mut self) -> Result<String> {
        Ok(self
            .routerd_call(self.rpc_timeout, |mut c| async move {
                c.compare(CompareRequest {}).await
            })
            .await?
            .diff)
    }

    async fn run_operational(&mut self, tokens: &[Token], pipe: Pipe) -> Result<String> {
        let words: Vec<String> = tokens.iter().map(|t| t.text.clone()).collect();
        let first = words.first().map(String::as_str).unwrap_or("");
        if !self.discovered && !first.is_empty() && "show".starts_with(first) {
            self.discover().await;
        }
        let resolved = match complete::resolve(&self.commands, &words) {
            Ok(r) => (r.command.clone(), r.words),
            Err(_) => {
                // A process may have started (or restarted) since we last looked.
                self.discover().await;
                match complete::resolve(&self.commands, &words) {
                    Ok(r) => (r.command.clone(), r.words),
                    Err(_) if self.processes.is_empty() && "show".starts_with(first) => {
                        return Err(ShellError::new(format!(
                            "\"{}\": no process answers in {} (is router {} running?)",
                            words.join(" "),
                            self.run_dir.display(),
                            self.router
                        )))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let (command, words) = resolved;
        let no_json = |what: &str| -> Result<()> {
            if pipe == Pipe::Json {
                Err(ShellError::new(format!(
                    "\"| json\" does not apply to \"{what}\""
                )))
            } else {
                Ok(())
            }
        };
        match command.owner {
            Owner::Process(process) => self.show_process(&process, words[1..].to_vec(), pipe).await,
            Owner::Builtin(Builtin::Help) => {
                no_json(&words.join(" "))?;
                let ctx = self.completion_context();
                if words == ["help"] {
                    Ok(complete::help_text("", &ctx))
                } else {
                    Ok(complete::help_text(&format!("{} ", words.join(" ")), &ctx))
                }
            }
            Owner::Builtin(Builtin::Exit) => {
                no_json("exit")?;
                self.quit = true;
                Ok(String::new())
            }
            Owner::Builtin(Builtin::Configure) => {
                no_json("configure")?;
                self.mode = Mode::Configure;
                self.refresh().await;
                match self.compare().await {
                    Ok(diff) if !diff.trim().is_empty() => Ok(
                        "note: the candidate has uncommitted changes (see \"compare\")\n".into(),
                    ),
                    _ => Ok(String::new()),
                }
            }
            Owner::Builtin(Builtin::ShowConfiguration) => {
                let schema = self.schema().await;
                let path = schema.plan_show(&words[command.words.len()..])?;
                self.config_text(ConfigWhich::Running, &path, pipe).await
            }
            Owner::Builtin(Builtin::ShowRevisions) => self.show_revisions(pipe).await,
            Owner::Builtin(Builtin::ShowProcesses) => self.show_processes(pipe).await,
            Owner::Builtin(Builtin::RestartProcess) => {
                no_json("restart process")?;
                let name = words[2].clone();
                let reply = self
                    .routerd_call(self.rpc_timeout, |mut c| async move {
                        c.restart_process(RestartProcessRequest { name }).await
                    })
                    .await?;
                if reply.ok {
                    Ok(format!("restarting {}\n", words[2]))
                } else {
                    Err(ShellError::new(reply.error))
                }
            }
        }
    }

    async fn show_process(
        &mut self,
        process: &str,
        words: Vec<String>,
        pipe: Pipe,
    ) -> Result<String> {
        for attempt in 0..2 {
            let Some(handle) = self.processes.iter().find(|p| p.name == process).cloned() else {
                return Err(ShellError::new(format!(
                    "process {process} is not running (no socket answers for it in {})",
                    self.run_dir.display()
                )));
            };
            let mut client = ProcessClient::new(handle.channel.clone());
            let call = client.show(ShowRequest {
                words: words.clone(),
            });
            match tokio::time::timeout(self.rpc_timeout, call).await {
                Ok(Ok(reply)) => return Ok(format_show(reply.into_inner(), pipe)),
                Ok(Err(status)) if status.code() == Code::Unavailable && attempt == 0 => {
                    // It may have restarted on a new socket: look again, once.
                    self.discover().await;
                }
                Ok(Err(status)) => {
                    return Err(status_error(process, &handle.socket, &self.router, &status))
                }
                Err(_) => {
                    return Err(ShellError::new(format!(
                        "{process} did not answer within {} s",
                        self.rpc_timeout.as_secs()
                    )))
                }
            }
        }
        Err(ShellError::new(format!("{process} is not reachable")))
    }

    async fn show_revisions(&mut self, pipe: Pipe) -> Result<String> {
        let revs = self
            .routerd_call(self.rpc_timeout, |mut c| async move {
                c.list_revisions(ListRevisionsRequest {}).await
            })
            .await?;
        if pipe == Pipe::Json {
            let list: Vec<Value> = revs
                .revisions
                .iter()
                .map(
                    |r| json!({"number": r.number, "unix-time": r.unix_time, "comment": r.comment}),
                )
                .collect();
            return Ok(pretty_json(
                &json!({"running": revs.running, "revisions": list}).to_string(),
            ));
        }
        let mut out = format!("{:<6} {:<21} {}\n", "REV", "COMMITTED (UTC)", "COMMENT");
        for r in &revs.revisions {
            let mark = if r.number == revs.running { "*" } else { " " };
            let when = u64::try_from(r.unix_time)
                .ok()
                .map(|t| {
                    let st = SystemTime::UNIX_EPOCH + Duration::from_secs(t);
                    humantime::format_rfc3339_seconds(st)
                        .to_string()
                        .replace('T', " ")
                        .trim_end_matches('Z')
                        .to_string()
                })
                .unwrap_or_default();
            out.push_str(&format!(
                "{:<6} {:<21} {}\n",
                format!("{}{mark}", r.number),
                when,
                r.comment
            ));
        }
        Ok(out)
    }

    async fn show_processes(&mut self, pipe: Pipe) -> Result<String> {
        let st = self
            .routerd_call(self.rpc_timeout, |mut c| async move {
                c.process_status(ProcessStatusRequest {}).await
            })
            .await?;
        if pipe == Pipe::Json {
            let list: Vec<Value> = st
                .processes
                .iter()
                .map(|p| {
                    json!({"name": p.name, "pid": p.pid, "state": p.state, "restarts": p.restarts,
                           "uptime-secs": p.uptime_secs, "last-exit": p.last_exit, "socket": p.socket})
                })
                .collect();
            return Ok(pretty_json(
                &json!({"router": st.router, "processes": list}).to_string(),
            ));
        }
        let mut out = format!(
            "{:<10} {:>8} {:<9} {:>8} {:>10}  {}\n",
            "PROCESS", "PID", "STATE", "RESTARTS", "UPTIME", "LAST EXIT"
        );
        for p in &st.processes {
            out.push_str(&format!(
                "{:<10} {:>8} {:<9} {:>8} {:>10}  {}\n",
                p.name,
                p.pid,
                p.state,
                p.restarts,
                humantime::format_duration(Duration::from_secs(p.uptime_secs)).to_string(),
                p.last_exit
            ));
        }
        Ok(out)
    }

    async fn run_configure(&mut self, line: &str, tokens: &[Token], pipe: Pipe) -> Result<String> {
        let Some(first) = tokens.first() else {
            return Ok(String::new());
        };
        let cmd = complete::resolve_config_command(&first.text)?;
        let args = &tokens[1..];
        let words: Vec<String> = args.iter().map(|t| t.text.clone()).collect();
        if pipe == Pipe::Json && !matches!(cmd, "show" | "run") {
            return Err(ShellError::new(format!(
                "\"| json\" does not apply to \"{cmd}\""
            )));
        }
        match cmd {
            "set" => self.cmd_set(line, args).await,
            "delete" => self.cmd_delete(line, args).await,
            "show" => {
                let path = match args.first() {
                    Some(t) if is_dotted(t.raw(line)) && args.len() == 1 => {
                        ConfigPath::parse(t.raw(line))?
                    }
                    _ => self.schema().await.plan_show(&words)?,
                };
                self.config_text(ConfigWhich::Candidate, &path, pipe).await
            }
            "compare" => {
                no_args(cmd, &words)?;
                let diff = self.compare().await?;
                if diff.trim().is_empty() {
                    Ok("no differences between running and candidate\n".into())
                } else {
                    Ok(diff)
                }
            }
            "commit" => {
                let comment = match words.split_first() {
                    None => String::new(),
                    Some((w, rest)) if !w.is_empty() && "comment".starts_with(w.as_str()) => {
                        if rest.is_empty() {
                            return Err(ShellError::new(
                                "commit comment: missing the comment text",
                            ));
                        }
                        rest.join(" ")
                    }
                    Some((w, _)) => {
                        return Err(ShellError::new(format!(
                            "commit: unexpected {w:?} (expected: commit [comment TEXT])"
                        )))
                    }
                };
                let reply = self
                    .routerd_call(self.commit_timeout, |mut c| async move {
                        c.commit(CommitRequest { comment }).await
                    })
                    .await?;
                commit_result(reply, "commit complete")
            }
            "rollback" => {
                let n: u64 = match words.as_slice() {
                    [n] => n.parse().map_err(|_| {
                        ShellError::new(format!("rollback: expected a revision number, got {n:?}"))
                    })?,
                    _ => {
                        return Err(ShellError::new(
                            "usage: rollback N (see \"run show revisions\")",
                        ))
                    }
                };
                let reply = self
                    .routerd_call(self.commit_timeout, |mut c| async move {
                        c.rollback(RollbackRequest { revision: n }).await
                    })
                    .await?;
                commit_result(reply, &format!("rollback to revision {n} complete"))
            }
            "load" => {
                let [file] = words.as_slice() else {
                    return Err(ShellError::new("usage: load FILE (a whole router TOML)"));
                };
                let text = std::fs::read_to_string(file)
                    .map_err(|e| ShellError::new(format!("load: {file}: {e}")))?;
                let reply = self
                    .routerd_call(self.rpc_timeout, |mut c| async move {
                        c.load_candidate(ConfigText {
                            text,
                            format: "toml".into(),
                        })
                        .await
                    })
                    .await?;
                edit_result(reply)?;
                Ok(format!("candidate replaced by {file} (not committed)\n"))
            }
            "discard" => {
                no_args(cmd, &words)?;
                let reply = self
                    .routerd_call(self.rpc_timeout, |mut c| async move {
                        c.discard(DiscardRequest {}).await
                    })
                    .await?;
                edit_result(reply)?;
                Ok("candidate discarded (it equals running again)\n".into())
            }
            "validate" => {
                no_args(cmd, &words)?;
                let reply = self
                    .routerd_call(self.rpc_timeout, |mut c| async move {
                        c.validate(ValidateRequest {}).await
                    })
                    .await?;
                if reply.ok {
                    Ok("configuration is valid\n".into())
                } else {
                    Err(ShellError::config(
                        &reply.errors,
                        &format!("{} error(s) in the candidate", reply.errors.len()),
                    ))
                }
            }
            "run" => {
                if args.is_empty() {
                    return Err(ShellError::new("run: missing the operational command"));
                }
                let r = complete::resolve(&self.commands, &words).ok();
                if let Some(Owner::Builtin(Builtin::Configure | Builtin::Exit)) =
                    r.map(|r| r.command.owner.clone())
                {
                    return Err(ShellError::new(format!(
                        "\"{}\" cannot be run from configure mode",
                        words[0]
                    )));
                }
                self.run_operational(args, pipe).await
            }
            "help" => Ok(complete::help_text("", &self.completion_context())),
            "exit" | "quit" => {
                let pending = self.compare().await.map(|d| !d.trim().is_empty());
                self.mode = Mode::Operational;
                if pending.unwrap_or(false) {
                    Ok("warning: uncommitted changes stay in the candidate (\"commit\" or \"discard\" them)\n".into())
                } else {
                    Ok(String::new())
                }
            }
            other => Err(ShellError::new(format!("{other}: not implemented"))),
        }
    }

    async fn cmd_set(&mut self, line: &str, args: &[Token]) -> Result<String> {
        let ops = match args {
            [] => return Err(ShellError::new("set: missing configuration path")),
            [first, rest @ ..] if is_dotted(first.raw(line)) => {
                let path = ConfigPath::parse(first.raw(line))?;
                let (Some(start), Some(end)) = (rest.first(), rest.last()) else {
                    return Err(ShellError::new(format!("{path}: missing value")));
                };
                vec![SetOp {
                    path,
                    value: line[start.start..end.end].trim().to_string(),
                }]
            }
            _ => {
                let words: Vec<String> = args.iter().map(|t| t.text.clone()).collect();
                let schema = self.schema().await;
                let candidate = self.config_json(ConfigWhich::Candidate).await?;
                schema.plan_set(&candidate, &words)?
            }
        };
        for op in ops {
            let req = SetRequest {
                path: op.path.to_string(),
                value: op.value,
            };
            let reply = self
                .routerd_call(self.rpc_timeout, |mut c| async move { c.set(req).await })
                .await?;
            edit_result(reply)?;
        }
        Ok(String::new())
    }

    async fn cmd_delete(&mut self, line: &str, args: &[Token]) -> Result<String> {
        let path = match args {
            [] => return Err(ShellError::new("delete: missing configuration path")),
            [only] if is_dotted(only.raw(line)) => ConfigPath::parse(only.raw(line))?,
            _ => {
                let words: Vec<String> = args.iter().map(|t| t.text.clone()).collect();
                self.schema().await.plan_delete(&words)?
            }
        };
        let path = path.to_string();
        let reply = self
            .routerd_call(self.rpc_timeout, |mut c| async move {
                c.delete(DeleteRequest { path }).await
            })
            .await?;
        edit_result(reply)?;
        Ok(String::new())
    }
}

/// A path typed in dotted form (`protocols.static.route."10.9.0.0/16".via`) rather than as
/// words. The first word of a words-form path is a top-level key, which has no dot.
fn is_dotted(raw: &str) -> bool {
    raw.contains('.')
}

fn no_args(cmd: &str, words: &[String]) -> Result<()> {
    if words.is_empty() {
        Ok(())
    } else {
        Err(ShellError::new(format!(
            "{cmd}: unexpected {:?}",
            words.join(" ")
        )))
    }
}

fn edit_result(reply: EditReply) -> Result<()> {
    if reply.ok {
        Ok(())
    } else {
        Err(ShellError::config(&reply.errors, ""))
    }
}

fn commit_result(reply: CommitReply, done: &str) -> Result<String> {
    if reply.ok {
        Ok(format!("{done}: revision {} is running\n", reply.revision))
    } else {
        Err(ShellError::config(
            &reply.errors,
            &format!(
                "commit failed ({} error(s)); the running configuration is unchanged",
                reply.errors.len()
            ),
        ))
    }
}

/// A gRPC failure as one line: unreachable processes say where we looked.
fn status_error(who: &str, socket: &Path, router: &str, status: &Status) -> ShellError {
    match status.code() {
        Code::Unavailable => ShellError::new(format!(
            "cannot reach {who} at {} (is router {router} running?)",
            socket.display()
        )),
        Code::Unimplemented => ShellError::new(format!("{who} does not implement this request")),
        _ if status.message().is_empty() => ShellError::new(format!("{who}: {}", status.code())),
        _ => ShellError::new(status.message().lines().next().unwrap_or("").to_string()),
    }
}

/// JSON text, pretty-printed (as received if it does not parse).
pub fn pretty_json(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_else(|_| text.to_string()) + "\n",
        Err(_) => text.to_string(),
    }
}

fn format_show(reply: ShowReply, pipe: Pipe) -> String {
    match pipe {
        Pipe::Text => reply.text,
        Pipe::Json => pretty_json(&reply.json),
    }
}

/// Runs one command line in the shell's current mode and returns what it prints. A line
/// ending in `?` returns the help for what may come next instead.
pub async fn run_command(ctx: &mut Context, line: &str) -> Result<String> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(String::new());
    }
    if let Some(before) = line::help_request(line) {
        ctx.ensure_ready().await;
        return Ok(complete::help_text(before, &ctx.completion_context()));
    }
    let parsed = line::parse(line)?;
    match ctx.mode {
        Mode::Operational => ctx.run_operational(&parsed.tokens, parsed.pipe).await,
        Mode::Configure => ctx.run_configure(line, &parsed.tokens, parsed.pipe).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_print_one_line_each() {
        let e = ShellError::config(
            &[
                ConfigError {
                    path: r#"protocols.static.route."10.9.0.0/33""#.into(),
                    reason: "not a prefix".into(),
                },
                ConfigError {
                    path: String::new(),
                    reason: "TOML syntax".into(),
                },
            ],
            "commit failed",
        );
        assert_eq!(
            e.to_string(),
            "error: protocols.static.route.\"10.9.0.0/33\": not a prefix\nerror: TOML syntax\nerror: commit failed"
        );
        assert_eq!(ShellError::new("x").to_string(), "error: x");
    }

    #[test]
    fn unreachable_status_names_the_socket() {
        let e = status_error(
            "oxr-routerd",
            Path::new("/run/oxr/r1/routerd.sock"),
            "r1",
            &Status::unavailable("transport error"),
        );
        assert_eq!(
            e.to_string(),
            "error: cannot reach oxr-routerd at /run/oxr/r1/routerd.sock (is router r1 running?)"
        );
        let e = status_error(
            "rib",
            Path::new("x"),
            "r1",
            &Status::invalid_argument("bad prefix \"x\"\nmore"),
        );
        assert_eq!(e.to_string(), "error: bad prefix \"x\"");
    }

    #[test]
    fn pretty_prints_json_and_passes_other_text() {
        assert_eq!(pretty_json(r#"{"a":1}"#), "{\n  \"a\": 1\n}\n");
        assert_eq!(pretty_json("not json"), "not json");
    }
}
