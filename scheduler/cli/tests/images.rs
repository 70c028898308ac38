//! Jobs in container images through the scheduler (issue 14): a real
//! registry on loopback holding Shoal's test image, a root worker that
//! reaches it over plain HTTP, definitions registered and jobs submitted
//! with boto3 and over the API.

mod common;
#[path = "../../../worker/tests/common/registry.rs"]
mod registry;

use common::local::Cluster;
use registry::Registry;
use serde_json::{json, Value};
use std::process::Command;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A worker that reaches `reg` over plain HTTP, in a cluster of its own.
fn cluster_for(reg: &Registry) -> Cluster {
    let mut c = Cluster::start(&[]);
    c.add_worker_with("w1", &[], &["--insecure-registry", &reg.addr]);
    c
}

/// Overlay mounts on this machine under `dir` (a task's layer left
/// mounted would show here).
fn overlays_under(dir: &std::path::Path) -> usize {
    let d = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" - overlay ") && l.contains(&d))
        .count()
}

/// Task layers left in a worker's state directory.
fn layers_left(state: &std::path::Path) -> usize {
    std::fs::read_dir(state.join("tasks"))
        .map(|es| {
            es.flatten()
                .filter(|e| e.path().join("layer").exists())
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_job_registered_and_submitted_with_boto3_runs_in_its_image() {
    if !is_root() {
        eprintln!("skipped: jobs run in images on root workers only (run the tests as root)");
        return;
    }
    let reg = Registry::start();
    reg.push("shoal/test", "1", 0);
    let c = cluster_for(&reg);
    let image = format!("{}/shoal/test:1", reg.addr);
    let script = format!(
        "{}/tests/aws/boto3_image_check.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = Command::new("python3")
        .args([&script, &c.endpoint, &image])
        .output()
        .expect("python3 with boto3 (scripts/install-deps.sh, .venv/bin on PATH)");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = said
        .lines()
        .find(|l| l.starts_with("JOB "))
        .expect("JOB line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[2], "SUCCEEDED", "{line}");
    let log = c.logs(fields[1]);
    assert!(log.contains("only in the image"), "{log}");
    assert!(
        log.contains("FOO=definition IMAGE=1"),
        "the image's Env under the definition's: {log}"
    );
    assert!(log.contains("PWD=/work"), "the image's WorkingDir: {log}");
    assert!(log.contains("IMAGE-ROOT"), "{log}");
    let df = log
        .lines()
        .find(|l| l.contains("/dev/shm"))
        .expect("df's line");
    assert_eq!(df.split_whitespace().nth(1), Some("96"), "{df}");
    // Open MPI's launch agent runs inside the image (the host's binary and
    // libraries under /.shoal), though the image holds none of it.
    assert!(
        log.contains("Usage: shoal launch-agent <HOST> <COMMAND>"),
        "the launch agent in the image: {log}"
    );
    assert_eq!(overlays_under(c.dir.path()), 0);
    assert_eq!(layers_left(&c.dir.path().join("w1")), 0);
}

#[test]
fn twenty_jobs_of_an_uncached_image_make_one_pull_and_two_hundred_leave_nothing_behind() {
    if !is_root() {
        eprintln!("skipped: jobs run in images on root workers only (run the tests as root)");
        return;
    }
    let reg = Registry::start();
    let layer = reg.push("shoal/many", "2", 0);
    let c = cluster_for(&reg);
    c.register(json!({ "jobDefinitionName": "many", "type": "container",
        "containerProperties": { "image": format!("{}/shoal/many:2", reg.addr),
          "command": ["sh", "-c", "cat /shoal-image-marker"],
          "resourceRequirements": [{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"128"}] } }));
    let ids: Vec<String> = (0..20)
        .map(|i| c.submit(&format!("many{i}"), "many"))
        .collect();
    for id in &ids {
        let job = c.wait_done(id);
        assert_eq!(job["status"], "SUCCEEDED", "{job}");
    }
    assert_eq!(
        reg.blob_gets("shoal/many", &layer),
        1,
        "one pull for 20 jobs"
    );
    // 180 more (an array job): 200 image jobs in all.
    let array = c.aws(
        "submitjob",
        json!({ "jobName": "many-array", "jobQueue": "default", "jobDefinition": "many",
                "arrayProperties": { "size": 180 } }),
    )["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    let job = c.wait_done(&array);
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    assert_eq!(
        job["arrayProperties"]["statusSummary"]["SUCCEEDED"], 180,
        "{job}"
    );
    assert_eq!(reg.blob_gets("shoal/many", &layer), 1, "still one pull");
    assert_eq!(
        overlays_under(c.dir.path()),
        0,
        "no task layer left mounted"
    );
    assert_eq!(
        layers_left(&c.dir.path().join("w1")),
        0,
        "no task layer left"
    );
    assert_eq!(
        common::local::processes_running("cat /shoal-image-marker"),
        0
    );
}

#[test]
fn an_image_that_cannot_be_pulled_fails_as_cannot_pull_and_is_retried_on_it() {
    if !is_root() {
        eprintln!("skipped: jobs run in images on root workers only (run the tests as root)");
        return;
    }
    let reg = Registry::start();
    let c = cluster_for(&reg);
    c.register(json!({ "jobDefinitionName": "absent", "type": "container",
        "retryStrategy": { "attempts": 2, "evaluateOnExit": [
            { "onStatusReason": "CannotPullContainerError*", "action": "RETRY" },
            { "onReason": "*", "action": "EXIT" } ] },
        "containerProperties": { "image": format!("{}/shoal/absent:1", reg.addr),
          "command": ["true"],
          "resourceRequirements": [{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"128"}] } }));
    let id = c.submit("absent", "absent");
    let job: Value = c.wait_done(&id);
    assert_eq!(job["status"], "FAILED", "{job}");
    let reason = job["statusReason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("CannotPullContainerError: "), "{job}");
    assert!(
        reason.to_lowercase().contains("manifest unknown"),
        "the registry's reason: {reason}"
    );
    let attempts = job["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "retried on its status reason: {job}");
    // A malformed name never gets that far.
    let (status, body) = common::call(
        &c.http,
        &format!("{}/v1/registerjobdefinition", c.endpoint),
        &json!({ "jobDefinitionName": "bad", "type": "container",
                 "containerProperties": { "image": "Not/An:image:name", "command": ["true"] } }),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["__type"], "ClientException", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("containerProperties.image"),
        "{body}"
    );
}

#[test]
fn shoal_image_load_serves_jobs_where_no_registry_is_reached() {
    if !is_root() {
        eprintln!("skipped: jobs run in images on root workers only (run the tests as root)");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    registry::build_layout(&layout, "1", 0);
    let saved = work.path().join("saved.tar");
    registry::skopeo_copy(
        &format!("oci:{}:1", layout.display()),
        &format!("docker-archive:{}:site/offline:1", saved.display()),
    );
    let mut c = Cluster::start(&[]);
    let state = c.dir.path().join("w1");
    let out = Command::new(common::SHOAL)
        .args(["image", "load"])
        .arg(&saved)
        .arg("--state")
        .arg(&state)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("loaded docker.io/site/offline:1"), "{said}");
    c.add_worker_with("w1", &[], &[]);
    c.register(json!({ "jobDefinitionName": "offline", "type": "container",
        "containerProperties": { "image": "site/offline:1", "command": ["cat", "/shoal-image-marker"],
          "resourceRequirements": [{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"128"}] } }));
    let id = c.submit("offline", "offline");
    let job = c.wait_done(&id);
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    assert!(c.logs(&id).contains("only in the image"));
}

/// A 2-node `shoal cluster` (subnet 10.201.OCTET.0/24, OCTET from
/// `octet_base` and the pid) and a registry at its bridge address, which
/// its workers reach over plain HTTP: the subnet and the port are chosen
/// first, the registry starts once the bridge exists.
fn cluster_and_registry(
    octet_base: u32,
    nodes: u32,
    cpus: u32,
) -> (common::netns::NsCluster, Registry) {
    assert!(
        is_root(),
        "this test builds network namespaces and needs root (CI runs as root)"
    );
    let octet = octet_base + (std::process::id() % 25);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("10.201.{octet}.254:{port}");
    let octet_s = octet.to_string();
    let c = common::netns::NsCluster::up_with(
        nodes,
        cpus,
        &["--subnet", &octet_s, "--insecure-registry", &addr],
    );
    assert!(
        c.endpoint.contains(&format!("10.201.{octet}.254")),
        "{}",
        c.endpoint
    );
    let reg = Registry::start_on(&addr);
    assert_eq!(reg.addr, addr);
    (c, reg)
}

#[test]
fn a_two_node_job_runs_in_its_image_on_a_cluster_that_reaches_the_registry_at_the_bridge() {
    let (c, reg) = cluster_and_registry(150, 2, 1);
    let addr = reg.addr.clone();
    let layer = reg.push("shoal/test", "1", 0);
    // Each node shows what it sees; the main node then waits for node 1 to
    // say it is done (the job ends with its main node).
    let show = "cat /shoal-image-marker; echo node $AWS_BATCH_JOB_NODE_INDEX of $AWS_BATCH_JOB_NUM_NODES; df -m /dev/shm | tail -1";
    let main = format!("{show}; nc -l -p 7000");
    let other = format!(
        "{show}; until echo done | nc $AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS 7000; do usleep 100000; done"
    );
    let node = |shm: i32, cmd: &str| {
        json!({ "image": format!("{addr}/shoal/test:1"),
                "command": ["sh", "-c", cmd],
                "resourceRequirements": [{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"256"}],
                "linuxParameters": { "sharedMemorySize": shm } })
    };
    c.aws(
        "registerjobdefinition",
        json!({ "jobDefinitionName": "gang-image", "type": "multinode",
                "nodeProperties": { "numNodes": 2, "mainNode": 0,
                  "nodeRangeProperties": [ { "targetNodes": "0", "container": node(64, &main) },
                                           { "targetNodes": "1", "container": node(32, &other) } ] } }),
    );
    let id = c.aws(
        "submitjob",
        json!({ "jobName": "gang-image", "jobQueue": "default", "jobDefinition": "gang-image" }),
    )["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    let job = c.wait_done(&id);
    assert_eq!(job["status"], "SUCCEEDED", "{job}");
    for (i, shm) in [(0, "64"), (1, "32")] {
        let log = c.logs(&format!("{id}#{i}"));
        assert!(log.contains("only in the image"), "node {i}: {log}");
        assert!(log.contains(&format!("node {i} of 2")), "node {i}: {log}");
        let df = log
            .lines()
            .find(|l| l.contains("/dev/shm"))
            .unwrap_or_default();
        assert_eq!(df.split_whitespace().nth(1), Some(shm), "node {i}: {df}");
    }
    // Each node pulled the image once (each has its own cache).
    assert_eq!(reg.blob_gets("shoal/test", &layer), 2);
}

#[test]
fn mpi_runs_inside_images_across_two_nodes_and_over_vader_within_one() {
    let (c, reg) = cluster_and_registry(175, 2, 1);
    let addr = reg.addr.clone();
    let osu = std::path::Path::new(common::SHOAL).with_file_name("shoal-osu");
    assert!(
        osu.is_file(),
        "{} (cargo builds it with the workspace)",
        osu.display()
    );
    reg.push_mpi("shoal/mpi", "1", &[&osu]);
    let image = format!("{addr}/shoal/mpi:1");
    // As the existing MPI tests do: root, which cluster up's workers allow.
    let container = |cmd: &str, vcpus: u32| {
        json!({ "image": image, "user": "root", "command": ["sh", "-c", cmd],
                "resourceRequirements": [{"type":"VCPU","value": vcpus.to_string()},{"type":"MEMORY","value":"512"}],
                "linuxParameters": { "sharedMemorySize": 256 } })
    };
    // Two nodes: the image's mpirun starts a rank on each, the remote one
    // through the launch agent, inside that node's container.
    let main = "mpirun --mca pml ob1 --mca btl self,tcp -np 2 --hostfile $SHOAL_HOSTFILE sh -c 'echo rank $OMPI_COMM_WORLD_RANK on $SHOAL_NODE: $(cat /shoal-image-marker)'";
    c.aws(
        "registerjobdefinition",
        json!({ "jobDefinitionName": "mpi-image", "type": "multinode",
                "nodeProperties": { "numNodes": 2, "mainNode": 0, "nodeRangeProperties": [
                  { "targetNodes": "0", "container": container(main, 1) },
                  { "targetNodes": "1", "container": container("sleep 3600", 1) } ] } }),
    );
    let id = c.aws(
        "submitjob",
        json!({ "jobName": "mpi-image", "jobQueue": "default", "jobDefinition": "mpi-image" }),
    )["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    let job = c.wait_done(&id);
    let log = c.logs(&format!("{id}#0"));
    assert_eq!(job["status"], "SUCCEEDED", "{job}\n{log}");
    let nodes: std::collections::BTreeSet<&str> = log
        .lines()
        .filter(|l| l.starts_with("rank ") && l.contains("only in the MPI image"))
        .filter_map(|l| l.split(" on ").nth(1)?.split(':').next())
        .collect();
    assert_eq!(nodes.len(), 2, "a rank in each node's container: {log}");
    // One node, two ranks: shared memory (vader) with CMA single copy
    // between ranks in one container.
    let osu_cmd = "mpirun --mca pml ob1 --mca btl self,vader --mca btl_vader_single_copy_mechanism cma --oversubscribe -np 2 --hostfile $SHOAL_HOSTFILE shoal-osu latency --sizes 8,65536 --iterations 200";
    c.aws(
        "registerjobdefinition",
        json!({ "jobDefinitionName": "osu-image", "type": "container",
                "containerProperties": container(osu_cmd, 1) }),
    );
    let id = c.aws(
        "submitjob",
        json!({ "jobName": "osu-image", "jobQueue": "default", "jobDefinition": "osu-image" }),
    )["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    let job = c.wait_done(&id);
    let log = c.logs(&id);
    assert_eq!(job["status"], "SUCCEEDED", "{job}\n{log}");
    for size in ["8", "65536"] {
        assert!(
            log.lines()
                .any(|l| l.split_whitespace().next() == Some(size)),
            "a latency row for {size} B: {log}"
        );
    }
}

/// `shoal bench osu --image`: each OSU job runs on the host and then in the
/// image, and both figures come out side by side (presence and sign only,
/// never a time).
#[test]
fn bench_osu_runs_each_job_on_the_host_and_in_the_image_side_by_side() {
    let (c, reg) = cluster_and_registry(200, 1, 2);
    let osu = std::path::Path::new(common::SHOAL).with_file_name("shoal-osu");
    reg.push_mpi("shoal/mpi", "1", &[&osu]);
    let image = format!("{}/shoal/mpi:1", reg.addr);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("osu.json");
    let (rows, stdout, stderr) = common::bench_json(
        Command::new(common::SHOAL)
            .args(["bench", "osu", "--nodes", "1", "--endpoint", &c.endpoint])
            .args(["--image", &image, "--sizes", "8", "--iterations", "200"])
            .args(["--bw-iterations", "2", "--json"])
            .arg(&json)
            .env("SHOAL_CREDENTIALS", c.dir.path().join("credentials")),
        &json,
    );
    for t in ["shm", "tcp", "shm-image", "tcp-image"] {
        let r = rows
            .iter()
            .find(|r| r["transport"] == t && r["size"] == 8)
            .unwrap_or_else(|| panic!("no {t} row: {rows:?}"));
        for k in ["latency_us", "p50_us", "bandwidth_mbps"] {
            assert!(r[k].as_f64().unwrap() > 0.0, "{t} {k}: {r}");
        }
    }
    // The side-by-side table: a line per transport with both figures.
    assert!(
        stdout.contains(&format!("host against container ({image})")),
        "{stdout}"
    );
    for t in ["shm", "tcp"] {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().take(2).eq([t, "8"]))
            .unwrap_or_else(|| panic!("no {t} line in the comparison:\n{stdout}"));
        assert!(line.contains('%'), "no difference on {line:?}");
    }
    // The container jobs' shared memory was used, in the container.
    // (shoal-osu is found on the image's PATH; the host's has none.)
    assert!(stderr.contains("shm-image: Open MPI vader"), "{stderr}");
}
