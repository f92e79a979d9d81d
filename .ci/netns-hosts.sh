#!/usr/bin/env bash
# N simulated hosts on this machine, for the multi-host tests (tests/test_multihost.py).
# Run as root:
#
#   sudo bash .ci/netns-hosts.sh up 2              # hosts ggcn-h1, ggcn-h2 (names node1, node2)
#   sudo bash .ci/netns-hosts.sh exec 1 hostname -I  # a command on host 1 -> node1 10.213.0.11
#   sudo bash .ci/netns-hosts.sh link 2 down       # cut host 2 off the switch (a partition)
#   sudo bash .ci/netns-hosts.sh kill 2            # SIGKILL every process of host 2 (it "dies")
#   sudo bash .ci/netns-hosts.sh down              # remove everything `up` made
#   sudo bash .ci/netns-hosts.sh sweep             # remove what killed runs left (dead owner pid)
#
# Environment: NETNS_PREFIX (default ggcn) names every object, so runs side by side do not
# meet; SELF_LOOPBACK=1 makes each host resolve its own name to 127.0.1.1 (Debian's default
# /etc/hosts, the case where gloo picks loopback); NETNS_OWNER=PID lets `sweep` remove the
# hosts once PID is gone (tests set it; hosts made by hand without it stay until `down`).
#
# What `up N` builds, all of it inside namespaces this script creates (nothing is added to
# the host's own interfaces or routes, and no route leads out of them):
#   PREFIX-sw          a "switch" namespace holding bridge br0
#   PREFIX-hI          host I: eth0 = 10.213.0.(10+I)/24 (a veth whose peer vI is on br0), lo;
#                      /etc/netns/PREFIX-hI/hosts (bind-mounted on /etc/hosts by `exec`, as
#                      `ip netns exec` would) names every host nodeI, nsswitch.conf resolves
#                      from it only; `exec` gives the command its own UTS
#                      namespace with hostname nodeI.
# A failure half-way removes what was made (trap); `down` kills the processes still inside.
set -euo pipefail

PREFIX=${NETNS_PREFIX:-ggcn}
SUBNET=10.213.0
SW=$PREFIX-sw

die() { echo "netns-hosts: $*" >&2; exit 2; }
host_ns() { echo "$PREFIX-h$1"; }
host_addr() { echo "$SUBNET.$((10 + $1))"; }
host_name() { echo "node$1"; }

[ "$(id -u)" = 0 ] || die "must run as root (network namespaces)"
command -v ip >/dev/null || die "iproute2 (ip) is not installed"

hosts_of() {  # the host numbers that exist for PREFIX
  ip netns list | awk '{print $1}' | sed -n "s/^$PREFIX-h\([0-9]*\)\$/\1/p" | sort -n
}

kill_host() {  # every process inside host $1's network namespace
  local ns pids
  ns=$(host_ns "$1")
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
}

down() {
  local i
  for i in $(hosts_of); do
    kill_host "$i"
    ip netns del "$(host_ns "$i")" 2>/dev/null || true
    rm -rf "/etc/netns/$(host_ns "$i")"
  done
  if ip netns list | awk '{print $1}' | grep -qx "$SW"; then
    pids=$(ip netns pids "$SW" 2>/dev/null || true)
    [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
    ip netns del "$SW"
  fi
  rm -rf "/run/netns-hosts-$PREFIX.owner" "/run/netns-slurm-$PREFIX"  # the latter: netns-slurm.sh's state
  rmdir /etc/netns 2>/dev/null || true  # only when no other namespace has files there
}

write_hosts() {  # /etc/hosts of host $1 among $2 hosts
  local me=$1 n=$2 j dir
  dir=/etc/netns/$(host_ns "$me")
  mkdir -p "$dir"
  {
    echo "127.0.0.1 localhost"
    for j in $(seq 1 "$n"); do
      if [ "$j" = "$me" ] && [ "${SELF_LOOPBACK:-0}" = 1 ]; then
        echo "127.0.1.1 $(host_name "$j")"
      else
        echo "$(host_addr "$j") $(host_name "$j")"
      fi
    done
  } >"$dir/hosts"
  # Names come from that file only: a DNS server outside is unreachable from in here, and
  # each reverse lookup glibc or c10d tries would wait for it to time out.
  echo "hosts: files" >"$dir/nsswitch.conf"
  : >"$dir/resolv.conf"
}

up() {
  local n=$1 i ns
  [[ "$n" =~ ^[1-9][0-9]?$ ]] || die "up: N=$n is not a host count in 1..99"
  [ -z "$(hosts_of)" ] || die "up: hosts $PREFIX-h* exist already (run: NETNS_PREFIX=$PREFIX $0 down)"
  trap 'echo "netns-hosts: up failed; removing what was made" >&2; down' ERR
  # The owner is written first, so a run killed half-way (no trap runs on SIGKILL) is swept
  # too. By hand (no NETNS_OWNER) there is none: only `down` removes those hosts.
  [ -z "${NETNS_OWNER:-}" ] || echo "$NETNS_OWNER" >"/run/netns-hosts-$PREFIX.owner"
  ip netns add "$SW"
  ip -n "$SW" link add br0 type bridge
  ip -n "$SW" link set br0 up
  for i in $(seq 1 "$n"); do
    ns=$(host_ns "$i")
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$ns" link add eth0 type veth peer name "v$i" netns "$SW"
    ip -n "$ns" addr add "$(host_addr "$i")/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$SW" link set "v$i" master br0 up
    write_hosts "$i" "$n"
  done
  trap - ERR
  for i in $(seq 1 "$n"); do echo "$(host_ns "$i") $(host_name "$i") $(host_addr "$i")"; done
}

sweep() {  # hosts of any prefix whose owner process is gone
  local f owner p
  for f in /run/netns-hosts-*.owner; do
    [ -e "$f" ] || continue
    owner=$(cat "$f")
    p=${f#/run/netns-hosts-}; p=${p%.owner}
    if ! kill -0 "$owner" 2>/dev/null; then
      echo "netns-hosts: removing $p-* (owner pid $owner is gone)"
      NETNS_PREFIX=$p bash "$0" down
    fi
  done
}

run_on() {  # exec a command on host $1: its network, its /etc files, its host name
  local i=$1 ns; shift
  [ $# -ge 1 ] || die "exec: no command given"
  ns=$(host_ns "$i")
  [ -e "/run/netns/$ns" ] || die "exec: no host $ns"
  # What `ip netns exec` does, minus its remount of /sys, which would hide /sys/fs/cgroup
  # (slurmd refuses to start without it): private mount and UTS namespaces, then the
  # host's /etc files bind-mounted over the machine's.
  exec nsenter --net="/run/netns/$ns" unshare --mount --uts --propagation private -- sh -c '
    for f in /etc/netns/"$1"/*; do mount --bind "$f" "/etc/${f##*/}"; done
    hostname "$2" && shift 2 && exec "$@"' sh "$ns" "$(host_name "$i")" "$@"
}

case "${1:-}" in
  up) [ $# = 2 ] || die "usage: $0 up N"; up "$2" ;;
  down) down ;;
  sweep) sweep ;;
  exec) [ $# -ge 3 ] || die "usage: $0 exec I CMD [ARG...]"; shift; run_on "$@" ;;
  kill) [ $# = 2 ] || die "usage: $0 kill I"; kill_host "$2" ;;
  link) [ $# = 3 ] && [[ "$3" =~ ^(up|down)$ ]] || die "usage: $0 link I up|down"
        ip -n "$SW" link set "v$2" "$3" ;;
  *) die "usage: $0 up N | down | sweep | exec I CMD... | kill I | link I up|down" ;;
esac
