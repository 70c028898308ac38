//! `shoal bench path`: where one trivial job's time goes. Jobs run one at a
//! time on an idle local cluster whose scheduler and workers log each step
//! of each job (`SHOAL_LOG=…,shoal_path=debug`, see `shoal_model::path`);
//! the benchmark reads their logs and prints, for each step in the order
//! the steps happen, the median time since SubmitJob was sent and since
//! the step before.

use crate::local_cluster;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use shoal_client::Client;
use std::collections::HashMap;
use std::path::Path;

/// `shoal bench path` arguments.
#[derive(clap::Args)]
pub struct PathBench {
    /// Jobs to run, one at a time.
    #[arg(long, default_value_t = 100)]
    jobs: u64,
    /// The local cluster's network.
    #[command(flatten)]
    net: local_cluster::LocalNet,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
}

/// What each step is, where it is taken, for the table.
const STEPS: &[(&str, &str)] = &[
    ("submit_sent", "client: SubmitJob sent"),
    (
        "SUBMITTED",
        "scheduler: SubmitJob handled (HTTP, auth, parse, actor)",
    ),
    (
        "SUBMITTED.committed",
        "scheduler: SubmitJob committed (SQLite, fsync)",
    ),
    ("submit_acked", "client: SubmitJob's reply"),
    ("PENDING", "scheduler: pass: PENDING"),
    ("RUNNABLE", "scheduler: pass: RUNNABLE"),
    ("placed", "scheduler: pass: placed on a node"),
    ("STARTING", "scheduler: STARTING"),
    ("PENDING.committed", "scheduler: PENDING committed"),
    ("RUNNABLE.committed", "scheduler: RUNNABLE committed"),
    ("placed.committed", "scheduler: placement committed"),
    ("STARTING.committed", "scheduler: STARTING committed"),
    (
        "order_queued",
        "scheduler: Start order in the node's mailbox",
    ),
    ("order_sent", "scheduler: long poll answered with the order"),
    (
        "order_received",
        "worker: order taken from the poll's reply",
    ),
    ("task_thread", "worker: task thread started"),
    ("dir_ready", "worker: task directory, hostfile, log file"),
    ("user_ready", "worker: user, policy checks, CPUs"),
    (
        "cgroup_created",
        "worker: cgroup made (memory, cpuset, pids)",
    ),
    ("prepared", "worker: mount points, MPI checks"),
    ("spawn", "worker: command built, fork next"),
    ("child_forked", "child: forked"),
    ("child_joined_v2", "child: in its cgroup (v2)"),
    ("child_joined_pids", "child: in its pids cgroup (v1)"),
    ("child_joined_memory", "child: in its memory cgroup (v1)"),
    ("child_joined_cpuset", "child: in its cpuset cgroup (v1)"),
    (
        "child_mount_ns",
        "child: mount namespace unshared, / private",
    ),
    ("child_mounts", "child: /dev/shm tmpfs mounted"),
    ("child_exec", "child: user set, exec next"),
    ("spawned", "worker: exec done (spawn returned)"),
    ("sampler_started", "worker: /dev/shm sampler started"),
    (
        "started_report_acked",
        "worker: STARTED report acknowledged",
    ),
    (
        "started_report_received",
        "scheduler: STARTED report received",
    ),
    ("RUNNING", "scheduler: RUNNING"),
    ("RUNNING.committed", "scheduler: RUNNING committed"),
    ("exited", "worker: task exited (wait returned)"),
    ("torn_down", "worker: cgroup removed, CPUs back"),
    ("exit_report_received", "scheduler: exit report received"),
    ("SUCCEEDED", "scheduler: SUCCEEDED"),
    ("SUCCEEDED.committed", "scheduler: SUCCEEDED committed"),
    ("exit_report_acked", "worker: exit report acknowledged"),
];

/// One step's figures over the jobs: medians in µs.
#[derive(serde::Serialize)]
struct StepFigure {
    step: String,
    what: String,
    jobs: usize,
    since_submit_p50_us: i64,
    since_previous_p50_us: i64,
    since_previous_p90_us: i64,
}

/// Run it.
pub fn run(b: PathBench) -> Result<i32> {
    if b.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let dir = std::env::temp_dir().join(format!("shoal-path-{}", std::process::id()));
    // The cluster's processes inherit it: info as usual, and every step.
    let filter = match std::env::var("SHOAL_LOG") {
        Ok(f) if !f.is_empty() => format!("{f},{}=debug", shoal_model::path::TARGET),
        _ => format!("info,{}=debug", shoal_model::path::TARGET),
    };
    std::env::set_var("SHOAL_LOG", filter);
    let mut cluster = local_cluster::start(1, 1, &b.net, &dir)?;
    let result = (|| -> Result<HashMap<String, HashMap<String, u64>>> {
        let client = Client::with_credentials_file(&cluster.endpoint, &cluster.credentials)?;
        local_cluster::wait_nodes(&client, 1)?;
        client.call(&crate::throughput::definition(Some(64)))?;
        // One job first, not counted: the first of anything is slower.
        let warm = client.call(&crate::throughput::submit("warm".into()))?;
        client.wait_for(&warm.job_id)?;
        let bar = ProgressBar::new(b.jobs);
        bar.set_style(
            ProgressStyle::with_template("{msg:10} {bar:40} {pos}/{len}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message("jobs");
        let mut client_steps: HashMap<String, HashMap<String, u64>> = HashMap::new();
        for i in 0..b.jobs {
            let sent = shoal_model::path::now_us();
            let id = client
                .call(&crate::throughput::submit(format!("path{i}")))?
                .job_id;
            let acked = shoal_model::path::now_us();
            let j = client.wait_for(&id)?;
            if j.status != "SUCCEEDED" {
                bail!(
                    "job {id} ended {}: {}",
                    j.status,
                    j.status_reason.unwrap_or_default()
                );
            }
            let steps = client_steps.entry(id).or_default();
            steps.insert("submit_sent".into(), sent);
            steps.insert("submit_acked".into(), acked);
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(client_steps)
    })();
    cluster.down();
    let logged = read_logs(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    let mut jobs = result?;
    for (job, steps) in logged? {
        if let Some(j) = jobs.get_mut(&job) {
            j.extend(steps);
        }
    }
    let figures = figures(&jobs);
    if figures.len() <= 2 {
        bail!("the cluster logged no steps; is this binary built with them?");
    }
    if b.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        print_table(&figures, jobs.len());
    }
    Ok(0)
}

/// The steps that the scheduler's and the workers' logs in `dir` hold, by
/// job: step → wall-clock µs (its first time).
fn read_logs(dir: &Path) -> Result<HashMap<String, HashMap<String, u64>>> {
    let mut out: HashMap<String, HashMap<String, u64>> = HashMap::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "log") {
            continue;
        }
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        for line in text.lines() {
            if let Some((job, step, t)) = parse_line(line) {
                out.entry(job).or_default().entry(step).or_insert(t);
            }
        }
    }
    Ok(out)
}

/// `… shoal_path: job=ID step=NAME t_us=N` (values quoted or not).
fn parse_line(line: &str) -> Option<(String, String, u64)> {
    let rest = line
        .split_once(&format!("{}:", shoal_model::path::TARGET))?
        .1;
    let (mut job, mut step, mut t) = (None, None, None);
    for kv in rest.split_whitespace() {
        let Some((k, v)) = kv.split_once('=') else {
            continue;
        };
        let v = v.trim_matches('"');
        match k {
            "job" => job = Some(v.to_string()),
            "step" => step = Some(v.to_string()),
            "t_us" => t = v.parse().ok(),
            _ => {}
        }
    }
    Some((job?, step?, t?))
}

/// The steps in the order they happen (by median time since submit), each
/// with its medians since submit and since the step before.
fn figures(jobs: &HashMap<String, HashMap<String, u64>>) -> Vec<StepFigure> {
    let since_submit = |steps: &HashMap<String, u64>, s: &str| -> Option<i64> {
        Some(*steps.get(s)? as i64 - *steps.get("submit_sent")? as i64)
    };
    let mut names: Vec<String> = jobs
        .values()
        .flat_map(|s| s.keys().cloned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let median_of = |name: &str| {
        let mut v: Vec<i64> = jobs
            .values()
            .filter_map(|s| since_submit(s, name))
            .collect();
        quantile(&mut v, 0.5)
    };
    let rank = |name: &str| {
        STEPS
            .iter()
            .position(|(s, _)| *s == name)
            .unwrap_or(usize::MAX)
    };
    names.sort_by_key(|n| (median_of(n), rank(n)));
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut since: Vec<i64> = jobs
            .values()
            .filter_map(|s| since_submit(s, name))
            .collect();
        let mut step: Vec<i64> = match i.checked_sub(1).map(|p| &names[p]) {
            Some(prev) => jobs
                .values()
                .filter_map(|s| Some(*s.get(name)? as i64 - *s.get(prev)? as i64))
                .collect(),
            None => vec![0],
        };
        out.push(StepFigure {
            step: name.clone(),
            what: STEPS
                .iter()
                .find(|(s, _)| s == name)
                .map(|(_, w)| w.to_string())
                .unwrap_or_default(),
            jobs: since.len(),
            since_submit_p50_us: quantile(&mut since, 0.5),
            since_previous_p50_us: quantile(&mut step, 0.5),
            since_previous_p90_us: quantile(&mut step, 0.9),
        });
    }
    out
}

/// The `q` quantile of `v` (nearest rank), 0 if empty.
fn quantile(v: &mut [i64], q: f64) -> i64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

fn print_table(figures: &[StepFigure], jobs: usize) {
    println!("one job's path, median over {jobs} jobs run one at a time (µs):");
    println!(
        "{:<26} {:>10} {:>10} {:>10}  what",
        "step", "since sub", "step p50", "step p90"
    );
    for f in figures {
        println!(
            "{:<26} {:>10} {:>10} {:>10}  {}",
            f.step, f.since_submit_p50_us, f.since_previous_p50_us, f.since_previous_p90_us, f.what
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_line_is_read_with_or_without_quotes() {
        let line =
            "2026-12-04T01:02:03.000004Z DEBUG shoal_path: job=ab-1 step=\"SUBMITTED\" t_us=17";
        assert_eq!(
            parse_line(line),
            Some(("ab-1".into(), "SUBMITTED".into(), 17))
        );
        assert_eq!(
            parse_line("x shoal_path: job=a:3 step=spawned t_us=5"),
            Some(("a:3".into(), "spawned".into(), 5))
        );
        assert_eq!(parse_line("x INFO shoal_worker: starting t_us=5"), None);
    }

    #[test]
    fn steps_come_in_time_order_with_their_gaps() {
        let job = |a: u64, b: u64, c: u64| {
            HashMap::from([
                ("submit_sent".to_string(), 100),
                ("RUNNING".to_string(), 100 + b),
                ("SUBMITTED".to_string(), 100 + a),
                ("exited".to_string(), 100 + c),
            ])
        };
        let jobs = HashMap::from([
            ("j1".to_string(), job(10, 30, 70)),
            ("j2".to_string(), job(20, 50, 60)),
            ("j3".to_string(), job(30, 40, 90)),
        ]);
        let f = figures(&jobs);
        let names: Vec<&str> = f.iter().map(|f| f.step.as_str()).collect();
        assert_eq!(names, ["submit_sent", "SUBMITTED", "RUNNING", "exited"]);
        assert_eq!(f[1].since_submit_p50_us, 20);
        assert_eq!(f[2].since_submit_p50_us, 40);
        // RUNNING − SUBMITTED per job: 20, 30, 10; exited − RUNNING: 40, 10, 50.
        assert_eq!(
            (f[2].since_previous_p50_us, f[2].since_previous_p90_us),
            (20, 30)
        );
        assert_eq!(f[3].since_previous_p50_us, 40);
        assert_eq!(f[3].jobs, 3);
    }
}
