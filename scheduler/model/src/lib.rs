//! Shoal's job model: the AWS Batch-compatible API (request and response
//! types, camelCase JSON exactly as AWS Batch spells it), request
//! validation, ARNs, and the job semantics the scheduler needs (parameter
//! substitution, overrides, per-node resource demand).
//!
//! [`Operation`] ties each request type to its path and its reply's type
//! (the client sends these, the scheduler parses them). Requests reject
//! unknown fields; [`parse_request`] turns every JSON or
//! type error into a [`ClientError`] naming the field path, and each
//! request's [`Validate::validate`] enforces the AWS rules.

pub mod api;
pub mod arn;
pub mod compute;
pub mod container;
pub mod definition;
pub mod error;
pub mod ids;
pub mod image;
pub mod job;
pub mod launch;
pub mod managed;
pub mod path;
pub mod policy;
pub mod queue;
pub mod semantics;
pub mod tags;
mod util;
pub mod wire;

pub use api::*;
pub use arn::{
    job_id_from_ref, parse_arn, parse_job_definition_ref, resource_name_from_ref, ArnScope,
    DefinitionRef, ParsedArn, ResourceKind,
};
pub use compute::*;
pub use container::*;
pub use definition::*;
pub use error::{parse_and_validate, parse_request, ClientError, Validate};
pub use ids::{JobId, JobRef, JobRefError};
pub use image::ImageRef;
pub use job::*;
pub use launch::*;
pub use policy::*;
pub use queue::*;
pub use semantics::*;
pub use tags::*;
