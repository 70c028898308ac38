//! Job semantics the scheduler needs: parameter substitution, overrides,
//! the container each node runs, and its resource demand.

use crate::container::{parse_requirement, ContainerProperties, Requirement};
use crate::definition::{
    check_ranges, JobDefinition, JobTimeout, NodeRangeProperty, RetryStrategy, TargetNodes,
};
use crate::error::{err, ClientError, Validate};
use crate::job::{ContainerOverrides, Dependency, SubmitJobRequest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// vCPUs of a container that sets none.
pub const DEFAULT_VCPUS: u32 = 1;
/// Memory (MiB) of a container that sets none.
pub const DEFAULT_MEMORY_MIB: u64 = 2048;
/// /dev/shm (MiB) of a container without `linuxParameters.sharedMemorySize`:
/// Docker's default.
pub const DEFAULT_SHM_MIB: u64 = 64;

/// Replace `Ref::NAME` placeholders in each argument with `params[NAME]`.
///
/// NAME is the longest run of `[A-Za-z0-9_-]` after `Ref::`; a placeholder
/// may sit anywhere inside an argument (`--in=Ref::input` works). A NAME
/// not in `params` is left as written. Substituted values are not scanned
/// again.
pub fn substitute(command: &[String], params: &BTreeMap<String, String>) -> Vec<String> {
    command.iter().map(|a| substitute_one(a, params)).collect()
}

fn substitute_one(arg: &str, params: &BTreeMap<String, String>) -> String {
    const MARK: &str = "Ref::";
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(i) = rest.find(MARK) {
        out.push_str(&rest[..i]);
        let after = &rest[i + MARK.len()..];
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(after.len());
        let name = &after[..len];
        match params.get(name) {
            Some(v) if !name.is_empty() => out.push_str(v),
            _ => {
                out.push_str(MARK);
                out.push_str(name);
            }
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// The definition's default parameters overridden by the submission's.
pub fn merged_parameters(def: &JobDefinition, req: &SubmitJobRequest) -> BTreeMap<String, String> {
    let mut p = def.parameters.clone();
    p.extend(req.parameters.iter().map(|(k, v)| (k.clone(), v.clone())));
    p
}

/// Resources one node of a job asks for: Shoal's one resource type.
pub use shoal_core::Resources;

/// The demand of a container: `VCPU` requirement, else legacy `vcpus`,
/// else [`DEFAULT_VCPUS`] (1); `MEMORY` requirement, else legacy `memory`,
/// else [`DEFAULT_MEMORY_MIB`] (2048; /dev/shm pages count against it);
/// `linuxParameters.sharedMemorySize`, else [`DEFAULT_SHM_MIB`] (64).
/// Values that validation would reject count as unset.
pub fn node_demand(c: &ContainerProperties) -> Resources {
    let mut vcpus = None;
    let mut memory = None;
    for rr in &c.resource_requirements {
        match parse_requirement("", rr) {
            Ok(Requirement::Vcpu(v)) => vcpus = Some(v),
            Ok(Requirement::MemoryMib(m)) => memory = Some(m),
            Err(_) => {}
        }
    }
    let vcpus = vcpus
        .or_else(|| c.vcpus.filter(|v| *v > 0).map(|v| v as u32))
        .unwrap_or(DEFAULT_VCPUS);
    let memory_mib = memory
        .or_else(|| c.memory.filter(|m| *m > 0).map(|m| m as u64))
        .unwrap_or(DEFAULT_MEMORY_MIB);
    let shm_mib = c
        .linux_parameters
        .as_ref()
        .and_then(|l| l.shared_memory_size)
        .filter(|s| *s > 0)
        .map(|s| s as u64)
        .unwrap_or(DEFAULT_SHM_MIB);
    Resources {
        vcpus,
        memory_mib,
        shm_mib,
    }
}

/// Apply SubmitJob `containerOverrides` to a container: `command` (when
/// non-empty) and `instanceType` replace; `environment` entries replace the
/// variable of the same name or are added; a `resourceRequirements` entry
/// replaces the requirement of its type (legacy field included), and legacy
/// `vcpus`/`memory` replace both forms likewise.
pub fn apply_overrides(base: &mut ContainerProperties, o: &ContainerOverrides) {
    if let Some(cmd) = &o.command {
        if !cmd.is_empty() {
            base.command = cmd.clone();
        }
    }
    if let Some(t) = &o.instance_type {
        base.instance_type = Some(t.clone());
    }
    for kv in &o.environment {
        match base.environment.iter_mut().find(|e| e.name == kv.name) {
            Some(e) => e.value = kv.value.clone(),
            None => base.environment.push(kv.clone()),
        }
    }
    for rr in &o.resource_requirements {
        base.resource_requirements.retain(|b| b.kind != rr.kind);
        match rr.kind.as_str() {
            "VCPU" => base.vcpus = None,
            "MEMORY" => base.memory = None,
            _ => {}
        }
        base.resource_requirements.push(rr.clone());
    }
    if let Some(v) = o.vcpus {
        base.resource_requirements.retain(|b| b.kind != "VCPU");
        base.vcpus = Some(v);
    }
    if let Some(m) = o.memory {
        base.resource_requirements.retain(|b| b.kind != "MEMORY");
        base.memory = Some(m);
    }
}

/// Node layout of a submission: node count, main node, and for each node
/// the definition range and (if any) the override that applies.
struct Plan<'a> {
    num_nodes: u32,
    main_node: u32,
    /// Per node: the container before overrides.
    base: Vec<&'a ContainerProperties>,
    /// Per node: the overrides to apply.
    overrides: Vec<Option<&'a ContainerOverrides>>,
}

fn plan<'a>(def: &'a JobDefinition, req: &'a SubmitJobRequest) -> Result<Plan<'a>, ClientError> {
    if !def.is_multinode() {
        if req.node_overrides.is_some() {
            return err(
                "nodeOverrides",
                format!(
                    "only for multinode job definitions; {:?} is of type {:?}, use containerOverrides",
                    def.job_definition_name, def.kind
                ),
            );
        }
        let Some(c) = def.container_properties.as_ref() else {
            return err(
                "jobDefinition",
                format!(
                    "{:?} has no containerProperties; register it again with a container",
                    def.job_definition_arn
                ),
            );
        };
        return Ok(Plan {
            num_nodes: 1,
            main_node: 0,
            base: vec![c],
            overrides: vec![req.container_overrides.as_ref()],
        });
    }
    if req.container_overrides.is_some() {
        return err(
            "containerOverrides",
            "not allowed for multinode job definitions; use nodeOverrides.nodePropertyOverrides with targetNodes",
        );
    }
    if req.array_properties.is_some() {
        return err(
            "arrayProperties",
            "multinode jobs cannot be array jobs; submit one multinode job per element instead",
        );
    }
    let Some(np) = def.node_properties.as_ref() else {
        return err(
            "jobDefinition",
            format!("{:?} has no nodeProperties", def.job_definition_arn),
        );
    };
    let def_num = np.num_nodes.max(1) as u32;
    let over = req.node_overrides.as_ref();
    let num_override = over.and_then(|o| o.num_nodes);
    let num_nodes = num_override.map(|n| n.max(1) as u32).unwrap_or(def_num);
    let main_node = np.main_node.max(0) as u32;
    let targets: Vec<&str> = np
        .node_range_properties
        .iter()
        .map(|r| r.target_nodes.as_str())
        .collect();
    if num_nodes != def_num {
        let open = targets.iter().any(|t| {
            TargetNodes::parse("", t)
                .map(|t| t.is_open_ended())
                .unwrap_or(false)
        });
        if !open {
            let list = targets
                .iter()
                .map(|t| format!("{t:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            return err(
                "nodeOverrides.numNodes",
                format!(
                    "numNodes can only be overridden when a node range of the job definition is open-ended (like \"0:\" or \"1:\"); its targetNodes are {list}"
                ),
            );
        }
        if main_node >= num_nodes {
            return err(
                "nodeOverrides.numNodes",
                format!(
                    "{num_nodes} nodes leave out the job definition's mainNode {main_node}; give at least {}",
                    main_node + 1
                ),
            );
        }
    }
    let owners = check_ranges(
        "nodeProperties.nodeRangeProperties",
        &targets,
        num_nodes,
        true,
        "numNodes",
    )
    .map_err(|e| {
        if num_nodes != def_num {
            ClientError::new(
                "nodeOverrides.numNodes",
                format!(
                    "with numNodes {num_nodes}, the job definition's {}: {}",
                    e.field, e.message
                ),
            )
        } else {
            e
        }
    })?;
    let mut base = Vec::with_capacity(num_nodes as usize);
    for (n, o) in owners.iter().enumerate() {
        let r = o.and_then(|i| np.node_range_properties[i].container.as_ref());
        match r {
            Some(c) => base.push(c),
            None => {
                return err(
                    "jobDefinition",
                    format!("node {n} of {:?} has no container", def.job_definition_arn),
                )
            }
        }
    }
    let mut overrides = vec![None; num_nodes as usize];
    if let Some(o) = over {
        let ot: Vec<&str> = o
            .node_property_overrides
            .iter()
            .map(|p| p.target_nodes.as_str())
            .collect();
        let owners = check_ranges(
            "nodeOverrides.nodePropertyOverrides",
            &ot,
            num_nodes,
            false,
            "numNodes",
        )?;
        for (n, w) in owners.iter().enumerate() {
            if let Some(i) = w {
                overrides[n] = o.node_property_overrides[*i].container_overrides.as_ref();
            }
        }
    }
    Ok(Plan {
        num_nodes,
        main_node,
        base,
        overrides,
    })
}

fn build_container(
    base: &ContainerProperties,
    o: Option<&ContainerOverrides>,
    params: &BTreeMap<String, String>,
) -> ContainerProperties {
    let mut c = base.clone();
    if let Some(o) = o {
        apply_overrides(&mut c, o);
    }
    c.command = substitute(&c.command, params);
    c
}

/// The container node `node_index` of a submission runs: the definition's
/// container (for multinode, the `nodeRangeProperties` entry covering the
/// node, with `nodeOverrides.numNodes` applied) with overrides applied
/// (`containerOverrides`, or the `nodePropertyOverrides` entry covering
/// the node) and parameters substituted in `command`. Single-node jobs
/// have node 0 only.
pub fn effective_container(
    def: &JobDefinition,
    node_index: u32,
    req: &SubmitJobRequest,
) -> Result<ContainerProperties, ClientError> {
    let p = plan(def, req)?;
    if node_index >= p.num_nodes {
        return err(
            "nodeIndex",
            format!(
                "node {node_index} does not exist; the job has {} node(s)",
                p.num_nodes
            ),
        );
    }
    let params = merged_parameters(def, req);
    let i = node_index as usize;
    Ok(build_container(p.base[i], p.overrides[i], &params))
}

/// One node of a resolved submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedNode {
    #[serde(default)]
    pub index: u32,
    /// Effective container: overrides applied, parameters substituted.
    pub container: ContainerProperties,
    pub demand: Resources,
    /// What its worker needs to run it (records stored before launch
    /// specs have none: the scheduler resolves it when it loads them).
    #[serde(default)]
    pub launch: crate::launch::LaunchSpec,
}

/// Everything the scheduler needs from a valid submission; the scheduler
/// stores it with the job (the fields marked `default` are missing from
/// records of older versions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolvedJob {
    /// Whether the definition is `multinode`.
    pub multinode: bool,
    /// 1 for single-node jobs.
    pub num_nodes: u32,
    /// 0 for single-node jobs.
    pub main_node: u32,
    /// One per node, in index order (`nodes[i].index == i`).
    pub nodes: Vec<ResolvedNode>,
    /// Definition defaults overridden by the submission's parameters.
    pub parameters: BTreeMap<String, String>,
    /// The submission's, else the definition's.
    pub retry_strategy: Option<RetryStrategy>,
    /// Attempts allowed: `retry_strategy.attempts`, else 1.
    #[serde(default)]
    pub max_attempts: u32,
    /// The submission's, else the definition's.
    pub timeout: Option<JobTimeout>,
    /// `timeout.attemptDurationSeconds`, if any.
    #[serde(default)]
    pub attempt_duration_seconds: Option<u32>,
    /// `schedulingPriorityOverride`, else the definition's, else 0.
    pub scheduling_priority: i32,
    /// Definition tags overridden by the submission's.
    pub tags: BTreeMap<String, String>,
    /// The submission's, else the definition's, else false.
    pub propagate_tags: bool,
    /// `arrayProperties.size` for array jobs.
    #[serde(default)]
    pub array_size: Option<u32>,
    #[serde(default)]
    pub depends_on: Vec<Dependency>,
    #[serde(default)]
    pub share_identifier: Option<String>,
    /// The definition's `nodeProperties.nodeRangeProperties` (multinode),
    /// as DescribeJobs shows them.
    #[serde(default)]
    pub node_range_properties: Option<Vec<NodeRangeProperty>>,
}

/// Validate a submission against the definition it names and resolve it.
/// Also runs `req.validate()`. The definition must be ACTIVE.
pub fn validate_submit(
    def: &JobDefinition,
    req: &SubmitJobRequest,
) -> Result<ResolvedJob, ClientError> {
    req.validate()?;
    if !def.is_active() {
        return err(
            "jobDefinition",
            format!(
                "{} is {}; submit with an ACTIVE revision",
                def.job_definition_arn, def.status
            ),
        );
    }
    let timeout = req.timeout.clone().or_else(|| def.timeout.clone());
    let attempt_duration_seconds = timeout
        .as_ref()
        .and_then(|t| t.attempt_duration_seconds)
        .map(|s| s.max(0) as u32);
    let p = plan(def, req)?;
    let parameters = merged_parameters(def, req);
    let nodes = (0..p.num_nodes)
        .map(|i| {
            let container =
                build_container(p.base[i as usize], p.overrides[i as usize], &parameters);
            let demand = node_demand(&container);
            let timeout_s = attempt_duration_seconds.map(u64::from);
            let launch = crate::launch::LaunchSpec::of(&container, &demand, timeout_s);
            ResolvedNode {
                index: i,
                container,
                demand,
                launch,
            }
        })
        .collect();
    let retry_strategy = req
        .retry_strategy
        .clone()
        .or_else(|| def.retry_strategy.clone());
    let max_attempts = retry_strategy
        .as_ref()
        .map(|r| r.max_attempts())
        .unwrap_or(1);
    let mut tags = def.tags.clone();
    tags.extend(req.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
    Ok(ResolvedJob {
        multinode: def.is_multinode(),
        num_nodes: p.num_nodes,
        main_node: p.main_node,
        nodes,
        parameters,
        retry_strategy,
        max_attempts,
        timeout,
        attempt_duration_seconds,
        scheduling_priority: req
            .scheduling_priority_override
            .or(def.scheduling_priority)
            .unwrap_or(0),
        tags,
        propagate_tags: req.propagate_tags.or(def.propagate_tags).unwrap_or(false),
        array_size: req.array_size(),
        depends_on: req.dependencies()?,
        share_identifier: req.share_identifier.clone(),
        node_range_properties: def
            .node_properties
            .as_ref()
            .map(|p| p.node_range_properties.clone()),
    })
}
