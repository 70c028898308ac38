#!/usr/bin/env bash
# Measure shoal-osu against the C OSU Micro-Benchmarks, side by side, R
# rounds (default 5), interleaved so that both see the same load. Writes one
# line per run to OUT/raw.tsv and prints best / median per configuration.
#
#   jobs/osu/measure.sh [OUT] [ROUNDS]
#
# OSU_C: the folder with the C osu_latency and osu_bw (c/mpi/pt2pt/standard
# of an OSU build); skipped where absent (no package registry ships OSU).
# Ranks are bound to cores 0 and 1 (--bind-to core), ob1, as in
# /work/shared/notes/measured-here.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
OUT=${1:-/tmp/shoal-osu-measure}
R=${2:-5}
RS=${RS:-$root/target/release/shoal-osu}
OSU_C=${OSU_C:-/tmp/osu-c/c/mpi/pt2pt/standard}
TUNE="glibc.cpu.x86_rep_movsb_threshold=100000000"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$OUT"
: > "$OUT/raw.tsv"
[ -x "$OSU_C/osu_latency" ] || { echo "no C OSU at $OSU_C: Rust only" >&2; OSU_C=""; }

MPI="mpirun -np 2 --bind-to core --mca pml ob1"
shm() { echo "$MPI --mca btl self,vader --mca btl_vader_single_copy_mechanism $1"; }
TCP="$MPI --mca btl self,tcp --mca btl_tcp_if_include lo"

# run NAME PROGRAM COMMAND...: every OSU row "size value [p50 p99]" -> raw.tsv
run() {
    local name=$1 prog=$2; shift 2
    local out
    out=$("$@" 2>&1) || { echo "FAILED: $*" >&2; echo "$out" >&2; return 1; }
    echo "$out" | awk -v n="$name" -v p="$prog" -v r="$round" \
        '/^[0-9]/ { print n "\t" p "\t" r "\t" $1 "\t" $2 "\t" ($3 == "" ? "-" : $3) }' >> "$OUT/raw.tsv"
    echo "# $name $prog: $*" >> "$OUT/commands.txt"
}

# both NAME "MPI ARGS" "RUST ARGS" "C PROGRAM AND ARGS": the Rust and the C
# run of one configuration, C first on even rounds.
both() {
    local name=$1 mpi=$2 rs=$3 c=$4
    gate "$name"
    if [ -n "$OSU_C" ] && [ $((round % 2)) = 0 ]; then
        run "$name" C $mpi $OSU_C/$c
    fi
    run "$name" rust $mpi "$RS" $rs
    if [ -n "$OSU_C" ] && [ $((round % 2)) = 1 ]; then
        run "$name" C $mpi $OSU_C/$c
    fi
}

# Busy share of all CPUs (%) over one second, from /proc/stat.
busy() {
    local a b
    a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
    local idle=$(( (b[4] + b[5]) - (a[4] + a[5]) )) total=0 i
    for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
    echo $(( total > 0 ? 100 * (total - idle) / total : 0 ))
}
# Before each pair of runs, wait (up to GATE_WAIT s, default 600) until the
# machine is quiet (at most GATE_BUSY %, default 15, busy over a second):
# others share it, and a busy second core ruins ping-pong figures.
gate() {
    local t0=$SECONDS b
    while b=$(busy); [ "$b" -gt "${GATE_BUSY:-15}" ] && [ $((SECONDS - t0)) -lt "${GATE_WAIT:-600}" ]; do
        sleep 3
    done
    echo "round $round $1: busy ${b}% before, waited $((SECONDS - t0)) s, $(uptime)" >&2
}

: > "$OUT/commands.txt"
for round in $(seq 1 "$R"); do
    for sc in cma none; do
        both "lat-shm-$sc" "$(shm $sc)" "latency --sizes 0,8 --percentiles" "osu_latency -m 0:8"
        both "bw-shm-$sc" "$(shm $sc)" "bw --sizes 1048576" "osu_bw -m 1048576:1048576"
        both "lat-shm-$sc-default" "$(shm $sc)" "latency --sizes 4096,65536 --percentiles" "osu_latency -m 4096:65536"
        both "lat-shm-$sc-tuned" "$(shm $sc) -x GLIBC_TUNABLES=$TUNE" "latency --sizes 4096,65536 --percentiles" "osu_latency -m 4096:65536"
    done
    both lat-tcp "$TCP" "latency --sizes 0,8 --percentiles" "osu_latency -m 0:8"
    both bw-tcp "$TCP" "bw --sizes 1048576" "osu_bw -m 1048576:1048576"
    gate floor
    run floor-shm rust "$RS" floor --transport shm --sizes 0,8,4096,65536 --percentiles
    run floor-shm-tuned rust env GLIBC_TUNABLES=$TUNE "$RS" floor --transport shm --sizes 0,8,4096,65536 --percentiles
    run floor-tcp rust "$RS" floor --transport tcp --sizes 0,8,4096,65536 --percentiles
done

python3 - "$OUT/raw.tsv" <<'EOF'
import sys, statistics as st
from collections import defaultdict
d = defaultdict(list); p = defaultdict(list)
for line in open(sys.argv[1]):
    name, prog, r, size, v, p50 = line.rstrip("\n").split("\t")
    d[(name, int(size), prog)].append(float(v))
    if p50 != "-": p[(name, int(size), prog)].append(float(p50))
print(f"{'config':22}{'size':>9} {'prog':5} {'best':>10} {'median':>10} {'p50 med':>9}  n")
for k in sorted(d):
    v = d[k]; bw = k[0].startswith("bw")
    best = max(v) if bw else min(v)
    pm = f"{st.median(p[k]):9.2f}" if p[k] else f"{'':9}"
    print(f"{k[0]:22}{k[1]:>9} {k[2]:5} {best:10.2f} {st.median(v):10.2f} {pm}  {len(v)}")
EOF
