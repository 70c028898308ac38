//! Mutual TLS between the scheduler and its workers: `shoal ca`, the
//! scheduler's worker listener (`--worker-listen`, `--tls-dir`) and
//! `shoal worker --tls-dir`, whose own port (`/exec`, `/logs`) then speaks
//! TLS with the node's certificate. Runs on loopback, without root.

mod common;

use common::{call, wait_for, Proc, SHOAL};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};

fn shoal(args: &[&str]) -> std::process::Output {
    Command::new(SHOAL).args(args).output().unwrap()
}

fn ok(args: &[&str]) {
    let out = shoal(args);
    assert!(
        out.status.success(),
        "shoal {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `shoal scheduler` with its worker listener; returns it, the API
/// endpoint and the worker listener's URL (its second line of output).
fn start_tls_scheduler(dir: &Path, ca: &Path) -> (Proc, String, String) {
    use std::io::BufRead;
    let mut child = Command::new(SHOAL)
        .args(["scheduler", "--listen", "127.0.0.1:0"])
        .args(["--worker-listen", "127.0.0.1:0", "--tls-dir"])
        .arg(ca)
        .arg("--state")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let (mut a, mut b) = (String::new(), String::new());
    out.read_line(&mut a).unwrap();
    out.read_line(&mut b).unwrap();
    let endpoint = a.trim().strip_prefix("endpoint: ").expect(&a).to_string();
    let workers = b.trim().strip_prefix("workers: ").expect(&b).to_string();
    assert!(workers.starts_with("https://"), "{workers}");
    (Proc(child), endpoint, workers)
}

/// A client of the worker listener that trusts `ca` and presents `who`'s
/// certificate from `dir` (none: no client certificate).
fn tls_client(ca: &Path, who: Option<(&Path, &str)>) -> reqwest::blocking::Client {
    let root = reqwest::Certificate::from_pem(&std::fs::read(ca.join("ca.pem")).unwrap()).unwrap();
    let mut b = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(root);
    if let Some((dir, name)) = who {
        let mut pem = std::fs::read(dir.join(format!("{name}.pem"))).unwrap();
        pem.extend(std::fs::read(dir.join(format!("{name}.key"))).unwrap());
        b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

fn register_body(name: &str) -> Value {
    json!({ "name": name, "address": "127.0.0.1", "port": 1,
            "capacity": { "vcpus": 1, "memoryMib": 256, "shmMib": 64 } })
}

fn node_names(http: &reqwest::blocking::Client, endpoint: &str) -> Vec<String> {
    let (status, v) = call(http, &format!("{endpoint}/shoal/v1/listnodes"), &json!({}));
    assert_eq!(status, 200, "{v}");
    v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["state"] != "DOWN")
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn ca_init_refuses_to_replace_a_ca_without_force() {
    let d = tempfile::tempdir().unwrap();
    let ca = d.path().join("ca");
    let ca = ca.to_str().unwrap();
    ok(&["ca", "init", ca]);
    let first = std::fs::read(Path::new(ca).join("ca.pem")).unwrap();
    let again = shoal(&["ca", "init", ca]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(first, std::fs::read(Path::new(ca).join("ca.pem")).unwrap());
    ok(&[
        "ca",
        "issue",
        ca,
        "node1",
        "--ip",
        "10.0.0.1",
        "--dns",
        "n1.example",
    ]);
    let bad = shoal(&["ca", "issue", ca, "../evil"]);
    assert!(!bad.status.success());
    let missing = shoal(&["ca", "issue", d.path().join("none").to_str().unwrap(), "n1"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("shoal ca init"));
    ok(&["ca", "init", ca, "--force"]);
    assert_ne!(first, std::fs::read(Path::new(ca).join("ca.pem")).unwrap());
}

#[test]
fn workers_join_only_over_mutual_tls_with_a_certificate_of_the_cluster_ca() {
    let d = tempfile::tempdir().unwrap();
    let (ca, other) = (d.path().join("ca"), d.path().join("other"));
    let (cas, others) = (ca.to_str().unwrap(), other.to_str().unwrap());
    ok(&["ca", "init", cas]);
    ok(&["ca", "issue", cas, "scheduler", "--ip", "127.0.0.1"]);
    ok(&["ca", "issue", cas, "n1", "--ip", "127.0.0.1"]);
    ok(&["ca", "init", others]);
    ok(&["ca", "issue", others, "n2"]);
    let (_scheduler, endpoint, workers) = start_tls_scheduler(&d.path().join("state"), &ca);
    let plain = reqwest::blocking::Client::new();

    // The worker operations are refused on the API listener…
    for op in ["registerworker", "poll"] {
        let (status, v) = call(
            &plain,
            &format!("{endpoint}/shoal/v1/{op}"),
            &register_body("n1"),
        );
        assert_eq!(status, 403, "{op}: {v}");
        assert_eq!(v["__type"], "AccessDeniedException", "{v}");
        let m = v["message"].as_str().unwrap_or_default();
        assert!(
            m.contains("TLS worker listener") && m.contains(&workers),
            "{m}"
        );
    }
    // …which still serves everything else.
    assert!(node_names(&plain, &endpoint).is_empty());

    let register = format!("{workers}/shoal/v1/registerworker");
    // No client certificate, or one of another CA: the handshake fails.
    for (client, who) in [
        (tls_client(&ca, None), "no certificate"),
        (tls_client(&ca, Some((&other, "n2"))), "another CA's"),
    ] {
        let r = client.post(&register).json(&register_body("n2")).send();
        assert!(r.is_err(), "{who}: {:?}", r.map(|r| r.status()));
    }
    // The cluster CA's certificate for n1 registers as n1 only.
    let n1 = tls_client(&ca, Some((&ca, "n1")));
    let (status, v) = call(&n1, &register, &register_body("n2"));
    assert_eq!(status, 403, "n1 impersonating n2: {v}");
    assert!(
        v["message"].as_str().unwrap_or_default().contains("\"n1\""),
        "{v}"
    );
    // ... and only at an address its certificate names (n1's: 127.0.0.1).
    let mut elsewhere = register_body("n1");
    elsewhere["address"] = json!("10.9.9.9");
    let (status, v) = call(&n1, &register, &elsewhere);
    assert_eq!(status, 403, "n1 claiming another address: {v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("--ip 10.9.9.9"),
        "{v}"
    );
    // The worker listener serves nothing but the worker operations.
    let (status, _) = call(
        &n1,
        &format!("{workers}/v1/describejobs"),
        &json!({ "jobs": [] }),
    );
    assert_eq!(status, 403);
    assert!(
        node_names(&plain, &endpoint).is_empty(),
        "nobody registered"
    );

    // A real worker with its certificate joins and runs a job.
    let state = d.path().join("n1");
    let _worker = Proc(
        Command::new(SHOAL)
            .args([
                "worker",
                "--scheduler",
                &workers,
                "--name",
                "n1",
                "--cpus",
                "1",
            ])
            .args(["--memory", "1024", "--tls-dir", cas, "--state"])
            .arg(&state)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("n1 to register over TLS", || {
        node_names(&plain, &endpoint) == ["n1"]
    });
    let aws = |op: &str, body: Value| {
        let (status, v) = call(&plain, &format!("{endpoint}/v1/{op}"), &body);
        assert_eq!(status, 200, "{op}: {v}");
        v
    };
    aws(
        "registerjobdefinition",
        json!({ "jobDefinitionName": "hi", "type": "container",
                "containerProperties": { "command": ["echo", "hello over TLS"],
                  "resourceRequirements": [{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"64"}] } }),
    );
    let id = aws(
        "submitjob",
        json!({ "jobName": "hi", "jobQueue": "default", "jobDefinition": "hi" }),
    )["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for("the job to succeed", || {
        aws("describejobs", json!({ "jobs": [&id] }))["jobs"][0]["status"] == "SUCCEEDED"
    });

    // The worker's own port speaks TLS only: its log server and the launch
    // agent's /exec refuse plain HTTP (the handshake fails, no reply)…
    let (status, v) = call(
        &plain,
        &format!("{endpoint}/shoal/v1/listnodes"),
        &json!({}),
    );
    assert_eq!(status, 200, "{v}");
    let port = v["nodes"][0]["port"].as_u64().unwrap();
    let own = format!("127.0.0.1:{port}");
    let r = plain.get(format!("http://{own}/logs/x")).send();
    assert!(r.is_err(), "plain /logs: {:?}", r.map(|r| r.status()));
    let r = plain
        .post(format!("http://{own}/exec"))
        .json(&json!({ "jobId": id, "attempt": 0, "command": "true", "token": "x" }))
        .send();
    assert!(r.is_err(), "plain /exec: {:?}", r.map(|r| r.status()));
    // …a client that trusts another CA does not accept its certificate…
    let r = tls_client(&other, None)
        .get(format!("https://{own}/logs/x"))
        .send();
    assert!(r.is_err(), "another CA: {:?}", r.map(|r| r.status()));
    // …and over TLS, verified against the cluster CA for its address, it
    // still wants the scheduler's grant.
    let r = tls_client(&ca, None)
        .get(format!("https://{own}/logs/x"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    // The scheduler sends log readers to https, with the CA to verify it.
    let (status, loc) = call(
        &plain,
        &format!("{endpoint}/shoal/v1/logs"),
        &json!({ "jobId": id }),
    );
    assert_eq!(status, 200, "{loc}");
    assert_eq!(loc["url"], format!("https://{own}/logs"), "{loc}");
    assert_eq!(
        loc["ca"].as_str(),
        Some(std::fs::read_to_string(ca.join("ca.pem")).unwrap().as_str())
    );
    // `shoal logs` needs nothing more than the endpoint.
    let out = Command::new(SHOAL)
        .args(["logs", &id, "--endpoint", &endpoint])
        .env_remove("SHOAL_CREDENTIALS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shoal logs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello over TLS\n");
}

#[test]
fn a_worker_without_the_right_files_says_what_is_missing() {
    let d = tempfile::tempdir().unwrap();
    let out = shoal(&[
        "worker",
        "--scheduler",
        "https://127.0.0.1:1",
        "--name",
        "n1",
        "--state",
        d.path().join("w").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tls-dir"), "{err}");
    let out = shoal(&[
        "worker",
        "--scheduler",
        "https://127.0.0.1:1",
        "--name",
        "n1",
        "--tls-dir",
        d.path().join("nothing").to_str().unwrap(),
        "--state",
        d.path().join("w").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ca.pem"), "{err}");
    // A certificate that does not name the node's address would fail every
    // client's handshake on the worker's own port: the worker says so at
    // start, with the fix.
    let ca = d.path().join("ca");
    let cas = ca.to_str().unwrap();
    ok(&["ca", "init", cas]);
    ok(&["ca", "issue", cas, "n1"]);
    let out = shoal(&[
        "worker",
        "--scheduler",
        "https://127.0.0.1:1",
        "--name",
        "n1",
        "--tls-dir",
        cas,
        "--state",
        d.path().join("w").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--ip 127.0.0.1"), "{err}");
}

#[test]
fn an_allocation_certificate_covers_its_own_names_and_only_while_its_allocation_is_held() {
    let d = tempfile::tempdir().unwrap();
    let ca = d.path().join("ca");
    let cas = ca.to_str().unwrap();
    ok(&["ca", "init", cas]);
    ok(&["ca", "issue", cas, "scheduler", "--ip", "127.0.0.1"]);
    let (_scheduler, endpoint, workers) = start_tls_scheduler(&d.path().join("state"), &ca);
    let plain = reqwest::blocking::Client::new();
    // A MANAGED environment "slurm" (no allocation yet: this scheduler has
    // no Slurm), and a certificate as it would issue for its allocation 1.
    let (status, v) = call(
        &plain,
        &format!("{endpoint}/v1/createcomputeenvironment"),
        &json!({ "computeEnvironmentName": "slurm", "type": "MANAGED",
                 "computeResources": { "type": "EC2", "maxvCpus": 4, "subnets": ["s"] },
                 "tags": { "shoal:provider": "slurm" } }),
    );
    assert_eq!(status, 200, "{v}");
    let alloc = d.path().join("alloc");
    std::fs::create_dir(&alloc).unwrap();
    shoal_worker::pki::issue_allocation(
        &ca,
        &alloc,
        "slurm.1.",
        &["127.0.0.1".parse().unwrap()],
        &[],
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(alloc.join("worker.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let client = tls_client(&alloc, Some((&alloc, "worker")));
    let register = format!("{workers}/shoal/v1/registerworker");
    // Outside its prefix: refused by the listener.
    for name in ["n1", "slurm.2.n1", "slurm.1."] {
        let (status, v) = call(&client, &register, &register_body(name));
        assert_eq!(status, 403, "{name}: {v}");
    }
    // Inside it, but the scheduler holds no allocation slurm.1: refused,
    // and a worker cannot claim otherwise by what it writes.
    let mut body = register_body("slurm.1.n1");
    body["allocation"] = json!(null);
    let (status, v) = call(&client, &register, &body);
    assert_eq!(status, 403, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("does not hold"),
        "{v}"
    );
    assert!(node_names(&plain, &endpoint).is_empty());
}
