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
use shoal_core::{Core, CoreConfig, Decision, Event, JobSpec, JobState, Placement, Restored};
use shoal_model as m;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Runtime estimate for backfilling when a job has no timeout and its queue
/// sets no `shoal:default-estimate-seconds` tag: one hour.
pub const DEFAULT_ESTIMATE_S: u64 = 3600;

/// Name of the compute environment and queue that exist out of the box.
pub const DEFAULT_NAME: &str = "default";

use crate::config::{Config, Timing};

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
    /// (shared by the children of an array, stored with each for
    /// simplicity).
    pub resolved: m::ResolvedJob,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CeRecord {
    pool: u32,
    detail: m::ComputeEnvironmentDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct QueueRecord {
    id: u32,
    detail: m::JobQueueDetail,
}

/// Everything the scheduler knows.
pub struct StateMachine {
    scope: m::ArnScope,
    core: Core,
    definitions: BTreeMap<String, Vec<m::JobDefinition>>,
    ces: BTreeMap<String, CeRecord>,
    queues: BTreeMap<String, QueueRecord>,
    jobs: HashMap<u64, JobRecord>,
    ids: HashMap<String, u64>,
    /// Array parent seq → children seqs, in index order.
    children: HashMap<u64, Vec<u64>>,
    next_seq: u64,
    next_pool: u32,
    next_queue: u32,
    dirty: BTreeSet<u64>,
    batch: Batch,
    needs_pass: bool,
    /// Client token → job seq, for idempotent SubmitJob.
    tokens: HashMap<String, u64>,
    nodes: BTreeMap<String, nodes::NodeRecord>,
    node_names: HashMap<u32, String>,
    next_node: u32,
    mail: crate::mailbox::Mailboxes,
    /// Orders decided in this batch, delivered only after it commits.
    outbox: Vec<(String, shoal_model::wire::Order)>,
    timing: Timing,
    /// The key of the per-job tokens (see [`StateMachine::job_token`]).
    job_key: Vec<u8>,
    /// The cluster CA's certificate (PEM) with a worker listener: handed
    /// to clients of TLS workers (`logs`).
    cluster_ca: Option<String>,
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
        let mut sm = StateMachine {
            scope: m::ArnScope::new(config.region.clone(), config.account.clone()),
            core: Core::new(CoreConfig {
                backfill: config.backfill,
            }),
            definitions: BTreeMap::new(),
            ces: BTreeMap::new(),
            queues: BTreeMap::new(),
            jobs: HashMap::new(),
            ids: HashMap::new(),
            children: HashMap::new(),
            next_seq: 1,
            next_pool: 1,
            next_queue: 1,
            dirty: BTreeSet::new(),
            batch: Batch::default(),
            needs_pass: true,
            tokens: HashMap::new(),
            nodes: BTreeMap::new(),
            node_names: HashMap::new(),
            next_node: 1,
            mail,
            outbox: Vec::new(),
            timing: config.timing,
            job_key: job_key.clone(),
            cluster_ca,
        };
        if new_key {
            sm.batch.put_meta(JOB_TOKEN_KEY, hex::encode(&job_key));
        }
        for (name, rev, body) in &loaded.definitions {
            let def: m::JobDefinition = serde_json::from_str(body)
                .map_err(|e| load_err("job_definitions", &format!("{name}:{rev}"), e))?;
            sm.definitions.entry(name.clone()).or_default().push(def);
        }
        for (name, body) in &loaded.compute_environments {
            let rec: CeRecord = serde_json::from_str(body)
                .map_err(|e| load_err("compute_environments", name, e))?;
            sm.next_pool = sm.next_pool.max(rec.pool + 1);
            sm.core
                .apply(now, Event::PoolUpserted(pool_spec(&rec)))
                .map_err(|e| load_err("compute_environments", name, e))?;
            sm.ces.insert(name.clone(), rec);
        }
        for (name, body) in &loaded.job_queues {
            let rec: QueueRecord =
                serde_json::from_str(body).map_err(|e| load_err("job_queues", name, e))?;
            sm.next_queue = sm.next_queue.max(rec.id + 1);
            let spec = sm.queue_spec(&rec);
            sm.core
                .apply(now, Event::QueueUpserted(spec))
                .map_err(|e| load_err("job_queues", name, e))?;
            sm.queues.insert(name.clone(), rec);
        }
        if sm.ces.is_empty() && sm.queues.is_empty() && !loaded.meta.contains_key("initialized") {
            sm.create_defaults(now)?;
        }
        for (name, body) in &loaded.nodes {
            let n: nodes::NodeRecord =
                serde_json::from_str(body).map_err(|e| load_err("nodes", name, e))?;
            sm.restore_node(now, n)?;
        }
        // Time between the last commit and now the scheduler did not see:
        // it may be downtime or a step of the wall clock, and it does not
        // count towards a running attempt's timeout (no early timeouts).
        let unseen = loaded
            .meta
            .get(CLOCK_KEY)
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |last| now.saturating_sub(last));
        for (seq, id, body) in &loaded.jobs {
            let mut rec: JobRecord =
                serde_json::from_str(body).map_err(|e| load_err("jobs", id, e))?;
            for (i, n) in rec.resolved.nodes.iter_mut().enumerate() {
                n.index = i as u32;
                if n.launch == m::LaunchSpec::default() {
                    // Stored before launch specs.
                    let timeout_s = rec.spec.timeout_s;
                    n.launch = m::LaunchSpec::of(&n.container, timeout_s);
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
            sm.core
                .apply(
                    now,
                    Event::JobSubmitted {
                        spec: rec.spec.clone(),
                        restored: Some(restored),
                    },
                )
                .map_err(|e| load_err("jobs", id, e))?;
            if let Some(parent) = rec.spec.parent {
                sm.children.entry(parent.0).or_default().push(*seq);
            }
            sm.next_seq = sm.next_seq.max(seq + 1);
            sm.ids.insert(id.clone(), *seq);
            if let Some(t) = &rec.client_token {
                sm.tokens.insert(t.clone(), *seq);
            }
            sm.jobs.insert(*seq, rec);
        }
        // Restoring emits nothing of its own; drop anything it did emit.
        sm.apply_decisions(now);
        Ok(sm)
    }

    /// The token of a job's attempt: HMAC-SHA256 under the scheduler's
    /// stored key over the job id and attempt, so it is the same after a
    /// restart and different for every job and attempt.
    pub fn job_token(&self, job_id: &str, attempt: u32) -> String {
        let msg = format!("shoal job token\n{job_id}\n{attempt}");
        shoal_sigv4::hmac_sha256_hex(&self.job_key, msg.as_bytes())
    }

    fn create_defaults(&mut self, now: u64) -> Result<(), crate::Error> {
        let fail = |e: ApiError| crate::Error::Load(format!("cannot create the defaults: {e}"));
        let ce = serde_json::from_value(json!({
            "computeEnvironmentName": DEFAULT_NAME, "type": "UNMANAGED", "state": "ENABLED"
        }))
        .map_err(|e| crate::Error::Load(e.to_string()))?;
        self.create_ce(now, ce).map_err(fail)?;
        let q = serde_json::from_value(json!({
            "jobQueueName": DEFAULT_NAME, "state": "ENABLED", "priority": 1,
            "computeEnvironmentOrder": [{ "order": 1, "computeEnvironment": DEFAULT_NAME }]
        }))
        .map_err(|e| crate::Error::Load(e.to_string()))?;
        self.create_queue(now, q).map_err(fail)?;
        self.batch.put_meta("initialized", "1".into());
        Ok(())
    }

    /// The writes accumulated since the last call.
    pub fn take_batch(&mut self) -> Batch {
        for seq in std::mem::take(&mut self.dirty) {
            if let Some(rec) = self.jobs.get(&seq) {
                self.batch.put_job(seq, &rec.id, to_json(rec));
            }
        }
        std::mem::take(&mut self.batch)
    }

    /// Hand the orders of a committed batch to the workers' mailboxes.
    pub fn deliver_orders(&mut self) {
        for (node, order) in self.outbox.drain(..) {
            self.mail.push(&node, order);
        }
    }

    /// How long until something time-based must happen (attempt timeout).
    pub fn next_wake(&self, now: u64) -> Option<u64> {
        [self.core.next_deadline(), self.next_lost_check()]
            .into_iter()
            .flatten()
            .min()
            .map(|d| d.saturating_sub(now))
    }

    /// Check timeouts and, when anything changed, run a scheduling pass.
    pub fn tick(&mut self, now: u64) {
        self.check_lost(now);
        if self.core.next_deadline().is_some_and(|d| d <= now) {
            if let Err(e) = self.core.apply(now, Event::Tick) {
                tracing::error!("core tick: {e}");
            }
            self.needs_pass = true;
        }
        self.apply_decisions(now);
        if self.needs_pass {
            self.needs_pass = false;
            self.core.schedule(now);
            self.apply_decisions(now);
        }
    }

    fn apply_decisions(&mut self, now: u64) {
        for d in self.core.drain() {
            match d {
                Decision::State { job, state, reason } => {
                    if let Some(rec) = self.jobs.get_mut(&job.0) {
                        rec.status = state;
                        rec.status_reason = reason;
                        if state == JobState::Running {
                            // AWS: an attempt's startedAt is when it began RUNNING.
                            if let Some(c) = rec.current.as_mut() {
                                c.started_at = now;
                            }
                            rec.started_at.get_or_insert(now);
                        }
                        if state.is_terminal() {
                            rec.stopped_at = Some(now);
                            self.needs_pass = true;
                        }
                        self.dirty.insert(job.0);
                    }
                }
                Decision::Start {
                    job,
                    attempt,
                    placement,
                } => {
                    if let Some(rec) = self.jobs.get_mut(&job.0) {
                        rec.current = Some(CurrentAttempt {
                            attempt,
                            started_at: now,
                            placement: placement.clone(),
                            acked: BTreeSet::new(),
                            exited: BTreeSet::new(),
                        });
                        self.dirty.insert(job.0);
                    }
                    self.dispatch_start(job, attempt, &placement, None);
                }
                Decision::Kill {
                    job,
                    attempt,
                    nodes,
                    reason,
                } => {
                    self.dispatch_kill(job, attempt, &nodes, &reason);
                }
                Decision::AttemptEnded {
                    job,
                    attempt: _,
                    exit_code,
                    reason,
                    counted,
                } => {
                    if let Some(rec) = self.jobs.get_mut(&job.0) {
                        let current = rec.current.take();
                        let started_at = current.as_ref().map(|c| c.started_at).unwrap_or(now);
                        rec.last_placement = current.map(|c| (c.attempt, c.placement));
                        rec.attempts.push(AttemptRecord {
                            started_at,
                            stopped_at: now,
                            exit_code,
                            reason,
                            counted,
                        });
                        self.dirty.insert(job.0);
                    }
                    self.needs_pass = true;
                }
            }
        }
    }

    /// Handle one API call.
    pub fn handle(&mut self, now: u64, req: Request) -> Result<Vec<u8>, ApiError> {
        use Request as R;
        match req {
            R::RegisterJobDefinition(r) => self.register(*r),
            R::DescribeJobDefinitions(r) => self.describe_definitions(r),
            R::DeregisterJobDefinition(r) => self.deregister(r),
            R::SubmitJob(r, token) => self.submit(now, *r, token),
            R::DescribeJobs(r) => self.describe_jobs(r),
            R::ListJobs(r) => self.list_jobs(r),
            R::CancelJob(r) => self.cancel(now, &r.job_id, r.reason, false),
            R::TerminateJob(r) => self.cancel(now, &r.job_id, r.reason, true),
            R::CreateComputeEnvironment(r) => self.create_ce(now, r),
            R::UpdateComputeEnvironment(r) => self.update_ce(now, r),
            R::DeleteComputeEnvironment(r) => self.delete_ce(now, r),
            R::DescribeComputeEnvironments(r) => self.describe_ces(r),
            R::CreateJobQueue(r) => self.create_queue(now, r),
            R::UpdateJobQueue(r) => self.update_queue(now, r),
            R::DeleteJobQueue(r) => self.delete_queue(now, r),
            R::DescribeJobQueues(r) => self.describe_queues(r),
            R::ListNodes => self.list_nodes(),
            R::DrainNode(name, reason) => self.drain_node(now, &name, Some(reason)),
            R::ResumeNode(name) => self.drain_node(now, &name, None),
            R::RemoveNode(name) => self.remove_node(&name),
            R::RegisterWorker(r) => self.register_worker(now, r),
            R::WorkerPoll(r) => self.poll(now, r),
            R::LogLocation(id) => self.log_location(now, &id),
            R::Noop => reply(&json!({})),
        }
    }
}

mod definitions;
mod jobs;
mod nodes;
mod pools;

pub use jobs::state_name;
use pools::pool_spec;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_tokens_survive_a_restart_and_differ_per_job_and_attempt() {
        let d = tempfile::tempdir().unwrap();
        let config = Config {
            state_dir: d.path().to_path_buf(),
            ..Config::default()
        };
        let load = |store: &Store| {
            StateMachine::load(
                config.clone(),
                store,
                crate::mailbox::Mailboxes::default(),
                0,
            )
            .unwrap()
        };
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
}
