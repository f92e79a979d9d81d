#!/usr/bin/env bash
# A 2-node (N-node) Slurm cluster on the simulated hosts of .ci/netns-hosts.sh. Run as root:
#
#   sudo bash .ci/netns-hosts.sh up 2
#   sudo bash .ci/netns-slurm.sh up                   # slurmctld on node1, a slurmd per host
#   sudo bash .ci/netns-slurm.sh exec sbatch -N 2 --wait --cpus-per-task=1 launch/slurm.sbatch DATA
#   sudo bash .ci/netns-slurm.sh down                 # stops the daemons (netns-hosts down too)
#
# Everything is private to this cluster, so it coexists with the one-node CI cluster of
# .ci/slurm-setup.sh: its own munged (key and socket under the state directory), its own
# slurm.conf (used through SLURM_CONF), SlurmctldPort 6917 / SlurmdPort 6918 (CI: 6817/6818),
# and per-node spool, pid and log files (%n = the node's name). State directory:
# /run/netns-slurm-$NETNS_PREFIX (logs there: slurmctld.log, slurmd-nodeI.log, munged.log).
# Each slurmd finds its NodeName from its host name (nodeI, the UTS namespace of `exec`).
set -euo pipefail

PREFIX=${NETNS_PREFIX:-ggcn}
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=/run/netns-slurm-$PREFIX
CONF=$DIR/slurm.conf
hosts() { NETNS_PREFIX=$PREFIX bash "$HERE/netns-hosts.sh" "$@"; }
die() { echo "netns-slurm: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "must run as root"
for cmd in slurmctld slurmd munged sinfo; do
  command -v "$cmd" >/dev/null || die "$cmd is not installed (apt-get install slurm-wlm munge)"
done

count() { ip netns list | awk '{print $1}' | grep -c "^$PREFIX-h[0-9]*\$" || true; }

write_conf() {
  local n=$1 i
  {
    echo "ClusterName=ggcn-netns"
    echo "SlurmctldHost=node1(10.213.0.11)"
    echo "SlurmctldPort=6917"
    echo "SlurmdPort=6918"
    echo "SlurmUser=root"
    echo "SlurmdUser=root"
    echo "AuthType=auth/munge"
    echo "AuthInfo=socket=$DIR/munge.sock"
    echo "CredType=cred/munge"
    echo "MpiDefault=none"
    echo "ProctrackType=proctrack/linuxproc"
    echo "TaskPlugin=task/none"
    echo "SelectType=select/cons_tres"
    echo "SelectTypeParameters=CR_Core"
    echo "ReturnToService=2"
    echo "SlurmdParameters=config_overrides"
    echo "JobAcctGatherType=jobacct_gather/none"
    echo "AccountingStorageType=accounting_storage/none"
    echo "StateSaveLocation=$DIR/ctld"
    echo "SlurmdSpoolDir=$DIR/spool-%n"
    echo "SlurmctldPidFile=$DIR/slurmctld.pid"
    echo "SlurmdPidFile=$DIR/slurmd-%n.pid"
    echo "SlurmctldLogFile=$DIR/slurmctld.log"
    echo "SlurmdLogFile=$DIR/slurmd-%n.log"
    echo "SlurmctldTimeout=30"
    echo "SlurmdTimeout=30"
    echo "InactiveLimit=0"
    echo "KillWait=5"
    for i in $(seq 1 "$n"); do
      echo "NodeName=node$i NodeAddr=10.213.0.$((10 + i)) CPUs=1 RealMemory=1000 State=UNKNOWN"
    done
    echo "PartitionName=hosts Nodes=node[1-$n] Default=YES MaxTime=INFINITE State=UP"
  } >"$CONF"
}

start_munge() {
  dd if=/dev/urandom of="$DIR/munge.key" bs=1 count=1024 status=none
  chmod 0400 "$DIR/munge.key"
  # on host 1, so that netns-hosts.sh down (which kills what runs there) stops it too
  hosts exec 1 /usr/sbin/munged --force --socket="$DIR/munge.sock" --key-file="$DIR/munge.key" \
    --pid-file="$DIR/munged.pid" --log-file="$DIR/munged.log" --seed-file="$DIR/munged.seed"
}

wait_idle() {
  local n=$1 i state=""
  for i in $(seq 1 60); do
    state=$(SLURM_CONF=$CONF hosts exec 1 sinfo -h -o '%T %D' 2>/dev/null | tr '\n' ' ')
    [ "$state" = "idle $n " ] && return 0
    sleep 1
  done
  die "nodes never became idle (sinfo: ${state:-no answer}); logs in $DIR"
}

up() {
  local n i
  n=$(count)
  [ "$n" -ge 1 ] || die "no simulated hosts $PREFIX-h*: run netns-hosts.sh up N first"
  [ ! -e "$DIR" ] || die "$DIR exists: a cluster is up already (run: $0 down)"
  trap 'echo "netns-slurm: up failed; stopping it (logs were in $DIR)" >&2; down' ERR
  mkdir -p "$DIR/ctld" && chmod 0755 "$DIR"
  for i in $(seq 1 "$n"); do mkdir -p "$DIR/spool-node$i"; done
  write_conf "$n"
  start_munge
  hosts exec 1 env SLURM_CONF="$CONF" slurmctld
  for i in $(seq 1 "$n"); do
    hosts exec "$i" env SLURM_CONF="$CONF" slurmd
  done
  wait_idle "$n"
  trap - ERR
  echo "netns-slurm: $n nodes idle; run commands with: $0 exec CMD (SLURM_CONF=$CONF, on node1)"
}

down() {
  local i pid
  for f in "$DIR"/slurmd-*.pid "$DIR"/slurmctld.pid "$DIR"/munged.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$DIR"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  exec) shift; [ $# -ge 1 ] || die "usage: $0 exec CMD [ARG...]"
        exec env SLURM_CONF="$CONF" NETNS_PREFIX="$PREFIX" bash "$HERE/netns-hosts.sh" exec 1 "$@" ;;
  *) die "usage: $0 up | down | exec CMD..." ;;
esac
