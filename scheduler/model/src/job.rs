//! Jobs: SubmitJob, DescribeJobs, ListJobs, CancelJob, TerminateJob.

use crate::arn::{parse_job_definition_ref, resource_name_from_ref, ResourceKind};
use crate::container::{
    check_environment, check_resources, KeyValuePair, LinuxParameters, MountPoint,
    ResourceRequirement, Ulimit, Volume,
};
use crate::definition::{
    check_scheduling_priority, JobTimeout, NodeProperties, RetryStrategy, TargetNodes,
    MAX_NUM_NODES,
};
use crate::error::{err, ClientError, Validate};
use crate::util::{
    check_command, check_max_results, check_name, check_not_empty, check_one_of, check_parameters,
    check_tags, join, nullable,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// AWS job states, in lifecycle order.
pub const JOB_STATES: [&str; 7] = [
    "SUBMITTED",
    "PENDING",
    "RUNNABLE",
    "STARTING",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
];

/// Whether a job in state `status` has ended (SUCCEEDED or FAILED).
pub fn is_finished(status: &str) -> bool {
    matches!(status, "SUCCEEDED" | "FAILED")
}

// ---------------------------------------------------------------- submit

/// `containerOverrides` of SubmitJob (and of each node property override).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpus: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i32>,
    /// Replaces the definition's command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    /// Added to the definition's environment (same name: replaced).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub environment: Vec<KeyValuePair>,
    /// Replace the definition's requirement of the same type.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resource_requirements: Vec<ResourceRequirement>,
}

impl ContainerOverrides {
    pub fn validate_at(&self, prefix: &str) -> Result<(), ClientError> {
        check_resources(prefix, &self.resource_requirements, self.vcpus, self.memory)?;
        check_environment(prefix, &self.environment)?;
        if let Some(c) = &self.command {
            check_command(&join(prefix, "command"), c)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodePropertyOverride {
    pub target_nodes: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_overrides: Option<ContainerOverrides>,
    /// Accepted and recorded.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub instance_types: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeOverrides {
    /// Overrides the definition's numNodes; needs an open-ended range in
    /// the definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_nodes: Option<i32>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub node_property_overrides: Vec<NodePropertyOverride>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArrayProperties {
    /// 2–10,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i32>,
}

/// A `dependsOn` entry. `{jobId}`: wait for that job; `{jobId, type:
/// "N_TO_N"}`: child i waits for child i of that array job; `{type:
/// "SEQUENTIAL"}` (array jobs only): child i waits for child i-1.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobDependency {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// JSON `type`: `N_TO_N` or `SEQUENTIAL`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// A validated dependency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Dependency {
    /// Wait for the whole job (given by id; an ARN is reduced to the id).
    Job(String),
    /// Array child i waits for child i of this array job.
    NToN(String),
    /// Array child i waits for child i-1 of the same array.
    Sequential,
}

/// `SubmitJob` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmitJobRequest {
    pub job_name: String,
    /// Name or ARN.
    pub job_queue: String,
    /// `name` (latest active revision), `name:revision` or ARN.
    pub job_definition: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_identifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling_priority_override: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_properties: Option<ArrayProperties>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub depends_on: Vec<JobDependency>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub parameters: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_overrides: Option<ContainerOverrides>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_overrides: Option<NodeOverrides>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_strategy: Option<RetryStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagate_tags: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<JobTimeout>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub tags: BTreeMap<String, String>,
}

impl SubmitJobRequest {
    /// The validated `dependsOn` entries, in order.
    pub fn dependencies(&self) -> Result<Vec<Dependency>, ClientError> {
        if self.depends_on.len() > 20 {
            return err(
                "dependsOn",
                format!(
                    "{} dependencies given; the limit is 20",
                    self.depends_on.len()
                ),
            );
        }
        let mut out = Vec::with_capacity(self.depends_on.len());
        for (i, d) in self.depends_on.iter().enumerate() {
            let f = format!("dependsOn[{i}]");
            let id = match d.job_id.as_deref() {
                Some(s) => Some(
                    resource_name_from_ref(ResourceKind::Job, s)
                        .map_err(|e| e.with_field(join(&f, "jobId")))?,
                ),
                None => None,
            };
            let dep = match (id, d.kind.as_deref()) {
                (Some(id), None) => Dependency::Job(id),
                (Some(id), Some("N_TO_N")) => Dependency::NToN(id),
                (None, Some("N_TO_N")) => {
                    return err(
                        join(&f, "jobId"),
                        "an N_TO_N dependency needs the jobId of the array job to depend on",
                    )
                }
                (None, Some("SEQUENTIAL")) => {
                    if self.array_properties.is_none() {
                        return err(
                            join(&f, "type"),
                            "SEQUENTIAL dependencies only apply to array jobs (give arrayProperties.size)",
                        );
                    }
                    Dependency::Sequential
                }
                (Some(_), Some("SEQUENTIAL")) => {
                    return err(
                        join(&f, "type"),
                        "a SEQUENTIAL dependency takes no jobId (it orders the children of this array job); to wait for another job, leave out type",
                    )
                }
                (_, Some(other)) => {
                    return err(
                        join(&f, "type"),
                        format!("{other:?} is not one of \"N_TO_N\", \"SEQUENTIAL\""),
                    )
                }
                (None, None) => return err(join(&f, "jobId"), "required (or type \"SEQUENTIAL\")"),
            };
            out.push(dep);
        }
        Ok(out)
    }

    /// The array size, if this is an array job (call after `validate`).
    pub fn array_size(&self) -> Option<u32> {
        self.array_properties
            .as_ref()
            .and_then(|a| a.size)
            .map(|s| s.max(0) as u32)
    }
}

impl Validate for SubmitJobRequest {
    fn validate(&self) -> Result<(), ClientError> {
        check_name("jobName", "job name", &self.job_name)?;
        resource_name_from_ref(ResourceKind::JobQueue, &self.job_queue)?;
        parse_job_definition_ref(&self.job_definition)?;
        check_parameters("parameters", &self.parameters)?;
        if self.container_overrides.is_some() && self.node_overrides.is_some() {
            return err(
                "nodeOverrides",
                "cannot be combined with containerOverrides; use containerOverrides for single-node jobs and nodeOverrides for multinode jobs",
            );
        }
        if let Some(c) = &self.container_overrides {
            c.validate_at("containerOverrides")?;
        }
        if let Some(n) = &self.node_overrides {
            if let Some(k) = n.num_nodes {
                if !(1..=MAX_NUM_NODES).contains(&k) {
                    return err(
                        "nodeOverrides.numNodes",
                        format!("must be between 1 and {MAX_NUM_NODES} (got {k})"),
                    );
                }
            }
            for (i, o) in n.node_property_overrides.iter().enumerate() {
                let f = format!("nodeOverrides.nodePropertyOverrides[{i}]");
                TargetNodes::parse(&join(&f, "targetNodes"), &o.target_nodes)?;
                if let Some(c) = &o.container_overrides {
                    c.validate_at(&join(&f, "containerOverrides"))?;
                }
            }
        }
        if let Some(a) = &self.array_properties {
            match a.size {
                None => {
                    return err(
                        "arrayProperties.size",
                        "required: the number of children, 2 to 10,000",
                    )
                }
                Some(s) if !(2..=10_000).contains(&s) => {
                    return err(
                        "arrayProperties.size",
                        format!("must be between 2 and 10,000 (got {s})"),
                    )
                }
                _ => {}
            }
        }
        self.dependencies()?;
        if let Some(r) = &self.retry_strategy {
            r.validate_at("retryStrategy")?;
        }
        if let Some(t) = &self.timeout {
            t.validate_at("timeout")?;
        }
        check_scheduling_priority(
            "schedulingPriorityOverride",
            self.scheduling_priority_override,
        )?;
        if let Some(id) = &self.share_identifier {
            crate::policy::check_share_identifier("shareIdentifier", id)?;
        }
        check_tags("tags", &self.tags)?;
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitJobResponse {
    pub job_arn: String,
    pub job_name: String,
    pub job_id: String,
}

// ---------------------------------------------------------------- describe

/// `DescribeJobs` request: 1–100 job ids (or job ARNs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DescribeJobsRequest {
    pub jobs: Vec<String>,
}

impl DescribeJobsRequest {
    /// The job ids (ARNs reduced to ids).
    pub fn job_ids(&self) -> Result<Vec<String>, ClientError> {
        self.jobs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                resource_name_from_ref(ResourceKind::Job, s)
                    .map_err(|e| e.with_field(format!("jobs[{i}]")))
            })
            .collect()
    }
}

impl Validate for DescribeJobsRequest {
    fn validate(&self) -> Result<(), ClientError> {
        if self.jobs.is_empty() || self.jobs.len() > 100 {
            return err(
                "jobs",
                format!("give 1 to 100 job ids (got {})", self.jobs.len()),
            );
        }
        self.job_ids().map(|_| ())
    }
}

/// Container of an attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptContainerDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_instance_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_stream_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<AttemptContainerDetail>,
    /// Epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
}

/// `container` of a JobDetail: the effective container plus run results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpus: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<KeyValuePair>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mount_points: Vec<MountPoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly_root_filesystem: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<Ulimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_instance_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_stream_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_type: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_requirements: Vec<ResourceRequirement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux_parameters: Option<LinuxParameters>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fargate_platform_configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_platform: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_credentials: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_execute_command: Option<bool>,
}

impl ContainerDetail {
    /// The detail of an (effective) container, with no run results yet.
    pub fn from_properties(c: &crate::container::ContainerProperties) -> Self {
        ContainerDetail {
            image: c.image.clone(),
            vcpus: c.vcpus,
            memory: c.memory,
            command: c.command.clone(),
            job_role_arn: c.job_role_arn.clone(),
            execution_role_arn: c.execution_role_arn.clone(),
            volumes: c.volumes.clone(),
            environment: c.environment.clone(),
            mount_points: c.mount_points.clone(),
            readonly_root_filesystem: c.readonly_root_filesystem,
            ulimits: c.ulimits.clone(),
            privileged: c.privileged,
            user: c.user.clone(),
            instance_type: c.instance_type.clone(),
            resource_requirements: c.resource_requirements.clone(),
            linux_parameters: c.linux_parameters.clone(),
            log_configuration: c.log_configuration.clone(),
            secrets: c.secrets.clone(),
            network_configuration: c.network_configuration.clone(),
            fargate_platform_configuration: c.fargate_platform_configuration.clone(),
            ephemeral_storage: c.ephemeral_storage.clone(),
            runtime_platform: c.runtime_platform.clone(),
            repository_credentials: c.repository_credentials.clone(),
            enable_execute_command: c.enable_execute_command,
            ..Default::default()
        }
    }
}

/// `nodeDetails` of one node of a multinode job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_index: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_main_node: Option<bool>,
}

/// `arrayProperties` of a JobDetail: the parent has `statusSummary` and
/// `size`, a child has `index`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArrayPropertiesDetail {
    /// State name → number of children in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_summary: Option<BTreeMap<String, i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<i32>,
}

/// One job in a DescribeJobs response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDetail {
    pub job_arn: String,
    pub job_name: String,
    pub job_id: String,
    /// Queue ARN.
    pub job_queue: String,
    /// One of [`JOB_STATES`].
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_identifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling_priority: Option<i32>,
    /// Always present, as AWS sends it (scripts index it).
    #[serde(default)]
    pub attempts: Vec<AttemptDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_strategy: Option<RetryStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<i64>,
    /// Always present, as AWS sends it (scripts index it).
    #[serde(default)]
    pub depends_on: Vec<JobDependency>,
    /// Job definition ARN.
    pub job_definition: String,
    /// Always present, as AWS sends it (scripts index it).
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_details: Option<NodeDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_properties: Option<NodeProperties>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_properties: Option<ArrayPropertiesDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<JobTimeout>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagate_tags: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platform_capabilities: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_cancelled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_terminated: Option<bool>,
    /// Shoal extension: peak /dev/shm use seen, in MiB.
    #[serde(
        rename = "shmPeakMiB",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub shm_peak_mib: Option<u64>,
    /// Shoal extension: for a job not yet started, when the scheduler's
    /// dry run of its current state starts it (ms since the epoch); absent
    /// when it would not start there (it cannot fit, its queue is
    /// DISABLED, a dependency never ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shoal_estimated_start_at: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeJobsResponse {
    pub jobs: Vec<JobDetail>,
}

// ---------------------------------------------------------------- list

/// `{name, values}` filter of ListJobs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyValuesPair {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub values: Vec<String>,
}

/// A validated ListJobs filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListJobsFilter {
    /// `JOB_NAME`: exact name, or a prefix when the value ends with `*`.
    JobName(String),
    /// `JOB_DEFINITION`: name, name:revision or ARN; a trailing `*` makes
    /// it a prefix.
    JobDefinition(String),
    /// `BEFORE_CREATED_AT`: epoch milliseconds.
    BeforeCreatedAt(i64),
    /// `AFTER_CREATED_AT`: epoch milliseconds.
    AfterCreatedAt(i64),
    /// `SHARE_IDENTIFIER`: exact share identifier, or a prefix when the
    /// value ends with `*`.
    ShareIdentifier(String),
}

/// Which jobs ListJobs lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListJobsScope {
    /// Jobs of this queue (name or ARN, as given).
    Queue(String),
    /// Children of this array job.
    ArrayJob(String),
    /// Nodes of this multinode job.
    MultiNodeJob(String),
}

/// `ListJobs` request. Exactly one of jobQueue, arrayJobId, multiNodeJobId.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListJobsRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_node_job_id: Option<String>,
    /// Unset: RUNNING (AWS default). Ignored when filters are given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_status: Option<String>,
    /// 1–1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub filters: Vec<KeyValuesPair>,
}

impl ListJobsRequest {
    pub fn scope(&self) -> Result<ListJobsScope, ClientError> {
        let given = [
            self.job_queue.is_some(),
            self.array_job_id.is_some(),
            self.multi_node_job_id.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given != 1 {
            return err(
                "jobQueue",
                format!("give exactly one of jobQueue, arrayJobId, multiNodeJobId (got {given})"),
            );
        }
        if let Some(q) = &self.job_queue {
            resource_name_from_ref(ResourceKind::JobQueue, q)?;
            return Ok(ListJobsScope::Queue(q.clone()));
        }
        if let Some(a) = &self.array_job_id {
            let id = resource_name_from_ref(ResourceKind::Job, a)
                .map_err(|e| e.with_field("arrayJobId"))?;
            return Ok(ListJobsScope::ArrayJob(id));
        }
        let m = self.multi_node_job_id.as_deref().unwrap_or_default();
        let id = resource_name_from_ref(ResourceKind::Job, m)
            .map_err(|e| e.with_field("multiNodeJobId"))?;
        Ok(ListJobsScope::MultiNodeJob(id))
    }

    /// The parsed filters.
    pub fn parsed_filters(&self) -> Result<Vec<ListJobsFilter>, ClientError> {
        let mut out = Vec::new();
        for (i, f) in self.filters.iter().enumerate() {
            let field = format!("filters[{i}]");
            let name = f.name.as_deref().unwrap_or("");
            if f.values.len() != 1 {
                return err(
                    join(&field, "values"),
                    format!("give exactly one value (got {})", f.values.len()),
                );
            }
            let v = f.values[0].clone();
            let vf = join(&field, "values[0]");
            let time = |v: &str| {
                v.trim().parse::<i64>().map_err(|_| {
                    ClientError::new(
                        vf.clone(),
                        format!("{v:?} is not a time in epoch milliseconds"),
                    )
                })
            };
            out.push(match name {
                "JOB_NAME" => ListJobsFilter::JobName(v),
                "JOB_DEFINITION" => ListJobsFilter::JobDefinition(v),
                "BEFORE_CREATED_AT" => ListJobsFilter::BeforeCreatedAt(time(&v)?),
                "AFTER_CREATED_AT" => ListJobsFilter::AfterCreatedAt(time(&v)?),
                "SHARE_IDENTIFIER" => ListJobsFilter::ShareIdentifier(v),
                other => {
                    return err(
                        join(&field, "name"),
                        format!(
                            "{other:?} is not one of \"JOB_NAME\", \"JOB_DEFINITION\", \"BEFORE_CREATED_AT\", \"AFTER_CREATED_AT\", \"SHARE_IDENTIFIER\""
                        ),
                    )
                }
            });
        }
        Ok(out)
    }
}

impl Validate for ListJobsRequest {
    fn validate(&self) -> Result<(), ClientError> {
        self.scope()?;
        if let Some(s) = &self.job_status {
            check_one_of("jobStatus", s, &JOB_STATES)?;
        }
        check_max_results("maxResults", self.max_results, 1000)?;
        self.parsed_filters()?;
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSummary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArrayPropertiesSummary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<i32>,
    /// Shoal: an array parent's children by state, added by `shoal jobs
    /// --json` (ListJobs itself leaves it out, as AWS does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_summary: Option<BTreeMap<String, i64>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodePropertiesSummary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_main_node: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_nodes: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_index: Option<i32>,
}

/// One job in a ListJobs response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSummary {
    pub job_arn: String,
    pub job_id: String,
    pub job_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_identifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array_properties: Option<ArrayPropertiesSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_properties: Option<NodePropertiesSummary>,
    /// Job definition ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_definition: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListJobsResponse {
    pub job_summary_list: Vec<JobSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

// ---------------------------------------------------------------- cancel / terminate

/// `CancelJob` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelJobRequest {
    pub job_id: String,
    pub reason: String,
}

/// `TerminateJob` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TerminateJobRequest {
    pub job_id: String,
    pub reason: String,
}

impl CancelJobRequest {
    /// The job id (an ARN reduced to the id).
    pub fn id(&self) -> Result<String, ClientError> {
        resource_name_from_ref(ResourceKind::Job, &self.job_id)
    }
}

impl TerminateJobRequest {
    /// The job id (an ARN reduced to the id).
    pub fn id(&self) -> Result<String, ClientError> {
        resource_name_from_ref(ResourceKind::Job, &self.job_id)
    }
}

impl Validate for CancelJobRequest {
    fn validate(&self) -> Result<(), ClientError> {
        self.id()?;
        check_not_empty("reason", &self.reason)
    }
}

impl Validate for TerminateJobRequest {
    fn validate(&self) -> Result<(), ClientError> {
        self.id()?;
        check_not_empty("reason", &self.reason)
    }
}

/// `{}`: the response of CancelJob, TerminateJob, DeregisterJobDefinition,
/// DeleteComputeEnvironment, DeleteJobQueue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmptyResponse {}

pub type CancelJobResponse = EmptyResponse;
pub type TerminateJobResponse = EmptyResponse;
