//! The state machine behind the API: job definitions, compute environments,
//! queues and jobs, kept in memory, mirrored to the store, and scheduled by
//! the pure core.
//!
//! Every public method is called from the actor thread only. Handlers
//! validate against the current state, change it, and record what changed
//! in a [`Batch`]; the actor commits the batch before anyone hears of it.

use crate::api::{ApiError, Request};
use crate::store::{Batch, Store};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shoal_core::{Core, CoreConfig, Decision, Event, JobSpec, JobState, Placement};
use shoal_model as m;
use std::collections::BTreeSet;

/// Runtime estimate for backfilling when a job has no timeout and its queue
/// sets no `shoal:default-estimate-seconds` tag: one hour.
pub const DEFAULT_ESTIMATE_S: u64 = 3600;

/// Name of the compute environment and queue that exist out of the box.
pub const DEFAULT_NAME: &str = "default";

use crate::config::Config;

/// The meta row holding the scheduler's clock at its last commit.
pub const CLOCK_KEY: &str = "clock_ms";

/// The scheduler's clock: epoch milliseconds that never go back. It reads
/// the wall clock once, at start (never below the clock of the last
/// commit), and moves on with the monotonic clock, so that a wall-clock
/// step while the scheduler runs moves none of its timestamps, timeouts
/// or heartbeats, and one between two runs cannot put new jobs before old
/// ones.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: u64,
    start: std::time::Instant,
}

impl Clock {
    /// Start at the wall clock, or just after `last` (the clock of the last
    /// commit) if the wall clock is behind it.
    pub fn start(last: u64) -> Clock {
        Clock {
            base: now_ms().max(last + 1),
            start: std::time::Instant::now(),
        }
    }

    /// Now, in epoch milliseconds.
    pub fn now(&self) -> u64 {
        self.base + self.start.elapsed().as_millis() as u64
    }
}

/// Milliseconds since the Unix epoch (the wall clock).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One finished attempt, as DescribeJobs shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// When it started.
    pub started_at: u64,
    /// When it ended.
    pub stopped_at: u64,
    /// Main node's exit code.
    pub exit_code: Option<i32>,
    /// Why it ended.
    pub reason: String,
    /// Whether it counts against the retry strategy (false: its Start never
    /// reached a node).
    #[serde(default = "counted", skip_serializing_if = "is_counted")]
    pub counted: bool,
    /// The node its main node ran on (DescribeJobs'
    /// `attempts[].container.containerInstanceArn` names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

fn counted() -> bool {
    true
}

fn is_counted(c: &bool) -> bool {
    *c
}

/// The attempt in flight.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurrentAttempt {
    /// Attempt number (0-based).
    pub attempt: u32,
    /// When it was started.
    pub started_at: u64,
    /// Where it runs.
    pub placement: Vec<Placement>,
    /// Node indices whose worker has taken the Start order (it listed the
    /// task in a poll): after a restart, the others are sent again.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub acked: BTreeSet<u32>,
    /// Node indices whose task has exited (the attempt goes on while its
    /// main node runs).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub exited: BTreeSet<u32>,
}

/// Array membership.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArrayInfo {
    /// Children count (parent) or the parent's size (child).
    pub size: u32,
    /// The child's index; None for the parent.
    pub index: Option<u32>,
    /// The parent's id, for a child.
    pub parent: Option<String>,
}

/// A job as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    /// Core key and storage order.
    pub seq: u64,
    /// AWS job id (UUID; `PARENT:INDEX` for array children).
    pub id: String,
    /// jobName.
    pub name: String,
    /// Queue name.
    pub queue: String,
    /// Definition ARN.
    pub definition_arn: String,
    /// Current state.
    pub status: JobState,
    /// Human reason.
    pub status_reason: String,
    /// Timestamps (epoch ms).
    pub created_at: u64,
    /// First RUNNING.
    pub started_at: Option<u64>,
    /// Reached SUCCEEDED/FAILED.
    pub stopped_at: Option<u64>,
    /// What the core was told.
    pub spec: JobSpec,
    /// dependsOn as submitted.
    pub depends_on: Vec<m::JobDependency>,
    /// Array membership.
    pub array: Option<ArrayInfo>,
    /// The resolved job: per-node containers, launch specs and settings
    /// (one in memory for the parent and the children of an array; stored
    /// with each).
    pub resolved: std::sync::Arc<m::ResolvedJob>,
    /// Finished attempts.
    pub attempts: Vec<AttemptRecord>,
    /// Attempt in flight.
    pub current: Option<CurrentAttempt>,
    /// Highest /dev/shm use seen on any node, MiB (reported by workers).
    pub shm_peak_mib: Option<u64>,
    /// Where the last finished attempt ran (for its logs).
    #[serde(default)]
    pub last_placement: Option<(u32, Vec<Placement>)>,
    /// The submission's client token (`X-Shoal-Client-Token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
}

/// Everything the scheduler knows, in three parts that each own their
/// maps and their share of [`StateMachine::handle`]: the registry (job
/// definitions, compute environments, queues), the jobs, and the nodes;
/// and what all three use ([`Shared`]).
pub struct StateMachine {
    shared: Shared,
    registry: Registry,
    jobs: Jobs,
    nodes: Nodes,
    /// How long the last scheduling pass took, until taken.
    pass_time: Option<std::time::Duration>,
}

/// What every part of the state machine works with: the ARN scope, the
/// scheduling core, the writes of the batch in progress, and whether a
/// scheduling pass is due.
pub(super) struct Shared {
    scope: m::ArnScope,
    core: Core,
    batch: Batch,
    needs_pass: bool,
    /// The key of the per-job tokens (see [`Shared::job_token`]).
    job_key: Vec<u8>,
    /// See [`Config::min_state_time_limit_s`].
    min_state_time_limit_s: i64,
    /// Per queue: its head job, why it waits, and since when (ms), for
    /// `jobStateTimeLimitActions`.
    head_since: std::collections::HashMap<
        shoal_core::QueueId,
        (shoal_core::JobKey, shoal_core::WaitCode, u64),
    >,
    /// The last start estimates (see [`snapshot`]).
    estimates: Option<snapshot::Estimates>,
    /// Positions in the last queue snapshots.
    positions: snapshot::Positions,
    /// The Slurm thread: commands of the batch, poll timing.
    slurm: managed::SlurmLink,
}

impl Shared {
    /// The token of a job's attempt: HMAC-SHA256 under the scheduler's
    /// stored key over the job id and attempt, so it is the same after a
    /// restart and different for every job and attempt.
    fn job_token(&self, job_id: &str, attempt: u32) -> String {
        let msg = format!("shoal job token\n{job_id}\n{attempt}");
        shoal_sigv4::hmac_sha256_hex(&self.job_key, msg.as_bytes())
    }
}

/// Why this scheduler cannot run a MANAGED environment's workers, if it
/// cannot: they join over mutual TLS with certificates it issues.
fn slurm_unready(config: &Config) -> Option<String> {
    let Some(t) = &config.worker_tls else {
        return Some("INVALID: the scheduler has no worker listener, and the workers of Slurm allocations join over mutual TLS: start it with --worker-listen ADDRESS:PORT --tls-dir DIR (DIR holding the CA's ca.key too)".into());
    };
    let dir = t.ca.parent().unwrap_or(std::path::Path::new("."));
    if !shoal_pki::has_ca(dir) {
        return Some(format!("INVALID: the scheduler cannot issue certificates for its allocations' workers: {} has no ca.key (the CA's key, from shoal ca init) beside ca.pem", dir.display()));
    }
    if t.listen.ip().is_unspecified() {
        return Some(format!("INVALID: the worker listener listens on {}: give it the address the Slurm nodes reach it at (--worker-listen ADDRESS:PORT)", t.listen));
    }
    None
}

/// The meta row holding the key of the per-job tokens (hex).
const JOB_TOKEN_KEY: &str = "job_token_key";

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn reply<T: Serialize>(v: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(v).map_err(|e| ApiError::Server(format!("cannot encode the reply: {e}")))
}

fn core_err(e: shoal_core::CoreError) -> ApiError {
    ApiError::Server(format!("scheduling core refused an event: {e}"))
}

/// The stored key of the job tokens, or a new random one (true: store it).
fn job_token_key(stored: Option<&String>) -> Result<(Vec<u8>, bool), crate::Error> {
    if let Some(h) = stored {
        return match hex::decode(h) {
            Ok(b) if b.len() == 32 => Ok((b, false)),
            _ => Err(crate::Error::Load(format!(
                "meta {JOB_TOKEN_KEY} is not 32 bytes of hex"
            ))),
        };
    }
    let key = shoal_pki::random_bytes(32)
        .map_err(|e| crate::Error::Load(format!("cannot draw a job token key: {e}")))?;
    Ok((key, true))
}

/// A stored row the scheduler cannot take: its table and key, what is
/// wrong, and what to do.
fn load_err(table: &str, key: &str, e: impl std::fmt::Display) -> crate::Error {
    crate::Error::Load(format!(
        "corrupt row in table {table}, key {key:?}: {e}; restore shoal.db from a backup (or fix or delete that row with sqlite3)"
    ))
}

fn pagination(
    next_token: Option<&str>,
    max_results: Option<i32>,
) -> Result<(usize, usize), ApiError> {
    let start = match next_token {
        None | Some("") => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| ApiError::field("nextToken", "not a token this scheduler issued"))?,
    };
    let max = match max_results {
        None => 100,
        Some(n) if (1..=1000).contains(&n) => n as usize,
        Some(n) => {
            return Err(ApiError::field(
                "maxResults",
                format!("{n} is out of range 1..1000"),
            ))
        }
    };
    Ok((start, max))
}

fn page<T: Clone>(items: &[T], start: usize, max: usize) -> (Vec<T>, Option<String>) {
    let end = (start + max).min(items.len());
    let slice = items
        .get(start.min(items.len())..end)
        .unwrap_or(&[])
        .to_vec();
    let next = (end < items.len()).then(|| end.to_string());
    (slice, next)
}

impl StateMachine {
    /// Rebuild the state from the store (creating the defaults on a fresh
    /// state directory).
    pub fn load(
        config: Config,
        store: &Store,
        mail: crate::mailbox::Mailboxes,
        now: u64,
    ) -> Result<StateMachine, crate::Error> {
        let loaded = store.load()?;
        let (job_key, new_key) = job_token_key(loaded.meta.get(JOB_TOKEN_KEY))?;
        let cluster_ca = match &config.worker_tls {
            Some(t) => Some(std::fs::read_to_string(&t.ca).map_err(|e| {
                crate::Error::Tls(format!("cannot read the CA {}: {e}", t.ca.display()))
            })?),
            None => None,
        };
        let mut sh = Shared {
            scope: m::ArnScope::new(config.region.clone(), config.account.clone()),
            core: Core::new(CoreConfig {
                backfill: config.backfill,
            }),
            batch: Batch::default(),
            needs_pass: true,
            job_key: job_key.clone(),
            min_state_time_limit_s: config.min_state_time_limit_s,
            head_since: Default::default(),
            estimates: None,
            positions: Default::default(),
            slurm: managed::SlurmLink {
                tx: config.slurm_tx.clone(),
                unready: slurm_unready(&config),
                ..Default::default()
            },
        };
        if new_key {
            sh.batch.put_meta(JOB_TOKEN_KEY, hex::encode(&job_key));
        }
        let registry = Registry::restore(&mut sh, &loaded, now)?;
        let mut nodes = Nodes::new(mail, config.timing, cluster_ca);
        for (name, body) in &loaded.nodes {
            let n: nodes::NodeRecord =
                serde_json::from_str(body).map_err(|e| load_err("nodes", name, e))?;
            nodes.restore(&mut sh, now, n)?;
        }
        // Time between the last commit and now the scheduler did not see:
        // it may be downtime or a step of the wall clock, and it does not
        // count towards a running attempt's timeout (no early timeouts).
        let unseen = loaded
            .meta
            .get(CLOCK_KEY)
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |last| now.saturating_sub(last));
        let mut jobs = Jobs::default();
        for (seq, id, body) in &loaded.jobs {
            let rec: JobRecord = serde_json::from_str(body).map_err(|e| load_err("jobs", id, e))?;
            jobs.restore(&mut sh, now, unseen, *seq, rec)
                .map_err(|e| load_err("jobs", id, e))?;
        }
        let mut sm = StateMachine {
            shared: sh,
            registry,
            jobs,
            nodes,
            pass_time: None,
        };
        // Restoring emits nothing of its own; drop anything it did emit.
        sm.apply_decisions(now);
        Ok(sm)
    }

    /// The token of a job's attempt (see [`Shared::job_token`]).
    pub fn job_token(&self, job_id: &str, attempt: u32) -> String {
        self.shared.job_token(job_id, attempt)
    }

    /// The writes accumulated since the last call.
    pub fn take_batch(&mut self) -> Batch {
        self.jobs.flush(&mut self.shared.batch);
        std::mem::take(&mut self.shared.batch)
    }

    /// The path steps (job id, step, µs) since the last call: logged by
    /// the actor once they are committed.
    pub fn take_marks(&mut self) -> Vec<(String, &'static str, u64)> {
        self.jobs.take_marks()
    }

    /// Hand the orders of a committed batch to the workers' mailboxes,
    /// and its Slurm commands to the Slurm thread.
    pub fn deliver_orders(&mut self) {
        self.nodes.deliver_orders();
        self.shared.slurm.deliver();
    }

    /// How long until something time-based must happen (attempt timeout).
    pub fn next_wake(&self, now: u64) -> Option<u64> {
        [
            self.shared.core.next_deadline(),
            self.nodes.next_lost_check(),
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|d| d.saturating_sub(now))
    }

    /// Check timeouts and, when anything changed, run a scheduling pass.
    pub fn tick(&mut self, now: u64) {
        let StateMachine {
            shared: sh,
            registry: reg,
            jobs,
            nodes,
            ..
        } = self;
        nodes.check_lost(sh, reg, jobs, now);
        if sh.core.next_deadline().is_some_and(|d| d <= now) {
            if let Err(e) = sh.core.apply(now, Event::Tick) {
                tracing::error!("core tick: {e}");
            }
            sh.needs_pass = true;
        }
        self.apply_decisions(now);
        if self.shared.needs_pass {
            self.shared.needs_pass = false;
            let started = std::time::Instant::now();
            self.shared.core.schedule(now);
            self.pass_time = Some(started.elapsed());
            self.apply_decisions(now);
        }
        let StateMachine {
            shared: sh,
            registry: reg,
            jobs,
            ..
        } = self;
        if reg.enforce_state_time_limits(sh, jobs, now) {
            self.apply_decisions(now);
        }
        let StateMachine {
            shared: sh,
            registry: reg,
            jobs,
            nodes,
            ..
        } = self;
        managed::round(sh, reg, nodes, jobs, now);
        self.apply_decisions(now);
    }

    fn apply_decisions(&mut self, now: u64) {
        apply_decisions(
            &mut self.shared,
            &self.registry,
            &mut self.jobs,
            &mut self.nodes,
            now,
        );
    }

    /// How long the scheduling pass of the last [`StateMachine::tick`]
    /// took, if it ran one and this was not asked since.
    pub fn take_pass_time(&mut self) -> Option<std::time::Duration> {
        self.pass_time.take()
    }

    /// Handle one API call: each part answers its own.
    pub fn handle(&mut self, now: u64, req: Request) -> Result<Vec<u8>, ApiError> {
        use Request as R;
        let StateMachine {
            shared: sh,
            registry: reg,
            jobs,
            nodes,
            ..
        } = self;
        match req {
            R::RegisterJobDefinition(r) => reg.register(sh, *r),
            R::DescribeJobDefinitions(r) => reg.describe_definitions(r),
            R::DeregisterJobDefinition(r) => reg.deregister(sh, r),
            R::CreateComputeEnvironment(r) => reg.create_ce(sh, now, r),
            R::UpdateComputeEnvironment(r) => reg.update_ce(sh, now, r),
            R::DeleteComputeEnvironment(r) => reg.delete_ce(sh, now, r),
            R::DescribeComputeEnvironments(r) => reg.describe_ces(nodes, r),
            R::CreateJobQueue(r) => reg.create_queue(sh, now, r),
            R::UpdateJobQueue(r) => reg.update_queue(sh, now, r),
            R::DeleteJobQueue(r) => reg.delete_queue(sh, jobs, now, r),
            R::DescribeJobQueues(r) => reg.describe_queues(r),
            R::GetJobQueueSnapshot(r) => reg.queue_snapshot(sh, jobs, now, r),
            R::CreateSchedulingPolicy(r) => reg.create_policy(sh, r),
            R::DescribeSchedulingPolicies(r) => reg.describe_policies(r),
            R::UpdateSchedulingPolicy(r) => reg.update_policy(sh, now, r),
            R::DeleteSchedulingPolicy(r) => reg.delete_policy(sh, r),
            R::ListSchedulingPolicies(r) => reg.list_policies(r),
            R::Tags(resource, change) => tags::handle(sh, reg, jobs, now, resource, change),
            R::SubmitJob(r, token) => jobs.submit(sh, reg, now, *r, token),
            R::DescribeJobs(r) => jobs.describe_jobs(sh, now, r),
            R::ListJobs(r) => jobs.list_jobs(&sh.scope, reg, r),
            R::CancelJob(r) => jobs.cancel(sh, now, &r.job_id, r.reason, false),
            R::TerminateJob(r) => jobs.cancel(sh, now, &r.job_id, r.reason, true),
            R::ListNodes => nodes.list_nodes(&sh.core),
            R::DrainNode(name, reason) => nodes.drain_node(sh, now, &name, Some(reason)),
            R::ResumeNode(name) => nodes.drain_node(sh, now, &name, None),
            R::RemoveNode(name) => nodes.remove_node(sh, jobs, &name),
            R::RegisterWorker(r) => {
                let name = r.name.clone();
                let out = nodes.register_worker(sh, reg, jobs, now, r);
                if out.is_ok() {
                    managed::joined(reg, sh, &name);
                }
                out
            }
            R::Slurm(r) => {
                managed::report(sh, reg, nodes, jobs, now, r);
                self.apply_decisions(now);
                reply(&json!({}))
            }
            R::WorkerPoll(r) => nodes.poll(sh, reg, jobs, now, r),
            R::LogLocation(id) => nodes.log_location(jobs, now, &id),
            R::Noop => reply(&json!({})),
        }
    }
}

/// Carry out the core's decisions: the jobs record what they say, and the
/// nodes turn Start and Kill into orders.
fn apply_decisions(sh: &mut Shared, reg: &Registry, jobs: &mut Jobs, nodes: &mut Nodes, now: u64) {
    for d in sh.core.drain() {
        if jobs.record(&d, now, &|id| nodes.node_name(id)) {
            sh.needs_pass = true;
        }
        match d {
            Decision::Start {
                job,
                attempt,
                placement,
            } => {
                if let Some(rec) = jobs.get(job.0) {
                    nodes.dispatch_start(sh, reg, rec, attempt, &placement, None);
                }
            }
            Decision::Kill {
                job,
                attempt,
                nodes: on,
                reason,
            } => {
                if let Some(rec) = jobs.get(job.0) {
                    nodes.dispatch_kill(rec, attempt, &on, &reason);
                }
            }
            Decision::State { .. } | Decision::AttemptEnded { .. } => {}
        }
    }
}

mod allocator;
mod definitions;
pub mod gauges;
mod jobs;
mod managed;
mod nodes;
mod policies;
mod pools;
mod registry;
mod snapshot;
pub mod tags;

pub use gauges::Gauges;
pub use jobs::state_name;
use jobs::Jobs;
use nodes::Nodes;
use registry::Registry;

#[cfg(test)]
mod tests {
    use super::*;

    /// The state machine of `store`, as a scheduler on `dir` loads it.
    fn load_from(dir: &std::path::Path, store: &Store) -> StateMachine {
        let config = Config {
            state_dir: dir.to_path_buf(),
            ..Config::default()
        };
        StateMachine::load(config, store, crate::mailbox::Mailboxes::default(), 0).unwrap()
    }

    #[test]
    fn job_tokens_survive_a_restart_and_differ_per_job_and_attempt() {
        let d = tempfile::tempdir().unwrap();
        let load = |store: &Store| load_from(d.path(), store);
        let mut store = Store::open(d.path()).unwrap();
        let mut first = load(&store);
        let token = first.job_token("job-a", 0);
        assert_eq!(token.len(), 64, "hex of HMAC-SHA256: {token}");
        store.commit(&first.take_batch()).unwrap();
        drop(first);
        let again = load(&store);
        assert_eq!(again.job_token("job-a", 0), token, "same after a restart");
        assert_ne!(again.job_token("job-a", 1), token, "per attempt");
        assert_ne!(again.job_token("job-b", 0), token, "per job");
        // Another scheduler (state directory) has another key.
        let other = tempfile::tempdir().unwrap();
        let other_store = Store::open(other.path()).unwrap();
        assert_ne!(load(&other_store).job_token("job-a", 0), token);
    }

    #[test]
    fn an_arrays_children_share_its_resolved_job_in_memory_before_and_after_a_restart() {
        let d = tempfile::tempdir().unwrap();
        let load = |store: &Store| load_from(d.path(), store);
        let mut store = Store::open(d.path()).unwrap();
        let mut sm = load(&store);
        let def: m::RegisterJobDefinitionRequest = serde_json::from_value(json!({
            "jobDefinitionName": "d", "type": "container",
            "containerProperties": {"command": ["true"], "resourceRequirements": [
                {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}]}}))
        .unwrap();
        sm.handle(1, Request::RegisterJobDefinition(Box::new(def)))
            .unwrap();
        let submit: m::SubmitJobRequest = serde_json::from_value(json!({
            "jobName": "a", "jobQueue": "default", "jobDefinition": "d",
            "arrayProperties": {"size": 3}}))
        .unwrap();
        let reply = sm
            .handle(2, Request::SubmitJob(Box::new(submit), None))
            .unwrap();
        let id = serde_json::from_slice::<m::SubmitJobResponse>(&reply)
            .unwrap()
            .job_id;
        store.commit(&sm.take_batch()).unwrap();
        let shared = |sm: &StateMachine| {
            let parent = sm.jobs.by_id(&id).unwrap();
            (0..3).all(|i| {
                let child = sm.jobs.by_id(&format!("{id}:{i}")).unwrap();
                std::sync::Arc::ptr_eq(&child.resolved, &parent.resolved)
            })
        };
        assert!(shared(&sm), "as submitted");
        drop(sm);
        assert!(shared(&load(&store)), "as restored");
    }
}
