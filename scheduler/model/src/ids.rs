//! Job references as users, the scheduler and the workers write them: a
//! job `ID` (a UUID, or `PARENT:INDEX` for a child of an array job) and one
//! node of a multinode job, `ID#NODE`. Nothing outside this module takes
//! them apart.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A job: a UUID, or an array child `PARENT:INDEX`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// A job id as stored (not checked: ids come from this scheduler).
    pub fn new(id: impl Into<String>) -> JobId {
        JobId(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Child `index` of this array job: `ID:INDEX`.
    pub fn child(&self, index: u32) -> JobId {
        JobId(format!("{}:{index}", self.0))
    }

    /// For an array child, its parent and index.
    pub fn parent(&self) -> Option<(JobId, u32)> {
        let (p, i) = self.0.rsplit_once(':')?;
        Some((JobId(p.to_string()), i.parse().ok()?))
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A job, or one node of a multinode job: `ID` or `ID#NODE`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobRef {
    /// The job.
    pub job: JobId,
    /// The node index, for one node of a multinode job.
    pub node: Option<u32>,
}

impl JobRef {
    /// The whole job.
    pub fn job(job: JobId) -> JobRef {
        JobRef { job, node: None }
    }

    /// Node `index` of a multinode job.
    pub fn node(job: JobId, index: u32) -> JobRef {
        JobRef {
            job,
            node: Some(index),
        }
    }
}

impl fmt::Display for JobRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.node {
            Some(n) => write!(f, "{}#{n}", self.job),
            None => write!(f, "{}", self.job),
        }
    }
}

/// Why a text is not a job reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobRefError {
    /// Nothing before `#`, or nothing at all.
    #[error("no job id; give ID, ID:INDEX or ID#NODE")]
    Empty,
    /// What follows `#` is not a node index.
    #[error("{0:?} after '#' is not a node index; give ID#NODE with NODE a number")]
    BadNode(String),
}

impl FromStr for JobRef {
    type Err = JobRefError;

    fn from_str(s: &str) -> Result<JobRef, JobRefError> {
        let (job, node) = match s.rsplit_once('#') {
            Some((j, n)) => (
                j,
                Some(
                    n.parse::<u32>()
                        .map_err(|_| JobRefError::BadNode(n.to_string()))?,
                ),
            ),
            None => (s, None),
        };
        if job.is_empty() {
            return Err(JobRefError::Empty);
        }
        Ok(JobRef {
            job: JobId::new(job),
            node,
        })
    }
}

impl Serialize for JobRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for JobRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<JobRef, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_print_and_parse_back() {
        let id = JobId::new("5d7c");
        for (r, text) in [
            (JobRef::job(id.clone()), "5d7c"),
            (JobRef::node(id.clone(), 3), "5d7c#3"),
            (JobRef::job(id.child(7)), "5d7c:7"),
        ] {
            assert_eq!(r.to_string(), text);
            assert_eq!(text.parse::<JobRef>().unwrap(), r);
            assert_eq!(
                serde_json::to_value(&r).unwrap(),
                serde_json::json!(text),
                "a string on the wire"
            );
        }
        assert_eq!(id.child(7).parent(), Some((id.clone(), 7)));
        assert_eq!(id.parent(), None);
        assert_eq!(
            "x#y".parse::<JobRef>(),
            Err(JobRefError::BadNode("y".into()))
        );
        assert_eq!("#1".parse::<JobRef>(), Err(JobRefError::Empty));
        assert!(serde_json::from_str::<JobRef>("\"a#b\"").is_err());
    }
}
