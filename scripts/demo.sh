#!/usr/bin/env bash
# The README's main command: the shared-memory vs TCP comparison on a local
# cluster. Installs what is missing, builds Shoal, then `shoal bench osu`
# starts local clusters on network namespaces (root), runs the OSU-style
# latency and bandwidth jobs through the scheduler and workers, prints the
# table and writes results/osu.json and results/osu.svg.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/install-deps.sh
cargo build --release --bin shoal --bin shoal-osu
mkdir -p results
target/release/shoal bench osu --nodes 2 --json results/osu.json --plot results/osu.svg "$@"
echo "plot: results/osu.svg  rows: results/osu.json"
