//! Shared helpers for the end-to-end tests that run the real `shoal` binary.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");

/// Run `cmd`, a `shoal bench …` that writes its rows to `json`: it must
/// succeed; the rows, its stdout and its stderr.
pub fn bench_json(cmd: &mut Command, json: &Path) -> (Vec<Value>, String, String) {
    let out = cmd.output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let rows = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    (rows, stdout, stderr)
}

/// A child process, stopped with SIGTERM (as an operator would) when
/// dropped, or killed outright with `kill9`.
pub struct Proc(pub Child);

impl Proc {
    /// SIGKILL, no chance to clean up.
    pub fn kill9(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.0.wait();
    }
}

/// Start `shoal scheduler` on a free loopback port with state in `dir`;
/// returns it and its endpoint (read from its first line of output).
pub fn start_scheduler(dir: &Path, extra: &[&str]) -> (Proc, String) {
    start_scheduler_at("127.0.0.1:0", dir, extra)
}

/// Start `shoal scheduler` listening on `listen`.
pub fn start_scheduler_at(listen: &str, dir: &Path, extra: &[&str]) -> (Proc, String) {
    spawn_scheduler(scheduler_command(&[], listen, dir, extra, None))
}

/// The command line of `shoal scheduler` on `listen` with state in `dir`,
/// prefixed by `prefix` (e.g. `faketime -1h`), its log going to `log`.
pub fn scheduler_command(
    prefix: &[&str],
    listen: &str,
    dir: &Path,
    extra: &[&str],
    log: Option<&Path>,
) -> Command {
    let mut cmd = match prefix.split_first() {
        Some((p, rest)) => {
            let mut c = Command::new(p);
            c.args(rest).arg(SHOAL);
            c
        }
        None => Command::new(SHOAL),
    };
    cmd.args(["scheduler", "--listen", listen, "--state"])
        .arg(dir)
        .args(extra)
        // Hermetic: keys in the test runner's environment would turn
        // authentication on.
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .stdout(Stdio::piped());
    match log {
        Some(l) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(l)
                .unwrap();
            cmd.stderr(Stdio::from(f))
        }
        None => cmd.stderr(Stdio::null()),
    };
    cmd
}

/// Start a scheduler command; it and its endpoint (its first line).
pub fn spawn_scheduler(mut cmd: Command) -> (Proc, String) {
    let mut child = cmd.spawn().expect("shoal scheduler starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("endpoint line");
    let endpoint = line
        .trim()
        .strip_prefix("endpoint: ")
        .unwrap_or_else(|| panic!("first line is the endpoint, not {line:?}"))
        .to_string();
    (Proc(child), endpoint)
}

/// Run `tests/aws/SCRIPT` with python3 (boto3 from .venv) and `args`: it
/// must succeed and print a `DONE` line; its stdout.
pub fn run_boto3_check(script: &str, args: &[&str]) -> String {
    let path = format!("{}/tests/aws/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .expect("python3 with boto3 (scripts/install-deps.sh, .venv/bin on PATH)");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && said.contains("\nDONE"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    said
}

/// POST a JSON body; the status and the JSON reply.
pub fn call(http: &reqwest::blocking::Client, url: &str, body: &Value) -> (u16, Value) {
    let r = http.post(url).json(body).send().expect("request");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// POST a JSON body signed with AWS SigV4 (the scheduler's own signer,
/// service `batch`) by `key`/`secret`; the status and the JSON reply.
pub fn signed_call(
    http: &reqwest::blocking::Client,
    url: &str,
    body: &Value,
    key: (&str, &str),
) -> (u16, Value) {
    try_signed_call(http, url, body, key, &[]).expect("request")
}

/// As [`signed_call`], with more headers (signed too), and an error when no
/// answer came (the scheduler is down).
pub fn try_signed_call(
    http: &reqwest::blocking::Client,
    url: &str,
    body: &Value,
    (key, secret): (&str, &str),
    headers: &[(&str, &str)],
) -> Result<(u16, Value), reqwest::Error> {
    use shoal_sigv4 as sigv4;
    let u = reqwest::Url::parse(url).expect("a URL");
    let host = format!(
        "{}:{}",
        u.host_str().unwrap(),
        u.port_or_known_default().unwrap()
    );
    let bytes = serde_json::to_vec(body).unwrap();
    let creds = sigv4::Credentials {
        access_key_id: key.into(),
        secret_access_key: secret.into(),
        session_token: None,
    };
    let params = sigv4::SigningParams {
        credentials: &creds,
        region: "us-east-1",
        service: "batch",
        time: sigv4::now_secs(),
    };
    let mut signed: Vec<(&str, &str)> = vec![("host", &host), ("content-type", "application/json")];
    signed.extend_from_slice(headers);
    let added = sigv4::sign(&params, "POST", u.path(), "", &signed, &bytes);
    let mut req = http.post(url);
    for (n, v) in &signed {
        req = req.header(*n, *v);
    }
    for (n, v) in added {
        req = req.header(n, v);
    }
    let r = req.body(bytes).send()?;
    let status = r.status().as_u16();
    Ok((status, r.json().unwrap_or(Value::Null)))
}

/// The first key of a credentials file.
pub fn first_key(path: &Path) -> (String, String) {
    let text = std::fs::read_to_string(path).expect("the credentials file");
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .expect("a key line");
    let (k, s) = line.split_once(char::is_whitespace).expect("KEY SECRET");
    (k.to_string(), s.trim().to_string())
}

/// Wait for a condition that an event makes true, up to 60 s.
pub fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut delay = Duration::from_millis(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(200));
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
pub mod local;
pub mod marks;
pub mod netns;
pub mod slurm;
pub mod sweep;

#[path = "../../../model/tests/common/figure.rs"]
mod figures;
#[allow(unused_imports)]
pub use figures::figure;
