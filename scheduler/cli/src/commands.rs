//! Client subcommands: each turns its arguments into AWS Batch API calls.

use crate::Endpoint;
use anyhow::{bail, Context, Result};
use shoal_client::Client;
use shoal_model as m;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

/// `--backfill` values.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum BackfillArg {
    /// Strict priority order.
    Fcfs,
    /// EASY backfilling (a reservation for the queue head).
    Easy,
    /// Conservative backfilling (a reservation for every waiting job).
    Conservative,
}

impl From<BackfillArg> for shoal_core::Backfill {
    fn from(b: BackfillArg) -> Self {
        match b {
            BackfillArg::Fcfs => shoal_core::Backfill::Fcfs,
            BackfillArg::Easy => shoal_core::Backfill::Easy,
            BackfillArg::Conservative => shoal_core::Backfill::Conservative,
        }
    }
}

/// Run the scheduler in the foreground until SIGINT/SIGTERM.
pub fn scheduler(config: shoal_scheduler::Config) -> Result<()> {
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async move {
        let state = config.state_dir.clone();
        let running = shoal_scheduler::start(config).await?;
        say!("endpoint: http://{}", running.addr);
        if let Some(w) = running.worker_addr {
            say!("workers: https://{w}");
        }
        if let Some(m) = running.metrics_addr {
            say!("metrics: http://{m}/metrics");
        }
        say_err!("shoal scheduler: state in {}", state.display());
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot install the SIGTERM handler")?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        say_err!("shoal scheduler: stopping");
        running.stop().await;
        Ok(())
    })
}

/// `shoal register FILE.json`.
pub fn register(ep: &Endpoint, file: &Path) -> Result<i32> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the job definition {}", file.display()))?;
    let req: m::RegisterJobDefinitionRequest = m::parse_request(text.as_bytes())
        .with_context(|| format!("{} is not a job definition", file.display()))?;
    let resp = ep.client()?.call(&req)?;
    println!(
        "registered {}:{} ({})",
        resp.job_definition_name, resp.revision, resp.job_definition_arn
    );
    Ok(0)
}

/// `shoal submit` arguments.
#[derive(clap::Args)]
pub struct SubmitArgs {
    /// Job definition: name (latest active revision), name:revision or ARN.
    #[arg(long, short = 'd')]
    definition: String,
    /// Job queue (name or ARN).
    #[arg(long, short = 'q', default_value = "default")]
    queue: String,
    /// Job name (defaults to the definition's name).
    #[arg(long, short = 'n')]
    name: Option<String>,
    /// A parameter for `Ref::` substitution, `key=value` (repeatable).
    #[arg(long = "param", short = 'p')]
    params: Vec<String>,
    /// Number of nodes (multinode definitions).
    #[arg(long)]
    nodes: Option<u32>,
    /// Submit an array job of this size.
    #[arg(long)]
    array: Option<u32>,
    /// A job that must succeed first (repeatable).
    #[arg(long = "depends-on")]
    depends_on: Vec<String>,
    /// Attempt timeout in seconds (≥ 60).
    #[arg(long)]
    timeout: Option<i32>,
    /// Scheduling priority override (0–9999, higher first).
    #[arg(long)]
    priority: Option<i32>,
    /// Total attempts (1–10).
    #[arg(long)]
    attempts: Option<i32>,
    /// Wait until the job ends; exit 0 only if it SUCCEEDED.
    #[arg(long)]
    wait: bool,
    /// Print the SubmitJob reply as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    endpoint: Endpoint,
}

fn job_name_from(definition: &str) -> String {
    let base = definition.rsplit('/').next().unwrap_or(definition);
    let base = base.split(':').next().unwrap_or(base);
    base.to_string()
}

/// The SubmitJob request of CLI arguments.
pub fn submit_request(a: &SubmitArgs) -> Result<m::SubmitJobRequest> {
    let mut parameters = BTreeMap::new();
    for kv in &a.params {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--param {kv:?}: expected key=value");
        };
        parameters.insert(k.to_string(), v.to_string());
    }
    let count =
        |flag: &str, n: u32| i32::try_from(n).with_context(|| format!("{flag} {n}: too large"));
    Ok(m::SubmitJobRequest {
        job_name: a
            .name
            .clone()
            .unwrap_or_else(|| job_name_from(&a.definition)),
        job_queue: a.queue.clone(),
        job_definition: a.definition.clone(),
        parameters,
        node_overrides: match a.nodes {
            Some(n) => Some(m::NodeOverrides {
                num_nodes: Some(count("--nodes", n)?),
                ..Default::default()
            }),
            None => None,
        },
        array_properties: match a.array {
            Some(n) => Some(m::ArrayProperties {
                size: Some(count("--array", n)?),
            }),
            None => None,
        },
        depends_on: a
            .depends_on
            .iter()
            .map(|id| m::JobDependency {
                job_id: Some(id.clone()),
                kind: None,
            })
            .collect(),
        timeout: a.timeout.map(|t| m::JobTimeout {
            attempt_duration_seconds: Some(t),
        }),
        scheduling_priority_override: a.priority,
        retry_strategy: a.attempts.map(|n| m::RetryStrategy {
            attempts: Some(n),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// `shoal submit`.
pub fn submit(a: SubmitArgs) -> Result<i32> {
    let client = a.endpoint.client()?;
    let resp = client.call(&submit_request(&a)?)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&resp)?);
    } else {
        println!("{}", resp.job_id);
    }
    if !a.wait {
        return Ok(0);
    }
    let id = resp.job_id;
    let job = client.wait_for(&id)?;
    eprintln!(
        "{id}: {} {}",
        job.status,
        job.status_reason.as_deref().unwrap_or("")
    );
    Ok(if job.status == "SUCCEEDED" { 0 } else { 1 })
}

/// `shoal jobs` arguments.
#[derive(clap::Args)]
pub struct JobsArgs {
    /// Only this queue (default: every queue).
    #[arg(long, short = 'q')]
    queue: Option<String>,
    /// Only jobs in this state (repeatable; ALL for every state; default:
    /// every unfinished state).
    #[arg(long, short = 's', value_name = "STATE")]
    state: Vec<String>,
    /// Every state, finished jobs too (the same as `-s ALL`).
    #[arg(long, short = 'a')]
    all: bool,
    /// Only jobs created within this long, e.g. 30m, 2h, 1d.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    since: Option<Duration>,
    /// Show each child of an array job on a row of its own (default: one
    /// row per state, `ID:[0-3,7]`).
    #[arg(long, short = 'e')]
    expand: bool,
    /// Print JSON (the ListJobs summaries; an array job's carries its
    /// children's `arrayProperties.statusSummary`) instead of a table.
    #[arg(long)]
    json: bool,
    /// The jobs that wait (SUBMITTED, PENDING, RUNNABLE; array children on
    /// rows of their own) with their estimated start, like `squeue
    /// --start`, soonest first: a dry run of the scheduler on its current
    /// state, each job running for its runtime estimate (its timeout, else
    /// its queue's default). N/A: it would not start (it cannot fit, its
    /// queue is DISABLED, a dependency never ends).
    #[arg(long)]
    start: bool,
    #[command(flatten)]
    endpoint: Endpoint,
}

const WAITING: [&str; 3] = ["SUBMITTED", "PENDING", "RUNNABLE"];

const UNFINISHED: [&str; 5] = ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"];
const STATES: [&str; 7] = m::JOB_STATES;

/// ListJobs of an array job's children.
fn children_of(client: &Client, array_job_id: &str) -> Result<Vec<m::JobSummary>> {
    Ok(client.list_all(m::ListJobsRequest {
        array_job_id: Some(array_job_id.to_string()),
        ..Default::default()
    })?)
}

fn queue_names(client: &Client) -> Result<Vec<String>> {
    Ok(client
        .queues()?
        .into_iter()
        .map(|q| q.job_queue_name)
        .collect())
}

/// The states `shoal jobs` shows: `-s` (repeatable, `ALL`), `--all`, or
/// every unfinished one.
fn wanted_states(given: &[String], all: bool) -> Result<Vec<&'static str>> {
    if all {
        return Ok(STATES.to_vec());
    }
    if given.is_empty() {
        return Ok(UNFINISHED.to_vec());
    }
    let mut out = Vec::new();
    for s in given.iter().flat_map(|s| s.split(',')) {
        let s = s.trim().to_ascii_uppercase();
        if s == "ALL" {
            return Ok(STATES.to_vec());
        }
        match STATES.iter().find(|k| **k == s) {
            Some(k) if !out.contains(k) => out.push(*k),
            Some(_) => {}
            None => bail!("--state {s}: expected ALL or one of {}", STATES.join(", ")),
        }
    }
    Ok(out)
}

/// `0-3,7`: indices as ranges.
fn index_ranges(mut ix: Vec<u64>) -> String {
    ix.sort_unstable();
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ix.len() {
        let mut j = i;
        while j + 1 < ix.len() && ix[j + 1] == ix[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            ix[i].to_string()
        } else {
            format!("{}-{}", ix[i], ix[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

/// Local time of an epoch-ms field, `MM-DD HH:MM:SS`; blank when absent.
fn local_time(v: Option<i64>) -> String {
    use chrono::TimeZone;
    v.and_then(|ms| chrono::Local.timestamp_millis_opt(ms).single())
        .map(|t| t.format("%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// One row of `shoal jobs`.
struct JobRow {
    id: String,
    queue: String,
    /// The summary (for an array's group of children: the first child's,
    /// with the group's times).
    job: m::JobSummary,
}

impl JobRow {
    /// The columns every job table starts with: JOBID NAME QUEUE STATE NODES.
    fn cells(&self) -> Vec<String> {
        let j = &self.job;
        vec![
            self.id.clone(),
            truncate(&j.job_name, 20),
            truncate(&self.queue, 12),
            j.status.as_deref().unwrap_or("?").to_string(),
            j.node_properties
                .as_ref()
                .and_then(|n| n.num_nodes)
                .unwrap_or(1)
                .to_string(),
        ]
    }
}

/// The size of an array parent's summary (None for a child or any other job).
fn summary_array_size(job: &m::JobSummary) -> Option<i32> {
    let a = job.array_properties.as_ref()?;
    a.size.filter(|_| a.index.is_none())
}

/// The exit code in a summary.
fn summary_exit(job: &m::JobSummary) -> Option<i32> {
    job.container.as_ref().and_then(|c| c.exit_code)
}

/// The rows of one array job: its children in the wanted states, one row
/// each (`expand`) or one row per state.
fn array_rows(
    client: &Client,
    parent: &m::JobSummary,
    queue: &str,
    wanted: &[&str],
    expand: bool,
) -> Result<(Vec<JobRow>, BTreeMap<String, i64>)> {
    let id = &parent.job_id;
    let children = children_of(client, id)?;
    let mut summary: BTreeMap<String, i64> = STATES.iter().map(|s| (s.to_string(), 0)).collect();
    let mut groups: BTreeMap<usize, Vec<&m::JobSummary>> = BTreeMap::new();
    for c in &children {
        let st = c.status.as_deref().unwrap_or("?");
        if let Some(n) = summary.get_mut(st) {
            *n += 1;
        }
        if let Some(rank) = STATES.iter().position(|s| *s == st) {
            if wanted.contains(&st) {
                groups.entry(rank).or_default().push(c);
            }
        }
    }
    let mut rows = Vec::new();
    for (_, group) in groups {
        if expand {
            for c in group {
                rows.push(JobRow {
                    id: c.job_id.clone(),
                    queue: queue.to_string(),
                    job: c.clone(),
                });
            }
            continue;
        }
        let ix: Vec<u64> = group
            .iter()
            .filter_map(|c| c.array_properties.as_ref()?.index)
            .map(|i| i as u64)
            .collect();
        let mut job = group[0].clone();
        job.created_at = parent.created_at;
        job.job_name = parent.job_name.clone();
        job.started_at = group.iter().filter_map(|c| c.started_at).min();
        let stopped: Vec<i64> = group.iter().filter_map(|c| c.stopped_at).collect();
        job.stopped_at = if stopped.len() == group.len() {
            stopped.into_iter().max()
        } else {
            None
        };
        // The group's exit code and reason where all its children share one.
        let exit = summary_exit(group[0]);
        let exit = group
            .iter()
            .all(|c| summary_exit(c) == exit)
            .then_some(exit);
        job.container.get_or_insert_with(Default::default).exit_code = exit.flatten();
        let reason = &group[0].status_reason;
        job.status_reason = group
            .iter()
            .all(|c| &c.status_reason == reason)
            .then(|| reason.clone())
            .flatten();
        rows.push(JobRow {
            id: format!("{id}:[{}]", index_ranges(ix)),
            queue: queue.to_string(),
            job,
        });
    }
    Ok((rows, summary))
}

/// `shoal jobs`.
pub fn jobs(a: JobsArgs) -> Result<i32> {
    let client = a.endpoint.client()?;
    let queues = match &a.queue {
        Some(q) => vec![q.clone()],
        None => queue_names(&client)?,
    };
    let mut wanted = wanted_states(&a.state, a.all)?;
    let expand = a.expand || a.start;
    if a.start {
        wanted.retain(|s| WAITING.contains(s));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    // A filter lists every state at once (AWS: jobStatus is then ignored).
    let after = a
        .since
        .map(|d| now.saturating_sub(d.as_millis() as i64))
        .unwrap_or(0)
        .max(0);
    let mut rows: Vec<JobRow> = Vec::new();
    let mut summaries: Vec<m::JobSummary> = Vec::new();
    for q in &queues {
        let req = m::ListJobsRequest {
            job_queue: Some(q.clone()),
            filters: vec![m::KeyValuesPair {
                name: Some("AFTER_CREATED_AT".into()),
                values: vec![after.to_string()],
            }],
            ..Default::default()
        };
        for j in client.list_all(req)? {
            if summary_array_size(&j).is_some() {
                let (mut r, status) = array_rows(&client, &j, q, &wanted, expand)?;
                if r.is_empty() {
                    continue;
                }
                let mut s = j.clone();
                if let Some(p) = s.array_properties.as_mut() {
                    p.status_summary = Some(status);
                }
                summaries.push(s);
                if expand {
                    summaries.extend(r.iter().map(|row| row.job.clone()));
                }
                rows.append(&mut r);
            } else if wanted.contains(&j.status.as_deref().unwrap_or("")) {
                summaries.push(j.clone());
                rows.push(JobRow {
                    id: j.job_id.clone(),
                    queue: q.clone(),
                    job: j,
                });
            }
        }
    }
    rows.sort_by_key(|r| r.job.created_at.unwrap_or(0));
    if a.start {
        return start_table(&client, rows, a.json);
    }
    if a.json {
        summaries.sort_by_key(|j| j.created_at.unwrap_or(0));
        println!("{}", serde_json::to_string_pretty(&summaries)?);
        return Ok(0);
    }
    let mut table = vec![[
        "JOBID", "NAME", "QUEUE", "STATE", "NODES", "EXIT", "CREATED", "STARTED", "STOPPED",
        "ELAPSED", "REASON",
    ]
    .map(String::from)
    .to_vec()];
    for r in &rows {
        let j = &r.job;
        let elapsed = match (j.started_at, j.stopped_at) {
            (Some(s), Some(e)) => format_duration(e - s),
            (Some(s), None) => format_duration(now - s),
            _ => String::new(),
        };
        let mut row = r.cells();
        row.extend([
            summary_exit(j).map(|c| c.to_string()).unwrap_or_default(),
            local_time(j.created_at),
            local_time(j.started_at),
            local_time(j.stopped_at),
            elapsed,
            j.status_reason.clone().unwrap_or_default(),
        ]);
        table.push(row);
    }
    print_table(&table);
    if rows.is_empty() && !a.all && a.state.is_empty() {
        eprintln!("no unfinished jobs (finished ones too: shoal jobs --all)");
    }
    Ok(0)
}

/// `shoal jobs --start`: DescribeJobs' `shoalEstimatedStartAt` of each
/// row, soonest first (N/A last).
fn start_table(client: &Client, mut rows: Vec<JobRow>, json: bool) -> Result<i32> {
    let mut est: HashMap<String, i64> = HashMap::new();
    for chunk in rows.chunks(100) {
        let resp = client.call(&m::DescribeJobsRequest {
            jobs: chunk.iter().map(|r| r.id.clone()).collect(),
        })?;
        for d in resp.jobs {
            if let Some(t) = d.shoal_estimated_start_at {
                est.insert(d.job_id, t);
            }
        }
    }
    rows.sort_by_key(|r| {
        let e = est.get(&r.id).copied();
        (e.is_none(), e, r.job.created_at.unwrap_or(0))
    });
    if json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "jobId": r.id,
                    "jobName": r.job.job_name,
                    "jobQueue": r.queue,
                    "status": r.job.status,
                    "statusReason": r.job.status_reason,
                    "shoalEstimatedStartAt": est.get(&r.id),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(0);
    }
    let mut table = vec![[
        "JOBID",
        "NAME",
        "QUEUE",
        "STATE",
        "NODES",
        "START_TIME",
        "REASON",
    ]
    .map(String::from)
    .to_vec()];
    for r in &rows {
        let j = &r.job;
        let mut row = r.cells();
        row.extend([
            est.get(&r.id)
                .map(|&t| local_time(Some(t)))
                .unwrap_or_else(|| "N/A".into()),
            j.status_reason.clone().unwrap_or_default(),
        ]);
        table.push(row);
    }
    print_table(&table);
    if rows.is_empty() {
        eprintln!("no job waits to start");
    }
    Ok(0)
}

/// Columns padded to their widest cell; the last one as it is.
fn print_table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(width[c] - cell.chars().count() + 2));
            }
        }
        println!("{}", line.trim_end());
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(std::iter::once('…')).collect()
    }
}

/// `H:MM:SS` or `M:SS`, like squeue's TIME column.
pub fn format_duration(ms: i64) -> String {
    let s = (ms.max(0) / 1000) as u64;
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// `shoal describe`.
pub fn describe(ep: &Endpoint, jobs: &[String]) -> Result<i32> {
    let resp = ep.client()?.call(&m::DescribeJobsRequest {
        jobs: jobs.to_vec(),
    })?;
    println!("{}", serde_json::to_string_pretty(&resp)?);
    let found = resp.jobs.len();
    if found < jobs.len() {
        eprintln!("{} of {} jobs not found", jobs.len() - found, jobs.len());
        return Ok(1);
    }
    Ok(0)
}

/// The size of an array job (its parent; None for a child or any other job).
fn array_size(job: &m::JobDetail) -> Option<i32> {
    let a = job.array_properties.as_ref()?;
    a.size.filter(|_| a.index.is_none())
}

/// [`describe_all`] by job id.
fn describe_by_id(client: &Client, ids: &[String]) -> Result<BTreeMap<String, m::JobDetail>> {
    Ok(client
        .describe_all(ids)?
        .into_iter()
        .map(|j| (j.job_id.clone(), j))
        .collect())
}

/// `shoal cancel` / `shoal terminate`: says what happened to each job, and
/// exits 1 when any of them was not stopped (unknown, already finished,
/// or, for cancel, already started).
pub fn cancel(ep: &Endpoint, terminate: bool, ids: &[String], reason: &str) -> Result<i32> {
    let client = ep.client()?;
    let (verb, done) = if terminate {
        ("terminate", "terminated")
    } else {
        ("cancel", "cancelled")
    };
    let before = describe_by_id(&client, ids)?;
    let mut not_stopped = 0;
    for id in ids {
        let Some(job) = before.get(id) else {
            eprintln!("{id}: no such job");
            not_stopped += 1;
            continue;
        };
        let state = job.status.as_str();
        let array_size = array_size(job);
        match state {
            "SUCCEEDED" | "FAILED" => {
                eprintln!("{id}: already {state}; nothing to {verb}");
                not_stopped += 1;
                continue;
            }
            "STARTING" | "RUNNING" if !terminate => {
                eprintln!(
                    "{id}: {state}, not cancelled: cancel stops only jobs that have not started \
                     (as AWS Batch's CancelJob); to stop it, run `shoal terminate {id}`"
                );
                not_stopped += 1;
                continue;
            }
            _ => {}
        }
        let (job_id, reason) = (id.clone(), reason.to_string());
        if terminate {
            client.call(&m::TerminateJobRequest { job_id, reason })?;
        } else {
            client.call(&m::CancelJobRequest { job_id, reason })?;
        }
        let after = client.describe_one(id)?;
        let now = after.as_ref().unwrap_or(job);
        match array_size {
            Some(size) => {
                let s = now
                    .array_properties
                    .as_ref()
                    .and_then(|a| a.status_summary.as_ref());
                let n = |k: &str| s.and_then(|s| s.get(k)).copied().unwrap_or(0);
                let running = n("STARTING") + n("RUNNING");
                if terminate || running == 0 {
                    println!("{id}: {done}, with every unfinished child of its {size}");
                } else {
                    println!(
                        "{id}: cancelled the children of its {size} that had not started; \
                         {running} still run (stop them with `shoal terminate {id}`)"
                    );
                    not_stopped += 1;
                }
            }
            None if terminate && matches!(state, "STARTING" | "RUNNING") => {
                println!("{id}: terminated (was {state}; its processes are being killed)");
            }
            None => println!("{id}: {done} (was {state})"),
        }
    }
    Ok(if not_stopped > 0 { 1 } else { 0 })
}

/// `shoal queues`.
pub fn queues(ep: &Endpoint, as_json: bool) -> Result<i32> {
    let queues = ep.client()?.queues()?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&queues)?);
        return Ok(0);
    }
    let mut table = vec![[
        "QUEUE",
        "PRIORITY",
        "STATE",
        "STATUS",
        "COMPUTE ENVIRONMENTS",
    ]
    .map(String::from)
    .to_vec()];
    for q in &queues {
        let ces: Vec<&str> = q
            .compute_environment_order
            .iter()
            .map(|c| {
                let arn = c.compute_environment.as_str();
                arn.rsplit('/').next().unwrap_or(arn)
            })
            .collect();
        table.push(vec![
            q.job_queue_name.clone(),
            q.priority.to_string(),
            q.state.clone(),
            q.status.clone().unwrap_or_else(|| "?".into()),
            ces.join(","),
        ]);
    }
    print_table(&table);
    Ok(0)
}

/// `shoal nodes`, like sinfo.
pub fn nodes(ep: &Endpoint, as_json: bool) -> Result<i32> {
    let nodes = ep.client()?.call(&m::ListNodesRequest {})?.nodes;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&nodes)?);
        return Ok(0);
    }
    let mut table = vec![[
        "NODE",
        "STATE",
        "CPUS(A/T)",
        "MEM MiB(F)",
        "SHM MiB(F)",
        "ADDRESS",
        "NOTES",
    ]
    .map(String::from)
    .to_vec()];
    for n in &nodes {
        let drained = n.drain_reason.as_ref().map(|r| format!("drained: {r}"));
        let notes: Vec<&str> = drained
            .as_deref()
            .into_iter()
            .chain(n.notes.iter().map(String::as_str))
            .collect();
        table.push(vec![
            n.name.clone(),
            n.state.clone(),
            format!("{}/{}", n.vcpus_allocated, n.vcpus),
            n.memory_free_mib.to_string(),
            n.shm_free_mib.to_string(),
            n.address.clone(),
            notes.join("; "),
        ]);
    }
    print_table(&table);
    if nodes.is_empty() {
        eprintln!("no worker nodes have registered yet (start `shoal worker --scheduler URL`)");
    }
    Ok(0)
}

/// What `shoal drain`, `resume` and `remove-node` do.
pub enum NodeOp {
    /// `shoal drain NODE --reason R`.
    Drain(String),
    /// `shoal resume NODE`.
    Resume,
    /// `shoal remove-node NODE`.
    Remove,
}

/// `shoal drain` / `resume` / `remove-node`: says what it did.
pub fn node_op(ep: &Endpoint, op: NodeOp, node: &str) -> Result<i32> {
    let client = ep.client()?;
    let name = node.to_string();
    match op {
        NodeOp::Drain(reason) => {
            client.call(&m::DrainNodeRequest {
                name,
                reason: Some(reason.clone()),
            })?;
            println!("{node}: drained ({reason}); what runs there goes on");
        }
        NodeOp::Resume => {
            client.call(&m::ResumeNodeRequest { name })?;
            println!("{node}: resumed; it takes jobs again");
        }
        NodeOp::Remove => {
            client.call(&m::RemoveNodeRequest { name })?;
            println!("{node}: removed");
        }
    }
    Ok(0)
}

/// `shoal logs JOB[#NODE] [--follow]`. With --follow, a job that has not
/// started yet is waited for. An array job has no log of its own: its
/// children are listed.
pub fn logs(ep: &Endpoint, job: &str, follow: bool) -> Result<i32> {
    use std::io::Write;
    let client = ep.client()?;
    let r: shoal_model::JobRef = job.parse().with_context(|| format!("shoal logs {job}"))?;
    let base = r.job.as_str();
    let describe = |id: &str| -> Result<m::JobDetail> {
        client
            .describe_one(id)?
            .with_context(|| format!("no job with id {id}"))
    };
    let j = describe(base)?;
    if let Some(size) = array_size(&j) {
        let children = children_of(&client, base)?;
        println!(
            "{base} is an array job of {size} children; each has its own log (shoal logs {base}:INDEX):"
        );
        let mut table = vec![vec!["CHILD".to_string(), "STATE".into(), "REASON".into()]];
        for c in &children {
            table.push(vec![
                c.job_id.clone(),
                c.status.clone().unwrap_or_else(|| "?".into()),
                c.status_reason.clone().unwrap_or_default(),
            ]);
        }
        print_table(&table);
        return Ok(0);
    }
    let started = |j: &m::JobDetail| {
        matches!(
            j.status.as_str(),
            "STARTING" | "RUNNING" | "SUCCEEDED" | "FAILED"
        ) && (j.started_at.is_some() || !j.attempts.is_empty())
    };
    if follow && !started(&j) {
        let mut said = String::new();
        let mut delay = Duration::from_millis(50);
        loop {
            let j = describe(base)?;
            if started(&j) || j.status == "FAILED" {
                break;
            }
            let now = format!("{} {}", j.status, j.status_reason.as_deref().unwrap_or(""));
            if now != said {
                eprintln!("shoal logs: waiting for {job} to start ({})", now.trim());
                said = now;
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }
    let mut offset = 0u64;
    let mut delay = Duration::from_millis(50);
    loop {
        let bytes = client.log(job, offset)?;
        offset += bytes.len() as u64;
        std::io::stdout().write_all(&bytes)?;
        std::io::stdout().flush()?;
        if !follow {
            return Ok(0);
        }
        let done = m::is_finished(&describe(base)?.status);
        if done && bytes.is_empty() {
            return Ok(0);
        }
        delay = if bytes.is_empty() {
            (delay * 2).min(Duration::from_secs(1))
        } else {
            Duration::from_millis(50)
        };
        std::thread::sleep(delay);
    }
}

/// `shoal cluster up`: run until SIGTERM or Ctrl-C, then remove everything.
pub fn cluster_up(config: shoal_worker::cluster::ClusterConfig) -> Result<i32> {
    use nix::sys::signal::{SigSet, Signal};
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    signals.thread_block()?;
    let nodes = config.nodes;
    let mut cluster = shoal_worker::cluster::Cluster::up(&config)?;
    say!("endpoint: {}", cluster.endpoint);
    say_err!(
        "shoal cluster: the API requires this cluster's key: export SHOAL_CREDENTIALS={}",
        cluster.credentials.display()
    );
    // Report readiness from a helper thread; the main thread waits for a signal.
    let client = Client::with_credentials_file(&cluster.endpoint, &cluster.credentials)?;
    std::thread::spawn(move || {
        let mut delay = Duration::from_millis(10);
        for _ in 0..200 {
            let up = client.nodes_up().unwrap_or(0);
            if up >= nodes as usize {
                say!("ready: {up} nodes");
                return;
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(Duration::from_millis(200));
        }
        say_err!(
            "warning: not every worker registered; see the node logs in the cluster directory"
        );
    });
    let sig = signals.wait()?;
    say_err!("shoal cluster: {sig:?}, removing the cluster");
    cluster.down();
    Ok(0)
}

/// `shoal launch-agent HOST CMD…`, called by `mpirun` on the main node:
/// asks the worker at HOST to run CMD in this job's task there, and exits
/// with its exit code.
pub fn launch_agent(host: &str, command: &[String]) -> Result<i32> {
    let env = |k: &str| {
        std::env::var(k)
            .with_context(|| format!("{k} is not set: launch-agent runs inside a Shoal job"))
    };
    let workers = env("SHOAL_NODE_WORKERS")?;
    let job_id: m::JobRef = env("AWS_BATCH_JOB_ID")?
        .parse()
        .context("AWS_BATCH_JOB_ID is not a job id")?;
    let attempt: u32 = env("AWS_BATCH_JOB_ATTEMPT")?
        .parse()
        .context("AWS_BATCH_JOB_ATTEMPT is not a number")?;
    let token = env("SHOAL_JOB_TOKEN")?;
    // Each entry is ADDRESS:PORT, or https://ADDRESS:PORT for a worker
    // whose own server speaks TLS (verified against SHOAL_CA_PEM).
    let entry = workers
        .split(',')
        .find(|w| {
            w.trim_start_matches("https://")
                .rsplit_once(':')
                .is_some_and(|(a, _)| a == host)
        })
        .with_context(|| format!("{host} is not a node of this job (nodes: {workers})"))?;
    let ca = match entry.starts_with("https://") {
        true => {
            Some(env("SHOAL_CA_PEM").with_context(|| format!("the worker at {entry} speaks TLS"))?)
        }
        false => None,
    };
    let worker = Client::worker(entry, ca.as_deref())?;
    let reply = worker
        .call(&m::ExecRequest {
            job_id,
            attempt: attempt.saturating_sub(1),
            command: command.join(" "),
            token,
        })
        .with_context(|| format!("worker {entry}"))?;
    Ok(reply.exit_code)
}
