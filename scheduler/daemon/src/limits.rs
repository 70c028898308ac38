//! The scheduler's HTTP paths and limits, in one place.

use std::time::Duration;

/// AWS Batch's operations: `POST /v1/{op}` (the router's pattern).
pub const AWS_ROUTE: &str = "/v1/{op}";

/// Tags of a resource (AWS Batch's TagResource, UntagResource,
/// ListTagsForResource); the ARN may hold `/`.
pub const TAGS_ROUTE: &str = "/v1/tags/{*arn}";

/// Shoal's own operations: `POST /shoal/v1/{op}` (the router's pattern).
pub const SHOAL_ROUTE: &str = "/shoal/v1/{op}";

/// The worker protocol's paths: not SigV4-authenticated (workers use mutual
/// TLS), and the only ones the worker listener serves when TLS is on.
pub const WORKER_PATHS: [&str; 2] = ["/shoal/v1/registerworker", "/shoal/v1/poll"];

/// Header carrying an idempotency token for SubmitJob (a Shoal extension).
pub const CLIENT_TOKEN_HEADER: &str = "x-shoal-client-token";

/// Largest accepted request body. AWS Batch's own limit for a job
/// definition is far smaller; 1 MiB leaves room for big parameter maps.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The most of an oversized body read (and dropped) so that its client
/// can read the refusal.
pub const DRAIN_MAX_BYTES: usize = 64 << 20;

/// How long a request body may take to arrive, from the end of its headers.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest a worker's poll is held open.
pub const MAX_POLL_WAIT_MS: u64 = 30_000;

/// Most requests handled in one transaction.
pub const MAX_BATCH: usize = 2048;
