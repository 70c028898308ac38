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
//! - `pass`: the three backfilling policies of a pass (FCFS, EASY,
//!   Conservative), each a `Policy` of its own over one shared walk;
//! - `placement`: fitting jobs on nodes (every `impl Cluster` placement),
//!   status reasons;
//! - `estimate`: start-time estimates from a dry run of a copy of the
//!   core;
//! - `fairshare`: shares' usage and the order of a fair-share queue's
//!   jobs in a pass;
//! - `backfill`: EASY's shadow time and Conservative's reservation profile;
//! - `matching`: gang assignment (a bipartite matching);
//! - `resources`: resource arithmetic;
//! - `index`: typed indices of the core's tables (`IndexVec`, `Option` for
//!   "none").
//!
//! See `docs/ARCHITECTURE.md` for how the daemon drives it.
#![warn(missing_docs)]

mod backfill;
mod core;
mod error;
mod estimate;
mod fairshare;
mod index;
mod matching;
mod pass;
mod placement;
mod resources;
mod runq;
mod state;
mod types;

pub use crate::core::{
    Core, DEFAULT_EXIT_REASON, DEPENDENCY_FAILED_REASON, MAIN_EXITED_REASON, TIMEOUT_REASON,
};
pub use crate::pass::CONSERVATIVE_MAX_RESERVATIONS;
pub use error::CoreError;
pub use estimate::StartEstimate;
pub use types::*;
