#!/usr/bin/env bash
# The README's test command: installs what is missing, then runs every test.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/install-deps.sh
export PATH="$root/.venv/bin:$PATH"
cargo build --release --bin shoal
export SHOAL_BIN="$root/target/release/shoal"
cargo test --release --workspace
