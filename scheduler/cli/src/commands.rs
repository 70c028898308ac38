//! Client subcommands: each turns its arguments into AWS Batch API calls.

use crate::client::Client;
use crate::Endpoint;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
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
    let body: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", file.display()))?;
    let resp: Value = ep.client()?.aws("registerjobdefinition", &body)?;
    println!(
        "registered {}:{} ({})",
        resp["jobDefinitionName"].as_str().unwrap_or("?"),
        resp["revision"],
        resp["jobDefinitionArn"].as_str().unwrap_or("?")
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
    timeout: Option<i64>,
    /// Scheduling priority override (0–9999, higher first).
    #[arg(long)]
    priority: Option<i64>,
    /// Total attempts (1–10).
    #[arg(long)]
    attempts: Option<i64>,
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

/// Build the SubmitJob body from CLI arguments.
pub fn submit_body(a: &SubmitArgs) -> Result<Value> {
    let mut body = json!({
        "jobName": a.name.clone().unwrap_or_else(|| job_name_from(&a.definition)),
        "jobQueue": a.queue,
        "jobDefinition": a.definition,
    });
    if !a.params.is_empty() {
        let mut p = serde_json::Map::new();
        for kv in &a.params {
            let Some((k, v)) = kv.split_once('=') else {
                bail!("--param {kv:?}: expected key=value");
            };
            p.insert(k.to_string(), Value::String(v.to_string()));
        }
        body["parameters"] = Value::Object(p);
    }
    if let Some(n) = a.nodes {
        body["nodeOverrides"] = json!({ "numNodes": n });
    }
    if let Some(n) = a.array {
        body["arrayProperties"] = json!({ "size": n });
    }
    if !a.depends_on.is_empty() {
        body["dependsOn"] = a
            .depends_on
            .iter()
            .map(|id| json!({ "jobId": id }))
            .collect();
    }
    if let Some(t) = a.timeout {
        body["timeout"] = json!({ "attemptDurationSeconds": t });
    }
    if let Some(p) = a.priority {
        body["schedulingPriorityOverride"] = json!(p);
    }
    if let Some(n) = a.attempts {
        body["retryStrategy"] = json!({ "attempts": n });
    }
    Ok(body)
}

/// `shoal submit`.
pub fn submit(a: SubmitArgs) -> Result<i32> {
    let client = a.endpoint.client()?;
    let body = submit_body(&a)?;
    let resp: Value = client.aws("submitjob", &body)?;
    let id = resp["jobId"].as_str().unwrap_or_default().to_string();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&resp)?);
    } else {
        println!("{id}");
    }
    if !a.wait {
        return Ok(0);
    }
    let job = wait_for(&client, &id)?;
    let status = job["status"].as_str().unwrap_or("?");
    eprintln!(
        "{id}: {status} {}",
        job["statusReason"].as_str().unwrap_or("")
    );
    Ok(if status == "SUCCEEDED" { 0 } else { 1 })
}

/// Poll DescribeJobs until the job is SUCCEEDED or FAILED.
pub fn wait_for(client: &Client, id: &str) -> Result<Value> {
    let mut delay = Duration::from_millis(20);
    loop {
        let resp: Value = client.aws("describejobs", &json!({ "jobs": [id] }))?;
        let Some(job) = resp["jobs"].get(0) else {
            bail!("job {id} is not known to the scheduler");
        };
        if matches!(job["status"].as_str(), Some("SUCCEEDED" | "FAILED")) {
            return Ok(job.clone());
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(1));
    }
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
    #[command(flatten)]
    endpoint: Endpoint,
}

const UNFINISHED: [&str; 5] = ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"];
const STATES: [&str; 7] = [
    "SUBMITTED",
    "PENDING",
    "RUNNABLE",
    "STARTING",
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
];

/// Every page of a ListJobs call.
fn list_all(client: &Client, mut body: Value) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    body["maxResults"] = json!(1000);
    loop {
        let resp: Value = client.aws("listjobs", &body)?;
        if let Some(list) = resp["jobSummaryList"].as_array() {
            out.extend(list.iter().cloned());
        }
        match resp["nextToken"].as_str() {
            Some(t) if !t.is_empty() => body["nextToken"] = json!(t),
            _ => return Ok(out),
        }
    }
}

fn queue_names(client: &Client) -> Result<Vec<String>> {
    let resp: Value = client.aws("describejobqueues", &json!({}))?;
    Ok(resp["jobQueues"]
        .as_array()
        .map(|qs| {
            qs.iter()
                .filter_map(|q| q["jobQueueName"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default())
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
fn local_time(v: &Value) -> String {
    use chrono::TimeZone;
    v.as_i64()
        .and_then(|ms| chrono::Local.timestamp_millis_opt(ms).single())
        .map(|t| t.format("%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// One row of `shoal jobs`.
struct JobRow {
    id: String,
    queue: String,
    /// The summary (for an array's group of children: the first child's,
    /// with the group's times).
    job: Value,
}

/// The rows of one array job: its children in the wanted states, one row
/// each (`expand`) or one row per state.
fn array_rows(
    client: &Client,
    parent: &Value,
    queue: &str,
    wanted: &[&str],
    expand: bool,
) -> Result<(Vec<JobRow>, Value)> {
    let id = parent["jobId"].as_str().unwrap_or("?");
    let children = list_all(client, json!({ "arrayJobId": id }))?;
    let mut summary: BTreeMap<&str, u64> = STATES.iter().map(|s| (*s, 0)).collect();
    let mut groups: BTreeMap<usize, Vec<&Value>> = BTreeMap::new();
    for c in &children {
        let st = c["status"].as_str().unwrap_or("?");
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
                    id: c["jobId"].as_str().unwrap_or("?").to_string(),
                    queue: queue.to_string(),
                    job: c.clone(),
                });
            }
            continue;
        }
        let ix: Vec<u64> = group
            .iter()
            .filter_map(|c| c["arrayProperties"]["index"].as_u64())
            .collect();
        let mut job = group[0].clone();
        job["createdAt"] = parent["createdAt"].clone();
        job["jobName"] = parent["jobName"].clone();
        job["startedAt"] = json!(group.iter().filter_map(|c| c["startedAt"].as_i64()).min());
        let stopped: Vec<i64> = group
            .iter()
            .filter_map(|c| c["stoppedAt"].as_i64())
            .collect();
        job["stoppedAt"] = if stopped.len() == group.len() {
            json!(stopped.into_iter().max())
        } else {
            Value::Null
        };
        let same = |f: &dyn Fn(&Value) -> Value| {
            let first = f(group[0]);
            group.iter().all(|c| f(c) == first).then_some(first)
        };
        job["container"]["exitCode"] =
            same(&|c| c["container"]["exitCode"].clone()).unwrap_or(Value::Null);
        job["statusReason"] = same(&|c| c["statusReason"].clone()).unwrap_or(Value::Null);
        rows.push(JobRow {
            id: format!("{id}:[{}]", index_ranges(ix)),
            queue: queue.to_string(),
            job,
        });
    }
    Ok((rows, json!(summary)))
}

/// `shoal jobs`.
pub fn jobs(a: JobsArgs) -> Result<i32> {
    let client = a.endpoint.client()?;
    let queues = match &a.queue {
        Some(q) => vec![q.clone()],
        None => queue_names(&client)?,
    };
    let wanted = wanted_states(&a.state, a.all)?;
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
    let mut summaries: Vec<Value> = Vec::new();
    for q in &queues {
        let body = json!({ "jobQueue": q,
            "filters": [{ "name": "AFTER_CREATED_AT", "values": [after.to_string()] }] });
        for j in list_all(&client, body)? {
            if array_size(&j).is_some() {
                let (mut r, status) = array_rows(&client, &j, q, &wanted, a.expand)?;
                if r.is_empty() {
                    continue;
                }
                let mut s = j.clone();
                s["arrayProperties"]["statusSummary"] = status;
                summaries.push(s);
                if a.expand {
                    summaries.extend(r.iter().map(|row| row.job.clone()));
                }
                rows.append(&mut r);
            } else if wanted.contains(&j["status"].as_str().unwrap_or("")) {
                summaries.push(j.clone());
                rows.push(JobRow {
                    id: j["jobId"].as_str().unwrap_or("?").to_string(),
                    queue: q.clone(),
                    job: j,
                });
            }
        }
    }
    rows.sort_by_key(|r| r.job["createdAt"].as_i64().unwrap_or(0));
    if a.json {
        summaries.sort_by_key(|j| j["createdAt"].as_i64().unwrap_or(0));
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
        let elapsed = match (j["startedAt"].as_i64(), j["stoppedAt"].as_i64()) {
            (Some(s), Some(e)) => format_duration(e - s),
            (Some(s), None) => format_duration(now - s),
            _ => String::new(),
        };
        table.push(vec![
            r.id.clone(),
            truncate(j["jobName"].as_str().unwrap_or("?"), 20),
            truncate(&r.queue, 12),
            j["status"].as_str().unwrap_or("?").to_string(),
            j["nodeProperties"]["numNodes"]
                .as_u64()
                .unwrap_or(1)
                .to_string(),
            j["container"]["exitCode"]
                .as_i64()
                .map(|c| c.to_string())
                .unwrap_or_default(),
            local_time(&j["createdAt"]),
            local_time(&j["startedAt"]),
            local_time(&j["stoppedAt"]),
            elapsed,
            j["statusReason"].as_str().unwrap_or("").to_string(),
        ]);
    }
    print_table(&table);
    if rows.is_empty() && !a.all && a.state.is_empty() {
        eprintln!("no unfinished jobs (finished ones too: shoal jobs --all)");
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
    let resp: Value = ep.client()?.aws("describejobs", &json!({ "jobs": jobs }))?;
    println!("{}", serde_json::to_string_pretty(&resp)?);
    let found = resp["jobs"].as_array().map(|a| a.len()).unwrap_or(0);
    if found < jobs.len() {
        eprintln!("{} of {} jobs not found", jobs.len() - found, jobs.len());
        return Ok(1);
    }
    Ok(0)
}

/// The size of an array job (its parent; None for a child or any other job).
fn array_size(job: &Value) -> Option<u64> {
    let a = &job["arrayProperties"];
    a["size"].as_u64().filter(|_| a["index"].is_null())
}

/// DescribeJobs for `ids` (in pages of 100): id → job.
fn describe_all(client: &Client, ids: &[String]) -> Result<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    for chunk in ids.chunks(100) {
        let resp: Value = client.aws("describejobs", &json!({ "jobs": chunk }))?;
        for j in resp["jobs"].as_array().into_iter().flatten() {
            if let Some(id) = j["jobId"].as_str() {
                out.insert(id.to_string(), j.clone());
            }
        }
    }
    Ok(out)
}

/// `shoal cancel` / `shoal terminate`: says what happened to each job, and
/// exits 1 when any of them was not stopped (unknown, already finished,
/// or, for cancel, already started).
pub fn cancel(ep: &Endpoint, terminate: bool, ids: &[String], reason: &str) -> Result<i32> {
    let client = ep.client()?;
    let (op, verb, done) = if terminate {
        ("terminatejob", "terminate", "terminated")
    } else {
        ("canceljob", "cancel", "cancelled")
    };
    let before = describe_all(&client, ids)?;
    let mut not_stopped = 0;
    for id in ids {
        let Some(job) = before.get(id) else {
            eprintln!("{id}: no such job");
            not_stopped += 1;
            continue;
        };
        let state = job["status"].as_str().unwrap_or("?");
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
        let _: Value = client.aws(op, &json!({ "jobId": id, "reason": reason }))?;
        let after = describe_all(&client, std::slice::from_ref(id))?;
        let now = after.get(id).unwrap_or(job);
        match array_size {
            Some(size) => {
                let s = &now["arrayProperties"]["statusSummary"];
                let n = |k: &str| s[k].as_u64().unwrap_or(0);
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
    let resp: Value = ep.client()?.aws("describejobqueues", &json!({}))?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&resp["jobQueues"])?);
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
    for q in resp["jobQueues"].as_array().into_iter().flatten() {
        let ces: Vec<String> = q["computeEnvironmentOrder"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let arn = c["computeEnvironment"].as_str().unwrap_or("?");
                arn.rsplit('/').next().unwrap_or(arn).to_string()
            })
            .collect();
        table.push(vec![
            q["jobQueueName"].as_str().unwrap_or("?").to_string(),
            q["priority"].to_string(),
            q["state"].as_str().unwrap_or("?").to_string(),
            q["status"].as_str().unwrap_or("?").to_string(),
            ces.join(","),
        ]);
    }
    print_table(&table);
    Ok(0)
}

/// `shoal nodes`, like sinfo.
pub fn nodes(ep: &Endpoint, as_json: bool) -> Result<i32> {
    let resp: Value = ep.client()?.shoal("listnodes", &json!({}))?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&resp["nodes"])?);
        return Ok(0);
    }
    let nodes = resp["nodes"].as_array().cloned().unwrap_or_default();
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
        let drained = n["drainReason"].as_str().map(|r| format!("drained: {r}"));
        let notes: Vec<&str> = drained
            .as_deref()
            .into_iter()
            .chain(
                n["notes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str),
            )
            .collect();
        table.push(vec![
            n["name"].as_str().unwrap_or("?").to_string(),
            n["state"].as_str().unwrap_or("?").to_string(),
            format!("{}/{}", n["vcpusAllocated"], n["vcpus"]),
            n["memoryFreeMiB"].to_string(),
            n["shmFreeMiB"].to_string(),
            n["address"].as_str().unwrap_or("").to_string(),
            notes.join("; "),
        ]);
    }
    print_table(&table);
    if nodes.is_empty() {
        eprintln!("no worker nodes have registered yet (start `shoal worker --scheduler URL`)");
    }
    Ok(0)
}

/// `shoal drain` / `resume` / `remove-node`: says what it did.
pub fn node_op(ep: &Endpoint, op: &str, node: &str, reason: Option<&str>) -> Result<i32> {
    let mut body = json!({ "name": node });
    if let Some(r) = reason {
        body["reason"] = json!(r);
    }
    let _: Value = ep.client()?.shoal(op, &body)?;
    match op {
        "drainnode" => println!(
            "{node}: drained ({}); what runs there goes on",
            reason.unwrap_or("")
        ),
        "resumenode" => println!("{node}: resumed; it takes jobs again"),
        _ => println!("{node}: removed"),
    }
    Ok(0)
}

/// A client of workers' own servers over TLS: it trusts only the cluster
/// CA `ca_pem` (no built-in roots) and presents no certificate.
fn tls_client(ca_pem: &str, timeout: Option<Duration>) -> Result<reqwest::blocking::Client> {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes())
        .context("the cluster CA certificate is not PEM")?;
    Ok(reqwest::blocking::Client::builder()
        .timeout(timeout)
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .https_only(true)
        .build()?)
}

/// Read a task's output from `offset` on, through the worker that ran it.
pub fn fetch_log(client: &Client, job: &str, offset: u64) -> Result<Vec<u8>> {
    let loc: Value = client.shoal("logs", &json!({ "jobId": job }))?;
    let task: shoal_model::wire::TaskRef = serde_json::from_value(loc["task"].clone())
        .context("the scheduler's reply names no task")?;
    let mut url = format!(
        "{}/{}?offset={offset}",
        loc["url"].as_str().unwrap_or_default(),
        shoal_worker::task::task_dir_name(&task)
    );
    if let Some(grant) = loc["grant"].as_str() {
        url = format!("{url}&{grant}");
    }
    let http = if url.starts_with("https://") {
        let ca = loc["ca"]
            .as_str()
            .context("the worker speaks TLS, but the scheduler's reply holds no CA to verify it")?;
        tls_client(ca, Some(Duration::from_secs(60)))?
    } else {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?
    };
    let resp = http
        .get(&url)
        .send()
        .with_context(|| format!("cannot reach worker {} for the log", loc["node"]))?;
    if !resp.status().is_success() {
        let status = resp.status();
        bail!(
            "worker {} has no log for {job} ({status}: {})",
            loc["node"],
            resp.text().unwrap_or_default()
        );
    }
    Ok(resp.bytes()?.to_vec())
}

/// `shoal logs JOB[#NODE] [--follow]`. With --follow, a job that has not
/// started yet is waited for. An array job has no log of its own: its
/// children are listed.
pub fn logs(ep: &Endpoint, job: &str, follow: bool) -> Result<i32> {
    use std::io::Write;
    let client = ep.client()?;
    let r: shoal_model::JobRef = job.parse().with_context(|| format!("shoal logs {job}"))?;
    let base = r.job.as_str();
    let describe = |id: &str| -> Result<Value> {
        describe_all(&client, &[id.to_string()])?
            .remove(id)
            .with_context(|| format!("no job with id {id}"))
    };
    let j = describe(base)?;
    if array_size(&j).is_some() {
        let children = list_all(&client, json!({ "arrayJobId": base }))?;
        println!(
            "{base} is an array job of {} children; each has its own log (shoal logs {base}:INDEX):",
            j["arrayProperties"]["size"]
        );
        let mut table = vec![vec!["CHILD".to_string(), "STATE".into(), "REASON".into()]];
        for c in &children {
            table.push(vec![
                c["jobId"].as_str().unwrap_or("?").to_string(),
                c["status"].as_str().unwrap_or("?").to_string(),
                c["statusReason"].as_str().unwrap_or("").to_string(),
            ]);
        }
        print_table(&table);
        return Ok(0);
    }
    let started = |j: &Value| {
        matches!(
            j["status"].as_str(),
            Some("STARTING" | "RUNNING" | "SUCCEEDED" | "FAILED")
        ) && (j["startedAt"].is_i64() || !j["attempts"].as_array().is_none_or(|a| a.is_empty()))
    };
    if follow && !started(&j) {
        let mut said = String::new();
        let mut delay = Duration::from_millis(50);
        loop {
            let j = describe(base)?;
            if started(&j) || j["status"] == "FAILED" {
                break;
            }
            let now = format!(
                "{} {}",
                j["status"].as_str().unwrap_or("?"),
                j["statusReason"].as_str().unwrap_or("")
            );
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
        let bytes = fetch_log(&client, job, offset)?;
        offset += bytes.len() as u64;
        std::io::stdout().write_all(&bytes)?;
        std::io::stdout().flush()?;
        if !follow {
            return Ok(0);
        }
        let done = matches!(
            describe(base)?["status"].as_str(),
            Some("SUCCEEDED" | "FAILED")
        );
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
            let up = client
                .shoal::<Value>("listnodes", &json!({}))
                .map(|v| {
                    v["nodes"]
                        .as_array()
                        .map(|a| a.iter().filter(|n| n["state"] != "DOWN").count())
                        .unwrap_or(0)
                })
                .unwrap_or(0);
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
    let job_id = env("AWS_BATCH_JOB_ID")?;
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
    let (url, http) = match entry.strip_prefix("https://") {
        Some(url) => {
            let ca =
                env("SHOAL_CA_PEM").with_context(|| format!("the worker at {entry} speaks TLS"))?;
            (url, tls_client(&ca, None)?)
        }
        None => (
            entry,
            reqwest::blocking::Client::builder().timeout(None).build()?,
        ),
    };
    let scheme = if entry.starts_with("https://") {
        "https"
    } else {
        "http"
    };
    let resp = http
        .post(format!("{scheme}://{url}/exec"))
        .json(
            &json!({ "jobId": job_id, "attempt": attempt.saturating_sub(1),
                       "command": command.join(" "), "token": token }),
        )
        .send()
        .with_context(|| format!("cannot reach the worker at {url}"))?;
    let status = resp.status();
    let v: Value = resp.json().unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "worker {url}: {}",
            v["message"].as_str().unwrap_or("refused")
        );
    }
    Ok(v["exitCode"].as_i64().unwrap_or(1) as i32)
}
