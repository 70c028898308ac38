#!/usr/bin/env bash
# Install what a fresh Debian 12 machine lacks to build and test Shoal.
# Safe to run again: it only installs what is missing.
set -euo pipefail

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# Build tools (rusqlite bundles SQLite; the mpi crate runs bindgen, which
# needs libclang), Open MPI for the MPI jobs, iproute2 for `cluster up`,
# util-linux for setpriv in the tests, faketime for the clock-step tests.
# docker-registry, skopeo, umoci and busybox-static for the container-image
# tests (a local registry, pulls, unpacking, a test image built offline);
# prometheus for the metrics test (it scrapes a scheduler it starts);
# slurm-wlm and munge for the emulated Slurm cluster (scripts/slurm-cluster.sh).
for p in build-essential pkg-config libclang-dev openmpi-bin libopenmpi-dev python3 python3-venv iproute2 util-linux faketime lammps gromacs docker-registry skopeo umoci busybox-static prometheus slurm-wlm munge; do
    pkg_installed "$p" || need_apt+=("$p")
done

if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: need root to apt-get install: ${need_apt[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    # Install services without starting them (docker-registry's own would
    # take port 5000): the tests start the registry they need.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get install -y -q --no-install-recommends "${need_apt[@]}"
fi

if ! have cargo; then
    echo "install-deps: cargo is missing; install Rust (rustup) first" >&2
    exit 1
fi

# boto3 and the AWS CLI for the API compatibility tests, in a project venv.
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import boto3, awscli" >/dev/null 2>&1; then
    "$venv/bin/pip" install -q --disable-pip-version-check boto3 awscli
fi
echo "install-deps: ok"
