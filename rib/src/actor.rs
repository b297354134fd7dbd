//! The task that owns the RIB state, and the handle everything else uses to reach it.
//!
//! ```text
//!  Publish streams ──parse──┐            ┌──> FIB feed task ──ProgramFib──> oxr-fea
//!  WatchNexthops ───────────┤   mpsc     │      (wire conversion, acks back as Cmd)
//!  WatchRedistribution ─────┼──> Cmd ──> RIB task (RibState) ──> watch / redistribution sinks
//!  Lookup/GetRoutes/Summary ┤            │
//!  interface watch (FEA) ───┤            └──> timers (stale hold, startup hold) ──> Cmd
//!  config watch ────────────┘
//! ```
//!
//! gRPC handlers only forward; batches travel whole (one command per batch of routes), so
//! the task's cost per route is the table work itself.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use oxr_proto::fea::{FibAck, InterfaceUpdate};
use oxr_proto::rib::{Hello, PublishResponse};
use tokio::sync::{mpsc, oneshot, watch};

use crate::fib_feed::FibOut;
use crate::publish::ParsedBatch;
use crate::redistribution::RedistSink;
use crate::state::{RibOptions, RibState, Timer, WatchSink};
use crate::table::{ClientId, Key};

/// A message to the RIB task.
pub enum Cmd {
    /// A Publish stream's Hello.
    Hello {
        /// Stream id.
        stream: u64,
        /// The Hello.
        hello: Hello,
        /// Where acks go.
        resp: watch::Sender<PublishResponse>,
        /// The client id, or why the Hello was refused.
        reply: oneshot::Sender<Result<ClientId, String>>,
    },
    /// A batch of routes.
    Batch {
        /// Client.
        client: ClientId,
        /// Stream.
        stream: u64,
        /// Parsed routes.
        batch: ParsedBatch,
    },
    /// EndOfRib on a Publish stream.
    EndOfRib {
        /// Client.
        client: ClientId,
        /// Stream.
        stream: u64,
    },
    /// A Publish stream ended or broke.
    StreamClosed {
        /// Client.
        client: ClientId,
        /// Stream.
        stream: u64,
    },
    /// A stale hold timer fired.
    HoldExpired {
        /// Client.
        client: ClientId,
        /// Its generation when armed.
        gen: u64,
    },
    /// The startup hold is over.
    StartupHoldExpired,
    /// Interface state from the FEA.
    Interfaces(InterfaceUpdate),
    /// A ProgramFib stream came up.
    FeaUp {
        /// Session number.
        session: u64,
        /// Where batches go.
        tx: mpsc::Sender<FibOut>,
    },
    /// A ProgramFib stream ended.
    FeaDown {
        /// Session number.
        session: u64,
    },
    /// The FEA acknowledged a batch.
    FibAck {
        /// Session number.
        session: u64,
        /// The ack.
        ack: FibAck,
    },
    /// A WatchNexthops stream opened.
    WatchOpen {
        /// Stream id.
        id: u64,
        /// Where updates go.
        sink: WatchSink,
    },
    /// Addresses added to or removed from a WatchNexthops stream.
    WatchChange {
        /// Stream id.
        id: u64,
        /// Added.
        add: Vec<IpAddr>,
        /// Removed.
        remove: Vec<IpAddr>,
    },
    /// A WatchNexthops stream ended.
    WatchClose {
        /// Stream id.
        id: u64,
    },
    /// A WatchRedistribution stream opened.
    RedistOpen {
        /// Stream id.
        id: u64,
        /// Protocols asked for.
        protocols: Vec<String>,
        /// Only routes inside these, if any.
        within: Vec<Key>,
        /// Where updates go.
        sink: RedistSink,
    },
    /// A WatchRedistribution stream ended.
    RedistClose {
        /// Stream id.
        id: u64,
    },
    /// New settings.
    Config(RibOptions),
    /// Runs a function on the state (queries).
    Call(Box<dyn FnOnce(&mut RibState) + Send>),
}

/// The RIB task is gone.
#[derive(Debug, thiserror::Error)]
#[error("the RIB task has stopped")]
pub struct Stopped;

/// A cheap, cloneable way to reach the RIB task.
#[derive(Clone)]
pub struct RibHandle {
    tx: mpsc::Sender<Cmd>,
    /// FEA session events (up, down, acks): a separate channel the task serves first, so
    /// acks never wait behind a queue of published batches and the FIB window stays open.
    fib_tx: mpsc::UnboundedSender<Cmd>,
    ids: Arc<AtomicU64>,
}

impl RibHandle {
    /// Sends a command, waiting for room (backpressure on publishers).
    pub async fn send(&self, cmd: Cmd) -> Result<(), Stopped> {
        self.tx.send(cmd).await.map_err(|_| Stopped)
    }

    /// Sends an FEA session event (FeaUp, FeaDown, FibAck) on the priority channel.
    pub fn send_fib(&self, cmd: Cmd) -> Result<(), Stopped> {
        self.fib_tx.send(cmd).map_err(|_| Stopped)
    }

    /// A fresh id for a stream.
    pub fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether the RIB task has stopped.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Runs `f` on the RIB state and returns its result.
    pub async fn call<R, F>(&self, f: F) -> Result<R, Stopped>
    where
        R: Send + 'static,
        F: FnOnce(&mut RibState) -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.send(Cmd::Call(Box::new(move |s| {
            let _ = tx.send(f(s));
        })))
        .await?;
        rx.await.map_err(|_| Stopped)
    }

    /// Applies new settings.
    pub async fn set_config(&self, opts: RibOptions) -> Result<(), Stopped> {
        self.send(Cmd::Config(opts)).await
    }
}

/// Commands queued for the RIB task. Publish batches wait here decoded (up to 2000 routes,
/// ~150 bytes each as single routes, 32 in packed groups): 8 keep the task busy (each
/// stream task parses its next batch meanwhile) while bounding that memory.
const CMD_QUEUE: usize = 8;

/// Starts the RIB task (and its startup hold timer) on the current tokio runtime.
pub fn spawn(opts: RibOptions) -> RibHandle {
    let (tx, rx) = mpsc::channel(CMD_QUEUE);
    let (fib_tx, fib_rx) = mpsc::unbounded_channel();
    let weak = tx.downgrade();
    let startup = opts.startup_hold;
    let w = weak.clone();
    tokio::spawn(async move {
        tokio::time::sleep(startup).await;
        if let Some(tx) = w.upgrade() {
            let _ = tx.send(Cmd::StartupHoldExpired).await;
        }
    });
    tokio::spawn(run(RibState::new(opts), rx, fib_rx, weak));
    RibHandle {
        tx,
        fib_tx,
        ids: Arc::new(AtomicU64::new(1)),
    }
}

fn handle(state: &mut RibState, cmd: Cmd) {
    match cmd {
        Cmd::Hello {
            stream,
            hello,
            resp,
            reply,
        } => {
            let _ = reply.send(state.hello(stream, &hello, resp));
        }
        Cmd::Batch {
            client,
            stream,
            batch,
        } => state.batch(client, stream, batch),
        Cmd::EndOfRib { client, stream } => state.end_of_rib(client, stream),
        Cmd::StreamClosed { client, stream } => state.stream_closed(client, stream),
        Cmd::HoldExpired { client, gen } => state.hold_expired(client, gen),
        Cmd::StartupHoldExpired => state.startup_hold_expired(),
        Cmd::Interfaces(u) => state.interfaces(u),
        Cmd::FeaUp { session, tx } => state.fea_up(session, tx),
        Cmd::FeaDown { session } => state.fib.session_down(session),
        Cmd::FibAck { session, ack } => state.fib.ack(session, ack.failed),
        Cmd::WatchOpen { id, sink } => state.watch_open(id, sink),
        Cmd::WatchChange { id, add, remove } => state.watch_change(id, &add, &remove),
        Cmd::WatchClose { id } => state.watch_close(id),
        Cmd::RedistOpen {
            id,
            protocols,
            within,
            sink,
        } => state.redist_open(id, protocols, within, sink),
        Cmd::RedistClose { id } => state.redist_close(id),
        Cmd::Config(opts) => state.set_config(opts),
        Cmd::Call(f) => f(state),
    }
}

async fn run(
    mut state: RibState,
    mut rx: mpsc::Receiver<Cmd>,
    mut fib_rx: mpsc::UnboundedReceiver<Cmd>,
    weak: mpsc::WeakSender<Cmd>,
) {
    loop {
        let cmd = tokio::select! {
            biased;
            Some(ev) = fib_rx.recv() => ev,
            cmd = rx.recv() => match cmd {
                Some(cmd) => cmd,
                None => break,
            },
        };
        state.tick();
        handle(&mut state, cmd);
        // Acks first, then feed the FEA after every command, so the FIB window never idles
        // while publishers keep the command queue full.
        while let Ok(ev) = fib_rx.try_recv() {
            handle(&mut state, ev);
        }
        state.pump_fib();
        state.flush_watchers();
        for t in state.timers.drain(..) {
            let Timer::StaleHold { client, gen, after } = t;
            let weak = weak.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                if let Some(tx) = weak.upgrade() {
                    let _ = tx.send(Cmd::HoldExpired { client, gen }).await;
                }
            });
        }
    }
}
