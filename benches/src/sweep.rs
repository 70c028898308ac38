//! Multi-node MPI benchmarks over shapes: N nodes × R ranks per node, each
//! over shared memory inside a node plus TCP between nodes (`shm`) or TCP
//! between every pair (`tcp`). What `shoal bench md` and `shoal bench
//! gromacs` share: the runs of a sweep, their placement (the vCPUs a node
//! asks, whether the shape oversubscribes the cores), the submission of
//! one run, the check of which BTL each pair of ranks used, the table and
//! the plot of performance against total ranks.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use shoal_client::Client;
use shoal_model as m;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Open MPI's verbosity at which each rank names the BTL it sends to each
/// peer with (`mca: bml: Using vader btl for send to [[J,1],P] …`).
pub const CHECK: &str = "--mca btl_base_verbose 10";

/// The shapes and transports to run.
#[derive(clap::Args, Clone, Debug)]
pub struct Shapes {
    /// Node counts to run (a multinode job of each size).
    #[arg(long, value_delimiter = ',', default_values_t = [1u32])]
    pub nodes: Vec<u32>,
    /// Ranks on each node (each bound to a core of its node's cpuset).
    #[arg(long, alias = "ranks", value_delimiter = ',', default_values_t = [1u32, 2])]
    pub ranks_per_node: Vec<u32>,
    /// Transports for runs of 2 or more ranks: shm (shared memory inside a
    /// node, TCP between nodes) and tcp (TCP between every pair of ranks).
    #[arg(long, value_delimiter = ',', default_values_t = ["shm".to_string(), "tcp".to_string()])]
    pub transport: Vec<String>,
}

impl Shapes {
    /// Refuse what cannot run, in the flags' words.
    pub fn check(&self) -> Result<()> {
        for t in &self.transport {
            if !matches!(t.as_str(), "shm" | "tcp") {
                bail!("--transport {t:?}: give shm and/or tcp");
            }
        }
        if self.nodes.is_empty() || self.nodes.contains(&0) {
            bail!("--nodes: give one or more positive node counts, e.g. 1,2");
        }
        if self.ranks_per_node.is_empty() || self.ranks_per_node.contains(&0) {
            bail!("--ranks-per-node: give one or more positive rank counts, e.g. 1,2");
        }
        Ok(())
    }

    /// Every run: a serial one for 1 rank in all, each transport otherwise.
    pub fn runs(&self) -> Vec<Run> {
        let mut out = Vec::new();
        for &nodes in &self.nodes {
            for &rpn in &self.ranks_per_node {
                if nodes * rpn == 1 {
                    out.push(Run {
                        nodes,
                        rpn,
                        transport: "serial".into(),
                    });
                } else {
                    out.extend(self.transport.iter().map(|t| Run {
                        nodes,
                        rpn,
                        transport: t.clone(),
                    }));
                }
            }
        }
        out
    }

    /// The runs by the local cluster each needs, `(nodes, vCPUs per
    /// node)`: N nodes with disjoint CPUs, one per rank as far as the
    /// machine's go (at least one each), so that ranks of two nodes never
    /// share a core unless the machine has too few.
    pub fn by_cluster(&self) -> Vec<((u32, u32), Vec<Run>)> {
        let mut out: Vec<((u32, u32), Vec<Run>)> = Vec::new();
        for run in self.runs() {
            let cpus = run.rpn.min(host_cpus() / run.nodes).max(1);
            let key = (run.nodes, cpus);
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some((_, runs)) => runs.push(run),
                None => out.push((key, vec![run])),
            }
        }
        out
    }
}

/// Run every run of `shapes` with `one` (on a client of its cluster, with
/// its placement) one at a time, after `setup` on each cluster (to
/// register definitions), on `endpoint`'s cluster or on local ones
/// made under `dir` (one per shape of cluster, removed after), with a
/// progress bar and a warning for each oversubscribed run; the results in
/// order.
pub fn run_all(
    shapes: &Shapes,
    endpoint: Option<&str>,
    dir: &Path,
    mut setup: impl FnMut(&Client) -> Result<()>,
    mut one: impl FnMut(&Client, &Cluster, &Run) -> Result<Value>,
) -> Result<Vec<Value>> {
    let groups = match endpoint {
        // A given cluster takes every run.
        Some(_) => vec![((0, 0), shapes.runs())],
        None => shapes.by_cluster(),
    };
    let total: usize = groups.iter().map(|(_, r)| r.len()).sum();
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {pos}/{len} runs {elapsed}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let mut out = Vec::new();
    for ((nodes, cpus), runs) in groups {
        let want = runs.iter().map(|r| r.nodes).max().unwrap_or(1);
        let result = crate::local_cluster::with_cluster(
            endpoint,
            if endpoint.is_some() { want } else { nodes },
            cpus.max(1),
            &Default::default(),
            &dir.join(format!("cluster-{nodes}x{cpus}")),
            |client| {
                setup(client)?;
                let cluster = Cluster::of(client, endpoint.is_none())?;
                let mut got = Vec::new();
                for run in &runs {
                    bar.set_message(format!("{} × {} {}", run.nodes, run.rpn, run.transport));
                    let over = cluster.oversubscribed(run);
                    if over {
                        bar.suspend(|| warn_oversubscribed(run, &cluster));
                    }
                    let mut r = one(client, &cluster, run)?;
                    r["oversubscribed"] = json!(over);
                    got.push(r);
                    bar.inc(1);
                }
                Ok(got)
            },
        );
        match result {
            Ok(got) => out.extend(got),
            Err(e) => {
                bar.finish_and_clear();
                return Err(e);
            }
        }
    }
    bar.finish_and_clear();
    Ok(out)
}

/// The CPUs this process may run on.
pub fn host_cpus() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

/// One run of a sweep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub nodes: u32,
    /// Ranks per node.
    pub rpn: u32,
    /// serial, shm or tcp.
    pub transport: String,
}

impl Run {
    /// Ranks in all.
    pub fn ranks(&self) -> u32 {
        self.nodes * self.rpn
    }
}

/// Where a sweep runs: the vCPUs of its nodes and the cores under them.
#[derive(Clone, Debug)]
pub struct Cluster {
    /// vCPUs of the smallest node.
    pub node_vcpus: u32,
    /// Cores the runs may use in all: the machine's for a local cluster
    /// (its simulated nodes share them), the nodes' vCPUs for a given one.
    pub cores: u32,
}

impl Cluster {
    /// The cluster behind `client`: `local` when the sweep started it here.
    pub fn of(client: &Client, local: bool) -> Result<Cluster> {
        let nodes = client.call(&m::ListNodesRequest {})?.nodes;
        let up: Vec<&m::NodeInfo> = nodes.iter().filter(|n| n.state != "DOWN").collect();
        let node_vcpus = up.iter().map(|n| n.vcpus).min().unwrap_or(1).max(1);
        let sum: u32 = up.iter().map(|n| n.vcpus).sum();
        let cores = if local { host_cpus().min(sum) } else { sum };
        Ok(Cluster {
            node_vcpus,
            cores: cores.max(1),
        })
    }

    /// The vCPUs each node of `run` asks for: one per rank, at most a node's.
    pub fn vcpus(&self, run: &Run) -> u32 {
        run.rpn.min(self.node_vcpus)
    }

    /// Whether `run` puts more ranks on the cores than there are.
    pub fn oversubscribed(&self, run: &Run) -> bool {
        run.rpn > self.node_vcpus || run.ranks() > self.cores
    }
}

/// What a run's job left: its description, the main node's output and each
/// node's /dev/shm high-water mark (MiB).
pub struct Finished {
    pub id: String,
    pub job: m::JobDetail,
    pub log: String,
    pub shm_peaks_mib: Vec<Option<u64>>,
}

/// Submit `run` of `definition` (a single-node definition for one node, a
/// multinode one with an open-ended range otherwise, `numNodes` overridden)
/// with `parameters` plus `ranks`, `rpn` and `check`, each node asking for
/// `vcpus`; wait until it ends.
pub fn submit(
    client: &Client,
    run: &Run,
    definition: &str,
    mut parameters: BTreeMap<String, String>,
    vcpus: u32,
) -> Result<Finished> {
    parameters.insert("ranks".into(), run.ranks().to_string());
    parameters.insert("rpn".into(), run.rpn.to_string());
    parameters.insert("check".into(), CHECK.into());
    let requirements = vec![m::ResourceRequirement::new("VCPU", vcpus.to_string())];
    let mut req = m::SubmitJobRequest {
        job_name: format!("{definition}-{}x{}-{}", run.nodes, run.rpn, run.transport),
        job_queue: "default".into(),
        job_definition: definition.into(),
        parameters,
        ..Default::default()
    };
    if run.nodes > 1 {
        req.node_overrides = Some(m::NodeOverrides {
            num_nodes: Some(run.nodes as i32),
            node_property_overrides: vec![m::NodePropertyOverride {
                target_nodes: "0:".into(),
                container_overrides: Some(m::ContainerOverrides {
                    resource_requirements: requirements,
                    ..Default::default()
                }),
                ..Default::default()
            }],
        });
    } else {
        req.container_overrides = Some(m::ContainerOverrides {
            resource_requirements: requirements,
            ..Default::default()
        });
    }
    let id = client.call(&req)?.job_id;
    let job = client.wait_for(&id)?;
    let (log_id, peaks) = if run.nodes > 1 {
        let mut peaks = Vec::new();
        for k in 0..run.nodes {
            peaks.push(
                client
                    .describe_one(&format!("{id}#{k}"))?
                    .and_then(|n| n.shm_peak_mib),
            );
        }
        (format!("{id}#0"), peaks)
    } else {
        (id.clone(), vec![job.shm_peak_mib])
    };
    let log = String::from_utf8_lossy(&client.log(&log_id, 0)?).to_string();
    if job.status != "SUCCEEDED" {
        bail!(
            "the {} run on {} × {} ranks failed: {}\n{log}",
            run.transport,
            run.nodes,
            run.rpn,
            job.status_reason.as_deref().unwrap_or("")
        );
    }
    Ok(Finished {
        id,
        job,
        log,
        shm_peaks_mib: peaks,
    })
}

/// The BTLs that pairs of ranks used, from Open MPI's `bml` lines at
/// [`CHECK`]'s verbosity: those between ranks of one node and those between
/// ranks of two (rank r is on node r / `rpn`, as `--map-by ppr:R:node`
/// places them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BtlUse {
    pub within_node: BTreeSet<String>,
    pub across_nodes: BTreeSet<String>,
    /// Pairs (sender, peer) seen.
    pub pairs: usize,
}

/// The BTL each rank sends to each peer with, `(rank, peer) → btl`, from
/// Open MPI's `bml` lines at [`CHECK`]'s verbosity (a process's own rank is
/// the peer it reaches through `self`).
pub fn btl_by_pair(log: &str) -> BTreeMap<(u32, u32), String> {
    let mut by_proc: BTreeMap<&str, Vec<(u32, &str)>> = BTreeMap::new();
    for line in log.lines() {
        let Some(at) = line.find("mca: bml: Using ") else {
            continue;
        };
        let proc_ = line[..at]
            .rfind('[')
            .map(|i| &line[i..at])
            .unwrap_or("")
            .trim();
        let rest = &line[at + "mca: bml: Using ".len()..];
        let Some(btl) = rest.split_whitespace().next() else {
            continue;
        };
        let peer = rest
            .split("],")
            .nth(1)
            .and_then(|s| s.split(']').next())
            .and_then(|s| s.parse::<u32>().ok());
        if let Some(peer) = peer {
            by_proc.entry(proc_).or_default().push((peer, btl));
        }
    }
    let mut out = BTreeMap::new();
    for sends in by_proc.values() {
        let Some(&(me, _)) = sends.iter().find(|(_, b)| *b == "self") else {
            continue;
        };
        for &(peer, btl) in sends.iter().filter(|(p, _)| *p != me) {
            out.insert((me, peer), btl.to_string());
        }
    }
    out
}

impl BtlUse {
    /// Read them from a job's output.
    pub fn of(log: &str, rpn: u32) -> BtlUse {
        let rpn = rpn.max(1);
        let mut out = BtlUse::default();
        for ((me, peer), btl) in btl_by_pair(log) {
            out.pairs += 1;
            let set = if peer / rpn == me / rpn {
                &mut out.within_node
            } else {
                &mut out.across_nodes
            };
            set.insert(btl);
        }
        out
    }

    /// Whether `run` used what its transport promises: vader between ranks
    /// of a node and tcp between nodes for shm, tcp everywhere for tcp; an
    /// error names what it used instead (Open MPI falls back silently).
    pub fn verify(&self, run: &Run) -> Result<()> {
        if run.ranks() < 2 {
            return Ok(());
        }
        let within = if run.transport == "shm" {
            "vader"
        } else {
            "tcp"
        };
        let want = [
            (run.rpn > 1, &self.within_node, within, "ranks of one node"),
            (
                run.nodes > 1,
                &self.across_nodes,
                "tcp",
                "ranks of two nodes",
            ),
        ];
        for (applies, got, btl, pairs) in want {
            if !applies {
                continue;
            }
            let only: BTreeSet<String> = [btl.to_string()].into();
            if *got != only {
                bail!(
                    "the {} run on {} × {} ranks: {pairs} used {} where {btl} was asked for (Open MPI's `bml` lines, {CHECK})",
                    run.transport,
                    run.nodes,
                    run.rpn,
                    if got.is_empty() {
                        "nothing seen".to_string()
                    } else {
                        got.iter().cloned().collect::<Vec<_>>().join(", ")
                    }
                );
            }
        }
        Ok(())
    }

    fn join(set: &BTreeSet<String>) -> Value {
        if set.is_empty() {
            Value::Null
        } else {
            json!(set.iter().cloned().collect::<Vec<_>>().join(","))
        }
    }
}

/// Put a run's shape and placement into its result (`r`, the program's own
/// figures: `steps_per_s`, `ns_per_day`, …).
pub fn annotate(r: &mut Value, run: &Run, f: &Finished, btl: &BtlUse) {
    r["job_id"] = json!(f.id);
    r["nodes"] = json!(run.nodes);
    r["ranks_per_node"] = json!(run.rpn);
    r["ranks"] = json!(run.ranks());
    r["transport"] = json!(run.transport);
    r["shm_peak_mib"] = json!(f.shm_peaks_mib);
    r["btl"] = json!({
        "within_node": BtlUse::join(&btl.within_node),
        "across_nodes": BtlUse::join(&btl.across_nodes),
    });
}

/// The warning for an oversubscribed run.
pub fn warn_oversubscribed(run: &Run, c: &Cluster) {
    eprintln!(
        "warning: {} nodes × {} ranks = {} ranks on {} cores ({} vCPUs per node): oversubscribed; this run checks correctness, not speed",
        run.nodes,
        run.rpn,
        run.ranks(),
        c.cores,
        c.node_vcpus
    );
}

/// A result's `(nodes, ranks_per_node, transport)`.
fn shape(r: &Value) -> (u64, u64, &str) {
    (
        r["nodes"].as_u64().unwrap_or(1),
        r["ranks_per_node"].as_u64().unwrap_or(1),
        r["transport"].as_str().unwrap_or("?"),
    )
}

/// shm's speed over tcp's on the same shape, for an shm result (as
/// `shoal plan --shm-speedup-from` reads it).
pub fn speedup(results: &[Value], r: &Value) -> Option<f64> {
    let (n, rpn, t) = shape(r);
    if t != "shm" {
        return None;
    }
    let program = r["program"].as_str().unwrap_or("");
    shoal_planner::speedup::shape_speedups(results)
        .into_iter()
        .find(|s| (s.0.as_str(), s.1, s.2) == (program, n, rpn))
        .map(|s| s.3)
}

/// The table, one line per run.
pub fn print_table(title: &str, results: &[Value]) {
    println!("# {title}");
    println!(
        "{:>5} {:>6} {:>5} {:>9} {:>12} {:>10} {:>12} {:>7} {:>8} {:>12} {:>12} {:>14}  note",
        "nodes",
        "ranks/",
        "ranks",
        "transport",
        "timesteps/s",
        "ns/day",
        "τ/day (LJ)",
        "comm %",
        "shm/tcp",
        "btl in node",
        "btl across",
        "/dev/shm MiB"
    );
    println!("{:>5} {:>6}", "", "node");
    let f = crate::osu::fmt;
    for r in results {
        let (n, rpn, t) = shape(r);
        let peaks: Vec<String> = r["shm_peak_mib"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| p.as_u64().map(|v| v.to_string()).unwrap_or("-".into()))
                    .collect()
            })
            .unwrap_or_default();
        let btl = |k: &str| r["btl"][k].as_str().unwrap_or("-").to_string();
        println!(
            "{:>5} {:>6} {:>5} {:>9} {:>12} {:>10} {:>12} {:>7} {:>8} {:>12} {:>12} {:>14}  {}",
            n,
            rpn,
            n * rpn,
            t,
            f(r["steps_per_s"].as_f64()),
            f(r["ns_per_day"].as_f64()),
            r["tau_per_day"]
                .as_f64()
                .map(|v| format!("{v:.0}"))
                .unwrap_or("-".into()),
            f(r["comm_fraction"].as_f64().map(|x| x * 100.0)),
            speedup(results, r)
                .map(|s| format!("{s:.2}×"))
                .unwrap_or("-".into()),
            btl("within_node"),
            btl("across_nodes"),
            peaks.join(","),
            if r["oversubscribed"] == true {
                "oversubscribed"
            } else {
                ""
            }
        );
    }
    for r in results {
        if let Some(s) = speedup(results, r) {
            let (n, rpn, _) = shape(r);
            let program = match r["program"].as_str() {
                Some(p) => format!("{p}, "),
                None => String::new(),
            };
            println!("# {program}{n} × {rpn} ranks: shared memory is {s:.2}× TCP");
        }
    }
    println!("# shm: shared memory (vader) between ranks of a node, TCP between nodes; tcp: TCP between every pair; the BTLs are those Open MPI reported for each pair");
}

/// An SVG of ns/day against total ranks: a line per transport and ranks
/// per node, the serial run at 1 rank (as the seed's chart); one panel per
/// program (`program` of each result) when the results hold several.
pub fn plot(path: &Path, title: &str, results: &[Value]) -> Result<()> {
    use plotters::prelude::*;
    let e = |e: &dyn std::fmt::Display| anyhow::anyhow!("{e}");
    let mut programs: Vec<&str> = Vec::new();
    for r in results {
        let p = r["program"].as_str().unwrap_or("");
        if !programs.contains(&p) {
            programs.push(p);
        }
    }
    let n = programs.len().max(1);
    let root = SVGBackend::new(path, (720 * n as u32, 460)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    for (area, program) in root.split_evenly((1, n)).iter().zip(&programs) {
        let mine: Vec<Value> = results
            .iter()
            .filter(|r| r["program"].as_str().unwrap_or("") == *program)
            .cloned()
            .collect();
        let title = if n > 1 {
            format!("{program} performance against ranks")
        } else {
            title.to_string()
        };
        plot_on(area, &title, &mine)?;
    }
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

/// One panel of [`plot`].
fn plot_on<DB: plotters::prelude::DrawingBackend>(
    root: &plotters::prelude::DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    results: &[Value],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    use plotters::prelude::*;
    let e = |e: &dyn std::fmt::Display| anyhow::anyhow!("{e}");
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
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.5f64..max_r + 0.5, 0f64..max_y)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("MPI ranks in all (nodes × ranks per node)")
        .y_desc("ns/day")
        .draw()
        .map_err(|x| e(&x))?;
    let serial = results
        .iter()
        .find(|r| r["transport"] == "serial")
        .and_then(|r| r["ns_per_day"].as_f64());
    let rpns: BTreeSet<u64> = results.iter().map(|r| shape(r).1).collect();
    let palette = [
        [RGBColor(31, 119, 180), RGBColor(214, 39, 40)],
        [RGBColor(23, 190, 207), RGBColor(255, 127, 14)],
        [RGBColor(44, 160, 44), RGBColor(148, 103, 189)],
    ];
    for (i, rpn) in rpns.iter().enumerate() {
        for (j, t) in ["shm", "tcp"].into_iter().enumerate() {
            let color = palette[i % palette.len()][j];
            let mut pts: Vec<(f64, f64)> = serial.map(|s| vec![(1.0, s)]).unwrap_or_default();
            let mut more: Vec<(f64, f64)> = results
                .iter()
                .filter(|r| shape(r).1 == *rpn && shape(r).2 == t)
                .filter_map(|r| Some((r["ranks"].as_f64()?, r["ns_per_day"].as_f64()?)))
                .collect();
            more.sort_by(|a, b| a.0.total_cmp(&b.0));
            if more.is_empty() {
                continue;
            }
            pts.extend(more);
            let label = format!("{t}, {rpn} per node");
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .map_err(|x| e(&x))?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(pts.iter().map(|p| Circle::new(*p, 4, color.filled())))
                .map_err(|x| e(&x))?;
        }
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|x| e(&x))?;
    Ok(())
}

/// Where a sweep runs and where its results go: the flags every
/// multi-node benchmark has.
#[derive(clap::Args, Clone, Debug)]
pub struct Output {
    /// Write the results as JSON here.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Write an SVG plot (ns/day against total ranks) here.
    #[arg(long)]
    pub plot: Option<std::path::PathBuf>,
    /// Use a running cluster (enough nodes, with enough vCPUs) instead of starting one.
    #[arg(long)]
    pub endpoint: Option<String>,
}

/// What [`run_all`]'s `setup` does for a benchmark: register its shipped
/// definitions on the cluster.
pub fn register<'a>(definitions: &'a [&'a str]) -> impl FnMut(&Client) -> Result<()> + 'a {
    move |client| {
        for def in definitions {
            client.call(&crate::local_cluster::shipped_definition(def)?)?;
        }
        Ok(())
    }
}

/// A sweep's results out: the table (titled by `title` of the atoms of
/// its first run), the JSON and the plot `out` asks for.
pub fn report(
    results: &[Value],
    title: impl Fn(u64) -> String,
    plot_title: &str,
    out: &Output,
) -> Result<()> {
    let natoms = results
        .first()
        .and_then(|r| r["natoms"].as_u64())
        .unwrap_or(0);
    print_table(&title(natoms), results);
    if let Some(p) = &out.json {
        write_json(p, results)?;
    }
    if let Some(p) = &out.plot {
        plot(p, plot_title, results)?;
        eprintln!("wrote {}", p.display());
    }
    Ok(())
}

/// Write results as JSON.
pub fn write_json(path: &Path, results: &[Value]) -> Result<()> {
    std::fs::write(path, serde_json::to_vec_pretty(results)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
[vm:11] mca: bml: Using self btl for send to [[7,1],0] on node vm
[vm:11] mca: bml: Using vader btl for send to [[7,1],1] on node vm
[vm:11] mca: bml: Using tcp btl for send to [[7,1],2] on node vm
[vm:12] mca: bml: Using vader btl for send to [[7,1],0] on node vm
[vm:12] mca: bml: Using self btl for send to [[7,1],1] on node vm
[vm:12] mca: bml: Using tcp btl for send to [[7,1],3] on node vm
[vm:21] mca: bml: Using tcp btl for send to [[7,1],0] on node vm
[vm:21] mca: bml: Using self btl for send to [[7,1],2] on node vm
[vm:21] mca: bml: Using vader btl for send to [[7,1],3] on node vm
noise [vm:22] mca: bml: Using self btl for send to [[7,1],3] on node vm
";

    #[test]
    fn btl_lines_give_what_pairs_within_and_across_nodes_used() {
        let u = BtlUse::of(LOG, 2);
        assert_eq!(u.within_node, ["vader".to_string()].into());
        assert_eq!(u.across_nodes, ["tcp".to_string()].into());
        assert_eq!(u.pairs, 6);
        let shm = Run {
            nodes: 2,
            rpn: 2,
            transport: "shm".into(),
        };
        u.verify(&shm).unwrap();
        let tcp = Run {
            transport: "tcp".into(),
            ..shm
        };
        let err = u.verify(&tcp).unwrap_err().to_string();
        assert!(
            err.contains("ranks of one node used vader where tcp"),
            "{err}"
        );
        // Nothing seen is no pass.
        assert!(BtlUse::of("", 2).verify(&tcp).is_err());
    }

    #[test]
    fn a_sweep_runs_serial_once_and_each_transport_otherwise() {
        let s = Shapes {
            nodes: vec![1, 2],
            ranks_per_node: vec![1, 2],
            transport: vec!["shm".into(), "tcp".into()],
        };
        let runs: Vec<(u32, u32, String)> = s
            .runs()
            .into_iter()
            .map(|r| (r.nodes, r.rpn, r.transport))
            .collect();
        assert_eq!(runs.len(), 7);
        assert_eq!(runs[0], (1, 1, "serial".into()));
        assert_eq!(runs[6], (2, 2, "tcp".into()));
        let c = Cluster {
            node_vcpus: 2,
            cores: 2,
        };
        let r = |nodes, rpn| Run {
            nodes,
            rpn,
            transport: "shm".into(),
        };
        assert!(!c.oversubscribed(&r(1, 2)));
        assert!(!c.oversubscribed(&r(2, 1)));
        assert!(c.oversubscribed(&r(2, 2)));
        assert!(c.oversubscribed(&r(1, 4)));
        assert_eq!(c.vcpus(&r(1, 4)), 2);
    }
}
