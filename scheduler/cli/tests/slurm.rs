//! The emulated Slurm cluster the Slurm-backed compute environments are
//! tested against (`scripts/slurm-cluster.sh`): an allocation spans its
//! nodes, each step has its node's own address, and nothing is left once
//! it is down. Needs root, as CI has.

mod common;

use common::slurm::Slurm;
use common::wait_for;

#[test]
fn an_allocation_spans_its_nodes_each_with_its_own_address_and_nothing_is_left_after() {
    let tmp = tempfile::tempdir().unwrap();
    let mut slurm = Slurm::up(&tmp.path().join("slurm"), 2, 1);
    let out = tmp.path().join("out.txt");
    let step = "srun --overlap -N2 -n2 sh -c 'echo step $SLURMD_NODENAME $(hostname -I)'";
    let submitted = slurm.run(
        "sbatch",
        &[
            "--parsable",
            "-N2",
            "--time=1",
            &format!("--output={}", out.display()),
            "--wrap",
            step,
        ],
    );
    let id = String::from_utf8_lossy(&submitted.stdout)
        .trim()
        .to_string();
    assert!(!id.is_empty());
    wait_for("the allocation to end", || slurm.queued().is_empty());
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    for n in 1..=2 {
        let want = format!("step n{n} 10.202.{}.{n}", slurm.subnet);
        assert!(
            text.lines().any(|l| l.trim() == want),
            "{want:?} in {text:?}"
        );
    }
    // A job still running when the cluster goes down goes with it.
    let out2 = format!("--output={}", tmp.path().join("out2.txt").display());
    slurm.run("sbatch", &["-N1", &out2, "--wrap", "sleep 600"]);
    wait_for("the second job to run", || {
        let out = slurm.run("squeue", &["-h", "-t", "R", "-o", "%i"]);
        !out.stdout.is_empty()
    });
    let daemons = slurm.daemons();
    assert_eq!(daemons.len(), 4, "munged, slurmctld, 2 slurmd: {daemons:?}");
    let namespaces = slurm.namespaces();
    slurm.down();
    for pid in daemons {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "daemon {pid} still runs"
        );
    }
    let listed = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    for ns in namespaces {
        assert!(!listed.contains(&ns), "{ns} is left: {listed}");
    }
    let procs = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let cmd = std::fs::read_to_string(e.path().join("cmdline")).ok()?;
            cmd.contains(&*tmp.path().to_string_lossy()).then_some(cmd)
        });
    let left: Vec<String> = procs.collect();
    assert!(
        left.is_empty(),
        "processes of the cluster are left: {left:?}"
    );
}
