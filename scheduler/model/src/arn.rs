//! ARNs: formatting Shoal's resource ARNs and reading the name out of a
//! "name or ARN" reference.

use crate::error::{err, ClientError};
use crate::util::check_name;

/// Region and account that Shoal puts in the ARNs it makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnScope {
    pub region: String,
    pub account: String,
}

impl Default for ArnScope {
    /// `us-east-1`, `000000000000`.
    fn default() -> Self {
        ArnScope {
            region: "us-east-1".to_string(),
            account: "000000000000".to_string(),
        }
    }
}

impl ArnScope {
    pub fn new(region: impl Into<String>, account: impl Into<String>) -> Self {
        ArnScope {
            region: region.into(),
            account: account.into(),
        }
    }

    fn arn(&self, resource: &str) -> String {
        format!("arn:aws:batch:{}:{}:{resource}", self.region, self.account)
    }

    /// `arn:aws:batch:{region}:{account}:job-definition/{name}:{revision}`
    pub fn job_definition_arn(&self, name: &str, revision: i32) -> String {
        self.arn(&format!("job-definition/{name}:{revision}"))
    }

    /// `arn:aws:batch:{region}:{account}:job-queue/{name}`
    pub fn job_queue_arn(&self, name: &str) -> String {
        self.arn(&format!("job-queue/{name}"))
    }

    /// `arn:aws:batch:{region}:{account}:compute-environment/{name}`
    pub fn compute_environment_arn(&self, name: &str) -> String {
        self.arn(&format!("compute-environment/{name}"))
    }

    /// `arn:aws:batch:{region}:{account}:scheduling-policy/{name}`
    pub fn scheduling_policy_arn(&self, name: &str) -> String {
        self.arn(&format!("scheduling-policy/{name}"))
    }

    /// `arn:aws:batch:{region}:{account}:job/{jobId}`
    pub fn job_arn(&self, job_id: &str) -> String {
        self.arn(&format!("job/{job_id}"))
    }

    /// `arn:aws:ecs:{region}:{account}:container-instance/shoal/{node}`:
    /// where an attempt ran (a worker node).
    pub fn container_instance_arn(&self, node: &str) -> String {
        format!(
            "arn:aws:ecs:{}:{}:container-instance/shoal/{node}",
            self.region, self.account
        )
    }

    /// `arn:aws:ecs:{region}:{account}:cluster/{name}` (for
    /// `ComputeEnvironmentDetail::ecs_cluster_arn`, which boto3 users expect).
    pub fn ecs_cluster_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:ecs:{}:{}:cluster/{name}",
            self.region, self.account
        )
    }
}

/// The Batch resource types Shoal has ARNs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    JobDefinition,
    JobQueue,
    ComputeEnvironment,
    SchedulingPolicy,
    Job,
}

impl ResourceKind {
    /// The resource-type part of the ARN (`job-queue`, ...).
    pub fn arn_type(self) -> &'static str {
        match self {
            ResourceKind::JobDefinition => "job-definition",
            ResourceKind::JobQueue => "job-queue",
            ResourceKind::ComputeEnvironment => "compute-environment",
            ResourceKind::SchedulingPolicy => "scheduling-policy",
            ResourceKind::Job => "job",
        }
    }

    /// The request field errors are reported against by default
    /// (`jobDefinition`, `jobQueue`, `computeEnvironment`, `jobId`); use
    /// [`ClientError::with_field`] to name another.
    pub fn field(self) -> &'static str {
        match self {
            ResourceKind::JobDefinition => "jobDefinition",
            ResourceKind::JobQueue => "jobQueue",
            ResourceKind::ComputeEnvironment => "computeEnvironment",
            ResourceKind::SchedulingPolicy => "arn",
            ResourceKind::Job => "jobId",
        }
    }

    fn from_arn_type(s: &str) -> Option<Self> {
        Some(match s {
            "job-definition" => ResourceKind::JobDefinition,
            "job-queue" => ResourceKind::JobQueue,
            "compute-environment" => ResourceKind::ComputeEnvironment,
            "scheduling-policy" => ResourceKind::SchedulingPolicy,
            "job" => ResourceKind::Job,
            _ => return None,
        })
    }
}

/// A parsed Batch ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedArn {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub kind: ResourceKind,
    /// What follows `{type}/`: a name, `name:revision`, or a job id.
    pub resource: String,
}

/// Parse `arn:{partition}:batch:{region}:{account}:{type}/{resource}`.
/// Errors are reported against `field`.
pub fn parse_arn(field: &str, s: &str) -> Result<ParsedArn, ClientError> {
    let bad = |why: &str| {
        err(
            field,
            format!(
                "{s:?} is not a valid AWS Batch ARN ({why}); expected arn:aws:batch:REGION:ACCOUNT:TYPE/NAME"
            ),
        )
    };
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        return bad("it does not have the six ':'-separated parts of an ARN");
    }
    if !parts[1].starts_with("aws") {
        return bad("unknown partition");
    }
    if parts[2] != "batch" {
        return bad("not a batch ARN");
    }
    let Some((ty, resource)) = parts[5].split_once('/') else {
        return bad("the resource part has no TYPE/");
    };
    let Some(kind) = ResourceKind::from_arn_type(ty) else {
        return bad("unknown resource type");
    };
    if resource.is_empty() {
        return bad("the resource name is empty");
    }
    Ok(ParsedArn {
        partition: parts[1].to_string(),
        region: parts[3].to_string(),
        account: parts[4].to_string(),
        kind,
        resource: resource.to_string(),
    })
}

/// A reference to a job definition: all revisions (or the latest active
/// one, depending on the call) of a name, or one revision.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DefinitionRef {
    Name(String),
    NameRev(String, i32),
}

impl DefinitionRef {
    pub fn name(&self) -> &str {
        match self {
            DefinitionRef::Name(n) | DefinitionRef::NameRev(n, _) => n,
        }
    }

    pub fn revision(&self) -> Option<i32> {
        match self {
            DefinitionRef::Name(_) => None,
            DefinitionRef::NameRev(_, r) => Some(*r),
        }
    }
}

/// Parse `name`, `name:revision` or a job-definition ARN
/// (`arn:aws:batch:R:A:job-definition/name:revision`). Errors name the
/// field `jobDefinition`.
pub fn parse_job_definition_ref(s: &str) -> Result<DefinitionRef, ClientError> {
    let field = ResourceKind::JobDefinition.field();
    let body = if s.starts_with("arn:") {
        let arn = parse_arn(field, s)?;
        if arn.kind != ResourceKind::JobDefinition {
            return err(
                field,
                format!(
                    "{s:?} is a {} ARN, not a job-definition ARN",
                    arn.kind.arn_type()
                ),
            );
        }
        arn.resource
    } else {
        s.to_string()
    };
    let (name, rev) = match body.split_once(':') {
        Some((n, r)) => (n, Some(r)),
        None => (body.as_str(), None),
    };
    check_name(field, "job definition name", name)?;
    match rev {
        None => Ok(DefinitionRef::Name(name.to_string())),
        Some(r) => match r.parse::<i32>() {
            Ok(n) if n >= 1 && r.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(DefinitionRef::NameRev(name.to_string(), n))
            }
            _ => err(
                field,
                format!("{s:?}: the revision after ':' must be a whole number, at least 1"),
            ),
        },
    }
}

/// The name (or, for [`ResourceKind::Job`], the job id) in a "name or ARN"
/// reference. Errors name `kind.field()`; relabel with
/// [`ClientError::with_field`].
pub fn resource_name_from_ref(kind: ResourceKind, s: &str) -> Result<String, ClientError> {
    let field = kind.field();
    if s.starts_with("arn:") {
        let arn = parse_arn(field, s)?;
        if arn.kind != kind {
            return err(
                field,
                format!(
                    "{s:?} is a {} ARN; expected a {} ARN or name",
                    arn.kind.arn_type(),
                    kind.arn_type()
                ),
            );
        }
        if kind == ResourceKind::Job {
            return Ok(arn.resource);
        }
        if kind == ResourceKind::JobDefinition {
            return Ok(parse_job_definition_ref(s)?.name().to_string());
        }
        check_name(field, "name", &arn.resource)?;
        return Ok(arn.resource);
    }
    match kind {
        ResourceKind::Job => {
            if s.trim().is_empty() {
                return err(field, "must not be empty");
            }
            Ok(s.to_string())
        }
        ResourceKind::JobDefinition => Ok(parse_job_definition_ref(s)?.name().to_string()),
        ResourceKind::JobQueue => {
            check_name(field, "job queue name", s)?;
            Ok(s.to_string())
        }
        ResourceKind::ComputeEnvironment => {
            check_name(field, "compute environment name", s)?;
            Ok(s.to_string())
        }
        ResourceKind::SchedulingPolicy => {
            check_name(field, "scheduling policy name", s)?;
            Ok(s.to_string())
        }
    }
}

/// A job id from a job id or a job ARN.
pub fn job_id_from_ref(s: &str) -> Result<String, ClientError> {
    resource_name_from_ref(ResourceKind::Job, s)
}
