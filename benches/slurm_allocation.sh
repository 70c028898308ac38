#!/usr/bin/env bash
# Submit -> RUNNING when a job needs a new Slurm allocation (issue 18), and
# the share of it that is Slurm's: an emulated Slurm cluster
# (scripts/slurm-cluster.sh), a scheduler with a MANAGED environment on it
# (idle timeout 1 s), and N one-node `true` jobs submitted one at a time,
# each after the previous allocation has ended, so that each needs its own.
# From each allocation's `times` file and the job's timestamps:
#
#   allocator   submit -> sbatch called (Shoal: the allocator's round)
#   slurm       sbatch -> the batch script starts (Slurm: queue, launch)
#   certificate script start -> certificate there (Shoal: squeue poll, issue)
#   step        certificate -> worker.sh runs on the node (Slurm: srun step)
#   worker      worker.sh -> job RUNNING (Shoal: worker start, registration,
#               placement, the task's start)
#
# Usage: benches/slurm_allocation.sh [--runs N] [--json]   (root; run
# scripts/install-deps.sh and cargo build --release first)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
runs=10
json=0
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --json) json=1; shift ;;
    *) echo "usage: $0 [--runs N] [--json]" >&2; exit 2 ;;
    esac
done
shoal="$root/target/release/shoal"
[ -x "$shoal" ] || { echo "build first: cargo build --release" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }
export PATH="$root/.venv/bin:$PATH"
work="$(mktemp -d)"
sched_pid=""
cleanup() {
    [ -n "$sched_pid" ] && kill "$sched_pid" 2>/dev/null && wait "$sched_pid" 2>/dev/null || true
    bash "$root/scripts/slurm-cluster.sh" down "$work/slurm" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
subnet=$(( ($$ % 200) + 20 ))
bash "$root/scripts/slurm-cluster.sh" up "$work/slurm" --nodes 2 --cpus 1 --subnet "$subnet" >/dev/null
export SLURM_CONF="$work/slurm/slurm.conf"
bridge="10.202.$subnet.254"
"$shoal" ca init "$work/tls" >/dev/null
"$shoal" ca issue "$work/tls" scheduler --ip "$bridge" >/dev/null
mkfifo "$work/out"
"$shoal" scheduler --listen 127.0.0.1:0 --state "$work/state" --worker-listen "$bridge:0" \
    --tls-dir "$work/tls" --metrics-listen none >"$work/out" 2>"$work/scheduler.log" &
sched_pid=$!
read -r first <"$work/out"
endpoint="${first#endpoint: }"
python3 - "$endpoint" "$work/state" "$runs" "$json" "$(uname -m) $(nproc) vCPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" <<'EOF'
import json, os, statistics, subprocess, sys, time
import boto3

endpoint, state, runs, as_json, machine = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]
b = boto3.client("batch", endpoint_url=endpoint, region_name="us-east-1",
                 aws_access_key_id="x", aws_secret_access_key="x")
b.create_compute_environment(
    computeEnvironmentName="slurm", type="MANAGED",
    computeResources={"type": "EC2", "minvCpus": 0, "maxvCpus": 2, "subnets": ["s"]},
    tags={"shoal:provider": "slurm", "shoal:idle-timeout-seconds": "1"})
b.create_job_queue(jobQueueName="slurm", priority=1,
                   computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "slurm"}])
b.register_job_definition(jobDefinitionName="true", type="container", containerProperties={
    "command": ["true"], "resourceRequirements": [
        {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "128"}]})

def shoal_jobs():
    out = subprocess.run(["squeue", "-h", "-o", "%j"], capture_output=True, text=True).stdout
    return [l for l in out.split() if l.startswith("shoal.")]

steps = ["allocator", "slurm", "certificate", "step", "worker"]
rows = []
for i in range(runs):
    while shoal_jobs():
        time.sleep(0.05)
    t0 = time.time()
    jid = b.submit_job(jobName=f"j{i}", jobQueue="slurm", jobDefinition="true")["jobId"]
    times = {}
    while True:
        j = b.describe_jobs(jobs=[jid])["jobs"][0]
        if j.get("startedAt"):
            break
        time.sleep(0.01)
    running = j["startedAt"] / 1000
    alloc = None
    while alloc is None:
        for d in sorted(os.listdir(os.path.join(state, "allocations"))):
            p = os.path.join(state, "allocations", d, "times")
            if os.path.exists(p):
                t = {}
                for line in open(p):
                    f = line.split()
                    t[f[0]] = float(f[-1])
                if "worker" in t and t["sbatch"] >= t0 - 0.5:
                    alloc = t
        time.sleep(0.01)
    created = j["createdAt"] / 1000
    row = {
        "allocator": alloc["sbatch"] - created,
        "slurm": alloc["started"] - alloc["sbatch"],
        "certificate": alloc["certificate"] - alloc["started"],
        "step": alloc["worker"] - alloc["certificate"],
        "worker": running - alloc["worker"],
        "total": running - created,
    }
    rows.append(row)
    while b.describe_jobs(jobs=[jid])["jobs"][0]["status"] not in ("SUCCEEDED", "FAILED"):
        time.sleep(0.05)
med = {k: statistics.median(r[k] for r in rows) for k in steps + ["total"]}
slurm_share = (med["slurm"] + med["step"]) / med["total"]
if as_json:
    print(json.dumps({"runs": runs, "median_s": med, "slurm_share": slurm_share, "machine": machine}))
else:
    print(f"submit -> RUNNING with a new allocation, {runs} runs, median seconds ({machine}):")
    for k in steps:
        who = "Slurm" if k in ("slurm", "step") else "Shoal"
        print(f"  {k:<12} {med[k]:7.3f}  ({who})")
    print(f"  {'total':<12} {med['total']:7.3f}   min {min(r['total'] for r in rows):.3f}  max {max(r['total'] for r in rows):.3f}")
    print(f"  Slurm's share: {100 * slurm_share:.0f} %")
EOF
