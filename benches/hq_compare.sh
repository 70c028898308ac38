#!/usr/bin/env bash
# Trivial jobs through Shoal and HyperQueue, side by side in one run on
# this machine (issue 17): N `true` tasks through HyperQueue's in-process
# LocalCluster (PyPI's `hyperqueue` wheel, installed into the project's
# .venv; one worker with every core), then N jobs through
# `shoal bench throughput` (a local cluster of 2 nodes, each job in its own
# mount namespace with a /dev/shm tmpfs and a cgroup). Prints both rates
# and their ratio; `--json` prints them as one JSON object.
#
# Usage: benches/hq_compare.sh [--jobs N] [--json]   (root: Shoal's local
# cluster needs network namespaces)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
jobs=5000
json=0
while [ $# -gt 0 ]; do
    case "$1" in
        --jobs) jobs="$2"; shift 2 ;;
        --json) json=1; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "hq_compare: unknown argument $1 (--jobs N, --json)" >&2; exit 2 ;;
    esac
done
venv="$root/.venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! "$venv/bin/python" -c "import hyperqueue" >/dev/null 2>&1; then
    echo "hq_compare: installing hyperqueue into $venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check hyperqueue
fi
shoal="$root/target/release/shoal"
if [ ! -x "$shoal" ]; then
    (cd "$root" && cargo build --release -q -p shoal)
fi

# HyperQueue writes each task's stdout and stderr into its cwd: run it in
# a scratch directory.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
hq_json="$(cd "$scratch" && "$venv/bin/python" - "$jobs" <<'PY'
import json, sys, time
import hyperqueue
from hyperqueue import Job
from hyperqueue.cluster import LocalCluster, WorkerConfig

n = int(sys.argv[1])
with LocalCluster(worker_config=WorkerConfig()) as cluster:
    client = cluster.client()
    # Warm up: the worker is up and has run a task.
    warm = Job()
    warm.program(["true"])
    client.wait_for_jobs([client.submit(warm)])
    job = Job()
    for _ in range(n):
        job.program(["true"])
    t0 = time.monotonic()
    submitted = client.submit(job)
    ok = client.wait_for_jobs([submitted], raise_on_error=False)
    seconds = time.monotonic() - t0
    print(json.dumps({"tasks": n, "seconds": seconds, "tasks_per_s": n / seconds,
                      "all_finished": bool(ok),
                      "version": getattr(hyperqueue, "__version__", None)}))
PY
)"
# HyperQueue prints its server's table first: the figures are the last line.
hq_json="$(printf '%s\n' "$hq_json" | tail -n 1)"
shoal_json="$("$shoal" bench throughput --jobs "$jobs" --json)"
"$venv/bin/python" - "$hq_json" "$shoal_json" "$json" "$(nproc)" "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" <<'PY'
import json, sys
hq, sh, as_json, cpus, model = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3] == "1", sys.argv[4], sys.argv[5]
ratio = sh["jobs_per_s"] / hq["tasks_per_s"]
out = {"jobs": sh["jobs"], "shoal_jobs_per_s": sh["jobs_per_s"], "shoal_failed": sh["failed"],
       "shoal_idle_submit_to_start_p50_ms": sh["idle_submit_to_start_p50_ms"],
       "shoal_idle_submit_to_start_p99_ms": sh["idle_submit_to_start_p99_ms"],
       "hyperqueue_tasks_per_s": hq["tasks_per_s"], "hyperqueue_all_finished": hq["all_finished"],
       "hyperqueue_version": hq["version"], "ratio": ratio, "cpus": int(cpus), "cpu": model}
if as_json:
    print(json.dumps(out, indent=2))
else:
    print(f"machine: {model}, {cpus} CPUs")
    print(f"{'':28}{'jobs/s':>10}")
    print(f"{'HyperQueue (bare tasks)':28}{hq['tasks_per_s']:>10.0f}   {hq['tasks']} `true` tasks, one job, LocalCluster, 1 worker")
    print(f"{'Shoal (isolated jobs)':28}{sh['jobs_per_s']:>10.0f}   {sh['jobs']} jobs, {sh['nodes']} nodes, {sh['failed']} failed; idle submit->RUNNING p50 {sh['idle_submit_to_start_p50_ms']} ms, p99 {sh['idle_submit_to_start_p99_ms']} ms")
    print(f"Shoal / HyperQueue: {ratio:.2f}x")
PY
