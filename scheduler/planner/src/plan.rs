//! Sweeps: every (policy, cluster size) point of a trace, in parallel, with
//! a table on stdout and optional JSON and SVG outputs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use rayon::prelude::*;
use serde::Serialize;

use crate::metrics::{self, ShareBucket, WidthBucket};
use crate::sim::{simulate_fair, Policy, ShareBy, SimConfig, SimFairshare, TieBreak};
use crate::speedup::SpeedupCurve;
use crate::swf::{self, SwfRecord};
use crate::workload::{build, Conventions, EstimateKind, JobFilter, CLAMPED};

/// `shoal plan`: replay a workload trace through the scheduling core for
/// several cluster sizes and policies.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// Workload trace in the Standard Workload Format (.swf or .swf.gz).
    #[arg(long, value_name = "FILE")]
    pub trace: PathBuf,
    /// Cluster sizes to simulate: processors, or with --procs-per-node,
    /// nodes (comma-separated).
    #[arg(long, value_delimiter = ',', conflicts_with = "scale")]
    pub nodes: Vec<u32>,
    /// Cluster sizes as multiples of the trace's machine (MaxProcs, else
    /// MaxNodes), comma-separated. Default: 1.0.
    #[arg(long, value_delimiter = ',')]
    pub scale: Vec<f64>,
    /// Policies: fcfs, easy, conservative (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "fcfs,easy")]
    pub policy: Vec<Policy>,
    /// Order of events at equal times: `batch` (all terminations, then all
    /// submissions, then one pass) or `per-event` (one event at a time,
    /// submissions first, a pass after each: pyss' order).
    #[arg(long, default_value = "batch")]
    pub tie_break: TieBreak,
    /// Runtime estimate the scheduler sees: `requested` (the trace's
    /// requested time, by the conventions) or `actual` (perfect estimates).
    #[arg(long, default_value = "requested", value_parser = parse_estimate)]
    pub estimate: EstimateKind,
    /// Nodes of this many processors; jobs take whole nodes (ceil(width /
    /// P) of them, exclusively). Default: one node holding every processor.
    #[arg(long)]
    pub procs_per_node: Option<u32>,
    /// Divide the run time of the jobs selected by --shm-jobs by this.
    #[arg(long, default_value_t = 1.0)]
    pub shm_speedup: f64,
    /// Instead of one --shm-speedup: the shm/tcp speed-up that `shoal bench
    /// md` or `shoal bench gromacs` measured (its --json), by total ranks,
    /// applied at each job's width (linear between the measured counts,
    /// the nearest one's outside them).
    #[arg(long, value_name = "FILE.json", conflicts_with = "shm_speedup")]
    pub shm_speedup_from: Option<PathBuf>,
    /// Which jobs --shm-speedup applies to: `all` or `procs<op>N` (e.g.
    /// `procs>=2`).
    #[arg(long, default_value = "all")]
    pub shm_jobs: JobFilter,
    /// Replay under a fair-share policy: FILE holds AWS Batch's
    /// `fairsharePolicy` (as CreateSchedulingPolicy takes it, alone or as
    /// `{"fairsharePolicy": …}`); each job's share identifier is its SWF
    /// user id (field 12), or group id (field 13) with --share-by group,
    /// in decimal (`"12"`; -1 is `"unknown"`). Wait and bounded slowdown
    /// are then reported per share as well.
    #[arg(long, value_name = "FILE.json")]
    pub fairshare: Option<PathBuf>,
    /// Which SWF field names a job's share with --fairshare: user or group.
    #[arg(long, default_value = "user", requires = "fairshare")]
    pub share_by: ShareBy,
    /// Write the results as a JSON list to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Plot mean wait and mean bounded slowdown against cluster size, one
    /// line per policy, to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Do not show a progress bar.
    #[arg(long)]
    pub quiet: bool,
}

fn parse_estimate(s: &str) -> Result<EstimateKind, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "requested" | "request" => Ok(EstimateKind::Requested),
        "actual" | "perfect" => Ok(EstimateKind::Actual),
        _ => Err(format!("unknown estimate {s:?} (requested or actual)")),
    }
}

/// The result of one (policy, size) point.
#[derive(Debug, Clone, Serialize)]
pub struct PointResult {
    /// Policy name.
    pub policy: String,
    /// Processors of the simulated machine.
    pub procs: u32,
    /// Nodes (with --procs-per-node), else 1.
    pub nodes: u32,
    /// Event order (`batch` or `per-event`).
    pub tie_break: String,
    /// Jobs simulated (placeholders included).
    pub jobs: u64,
    /// Σ(width · actual) / (procs · makespan).
    pub utilization: f64,
    /// Mean wait, seconds.
    pub mean_wait_s: f64,
    /// Median wait, seconds.
    pub median_wait_s: f64,
    /// 95th percentile wait, seconds.
    pub p95_wait_s: f64,
    /// Largest wait, seconds.
    pub max_wait_s: f64,
    /// Mean bounded slowdown (τ = 10 s).
    pub mean_bounded_slowdown: f64,
    /// Last finish − first submit, seconds.
    pub makespan_s: u64,
    /// Lines turned into placeholders, and widths clamped, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Lines turned into placeholders (1 s jobs), all reasons together.
    pub placeholders: u64,
    /// Wall-clock seconds of the simulation.
    pub sim_seconds: f64,
    /// Mean wait and slowdown by job width.
    pub by_width: Vec<WidthBucket>,
    /// With --fairshare: mean wait and slowdown per share.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by_share: Vec<ShareBucket>,
}

/// Read `--fairshare FILE`: a `fairsharePolicy`, alone or inside a
/// CreateSchedulingPolicy request, validated by AWS's rules.
pub fn read_fairshare(path: &Path, by: ShareBy) -> Result<SimFairshare> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--fairshare: cannot read {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("--fairshare {}: not JSON", path.display()))?;
    let inner = v.get("fairsharePolicy").cloned().unwrap_or(v);
    let policy: shoal_model::FairsharePolicy =
        shoal_model::parse_request(&serde_json::to_vec(&inner)?)
            .map_err(|e| anyhow::anyhow!("--fairshare {}: {e}", path.display()))?;
    policy
        .validate_at("fairsharePolicy")
        .map_err(|e| anyhow::anyhow!("--fairshare {}: {e}", path.display()))?;
    Ok(SimFairshare {
        policy: policy.to_core(),
        by,
    })
}

/// One point to simulate.
#[derive(Debug, Clone, Copy)]
struct Point {
    policy: Policy,
    procs: u32,
    nodes: Option<u32>,
}

/// The points of a sweep, given the trace's machine size.
fn points(args: &PlanArgs, trace_procs: Option<u64>) -> Result<Vec<Point>> {
    let ppn = args.procs_per_node;
    if ppn == Some(0) {
        bail!("--procs-per-node must be at least 1");
    }
    let mut sizes: Vec<(u32, Option<u32>)> = Vec::new();
    if !args.nodes.is_empty() {
        for &n in &args.nodes {
            if n == 0 {
                bail!("--nodes: a cluster needs at least one node");
            }
            match ppn {
                Some(p) => sizes.push((
                    n.checked_mul(p)
                        .context("--nodes × --procs-per-node overflows")?,
                    Some(n),
                )),
                None => sizes.push((n, None)),
            }
        }
    } else {
        let base = trace_procs.context(
            "the trace's header gives neither MaxProcs nor MaxNodes: give sizes with --nodes",
        )? as f64;
        let scales = if args.scale.is_empty() {
            vec![1.0]
        } else {
            args.scale.clone()
        };
        for s in scales {
            if !(s.is_finite() && s > 0.0) {
                bail!("--scale {s}: must be a positive number");
            }
            let procs = ((base * s).round() as u32).max(1);
            match ppn {
                Some(p) => {
                    let n = procs.div_ceil(p);
                    sizes.push((n * p, Some(n)));
                }
                None => sizes.push((procs, None)),
            }
        }
    }
    sizes.sort();
    sizes.dedup();
    if args.policy.is_empty() {
        bail!("--policy: give at least one policy");
    }
    let mut policies = args.policy.clone();
    policies.sort();
    policies.dedup();
    Ok(policies
        .iter()
        .flat_map(|&policy| {
            sizes.iter().map(move |&(procs, nodes)| Point {
                policy,
                procs,
                nodes,
            })
        })
        .collect())
}

fn simulate_point(
    records: &[SwfRecord],
    args: &PlanArgs,
    speedup: &SpeedupCurve,
    fair: Option<&SimFairshare>,
    p: Point,
) -> Result<PointResult> {
    let conv = Conventions {
        procs: p.procs,
        estimate: args.estimate,
        speedup: speedup.clone(),
        speedup_jobs: args.shm_jobs,
    };
    let w = build(records, &conv);
    let cfg = SimConfig {
        procs: p.procs,
        policy: p.policy,
        tie_break: args.tie_break,
        procs_per_node: args.procs_per_node,
    };
    let t0 = Instant::now();
    let starts = simulate_fair(&w.jobs, &cfg, fair)
        .with_context(|| format!("{} on {} processors", p.policy.name(), p.procs))?;
    let sim_seconds = t0.elapsed().as_secs_f64();
    let m = metrics::compute(&w.jobs, &starts, p.procs);
    let placeholders = w
        .placeholders
        .iter()
        .filter(|(k, _)| k.as_str() != CLAMPED)
        .map(|(_, v)| v)
        .sum();
    Ok(PointResult {
        policy: p.policy.name().to_string(),
        procs: p.procs,
        nodes: p.nodes.unwrap_or(1),
        tie_break: match args.tie_break {
            TieBreak::Batch => "batch",
            TieBreak::PerEvent => "per-event",
        }
        .to_string(),
        jobs: m.jobs,
        utilization: m.utilization,
        mean_wait_s: m.mean_wait_s,
        median_wait_s: m.median_wait_s,
        p95_wait_s: m.p95_wait_s,
        max_wait_s: m.max_wait_s,
        mean_bounded_slowdown: m.mean_bounded_slowdown,
        makespan_s: m.makespan_s,
        skipped: w.placeholders,
        placeholders,
        sim_seconds,
        by_width: metrics::by_width(&w.jobs, &starts),
        by_share: fair
            .map(|f| metrics::by_share(&w.jobs, &starts, |j| f.share_of(j)))
            .unwrap_or_default(),
    })
}

/// Runs the sweep and returns the results, sorted by (policy, procs). No
/// output besides the progress bar.
pub fn sweep(args: &PlanArgs) -> Result<Vec<PointResult>> {
    if !(args.shm_speedup.is_finite() && args.shm_speedup > 0.0) {
        bail!("--shm-speedup must be a positive number");
    }
    let speedup = match &args.shm_speedup_from {
        None => SpeedupCurve::constant(args.shm_speedup),
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("--shm-speedup-from: cannot read {}", f.display()))?;
            SpeedupCurve::from_json(&text)
                .with_context(|| format!("--shm-speedup-from {}", f.display()))?
        }
    };
    let fair = match &args.fairshare {
        Some(f) => Some(read_fairshare(f, args.share_by)?),
        None => None,
    };
    let (header, records) = swf::read_file(&args.trace)
        .with_context(|| format!("reading trace {}", args.trace.display()))?;
    let pts = points(args, header.machine_procs())?;
    let bar = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(pts.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} points {msg}",
        ) {
            b.set_style(style);
        }
        b
    };
    let mut results: Vec<PointResult> = pts
        .par_iter()
        .map(|&p| {
            let r = simulate_point(&records, args, &speedup, fair.as_ref(), p);
            bar.inc(1);
            r
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();
    results.sort_by(|a, b| (&a.policy, a.procs).cmp(&(&b.policy, b.procs)));
    Ok(results)
}

/// Formats the results as a text table.
pub fn table(results: &[PointResult]) -> String {
    let mut s = format!(
        "{:<13} {:>7} {:>7} {:>8} {:>6} {:>12} {:>10} {:>10} {:>10} {:>10} {:>12} {:>8}\n",
        "policy",
        "procs",
        "nodes",
        "jobs",
        "util",
        "mean_wait_s",
        "median_s",
        "p95_s",
        "max_s",
        "mean_bsld",
        "makespan_s",
        "sim_s"
    );
    for r in results {
        s.push_str(&format!(
            "{:<13} {:>7} {:>7} {:>8} {:>6.3} {:>12.1} {:>10.0} {:>10.0} {:>10.0} {:>10.2} {:>12} {:>8.2}\n",
            r.policy,
            r.procs,
            r.nodes,
            r.jobs,
            r.utilization,
            r.mean_wait_s,
            r.median_wait_s,
            r.p95_wait_s,
            r.max_wait_s,
            r.mean_bounded_slowdown,
            r.makespan_s,
            r.sim_seconds
        ));
    }
    for r in results.iter().filter(|r| !r.by_share.is_empty()) {
        s.push_str(&format!(
            "# {} on {} procs, by share: {:<10} {:>8} {:>12} {:>10} {:>14}\n",
            r.policy, r.procs, "share", "jobs", "mean_wait_s", "mean_bsld", "proc_seconds"
        ));
        for b in &r.by_share {
            s.push_str(&format!(
                "#   {:<10} {:>8} {:>12.1} {:>10.2} {:>14}\n",
                b.share, b.jobs, b.mean_wait_s, b.mean_bounded_slowdown, b.proc_seconds
            ));
        }
    }
    if let Some(r) = results.first() {
        if !r.skipped.is_empty() {
            let parts: Vec<String> = r.skipped.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            s.push_str(&format!(
                "# placeholders (kept as 1 s jobs) and clamped widths: {}\n",
                parts.join(", ")
            ));
        }
    }
    s
}

/// `shoal plan`: runs the sweep, prints the table, writes --json and --plot.
/// Returns the process exit code.
pub fn run(args: PlanArgs) -> Result<i32> {
    let results = sweep(&args)?;
    print!("{}", table(&results));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&results)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        plot(path, &results).with_context(|| format!("plotting to {}", path.display()))?;
    }
    Ok(0)
}

/// Mean wait and mean bounded slowdown (log scale) against cluster size
/// (processors), one line per policy.
pub fn plot(path: &Path, results: &[PointResult]) -> Result<()> {
    use plotters::prelude::*;
    let e = |e: &dyn std::fmt::Display| anyhow::anyhow!("{e}");
    let root = SVGBackend::new(path, (1100, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let (left, right) = root.split_horizontally(550);
    let mut policies: Vec<&str> = results.iter().map(|r| r.policy.as_str()).collect();
    policies.dedup();
    let xmin = results.iter().map(|r| r.procs).min().unwrap_or(1) as f64;
    let xmax = results.iter().map(|r| r.procs).max().unwrap_or(1) as f64;
    let (xlo, xhi) = if xmax > xmin {
        (xmin, xmax)
    } else {
        (xmin * 0.9, xmax * 1.1 + 1.0)
    };
    let colors = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
    ];
    type Get = fn(&PointResult) -> f64;
    let panels: [(&DrawingArea<SVGBackend, _>, &str, &str, Get); 2] = [
        (&left, "Mean wait", "mean wait (s)", |r| r.mean_wait_s),
        (
            &right,
            "Mean bounded slowdown (τ = 10 s)",
            "mean bounded slowdown",
            |r| r.mean_bounded_slowdown,
        ),
    ];
    for (area, title, ydesc, get) in panels {
        // Log scale: FCFS on an overloaded machine waits 1000× longer.
        let ymax = results.iter().map(get).fold(0.0, f64::max).max(1.0) * 1.5;
        let ymin = results
            .iter()
            .map(get)
            .filter(|v| *v > 0.0)
            .fold(f64::MAX, f64::min)
            .min(ymax / 10.0)
            * 0.7;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(xlo..xhi, (ymin..ymax).log_scale())
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .x_desc("cluster size (processors)")
            .y_desc(ydesc)
            .draw()
            .map_err(|x| e(&x))?;
        for (k, pol) in policies.iter().enumerate() {
            let color = colors[k % colors.len()];
            let pts: Vec<(f64, f64)> = results
                .iter()
                .filter(|r| r.policy == *pol)
                .map(|r| (r.procs as f64, get(r).max(ymin)))
                .collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .map_err(|x| e(&x))?
                .label(pol.to_string())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled())))
                .map_err(|x| e(&x))?;
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|x| e(&x))?;
    }
    root.present().map_err(|x| e(&x))?;
    Ok(())
}
