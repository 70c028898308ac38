//! MANAGED compute environments whose nodes come from a provider (issue
//! 18): the capacity (`computeResources.minvCpus`, `desiredvCpus`,
//! `maxvCpus`) and the provider's settings (Shoal tags), resolved once
//! here into a [`ManagedSpec`] that the scheduler's allocator uses as is.
//!
//! Tags: `shoal:provider` (`slurm`), `shoal:slurm-partition`,
//! `shoal:slurm-account`, `shoal:slurm-time-limit` (Slurm's forms:
//! `MINUTES`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`, `D-HH:MM:SS`),
//! `shoal:slurm-args` (more `sbatch` arguments, separated by spaces) and
//! `shoal:idle-timeout-seconds`. boto3 insists on `computeResources.type`
//! and `subnets`: `EC2` and any subnets are accepted and recorded.

use crate::error::{err, ClientError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The tag naming an environment's provider.
pub const PROVIDER_TAG: &str = "shoal:provider";
/// Slurm's partition for the allocations.
pub const PARTITION_TAG: &str = "shoal:slurm-partition";
/// Slurm's account for the allocations.
pub const ACCOUNT_TAG: &str = "shoal:slurm-account";
/// The longest time limit of an allocation.
pub const TIME_LIMIT_TAG: &str = "shoal:slurm-time-limit";
/// More `sbatch` arguments.
pub const ARGS_TAG: &str = "shoal:slurm-args";
/// How long an allocation may sit idle before it is ended.
pub const IDLE_TIMEOUT_TAG: &str = "shoal:idle-timeout-seconds";

/// An idle allocation ends after this long unless the tag says otherwise.
pub const DEFAULT_IDLE_TIMEOUT_S: u64 = 300;

/// A MANAGED environment's capacity and provider, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedSpec {
    /// vCPUs kept even when nothing waits (`minvCpus`).
    pub min_vcpus: u32,
    /// vCPUs asked for now (`desiredvCpus`; the allocator moves it).
    pub desired_vcpus: u32,
    /// vCPUs never exceeded (`maxvCpus`).
    pub max_vcpus: u32,
    /// Where the nodes come from.
    pub provider: Provider,
}

/// A provider of nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Provider {
    /// Allocations of a site's Slurm.
    Slurm(SlurmSettings),
}

/// How allocations are asked of Slurm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlurmSettings {
    /// `sbatch --partition`.
    pub partition: Option<String>,
    /// `sbatch --account`.
    pub account: Option<String>,
    /// The longest `sbatch --time`, seconds (None: the partition's).
    pub time_limit_s: Option<u64>,
    /// More `sbatch` arguments.
    pub extra_args: Vec<String>,
    /// An allocation with nothing to run ends after this long.
    pub idle_timeout_s: u64,
}

/// The managed spec of an environment of type `kind` with these
/// `computeResources` and `tags`: None for an environment with no
/// provider (MANAGED without `shoal:provider` or UNMANAGED: a pool of the
/// workers that register, as before).
pub fn resolve(
    kind: &str,
    compute_resources: Option<&Value>,
    tags: &BTreeMap<String, String>,
) -> Result<Option<ManagedSpec>, ClientError> {
    let Some(provider) = tags.get(PROVIDER_TAG) else {
        for k in [
            PARTITION_TAG,
            ACCOUNT_TAG,
            TIME_LIMIT_TAG,
            ARGS_TAG,
            IDLE_TIMEOUT_TAG,
        ] {
            if tags.contains_key(k) {
                return err(
                    format!("tags.{k}"),
                    format!("applies only with a provider; add the tag {PROVIDER_TAG}=slurm"),
                );
            }
        }
        return Ok(None);
    };
    if provider != "slurm" {
        return err(
            format!("tags.{PROVIDER_TAG}"),
            format!("{provider:?} is not a provider Shoal has; use \"slurm\""),
        );
    }
    if kind != "MANAGED" {
        return err(
            "type",
            format!("an environment with {PROVIDER_TAG}={provider} acquires its nodes: it must be MANAGED (got {kind})"),
        );
    }
    let Some(cr) = compute_resources else {
        return err(
            "computeResources",
            "a MANAGED environment needs computeResources with type, maxvCpus and subnets (e.g. {\"type\": \"EC2\", \"maxvCpus\": 8, \"subnets\": [\"any\"]})",
        );
    };
    let (min, desired, max) = capacity(cr)?;
    let settings = SlurmSettings {
        partition: nonempty(tags, PARTITION_TAG)?,
        account: nonempty(tags, ACCOUNT_TAG)?,
        time_limit_s: match tags.get(TIME_LIMIT_TAG) {
            Some(t) => Some(parse_slurm_time(t).ok_or_else(|| {
                ClientError::new(
                    format!("tags.{TIME_LIMIT_TAG}"),
                    format!("{t:?} is not a Slurm time limit; use minutes, HH:MM:SS or D-HH:MM:SS (e.g. 2:00:00), above 0"),
                )
            })?),
            None => None,
        },
        extra_args: tags
            .get(ARGS_TAG)
            .map(|a| a.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
        idle_timeout_s: match tags.get(IDLE_TIMEOUT_TAG) {
            Some(t) => t.trim().parse().map_err(|_| {
                ClientError::new(
                    format!("tags.{IDLE_TIMEOUT_TAG}"),
                    format!("{t:?} is not a number of seconds (e.g. 300)"),
                )
            })?,
            None => DEFAULT_IDLE_TIMEOUT_S,
        },
    };
    Ok(Some(ManagedSpec {
        min_vcpus: min,
        desired_vcpus: desired,
        max_vcpus: max,
        provider: Provider::Slurm(settings),
    }))
}

fn nonempty(tags: &BTreeMap<String, String>, key: &str) -> Result<Option<String>, ClientError> {
    match tags.get(key).map(|v| v.trim()) {
        Some("") => err(
            format!("tags.{key}"),
            "is empty; give a value or leave the tag out",
        ),
        Some(v) => Ok(Some(v.to_string())),
        None => Ok(None),
    }
}

/// `minvCpus`, `desiredvCpus` (default: `minvCpus`) and `maxvCpus`, with
/// AWS's rules: `type` and `maxvCpus` required, `subnets` a list (boto3
/// requires it), 0 ≤ min ≤ desired ≤ max.
fn capacity(cr: &Value) -> Result<(u32, u32, u32), ClientError> {
    let field = |k: &str| format!("computeResources.{k}");
    match cr.get("type").and_then(Value::as_str) {
        Some("EC2" | "SPOT") => {}
        Some(t) => {
            return err(
                field("type"),
                format!("{t:?}: Shoal's providers take EC2 (or SPOT), recorded as given"),
            )
        }
        None => return err(field("type"), "is required (EC2)"),
    }
    if let Some(s) = cr.get("subnets") {
        if !s.is_array() {
            return err(field("subnets"), "must be a list (any subnets, recorded)");
        }
    }
    let vcpus = |k: &str| -> Result<Option<u32>, ClientError> {
        match cr.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| {
                    ClientError::new(
                        field(k),
                        format!("must be a whole number, 0 or more (got {v})"),
                    )
                }),
        }
    };
    let max =
        vcpus("maxvCpus")?.ok_or_else(|| ClientError::new(field("maxvCpus"), "is required"))?;
    let min = vcpus("minvCpus")?.unwrap_or(0);
    let desired = vcpus("desiredvCpus")?.unwrap_or(min);
    if min > max {
        return err(field("minvCpus"), format!("{min} is above maxvCpus {max}"));
    }
    if !(min..=max).contains(&desired) {
        return err(
            field("desiredvCpus"),
            format!("{desired} must lie between minvCpus {min} and maxvCpus {max}"),
        );
    }
    Ok((min, desired, max))
}

/// Seconds of a Slurm time limit: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`,
/// `D-H:M:S`; None if malformed or 0.
pub fn parse_slurm_time(t: &str) -> Option<u64> {
    let t = t.trim();
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let secs = match t.split_once('-') {
        Some((d, rest)) => {
            let d = num(d)?;
            let parts: Vec<&str> = rest.split(':').collect();
            let (h, m, s) = match parts.as_slice() {
                [h] => (num(h)?, 0, 0),
                [h, m] => (num(h)?, num(m)?, 0),
                [h, m, s] => (num(h)?, num(m)?, num(s)?),
                _ => return None,
            };
            ((d * 24 + h) * 60 + m) * 60 + s
        }
        None => {
            let parts: Vec<&str> = t.split(':').collect();
            match parts.as_slice() {
                [m] => num(m)? * 60,
                [m, s] => num(m)? * 60 + num(s)?,
                [h, m, s] => (num(h)? * 60 + num(m)?) * 60 + num(s)?,
                _ => return None,
            }
        }
    };
    (secs > 0).then_some(secs)
}

/// `computeResources` after an `UpdateComputeEnvironment`: the fields the
/// update gives replace the environment's, the others stay (AWS's
/// `ComputeResourceUpdate`).
pub fn merge_compute_resources(old: Option<&Value>, update: &Value) -> Value {
    let mut merged = old
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()));
    if let (Some(m), Some(u)) = (merged.as_object_mut(), update.as_object()) {
        for (k, v) in u {
            m.insert(k.clone(), v.clone());
        }
        return merged;
    }
    update.clone()
}

/// One of a MANAGED environment's allocations, as
/// `DescribeComputeEnvironments` shows it (a Shoal extension of the
/// environment's shape: `allocations`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllocationDetail {
    /// Shoal's name of it, `ENVIRONMENT.SEQ` (its workers are named
    /// `ENVIRONMENT.SEQ.NODE`).
    pub name: String,
    /// Slurm's job id, once `sbatch` answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job_id: Option<String>,
    /// `SUBMITTING`, `PENDING`, `RUNNING` or `ENDING` (as Slurm says, for
    /// the last three).
    pub state: String,
    /// Nodes asked for.
    pub node_count: u32,
    /// The nodes Slurm gave it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// vCPUs it holds (or will).
    pub vcpus: u32,
    /// Its time limit, seconds (None: the partition's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_limit_seconds: Option<u64>,
    /// When it was submitted (epoch ms).
    pub submitted_at: u64,
    /// When it ends at the latest (epoch ms), once it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<u64>,
    /// Its workers that have registered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<String>,
}

/// `sbatch --time` for `secs` (rounded up to whole minutes: Slurm's own
/// resolution), as `D-HH:MM:SS`.
pub fn slurm_time(secs: u64) -> String {
    let mins = secs.div_ceil(60).max(1);
    let (d, h, m) = (mins / 1440, mins / 60 % 24, mins % 60);
    format!("{d}-{h:02}:{m:02}:00")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tags(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_slurm_environment_resolves_its_capacity_and_settings_once() {
        let cr = json!({"type": "EC2", "minvCpus": 0, "maxvCpus": 4, "subnets": ["s-1"]});
        let t = tags(&[
            (PROVIDER_TAG, "slurm"),
            (PARTITION_TAG, "batch"),
            (ACCOUNT_TAG, "chem"),
            (TIME_LIMIT_TAG, "1-02:00:00"),
            (ARGS_TAG, "--qos=high  --exclusive"),
            (IDLE_TIMEOUT_TAG, "30"),
        ]);
        let spec = resolve("MANAGED", Some(&cr), &t).unwrap().unwrap();
        assert_eq!(
            spec,
            ManagedSpec {
                min_vcpus: 0,
                desired_vcpus: 0,
                max_vcpus: 4,
                provider: Provider::Slurm(SlurmSettings {
                    partition: Some("batch".into()),
                    account: Some("chem".into()),
                    time_limit_s: Some(26 * 3600),
                    extra_args: vec!["--qos=high".into(), "--exclusive".into()],
                    idle_timeout_s: 30,
                }),
            }
        );
        // No provider: a pool of the workers that register, as before.
        assert_eq!(resolve("MANAGED", Some(&cr), &tags(&[])).unwrap(), None);
        assert_eq!(resolve("UNMANAGED", None, &tags(&[])).unwrap(), None);
        let plain = resolve("MANAGED", Some(&cr), &tags(&[(PROVIDER_TAG, "slurm")]))
            .unwrap()
            .unwrap();
        let Provider::Slurm(s) = plain.provider;
        assert_eq!(
            (s.time_limit_s, s.idle_timeout_s),
            (None, DEFAULT_IDLE_TIMEOUT_S)
        );
    }

    #[test]
    fn a_wrong_setting_is_named_with_how_to_fix_it() {
        let cr = json!({"type": "EC2", "maxvCpus": 4, "subnets": []});
        let slurm = |extra: &[(&str, &str)]| {
            let mut t = tags(&[(PROVIDER_TAG, "slurm")]);
            t.extend(tags(extra));
            t
        };
        let field_of = |kind: &str, cr: Option<&Value>, t: &BTreeMap<String, String>| {
            resolve(kind, cr, t).unwrap_err().field
        };
        assert_eq!(
            field_of("MANAGED", Some(&cr), &tags(&[(PROVIDER_TAG, "pbs")])),
            "tags.shoal:provider"
        );
        assert_eq!(field_of("UNMANAGED", Some(&cr), &slurm(&[])), "type");
        assert_eq!(field_of("MANAGED", None, &slurm(&[])), "computeResources");
        assert_eq!(
            field_of("MANAGED", Some(&json!({"maxvCpus": 4})), &slurm(&[])),
            "computeResources.type"
        );
        assert_eq!(
            field_of("MANAGED", Some(&json!({"type": "EC2"})), &slurm(&[])),
            "computeResources.maxvCpus"
        );
        let over = json!({"type": "EC2", "minvCpus": 5, "maxvCpus": 4});
        assert_eq!(
            field_of("MANAGED", Some(&over), &slurm(&[])),
            "computeResources.minvCpus"
        );
        let desired = json!({"type": "EC2", "minvCpus": 1, "desiredvCpus": 9, "maxvCpus": 4});
        assert_eq!(
            field_of("MANAGED", Some(&desired), &slurm(&[])),
            "computeResources.desiredvCpus"
        );
        let neg = json!({"type": "EC2", "maxvCpus": -1});
        assert_eq!(
            field_of("MANAGED", Some(&neg), &slurm(&[])),
            "computeResources.maxvCpus"
        );
        let e = resolve("MANAGED", Some(&cr), &slurm(&[(TIME_LIMIT_TAG, "2 hours")])).unwrap_err();
        assert_eq!(e.field, "tags.shoal:slurm-time-limit");
        assert!(e.message.contains("HH:MM:SS"), "{e}");
        assert_eq!(
            field_of("MANAGED", Some(&cr), &slurm(&[(IDLE_TIMEOUT_TAG, "soon")])),
            "tags.shoal:idle-timeout-seconds"
        );
        assert_eq!(
            field_of("MANAGED", Some(&cr), &slurm(&[(PARTITION_TAG, " ")])),
            "tags.shoal:slurm-partition"
        );
        // A provider's setting without a provider.
        let e = resolve("MANAGED", Some(&cr), &tags(&[(PARTITION_TAG, "batch")])).unwrap_err();
        assert!(e.message.contains("shoal:provider=slurm"), "{e}");
    }

    #[test]
    fn slurm_time_limits_read_and_write_in_slurms_forms() {
        for (t, s) in [
            ("90", 5400),
            ("1:30", 90),
            ("02:00:00", 7200),
            ("1-0", 86400),
            ("1-2:30", 95400),
            ("0-00:00:30", 30),
        ] {
            assert_eq!(parse_slurm_time(t), Some(s), "{t}");
        }
        for bad in ["", "0", "1:2:3:4", "x", "-1", "1-", "1h", "1-2:3:4:5"] {
            assert_eq!(parse_slurm_time(bad), None, "{bad:?}");
        }
        assert_eq!(slurm_time(7200), "0-02:00:00");
        assert_eq!(slurm_time(61), "0-00:02:00");
        assert_eq!(slurm_time(95400), "1-02:30:00");
        assert_eq!(parse_slurm_time(&slurm_time(95400)), Some(95400));
    }
}
