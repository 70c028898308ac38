//! SubmitJob, DescribeJobs, ListJobs, CancelJob, TerminateJob.

use super::{
    page, pagination, reply, to_json, ArrayInfo, AttemptRecord, CurrentAttempt, JobRecord,
    Registry, Shared,
};
use crate::api::ApiError;
use crate::store::Batch;
use serde_json::json;
use shoal_core::{
    Decision, Dependency, Event, JobKey, JobSpec, JobState, Restored, RetryAction, RetryPolicy,
    RetryRule, Shape,
};
use shoal_model as m;
use shoal_model::wire::{TaskEvent, TaskRef};
use std::collections::{BTreeMap, BTreeSet, HashMap};

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

fn shape(resolved: &m::ResolvedJob) -> Shape {
    if resolved.multinode {
        Shape::Gang {
            nodes: resolved.nodes.iter().map(|n| n.demand).collect(),
            main_node: resolved.main_node,
        }
    } else {
        Shape::Single(resolved.nodes[0].demand)
    }
}

/// The jobs: every record by its core key (`seq`), found by id and by
/// client token, the children of each array, and which records changed
/// since the last batch.
pub(super) struct Jobs {
    /// Boxed: a map's slack (up to half its buckets) then costs a
    /// pointer each, not a record.
    records: HashMap<u64, Box<JobRecord>>,
    ids: HashMap<String, u64>,
    /// Array parent seq → children seqs, in index order.
    children: HashMap<u64, Vec<u64>>,
    next_seq: u64,
    /// Client token → job seq, for idempotent SubmitJob.
    tokens: HashMap<String, u64>,
    dirty: BTreeSet<u64>,
    /// Path steps since the last commit (only while they are logged):
    /// job id, step, wall-clock µs.
    marks: Vec<(String, &'static str, u64)>,
}

impl Jobs {
    /// Note step `step` of job `id` for the path log, if it is on.
    fn mark(&mut self, id: &str, step: &'static str) {
        if shoal_model::path::enabled() {
            self.marks
                .push((id.to_string(), step, shoal_model::path::now_us()));
        }
    }

    /// The path steps noted since the last call.
    pub(super) fn take_marks(&mut self) -> Vec<(String, &'static str, u64)> {
        std::mem::take(&mut self.marks)
    }

    fn job_seq(&self, field: &str, id: &str) -> Result<u64, ApiError> {
        self.ids
            .get(id)
            .copied()
            .ok_or_else(|| ApiError::field(field, format!("no job with id {id:?}")))
    }

    pub(super) fn submit(
        &mut self,
        sh: &mut Shared,
        reg: &Registry,
        now: u64,
        r: m::SubmitJobRequest,
        token: Option<String>,
    ) -> Result<Vec<u8>, ApiError> {
        if let Some(rec) = token
            .as_ref()
            .and_then(|t| self.tokens.get(t))
            .and_then(|s| self.records.get(s))
        {
            // A retry of an acknowledged submission: the same job again.
            return reply(&m::SubmitJobResponse {
                job_arn: sh.scope.job_arn(&rec.id),
                job_name: rec.name.clone(),
                job_id: rec.id.clone(),
            });
        }
        let (queue, queue_id) = reg.open_queue(&r.job_queue)?;
        reg.check_share(&queue, r.share_identifier.as_deref())?;
        let def = reg.find_definition(&r.job_definition)?.clone();
        let job = m::validate_submit(&def, &r)?;
        let array_size = job.array_size;
        let deps = self.dependencies(&job.depends_on, array_size)?;
        let timeout_s = job.attempt_duration_seconds.map(u64::from);
        let resolved = job;
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
            share: resolved.share_identifier.clone(),
        };
        let (parent, children) = self.specs(base, array_size, &deps);
        // Tell the core first: if it refuses, nothing is recorded.
        for spec in std::iter::once(&parent).chain(children.iter().map(|(_, s)| s)) {
            let ev = Event::JobSubmitted {
                spec: spec.clone(),
                restored: None,
            };
            sh.core.apply(now, ev).map_err(super::core_err)?;
        }
        let id = uuid::Uuid::new_v4().to_string();
        let new = NewJob {
            now,
            name: &r.job_name,
            queue: &queue,
            definition_arn: &def.job_definition_arn,
            depends_on: r.depends_on.clone(),
            resolved: std::sync::Arc::new(resolved),
        };
        self.record_submitted(&new, &id, parent, children, array_size, token);
        self.mark(&id, "SUBMITTED");
        sh.needs_pass = true;
        reply(&m::SubmitJobResponse {
            job_arn: sh.scope.job_arn(&id),
            job_name: r.job_name,
            job_id: id,
        })
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
                    let other = self.records[&seq]
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

    /// The id of the job the core knows as `key`.
    pub(super) fn id_of(&self, key: shoal_core::JobKey) -> Option<String> {
        self.records.get(&key.0).map(|r| r.id.clone())
    }

    /// A job's tags, to change (the job is written with the next batch).
    /// Array children and nodes of a multinode job are not tagged on their
    /// own (as AWS).
    pub(super) fn tags_mut(&mut self, id: &str) -> Option<&mut BTreeMap<String, String>> {
        let seq = *self.ids.get(id)?;
        self.dirty.insert(seq);
        Some(&mut std::sync::Arc::make_mut(&mut self.records.get_mut(&seq)?.resolved).tags)
    }

    fn insert_job(&mut self, rec: JobRecord) {
        self.ids.insert(rec.id.clone(), rec.seq);
        self.dirty.insert(rec.seq);
        self.records.insert(rec.seq, Box::new(rec));
    }

    pub(super) fn cancel(
        &mut self,
        sh: &mut Shared,
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
        sh.core.apply(now, ev).map_err(super::core_err)?;
        sh.needs_pass = true;
        reply(&json!({}))
    }

    /// An array parent's children by state (every state named).
    fn status_summary(&self, seq: u64) -> BTreeMap<String, i64> {
        let mut counts: BTreeMap<String, i64> =
            m::JOB_STATES.iter().map(|s| (s.to_string(), 0)).collect();
        for c in self.children.get(&seq).into_iter().flatten() {
            if let Some(j) = self.records.get(c) {
                *counts.entry(state_name(j.status).to_string()).or_default() += 1;
            }
        }
        counts
    }

    fn array_detail(&self, rec: &JobRecord) -> Option<m::ArrayPropertiesDetail> {
        let a = rec.array.as_ref()?;
        Some(match a.index {
            None => m::ArrayPropertiesDetail {
                size: Some(a.size as i32),
                status_summary: Some(self.status_summary(rec.seq)),
                index: None,
            },
            Some(i) => m::ArrayPropertiesDetail {
                index: Some(i as i32),
                ..Default::default()
            },
        })
    }

    /// The DescribeJobs view of a job, or of node `node` of a multinode job.
    pub(super) fn detail(
        &self,
        scope: &m::ArnScope,
        rec: &JobRecord,
        node: Option<u32>,
    ) -> m::JobDetail {
        let r = &rec.resolved;
        let id = job_ref(rec, node);
        let last = rec.attempts.last();
        let container = |n: &m::ResolvedNode| Some(container_detail(n, last));
        let (node_properties, node_details, container) = if r.multinode {
            let props = m::NodeProperties {
                num_nodes: r.num_nodes as i32,
                main_node: r.main_node as i32,
                node_range_properties: r.node_range_properties.clone().unwrap_or_default(),
            };
            let details = node.map(|n| m::NodeDetails {
                node_index: Some(n as i32),
                is_main_node: Some(n == r.main_node),
            });
            let c = node
                .and_then(|n| r.nodes.get(n as usize))
                .and_then(container);
            (Some(props), details, c)
        } else if rec.array.as_ref().is_none_or(|a| a.index.is_some()) {
            (None, None, r.nodes.first().and_then(container))
        } else {
            (None, None, None)
        };
        m::JobDetail {
            job_arn: scope.job_arn(&id),
            job_name: rec.name.clone(),
            job_id: id,
            job_queue: scope.job_queue_arn(&rec.queue),
            status: state_name(rec.status).to_string(),
            share_identifier: r.share_identifier.clone(),
            scheduling_priority: Some(r.scheduling_priority),
            attempts: rec
                .attempts
                .iter()
                .map(|a| attempt_detail(scope, a))
                .collect(),
            status_reason: (!rec.status_reason.is_empty()).then(|| rec.status_reason.clone()),
            created_at: Some(rec.created_at as i64),
            retry_strategy: r.retry_strategy.clone(),
            started_at: rec.started_at.map(|t| t as i64),
            stopped_at: rec.stopped_at.map(|t| t as i64),
            depends_on: rec.depends_on.clone(),
            job_definition: rec.definition_arn.clone(),
            parameters: r.parameters.clone(),
            container,
            node_details,
            node_properties,
            array_properties: self.array_detail(rec),
            timeout: r.timeout.clone(),
            tags: r.tags.clone(),
            propagate_tags: Some(r.propagate_tags),
            platform_capabilities: vec!["EC2".into()],
            is_cancelled: None,
            is_terminated: None,
            shm_peak_mib: rec.shm_peak_mib,
            shoal_estimated_start_at: None,
        }
    }

    /// The ListJobs view of a job, or of node `node` of a multinode job.
    fn summary(&self, scope: &m::ArnScope, rec: &JobRecord, node: Option<u32>) -> m::JobSummary {
        let r = &rec.resolved;
        let id = job_ref(rec, node);
        let last = rec.attempts.last();
        let has_container = if r.multinode {
            node.is_some()
        } else {
            rec.array.as_ref().is_none_or(|a| a.index.is_some())
        };
        m::JobSummary {
            job_arn: scope.job_arn(&id),
            job_id: id,
            job_name: rec.name.clone(),
            created_at: Some(rec.created_at as i64),
            share_identifier: rec.resolved.share_identifier.clone(),
            status: Some(state_name(rec.status).to_string()),
            status_reason: (!rec.status_reason.is_empty()).then(|| rec.status_reason.clone()),
            started_at: rec.started_at.map(|t| t as i64),
            stopped_at: rec.stopped_at.map(|t| t as i64),
            container: has_container.then(|| m::ContainerSummary {
                exit_code: last.and_then(|a| a.exit_code),
                reason: last.map(|a| a.reason.clone()),
            }),
            array_properties: rec.array.as_ref().map(|a| m::ArrayPropertiesSummary {
                size: a.index.is_none().then_some(a.size as i32),
                index: a.index.map(|i| i as i32),
                status_summary: None,
            }),
            node_properties: r.multinode.then(|| m::NodePropertiesSummary {
                num_nodes: Some(r.num_nodes as i32),
                node_index: node.map(|n| n as i32),
                is_main_node: node.map(|n| n == r.main_node),
            }),
            job_definition: Some(rec.definition_arn.clone()),
        }
    }

    /// Find `ID`, `ID:INDEX` or `ID#NODE`.
    fn lookup(&self, id: &str) -> Option<(&JobRecord, Option<u32>)> {
        if let Some(seq) = self.ids.get(id) {
            return self.records.get(seq).map(|r| (&**r, None));
        }
        let r: m::JobRef = id.parse().ok()?;
        let node = r.node?;
        let rec = self.records.get(self.ids.get(r.job.as_str())?)?;
        (rec.resolved.multinode && node < rec.resolved.num_nodes).then_some((rec, Some(node)))
    }

    /// DescribeJobs; a job not yet started carries Shoal's
    /// `shoalEstimatedStartAt` (see `snapshot.rs`).
    pub(super) fn describe_jobs(
        &self,
        sh: &mut Shared,
        now: u64,
        r: m::DescribeJobsRequest,
    ) -> Result<Vec<u8>, ApiError> {
        let mut jobs = Vec::new();
        for (rec, n) in r.job_ids()?.iter().filter_map(|id| self.lookup(id)) {
            let mut d = self.detail(&sh.scope, rec, n);
            if matches!(
                rec.status,
                JobState::Submitted | JobState::Pending | JobState::Runnable
            ) {
                d.shoal_estimated_start_at =
                    sh.estimated_start(now, JobKey(rec.seq)).map(|t| t as i64);
            }
            jobs.push(d);
        }
        reply(&m::DescribeJobsResponse { jobs })
    }

    pub(super) fn list_jobs(
        &self,
        scope: &m::ArnScope,
        reg: &Registry,
        r: m::ListJobsRequest,
    ) -> Result<Vec<u8>, ApiError> {
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
                m::ListJobsFilter::ShareIdentifier(p) => rec
                    .resolved
                    .share_identifier
                    .as_deref()
                    .is_some_and(|s| glob(p, s)),
            })
        };
        let items: Vec<(&JobRecord, Option<u32>)> = match r.scope()? {
            m::ListJobsScope::Queue(q) => {
                let name = reg.queue_name("jobQueue", &q)?;
                let mut recs: Vec<&JobRecord> = self
                    .records
                    .values()
                    .map(|r| &**r)
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
                    .filter_map(|c| self.records.get(c))
                    .filter(|j| all || keep(j))
                    .map(|j| (&**j, None))
                    .collect()
            }
            m::ListJobsScope::MultiNodeJob(mn) => {
                let seq = self.job_seq("multiNodeJobId", &mn)?;
                let rec: &JobRecord = &self.records[&seq];
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
        reply(&m::ListJobsResponse {
            job_summary_list: list
                .into_iter()
                .map(|(j, n)| self.summary(scope, j, n))
                .collect(),
            next_token,
        })
    }
}

impl Default for Jobs {
    fn default() -> Jobs {
        Jobs {
            records: HashMap::new(),
            ids: HashMap::new(),
            children: HashMap::new(),
            next_seq: 1,
            tokens: HashMap::new(),
            dirty: BTreeSet::new(),
            marks: Vec::new(),
        }
    }
}

/// The jobs' side of restoring, of the core's decisions, of batches and of
/// the workers' reports.
impl Jobs {
    /// A stored job, told to the core as it was (`unseen`: the time the
    /// scheduler did not see, which a running attempt does not count
    /// towards its timeout).
    pub(super) fn restore(
        &mut self,
        sh: &mut Shared,
        now: u64,
        unseen: u64,
        seq: u64,
        mut rec: JobRecord,
    ) -> Result<(), shoal_core::CoreError> {
        let timeout_s = rec.spec.timeout_s;
        for (i, n) in std::sync::Arc::make_mut(&mut rec.resolved)
            .nodes
            .iter_mut()
            .enumerate()
        {
            n.index = i as u32;
            if n.launch == m::LaunchSpec::default() {
                // Stored before launch specs.
                n.launch = m::LaunchSpec::of(&n.container, &n.demand, timeout_s);
            }
        }
        // An array's children share their parent's resolved job in memory,
        // as when they were submitted (restored after it, in seq order).
        let parent = rec.array.as_ref().and_then(|a| a.parent.as_ref());
        if let Some(p) = parent
            .and_then(|p| self.ids.get(p))
            .and_then(|s| self.records.get(s))
        {
            if p.resolved == rec.resolved {
                rec.resolved = p.resolved.clone();
            }
        }
        let restored = Restored {
            state: rec.status,
            attempts_done: rec.attempts.len() as u32,
            uncounted: rec.attempts.iter().filter(|a| !a.counted).count() as u32,
            running: rec
                .current
                .as_ref()
                .map(|c| (c.attempt, c.started_at + unseen, c.placement.clone())),
        };
        sh.core.apply(
            now,
            Event::JobSubmitted {
                spec: rec.spec.clone(),
                restored: Some(restored),
            },
        )?;
        if let Some(parent) = rec.spec.parent {
            self.children.entry(parent.0).or_default().push(seq);
        }
        self.next_seq = self.next_seq.max(seq + 1);
        self.ids.insert(rec.id.clone(), seq);
        if let Some(t) = &rec.client_token {
            self.tokens.insert(t.clone(), seq);
        }
        self.records.insert(seq, Box::new(rec));
        Ok(())
    }

    /// Write the records changed since the last batch into `batch`.
    pub(super) fn flush(&mut self, batch: &mut Batch) {
        for seq in std::mem::take(&mut self.dirty) {
            if let Some(rec) = self.records.get(&seq) {
                batch.put_job(seq, &rec.id, to_json(rec));
            }
        }
    }

    /// Record what a decision of the core says of its job; true when it
    /// makes a scheduling pass due (a job ended, or an attempt).
    pub(super) fn record(
        &mut self,
        d: &Decision,
        now: u64,
        node_name: &dyn Fn(u32) -> Option<String>,
    ) -> bool {
        let job = match d {
            Decision::State { job, .. }
            | Decision::Start { job, .. }
            | Decision::Kill { job, .. }
            | Decision::AttemptEnded { job, .. } => *job,
        };
        if shoal_model::path::enabled() {
            let step = match d {
                Decision::State { state, .. } => Some(state_name(*state)),
                Decision::Start { .. } => Some("placed"),
                _ => None,
            };
            if let (Some(step), Some(id)) = (step, self.records.get(&job.0).map(|r| r.id.clone())) {
                self.mark(&id, step);
            }
        }
        let Some(rec) = self.records.get_mut(&job.0) else {
            return matches!(d, Decision::AttemptEnded { .. });
        };
        match d {
            Decision::State { state, reason, .. } => {
                rec.status = *state;
                rec.status_reason = reason.clone();
                if *state == JobState::Running {
                    // AWS: an attempt's startedAt is when it began RUNNING.
                    if let Some(c) = rec.current.as_mut() {
                        c.started_at = now;
                    }
                    rec.started_at.get_or_insert(now);
                }
                if state.is_terminal() {
                    rec.stopped_at = Some(now);
                }
                self.dirty.insert(job.0);
                state.is_terminal()
            }
            Decision::Start {
                attempt, placement, ..
            } => {
                rec.current = Some(CurrentAttempt {
                    attempt: *attempt,
                    started_at: now,
                    placement: placement.clone(),
                    acked: BTreeSet::new(),
                    exited: BTreeSet::new(),
                });
                self.dirty.insert(job.0);
                false
            }
            Decision::Kill { .. } => false,
            Decision::AttemptEnded {
                exit_code,
                reason,
                counted,
                ..
            } => {
                let current = rec.current.take();
                let started_at = current.as_ref().map(|c| c.started_at).unwrap_or(now);
                let main = rec.resolved.main_node;
                let node = current.as_ref().and_then(|c| {
                    let p = c.placement.iter().find(|p| p.node_index == main)?;
                    node_name(p.node.0)
                });
                rec.last_placement = current.map(|c| (c.attempt, c.placement));
                rec.attempts.push(AttemptRecord {
                    started_at,
                    stopped_at: now,
                    exit_code: *exit_code,
                    reason: reason.clone(),
                    counted: *counted,
                    node,
                });
                self.dirty.insert(job.0);
                true
            }
        }
    }

    /// Jobs of queue `name` that have not ended.
    pub(super) fn unfinished_in(&self, name: &str) -> usize {
        self.records
            .values()
            .filter(|j| j.queue == name && !j.status.is_terminal())
            .count()
    }

    /// A job's record by its core key.
    /// Every job, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &JobRecord> {
        self.records.values().map(|r| &**r)
    }

    pub(super) fn get(&self, seq: u64) -> Option<&JobRecord> {
        self.records.get(&seq).map(|r| &**r)
    }

    /// The job a task belongs to (`ID` of `ID#NODE`), if known.
    pub(super) fn seq_of_task(&self, task: &TaskRef) -> Option<u64> {
        self.ids.get(task.job_id.job.as_str()).copied()
    }

    /// A job's record by its id (`ID`, not `ID:INDEX` or `ID#NODE`
    /// forms other than an array child's own id).
    pub(super) fn by_id(&self, id: &str) -> Option<&JobRecord> {
        self.ids
            .get(id)
            .and_then(|s| self.records.get(s))
            .map(|r| &**r)
    }

    /// Tasks the scheduler believes run on node `node`: (job seq, task).
    pub(super) fn tasks_on(&self, node: u32) -> Vec<(u64, TaskRef)> {
        let mut out = Vec::new();
        for rec in self.records.values() {
            if let Some(c) = &rec.current {
                for p in c.placement.iter().filter(|p| p.node.0 == node) {
                    out.push((
                        rec.seq,
                        TaskRef {
                            job_id: task_job_id(rec, p.node_index),
                            attempt: c.attempt,
                            node_index: p.node_index,
                        },
                    ));
                }
            }
        }
        out
    }

    /// The worker of node `node` lists `tasks`: their Start orders were
    /// taken (stored, so that a restarted scheduler does not send them
    /// again).
    pub(super) fn mark_taken(&mut self, node: u32, tasks: &[TaskRef]) {
        for t in tasks {
            let Some(seq) = self.seq_of_task(t) else {
                continue;
            };
            let Some(c) = self.records.get_mut(&seq).and_then(|r| r.current.as_mut()) else {
                continue;
            };
            let here = c
                .placement
                .iter()
                .any(|p| p.node_index == t.node_index && p.node.0 == node);
            if c.attempt == t.attempt && here && c.acked.insert(t.node_index) {
                self.dirty.insert(seq);
            }
        }
    }

    /// What a report tells of the current attempt: its node took the Start
    /// (Started), or its task there is gone (Exited, with the /dev/shm peak
    /// it saw).
    pub(super) fn note_report(&mut self, seq: u64, task: &TaskRef, event: &TaskEvent) {
        let Some(rec) = self.records.get_mut(&seq) else {
            return;
        };
        if let TaskEvent::Exited { shm_peak_mib, .. } = event {
            rec.shm_peak_mib = Some(rec.shm_peak_mib.unwrap_or(0).max(*shm_peak_mib));
            self.dirty.insert(seq);
        }
        let Some(c) = rec.current.as_mut() else {
            return;
        };
        if c.attempt != task.attempt {
            return;
        }
        let changed = match event {
            TaskEvent::Started => c.acked.insert(task.node_index),
            TaskEvent::Exited { .. } => c.exited.insert(task.node_index),
            TaskEvent::NotStarted { .. } => false,
        };
        if changed {
            self.dirty.insert(seq);
        }
    }
}

/// The task's job a job record and node index make (`ID` or `ID#NODE`).
pub(super) fn task_job_id(rec: &JobRecord, node_index: u32) -> m::JobRef {
    let id = m::JobId::new(rec.id.clone());
    if rec.resolved.multinode {
        m::JobRef::node(id, node_index)
    } else {
        m::JobRef::job(id)
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
    depends_on: Vec<m::JobDependency>,
    resolved: std::sync::Arc<m::ResolvedJob>,
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

/// The id of a job, or of node `node` of a multinode job (`ID#NODE`).
fn job_ref(rec: &JobRecord, node: Option<u32>) -> String {
    m::JobRef {
        job: m::JobId::new(rec.id.clone()),
        node,
    }
    .to_string()
}

/// A finished attempt as DescribeJobs shows it.
fn attempt_detail(scope: &m::ArnScope, a: &AttemptRecord) -> m::AttemptDetail {
    m::AttemptDetail {
        container: Some(m::AttemptContainerDetail {
            exit_code: a.exit_code,
            reason: Some(a.reason.clone()),
            container_instance_arn: a.node.as_deref().map(|n| scope.container_instance_arn(n)),
            ..Default::default()
        }),
        started_at: Some(a.started_at as i64),
        stopped_at: Some(a.stopped_at as i64),
        status_reason: Some(a.reason.clone()),
    }
}

/// A node's effective container with the last attempt's exit code and
/// reason.
fn container_detail(node: &m::ResolvedNode, last: Option<&AttemptRecord>) -> m::ContainerDetail {
    let mut c = m::ContainerDetail::from_properties(&node.container);
    if let Some(a) = last {
        c.exit_code = a.exit_code;
        c.reason = Some(a.reason.clone());
    }
    c
}
