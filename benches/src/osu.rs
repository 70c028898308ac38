//! `shoal bench osu`: the OSU-style latency and bandwidth benchmark as real
//! MPI jobs through Shoal's scheduler and workers, shared memory against
//! TCP, next to the physical floor; a table, JSON rows and an SVG plot.

use crate::local_cluster::{
    image_variant, in_image, run_job, shipped_definition, with_cluster, LocalNet,
};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use shoal_client::Client;
use shoal_jobs::definitions;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The job definitions, as shipped in `jobs/definitions/`.
const DEFINITIONS: [&str; 3] = [
    definitions::OSU_SHM_1NODE,
    definitions::OSU_TCP_1NODE,
    definitions::OSU_TCP_2NODE,
];

/// `shoal bench osu` arguments.
#[derive(clap::Args)]
pub struct OsuBench {
    /// Transports to compare.
    #[arg(long, value_delimiter = ',', default_values_t = ["shm".to_string(), "tcp".to_string()])]
    transport: Vec<String>,
    /// 1: two ranks on one node (shm and tcp). 2: also one rank on each of
    /// two nodes (tcp over the namespaces' veths; shared memory cannot cross
    /// nodes). Each shape runs on a local cluster of its own.
    #[arg(long, default_value_t = 2)]
    nodes: u32,
    /// With --nodes 2: also OSU's multi-pair latency on 2 nodes of R ranks
    /// each (R even), all pairs at once, once with each pair inside a node
    /// (shared memory) and once with each pair across the nodes (TCP).
    #[arg(long)]
    ranks_per_node: Option<u32>,
    /// Message sizes in bytes (default: OSU's, 0 and 1 B … 4 MiB).
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<u64>,
    /// Latency iterations per size (default: OSU's, 10,000 up to 8 KiB, 1,000 above).
    #[arg(long)]
    iterations: Option<u64>,
    /// Bandwidth iterations (windows of 64 messages) per size (default: OSU's, 100 up to 8 KiB, 20 above).
    #[arg(long)]
    bw_iterations: Option<u64>,
    /// Open MPI's single-copy mechanism for shared memory: none
    /// (copy-in/copy-out, faster on this VM) or cma.
    #[arg(long, default_value = "none")]
    single_copy: String,
    /// Skip the bandwidth runs.
    #[arg(long)]
    no_bandwidth: bool,
    /// Write the rows as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write an SVG plot here.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Use a running cluster instead of starting one.
    #[arg(long)]
    endpoint: Option<String>,
    /// The shoal-osu binary (default: beside this shoal binary).
    #[arg(long)]
    osu: Option<PathBuf>,
    /// Also run every job in this container image (an MPI image with
    /// shoal-osu, e.g. one from scripts/make-mpi-image.sh), alternating
    /// with the host's, and print host and container side by side.
    #[arg(long)]
    image: Option<String>,
    /// shoal-osu inside the image (a path there, or a name on its PATH).
    #[arg(long, default_value = "shoal-osu")]
    osu_in_image: String,
    /// The local clusters' network (for the registry of --image).
    #[command(flatten)]
    net: LocalNet,
}

/// One row of results.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// shm, tcp, floor-shm, floor-tcp.
    pub transport: String,
    /// Bytes.
    pub size: u64,
    /// One-way latency, µs (OSU's average).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<f64>,
    /// Median one-way latency, µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_us: Option<f64>,
    /// 99th percentile, µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_us: Option<f64>,
    /// MB/s (10^6 bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth_mbps: Option<f64>,
}

/// Rows of an OSU text output: `size value [p50 p99]` lines.
pub fn parse_osu(text: &str) -> Vec<(u64, Vec<f64>)> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let size = it.next()?.parse().ok()?;
            let vals: Vec<f64> = it.map_while(|v| v.parse().ok()).collect();
            (!vals.is_empty()).then_some((size, vals))
        })
        .collect()
}

fn osu_binary(given: &Option<PathBuf>) -> Result<PathBuf> {
    let p = match given {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("shoal-osu"),
    };
    if !p.exists() {
        bail!(
            "{} not found; build it with `cargo build --release -p shoal-osu` or pass --osu PATH",
            p.display()
        );
    }
    Ok(std::fs::canonicalize(&p)?)
}

/// Run the benchmark.
pub fn run(b: OsuBench) -> Result<i32> {
    if !matches!(b.nodes, 1 | 2) {
        bail!(
            "--nodes {}: give 1 (two ranks on one node) or 2 (also one rank on each of two nodes)",
            b.nodes
        );
    }
    if !matches!(b.single_copy.as_str(), "none" | "cma") {
        bail!("--single-copy {:?}: give none or cma", b.single_copy);
    }
    for t in &b.transport {
        if !matches!(t.as_str(), "shm" | "tcp") {
            bail!("--transport {t:?}: give shm and/or tcp");
        }
    }
    if let Some(r) = b.ranks_per_node {
        if b.nodes != 2 || r < 2 || r % 2 != 0 {
            bail!("--ranks-per-node {r}: give an even number of ranks (pairs of them, 2 or more) with --nodes 2");
        }
        if b.image.is_some() {
            bail!("--ranks-per-node runs on the host only for now; leave out --image");
        }
    }
    let osu = osu_binary(&b.osu)?;
    // Phase 1: two ranks on one node (shm and/or tcp). Phase 2 (--nodes 2):
    // one rank on each of two nodes, tcp over the veths. Each phase gets a
    // cluster of its own shape, so the nodes' cpusets stay disjoint.
    let mut phases: Vec<(u32, Vec<String>)> = vec![(1, b.transport.clone())];
    if b.nodes == 2 && b.transport.iter().any(|t| t == "tcp") {
        phases.push((2, vec!["tcp".into()]));
    }
    let mut rows = Vec::new();
    for (nodes, transports) in &phases {
        let dir = std::env::temp_dir().join(format!("shoal-osu-{}-{nodes}", std::process::id()));
        let cpus = if *nodes == 1 { 2 } else { 1 };
        let result = with_cluster(
            b.endpoint.as_deref(),
            *nodes,
            cpus,
            &b.net,
            &dir,
            |client| run_on(&b, client, &osu, transports, *nodes),
        );
        rows.extend(result?);
    }
    let mut multi_over = false;
    if let Some(rpn) = b.ranks_per_node {
        let dir = std::env::temp_dir().join(format!("shoal-osu-{}-multi", std::process::id()));
        let cpus = rpn.min(crate::sweep::host_cpus() / 2).max(1);
        let result = with_cluster(b.endpoint.as_deref(), 2, cpus, &b.net, &dir, |client| {
            multi_pairs(&b, client, &osu, rpn)
        });
        let (multi, over) = result?;
        rows.extend(multi);
        multi_over = over;
    }
    let floor = floor_rows(&b, &osu)?;
    print_table(&rows, &floor, &b);
    if let Some(rpn) = b.ranks_per_node {
        print_multi_table(&rows, rpn, multi_over);
    }
    if let Some(image) = &b.image {
        print_image_table(&rows, image);
    }
    let all: Vec<&Row> = rows.iter().chain(floor.iter()).collect();
    if let Some(p) = &b.json {
        std::fs::write(p, serde_json::to_vec_pretty(&all)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
        eprintln!("wrote {}", p.display());
    }
    if let Some(p) = &b.plot {
        plot(p, &rows, &floor, &b)?;
        eprintln!("wrote {}", p.display());
    }
    Ok(0)
}

fn run_on(
    b: &OsuBench,
    client: &Client,
    osu: &Path,
    transports: &[String],
    nodes: u32,
) -> Result<Vec<Row>> {
    for def in DEFINITIONS {
        let d = shipped_definition(def)?;
        if let Some(image) = &b.image {
            client.call(&in_image(d.clone(), image))?;
        }
        client.call(&d)?;
    }
    let sizes = if b.sizes.is_empty() {
        String::new()
    } else {
        format!(
            "--sizes {}",
            b.sizes
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    let args_for = |bench: &str| {
        let iters = if bench == "latency" {
            b.iterations
        } else {
            b.bw_iterations
        };
        match iters {
            Some(i) => format!("{sizes} --iterations {i}"),
            None => sizes.clone(),
        }
    };
    let benches: Vec<&str> = if b.no_bandwidth {
        vec!["latency"]
    } else {
        vec!["latency", "bw"]
    };
    // With an image, each job runs on the host and then in the image, one
    // after the other, so both see the same machine.
    let places: Vec<Option<&str>> = std::iter::once(None)
        .chain(b.image.as_deref().map(Some))
        .collect();
    let mut jobs = Vec::new();
    for t in transports {
        for bench in &benches {
            for image in &places {
                let host_def = format!("osu-{t}-{nodes}node");
                let (def, osu) = match image {
                    None => (host_def, osu.display().to_string()),
                    Some(_) => (image_variant(&host_def), b.osu_in_image.clone()),
                };
                let mut params = BTreeMap::from([
                    ("osu".to_string(), osu),
                    ("bench".to_string(), bench.to_string()),
                    ("args".to_string(), args_for(bench).trim().to_string()),
                ]);
                if t == "shm" {
                    params.insert("singlecopy".into(), b.single_copy.to_string());
                }
                let mut name = if nodes == 2 {
                    format!("{t}-2node")
                } else {
                    t.clone()
                };
                if image.is_some() {
                    name.push_str("-image");
                }
                jobs.push((name, bench.to_string(), def, params));
            }
        }
    }
    let bar = ProgressBar::new(jobs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} jobs {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let mut rows: BTreeMap<(String, u64), Row> = BTreeMap::new();
    // One job at a time: the benchmarks must not share the machine's cores.
    for (name, bench, def, params) in &jobs {
        bar.set_message(format!("{name} {bench}"));
        let (id, job) = run_job(client, def, format!("{def}-{bench}"), params.clone())?;
        let log_id = if nodes == 2 {
            format!("{id}#0")
        } else {
            id.clone()
        };
        let text = String::from_utf8_lossy(&client.log(&log_id, 0)?).to_string();
        if job.status != "SUCCEEDED" {
            bar.finish_and_clear();
            bail!(
                "the {name} {bench} job {id} failed: {}\n{text}",
                job.status_reason.as_deref().unwrap_or("")
            );
        }
        if name.starts_with("shm") && bench == "latency" {
            let peak = job.shm_peak_mib.unwrap_or(0);
            eprintln!("{name}: Open MPI vader (btl self,vader; single copy: {}); the job's /dev/shm peaked at {peak} MiB", b.single_copy);
        }
        let parsed = parse_osu(&text);
        if parsed.is_empty() {
            bar.finish_and_clear();
            bail!("the {name} {bench} job printed no OSU rows:\n{text}");
        }
        for (size, vals) in parsed {
            let row = rows.entry((name.clone(), size)).or_insert_with(|| Row {
                transport: name.clone(),
                size,
                latency_us: None,
                p50_us: None,
                p99_us: None,
                bandwidth_mbps: None,
            });
            if bench == "latency" {
                row.latency_us = vals.first().copied();
                row.p50_us = vals.get(1).copied();
                row.p99_us = vals.get(2).copied();
            } else {
                row.bandwidth_mbps = vals.first().copied();
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(rows.into_values().collect())
}

/// OSU's multi-pair latency on 2 nodes × `rpn` ranks: rank i pairs with
/// rank i + n/2, all pairs at once. Ranked by node (rank r on node r mod
/// 2) every pair is inside a node; ranked by slot (r on node r / rpn)
/// every pair crosses. Rows `multi-in-node` and `multi-across`; each run
/// checks the BTL of every pair (vader inside, tcp across).
fn multi_pairs(b: &OsuBench, client: &Client, osu: &Path, rpn: u32) -> Result<(Vec<Row>, bool)> {
    client.call(&shipped_definition(definitions::OSU_MULTI_MULTINODE)?)?;
    let cluster = crate::sweep::Cluster::of(client, b.endpoint.is_none())?;
    let n = 2 * rpn;
    let mut rows = Vec::new();
    let mut over = false;
    for (name, rankby, want) in [
        ("multi-in-node", "node", "vader"),
        ("multi-across", "slot", "tcp"),
    ] {
        let run = crate::sweep::Run {
            nodes: 2,
            rpn,
            transport: name.into(),
        };
        if cluster.oversubscribed(&run) {
            crate::sweep::warn_oversubscribed(&run, &cluster);
            over = true;
        }
        let mut args = String::new();
        if !b.sizes.is_empty() {
            let sizes: Vec<String> = b.sizes.iter().map(|s| s.to_string()).collect();
            args.push_str(&format!("--sizes {}", sizes.join(",")));
        }
        if let Some(i) = b.iterations {
            args.push_str(&format!(" --iterations {i}"));
        }
        let params = BTreeMap::from([
            ("osu".to_string(), osu.display().to_string()),
            ("args".to_string(), args.trim().to_string()),
            ("rankby".to_string(), rankby.to_string()),
        ]);
        let f = crate::sweep::submit(
            client,
            &run,
            "osu-multi-multinode",
            params,
            cluster.vcpus(&run),
        )?;
        // Each pair's BTL, both ways.
        let used = crate::sweep::btl_by_pair(&f.log);
        for i in 0..n {
            let peer = (i + rpn) % n;
            match used.get(&(i, peer)) {
                Some(btl) if btl == want => {}
                other => bail!(
                    "the {name} run: rank {i} reached its partner {peer} over {} where {want} was expected (Open MPI's `bml` lines)",
                    other.map(String::as_str).unwrap_or("nothing seen")
                ),
            }
        }
        let parsed = parse_osu(&f.log);
        if parsed.is_empty() {
            bail!("the {name} job printed no OSU rows:\n{}", f.log);
        }
        eprintln!(
            "{name}: {} pairs at once, each over {want}; /dev/shm peaks {:?} MiB",
            rpn, f.shm_peaks_mib
        );
        for (size, vals) in parsed {
            rows.push(Row {
                transport: name.into(),
                size,
                latency_us: vals.first().copied(),
                p50_us: vals.get(1).copied(),
                p99_us: vals.get(2).copied(),
                bandwidth_mbps: None,
            });
        }
    }
    Ok((rows, over))
}

/// Multi-pair latency, pairs inside nodes against pairs across them.
fn print_multi_table(rows: &[Row], rpn: u32, over: bool) {
    println!();
    println!("# multi-pair latency on 2 nodes × {rpn} ranks, {rpn} pairs at once: µs per message (OSU's average over pairs, [p50 of all pairs])");
    println!(
        "{:>9} {:>19} {:>19} {:>8}",
        "size", "in-node (vader)", "across (tcp)", "ratio"
    );
    let lat = |r: Option<&Row>| match r.and_then(|r| r.latency_us) {
        Some(l) => format!("{l:.2} [{}]", fmt(r.and_then(|r| r.p50_us))),
        None => "-".into(),
    };
    if over {
        println!("# oversubscribed: more ranks than cores here, so ranks that poll for messages share a core (vader's pairs wait for the scheduler's time slices); this checks correctness, not speed");
    }
    for r in rows.iter().filter(|r| r.transport == "multi-in-node") {
        let across = get(rows, "multi-across", r.size);
        let ratio = match (r.latency_us, across.and_then(|a| a.latency_us)) {
            (Some(a), Some(b)) if a > 0.0 => format!("{:.1}×", b / a),
            _ => "-".into(),
        };
        println!(
            "{:>9} {:>19} {:>19} {:>8}",
            r.size,
            lat(Some(r)),
            lat(across),
            ratio
        );
    }
}

fn floor_rows(b: &OsuBench, osu: &Path) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    for t in ["shm", "tcp"] {
        let mut cmd = Command::new(osu);
        cmd.args(["floor", "--percentiles", "--transport", t]);
        if !b.sizes.is_empty() {
            cmd.args([
                "--sizes",
                &b.sizes
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ]);
        }
        if let Some(i) = b.iterations {
            cmd.args(["--iterations", &i.to_string()]);
        }
        let o = cmd
            .output()
            .with_context(|| format!("cannot run {} floor", osu.display()))?;
        if !o.status.success() {
            bail!(
                "{} floor --transport {t} failed: {}",
                osu.display(),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        for (size, vals) in parse_osu(&String::from_utf8_lossy(&o.stdout)) {
            out.push(Row {
                transport: format!("floor-{t}"),
                size,
                latency_us: vals.first().copied(),
                p50_us: vals.get(1).copied(),
                p99_us: vals.get(2).copied(),
                bandwidth_mbps: None,
            });
        }
    }
    Ok(out)
}

fn get<'a>(rows: &'a [Row], t: &str, size: u64) -> Option<&'a Row> {
    rows.iter().find(|r| r.transport == t && r.size == size)
}

pub(crate) fn fmt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into())
}

fn print_table(rows: &[Row], floor: &[Row], _b: &OsuBench) {
    let sizes: std::collections::BTreeSet<u64> = rows.iter().map(|r| r.size).collect();
    let two = rows.iter().any(|r| r.transport == "tcp-2node");
    println!("# shoal bench osu: one-way latency in µs (OSU's average, [p50]) and osu_bw bandwidth in MB/s");
    println!("# shm, tcp: 2 ranks on one node; tcp 2-node: 1 rank on each of 2 nodes (veth); floor: no MPI, p50");
    print!(
        "{:>9} {:>17} {:>17} {:>8} {:>9} {:>9} {:>7} {:>9} {:>9}",
        "size",
        "shm µs",
        "tcp µs",
        "tcp/shm",
        "floor shm",
        "floor tcp",
        "shm eff",
        "shm MB/s",
        "tcp MB/s"
    );
    if two {
        print!(" {:>17} {:>10}", "tcp 2-node µs", "2-node MB/s");
    }
    println!();
    let mut above = Vec::new();
    for s in sizes {
        let shm = get(rows, "shm", s);
        let tcp = get(rows, "tcp", s);
        let lat = |r: Option<&Row>| match r.and_then(|r| r.latency_us) {
            Some(l) => format!("{l:.2} [{}]", fmt(r.and_then(|r| r.p50_us))),
            None => "-".into(),
        };
        let ratio = match (
            shm.and_then(|r| r.latency_us),
            tcp.and_then(|r| r.latency_us),
        ) {
            (Some(a), Some(b)) if a > 0.0 => format!("{:.1}×", b / a),
            _ => "-".into(),
        };
        let fshm = get(floor, "floor-shm", s).and_then(|r| r.p50_us.or(r.latency_us));
        let ftcp = get(floor, "floor-tcp", s).and_then(|r| r.p50_us.or(r.latency_us));
        // The floor is one copy per message through the segment; where it
        // took longer than MPI (noise, or a slow copy on this machine) it
        // is no bound, and no efficiency above 100 % is printed.
        let eff = match (fshm, shm.and_then(|r| r.p50_us.or(r.latency_us))) {
            (Some(f), Some(m)) if m > 0.0 && f <= m => format!("{:.0}%", 100.0 * f / m),
            (Some(_), Some(m)) if m > 0.0 => {
                above.push(s);
                "floor↑".into()
            }
            _ => "-".into(),
        };
        print!(
            "{:>9} {:>17} {:>17} {:>8} {:>9} {:>9} {:>7} {:>9} {:>9}",
            s,
            lat(shm),
            lat(tcp),
            ratio,
            fmt(fshm),
            fmt(ftcp),
            eff,
            fmt(shm.and_then(|r| r.bandwidth_mbps)),
            fmt(tcp.and_then(|r| r.bandwidth_mbps))
        );
        if two {
            let t2 = get(rows, "tcp-2node", s);
            print!(
                " {:>17} {:>10}",
                lat(t2),
                fmt(t2.and_then(|r| r.bandwidth_mbps))
            );
        }
        println!();
    }
    println!("# shm eff = floor shm / shm p50 (how close MPI's shared-memory transport gets to the hardware);");
    println!("#   floor shm: one copy per message, from the sender's buffer in a shared segment into the receiver's, no MPI");
    if !above.is_empty() {
        let list: Vec<String> = above.iter().map(|s| s.to_string()).collect();
        println!(
            "# floor↑ at {} B: the floor took longer than MPI's shm there, so it measures this machine's copy of that size, not a bound (rerun: the VM is noisy)",
            list.join(", ")
        );
    }
}

/// Host against container, per transport and size: the same jobs, each
/// pair back to back on the same cluster.
fn print_image_table(rows: &[Row], image: &str) {
    println!();
    println!("# host against container ({image}): one-way latency in µs (OSU's average, [p50]), the container's p50 against the host's, osu_bw MB/s");
    println!(
        "{:<10} {:>9} {:>17} {:>17} {:>8} {:>10} {:>10}",
        "transport", "size", "host µs", "container µs", "Δ p50", "host MB/s", "cont. MB/s"
    );
    let lat = |r: Option<&Row>| match r.and_then(|r| r.latency_us) {
        Some(l) => format!("{l:.2} [{}]", fmt(r.and_then(|r| r.p50_us))),
        None => "-".into(),
    };
    for t in ["shm", "tcp", "tcp-2node"] {
        let container = format!("{t}-image");
        for host in rows.iter().filter(|r| r.transport == t) {
            let cont = get(rows, &container, host.size);
            let delta = match (host.p50_us, cont.and_then(|r| r.p50_us)) {
                (Some(h), Some(c)) if h > 0.0 => format!("{:+.1}%", 100.0 * (c - h) / h),
                _ => "-".into(),
            };
            println!(
                "{:<10} {:>9} {:>17} {:>17} {:>8} {:>10} {:>10}",
                t,
                host.size,
                lat(Some(host)),
                lat(cont),
                delta,
                fmt(host.bandwidth_mbps),
                fmt(cont.and_then(|r| r.bandwidth_mbps))
            );
        }
    }
}

/// `1 B`, `10 kB`, `1 MB` for the axis labels (ticks fall on powers of ten).
fn size_label(v: &f64) -> String {
    let v = *v;
    if v >= 1e6 {
        format!("{} MB", (v / 1e6).round())
    } else if v >= 1e3 {
        format!("{} kB", (v / 1e3).round())
    } else {
        format!("{} B", v.round())
    }
}

fn plot(path: &Path, rows: &[Row], floor: &[Row], b: &OsuBench) -> Result<()> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (1100, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (left, right) = root.split_horizontally(560);
    let series = |t: &str, f: &dyn Fn(&Row) -> Option<f64>, src: &[Row]| -> Vec<(f64, f64)> {
        src.iter()
            .filter(|r| r.transport == t)
            .filter_map(|r| {
                f(r).filter(|v| *v > 0.0)
                    .map(|v| ((r.size.max(1)) as f64, v))
            })
            .collect()
    };
    let max_size = rows.iter().map(|r| r.size.max(2)).max().unwrap_or(2) as f64;
    let lat_all: Vec<f64> = rows
        .iter()
        .chain(floor)
        .filter_map(|r| r.latency_us)
        .filter(|v| *v > 0.0)
        .collect();
    let (lmin, lmax) = (
        lat_all.iter().cloned().fold(f64::MAX, f64::min).min(1.0) * 0.8,
        lat_all.iter().cloned().fold(0.0, f64::max).max(1.0) * 1.25,
    );
    let title = if b.nodes == 1 {
        "2 ranks on one node"
    } else {
        "shm vs tcp, one node and two"
    };
    let mut chart = ChartBuilder::on(&left)
        .caption(format!("Latency ({title})"), ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((1f64..max_size).log_scale(), (lmin..lmax).log_scale())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("message size")
        .x_label_formatter(&size_label)
        .y_desc("one-way latency (µs)")
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // Host jobs, their container twins (--image) and the floor.
    let styles: [(&str, RGBColor, &[Row]); 8] = [
        ("shm", RGBColor(31, 119, 180), rows),
        ("tcp", RGBColor(214, 39, 40), rows),
        ("tcp-2node", RGBColor(255, 127, 14), rows),
        ("shm-image", RGBColor(23, 190, 207), rows),
        ("tcp-image", RGBColor(148, 103, 189), rows),
        ("tcp-2node-image", RGBColor(140, 86, 75), rows),
        ("floor-shm", RGBColor(120, 170, 210), floor),
        ("floor-tcp", RGBColor(240, 150, 150), floor),
    ];
    for (t, color, src) in styles {
        let pts = series(t, &|r: &Row| r.latency_us, src);
        if pts.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label(t)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled())))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let bw_max = rows
        .iter()
        .filter_map(|r| r.bandwidth_mbps)
        .fold(1.0, f64::max)
        * 1.1;
    let mut bw = ChartBuilder::on(&right)
        .caption("Bandwidth (osu_bw)", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((1f64..max_size).log_scale(), 0f64..bw_max)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    bw.configure_mesh()
        .x_desc("message size")
        .x_label_formatter(&size_label)
        .y_desc("MB/s")
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for (t, color, _) in styles.iter().take(6) {
        let pts = series(t, &|r: &Row| r.bandwidth_mbps, rows);
        if pts.is_empty() {
            continue;
        }
        let color = *color;
        bw.draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label(*t)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    bw.configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osu_text_rows_parse_with_and_without_percentiles() {
        let text = "# OSU MPI Latency Test v7.3 (shoal-osu)\n# Size          Latency (us)\n0                       0.25\n8                       0.31      0.30      0.90\n";
        let rows = parse_osu(text);
        assert_eq!(rows, vec![(0, vec![0.25]), (8, vec![0.31, 0.30, 0.90])]);
    }
}
