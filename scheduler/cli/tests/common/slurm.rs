//! A real Slurm for the tests: `scripts/slurm-cluster.sh` (Debian's
//! slurm-wlm, a munged of its own, one slurmctld, one `slurmd -N nX` per
//! network namespace), started in the test's own directory and stopped
//! when the value is dropped.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The script, from the repository root.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/slurm-cluster.sh")
}

/// An emulated Slurm cluster; `down` when dropped.
pub struct Slurm {
    pub dir: PathBuf,
    pub conf: PathBuf,
    /// The nodes' subnet: node X is 10.202.`subnet`.X.
    pub subnet: u8,
    pub nodes: u32,
    down: bool,
}

impl Slurm {
    /// Start `nodes` nodes of `cpus` CPUs each under `dir`.
    pub fn up(dir: &Path, nodes: u32, cpus: u32) -> Slurm {
        let subnet = (std::process::id() % 200 + 20) as u8;
        let out = Command::new("bash")
            .arg(script())
            .arg("up")
            .arg(dir)
            .args(["--nodes", &nodes.to_string(), "--cpus", &cpus.to_string()])
            .args(["--subnet", &subnet.to_string()])
            .output()
            .expect("run scripts/slurm-cluster.sh");
        assert!(
            out.status.success(),
            "slurm-cluster up: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Slurm {
            dir: dir.to_path_buf(),
            conf: dir.join("slurm.conf"),
            subnet,
            nodes,
            down: false,
        }
    }

    /// A Slurm client command (`sbatch`, `squeue`, …) of this cluster.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// Run a client command; its output, which must be a success.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        let out = self.cmd(program).args(args).output().expect(program);
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The ids of the jobs in the queue.
    pub fn queued(&self) -> Vec<String> {
        let out = self.run("squeue", &["-h", "-o", "%i"]);
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// The PIDs the script recorded (munged, slurmctld, each slurmd).
    pub fn daemons(&self) -> Vec<i32> {
        std::fs::read_to_string(self.dir.join("pids"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// The nodes' network namespaces.
    pub fn namespaces(&self) -> Vec<String> {
        (1..=self.nodes)
            .map(|n| format!("sl{}n{n}", self.subnet))
            .collect()
    }

    /// Stop it and remove what it made.
    pub fn down(&mut self) {
        if std::mem::replace(&mut self.down, true) {
            return;
        }
        let _ = Command::new("bash")
            .arg(script())
            .arg("down")
            .arg(&self.dir)
            .status();
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        self.down();
    }
}
