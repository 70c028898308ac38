//! SubmitJob, DescribeJobs, ListJobs, CancelJob, TerminateJob.

use super::{page, pagination, reply, ArrayInfo, JobRecord, Resolved, ResolvedNode, StateMachine};
use crate::api::ApiError;
use serde_json::{json, Map, Value};
use shoal_core::{
    Dependency, Event, JobKey, JobSpec, JobState, QueueId, RetryAction, RetryPolicy, RetryRule,
    Shape,
};
use shoal_model as m;

/// Job states as AWS spells them.
pub fn state_name(s: JobState) -> &'static str {
    match s {
        JobState::Submitted => "SUBMITTED",
        JobState::Pending => "PENDING",
        JobState::Runnable => "RUNNABLE",
        JobState::Starting => "STARTING",
        JobState::Running => "RUNNING",
        JobState::Succeeded => "SUCCEEDED",
        JobState::Failed => "FAILED",
    }
}

fn parse_state(field: &str, s: &str) -> Result<JobState, ApiError> {
    Ok(match s {
        "SUBMITTED" => JobState::Submitted,
        "PENDING" => JobState::Pending,
        "RUNNABLE" => JobState::Runnable,
        "STARTING" => JobState::Starting,
        "RUNNING" => JobState::Running,
        "SUCCEEDED" => JobState::Succeeded,
        "FAILED" => JobState::Failed,
        other => {
            return Err(ApiError::field(
                field,
                format!("{other:?} is not a job status; use SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING, SUCCEEDED or FAILED"),
            ))
        }
    })
}

fn retry_policy(r: Option<&m::RetryStrategy>) -> RetryPolicy {
    let Some(r) = r else {
        return RetryPolicy::default();
    };
    RetryPolicy {
        attempts: r.max_attempts(),
        evaluate_on_exit: r
            .evaluate_on_exit
            .iter()
            .map(|e| RetryRule {
                on_exit_code: e.on_exit_code.clone(),
                on_reason: e.on_reason.clone(),
                on_status_reason: e.on_status_reason.clone(),
                action: if e.action.eq_ignore_ascii_case("EXIT") {
                    RetryAction::Exit
                } else {
                    RetryAction::Retry
                },
            })
            .collect(),
    }
}

fn shape(resolved: &Resolved) -> Shape {
    if resolved.multinode {
        Shape::Gang {
            nodes: resolved.nodes.iter().map(|n| n.demand).collect(),
            main_node: resolved.main_node,
        }
    } else {
        Shape::Single(resolved.nodes[0].demand)
    }
}

impl StateMachine {
    fn job_seq(&self, field: &str, id: &str) -> Result<u64, ApiError> {
        self.ids
            .get(id)
            .copied()
            .ok_or_else(|| ApiError::field(field, format!("no job with id {id:?}")))
    }

    pub(super) fn submit(
        &mut self,
        now: u64,
        r: m::SubmitJobRequest,
        token: Option<String>,
    ) -> Result<Vec<u8>, ApiError> {
        if let Some(rec) = token
            .as_ref()
            .and_then(|t| self.tokens.get(t))
            .and_then(|s| self.jobs.get(s))
        {
            // A retry of an acknowledged submission: the same job again.
            return reply(&m::SubmitJobResponse {
                job_arn: self.scope.job_arn(&rec.id),
                job_name: rec.name.clone(),
                job_id: rec.id.clone(),
            });
        }
        let (queue, queue_id) = self.open_queue(&r.job_queue)?;
        let def = self.find_definition(&r.job_definition)?.clone();
        let job = m::validate_submit(&def, &r)?;
        let array_size = job.array_size;
        let deps = self.dependencies(&job.depends_on, array_size)?;
        let timeout_s = job.attempt_duration_seconds.map(u64::from);
        let resolved = Resolved::new(job, &def);
        if resolved.nodes.is_empty() {
            return Err(ApiError::Server("resolved job has no nodes".into()));
        }
        let base = JobSpec {
            key: JobKey(0),
            queue: queue_id,
            priority: resolved.scheduling_priority,
            submitted_at: now,
            shape: shape(&resolved),
            parent: None,
            depends_on: deps
                .plain
                .iter()
                .map(|s| Dependency { on: JobKey(*s) })
                .collect(),
            timeout_s,
            retry: retry_policy(resolved.retry_strategy.as_ref()),
        };
        let (parent, children) = self.specs(base, array_size, &deps);
        // Tell the core first: if it refuses, nothing is recorded.
        for spec in std::iter::once(&parent).chain(children.iter().map(|(_, s)| s)) {
            let ev = Event::JobSubmitted {
                spec: spec.clone(),
                restored: None,
            };
            self.core.apply(now, ev).map_err(super::core_err)?;
        }
        let id = uuid::Uuid::new_v4().to_string();
        let new = NewJob {
            now,
            name: &r.job_name,
            queue: &queue,
            definition_arn: &def.job_definition_arn,
            depends_on: depends_json(&r.depends_on),
            resolved: &resolved,
        };
        self.record_submitted(&new, &id, parent, children, array_size, token);
        self.needs_pass = true;
        reply(&m::SubmitJobResponse {
            job_arn: self.scope.job_arn(&id),
            job_name: r.job_name,
            job_id: id,
        })
    }

    /// The queue named by `jobQueue` (name or ARN), if it takes jobs.
    fn open_queue(&self, given: &str) -> Result<(String, QueueId), ApiError> {
        let queue = self.queue_name("jobQueue", given)?;
        if self.queues[&queue].detail.state == "DISABLED" {
            return Err(ApiError::field(
                "jobQueue",
                format!("job queue {queue} is DISABLED and accepts no new jobs; enable it (UpdateJobQueue state=ENABLED) or use another queue"),
            ));
        }
        let id = QueueId(self.queues[&queue].id);
        Ok((queue, id))
    }

    /// A submission's dependencies as jobs: plain ones apply to the job
    /// (and to each child of an array); N_TO_N pairs child i with child i
    /// of another array of the same size; SEQUENTIAL chains the children.
    fn dependencies(
        &self,
        given: &[m::Dependency],
        array_size: Option<u32>,
    ) -> Result<Deps, ApiError> {
        let mut deps = Deps::default();
        for (i, d) in given.iter().enumerate() {
            let field = format!("dependsOn[{i}].jobId");
            match d {
                m::Dependency::Sequential => deps.sequential = true,
                m::Dependency::Job(id) => deps.plain.push(self.job_seq(&field, id)?),
                m::Dependency::NToN(id) => {
                    let seq = self.job_seq(&field, id)?;
                    let other = self.jobs[&seq]
                        .array
                        .as_ref()
                        .filter(|a| a.index.is_none())
                        .map(|a| a.size);
                    match (array_size, other) {
                        (Some(mine), Some(theirs)) if mine == theirs => deps.n_to_n.push(seq),
                        (Some(mine), Some(theirs)) => {
                            return Err(ApiError::field(
                                &field,
                                format!("N_TO_N needs arrays of the same size; this job has {mine} children, {id} has {theirs}"),
                            ))
                        }
                        _ => {
                            return Err(ApiError::field(
                                &field,
                                format!("N_TO_N needs both this job and {id} to be array jobs"),
                            ))
                        }
                    }
                }
            }
        }
        Ok(deps)
    }

    /// The core's specs of a new job (keys taken from `next_seq`): the job,
    /// and for an array its children by index with their N_TO_N and
    /// SEQUENTIAL dependencies.
    fn specs(
        &mut self,
        base: JobSpec,
        array_size: Option<u32>,
        deps: &Deps,
    ) -> (JobSpec, Vec<(u32, JobSpec)>) {
        let parent_seq = self.next_seq;
        self.next_seq += 1;
        let mut parent = base.clone();
        parent.key = JobKey(parent_seq);
        let mut children = Vec::new();
        if let Some(size) = array_size {
            parent.shape = Shape::ArrayParent { size };
            for i in 0..size {
                let seq = self.next_seq;
                self.next_seq += 1;
                let mut spec = base.clone();
                spec.key = JobKey(seq);
                spec.parent = Some(JobKey(parent_seq));
                for dep in &deps.n_to_n {
                    if let Some(c) = self.children.get(dep).and_then(|c| c.get(i as usize)) {
                        spec.depends_on.push(Dependency { on: JobKey(*c) });
                    }
                }
                if deps.sequential && i > 0 {
                    spec.depends_on.push(Dependency {
                        on: JobKey(seq - 1),
                    });
                }
                children.push((i, spec));
            }
        }
        (parent, children)
    }

    /// Record a job the core took (and its children, `ID:INDEX`), with its
    /// client token.
    fn record_submitted(
        &mut self,
        new: &NewJob,
        id: &str,
        parent: JobSpec,
        children: Vec<(u32, JobSpec)>,
        array_size: Option<u32>,
        token: Option<String>,
    ) {
        let parent_seq = parent.key.0;
        let parent_array = array_size.map(|size| ArrayInfo {
            size,
            index: None,
            parent: None,
        });
        let mut rec = new.record(id.to_string(), parent, parent_array);
        if let Some(t) = token {
            self.tokens.insert(t.clone(), rec.seq);
            rec.client_token = Some(t);
        }
        self.insert_job(rec);
        let mut kids = Vec::new();
        for (i, spec) in children {
            let child = new.record(
                m::JobId::new(id.to_string()).child(i).to_string(),
                spec,
                Some(ArrayInfo {
                    size: array_size.unwrap_or(0),
                    index: Some(i),
                    parent: Some(id.to_string()),
                }),
            );
            kids.push(child.seq);
            self.insert_job(child);
        }
        if !kids.is_empty() {
            self.children.insert(parent_seq, kids);
        }
    }

    fn insert_job(&mut self, rec: JobRecord) {
        self.ids.insert(rec.id.clone(), rec.seq);
        self.dirty.insert(rec.seq);
        self.jobs.insert(rec.seq, rec);
    }

    pub(super) fn cancel(
        &mut self,
        now: u64,
        id: &str,
        reason: String,
        terminate: bool,
    ) -> Result<Vec<u8>, ApiError> {
        let seq = self.job_seq("jobId", id)?;
        let job = JobKey(seq);
        let ev = if terminate {
            Event::JobTerminated { job, reason }
        } else {
            Event::JobCancelled { job, reason }
        };
        self.core.apply(now, ev).map_err(super::core_err)?;
        self.needs_pass = true;
        reply(&json!({}))
    }

    fn status_summary(&self, seq: u64) -> Value {
        let mut counts: std::collections::BTreeMap<&str, u64> = [
            "SUBMITTED",
            "PENDING",
            "RUNNABLE",
            "STARTING",
            "RUNNING",
            "SUCCEEDED",
            "FAILED",
        ]
        .into_iter()
        .map(|s| (s, 0))
        .collect();
        for c in self.children.get(&seq).into_iter().flatten() {
            if let Some(j) = self.jobs.get(c) {
                *counts.entry(state_name(j.status)).or_default() += 1;
            }
        }
        json!(counts)
    }

    fn array_json(&self, rec: &JobRecord) -> Option<Value> {
        let a = rec.array.as_ref()?;
        Some(match a.index {
            None => json!({ "size": a.size, "statusSummary": self.status_summary(rec.seq) }),
            Some(i) => json!({ "index": i }),
        })
    }

    fn attempts_json(rec: &JobRecord) -> Vec<Value> {
        rec.attempts
            .iter()
            .map(|a| {
                let mut container = Map::new();
                if let Some(c) = a.exit_code {
                    container.insert("exitCode".into(), json!(c));
                }
                container.insert("reason".into(), json!(a.reason));
                json!({ "container": container, "startedAt": a.started_at, "stoppedAt": a.stopped_at, "statusReason": a.reason })
            })
            .collect()
    }

    fn container_json(node: &ResolvedNode, exit: Option<&super::AttemptRecord>) -> Value {
        let mut c = serde_json::to_value(&node.container).unwrap_or_else(|_| json!({}));
        if let (Some(obj), Some(a)) = (c.as_object_mut(), exit) {
            if let Some(code) = a.exit_code {
                obj.insert("exitCode".into(), json!(code));
            }
            obj.insert("reason".into(), json!(a.reason));
        }
        c
    }

    /// The DescribeJobs view of a job, or of node `node` of a multinode job.
    pub(super) fn detail(&self, rec: &JobRecord, node: Option<u32>) -> Value {
        let id = m::JobRef {
            job: m::JobId::new(rec.id.clone()),
            node,
        }
        .to_string();
        let mut d = Map::new();
        d.insert("jobArn".into(), json!(self.scope.job_arn(&id)));
        d.insert("jobName".into(), json!(rec.name));
        d.insert("jobId".into(), json!(id));
        d.insert(
            "jobQueue".into(),
            json!(self.scope.job_queue_arn(&rec.queue)),
        );
        d.insert("status".into(), json!(state_name(rec.status)));
        if !rec.status_reason.is_empty() {
            d.insert("statusReason".into(), json!(rec.status_reason));
        }
        d.insert("createdAt".into(), json!(rec.created_at));
        if let Some(t) = rec.started_at {
            d.insert("startedAt".into(), json!(t));
        }
        if let Some(t) = rec.stopped_at {
            d.insert("stoppedAt".into(), json!(t));
        }
        d.insert("dependsOn".into(), json!(rec.depends_on));
        d.insert("jobDefinition".into(), json!(rec.definition_arn));
        d.insert("parameters".into(), json!(rec.resolved.parameters));
        d.insert(
            "schedulingPriority".into(),
            json!(rec.resolved.scheduling_priority),
        );
        if let Some(r) = &rec.resolved.retry_strategy {
            d.insert("retryStrategy".into(), json!(r));
        }
        if let Some(t) = &rec.resolved.timeout {
            d.insert("timeout".into(), json!(t));
        }
        if !rec.resolved.tags.is_empty() {
            d.insert("tags".into(), json!(rec.resolved.tags));
        }
        d.insert("propagateTags".into(), json!(rec.resolved.propagate_tags));
        d.insert("platformCapabilities".into(), json!(["EC2"]));
        d.insert("attempts".into(), json!(Self::attempts_json(rec)));
        if let Some(a) = self.array_json(rec) {
            d.insert("arrayProperties".into(), a);
        }
        if let Some(p) = rec.shm_peak_mib {
            d.insert("shmPeakMiB".into(), json!(p));
        }
        let last = rec.attempts.last();
        if rec.resolved.multinode {
            d.insert(
                "nodeProperties".into(),
                json!({
                    "numNodes": rec.resolved.num_nodes,
                    "mainNode": rec.resolved.main_node,
                    "nodeRangeProperties": rec.resolved.node_range_properties,
                }),
            );
            if let Some(n) = node {
                d.insert(
                    "nodeDetails".into(),
                    json!({ "nodeIndex": n, "isMainNode": n == rec.resolved.main_node }),
                );
                if let Some(rn) = rec.resolved.nodes.get(n as usize) {
                    d.insert("container".into(), Self::container_json(rn, last));
                }
            }
        } else if rec.array.as_ref().is_none_or(|a| a.index.is_some()) {
            d.insert(
                "container".into(),
                Self::container_json(&rec.resolved.nodes[0], last),
            );
        }
        Value::Object(d)
    }

    fn summary(&self, rec: &JobRecord, node: Option<u32>) -> Value {
        let full = self.detail(rec, node);
        let mut s = Map::new();
        for k in [
            "jobArn",
            "jobId",
            "jobName",
            "createdAt",
            "status",
            "statusReason",
            "startedAt",
            "stoppedAt",
            "jobDefinition",
        ] {
            if let Some(v) = full.get(k) {
                s.insert(k.into(), v.clone());
            }
        }
        if let Some(a) = full.get("arrayProperties") {
            s.insert(
                "arrayProperties".into(),
                json!({ "size": a.get("size"), "index": a.get("index") }),
            );
        }
        if rec.resolved.multinode {
            let mut np = json!({ "numNodes": rec.resolved.num_nodes });
            if let Some(n) = node {
                np["nodeIndex"] = json!(n);
                np["isMainNode"] = json!(n == rec.resolved.main_node);
            }
            s.insert("nodeProperties".into(), np);
        }
        if let Some(c) = full.get("container") {
            let mut cs = Map::new();
            for k in ["exitCode", "reason"] {
                if let Some(v) = c.get(k) {
                    cs.insert(k.into(), v.clone());
                }
            }
            s.insert("container".into(), Value::Object(cs));
        }
        Value::Object(s)
    }

    /// Find `ID`, `ID:INDEX` or `ID#NODE`.
    fn lookup(&self, id: &str) -> Option<(&JobRecord, Option<u32>)> {
        if let Some(seq) = self.ids.get(id) {
            return self.jobs.get(seq).map(|r| (r, None));
        }
        let r: m::JobRef = id.parse().ok()?;
        let node = r.node?;
        let rec = self.jobs.get(self.ids.get(r.job.as_str())?)?;
        (rec.resolved.multinode && node < rec.resolved.num_nodes).then_some((rec, Some(node)))
    }

    pub(super) fn describe_jobs(&self, r: m::DescribeJobsRequest) -> Result<Vec<u8>, ApiError> {
        let jobs: Vec<Value> = r
            .job_ids()?
            .iter()
            .filter_map(|id| self.lookup(id))
            .map(|(rec, n)| self.detail(rec, n))
            .collect();
        reply(&json!({ "jobs": jobs }))
    }

    pub(super) fn list_jobs(&self, r: m::ListJobsRequest) -> Result<Vec<u8>, ApiError> {
        let (start, max) = pagination(r.next_token.as_deref(), r.max_results)?;
        let filters = r.parsed_filters()?;
        // AWS: with neither a status nor filters, only RUNNING jobs are listed.
        let status = match (&r.job_status, filters.is_empty()) {
            (Some(s), _) => Some(parse_state("jobStatus", s)?),
            (None, true) => Some(JobState::Running),
            (None, false) => None,
        };
        let glob = |pat: &str, v: &str| match pat.strip_suffix('*') {
            Some(p) => v.starts_with(p),
            None => pat == v,
        };
        let keep = |rec: &JobRecord| -> bool {
            if status.is_some_and(|s| s != rec.status) {
                return false;
            }
            let def_name_rev = rec.definition_arn.rsplit('/').next().unwrap_or("");
            let def_name = def_name_rev.split(':').next().unwrap_or("");
            filters.iter().all(|f| match f {
                m::ListJobsFilter::JobName(p) => glob(p, &rec.name),
                m::ListJobsFilter::JobDefinition(p) => {
                    glob(p, &rec.definition_arn) || glob(p, def_name_rev) || glob(p, def_name)
                }
                m::ListJobsFilter::BeforeCreatedAt(t) => (rec.created_at as i64) < *t,
                m::ListJobsFilter::AfterCreatedAt(t) => (rec.created_at as i64) > *t,
            })
        };
        let items: Vec<(&JobRecord, Option<u32>)> = match r.scope()? {
            m::ListJobsScope::Queue(q) => {
                let name = self.queue_name("jobQueue", &q)?;
                let mut recs: Vec<&JobRecord> = self
                    .jobs
                    .values()
                    .filter(|j| {
                        j.queue == name
                            && j.array.as_ref().is_none_or(|a| a.index.is_none())
                            && keep(j)
                    })
                    .collect();
                recs.sort_by_key(|j| j.seq);
                recs.into_iter().map(|j| (j, None)).collect()
            }
            m::ListJobsScope::ArrayJob(a) => {
                let seq = self.job_seq("arrayJobId", &a)?;
                let all = r.job_status.is_none() && filters.is_empty();
                self.children
                    .get(&seq)
                    .into_iter()
                    .flatten()
                    .filter_map(|c| self.jobs.get(c))
                    .filter(|j| all || keep(j))
                    .map(|j| (j, None))
                    .collect()
            }
            m::ListJobsScope::MultiNodeJob(mn) => {
                let seq = self.job_seq("multiNodeJobId", &mn)?;
                let rec = &self.jobs[&seq];
                if !rec.resolved.multinode {
                    return Err(ApiError::field(
                        "multiNodeJobId",
                        format!("{mn} is not a multinode job"),
                    ));
                }
                let all = r.job_status.is_none() && filters.is_empty();
                if all || keep(rec) {
                    (0..rec.resolved.num_nodes)
                        .map(|n| (rec, Some(n)))
                        .collect()
                } else {
                    Vec::new()
                }
            }
        };
        let (list, next_token) = page(&items, start, max);
        let list: Vec<Value> = list.into_iter().map(|(j, n)| self.summary(j, n)).collect();
        reply(&json!({ "jobSummaryList": list, "nextToken": next_token }))
    }
}

/// A submission's dependencies, resolved to jobs (see
/// `StateMachine::dependencies`).
#[derive(Default)]
struct Deps {
    /// On the job, and on each child of an array.
    plain: Vec<u64>,
    /// Arrays whose child i each child i waits for.
    n_to_n: Vec<u64>,
    /// Each child waits for the one before.
    sequential: bool,
}

/// What every record of one submission shares.
struct NewJob<'a> {
    now: u64,
    name: &'a str,
    queue: &'a str,
    definition_arn: &'a str,
    depends_on: Vec<Value>,
    resolved: &'a Resolved,
}

impl NewJob<'_> {
    /// A SUBMITTED record of the job (or of one of its children).
    fn record(&self, id: String, spec: JobSpec, array: Option<ArrayInfo>) -> JobRecord {
        JobRecord {
            seq: spec.key.0,
            id,
            name: self.name.to_string(),
            queue: self.queue.to_string(),
            definition_arn: self.definition_arn.to_string(),
            status: JobState::Submitted,
            status_reason: String::new(),
            created_at: self.now,
            started_at: None,
            stopped_at: None,
            spec,
            depends_on: self.depends_on.clone(),
            array,
            resolved: self.resolved.clone(),
            attempts: Vec::new(),
            current: None,
            shm_peak_mib: None,
            last_placement: None,
            client_token: None,
        }
    }
}

/// `dependsOn` as DescribeJobs shows it: as given.
fn depends_json(given: &[m::JobDependency]) -> Vec<Value> {
    given
        .iter()
        .map(|d| {
            let mut o = Map::new();
            if let Some(j) = &d.job_id {
                o.insert("jobId".into(), json!(j));
            }
            if let Some(t) = &d.kind {
                o.insert("type".into(), json!(t));
            }
            Value::Object(o)
        })
        .collect()
}
