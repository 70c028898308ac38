#!/usr/bin/env bash
# The glibc rep-movsb tunable against the default, on the floor and on vader
# (single_copy none), 10 rounds alternating the order, gated as measure.sh.
# Prints "bench setting round size latency_us" lines.
set -u
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
root="$(cd "$(dirname "$0")/../.." && pwd)"
RS=${RS:-$root/target/release/shoal-osu}
T=glibc.cpu.x86_rep_movsb_threshold=100000000
source <(sed -n '/^busy()/,/^}/p' "$root/jobs/osu/measure.sh")
gate(){ local t0=$SECONDS b; while b=$(busy); [ "$b" -gt 15 ] && [ $((SECONDS-t0)) -lt 600 ]; do sleep 3; done; echo "gate $1 busy $b waited $((SECONDS-t0))" >&2; }
M="mpirun -np 2 --bind-to core --mca pml ob1 --mca btl self,vader --mca btl_vader_single_copy_mechanism none"
for r in $(seq 1 10); do
  for t in default tuned; do
    [ $((r%2)) = 0 ] && { [ $t = default ] && t=tuned || t=default; }
    e=(); x=(); [ $t = tuned ] && { e=(env GLIBC_TUNABLES=$T); x=(-x GLIBC_TUNABLES=$T); }
    gate "$r $t"
    "${e[@]}" $RS floor --sizes 4096,16384,65536 | awk -v t=$t -v r=$r '/^[0-9]/{print "floor", t, r, $1, $2}'
    $M "${x[@]}" $RS latency --sizes 4096,16384,65536 | awk -v t=$t -v r=$r '/^[0-9]/{print "vader-none", t, r, $1, $2}'
  done
done
