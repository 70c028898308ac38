//! Shared helpers for the end-to-end tests that run the real `shoal` binary.
//!
//! Two ways to run a scheduler: [`Scheduler`] (owns its state directory,
//! collects the scheduler's output for failure messages, and is killed with
//! SIGKILL when dropped) and the older [`start_scheduler`] / [`Proc`] pair
//! (caller's directory, SIGTERM when dropped). Each test binary uses some of
//! these, hence `allow(dead_code)`.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The binary under test.
pub const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");

/// How long a scheduler may take to print its endpoint line.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `shoal scheduler --listen 127.0.0.1:0 --state DIR`.
///
/// Its stdout and stderr are drained by threads into a buffer (so it never
/// blocks on a full pipe, and never sees EPIPE); [`Scheduler::output`]
/// returns them for failure messages. Dropping it kills the process
/// (SIGKILL) and then removes the temporary state directory, if it made one.
pub struct Scheduler {
    /// `http://127.0.0.1:PORT`, from the first line of stdout.
    pub endpoint: String,
    /// The state directory (`--state`).
    pub dir: PathBuf,
    child: Child,
    output: Arc<Mutex<String>>,
    // Declared last: dropped after `child` is killed by `Drop`.
    _tmp: Option<tempfile::TempDir>,
}

impl Scheduler {
    /// Start a scheduler on a new, empty temporary state directory.
    pub fn start() -> Scheduler {
        let tmp = tempfile::tempdir().expect("temporary state directory");
        let mut s = Scheduler::start_in(tmp.path());
        s._tmp = Some(tmp);
        s
    }

    /// Start a scheduler on `dir` (for instance the `dir` of one that was
    /// killed, to check what survived). The caller keeps `dir` alive.
    pub fn start_in(dir: &Path) -> Scheduler {
        let mut child = Command::new(SHOAL)
            .args(["scheduler", "--listen", "127.0.0.1:0", "--state"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SHOAL} scheduler: {e}"));
        let output = Arc::new(Mutex::new(String::new()));
        let stderr_done = drain(child.stderr.take().expect("piped stderr"), &output);
        // The first stdout line goes to us through a channel (so that a
        // scheduler that never prints it fails the test instead of hanging
        // it); the thread then keeps draining stdout.
        let (tx, rx) = mpsc::channel();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let out = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut first = String::new();
            let _ = stdout.read_line(&mut first);
            out.lock().unwrap().push_str(&first);
            let _ = tx.send(first);
            let mut rest = String::new();
            while matches!(stdout.read_line(&mut rest), Ok(n) if n > 0) {
                out.lock().unwrap().push_str(&rest);
                rest.clear();
            }
        });
        let first = rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
        match first.trim().strip_prefix("endpoint: ") {
            Some(endpoint) => Scheduler {
                endpoint: endpoint.to_string(),
                dir: dir.to_path_buf(),
                child,
                output,
                _tmp: None,
            },
            None => {
                let _ = child.kill();
                let status = child.wait();
                let _ = stderr_done.recv_timeout(Duration::from_secs(5));
                panic!(
                    "`shoal scheduler --state {}` did not print `endpoint: URL` first \
                     (first line {first:?}, exit {status:?}); its output:\n{}",
                    dir.display(),
                    output.lock().unwrap()
                );
            }
        }
    }

    /// SIGKILL: no chance to flush or clean up. Waits for the process.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// POST `body` to `{endpoint}/v1/{op}`; see [`call_op`].
    pub fn call(&self, op: &str, body: Value) -> (u16, Value) {
        call_op(&self.endpoint, op, body)
    }

    /// Everything the scheduler printed so far (stdout and stderr).
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Append everything `r` produces to `into`; the receiver gets `()` at EOF.
fn drain(r: impl Read + Send + 'static, into: &Arc<Mutex<String>>) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel();
    let into = Arc::clone(into);
    std::thread::spawn(move || {
        let mut r = BufReader::new(r);
        let mut line = String::new();
        while matches!(r.read_line(&mut line), Ok(n) if n > 0) {
            into.lock().unwrap().push_str(&line);
            line.clear();
        }
        let _ = tx.send(());
    });
    rx
}

/// One blocking HTTP client for all of a test binary's calls (threads
/// included), so that calls reuse connections.
fn http() -> &'static reqwest::blocking::Client {
    static HTTP: OnceLock<reqwest::blocking::Client> = OnceLock::new();
    HTTP.get_or_init(reqwest::blocking::Client::new)
}

/// POST `body` as JSON to the AWS-style operation `{endpoint}/v1/{op}`
/// (`op` like `submitjob`); the HTTP status and the JSON reply
/// (`Value::Null` when the reply is not JSON). Panics only when there is no
/// HTTP reply at all.
pub fn call_op(endpoint: &str, op: &str, body: Value) -> (u16, Value) {
    let url = format!("{endpoint}/v1/{op}");
    let r = http()
        .post(&url)
        .json(&body)
        .send()
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
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
    let mut child = Command::new(SHOAL)
        .args(["scheduler", "--listen", listen, "--state"])
        .arg(dir)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("shoal scheduler starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("endpoint line");
    let endpoint = line
        .trim()
        .strip_prefix("endpoint: ")
        .expect("first line is the endpoint")
        .to_string();
    (Proc(child), endpoint)
}

/// POST a JSON body to a full URL; the status and the JSON reply.
pub fn call(http: &reqwest::blocking::Client, url: &str, body: &Value) -> (u16, Value) {
    let r = http.post(url).json(body).send().expect("request");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
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
