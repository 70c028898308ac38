//! Fencing, end to end on network-namespace clusters (`shoal cluster up`,
//! 3 nodes of 2 vCPUs, the default 10 s lost-node timeout), with jobs that
//! append timestamped lines, one file per attempt and node
//! (`common::marks`), so that overlapping attempts show:
//! - a node's link cut (its veth down) for 5 s and 8 s, less than the
//!   timeout: nothing is lost, every job ends in its first attempt, and a
//!   job that finished while cut off SUCCEEDS;
//! - the link cut for 30 s, and the node's worker frozen (SIGSTOP) for
//!   20 s: the node's tasks end under their lease (the watchdog's, for the
//!   frozen worker) before any other attempt starts.
//!
//! Each reports its figure (see `common::figure`). They need root.

mod common;

use common::marks::{overlap_ms, status_from, Marks};
use common::netns::NsCluster;
use common::{figure, wait_for};
use nix::sys::signal::Signal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One at a time: each builds a cluster and times its fault.
static SERIAL: Mutex<()> = Mutex::new(());

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// The node's veth down for this long.
    Partition(Duration),
    /// Its worker stopped (SIGSTOP) for this long.
    Freeze(Duration),
}

/// Undoes the fault, whatever happens to the test.
struct Heal<'a>(&'a NsCluster, String, Fault);

impl Drop for Heal<'_> {
    fn drop(&mut self) {
        match self.2 {
            Fault::Partition(_) => self.0.link(&self.1, true),
            Fault::Freeze(_) => self.0.signal_worker(&self.1, Signal::SIGCONT),
        }
    }
}

/// What a fault did to the jobs.
#[derive(Debug)]
struct Outcome {
    jobs: usize,
    overlap_ms: u128,
    /// Jobs whose final status is what their last attempt's processes did.
    right: usize,
    /// Acknowledged jobs missing from ListJobs' finished jobs.
    lost: usize,
    /// Jobs that ended in their first attempt.
    first_attempt: usize,
    /// Jobs that were on the faulty node.
    on_node: usize,
}

impl Outcome {
    fn figure(&self, what: &str) -> String {
        format!(
            "{what}: {} ms overlap, {}/{} status right, {} lost, {}/{} in their first attempt",
            self.overlap_ms, self.right, self.jobs, self.lost, self.first_attempt, self.jobs
        )
    }
}

/// Six marking jobs fill the three nodes; `fault` hits the node of the
/// first; one of that node's jobs is told to finish as the fault begins,
/// the rest once it is over.
fn run(fault: Fault) -> Outcome {
    let c = NsCluster::up(3, 2);
    let marks = Marks::new(c.dir.path());
    c.aws("registerjobdefinition", marks.definition("mark", 2));
    let names: Vec<String> = (0..6).map(|i| format!("j{i}")).collect();
    let ids: Vec<String> = names
        .iter()
        .map(|n| {
            c.aws("submitjob", marks.submission(n, "mark"))["jobId"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    wait_for("all six jobs to run", || {
        names.iter().all(|n| marks.node_of(n, 1).is_some())
    });
    let address = marks.node_of("j0", 1).unwrap();
    let node = c.node_at(&address);
    let on_node: Vec<&String> = names
        .iter()
        .filter(|n| marks.node_of(n, 1).as_deref() == Some(address.as_str()))
        .collect();
    let began = Instant::now();
    let length = match fault {
        Fault::Partition(d) => {
            c.link(&node, false);
            d
        }
        Fault::Freeze(d) => {
            c.signal_worker(&node, Signal::SIGSTOP);
            d
        }
    };
    let heal = Heal(&c, node.clone(), fault);
    // This one ends while its node is cut off, inside its lease.
    marks.release(on_node[0]);
    wait_for("the released job's task to finish", || {
        marks.trails(on_node[0]).iter().any(|t| t.done)
    });
    // The fault's length is the scenario itself: nothing to wait for.
    std::thread::sleep(length.saturating_sub(began.elapsed()));
    drop(heal);
    for n in &names {
        marks.release(n);
    }
    let mut out = Outcome {
        jobs: names.len(),
        overlap_ms: 0,
        right: 0,
        lost: 0,
        first_attempt: 0,
        on_node: on_node.len(),
    };
    for (name, id) in names.iter().zip(&ids) {
        let j = c.wait_done(id);
        let trails = marks.trails(name);
        let overlap = overlap_ms(&trails);
        assert_eq!(overlap, 0, "{name}: attempts overlapped: {trails:?}\n{j}");
        out.overlap_ms += overlap;
        if j["status"] == status_from(&trails) {
            out.right += 1;
        } else {
            eprintln!(
                "{name}: status {} but its processes: {trails:?}\n{j}",
                j["status"]
            );
        }
        if j["attempts"].as_array().map(Vec::len) == Some(1) {
            out.first_attempt += 1;
        }
    }
    let listed: Vec<String> = ["SUCCEEDED", "FAILED"]
        .iter()
        .flat_map(|s| {
            c.aws(
                "listjobs",
                serde_json::json!({ "jobQueue": "default", "jobStatus": s }),
            )["jobSummaryList"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["jobId"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    out.lost = ids.iter().filter(|id| !listed.contains(id)).count();
    out
}

/// Run `fault` (one at a time), report its figure as `what`, and check what
/// holds for every fault: no overlap, none lost, every status right.
fn checked(fault: Fault, what: &str) -> Outcome {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let o = run(fault);
    figure(&o.figure(what));
    assert_eq!(o.overlap_ms, 0);
    assert_eq!(o.lost, 0, "{o:?}");
    assert_eq!(o.right, o.jobs, "{o:?}");
    o
}

fn shorter_than_the_timeout(secs: u64) {
    let o = checked(
        Fault::Partition(Duration::from_secs(secs)),
        &format!("partition {secs}s"),
    );
    assert_eq!(
        o.first_attempt, o.jobs,
        "a cut shorter than the lost-node timeout loses no node: {o:?}"
    );
}

#[test]
fn a_5_s_partition_loses_nothing_and_fails_nothing() {
    shorter_than_the_timeout(5);
}

#[test]
fn an_8_s_partition_loses_nothing_and_fails_nothing() {
    shorter_than_the_timeout(8);
}

#[test]
fn a_30_s_partition_fences_the_node_before_its_jobs_run_again() {
    let o = checked(Fault::Partition(Duration::from_secs(30)), "partition 30s");
    assert_eq!(
        o.first_attempt,
        o.jobs - o.on_node,
        "the cut node's jobs ran again, the others once: {o:?}"
    );
}

#[test]
fn a_worker_frozen_for_20_s_is_fenced_by_its_watchdog() {
    let o = checked(Fault::Freeze(Duration::from_secs(20)), "sigstop 20s");
    assert_eq!(o.first_attempt, o.jobs - o.on_node, "{o:?}");
}

/// Task cgroups left under the workers' cgroups of the nodes in `names`.
fn task_cgroups(names: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let n = e.file_name().to_string_lossy().to_string();
        if !names.iter().any(|w| n.starts_with(&format!("shoal-{w}-"))) {
            continue;
        }
        for t in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
            if t.file_type().is_ok_and(|f| f.is_dir()) {
                out.push(t.path().to_string_lossy().to_string());
            }
        }
    }
    out
}

#[test]
fn a_worker_stopped_during_a_gang_ends_it_gracefully_with_the_host_reason() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = NsCluster::up(3, 1);
    let marks = Marks::new(c.dir.path());
    // A gang whose TERM handler takes 2 s, retried when its host went.
    let container = marks.container(2);
    c.aws(
        "registerjobdefinition",
        serde_json::json!({ "jobDefinitionName": "gang", "type": "multinode",
            "retryStrategy": { "attempts": 2, "evaluateOnExit": [
                { "onStatusReason": "Host*", "action": "RETRY" },
                { "onReason": "*", "action": "EXIT" } ] },
            "nodeProperties": { "numNodes": 2, "mainNode": 0, "nodeRangeProperties": [
                { "targetNodes": "0:", "container": container } ] } }),
    );
    c.aws("registerjobdefinition", marks.definition("mark", 1));
    let g = c.aws("submitjob", marks.gang_submission("g", "gang"))["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for("the gang to run on both nodes", || {
        marks.trails("g").len() == 2
    });
    let victim = marks.trails("g")[1].name.clone();
    c.signal_worker(&victim, Signal::SIGTERM);
    // Submitted while the victim drains: they finish as soon as they run.
    let mut xs = Vec::new();
    for x in ["x1", "x2"] {
        marks.release(x);
        xs.push(
            c.aws("submitjob", marks.submission(x, "mark"))["jobId"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    wait_for("the gang's first attempt to end on the victim", || {
        marks
            .trails("g")
            .iter()
            .any(|t| t.attempt == 1 && t.name == victim && t.last > 0)
            && c.job(&g)["attempts"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
    });
    marks.release("g");
    let j = c.wait_done(&g);
    for x in &xs {
        assert_eq!(c.wait_done(x)["status"], "SUCCEEDED");
    }
    let reason = j["attempts"][0]["statusReason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let trails = marks.trails("g");
    let on_victim = trails
        .iter()
        .find(|t| t.attempt == 1 && t.name == victim)
        .unwrap();
    let handler_ran = on_victim.termed;
    // Nothing submitted while it drained ran on it before it was gone.
    let placed: usize = ["x1", "x2"]
        .iter()
        .flat_map(|x| marks.trails(x))
        .filter(|t| t.name == victim && t.first < on_victim.last)
        .count();
    let left = task_cgroups(&["node1", "node2", "node3"]);
    figure(&format!(
        "sigterm: TERM handler {}, reason {reason:?}, {} task cgroups left, {placed} jobs placed on the draining node",
        if handler_ran { "ran" } else { "did not run" },
        left.len()
    ));
    assert!(handler_ran, "the job's TERM handler ran: {trails:?}");
    assert!(reason.starts_with("Host terminated"), "{j}");
    assert!(reason.contains(&victim), "{j}");
    assert_eq!(
        j["status"], "SUCCEEDED",
        "retried per onStatusReason Host*: {j}"
    );
    assert_eq!(overlap_ms(&trails), 0, "{trails:?}");
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(placed, 0);
}
