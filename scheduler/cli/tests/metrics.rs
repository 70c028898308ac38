//! Prometheus metrics end to end (issue 16): a real Prometheus (Debian's
//! `prometheus`), started by the test with a scrape config pointing at the
//! scheduler's `--metrics-listen`, holds `shoal_queue_jobs` with the right
//! values after jobs run, and again after more end.

mod common;

use common::local::Cluster;
use common::{free_port, scheduler_command, Proc, SHOAL};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// A scheduler serving metrics on a free loopback port: it, its endpoint
/// and its metrics URL (from its first lines of output).
fn scheduler_with_metrics(dir: &std::path::Path) -> (Proc, String, String) {
    let mut cmd = scheduler_command(
        &[],
        "127.0.0.1:0",
        dir,
        &[
            "--worker-timeout-ms",
            "1500",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        None,
    );
    let mut child = cmd.spawn().expect("shoal scheduler starts");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = |prefix: &str| {
        let mut l = String::new();
        out.read_line(&mut l).expect("a line");
        l.trim()
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("expected {prefix:?}, got {l:?}"))
            .to_string()
    };
    let endpoint = line("endpoint: ");
    let metrics = line("metrics: ");
    (Proc(child), endpoint, metrics)
}

/// One sample of the OpenMetrics text `text`: `name{labels}`'s value.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// What Prometheus holds now for `shoal_queue_jobs{queue=Q}`: state →
/// value (empty until it has scraped).
fn prometheus_queue_jobs(
    http: &reqwest::blocking::Client,
    prom: &str,
    q: &str,
) -> BTreeMap<String, f64> {
    let query = format!("shoal_queue_jobs{{queue=\"{q}\"}}");
    let Ok(r) = http
        .get(format!("{prom}/api/v1/query"))
        .query(&[("query", query.as_str())])
        .send()
    else {
        return BTreeMap::new();
    };
    let v: Value = r.json().unwrap_or(Value::Null);
    v["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let state = s["metric"]["state"].as_str()?.to_string();
            let value = s["value"][1].as_str()?.parse().ok()?;
            Some((state, value))
        })
        .collect()
}

fn expect(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    shoal_model::JOB_STATES
        .iter()
        .map(|s| {
            let v = pairs.iter().find(|p| p.0 == *s).map_or(0.0, |p| p.1);
            (s.to_string(), v)
        })
        .collect()
}

#[test]
fn prometheus_scrapes_queue_jobs_and_the_cluster_from_the_scheduler() {
    let dir = tempfile::tempdir().unwrap();
    let (scheduler, endpoint, metrics) = scheduler_with_metrics(&dir.path().join("scheduler"));
    let c = Cluster::with(dir, scheduler, endpoint, &["w1"]);
    let http = &c.http;
    c.aws(
        "createjobqueue",
        json!({"jobQueueName": "mq", "priority": 1,
               "computeEnvironmentOrder": [{"order": 1, "computeEnvironment": "default"}]}),
    );
    let def = |name: &str, script: &str, vcpus: &str| {
        c.register(json!({"jobDefinitionName": name, "type": "container",
            "containerProperties": {"command": ["sh", "-c", script],
              "resourceRequirements": [{"type": "VCPU", "value": vcpus},
                                       {"type": "MEMORY", "value": "64"}],
              "linuxParameters": {"sharedMemorySize": 16}}}));
    };
    let stop = c.dir.path().join("stop");
    def("ok", "true", "1");
    def("fail", "exit 3", "1");
    // The worker offers 1 vCPU: this one waits for ever, and says why.
    def("big", "true", "4");
    def(
        "shm",
        &format!(
            "dd if=/dev/zero of=/dev/shm/x bs=1M count=3 2>/dev/null; while [ ! -e {} ]; do sleep 0.1; done",
            stop.display()
        ),
        "1",
    );
    let submit = |name: &str| {
        c.aws(
            "submitjob",
            json!({"jobName": name, "jobQueue": "mq", "jobDefinition": name}),
        )["jobId"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let finished: Vec<String> = ["ok", "ok", "ok", "fail", "fail"]
        .iter()
        .map(|n| submit(n))
        .collect();
    for id in &finished {
        c.wait_done(id);
    }
    let big = submit("big");
    let shm = submit("shm");
    c.wait_for("the shm job to run", || c.job(&shm)["status"] == "RUNNING");

    // The scheduler's own text, until the worker has reported the job's
    // /dev/shm use.
    let scrape = || {
        let r = http.get(&metrics).send().unwrap();
        assert_eq!(
            r.headers()["content-type"],
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        r.text().unwrap()
    };
    let peak = format!(
        "shoal_job_shm_peak_bytes{{job_id=\"{shm}\",queue=\"mq\",node=\"w1\",node_index=\"0\"}}"
    );
    let mut text = String::new();
    c.wait_for("the shm job's peak in the metrics", || {
        text = scrape();
        sample(&text, &peak).is_some_and(|v| v >= 3.0 * 1024.0 * 1024.0)
    });
    let q = |state: &str| {
        sample(
            &text,
            &format!("shoal_queue_jobs{{queue=\"mq\",state=\"{state}\"}}"),
        )
    };
    assert_eq!(q("SUCCEEDED"), Some(3.0), "{text}");
    assert_eq!(q("FAILED"), Some(2.0), "{text}");
    assert_eq!(q("RUNNABLE"), Some(1.0), "{text}");
    assert_eq!(q("RUNNING"), Some(1.0), "{text}");
    assert_eq!(q("PENDING"), Some(0.0), "{text}");
    let waits = |reason: &str| {
        sample(
            &text,
            &format!("shoal_queue_runnable_jobs{{queue=\"mq\",reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(
        waits("MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        waits("CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "shoal_nodes{state=\"ALLOCATED\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "shoal_nodes{state=\"IDLE\"}"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "shoal_node_cpus{node=\"w1\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "shoal_node_cpus_allocated{node=\"w1\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "shoal_node_shm_allocated_bytes{node=\"w1\"}"),
        Some(16.0 * 1024.0 * 1024.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "shoal_compute_environment_cpus_allocated{compute_environment=\"default\"}"
        ),
        Some(1.0),
        "{text}"
    );
    let lag = sample(&text, "shoal_worker_poll_lag_seconds{node=\"w1\"}").expect("poll lag");
    assert!((0.0..5.0).contains(&lag), "poll lag {lag}: {text}");
    assert!(
        sample(&text, "shoal_submit_seconds_count") >= Some(7.0),
        "{text}"
    );
    assert!(
        sample(&text, "shoal_scheduler_pass_seconds_count") >= Some(1.0),
        "{text}"
    );
    assert!(
        sample(&text, "shoal_commit_batch_requests_count") >= Some(1.0),
        "{text}"
    );

    // A real Prometheus scraping it.
    let scrape_dir = c.dir.path().join("prometheus");
    std::fs::create_dir_all(&scrape_dir).unwrap();
    let target = metrics
        .strip_prefix("http://")
        .and_then(|m| m.strip_suffix("/metrics"))
        .unwrap()
        .to_string();
    let config = scrape_dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: shoal\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    // Prometheus cannot take port 0.
    let port = free_port();
    let prom = format!("http://127.0.0.1:{port}");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            scrape_dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(scrape_dir.join("log")).unwrap(),
        ))
        .spawn()
        .expect("prometheus (Debian's package; scripts/install-deps.sh installs it)");
    let _prometheus = Proc(child);
    let mut held = BTreeMap::new();
    let want = expect(&[
        ("SUCCEEDED", 3.0),
        ("FAILED", 2.0),
        ("RUNNABLE", 1.0),
        ("RUNNING", 1.0),
    ]);
    c.wait_for("Prometheus to hold shoal_queue_jobs", || {
        held = prometheus_queue_jobs(http, &prom, "mq");
        held == want
    });

    // More jobs end: the big one cancelled, the shm one done.
    c.aws("canceljob", json!({"jobId": big, "reason": "test"}));
    std::fs::write(&stop, "").unwrap();
    assert_eq!(c.wait_done(&shm)["status"], "SUCCEEDED");
    assert_eq!(c.wait_done(&big)["status"], "FAILED");
    let want = expect(&[("SUCCEEDED", 4.0), ("FAILED", 3.0)]);
    c.wait_for("Prometheus to hold the new values", || {
        held = prometheus_queue_jobs(http, &prom, "mq");
        held == want
    });
    // The ended job's peak is no longer listed.
    assert_eq!(sample(&scrape(), &peak), None);
}

#[test]
fn a_metrics_address_that_cannot_be_served_is_refused_with_the_flag_named() {
    let dir = tempfile::tempdir().unwrap();
    let run = |addr: &str| {
        Command::new(SHOAL)
            .args([
                "scheduler",
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                addr,
                "--state",
            ])
            .arg(dir.path().join("s"))
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .output()
            .unwrap()
    };
    let out = run("nowhere");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("--metrics-listen \"nowhere\": expected ADDRESS:PORT"),
        "{err}"
    );
    // Taken by someone else, an address the operator chose is an error.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(&addr);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("cannot serve metrics on {addr} (--metrics-listen")),
        "{err}"
    );
}
