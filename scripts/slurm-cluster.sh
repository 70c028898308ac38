#!/usr/bin/env bash
# An emulated Slurm cluster on this machine, for trying Shoal's Slurm-backed
# compute environments by hand and for the tests that need a real Slurm:
# Debian's slurm-wlm with a munged of its own, one slurmctld on a bridge
# and one `slurmd -N nX` per node, each node in a network namespace of its
# own with its own address, so that what Slurm starts on node X has node
# X's address, as on real hosts. Everything it writes is under DIR.
#
#   scripts/slurm-cluster.sh up DIR [--nodes N] [--cpus C] [--subnet X]
#   scripts/slurm-cluster.sh down DIR
#
# `up` starts the cluster, waits until every node is idle and prints the
# variable its clients need (`export SLURM_CONF=DIR/slurm.conf`); `down`
# cancels every job, stops what `up` started (by the PIDs it recorded and
# the processes in its namespaces) and removes the namespaces, the bridge
# and DIR's run files. Needs root (namespaces, a bridge) and
# `scripts/install-deps.sh` (slurm-wlm, munge).
set -euo pipefail

usage() {
    echo "usage: $0 up DIR [--nodes N] [--cpus C] [--subnet X] | down DIR" >&2
    exit 2
}

[ $# -ge 2 ] || usage
cmd="$1"
dir="$2"
shift 2
nodes=2
cpus=1
subnet=""
while [ $# -gt 0 ]; do
    case "$1" in
    --nodes) nodes="$2"; shift 2 ;;
    --cpus) cpus="$2"; shift 2 ;;
    --subnet) subnet="$2"; shift 2 ;;
    *) usage ;;
    esac
done

need() {
    command -v "$1" >/dev/null 2>&1 || {
        echo "slurm-cluster: $1 is missing; run scripts/install-deps.sh" >&2
        exit 1
    }
}

# The cluster's names come from its subnet's third octet.
names() {
    id="$(cat "$dir/subnet")"
    bridge="slbr$id"
    net="10.202.$id"
}

ns_name() { echo "sl${id}n$1"; }

down() {
    [ -f "$dir/subnet" ] || { echo "slurm-cluster: nothing running in $dir" >&2; return 0; }
    names
    if [ -f "$dir/slurm.conf" ] && [ -f "$dir/pids" ]; then
        # Jobs first, so that no step outlives its daemons.
        SLURM_CONF="$dir/slurm.conf" timeout 10 scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
        for _ in $(seq 50); do
            left="$(SLURM_CONF="$dir/slurm.conf" timeout 5 squeue -h -o %i 2>/dev/null || true)"
            [ -z "$left" ] && break
            sleep 0.1
        done
    fi
    # What runs in the nodes' namespaces (slurmd, slurmstepd, jobs), then
    # the daemons started here.
    for n in $(seq "$(cat "$dir/nodes" 2>/dev/null || echo 0)"); do
        ns="$(ns_name "$n")"
        pids="$(ip netns pids "$ns" 2>/dev/null || true)"
        [ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
    done
    if [ -f "$dir/pids" ]; then
        while read -r pid; do
            kill -TERM "$pid" 2>/dev/null || true
        done <"$dir/pids"
        for _ in $(seq 50); do
            alive=0
            while read -r pid; do kill -0 "$pid" 2>/dev/null && alive=1; done <"$dir/pids"
            [ "$alive" = 0 ] && break
            sleep 0.1
        done
        while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done <"$dir/pids"
        rm -f "$dir/pids"
    fi
    for n in $(seq "$(cat "$dir/nodes" 2>/dev/null || echo 0)"); do
        ip netns del "$(ns_name "$n")" 2>/dev/null || true
    done
    ip link del "$bridge" 2>/dev/null || true
    rm -f "$dir/subnet" "$dir/nodes"
}

up() {
    for c in slurmctld slurmd munged sinfo ip nsenter; do need "$c"; done
    if [ "$(id -u)" -ne 0 ]; then
        echo "slurm-cluster: needs root (network namespaces, a bridge)" >&2
        exit 1
    fi
    if [ -f "$dir/subnet" ]; then
        echo "slurm-cluster: a cluster already runs in $dir; run '$0 down $dir' first" >&2
        exit 1
    fi
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    id="${subnet:-$(( ($$ % 200) + 20 ))}"
    echo "$id" >"$dir/subnet"
    echo "$nodes" >"$dir/nodes"
    : >"$dir/pids"
    names
    trap 'echo "slurm-cluster: start failed; see $dir/log" >&2; down' ERR
    mkdir -p "$dir/munge" "$dir/state" "$dir/log" "$dir/tmp"
    # munged refuses a socket directory others cannot enter.
    chmod 0755 "$dir" "$dir/munge"
    [ -f "$dir/munge/munge.key" ] || {
        head -c 1024 /dev/urandom >"$dir/munge/munge.key"
        chmod 0400 "$dir/munge/munge.key"
    }
    munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
        --seed-file="$dir/munge/seed"
    for _ in $(seq 50); do [ -s "$dir/munge/munged.pid" ] && break; sleep 0.1; done
    cat "$dir/munge/munged.pid" >>"$dir/pids"

    ip link add "$bridge" type bridge
    ip addr add "$net.254/24" dev "$bridge"
    ip link set "$bridge" up
    host="$(hostname -s)"
    ctl_port=$(( 17000 + id * 10 ))
    {
        echo "ClusterName=shoal$id"
        echo "SlurmctldHost=$host($net.254)"
        echo "SlurmctldPort=$ctl_port"
        echo "AuthType=auth/munge"
        echo "CredType=cred/munge"
        echo "AuthInfo=socket=$dir/munge/munge.socket"
        echo "SlurmUser=root"
        echo "SlurmdUser=root"
        echo "StateSaveLocation=$dir/state"
        echo "SlurmdSpoolDir=$dir/spool/%n"
        echo "SlurmctldPidFile=$dir/slurmctld.pid"
        echo "SlurmdPidFile=$dir/slurmd.%n.pid"
        echo "SlurmctldLogFile=$dir/log/slurmctld.log"
        echo "SlurmdLogFile=$dir/log/slurmd.%n.log"
        echo "TmpFS=$dir/tmp/%n"
        echo "ProctrackType=proctrack/linuxproc"
        echo "TaskPlugin=task/none"
        echo "JobAcctGatherType=jobacct_gather/none"
        echo "AccountingStorageType=accounting_storage/none"
        echo "SelectType=select/cons_tres"
        echo "SelectTypeParameters=CR_CPU"
        echo "SchedulerType=sched/backfill"
        echo "SchedulerParameters=batch_sched_delay=0"
        echo "MpiDefault=none"
        echo "ReturnToService=2"
        echo "SlurmdParameters=config_overrides"
        echo "SlurmdTimeout=30"
        echo "KillWait=2"
        for n in $(seq "$nodes"); do
            echo "NodeName=n$n NodeHostname=$host NodeAddr=$net.$n Port=$(( ctl_port + n )) CPUs=$cpus State=UNKNOWN"
        done
        echo "PartitionName=batch Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
    } >"$dir/slurm.conf"
    export SLURM_CONF="$dir/slurm.conf"

    for n in $(seq "$nodes"); do
        ns="$(ns_name "$n")"
        ip netns add "$ns"
        ip link add "sl${id}v$n" type veth peer name eth0 netns "$ns"
        ip link set "sl${id}v$n" master "$bridge" up
        ip -n "$ns" addr add "$net.$n/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
        ip -n "$ns" route add default via "$net.254"
        mkdir -p "$dir/spool/n$n" "$dir/tmp/n$n"
    done
    slurmctld -i -f "$dir/slurm.conf"
    for _ in $(seq 100); do [ -s "$dir/slurmctld.pid" ] && break; sleep 0.1; done
    cat "$dir/slurmctld.pid" >>"$dir/pids"
    for n in $(seq "$nodes"); do
        # nsenter, not `ip netns exec`: that remounts /sys without the
        # cgroup mounts, and slurmd then refuses to start.
        nsenter --net="/run/netns/$(ns_name "$n")" slurmd -N "n$n" -f "$dir/slurm.conf"
        for _ in $(seq 100); do [ -s "$dir/slurmd.n$n.pid" ] && break; sleep 0.1; done
        cat "$dir/slurmd.n$n.pid" >>"$dir/pids"
    done
    # Every node idle, bounded.
    for _ in $(seq 300); do
        idle="$(sinfo -h -N -o '%N %t' 2>/dev/null | awk '$2 == "idle"' | wc -l)"
        [ "$idle" -ge "$nodes" ] && break
        sleep 0.1
    done
    if [ "$idle" -lt "$nodes" ]; then
        sinfo -N >&2 || true
        echo "slurm-cluster: $idle of $nodes nodes came up; see $dir/log" >&2
        false
    fi
    trap - ERR
    echo "slurm-cluster: $nodes nodes idle ($net.1-$net.$nodes), controller at $net.254:$ctl_port"
    echo "export SLURM_CONF=$dir/slurm.conf"
}

case "$cmd" in
up) up ;;
down) down ;;
*) usage ;;
esac
