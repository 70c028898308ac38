//! The registry: job definitions (by name, every revision), compute
//! environments, job queues and scheduling policies (`policies.rs`). Its handlers live in `definitions.rs` and
//! `pools.rs`; this file holds its maps, its records and its restore.

use super::policies::PolicyRecord;
use super::{load_err, Shared, DEFAULT_NAME};
use crate::api::ApiError;
use crate::store::Loaded;
use serde::{Deserialize, Serialize};
use shoal_core::{Event, PoolId, PoolSpec};
use shoal_model as m;
use std::collections::BTreeMap;

/// A compute environment as stored: its core pool id and its detail.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CeRecord {
    pub(super) pool: u32,
    pub(super) detail: m::ComputeEnvironmentDetail,
    /// A MANAGED environment's provider and allocations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) managed: Option<super::managed::Managed>,
}

/// A job queue as stored: its core queue id and its detail.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct QueueRecord {
    pub(super) id: u32,
    pub(super) detail: m::JobQueueDetail,
}

/// What the core is told of a compute environment.
pub(super) fn pool_spec(rec: &CeRecord) -> PoolSpec {
    PoolSpec {
        id: PoolId(rec.pool),
        name: rec.detail.compute_environment_name.clone(),
        enabled: rec.detail.state.as_deref() != Some("DISABLED"),
        selector: {
            let mut s = rec.detail.selector();
            if rec.managed.is_some() {
                s.insert(
                    super::managed::ENVIRONMENT_LABEL.into(),
                    rec.detail.compute_environment_name.clone(),
                );
            }
            s
        },
        timed: rec.managed.is_some(),
    }
}

/// Job definitions, compute environments and queues.
pub(super) struct Registry {
    /// Name → revisions, oldest first.
    pub(super) definitions: BTreeMap<String, Vec<m::JobDefinition>>,
    pub(super) ces: BTreeMap<String, CeRecord>,
    pub(super) queues: BTreeMap<String, QueueRecord>,
    pub(super) policies: BTreeMap<String, PolicyRecord>,
    pub(super) next_pool: u32,
    pub(super) next_queue: u32,
}

impl Registry {
    /// The stored definitions, compute environments and queues (the
    /// compute environments and queues told to the core); the defaults on a
    /// fresh state directory.
    pub(super) fn restore(
        sh: &mut Shared,
        loaded: &Loaded,
        now: u64,
    ) -> Result<Registry, crate::Error> {
        let mut reg = Registry {
            definitions: BTreeMap::new(),
            ces: BTreeMap::new(),
            queues: BTreeMap::new(),
            policies: BTreeMap::new(),
            next_pool: 1,
            next_queue: 1,
        };
        for (name, rev, body) in &loaded.definitions {
            let def: m::JobDefinition = serde_json::from_str(body)
                .map_err(|e| load_err("job_definitions", &format!("{name}:{rev}"), e))?;
            reg.definitions.entry(name.clone()).or_default().push(def);
        }
        for (name, body) in &loaded.compute_environments {
            let rec: CeRecord = serde_json::from_str(body)
                .map_err(|e| load_err("compute_environments", name, e))?;
            reg.next_pool = reg.next_pool.max(rec.pool + 1);
            sh.core
                .apply(now, Event::PoolUpserted(pool_spec(&rec)))
                .map_err(|e| load_err("compute_environments", name, e))?;
            reg.ces.insert(name.clone(), rec);
        }
        for (name, body) in &loaded.scheduling_policies {
            let rec: PolicyRecord =
                serde_json::from_str(body).map_err(|e| load_err("scheduling_policies", name, e))?;
            reg.policies.insert(name.clone(), rec);
        }
        for (name, body) in &loaded.job_queues {
            let rec: QueueRecord =
                serde_json::from_str(body).map_err(|e| load_err("job_queues", name, e))?;
            reg.next_queue = reg.next_queue.max(rec.id + 1);
            let spec = reg.queue_spec(&rec);
            sh.core
                .apply(now, Event::QueueUpserted(spec))
                .map_err(|e| load_err("job_queues", name, e))?;
            reg.queues.insert(name.clone(), rec);
        }
        if reg.ces.is_empty() && reg.queues.is_empty() && !loaded.meta.contains_key("initialized") {
            reg.create_defaults(sh, now)?;
        }
        Ok(reg)
    }

    /// The `default` compute environment and the `default` queue over it.
    fn create_defaults(&mut self, sh: &mut Shared, now: u64) -> Result<(), crate::Error> {
        let fail = |e: ApiError| crate::Error::Load(format!("cannot create the defaults: {e}"));
        let ce = m::CreateComputeEnvironmentRequest {
            compute_environment_name: DEFAULT_NAME.into(),
            kind: "UNMANAGED".into(),
            state: Some("ENABLED".into()),
            ..Default::default()
        };
        self.create_ce(sh, now, ce).map_err(fail)?;
        let q = m::CreateJobQueueRequest {
            job_queue_name: DEFAULT_NAME.into(),
            state: Some("ENABLED".into()),
            priority: 1,
            compute_environment_order: vec![m::ComputeEnvironmentOrder {
                order: 1,
                compute_environment: DEFAULT_NAME.into(),
            }],
            ..Default::default()
        };
        self.create_queue(sh, now, q).map_err(fail)?;
        sh.batch.put_meta("initialized", "1".into());
        Ok(())
    }

    /// The compute environment of a queue (its first one), for
    /// AWS_BATCH_CE_NAME.
    pub(super) fn ce_for(&self, queue: &str) -> String {
        self.queues
            .get(queue)
            .and_then(|q| {
                q.detail
                    .compute_environment_order
                    .iter()
                    .min_by_key(|o| o.order)
            })
            .map(|o| {
                o.compute_environment
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default()
    }
}
