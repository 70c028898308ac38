//! Errors of [`Core::apply`](crate::Core::apply).

use crate::types::{JobKey, NodeId, PoolId, QueueId};

/// Why an event was refused. A refused event changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// The event names a job the core does not know.
    #[error("unknown job {}", .0 .0)]
    UnknownJob(JobKey),
    /// The event names a node the core does not know (or that was lost).
    #[error("unknown node {}", .0 .0)]
    UnknownNode(NodeId),
    /// The event names a queue the core does not know.
    #[error("unknown queue {}", .0 .0)]
    UnknownQueue(QueueId),
    /// The event names a compute environment the core does not know.
    #[error("unknown compute environment {}", .0 .0)]
    UnknownPool(PoolId),
    /// A job with this key was already submitted.
    #[error("job {} already exists", .0 .0)]
    DuplicateJob(JobKey),
    /// A node event names a node index the job does not have.
    #[error("job {} has no node index {node_index}", .job.0)]
    InvalidNodeIndex {
        /// The job.
        job: JobKey,
        /// The node index named.
        node_index: u32,
    },
    /// QueueDeleted for a queue that still holds unfinished jobs.
    #[error("queue {} still has {count} unfinished jobs", .queue.0)]
    QueueNotEmpty {
        /// The queue.
        queue: QueueId,
        /// How many of its jobs are not SUCCEEDED or FAILED.
        count: usize,
    },
    /// A submitted job is malformed (bad shape, bad parent, self dependency).
    #[error("invalid job {}: {why}", .job.0)]
    InvalidJob {
        /// The job.
        job: JobKey,
        /// What is wrong.
        why: String,
    },
    /// A restored job's state cannot be taken over.
    #[error("invalid restored state for job {}: {why}", .job.0)]
    InvalidRestore {
        /// The job.
        job: JobKey,
        /// What is wrong.
        why: String,
    },
}
