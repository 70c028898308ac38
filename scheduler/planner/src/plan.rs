//! x
use clap::Args;
/// Args.
#[derive(Debug, Args)]
pub struct PlanArgs {}
/// run
pub fn run(_a: PlanArgs) -> anyhow::Result<i32> {
    Ok(0)
}
