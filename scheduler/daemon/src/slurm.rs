//! The Slurm thread of MANAGED compute environments (issue 18): it runs
//! Slurm's commands (`sbatch`, `squeue`, `scancel`, `sinfo`, `scontrol`)
//! for the state actor, which never waits on them, and tells the actor
//! what they said (as [`Request::Slurm`] reports).
//!
//! An allocation `ENV.SEQ` lives in `STATE/allocations/ENV.SEQ/`: its batch
//! script (`job.sh`: wait for the certificate, then `srun --overlap` one
//! `worker.sh` per node), the worker's command line (`worker.sh`), Slurm's
//! output (`slurm-JOBID.out`), when each step of its start happened
//! (`times`: sbatch, started, certificate, worker NODE; epoch seconds) and,
//! once Slurm has given it nodes, its
//! certificate: CN `ENV.SEQ.*` (its workers register as `ENV.SEQ.NODE`),
//! valid for the nodes' addresses, key 0600, issued by the cluster CA.

use crate::actor::ActorHandle;
use crate::api::Request;
use shoal_model::managed::{slurm_time, SlurmSettings};
use std::path::{Path, PathBuf};
use std::process::Command as Cmd;
use std::sync::mpsc;
use std::time::Duration;

/// The Slurm job name of an allocation: `shoal.ENV.SEQ`.
pub const JOB_PREFIX: &str = "shoal.";

/// How long `job.sh` waits for its certificate before it gives up.
pub const CERT_WAIT_S: u64 = 120;

/// What the actor asks of the Slurm thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Submit allocation `name` (`ENV.SEQ`).
    Submit {
        /// `ENV.SEQ`.
        name: String,
        /// Nodes.
        nodes: u32,
        /// `--time` (None: the partition's).
        time_limit_s: Option<u64>,
        /// Partition, account, more arguments.
        settings: SlurmSettings,
    },
    /// End an allocation.
    Cancel {
        /// `ENV.SEQ`.
        name: String,
        /// Slurm's job id.
        job_id: u64,
    },
    /// Report Shoal's Slurm jobs (and issue the certificates of those that
    /// now run).
    Poll,
    /// How many CPUs a node of `partition` has.
    Probe {
        /// The environment.
        env: String,
        /// The partition (None: the default one).
        partition: Option<String>,
    },
    /// An allocation is over (or ends): remove its directory (its
    /// certificate) once Slurm no longer lists it.
    Forget {
        /// `ENV.SEQ`.
        name: String,
    },
}

/// One of Shoal's Slurm jobs, as `squeue` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlurmJob {
    /// Slurm's job id.
    pub job_id: u64,
    /// `ENV.SEQ` (the job's name without [`JOB_PREFIX`]).
    pub name: String,
    /// Slurm's state (`PENDING`, `CONFIGURING`, `RUNNING`, `COMPLETING`, …).
    pub state: String,
    /// Its nodes, expanded.
    pub nodes: Vec<String>,
    /// When it ends at the latest (epoch seconds), once it runs.
    pub end_s: Option<u64>,
    /// CPUs it holds.
    pub cpus: u32,
    /// Why it waits (Slurm's reason).
    pub reason: String,
}

/// What the Slurm thread tells the actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// `sbatch` answered: the job id, or Slurm's error.
    Submitted {
        /// `ENV.SEQ`.
        name: String,
        /// Job id, or the error.
        result: Result<u64, String>,
    },
    /// Every Slurm job of Shoal's user named `shoal.*`, now.
    Jobs(Vec<SlurmJob>),
    /// A node's CPUs (None: Slurm did not say).
    Probed {
        /// The environment.
        env: String,
        /// CPUs per node.
        cpus: Option<u32>,
    },
}

/// What the Slurm thread needs to start workers.
#[derive(Debug, Clone)]
pub struct SlurmConfig {
    /// The scheduler's state directory (allocations go under it).
    pub state_dir: PathBuf,
    /// The CA directory (`ca.pem`, `ca.key`); None: no certificates can
    /// be issued, and submissions fail saying so.
    pub ca_dir: Option<PathBuf>,
    /// The URL workers reach the scheduler's worker listener at.
    pub worker_url: Option<String>,
    /// The `shoal` binary the nodes run.
    pub shoal: PathBuf,
}

impl SlurmConfig {
    fn dir(&self, name: &str) -> PathBuf {
        self.state_dir.join("allocations").join(name)
    }
}

/// Start the Slurm thread: it takes commands from `rx` and reports to
/// `actor`.
pub fn spawn(
    config: SlurmConfig,
    rx: mpsc::Receiver<Command>,
    actor: ActorHandle,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("shoal-slurm".into())
        .spawn(move || {
            // Allocations to forget once Slurm no longer lists them (their
            // workers may still be stopping in their directories).
            let mut forget: Vec<String> = Vec::new();
            loop {
                let c = match rx.recv_timeout(Duration::from_secs(1)) {
                    Ok(c) => c,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        sweep(&config, &mut forget);
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                };
                // Polls queued behind one another answer as one.
                let c = match c {
                    Command::Poll => {
                        let mut more = Vec::new();
                        while let Ok(n) = rx.try_recv() {
                            if n != Command::Poll {
                                more.push(n);
                            }
                        }
                        for n in more {
                            run(&config, n, &actor, &mut forget);
                        }
                        Command::Poll
                    }
                    c => c,
                };
                run(&config, c, &actor, &mut forget);
                sweep(&config, &mut forget);
            }
        })
}

/// Remove the directories of the allocations to forget that Slurm no
/// longer lists.
fn sweep(config: &SlurmConfig, forget: &mut Vec<String>) {
    if forget.is_empty() {
        return;
    }
    let Ok(jobs) = squeue() else { return };
    forget.retain(|name| {
        if jobs.iter().any(|j| &j.name == name) {
            return true;
        }
        let dir = config.dir(name);
        if dir.exists() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!("cannot remove {}: {e}", dir.display());
            }
        }
        false
    });
}

fn run(config: &SlurmConfig, c: Command, actor: &ActorHandle, forget: &mut Vec<String>) {
    match c {
        Command::Submit {
            name,
            nodes,
            time_limit_s,
            settings,
        } => {
            let result = submit(config, &name, nodes, time_limit_s, &settings);
            if let Err(e) = &result {
                tracing::warn!("allocation {name}: sbatch failed: {e}");
            }
            actor.tell(Request::Slurm(Report::Submitted { name, result }));
        }
        Command::Cancel { name, job_id } => {
            if let Err(e) = output(Cmd::new("scancel").arg(job_id.to_string())) {
                tracing::warn!("allocation {name}: scancel {job_id} failed: {e}");
            }
        }
        Command::Poll => match squeue() {
            Ok(jobs) => {
                for j in jobs.iter().filter(|j| is_running(&j.state)) {
                    let dir = config.dir(&j.name);
                    if dir.is_dir() && !dir.join("worker.pem").exists() {
                        if let Err(e) = issue(config, &j.name, &dir, &j.nodes) {
                            tracing::error!("allocation {}: {e}", j.name);
                        }
                    }
                }
                actor.tell(Request::Slurm(Report::Jobs(jobs)));
            }
            Err(e) => tracing::warn!("squeue failed: {e}"),
        },
        Command::Probe { env, partition } => {
            let mut c = Cmd::new("sinfo");
            c.args(["--noheader", "--format=%c"]);
            if let Some(p) = &partition {
                c.arg(format!("--partition={p}"));
            }
            let cpus = output(&mut c).ok().and_then(|o| {
                o.lines()
                    .filter_map(|l| l.trim().trim_end_matches('+').parse::<u32>().ok())
                    .max()
            });
            actor.tell(Request::Slurm(Report::Probed { env, cpus }));
        }
        Command::Forget { name } => {
            if !forget.contains(&name) {
                forget.push(name);
            }
        }
    }
}

/// Running or about to (its nodes are set).
pub fn is_running(state: &str) -> bool {
    matches!(state, "RUNNING" | "CONFIGURING")
}

/// A command's standard output, or what went wrong (its standard error).
fn output(c: &mut Cmd) -> Result<String, String> {
    let name = c.get_program().to_string_lossy().into_owned();
    let o = c.stdin(std::process::Stdio::null()).output().map_err(|e| {
        format!("cannot run {name}: {e} (is Slurm's client installed, and SLURM_CONF set?)")
    })?;
    if !o.status.success() {
        let err = String::from_utf8_lossy(&o.stderr).trim().to_string();
        let err = if err.is_empty() {
            format!("{name} exited with {}", o.status)
        } else {
            err
        };
        return Err(err);
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Seconds since the epoch, with a fraction.
fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `'…'` for a POSIX shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The allocation's files and `sbatch`: Slurm's job id.
fn submit(
    config: &SlurmConfig,
    name: &str,
    nodes: u32,
    time_limit_s: Option<u64>,
    s: &SlurmSettings,
) -> Result<u64, String> {
    let url = config.worker_url.as_deref().ok_or(
        "the scheduler has no worker listener its allocations' workers can reach: start it with --worker-listen ADDRESS:PORT (an address the nodes reach) and --tls-dir DIR holding the CA's ca.key",
    )?;
    if config
        .ca_dir
        .as_deref()
        .is_none_or(|d| !shoal_pki::has_ca(d))
    {
        return Err("the scheduler cannot issue its allocations' certificates: put the CA's ca.key beside ca.pem in --tls-dir (shoal ca init)".into());
    }
    let dir = config.dir(name);
    write_scripts(&dir, name, url, &config.shoal)
        .map_err(|e| format!("cannot write {}: {e}", dir.display()))?;
    let mut c = Cmd::new("sbatch");
    c.arg("--parsable")
        .arg(format!("--job-name={JOB_PREFIX}{name}"))
        .arg(format!("--nodes={nodes}"))
        .arg("--ntasks-per-node=1")
        .arg(format!("--output={}/slurm-%j.out", dir.display()))
        .arg(format!("--chdir={}", dir.display()));
    if let Some(t) = time_limit_s {
        c.arg(format!("--time={}", slurm_time(t)));
    }
    if let Some(p) = &s.partition {
        c.arg(format!("--partition={p}"));
    }
    if let Some(a) = &s.account {
        c.arg(format!("--account={a}"));
    }
    c.args(&s.extra_args).arg(dir.join("job.sh"));
    // When each step of the allocation's start happened (`shoal bench`'s
    // and people's record): sbatch here, the rest in its scripts.
    let stamp = format!("sbatch {:.3}\n", now_s());
    let _ = std::fs::write(dir.join("times"), stamp);
    let out = output(&mut c)?;
    let id = out.trim().split(';').next().unwrap_or("");
    id.parse()
        .map_err(|_| format!("sbatch printed {:?}, not a job id", out.trim()))
}

/// `job.sh` and `worker.sh` of allocation `name` in `dir` (0700).
fn write_scripts(dir: &Path, name: &str, url: &str, shoal: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let d = quote(&dir.to_string_lossy());
    let job = format!(
        "#!/bin/sh\n\
         # Shoal allocation {name}: one worker per node, once the scheduler has\n\
         # issued the allocation's certificate for the nodes Slurm gave it.\n\
         d={d}\n\
         echo \"started $(date +%s.%N)\" >>\"$d/times\"\n\
         i=0\n\
         while [ ! -s \"$d/worker.pem\" ]; do\n\
         \x20   i=$((i + 1))\n\
         \x20   if [ \"$i\" -gt {wait} ]; then echo \"shoal: no certificate in $d after {CERT_WAIT_S} s\" >&2; exit 1; fi\n\
         \x20   sleep 0.2\n\
         done\n\
         echo \"certificate $(date +%s.%N)\" >>\"$d/times\"\n\
         SHOAL_ALLOCATION_END=\"$(SLURM_TIME_FORMAT=%s squeue --noheader --jobs=\"$SLURM_JOB_ID\" --format=%e 2>/dev/null || true)\"\n\
         export SHOAL_ALLOCATION_END\n\
         exec srun --overlap --ntasks-per-node=1 --kill-on-bad-exit=0 \"$d/worker.sh\"\n",
        wait = CERT_WAIT_S * 5,
    );
    let worker = format!(
        "#!/bin/sh\n\
         # A Shoal worker on one node of allocation {name}.\n\
         d={d}\n\
         echo \"worker $SLURMD_NODENAME $(date +%s.%N)\" >>\"$d/times\"\n\
         exec {shoal} worker --scheduler {url} --name {prefix}\"$SLURMD_NODENAME\" --address auto \\\n\
         \x20   --cpus \"${{SLURM_CPUS_ON_NODE:-1}}\" --stop-grace 10 \\\n\
         \x20   --labels \"shoal.allocation=$SLURM_JOB_ID,shoal.allocation-end=${{SHOAL_ALLOCATION_END:-}}\" \\\n\
         \x20   --state \"$d/nodes/$SLURMD_NODENAME\" --ca \"$d/ca.pem\" --cert \"$d/worker.pem\" --key \"$d/worker.key\"\n",
        shoal = quote(&shoal.to_string_lossy()),
        url = quote(url),
        prefix = quote(&format!("{name}.")),
    );
    for (file, text) in [("job.sh", job), ("worker.sh", worker)] {
        let p = dir.join(file);
        std::fs::write(&p, text)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// The allocation's certificate, for the addresses of its nodes.
fn issue(config: &SlurmConfig, name: &str, dir: &Path, nodes: &[String]) -> Result<(), String> {
    let ca = config
        .ca_dir
        .as_deref()
        .ok_or("no CA to issue the allocation's certificate")?;
    let mut sans = Vec::new();
    if !nodes.is_empty() {
        let out = output(
            Cmd::new("scontrol")
                .args(["show", "node", "--oneliner"])
                .arg(nodes.join(",")),
        )?;
        for line in out.lines() {
            for field in line.split_whitespace() {
                if let Some(a) = field
                    .strip_prefix("NodeAddr=")
                    .or_else(|| field.strip_prefix("NodeHostName="))
                {
                    sans.push(a.to_string());
                }
            }
        }
    }
    let mut ips: Vec<std::net::IpAddr> = Vec::new();
    let mut dns: Vec<String> = Vec::new();
    for a in sans {
        match a.parse() {
            Ok(ip) => ips.push(ip),
            Err(_) => {
                use std::net::ToSocketAddrs;
                if let Ok(addrs) = (a.as_str(), 0).to_socket_addrs() {
                    ips.extend(addrs.map(|s| s.ip()));
                }
                dns.push(a);
            }
        }
    }
    ips.sort();
    ips.dedup();
    dns.sort();
    dns.dedup();
    shoal_pki::issue_allocation(ca, dir, &format!("{name}."), &ips, &dns)
        .map_err(|e| format!("cannot issue its certificate: {e}"))
}

/// Shoal's Slurm jobs of this user, now.
fn squeue() -> Result<Vec<SlurmJob>, String> {
    let out = output(Cmd::new("squeue").env("SLURM_TIME_FORMAT", "%s").args([
        "--me",
        "--noheader",
        "--format=%i|%j|%T|%N|%e|%C|%r",
    ]))?;
    Ok(parse_squeue(&out))
}

/// `squeue --format=%i|%j|%T|%N|%e|%C|%r` lines of Shoal's jobs.
pub fn parse_squeue(out: &str) -> Vec<SlurmJob> {
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.trim().splitn(7, '|').collect();
            let [id, name, state, nodes, end, cpus, reason] = f.as_slice() else {
                return None;
            };
            let name = name.strip_prefix(JOB_PREFIX)?;
            Some(SlurmJob {
                job_id: id.parse().ok()?,
                name: name.to_string(),
                state: state.to_string(),
                nodes: expand_hostlist(nodes),
                end_s: end.parse().ok().filter(|&e: &u64| e > 0),
                cpus: cpus.parse().unwrap_or(0),
                reason: reason.to_string(),
            })
        })
        .collect()
}

/// Slurm's host list (`n[1-3,5],gpu7`) as names.
pub fn expand_hostlist(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = list.trim();
    while !rest.is_empty() {
        // One item: up to a comma outside brackets.
        let mut depth = 0;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                ',' if depth == 0 => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let item = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or("");
        if item.is_empty() || item == "(null)" {
            continue;
        }
        match (item.find('['), item.rfind(']')) {
            (Some(a), Some(b)) if a < b => {
                let (prefix, suffix) = (&item[..a], &item[b + 1..]);
                for range in item[a + 1..b].split(',') {
                    match range.split_once('-') {
                        Some((lo, hi)) => {
                            let width = lo.len();
                            if let (Ok(l), Ok(h)) = (lo.parse::<u64>(), hi.parse::<u64>()) {
                                for n in l..=h {
                                    out.push(format!("{prefix}{n:0width$}{suffix}"));
                                }
                            }
                        }
                        None => out.push(format!("{prefix}{range}{suffix}")),
                    }
                }
            }
            _ => out.push(item.to_string()),
        }
    }
    out
}

/// How often the actor polls Slurm while an allocation is on its way.
pub const POLL_COMING: Duration = Duration::from_millis(250);
/// ... and while allocations only run.
pub const POLL_RUNNING: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_lists_expand_as_slurm_writes_them() {
        assert_eq!(expand_hostlist("n1"), vec!["n1"]);
        assert_eq!(expand_hostlist("n[1-3]"), vec!["n1", "n2", "n3"]);
        assert_eq!(
            expand_hostlist("n[01-02,7],gpu[3]x,login"),
            vec!["n01", "n02", "n7", "gpu3x", "login"]
        );
        assert_eq!(expand_hostlist(""), Vec::<String>::new());
        assert_eq!(expand_hostlist("(null)"), Vec::<String>::new());
    }

    #[test]
    fn squeue_lines_of_shoal_jobs_are_read_and_others_left_out() {
        let out = "17|shoal.slurm.3|RUNNING|n[1-2]|1764820800|4|None\n\
                   18|shoal.slurm.4|PENDING||0|2|Resources\n\
                   19|someone-else|RUNNING|n3|1764820800|1|None\n";
        let jobs = parse_squeue(out);
        assert_eq!(
            jobs,
            vec![
                SlurmJob {
                    job_id: 17,
                    name: "slurm.3".into(),
                    state: "RUNNING".into(),
                    nodes: vec!["n1".into(), "n2".into()],
                    end_s: Some(1764820800),
                    cpus: 4,
                    reason: "None".into(),
                },
                SlurmJob {
                    job_id: 18,
                    name: "slurm.4".into(),
                    state: "PENDING".into(),
                    nodes: vec![],
                    end_s: None,
                    cpus: 2,
                    reason: "Resources".into(),
                },
            ]
        );
    }

    #[test]
    fn scripts_quote_what_they_are_given() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
