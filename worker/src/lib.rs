//! Shoal's worker: registers with the scheduler, long-polls it for orders
//! and runs each task (one node of one attempt of a job) in isolation:
//!
//! - a private mount namespace with a tmpfs on `/dev/shm` of exactly the
//!   job's `sharedMemorySize` ([`isolate`]);
//! - a cgroup with the task's memory and CPU limits ([`cgroup`]);
//! - its own session, killed as a whole when the task ends ([`task`]).
#![warn(missing_docs)]

/// `eprintln!` for the long-running parts: a closed stderr is ignored, not
/// a panic.
macro_rules! say_err {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

pub mod capacity;
pub mod cgroup;
pub mod cluster;
pub mod connection;
pub mod fence;
pub mod images;
pub mod isolate;
pub use shoal_pki as pki;
pub mod policy;
pub mod poll;
pub mod server;
pub mod task;
pub mod tls;
pub mod worker;

pub use worker::{run, WorkerConfig};

/// Errors of the worker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O failure, with what was being done.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Talking to the scheduler failed.
    #[error("scheduler at {endpoint}: {message}")]
    Scheduler {
        /// Its URL.
        endpoint: String,
        /// What went wrong.
        message: String,
    },
    /// The scheduler answered and refused the request (e.g. "register
    /// again").
    #[error("scheduler at {endpoint}: {message}")]
    Refused {
        /// Its URL.
        endpoint: String,
        /// What it said.
        message: String,
    },
    /// A configuration mistake, with how to fix it.
    #[error("{0}")]
    Config(String),
    /// The cluster CA or a certificate.
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}
