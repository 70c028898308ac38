//! The worker's poll loop and its handling of orders, without root and
//! without a scheduler process: a scripted [`Scheduler`] answers, and a
//! recording [`Orders`] stands for the node's tasks.

use shoal_model::wire::{
    Order, OrderSeq, PollRequest, PollResponse, RegisterWorkerRequest, RegisterWorkerResponse,
    Resources, StartTask, TaskEvent, TaskRef, TaskReport, WorkerPhase,
};
use shoal_worker::connection::Scheduler;
use shoal_worker::poll::{self, Orders, Taken, Timing};
use shoal_worker::Error;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// What the scripted scheduler answers next.
enum Answer {
    Registered,
    Orders(PollResponse),
    Unreachable,
    Refused,
}

/// A scheduler that answers from a script and records what it was sent.
/// When the script runs out it tells the node to stop (through `stop`),
/// so that every loop under test ends.
#[derive(Default)]
struct Scripted {
    script: Mutex<VecDeque<Answer>>,
    registers: Mutex<Vec<RegisterWorkerRequest>>,
    polls: Mutex<Vec<PollRequest>>,
    stop: Arc<AtomicBool>,
}

impl Scripted {
    fn new(script: Vec<Answer>, stop: Arc<AtomicBool>) -> Scripted {
        Scripted {
            script: Mutex::new(script.into()),
            stop,
            ..Default::default()
        }
    }

    fn next(&self) -> Option<Answer> {
        let next = self.script.lock().unwrap().pop_front();
        if next.is_none() {
            self.stop.store(true, SeqCst);
        }
        next
    }

    fn unreachable() -> Error {
        Error::Scheduler {
            endpoint: "scripted".into(),
            message: "cannot reach it".into(),
        }
    }
}

impl Scheduler for Scripted {
    fn endpoint(&self) -> &str {
        "scripted"
    }

    fn register(
        &self,
        req: &RegisterWorkerRequest,
        _within: Duration,
    ) -> Result<RegisterWorkerResponse, Error> {
        self.registers.lock().unwrap().push(req.clone());
        match self.next() {
            Some(Answer::Registered) => Ok(RegisterWorkerResponse {
                heartbeat_ms: 5,
                lost_after_ms: 2000,
                lease_ms: 2000,
                fence_grace_ms: 1000,
            }),
            Some(Answer::Refused) => Err(Error::Refused {
                endpoint: "scripted".into(),
                message: "no".into(),
            }),
            _ => Err(Scripted::unreachable()),
        }
    }

    fn poll(&self, req: &PollRequest, _within: Duration) -> Result<PollResponse, Error> {
        self.polls.lock().unwrap().push(req.clone());
        match self.next() {
            Some(Answer::Orders(r)) => Ok(r),
            Some(Answer::Refused) => Err(Error::Refused {
                endpoint: "scripted".into(),
                message: "register again".into(),
            }),
            Some(Answer::Registered) => Ok(PollResponse::default()),
            Some(Answer::Unreachable) | None => Err(Scripted::unreachable()),
        }
    }
}

/// The node's tasks, as the orders they were given.
#[derive(Default)]
struct Recorded {
    started: Mutex<Vec<TaskRef>>,
    killed: Mutex<Vec<(TaskRef, String)>>,
    delivered: Mutex<Vec<TaskReport>>,
    stop: Arc<AtomicBool>,
}

impl Orders for Recorded {
    fn start(&self, order: StartTask) {
        self.started.lock().unwrap().push(order.task);
    }
    fn kill(&self, task: &TaskRef, reason: &str) {
        self.killed
            .lock()
            .unwrap()
            .push((task.clone(), reason.to_string()));
    }
    fn known(&self) -> Vec<TaskRef> {
        self.started.lock().unwrap().clone()
    }
    fn delivered(&self, reports: &[TaskReport]) {
        self.delivered.lock().unwrap().extend_from_slice(reports);
    }
    fn is_stopping(&self) -> bool {
        self.stop.load(SeqCst)
    }
}

fn task(id: &str) -> TaskRef {
    TaskRef {
        job_id: id.parse().unwrap(),
        attempt: 0,
        node_index: 0,
    }
}

fn start(id: &str) -> Order {
    Order::Start(Box::new(StartTask {
        task: task(id),
        launch: Default::default(),
        hostfile: String::new(),
        alloc: Resources::default(),
        job_token: None,
    }))
}

fn orders(epoch: u64, first: u64, orders: Vec<Order>) -> Answer {
    Answer::Orders(PollResponse {
        orders,
        first: OrderSeq { epoch, seq: first },
    })
}

fn node() -> RegisterWorkerRequest {
    RegisterWorkerRequest {
        name: "w1".into(),
        address: "10.0.0.1".into(),
        port: 7000,
        capacity: Resources::default(),
        labels: Default::default(),
        running: Vec::new(),
        log_key: None,
        tls: false,
        notes: Vec::new(),
        allocation: None,
    }
}

/// Run the main loop over `script` until the script runs out.
fn run(script: Vec<Answer>) -> (Scripted, Recorded, Timing) {
    let stop = Arc::new(AtomicBool::new(false));
    let sched = Scripted::new(script, stop.clone());
    let tasks = Recorded {
        stop,
        ..Default::default()
    };
    let timing = Timing::default();
    poll::run(&sched, &tasks, &node(), &Taken::default(), &timing);
    (sched, tasks, timing)
}

#[test]
fn an_order_sent_again_is_carried_out_once() {
    // The reply to the first poll was lost, so the scheduler sends the same
    // orders again (same epoch and position), then a new one after them.
    let (sched, tasks, _) = run(vec![
        Answer::Registered,
        orders(7, 1, vec![start("a"), start("b")]),
        orders(7, 1, vec![start("a"), start("b")]),
        orders(7, 3, vec![start("c")]),
    ]);
    assert_eq!(
        *tasks.started.lock().unwrap(),
        vec![task("a"), task("b"), task("c")]
    );
    // Each poll acknowledges what was taken before it.
    let acks: Vec<Option<OrderSeq>> = sched.polls.lock().unwrap().iter().map(|p| p.ack).collect();
    let at = |seq| Some(OrderSeq { epoch: 7, seq });
    assert_eq!(acks[..4], [None, at(2), at(2), at(3)], "{acks:?}");
}

#[test]
fn a_new_scheduler_process_starts_a_new_stream_of_orders() {
    // A restarted scheduler numbers its orders from 1 again, in a new epoch:
    // they are new orders, not repeats of the old process's.
    let (_, tasks, _) = run(vec![
        Answer::Registered,
        orders(1, 1, vec![start("a"), start("b")]),
        orders(
            2,
            1,
            vec![Order::Kill {
                task: task("a"),
                reason: "terminated".into(),
            }],
        ),
    ]);
    assert_eq!(tasks.started.lock().unwrap().len(), 2);
    assert_eq!(
        *tasks.killed.lock().unwrap(),
        vec![(task("a"), "terminated".to_string())]
    );
}

#[test]
fn a_refused_poll_registers_again_with_the_tasks_it_runs() {
    let (sched, _, _) = run(vec![
        Answer::Registered,
        orders(1, 1, vec![start("a")]),
        Answer::Refused,
        Answer::Registered,
        orders(1, 2, vec![]),
    ]);
    let regs = sched.registers.lock().unwrap();
    assert_eq!(regs.len(), 2, "registered, refused, registered again");
    assert!(regs[0].running.is_empty());
    assert_eq!(
        regs[1].running,
        vec![task("a")],
        "the node tells what it runs"
    );
}

#[test]
fn an_unreachable_scheduler_is_tried_again_and_polls_carry_the_timing_it_gave() {
    let (sched, tasks, timing) = run(vec![
        Answer::Unreachable,
        Answer::Unreachable,
        Answer::Registered,
        Answer::Unreachable,
        orders(1, 1, vec![start("a")]),
    ]);
    assert_eq!(sched.registers.lock().unwrap().len(), 3);
    assert_eq!(tasks.started.lock().unwrap().len(), 1);
    assert_eq!(timing.heartbeat_ms.load(SeqCst), 5);
    assert_eq!(timing.lost_after_ms.load(SeqCst), 2000);
    assert!(sched.polls.lock().unwrap().iter().all(|p| p.wait_ms == 5));
}

#[test]
fn reports_are_sent_until_the_scheduler_has_them_and_their_replies_obeyed() {
    let stop = Arc::new(AtomicBool::new(false));
    let sched = Scripted::new(
        vec![
            Answer::Unreachable,
            Answer::Refused,
            orders(1, 1, vec![start("x")]),
        ],
        stop.clone(),
    );
    let tasks = Recorded {
        stop,
        ..Default::default()
    };
    let (tx, rx) = mpsc::channel();
    let report = TaskReport {
        task: task("a"),
        event: TaskEvent::Exited {
            exit_code: Some(0),
            reason: "Essential container in task exited".into(),
            shm_peak_mib: 0,
        },
    };
    tx.send(report.clone()).unwrap();
    drop(tx);
    poll::report(
        &sched,
        &tasks,
        "w1",
        rx,
        &Taken::default(),
        &Timing::default(),
    );
    let polls = sched.polls.lock().unwrap();
    assert_eq!(polls.len(), 3, "one failure, one refusal, then delivered");
    assert!(polls
        .iter()
        .all(|p| p.reports == vec![report.clone()] && p.wait_ms == 0));
    assert_eq!(*tasks.delivered.lock().unwrap(), vec![report]);
    assert_eq!(*tasks.started.lock().unwrap(), vec![task("x")]);
}

#[test]
fn a_stopping_worker_says_so_and_then_that_it_stopped() {
    let stop = Arc::new(AtomicBool::new(false));
    let sched = Arc::new(Scripted::new(
        vec![Answer::Registered, Answer::Registered],
        stop,
    ));
    let ended = AtomicBool::new(false);
    poll::stop(
        sched.clone(),
        "w1",
        Duration::from_millis(5),
        || ended.store(true, SeqCst),
        || 0,
    );
    assert!(ended.load(SeqCst));
    // STOPPING first (and again while tasks end, keeping the lease), STOPPED
    // last.
    let phases: Vec<WorkerPhase> = sched
        .polls
        .lock()
        .unwrap()
        .iter()
        .map(|p| p.phase)
        .collect();
    let (last, before) = phases.split_last().expect("polls");
    assert_eq!(*last, WorkerPhase::Stopped, "{phases:?}");
    assert!(
        !before.is_empty() && before.iter().all(|p| *p == WorkerPhase::Stopping),
        "{phases:?}"
    );
}

#[test]
fn retries_back_off_to_a_cap_and_polls_end_before_the_node_is_lost() {
    assert_eq!(poll::retry_wait(1), Duration::ZERO);
    assert_eq!(poll::retry_wait(2), Duration::from_millis(25));
    assert_eq!(poll::retry_wait(30), poll::RETRY_CAP);
    // A poll gives up within a quarter of the lost-node timeout past its wait.
    assert_eq!(poll::poll_timeout(1000, 2000), Duration::from_millis(1500));
    assert_eq!(poll::poll_timeout(0, 60_000), Duration::from_millis(1000));
}
