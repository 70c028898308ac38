#!/usr/bin/env bash
# The README's main command: installs what is missing, builds Shoal, starts a
# local 2-node cluster (network namespaces; needs root) and runs an MPI job
# across it. The shared-memory vs TCP benchmark will replace the MPI hello.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/install-deps.sh
cargo build --release --bin shoal
shoal="$root/target/release/shoal"
dir="$(mktemp -d)"
out="$dir/up.out"
"$shoal" cluster up --nodes 2 --dir "$dir/cluster" >"$out" 2>"$dir/up.err" &
pid=$!
trap '"$shoal" cluster down --dir "$dir/cluster" 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
# Wait for the cluster's "ready" line (bounded).
for _ in $(seq 300); do grep -q '^ready:' "$out" && break; kill -0 $pid 2>/dev/null || { cat "$dir/up.err"; exit 1; }; sleep 0.1; done
grep -q '^ready:' "$out" || { echo "the cluster did not come up:"; cat "$dir/up.err"; exit 1; }
export SHOAL_ENDPOINT="$(sed -n 's/^endpoint: //p' "$out")"
echo "cluster at $SHOAL_ENDPOINT"
"$shoal" nodes
"$shoal" register jobs/definitions/mpi-hello-2node.json
id="$("$shoal" submit -d mpi-hello-2node --wait)"
"$shoal" logs "$id#0"
"$shoal" describe "$id" | grep -E '"(status|shmPeakMiB)"' || true
