//! Scheduling policies (fair share): Create / Describe / Update / Delete /
//! List, and the rules that tie them to job queues.

use super::{page, pagination, reply, to_json, Registry, Shared};
use crate::api::ApiError;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shoal_core::Event;
use shoal_model as m;

/// A scheduling policy as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct PolicyRecord {
    pub(super) detail: m::SchedulingPolicyDetail,
}

impl Registry {
    /// The policy an ARN (or name) names, errors against `field`.
    pub(super) fn policy_name(&self, field: &str, r: &str) -> Result<String, ApiError> {
        let name = m::scheduling_policy_name(field, r)?;
        if !self.policies.contains_key(&name) {
            return Err(ApiError::field(
                field,
                format!(
                    "no scheduling policy named {name:?}; create it with CreateSchedulingPolicy"
                ),
            ));
        }
        Ok(name)
    }

    /// The fair share of the policy a queue names (None without one).
    pub(super) fn queue_fairshare(&self, arn: Option<&str>) -> Option<shoal_core::FairShare> {
        let name = m::scheduling_policy_name("schedulingPolicyArn", arn?).ok()?;
        Some(self.policies.get(&name)?.detail.fairshare())
    }

    /// Queues that use the policy `name`.
    fn queues_using(&self, name: &str) -> Vec<String> {
        self.queues
            .values()
            .filter(|q| {
                q.detail
                    .scheduling_policy_arn
                    .as_deref()
                    .and_then(|a| m::scheduling_policy_name("", a).ok())
                    .as_deref()
                    == Some(name)
            })
            .map(|q| q.detail.job_queue_name.clone())
            .collect()
    }

    pub(super) fn create_policy(
        &mut self,
        sh: &mut Shared,
        r: m::CreateSchedulingPolicyRequest,
    ) -> Result<Vec<u8>, ApiError> {
        let name = r.name.clone();
        if self.policies.contains_key(&name) {
            return Err(ApiError::field(
                "name",
                format!("a scheduling policy named {name:?} already exists"),
            ));
        }
        let arn = sh.scope.scheduling_policy_arn(&name);
        let detail = m::SchedulingPolicyDetail {
            name: name.clone(),
            arn: arn.clone(),
            fairshare_policy: r.fairshare_policy,
            tags: r.tags,
        };
        let rec = PolicyRecord { detail };
        sh.batch.put_scheduling_policy(&name, to_json(&rec));
        self.policies.insert(name.clone(), rec);
        reply(&m::CreateSchedulingPolicyResponse { name, arn })
    }

    pub(super) fn describe_policies(
        &self,
        r: m::DescribeSchedulingPoliciesRequest,
    ) -> Result<Vec<u8>, ApiError> {
        // As AWS: ARNs that name no policy are left out.
        let scheduling_policies = r
            .arns
            .iter()
            .filter_map(|a| m::scheduling_policy_name("arns", a).ok())
            .filter_map(|n| self.policies.get(&n).map(|p| p.detail.clone()))
            .collect();
        reply(&m::DescribeSchedulingPoliciesResponse {
            scheduling_policies,
        })
    }

    pub(super) fn update_policy(
        &mut self,
        sh: &mut Shared,
        now: u64,
        r: m::UpdateSchedulingPolicyRequest,
    ) -> Result<Vec<u8>, ApiError> {
        let name = self.policy_name("arn", &r.arn)?;
        let rec = self.policies.get_mut(&name).expect("checked");
        rec.detail.fairshare_policy = r.fairshare_policy;
        sh.batch.put_scheduling_policy(&name, to_json(&*rec));
        // The queues that use it take the new weights at once.
        for q in self.queues_using(&name) {
            let spec = self.queue_spec(&self.queues[&q]);
            sh.core
                .apply(now, Event::QueueUpserted(spec))
                .map_err(super::core_err)?;
        }
        sh.needs_pass = true;
        reply(&json!({}))
    }

    pub(super) fn delete_policy(
        &mut self,
        sh: &mut Shared,
        r: m::DeleteSchedulingPolicyRequest,
    ) -> Result<Vec<u8>, ApiError> {
        let name = self.policy_name("arn", &r.arn)?;
        let users = self.queues_using(&name);
        if !users.is_empty() {
            return Err(ApiError::field(
                "arn",
                format!(
                    "scheduling policy {name} is used by job queue(s) {}; delete those queues first (a queue's policy can be replaced, never removed)",
                    users.join(", ")
                ),
            ));
        }
        self.policies.remove(&name);
        sh.batch.delete_scheduling_policy(&name);
        reply(&json!({}))
    }

    pub(super) fn list_policies(
        &self,
        r: m::ListSchedulingPoliciesRequest,
    ) -> Result<Vec<u8>, ApiError> {
        let (start, max) = pagination(r.next_token.as_deref(), r.max_results)?;
        let all: Vec<m::SchedulingPolicyListingDetail> = self
            .policies
            .values()
            .map(|p| m::SchedulingPolicyListingDetail {
                arn: p.detail.arn.clone(),
            })
            .collect();
        let (scheduling_policies, next_token) = page(&all, start, max);
        reply(&m::ListSchedulingPoliciesResponse {
            scheduling_policies,
            next_token,
        })
    }

    /// A submission's `shareIdentifier` against its queue: required when
    /// the queue has a scheduling policy, refused when it has none.
    pub(super) fn check_share(&self, queue: &str, share: Option<&str>) -> Result<(), ApiError> {
        let policy = self
            .queues
            .get(queue)
            .and_then(|q| q.detail.scheduling_policy_arn.as_deref());
        match (policy, share) {
            (Some(p), None) => Err(ApiError::field(
                "shareIdentifier",
                format!("job queue {queue} has a scheduling policy ({p}); give the job a shareIdentifier"),
            )),
            (None, Some(s)) => Err(ApiError::field(
                "shareIdentifier",
                format!("job queue {queue} has no scheduling policy, so a shareIdentifier ({s:?}) has no meaning there; submit without it, or to a queue with a scheduling policy"),
            )),
            _ => Ok(()),
        }
    }

    /// A queue's `schedulingPolicyArn` on create or update: the policy's
    /// ARN as Shoal spells it.
    pub(super) fn check_policy_arn(&self, given: &str) -> Result<String, ApiError> {
        let name = self.policy_name("schedulingPolicyArn", given)?;
        Ok(self.policies[&name].detail.arn.clone())
    }
}
