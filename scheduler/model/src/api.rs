//! Every operation of the scheduler's HTTP API, and of a worker's own
//! server, as a type: an [`Operation`] is its request, and names its path
//! and the type of its reply. The client (`shoal-client`) sends nothing else,
//! and the scheduler parses the same types, so the two cannot drift apart.
//!
//! AWS Batch's operations are `POST /v1/{name}` with AWS's shapes (their
//! request types live beside their resources: [`crate::job`],
//! [`crate::definition`], [`crate::queue`], [`crate::compute`]); Shoal's
//! own are `POST /shoal/v1/{name}` and are defined here, with the launch
//! agent's `POST /exec` on a worker.

use crate::compute::*;
use crate::definition::*;
use crate::job::*;
use crate::policy::*;
use crate::queue::*;
use crate::wire::TaskRef;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which server, and which part of its paths, an operation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// The scheduler's AWS Batch API: `/v1/{name}`.
    Aws,
    /// The scheduler's own operations: `/shoal/v1/{name}`.
    Shoal,
    /// A worker's own server: `/{name}`.
    Worker,
}

/// One operation: its request type, where it goes and what comes back.
pub trait Operation: Serialize {
    /// The server and path prefix.
    const API: Api;
    /// The operation's name in the path (lowercase, as the paths spell it).
    const NAME: &'static str;
    /// The type of a successful reply.
    type Response: DeserializeOwned + Serialize;

    /// The request's path, e.g. `/v1/submitjob`.
    fn path() -> String {
        match Self::API {
            Api::Aws => format!("/v1/{}", Self::NAME),
            Api::Shoal => format!("/shoal/v1/{}", Self::NAME),
            Api::Worker => format!("/{}", Self::NAME),
        }
    }
}

macro_rules! operations {
    ($($api:ident $name:literal $req:ty => $resp:ty;)*) => {
        $(impl Operation for $req {
            const API: Api = Api::$api;
            const NAME: &'static str = $name;
            type Response = $resp;
        })*
    };
}

operations! {
    Aws "registerjobdefinition" RegisterJobDefinitionRequest => RegisterJobDefinitionResponse;
    Aws "describejobdefinitions" DescribeJobDefinitionsRequest => DescribeJobDefinitionsResponse;
    Aws "deregisterjobdefinition" DeregisterJobDefinitionRequest => EmptyResponse;
    Aws "submitjob" SubmitJobRequest => SubmitJobResponse;
    Aws "describejobs" DescribeJobsRequest => DescribeJobsResponse;
    Aws "listjobs" ListJobsRequest => ListJobsResponse;
    Aws "canceljob" CancelJobRequest => EmptyResponse;
    Aws "terminatejob" TerminateJobRequest => EmptyResponse;
    Aws "createcomputeenvironment" CreateComputeEnvironmentRequest => CreateComputeEnvironmentResponse;
    Aws "updatecomputeenvironment" UpdateComputeEnvironmentRequest => UpdateComputeEnvironmentResponse;
    Aws "deletecomputeenvironment" DeleteComputeEnvironmentRequest => EmptyResponse;
    Aws "describecomputeenvironments" DescribeComputeEnvironmentsRequest => DescribeComputeEnvironmentsResponse;
    Aws "createjobqueue" CreateJobQueueRequest => CreateJobQueueResponse;
    Aws "updatejobqueue" UpdateJobQueueRequest => UpdateJobQueueResponse;
    Aws "deletejobqueue" DeleteJobQueueRequest => EmptyResponse;
    Aws "describejobqueues" DescribeJobQueuesRequest => DescribeJobQueuesResponse;
    Aws "getjobqueuesnapshot" GetJobQueueSnapshotRequest => GetJobQueueSnapshotResponse;
    Aws "createschedulingpolicy" CreateSchedulingPolicyRequest => CreateSchedulingPolicyResponse;
    Aws "describeschedulingpolicies" DescribeSchedulingPoliciesRequest => DescribeSchedulingPoliciesResponse;
    Aws "updateschedulingpolicy" UpdateSchedulingPolicyRequest => EmptyResponse;
    Aws "deleteschedulingpolicy" DeleteSchedulingPolicyRequest => EmptyResponse;
    Aws "listschedulingpolicies" ListSchedulingPoliciesRequest => ListSchedulingPoliciesResponse;
    Shoal "listnodes" ListNodesRequest => ListNodesResponse;
    Shoal "drainnode" DrainNodeRequest => EmptyResponse;
    Shoal "resumenode" ResumeNodeRequest => EmptyResponse;
    Shoal "removenode" RemoveNodeRequest => EmptyResponse;
    Shoal "logs" LogsRequest => LogLocation;
    Worker "exec" ExecRequest => ExecResponse;
}

/// `listnodes`: every worker node the scheduler knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListNodesRequest {}

/// One node in a `listnodes` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    /// The worker's name.
    pub name: String,
    /// `UP`, `MIXED`, `ALLOCATED`, `DRAINING`, `DRAINED`, `UNKNOWN`,
    /// `STOPPING` or `DOWN` (sinfo's words where they exist).
    pub state: String,
    /// Where the worker's own server listens.
    pub address: String,
    /// Its port.
    pub port: u16,
    /// vCPUs offered.
    pub vcpus: u32,
    /// vCPUs allocated to attempts.
    pub vcpus_allocated: u32,
    /// Memory offered.
    #[serde(rename = "memoryMiB")]
    pub memory_mib: u64,
    /// Memory not allocated (0 when DOWN).
    #[serde(rename = "memoryFreeMiB")]
    pub memory_free_mib: u64,
    /// /dev/shm offered.
    #[serde(rename = "shmMiB")]
    pub shm_mib: u64,
    /// /dev/shm not allocated (0 when DOWN).
    #[serde(rename = "shmFreeMiB")]
    pub shm_free_mib: u64,
    /// The worker's labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// What the worker found it cannot enforce.
    #[serde(default)]
    pub notes: Vec<String>,
    /// Why an operator drained it; none when it takes jobs.
    #[serde(default)]
    pub drain_reason: Option<String>,
}

/// The `listnodes` reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListNodesResponse {
    /// The nodes, by name.
    pub nodes: Vec<NodeInfo>,
}

/// `drainnode`: no new work for the node; what runs there goes on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DrainNodeRequest {
    /// The node's name.
    pub name: String,
    /// Why (shown by `shoal nodes`); "drained by an operator" if none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `resumenode`: a drained node takes jobs again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResumeNodeRequest {
    /// The node's name.
    pub name: String,
}

/// `removenode`: forget a DOWN node that runs nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoveNodeRequest {
    /// The node's name.
    pub name: String,
}

/// `logs`: where the output of a job's task is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogsRequest {
    /// `ID` or `ID#NODE`.
    pub job_id: String,
}

/// The `logs` reply: the worker's log URL and a grant to read there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLocation {
    /// `http(s)://ADDRESS:PORT/logs` of the worker that ran the task.
    pub url: String,
    /// The task (its directory there is [`TaskRef::dir_name`]).
    pub task: TaskRef,
    /// The worker's name.
    pub node: String,
    /// The query string that lets the caller read this log for a while.
    #[serde(default)]
    pub grant: Option<String>,
    /// The cluster CA (PEM) to verify a TLS worker against.
    #[serde(default)]
    pub ca: Option<String>,
}

/// The launch agent's request to a worker: run a command in a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecRequest {
    /// The job (`AWS_BATCH_JOB_ID` of the caller; a `#NODE` suffix is ignored).
    pub job_id: crate::JobRef,
    /// 0-based attempt.
    pub attempt: u32,
    /// The command line, run through `sh -c`.
    pub command: String,
    /// The job's token (`SHOAL_JOB_TOKEN`).
    #[serde(default)]
    pub token: String,
}

/// The worker's reply to [`ExecRequest`]: the command's exit code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecResponse {
    /// The exit code (128 + signal for a signalled command).
    pub exit_code: i32,
}

/// The body of every error reply: AWS's shape (`__type` is absent in a
/// worker's replies).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The exception's name, e.g. `ClientException`.
    #[serde(rename = "__type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// What was wrong.
    #[serde(default)]
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(SubmitJobRequest::path(), "/v1/submitjob");
        assert_eq!(ListNodesRequest::path(), "/shoal/v1/listnodes");
        assert_eq!(ExecRequest::path(), "/exec");
    }

    #[test]
    fn node_info_spells_the_wire_names() {
        let v = serde_json::to_value(NodeInfo {
            memory_free_mib: 5,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(v["memoryFreeMiB"], 5);
        assert!(v.get("vcpusAllocated").is_some());
        assert!(v.get("drainReason").is_some());
    }
}
