//! MANAGED compute environments whose nodes come from Slurm (issue 18):
//! each one's allocations as stored, the allocator's round (what the core
//! could not place → [`allocator::plan`] → Slurm commands, sent after the
//! batch commits), the Slurm thread's reports, and the allocations' workers
//! as they register.

use super::allocator::{self, Action, AllocView};
use super::nodes::Nodes;
use super::registry::{CeRecord, Registry};
use super::{to_json, Jobs, Shared};
use crate::slurm::{self, Command, Report};
use serde::{Deserialize, Serialize};
use shoal_core::{QueueId, Waiting};
use shoal_model as m;
use shoal_model::managed::{AllocationDetail, ManagedSpec, Provider};
use std::collections::{BTreeMap, HashMap};

/// The label a MANAGED environment's workers carry (its name): its
/// selector.
pub const ENVIRONMENT_LABEL: &str = "shoal.environment";
/// The label of an allocation's workers: Slurm's job id.
pub const ALLOCATION_LABEL: &str = "shoal.allocation";
/// The label of an allocation's workers: its end time (epoch seconds).
pub const ALLOCATION_END_LABEL: &str = "shoal.allocation-end";

/// Consecutive failures to submit or start an allocation after which the
/// environment is INVALID.
pub const MAX_FAILURES: u32 = 3;

/// How many waiting jobs one allocator round looks at.
const WAITING_LOOKED_AT: usize = 256;

/// How often the allocator runs at most (ms).
const ROUND_MS: u64 = 200;

/// A MANAGED environment's provider state, stored with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Managed {
    /// Capacity and Slurm settings.
    pub spec: ManagedSpec,
    /// Its allocations not yet over.
    #[serde(default)]
    pub allocations: Vec<Allocation>,
    /// The next allocation's number.
    #[serde(default)]
    pub next_seq: u32,
    /// Allocations in a row that failed to submit or to start.
    #[serde(default)]
    pub failures: u32,
    /// INVALID, and why (no more allocations until it is updated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
    /// CPUs of one of the partition's nodes, once Slurm said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_vcpus: Option<u32>,
    /// A probe of the partition is on its way.
    #[serde(skip)]
    pub probing: bool,
}

/// One allocation (a Slurm job).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Allocation {
    /// Its number in its environment.
    pub seq: u32,
    /// Slurm's job id, once sbatch answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<u64>,
    /// SUBMITTING, PENDING, RUNNING or ENDING.
    pub state: String,
    /// Nodes asked for.
    pub nodes: u32,
    /// Nodes given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_names: Vec<String>,
    /// vCPUs it holds or will.
    pub vcpus: u32,
    /// `--time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_limit_s: Option<u64>,
    /// When it was submitted (ms).
    pub submitted_at: u64,
    /// When it ends at the latest (epoch ms), once it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_ms: Option<u64>,
    /// A worker of it has registered.
    #[serde(default)]
    pub joined: bool,
    /// Submitted by this run of the scheduler (a stored SUBMITTING one
    /// is adopted from squeue by its name, or dropped).
    #[serde(skip)]
    pub in_flight: bool,
    /// Since when every node of it has had nothing to run (ms).
    #[serde(skip)]
    pub idle_since: Option<u64>,
}

impl Managed {
    /// A new environment's state.
    pub fn new(spec: ManagedSpec, invalid: Option<String>) -> Managed {
        Managed {
            spec,
            allocations: Vec::new(),
            next_seq: 1,
            failures: 0,
            invalid,
            node_vcpus: None,
            probing: false,
        }
    }

    /// vCPUs its allocations hold or will (not those being ended).
    pub fn held_vcpus(&self) -> u32 {
        self.allocations
            .iter()
            .filter(|a| a.state != "ENDING")
            .map(|a| a.vcpus)
            .sum()
    }
}

/// `ENV.SEQ`, the name of allocation `seq` of environment `env`.
pub fn allocation_name(env: &str, seq: u32) -> String {
    format!("{env}.{seq}")
}

/// `(ENV, SEQ)` of an allocation's name (`ENV.SEQ`) or of one of its
/// workers' (`ENV.SEQ.NODE`); environment names hold no dots.
pub fn parse_allocation(name: &str) -> Option<(&str, u32)> {
    let (env, rest) = name.split_once('.')?;
    let seq = rest.split('.').next()?;
    Some((env, seq.parse().ok()?))
}

impl Registry {
    /// The MANAGED environments' records, by name.
    fn managed_mut(&mut self) -> impl Iterator<Item = (&String, &mut CeRecord)> {
        self.ces.iter_mut().filter(|(_, c)| c.managed.is_some())
    }

    /// The allocation a worker named `ENV.SEQ.NODE` belongs to.
    pub(super) fn allocation_of(&self, worker: &str) -> Option<(&CeRecord, &Allocation)> {
        let (env, seq) = parse_allocation(worker)?;
        let ce = self.ces.get(env)?;
        let a = ce
            .managed
            .as_ref()?
            .allocations
            .iter()
            .find(|a| a.seq == seq)?;
        Some((ce, a))
    }

    /// A MANAGED environment's allocations, status and current
    /// desiredvCpus, as DescribeComputeEnvironments shows them.
    pub(super) fn describe_managed(&self, d: &mut m::ComputeEnvironmentDetail, nodes: &Nodes) {
        let Some(ce) = self.ces.get(&d.compute_environment_name) else {
            return;
        };
        let Some(mg) = &ce.managed else { return };
        let name = &d.compute_environment_name;
        d.allocations = mg
            .allocations
            .iter()
            .map(|a| {
                let an = allocation_name(name, a.seq);
                AllocationDetail {
                    slurm_job_id: a.job_id.map(|i| i.to_string()),
                    state: a.state.clone(),
                    node_count: a.nodes,
                    nodes: a.node_names.clone(),
                    vcpus: a.vcpus,
                    time_limit_seconds: a.time_limit_s,
                    submitted_at: a.submitted_at,
                    end_time: a.end_ms,
                    workers: nodes.up_with_prefix(&format!("{an}.")),
                    name: an,
                }
            })
            .collect();
        let desired = mg.held_vcpus().max(mg.spec.min_vcpus);
        if let Some(cr) = d.compute_resources.as_mut().and_then(|v| v.as_object_mut()) {
            cr.insert("desiredvCpus".into(), desired.into());
        }
        match &mg.invalid {
            Some(why) => {
                d.status = Some("INVALID".into());
                d.status_reason = Some(why.clone());
            }
            None => {
                d.status = Some("VALID".into());
                let running = mg
                    .allocations
                    .iter()
                    .filter(|a| a.state == "RUNNING")
                    .count();
                let waiting = mg.allocations.len() - running;
                d.status_reason = Some(format!(
                    "ComputeEnvironment Healthy; {running} allocations running, {waiting} on their way, {desired} of {} vCPUs",
                    mg.spec.max_vcpus
                ));
            }
        }
    }
}

/// What the Slurm side of the state machine keeps between batches.
#[derive(Debug, Default)]
pub(super) struct SlurmLink {
    /// Where commands go (None: no Slurm thread, e.g. in tests).
    pub tx: Option<std::sync::mpsc::Sender<Command>>,
    /// Commands of the batch in progress, sent once it commits.
    pub out: Vec<Command>,
    /// When the last poll was asked for (ms).
    pub last_poll: u64,
    /// When the allocator last ran (ms).
    pub last_round: u64,
    /// Why the scheduler cannot run allocations' workers (no worker
    /// listener, no CA key), if it cannot.
    pub unready: Option<String>,
}

impl SlurmLink {
    /// Send what the committed batch decided.
    pub fn deliver(&mut self) {
        let out = std::mem::take(&mut self.out);
        if let Some(tx) = &self.tx {
            for c in out {
                let _ = tx.send(c);
            }
        }
    }
}

/// One allocator round: for each MANAGED environment, what to submit
/// and what to end; a Slurm poll when one is due.
pub(super) fn round(sh: &mut Shared, reg: &mut Registry, nodes: &mut Nodes, jobs: &Jobs, now: u64) {
    if now.saturating_sub(sh.slurm.last_round) < ROUND_MS {
        return;
    }
    sh.slurm.last_round = now;
    if !reg.ces.values().any(|c| c.managed.is_some()) {
        return;
    }
    // Per queue, the environment its waiting jobs ask nodes of: its first
    // ENABLED and VALID MANAGED one.
    let mut target: HashMap<QueueId, String> = HashMap::new();
    for q in reg.queues.values() {
        let mut order: Vec<&m::ComputeEnvironmentOrder> =
            q.detail.compute_environment_order.iter().collect();
        order.sort_by_key(|o| o.order);
        let first = order.iter().find_map(|o| {
            let name = m::resource_name_from_ref(
                m::ResourceKind::ComputeEnvironment,
                &o.compute_environment,
            )
            .ok()?;
            let ce = reg.ces.get(&name)?;
            let mg = ce.managed.as_ref()?;
            (ce.detail.state.as_deref() != Some("DISABLED") && mg.invalid.is_none()).then_some(name)
        });
        if let Some(name) = first {
            target.insert(QueueId(q.id), name);
        }
    }
    let waiting: Vec<Waiting> = sh
        .core
        .waiting(WAITING_LOOKED_AT, |q| target.contains_key(&q));
    let mut for_env: BTreeMap<&str, Vec<Waiting>> = BTreeMap::new();
    for w in waiting {
        if let Some(env) = target.get(&w.queue) {
            for_env.entry(env.as_str()).or_default().push(w);
        }
    }
    let unready = sh.slurm.unready.clone();
    let mut coming = false;
    let mut any = false;
    let mut changed: Vec<String> = Vec::new();
    let mut out: Vec<Command> = Vec::new();
    for (name, ce) in reg.managed_mut() {
        let enabled = ce.detail.state.as_deref() != Some("DISABLED");
        let mg = ce.managed.as_mut().expect("managed");
        let Provider::Slurm(settings) = &mg.spec.provider;
        let settings = settings.clone();
        let Some(node_vcpus) = mg.node_vcpus else {
            let needed = for_env.contains_key(name.as_str()) || mg.spec.min_vcpus > 0;
            if needed && !mg.probing {
                mg.probing = true;
                out.push(Command::Probe {
                    env: name.clone(),
                    partition: settings.partition.clone(),
                });
            }
            continue;
        };
        let mut views = Vec::new();
        for a in &mut mg.allocations {
            let prefix = format!("{}.", allocation_name(name, a.seq));
            let (registered, idle) = nodes.allocation_workers(&sh.core, &prefix);
            if a.state == "RUNNING" && registered > 0 && idle {
                a.idle_since.get_or_insert(now);
            } else {
                a.idle_since = None;
            }
            let view = AllocView {
                seq: a.seq,
                coming: a.state == "SUBMITTING"
                    || a.state == "PENDING"
                    || (a.state == "RUNNING" && registered < a.nodes),
                ending: a.state == "ENDING",
                nodes: a.nodes,
                registered,
                vcpus: a.vcpus,
                time_limit_s: a.time_limit_s,
                idle_ms: a.idle_since.map(|t| now.saturating_sub(t)),
            };
            coming |= view.coming;
            any = true;
            views.push(view);
        }
        let waiting = for_env.get(name.as_str()).map_or(&[][..], |v| v.as_slice());
        let may_submit = enabled && mg.invalid.is_none() && unready.is_none();
        let actions = allocator::plan(
            &mg.spec,
            settings.time_limit_s,
            settings.idle_timeout_s,
            node_vcpus,
            &views,
            waiting,
            may_submit,
        );
        for act in actions {
            match act {
                Action::Submit {
                    nodes: n,
                    time_limit_s,
                } => {
                    let seq = mg.next_seq;
                    mg.next_seq += 1;
                    let an = allocation_name(name, seq);
                    tracing::info!(
                        "environment {name}: asking Slurm for allocation {an} of {n} nodes{}",
                        time_limit_s.map_or(String::new(), |t| format!(" for {t} s"))
                    );
                    mg.allocations.push(Allocation {
                        seq,
                        job_id: None,
                        state: "SUBMITTING".into(),
                        nodes: n,
                        node_names: Vec::new(),
                        vcpus: n * node_vcpus,
                        time_limit_s,
                        submitted_at: now,
                        end_ms: None,
                        joined: false,
                        in_flight: true,
                        idle_since: None,
                    });
                    out.push(Command::Submit {
                        name: an,
                        nodes: n,
                        time_limit_s,
                        settings: settings.clone(),
                    });
                    coming = true;
                    any = true;
                    changed.push(name.clone());
                }
                Action::Cancel { seq } => {
                    if let Some(a) = mg.allocations.iter_mut().find(|a| a.seq == seq) {
                        tracing::info!(
                            "environment {name}: allocation {} idle for {} s: ending it",
                            allocation_name(name, seq),
                            settings.idle_timeout_s
                        );
                        a.state = "ENDING".into();
                        if let Some(id) = a.job_id {
                            out.push(Command::Cancel {
                                name: allocation_name(name, seq),
                                job_id: id,
                            });
                        }
                        changed.push(name.clone());
                    }
                }
            }
        }
    }
    for name in changed {
        let rec = &reg.ces[&name];
        sh.batch.put_compute_environment(&name, to_json(rec));
    }
    let every = if coming {
        slurm::POLL_COMING
    } else {
        slurm::POLL_RUNNING
    };
    if any && now.saturating_sub(sh.slurm.last_poll) >= every.as_millis() as u64 {
        sh.slurm.last_poll = now;
        out.push(Command::Poll);
    }
    sh.slurm.out.extend(out);
    nodes.sweep_allocation_nodes(sh, reg, jobs, now);
}

/// A report of the Slurm thread.
pub(super) fn report(
    sh: &mut Shared,
    reg: &mut Registry,
    nodes: &mut Nodes,
    jobs: &mut Jobs,
    now: u64,
    r: Report,
) {
    let mut changed: Vec<String> = Vec::new();
    let mut gone: Vec<(String, String)> = Vec::new();
    match r {
        Report::Probed { env, cpus } => {
            if let Some(mg) = reg.ces.get_mut(&env).and_then(|c| c.managed.as_mut()) {
                mg.probing = false;
                mg.node_vcpus = Some(cpus.unwrap_or(1).max(1));
                if cpus.is_none() {
                    tracing::warn!("environment {env}: sinfo did not say how many CPUs a node has; sizing allocations as if 1");
                }
                changed.push(env);
            }
        }
        Report::Submitted { name, result } => {
            let Some((env, seq)) = parse_allocation(&name) else {
                return;
            };
            let env = env.to_string();
            let mg = reg.ces.get_mut(&env).and_then(|c| c.managed.as_mut());
            let held = mg
                .as_ref()
                .is_some_and(|mg| mg.allocations.iter().any(|a| a.seq == seq));
            let (Some(mg), true) = (mg, held) else {
                // Its environment was deleted meanwhile: it ends at once.
                if let Ok(job_id) = result {
                    sh.slurm.out.push(Command::Cancel {
                        name: name.clone(),
                        job_id,
                    });
                }
                sh.slurm.out.push(Command::Forget { name });
                return;
            };
            match result {
                Ok(id) => {
                    if let Some(a) = mg.allocations.iter_mut().find(|a| a.seq == seq) {
                        a.job_id = Some(id);
                        if a.state == "SUBMITTING" {
                            a.state = "PENDING".into();
                        } else if a.state == "ENDING" {
                            sh.slurm.out.push(Command::Cancel {
                                name: name.clone(),
                                job_id: id,
                            });
                        }
                    }
                }
                Err(e) => {
                    mg.allocations.retain(|a| a.seq != seq);
                    fail(mg, &env, &format!("sbatch failed: {e}"));
                    sh.slurm.out.push(Command::Forget { name });
                }
            }
            changed.push(env);
        }
        Report::Jobs(list) => {
            let by_id: HashMap<u64, &slurm::SlurmJob> =
                list.iter().map(|j| (j.job_id, j)).collect();
            let by_name: HashMap<&str, &slurm::SlurmJob> =
                list.iter().map(|j| (j.name.as_str(), j)).collect();
            for (env, ce) in reg.managed_mut() {
                let mg = ce.managed.as_mut().expect("managed");
                let mut keep = Vec::new();
                let mut failed = None;
                for mut a in std::mem::take(&mut mg.allocations) {
                    let an = allocation_name(env, a.seq);
                    let row = match a.job_id {
                        Some(id) => by_id.get(&id).copied(),
                        None if a.in_flight => {
                            // sbatch has not answered yet.
                            keep.push(a);
                            continue;
                        }
                        None => by_name.get(an.as_str()).copied(),
                    };
                    let Some(row) = row else {
                        // Over (Slurm no longer lists it).
                        tracing::info!("environment {env}: allocation {an} is over");
                        if !a.joined && a.state != "ENDING" {
                            failed = Some(format!(
                                "allocation {an} (Slurm job {}) ended before any of its workers registered; see {}",
                                a.job_id.map_or("?".into(), |i| i.to_string()),
                                "its slurm-JOBID.out in the scheduler's state directory, allocations/"
                            ));
                        }
                        gone.push((
                            format!("{an}."),
                            format!(
                                "allocation {an} (Slurm job {}) ended",
                                a.job_id.map_or("?".into(), |i| i.to_string())
                            ),
                        ));
                        sh.slurm.out.push(Command::Forget { name: an });
                        changed.push(env.clone());
                        continue;
                    };
                    let state = if a.state == "ENDING" {
                        "ENDING"
                    } else if slurm::is_running(&row.state) {
                        "RUNNING"
                    } else if row.state == "PENDING" {
                        "PENDING"
                    } else {
                        "ENDING"
                    };
                    let end_ms = row.end_s.map(|s| s * 1000);
                    let names = row.nodes.clone();
                    let vcpus = if row.cpus > 0 { row.cpus } else { a.vcpus };
                    if a.job_id != Some(row.job_id)
                        || a.state != state
                        || a.end_ms != end_ms
                        || a.node_names != names
                        || a.vcpus != vcpus
                    {
                        a.job_id = Some(row.job_id);
                        a.state = state.to_string();
                        a.end_ms = end_ms.or(a.end_ms);
                        a.node_names = names;
                        a.vcpus = vcpus;
                        changed.push(env.clone());
                        nodes.set_allocation_end(sh, now, &format!("{an}."), a.end_ms);
                    }
                    keep.push(a);
                }
                mg.allocations = keep;
                if let Some(why) = failed {
                    fail(mg, env, &why);
                }
            }
            // Shoal's jobs of an environment here that no allocation
            // holds (left over from before a crash): ended.
            for j in &list {
                let Some((env, seq)) = parse_allocation(&j.name) else {
                    continue;
                };
                let Some(mg) = reg.ces.get(env).and_then(|c| c.managed.as_ref()) else {
                    continue;
                };
                if !mg.allocations.iter().any(|a| a.seq == seq) && j.state != "COMPLETING" {
                    tracing::warn!(
                        "Slurm job {} ({}) is no allocation of this scheduler's: cancelling it",
                        j.job_id,
                        j.name
                    );
                    sh.slurm.out.push(Command::Cancel {
                        name: j.name.clone(),
                        job_id: j.job_id,
                    });
                }
            }
        }
    }
    changed.sort();
    changed.dedup();
    for name in changed {
        sh.batch
            .put_compute_environment(&name, to_json(&reg.ces[&name]));
    }
    for (prefix, why) in gone {
        nodes.allocation_over(sh, reg, jobs, now, &prefix, &why);
    }
}

/// One more allocation failed to submit or start: after
/// [`MAX_FAILURES`] in a row the environment is INVALID.
fn fail(mg: &mut Managed, env: &str, why: &str) {
    mg.failures += 1;
    tracing::warn!("environment {env}: {why} ({} in a row)", mg.failures);
    if mg.failures >= MAX_FAILURES {
        mg.invalid = Some(format!(
            "INVALID: {MAX_FAILURES} allocations in a row failed; the last: {why}. \
             No more are submitted: fix the environment's settings (tags shoal:slurm-*, \
             or Slurm) and update it (UpdateComputeEnvironment)"
        ));
        tracing::error!("environment {env} is INVALID: {why}");
    }
}

/// A worker of allocation `a` of `ce` registers: its labels (the
/// environment, Slurm's job id, the end time) and where the core keeps it
/// (one group per allocation; its end).
pub(super) fn worker_labels(
    ce: &CeRecord,
    a: &Allocation,
    labels: &mut BTreeMap<String, String>,
) -> (Option<u32>, Option<u64>) {
    labels.insert(
        ENVIRONMENT_LABEL.into(),
        ce.detail.compute_environment_name.clone(),
    );
    if let Some(id) = a.job_id {
        labels.insert(ALLOCATION_LABEL.into(), id.to_string());
    }
    let given = labels
        .get(ALLOCATION_END_LABEL)
        .and_then(|v| v.parse::<u64>().ok())
        .map(|s| s * 1000);
    let end = a.end_ms.or(given);
    match end {
        Some(e) => labels.insert(ALLOCATION_END_LABEL.into(), (e / 1000).to_string()),
        None => labels.remove(ALLOCATION_END_LABEL),
    };
    // One group per allocation: its number in the environment's pool id
    // space is not unique across environments, Slurm's job id is.
    let group = a.job_id.map(|i| i as u32).or(Some(u32::MAX - a.seq));
    (group, end.or(Some(0)))
}

/// A registered worker joined: its allocation did start.
pub(super) fn joined(reg: &mut Registry, sh: &mut Shared, worker: &str) {
    let Some((env, seq)) = parse_allocation(worker) else {
        return;
    };
    let env = env.to_string();
    let Some(mg) = reg.ces.get_mut(&env).and_then(|c| c.managed.as_mut()) else {
        return;
    };
    let mut changed = mg.failures != 0;
    mg.failures = 0;
    if let Some(a) = mg.allocations.iter_mut().find(|a| a.seq == seq) {
        changed |= !a.joined;
        a.joined = true;
    }
    if changed {
        sh.batch
            .put_compute_environment(&env, to_json(&reg.ces[&env]));
    }
}
