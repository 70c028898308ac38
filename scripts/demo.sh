#!/usr/bin/env bash
# The README's main command. Until workers and the transport benchmark land,
# it walks through the control plane: scheduler, register, submit, list.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/install-deps.sh
cargo build --release --bin shoal
shoal="$root/target/release/shoal"
state="$(mktemp -d)"
out="$(mktemp)"
"$shoal" scheduler --listen 127.0.0.1:0 --state "$state" >"$out" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$state" "$out"' EXIT
for _ in $(seq 100); do grep -q '^endpoint:' "$out" && break; sleep 0.1; done
export SHOAL_ENDPOINT="$(sed -n 's/^endpoint: //p' "$out")"
echo "scheduler at $SHOAL_ENDPOINT"
def="$(mktemp --suffix=.json)"
cat >"$def" <<'JSON'
{ "jobDefinitionName": "mpi-pingpong", "type": "multinode",
  "nodeProperties": { "numNodes": 2, "mainNode": 0, "nodeRangeProperties": [
    { "targetNodes": "0:", "container": {
        "command": ["mpirun", "--hostfile", "Ref::hostfile", "-np", "2", "true"],
        "resourceRequirements": [ {"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "256"} ],
        "linuxParameters": { "sharedMemorySize": 96 } } } ] } }
JSON
"$shoal" register "$def"
"$shoal" submit -d mpi-pingpong --param hostfile=/tmp/hosts
"$shoal" jobs
"$shoal" nodes || true
rm -f "$def"
