//! Shoal's capacity planner: replays workload traces in the Standard
//! Workload Format through the scheduling core ([`shoal_core::Core`]) on a
//! virtual clock, and reports wait, slowdown and utilization per policy and
//! cluster size.
//!
//! - [`swf`]: streaming SWF reader (plain or gzip);
//! - [`workload`]: the reference conventions (width, estimate, actual,
//!   placeholders);
//! - [`sim`]: the discrete-event driver of the core;
//! - [`metrics`]: wait, bounded slowdown, utilization, makespan;
//! - [`plan`]: sweeps over sizes and policies ([`PlanArgs`], [`run`]).
#![warn(missing_docs)]

pub mod metrics;
pub mod plan;
pub mod sim;
pub mod speedup;
pub mod swf;
pub mod workload;

pub use plan::{run, PlanArgs};
