//! Tags on resources: TagResource, UntagResource, ListTagsForResource. The
//! tags are stored with the resource they belong to (its row in SQLite).

use super::pools::ESTIMATE_TAG;
use super::{reply, to_json, Jobs, Registry, Shared};
use crate::api::ApiError;
use serde_json::json;
use shoal_model as m;
use shoal_model::TaggedResource as T;
use std::collections::BTreeMap;

/// What to do with a resource's tags.
#[derive(Debug)]
pub enum TagChange {
    /// TagResource: add or replace these.
    Add(BTreeMap<String, String>),
    /// UntagResource: remove these keys.
    Remove(Vec<String>),
    /// ListTagsForResource.
    List,
}

fn not_found(what: &str) -> ApiError {
    ApiError::field("resourceArn", format!("no {what}"))
}

/// The tags after `change`, or None for a listing.
fn changed(
    tags: &BTreeMap<String, String>,
    change: &TagChange,
) -> Result<Option<BTreeMap<String, String>>, ApiError> {
    Ok(match change {
        TagChange::Add(add) => Some(m::merge_tags(tags, add)?),
        TagChange::Remove(keys) => {
            let mut t = tags.clone();
            for k in keys {
                t.remove(k);
            }
            Some(t)
        }
        TagChange::List => None,
    })
}

/// Carry out a tag request on the resource an ARN names.
pub(super) fn handle(
    sh: &mut Shared,
    reg: &mut Registry,
    jobs: &mut Jobs,
    now: u64,
    resource: T,
    change: TagChange,
) -> Result<Vec<u8>, ApiError> {
    let tags = match &resource {
        T::Job(id) => {
            let t = jobs
                .tags_mut(id)
                .ok_or_else(|| not_found(&format!("job with id {id:?}")))?;
            if let Some(new) = changed(t, &change)? {
                *t = new;
            }
            t.clone()
        }
        T::JobDefinition(name, rev) => {
            let def = reg
                .definitions
                .get_mut(name)
                .and_then(|revs| revs.iter_mut().find(|d| d.revision == *rev))
                .ok_or_else(|| not_found(&format!("job definition {name}:{rev}")))?;
            if let Some(new) = changed(&def.tags, &change)? {
                def.tags = new;
                sh.batch.put_definition(name, *rev as i64, to_json(&*def));
            }
            def.tags.clone()
        }
        T::JobQueue(name) => {
            let mut rec = reg
                .queues
                .get(name)
                .cloned()
                .ok_or_else(|| not_found(&format!("job queue named {name:?}")))?;
            if let Some(new) = changed(&rec.detail.tags, &change)? {
                if let Some(v) = new.get(ESTIMATE_TAG) {
                    if v.parse::<u64>().is_err() {
                        return Err(ApiError::field(
                            &format!("tags.{ESTIMATE_TAG}"),
                            format!("{v:?} is not a whole number of seconds"),
                        ));
                    }
                }
                rec.detail.tags = new;
                reg.put_queue(sh, now, rec.clone())?;
            }
            rec.detail.tags
        }
        T::ComputeEnvironment(name) => {
            let mut rec = reg
                .ces
                .get(name)
                .cloned()
                .ok_or_else(|| not_found(&format!("compute environment named {name:?}")))?;
            if let Some(new) = changed(&rec.detail.tags, &change)? {
                // A MANAGED environment's provider settings are tags: they
                // take effect now (an INVALID one stays so until
                // UpdateComputeEnvironment); the provider itself is fixed.
                let kind = rec.detail.kind.clone().unwrap_or_default();
                let spec = m::managed::resolve(&kind, rec.detail.compute_resources.as_ref(), &new)
                    .map_err(ApiError::from)?;
                match (&mut rec.managed, spec) {
                    (Some(mg), Some(spec)) => mg.spec = spec,
                    (None, None) => {}
                    (Some(_), None) => {
                        return Err(ApiError::field(
                            &format!("tags.{}", m::managed::PROVIDER_TAG),
                            format!("{name} gets its nodes from its provider; it cannot stop doing so: create another compute environment instead"),
                        ))
                    }
                    (None, Some(_)) => {
                        return Err(ApiError::field(
                            &format!("tags.{}", m::managed::PROVIDER_TAG),
                            format!("{name} has no provider; a provider is set when an environment is created: create a MANAGED one with the tag"),
                        ))
                    }
                }
                rec.detail.tags = new;
                reg.put_ce(sh, now, rec.clone())?;
            }
            rec.detail.tags
        }
        T::SchedulingPolicy(name) => {
            let rec = reg
                .policies
                .get_mut(name)
                .ok_or_else(|| not_found(&format!("scheduling policy named {name:?}")))?;
            if let Some(new) = changed(&rec.detail.tags, &change)? {
                rec.detail.tags = new;
                sh.batch.put_scheduling_policy(name, to_json(&*rec));
            }
            rec.detail.tags.clone()
        }
    };
    match change {
        TagChange::List => reply(&m::ListTagsForResourceResponse { tags }),
        _ => reply(&json!({})),
    }
}
