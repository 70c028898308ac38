//! Faults, end to end, each reporting its figure (see `common::figure`;
//! scripts/test.sh prints them on one `faults:` line):
//! - kill -9 of the scheduler during a 1,000-job submit storm from 8 clients;
//! - a worker killed mid-job: the gang is torn down on every node and retried;
//! - a worker that loses the scheduler for 30 s keeps its jobs, then reconciles;
//! - a full disk in the state directory: ServerException, nothing acknowledged
//!   that was not stored;
//! - 1,000 jobs in a row leave no mounts, cgroups, namespaces, processes or
//!   /dev/shm files behind.
//!
//! They need root (mounts, cgroups), as CI has.

mod common;

use common::local::{processes_running, sh_def, Cluster};
use common::{call, figure, free_port, start_scheduler_at, try_signed_call, wait_for, Proc};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Every job of `queue` in `status`, paging through ListJobs (signed by
/// `key` if given).
fn list_jobs(
    http: &reqwest::blocking::Client,
    endpoint: &str,
    status: &str,
    key: Option<(&str, &str)>,
) -> Vec<Value> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({ "jobQueue": "default", "jobStatus": status, "maxResults": 1000 });
        if let Some(t) = &token {
            body["nextToken"] = json!(t);
        }
        let url = format!("{endpoint}/v1/listjobs");
        let (s, v) = match key {
            Some(k) => try_signed_call(http, &url, &body, k, &[]).expect("listjobs"),
            None => call(http, &url, &body),
        };
        assert_eq!(s, 200, "listjobs: {v}");
        out.extend(v["jobSummaryList"].as_array().unwrap().iter().cloned());
        match v["nextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => return out,
        }
    }
}

fn register_true(http: &reqwest::blocking::Client, endpoint: &str, key: Option<(&str, &str)>) {
    let url = format!("{endpoint}/v1/registerjobdefinition");
    let body = json!({ "jobDefinitionName": "d", "type": "container", "containerProperties": { "command": ["true"] } });
    let (s, v) = match key {
        Some(k) => try_signed_call(http, &url, &body, k, &[]).expect("register"),
        None => call(http, &url, &body),
    };
    assert_eq!(s, 200, "{v}");
}

#[test]
fn kill9_during_a_submit_storm_keeps_every_acknowledged_job_once() {
    let _serial = serial();
    const CLIENTS: usize = 8;
    const PER_CLIENT: usize = 125;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let listen = format!("127.0.0.1:{}", free_port());
    // With access keys, as a shared scheduler runs: every request signed.
    let creds = dir.path().join("credentials");
    std::fs::write(&creds, "AKIDSTORM 5e3b0d7c41a9f2e86b1c\n").unwrap();
    let signer = ("AKIDSTORM", "5e3b0d7c41a9f2e86b1c");
    let key = Some(signer);
    let args = ["--credentials", creds.to_str().unwrap()];
    let (sched, endpoint) = start_scheduler_at(&listen, &state, &args);
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    register_true(&http, &endpoint, key);

    // Each client submits its jobs in order, with a client token, and
    // retries a submission until it is acknowledged, as boto3 would.
    let acked = AtomicUsize::new(0);
    let retried = AtomicUsize::new(0);
    let results: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
    let mut sched = Some(sched);
    let mut restarted: Option<Proc> = None;
    std::thread::scope(|sc| {
        for c in 0..CLIENTS {
            let (http, endpoint) = (http.clone(), endpoint.clone());
            let (acked, retried, results) = (&acked, &retried, &results);
            sc.spawn(move || {
                for i in 0..PER_CLIENT {
                    let name = format!("storm-{c}-{i}");
                    let deadline = Instant::now() + Duration::from_secs(60);
                    let mut delay = Duration::from_millis(10);
                    loop {
                        let token = format!("tok-{name}");
                        let r = try_signed_call(
                            &http,
                            &format!("{endpoint}/v1/submitjob"),
                            &json!({ "jobName": name, "jobQueue": "default", "jobDefinition": "d" }),
                            signer,
                            &[("x-shoal-client-token", &token)],
                        );
                        if let Ok((200, v)) = r {
                            let id = v["jobId"].as_str().unwrap().to_string();
                            results.lock().unwrap().push((id, name));
                            acked.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        // Not acknowledged (the scheduler is down): wait for
                        // it to come back and send the same request again.
                        retried.fetch_add(1, Ordering::SeqCst);
                        assert!(Instant::now() < deadline, "{name} never acknowledged");
                        std::thread::sleep(delay);
                        delay = (delay * 2).min(Duration::from_millis(200));
                    }
                }
            });
        }
        // kill -9 mid-storm, then start it again on the same address.
        wait_for("300 acknowledged submissions", || {
            acked.load(Ordering::SeqCst) >= 300
        });
        let at_kill = acked.load(Ordering::SeqCst);
        sched.take().unwrap().kill9();
        let (p, e) = start_scheduler_at(&listen, &state, &args);
        assert_eq!(e, endpoint);
        restarted = Some(p);
        println!("killed at {at_kill} acknowledged");
    });
    // kill -9 once more, so that nothing counted below is only in memory.
    restarted.expect("restarted").kill9();
    let (_again, e) = start_scheduler_at(&listen, &state, &args);
    assert_eq!(e, endpoint);
    let results = results.into_inner().unwrap();
    assert_eq!(results.len(), CLIENTS * PER_CLIENT);

    // Every acknowledged job is there, once.
    let jobs = list_jobs(&http, &endpoint, "RUNNABLE", key);
    let by_id: BTreeMap<&str, &str> = jobs
        .iter()
        .map(|j| (j["jobId"].as_str().unwrap(), j["jobName"].as_str().unwrap()))
        .collect();
    let kept = results
        .iter()
        .filter(|(id, name)| by_id.get(id.as_str()) == Some(&name.as_str()))
        .count();
    let names: BTreeSet<&str> = jobs
        .iter()
        .map(|j| j["jobName"].as_str().unwrap())
        .collect();
    let dup = jobs.len() - names.len();
    figure(&format!(
        "storm {kept}/{} kept, {dup} dup",
        CLIENTS * PER_CLIENT
    ));
    println!(
        "{} requests were not acknowledged and were sent again",
        retried.load(Ordering::SeqCst)
    );
    assert_eq!(kept, CLIENTS * PER_CLIENT, "every acknowledged job is kept");
    assert_eq!(dup, 0, "no job is stored twice");
    assert_eq!(jobs.len(), CLIENTS * PER_CLIENT);
}

#[test]
fn a_worker_killed_mid_job_tears_the_gang_down_on_every_node_and_the_job_is_retried() {
    let _serial = serial();
    let mut c = Cluster::start(&["n1", "n2", "n3"]);
    // Each node's first attempt sleeps under a name of its own.
    c.register(json!({ "jobDefinitionName": "gang3", "type": "multinode",
        "retryStrategy": { "attempts": 2 },
        "nodeProperties": { "numNodes": 3, "mainNode": 0, "nodeRangeProperties": [
          { "targetNodes": "0:", "container": { "command": ["sh", "-c",
              "[ \"$AWS_BATCH_JOB_ATTEMPT\" = 2 ] || exec sleep 7$AWS_BATCH_JOB_NODE_INDEX.0193"],
            "resourceRequirements": [{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"256"}] } } ] } }));
    let id = c.submit("gang3", "gang3");
    let marks: Vec<String> = (0..3).map(|n| format!("sleep 7{n}.0193")).collect();
    c.wait_for("the gang to run on all three nodes", || {
        marks.iter().all(|m| processes_running(m) == 1)
    });
    c.kill_worker("n2");
    c.wait_for("the first attempt to fail", || {
        c.job(&id)["attempts"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut gone = 0;
    let mut delay = Duration::from_millis(5);
    while Instant::now() < deadline {
        gone = marks.iter().filter(|m| processes_running(m) == 0).count();
        if gone == marks.len() {
            break;
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(200));
    }
    figure(&format!("gang teardown {gone}/{}", marks.len()));
    assert_eq!(gone, marks.len(), "the attempt's task ends on every node");
    let j = c.job(&id);
    assert!(
        j["attempts"][0]["statusReason"]
            .as_str()
            .unwrap_or_default()
            .contains("n2"),
        "the reason names the lost node: {j}"
    );
    c.add_worker("n2");
    let j = c.wait_done(&id);
    assert_eq!(j["status"], "SUCCEEDED", "retried per retryStrategy: {j}");
    assert_eq!(j["attempts"].as_array().unwrap().len(), 2);
}

#[test]
fn a_worker_that_loses_the_scheduler_for_30_s_keeps_its_jobs_and_reconciles() {
    let _serial = serial();
    let outage = Duration::from_secs(
        std::env::var("SHOAL_FAULT_OUTAGE_S")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(30),
    );
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let state = dir.path().join("scheduler");
    let args = ["--worker-timeout-ms", "5000"];
    let (scheduler, endpoint) = start_scheduler_at(&listen, &state, &args);
    let go = [dir.path().join("go-a"), dir.path().join("go-b")];
    // Two one-CPU workers, one job on each.
    let mut c = Cluster::with(dir, scheduler, endpoint, &["n1", "n2"]);
    let mut ids = Vec::new();
    for (i, go) in go.iter().enumerate() {
        let script = format!(
            "while [ ! -e {} ]; do sleep 0.0{}3; done; echo finished",
            go.display(),
            i + 1
        );
        let def = sh_def(&format!("waits{i}"), &script, 16);
        c.register(def);
        ids.push(c.submit(&format!("waits{i}"), &format!("waits{i}")));
    }
    c.wait_for("both jobs to run", || {
        ids.iter().all(|id| c.job(id)["status"] == "RUNNING")
    });
    // The scheduler goes away (kill -9) for the whole outage. Job b ends
    // during it; job a keeps running through it.
    std::mem::replace(
        &mut c._scheduler,
        start_scheduler_at("127.0.0.1:0", &c.dir.path().join("spare"), &[]).0,
    )
    .kill9();
    let lost_at = Instant::now();
    std::fs::write(&go[1], b"").unwrap();
    wait_for("job b's task to end during the outage", || {
        running_with("go-b") == 0
    });
    // The outage is the scenario itself: nothing to wait for but time.
    std::thread::sleep(outage.saturating_sub(lost_at.elapsed()));
    assert_eq!(running_with("go-a"), 1, "job a runs through the outage");
    let (restarted, endpoint) = start_scheduler_at(&listen, &state, &args);
    c._scheduler = restarted;
    assert_eq!(c.endpoint, endpoint);
    let b = c.wait_done(&ids[1]);
    assert_eq!(
        b["status"], "SUCCEEDED",
        "the end that happened during the outage is reported: {b}"
    );
    assert_eq!(
        c.job(&ids[0])["status"],
        "RUNNING",
        "job a still runs after reconciliation"
    );
    std::fs::write(&go[0], b"").unwrap();
    let a = c.wait_done(&ids[0]);
    assert_eq!(a["status"], "SUCCEEDED", "{a}");
    let same_attempt = [&a, &b]
        .iter()
        .filter(|j| j["attempts"].as_array().map(Vec::len) == Some(1))
        .count();
    figure(&format!(
        "outage {}s {}/2 jobs kept",
        outage.as_secs(),
        same_attempt
    ));
    assert_eq!(same_attempt, 2, "both jobs finished in their first attempt");
    assert!(c.logs(&ids[0]).contains("finished"));
}

/// Processes whose command line contains `pattern`.
fn running_with(pattern: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| String::from_utf8_lossy(c).contains(pattern))
        .count()
}

/// The tests of this file run one at a time: they count mounts, processes
/// and namespaces on the host, and one of them mounts a tmpfs.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A size-limited tmpfs mounted for the test, unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn a_full_disk_answers_server_exception_and_acknowledges_only_what_it_stored() {
    let _serial = serial();
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test mounts a small tmpfs and needs root (CI runs as root)"
    );
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &disk,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=4m"),
    )
    .expect("mount a 4 MiB tmpfs");
    let _disk = SmallDisk(disk.clone());
    let state = disk.join("state");
    let listen = format!("127.0.0.1:{}", free_port());
    let (sched, endpoint) = start_scheduler_at(&listen, &state, &[]);
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    register_true(&http, &endpoint, None);
    // Leave the database about 256 KiB.
    let filler = disk.join("filler");
    let free = nix::sys::statvfs::statvfs(&disk).unwrap();
    let bytes = (free.blocks_available() * free.fragment_size()).saturating_sub(256 << 10);
    std::fs::write(&filler, vec![0u8; bytes as usize]).unwrap();

    let mut acked = Vec::new();
    let mut refused = Vec::new();
    let mut other = Vec::new();
    let submit = |name: &str| {
        call(
            &http,
            &format!("{endpoint}/v1/submitjob"),
            &json!({ "jobName": name, "jobQueue": "default", "jobDefinition": "d",
                     "parameters": { "pad": "x".repeat(2000) } }),
        )
    };
    for i in 0..5000 {
        let name = format!("full-{i}");
        let (s, v) = submit(&name);
        match s {
            200 => acked.push((v["jobId"].as_str().unwrap().to_string(), name)),
            500 if v["__type"] == "ServerException" => refused.push((name, v)),
            _ => other.push((s, v)),
        }
        if refused.len() >= 20 {
            break;
        }
    }
    assert!(other.is_empty(), "only 200 or ServerException: {other:?}");
    assert!(
        refused.len() >= 20,
        "the disk filled up ({} acknowledged)",
        acked.len()
    );
    let msg = refused[0].1["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // Space comes back: the scheduler works again without a restart.
    std::fs::remove_file(&filler).unwrap();
    let (s, v) = submit("after-space");
    assert_eq!(s, 200, "submits work again once there is space: {v}");
    acked.push((
        v["jobId"].as_str().unwrap().to_string(),
        "after-space".into(),
    ));

    // kill -9 and restart: everything acknowledged is there; nothing that
    // was refused is.
    sched.kill9();
    let (_sched, endpoint) = start_scheduler_at(&listen, &state, &[]);
    let jobs = list_jobs(&http, &endpoint, "RUNNABLE", None);
    let stored: BTreeMap<String, String> = jobs
        .iter()
        .map(|j| {
            (
                j["jobName"].as_str().unwrap().to_string(),
                j["jobId"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let kept = acked
        .iter()
        .filter(|(id, name)| stored.get(name) == Some(id))
        .count();
    let ghosts = refused
        .iter()
        .filter(|(name, _)| stored.contains_key(name))
        .count();
    figure(&format!(
        "disk full {kept}/{} acked kept, {} refused, {ghosts} stored unacked",
        acked.len(),
        refused.len()
    ));
    println!("the refusal said: {msg}");
    assert_eq!(kept, acked.len(), "every acknowledged job is stored");
    assert_eq!(ghosts, 0, "no refused submission was stored");
    assert_eq!(jobs.len(), acked.len());
    assert!(
        msg.contains("space") || msg.contains("full") || msg.contains("disk"),
        "the message says what is wrong: {msg}"
    );
}

/// What a finished job could leave behind, counted on the host.
#[derive(Debug, PartialEq, Eq, Clone)]
struct Footprint {
    mounts: usize,
    mount_namespaces: usize,
    cgroups: usize,
    processes: usize,
    shm_files: usize,
}

fn footprint(worker_pids: &[u32], cgroup_prefix: &str) -> Footprint {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    let mut namespaces = BTreeSet::new();
    let mut processes = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(ns) = std::fs::read_link(e.path().join("ns/mnt")) {
            namespaces.insert(ns);
        }
        // Descendants of the workers (their tasks and anything those left).
        let mut p = pid;
        for _ in 0..64 {
            let Some(pp) = std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(1)?
                        .parse::<u32>()
                        .ok()
                })
            else {
                break;
            };
            if worker_pids.contains(&pp) {
                processes += 1;
                break;
            }
            if pp <= 1 {
                break;
            }
            p = pp;
        }
    }
    let mut cgroups = 0;
    let mut stack = vec![std::path::PathBuf::from("/sys/fs/cgroup")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let n = e.file_name().to_string_lossy().to_string();
                if n.starts_with(cgroup_prefix) || d.to_string_lossy().contains(cgroup_prefix) {
                    cgroups += 1;
                }
                stack.push(e.path());
            }
        }
    }
    // Orphans the jobs left in the background (reparented away from the
    // worker, so counted by name).
    processes += running_with("sleep 120.0451");
    let shm_files = std::fs::read_dir("/dev/shm").unwrap().count();
    Footprint {
        mounts,
        mount_namespaces: namespaces.len(),
        cgroups,
        processes,
        shm_files,
    }
}

#[test]
fn a_thousand_jobs_in_a_row_leave_nothing_behind() {
    let _serial = serial();
    let jobs: usize = std::env::var("SHOAL_FAULT_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let c = Cluster::start(&["leak1"]);
    let pids: Vec<u32> = c.workers.iter().map(|(_, p)| p.0.id()).collect();
    c.register(sh_def(
        "litter",
        "echo x > /dev/shm/litter-$AWS_BATCH_JOB_ARRAY_INDEX; sleep 120.0451 & echo ok",
        8,
    ));
    // Task cgroups are named after the task's directory, which starts with
    // the job id; the worker's own cgroup holds them.
    let before = footprint(&pids, "shoal-leak1");
    let (s, v) = call(
        &c.http,
        &format!("{}/v1/submitjob", c.endpoint),
        &json!({ "jobName": "litter", "jobQueue": "default", "jobDefinition": "litter",
                 "arrayProperties": { "size": jobs } }),
    );
    assert_eq!(s, 200, "{v}");
    let id = v["jobId"].as_str().unwrap().to_string();
    let started = Instant::now();
    let j = c.wait_done(&id);
    let took = started.elapsed();
    assert_eq!(j["status"], "SUCCEEDED", "{j}");
    let succeeded = j["arrayProperties"]["statusSummary"]["SUCCEEDED"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(succeeded as usize, jobs, "{j}");
    // Task cleanup runs as each task ends; the reports can come first, so
    // wait for the footprint to settle back.
    let mut after = footprint(&pids, "shoal-leak1");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut delay = Duration::from_millis(5);
    while after != before && Instant::now() < deadline {
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(200));
        after = footprint(&pids, "shoal-leak1");
    }
    let leaks = after.mounts.saturating_sub(before.mounts)
        + after
            .mount_namespaces
            .saturating_sub(before.mount_namespaces)
        + after.cgroups.saturating_sub(before.cgroups)
        + after.processes.saturating_sub(before.processes)
        + after.shm_files.saturating_sub(before.shm_files);
    figure(&format!("leaks {leaks} after {jobs} jobs"));
    println!(
        "{jobs} jobs in {:.1} s; before {before:?}, after {after:?}",
        took.as_secs_f64()
    );
    assert_eq!(after, before, "nothing is left behind");
}
