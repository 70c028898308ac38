//! The worker's side of the worker protocol, with no I/O of its own: it
//! registers, long-polls for orders and carries them out once each, sends
//! the tasks' reports, and stops gracefully. It talks to any
//! [`Scheduler`] and hands orders to any [`Orders`] (the worker's
//! [`Tasks`](crate::task::Tasks)), so that it is tested without root and
//! without a scheduler process (`worker/tests/poll_loop.rs`).

use crate::connection::Scheduler;
use crate::Error;
use shoal_model::wire::{
    Order, OrderSeq, PollRequest, RegisterWorkerRequest, StartTask, TaskRef, TaskReport, TaskShm,
    WorkerPhase,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the poll loop needs of the tasks on this node.
pub trait Orders: Send + Sync {
    /// Start a task (a Start order).
    fn start(&self, order: StartTask);
    /// Kill a task (a Kill order).
    fn kill(&self, task: &TaskRef, reason: &str);
    /// The tasks this node knows (running, or ended and not yet reported).
    fn known(&self) -> Vec<TaskRef>;
    /// These reports reached the scheduler.
    fn delivered(&self, reports: &[TaskReport]);
    /// The worker is stopping: no more registering or polling.
    fn is_stopping(&self) -> bool;
    /// The highest /dev/shm use so far of each running task.
    fn shm_peaks(&self) -> Vec<TaskShm> {
        Vec::new()
    }
}

/// The longest wait between two tries to reach the scheduler.
pub const RETRY_CAP: Duration = Duration::from_millis(250);

/// The timing the scheduler gives at registration; until then the defaults.
#[derive(Debug)]
pub struct Timing {
    /// How long a poll waits for orders (the heartbeat), ms.
    pub heartbeat_ms: AtomicU64,
    /// After how long without a poll the scheduler takes a node for lost, ms.
    pub lost_after_ms: AtomicU64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            heartbeat_ms: AtomicU64::new(1000),
            lost_after_ms: AtomicU64::new(10_000),
        }
    }
}

impl Timing {
    fn heartbeat(&self) -> u64 {
        self.heartbeat_ms.load(SeqCst)
    }

    fn lost_after(&self) -> u64 {
        self.lost_after_ms.load(SeqCst)
    }
}

/// The position of the last order this worker took, so that an order sent
/// again (its first reply lost) is taken once.
#[derive(Default)]
pub struct Taken(Mutex<OrderSeq>);

impl Taken {
    /// What to acknowledge in the next poll: the last order taken.
    pub fn ack(&self) -> Option<OrderSeq> {
        let t = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        (t.epoch != 0).then_some(t)
    }

    /// Carry out the orders of a reply not taken before.
    pub fn obey(&self, tasks: &dyn Orders, resp: shoal_model::wire::PollResponse) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if resp.first.epoch != t.epoch {
            // A new scheduler process: a new stream of orders.
            *t = OrderSeq {
                epoch: resp.first.epoch,
                seq: 0,
            };
        }
        for (i, o) in resp.orders.into_iter().enumerate() {
            let seq = resp.first.seq + i as u64;
            if seq <= t.seq && resp.first.epoch != 0 {
                continue;
            }
            match o {
                Order::Start(s) => {
                    shoal_model::path::mark(&s.task.job_id, "order_received");
                    tracing::info!("starting {} ({})", s.task, s.task.dir_name());
                    tasks.start(*s);
                }
                Order::Kill { task, reason } => tasks.kill(&task, &reason),
            }
            t.seq = seq;
        }
    }
}

/// The wait before the next try after `failures` failed tries in a row: at
/// once, then doubling from 25 ms up to [`RETRY_CAP`].
pub fn retry_wait(failures: u32) -> Duration {
    match failures {
        0 | 1 => Duration::ZERO,
        n => (Duration::from_millis(25) * 2u32.saturating_pow(n - 2)).min(RETRY_CAP),
    }
}

/// How long a poll that waits `wait_ms` for orders may take in all: the
/// wait, plus a second for the answer (less with a short lost-node
/// timeout), so that a dead connection is given up well before the node
/// would be declared lost.
pub fn poll_timeout(wait_ms: u64, lost_after_ms: u64) -> Duration {
    let slack = (lost_after_ms / 4).clamp(250, 1000);
    Duration::from_millis(wait_ms + slack)
}

/// Register, with retries: quick at first (a link back, a scheduler
/// restarted), then once a second. Returns once registered, or when the
/// worker is stopping.
fn register(
    sched: &dyn Scheduler,
    tasks: &dyn Orders,
    node: &RegisterWorkerRequest,
    timing: &Timing,
) -> bool {
    let mut failures = 0u32;
    while !tasks.is_stopping() {
        let req = RegisterWorkerRequest {
            running: tasks.known(),
            ..node.clone()
        };
        match sched.register(&req, poll_timeout(0, timing.lost_after())) {
            Ok(r) => {
                tracing::info!("registered with {}", sched.endpoint());
                timing.heartbeat_ms.store(r.heartbeat_ms, SeqCst);
                timing.lost_after_ms.store(r.lost_after_ms, SeqCst);
                return true;
            }
            Err(e) => {
                failures += 1;
                let floor = Duration::from_millis(if failures > 20 { 1000 } else { 0 });
                if failures == 1 || failures.is_multiple_of(20) {
                    tracing::warn!("cannot register, retrying: {e}");
                }
                std::thread::sleep(retry_wait(failures).max(floor));
            }
        }
    }
    false
}

/// Long-poll for orders until the scheduler refuses a poll (register
/// again) or the worker stops. A poll that does not reach the scheduler (a
/// cut link, a restart) is tried again at once, then with a short capped
/// backoff; the tasks keep running under their lease meanwhile.
fn poll_until_refused(
    sched: &dyn Scheduler,
    tasks: &dyn Orders,
    name: &str,
    taken: &Taken,
    timing: &Timing,
) {
    let mut failures = 0u32;
    while !tasks.is_stopping() {
        let wait_ms = timing.heartbeat();
        let req = PollRequest {
            name: name.to_string(),
            reports: Vec::new(),
            wait_ms,
            phase: Default::default(),
            ack: taken.ack(),
            tasks: Some(tasks.known()),
            shm: tasks.shm_peaks(),
        };
        match sched.poll(&req, poll_timeout(wait_ms, timing.lost_after())) {
            Ok(resp) => {
                if failures > 0 {
                    tracing::info!("reached the scheduler again");
                }
                failures = 0;
                taken.obey(tasks, resp);
            }
            Err(_) if tasks.is_stopping() => {}
            Err(e @ Error::Refused { .. }) => {
                tracing::warn!("the scheduler refused the poll, registering again: {e}");
                return;
            }
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!("poll failed, retrying: {e}");
                }
                std::thread::sleep(retry_wait(failures));
            }
        }
    }
}

/// The worker's main loop: register, poll for orders and carry them out,
/// register again when the scheduler asks; returns when the worker stops.
pub fn run(
    sched: &dyn Scheduler,
    tasks: &dyn Orders,
    node: &RegisterWorkerRequest,
    taken: &Taken,
    timing: &Timing,
) {
    while register(sched, tasks, node, timing) {
        poll_until_refused(sched, tasks, &node.name, taken, timing);
    }
}

/// Send the tasks' reports as they come (`rx`), at once and on their own
/// request, so that a task's end never waits for the long poll; each batch
/// is retried until the scheduler has it. Returns when `rx` closes.
pub fn report(
    sched: &dyn Scheduler,
    tasks: &dyn Orders,
    name: &str,
    rx: mpsc::Receiver<TaskReport>,
    taken: &Taken,
    timing: &Timing,
) {
    while let Ok(first) = rx.recv() {
        let mut reports = vec![first];
        reports.extend(rx.try_iter());
        let mut failures = 0;
        loop {
            let req = PollRequest {
                name: name.to_string(),
                reports: reports.clone(),
                wait_ms: 0,
                phase: Default::default(),
                ack: taken.ack(),
                tasks: None,
                shm: Vec::new(),
            };
            match sched.poll(&req, poll_timeout(0, timing.lost_after())) {
                Ok(resp) => {
                    if shoal_model::path::enabled() {
                        for r in &reports {
                            let step = match r.event {
                                shoal_model::wire::TaskEvent::Started => "started_report_acked",
                                _ => "exit_report_acked",
                            };
                            shoal_model::path::mark(&r.task.job_id, step);
                        }
                    }
                    tasks.delivered(&reports);
                    taken.obey(tasks, resp);
                    break;
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!("cannot report, retrying: {e}");
                    }
                    // Refused: the node must register again first (the
                    // main loop does).
                    let wait = match e {
                        Error::Refused { .. } => RETRY_CAP,
                        _ => retry_wait(failures),
                    };
                    std::thread::sleep(wait);
                }
            }
        }
    }
}

/// How long telling the scheduler the worker's phase may take: a worker
/// cut off from its scheduler still stops its tasks at once.
const TELL_WITHIN: Duration = Duration::from_secs(2);

fn phase_request(name: &str, phase: WorkerPhase) -> PollRequest {
    PollRequest {
        name: name.to_string(),
        reports: Vec::new(),
        wait_ms: 0,
        phase,
        ack: None,
        tasks: None,
        shm: Vec::new(),
    }
}

/// Tell the scheduler this worker is in `phase`; whether it heard.
pub fn tell(sched: &dyn Scheduler, name: &str, phase: WorkerPhase) -> bool {
    if let Err(e) = sched.poll(&phase_request(name, phase), TELL_WITHIN) {
        tracing::warn!("cannot tell the scheduler this worker is {phase:?}: {e}");
        return false;
    }
    true
}

/// A graceful stop: tell the scheduler (nothing new is placed here and the
/// orders not yet taken go back), end every task with `end_tasks`
/// (SIGTERM, a grace, SIGKILL), let their reports go out (`unreported`
/// falls to 0, waited for at most 5 s), and tell the scheduler the node is
/// down. Meanwhile the worker keeps telling the scheduler it is stopping,
/// every `every`, which renews the tasks' lease.
pub fn stop(
    sched: Arc<dyn Scheduler>,
    name: &str,
    every: Duration,
    end_tasks: impl FnOnce(),
    unreported: impl Fn() -> usize,
) {
    tell(sched.as_ref(), name, WorkerPhase::Stopping);
    let done = Arc::new(AtomicBool::new(false));
    let keep = {
        let (done, sched, name) = (done.clone(), sched.clone(), name.to_string());
        std::thread::spawn(move || {
            while !done.load(SeqCst) {
                std::thread::sleep(every);
                let req = phase_request(&name, WorkerPhase::Stopping);
                let _ = sched.poll(&req, TELL_WITHIN);
            }
        })
    };
    end_tasks();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while unreported() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    done.store(true, SeqCst);
    let _ = keep.join();
    tell(sched.as_ref(), name, WorkerPhase::Stopped);
}

impl Orders for Arc<crate::task::Tasks> {
    fn start(&self, order: StartTask) {
        crate::task::Tasks::start(self, order)
    }

    fn kill(&self, task: &TaskRef, reason: &str) {
        crate::task::Tasks::kill(self, task, reason)
    }

    fn known(&self) -> Vec<TaskRef> {
        crate::task::Tasks::known(self)
    }

    fn delivered(&self, reports: &[TaskReport]) {
        crate::task::Tasks::delivered(self, reports)
    }

    fn is_stopping(&self) -> bool {
        crate::task::Tasks::is_stopping(self)
    }

    fn shm_peaks(&self) -> Vec<TaskShm> {
        crate::task::Tasks::shm_peaks(self)
    }
}
