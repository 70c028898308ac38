//! Authentication (issue: trust) against the real `shoal scheduler`:
//! AWS SigV4 with `--credentials FILE` checked with boto3, aws-cli, the
//! `shoal` CLI and raw HTTP; protected mode without credentials.

mod common;

use common::{call, signed_call, start_scheduler, SHOAL};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const KEY: &str = "AKIDSHOALTEST";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// A credentials file with a comment, a blank line and two keys.
fn credentials_file(dir: &Path) -> PathBuf {
    let path = dir.join("credentials");
    std::fs::write(
        &path,
        format!("# test keys\n\n{KEY} {SECRET}\nAKIDSECOND   second/secret+=\n"),
    )
    .unwrap();
    path
}

/// A scheduler with the test keys; its state dir, process and endpoint.
fn keyed_scheduler() -> (tempfile::TempDir, common::Proc, String, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let creds = credentials_file(dir.path());
    let (p, endpoint) = start_scheduler(
        &dir.path().join("state"),
        &["--credentials", creds.to_str().unwrap()],
    );
    (dir, p, endpoint, creds)
}

/// The repository's `.venv` (scripts/install-deps.sh), if there is one.
fn venv() -> Option<PathBuf> {
    let v = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv");
    v.join("bin/python3").exists().then_some(v)
}

fn run_script(program: &Path, script: &str, args: &[&str], venv: &Path) {
    let path = format!("{}/tests/aws/{script}", env!("CARGO_MANIFEST_DIR"));
    let path_env = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(program)
        .arg(&path)
        .args(args)
        .env("PATH", path_env)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} {path}: {e}", program.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{script} failed:\n{text}");
    println!("{}", text.lines().last().unwrap_or_default());
}

fn assert_refused(status: u16, v: &Value, kind: &str, what: &str) {
    assert_eq!(status, 403, "{what}: {v}");
    assert_eq!(v["__type"], kind, "{what}: {v}");
    assert!(
        v["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {v}"
    );
}

#[test]
fn with_credentials_every_client_op_needs_a_valid_signature() {
    let (_dir, _s, endpoint, _) = keyed_scheduler();
    let http = reqwest::blocking::Client::new();
    let url = |p: &str| format!("{endpoint}{p}");

    // Unsigned: UnrecognizedClientException, AWS's shape, saying what to do.
    let r = http
        .post(url("/v1/describejobqueues"))
        .json(&json!({}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(
        r.headers()["x-amzn-errortype"],
        "UnrecognizedClientException"
    );
    let v: Value = r.json().unwrap();
    assert_eq!(v["__type"], "UnrecognizedClientException");
    assert!(
        v["message"].as_str().unwrap().contains("--credentials"),
        "{v}"
    );
    for path in [
        "/v1/submitjob",
        "/v1/describejobs",
        "/shoal/v1/listnodes",
        "/shoal/v1/logs",
        "/shoal/v1/export",
    ] {
        let (s, v) = call(&http, &url(path), &json!({}));
        assert_refused(s, &v, "UnrecognizedClientException", path);
    }
    // The worker protocol is not SigV4-authenticated: an unsigned poll
    // reaches the handler (and fails there, for its empty body).
    let (s, v) = call(&http, &url("/shoal/v1/poll"), &json!({}));
    assert_eq!(
        (s, v["__type"].as_str()),
        (400, Some("ClientException")),
        "{v}"
    );
    let (s, v) = call(&http, &url("/shoal/v1/registerworker"), &json!({}));
    assert_eq!(
        (s, v["__type"].as_str()),
        (400, Some("ClientException")),
        "{v}"
    );

    // Signed with either key of the file: accepted.
    let (s, v) = signed_call(
        &http,
        &url("/v1/describejobqueues"),
        &json!({}),
        (KEY, SECRET),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["jobQueues"][0]["jobQueueName"], "default");
    let (s, v) = signed_call(
        &http,
        &url("/shoal/v1/listnodes"),
        &json!({}),
        ("AKIDSECOND", "second/secret+="),
    );
    assert_eq!(s, 200, "{v}");
    // A wrong secret, an unknown key.
    let (s, v) = signed_call(
        &http,
        &url("/v1/describejobqueues"),
        &json!({}),
        (KEY, "nope"),
    );
    assert_refused(s, &v, "InvalidSignatureException", "wrong secret");
    let (s, v) = signed_call(
        &http,
        &url("/v1/describejobqueues"),
        &json!({}),
        ("AKIDX", SECRET),
    );
    assert_refused(s, &v, "UnrecognizedClientException", "unknown key");

    // A body changed after signing, a stale date, a malformed header: 403,
    // never a 500.
    let signed_headers = |time: i64, body: &[u8]| {
        let creds = shoal_sigv4::Credentials {
            access_key_id: KEY.into(),
            secret_access_key: SECRET.into(),
            session_token: None,
        };
        let host = endpoint.trim_start_matches("http://").to_string();
        let mut h = shoal_sigv4::sign(
            &shoal_sigv4::SigningParams {
                credentials: &creds,
                region: "us-east-1",
                service: "batch",
                time,
            },
            "POST",
            "/v1/describejobqueues",
            "",
            &[("host", &host)],
            body,
        );
        h.push(("host".into(), host));
        h
    };
    let send = |headers: Vec<(String, String)>, body: &'static [u8]| {
        let mut req = http.post(url("/v1/describejobqueues"));
        for (n, v) in headers {
            req = req.header(n, v);
        }
        let r = req.body(body).send().unwrap();
        (
            r.status().as_u16(),
            r.json::<Value>().unwrap_or(Value::Null),
        )
    };
    let now = shoal_sigv4::now_secs();
    let (s, v) = send(signed_headers(now, b"{}"), b"{}");
    assert_eq!(s, 200, "{v}");
    let (s, v) = send(signed_headers(now, b"{}"), b"{\"jobQueues\":[\"x\"]}");
    assert_refused(s, &v, "InvalidSignatureException", "changed body");
    let (s, v) = send(signed_headers(now - 20 * 60, b"{}"), b"{}");
    assert_refused(s, &v, "InvalidSignatureException", "20 minutes old");
    assert!(v["message"].as_str().unwrap().contains("expired"), "{v}");
    let (s, v) = send(signed_headers(now + 20 * 60, b"{}"), b"{}");
    assert_refused(s, &v, "InvalidSignatureException", "20 minutes ahead");
    for bad in [
        "AWS4-HMAC-SHA256 garbage",
        "AWS4-HMAC-SHA256 Credential=AKIDSHOALTEST/2026/x, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIDSHOALTEST/20260101/r/s/aws4_request,,,SignedHeaders=;;;,Signature=zz",
    ] {
        let mut h = signed_headers(now, b"{}");
        h.retain(|(n, _)| n != "authorization");
        h.push(("authorization".into(), bad.into()));
        let (s, v) = send(h, b"{}");
        assert_refused(s, &v, "InvalidSignatureException", bad);
        assert!(v["message"].as_str().unwrap().contains("malformed"), "{v}");
    }
    let (s, v) = send(
        vec![("authorization".into(), "Basic dXNlcjpwYXNz".into())],
        b"{}",
    );
    assert_refused(s, &v, "UnrecognizedClientException", "Basic auth");
}

#[test]
fn boto3_with_the_right_keys_works_and_with_wrong_ones_is_refused() {
    let Some(venv) = venv() else {
        println!("skip: no .venv with boto3 (run scripts/install-deps.sh)");
        return;
    };
    let (_dir, _s, endpoint, _) = keyed_scheduler();
    run_script(
        &venv.join("bin/python3"),
        "auth_boto3_check.py",
        &[&endpoint, KEY, SECRET],
        &venv,
    );
}

#[test]
fn aws_cli_with_the_right_keys_works_and_with_wrong_ones_names_the_error() {
    let Some(venv) = venv() else {
        println!("skip: no .venv with aws-cli (run scripts/install-deps.sh)");
        return;
    };
    let (_dir, _s, endpoint, _) = keyed_scheduler();
    run_script(
        Path::new("bash"),
        "auth_aws_cli_check.sh",
        &[&endpoint, KEY, SECRET],
        &venv,
    );
}

/// Run the `shoal` CLI with only the given key variables in its environment.
fn shoal_cli(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(SHOAL);
    c.args(args);
    for k in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "SHOAL_CREDENTIALS",
        "SHOAL_ENDPOINT",
    ] {
        c.env_remove(k);
    }
    c.envs(env.iter().copied()).output().unwrap()
}

#[test]
fn the_shoal_cli_signs_with_its_keys_and_says_what_to_do_without() {
    let (dir, _s, endpoint, creds) = keyed_scheduler();
    let creds = creds.to_str().unwrap();
    let def = dir.path().join("def.json");
    std::fs::write(
        &def,
        json!({ "jobDefinitionName": "cli", "type": "container",
                "containerProperties": { "command": ["true"] } })
        .to_string(),
    )
    .unwrap();
    let ok = |o: &std::process::Output, what: &str| {
        assert!(
            o.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    // SHOAL_CREDENTIALS, --credentials, and AWS_* variables.
    let def = def.to_str().unwrap();
    let reg = shoal_cli(
        &["register", def, "--endpoint", &endpoint],
        &[("SHOAL_CREDENTIALS", creds)],
    );
    assert!(ok(&reg, "register").contains("registered cli:1"));
    let sub = shoal_cli(
        &[
            "submit",
            "-d",
            "cli",
            "--endpoint",
            &endpoint,
            "--credentials",
            creds,
        ],
        &[],
    );
    let id = ok(&sub, "submit").trim().to_string();
    let jobs = shoal_cli(
        &["jobs", "--endpoint", &endpoint],
        &[
            ("AWS_ACCESS_KEY_ID", KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
    );
    assert!(ok(&jobs, "jobs").contains(&id));
    let nodes = shoal_cli(
        &["nodes", "--endpoint", &endpoint],
        &[("SHOAL_CREDENTIALS", creds)],
    );
    ok(&nodes, "nodes");

    // No keys: refused, and the message says how to give them.
    let o = shoal_cli(&["jobs", "--endpoint", &endpoint], &[]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("UnrecognizedClientException"), "{err}");
    assert!(
        err.contains("SHOAL_CREDENTIALS") && err.contains("AWS_ACCESS_KEY_ID"),
        "{err}"
    );
    // Wrong secret.
    let o = shoal_cli(
        &["describe", &id, "--endpoint", &endpoint],
        &[
            ("AWS_ACCESS_KEY_ID", KEY),
            ("AWS_SECRET_ACCESS_KEY", "wrong"),
        ],
    );
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("InvalidSignatureException"), "{err}");
    // An unreadable credentials file is named.
    let o = shoal_cli(
        &[
            "jobs",
            "--endpoint",
            &endpoint,
            "--credentials",
            "/nonexistent/keys",
        ],
        &[],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/keys"));
}

/// Start `shoal scheduler` with `args`, stderr to a file. Some((process,
/// endpoint, stderr file)) once it printed its endpoint; None, with its
/// stderr, if it exited instead.
fn try_scheduler(
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<(common::Proc, String, PathBuf), String> {
    let log = dir.join(format!("stderr-{}.log", common::free_port()));
    let mut c = Command::new(SHOAL);
    c.arg("scheduler")
        .args(args)
        .arg("--state")
        .arg(dir.join("state"))
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("SHOAL_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut child = c.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    match line.trim().strip_prefix("endpoint: ") {
        Some(e) => Ok((common::Proc(child), e.to_string(), log)),
        None => {
            let status = child.wait().unwrap();
            assert!(!status.success());
            Err(std::fs::read_to_string(&log).unwrap())
        }
    }
}

#[test]
fn without_credentials_a_non_loopback_listen_is_refused_unless_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let err = match try_scheduler(dir.path(), &["--listen", "0.0.0.0:0"], &[]) {
        Ok(_) => panic!("a scheduler without credentials listened on 0.0.0.0"),
        Err(e) => e,
    };
    assert!(err.contains("refusing to listen on 0.0.0.0"), "{err}");
    assert!(
        err.contains("--credentials") && err.contains("--insecure-no-auth"),
        "{err}"
    );

    // --insecure-no-auth: it starts, warns loudly and takes unsigned requests.
    let (_p, endpoint, log) = try_scheduler(
        dir.path(),
        &["--listen", "0.0.0.0:0", "--insecure-no-auth"],
        &[],
    )
    .expect("starts with --insecure-no-auth");
    let port = endpoint.rsplit(':').next().unwrap();
    let warning = std::fs::read_to_string(&log).unwrap();
    assert!(warning.contains("INSECURE"), "{warning}");
    let http = reqwest::blocking::Client::new();
    let (s, v) = call(
        &http,
        &format!("http://127.0.0.1:{port}/v1/describejobqueues"),
        &json!({}),
    );
    assert_eq!(s, 200, "{v}");
}

#[test]
fn with_credentials_a_non_loopback_listen_is_allowed_and_signed_requests_work() {
    let dir = tempfile::tempdir().unwrap();
    let creds = credentials_file(dir.path());
    let (_p, endpoint, _) = try_scheduler(
        dir.path(),
        &[
            "--listen",
            "0.0.0.0:0",
            "--credentials",
            creds.to_str().unwrap(),
        ],
        &[],
    )
    .expect("starts with credentials");
    let port = endpoint.rsplit(':').next().unwrap();
    let url = format!("http://127.0.0.1:{port}/v1/describejobqueues");
    let http = reqwest::blocking::Client::new();
    let (s, v) = call(&http, &url, &json!({}));
    assert_refused(s, &v, "UnrecognizedClientException", "unsigned");
    let (s, v) = signed_call(&http, &url, &json!({}), (KEY, SECRET));
    assert_eq!(s, 200, "{v}");
    // Beyond loopback and without a TLS worker listener, nobody joins as a
    // worker over plain HTTP.
    let (s, v) = call(
        &http,
        &format!("http://127.0.0.1:{port}/shoal/v1/registerworker"),
        &json!({ "name": "intruder", "address": "127.0.0.1", "port": 1,
                 "capacity": { "vcpus": 1, "memoryMiB": 1, "shmMiB": 1 } }),
    );
    assert_eq!(s, 403, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("--tls-dir"),
        "{v}"
    );
}

#[test]
fn on_loopback_without_credentials_unsigned_requests_work_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let (_p, endpoint, log) =
        try_scheduler(dir.path(), &["--listen", "127.0.0.1:0"], &[]).expect("starts on loopback");
    let warning = std::fs::read_to_string(&log).unwrap();
    assert!(
        warning.contains("no credentials configured") && warning.contains("--credentials"),
        "{warning}"
    );
    let http = reqwest::blocking::Client::new();
    let (s, v) = call(
        &http,
        &format!("{endpoint}/v1/describejobqueues"),
        &json!({}),
    );
    assert_eq!(s, 200, "{v}");
    // Signed requests are accepted too (any key: nothing to check against).
    let (s, v) = signed_call(
        &http,
        &format!("{endpoint}/shoal/v1/listnodes"),
        &json!({}),
        ("ANYKEY", "any"),
    );
    assert_eq!(s, 200, "{v}");
}

#[test]
fn the_scheduler_takes_its_key_from_the_environment_only_without_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIDFROMENV"),
        ("AWS_SECRET_ACCESS_KEY", "envsecret"),
    ];
    let http = reqwest::blocking::Client::new();
    {
        let (_p, endpoint, _) =
            try_scheduler(dir.path(), &["--listen", "127.0.0.1:0"], &env).expect("starts");
        let url = format!("{endpoint}/v1/describejobqueues");
        let (s, v) = call(&http, &url, &json!({}));
        assert_refused(s, &v, "UnrecognizedClientException", "unsigned, env key");
        let (s, v) = signed_call(&http, &url, &json!({}), ("AKIDFROMENV", "envsecret"));
        assert_eq!(s, 200, "{v}");
    }
    // With --credentials, the environment's key is not one of the keys.
    let creds = credentials_file(dir.path());
    let (_p, endpoint, _) = try_scheduler(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--credentials",
            creds.to_str().unwrap(),
        ],
        &env,
    )
    .expect("starts");
    let url = format!("{endpoint}/v1/describejobqueues");
    let (s, v) = signed_call(&http, &url, &json!({}), ("AKIDFROMENV", "envsecret"));
    assert_refused(s, &v, "UnrecognizedClientException", "env key with a file");
    let (s, v) = signed_call(&http, &url, &json!({}), (KEY, SECRET));
    assert_eq!(s, 200, "{v}");
}

#[test]
fn a_bad_credentials_file_stops_the_scheduler_with_its_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad");
    std::fs::write(&f, "# ok\nAKID1 secret\nAKID2 has three fields\n").unwrap();
    let err = match try_scheduler(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--credentials",
            f.to_str().unwrap(),
        ],
        &[],
    ) {
        Ok(_) => panic!("started with a bad credentials file"),
        Err(e) => e,
    };
    assert!(
        err.contains("line 3") && err.contains("ACCESS_KEY_ID SECRET"),
        "{err}"
    );
}
