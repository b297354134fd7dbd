//! oxrsh against a fake router: fake oxr-routerd (config by path on a TOML table, commit
//! with oxr-config's validation, revisions) and fake fea/rib/static processes on Unix
//! sockets in a temporary run directory. Checks where show commands go, what set/commit
//! send, and what the user sees.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use oxr_config::ConfigPath;
use oxr_proto::process::process_server::{Process, ProcessServer};
use oxr_proto::process::{
    CommandSpec, DescribeReply, DescribeRequest, MetricsReply, MetricsRequest, ShowReply,
    ShowRequest,
};
use oxr_proto::routerd::routerd_server::{Routerd, RouterdServer};
use oxr_proto::routerd::*;
use oxr_proto::transport;
use oxrsh::complete::Mode;
use oxrsh::{run_command, Context};
use tonic::{Request, Response, Status};

type Calls = Arc<Mutex<Vec<String>>>;

/// A process answering `Describe` with fixed commands and `Show` with its name and words.
#[derive(Clone)]
struct FakeProcess {
    name: &'static str,
    commands: Vec<(&'static str, &'static str)>,
    calls: Calls,
}

#[tonic::async_trait]
impl Process for FakeProcess {
    async fn describe(
        &self,
        _: Request<DescribeRequest>,
    ) -> Result<Response<DescribeReply>, Status> {
        Ok(Response::new(DescribeReply {
            process: self.name.into(),
            commands: self
                .commands
                .iter()
                .map(|(w, h)| CommandSpec {
                    words: w.split_whitespace().map(String::from).collect(),
                    help: (*h).into(),
                })
                .collect(),
        }))
    }

    async fn show(&self, req: Request<ShowRequest>) -> Result<Response<ShowReply>, Status> {
        let words = req.into_inner().words;
        self.calls
            .lock()
            .unwrap()
            .push(format!("{} show {}", self.name, words.join(" ")));
        if words.last().map(String::as_str) == Some("999.0.0.0") {
            return Err(Status::invalid_argument(
                "999.0.0.0: not an address or prefix",
            ));
        }
        Ok(Response::new(ShowReply {
            text: format!("{}: {}\n", self.name, words.join(" ")),
            json: serde_json::json!({"process": self.name, "words": words}).to_string(),
        }))
    }

    async fn metrics(&self, _: Request<MetricsRequest>) -> Result<Response<MetricsReply>, Status> {
        Ok(Response::new(MetricsReply::default()))
    }
}

#[derive(Default)]
struct RouterdState {
    running: toml::Table,
    candidate: toml::Table,
    revisions: Vec<toml::Table>,
}

/// oxr-routerd's config API over in-memory tables, with the real path edits and validation.
#[derive(Clone)]
struct FakeRouterd {
    state: Arc<Mutex<RouterdState>>,
    calls: Calls,
}

fn toml_value(text: &str) -> toml::Value {
    match format!("v = {text}").parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap(),
        Err(_) => toml::Value::String(text.to_string()),
    }
}

fn errors_of(errs: Vec<oxr_config::ConfigError>) -> Vec<ConfigError> {
    errs.into_iter()
        .map(|e| ConfigError {
            path: e.path,
            reason: e.reason,
        })
        .collect()
}

fn bad_path(e: oxr_config::PathError) -> EditReply {
    EditReply {
        ok: false,
        errors: vec![ConfigError {
            path: String::new(),
            reason: e.to_string(),
        }],
    }
}

#[tonic::async_trait]
impl Routerd for FakeRouterd {
    async fn get_config(
        &self,
        req: Request<GetConfigRequest>,
    ) -> Result<Response<ConfigText>, Status> {
        let req = req.into_inner();
        self.calls.lock().unwrap().push(format!(
            "get {} {:?} {}",
            if req.which == ConfigWhich::Candidate as i32 {
                "candidate"
            } else {
                "running"
            },
            req.path,
            req.format
        ));
        let st = self.state.lock().unwrap();
        let table = if req.which == ConfigWhich::Candidate as i32 {
            &st.candidate
        } else {
            &st.running
        };
        let node = if req.path.is_empty() {
            toml::Value::Table(table.clone())
        } else {
            let p = ConfigPath::parse(&req.path)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
            p.get(table)
                .cloned()
                .ok_or_else(|| Status::not_found(format!("{}: no such node", req.path)))?
        };
        let text = if req.format == "json" {
            serde_json::to_string(&node).unwrap()
        } else {
            match node {
                toml::Value::Table(t) => toml::to_string(&t).unwrap(),
                other => other.to_string(),
            }
        };
        Ok(Response::new(ConfigText {
            text,
            format: req.format,
        }))
    }

    async fn set(&self, req: Request<SetRequest>) -> Result<Response<EditReply>, Status> {
        let req = req.into_inner();
        self.calls
            .lock()
            .unwrap()
            .push(format!("set {} {}", req.path, req.value));
        let reply = match ConfigPath::parse(&req.path) {
            Err(e) => bad_path(e),
            Ok(p) => match p.set(
                &mut self.state.lock().unwrap().candidate,
                toml_value(&req.value),
            ) {
                Ok(()) => EditReply {
                    ok: true,
                    errors: vec![],
                },
                Err(e) => bad_path(e),
            },
        };
        Ok(Response::new(reply))
    }

    async fn delete(&self, req: Request<DeleteRequest>) -> Result<Response<EditReply>, Status> {
        let req = req.into_inner();
        self.calls
            .lock()
            .unwrap()
            .push(format!("delete {}", req.path));
        let reply = match ConfigPath::parse(&req.path) {
            Err(e) => bad_path(e),
            Ok(p) => match p.delete(&mut self.state.lock().unwrap().candidate) {
                Ok(()) => EditReply {
                    ok: true,
                    errors: vec![],
                },
                Err(e) => bad_path(e),
            },
        };
        Ok(Response::new(reply))
    }

    async fn load_candidate(&self, _: Request<ConfigText>) -> Result<Response<EditReply>, Status> {
        Err(Status::unimplemented("load"))
    }

    async fn discard(&self, _: Request<DiscardRequest>) -> Result<Response<EditReply>, Status> {
        self.calls.lock().unwrap().push("discard".into());
        let mut st = self.state.lock().unwrap();
        st.candidate = st.running.clone();
        Ok(Response::new(EditReply {
            ok: true,
            errors: vec![],
        }))
    }

    async fn validate(
        &self,
        _: Request<ValidateRequest>,
    ) -> Result<Response<ValidateReply>, Status> {
        let st = self.state.lock().unwrap();
        Ok(Response::new(
            match oxr_config::validate_table(&st.candidate) {
                Ok(_) => ValidateReply {
                    ok: true,
                    errors: vec![],
                },
                Err(e) => ValidateReply {
                    ok: false,
                    errors: errors_of(e),
                },
            },
        ))
    }

    async fn compare(&self, _: Request<CompareRequest>) -> Result<Response<CompareReply>, Status> {
        let st = self.state.lock().unwrap();
        let diff = if st.running == st.candidate {
            String::new()
        } else {
            format!(
                "--- running\n+++ candidate\n-{}\n+{}\n",
                toml::to_string(&st.running).unwrap().trim(),
                toml::to_string(&st.candidate).unwrap().trim()
            )
        };
        Ok(Response::new(CompareReply { diff }))
    }

    async fn commit(&self, req: Request<CommitRequest>) -> Result<Response<CommitReply>, Status> {
        let comment = req.into_inner().comment;
        self.calls
            .lock()
            .unwrap()
            .push(format!("commit {comment:?}"));
        let mut st = self.state.lock().unwrap();
        Ok(Response::new(
            match oxr_config::validate_table(&st.candidate) {
                Ok(_) => {
                    st.running = st.candidate.clone();
                    let snapshot = st.running.clone();
                    st.revisions.push(snapshot);
                    CommitReply {
                        ok: true,
                        revision: st.revisions.len() as u64,
                        errors: vec![],
                    }
                }
                Err(e) => CommitReply {
                    ok: false,
                    revision: 0,
                    errors: errors_of(e),
                },
            },
        ))
    }

    async fn rollback(
        &self,
        req: Request<RollbackRequest>,
    ) -> Result<Response<CommitReply>, Status> {
        let n = req.into_inner().revision;
        self.calls.lock().unwrap().push(format!("rollback {n}"));
        let mut st = self.state.lock().unwrap();
        let Some(t) = st.revisions.get((n as usize).wrapping_sub(1)).cloned() else {
            return Ok(Response::new(CommitReply {
                ok: false,
                revision: 0,
                errors: vec![ConfigError {
                    path: String::new(),
                    reason: format!("no revision {n}"),
                }],
            }));
        };
        st.running = t.clone();
        st.candidate = t.clone();
        st.revisions.push(t);
        Ok(Response::new(CommitReply {
            ok: true,
            revision: st.revisions.len() as u64,
            errors: vec![],
        }))
    }

    async fn list_revisions(
        &self,
        _: Request<ListRevisionsRequest>,
    ) -> Result<Response<Revisions>, Status> {
        let st = self.state.lock().unwrap();
        Ok(Response::new(Revisions {
            revisions: (1..=st.revisions.len() as u64)
                .map(|n| Revision {
                    number: n,
                    unix_time: 1_700_000_000 + n as i64,
                    comment: format!("rev {n}"),
                })
                .collect(),
            running: st.revisions.len() as u64,
        }))
    }

    async fn schema(&self, _: Request<SchemaRequest>) -> Result<Response<SchemaReply>, Status> {
        Ok(Response::new(SchemaReply {
            json_schema: oxr_config::json_schema().to_string(),
        }))
    }

    async fn process_status(
        &self,
        _: Request<ProcessStatusRequest>,
    ) -> Result<Response<ProcessStatusReply>, Status> {
        Ok(Response::new(ProcessStatusReply {
            router: "r1".into(),
            processes: ["fea", "rib", "static"]
                .iter()
                .map(|n| ProcessInfo {
                    name: (*n).into(),
                    pid: 100,
                    state: "running".into(),
                    ..Default::default()
                })
                .collect(),
        }))
    }

    async fn restart_process(
        &self,
        req: Request<RestartProcessRequest>,
    ) -> Result<Response<RestartProcessReply>, Status> {
        let name = req.into_inner().name;
        self.calls.lock().unwrap().push(format!("restart {name}"));
        Ok(Response::new(if name == "bogus" {
            RestartProcessReply {
                ok: false,
                error: "no process bogus".into(),
            }
        } else {
            RestartProcessReply {
                ok: true,
                error: String::new(),
            }
        }))
    }

    type WatchConfigStream =
        Pin<Box<dyn tokio_stream::Stream<Item = Result<ConfigSection, Status>> + Send>>;

    async fn watch_config(
        &self,
        _: Request<WatchConfigRequest>,
    ) -> Result<Response<Self::WatchConfigStream>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::empty())))
    }
}

/// One fake process: its own thread and runtime, so that stopping it drops its open
/// connections too (as a killed process would).
struct Server {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The fake router: sockets in a temporary run directory, every call recorded.
struct FakeRouter {
    dir: tempfile::TempDir,
    calls: Calls,
    state: Arc<Mutex<RouterdState>>,
    servers: BTreeMap<&'static str, Server>,
}

fn process(name: &'static str, calls: &Calls) -> FakeProcess {
    let commands = match name {
        "fea" => vec![
            ("interfaces", "Interfaces and addresses"),
            ("fib", "Forwarding table"),
            ("fib <PREFIX>", "One FIB entry"),
            ("fea", "Backend status and counters"),
        ],
        "rib" => vec![
            ("route", "All routes"),
            ("route <ADDR|PREFIX>", "Longest match or exact prefix"),
            ("route protocol <P>", "Routes of one protocol"),
            ("route summary", "Route counts"),
            ("route nexthops", "Watched next hops"),
        ],
        "static" => vec![("static routes", "Configured static routes")],
        "routerd" => vec![("processes", "Processes and their state")],
        _ => vec![],
    };
    FakeProcess {
        name,
        commands,
        calls: calls.clone(),
    }
}

impl FakeRouter {
    fn new() -> Self {
        FakeRouter {
            dir: tempfile::tempdir().unwrap(),
            calls: Arc::default(),
            state: Arc::default(),
            servers: BTreeMap::new(),
        }
    }

    fn socket(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.sock"))
    }

    async fn start(&mut self, name: &'static str) {
        let path = self.socket(name);
        let proc_svc = ProcessServer::new(process(name, &self.calls));
        let builder = tonic::transport::Server::builder().add_service(proc_svc);
        let router = if name == "routerd" {
            builder.add_service(RouterdServer::new(FakeRouterd {
                state: self.state.clone(),
                calls: self.calls.clone(),
            }))
        } else {
            builder
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let incoming = transport::bind_unix(&path).unwrap();
                ready_tx.send(()).unwrap();
                tokio::select! {
                    _ = router.serve_with_incoming(incoming) => {}
                    _ = stop_rx => {}
                }
            });
            // Dropping the runtime drops every connection task with it.
            drop(rt);
        });
        ready_rx.recv().unwrap();
        self.servers.insert(
            name,
            Server {
                stop: Some(stop_tx),
                thread: Some(thread),
            },
        );
    }

    async fn start_all(&mut self) {
        for name in ["fea", "rib", "routerd"] {
            self.start(name).await;
        }
    }

    fn stop(&mut self, name: &str) {
        drop(self.servers.remove(name));
        let _ = std::fs::remove_file(self.socket(name));
    }

    fn ctx(&self) -> Context {
        Context::new("r1", self.dir.path())
    }

    fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    fn edits(&self) -> Vec<String> {
        self.take_calls()
            .into_iter()
            .filter(|c| !c.starts_with("get "))
            .collect()
    }

    fn candidate(&self) -> toml::Table {
        self.state.lock().unwrap().candidate.clone()
    }

    fn running(&self) -> toml::Table {
        self.state.lock().unwrap().running.clone()
    }
}

fn run_dir_of(ctx: &Context) -> &Path {
    ctx.run_dir()
}

async fn ok(ctx: &mut Context, line: &str) -> String {
    match run_command(ctx, line).await {
        Ok(out) => out,
        Err(e) => panic!("{line:?} failed: {e}"),
    }
}

async fn err(ctx: &mut Context, line: &str) -> String {
    match run_command(ctx, line).await {
        Ok(out) => panic!("{line:?} should fail, printed {out:?}"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn show_commands_go_to_the_process_that_declared_them() {
    let mut r = FakeRouter::new();
    r.start_all().await;
    let mut ctx = r.ctx();
    assert_eq!(run_dir_of(&ctx), r.dir.path());

    assert_eq!(
        ok(&mut ctx, "show route summary").await,
        "rib: route summary\n"
    );
    assert_eq!(ok(&mut ctx, "show interfaces").await, "fea: interfaces\n");
    assert_eq!(
        ok(&mut ctx, "show fib 10.0.0.0/8").await,
        "fea: fib 10.0.0.0/8\n"
    );
    assert_eq!(
        ok(&mut ctx, "sh ro prot static").await,
        "rib: route protocol static\n"
    );
    assert_eq!(ok(&mut ctx, "show processes").await, "routerd: processes\n");
    assert_eq!(
        r.take_calls()
            .into_iter()
            .filter(|c| c.contains(" show "))
            .collect::<Vec<_>>(),
        [
            "rib show route summary",
            "fea show interfaces",
            "fea show fib 10.0.0.0/8",
            "rib show route protocol static",
            "routerd show processes",
        ]
    );

    let json = ok(&mut ctx, "show route 10.1.2.3 | json").await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"process": "rib", "words": ["route", "10.1.2.3"]})
    );
    assert!(json.contains("\n  \"process\""), "pretty-printed: {json}");

    // A process's refusal is one line.
    assert_eq!(
        err(&mut ctx, "show route 999.0.0.0").await,
        "error: 999.0.0.0: not an address or prefix"
    );
    let e = err(&mut ctx, "show bogus").await;
    assert!(
        e.starts_with("error: unknown command \"show bogus\" (expected one of:"),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
    assert_eq!(
        err(&mut ctx, "show static").await,
        "error: unknown command \"show static\" (expected one of: configuration, revisions, interfaces, fib, fea, route, processes)"
    );
}

#[tokio::test]
async fn a_process_that_starts_later_is_found_when_needed() {
    let mut r = FakeRouter::new();
    r.start_all().await;
    let mut ctx = r.ctx();
    assert_eq!(ok(&mut ctx, "show fea").await, "fea: fea\n");
    r.start("static").await;
    assert_eq!(
        ok(&mut ctx, "show static routes").await,
        "static: static routes\n"
    );
    // fea goes away: a clear line naming it.
    r.stop("fea");
    let e = err(&mut ctx, "show interfaces").await;
    assert!(e.starts_with("error: "), "{e}");
    assert!(!e.contains('\n'), "{e}");
    // ... and comes back on the same socket.
    r.start("fea").await;
    assert_eq!(ok(&mut ctx, "show interfaces").await, "fea: interfaces\n");
}

#[tokio::test]
async fn builtins_restart_configuration_and_revisions() {
    let mut r = FakeRouter::new();
    r.start_all().await;
    let mut ctx = r.ctx();
    assert_eq!(
        ok(&mut ctx, "restart process rib").await,
        "restarting rib\n"
    );
    assert_eq!(
        err(&mut ctx, "restart process bogus").await,
        "error: no process bogus"
    );
    assert_eq!(r.edits(), ["restart rib", "restart bogus"]);

    r.state.lock().unwrap().running = r#"
        [protocols.static.route."10.9.0.0/16"]
        via = ["10.0.12.2"]
    "#
    .parse()
    .unwrap();
    let toml = ok(&mut ctx, "show configuration").await;
    assert!(toml.contains("10.0.12.2"), "{toml}");
    let json = ok(&mut ctx, "show configuration protocols static | json").await;
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["route"]["10.9.0.0/16"]["via"][0], "10.0.12.2");
    assert!(r
        .take_calls()
        .contains(&r#"get running "protocols.static" json"#.to_string()));

    let revs = ok(&mut ctx, "show revisions").await;
    assert!(revs.starts_with("REV"), "{revs}");
    assert_eq!(
        err(&mut ctx, "configure | json").await,
        "error: \"| json\" does not apply to \"configure\""
    );
}

#[tokio::test]
async fn configure_set_commit_rollback() {
    let mut r = FakeRouter::new();
    r.start_all().await;
    let mut ctx = r.ctx();
    assert_eq!(ctx.prompt(), "r1> ");
    ok(&mut ctx, "configure").await;
    assert_eq!(ctx.mode(), Mode::Configure);
    assert_eq!(ctx.prompt(), "r1# ");

    ok(
        &mut ctx,
        "set protocols static route 10.9.0.0/16 via 10.0.12.2",
    )
    .await;
    ok(
        &mut ctx,
        "set protocols static route 10.9.0.0/16 via 10.0.13.2",
    )
    .await;
    ok(
        &mut ctx,
        "set protocols static route 10.9.0.0/16 distance 5",
    )
    .await;
    assert_eq!(
        r.edits(),
        [
            r#"set protocols.static.route."10.9.0.0/16".via ["10.0.12.2"]"#,
            r#"set protocols.static.route."10.9.0.0/16".via "10.0.13.2""#,
            r#"set protocols.static.route."10.9.0.0/16".distance 5"#,
        ]
    );
    let route = r.candidate()["protocols"]["static"]["route"]["10.9.0.0/16"].clone();
    assert_eq!(route["via"].as_array().unwrap().len(), 2);
    assert_eq!(route["distance"].as_integer(), Some(5));

    // Candidate show, as TOML and JSON, whole or a subtree.
    let shown = ok(&mut ctx, "show protocols static").await;
    assert!(shown.contains("10.0.13.2"), "{shown}");
    let json = ok(&mut ctx, "show | json").await;
    assert!(json.contains("\"distance\": 5"), "{json}");
    assert!(ok(&mut ctx, "compare").await.contains("+++ candidate"));

    assert_eq!(
        ok(&mut ctx, r#"commit comment "first route""#).await,
        "commit complete: revision 1 is running\n"
    );
    assert!(r.edits().contains(&r#"commit "first route""#.to_string()));
    assert_eq!(r.running(), r.candidate());
    assert_eq!(
        ok(&mut ctx, "compare").await,
        "no differences between running and candidate\n"
    );

    // Dotted form, and delete of one list element.
    ok(
        &mut ctx,
        r#"set protocols.static.route."10.8.0.0/16".via ["10.0.12.9"]"#,
    )
    .await;
    ok(
        &mut ctx,
        "delete protocols static route 10.9.0.0/16 via 10.0.12.2",
    )
    .await;
    assert_eq!(
        r.edits(),
        [
            r#"set protocols.static.route."10.8.0.0/16".via ["10.0.12.9"]"#,
            r#"delete protocols.static.route."10.9.0.0/16".via."10.0.12.2""#,
        ]
    );
    assert_eq!(
        ok(&mut ctx, "commit").await,
        "commit complete: revision 2 is running\n"
    );

    // Rollback takes effect at once, as a new revision.
    assert_eq!(
        ok(&mut ctx, "rollback 1").await,
        "rollback to revision 1 complete: revision 3 is running\n"
    );
    let running = r.running();
    let routes = running["protocols"]["static"]["route"].as_table().unwrap();
    assert_eq!(routes.keys().collect::<Vec<_>>(), ["10.9.0.0/16"]);
    assert_eq!(
        err(&mut ctx, "rollback 9").await,
        "error: no revision 9\nerror: commit failed (1 error(s)); the running configuration is unchanged"
    );
    assert_eq!(
        err(&mut ctx, "rollback x").await,
        "error: rollback: expected a revision number, got \"x\""
    );

    // `run` reaches operational commands.
    assert_eq!(
        ok(&mut ctx, "run show route summary").await,
        "rib: route summary\n"
    );

    // Leaving with uncommitted changes warns, and keeps them.
    ok(&mut ctx, "set rib ecmp-width 4").await;
    let out = ok(&mut ctx, "exit").await;
    assert!(out.starts_with("warning: uncommitted changes"), "{out}");
    assert_eq!(ctx.mode(), Mode::Operational);
    assert_eq!(r.candidate()["rib"]["ecmp-width"].as_integer(), Some(4));
    let note = ok(&mut ctx, "configure").await;
    assert!(note.contains("uncommitted changes"), "{note}");
    ok(&mut ctx, "discard").await;
    assert_eq!(r.candidate(), r.running());
}

#[tokio::test]
async fn commit_errors_list_every_path_and_reason() {
    let mut r = FakeRouter::new();
    r.start_all().await;
    let mut ctx = r.ctx();
    ok(&mut ctx, "configure").await;
    ok(
        &mut ctx,
        "set protocols static route 10.9.0.0/33 via 10.0.12.2",
    )
    .await;
    ok(
        &mut ctx,
        "set protocols static route 10.8.0.0/16 via not-an-address",
    )
    .await;
    let before = r.running();
    let e = err(&mut ctx, "commit").await;
    let lines: Vec<&str> = e.lines().collect();
    assert!(lines.iter().all(|l| l.starts_with("error: ")), "{e}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(r#"error: protocols.static.route."10.9.0.0/33""#)),
        "{e}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(r#"error: protocols.static.route."10.8.0.0/16".via"#)),
        "{e}"
    );
    assert!(lines.last().unwrap().contains("commit failed"), "{e}");
    assert_eq!(r.running(), before);
    let v = err(&mut ctx, "validate").await;
    assert!(v.contains("10.9.0.0/33"), "{v}");

    // Errors found by the shell itself, before routerd is asked.
    assert_eq!(
        err(&mut ctx, "set fea dataplane dpdk").await,
        r#"error: fea.dataplane: "dpdk" is not one of: kernel, none, fastpath"#
    );
    assert_eq!(
        err(&mut ctx, "set protocols bgp").await,
        r#"error: protocols: unknown word "bgp" (expected one of: static)"#
    );
    assert_eq!(
        err(&mut ctx, "commit | json").await,
        "error: \"| json\" does not apply to \"commit\""
    );
}

#[tokio::test]
async fn question_mark_lists_what_comes_next() {
    let mut r = FakeRouter::new();
    r.start_all().await;
    let mut ctx = r.ctx();
    let h = ok(&mut ctx, "show route ?").await;
    assert!(h.starts_with("Possible completions:"), "{h}");
    assert!(h.contains("summary") && h.contains("Route counts"), "{h}");
    assert!(h.contains("<ADDR|PREFIX>"), "{h}");
    let h = ok(&mut ctx, "?").await;
    assert!(h.contains("configure"), "{h}");
    ok(&mut ctx, "configure").await;
    ok(&mut ctx, "set interfaces veth0 address 10.0.12.1/24").await;
    let h = ok(&mut ctx, "set interfaces ?").await;
    assert!(h.contains("veth0") && h.contains("<name>"), "{h}");
    let h = ok(&mut ctx, "set protocols static route 10.0.0.0/8 action ?").await;
    assert!(
        h.contains("reject") && h.contains("ICMP unreachable"),
        "{h}"
    );
    // `?` asked nothing of routerd beyond reads.
    assert!(r.edits().iter().all(|c| c.starts_with("set interfaces")));
}

#[tokio::test]
async fn without_routerd_config_commands_fail_in_one_line() {
    let mut r = FakeRouter::new();
    r.start("rib").await;
    let mut ctx = r.ctx();
    assert_eq!(ok(&mut ctx, "show route").await, "rib: route\n");
    ok(&mut ctx, "configure").await;
    let e = err(&mut ctx, "commit").await;
    assert_eq!(
        e,
        format!(
            "error: cannot reach oxr-routerd at {} (is router r1 running?)",
            r.socket("routerd").display()
        )
    );
}

#[tokio::test]
async fn a_router_that_is_not_running_is_named() {
    let r = FakeRouter::new();
    let mut ctx = r.ctx();
    let e = err(&mut ctx, "show route").await;
    assert_eq!(
        e,
        format!(
            "error: \"show route\": no process answers in {} (is router r1 running?)",
            r.dir.path().display()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_binary_exit_status() {
    let mut r = FakeRouter::new();
    r.start_all().await;
    let bin = env!("CARGO_BIN_EXE_oxrsh");
    let dir = r.dir.path().to_path_buf();
    let run = move |args: Vec<&'static str>| {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(bin)
                .arg("--run-dir")
                .arg(&dir)
                .args(args.iter().flat_map(|a| ["-c", a]))
                .env("HOME", &dir)
                .output()
                .unwrap()
        })
    };
    let out = run(vec!["show route summary", "show interfaces | json"])
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("rib: route summary\n{\n"), "{stdout}");

    let out = run(vec![
        "configure",
        "set protocols static route 10.9.0.0/16 via 10.0.12.2",
        "commit",
    ])
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("commit complete: revision 1"));
    assert!(r.running().contains_key("protocols"));

    // Stops at the first failure, exit status 1, one line on stderr.
    let out = run(vec!["show nonsense", "restart process rib"])
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: unknown command \"show nonsense\""),
        "{stderr}"
    );
    assert!(!r.edits().contains(&"restart rib".to_string()));
}

/// Not a test: serves the fake router for trying the interactive shell by hand
/// (`OXRSH_FAKE_DIR=/tmp/fake cargo test -p oxrsh --test fake_router -- --ignored
/// serve_fake_router`, then `oxrsh --run-dir /tmp/fake`). Stops after
/// `OXRSH_FAKE_SECS` seconds (default 60).
#[tokio::test]
#[ignore]
async fn serve_fake_router() {
    let Some(dir) = std::env::var_os("OXRSH_FAKE_DIR") else {
        eprintln!("set OXRSH_FAKE_DIR to a run directory");
        return;
    };
    let secs: u64 = std::env::var("OXRSH_FAKE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let mut r = FakeRouter::new();
    r.dir = tempfile::Builder::new().tempdir_in(&dir).unwrap();
    r.start_all().await;
    r.start("static").await;
    eprintln!("fake router in {}", r.dir.path().display());
    tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
}
