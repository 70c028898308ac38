//! Job definitions: RegisterJobDefinition, DescribeJobDefinitions,
//! DeregisterJobDefinition, and the pieces they share with SubmitJob
//! (retry strategy, timeout, node ranges).

use crate::arn::{parse_job_definition_ref, ArnScope, DefinitionRef};
use crate::container::ContainerProperties;
use crate::error::{err, ClientError, Validate};
use crate::util::{
    check_command, check_max_results, check_name, check_one_of, check_parameters, check_range,
    check_tags, join, nullable,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Most nodes a multinode job may have.
pub const MAX_NUM_NODES: i32 = 1000;

// ---------------------------------------------------------------- nodes

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeRangeProperty {
    /// `"0:"`, `":3"`, `"1:3"`, `":"` or `"2"`; inclusive, open ends mean
    /// node 0 / node numNodes-1. See [`TargetNodes`].
    pub target_nodes: String,
    /// Required by Shoal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerProperties>,
    /// Accepted and recorded.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub instance_types: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeProperties {
    /// 1..=1000.
    pub num_nodes: i32,
    /// 0 <= mainNode < numNodes.
    pub main_node: i32,
    pub node_range_properties: Vec<NodeRangeProperty>,
}

/// A parsed `targetNodes` range. `None` ends are open: start 0, end
/// numNodes-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetNodes {
    pub start: Option<u32>,
    pub end: Option<u32>,
}

impl TargetNodes {
    /// Parse `"a:b"`, `"a:"`, `":b"`, `":"` or `"n"`.
    pub fn parse(field: &str, s: &str) -> Result<TargetNodes, ClientError> {
        let num = |part: &str| -> Result<Option<u32>, ClientError> {
            if part.is_empty() {
                return Ok(None);
            }
            if !part.bytes().all(|b| b.is_ascii_digit()) || part.len() > 9 {
                return err(
                    field,
                    format!(
                        "{s:?} is not a node range; use \"N\", \"A:B\", \"A:\", \":B\" or \":\" with node indices"
                    ),
                );
            }
            Ok(Some(part.parse::<u32>().unwrap_or(u32::MAX)))
        };
        let t = match s.split_once(':') {
            Some((a, b)) => TargetNodes {
                start: num(a)?,
                end: num(b)?,
            },
            None => {
                if s.is_empty() {
                    return err(field, "must not be empty; use e.g. \"0:\" for all nodes");
                }
                let n = num(s)?;
                TargetNodes { start: n, end: n }
            }
        };
        if let (Some(a), Some(b)) = (t.start, t.end) {
            if a > b {
                return err(field, format!("{s:?} starts after it ends"));
            }
        }
        Ok(t)
    }

    /// Inclusive node range for a job of `num_nodes` nodes (≥ 1).
    pub fn resolve(&self, num_nodes: u32) -> (u32, u32) {
        (
            self.start.unwrap_or(0),
            self.end.unwrap_or(num_nodes.saturating_sub(1)),
        )
    }

    /// Whether the upper end is open (`"n:"` or `":"`).
    pub fn is_open_ended(&self) -> bool {
        self.end.is_none()
    }

    pub fn contains(&self, node: u32, num_nodes: u32) -> bool {
        let (a, b) = self.resolve(num_nodes);
        a <= node && node <= b
    }
}

fn fmt_nodes(segments: &[(u32, u32)]) -> String {
    let parts: Vec<String> = segments
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}..{b}")
            }
        })
        .collect();
    let noun = if segments.len() == 1 { "node" } else { "nodes" };
    format!("{noun} {}", parts.join(", "))
}

/// Check a list of `targetNodes` (`list_field` is the list's path, e.g.
/// `nodeProperties.nodeRangeProperties`; each entry's field is
/// `{list_field}[i].targetNodes`) against `num_nodes`: every range within
/// 0..num_nodes-1, no node in two ranges, and, if `full`, every node in
/// one range. `count_desc` says where num_nodes came from (for messages).
/// Returns, per node, the index of the range that covers it.
pub(crate) fn check_ranges(
    list_field: &str,
    targets: &[&str],
    num_nodes: u32,
    full: bool,
    count_desc: &str,
) -> Result<Vec<Option<usize>>, ClientError> {
    let mut owner: Vec<Option<usize>> = vec![None; num_nodes as usize];
    let last = num_nodes.saturating_sub(1);
    for (i, raw) in targets.iter().enumerate() {
        let field = format!("{list_field}[{i}].targetNodes");
        let t = TargetNodes::parse(&field, raw)?;
        if let Some(a) = t.start {
            if a >= num_nodes {
                return err(
                    field,
                    format!(
                        "{raw:?} starts at node {a} but {count_desc} is {num_nodes} (nodes 0..{last})"
                    ),
                );
            }
        }
        if let Some(b) = t.end {
            if b >= num_nodes {
                return err(
                    field,
                    format!(
                        "{raw:?} ends at node {b} but {count_desc} is {num_nodes} (nodes 0..{last}); use \"{}:\" to run to the last node",
                        t.start.unwrap_or(0)
                    ),
                );
            }
        }
        let (a, b) = t.resolve(num_nodes);
        for n in a..=b {
            if let Some(j) = owner[n as usize] {
                return err(
                    field,
                    format!(
                        "{raw:?} overlaps {:?} ({list_field}[{j}].targetNodes) at node {n}; each node must be in exactly one range",
                        targets[j]
                    ),
                );
            }
            owner[n as usize] = Some(i);
        }
    }
    if full {
        let mut gaps: Vec<(u32, u32)> = Vec::new();
        for (n, o) in owner.iter().enumerate() {
            if o.is_none() {
                let n = n as u32;
                match gaps.last_mut() {
                    Some((_, e)) if *e + 1 == n => *e = n,
                    _ => gaps.push((n, n)),
                }
            }
        }
        if !gaps.is_empty() {
            let list = targets
                .iter()
                .map(|t| format!("{t:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            return err(
                list_field,
                format!(
                    "targetNodes {list} leaves {} without a container; every node 0..{last} ({count_desc} {num_nodes}) must be in exactly one range",
                    fmt_nodes(&gaps)
                ),
            );
        }
    }
    Ok(owner)
}

impl NodeProperties {
    pub fn validate_at(&self, prefix: &str) -> Result<(), ClientError> {
        let nf = join(prefix, "numNodes");
        if self.num_nodes < 1 {
            return err(nf, format!("must be at least 1 (got {})", self.num_nodes));
        }
        if self.num_nodes > MAX_NUM_NODES {
            return err(
                nf,
                format!(
                    "Shoal runs at most {MAX_NUM_NODES} nodes per job (got {})",
                    self.num_nodes
                ),
            );
        }
        if self.main_node < 0 || self.main_node >= self.num_nodes {
            return err(
                join(prefix, "mainNode"),
                format!(
                    "{} is not a node index; numNodes is {}, so mainNode must be 0..{}",
                    self.main_node,
                    self.num_nodes,
                    self.num_nodes - 1
                ),
            );
        }
        let lf = join(prefix, "nodeRangeProperties");
        if self.node_range_properties.is_empty() {
            return err(
                lf,
                "at least one node range is required, e.g. {\"targetNodes\": \"0:\", \"container\": {...}}",
            );
        }
        for (i, r) in self.node_range_properties.iter().enumerate() {
            let cf = format!("{lf}[{i}].container");
            match &r.container {
                None => return err(cf, "required: the container the nodes of this range run"),
                Some(c) => c.validate_at(&cf)?,
            }
        }
        let targets: Vec<&str> = self
            .node_range_properties
            .iter()
            .map(|r| r.target_nodes.as_str())
            .collect();
        check_ranges(&lf, &targets, self.num_nodes as u32, true, "numNodes")?;
        Ok(())
    }
}

// ---------------------------------------------------------------- retry

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EvaluateOnExit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_status_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_exit_code: Option<String>,
    /// `RETRY` or `EXIT`, case-insensitive.
    pub action: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryStrategy {
    /// 1–10. Unset: 1 (no retries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i32>,
    /// At most 5.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub evaluate_on_exit: Vec<EvaluateOnExit>,
}

/// What to do with a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAction {
    Retry,
    Exit,
}

fn glob_matches(pattern: &str, value: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => pattern == value,
    }
}

impl RetryStrategy {
    /// Total attempts allowed (1 when unset), clamped to 1..=10.
    pub fn max_attempts(&self) -> u32 {
        self.attempts.unwrap_or(1).clamp(1, 10) as u32
    }

    /// AWS `evaluateOnExit` semantics: the first entry all of whose given
    /// conditions match decides (patterns are exact, or prefix matches when
    /// they end in `*`); if none matches, the action is `Retry`. The caller
    /// still checks that attempts are left.
    pub fn on_exit(
        &self,
        exit_code: Option<i32>,
        reason: Option<&str>,
        status_reason: Option<&str>,
    ) -> RetryAction {
        let code = exit_code.map(|c| c.to_string());
        for e in &self.evaluate_on_exit {
            let ok = |pat: &Option<String>, val: Option<&str>| match pat {
                None => true,
                Some(p) => val.is_some_and(|v| glob_matches(p, v)),
            };
            if ok(&e.on_exit_code, code.as_deref())
                && ok(&e.on_reason, reason)
                && ok(&e.on_status_reason, status_reason)
            {
                return if e.action.eq_ignore_ascii_case("EXIT") {
                    RetryAction::Exit
                } else {
                    RetryAction::Retry
                };
            }
        }
        RetryAction::Retry
    }

    pub fn validate_at(&self, prefix: &str) -> Result<(), ClientError> {
        if let Some(a) = self.attempts {
            check_range(&join(prefix, "attempts"), a.into(), 1, 10)?;
        }
        if self.evaluate_on_exit.len() > 5 {
            return err(
                join(prefix, "evaluateOnExit"),
                format!(
                    "{} entries given; the limit is 5",
                    self.evaluate_on_exit.len()
                ),
            );
        }
        for (i, e) in self.evaluate_on_exit.iter().enumerate() {
            let f = join(prefix, &format!("evaluateOnExit[{i}]"));
            if !(e.action.eq_ignore_ascii_case("RETRY") || e.action.eq_ignore_ascii_case("EXIT")) {
                return err(
                    join(&f, "action"),
                    format!("{:?} is not one of \"RETRY\", \"EXIT\"", e.action),
                );
            }
            if let Some(c) = &e.on_exit_code {
                let body = c.strip_suffix('*').unwrap_or(c);
                if c.is_empty() || c.len() > 512 || !body.bytes().all(|b| b.is_ascii_digit()) {
                    return err(
                        join(&f, "onExitCode"),
                        format!("{c:?} must be up to 512 digits, optionally ending with *"),
                    );
                }
            }
            for (name, v) in [
                ("onReason", &e.on_reason),
                ("onStatusReason", &e.on_status_reason),
            ] {
                if let Some(p) = v {
                    let body = p.strip_suffix('*').unwrap_or(p);
                    let ok_chars = body.chars().all(|c| {
                        c.is_ascii_alphanumeric() || c == '.' || c == ':' || c == ' ' || c == '\t'
                    });
                    if p.is_empty() || p.chars().count() > 512 || !ok_chars {
                        return err(
                            join(&f, name),
                            format!(
                                "{p:?} must be up to 512 letters, digits, periods, colons and white space, optionally ending with *"
                            ),
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobTimeout {
    /// Seconds, at least 60.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_duration_seconds: Option<i32>,
}

impl JobTimeout {
    pub fn validate_at(&self, prefix: &str) -> Result<(), ClientError> {
        if let Some(s) = self.attempt_duration_seconds {
            if s < 60 {
                return err(
                    join(prefix, "attemptDurationSeconds"),
                    format!("must be at least 60 seconds (got {s})"),
                );
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- register

/// `RegisterJobDefinition` request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterJobDefinitionRequest {
    pub job_definition_name: String,
    /// JSON `type`: `"container"` or `"multinode"`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub parameters: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling_priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_properties: Option<ContainerProperties>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_properties: Option<NodeProperties>,
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
    /// Only `EC2` is accepted.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub platform_capabilities: Vec<String>,
}

pub(crate) fn check_platform_capabilities(field: &str, caps: &[String]) -> Result<(), ClientError> {
    for (i, c) in caps.iter().enumerate() {
        if c != "EC2" {
            return err(
                format!("{field}[{i}]"),
                format!("{c:?} is not supported by Shoal; only \"EC2\" is"),
            );
        }
    }
    Ok(())
}

pub(crate) fn check_scheduling_priority(field: &str, p: Option<i32>) -> Result<(), ClientError> {
    if let Some(p) = p {
        check_range(field, p.into(), 0, 9999)?;
    }
    Ok(())
}

impl Validate for RegisterJobDefinitionRequest {
    fn validate(&self) -> Result<(), ClientError> {
        check_name(
            "jobDefinitionName",
            "job definition name",
            &self.job_definition_name,
        )?;
        check_one_of("type", &self.kind, &["container", "multinode"])?;
        match self.kind.as_str() {
            "container" => {
                if self.node_properties.is_some() {
                    return err(
                        "nodeProperties",
                        "not allowed when type is \"container\"; use type \"multinode\" for multi-node jobs",
                    );
                }
                match &self.container_properties {
                    None => {
                        return err("containerProperties", "required when type is \"container\"")
                    }
                    Some(c) => c.validate_at("containerProperties")?,
                }
            }
            _ => {
                if self.container_properties.is_some() {
                    return err(
                        "containerProperties",
                        "not allowed when type is \"multinode\"; put the container in nodeProperties.nodeRangeProperties[].container",
                    );
                }
                match &self.node_properties {
                    None => return err("nodeProperties", "required when type is \"multinode\""),
                    Some(n) => n.validate_at("nodeProperties")?,
                }
            }
        }
        check_parameters("parameters", &self.parameters)?;
        if let Some(r) = &self.retry_strategy {
            r.validate_at("retryStrategy")?;
        }
        if let Some(t) = &self.timeout {
            t.validate_at("timeout")?;
        }
        check_scheduling_priority("schedulingPriority", self.scheduling_priority)?;
        check_tags("tags", &self.tags)?;
        check_platform_capabilities("platformCapabilities", &self.platform_capabilities)?;
        // Last, so that every other rule speaks first: a command to run.
        if let Some(c) = &self.container_properties {
            check_command("containerProperties.command", &c.command)?;
        }
        for (i, r) in self
            .node_properties
            .iter()
            .flat_map(|n| n.node_range_properties.iter().enumerate())
        {
            if let Some(c) = &r.container {
                let f = format!("nodeProperties.nodeRangeProperties[{i}].container.command");
                check_command(&f, &c.command)?;
            }
        }
        Ok(())
    }
}

/// A registered job definition revision: what Shoal stores and what
/// DescribeJobDefinitions returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDefinition {
    pub job_definition_name: String,
    pub job_definition_arn: String,
    pub revision: i32,
    /// `ACTIVE` or `INACTIVE`.
    pub status: String,
    /// JSON `type`: `container` or `multinode`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling_priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_properties: Option<ContainerProperties>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_properties: Option<NodeProperties>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_strategy: Option<RetryStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<JobTimeout>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagate_tags: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platform_capabilities: Vec<String>,
    /// Always `ECS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_orchestration_type: Option<String>,
}

impl JobDefinition {
    /// The definition that registering `req` as revision `revision` makes
    /// (status `ACTIVE`; `platformCapabilities` defaults to `["EC2"]`).
    pub fn from_request(
        req: &RegisterJobDefinitionRequest,
        scope: &ArnScope,
        revision: i32,
    ) -> Self {
        let platform_capabilities = if req.platform_capabilities.is_empty() {
            vec!["EC2".to_string()]
        } else {
            req.platform_capabilities.clone()
        };
        JobDefinition {
            job_definition_name: req.job_definition_name.clone(),
            job_definition_arn: scope.job_definition_arn(&req.job_definition_name, revision),
            revision,
            status: "ACTIVE".to_string(),
            kind: req.kind.clone(),
            parameters: req.parameters.clone(),
            scheduling_priority: req.scheduling_priority,
            container_properties: req.container_properties.clone(),
            node_properties: req.node_properties.clone(),
            retry_strategy: req.retry_strategy.clone(),
            timeout: req.timeout.clone(),
            tags: req.tags.clone(),
            propagate_tags: req.propagate_tags,
            platform_capabilities,
            container_orchestration_type: Some("ECS".to_string()),
        }
    }

    pub fn is_multinode(&self) -> bool {
        self.kind == "multinode"
    }

    pub fn is_active(&self) -> bool {
        self.status == "ACTIVE"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterJobDefinitionResponse {
    pub job_definition_name: String,
    pub job_definition_arn: String,
    pub revision: i32,
}

// ---------------------------------------------------------------- describe / deregister

/// `DescribeJobDefinitions` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DescribeJobDefinitionsRequest {
    /// Up to 100 of `name`, `name:revision` or ARN; not with
    /// `jobDefinitionName` or `status`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub job_definitions: Vec<String>,
    /// 1–100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_definition_name: Option<String>,
    /// `ACTIVE` or `INACTIVE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

impl DescribeJobDefinitionsRequest {
    /// The parsed `jobDefinitions` (call after `validate`).
    pub fn refs(&self) -> Result<Vec<DefinitionRef>, ClientError> {
        self.job_definitions
            .iter()
            .enumerate()
            .map(|(i, s)| {
                parse_job_definition_ref(s)
                    .map_err(|e| e.with_field(format!("jobDefinitions[{i}]")))
            })
            .collect()
    }
}

impl Validate for DescribeJobDefinitionsRequest {
    fn validate(&self) -> Result<(), ClientError> {
        if self.job_definitions.len() > 100 {
            return err(
                "jobDefinitions",
                format!("{} given; the limit is 100", self.job_definitions.len()),
            );
        }
        self.refs()?;
        if !self.job_definitions.is_empty() {
            if self.job_definition_name.is_some() {
                return err(
                    "jobDefinitionName",
                    "cannot be combined with jobDefinitions; give one or the other",
                );
            }
            if self.status.is_some() {
                return err("status", "cannot be combined with jobDefinitions");
            }
        }
        if let Some(n) = &self.job_definition_name {
            check_name("jobDefinitionName", "job definition name", n)?;
        }
        if let Some(s) = &self.status {
            check_one_of("status", s, &["ACTIVE", "INACTIVE"])?;
        }
        check_max_results("maxResults", self.max_results, 100)?;
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeJobDefinitionsResponse {
    pub job_definitions: Vec<JobDefinition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `DeregisterJobDefinition` request: `name:revision` or ARN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeregisterJobDefinitionRequest {
    pub job_definition: String,
}

impl DeregisterJobDefinitionRequest {
    /// The (name, revision) to deregister (call after `validate`).
    pub fn target(&self) -> Result<(String, i32), ClientError> {
        match parse_job_definition_ref(&self.job_definition)? {
            DefinitionRef::NameRev(n, r) => Ok((n, r)),
            DefinitionRef::Name(n) => err(
                "jobDefinition",
                format!("{n:?} has no revision; give \"{n}:REVISION\" or the full ARN"),
            ),
        }
    }
}

impl Validate for DeregisterJobDefinitionRequest {
    fn validate(&self) -> Result<(), ClientError> {
        self.target().map(|_| ())
    }
}
