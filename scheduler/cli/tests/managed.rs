//! MANAGED compute environments whose nodes come from a real Slurm
//! (issue 18), against the emulated cluster of `scripts/slurm-cluster.sh`:
//! an allocation submitted for what waits, its workers joining over mutual
//! TLS with its own certificate, MPI across them with a private /dev/shm,
//! the idle allocation ended, a long job in an allocation of its own, an
//! allocation cancelled under a gang and the retry in a new one, a
//! partition that does not exist making the environment INVALID (and VALID
//! again once fixed and updated), a scheduler killed beside an allocation
//! taking it up again, a scheduler run by an unprivileged user whose
//! workers give jobs /dev/shm through a user namespace, and nothing left
//! after. One test: one Slurm cluster. Needs root (CI has).

mod common;

use common::slurm::Slurm;
use common::{call, Proc, SHOAL};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Wait up to `secs` for `f`.
fn wait_long(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `shoal` as any uid may run it (the launch agent runs as the job's
/// user, and the nodes run the scheduler's binary).
fn shared_copy(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let to = dir.join("shoal");
    std::fs::copy(SHOAL, &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
    to
}

fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Api {
    http: reqwest::blocking::Client,
    endpoint: String,
}

impl Api {
    fn post(&self, op: &str, body: Value) -> Value {
        let (status, v) = call(&self.http, &format!("{}/v1/{op}", self.endpoint), &body);
        assert_eq!(status, 200, "{op}: {v}");
        v
    }
    fn job(&self, id: &str) -> Value {
        self.post("describejobs", json!({ "jobs": [id] }))["jobs"][0].clone()
    }
    fn ce(&self, name: &str) -> Value {
        self.post(
            "describecomputeenvironments",
            json!({ "computeEnvironments": [name] }),
        )["computeEnvironments"][0]
            .clone()
    }
    fn wait_status(&self, id: &str, want: &[&str], secs: u64) -> Value {
        let mut last = Value::Null;
        wait_long(&format!("job {id} to be {want:?}"), secs, || {
            last = self.job(id);
            want.contains(&last["status"].as_str().unwrap_or(""))
        });
        last
    }
    fn submit(&self, queue: &str, def: &str) -> String {
        self.post(
            "submitjob",
            json!({ "jobName": def, "jobQueue": queue, "jobDefinition": def }),
        )["jobId"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// Shoal's Slurm jobs now: (job id, name, state).
fn shoal_jobs(slurm: &Slurm) -> Vec<(String, String, String)> {
    let out = slurm.run("squeue", &["-h", "-o", "%i %j %T"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && f[1].starts_with("shoal."))
                .then(|| (f[0].to_string(), f[1].to_string(), f[2].to_string()))
        })
        .collect()
}

fn single_def(api: &Api, name: &str, cmd: &str, timeout_s: u64, attempts: u32) {
    api.post(
        "registerjobdefinition",
        json!({ "jobDefinitionName": name, "type": "container",
                "containerProperties": { "command": ["sh", "-c", cmd],
                  "resourceRequirements": [{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"128"}] },
                "timeout": { "attemptDurationSeconds": timeout_s },
                "retryStrategy": { "attempts": attempts } }),
    );
}

/// The allocation (`ENV.SEQ`) a job's attempt ran in: from the node in
/// its container instance.
fn allocation_of(container: &Value) -> String {
    let arn = container["containerInstanceArn"].as_str().unwrap_or("");
    let node = arn.rsplit('/').next().unwrap_or("");
    let mut parts = node.splitn(3, '.');
    format!(
        "{}.{}",
        parts.next().unwrap_or(""),
        parts.next().unwrap_or("")
    )
}

#[test]
fn managed_environments_get_their_nodes_from_slurm_allocations() {
    if !nix::unistd::geteuid().is_root() {
        panic!(
            "this test runs a Slurm cluster in network namespaces and needs root (CI runs as root)"
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let shoal = shared_copy(bin.path());
    let mut slurm = Slurm::up(&tmp.path().join("slurm"), 3, 1);
    let bridge = format!("10.202.{}.254", slurm.subnet);

    // The cluster CA, and the scheduler's certificate for the address the
    // nodes reach it at; the scheduler keeps the CA's key to issue each
    // allocation's certificate.
    let tls = tmp.path().join("tls");
    ok(Command::new(&shoal).arg("ca").arg("init").arg(&tls));
    ok(Command::new(&shoal)
        .args(["ca", "issue"])
        .arg(&tls)
        .args(["scheduler", "--ip", &bridge]));
    let state = tmp.path().join("state");
    let log = tmp.path().join("scheduler.log");
    // The worker listener keeps its port across a restart: the workers
    // come back to it.
    let worker_port = std::net::TcpListener::bind(format!("{bridge}:0"))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let start = || {
        let mut cmd = Command::new(&shoal);
        cmd.args(["scheduler", "--listen", "127.0.0.1:0", "--state"])
            .arg(&state)
            .args([
                "--worker-listen",
                &format!("{bridge}:{worker_port}"),
                "--tls-dir",
            ])
            .arg(&tls)
            .args(["--metrics-listen", "none"])
            .env("SLURM_CONF", &slurm.conf)
            .env("SHOAL_LOG", "info")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap(),
            ));
        let (sched, endpoint) = common::spawn_scheduler(cmd);
        let api = Api {
            http: reqwest::blocking::Client::new(),
            endpoint: endpoint.clone(),
        };
        (sched, endpoint, api)
    };
    let (sched, endpoint, api) = start();
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();

    // 1. boto3: the environment, its queue, a 2-node MPI job.
    let said = common::run_boto3_check("boto3_slurm_check.py", &[&endpoint, "3"]);
    let mpi = said
        .lines()
        .find_map(|l| l.strip_prefix("JOB "))
        .expect("JOB line")
        .to_string();
    // Shoal asks Slurm for one allocation for it, seen in squeue.
    let mut seen = Vec::new();
    wait_long("the allocation in squeue", 60, || {
        seen = shoal_jobs(&slurm);
        !seen.is_empty()
    });
    assert_eq!(seen.len(), 1, "one allocation: {seen:?}");
    assert_eq!(seen[0].1, "shoal.slurm.1");
    let j = api.wait_status(&mpi, &["SUCCEEDED", "FAILED"], 120);
    assert_eq!(j["status"], "SUCCEEDED", "{j}\n{}", log_text());
    assert_eq!(shoal_jobs(&slurm).len(), 1, "still one allocation");
    // Two workers of it registered, labelled with the allocation.
    let ce = api.ce("slurm");
    let allocs = ce["allocations"].as_array().cloned().unwrap_or_default();
    assert_eq!(allocs.len(), 1, "{ce}");
    assert_eq!(allocs[0]["slurmJobId"], seen[0].0.as_str(), "{ce}");
    assert_eq!(allocs[0]["state"], "RUNNING", "{ce}");
    assert_eq!(
        allocs[0]["workers"].as_array().map(Vec::len),
        Some(2),
        "{ce}"
    );
    assert!(allocs[0]["endTime"].as_u64().is_some(), "{ce}");
    assert_eq!(ce["computeResources"]["desiredvCpus"], 2, "{ce}");
    // Its certificate: for this allocation, its key readable by its owner
    // only.
    {
        use std::os::unix::fs::PermissionsExt;
        let d = state.join("allocations").join("slurm.1");
        let mode = std::fs::metadata(d.join("worker.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "worker.key is {mode:o}");
        let dmode = std::fs::metadata(&d).unwrap().permissions().mode();
        assert_eq!(dmode & 0o777, 0o700, "{} is {dmode:o}", d.display());
    }
    let (_, nodes) = call(
        &api.http,
        &format!("{endpoint}/shoal/v1/listnodes"),
        &json!({}),
    );
    let listed = nodes.to_string();
    assert!(
        listed.contains("shoal.allocation") && listed.contains(&seen[0].0),
        "{listed}"
    );
    // mpirun spanned both nodes (two addresses of the Slurm cluster),
    // each rank with 96 MiB of /dev/shm and no SLURM_* variables.
    let logs = ok(Command::new(&shoal).args(["logs", &mpi, "--endpoint", &endpoint]));
    let ranks: Vec<&str> = logs.lines().filter(|l| l.starts_with("rank ")).collect();
    assert_eq!(ranks.len(), 2, "{logs}");
    let mut addrs: Vec<&str> = ranks
        .iter()
        .map(|l| l.split_whitespace().nth(3).unwrap_or(""))
        .collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 2, "two nodes: {logs}");
    for r in &ranks {
        assert!(r.contains(&format!("10.202.{}.", slurm.subnet)), "{r}");
        assert!(r.ends_with("shm 96 slurm 0"), "{r}");
    }
    assert!(logs.contains("main slurm 0"), "{logs}");
    // After the idle timeout the allocation is gone, desiredvCpus back at
    // minvCpus.
    wait_long("the idle allocation to end", 60, || {
        shoal_jobs(&slurm).is_empty()
    });
    wait_long("desiredvCpus back at 0", 30, || {
        let ce = api.ce("slurm");
        ce["computeResources"]["desiredvCpus"] == 0 && ce["allocations"].is_null()
    });

    // 2. A job whose timeout outlasts every running allocation gets one of
    // its own: two short jobs get one allocation of two nodes; with one of
    // them free, a long job waits for a node that lasts and gets one.
    single_def(&api, "short", "sleep 20", 60, 1);
    single_def(&api, "quick", "true", 60, 1);
    single_def(&api, "long", "true", 600, 1);
    let short = api.submit("slurm", "short");
    let quick = api.submit("slurm", "quick");
    api.wait_status(&short, &["RUNNING"], 60);
    let jq = api.wait_status(&quick, &["SUCCEEDED", "FAILED"], 60);
    assert_eq!(jq["status"], "SUCCEEDED", "{jq}");
    let long = api.submit("slurm", "long");
    let mut reason = String::new();
    wait_long("the long job's reason", 30, || {
        let j = api.job(&long);
        reason = j["statusReason"].as_str().unwrap_or("").to_string();
        reason.contains("at least 600 s left") || j["status"] == "SUCCEEDED"
    });
    assert!(reason.contains("at least 600 s left"), "{reason}");
    let jl = api.wait_status(&long, &["SUCCEEDED", "FAILED"], 90);
    assert_eq!(jl["status"], "SUCCEEDED", "{jl}");
    let js = api.wait_status(&short, &["SUCCEEDED", "FAILED"], 60);
    assert_eq!(js["status"], "SUCCEEDED", "{js}");
    let (a_short, a_quick, a_long) = (
        allocation_of(&js["attempts"][0]["container"]),
        allocation_of(&jq["attempts"][0]["container"]),
        allocation_of(&jl["attempts"][0]["container"]),
    );
    assert!(
        a_short.starts_with("slurm.") && a_long.starts_with("slurm."),
        "{js}\n{jl}"
    );
    assert_eq!(a_short, a_quick, "the short jobs shared one allocation");
    assert_ne!(a_short, a_long, "the long job had an allocation of its own");
    wait_long("both allocations to end", 60, || {
        shoal_jobs(&slurm).is_empty()
    });

    // 3. scancel of an allocation under a gang: the gang fails naming the
    // node, and its second attempt runs in a new allocation.
    let node = |cmd: &str| {
        json!({ "command": ["sh", "-c", cmd],
                "resourceRequirements": [{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"128"}],
                "linuxParameters": { "sharedMemorySize": 32 } })
    };
    api.post(
        "registerjobdefinition",
        json!({ "jobDefinitionName": "gang", "type": "multinode",
                "nodeProperties": { "numNodes": 2, "mainNode": 0, "nodeRangeProperties": [
                  { "targetNodes": "0", "container": node("[ \"$AWS_BATCH_JOB_ATTEMPT\" = 1 ] && sleep 300; exit 0") },
                  { "targetNodes": "1", "container": node("sleep infinity") } ] },
                "timeout": { "attemptDurationSeconds": 400 },
                "retryStrategy": { "attempts": 2 } }),
    );
    let gang = api.submit("slurm", "gang");
    api.wait_status(&gang, &["RUNNING"], 90);
    let first = shoal_jobs(&slurm);
    assert_eq!(first.len(), 1, "{first:?}");
    // The scheduler killed under it and started again: it still knows the
    // allocation, and its workers come back with the gang still running.
    sched.kill9();
    let (sched, endpoint, api) = start();
    let _ = &endpoint;
    wait_long("the workers to come back", 60, || {
        let ce = api.ce("slurm");
        ce["allocations"][0]["workers"].as_array().map(Vec::len) == Some(2)
            && ce["allocations"][0]["slurmJobId"] == first[0].0.as_str()
    });
    assert_eq!(api.job(&gang)["status"], "RUNNING");
    assert_eq!(shoal_jobs(&slurm).len(), 1, "no second allocation");
    slurm.run("scancel", &[&first[0].0]);
    let jg = api.wait_status(&gang, &["SUCCEEDED", "FAILED"], 120);
    assert_eq!(jg["status"], "SUCCEEDED", "{jg}\n{}", log_text());
    let attempts = jg["attempts"].as_array().cloned().unwrap_or_default();
    assert_eq!(attempts.len(), 2, "{jg}");
    let why = attempts[0]["statusReason"].as_str().unwrap_or("");
    let first_alloc = allocation_of(&attempts[0]["container"]);
    assert!(
        why.contains(&format!("{first_alloc}.")),
        "the first attempt's reason names its node: {why}"
    );
    assert_ne!(
        allocation_of(&attempts[0]["container"]),
        allocation_of(&attempts[1]["container"]),
        "{jg}"
    );
    wait_long("the gang's allocation to end", 60, || {
        shoal_jobs(&slurm).is_empty()
    });

    // 4. sbatch failing (a partition Slurm does not have): INVALID with
    // Slurm's message after at most 3 tries, and nothing more submitted.
    api.post(
        "createcomputeenvironment",
        json!({ "computeEnvironmentName": "nowhere", "type": "MANAGED",
                "computeResources": { "type": "EC2", "maxvCpus": 2, "subnets": ["s"] },
                "tags": { "shoal:provider": "slurm", "shoal:slurm-partition": "nosuchpartition",
                          "shoal:idle-timeout-seconds": "3" } }),
    );
    api.post(
        "createjobqueue",
        json!({ "jobQueueName": "nowhere", "priority": 1,
                "computeEnvironmentOrder": [{ "order": 1, "computeEnvironment": "nowhere" }] }),
    );
    let stuck = api.submit("nowhere", "long");
    let mut ce = Value::Null;
    wait_long("the environment to be INVALID", 60, || {
        ce = api.ce("nowhere");
        ce["status"] == "INVALID"
    });
    let reason = ce["statusReason"].as_str().unwrap_or("");
    assert!(
        reason.to_lowercase().contains("invalid partition"),
        "Slurm's message: {reason}"
    );
    let tries = log_text()
        .matches("asking Slurm for allocation nowhere.")
        .count();
    assert!(
        (1..=3).contains(&tries),
        "at most 3 sbatch tries, {tries}:\n{}",
        log_text()
    );
    assert_eq!(api.job(&stuck)["status"], "RUNNABLE");
    // Fixed (the partition tag) and updated: VALID again, and the job runs.
    let arn = ce["computeEnvironmentArn"].as_str().unwrap().to_string();
    let (status, v) = call(
        &api.http,
        &format!("{}/v1/tags/{arn}", api.endpoint),
        &json!({ "tags": { "shoal:slurm-partition": "batch" } }),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        api.ce("nowhere")["status"],
        "INVALID",
        "a tag alone does not revive it"
    );
    api.post(
        "updatecomputeenvironment",
        json!({ "computeEnvironment": "nowhere", "computeResources": { "maxvCpus": 1 } }),
    );
    let ce = api.ce("nowhere");
    assert_eq!(ce["status"], "VALID", "{ce}");
    assert_eq!(ce["computeResources"]["maxvCpus"], 1, "{ce}");
    assert_eq!(ce["computeResources"]["type"], "EC2", "the rest kept: {ce}");
    let js = api.wait_status(&stuck, &["SUCCEEDED", "FAILED"], 90);
    assert_eq!(js["status"], "SUCCEEDED", "{js}");
    assert!(
        allocation_of(&js["attempts"][0]["container"]).starts_with("nowhere."),
        "{js}"
    );
    wait_long("its allocation to end", 60, || {
        shoal_jobs(&slurm).is_empty()
    });
    // The workers of ended allocations are forgotten.
    wait_long("no workers listed", 30, || {
        let (_, nodes) = call(
            &api.http,
            &format!("{}/shoal/v1/listnodes", api.endpoint),
            &json!({}),
        );
        !nodes.to_string().contains("slurm.") && !nodes.to_string().contains("nowhere.")
    });

    // 6. A scheduler run by an unprivileged user: its allocations' workers
    // are unprivileged too, and give jobs a private /dev/shm of their size
    // through a user namespace.
    let (uid, gid) = {
        let u = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        (u.uid, u.gid)
    };
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let udir = tmp.path().join("unprivileged");
    let utls = udir.join("tls");
    std::fs::create_dir_all(&utls).unwrap();
    for f in ["ca.pem", "ca.key", "scheduler.pem", "scheduler.key"] {
        std::fs::copy(tls.join(f), utls.join(f)).unwrap();
    }
    for p in [udir.clone(), utls.clone()]
        .into_iter()
        .chain(["ca.pem", "ca.key", "scheduler.pem", "scheduler.key"].map(|f| utls.join(f)))
    {
        nix::unistd::chown(&p, Some(uid), Some(gid)).unwrap();
    }
    let uport = std::net::TcpListener::bind(format!("{bridge}:0"))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(&shoal)
        .args(["scheduler", "--listen", "127.0.0.1:0", "--state"])
        .arg(udir.join("state"))
        .args(["--worker-listen", &format!("{bridge}:{uport}"), "--tls-dir"])
        .arg(&utls)
        .args(["--metrics-listen", "none"])
        .env("SLURM_CONF", &slurm.conf)
        .env("SHOAL_LOG", "info")
        .env("HOME", &udir)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::File::create(tmp.path().join("unprivileged.log")).unwrap(),
        ));
    let (usched, uendpoint) = common::spawn_scheduler(cmd);
    let uapi = Api {
        http: reqwest::blocking::Client::new(),
        endpoint: uendpoint.clone(),
    };
    uapi.post(
        "createcomputeenvironment",
        json!({ "computeEnvironmentName": "userns", "type": "MANAGED",
                "computeResources": { "type": "EC2", "maxvCpus": 1, "subnets": ["s"] },
                "tags": { "shoal:provider": "slurm", "shoal:idle-timeout-seconds": "600" } }),
    );
    uapi.post(
        "createjobqueue",
        json!({ "jobQueueName": "userns", "priority": 1,
                "computeEnvironmentOrder": [{ "order": 1, "computeEnvironment": "userns" }] }),
    );
    uapi.post(
        "registerjobdefinition",
        json!({ "jobDefinitionName": "shm", "type": "container",
                "containerProperties": {
                  "command": ["sh", "-c", "echo map $(cat /proc/self/uid_map) shm $(df -m /dev/shm | tail -1 | tr -s ' ' | cut -d' ' -f2) slurm $(env | grep -c ^SLURM_); touch /dev/shm/unprivileged-mine"],
                  "resourceRequirements": [{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"128"}],
                  "linuxParameters": { "sharedMemorySize": 48 } } }),
    );
    let uj = uapi.submit("userns", "shm");
    let j = uapi.wait_status(&uj, &["SUCCEEDED", "FAILED"], 90);
    assert_eq!(
        j["status"],
        "SUCCEEDED",
        "{j}\n{}",
        std::fs::read_to_string(tmp.path().join("unprivileged.log")).unwrap_or_default()
    );
    let out = ok(Command::new(&shoal).args(["logs", &uj, "--endpoint", &uendpoint]));
    assert!(
        // Root inside its user namespace, the worker's user (nobody) outside.
        out.contains(&format!("map 0 {} 1 shm 48 slurm 0", uid.as_raw())),
        "{out}"
    );
    assert!(!Path::new("/dev/shm/unprivileged-mine").exists());
    // Its allocation would idle for 10 minutes: deleting the environment
    // ends it now.
    assert_eq!(shoal_jobs(&slurm).len(), 1);
    uapi.post(
        "updatejobqueue",
        json!({ "jobQueue": "userns", "state": "DISABLED" }),
    );
    uapi.post("deletejobqueue", json!({ "jobQueue": "userns" }));
    uapi.post(
        "updatecomputeenvironment",
        json!({ "computeEnvironment": "userns", "state": "DISABLED" }),
    );
    uapi.post(
        "deletecomputeenvironment",
        json!({ "computeEnvironment": "userns" }),
    );
    wait_long("the deleted environment's allocation to end", 60, || {
        shoal_jobs(&slurm).is_empty()
    });
    let udirs = udir.join("state").join("allocations");
    wait_long(
        "the deleted environment's allocation directory to go",
        20,
        || std::fs::read_dir(&udirs).map_or(true, |mut r| r.next().is_none()),
    );
    drop::<Proc>(usched);

    // 5. Nothing left: no Slurm jobs, no workers, no namespaces or mounts.
    assert!(shoal_jobs(&slurm).is_empty());
    // The allocations' directories (their certificates) are gone with them.
    {
        let d = state.join("allocations");
        let empty = || std::fs::read_dir(&d).map_or(true, |mut r| r.next().is_none());
        let deadline = Instant::now() + Duration::from_secs(20);
        while !empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            empty(),
            "{} is not empty: {}\n{}",
            d.display(),
            ok(Command::new("find")
                .arg(&d)
                .arg("-maxdepth")
                .arg("4")
                .arg("-ls")),
            std::fs::read_to_string(tmp.path().join("unprivileged.log")).unwrap_or_default()
        );
    }
    common::figure(&format!(
        "slurm: scancel under a 2-node gang -> retried in a new allocation, SUCCEEDED in {} attempts; \
         scheduler kill -9 beside a running allocation -> adopted, 2 workers back; \
         bad partition -> INVALID after {tries} sbatch tries, VALID again after update",
        attempts.len()
    ));
    drop::<Proc>(sched);
    let namespaces = slurm.namespaces();
    slurm.down();
    let listed = ok(Command::new("ip").args(["netns", "list"]));
    for ns in namespaces {
        assert!(!listed.contains(&ns), "{ns} is left: {listed}");
    }
    let t = tmp.path().to_string_lossy().into_owned();
    let b = bin.path().to_string_lossy().into_owned();
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let cmd = std::fs::read_to_string(e.path().join("cmdline")).ok()?;
            (cmd.contains(&t) || cmd.contains(&b)).then_some(cmd.replace('\0', " "))
        })
        .collect();
    assert!(left.is_empty(), "processes left: {left:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&t), "mounts left under {t}:\n{mounts}");
}
