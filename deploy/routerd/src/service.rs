//! The config API (`oxr.routerd.Routerd`) and `show processes` (`oxr.process.Process`),
//! over the [`ConfigStore`], the revision files, the section watchers and the [`Supervisor`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use futures::Stream;
use oxr_config::{ConfigError, RouterConfig, CORE_PROCESSES};
use oxr_proto::routerd as pb;
use oxr_proto::routerd::routerd_server::{Routerd as RouterdRpc, RouterdServer};
use oxr_sdk::process::{process_service, ShowHandler, ShowOutput};
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::revisions::RevisionDir;
use crate::store::{render, ConfigStore, PendingCommit};
use crate::supervisor::{ProcStatus, Supervisor};

/// What a `WatchConfig` subscriber receives.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SectionValue {
    revision: u64,
    json: String,
    router_json: String,
}

/// One router's state behind the API.
pub struct Routerd {
    name: String,
    run_dir: PathBuf,
    started: Instant,
    /// Held across a whole commit (validate, persist, publish, reconcile) so commits are
    /// serialized and subscribers see them in order.
    store: tokio::sync::Mutex<ConfigStore>,
    revisions: Option<RevisionDir>,
    sections: std::sync::Mutex<BTreeMap<String, watch::Sender<SectionValue>>>,
    supervisor: Supervisor,
}

/// Unix time now, in seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The processes a configuration needs, in start order: oxr-fastpath when
/// `fea.dataplane = "fastpath"` (before the FEA that programs it), fea, rib, then each
/// protocol.
pub fn desired_processes(cfg: &RouterConfig) -> Vec<String> {
    let fastpath =
        (cfg.fea.dataplane == oxr_config::Dataplane::Fastpath).then(|| "fastpath".to_string());
    fastpath
        .into_iter()
        .chain(CORE_PROCESSES.iter().map(|p| p.to_string()))
        .chain(cfg.protocols.configured_names())
        .collect()
}

fn section_value(cfg: &RouterConfig, section: &str, revision: u64) -> SectionValue {
    SectionValue {
        revision,
        json: cfg.section_json(section).to_string(),
        router_json: serde_json::to_string(&cfg.router).expect("router section serializes"),
    }
}

fn pb_errors(errs: Vec<ConfigError>) -> Vec<pb::ConfigError> {
    errs.into_iter()
        .map(|e| pb::ConfigError {
            path: e.path,
            reason: e.reason,
        })
        .collect()
}

impl Routerd {
    /// The API over a store whose revision 1 is already in place (and saved in
    /// `revisions`, if given). Processes start with [`Routerd::start_processes`].
    pub fn new(
        name: &str,
        run_dir: &Path,
        store: ConfigStore,
        revisions: Option<RevisionDir>,
        supervisor: Supervisor,
    ) -> Arc<Self> {
        Arc::new(Routerd {
            name: name.to_string(),
            run_dir: run_dir.to_path_buf(),
            started: Instant::now(),
            store: tokio::sync::Mutex::new(store),
            revisions,
            sections: std::sync::Mutex::new(BTreeMap::new()),
            supervisor,
        })
    }

    /// Starts the processes the running configuration needs.
    pub async fn start_processes(&self) {
        let store = self.store.lock().await;
        self.supervisor
            .reconcile(&desired_processes(store.running_config()));
    }

    /// The supervisor.
    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// The tonic router serving `oxr.routerd.Routerd` and `oxr.process.Process`.
    pub fn grpc_router(self: &Arc<Self>) -> tonic::transport::server::Router {
        tonic::transport::Server::builder()
            .add_service(RouterdServer::new(Api(self.clone())))
            .add_service(process_service(
                "routerd",
                Arc::new(Shows(self.clone())) as Arc<dyn ShowHandler>,
            ))
    }

    /// Validates, persists and applies a prepared commit, then tells the processes.
    async fn finish_commit(
        &self,
        store: &mut ConfigStore,
        pending: Option<PendingCommit>,
    ) -> pb::CommitReply {
        let Some(pending) = pending else {
            return pb::CommitReply {
                ok: true,
                revision: store.current_revision(),
                errors: vec![],
            };
        };
        if let Some(dir) = &self.revisions {
            if let Err(e) = dir.save(
                &pending.text,
                &pending.info,
                store.revisions(),
                pending.info.number,
            ) {
                return pb::CommitReply {
                    ok: false,
                    revision: store.current_revision(),
                    errors: vec![pb::ConfigError {
                        path: String::new(),
                        reason: format!("cannot save the revision: {e:#}"),
                    }],
                };
            }
        }
        let comment = pending.info.comment.clone();
        let committed = store.apply(pending);
        tracing::info!(revision = committed.revision, %comment, "committed");
        self.publish(&committed.new, committed.revision);
        self.supervisor
            .reconcile(&desired_processes(&committed.new));
        pb::CommitReply {
            ok: true,
            revision: committed.revision,
            errors: vec![],
        }
    }

    /// Sends each watched section that changed to its subscribers.
    fn publish(&self, cfg: &RouterConfig, revision: u64) {
        let sections = self.sections.lock().expect("sections lock");
        for (name, tx) in sections.iter() {
            let new = section_value(cfg, name, revision);
            tx.send_if_modified(|cur| {
                if cur.json == new.json && cur.router_json == new.router_json {
                    false
                } else {
                    *cur = new;
                    true
                }
            });
        }
    }

    fn process_infos(&self) -> Vec<pb::ProcessInfo> {
        let mut out = vec![pb::ProcessInfo {
            name: "routerd".into(),
            pid: std::process::id(),
            state: "running".into(),
            restarts: 0,
            uptime_secs: self.started.elapsed().as_secs(),
            last_exit: String::new(),
            socket: self.run_dir.join("routerd.sock").display().to_string(),
        }];
        out.extend(self.supervisor.status().into_iter().map(|s: ProcStatus| {
            pb::ProcessInfo {
                socket: self
                    .run_dir
                    .join(format!("{}.sock", s.name))
                    .display()
                    .to_string(),
                pid: s.pid.unwrap_or(0),
                state: s.state.as_str().into(),
                restarts: s.restarts,
                uptime_secs: s.started.map_or(0, |t| t.elapsed().as_secs()),
                last_exit: s.last_exit,
                name: s.name,
            }
        }));
        out
    }
}

struct Api(Arc<Routerd>);

type SectionStream = Pin<Box<dyn Stream<Item = Result<pb::ConfigSection, Status>> + Send>>;

fn edit_reply(result: Result<(), ConfigError>) -> Response<pb::EditReply> {
    Response::new(match result {
        Ok(()) => pb::EditReply {
            ok: true,
            errors: vec![],
        },
        Err(e) => pb::EditReply {
            ok: false,
            errors: pb_errors(vec![e]),
        },
    })
}

#[tonic::async_trait]
impl RouterdRpc for Api {
    async fn get_config(
        &self,
        req: Request<pb::GetConfigRequest>,
    ) -> Result<Response<pb::ConfigText>, Status> {
        let req = req.into_inner();
        let store = self.0.store.lock().await;
        let table = match req.which() {
            pb::ConfigWhich::Running => store.running(),
            pb::ConfigWhich::Candidate => store.candidate(),
        };
        let format = if req.format.is_empty() {
            "toml"
        } else {
            req.format.as_str()
        };
        let text = render(table, &req.path, format).map_err(|e| {
            if e.reason == "no such node" {
                Status::not_found(e.to_string())
            } else {
                Status::invalid_argument(e.to_string())
            }
        })?;
        Ok(Response::new(pb::ConfigText {
            text,
            format: format.to_string(),
        }))
    }

    async fn set(&self, req: Request<pb::SetRequest>) -> Result<Response<pb::EditReply>, Status> {
        let req = req.into_inner();
        Ok(edit_reply(
            self.0.store.lock().await.set(&req.path, &req.value),
        ))
    }

    async fn delete(
        &self,
        req: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::EditReply>, Status> {
        Ok(edit_reply(
            self.0.store.lock().await.delete(&req.into_inner().path),
        ))
    }

    async fn load_candidate(
        &self,
        req: Request<pb::ConfigText>,
    ) -> Result<Response<pb::EditReply>, Status> {
        let req = req.into_inner();
        Ok(edit_reply(
            self.0
                .store
                .lock()
                .await
                .load_candidate(&req.text, &req.format),
        ))
    }

    async fn discard(
        &self,
        _: Request<pb::DiscardRequest>,
    ) -> Result<Response<pb::EditReply>, Status> {
        self.0.store.lock().await.discard();
        Ok(edit_reply(Ok(())))
    }

    async fn validate(
        &self,
        _: Request<pb::ValidateRequest>,
    ) -> Result<Response<pb::ValidateReply>, Status> {
        let errors = match self.0.store.lock().await.validate() {
            Ok(_) => vec![],
            Err(e) => pb_errors(e),
        };
        Ok(Response::new(pb::ValidateReply {
            ok: errors.is_empty(),
            errors,
        }))
    }

    async fn compare(
        &self,
        _: Request<pb::CompareRequest>,
    ) -> Result<Response<pb::CompareReply>, Status> {
        Ok(Response::new(pb::CompareReply {
            diff: self.0.store.lock().await.compare(),
        }))
    }

    async fn commit(
        &self,
        req: Request<pb::CommitRequest>,
    ) -> Result<Response<pb::CommitReply>, Status> {
        let comment = req.into_inner().comment;
        let mut store = self.0.store.lock().await;
        let reply = match store.prepare_commit(&comment, unix_now()) {
            Ok(pending) => self.0.finish_commit(&mut store, pending).await,
            Err(errs) => pb::CommitReply {
                ok: false,
                revision: store.current_revision(),
                errors: pb_errors(errs),
            },
        };
        Ok(Response::new(reply))
    }

    async fn rollback(
        &self,
        req: Request<pb::RollbackRequest>,
    ) -> Result<Response<pb::CommitReply>, Status> {
        let n = req.into_inner().revision;
        let mut store = self.0.store.lock().await;
        let reply = match store.prepare_rollback(n, unix_now()) {
            Ok(pending) => {
                // Rolling back to what is running still drops uncommitted edits.
                if pending.is_none() {
                    store.discard();
                }
                self.0.finish_commit(&mut store, pending).await
            }
            Err(errs) => pb::CommitReply {
                ok: false,
                revision: store.current_revision(),
                errors: pb_errors(errs),
            },
        };
        Ok(Response::new(reply))
    }

    async fn list_revisions(
        &self,
        _: Request<pb::ListRevisionsRequest>,
    ) -> Result<Response<pb::Revisions>, Status> {
        let store = self.0.store.lock().await;
        Ok(Response::new(pb::Revisions {
            revisions: store
                .revisions()
                .iter()
                .map(|r| pb::Revision {
                    number: r.number,
                    unix_time: r.unix_time,
                    comment: r.comment.clone(),
                })
                .collect(),
            running: store.current_revision(),
        }))
    }

    async fn schema(
        &self,
        _: Request<pb::SchemaRequest>,
    ) -> Result<Response<pb::SchemaReply>, Status> {
        Ok(Response::new(pb::SchemaReply {
            json_schema: self.0.store.lock().await.json_schema().to_string(),
        }))
    }

    async fn process_status(
        &self,
        _: Request<pb::ProcessStatusRequest>,
    ) -> Result<Response<pb::ProcessStatusReply>, Status> {
        Ok(Response::new(pb::ProcessStatusReply {
            router: self.0.name.clone(),
            processes: self.0.process_infos(),
        }))
    }

    async fn restart_process(
        &self,
        req: Request<pb::RestartProcessRequest>,
    ) -> Result<Response<pb::RestartProcessReply>, Status> {
        let name = req.into_inner().name;
        let result = if name == "routerd" {
            Err("routerd cannot restart itself".to_string())
        } else {
            self.0.supervisor.restart(&name).await
        };
        Ok(Response::new(match result {
            Ok(()) => pb::RestartProcessReply {
                ok: true,
                error: String::new(),
            },
            Err(error) => pb::RestartProcessReply { ok: false, error },
        }))
    }

    type WatchConfigStream = SectionStream;

    async fn watch_config(
        &self,
        req: Request<pb::WatchConfigRequest>,
    ) -> Result<Response<Self::WatchConfigStream>, Status> {
        let section = req.into_inner().section;
        // The store lock orders this subscription against commits.
        let store = self.0.store.lock().await;
        if !CORE_PROCESSES.contains(&section.as_str()) && !store.registry().knows(&section) {
            return Err(Status::invalid_argument(format!(
                "unknown section `{section}`, expected one of {:?}",
                CORE_PROCESSES
                    .iter()
                    .copied()
                    .chain(store.registry().names())
                    .collect::<Vec<_>>()
            )));
        }
        let rx = {
            let mut sections = self.0.sections.lock().expect("sections lock");
            sections
                .entry(section.clone())
                .or_insert_with(|| {
                    watch::channel(section_value(
                        store.running_config(),
                        &section,
                        store.current_revision(),
                    ))
                    .0
                })
                .subscribe()
        };
        drop(store);
        // The current value first, then each change (intermediate values may be skipped:
        // a subscriber only needs the latest section).
        let stream = tokio_stream::StreamExt::map(
            tokio_stream::wrappers::WatchStream::new(rx),
            |v: SectionValue| {
                Ok(pb::ConfigSection {
                    revision: v.revision,
                    json: v.json,
                    router_json: v.router_json,
                })
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }
}

/// `show processes`.
struct Shows(Arc<Routerd>);

/// "3d4h", "2h5m", "1m30s", "42s".
pub fn format_uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d{h}h")
    } else if h > 0 {
        format!("{h}h{m}m")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// The `show processes` table.
pub fn processes_table(procs: &[pb::ProcessInfo]) -> String {
    let mut out = format!(
        "{:<10} {:>8} {:<8} {:>8} {:>8}  {}\n",
        "PROCESS", "PID", "STATE", "RESTARTS", "UPTIME", "LAST EXIT"
    );
    for p in procs {
        let pid = if p.pid == 0 {
            "-".to_string()
        } else {
            p.pid.to_string()
        };
        let up = if p.state == "running" {
            format_uptime(p.uptime_secs)
        } else {
            "-".into()
        };
        out.push_str(&format!(
            "{:<10} {:>8} {:<8} {:>8} {:>8}  {}\n",
            p.name, pid, p.state, p.restarts, up, p.last_exit
        ));
    }
    out
}

#[tonic::async_trait]
impl ShowHandler for Shows {
    fn commands(&self) -> Vec<(Vec<&'static str>, &'static str)> {
        vec![(
            vec!["processes"],
            "processes of this router: state, pid, restarts",
        )]
    }

    async fn show(&self, words: &[String]) -> Result<ShowOutput, String> {
        match words
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["processes"] => {
                let procs = self.0.process_infos();
                let json = serde_json::Value::Array(
                    procs
                        .iter()
                        .map(|p| {
                            serde_json::json!({
                                "name": p.name, "pid": p.pid, "state": p.state,
                                "restarts": p.restarts, "uptime-secs": p.uptime_secs,
                                "last-exit": p.last_exit, "socket": p.socket,
                            })
                        })
                        .collect(),
                );
                Ok(ShowOutput {
                    text: processes_table(&procs),
                    json,
                })
            }
            _ => Err(format!("unknown command: show {}", words.join(" "))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptimes_read_naturally() {
        assert_eq!(format_uptime(42), "42s");
        assert_eq!(format_uptime(90), "1m30s");
        assert_eq!(format_uptime(7500), "2h5m");
        assert_eq!(format_uptime(86_400 * 3 + 3600 * 4), "3d4h");
    }

    #[test]
    fn desired_processes_follow_the_config() {
        let cfg = oxr_config::parse_and_validate("").unwrap();
        assert_eq!(desired_processes(&cfg), ["fea", "rib"]);
        let cfg = oxr_config::parse_and_validate(
            "[protocols.static.route.\"10.0.0.0/8\"]\naction = \"blackhole\"\n",
        )
        .unwrap();
        assert_eq!(desired_processes(&cfg), ["fea", "rib", "static"]);
        let cfg = oxr_config::parse_and_validate_with(
            "[protocols.ospf.areas.\"0\"]\n\
             [protocols.static.route.\"10.0.0.0/8\"]\naction = \"blackhole\"\n",
            &crate::registry(),
        )
        .unwrap();
        assert_eq!(desired_processes(&cfg), ["fea", "rib", "static", "ospf"]);
        let cfg = oxr_config::parse_and_validate("[fea]\ndataplane = \"fastpath\"\n").unwrap();
        assert_eq!(desired_processes(&cfg), ["fastpath", "fea", "rib"]);
    }
}
