#!/usr/bin/env bash
# Side-by-side speed of shoal-md and LAMMPS (lmp) on in.lj: serial, 2 ranks
# over shared memory (vader) and 2 ranks over TCP loopback. Runs are
# interleaved (lmp, shoal-md, lmp, ...) so load changes hit both alike.
# Usage: jobs/md/measure.sh [RUNS] (default 5). Prints medians of timesteps/s.
set -euo pipefail
runs=${1:-5}
root="$(cd "$(dirname "$0")/../.." && pwd)"
input="$root/jobs/md/inputs/in.lj"
cargo build --release -q -p shoal-md --manifest-path "$root/Cargo.toml"
md="$root/target/release/shoal-md"
lmp=$(command -v lmp || command -v lmp_serial || command -v lmp_openmpi) || {
    echo "lmp not found: run scripts/install-deps.sh" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi="mpirun -np 2 --oversubscribe --bind-to none --mca pml ob1"
declare -A modes=(
    [serial]=""
    [shm]="$mpi --mca btl self,vader"
    [tcp]="$mpi --mca btl self,tcp --mca btl_tcp_if_include lo"
)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in serial shm tcp; do
    launch=${modes[$mode]}
    for ((r = 0; r < runs; r++)); do
        (cd "$tmp" && $launch "$lmp" -in "$input" -log none) | awk '/timesteps\/s/ {print $(NF-1)}' >> "$tmp/lmp.$mode"
        $launch "$md" -in "$input" --json "$tmp/md.json" > /dev/null
        python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["steps_per_s"], j["comm_fraction"])' "$tmp/md.json" >> "$tmp/md.$mode"
    done
    l=$(median < "$tmp/lmp.$mode"); s=$(cut -d' ' -f1 "$tmp/md.$mode" | median); c=$(cut -d' ' -f2 "$tmp/md.$mode" | median)
    printf '%-6s lmp %8.2f  shoal-md %8.2f  ratio %5.2f  shoal-md comm fraction %.3f   (lmp runs: %s; shoal-md runs: %s)\n' \
        "$mode" "$l" "$s" "$(echo "$s / $l" | bc -l)" "$c" "$(tr '\n' ' ' < "$tmp/lmp.$mode")" "$(cut -d' ' -f1 "$tmp/md.$mode" | tr '\n' ' ')"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
