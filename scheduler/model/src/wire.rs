//! Messages between the scheduler and its workers: Shoal's own API under
//! `POST /shoal/v1/worker/{register,poll}`.
//!
//! A worker registers (capacity, labels, address and the tasks it still
//! runs, so that a restarted scheduler can reconcile), then long-polls: each
//! poll carries its reports (task started, task exited) and is its
//! heartbeat; the reply carries orders (start a task, kill a task). A task
//! is one node of one attempt of a job.

use crate::ids::JobRef;
use crate::launch::LaunchSpec;
/// What a node offers or a task is given (`{vcpus, memoryMib, shmMib}`).
pub use crate::semantics::Resources;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One node of one attempt of a job.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRef {
    /// The job (`ID` or `ID:INDEX` for an array child).
    pub job_id: JobRef,
    /// Attempt number, 0-based.
    pub attempt: u32,
    /// Node index (0 for single-node jobs).
    pub node_index: u32,
}

impl TaskRef {
    /// A file-name-safe form of the task id: its directory on the worker
    /// (`ID.nodeN.attemptA`, characters other than letters, digits and
    /// `-` replaced by `_`).
    pub fn dir_name(&self) -> String {
        let id: String = self
            .job_id
            .to_string()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{id}.node{}.attempt{}", self.node_index, self.attempt + 1)
    }
}

/// The start of the reason of an attempt that ended because its host went
/// away (AWS Batch's words, so `evaluateOnExit` rules with
/// `onStatusReason: "Host*"` match it).
pub const HOST_TERMINATED: &str = "Host terminated";

/// The reason of an attempt ended by its timeout (AWS's wording; the core
/// gives it, and a worker's timeout backstop begins with it).
pub use shoal_core::TIMEOUT_REASON;

/// What the scheduler signs (HMAC-SHA256 under the worker's `logKey`) to
/// let a client read one task's log on a worker until `expires_ms` (epoch
/// milliseconds): `GET /logs/DIR?expires=E&sig=HEX`.
pub fn log_grant_message(dir_name: &str, expires_ms: u64) -> String {
    format!("shoal log\n{dir_name}\n{expires_ms}")
}

impl std::fmt::Display for TaskRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{}.{}", self.job_id, self.node_index, self.attempt)
    }
}

/// `POST /shoal/v1/worker/register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterWorkerRequest {
    /// Unique node name.
    pub name: String,
    /// Address other nodes and MPI reach it at (its private IPv4).
    pub address: String,
    /// Port of the worker's own HTTP server (logs, launch agent).
    pub port: u16,
    /// What it offers.
    pub capacity: Resources,
    /// Labels, matched by compute environments' `shoal:label:KEY` tags.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Tasks it is still running (after a scheduler restart).
    #[serde(default)]
    pub running: Vec<TaskRef>,
    /// The worker's key for log grants (hex), drawn when it starts: it
    /// serves a task's log only with a grant the scheduler signed with it
    /// (see [`log_grant_message`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_key: Option<String>,
    /// Whether the worker's own server (`port`) speaks TLS, with the
    /// node's certificate from the cluster CA (absent: plain HTTP).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
    /// What the worker found at start that it cannot enforce (user
    /// namespaces refused, cgroup controllers missing), for operators:
    /// shown on the node in `shoal nodes` and DescribeComputeEnvironments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Set by the scheduler's worker listener, never by the worker: the
    /// worker presented the certificate of a MANAGED environment's
    /// allocation, which covers the names that begin with this prefix
    /// (`ENV.SEQ.`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation: Option<String>,
}

/// Reply to a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterWorkerResponse {
    /// How often to poll at the latest.
    pub heartbeat_ms: u64,
    /// After this long without a poll the node is declared lost.
    pub lost_after_ms: u64,
    /// The lease of every task on the worker: a worker that has not heard
    /// from the scheduler for this long ends its tasks itself (0: the
    /// worker uses `lost_after_ms`).
    #[serde(default)]
    pub lease_ms: u64,
    /// Between the SIGTERM and the SIGKILL of a fenced task.
    #[serde(default)]
    pub fence_grace_ms: u64,
}

/// What happened to a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "event")]
pub enum TaskEvent {
    /// The process runs.
    Started,
    /// The process tree ended.
    #[serde(rename_all = "camelCase")]
    Exited {
        /// Exit code; None when killed by a signal or never started.
        exit_code: Option<i32>,
        /// Why, for people.
        reason: String,
        /// Highest /dev/shm use seen, MiB.
        shm_peak_mib: u64,
    },
    /// The worker did not start the task (it is stopping): nothing of it
    /// ran, so the attempt does not count.
    #[serde(rename_all = "camelCase")]
    NotStarted {
        /// Why, for people.
        reason: String,
    },
}

/// Where a worker is in its life, as it tells the scheduler in a poll.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkerPhase {
    /// Taking orders.
    #[default]
    Running,
    /// Stopping (SIGTERM): place nothing new here and withdraw the orders
    /// it has not taken; it is ending its tasks.
    Stopping,
    /// Its tasks have ended and it is about to exit: its node is DOWN.
    Stopped,
}

impl WorkerPhase {
    fn is_running(&self) -> bool {
        *self == WorkerPhase::Running
    }
}

/// A report in a poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskReport {
    /// The task.
    pub task: TaskRef,
    /// What happened.
    #[serde(flatten)]
    pub event: TaskEvent,
}

/// `POST /shoal/v1/worker/poll`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PollRequest {
    /// The node.
    pub name: String,
    /// Reports since the last poll.
    #[serde(default)]
    pub reports: Vec<TaskReport>,
    /// How long the scheduler may hold the poll open waiting for orders.
    #[serde(default)]
    pub wait_ms: u64,
    /// Absent while the worker takes orders.
    #[serde(default, skip_serializing_if = "WorkerPhase::is_running")]
    pub phase: WorkerPhase,
    /// The last order this worker has taken (orders up to it need not be
    /// sent again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<OrderSeq>,
    /// Every task this worker knows (starting, running, or ended and not
    /// yet reported): what the scheduler reconciles against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<TaskRef>>,
    /// The highest /dev/shm use seen so far of each task running here
    /// (sent with `tasks`), for the scheduler's metrics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shm: Vec<TaskShm>,
}

/// A running task's /dev/shm use, as a poll reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskShm {
    /// The task.
    pub task: TaskRef,
    /// Highest /dev/shm use seen so far, MiB.
    pub peak_mib: u64,
}

/// The position of an order in a scheduler's stream of orders to one node:
/// `epoch` names the scheduler process (a restarted one starts a new
/// stream), `seq` counts from 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderSeq {
    /// The scheduler process's stream.
    pub epoch: u64,
    /// The order's number in it.
    pub seq: u64,
}

/// Everything a worker needs to run a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartTask {
    /// The task.
    pub task: TaskRef,
    /// What to run and how (resolved at submit; the environment has AWS
    /// Batch's and Shoal's variables added): the worker applies it.
    pub launch: LaunchSpec,
    /// Contents of the Open MPI hostfile (`ADDRESS slots=N`, main node first).
    pub hostfile: String,
    /// What the task is given.
    pub alloc: Resources,
    /// The job's secret for this attempt, the same on every node of the
    /// gang: the launch agent presents it to the other nodes' workers
    /// (`POST /exec`), which run commands only for the job that holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_token: Option<String>,
}

/// An order to a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "order")]
pub enum Order {
    /// Start a task.
    Start(Box<StartTask>),
    /// Kill a task's whole process tree.
    #[serde(rename_all = "camelCase")]
    Kill {
        /// The task.
        task: TaskRef,
        /// Why.
        reason: String,
    },
}

/// Reply to a poll.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollResponse {
    /// Orders, oldest first.
    pub orders: Vec<Order>,
    /// The position of the first of `orders` (the others follow one by
    /// one). An order is sent again until a poll acknowledges it.
    #[serde(default)]
    pub first: OrderSeq,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_speak_camel_case_and_read_the_stored_snake_case() {
        let r = Resources {
            vcpus: 2,
            memory_mib: 512,
            shm_mib: 64,
        };
        let v = serde_json::to_value(r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({ "vcpus": 2, "memoryMib": 512, "shmMib": 64 })
        );
        let old: Resources =
            serde_json::from_str(r#"{"vcpus":2,"memory_mib":512,"shm_mib":64}"#).unwrap();
        assert_eq!(old, r, "records stored before read as they were");
    }

    #[test]
    fn reports_round_trip_with_a_flat_event_tag() {
        let r = TaskReport {
            task: TaskRef {
                job_id: "j".parse().unwrap(),
                attempt: 1,
                node_index: 2,
            },
            event: TaskEvent::Exited {
                exit_code: Some(3),
                reason: "x".into(),
                shm_peak_mib: 7,
            },
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["event"], "exited");
        assert_eq!(v["exitCode"], 3);
        assert_eq!(v["task"]["nodeIndex"], 2);
        let back: TaskReport = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }
}
