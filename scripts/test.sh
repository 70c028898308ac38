#!/usr/bin/env bash
# The README's test command: installs what is missing, then runs every test
# (the end-to-end ones need root, as CI has: namespaces, mounts, cgroups).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/install-deps.sh
export PATH="$root/.venv/bin:$PATH"
cargo build --release --workspace --bins
log="$(mktemp)"
# The fault and fuzz tests append their figures here (one line each).
export SHOAL_FIGURES="$(mktemp)"
trap 'rm -f "$log" "$SHOAL_FIGURES"' EXIT
set +e
cargo test --release --workspace 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# The trust figures on one line, in a fixed order; a missing one says so.
faults=""
for key in storm gang outage disk fuzz leaks partition sigstop restart sigterm state clock slurm; do
  line="$(grep -E "^$key[ :]" "$SHOAL_FIGURES" | sort -V | paste -sd';' - | sed 's/;/; /g')"
  faults="${faults:+$faults; }${line:-$key: not run}"
done
echo "faults: $faults"
# One closing line for the whole run: the sum of every test binary's result.
awk '/^test result:/ { p += $4; f += $6; s += $8 } END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
