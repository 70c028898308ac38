//! `shoal bench md`: Shoal's molecular-dynamics benchmark (`shoal-md`) as
//! MPI jobs through the scheduler, shared memory against TCP, performance
//! against ranks (like the seed's GROMACS ns/day chart).

use crate::local_cluster::{run_job, shipped_definition, with_cluster};
use crate::osu::fmt;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use shoal_client::Client;
use shoal_jobs::{definitions, inputs};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const DEFINITIONS: [&str; 2] = [definitions::MD_SHM_1NODE, definitions::MD_TCP_1NODE];
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
    /// Rank counts to run (on one node).
    #[arg(long, value_delimiter = ',', default_values_t = [1u32, 2])]
    ranks: Vec<u32>,
    /// Transports for runs of 2 or more ranks.
    #[arg(long, value_delimiter = ',', default_values_t = ["shm".to_string(), "tcp".to_string()])]
    transport: Vec<String>,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write an SVG plot (performance against ranks) here.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Use a running cluster (one node with enough vCPUs) instead of starting one.
    #[arg(long)]
    endpoint: Option<String>,
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
    for t in &b.transport {
        if !matches!(t.as_str(), "shm" | "tcp") {
            bail!("--transport {t:?}: give shm and/or tcp");
        }
    }
    if b.ranks.is_empty() || b.ranks.contains(&0) {
        bail!("--ranks: give one or more positive rank counts, e.g. 1,2");
    }
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
    let max_ranks = *b.ranks.iter().max().unwrap_or(&2);
    let result = with_cluster(
        b.endpoint.as_deref(),
        1,
        max_ranks,
        &Default::default(),
        &dir.join("cluster"),
        |client| run_on(&b, client, &md, &input, &vars, max_ranks),
    );
    let _ = std::fs::remove_dir_all(&dir);
    let results = result?;
    print_table(&results);
    if let Some(p) = &b.json {
        std::fs::write(p, serde_json::to_vec_pretty(&results)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
        eprintln!("wrote {}", p.display());
    }
    if let Some(p) = &b.plot {
        plot(p, &results)?;
        eprintln!("wrote {}", p.display());
    }
    Ok(0)
}

fn run_on(
    b: &MdBench,
    client: &Client,
    md: &Path,
    input: &Path,
    vars: &str,
    vcpus: u32,
) -> Result<Vec<Value>> {
    for def in DEFINITIONS {
        let mut d = shipped_definition(def)?;
        let requirements = d
            .container_properties
            .iter_mut()
            .flat_map(|c| c.resource_requirements.iter_mut());
        for r in requirements.filter(|r| r.kind == "VCPU") {
            r.value = vcpus.to_string();
        }
        client.call(&d)?;
    }
    // Serial once; each transport for 2+ ranks. One job at a time.
    let mut runs: Vec<(String, u32)> = Vec::new();
    for &r in &b.ranks {
        if r == 1 {
            runs.push(("serial".into(), 1));
        } else {
            runs.extend(b.transport.iter().map(|t| (t.clone(), r)));
        }
    }
    let bar = ProgressBar::new(runs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} runs {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let mut out = Vec::new();
    for (t, ranks) in runs {
        bar.set_message(format!("{t} × {ranks}"));
        let def = if t == "tcp" {
            "md-tcp-1node"
        } else {
            "md-shm-1node"
        };
        let params = BTreeMap::from([
            ("md".to_string(), md.display().to_string()),
            ("input".to_string(), input.display().to_string()),
            ("vars".to_string(), vars.to_string()),
            ("ranks".to_string(), ranks.to_string()),
        ]);
        let (id, job) = run_job(client, def, format!("md-{t}-{ranks}"), params)?;
        let log = String::from_utf8_lossy(&client.log(&id, 0)?).to_string();
        if job.status != "SUCCEEDED" {
            bar.finish_and_clear();
            bail!(
                "the {t} run on {ranks} ranks failed: {}\n{log}",
                job.status_reason.as_deref().unwrap_or("")
            );
        }
        let text = log
            .split(MARKER)
            .nth(1)
            .with_context(|| format!("the {t} run printed no results:\n{log}"))?;
        let mut r: Value = serde_json::from_str(text.trim()).context("the results are not JSON")?;
        r["transport"] = json!(t);
        r["ranks"] = json!(ranks);
        r["shmPeakMiB"] = json!(job.shm_peak_mib);
        out.push(r);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(out)
}

fn print_table(results: &[Value]) {
    let natoms = results
        .first()
        .and_then(|r| r["natoms"].as_u64())
        .unwrap_or(0);
    println!("# shoal bench md: {natoms} atoms, one node; performance per run (shoal-md through the scheduler)");
    println!(
        "{:>6} {:>9} {:>12} {:>10} {:>12} {:>7} {:>13}",
        "ranks", "transport", "timesteps/s", "ns/day", "tau/day", "comm %", "/dev/shm MiB"
    );
    for r in results {
        println!(
            "{:>6} {:>9} {:>12} {:>10} {:>12.0} {:>7} {:>13}",
            r["ranks"].to_string(),
            r["transport"].as_str().unwrap_or("?"),
            fmt(r["steps_per_s"].as_f64()),
            fmt(r["ns_per_day"].as_f64()),
            r["tau_per_day"].as_f64().unwrap_or(0.0),
            fmt(r["comm_fraction"].as_f64().map(|f| f * 100.0)),
            r["shmPeakMiB"].to_string()
        );
    }
    let speed = |t: &str, n: u64| {
        results
            .iter()
            .find(|r| r["transport"] == t && r["ranks"] == n)
            .and_then(|r| r["steps_per_s"].as_f64())
    };
    let mut ns: Vec<u64> = results
        .iter()
        .filter_map(|r| r["ranks"].as_u64())
        .filter(|n| *n > 1)
        .collect();
    ns.dedup();
    for n in ns {
        if let (Some(s), Some(t)) = (speed("shm", n), speed("tcp", n)) {
            println!("# {n} ranks: shared memory is {:.2}× TCP", s / t);
        }
    }
    if let (Some(one), Some(two)) = (speed("serial", 1), speed("shm", 2)) {
        println!("# parallel speed-up on 2 ranks over shm: {:.2}×", two / one);
    }
}

fn plot(path: &Path, results: &[Value]) -> Result<()> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (640, 440)).into_drawing_area();
    let e = |e: &dyn std::fmt::Display| anyhow::anyhow!("{e}");
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let max_r = results
        .iter()
        .filter_map(|r| r["ranks"].as_u64())
        .max()
        .unwrap_or(2) as f64;
    let max_y = results
        .iter()
        .filter_map(|r| r["ns_per_day"].as_f64())
        .fold(1.0, f64::max)
        * 1.2;
    let mut chart = ChartBuilder::on(&root)
        .caption("shoal-md performance against ranks", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.5f64..max_r + 0.5, 0f64..max_y)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("MPI ranks")
        .y_desc("ns/day")
        .draw()
        .map_err(|x| e(&x))?;
    let serial = results
        .iter()
        .find(|r| r["transport"] == "serial")
        .and_then(|r| r["ns_per_day"].as_f64());
    for (t, color) in [
        ("shm", RGBColor(31, 119, 180)),
        ("tcp", RGBColor(214, 39, 40)),
    ] {
        let mut pts: Vec<(f64, f64)> = serial.map(|s| vec![(1.0, s)]).unwrap_or_default();
        pts.extend(
            results
                .iter()
                .filter(|r| r["transport"] == t)
                .filter_map(|r| Some((r["ranks"].as_f64()?, r["ns_per_day"].as_f64()?))),
        );
        if pts.len() < 2 && serial.is_some() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(t)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 4, color.filled())))
            .map_err(|x| e(&x))?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}
