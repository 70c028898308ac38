//! Job queues: Create/Update/Delete/DescribeJobQueues.

use crate::arn::{resource_name_from_ref, ResourceKind};
use crate::error::{err, ClientError, Validate};
use crate::util::{check_max_results, check_name, check_one_of, check_range, check_tags, nullable};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `{order, computeEnvironment}`: lower order is tried first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ComputeEnvironmentOrder {
    pub order: i32,
    /// Name or ARN in requests; Shoal answers with the ARN.
    pub compute_environment: String,
}

/// Check a `computeEnvironmentOrder` list: 1–3 entries, orders ≥ 0 and
/// distinct, environments named validly and distinct.
fn check_ce_order(field: &str, list: &[ComputeEnvironmentOrder]) -> Result<(), ClientError> {
    if list.is_empty() || list.len() > 3 {
        return err(
            field,
            format!("give 1 to 3 compute environments (got {})", list.len()),
        );
    }
    let mut names: Vec<String> = Vec::new();
    for (i, o) in list.iter().enumerate() {
        let f = format!("{field}[{i}]");
        if o.order < 0 {
            return err(
                format!("{f}.order"),
                format!("must be 0 or more (got {})", o.order),
            );
        }
        if let Some(j) = list[..i].iter().position(|p| p.order == o.order) {
            return err(
                format!("{f}.order"),
                format!(
                    "order {} is also used by {field}[{j}]; orders must be distinct",
                    o.order
                ),
            );
        }
        let name = resource_name_from_ref(ResourceKind::ComputeEnvironment, &o.compute_environment)
            .map_err(|e| e.with_field(format!("{f}.computeEnvironment")))?;
        if names.contains(&name) {
            return err(
                format!("{f}.computeEnvironment"),
                format!("{name:?} is listed twice"),
            );
        }
        names.push(name);
    }
    Ok(())
}

/// The waiting reasons a `jobStateTimeLimitActions` rule may name (AWS's
/// codes): what Shoal's "why a job waits" maps to.
pub const WAIT_REASON_CODES: [&str; 3] = [
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
    "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
];

/// AWS's limits on `maxTimeSeconds` (the scheduler may lower the minimum
/// for tests: `shoal scheduler --min-state-time-limit-seconds`).
pub const STATE_TIME_LIMIT_MIN_S: i64 = 600;
/// See [`STATE_TIME_LIMIT_MIN_S`].
pub const STATE_TIME_LIMIT_MAX_S: i64 = 86_400;

/// One `jobStateTimeLimitActions` rule: a job at the head of the queue,
/// RUNNABLE for `maxTimeSeconds` for `reason`, is cancelled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobStateTimeLimitAction {
    /// One of [`WAIT_REASON_CODES`].
    pub reason: String,
    /// `RUNNABLE`.
    pub state: String,
    /// 600–86400 seconds.
    pub max_time_seconds: i32,
    /// `CANCEL`.
    pub action: String,
}

/// The statusReason of a job a rule cancelled (AWS's text).
pub fn state_time_limit_reason(code: &str) -> String {
    format!("Canceled by JobStateTimeLimit action due to reason: {code}")
}

/// Check a queue's rules: at most 5, AWS's values; `maxTimeSeconds` from
/// `min_s` (AWS: 600) to 86400.
pub fn check_state_time_limit_actions(
    list: &[JobStateTimeLimitAction],
    min_s: i64,
) -> Result<(), ClientError> {
    let field = "jobStateTimeLimitActions";
    if list.len() > 5 {
        return err(field, format!("{} rules given; the limit is 5", list.len()));
    }
    for (i, a) in list.iter().enumerate() {
        let f = format!("{field}[{i}]");
        check_one_of(&format!("{f}.reason"), &a.reason, &WAIT_REASON_CODES)?;
        check_one_of(&format!("{f}.state"), &a.state, &["RUNNABLE"])?;
        check_one_of(&format!("{f}.action"), &a.action, &["CANCEL"])?;
        check_range(
            &format!("{f}.maxTimeSeconds"),
            a.max_time_seconds.into(),
            min_s,
            STATE_TIME_LIMIT_MAX_S,
        )?;
        if list[..i].iter().any(|o| o.reason == a.reason) {
            return err(
                format!("{f}.reason"),
                format!("{} has a rule already; give one rule per reason", a.reason),
            );
        }
    }
    Ok(())
}

fn check_state(s: &Option<String>) -> Result<(), ClientError> {
    if let Some(s) = s {
        check_one_of("state", s, &["ENABLED", "DISABLED"])?;
    }
    Ok(())
}

/// `CreateJobQueue` request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateJobQueueRequest {
    pub job_queue_name: String,
    /// `ENABLED` (default) or `DISABLED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Accepted and recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling_policy_arn: Option<String>,
    /// 0–1000; higher is scheduled first.
    pub priority: i32,
    pub compute_environment_order: Vec<ComputeEnvironmentOrder>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub tags: BTreeMap<String, String>,
    /// Accepted and recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_state_time_limit_actions: Option<Vec<JobStateTimeLimitAction>>,
}

impl Validate for CreateJobQueueRequest {
    fn validate(&self) -> Result<(), ClientError> {
        check_name("jobQueueName", "job queue name", &self.job_queue_name)?;
        check_state(&self.state)?;
        check_range("priority", self.priority.into(), 0, 1000)?;
        check_ce_order("computeEnvironmentOrder", &self.compute_environment_order)?;
        check_tags("tags", &self.tags)?;
        if let Some(a) = &self.job_state_time_limit_actions {
            check_state_time_limit_actions(a, 1)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateJobQueueResponse {
    pub job_queue_name: String,
    pub job_queue_arn: String,
}

/// `UpdateJobQueue` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateJobQueueRequest {
    /// Name or ARN.
    pub job_queue: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling_policy_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_environment_order: Option<Vec<ComputeEnvironmentOrder>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_state_time_limit_actions: Option<Vec<JobStateTimeLimitAction>>,
}

impl UpdateJobQueueRequest {
    pub fn name(&self) -> Result<String, ClientError> {
        resource_name_from_ref(ResourceKind::JobQueue, &self.job_queue)
    }
}

impl Validate for UpdateJobQueueRequest {
    fn validate(&self) -> Result<(), ClientError> {
        self.name()?;
        check_state(&self.state)?;
        if let Some(p) = self.priority {
            check_range("priority", p.into(), 0, 1000)?;
        }
        if let Some(o) = &self.compute_environment_order {
            check_ce_order("computeEnvironmentOrder", o)?;
        }
        if let Some(a) = &self.job_state_time_limit_actions {
            check_state_time_limit_actions(a, 1)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateJobQueueResponse {
    pub job_queue_name: String,
    pub job_queue_arn: String,
}

/// `DeleteJobQueue` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteJobQueueRequest {
    /// Name or ARN.
    pub job_queue: String,
}

impl DeleteJobQueueRequest {
    pub fn name(&self) -> Result<String, ClientError> {
        resource_name_from_ref(ResourceKind::JobQueue, &self.job_queue)
    }
}

impl Validate for DeleteJobQueueRequest {
    fn validate(&self) -> Result<(), ClientError> {
        self.name().map(|_| ())
    }
}

pub type DeleteJobQueueResponse = crate::job::EmptyResponse;

/// `DescribeJobQueues` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DescribeJobQueuesRequest {
    /// Up to 100 names or ARNs; empty: all.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub job_queues: Vec<String>,
    /// 1–100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

impl DescribeJobQueuesRequest {
    pub fn names(&self) -> Result<Vec<String>, ClientError> {
        self.job_queues
            .iter()
            .enumerate()
            .map(|(i, s)| {
                resource_name_from_ref(ResourceKind::JobQueue, s)
                    .map_err(|e| e.with_field(format!("jobQueues[{i}]")))
            })
            .collect()
    }
}

impl Validate for DescribeJobQueuesRequest {
    fn validate(&self) -> Result<(), ClientError> {
        if self.job_queues.len() > 100 {
            return err(
                "jobQueues",
                format!("{} given; the limit is 100", self.job_queues.len()),
            );
        }
        self.names()?;
        check_max_results("maxResults", self.max_results, 100)
    }
}

/// A job queue as DescribeJobQueues returns it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobQueueDetail {
    pub job_queue_name: String,
    pub job_queue_arn: String,
    /// `ENABLED` / `DISABLED`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling_policy_arn: Option<String>,
    /// `CREATING`, `UPDATING`, `DELETING`, `DELETED`, `VALID`, `INVALID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    pub priority: i32,
    pub compute_environment_order: Vec<ComputeEnvironmentOrder>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_state_time_limit_actions: Option<Vec<JobStateTimeLimitAction>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeJobQueuesResponse {
    pub job_queues: Vec<JobQueueDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `GetJobQueueSnapshot` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetJobQueueSnapshotRequest {
    /// Name or ARN.
    pub job_queue: String,
}

impl GetJobQueueSnapshotRequest {
    pub fn name(&self) -> Result<String, ClientError> {
        resource_name_from_ref(ResourceKind::JobQueue, &self.job_queue)
    }
}

impl Validate for GetJobQueueSnapshotRequest {
    fn validate(&self) -> Result<(), ClientError> {
        self.name().map(|_| ())
    }
}

/// The most jobs `frontOfQueue` lists (AWS's figure).
pub const FRONT_OF_QUEUE_MAX: usize = 100;

/// `GetJobQueueSnapshot` response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetJobQueueSnapshotResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub front_of_queue: Option<FrontOfQueueDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_utilization: Option<QueueSnapshotUtilizationDetail>,
}

/// The first [`FRONT_OF_QUEUE_MAX`] RUNNABLE jobs, in the order the
/// scheduler will start them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FrontOfQueueDetail {
    #[serde(default)]
    pub jobs: Vec<FrontOfQueueJobSummary>,
    /// When the snapshot was computed (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_at: Option<i64>,
}

/// One job of `frontOfQueue`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FrontOfQueueJobSummary {
    pub job_arn: String,
    /// When the job came to its current position (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earliest_time_at_position: Option<i64>,
    /// Shoal extension: when the scheduler's dry run starts it (ms since
    /// the epoch); absent when it would not start (it cannot fit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shoal_estimated_start_at: Option<i64>,
}

/// A queue's capacity in use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueSnapshotUtilizationDetail {
    #[serde(default)]
    pub total_capacity_usage: Vec<QueueSnapshotCapacityUsage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairshare_utilization: Option<FairshareUtilizationDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_at: Option<i64>,
}

/// An amount of capacity (`capacityUnit` is `VCPU` here, as on EC2).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueSnapshotCapacityUsage {
    pub capacity_unit: String,
    pub quantity: f64,
}

/// A fair-share queue's use by share.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FairshareUtilizationDetail {
    /// Shares with running jobs.
    pub active_share_count: i64,
    /// The 20 shares using the most, most first.
    #[serde(default)]
    pub top_capacity_utilization: Vec<FairshareCapacityUtilization>,
}

/// The most shares `topCapacityUtilization` lists (AWS's figure).
pub const TOP_SHARES_MAX: usize = 20;

/// One share's use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FairshareCapacityUtilization {
    pub share_identifier: String,
    #[serde(default)]
    pub capacity_usage: Vec<QueueSnapshotCapacityUsage>,
}
