//! Tags on resources: TagResource, UntagResource and ListTagsForResource
//! (`/v1/tags/{resourceArn}` with POST, DELETE and GET), on jobs, job
//! definitions, job queues, compute environments and scheduling policies.

use crate::arn::{parse_arn, parse_job_definition_ref, DefinitionRef, ResourceKind};
use crate::error::{err, ClientError, Validate};
use crate::util::{check_tags, nullable};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A resource that carries tags, as its ARN names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaggedResource {
    Job(String),
    JobDefinition(String, i32),
    JobQueue(String),
    ComputeEnvironment(String),
    SchedulingPolicy(String),
}

impl TaggedResource {
    /// Read a `resourceArn`.
    pub fn from_arn(arn: &str) -> Result<TaggedResource, ClientError> {
        let field = "resourceArn";
        let p = parse_arn(field, arn)?;
        Ok(match p.kind {
            ResourceKind::Job => TaggedResource::Job(p.resource),
            ResourceKind::JobQueue => TaggedResource::JobQueue(p.resource),
            ResourceKind::ComputeEnvironment => TaggedResource::ComputeEnvironment(p.resource),
            ResourceKind::SchedulingPolicy => TaggedResource::SchedulingPolicy(p.resource),
            ResourceKind::JobDefinition => {
                match parse_job_definition_ref(arn).map_err(|e| e.with_field(field))? {
                    DefinitionRef::NameRev(n, r) => TaggedResource::JobDefinition(n, r),
                    DefinitionRef::Name(n) => {
                        return err(
                            field,
                            format!(
                        "{arn:?} names no revision; tag one revision: job-definition/{n}:REVISION"
                    ),
                        )
                    }
                }
            }
        })
    }
}

/// TagResource's body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagResourceBody {
    #[serde(default, deserialize_with = "nullable")]
    pub tags: BTreeMap<String, String>,
}

impl Validate for TagResourceBody {
    fn validate(&self) -> Result<(), ClientError> {
        if self.tags.is_empty() {
            return err("tags", "give at least one tag");
        }
        check_tags("tags", &self.tags)
    }
}

/// UntagResource's `tagKeys` (query string): 1–50 keys.
pub fn check_tag_keys(keys: &[String]) -> Result<(), ClientError> {
    if keys.is_empty() || keys.len() > 50 {
        return err(
            "tagKeys",
            format!("give 1 to 50 tag keys (got {})", keys.len()),
        );
    }
    if let Some(k) = keys.iter().find(|k| k.is_empty() || k.len() > 128) {
        return err(
            "tagKeys",
            format!("{k:?} is not a tag key (1 to 128 characters)"),
        );
    }
    Ok(())
}

/// ListTagsForResource's reply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsForResourceResponse {
    pub tags: BTreeMap<String, String>,
}

/// Merge `add` into a resource's tags; the result must still be within
/// AWS's limits.
pub fn merge_tags(
    tags: &BTreeMap<String, String>,
    add: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ClientError> {
    let mut out = tags.clone();
    out.extend(add.iter().map(|(k, v)| (k.clone(), v.clone())));
    check_tags("tags", &out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_of_every_tagged_kind_are_read() {
        let a = "arn:aws:batch:us-east-1:000000000000";
        assert_eq!(
            TaggedResource::from_arn(&format!("{a}:job-definition/d:3")).unwrap(),
            TaggedResource::JobDefinition("d".into(), 3)
        );
        assert_eq!(
            TaggedResource::from_arn(&format!("{a}:scheduling-policy/p")).unwrap(),
            TaggedResource::SchedulingPolicy("p".into())
        );
        assert!(TaggedResource::from_arn(&format!("{a}:job-definition/d")).is_err());
        assert!(TaggedResource::from_arn("nope").is_err());
        assert!(check_tag_keys(&[]).is_err());
    }
}
