//! Compute environments (pools of workers, selected by labels) and job
//! queues: Create / Update / Delete / Describe.

use super::registry::{pool_spec, CeRecord, QueueRecord};
use super::{page, pagination, reply, to_json, Jobs, Nodes, Registry, Shared, DEFAULT_ESTIMATE_S};
use crate::api::ApiError;
use serde_json::json;
use shoal_core::{Event, PoolId, QueueId, QueueSpec};
use shoal_model as m;
use shoal_model::ResourceKind;

/// Queue tag that sets the runtime estimate (seconds) used for backfilling
/// jobs that have no timeout.
pub const ESTIMATE_TAG: &str = "shoal:default-estimate-seconds";

impl Registry {
    pub(super) fn queue_spec(&self, rec: &QueueRecord) -> QueueSpec {
        let mut order: Vec<&m::ComputeEnvironmentOrder> =
            rec.detail.compute_environment_order.iter().collect();
        order.sort_by_key(|o| o.order);
        QueueSpec {
            id: QueueId(rec.id),
            name: rec.detail.job_queue_name.clone(),
            priority: rec.detail.priority,
            enabled: rec.detail.state != "DISABLED",
            pools: order
                .iter()
                .filter_map(|o| {
                    let name = m::resource_name_from_ref(
                        ResourceKind::ComputeEnvironment,
                        &o.compute_environment,
                    )
                    .ok()?;
                    self.ces.get(&name).map(|c| PoolId(c.pool))
                })
                .collect(),
            default_estimate_s: rec
                .detail
                .tags
                .get(ESTIMATE_TAG)
                .and_then(|v| v.parse().ok())
                .unwrap_or(DEFAULT_ESTIMATE_S),
            fairshare: self.queue_fairshare(rec.detail.scheduling_policy_arn.as_deref()),
        }
    }

    fn ce_name(&self, field: &str, r: &str) -> Result<String, ApiError> {
        let name = m::resource_name_from_ref(ResourceKind::ComputeEnvironment, r)
            .map_err(|e| e.with_field(field))?;
        if !self.ces.contains_key(&name) {
            return Err(ApiError::field(
                field,
                format!("no compute environment named {name:?}"),
            ));
        }
        Ok(name)
    }

    pub(super) fn queue_name(&self, field: &str, r: &str) -> Result<String, ApiError> {
        let name = m::resource_name_from_ref(ResourceKind::JobQueue, r)
            .map_err(|e| e.with_field(field))?;
        if !self.queues.contains_key(&name) {
            return Err(ApiError::field(
                field,
                format!("no job queue named {name:?}; create it with CreateJobQueue, or use the \"default\" queue"),
            ));
        }
        Ok(name)
    }

    pub(super) fn put_ce(
        &mut self,
        sh: &mut Shared,
        now: u64,
        rec: CeRecord,
    ) -> Result<(), ApiError> {
        sh.core
            .apply(now, Event::PoolUpserted(pool_spec(&rec)))
            .map_err(super::core_err)?;
        sh.batch
            .put_compute_environment(&rec.detail.compute_environment_name, to_json(&rec));
        self.ces
            .insert(rec.detail.compute_environment_name.clone(), rec);
        sh.needs_pass = true;
        Ok(())
    }

    pub(super) fn put_queue(
        &mut self,
        sh: &mut Shared,
        now: u64,
        rec: QueueRecord,
    ) -> Result<(), ApiError> {
        let spec = self.queue_spec(&rec);
        sh.core
            .apply(now, Event::QueueUpserted(spec))
            .map_err(super::core_err)?;
        sh.batch
            .put_job_queue(&rec.detail.job_queue_name, to_json(&rec));
        self.queues.insert(rec.detail.job_queue_name.clone(), rec);
        sh.needs_pass = true;
        Ok(())
    }

    pub(super) fn create_ce(
        &mut self,
        sh: &mut Shared,
        now: u64,
        r: m::CreateComputeEnvironmentRequest,
    ) -> Result<Vec<u8>, ApiError> {
        let name = r.compute_environment_name.clone();
        if self.ces.contains_key(&name) {
            return Err(ApiError::field(
                "computeEnvironmentName",
                format!("a compute environment named {name:?} already exists"),
            ));
        }
        let arn = sh.scope.compute_environment_arn(&name);
        let detail = m::ComputeEnvironmentDetail {
            compute_environment_name: name.clone(),
            compute_environment_arn: arn.clone(),
            container_orchestration_type: Some("ECS".into()),
            ecs_cluster_arn: Some(sh.scope.ecs_cluster_arn(&name)),
            kind: Some(r.kind.clone()),
            state: Some(r.state.clone().unwrap_or_else(|| "ENABLED".into())),
            status: Some("VALID".into()),
            status_reason: Some("ComputeEnvironment Healthy".into()),
            unmanaged_vcpus: r.unmanaged_vcpus,
            compute_resources: r.compute_resources.clone(),
            service_role: r.service_role.clone(),
            tags: r.tags.clone(),
            ..Default::default()
        };
        let managed = r
            .managed()
            .map_err(ApiError::from)?
            .map(|spec| super::managed::Managed::new(spec, sh.slurm.unready.clone()));
        let pool = self.next_pool;
        self.next_pool += 1;
        self.put_ce(
            sh,
            now,
            CeRecord {
                pool,
                detail,
                managed,
            },
        )?;
        reply(&m::CreateComputeEnvironmentResponse {
            compute_environment_name: name,
            compute_environment_arn: arn,
        })
    }

    pub(super) fn update_ce(
        &mut self,
        sh: &mut Shared,
        now: u64,
        r: m::UpdateComputeEnvironmentRequest,
    ) -> Result<Vec<u8>, ApiError> {
        let name = self.ce_name("computeEnvironment", &r.compute_environment)?;
        let mut rec = self.ces[&name].clone();
        if let Some(s) = &r.state {
            rec.detail.state = Some(s.clone());
        }
        if r.unmanaged_vcpus.is_some() {
            rec.detail.unmanaged_vcpus = r.unmanaged_vcpus;
        }
        if let Some(cr) = &r.compute_resources {
            rec.detail.compute_resources = Some(match rec.managed {
                Some(_) => {
                    m::managed::merge_compute_resources(rec.detail.compute_resources.as_ref(), cr)
                }
                None => cr.clone(),
            });
        }
        if let Some(mg) = &mut rec.managed {
            // Its capacity anew; an INVALID environment is VALID again and
            // tries again.
            let kind = rec.detail.kind.clone().unwrap_or_default();
            let spec = m::managed::resolve(
                &kind,
                rec.detail.compute_resources.as_ref(),
                &rec.detail.tags,
            )
            .map_err(ApiError::from)?;
            if let Some(spec) = spec {
                mg.spec = spec;
            }
            mg.failures = 0;
            mg.invalid = sh.slurm.unready.clone();
        }
        if r.service_role.is_some() {
            rec.detail.service_role = r.service_role.clone();
        }
        let arn = rec.detail.compute_environment_arn.clone();
        self.put_ce(sh, now, rec)?;
        reply(&m::UpdateComputeEnvironmentResponse {
            compute_environment_name: name,
            compute_environment_arn: arn,
        })
    }

    pub(super) fn delete_ce(
        &mut self,
        sh: &mut Shared,
        now: u64,
        r: m::DeleteComputeEnvironmentRequest,
    ) -> Result<Vec<u8>, ApiError> {
        let name = self.ce_name("computeEnvironment", &r.compute_environment)?;
        let rec = &self.ces[&name];
        if rec.detail.state.as_deref() != Some("DISABLED") {
            return Err(ApiError::field(
                "computeEnvironment",
                format!(
                    "{name} is ENABLED; disable it first (UpdateComputeEnvironment state=DISABLED)"
                ),
            ));
        }
        let arn = rec.detail.compute_environment_arn.clone();
        if let Some(q) = self.queues.values().find(|q| {
            q.detail.compute_environment_order.iter().any(|o| {
                m::resource_name_from_ref(ResourceKind::ComputeEnvironment, &o.compute_environment)
                    .ok()
                    .as_deref()
                    == Some(name.as_str())
            })
        }) {
            return Err(ApiError::field(
                "computeEnvironment",
                format!(
                    "{name} is used by job queue {}; remove it from the queue first",
                    q.detail.job_queue_name
                ),
            ));
        }
        let pool = PoolId(rec.pool);
        sh.core
            .apply(now, Event::PoolDeleted(pool))
            .map_err(super::core_err)?;
        // Its allocations end with it.
        if let Some(mg) = self.ces.get(&name).and_then(|c| c.managed.as_ref()) {
            for a in &mg.allocations {
                let an = super::managed::allocation_name(&name, a.seq);
                if let Some(job_id) = a.job_id {
                    sh.slurm.out.push(crate::slurm::Command::Cancel {
                        name: an.clone(),
                        job_id,
                    });
                }
                sh.slurm
                    .out
                    .push(crate::slurm::Command::Forget { name: an });
            }
        }
        self.ces.remove(&name);
        sh.batch.delete_compute_environment(&name);
        let _ = arn;
        reply(&json!({}))
    }

    pub(super) fn describe_ces(
        &self,
        nodes: &Nodes,
        r: m::DescribeComputeEnvironmentsRequest,
    ) -> Result<Vec<u8>, ApiError> {
        let (start, max) = pagination(r.next_token.as_deref(), r.max_results)?;
        let list: Vec<&m::ComputeEnvironmentDetail> = if r.compute_environments.is_empty() {
            self.ces.values().map(|c| &c.detail).collect()
        } else {
            r.compute_environments
                .iter()
                .filter_map(|x| m::resource_name_from_ref(ResourceKind::ComputeEnvironment, x).ok())
                .filter_map(|n| self.ces.get(&n).map(|c| &c.detail))
                .collect()
        };
        let (list, next_token) = page(&list, start, max);
        // Shoal: the workers a compute environment selects are named in its
        // statusReason (AWS's shape has no field for them).
        let compute_environments = list
            .into_iter()
            .map(|d| {
                let mut d = d.clone();
                let (names, vcpus, notes) = nodes.workers_of(&d.selector());
                let mut reason = if names.is_empty() {
                    "ComputeEnvironment Healthy; no workers registered".to_string()
                } else {
                    format!(
                        "ComputeEnvironment Healthy; {} workers ({}), {vcpus} vCPUs",
                        names.len(),
                        names.join(", ")
                    )
                };
                for n in notes {
                    reason.push_str("; ");
                    reason.push_str(&n);
                }
                d.status_reason = Some(reason);
                self.describe_managed(&mut d, nodes);
                d
            })
            .collect();
        reply(&m::DescribeComputeEnvironmentsResponse {
            compute_environments,
            next_token,
        })
    }

    fn check_order(
        &self,
        order: &[m::ComputeEnvironmentOrder],
    ) -> Result<Vec<m::ComputeEnvironmentOrder>, ApiError> {
        order
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let name = self.ce_name(
                    &format!("computeEnvironmentOrder[{i}].computeEnvironment"),
                    &o.compute_environment,
                )?;
                Ok(m::ComputeEnvironmentOrder {
                    order: o.order,
                    compute_environment: self.ces[&name].detail.compute_environment_arn.clone(),
                })
            })
            .collect()
    }

    pub(super) fn create_queue(
        &mut self,
        sh: &mut Shared,
        now: u64,
        r: m::CreateJobQueueRequest,
    ) -> Result<Vec<u8>, ApiError> {
        let name = r.job_queue_name.clone();
        if self.queues.contains_key(&name) {
            return Err(ApiError::field(
                "jobQueueName",
                format!("a job queue named {name:?} already exists"),
            ));
        }
        if let Some(v) = r.tags.get(ESTIMATE_TAG) {
            if v.parse::<u64>().is_err() {
                return Err(ApiError::field(
                    &format!("tags.{ESTIMATE_TAG}"),
                    format!("{v:?} is not a whole number of seconds"),
                ));
            }
        }
        let order = self.check_order(&r.compute_environment_order)?;
        if let Some(a) = &r.job_state_time_limit_actions {
            m::check_state_time_limit_actions(a, sh.min_state_time_limit_s)?;
        }
        let policy = match &r.scheduling_policy_arn {
            Some(a) => Some(self.check_policy_arn(a)?),
            None => None,
        };
        let arn = sh.scope.job_queue_arn(&name);
        let detail = m::JobQueueDetail {
            job_queue_name: name.clone(),
            job_queue_arn: arn.clone(),
            state: r.state.clone().unwrap_or_else(|| "ENABLED".into()),
            status: Some("VALID".into()),
            status_reason: Some("JobQueue Healthy".into()),
            scheduling_policy_arn: policy,
            priority: r.priority,
            compute_environment_order: order,
            tags: r.tags.clone(),
            job_state_time_limit_actions: r.job_state_time_limit_actions.clone(),
        };
        let id = self.next_queue;
        self.next_queue += 1;
        self.put_queue(sh, now, QueueRecord { id, detail })?;
        reply(&m::CreateJobQueueResponse {
            job_queue_name: name,
            job_queue_arn: arn,
        })
    }

    pub(super) fn update_queue(
        &mut self,
        sh: &mut Shared,
        now: u64,
        r: m::UpdateJobQueueRequest,
    ) -> Result<Vec<u8>, ApiError> {
        let name = self.queue_name("jobQueue", &r.job_queue)?;
        let mut rec = self.queues[&name].clone();
        if let Some(s) = &r.state {
            rec.detail.state = s.clone();
        }
        if let Some(p) = r.priority {
            rec.detail.priority = p;
        }
        if let Some(order) = &r.compute_environment_order {
            rec.detail.compute_environment_order = self.check_order(order)?;
        }
        if let Some(a) = &r.job_state_time_limit_actions {
            m::check_state_time_limit_actions(a, sh.min_state_time_limit_s)?;
            rec.detail.job_state_time_limit_actions = Some(a.clone());
        }
        if let Some(given) = &r.scheduling_policy_arn {
            if rec.detail.scheduling_policy_arn.is_none() {
                return Err(ApiError::field(
                    "schedulingPolicyArn",
                    format!("job queue {name} was created without a scheduling policy and cannot gain one; create a new queue with schedulingPolicyArn"),
                ));
            }
            if given.is_empty() {
                return Err(ApiError::field(
                    "schedulingPolicyArn",
                    format!("job queue {name}'s scheduling policy can be replaced, never removed"),
                ));
            }
            rec.detail.scheduling_policy_arn = Some(self.check_policy_arn(given)?);
        }
        let arn = rec.detail.job_queue_arn.clone();
        self.put_queue(sh, now, rec)?;
        reply(&m::UpdateJobQueueResponse {
            job_queue_name: name,
            job_queue_arn: arn,
        })
    }

    pub(super) fn delete_queue(
        &mut self,
        sh: &mut Shared,
        jobs: &Jobs,
        now: u64,
        r: m::DeleteJobQueueRequest,
    ) -> Result<Vec<u8>, ApiError> {
        let name = self.queue_name("jobQueue", &r.job_queue)?;
        let rec = &self.queues[&name];
        if rec.detail.state != "DISABLED" {
            return Err(ApiError::field(
                "jobQueue",
                format!("{name} is ENABLED; disable it first (UpdateJobQueue state=DISABLED)"),
            ));
        }
        let unfinished = jobs.unfinished_in(&name);
        if unfinished > 0 {
            return Err(ApiError::field(
                "jobQueue",
                format!("{name} still holds {unfinished} unfinished jobs; terminate them first"),
            ));
        }
        sh.core
            .apply(now, Event::QueueDeleted(QueueId(rec.id)))
            .map_err(super::core_err)?;
        self.queues.remove(&name);
        sh.batch.delete_job_queue(&name);
        reply(&json!({}))
    }

    pub(super) fn describe_queues(
        &self,
        r: m::DescribeJobQueuesRequest,
    ) -> Result<Vec<u8>, ApiError> {
        let (start, max) = pagination(r.next_token.as_deref(), r.max_results)?;
        let list: Vec<&m::JobQueueDetail> = if r.job_queues.is_empty() {
            self.queues.values().map(|q| &q.detail).collect()
        } else {
            r.job_queues
                .iter()
                .filter_map(|x| m::resource_name_from_ref(ResourceKind::JobQueue, x).ok())
                .filter_map(|n| self.queues.get(&n).map(|q| &q.detail))
                .collect()
        };
        let (list, next_token) = page(&list, start, max);
        reply(&m::DescribeJobQueuesResponse {
            job_queues: list.into_iter().cloned().collect(),
            next_token,
        })
    }

    /// The queue named by `jobQueue` (name or ARN), if it takes jobs.
    pub(super) fn open_queue(&self, given: &str) -> Result<(String, QueueId), ApiError> {
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
}

impl Registry {
    /// `jobStateTimeLimitActions`: a queue's head job that has waited for a
    /// rule's reason for its `maxTimeSeconds` (counted from when it became
    /// the head with that reason) is cancelled with AWS's text. Returns
    /// whether it cancelled any.
    pub(super) fn enforce_state_time_limits(
        &self,
        sh: &mut Shared,
        jobs: &mut Jobs,
        now: u64,
    ) -> bool {
        let mut heads = sh.core.queue_heads();
        // The heads of the last pass; one cancelled since is no head.
        heads.retain(|h| {
            sh.core.job_state(h.job).map(|s| s.0) == Some(shoal_core::JobState::Runnable)
        });
        sh.head_since.retain(|q, (job, code, _)| {
            heads
                .iter()
                .any(|h| h.queue == *q && h.job == *job && h.code == Some(*code))
        });
        let mut due = Vec::new();
        for h in heads {
            let Some(code) = h.code else { continue };
            let since = sh.head_since.entry(h.queue).or_insert((h.job, code, now)).2;
            let Some(rule) = self
                .queues
                .values()
                .find(|q| q.id == h.queue.0)
                .and_then(|q| q.detail.job_state_time_limit_actions.as_ref())
                .and_then(|rules| {
                    rules.iter().find(|a| {
                        a.reason == code.aws_code() && a.state == "RUNNABLE" && a.action == "CANCEL"
                    })
                })
            else {
                continue;
            };
            let limit_ms = (rule.max_time_seconds.max(0) as u64).saturating_mul(1000);
            if now.saturating_sub(since) >= limit_ms {
                due.push((h.job, code));
            }
        }
        let mut any = false;
        for (job, code) in due {
            let Some(id) = jobs.id_of(job) else { continue };
            let reason = m::state_time_limit_reason(code.aws_code());
            match jobs.cancel(sh, now, &id, reason, false) {
                Ok(_) => {
                    tracing::info!(
                        "job {id} cancelled by a jobStateTimeLimitActions rule ({})",
                        code.aws_code()
                    );
                    any = true;
                }
                Err(e) => tracing::warn!("cannot cancel {id} by its queue's time limit: {e}"),
            }
        }
        any
    }
}
