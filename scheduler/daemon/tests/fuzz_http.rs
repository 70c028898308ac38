//! Bad input, end to end: 10,000 generated request bodies (mutated valid
//! requests, arbitrary request-shaped JSON, truncations and raw bytes) go
//! to every AWS operation of a real scheduler over HTTP. Each must end as
//! a 200 or as a `ClientException` with a message: no panic (checked on
//! the parser directly and by the server staying up), no 5xx, no hang.
//!
//! `SHOAL_FUZZ_CASES` changes the number of cases; `SHOAL_FIGURES` names a
//! file the result line is appended to (scripts/test.sh prints it).

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as PtConfig, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};
use shoal_scheduler::api::Request;
use shoal_scheduler::{start, Config};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[path = "../../model/tests/common/gen.rs"]
mod gen;

#[path = "../../model/tests/common/figure.rs"]
mod figure;

const OPS: &[&str] = &[
    "registerjobdefinition",
    "submitjob",
    "describejobdefinitions",
    "deregisterjobdefinition",
    "describejobs",
    "listjobs",
    "canceljob",
    "terminatejob",
    "createcomputeenvironment",
    "updatecomputeenvironment",
    "deletecomputeenvironment",
    "describecomputeenvironments",
    "createjobqueue",
    "updatejobqueue",
    "deletejobqueue",
    "describejobqueues",
];

/// Valid requests the mutations start from.
fn templates() -> Vec<(&'static str, Value)> {
    vec![
        (
            "registerjobdefinition",
            json!({ "jobDefinitionName": "d", "type": "container",
            "parameters": { "x": "1" }, "retryStrategy": { "attempts": 2 },
            "containerProperties": { "command": ["echo", "Ref::x"], "user": "nobody",
              "resourceRequirements": [{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"64"}],
              "linuxParameters": { "sharedMemorySize": 64, "tmpfs": [{"containerPath": "/scratch", "size": 8}] },
              "environment": [{"name": "A", "value": "b"}] } }),
        ),
        (
            "registerjobdefinition",
            json!({ "jobDefinitionName": "m", "type": "multinode",
            "nodeProperties": { "numNodes": 2, "mainNode": 0, "nodeRangeProperties": [
              { "targetNodes": "0:", "container": { "command": ["true"],
                "resourceRequirements": [{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"64"}] } } ] } }),
        ),
        (
            "submitjob",
            json!({ "jobName": "j", "jobQueue": "default", "jobDefinition": "d",
            "parameters": { "x": "2" }, "arrayProperties": { "size": 3 },
            "containerOverrides": { "command": ["true"], "environment": [{"name": "B", "value": "c"}] } }),
        ),
        (
            "submitjob",
            json!({ "jobName": "n", "jobQueue": "default", "jobDefinition": "m",
            "nodeOverrides": { "numNodes": 2, "nodePropertyOverrides": [{ "targetNodes": "0:", "containerOverrides": { "command": ["true"] } }] } }),
        ),
        (
            "createjobqueue",
            json!({ "jobQueueName": "q", "priority": 1, "state": "ENABLED",
            "computeEnvironmentOrder": [{ "order": 1, "computeEnvironment": "default" }] }),
        ),
        (
            "createcomputeenvironment",
            json!({ "computeEnvironmentName": "ce", "type": "UNMANAGED", "state": "ENABLED" }),
        ),
        (
            "listjobs",
            json!({ "jobQueue": "default", "jobStatus": "RUNNABLE", "maxResults": 5 }),
        ),
        ("describejobs", json!({ "jobs": ["x", "y:1", "z#0"] })),
    ]
}

/// Every container (object or array) in `v`, as a path of indices.
fn containers(v: &Value, path: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    match v {
        Value::Object(m) => {
            out.push(path.clone());
            for (i, c) in m.values().enumerate() {
                path.push(i);
                containers(c, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            out.push(path.clone());
            for (i, c) in a.iter().enumerate() {
                path.push(i);
                containers(c, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(v: &'a mut Value, path: &[usize]) -> &'a mut Value {
    path.iter().fold(v, |v, &i| match v {
        Value::Object(m) => m.values_mut().nth(i).expect("path from containers()"),
        Value::Array(a) => &mut a[i],
        _ => unreachable!("paths lead to containers"),
    })
}

/// Apply one mutation, chosen by `kind`, at a place chosen by `pick`.
fn mutate(v: &mut Value, kind: u8, pick: u32, new: Value) {
    let mut all = Vec::new();
    containers(v, &mut Vec::new(), &mut all);
    let target = at(v, &all[pick as usize % all.len()]);
    match (target, kind % 4) {
        (Value::Object(m), 0) if !m.is_empty() => {
            // Replace a member's value.
            let k = m.keys().nth(pick as usize % m.len()).cloned().unwrap();
            m.insert(k, new);
        }
        (Value::Object(m), 1) if !m.is_empty() => {
            let k = m.keys().nth(pick as usize % m.len()).cloned().unwrap();
            m.remove(&k);
        }
        (Value::Object(m), _) => {
            let k = gen::KEYS[pick as usize % gen::KEYS.len()];
            m.insert(k.to_string(), new);
        }
        (Value::Array(a), 1) if !a.is_empty() => {
            a.remove(pick as usize % a.len());
        }
        (Value::Array(a), _) => a.push(new),
        _ => {}
    }
}

/// One case: an operation and the raw body sent to it.
fn case() -> impl Strategy<Value = (String, Vec<u8>)> {
    let mutated = (
        prop::sample::select(templates()),
        prop::collection::vec((any::<u8>(), any::<u32>(), gen::json_value()), 1..4),
    )
        .prop_map(|((op, mut v), muts)| {
            for (kind, pick, new) in muts {
                mutate(&mut v, kind, pick, new);
            }
            (op.to_string(), serde_json::to_vec(&v).unwrap())
        });
    let truncated = (prop::sample::select(templates()), any::<u32>()).prop_map(|((op, v), cut)| {
        let s = serde_json::to_vec(&v).unwrap();
        let cut = cut as usize % s.len();
        (op.to_string(), s[..cut].to_vec())
    });
    let arbitrary = (prop::sample::select(OPS), gen::json_value())
        .prop_map(|(op, v)| (op.to_string(), serde_json::to_vec(&v).unwrap()));
    let bytes = (
        prop::sample::select(OPS),
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(op, b)| (op.to_string(), b));
    prop_oneof![6 => mutated, 1 => truncated, 2 => arbitrary, 1 => bytes]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_generated_bodies_end_as_client_exceptions_or_successes() {
    let cases: usize = std::env::var("SHOAL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let running = start(Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        state_dir: dir.path().to_path_buf(),
        ..Config::default()
    })
    .await
    .expect("scheduler starts");
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    // The definitions the submissions refer to.
    for (op, body) in templates().into_iter().take(2) {
        let r = http
            .post(format!("{base}/v1/{op}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }

    // Generate every case up front, from a fixed seed: a failure names a
    // case that the next run generates again.
    let mut runner = TestRunner::new_with_rng(
        PtConfig::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = case();
    let bodies: Vec<(String, Vec<u8>)> = (0..cases)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect();

    // Panics in the parsers and validators, caught where they would happen.
    let panics = bodies
        .iter()
        .filter(|(op, body)| {
            std::panic::catch_unwind(|| {
                let _ = Request::parse_aws(op, body);
            })
            .is_err()
        })
        .count();

    let (ok, client, server, broken) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let first_bad = Arc::new(std::sync::Mutex::new(None::<String>));
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (http, base, bodies, next) =
                (http.clone(), base.clone(), bodies.clone(), next.clone());
            let (ok, client, server, broken, first_bad) = (
                ok.clone(),
                client.clone(),
                server.clone(),
                broken.clone(),
                first_bad.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((op, body)) = bodies.get(i) else {
                        break;
                    };
                    let r = http
                        .post(format!("{base}/v1/{op}"))
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    let verdict = match r {
                        Err(e) => Err((&broken, format!("no answer: {e}"))),
                        Ok(r) => {
                            let status = r.status().as_u16();
                            let kind = r
                                .headers()
                                .get("x-amzn-errortype")
                                .and_then(|h| h.to_str().ok())
                                .map(str::to_string);
                            let v: Value = r.json().await.unwrap_or(Value::Null);
                            match status {
                                200 => Ok(&ok),
                                400 if kind.as_deref() == Some("ClientException")
                                    && v["__type"] == "ClientException"
                                    && v["message"].as_str().is_some_and(|m| m.len() > 10) =>
                                {
                                    Ok(&client)
                                }
                                s if s >= 500 => Err((&server, format!("{s} {v}"))),
                                s => Err((&broken, format!("{s} {kind:?} {v}"))),
                            }
                        }
                    };
                    match verdict {
                        Ok(counter) => {
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                        Err((counter, why)) => {
                            counter.fetch_add(1, Ordering::Relaxed);
                            first_bad.lock().unwrap().get_or_insert_with(|| {
                                format!(
                                    "case {i}: {op} {} -> {why}",
                                    String::from_utf8_lossy(&body[..body.len().min(300)])
                                )
                            });
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // The server is still up and still right after all of it.
    let r = http
        .post(format!("{base}/v1/describejobqueues"))
        .json(&json!({}))
        .send()
        .await
        .expect("the scheduler still answers");
    assert_eq!(r.status(), 200);
    running.stop().await;

    let (ok, client, server, broken) = (
        ok.load(Ordering::Relaxed),
        client.load(Ordering::Relaxed),
        server.load(Ordering::Relaxed),
        broken.load(Ordering::Relaxed),
    );
    let line = format!("fuzz {cases} cases {panics} panics {server} 5xx");
    println!("{ok} accepted, {client} ClientException, {broken} other");
    figure::figure(&line);
    assert_eq!(panics, 0, "parser panics");
    assert_eq!(
        (server, broken),
        (0, 0),
        "every case is a 200 or a ClientException; first other: {:?}",
        first_bad.lock().unwrap()
    );
    assert_eq!(ok + client, cases);
    assert!(
        ok > cases / 50 && client > cases / 2,
        "the cases reach both the accepting and the refusing paths ({ok} accepted, {client} refused)"
    );
}
