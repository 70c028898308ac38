//! The benchmark programs under real `mpirun` (Open MPI): output parses in
//! OSU's format and as JSON, every size is there, figures are positive, and
//! the shared-memory runs really go through vader (not TCP) and the TCP runs
//! through TCP. No figure is compared with a threshold: these are not timed
//! tests. The runs take a lock, one at a time, because the machine has two
//! cores and both MPI and the floor spin while they wait.

use serde_json::Value;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const OSU: &str = env!("CARGO_BIN_EXE_shoal-osu");
const SIZES: &str = "0,1,8,1024,65536";
const ALL: [u64; 5] = [0, 1, 8, 1024, 65536];
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Run `cmd`, killing it (TERM, then KILL) after `secs`.
fn run(mut cmd: Command, secs: u64) -> Out {
    if nix::unistd::geteuid().is_root() {
        cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {cmd:?}: {e} (install Open MPI: scripts/install-deps.sh)")
        });
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut termed = false;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            if !termed {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
                termed = true;
            } else if Instant::now() > deadline + Duration::from_secs(10) {
                let _ = child.kill();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = Out {
        code: status.code(),
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    };
    assert!(
        !termed,
        "{cmd:?} timed out after {secs} s:\n{}\n{}",
        out.stdout, out.stderr
    );
    out
}

/// `mpirun -np N` with ob1, the given `--mca name=value`s and our program.
fn mpirun_np(np: u32, mca: &[&str], args: &[&str]) -> Out {
    let mut cmd = Command::new("mpirun");
    cmd.args([
        "-np",
        &np.to_string(),
        "--oversubscribe",
        "--bind-to",
        "none",
    ]);
    cmd.args(["--mca", "pml", "ob1"]);
    for m in mca {
        let (k, v) = m.split_once('=').unwrap();
        cmd.args(["--mca", k, v]);
    }
    cmd.arg(OSU).args(args);
    run(cmd, 300)
}

/// As `mpirun_np` with 2 ranks, which must succeed.
fn mpirun(mca: &[&str], args: &[&str]) -> Out {
    let out = mpirun_np(2, mca, args);
    assert_eq!(
        out.code,
        Some(0),
        "mpirun {mca:?} {args:?} failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    out
}

fn floor(args: &[&str]) -> Out {
    let mut cmd = Command::new(OSU);
    cmd.arg("floor").args(args);
    run(cmd, 300)
}

/// `size value…` rows after OSU's `#` header lines.
fn rows(text: &str) -> Vec<(u64, Vec<f64>)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut it = l.split_whitespace();
            let size = it
                .next()
                .unwrap()
                .parse()
                .unwrap_or_else(|_| panic!("bad row {l:?}"));
            let vals = it
                .map(|v| v.parse().unwrap_or_else(|_| panic!("bad row {l:?}")))
                .collect();
            (size, vals)
        })
        .collect()
}

/// The text has `header`, the OSU column header, and one row of
/// `columns` positive figures per size, in order.
fn check(text: &str, header: &str, sizes: &[u64], columns: usize) {
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(header) && first.ends_with("v7.3 (shoal-osu)"),
        "no {header:?} title:\n{text}"
    );
    let col = if header.contains("Bandwidth") {
        "# Size      Bandwidth (MB/s)"
    } else {
        "# Size          Latency (us)"
    };
    assert!(
        text.lines().nth(1).unwrap_or_default().starts_with(col),
        "{text}"
    );
    let r = rows(text);
    assert_eq!(
        r.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        sizes,
        "{text}"
    );
    for (s, v) in &r {
        assert_eq!(v.len(), columns, "row {s}: {v:?}");
        assert!(
            v.iter().all(|x| *x > 0.0),
            "row {s} has a non-positive figure: {v:?}"
        );
    }
    for l in text.lines().skip(2) {
        // OSU's %-10d%18.2f (and 18 wide for each added column).
        assert_eq!(l.len(), 10 + 18 * columns, "{l:?}");
    }
}

/// JSON rows: one per size, in order, with positive `keys`.
fn check_json(text: &str, bench: &str, sizes: &[u64], keys: &[&str]) {
    let j: Vec<Value> = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(j.len(), sizes.len(), "{text}");
    for (row, size) in j.iter().zip(sizes) {
        assert_eq!(row["benchmark"], bench, "{row}");
        assert_eq!(row["size"], *size, "{row}");
        for k in keys {
            assert!(row[k].as_f64().unwrap_or(0.0) > 0.0, "{k} in {row}");
        }
    }
}

/// Per-peer BTL choice from `btl_base_verbose`: each of ranks 0 and 1 says
/// "mca: bml: Using <btl> btl for send to [[job,1],<peer>]".
fn btl_to_peer(log: &str, btl: &str) -> usize {
    [",1],1]", ",1],0]"]
        .iter()
        .filter(|peer| {
            log.lines().any(|l| {
                l.contains(&format!("mca: bml: Using {btl} btl for send to")) && l.contains(*peer)
            })
        })
        .count()
}

#[test]
fn latency_over_shared_memory_prints_osu_rows_json_and_meta() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (json, meta) = (dir.path().join("lat.json"), dir.path().join("meta.json"));
    let out = mpirun(
        &["btl=self,vader", "btl_vader_single_copy_mechanism=none"],
        &[
            "latency",
            "--sizes",
            SIZES,
            "--iterations",
            "200",
            "--percentiles",
            "--json",
            json.to_str().unwrap(),
            "--meta",
            meta.to_str().unwrap(),
        ],
    );
    check(&out.stdout, "# OSU MPI Latency Test", &ALL, 3);
    assert!(
        out.stdout
            .lines()
            .nth(1)
            .unwrap()
            .ends_with("P50 (us)          P99 (us)"),
        "{}",
        out.stdout
    );
    check_json(
        &std::fs::read_to_string(&json).unwrap(),
        "latency",
        &ALL,
        &["latency_us", "p50_us", "p99_us"],
    );
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
    assert_eq!(m["transport_as_seen"], "self,vader", "{m}");
    assert_eq!(m["single_copy_mechanism"], "none", "{m}");
    assert_eq!(m["ranks"], 2);
    assert_eq!(m["hostnames"].as_array().unwrap().len(), 2, "{m}");
    assert!(
        m["mpi_library"].as_str().unwrap().contains("Open MPI"),
        "{m}"
    );
}

#[test]
fn default_output_is_plain_osu_and_sizes_double_up_to_max_size() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = mpirun(
        &["btl=self,vader"],
        &["latency", "--max-size", "64", "--iterations", "50"],
    );
    check(
        &out.stdout,
        "# OSU MPI Latency Test",
        &[0, 1, 2, 4, 8, 16, 32, 64],
        1,
    );
    assert_eq!(
        out.stdout.lines().nth(1),
        Some("# Size          Latency (us)")
    );
}

#[test]
fn shared_memory_runs_use_vader_for_the_peer_and_never_tcp() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // Also with TCP on offer: vader must still be the one used for the peer.
    for btl in ["btl=self,vader", "btl=self,vader,tcp"] {
        let out = mpirun(
            &[btl, "btl_tcp_if_include=lo", "btl_base_verbose=100"],
            &["latency", "--sizes", "8,65536", "--iterations", "100"],
        );
        check(&out.stdout, "# OSU MPI Latency Test", &[8, 65536], 1);
        let log = format!("{}{}", out.stdout, out.stderr);
        assert_eq!(
            btl_to_peer(&log, "vader"),
            2,
            "{btl}: vader not used for the peer:\n{log}"
        );
        assert_eq!(
            btl_to_peer(&log, "tcp"),
            0,
            "{btl}: TCP used for the peer:\n{log}"
        );
        assert!(!log.contains("Using tcp btl"), "{btl}: TCP used:\n{log}");
    }
}

#[test]
fn latency_over_tcp_uses_the_tcp_transport_only() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = mpirun(
        &[
            "btl=self,tcp",
            "btl_tcp_if_include=lo",
            "btl_base_verbose=100",
        ],
        &[
            "latency",
            "--sizes",
            SIZES,
            "--iterations",
            "100",
            "--json",
            "-",
        ],
    );
    let log = out.stderr.clone();
    assert_eq!(
        btl_to_peer(&log, "tcp"),
        2,
        "TCP not used for the peer:\n{log}"
    );
    assert!(!log.contains("Using vader btl"), "vader used:\n{log}");
    assert!(!log.contains("component vader"), "vader was loaded:\n{log}");
    // The verbose log goes to stderr; stdout is the JSON alone.
    check_json(
        &out.stdout,
        "latency",
        &ALL,
        &["latency_us", "p50_us", "p99_us"],
    );
}

#[test]
fn bandwidth_and_bidirectional_bandwidth_print_rows() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = mpirun(
        &["btl=self,vader"],
        // 0 is dropped: OSU's bandwidth tests start at 1 byte.
        &[
            "bw",
            "--sizes",
            "0,1,8,1024,65536",
            "--iterations",
            "5",
            "--percentiles",
        ],
    );
    check(
        &out.stdout,
        "# OSU MPI Bandwidth Test",
        &[1, 8, 1024, 65536],
        1,
    );
    let out = mpirun(
        &["btl=self,tcp", "btl_tcp_if_include=lo"],
        &[
            "bw",
            "--sizes",
            "8,1048576",
            "--iterations",
            "3",
            "--json",
            "-",
        ],
    );
    check_json(&out.stdout, "bw", &[8, 1048576], &["bandwidth_mbps"]);
    let out = mpirun(
        &["btl=self,vader"],
        &["bibw", "--sizes", "8,65536", "--iterations", "5"],
    );
    check(
        &out.stdout,
        "# OSU MPI Bi-Directional Bandwidth Test",
        &[8, 65536],
        1,
    );
    let out = mpirun(
        &["btl=self,vader"],
        &[
            "bibw",
            "--sizes",
            "8,65536",
            "--iterations",
            "5",
            "--json",
            "-",
        ],
    );
    check_json(&out.stdout, "bibw", &[8, 65536], &["bandwidth_mbps"]);
}

#[test]
fn multi_pair_latency_runs_with_two_and_four_ranks() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = mpirun(
        &["btl=self,vader"],
        &["multi-lat", "--sizes", "0,8", "--iterations", "100"],
    );
    check(&out.stdout, "# OSU MPI Multi Latency Test", &[0, 8], 1);
    let out = mpirun_np(
        4,
        &["btl=self,vader"],
        &[
            "multi-lat",
            "--sizes",
            "0,8",
            "--iterations",
            "50",
            "--json",
            "-",
        ],
    );
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    check_json(
        &out.stdout,
        "multi-lat",
        &[0, 8],
        &["latency_us", "p50_us", "p99_us"],
    );
}

#[test]
fn too_few_ranks_are_refused_clearly_with_exit_code_2() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // Under mpirun with one rank, and started alone (an MPI singleton).
    let out = mpirun_np(1, &["btl=self"], &["latency"]);
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr.contains("needs exactly 2 ranks, got 1"),
        "{}",
        out.stderr
    );
    let mut cmd = Command::new(OSU);
    cmd.args(["bw", "--sizes", "8"]).env("OMPI_MCA_btl", "self");
    let out = run(cmd, 120);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("needs exactly 2 ranks, got 1"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let out = mpirun_np(3, &["btl=self,vader"], &["multi-lat", "--sizes", "8"]);
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("an even number"), "{}", out.stderr);
}

#[test]
fn bad_arguments_fail_without_panicking() {
    for args in [
        vec!["floor", "--transport", "udp"],
        vec!["floor", "--sizes", "2000000000"],
        vec!["latency", "--sizes", "x"],
        vec!["bw", "--sizes", "0"],
    ] {
        let mut cmd = Command::new(OSU);
        cmd.args(&args);
        let out = run(cmd, 60);
        assert!(matches!(out.code, Some(1 | 2)), "{args:?}: {:?}", out.code);
        assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.is_empty(), "{args:?}: no message");
    }
}

#[test]
fn the_floor_runs_over_shared_memory_and_tcp() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for t in ["shm", "tcp"] {
        let out = floor(&[
            "--transport",
            t,
            "--sizes",
            SIZES,
            "--iterations",
            "200",
            "--percentiles",
        ]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        check(
            &out.stdout,
            &format!("# Shoal floor ({t}, no MPI) Latency Test"),
            &ALL,
            3,
        );
        let out = floor(&[
            "--transport",
            t,
            "--sizes",
            "0,4096",
            "--iterations",
            "100",
            "--json",
            "-",
        ]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        check_json(
            &out.stdout,
            &format!("floor-{t}"),
            &[0, 4096],
            &["latency_us", "p50_us", "p99_us"],
        );
    }
}

/// The floor's child (the only child of `pid`).
fn child_of(pid: u32) -> Option<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn gone(pid: i32) -> bool {
    // Reaped, or a zombie waiting for its parent.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z')),
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Start a floor over shared memory that runs for ever; (process, its child).
fn endless_floor() -> (std::process::Child, i32) {
    let p = Command::new(OSU)
        .args(["floor", "--sizes", "64", "--iterations", "4000000000"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut c = None;
    wait_until("the floor forks", || {
        c = child_of(p.id());
        c.is_some()
    });
    (p, c.unwrap())
}

#[test]
fn a_killed_floor_leaves_no_shared_memory_file_and_no_process() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let seg = |pid: u32| std::path::PathBuf::from(format!("/dev/shm/shoal-osu-floor-{pid}"));

    // A finished run leaves nothing.
    let out = floor(&["--sizes", "0,8", "--iterations", "10"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    // Kill the parent: its child follows and /dev/shm has nothing left.
    let (mut p, c) = endless_floor();
    assert!(
        !seg(p.id()).exists(),
        "the segment's name should be gone once mapped"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(p.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    p.wait().unwrap();
    wait_until("the child dies with its parent", || gone(c));
    assert!(!seg(p.id()).exists());

    // Kill the child: the parent notices, fails and leaves nothing.
    let (p, c) = endless_floor();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let pid = p.id();
    let out = p.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("went away"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!seg(pid).exists());
}
