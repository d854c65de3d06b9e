#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for the tests of `--launcher slurm`.
#
#   bash tests/slurm/cluster.sh install   # Debian's slurmctld, slurmd, slurm-client and munge (root)
#   bash tests/slurm/cluster.sh start     # writes /etc/slurm/slurm.conf from slurm.conf.in, starts the daemons
#   bash tests/slurm/cluster.sh stop
#
# `start` refuses to replace a slurm.conf it did not write: on a machine with a real cluster, use that.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
CONF=/etc/slurm/slurm.conf
STATE=/var/lib/sbx-slurm
MARK="# The test cluster of speechbrain_xfer"

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null; then
        return
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge >/dev/null
}

start() {
    if [ -f "$CONF" ] && ! grep -q "^$MARK" "$CONF"; then
        echo "cluster.sh: $CONF is not the test cluster's; not replacing it" >&2
        exit 1
    fi
    stop 2>/dev/null || true
    local host cpus memory
    host="$(hostname -s)"
    cpus="$(nproc)"
    memory="$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)"
    mkdir -p /etc/slurm "$STATE/slurmctld" "$STATE/slurmd" /run/munge /var/log/munge /var/lib/munge
    sed -e "s|@HOST@|$host|g" -e "s|@CPUS@|$cpus|g" -e "s|@MEMORY@|$memory|g" -e "s|@STATE@|$STATE|g" \
        "$HERE/slurm.conf.in" >"$CONF"
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    fi
    chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    chmod 0400 /etc/munge/munge.key
    if ! pgrep -x munged >/dev/null; then
        if id munge >/dev/null 2>&1; then
            su -s /bin/sh munge -c "munged" || munged --force
        else
            munged --force
        fi
    fi
    slurmctld -c
    slurmd
    # Up once the node takes jobs.
    for _ in $(seq 60); do
        if sinfo -h -o "%t" 2>/dev/null | grep -qE "^(idle|mix|alloc)"; then
            sinfo
            return
        fi
        sleep 1
    done
    echo "cluster.sh: the node did not come up; the daemons' logs:" >&2
    tail -n 20 "$STATE/slurmctld.log" "$STATE/slurmd.log" >&2 || true
    exit 1
}

stop() {
    for daemon in slurmd slurmctld; do
        pkill -x "$daemon" || true
    done
    for _ in $(seq 20); do
        pgrep -x slurmd >/dev/null || pgrep -x slurmctld >/dev/null || return 0
        sleep 0.5
    done
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
*)
    echo "usage: $0 install|start|stop" >&2
    exit 2
    ;;
esac
