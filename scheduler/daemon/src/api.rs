//! The operations the API serves, parsed and validated from request bodies.

use shoal_model as m;
use shoal_model::{parse_and_validate, ClientError};

/// An API failure, shaped as AWS's error contract by `http.rs`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The request is wrong: HTTP 400 `ClientException`.
    #[error("{0}")]
    Client(String),
    /// The scheduler failed: HTTP 500 `ServerException`. Always a bug or an
    /// environment failure (disk full), never the user's input.
    #[error("{0}")]
    Server(String),
    /// No such operation: HTTP 404.
    #[error("unknown operation {0:?}")]
    UnknownOperation(String),
    /// Unsigned, or signed with an unknown access key: HTTP 403
    /// `UnrecognizedClientException`.
    #[error("{0}")]
    UnrecognizedClient(String),
    /// A wrong, malformed or expired signature: HTTP 403
    /// `InvalidSignatureException`.
    #[error("{0}")]
    InvalidSignature(String),
    /// Authenticated, or on the wrong listener, but not allowed: HTTP 403
    /// `AccessDeniedException`.
    #[error("{0}")]
    AccessDenied(String),
}

impl From<shoal_sigv4::AuthError> for ApiError {
    fn from(e: shoal_sigv4::AuthError) -> Self {
        use shoal_sigv4::AuthError as A;
        match e {
            A::Unrecognized(m) => ApiError::UnrecognizedClient(format!(
                "The security token included in the request is invalid: {m}. \
                 This scheduler requires requests signed (AWS Signature Version 4) with an \
                 access key from its --credentials file: configure the client with a matching \
                 key (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or SHOAL_CREDENTIALS=FILE \
                 for the shoal CLI)."
            )),
            A::InvalidSignature(m) => ApiError::InvalidSignature(format!(
                "{m} (this scheduler verifies AWS Signature Version 4 with the secret of the \
                 access key in its --credentials file)"
            )),
        }
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        ApiError::Client(e.to_string())
    }
}

impl ApiError {
    /// A client error naming `field`.
    pub fn field(field: &str, message: impl std::fmt::Display) -> Self {
        ApiError::Client(format!("{field}: {message}"))
    }
}

/// One API call.
#[allow(missing_docs)]
#[derive(Debug)]
pub enum Request {
    RegisterJobDefinition(Box<m::RegisterJobDefinitionRequest>),
    DescribeJobDefinitions(m::DescribeJobDefinitionsRequest),
    DeregisterJobDefinition(m::DeregisterJobDefinitionRequest),
    /// SubmitJob, with Shoal's optional client token (header
    /// `X-Shoal-Client-Token`): a retried submission with the same token
    /// returns the job the first one made.
    SubmitJob(Box<m::SubmitJobRequest>, Option<String>),
    DescribeJobs(m::DescribeJobsRequest),
    ListJobs(m::ListJobsRequest),
    CancelJob(m::CancelJobRequest),
    TerminateJob(m::TerminateJobRequest),
    CreateComputeEnvironment(m::CreateComputeEnvironmentRequest),
    UpdateComputeEnvironment(m::UpdateComputeEnvironmentRequest),
    DeleteComputeEnvironment(m::DeleteComputeEnvironmentRequest),
    DescribeComputeEnvironments(m::DescribeComputeEnvironmentsRequest),
    CreateJobQueue(m::CreateJobQueueRequest),
    UpdateJobQueue(m::UpdateJobQueueRequest),
    DeleteJobQueue(m::DeleteJobQueueRequest),
    DescribeJobQueues(m::DescribeJobQueuesRequest),
    GetJobQueueSnapshot(m::GetJobQueueSnapshotRequest),
    CreateSchedulingPolicy(m::CreateSchedulingPolicyRequest),
    DescribeSchedulingPolicies(m::DescribeSchedulingPoliciesRequest),
    UpdateSchedulingPolicy(m::UpdateSchedulingPolicyRequest),
    DeleteSchedulingPolicy(m::DeleteSchedulingPolicyRequest),
    ListSchedulingPolicies(m::ListSchedulingPoliciesRequest),
    /// TagResource, UntagResource or ListTagsForResource
    /// (`/v1/tags/{resourceArn}`: POST, DELETE, GET).
    Tags(m::TaggedResource, crate::state::tags::TagChange),
    /// Shoal: list worker nodes.
    ListNodes,
    /// Shoal: an operator drains a node (nothing new goes there), with a reason.
    DrainNode(String, String),
    /// Shoal: an operator lets a drained node take jobs again.
    ResumeNode(String),
    /// Shoal: an operator removes a node that is gone for good.
    RemoveNode(String),
    /// Shoal: a worker (re)registers.
    RegisterWorker(shoal_model::wire::RegisterWorkerRequest),
    /// Shoal: a worker's poll (heartbeat and reports).
    WorkerPoll(shoal_model::wire::PollRequest),
    /// Shoal: where the logs of a task are (`ID` or `ID#NODE`).
    LogLocation(String),
    /// Shoal, internal: what the Slurm thread saw (MANAGED environments).
    Slurm(crate::slurm::Report),
    /// Placeholder left behind when a request is moved out of a batch.
    Noop,
}

impl Request {
    /// Attach the request's client token (SubmitJob only; at most 64
    /// printable ASCII characters, like AWS's clientToken).
    pub fn with_client_token(self, token: Option<&str>) -> Result<Request, ApiError> {
        match (self, token) {
            (Request::SubmitJob(r, _), Some(t)) => {
                if t.is_empty() || t.len() > 64 || !t.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(ApiError::field(
                        "X-Shoal-Client-Token",
                        "give 1 to 64 printable ASCII characters",
                    ));
                }
                Ok(Request::SubmitJob(r, Some(t.to_string())))
            }
            (other, _) => Ok(other),
        }
    }

    /// Parse `POST /v1/{op}`. An empty body counts as `{}` (aws-cli sends
    /// none for calls without arguments).
    pub fn parse_aws(op: &str, body: &[u8]) -> Result<Request, ApiError> {
        let body = or_empty(body);
        use Request as R;
        Ok(match op.to_ascii_lowercase().as_str() {
            "registerjobdefinition" => {
                R::RegisterJobDefinition(Box::new(parse_and_validate(body)?))
            }
            "describejobdefinitions" => R::DescribeJobDefinitions(parse_and_validate(body)?),
            "deregisterjobdefinition" => R::DeregisterJobDefinition(parse_and_validate(body)?),
            "submitjob" => R::SubmitJob(Box::new(parse_and_validate(body)?), None),
            "describejobs" => R::DescribeJobs(parse_and_validate(body)?),
            "listjobs" => R::ListJobs(parse_and_validate(body)?),
            "canceljob" => R::CancelJob(parse_and_validate(body)?),
            "terminatejob" => R::TerminateJob(parse_and_validate(body)?),
            "createcomputeenvironment" => R::CreateComputeEnvironment(parse_and_validate(body)?),
            "updatecomputeenvironment" => R::UpdateComputeEnvironment(parse_and_validate(body)?),
            "deletecomputeenvironment" => R::DeleteComputeEnvironment(parse_and_validate(body)?),
            "describecomputeenvironments" => {
                R::DescribeComputeEnvironments(parse_and_validate(body)?)
            }
            "createjobqueue" => R::CreateJobQueue(parse_and_validate(body)?),
            "updatejobqueue" => R::UpdateJobQueue(parse_and_validate(body)?),
            "deletejobqueue" => R::DeleteJobQueue(parse_and_validate(body)?),
            "describejobqueues" => R::DescribeJobQueues(parse_and_validate(body)?),
            "getjobqueuesnapshot" => R::GetJobQueueSnapshot(parse_and_validate(body)?),
            "createschedulingpolicy" => R::CreateSchedulingPolicy(parse_and_validate(body)?),
            "describeschedulingpolicies" => {
                R::DescribeSchedulingPolicies(parse_and_validate(body)?)
            }
            "updateschedulingpolicy" => R::UpdateSchedulingPolicy(parse_and_validate(body)?),
            "deleteschedulingpolicy" => R::DeleteSchedulingPolicy(parse_and_validate(body)?),
            "listschedulingpolicies" => R::ListSchedulingPolicies(parse_and_validate(body)?),
            other => return Err(ApiError::UnknownOperation(other.to_string())),
        })
    }

    /// Parse `POST /shoal/v1/{op}`.
    pub fn parse_shoal(op: &str, body: &[u8]) -> Result<Request, ApiError> {
        match op {
            "listnodes" => {
                let _: m::ListNodesRequest = shoal_model::parse_request(or_empty(body))?;
                Ok(Request::ListNodes)
            }
            "drainnode" => {
                let r: m::DrainNodeRequest = shoal_model::parse_request(body)?;
                let reason = r
                    .reason
                    .filter(|r| !r.trim().is_empty())
                    .unwrap_or_else(|| "drained by an operator".into());
                Ok(Request::DrainNode(node_name(r.name)?, reason))
            }
            "resumenode" => {
                let r: m::ResumeNodeRequest = shoal_model::parse_request(body)?;
                Ok(Request::ResumeNode(node_name(r.name)?))
            }
            "removenode" => {
                let r: m::RemoveNodeRequest = shoal_model::parse_request(body)?;
                Ok(Request::RemoveNode(node_name(r.name)?))
            }
            "registerworker" => Ok(Request::RegisterWorker(shoal_model::parse_request(body)?)),
            "poll" => Ok(Request::WorkerPoll(shoal_model::parse_request(body)?)),
            "logs" => {
                let r: m::LogsRequest = shoal_model::parse_request(body)?;
                Ok(Request::LogLocation(r.job_id))
            }
            other => Err(ApiError::UnknownOperation(other.to_string())),
        }
    }
}

impl Request {
    /// Parse a request on `/v1/tags/{resourceArn}` (`arn` percent-decoded;
    /// `query` the raw query string, for UntagResource's `tagKeys`).
    pub fn parse_tags(
        method: &axum::http::Method,
        arn: &str,
        query: Option<&str>,
        body: &[u8],
    ) -> Result<Request, ApiError> {
        use crate::state::tags::TagChange;
        use axum::http::Method;
        let resource = m::TaggedResource::from_arn(arn)?;
        let change = match *method {
            Method::GET => TagChange::List,
            Method::POST => {
                let b: m::TagResourceBody = parse_and_validate(body)?;
                TagChange::Add(b.tags)
            }
            Method::DELETE => {
                let keys: Vec<String> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
                    .filter(|(k, _)| k == "tagKeys")
                    .map(|(_, v)| v.into_owned())
                    .collect();
                m::check_tag_keys(&keys)?;
                TagChange::Remove(keys)
            }
            _ => {
                return Err(ApiError::Client(format!(
                    "{method} /v1/tags/ARN: use GET (ListTagsForResource), POST (TagResource) or DELETE (UntagResource)"
                )))
            }
        };
        Ok(Request::Tags(resource, change))
    }
}

/// A node name given to drainnode, resumenode or removenode.
fn node_name(name: String) -> Result<String, ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::field(
            "name",
            "give the node's name (shoal nodes lists them)",
        ));
    }
    Ok(name)
}

/// An empty body counts as `{}` (aws-cli sends none for calls without
/// arguments).
fn or_empty(body: &[u8]) -> &[u8] {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        b"{}"
    } else {
        body
    }
}
