//! `cargo run --release -p shoal-planner --example plan -- --trace FILE …`:
//! the `shoal plan` command, standalone.

use clap::Parser;
use shoal_planner::PlanArgs;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    plan: PlanArgs,
}

fn main() -> anyhow::Result<()> {
    let code = shoal_planner::run(Cli::parse().plan)?;
    std::process::exit(code);
}
