//! Compute environments: Create/Update/Delete/DescribeComputeEnvironments.
//!
//! Shoal treats MANAGED and UNMANAGED environments alike: a pool of the
//! workers whose labels match the environment's selector. The selector is a
//! Shoal extension carried in the tags: each tag `shoal:label:KEY` = `VALUE`
//! requires worker label KEY=VALUE; with no such tag the environment selects
//! every worker.

use crate::arn::{resource_name_from_ref, ResourceKind};
use crate::error::{err, ClientError, Validate};
use crate::util::{check_max_results, check_name, check_one_of, check_tags, nullable};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Tag-key prefix of Shoal's worker-label selector.
pub const LABEL_TAG_PREFIX: &str = "shoal:label:";

/// The worker-label selector in a tag map (see the module docs).
pub fn selector_from_tags(tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(LABEL_TAG_PREFIX)
                .map(|l| (l.to_string(), v.clone()))
        })
        .collect()
}

fn check_selector_tags(tags: &BTreeMap<String, String>) -> Result<(), ClientError> {
    for k in tags.keys() {
        if let Some(l) = k.strip_prefix(LABEL_TAG_PREFIX) {
            if l.is_empty() {
                return err(
                    format!("tags.{k}"),
                    format!("a selector tag needs a label name after {LABEL_TAG_PREFIX:?}, e.g. \"{LABEL_TAG_PREFIX}rack\""),
                );
            }
        }
    }
    Ok(())
}

fn check_state(field: &str, s: &Option<String>) -> Result<(), ClientError> {
    if let Some(s) = s {
        check_one_of(field, s, &["ENABLED", "DISABLED"])?;
    }
    Ok(())
}

fn check_unmanaged_vcpus(v: Option<i32>) -> Result<(), ClientError> {
    if let Some(v) = v {
        if v < 0 {
            return err("unmanagedvCpus", format!("must be 0 or more (got {v})"));
        }
    }
    Ok(())
}

/// `CreateComputeEnvironment` request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateComputeEnvironmentRequest {
    pub compute_environment_name: String,
    /// JSON `type`: `MANAGED` or `UNMANAGED` (same to Shoal).
    #[serde(rename = "type")]
    pub kind: String,
    /// `ENABLED` (default) or `DISABLED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(
        rename = "unmanagedvCpus",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub unmanaged_vcpus: Option<i32>,
    /// Accepted and recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_resources: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_role: Option<String>,
    /// Tags; `shoal:label:KEY` tags form the worker selector.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub tags: BTreeMap<String, String>,
    /// Accepted and recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eks_configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

impl CreateComputeEnvironmentRequest {
    /// Worker labels this environment requires (empty: all workers).
    pub fn selector(&self) -> BTreeMap<String, String> {
        selector_from_tags(&self.tags)
    }
}

impl Validate for CreateComputeEnvironmentRequest {
    fn validate(&self) -> Result<(), ClientError> {
        check_name(
            "computeEnvironmentName",
            "compute environment name",
            &self.compute_environment_name,
        )?;
        check_one_of("type", &self.kind, &["MANAGED", "UNMANAGED"])?;
        check_state("state", &self.state)?;
        check_unmanaged_vcpus(self.unmanaged_vcpus)?;
        check_tags("tags", &self.tags)?;
        check_selector_tags(&self.tags)?;
        self.managed()?;
        Ok(())
    }
}

impl CreateComputeEnvironmentRequest {
    /// The environment's provider and capacity (None: a pool of the
    /// workers that register).
    pub fn managed(&self) -> Result<Option<crate::managed::ManagedSpec>, ClientError> {
        crate::managed::resolve(&self.kind, self.compute_resources.as_ref(), &self.tags)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateComputeEnvironmentResponse {
    pub compute_environment_name: String,
    pub compute_environment_arn: String,
}

/// `UpdateComputeEnvironment` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateComputeEnvironmentRequest {
    /// Name or ARN.
    pub compute_environment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(
        rename = "unmanagedvCpus",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub unmanaged_vcpus: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_resources: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_policy: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

impl UpdateComputeEnvironmentRequest {
    /// The environment's name.
    pub fn name(&self) -> Result<String, ClientError> {
        resource_name_from_ref(ResourceKind::ComputeEnvironment, &self.compute_environment)
    }
}

impl Validate for UpdateComputeEnvironmentRequest {
    fn validate(&self) -> Result<(), ClientError> {
        self.name()?;
        check_state("state", &self.state)?;
        check_unmanaged_vcpus(self.unmanaged_vcpus)?;
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateComputeEnvironmentResponse {
    pub compute_environment_name: String,
    pub compute_environment_arn: String,
}

/// `DeleteComputeEnvironment` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteComputeEnvironmentRequest {
    /// Name or ARN.
    pub compute_environment: String,
}

impl DeleteComputeEnvironmentRequest {
    pub fn name(&self) -> Result<String, ClientError> {
        resource_name_from_ref(ResourceKind::ComputeEnvironment, &self.compute_environment)
    }
}

impl Validate for DeleteComputeEnvironmentRequest {
    fn validate(&self) -> Result<(), ClientError> {
        self.name().map(|_| ())
    }
}

/// `DescribeComputeEnvironments` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DescribeComputeEnvironmentsRequest {
    /// Up to 100 names or ARNs; empty: all.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub compute_environments: Vec<String>,
    /// 1–100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

impl DescribeComputeEnvironmentsRequest {
    /// The names asked for.
    pub fn names(&self) -> Result<Vec<String>, ClientError> {
        self.compute_environments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                resource_name_from_ref(ResourceKind::ComputeEnvironment, s)
                    .map_err(|e| e.with_field(format!("computeEnvironments[{i}]")))
            })
            .collect()
    }
}

impl Validate for DescribeComputeEnvironmentsRequest {
    fn validate(&self) -> Result<(), ClientError> {
        if self.compute_environments.len() > 100 {
            return err(
                "computeEnvironments",
                format!(
                    "{} given; the limit is 100",
                    self.compute_environments.len()
                ),
            );
        }
        self.names()?;
        check_max_results("maxResults", self.max_results, 100)
    }
}

/// A compute environment as DescribeComputeEnvironments returns it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComputeEnvironmentDetail {
    pub compute_environment_name: String,
    pub compute_environment_arn: String,
    #[serde(
        rename = "unmanagedvCpus",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub unmanaged_vcpus: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecs_cluster_arn: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// JSON `type`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `ENABLED` / `DISABLED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// `CREATING`, `UPDATING`, `DELETING`, `DELETED`, `VALID`, `INVALID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_resources: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_policy: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eks_configuration: Option<Value>,
    /// `ECS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_orchestration_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// Shoal: a MANAGED environment's allocations (Slurm jobs) now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allocations: Vec<crate::managed::AllocationDetail>,
}

impl ComputeEnvironmentDetail {
    /// Worker labels this environment requires (empty: all workers).
    pub fn selector(&self) -> BTreeMap<String, String> {
        selector_from_tags(&self.tags)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeComputeEnvironmentsResponse {
    pub compute_environments: Vec<ComputeEnvironmentDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

pub type DeleteComputeEnvironmentResponse = crate::job::EmptyResponse;
