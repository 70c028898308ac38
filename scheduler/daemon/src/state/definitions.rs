//! RegisterJobDefinition, DescribeJobDefinitions, DeregisterJobDefinition.

use super::{page, pagination, reply, to_json, Registry, Shared};
use crate::api::ApiError;
use shoal_model as m;

impl Registry {
    pub(super) fn register(
        &mut self,
        sh: &mut Shared,
        req: m::RegisterJobDefinitionRequest,
    ) -> Result<Vec<u8>, ApiError> {
        let revs = self
            .definitions
            .entry(req.job_definition_name.clone())
            .or_default();
        let revision = revs.last().map(|d| d.revision + 1).unwrap_or(1);
        let def = m::JobDefinition::from_request(&req, &sh.scope, revision);
        sh.batch
            .put_definition(&def.job_definition_name, revision as i64, to_json(&def));
        let resp = m::RegisterJobDefinitionResponse {
            job_definition_name: def.job_definition_name.clone(),
            job_definition_arn: def.job_definition_arn.clone(),
            revision,
        };
        revs.push(def);
        reply(&resp)
    }

    pub(super) fn describe_definitions(
        &self,
        req: m::DescribeJobDefinitionsRequest,
    ) -> Result<Vec<u8>, ApiError> {
        let (start, max) = pagination(req.next_token.as_deref(), req.max_results)?;
        let mut out: Vec<&m::JobDefinition> = Vec::new();
        if !req.job_definitions.is_empty() {
            for r in req.refs()? {
                let Some(revs) = self.definitions.get(r.name()) else {
                    continue;
                };
                match r.revision() {
                    Some(rev) => out.extend(revs.iter().filter(|d| d.revision == rev)),
                    None => out.extend(revs.iter()),
                }
            }
        } else {
            let status = req.status.as_deref();
            let iter: Box<dyn Iterator<Item = &Vec<m::JobDefinition>>> =
                match &req.job_definition_name {
                    Some(n) => Box::new(self.definitions.get(n).into_iter()),
                    None => Box::new(self.definitions.values()),
                };
            for revs in iter {
                out.extend(revs.iter().filter(|d| status.is_none_or(|s| d.status == s)));
            }
        }
        let (list, next_token) = page(&out, start, max);
        reply(&m::DescribeJobDefinitionsResponse {
            job_definitions: list.into_iter().cloned().collect(),
            next_token,
        })
    }

    pub(super) fn deregister(
        &mut self,
        sh: &mut Shared,
        req: m::DeregisterJobDefinitionRequest,
    ) -> Result<Vec<u8>, ApiError> {
        let (name, rev) = req.target()?;
        let def = self
            .definitions
            .get_mut(&name)
            .and_then(|revs| revs.iter_mut().find(|d| d.revision == rev))
            .ok_or_else(|| {
                ApiError::field(
                    "jobDefinition",
                    format!("no job definition {name}:{rev} is registered"),
                )
            })?;
        def.status = "INACTIVE".into();
        sh.batch.put_definition(&name, rev as i64, to_json(&*def));
        reply(&serde_json::json!({}))
    }

    /// Resolve a SubmitJob `jobDefinition`: name (latest ACTIVE revision),
    /// `name:rev` or ARN.
    pub(super) fn find_definition(&self, r: &str) -> Result<&m::JobDefinition, ApiError> {
        let parsed = m::parse_job_definition_ref(r).map_err(|e| e.with_field("jobDefinition"))?;
        let name = parsed.name();
        let revs = self.definitions.get(name).ok_or_else(|| {
            ApiError::field(
                "jobDefinition",
                format!("no job definition named {name:?} is registered; register it first (shoal register FILE.json)"),
            )
        })?;
        match parsed.revision() {
            Some(rev) => {
                let d = revs.iter().find(|d| d.revision == rev).ok_or_else(|| {
                    ApiError::field("jobDefinition", format!("{name} has no revision {rev}"))
                })?;
                if !d.is_active() {
                    return Err(ApiError::field(
                        "jobDefinition",
                        format!(
                            "{name}:{rev} is INACTIVE (deregistered); submit an active revision"
                        ),
                    ));
                }
                Ok(d)
            }
            None => revs.iter().rev().find(|d| d.is_active()).ok_or_else(|| {
                ApiError::field(
                    "jobDefinition",
                    format!("every revision of {name} is INACTIVE"),
                )
            }),
        }
    }
}
