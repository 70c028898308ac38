//! `shoal bench md`: Shoal's molecular-dynamics benchmark (`shoal-md`) as
//! MPI jobs through the scheduler on N nodes × R ranks, shared memory
//! inside nodes plus TCP between them against TCP only, performance
//! against total ranks (like the seed's GROMACS ns/day chart).

use crate::sweep::{self, Shapes};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use shoal_client::Client;
use shoal_jobs::{definitions, inputs};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const DEFINITIONS: [&str; 4] = [
    definitions::MD_SHM_1NODE,
    definitions::MD_TCP_1NODE,
    definitions::MD_SHM_MULTINODE,
    definitions::MD_TCP_MULTINODE,
];
const CASE_LJ: &str = inputs::MD_BENCH_LJ;
const CASE_RF: &str = inputs::MD_BENCH_RF;
const MARKER: &str = "--- shoal-md json ---";

/// `shoal bench md` arguments.
#[derive(clap::Args)]
pub struct MdBench {
    /// Built-in case: lj (LAMMPS' in.lj) or rf (charged, reaction field).
    #[arg(long, default_value = "lj")]
    case: String,
    /// Your own input (LAMMPS syntax, the subset shoal-md reads) instead of --case.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Atoms, about (the box is n×n×n fcc cells, 4n³ atoms); built-in cases only.
    #[arg(long, default_value_t = 32_000)]
    atoms: u64,
    /// Timesteps; built-in cases only.
    #[arg(long, default_value_t = 100)]
    steps: u64,
    #[command(flatten)]
    shapes: Shapes,
    #[command(flatten)]
    out: sweep::Output,
    /// The shoal-md binary (default: beside this shoal binary).
    #[arg(long)]
    md: Option<PathBuf>,
}

/// Run the benchmark.
pub fn run(b: MdBench) -> Result<i32> {
    let md = match &b.md {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("shoal-md"),
    };
    if !md.exists() {
        bail!(
            "{} not found; build it with `cargo build --release -p shoal-md` or pass --md PATH",
            md.display()
        );
    }
    let md = std::fs::canonicalize(md)?;
    b.shapes.check()?;
    let dir = std::env::temp_dir().join(format!("shoal-md-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (input, vars) = match &b.input {
        Some(p) => (
            std::fs::canonicalize(p).with_context(|| format!("cannot read {}", p.display()))?,
            String::new(),
        ),
        None => {
            let text = match b.case.as_str() {
                "lj" => CASE_LJ,
                "rf" => CASE_RF,
                other => bail!("--case {other:?}: give lj or rf, or --input FILE"),
            };
            let path = dir.join(format!("bench.{}", b.case));
            std::fs::write(&path, text)?;
            let n = ((b.atoms.max(4) as f64 / 4.0).cbrt().round() as u64).max(3);
            (path, format!("-var n {n} -var steps {}", b.steps))
        }
    };
    let result = sweep::run_all(
        &b.shapes,
        b.out.endpoint.as_deref(),
        &dir,
        sweep::register(&DEFINITIONS),
        |client, cluster, run| one_run(client, cluster, run, &md, &input, &vars),
    );
    let _ = std::fs::remove_dir_all(&dir);
    let results = result?;
    sweep::report(
        &results,
        |natoms| {
            format!("shoal bench md: {natoms} atoms; performance per run (shoal-md through the scheduler)")
        },
        "shoal-md performance against ranks",
        &b.out,
    )?;
    Ok(0)
}

/// One run: its job through the scheduler, its results with the BTLs its
/// pairs of ranks used (checked against the transport).
fn one_run(
    client: &Client,
    cluster: &sweep::Cluster,
    run: &sweep::Run,
    md: &Path,
    input: &Path,
    vars: &str,
) -> Result<Value> {
    let t = if run.transport == "tcp" { "tcp" } else { "shm" };
    let shape = if run.nodes > 1 { "multinode" } else { "1node" };
    let params = BTreeMap::from([
        ("md".to_string(), md.display().to_string()),
        ("input".to_string(), input.display().to_string()),
        ("vars".to_string(), vars.to_string()),
    ]);
    let f = sweep::submit(
        client,
        run,
        &format!("md-{t}-{shape}"),
        params,
        cluster.vcpus(run),
    )?;
    let text = f
        .log
        .split(MARKER)
        .nth(1)
        .with_context(|| format!("the {} run printed no results:\n{}", run.transport, f.log))?;
    let mut r: Value = serde_json::from_str(text.trim()).context("the results are not JSON")?;
    let btl = sweep::BtlUse::of(&f.log, run.rpn);
    btl.verify(run)?;
    r["program"] = serde_json::json!("shoal-md");
    sweep::annotate(&mut r, run, &f, &btl);
    Ok(r)
}
