//! In-process tests of the HTTP API: a real scheduler on a loopback port
//! with a temporary state directory, driven over HTTP.

use serde_json::{json, Value};
use shoal_scheduler::{start, Config, Running};

struct Api {
    running: Option<Running>,
    base: String,
    http: reqwest::Client,
    _dir: Option<tempfile::TempDir>,
}

async fn api_in(dir: &std::path::Path) -> Api {
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        state_dir: dir.to_path_buf(),
        ..Config::default()
    };
    let running = start(config).await.expect("scheduler starts");
    let base = format!("http://{}", running.addr);
    Api {
        running: Some(running),
        base,
        http: reqwest::Client::new(),
        _dir: None,
    }
}

async fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let mut a = api_in(dir.path()).await;
    a._dir = Some(dir);
    a
}

impl Api {
    async fn call(&self, op: &str, body: Value) -> (u16, Option<String>, Value) {
        let resp = self
            .http
            .post(format!("{}/v1/{op}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let kind = resp
            .headers()
            .get("x-amzn-errortype")
            .map(|h| h.to_str().unwrap().to_string());
        let v: Value = resp.json().await.unwrap();
        (status, kind, v)
    }
    async fn ok(&self, op: &str, body: Value) -> Value {
        let (s, _, v) = self.call(op, body).await;
        assert_eq!(s, 200, "{op} failed: {v}");
        v
    }
    async fn client_error(&self, op: &str, body: Value) -> String {
        let (s, kind, v) = self.call(op, body).await;
        assert_eq!(s, 400, "{op} should fail: {v}");
        assert_eq!(kind.as_deref(), Some("ClientException"));
        assert_eq!(v["__type"], "ClientException");
        v["message"].as_str().unwrap().to_string()
    }
    async fn job(&self, id: &str) -> Value {
        let v = self.ok("describejobs", json!({ "jobs": [id] })).await;
        v["jobs"][0].clone()
    }
    async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }
}

fn container_def(name: &str) -> Value {
    json!({ "jobDefinitionName": name, "type": "container",
            "parameters": { "msg": "hi" },
            "containerProperties": { "command": ["echo", "Ref::msg"],
              "resourceRequirements": [{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"128"}] } })
}

fn submit(name: &str, def: &str) -> Value {
    json!({ "jobName": name, "jobQueue": "default", "jobDefinition": def })
}

#[tokio::test]
async fn defaults_exist_out_of_the_box() {
    let a = api().await;
    let q = a.ok("describejobqueues", json!({})).await;
    assert_eq!(q["jobQueues"][0]["jobQueueName"], "default");
    assert_eq!(q["jobQueues"][0]["state"], "ENABLED");
    let ce = a.ok("describecomputeenvironments", json!({})).await;
    assert_eq!(
        ce["computeEnvironments"][0]["computeEnvironmentName"],
        "default"
    );
    a.stop().await;
}

#[tokio::test]
async fn registering_twice_makes_revision_two() {
    let a = api().await;
    let r1 = a.ok("registerjobdefinition", container_def("d")).await;
    let r2 = a.ok("registerjobdefinition", container_def("d")).await;
    assert_eq!(r1["revision"], 1);
    assert_eq!(r2["revision"], 2);
    assert_eq!(
        r2["jobDefinitionArn"],
        "arn:aws:batch:us-east-1:000000000000:job-definition/d:2"
    );
    let d = a
        .ok(
            "describejobdefinitions",
            json!({ "jobDefinitionName": "d" }),
        )
        .await;
    assert_eq!(d["jobDefinitions"].as_array().unwrap().len(), 2);
    a.ok("deregisterjobdefinition", json!({ "jobDefinition": "d:2" }))
        .await;
    // By name, submit takes the latest ACTIVE revision: 1.
    let s = a.ok("submitjob", submit("j", "d")).await;
    let j = a.job(s["jobId"].as_str().unwrap()).await;
    assert!(j["jobDefinition"].as_str().unwrap().ends_with("d:1"), "{j}");
    let msg = a.client_error("submitjob", submit("j", "d:2")).await;
    assert!(
        msg.contains("jobDefinition") && msg.contains("INACTIVE"),
        "{msg}"
    );
    a.stop().await;
}

#[tokio::test]
async fn without_workers_a_job_stays_runnable_and_says_why() {
    let a = api().await;
    a.ok("registerjobdefinition", container_def("d")).await;
    let s = a.ok("submitjob", submit("j", "d")).await;
    let j = a.job(s["jobId"].as_str().unwrap()).await;
    assert_eq!(j["status"], "RUNNABLE", "{j}");
    let reason = j["statusReason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("worker"),
        "statusReason should say why: {reason:?}"
    );
    assert_eq!(j["container"]["command"], json!(["echo", "hi"]));
    a.stop().await;
}

#[tokio::test]
async fn errors_follow_the_aws_contract_and_name_the_field() {
    let a = api().await;
    let m = a
        .client_error(
            "submitjob",
            json!({ "jobName": "j", "jobQueue": "nope", "jobDefinition": "d" }),
        )
        .await;
    assert!(m.contains("jobQueue"), "{m}");
    let m = a.client_error("submitjob", submit("j", "missing")).await;
    assert!(m.contains("jobDefinition"), "{m}");
    let m = a.client_error("submitjob", submit("-bad", "d")).await;
    assert!(m.contains("jobName"), "{m}");
    let m = a
        .client_error(
            "registerjobdefinition",
            json!({ "jobDefinitionName": "x", "type": "container",
        "containerProperties": { "command": ["true"], "bogus": 1 } }),
        )
        .await;
    assert!(m.contains("bogus"), "{m}");
    let m = a
        .client_error(
            "registerjobdefinition",
            json!({ "jobDefinitionName": "x", "type": "multinode" }),
        )
        .await;
    assert!(m.contains("nodeProperties"), "{m}");
    let (s, kind, _) = a.call("nosuchoperation", json!({})).await;
    assert_eq!(s, 404);
    assert_eq!(kind.as_deref(), Some("UnknownOperationException"));
    // Not JSON at all.
    let resp = a
        .http
        .post(format!("{}/v1/submitjob", a.base))
        .body("{\"jobName\":")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    a.stop().await;
}

#[tokio::test]
async fn dependencies_cancel_and_terminate() {
    let a = api().await;
    a.ok("registerjobdefinition", container_def("d")).await;
    let first = a.ok("submitjob", submit("first", "d")).await["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    let mut dep = submit("second", "d");
    dep["dependsOn"] = json!([{ "jobId": first }]);
    let second = a.ok("submitjob", dep).await["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(a.job(&second).await["status"], "PENDING");
    // Array that depends on `second`, with N children.
    let mut arr = submit("arr", "d");
    arr["arrayProperties"] = json!({ "size": 3 });
    arr["dependsOn"] = json!([{ "jobId": second }]);
    let arr = a.ok("submitjob", arr).await["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    let parent = a.job(&arr).await;
    assert_eq!(parent["arrayProperties"]["size"], 3);
    assert_eq!(
        parent["arrayProperties"]["statusSummary"]["PENDING"], 3,
        "{parent}"
    );
    assert_eq!(
        a.job(&format!("{arr}:2")).await["arrayProperties"]["index"],
        2
    );
    let kids = a.ok("listjobs", json!({ "arrayJobId": arr })).await;
    assert_eq!(kids["jobSummaryList"].as_array().unwrap().len(), 3);

    // Cancelling `first` (RUNNABLE, not started) fails it and, through the
    // dependencies, everything after it.
    a.ok(
        "canceljob",
        json!({ "jobId": first, "reason": "no longer needed" }),
    )
    .await;
    let f = a.job(&first).await;
    assert_eq!(f["status"], "FAILED");
    assert!(f["statusReason"]
        .as_str()
        .unwrap()
        .contains("no longer needed"));
    assert_eq!(a.job(&second).await["status"], "FAILED");
    assert_eq!(a.job(&arr).await["status"], "FAILED");

    let other = a.ok("submitjob", submit("other", "d")).await["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    a.ok(
        "terminatejob",
        json!({ "jobId": other, "reason": "stop it" }),
    )
    .await;
    let o = a.job(&other).await;
    assert_eq!(o["status"], "FAILED");
    assert!(o["statusReason"].as_str().unwrap().contains("stop it"));
    let listed = a
        .ok(
            "listjobs",
            json!({ "jobQueue": "default", "jobStatus": "FAILED" }),
        )
        .await;
    assert_eq!(
        listed["jobSummaryList"].as_array().unwrap().len(),
        4,
        "{listed}"
    );
    a.stop().await;
}

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let a = api_in(dir.path()).await;
    a.ok("registerjobdefinition", container_def("d")).await;
    a.ok(
        "createcomputeenvironment",
        json!({ "computeEnvironmentName": "ce2", "type": "UNMANAGED" }),
    )
    .await;
    a.ok(
        "createjobqueue",
        json!({ "jobQueueName": "q2", "priority": 5,
        "computeEnvironmentOrder": [{ "order": 1, "computeEnvironment": "ce2" }] }),
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let mut s = submit(&format!("j{i}"), "d");
        s["jobQueue"] = json!("q2");
        ids.push(
            a.ok("submitjob", s).await["jobId"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    a.stop().await;
    let b = api_in(dir.path()).await;
    let all = b.ok("describejobs", json!({ "jobs": ids })).await;
    assert_eq!(all["jobs"].as_array().unwrap().len(), 20);
    for (j, id) in all["jobs"].as_array().unwrap().iter().zip(&ids) {
        assert_eq!(&j["jobId"], id);
        assert_eq!(j["status"], "RUNNABLE");
    }
    let q = b
        .ok("describejobqueues", json!({ "jobQueues": ["q2"] }))
        .await;
    assert_eq!(q["jobQueues"][0]["priority"], 5);
    // The next registration continues the revision numbers.
    assert_eq!(
        b.ok("registerjobdefinition", container_def("d")).await["revision"],
        2
    );
    b.stop().await;
}

#[tokio::test]
async fn a_client_token_makes_retried_submissions_return_the_same_job() {
    let dir = tempfile::tempdir().unwrap();
    let a = api_in(dir.path()).await;
    a.ok("registerjobdefinition", container_def("d")).await;
    let post = |token: &str| {
        a.http
            .post(format!("{}/v1/submitjob", a.base))
            .header("X-Shoal-Client-Token", token)
            .json(&submit("j", "d"))
            .send()
    };
    let first: Value = post("tok-1").await.unwrap().json().await.unwrap();
    let again: Value = post("tok-1").await.unwrap().json().await.unwrap();
    let other: Value = post("tok-2").await.unwrap().json().await.unwrap();
    assert_eq!(first["jobId"], again["jobId"]);
    assert_ne!(first["jobId"], other["jobId"]);
    let bad = post(&"x".repeat(65)).await.unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    a.stop().await;
    // The token survives a restart.
    let b = api_in(dir.path()).await;
    let resp = b
        .http
        .post(format!("{}/v1/submitjob", b.base))
        .header("X-Shoal-Client-Token", "tok-1")
        .json(&submit("j", "d"))
        .send()
        .await
        .unwrap();
    let after: Value = resp.json().await.unwrap();
    assert_eq!(after["jobId"], first["jobId"]);
    let listed = b
        .ok(
            "listjobs",
            json!({ "jobQueue": "default", "jobStatus": "RUNNABLE" }),
        )
        .await;
    assert_eq!(
        listed["jobSummaryList"].as_array().unwrap().len(),
        2,
        "no duplicate was made"
    );
    b.stop().await;
}

#[tokio::test]
async fn malformed_bodies_get_client_exceptions_never_500s() {
    let a = api().await;
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let huge_string = format!(
        "{{\"jobName\":\"{}\",\"jobQueue\":\"default\",\"jobDefinition\":\"d\"}}",
        "x".repeat(10 << 20)
    );
    let corpus: Vec<(&str, String)> = vec![
        ("submitjob", "{\"jobName\":\"j\",\"jobQueue\":".into()),
        ("submitjob", "{\"jobName\":5,\"jobQueue\":\"default\",\"jobDefinition\":\"d\"}".into()),
        ("submitjob", "{\"jobName\":\"j\",\"jobQueue\":\"default\",\"jobDefinition\":\"d\",\"schedulingPriorityOverride\":1e400}".into()),
        ("submitjob", "{\"jobName\":\"j\",\"jobQueue\":\"default\",\"jobDefinition\":\"d\",\"arrayProperties\":{\"size\":99999999999999999999}}".into()),
        ("registerjobdefinition", deep.clone()),
        ("submitjob", deep),
        ("submitjob", huge_string),
        ("submitjob", "\u{0}\u{1}binary".into()),
        ("submitjob", "[]".into()),
        ("submitjob", "null".into()),
        ("describejobs", "{\"jobs\":[]}".into()),
        ("describejobs", "{\"jobs\":\"not-a-list\"}".into()),
        ("listjobs", "{}".into()),
        ("registerjobdefinition", "{\"jobDefinitionName\":\"x\",\"type\":\"container\",\"containerProperties\":{\"command\":[\"a\"],\"resourceRequirements\":[{\"type\":\"VCPU\",\"value\":\"-1\"}]}}".into()),
        ("createjobqueue", "{\"jobQueueName\":\"q\",\"priority\":1,\"computeEnvironmentOrder\":[{\"order\":1,\"computeEnvironment\":\"nope\"}]}".into()),
    ];
    for (op, body) in corpus {
        let resp = a
            .http
            .post(format!("{}/v1/{op}", a.base))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let kind = resp
            .headers()
            .get("x-amzn-errortype")
            .map(|h| h.to_str().unwrap().to_string());
        let text = resp.text().await.unwrap();
        let shown: String = body.chars().take(80).collect();
        assert_eq!(status, 400, "{op} {shown:?} -> {status} {text}");
        assert_eq!(
            kind.as_deref(),
            Some("ClientException"),
            "{op} {shown:?} -> {text}"
        );
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        assert!(
            !v["message"].as_str().unwrap_or_default().is_empty(),
            "{op} {shown:?}: empty message"
        );
    }
    a.stop().await;
}

#[tokio::test]
async fn cancelling_an_array_job_gives_the_parent_the_reason() {
    let a = api().await;
    a.ok("registerjobdefinition", container_def("d")).await;
    let first = a.ok("submitjob", submit("first", "d")).await["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    let mut arr = submit("arr", "d");
    arr["arrayProperties"] = json!({ "size": 3 });
    arr["dependsOn"] = json!([{ "jobId": first }]);
    let arr = a.ok("submitjob", arr).await["jobId"]
        .as_str()
        .unwrap()
        .to_string();
    a.ok(
        "canceljob",
        json!({ "jobId": arr, "reason": "no longer needed" }),
    )
    .await;
    let p = a.job(&arr).await;
    assert_eq!(p["status"], "FAILED");
    assert!(
        p["statusReason"]
            .as_str()
            .unwrap()
            .contains("no longer needed"),
        "{p}"
    );
    a.stop().await;
}

#[tokio::test]
async fn a_disabled_queue_accepts_no_new_jobs() {
    let a = api().await;
    a.ok("registerjobdefinition", container_def("d")).await;
    a.ok(
        "updatejobqueue",
        json!({ "jobQueue": "default", "state": "DISABLED" }),
    )
    .await;
    let m = a.client_error("submitjob", submit("j", "d")).await;
    assert!(m.contains("jobQueue") && m.contains("DISABLED"), "{m}");
    a.ok(
        "updatejobqueue",
        json!({ "jobQueue": "default", "state": "ENABLED" }),
    )
    .await;
    a.ok("submitjob", submit("j", "d")).await;
    a.stop().await;
}
