//! `shoal cluster up` end to end, as CI runs it (root): network-namespace
//! nodes, MPI across the gang through the launch agent, the /dev/shm check
//! before mpirun, and nothing left behind after `cluster down`.
//! One test, so that no other cluster of this binary runs beside it.

mod common;

use common::{wait_for, SHOAL};
use serde_json::{json, Value};
use std::process::Command;

fn post(http: &reqwest::blocking::Client, url: &str, body: Value, key: (&str, &str)) -> Value {
    let (status, v) = common::signed_call(http, url, &body, key);
    assert_eq!(status, 200, "{url}: {v}");
    v
}

fn node(cmd: &[&str], shm: i32) -> Value {
    json!({ "command": cmd,
            "resourceRequirements": [{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"512"}],
            "linuxParameters": { "sharedMemorySize": shm } })
}

/// An MPI job across two nodes. It runs as the user running the test (who
/// built the binaries mpirun's launch agent runs): a root test run asks for
/// root, which `cluster up`'s workers allow (`--allow-root-jobs`).
fn mpi_def(name: &str, shm: i32) -> Value {
    let main = "mpirun --mca pml ob1 --mca btl self,tcp -np 2 --hostfile $SHOAL_HOSTFILE sh -c 'echo rank $OMPI_COMM_WORLD_RANK on $(hostname -I) as $(id -u)'";
    let me = nix::unistd::getuid().to_string();
    let mut def = json!({ "jobDefinitionName": name, "type": "multinode",
            "nodeProperties": { "numNodes": 2, "mainNode": 0, "nodeRangeProperties": [
              { "targetNodes": "0", "container": node(&["sh", "-c", main], shm) },
              { "targetNodes": "1", "container": node(&["sleep", "infinity"], shm) } ] } });
    for r in 0..2 {
        def["nodeProperties"]["nodeRangeProperties"][r]["container"]["user"] = json!(me);
    }
    def
}

#[test]
fn cluster_runs_mpi_across_namespaces_and_leaves_nothing_behind() {
    if !nix::unistd::geteuid().is_root() {
        panic!("this test builds network namespaces and needs root (CI runs as root)");
    }
    // The nodes' state sits in a 0700 directory: jobs must read what the
    // worker gives them all the same.
    let dir = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    // The launch agent runs as the job's user: a copy of the binary that
    // any uid may run (the checkout may sit where only its owner enters).
    let bin = tempfile::tempdir().unwrap();
    let shoal = shared_copy(bin.path());
    let (mut up, endpoint, ready) = common::netns::cluster_up(&shoal, dir.path(), 2, &[]);
    assert!(ready.starts_with("ready: 2 nodes"), "{ready}");
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("cluster.json")).unwrap())
            .unwrap();
    let http = reqwest::blocking::Client::new();
    // Workers joined over mutual TLS; the API listener refuses them.
    assert!(
        record["worker_endpoint"]
            .as_str()
            .is_some_and(|w| w.starts_with("https://")),
        "{record}"
    );
    for f in [
        "ca.pem",
        "ca.key",
        "scheduler.pem",
        "node1.pem",
        "node2.key",
    ] {
        assert!(dir.path().join("tls").join(f).is_file(), "tls/{f}");
    }
    let (status, v) = common::call(
        &http,
        &format!("{endpoint}/shoal/v1/poll"),
        &json!({ "name": "node1" }),
    );
    assert_eq!(status, 403, "a worker op on the API listener: {v}");
    // The cluster's scheduler requires its key (DIR/credentials).
    let creds = dir.path().join("credentials");
    let (key, secret) = common::first_key(&creds);
    let (s, v) = common::call(
        &http,
        &format!("{endpoint}/v1/describejobqueues"),
        &json!({}),
    );
    assert_eq!(s, 403, "an unsigned request to the cluster is refused: {v}");
    let aws = |op: &str, body: Value| {
        post(
            &http,
            &format!("{endpoint}/v1/{op}"),
            body,
            (key.as_str(), secret.as_str()),
        )
    };
    let submit = |def: &str| {
        aws(
            "submitjob",
            json!({ "jobName": def, "jobQueue": "default", "jobDefinition": def }),
        )["jobId"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let wait_done = |id: &str| {
        let mut last = Value::Null;
        wait_for(&format!("job {id}"), || {
            last = aws("describejobs", json!({ "jobs": [id] }))["jobs"][0].clone();
            matches!(last["status"].as_str(), Some("SUCCEEDED" | "FAILED"))
        });
        last
    };

    // MPI across the two nodes: the ranks run in both namespaces.
    aws("registerjobdefinition", mpi_def("mpi", 96));
    let id = submit("mpi");
    let j = wait_done(&id);
    assert_eq!(j["status"], "SUCCEEDED", "{j}");
    // The workers' own ports (the launch agent's /exec, /logs) speak TLS,
    // and the scheduler hands log readers the CA to verify them.
    let loc = post(
        &http,
        &format!("{endpoint}/shoal/v1/logs"),
        json!({ "jobId": format!("{id}#1") }),
        (key.as_str(), secret.as_str()),
    );
    assert!(
        loc["url"]
            .as_str()
            .unwrap_or_default()
            .starts_with("https://")
            && loc["ca"].as_str().is_some(),
        "{loc}"
    );
    // `shoal logs JOB` with the cluster's key: its output.
    let logs_of = |job: &str| {
        let o = Command::new(SHOAL)
            .env("SHOAL_CREDENTIALS", &creds)
            .args(["logs", job, "--endpoint", &endpoint])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let logs = logs_of(&format!("{id}#0"));
    let addrs: std::collections::BTreeSet<&str> = logs
        .lines()
        .filter_map(|l| l.split(" on ").nth(1)?.split(" as ").next())
        .map(str::trim)
        .collect();
    assert_eq!(
        addrs.len(),
        2,
        "two ranks on two distinct node addresses: {logs}"
    );
    // Both ranks, the remote one started through the launch agent too, run
    // as the definition's user.
    let as_user = format!(" as {}", nix::unistd::getuid());
    assert_eq!(
        logs.lines()
            .filter(|l| l.starts_with("rank ") && l.trim_end().ends_with(&as_user))
            .count(),
        2,
        "{logs}"
    );
    assert!(!logs.contains("unhandled shell"), "{logs}");
    // The same as a transient uid of the job's own (no user named), which
    // cannot enter the 0700 state directory: it reads its hostfile where
    // the worker binds its task directory, and Open MPI finds a SHELL.
    let mut anon = mpi_def("mpi-anon", 96);
    for r in 0..2 {
        anon["nodeProperties"]["nodeRangeProperties"][r]["container"]
            .as_object_mut()
            .unwrap()
            .remove("user");
    }
    aws("registerjobdefinition", anon);
    let id = submit("mpi-anon");
    let j = wait_done(&id);
    let logs = logs_of(&format!("{id}#0"));
    assert_eq!(j["status"], "SUCCEEDED", "{j}\n{logs}");
    assert_eq!(
        logs.lines().filter(|l| l.starts_with("rank ")).count(),
        2,
        "{logs}"
    );
    assert!(
        !logs.lines().any(|l| l.trim_end().ends_with(&as_user)),
        "not as the test's user: {logs}"
    );
    assert!(!logs.contains("unhandled shell"), "{logs}");

    // Each node of a gang sees a 96 MiB /dev/shm and the AWS Batch variables.
    let env = "df -m /dev/shm | tail -1; hostname -I; env | grep ^AWS_BATCH_ | sort; b=${AWS_BATCH_JOB_ID%#*}; if [ \"$AWS_BATCH_JOB_NODE_INDEX\" = 0 ]; then i=0; while [ ! -e /tmp/$b.done ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done; rm -f /tmp/$b.done; else touch /tmp/$b.done; fi";
    aws(
        "registerjobdefinition",
        json!({ "jobDefinitionName": "env", "type": "multinode",
        "nodeProperties": { "numNodes": 2, "mainNode": 0, "nodeRangeProperties": [
          { "targetNodes": "0:", "container": node(&["sh", "-c", env], 96) } ] } }),
    );
    let id = submit("env");
    assert_eq!(wait_done(&id)["status"], "SUCCEEDED");
    let (main_log, other_log) = (logs_of(&format!("{id}#0")), logs_of(&format!("{id}#1")));
    let main_addr = main_log
        .lines()
        .nth(1)
        .unwrap_or_default()
        .trim()
        .to_string();
    assert!(
        main_addr.starts_with("10.201."),
        "the main node has its namespace's address: {main_log}"
    );
    for (n, out) in [(0, &main_log), (1, &other_log)] {
        let size: Option<u64> = out
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok());
        assert_eq!(size, Some(96), "node {n}: {out}");
        assert!(
            out.contains(&format!("AWS_BATCH_JOB_NODE_INDEX={n}")),
            "{out}"
        );
        assert!(out.contains("AWS_BATCH_JOB_NUM_NODES=2"), "{out}");
        assert!(out.contains("AWS_BATCH_JOB_MAIN_NODE_INDEX=0"), "{out}");
        assert!(
            out.contains(&format!(
                "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS={main_addr}"
            )),
            "{out}"
        );
    }
    assert_ne!(
        other_log.lines().nth(1).unwrap_or_default().trim(),
        main_addr,
        "two nodes, two addresses"
    );

    // Killing a worker mid-job fails the attempt, naming the node; the
    // cluster restarts the worker and the retry succeeds.
    let gang = "[ \"$AWS_BATCH_JOB_ATTEMPT\" = 2 ] || sleep 60.023";
    aws(
        "registerjobdefinition",
        json!({ "jobDefinitionName": "retry", "type": "multinode",
        "retryStrategy": { "attempts": 2 },
        "nodeProperties": { "numNodes": 2, "mainNode": 0, "nodeRangeProperties": [
          { "targetNodes": "0:", "container": node(&["sh", "-c", gang], 16) } ] } }),
    );
    let id = submit("retry");
    wait_for("the gang to run", || {
        aws("describejobs", json!({ "jobs": [&id] }))["jobs"][0]["status"] == "RUNNING"
    });
    let rec: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("cluster.json")).unwrap())
            .unwrap();
    let node2_pid = rec["children"][2].as_u64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(node2_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let j = wait_done(&id);
    assert_eq!(j["status"], "SUCCEEDED", "{j}");
    let first = j["attempts"][0]["statusReason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        first.contains("node2"),
        "the failed attempt names the node: {j}"
    );
    assert_eq!(j["attempts"].as_array().unwrap().len(), 2);

    // A /dev/shm too small for the ranks fails before mpirun starts.
    aws("registerjobdefinition", mpi_def("tiny", 1));
    let j = wait_done(&submit("tiny"));
    assert_eq!(j["status"], "FAILED", "{j}");
    let reason = j["statusReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("/dev/shm is 1 MiB")
            && reason.contains("raise linuxParameters.sharedMemorySize"),
        "{j}"
    );

    // 50 jobs that each leave a file in their /dev/shm.
    aws(
        "registerjobdefinition",
        json!({ "jobDefinitionName": "leak", "type": "container",
        "containerProperties": node(&["sh", "-c", "echo x > /dev/shm/shoal-cluster-test-$AWS_BATCH_JOB_ID"], 8) }),
    );
    let ids: Vec<String> = (0..50).map(|_| submit("leak")).collect();
    for id in &ids {
        assert_eq!(wait_done(id)["status"], "SUCCEEDED");
    }

    let down = Command::new(SHOAL)
        .args(["cluster", "down", "--dir"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(down.success());
    let _ = up.wait();

    // Nothing is left: processes, namespaces, bridge, cgroups, /dev/shm files.
    for pid in record["children"].as_array().unwrap() {
        let pid = pid.as_u64().unwrap();
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} is still there"
        );
    }
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let netns = String::from_utf8_lossy(&netns.stdout);
    for ns in record["namespaces"].as_array().unwrap() {
        assert!(
            !netns.contains(ns.as_str().unwrap()),
            "namespace {ns} is still there"
        );
    }
    let links = Command::new("ip").args(["link"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&links.stdout).contains(record["bridge"].as_str().unwrap()));
    let leftovers: Vec<String> = walk_cgroups()
        .into_iter()
        .filter(|p| p.contains("shoal-node"))
        .collect();
    assert!(leftovers.is_empty(), "cgroups left: {leftovers:?}");
    let shm: Vec<String> = std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("shoal-cluster-test-"))
        .collect();
    assert!(shm.is_empty(), "/dev/shm files reached the host: {shm:?}");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts.contains(dir.path().to_str().unwrap()),
        "mounts left under the cluster dir"
    );
}

/// A copy of the binary under test in `dir`, which every uid may enter and run.
fn shared_copy(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let to = dir.join("shoal");
    std::fs::copy(SHOAL, &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
    to
}

fn walk_cgroups() -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("/sys/fs/cgroup")];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(e.path().to_string_lossy().to_string());
                if out.len() < 100_000 {
                    stack.push(e.path());
                }
            }
        }
    }
    out
}
