//! Shoal's scheduling core.
//!
//! A pure library: events go in ([`Core::apply`]), decisions come out
//! ([`Core::drain`]). It has no I/O, no clock and no threads: every call
//! carries the current time (`now`, milliseconds since the Unix epoch, or a
//! virtual clock). The live scheduler and the capacity planner both drive it,
//! so there is one implementation of every policy.
//!
//! Modules:
//! - `core`: [`Core`], the job lifecycle and the scheduling pass;
//! - `state`: internal bookkeeping (jobs, nodes, queues, shapes);
//! - `placement`: fitting jobs on nodes, gang assignment, status reasons;
//! - `backfill`: EASY and Conservative reservations.
//!
//! See `docs/ARCHITECTURE.md` for how the daemon drives it.
#![warn(missing_docs)]

mod backfill;
mod core;
mod error;
mod placement;
mod runq;
mod state;
mod types;

pub use crate::core::{
    Core, CONSERVATIVE_MAX_RESERVATIONS, DEFAULT_EXIT_REASON, DEPENDENCY_FAILED_REASON,
    MAIN_EXITED_REASON, TIMEOUT_REASON,
};
pub use error::CoreError;
pub use types::*;
