#!/usr/bin/env bash
# A one-node Slurm cluster on THIS machine, for the tests marked `slurm` (they skip
# without one). Run as root:   sudo bash .ci/slurm-setup.sh
#
# Idempotent: re-running keeps a healthy cluster and running jobs (it only reconfigures
# when slurm.conf changed). Best effort: when it cannot set a cluster up (not root, no
# apt, a daemon that will not start) it says why and exits 0, so CI goes on and the
# Slurm tests skip. What it does:
#   1. apt-get install slurm-wlm munge (only if slurmctld/munged are missing)
#   2. a munge key (if missing) and munged
#   3. /etc/slurm/slurm.conf for this host: CPUs = nproc, RealMemory = free -m minus a
#      margin, proctrack/linuxproc + task/none (no cgroups needed: works in containers),
#      select/cons_tres CR_Core, one partition `debug`
#   4. slurmctld + slurmd, wait for the node to be idle, then `sbatch --wait --wrap hostname`
set -uo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
LOG_DIR=/var/log/slurm
MARGIN_MB=${SLURM_MEM_MARGIN_MB:-1024}

give_up() { echo "slurm-setup: $*; no Slurm cluster (Slurm tests will skip)"; exit 0; }
say() { echo "slurm-setup: $*"; }

[ "$(id -u)" = 0 ] || give_up "must run as root"

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
    return 0
  fi
  command -v apt-get >/dev/null || give_up "slurm-wlm/munge missing and no apt-get"
  say "installing slurm-wlm munge"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null ||
    give_up "apt-get install slurm-wlm munge failed"
}

start_munge() {
  mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
  if [ ! -s /etc/munge/munge.key ]; then
    say "creating /etc/munge/munge.key"
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  fi
  chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null
  chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key; chmod 0755 /run/munge
  if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged 2>/dev/null || /usr/sbin/munged --force ||
      give_up "munged would not start"
    sleep 1
  fi
  munge -n </dev/null | unmunge >/dev/null 2>&1 || give_up "munge does not round-trip a credential"
}

write_conf() {
  local host cpus mem new
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(( $(free -m | awk '/^Mem:/ {print $2}') - MARGIN_MB ))
  [ "$mem" -gt 256 ] || mem=256
  mkdir -p "$CONF_DIR" "$LOG_DIR" /var/spool/slurmctld /var/spool/slurmd
  new=$(cat <<EOF
# Written by .ci/slurm-setup.sh: a one-node test cluster on $host.
ClusterName=giantgcn-ci
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
SlurmdParameters=config_overrides
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldTimeout=60
SlurmdTimeout=60
InactiveLimit=0
KillWait=10
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
)
  if [ -f "$CONF" ] && [ "$(cat "$CONF")" = "$new" ]; then
    CONF_CHANGED=0
  else
    printf '%s\n' "$new" >"$CONF"
    CONF_CHANGED=1
    say "wrote $CONF (node $host, CPUs=$cpus, RealMemory=$mem)"
  fi
}

daemon_running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_slurm() {
  if daemon_running /run/slurmctld.pid && daemon_running /run/slurmd.pid; then
    if [ "$CONF_CHANGED" = 1 ]; then
      say "slurm.conf changed: scontrol reconfigure"
      scontrol reconfigure || give_up "scontrol reconfigure failed"
    fi
    return 0
  fi
  daemon_running /run/slurmctld.pid || slurmctld || give_up "slurmctld would not start (see $LOG_DIR/slurmctld.log)"
  daemon_running /run/slurmd.pid || slurmd || give_up "slurmd would not start (see $LOG_DIR/slurmd.log)"
}

wait_idle() {
  local host state i
  host=$(hostname -s)
  for i in $(seq 1 30); do
    state=$(sinfo -h -n "$host" -o '%T' 2>/dev/null | head -1)
    case "$state" in
      idle*|mixed*|allocated*) return 0 ;;
      down*|drain*) scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 ;;
    esac
    sleep 1
  done
  give_up "node $host never became idle (state: ${state:-unknown})"
}

install_packages
start_munge
write_conf
start_slurm
wait_idle
sinfo
out=$(mktemp)
if timeout 120 sbatch --wait --quiet --output="$out" --wrap hostname; then
  say "test job ran on: $(cat "$out")"
  rm -f "$out"
else
  rm -f "$out"
  give_up "the sanity job (sbatch --wait --wrap hostname) failed"
fi
say "cluster ready"
