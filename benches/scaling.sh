#!/usr/bin/env bash
# The multi-node sweep of issue 15: shoal-md (the reaction-field case) and
# GROMACS on 1, 2 and 4 nodes × 1, 2 and 4 ranks, over shm (shared memory
# inside nodes, TCP between them) and tcp, through Shoal on local clusters;
# one JSON and one SVG. Meant for a machine with 16 cores (4 × 4 ranks
# without oversubscription); on fewer cores the larger shapes are marked
# oversubscribed and check correctness, not speed.
#
#   benches/scaling.sh [OUT_DIR]        (default: results/scaling)
#   NODES=1,2 RPN=1,2 benches/scaling.sh   a smaller sweep
#
# Needs root (network namespaces), a release build (cargo build --release)
# and GROMACS (scripts/install-deps.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/results/scaling}
nodes=${NODES:-1,2,4}
rpn=${RPN:-1,2,4}
shoal=${SHOAL:-$here/target/release/shoal}
mkdir -p "$out"
echo "# $(date -u +%FT%TZ) on $(nproc) CPUs: $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
"$shoal" bench md --case rf --atoms "${MD_ATOMS:-32000}" --steps "${MD_STEPS:-100}" \
    --nodes "$nodes" --ranks-per-node "$rpn" --transport shm,tcp --json "$out/md.json"
"$shoal" bench gromacs --atoms "${GMX_ATOMS:-12000}" --steps "${GMX_STEPS:-1000}" \
    --nodes "$nodes" --ranks-per-node "$rpn" --transport shm,tcp --json "$out/gromacs.json"
"$shoal" bench merge "$out/md.json" "$out/gromacs.json" --json "$out/scaling.json" --plot "$out/scaling.svg"
