//! Scheduling policies (fair share): Create/Describe/Update/Delete/List,
//! AWS Batch's shapes and rules, and the one place a `fairsharePolicy`
//! becomes the core's [`shoal_core::FairShare`].

use crate::arn::{resource_name_from_ref, ResourceKind};
use crate::error::{err, ClientError, Validate};
use crate::util::{check_max_results, check_name, check_range, check_tags, nullable};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// `shareDistribution` holds at most this many entries (AWS's limit).
pub const MAX_SHARE_DISTRIBUTION: usize = 500;
/// `shareDecaySeconds` at most one week (AWS's limit).
pub const MAX_SHARE_DECAY_SECONDS: i64 = 604_800;

/// `{shareIdentifier, weightFactor}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShareAttributes {
    /// Up to 255 letters and digits; a trailing `*` makes it a prefix.
    pub share_identifier: String,
    /// 0.0001–999.9999 (1.0 when absent): a lower weight gets more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_factor: Option<f64>,
}

/// `fairsharePolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FairsharePolicy {
    /// 0–604800; 0 (or absent): 600 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_decay_seconds: Option<i32>,
    /// 0–99.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_reservation: Option<i32>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub share_distribution: Vec<ShareAttributes>,
}

/// A share identifier as a submission gives it: 1–255 letters and digits
/// (`what` names the field in errors).
pub fn check_share_identifier(field: &str, id: &str) -> Result<(), ClientError> {
    if id.is_empty() || id.len() > 255 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return err(
            field,
            format!("{id:?} is not a share identifier: give 1 to 255 letters and digits"),
        );
    }
    Ok(())
}

/// Whether some share identifier matches both entries.
fn overlap(a: &str, b: &str) -> bool {
    match (a.strip_suffix('*'), b.strip_suffix('*')) {
        (None, None) => a == b,
        (Some(p), None) => b.starts_with(p),
        (None, Some(p)) => a.starts_with(p),
        (Some(p), Some(q)) => p.starts_with(q) || q.starts_with(p),
    }
}

impl FairsharePolicy {
    /// AWS's rules, errors naming `field`'s members.
    pub fn validate_at(&self, field: &str) -> Result<(), ClientError> {
        if let Some(d) = self.share_decay_seconds {
            check_range(
                &format!("{field}.shareDecaySeconds"),
                d.into(),
                0,
                MAX_SHARE_DECAY_SECONDS,
            )?;
        }
        if let Some(r) = self.compute_reservation {
            check_range(&format!("{field}.computeReservation"), r.into(), 0, 99)?;
        }
        let list = &self.share_distribution;
        if list.len() > MAX_SHARE_DISTRIBUTION {
            return err(
                format!("{field}.shareDistribution"),
                format!(
                    "{} entries given; the limit is {MAX_SHARE_DISTRIBUTION}",
                    list.len()
                ),
            );
        }
        for (i, s) in list.iter().enumerate() {
            let f = format!("{field}.shareDistribution[{i}]");
            let id = &s.share_identifier;
            let bare = id.strip_suffix('*').unwrap_or(id);
            if !(id.ends_with('*') && bare.is_empty()) {
                check_share_identifier(&format!("{f}.shareIdentifier"), bare).map_err(|_| {
                    ClientError::new(
                        format!("{f}.shareIdentifier"),
                        format!(
                            "{id:?} is not a share identifier: give 1 to 255 letters and digits, optionally followed by * for a prefix"
                        ),
                    )
                })?;
            }
            if let Some(w) = s.weight_factor {
                if !(0.0001..=999.9999).contains(&w) {
                    return err(
                        format!("{f}.weightFactor"),
                        format!("{w} is out of range 0.0001..999.9999"),
                    );
                }
            }
            if let Some(j) = list[..i]
                .iter()
                .position(|o| overlap(&o.share_identifier, id))
            {
                return err(
                    format!("{f}.shareIdentifier"),
                    format!(
                        "{id:?} overlaps {:?} of {field}.shareDistribution[{j}]: some share identifier would match both; make the entries disjoint",
                        list[j].share_identifier
                    ),
                );
            }
        }
        Ok(())
    }

    /// The core's policy: the one conversion (weights in ten-thousandths,
    /// absent values as AWS defines them).
    pub fn to_core(&self) -> shoal_core::FairShare {
        shoal_core::FairShare {
            decay_s: self.share_decay_seconds.unwrap_or(0).max(0) as u32,
            compute_reservation: self.compute_reservation.unwrap_or(0).clamp(0, 99) as u32,
            shares: self
                .share_distribution
                .iter()
                .map(|s| shoal_core::ShareWeight {
                    identifier: s.share_identifier.clone(),
                    weight: (s.weight_factor.unwrap_or(1.0) * 10_000.0).round() as u32,
                })
                .collect(),
        }
    }
}

/// Shoal supports fair share only: a `quotaSharePolicy` is refused.
fn refuse_quota_share(q: &Option<Value>) -> Result<(), ClientError> {
    if q.is_some() {
        return err(
            "quotaSharePolicy",
            "quota-share scheduling policies are not supported by Shoal; use fairsharePolicy",
        );
    }
    Ok(())
}

/// `CreateSchedulingPolicy` request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateSchedulingPolicyRequest {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairshare_policy: Option<FairsharePolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_share_policy: Option<Value>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub tags: BTreeMap<String, String>,
}

impl Validate for CreateSchedulingPolicyRequest {
    fn validate(&self) -> Result<(), ClientError> {
        check_name("name", "scheduling policy name", &self.name)?;
        refuse_quota_share(&self.quota_share_policy)?;
        if let Some(p) = &self.fairshare_policy {
            p.validate_at("fairsharePolicy")?;
        }
        check_tags("tags", &self.tags)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSchedulingPolicyResponse {
    pub name: String,
    pub arn: String,
}

/// A scheduling policy as DescribeSchedulingPolicies returns it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchedulingPolicyDetail {
    pub name: String,
    pub arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairshare_policy: Option<FairsharePolicy>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

impl SchedulingPolicyDetail {
    /// The core's view of its fair share (a policy without a
    /// `fairsharePolicy` shares equally, with AWS's defaults).
    pub fn fairshare(&self) -> shoal_core::FairShare {
        self.fairshare_policy.clone().unwrap_or_default().to_core()
    }
}

/// The name in a scheduling policy's ARN (or a bare name), errors naming
/// `field`.
pub fn scheduling_policy_name(field: &str, r: &str) -> Result<String, ClientError> {
    resource_name_from_ref(ResourceKind::SchedulingPolicy, r).map_err(|e| e.with_field(field))
}

/// `DescribeSchedulingPolicies` request: up to 100 ARNs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DescribeSchedulingPoliciesRequest {
    pub arns: Vec<String>,
}

impl Validate for DescribeSchedulingPoliciesRequest {
    fn validate(&self) -> Result<(), ClientError> {
        if self.arns.is_empty() || self.arns.len() > 100 {
            return err(
                "arns",
                format!("give 1 to 100 ARNs (got {})", self.arns.len()),
            );
        }
        for (i, a) in self.arns.iter().enumerate() {
            scheduling_policy_name(&format!("arns[{i}]"), a)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeSchedulingPoliciesResponse {
    pub scheduling_policies: Vec<SchedulingPolicyDetail>,
}

/// `UpdateSchedulingPolicy` request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateSchedulingPolicyRequest {
    pub arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairshare_policy: Option<FairsharePolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_share_policy: Option<Value>,
}

impl Validate for UpdateSchedulingPolicyRequest {
    fn validate(&self) -> Result<(), ClientError> {
        scheduling_policy_name("arn", &self.arn)?;
        refuse_quota_share(&self.quota_share_policy)?;
        if let Some(p) = &self.fairshare_policy {
            p.validate_at("fairsharePolicy")?;
        }
        Ok(())
    }
}

/// `DeleteSchedulingPolicy` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteSchedulingPolicyRequest {
    pub arn: String,
}

impl Validate for DeleteSchedulingPolicyRequest {
    fn validate(&self) -> Result<(), ClientError> {
        scheduling_policy_name("arn", &self.arn).map(|_| ())
    }
}

/// `ListSchedulingPolicies` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListSchedulingPoliciesRequest {
    /// 1–1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

impl Validate for ListSchedulingPoliciesRequest {
    fn validate(&self) -> Result<(), ClientError> {
        check_max_results("maxResults", self.max_results, 1000)
    }
}

/// `{arn}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchedulingPolicyListingDetail {
    pub arn: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListSchedulingPoliciesResponse {
    pub scheduling_policies: Vec<SchedulingPolicyListingDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(ids: &[&str]) -> FairsharePolicy {
        FairsharePolicy {
            share_distribution: ids
                .iter()
                .map(|id| ShareAttributes {
                    share_identifier: id.to_string(),
                    weight_factor: Some(0.5),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn overlapping_entries_are_refused() {
        for (ids, bad) in [
            (vec!["A", "B", "C*"], None),
            (vec!["A", "A"], Some(1)),
            (vec!["AB", "A*"], Some(1)),
            (vec!["A*", "AB*"], Some(1)),
            (vec!["AB*", "AC*", "AD"], None),
            (vec!["x", "*"], Some(1)),
        ] {
            let got = dist(&ids).validate_at("fairsharePolicy");
            match bad {
                None => assert!(got.is_ok(), "{ids:?}: {got:?}"),
                Some(i) => {
                    let e = got.expect_err("overlap");
                    assert!(
                        e.to_string().contains(&format!("shareDistribution[{i}]"))
                            && e.to_string().contains("overlaps"),
                        "{e}"
                    );
                }
            }
        }
    }

    #[test]
    fn ranges_and_identifiers_are_checked() {
        let mut p = dist(&["A"]);
        p.compute_reservation = Some(100);
        assert!(p
            .validate_at("f")
            .unwrap_err()
            .to_string()
            .contains("computeReservation"));
        let mut p = dist(&["A"]);
        p.share_decay_seconds = Some(604_801);
        assert!(p
            .validate_at("f")
            .unwrap_err()
            .to_string()
            .contains("shareDecaySeconds"));
        let mut p = dist(&["A"]);
        p.share_distribution[0].weight_factor = Some(0.0);
        assert!(p
            .validate_at("f")
            .unwrap_err()
            .to_string()
            .contains("weightFactor"));
        assert!(dist(&["a-b"]).validate_at("f").is_err());
        let core = dist(&["A"]).to_core();
        assert_eq!(core.shares[0].weight, 5_000);
        assert_eq!(core.window_s(), 600);
    }
}
