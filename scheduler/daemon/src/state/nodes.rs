//! Worker nodes: registration and reconciliation, polls (heartbeats and
//! task reports), lost-node detection, and turning the core's Start / Kill
//! decisions into orders for the workers.

use super::jobs::task_job_id;
use super::{reply, to_json, JobRecord, Jobs, Registry, Shared};
use crate::api::ApiError;
use crate::config::Timing;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shoal_core::{Event, JobKey, NodeId, NodeSpec, Placement, Resources};
use shoal_model::wire::{
    Order, PollRequest, RegisterWorkerRequest, RegisterWorkerResponse, StartTask, TaskEvent,
    TaskRef, TaskShm, WorkerPhase, HOST_TERMINATED,
};
use shoal_model::JobRef;
use std::collections::{BTreeMap, HashMap};

/// A worker node as the scheduler keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Core id.
    pub id: u32,
    /// Unique name.
    pub name: String,
    /// Private address.
    pub address: String,
    /// Port of the worker's HTTP server.
    pub port: u16,
    /// Resources.
    pub capacity: Resources,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Last poll or registration (epoch ms); not persisted meaningfully.
    #[serde(default)]
    pub last_seen: u64,
    /// Up, not yet heard from since a restart, stopping, or down.
    #[serde(default)]
    pub state: NodeState,
    /// The worker's key for log grants (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_key: Option<String>,
    /// The worker's own server speaks TLS (its certificate from the
    /// cluster CA).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls: bool,
    /// What its worker cannot enforce (from its registration).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Drained by an operator (`shoal drain`): why. Nothing new is placed
    /// there until `shoal resume`; kept across registrations and restarts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<String>,
    /// Lost, and when every task it had is surely gone (its lease, kill
    /// grace and a margin after its last contact): until then a poll brings
    /// it back with its tasks; then their attempts end.
    #[serde(skip)]
    pub fence_until: Option<u64>,
    /// Restored after a restart: its tasks are compared with what its
    /// worker lists in its first poll (or registration).
    #[serde(skip)]
    pub reconcile: bool,
    /// Its running tasks' /dev/shm peaks from its last poll (for metrics).
    #[serde(skip)]
    pub shm: Vec<TaskShm>,
    /// The allocation it belongs to (a MANAGED environment's): its group
    /// in the core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<u32>,
    /// When its allocation ends (epoch ms; 0 while not yet known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<u64>,
}

/// What the scheduler knows of a worker's node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NodeState {
    /// Registered and polling: jobs are placed here.
    #[default]
    Up,
    /// Known from the database after a restart and not yet heard from: it
    /// keeps what it runs, and gets nothing new until its worker polls.
    Unknown,
    /// Its worker is stopping: it gets nothing new.
    Stopping,
    /// Lost (missed heartbeats) or stopped; comes back on registration.
    Down,
}

impl NodeState {
    /// As `shoal nodes` shows it when nothing runs there.
    fn name(self) -> &'static str {
        match self {
            NodeState::Up => "IDLE",
            NodeState::Unknown => "UNKNOWN",
            NodeState::Stopping => "STOPPING",
            NodeState::Down => "DOWN",
        }
    }
}

impl NodeRecord {
    /// The worker's own server: `ADDRESS:PORT`, or `https://ADDRESS:PORT`
    /// when it speaks TLS.
    fn server(&self) -> String {
        let scheme = if self.tls { "https://" } else { "" };
        format!("{scheme}{}:{}", self.address, self.port)
    }
}

/// How long a log grant handed to a client stays valid.
pub const LOG_GRANT_MS: u64 = 5 * 60 * 1000;

fn node_spec(n: &NodeRecord) -> NodeSpec {
    NodeSpec {
        id: NodeId(n.id),
        name: n.name.clone(),
        capacity: n.capacity,
        labels: n.labels.clone(),
        schedulable: n.state == NodeState::Up && n.drain.is_none(),
        group: n.group,
        ends_at: n.ends_at,
    }
}

/// The worker nodes by name, their core ids, and the orders decided for
/// them: those of the batch in progress (the outbox) and those committed
/// and not yet taken (the mailboxes).
pub(super) struct Nodes {
    records: BTreeMap<String, NodeRecord>,
    /// Core id → name.
    names: HashMap<u32, String>,
    next_id: u32,
    mail: crate::mailbox::Mailboxes,
    /// Orders decided in this batch, delivered only after it commits.
    outbox: Vec<(String, Order)>,
    timing: Timing,
    /// The cluster CA's certificate (PEM) with a worker listener: handed
    /// to clients of TLS workers (`logs`).
    cluster_ca: Option<String>,
}

impl Nodes {
    pub(super) fn new(
        mail: crate::mailbox::Mailboxes,
        timing: Timing,
        cluster_ca: Option<String>,
    ) -> Nodes {
        Nodes {
            records: BTreeMap::new(),
            names: HashMap::new(),
            next_id: 1,
            mail,
            outbox: Vec::new(),
            timing,
            cluster_ca,
        }
    }

    /// Hand the orders of a committed batch to the workers' mailboxes.
    pub(super) fn deliver_orders(&mut self) {
        for (node, order) in self.outbox.drain(..) {
            if let Order::Start(s) = &order {
                shoal_model::path::mark(&s.task.job_id, "order_queued");
            }
            self.mail.push(&node, order);
        }
    }

    /// A node stored before a restart.
    pub(super) fn restore(
        &mut self,
        sh: &mut Shared,
        now: u64,
        mut n: NodeRecord,
    ) -> Result<(), crate::Error> {
        // A restarted scheduler gives every known worker a full timeout to
        // come back before declaring it lost, and places nothing on it
        // until it does: it may be gone.
        n.last_seen = now;
        n.state = NodeState::Unknown;
        n.reconcile = true;
        n.fence_until = None;
        sh.core
            .apply(now, Event::NodeUpserted(node_spec(&n)))
            .map_err(|e| crate::Error::Load(format!("node {}: {e}", n.name)))?;
        self.next_id = self.next_id.max(n.id + 1);
        self.names.insert(n.id, n.name.clone());
        self.records.insert(n.name.clone(), n);
        Ok(())
    }

    /// Compare what the scheduler has on node `name` with the tasks its
    /// worker knows (`known`: starting, running, or ended and not yet
    /// reported). A task whose Start it never took (lost with a restarted
    /// scheduler's mailbox) is sent again; a task it took and no longer
    /// knows was lost with its worker, and the node's attempts fail; a task
    /// only the worker knows is killed.
    fn reconcile(
        &mut self,
        sh: &mut Shared,
        reg: &Registry,
        jobs: &mut Jobs,
        now: u64,
        name: &str,
        known: &[TaskRef],
    ) {
        let Some(id) = self.records.get(name).map(|n| n.id) else {
            return;
        };
        let theirs: std::collections::BTreeSet<&TaskRef> = known.iter().collect();
        let mut lost = false;
        let mut resend = Vec::new();
        for (seq, task) in jobs.tasks_on(id) {
            let Some(c) = jobs.get(seq).and_then(|r| r.current.as_ref()) else {
                continue;
            };
            if theirs.contains(&task) || c.exited.contains(&task.node_index) {
                continue;
            }
            let is_start = |o: &Order| matches!(o, Order::Start(s) if s.task == task);
            if self.mail.has_pending(name, is_start)
                || self.outbox.iter().any(|(n, o)| n == name && is_start(o))
            {
                continue;
            }
            if c.acked.contains(&task.node_index) {
                lost = true;
            } else {
                resend.push((seq, task, c.placement.clone()));
            }
        }
        if lost {
            tracing::warn!(
                "worker {name} came back without some of its tasks: their attempts fail"
            );
            if let Err(e) = sh.core.apply(now, Event::NodeLost(NodeId(id))) {
                tracing::error!("core refused NodeLost for {name}: {e}");
            }
            super::apply_decisions(sh, reg, jobs, self, now);
        } else {
            for (seq, task, placement) in resend {
                tracing::info!("{task}: node {name} never took its Start order; sending it again");
                if let Some(rec) = jobs.get(seq) {
                    let only = Some(task.node_index);
                    self.dispatch_start(sh, reg, rec, task.attempt, &placement, only);
                }
            }
        }
        let ours: std::collections::BTreeSet<TaskRef> =
            jobs.tasks_on(id).into_iter().map(|(_, t)| t).collect();
        for t in known.iter().filter(|t| !ours.contains(t)) {
            let kill = Order::Kill {
                task: t.clone(),
                reason: "the scheduler does not know this task".into(),
            };
            self.outbox.push((name.to_string(), kill));
        }
    }

    pub(super) fn register_worker(
        &mut self,
        sh: &mut Shared,
        reg: &Registry,
        jobs: &mut Jobs,
        now: u64,
        r: RegisterWorkerRequest,
    ) -> Result<Vec<u8>, ApiError> {
        if r.name.is_empty() || r.name.len() > 128 {
            return Err(ApiError::field(
                "name",
                "give a node name of 1 to 128 characters",
            ));
        }
        let mut labels = r.labels.clone();
        if r.allocation.is_some() && reg.allocation_of(&r.name).is_none() {
            return Err(ApiError::AccessDenied(format!(
                "{} comes with the certificate of allocation {}, which this scheduler does not hold (it is over, or was never submitted); its workers may not join",
                r.name,
                r.allocation.as_deref().unwrap_or("").trim_end_matches('.')
            )));
        }
        let (group, ends_at) = match reg.allocation_of(&r.name) {
            Some((ce, a)) if a.state != "ENDING" => super::managed::worker_labels(ce, a, &mut labels),
            Some((ce, _)) => {
                return Err(ApiError::AccessDenied(format!(
                    "allocation {} of compute environment {} is ending; its workers may not join",
                    super::managed::allocation_name(&ce.detail.compute_environment_name, super::managed::parse_allocation(&r.name).map_or(0, |x| x.1)),
                    ce.detail.compute_environment_name
                )))
            }
            None => match super::managed::parse_allocation(&r.name) {
                Some((env, seq)) if reg.ces.get(env).is_some_and(|c| c.managed.is_some()) => {
                    return Err(ApiError::AccessDenied(format!(
                        "{} is not an allocation of compute environment {env} that this scheduler knows (it is over, or was never submitted); its workers may not join",
                        super::managed::allocation_name(env, seq)
                    )))
                }
                _ => (None, None),
            },
        };
        let id = match self.records.get(&r.name) {
            Some(n) => n.id,
            None => {
                self.next_id += 1;
                self.next_id - 1
            }
        };
        if self.records.contains_key(&r.name) {
            self.reconcile(sh, reg, jobs, now, &r.name, &r.running);
        }
        let rec = NodeRecord {
            id,
            name: r.name.clone(),
            address: r.address.clone(),
            port: r.port,
            capacity: r.capacity,
            labels,
            last_seen: now,
            state: NodeState::Up,
            log_key: r.log_key.clone(),
            tls: r.tls,
            notes: r.notes.clone(),
            drain: self.records.get(&r.name).and_then(|n| n.drain.clone()),
            fence_until: None,
            reconcile: false,
            shm: Vec::new(),
            group,
            ends_at,
        };
        sh.core
            .apply(now, Event::NodeUpserted(node_spec(&rec)))
            .map_err(super::core_err)?;
        sh.batch.put_node(&rec.name, to_json(&rec));
        self.names.insert(id, rec.name.clone());
        self.records.insert(rec.name.clone(), rec);
        sh.needs_pass = true;
        reply(&RegisterWorkerResponse {
            heartbeat_ms: self.timing.heartbeat_ms,
            lost_after_ms: self.timing.lost_after_ms,
            lease_ms: self.timing.lease_ms,
            fence_grace_ms: self.timing.fence_grace_ms,
        })
    }

    pub(super) fn poll(
        &mut self,
        sh: &mut Shared,
        reg: &Registry,
        jobs: &mut Jobs,
        now: u64,
        mut r: PollRequest,
    ) -> Result<Vec<u8>, ApiError> {
        let Some(node) = self.records.get_mut(&r.name) else {
            return Err(ApiError::field(
                "name",
                format!("node {:?} is not registered; register first", r.name),
            ));
        };
        if node.state == NodeState::Down {
            if node.fence_until.is_none() {
                return Err(ApiError::field(
                    "name",
                    format!("node {:?} was declared lost; register again", r.name),
                ));
            }
            // Back before its tasks' lease ran out: they are as they were.
            tracing::info!("worker {} is back within its lease", r.name);
            node.fence_until = None;
            node.state = NodeState::Up;
            node.last_seen = now;
            self.node_changed(sh, now, &r.name)
                .map_err(super::core_err)?;
        }
        let Some(node) = self.records.get_mut(&r.name) else {
            return Err(no_such_node(&r.name));
        };
        node.last_seen = now;
        if r.tasks.is_some() {
            node.shm = std::mem::take(&mut r.shm);
        }
        if let Some(tasks) = &r.tasks {
            let reconcile = std::mem::take(&mut node.reconcile);
            let heard = node.state == NodeState::Unknown && r.phase == WorkerPhase::Running;
            if heard {
                // Heard from after a restart: jobs may go there again.
                node.state = NodeState::Up;
            }
            let id = node.id;
            jobs.mark_taken(id, tasks);
            if reconcile {
                self.reconcile(sh, reg, jobs, now, &r.name, tasks);
            }
            if heard {
                self.node_changed(sh, now, &r.name)
                    .map_err(super::core_err)?;
            }
        }
        for rep in r.reports {
            let Some(seq) = jobs.seq_of_task(&rep.task) else {
                continue;
            };
            let job = JobKey(seq);
            jobs.note_report(seq, &rep.task, &rep.event);
            let ev = match rep.event {
                TaskEvent::Started => Event::NodeStarted {
                    job,
                    attempt: rep.task.attempt,
                    node_index: rep.task.node_index,
                },
                TaskEvent::NotStarted { reason } => Event::StartUndelivered {
                    job,
                    attempt: rep.task.attempt,
                    reason: format!("node {} did not start it: {reason}", r.name),
                },
                TaskEvent::Exited {
                    exit_code, reason, ..
                } => Event::NodeExited {
                    job,
                    attempt: rep.task.attempt,
                    node_index: rep.task.node_index,
                    exit_code,
                    reason,
                },
            };
            sh.core.apply(now, ev).map_err(super::core_err)?;
            sh.needs_pass = true;
        }
        match r.phase {
            WorkerPhase::Running => {}
            WorkerPhase::Stopping => self.node_stopping(sh, reg, jobs, now, &r.name),
            WorkerPhase::Stopped => {
                tracing::info!("worker {} stopped", r.name);
                let reason = format!("{HOST_TERMINATED}: worker {} stopped", r.name);
                self.node_down(sh, reg, jobs, now, &r.name, Some(reason));
            }
        }
        reply(&json!({}))
    }

    /// The worker of `name` is stopping: nothing new goes there, and the
    /// Start orders it has not taken go back to their jobs.
    fn node_stopping(
        &mut self,
        sh: &mut Shared,
        reg: &Registry,
        jobs: &mut Jobs,
        now: u64,
        name: &str,
    ) {
        let Some(n) = self.records.get_mut(name) else {
            return;
        };
        if n.state == NodeState::Stopping {
            return;
        }
        tracing::info!("worker {name} is stopping: nothing new is placed there");
        n.state = NodeState::Stopping;
        if let Err(e) = self.node_changed(sh, now, name) {
            tracing::error!("core refused NodeUpserted for {name}: {e}");
        }
        self.withdraw_starts(
            sh,
            reg,
            jobs,
            now,
            name,
            &format!("the worker of node {name} is stopping"),
        );
    }

    /// Tell the core what node `name` is now (capacity, labels, whether it
    /// takes new work: [`node_spec`]) and schedule again.
    fn node_changed(
        &mut self,
        sh: &mut Shared,
        now: u64,
        name: &str,
    ) -> Result<(), shoal_core::CoreError> {
        let Some(n) = self.records.get(name) else {
            return Ok(());
        };
        sh.core.apply(now, Event::NodeUpserted(node_spec(n)))?;
        sh.needs_pass = true;
        Ok(())
    }

    /// Start orders for `name` that it has not taken (in its mailbox, or
    /// decided in this batch) never reach it: their attempts end without
    /// counting and the jobs wait to start again.
    fn withdraw_starts(
        &mut self,
        sh: &mut Shared,
        reg: &Registry,
        jobs: &mut Jobs,
        now: u64,
        name: &str,
        why: &str,
    ) {
        let mut starts = self.mail.withdraw_starts(name);
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.outbox)
            .into_iter()
            .partition(|(n, o)| n == name && matches!(o, Order::Start(_)));
        self.outbox = rest;
        starts.extend(mine.into_iter().map(|(_, o)| o));
        for o in starts {
            let Order::Start(s) = o else { continue };
            let Some(seq) = jobs.seq_of_task(&s.task) else {
                continue;
            };
            let ev = Event::StartUndelivered {
                job: JobKey(seq),
                attempt: s.task.attempt,
                reason: format!("the Start order never reached node {name} ({why})"),
            };
            if let Err(e) = sh.core.apply(now, ev) {
                tracing::error!("core refused StartUndelivered for {}: {e}", s.task);
            }
            // Nothing of it runs there: the job need not wait for that node.
            let gone = Event::NodeExited {
                job: JobKey(seq),
                attempt: s.task.attempt,
                node_index: s.task.node_index,
                exit_code: None,
                reason: "never started".into(),
            };
            if let Err(e) = sh.core.apply(now, gone) {
                tracing::error!("core refused NodeExited for {}: {e}", s.task);
            }
        }
        super::apply_decisions(sh, reg, jobs, self, now);
    }

    /// Node `name` is down: what was still to be delivered to it goes back
    /// to its jobs, and every attempt with a node there fails with
    /// `reason` (None: "node NAME was lost").
    fn node_down(
        &mut self,
        sh: &mut Shared,
        reg: &Registry,
        jobs: &mut Jobs,
        now: u64,
        name: &str,
        reason: Option<String>,
    ) {
        let Some(n) = self.records.get_mut(name) else {
            return;
        };
        n.state = NodeState::Down;
        n.fence_until = None;
        n.shm.clear();
        let id = NodeId(n.id);
        let why = reason.clone().unwrap_or_else(|| "it was lost".into());
        self.withdraw_starts(sh, reg, jobs, now, name, &why);
        self.mail.clear(name);
        let ev = match reason {
            Some(reason) => Event::NodeDown { node: id, reason },
            None => Event::NodeLost(id),
        };
        if let Err(e) = sh.core.apply(now, ev) {
            tracing::error!("core refused the loss of {name}: {e}");
        }
        sh.needs_pass = true;
    }

    /// Declare nodes that missed their heartbeats lost (nothing new goes
    /// there, and the Starts they never took go back to their jobs), and end
    /// the attempts of lost nodes whose tasks are surely gone (their lease,
    /// kill grace and margin after their last contact): only then may those
    /// jobs start again elsewhere.
    pub(super) fn check_lost(
        &mut self,
        sh: &mut Shared,
        reg: &Registry,
        jobs: &mut Jobs,
        now: u64,
    ) {
        let after = self.timing.lost_after_ms;
        let silent: Vec<String> = self
            .records
            .values()
            .filter(|n| n.state != NodeState::Down && now.saturating_sub(n.last_seen) > after)
            .map(|n| n.name.clone())
            .collect();
        for name in silent {
            let Some(n) = self.records.get_mut(&name) else {
                continue;
            };
            let fence = n.last_seen + self.timing.fence_ms();
            tracing::warn!(
                "worker {name} missed its heartbeats for {after} ms: declared lost; its tasks are taken for gone in {} ms (lease, kill grace, margin)",
                fence.saturating_sub(now)
            );
            n.state = NodeState::Down;
            n.fence_until = Some(fence);
            if let Err(e) = self.node_changed(sh, now, &name) {
                tracing::error!("core refused NodeUpserted for {name}: {e}");
            }
            self.withdraw_starts(sh, reg, jobs, now, &name, "it was lost");
        }
        let fenced: Vec<String> = self
            .records
            .values()
            .filter(|n| n.fence_until.is_some_and(|t| t <= now))
            .map(|n| n.name.clone())
            .collect();
        for name in fenced {
            tracing::warn!("worker {name}: its tasks' lease ran out; their attempts end");
            self.node_down(sh, reg, jobs, now, &name, None);
        }
    }

    /// `shoal drain NODE` (`reason` Some) or `shoal resume NODE` (None).
    pub(super) fn drain_node(
        &mut self,
        sh: &mut Shared,
        now: u64,
        name: &str,
        reason: Option<String>,
    ) -> Result<Vec<u8>, ApiError> {
        let n = self
            .records
            .get_mut(name)
            .ok_or_else(|| no_such_node(name))?;
        n.drain = reason;
        let body = to_json(&*n);
        self.node_changed(sh, now, name).map_err(super::core_err)?;
        sh.batch.put_node(name, body);
        reply(&json!({}))
    }

    /// `shoal remove-node NODE`: forget a DOWN node with nothing on it.
    pub(super) fn remove_node(
        &mut self,
        sh: &mut Shared,
        jobs: &Jobs,
        name: &str,
    ) -> Result<Vec<u8>, ApiError> {
        let n = self.records.get(name).ok_or_else(|| no_such_node(name))?;
        if n.state != NodeState::Down {
            return Err(ApiError::field(
                "name",
                format!(
                    "node {name} is {}, not DOWN: stop its worker first (only a node that is gone is removed; to keep jobs off it, drain it)",
                    n.state.name()
                ),
            ));
        }
        let id = n.id;
        if !jobs.tasks_on(id).is_empty() {
            return Err(ApiError::field(
                "name",
                format!("node {name} still holds attempts; wait for them to end"),
            ));
        }
        self.records.remove(name);
        self.names.remove(&id);
        self.mail.clear(name);
        sh.batch.delete_node(name);
        reply(&json!({}))
    }

    /// The names of the Up workers whose names begin with `prefix` (an
    /// allocation's).
    pub(super) fn up_with_prefix(&self, prefix: &str) -> Vec<String> {
        self.records
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, n)| n.state == NodeState::Up)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// An allocation's workers (names beginning with `prefix`): how many
    /// are Up, and whether none of them holds anything.
    pub(super) fn allocation_workers(&self, core: &shoal_core::Core, prefix: &str) -> (u32, bool) {
        let mut up = 0;
        let mut idle = true;
        for (_, n) in self
            .records
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            if n.state == NodeState::Up {
                up += 1;
                idle &= core.node_free(NodeId(n.id)) == Some(n.capacity);
            }
        }
        (up, idle)
    }

    /// An allocation's end became known (or changed): its workers' end.
    pub(super) fn set_allocation_end(
        &mut self,
        sh: &mut Shared,
        now: u64,
        prefix: &str,
        end_ms: Option<u64>,
    ) {
        let Some(end) = end_ms else { return };
        let names: Vec<String> = self
            .records
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, n)| n.ends_at != Some(end))
            .map(|(k, _)| k.clone())
            .collect();
        for name in names {
            if let Some(n) = self.records.get_mut(&name) {
                n.ends_at = Some(end);
                n.labels.insert(
                    super::managed::ALLOCATION_END_LABEL.into(),
                    (end / 1000).to_string(),
                );
                sh.batch.put_node(&name, to_json(&*n));
            }
            if let Err(e) = self.node_changed(sh, now, &name) {
                tracing::error!("core refused NodeUpserted for {name}: {e}");
            }
        }
    }

    /// An allocation is over: its workers that are still up are lost (what
    /// runs there fails with `why`), and those with nothing left are
    /// forgotten.
    pub(super) fn allocation_over(
        &mut self,
        sh: &mut Shared,
        reg: &Registry,
        jobs: &mut Jobs,
        now: u64,
        prefix: &str,
        why: &str,
    ) {
        let names: Vec<String> = self
            .records
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for name in names {
            if self.records[&name].state != NodeState::Down {
                let reason = format!("{HOST_TERMINATED}: node {name} is gone: {why}");
                self.node_down(sh, reg, jobs, now, &name, Some(reason));
            }
        }
        self.sweep_allocation_nodes(sh, reg, jobs, now);
    }

    /// Forget the DOWN workers of allocations that are over and hold
    /// nothing any more.
    pub(super) fn sweep_allocation_nodes(
        &mut self,
        sh: &mut Shared,
        reg: &Registry,
        jobs: &Jobs,
        _now: u64,
    ) {
        let over: Vec<String> = self
            .records
            .values()
            .filter(|n| n.state == NodeState::Down && n.group.is_some())
            .filter(|n| reg.allocation_of(&n.name).is_none())
            .filter(|n| jobs.tasks_on(n.id).is_empty())
            .map(|n| n.name.clone())
            .collect();
        for name in over {
            let _ = self.remove_node(sh, jobs, &name);
        }
    }

    /// The name of the node the core knows as `id`.
    pub(super) fn node_name(&self, id: u32) -> Option<String> {
        self.names.get(&id).cloned()
    }

    /// Earliest time a node would be declared lost.
    pub(super) fn next_lost_check(&self) -> Option<u64> {
        self.records
            .values()
            .filter_map(|n| match n.state {
                NodeState::Down => n.fence_until,
                _ => Some(n.last_seen + self.timing.lost_after_ms + 1),
            })
            .min()
    }

    /// Send a Start order to every node of a placement (`only`: to that
    /// node index alone).
    pub(super) fn dispatch_start(
        &mut self,
        sh: &Shared,
        reg: &Registry,
        rec: &JobRecord,
        attempt: u32,
        placement: &[Placement],
        only: Option<u32>,
    ) {
        let mut by_index: Vec<&Placement> = placement.iter().collect();
        by_index.sort_by_key(|p| p.node_index);
        let addr = |p: &Placement| {
            self.names
                .get(&p.node.0)
                .and_then(|n| self.records.get(n))
                .map(|n| n.address.clone())
                .unwrap_or_default()
        };
        let main = rec.resolved.main_node;
        let main_addr = by_index
            .iter()
            .find(|p| p.node_index == main)
            .map(|p| addr(p))
            .unwrap_or_default();
        let addrs: Vec<String> = by_index.iter().map(|p| addr(p)).collect();
        let workers: Vec<String> = by_index
            .iter()
            .map(|p| {
                self.names
                    .get(&p.node.0)
                    .and_then(|n| self.records.get(n))
                    .map(NodeRecord::server)
                    .unwrap_or_default()
            })
            .collect();
        let mut hostfile = String::new();
        for p in by_index
            .iter()
            .filter(|p| p.node_index == main)
            .chain(by_index.iter().filter(|p| p.node_index != main))
        {
            hostfile.push_str(&format!("{} slots={}\n", addr(p), p.alloc.vcpus.max(1)));
        }
        let ce = reg.ce_for(&rec.queue);
        let token = sh.job_token(&rec.id, attempt);
        for p in by_index
            .iter()
            .filter(|p| only.is_none_or(|i| i == p.node_index))
        {
            let Some(node_name) = self.names.get(&p.node.0).cloned() else {
                continue;
            };
            let Some(rn) = rec.resolved.nodes.get(p.node_index as usize) else {
                continue;
            };
            let task = TaskRef {
                job_id: task_job_id(rec, p.node_index),
                attempt,
                node_index: p.node_index,
            };
            let mut launch = rn.launch.clone();
            let mut set = |k: &str, v: String| launch.set_env(k, v);
            set("AWS_BATCH_JOB_ID", task.job_id.to_string());
            set("AWS_BATCH_JOB_ATTEMPT", (attempt + 1).to_string());
            set("AWS_BATCH_JQ_NAME", rec.queue.clone());
            set("AWS_BATCH_CE_NAME", ce.clone());
            if let Some(a) = &rec.array {
                if let Some(i) = a.index {
                    set("AWS_BATCH_JOB_ARRAY_INDEX", i.to_string());
                    set("AWS_BATCH_JOB_ARRAY_SIZE", a.size.to_string());
                }
            }
            if rec.resolved.multinode {
                set("AWS_BATCH_JOB_NODE_INDEX", p.node_index.to_string());
                set(
                    "AWS_BATCH_JOB_NUM_NODES",
                    rec.resolved.num_nodes.to_string(),
                );
                set("AWS_BATCH_JOB_MAIN_NODE_INDEX", main.to_string());
                set(
                    "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS",
                    main_addr.clone(),
                );
            }
            set("SHOAL_NODE", node_name.clone());
            set("SHOAL_NODE_ADDRS", addrs.join(","));
            set("SHOAL_NODE_WORKERS", workers.join(","));
            let order = StartTask {
                task,
                launch,
                hostfile: hostfile.clone(),
                alloc: p.alloc,
                job_token: Some(token.clone()),
            };
            self.outbox.push((node_name, Order::Start(Box::new(order))));
        }
    }

    /// Send Kill orders for an attempt to the given nodes.
    pub(super) fn dispatch_kill(
        &mut self,
        rec: &JobRecord,
        attempt: u32,
        nodes: &[NodeId],
        reason: &str,
    ) {
        let placement: Vec<Placement> = match (&rec.current, &rec.last_placement) {
            (Some(c), _) if c.attempt == attempt => c.placement.clone(),
            (_, Some((a, p))) if *a == attempt => p.clone(),
            _ => Vec::new(),
        };
        for n in nodes {
            let Some(name) = self.names.get(&n.0) else {
                continue;
            };
            for p in placement.iter().filter(|p| p.node == *n) {
                let task = TaskRef {
                    job_id: task_job_id(rec, p.node_index),
                    attempt,
                    node_index: p.node_index,
                };
                self.outbox.push((
                    name.clone(),
                    Order::Kill {
                        task,
                        reason: reason.to_string(),
                    },
                ));
            }
        }
    }

    /// Live workers whose labels match `selector`, their vCPUs, and their
    /// notes (`NODE: NOTE`).
    pub(super) fn workers_of(
        &self,
        selector: &BTreeMap<String, String>,
    ) -> (Vec<String>, u32, Vec<String>) {
        let hits: Vec<&NodeRecord> = self
            .records
            .values()
            .filter(|n| {
                n.state != NodeState::Down
                    && selector.iter().all(|(k, v)| n.labels.get(k) == Some(v))
            })
            .collect();
        (
            hits.iter().map(|n| n.name.clone()).collect(),
            hits.iter().map(|n| n.capacity.vcpus).sum(),
            hits.iter()
                .flat_map(|n| n.notes.iter().map(move |x| format!("{}: {x}", n.name)))
                .collect(),
        )
    }

    pub(super) fn list_nodes(&self, core: &shoal_core::Core) -> Result<Vec<u8>, ApiError> {
        let nodes = self.records.values().map(|n| node_info(n, core)).collect();
        reply(&shoal_model::ListNodesResponse { nodes })
    }

    /// Every node as `shoal nodes` shows it, with its record.
    pub(super) fn infos<'a>(
        &'a self,
        core: &'a shoal_core::Core,
    ) -> impl Iterator<Item = (&'a NodeRecord, shoal_model::NodeInfo)> + 'a {
        self.records.values().map(move |n| (n, node_info(n, core)))
    }

    /// Where a task's logs are: the worker's base URL, and a grant (query
    /// string) that lets the caller read this task's log there for a while.
    pub(super) fn log_location(
        &self,
        jobs: &Jobs,
        now: u64,
        job_id: &str,
    ) -> Result<Vec<u8>, ApiError> {
        let r: JobRef = job_id
            .parse()
            .map_err(|e: shoal_model::JobRefError| ApiError::field("jobId", e.to_string()))?;
        let (base, node_index) = (r.job.as_str(), r.node.unwrap_or(0));
        let rec = jobs
            .by_id(base)
            .ok_or_else(|| ApiError::field("jobId", format!("no job with id {base:?}")))?;
        let placement = rec
            .current
            .as_ref()
            .map(|c| (c.attempt, c.placement.clone()))
            .or_else(|| rec.last_placement.clone());
        let Some((attempt, placement)) = placement else {
            return Err(ApiError::field(
                "jobId",
                format!("{job_id} has not run yet, so it has no logs"),
            ));
        };
        let p = placement
            .iter()
            .find(|p| p.node_index == node_index)
            .ok_or_else(|| ApiError::field("jobId", format!("{base} has no node {node_index}")))?;
        let n = self
            .names
            .get(&p.node.0)
            .and_then(|n| self.records.get(n))
            .ok_or_else(|| ApiError::Server("the node that ran this task is unknown".into()))?;
        let task = TaskRef {
            job_id: task_job_id(rec, node_index),
            attempt,
            node_index,
        };
        let grant = n
            .log_key
            .as_deref()
            .and_then(|h| hex::decode(h).ok())
            .map(|key| {
                let expires = now + LOG_GRANT_MS;
                let msg = shoal_model::wire::log_grant_message(&task.dir_name(), expires);
                format!(
                    "expires={expires}&sig={}",
                    shoal_sigv4::hmac_sha256_hex(&key, msg.as_bytes())
                )
            });
        reply(&shoal_model::LogLocation {
            url: format!(
                "{}://{}:{}/logs",
                if n.tls { "https" } else { "http" },
                n.address,
                n.port
            ),
            task,
            node: n.name.clone(),
            grant,
            // The cluster CA (public), against which the client verifies
            // a TLS worker: users need no file of their own.
            ca: if n.tls { self.cluster_ca.clone() } else { None },
        })
    }
}

/// A node as `shoal nodes` shows it: its state (IDLE, MIXED, ALLOCATED,
/// DRAINING, DRAINED, UNKNOWN, STOPPING, DOWN) and what is allocated.
fn node_info(n: &NodeRecord, core: &shoal_core::Core) -> shoal_model::NodeInfo {
    let free = core.node_free(NodeId(n.id)).unwrap_or_default();
    let used = match n.state {
        NodeState::Down => 0,
        _ => n.capacity.vcpus.saturating_sub(free.vcpus),
    };
    let down = n.state == NodeState::Down;
    let state = if n.state == NodeState::Up && n.drain.is_some() {
        if used == 0 {
            "DRAINED"
        } else {
            "DRAINING"
        }
    } else if n.state != NodeState::Up || used == 0 {
        n.state.name()
    } else if free.vcpus == 0 {
        "ALLOCATED"
    } else {
        "MIXED"
    };
    shoal_model::NodeInfo {
        name: n.name.clone(),
        state: state.to_string(),
        address: n.address.clone(),
        port: n.port,
        vcpus: n.capacity.vcpus,
        vcpus_allocated: used,
        memory_mib: n.capacity.memory_mib,
        memory_free_mib: if down { 0 } else { free.memory_mib },
        shm_mib: n.capacity.shm_mib,
        shm_free_mib: if down { 0 } else { free.shm_mib },
        labels: n.labels.clone(),
        notes: n.notes.clone(),
        drain_reason: n.drain.clone(),
    }
}

fn no_such_node(name: &str) -> ApiError {
    ApiError::field(
        "name",
        format!("no node named {name:?}; shoal nodes lists them"),
    )
}
