//! What the scheduler keeps across its own restarts, end to end on local
//! clusters (loopback workers), each reporting its figure (see
//! `common::figure`):
//! - kill -9 with Start orders still in its mailbox: after the restart they
//!   are sent again and the jobs SUCCEED in their first attempt;
//! - a state directory whose database is missing, empty or short of its
//!   WAL: the start is refused with a message, and nothing the workers run
//!   is killed;
//! - restarts with the wall clock 1 h behind and 1 h ahead (faketime):
//!   queue order kept, startedAt never before createdAt, no early timeout.
//!
//! They need root (mounts, cgroups), as CI has.

mod common;

use common::local::Cluster;
use common::marks::Marks;
use common::{figure, free_port, scheduler_command, spawn_scheduler, wait_for};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

const TIMEOUT: &[&str] = &["--worker-timeout-ms", "10000"];

/// A local cluster of `workers` whose scheduler listens on a fixed port
/// (so that it can be restarted there) and logs to `DIR/scheduler.log`.
fn cluster(workers: &[&str]) -> (Cluster, String) {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let log = dir.path().join("scheduler.log");
    let state = dir.path().join("scheduler");
    let (s, endpoint) =
        spawn_scheduler(scheduler_command(&[], &listen, &state, TIMEOUT, Some(&log)));
    (Cluster::with(dir, s, endpoint, workers), listen)
}

/// Restart the cluster's scheduler (after a kill -9), its clock stepped
/// by `step` (faketime's syntax, e.g. `-1h`) if given.
fn restart(c: &mut Cluster, listen: &str, step: Option<&str>) {
    let state = c.dir.path().join("scheduler");
    let log = c.dir.path().join("scheduler.log");
    let started = std::panic::catch_unwind(|| {
        let mut cmd = scheduler_command(&[], listen, &state, TIMEOUT, Some(&log));
        if let Some(step) = step {
            // libfaketime itself (the `faketime` wrapper would stand
            // between the test and the scheduler's pid).
            cmd.env("LD_PRELOAD", libfaketime()).env("FAKETIME", step);
        }
        spawn_scheduler(cmd)
    });
    let Ok((s, endpoint)) = started else {
        panic!(
            "the scheduler did not restart (clock {step:?}):\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    };
    assert_eq!(endpoint, c.endpoint);
    c._scheduler = s;
}

/// Debian's libfaketime (package faketime).
fn libfaketime() -> std::path::PathBuf {
    std::fs::read_dir("/usr/lib")
        .unwrap()
        .flatten()
        .map(|d| d.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.exists())
        .expect("libfaketime (apt-get install faketime: scripts/install-deps.sh)")
}

/// kill -9 the cluster's scheduler (a placeholder takes its place in the
/// struct until `restart`).
fn kill9(c: &mut Cluster) {
    let spare = c.dir.path().join("spare");
    let log = c.dir.path().join("spare.log");
    let placeholder = std::panic::catch_unwind(|| {
        spawn_scheduler(scheduler_command(
            &[],
            "127.0.0.1:0",
            &spare,
            &[],
            Some(&log),
        ))
        .0
    })
    .unwrap_or_else(|_| panic!("{}", std::fs::read_to_string(&log).unwrap_or_default()));
    std::mem::replace(&mut c._scheduler, placeholder).kill9();
}

fn worker_pid(c: &Cluster, name: &str) -> Pid {
    let (_, p) = c.workers.iter().find(|(n, _)| n == name).unwrap();
    Pid::from_raw(p.0.id() as i32)
}

fn submit(c: &Cluster, marks: &Marks, name: &str, def: &str) -> String {
    c.aws("submitjob", marks.submission(name, def))["jobId"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn start_orders_waiting_in_a_killed_schedulers_mailbox_are_sent_again() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (mut c, listen) = cluster(&["n1", "n2"]);
    let marks = Marks::new(c.dir.path());
    // One attempt: a job taken for lost would fail.
    c.register(marks.definition("mark", 1));
    // The workers freeze; once their long polls (1 s) have ended no poll
    // is held, so the Starts decided now wait in the mailbox.
    for w in ["n1", "n2"] {
        kill(worker_pid(&c, w), Signal::SIGSTOP).unwrap();
    }
    std::thread::sleep(Duration::from_millis(1500));
    let names = ["a", "b"];
    let ids: Vec<String> = names
        .iter()
        .map(|n| submit(&c, &marks, n, "mark"))
        .collect();
    wait_for("both jobs to be placed", || {
        ids.iter().all(|id| c.job(id)["status"] == "STARTING")
    });
    kill9(&mut c);
    for w in ["n1", "n2"] {
        kill(worker_pid(&c, w), Signal::SIGCONT).unwrap();
    }
    restart(&mut c, &listen, None);
    wait_for("both jobs to run", || {
        names.iter().all(|n| marks.node_of(n, 1).is_some())
    });
    for n in names {
        marks.release(n);
    }
    let mut first = 0;
    for id in &ids {
        let j = c.wait_done(id);
        if j["status"] == "SUCCEEDED" && j["attempts"].as_array().map(Vec::len) == Some(1) {
            first += 1;
        } else {
            eprintln!("{j}");
        }
    }
    let log = std::fs::read_to_string(c.dir.path().join("scheduler.log")).unwrap();
    let resent = log.matches("sending it again").count();
    figure(&format!(
        "restart: {first}/{} jobs with undelivered Starts SUCCEEDED in their first attempt ({resent} Starts sent again)",
        ids.len()
    ));
    assert_eq!(first, ids.len());
    assert!(
        resent >= 1,
        "the scenario: a Start that never left the mailbox\n{log}"
    );
}

/// Start a scheduler on `state` that must refuse: its exit status and
/// what it said.
fn refused_start(listen: &str, state: &Path) -> (bool, String) {
    let mut cmd = scheduler_command(&[], listen, state, TIMEOUT, None);
    cmd.stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (!status.success(), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return (false, "it started".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_missing_empty_or_wal_less_database_is_refused_and_nothing_is_killed() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (mut c, listen) = cluster(&["n1"]);
    let marks = Marks::new(c.dir.path());
    c.register(marks.definition("mark", 1));
    let id = submit(&c, &marks, "r", "mark");
    wait_for("the job to run", || c.job(&id)["status"] == "RUNNING");
    kill9(&mut c);
    let state = c.dir.path().join("scheduler");
    let keep = c.dir.path().join("kept");
    std::fs::create_dir_all(&keep).unwrap();
    let files = ["shoal.db", "shoal.db-wal", "shoal.db-shm"];
    for f in files {
        if state.join(f).exists() {
            std::fs::copy(state.join(f), keep.join(f)).unwrap();
        }
    }
    assert!(
        keep.join("shoal.db-wal").exists(),
        "commits since the last checkpoint are in the WAL"
    );
    let restore = || {
        for f in files {
            let _ = std::fs::remove_file(state.join(f));
            if keep.join(f).exists() {
                std::fs::copy(keep.join(f), state.join(f)).unwrap();
            }
        }
    };
    let lines = |m: &Marks| m.trails("r").first().map_or(0, |t| t.last);
    let mut refused = 0;
    let cases: [(&str, &dyn Fn()); 3] = [
        ("missing", &|| {
            for f in files {
                let _ = std::fs::remove_file(state.join(f));
            }
        }),
        ("empty", &|| {
            for f in files {
                let _ = std::fs::remove_file(state.join(f));
            }
            std::fs::write(state.join("shoal.db"), b"").unwrap();
        }),
        ("WAL-less", &|| {
            std::fs::remove_file(state.join("shoal.db-wal")).unwrap();
            let _ = std::fs::remove_file(state.join("shoal.db-shm"));
        }),
    ];
    for (what, damage) in cases {
        damage();
        let (failed, said) = refused_start(&listen, &state);
        eprintln!("{what}: {said}");
        if failed && said.contains("--fresh-state") && said.contains("backup") {
            refused += 1;
        }
        restore();
    }
    // The job ran all along: its trail still grows, in its first attempt.
    let before = lines(&marks);
    wait_for("the job to write on", || lines(&marks) > before);
    restart(&mut c, &listen, None);
    marks.release("r");
    let j = c.wait_done(&id);
    let kept = j["status"] == "SUCCEEDED" && j["attempts"].as_array().map(Vec::len) == Some(1);
    figure(&format!(
        "state: {refused}/3 missing, empty and WAL-less databases refused with a message, {} tasks killed",
        if kept { 0 } else { 1 }
    ));
    assert_eq!(refused, 3);
    assert!(kept, "the running job was never killed: {j}");
}

fn started(j: &Value) -> u64 {
    j["startedAt"].as_u64().unwrap_or(0)
}

#[test]
fn clock_steps_of_an_hour_keep_the_queue_order_and_time_out_nothing_early() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (mut c, listen) = cluster(&["n1"]);
    let marks = Marks::new(c.dir.path());
    let mut def = marks.definition("mark", 1);
    def["timeout"] = json!({ "attemptDurationSeconds": 300 });
    c.register(def);
    // r runs (with a 300 s timeout); q1 and q2 wait behind it.
    let r = submit(&c, &marks, "r", "mark");
    wait_for("r to run", || c.job(&r)["status"] == "RUNNING");
    let mut queued = vec![
        submit(&c, &marks, "q1", "mark"),
        submit(&c, &marks, "q2", "mark"),
    ];
    // An hour behind, then an hour ahead.
    let mut early = 0;
    for (step, q) in [("-1h", "q3"), ("+1h", "q4")] {
        kill9(&mut c);
        restart(&mut c, &listen, Some(step));
        // The submission's batch checks every timeout first.
        queued.push(submit(&c, &marks, q, "mark"));
        if c.job(&r)["status"] != "RUNNING" {
            early += 1;
        }
    }
    for n in ["r", "q1", "q2", "q3", "q4"] {
        marks.release(n);
    }
    // The step took: the last job was created an hour ahead.
    let real_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let q4 = c.job(queued.last().unwrap());
    assert!(
        q4["createdAt"].as_u64().unwrap() > real_now + 50 * 60 * 1000,
        "the scheduler ran an hour ahead: {q4}"
    );
    let rj = c.wait_done(&r);
    if rj["status"] != "SUCCEEDED" {
        early += 1;
    }
    let jobs: Vec<Value> = queued.iter().map(|id| c.wait_done(id)).collect();
    let in_order = jobs
        .windows(2)
        .filter(|w| started(&w[0]) <= started(&w[1]))
        .count()
        + 1;
    let all: Vec<&Value> = std::iter::once(&rj).chain(jobs.iter()).collect();
    let sane = all
        .iter()
        .filter(|j| started(j) >= j["createdAt"].as_u64().unwrap_or(u64::MAX))
        .count();
    figure(&format!(
        "clock -1h/+1h: queue order {in_order}/{} kept, startedAt >= createdAt {sane}/{}, {early} early timeouts",
        jobs.len(),
        all.len()
    ));
    assert_eq!(early, 0, "{rj}");
    assert_eq!(in_order, jobs.len(), "{jobs:?}");
    assert_eq!(sane, all.len(), "{all:?}");
}
