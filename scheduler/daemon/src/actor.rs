//! The state actor: one thread owns the in-memory state, the scheduling core
//! and the database connection.
//!
//! Its loop takes every request waiting in its channel (up to
//! [`MAX_BATCH`]), applies them in order, runs one scheduling pass, writes all
//! resulting changes in one SQLite transaction and only then replies (group
//! commit). If the commit fails, every request of the batch gets a
//! `ServerException` and the in-memory state is reloaded from the database,
//! so nothing unacknowledged survives and nothing acknowledged is lost.

use crate::api::{ApiError, Request};
use crate::config::Config;
use crate::limits::MAX_BATCH;
use crate::mailbox::Mailboxes;
use crate::metrics::Metrics;
use crate::state::{Clock, StateMachine, CLOCK_KEY};
use crate::store::Store;
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::oneshot;

/// The longest the actor sleeps without looking at timers.
const IDLE_WAKE: Duration = Duration::from_millis(500);

type Reply = oneshot::Sender<Result<Vec<u8>, ApiError>>;

#[allow(clippy::large_enum_variant)] // one message at a time; boxing buys nothing
enum Msg {
    Call(Request, Reply),
    /// A metrics scrape: the OpenMetrics text, after the batch it came in.
    Scrape(oneshot::Sender<String>),
    Shutdown,
}

/// A cloneable handle to send requests to the actor.
#[derive(Clone)]
pub struct ActorHandle {
    tx: mpsc::Sender<Msg>,
}

impl ActorHandle {
    /// Send a request and wait for its committed reply.
    pub async fn call(&self, req: Request) -> Result<Vec<u8>, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Call(req, reply))
            .map_err(|_| ApiError::Server("the scheduler is shutting down".into()))?;
        rx.await
            .map_err(|_| ApiError::Server("the scheduler is shutting down".into()))?
    }

    /// The metrics as OpenMetrics text: the histograms and the state as
    /// of the next batch.
    pub async fn scrape(&self) -> Result<String, ApiError> {
        let (reply, rx) = oneshot::channel();
        let gone = || ApiError::Server("the scheduler is shutting down".into());
        self.tx.send(Msg::Scrape(reply)).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())
    }

    /// Send a request whose reply nobody waits for (the Slurm thread's
    /// reports); it is applied, and committed, like any other.
    pub fn tell(&self, req: Request) {
        let (reply, _) = oneshot::channel();
        let _ = self.tx.send(Msg::Call(req, reply));
    }

    /// Ask the actor to stop after the requests already queued.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Msg::Shutdown);
    }
}

/// Load state and start the actor thread.
pub fn spawn(
    config: Config,
    mail: Mailboxes,
    metrics: Metrics,
) -> Result<(ActorHandle, std::thread::JoinHandle<()>), crate::Error> {
    let store = Store::open_with(&config.state_dir, config.fresh_state)?;
    let last = store
        .meta(CLOCK_KEY)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let clock = Clock::start(last);
    let machine = StateMachine::load(config.clone(), &store, mail.clone(), clock.now())?;
    let (tx, rx) = mpsc::channel();
    let join = std::thread::Builder::new()
        .name("shoal-state".into())
        .spawn(move || run(config, clock, store, machine, mail, metrics, rx))
        .map_err(|e| crate::Error::Io("cannot start the state thread".into(), e))?;
    Ok((ActorHandle { tx }, join))
}

fn run(
    config: Config,
    clock: Clock,
    mut store: Store,
    mut machine: StateMachine,
    mail: Mailboxes,
    metrics: Metrics,
    rx: mpsc::Receiver<Msg>,
) {
    // Persist whatever loading changed (default queue and compute
    // environment on a fresh state directory, reasons recomputed).
    let mut initial = machine.take_batch();
    initial.put_meta(CLOCK_KEY, clock.now().to_string());
    match store.commit(&initial) {
        Ok(()) => machine.deliver_orders(),
        Err(e) => tracing::error!("cannot write the initial state: {e}"),
    }
    loop {
        let timeout = machine
            .next_wake(clock.now())
            .map(|ms| Duration::from_millis(ms).min(IDLE_WAKE))
            .unwrap_or(IDLE_WAKE);
        let first = match rx.recv_timeout(timeout) {
            Ok(m) => Some(m),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let mut calls: Vec<(Request, Reply)> = Vec::new();
        let mut scrapes = Vec::new();
        let mut stop = false;
        let mut push = |m: Msg, calls: &mut Vec<(Request, Reply)>| match m {
            Msg::Call(r, reply) => calls.push((r, reply)),
            Msg::Scrape(reply) => scrapes.push(reply),
            Msg::Shutdown => stop = true,
        };
        if let Some(m) = first {
            push(m, &mut calls);
            while calls.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => push(m, &mut calls),
                    Err(_) => break,
                }
            }
        }
        let now = clock.now();
        let mut results = Vec::with_capacity(calls.len());
        for (req, _) in calls.iter_mut() {
            let req = std::mem::replace(req, Request::Noop);
            results.push(machine.handle(now, req));
        }
        machine.tick(now);
        if let Some(d) = machine.take_pass_time() {
            metrics.observe_pass(d);
        }
        let mut batch = machine.take_batch();
        if !batch.is_empty() {
            batch.put_meta(CLOCK_KEY, now.to_string());
        }
        let started = std::time::Instant::now();
        let committed = store.commit(&batch);
        if !batch.is_empty() {
            metrics.observe_commit(calls.len(), batch.len(), started.elapsed());
        }
        match committed {
            Ok(()) => {
                log_marks(machine.take_marks());
                machine.deliver_orders();
                for ((_, reply), result) in calls.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!("commit failed, reloading state: {e}");
                let msg = format!(
                    "the scheduler could not store the change ({}); nothing was acknowledged, retry later",
                    error_chain(&e)
                );
                for (_, reply) in calls {
                    let _ = reply.send(Err(ApiError::Server(msg.clone())));
                }
                match StateMachine::load(config.clone(), &store, mail.clone(), clock.now()) {
                    Ok(m) => machine = m,
                    Err(e) => {
                        tracing::error!("cannot reload state after a failed commit: {e}");
                        return;
                    }
                }
            }
        }
        if !scrapes.is_empty() {
            let text = metrics.encode(&machine.gauges(clock.now()));
            for reply in scrapes {
                let _ = reply.send(text.clone());
            }
        }
        if stop {
            return;
        }
    }
}

/// Log the path steps of a committed batch: each when it was decided, and
/// when its commit ended.
fn log_marks(marks: Vec<(String, &'static str, u64)>) {
    if marks.is_empty() {
        return;
    }
    let committed = shoal_model::path::now_us();
    for (job, step, t) in marks {
        shoal_model::path::mark_at(&job, step, t);
        shoal_model::path::mark_at(&job, &format!("{step}.committed"), committed);
    }
}

/// An error with its causes, `outer: inner: innermost`, so that a client
/// reads the cause (e.g. "database or disk is full").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cause = c.source();
    }
    out
}
