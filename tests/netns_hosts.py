"""Simulated hosts for the multi-host tests: a thin Python face of ``.ci/netns-hosts.sh``.

``SimHosts.up(n)`` builds n network namespaces (hosts node1..nodeN at 10.213.0.11..) on a
bridge that exists only inside a namespace of its own; ``down()`` removes them and kills
what still runs inside. Names carry this process's pid, and ``up`` first sweeps hosts whose
owner pid is gone, so a killed test run leaves nothing behind for long.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / ".ci" / "netns-hosts.sh"


def why_no_netns() -> str | None:
    """None when simulated hosts can be built here; otherwise why not (a skip reason)."""
    if os.geteuid() != 0:
        return "simulated hosts need root (network namespaces); CI runs them as root"
    if shutil.which("ip") is None or shutil.which("unshare") is None:
        return "iproute2 (ip) or util-linux (unshare) is not installed"
    probe = f"ggcnprobe{os.getpid()}"
    res = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    if res.returncode != 0:
        return f"ip netns add failed: {res.stderr.strip()}"
    return None


class SimHosts:
    """N simulated hosts; host ``i`` (1-based) is ``name(i)`` at ``addr(i)``."""

    def __init__(self, tag: str, self_loopback: bool = False) -> None:
        self.prefix = f"ggcn{os.getpid()}{tag}"
        self.env = {**os.environ, "NETNS_PREFIX": self.prefix, "NETNS_OWNER": str(os.getpid()),
                    "SELF_LOOPBACK": "1" if self_loopback else "0"}
        self.count = 0

    def _script(self, *args: str, timeout: float = 60) -> str:
        res = subprocess.run(["bash", str(SCRIPT), *args], env=self.env, capture_output=True,
                             text=True, timeout=timeout)
        if res.returncode != 0:
            raise RuntimeError(f"netns-hosts.sh {' '.join(args)}: {res.stderr.strip()}")
        return res.stdout

    def up(self, n: int) -> SimHosts:
        self._script("sweep")
        self._script("up", str(n))
        self.count = n
        return self

    def down(self) -> None:
        self._script("down")

    @staticmethod
    def name(i: int) -> str:
        return f"node{i}"

    @staticmethod
    def addr(i: int) -> str:
        return f"10.213.0.{10 + i}"

    def command(self, i: int, cmd: Sequence[str]) -> list[str]:
        """``cmd`` run on host ``i`` (its network, /etc/hosts and host name)."""
        return ["bash", str(SCRIPT), "exec", str(i), *cmd]

    def popen(self, i: int, cmd: Sequence[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
        full = {**env, "NETNS_PREFIX": self.prefix}
        with open(log, "wb") as f:
            return subprocess.Popen(self.command(i, cmd), cwd=REPO, env=full, stdout=f,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self, i: int) -> None:
        """SIGKILL every process of host ``i``: the host died."""
        self._script("kill", str(i))

    def link(self, i: int, up: bool) -> None:
        """Connect host ``i`` to the switch again, or cut it off (a network partition)."""
        self._script("link", str(i), "up" if up else "down")

    def pids(self, i: int) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", f"{self.prefix}-h{i}"], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def workers(self, i: int) -> list[psutil.Process]:
        """The ranks (processes with a RANK variable) running on host ``i``."""
        found = []
        for pid in self.pids(i):
            try:
                proc = psutil.Process(pid)
                if "RANK" in proc.environ():
                    found.append(proc)
            except psutil.Error:
                pass
        return found


SLURM_SCRIPT = REPO / ".ci" / "netns-slurm.sh"


def why_no_slurm() -> str | None:
    """None when slurmctld, slurmd and munged are installed; otherwise why not."""
    missing = [c for c in ("slurmctld", "slurmd", "munged", "sbatch") if shutil.which(c) is None
               and not Path("/usr/sbin", c).exists()]
    return f"Slurm not installed ({', '.join(missing)} missing): apt-get install slurm-wlm munge" if missing else None


class SimSlurm:
    """A Slurm cluster on ``hosts``: slurmctld on node1, one slurmd per host (.ci/netns-slurm.sh)."""

    def __init__(self, hosts: SimHosts) -> None:
        self.hosts = hosts

    def _script(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(SLURM_SCRIPT), *args], env=self.hosts.env, capture_output=True,
                              text=True, timeout=timeout)

    def up(self) -> SimSlurm:
        res = self._script("up")
        if res.returncode != 0:
            raise RuntimeError(f"netns-slurm.sh up: {res.stderr.strip()}")
        return self

    def down(self) -> None:
        self._script("down")

    def command(self, cmd: Sequence[str]) -> list[str]:
        """``cmd`` run on node1 with this cluster's SLURM_CONF."""
        return ["bash", str(SLURM_SCRIPT), "exec", *cmd]
