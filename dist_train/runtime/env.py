"""Who am I in the job? A frozen :class:`World` from the launcher's environment variables.

World discovery is a pure function of an injected mapping (fairseq2 ``world_info``
style) with one small adapter per launcher (Lightning Fabric ``plugins/environments``
style), tried in this order:

1. **torchrun** (or any ``env://`` launcher): ``RANK`` and ``WORLD_SIZE`` are set. This is
   first because the sbatch path runs torchrun *inside* ``srun``.
2. **Slurm** started by ``srun`` without torchrun: ``SLURM_PROCID`` and ``SLURM_STEP_ID``.
   A batch script itself has ``SLURM_PROCID=0`` and ``SLURM_NTASKS=N`` but no step id, so
   ``python -m dist_train`` typed into ``sbatch``/``salloc`` is one process, not rank 0 of N
   waiting forever for ranks that were never started (measured on Slurm 22.05).
3. **MPI** (``mpiexec``/``mpirun``): PMI / Open MPI variables; rank, size and local rank come
   from mpi4py, and rank 0 picks the rendezvous address and port and broadcasts them.
4. **single** process: world size 1 on 127.0.0.1 (ANCHORS: "RANK unset", dgl#3629).

Only :func:`discover_world_from_os` reads ``os.environ``; bad values raise
:class:`~partition.errors.InputError` naming the variable.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from dist_train.runtime.hostlist import expand_hostlist, expand_tasks_per_node
from partition.errors import InputError

Environ = Mapping[str, str]
MPI_RANK_VARS = ("OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK")
MPI_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")
MPI_MARKERS = MPI_RANK_VARS + MPI_SIZE_VARS + ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK")


@dataclass(frozen=True)
class World:
    """This process's place in the job and where the ranks meet."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    master_addr: str
    master_port: int
    launcher: str
    """Which adapter found it: torchrun, slurm, mpi, single (or test)."""
    attempt: int = 0
    """How many times the launcher restarted the job (torchrun's TORCHELASTIC_RESTART_COUNT)
    when the ranks share torchrun's store across restarts: the rendezvous keys of each attempt
    are kept apart, see process_group._store. 0 when every round has a store of its own
    (``TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1``): a host whose torchrun was started anew after it
    died counts from 0 while the others count on, so the count is no key they share."""
    job_id: str = ""
    """The launcher's id of this job, the same across its restarts (torchrun's
    TORCHELASTIC_RUN_ID, else SLURM_JOB_ID); "" when there is none. A restarted job
    takes its own run-directory lock back (:mod:`dist_train.rundir.lock`)."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@dataclass(frozen=True)
class MPILayout:
    rank: int
    size: int
    local_rank: int
    local_size: int


class MPIProbe(Protocol):
    """What the MPI adapter needs from MPI; tests pass a fake, production uses mpi4py."""

    def layout(self) -> MPILayout: ...

    def broadcast(self, obj: Any) -> Any:
        """``obj`` as given by rank 0, on every rank."""
        ...


class Mpi4pyProbe:
    """:class:`MPIProbe` over ``mpi4py.MPI.COMM_WORLD`` (imported only when MPI is detected)."""

    def __init__(self) -> None:
        try:
            from mpi4py import MPI
        except ImportError:
            raise InputError("an MPI launch was detected (PMI_RANK / OMPI_COMM_WORLD_RANK set) but "
                             "mpi4py is not installed: pip install mpi4py") from None
        self._mpi = MPI
        self._comm = MPI.COMM_WORLD

    def layout(self) -> MPILayout:
        node = self._comm.Split_type(self._mpi.COMM_TYPE_SHARED)  # ranks sharing memory = one node
        try:
            return MPILayout(self._comm.Get_rank(), self._comm.Get_size(), node.Get_rank(), node.Get_size())
        finally:
            node.Free()

    def broadcast(self, obj: Any) -> Any:
        return self._comm.bcast(obj, root=0)


def free_port() -> int:
    """A TCP port free right now (the OS picks it); a tiny race remains, so tests use files."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def _int(env: Environ, name: str, default: int | None = None) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        if default is None:
            raise InputError(f"{name}: not set")
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise InputError(f"{name}={raw!r}: not an integer") from None


def _first(env: Environ, names: tuple[str, ...]) -> str | None:
    return next((n for n in names if env.get(n, "").strip()), None)


def _checked(world: World, names: tuple[str, str, str, str]) -> World:
    """Range checks; ``names`` are the variables that gave rank, size, local rank, local size."""
    rank_v, size_v, lrank_v, lsize_v = names
    if world.world_size < 1:
        raise InputError(f"{size_v}={world.world_size}: must be >= 1")
    if not 0 <= world.rank < world.world_size:
        raise InputError(f"{rank_v}={world.rank}: not in [0, {size_v}={world.world_size})")
    if world.local_world_size < 1:
        raise InputError(f"{lsize_v}={world.local_world_size}: must be >= 1")
    if not 0 <= world.local_rank < world.local_world_size:
        raise InputError(f"{lrank_v}={world.local_rank}: not in [0, {lsize_v}={world.local_world_size})")
    if not 1 <= world.master_port <= 65535:
        raise InputError(f"MASTER_PORT={world.master_port}: not a TCP port (1-65535)")
    return world


class TorchrunEnv:
    """torchrun / ``torch.distributed.run`` and any launcher that follows its env:// contract."""

    name = "torchrun"

    def detect(self, env: Environ) -> bool:
        return "RANK" in env and "WORLD_SIZE" in env

    def world(self, env: Environ) -> World:
        for var in ("MASTER_ADDR", "MASTER_PORT"):
            if not env.get(var, "").strip():
                raise InputError(f"{var}: not set (RANK and WORLD_SIZE are, so an env:// launch was assumed)")
        has_local = "LOCAL_RANK" in env
        w = World(rank=_int(env, "RANK"), world_size=_int(env, "WORLD_SIZE"),
                  local_rank=_int(env, "LOCAL_RANK", 0),
                  local_world_size=_int(env, "LOCAL_WORLD_SIZE", None if has_local else 1),
                  master_addr=env["MASTER_ADDR"].strip(), master_port=_int(env, "MASTER_PORT"),
                  launcher=self.name, attempt=_attempt(env),
                  job_id=env.get("TORCHELASTIC_RUN_ID", "") or env.get("SLURM_JOB_ID", ""))
        return _checked(w, ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"))


def _attempt(env: Environ) -> int:
    shared = env.get("TORCHELASTIC_USE_AGENT_STORE", "True").strip() != "False"
    return _int(env, "TORCHELASTIC_RESTART_COUNT", 0) if shared else 0


class SlurmEnv:
    """One rank per task started by ``srun`` (no torchrun in between)."""

    name = "slurm"

    def detect(self, env: Environ) -> bool:
        in_step = "SLURM_PROCID" in env and ("SLURM_STEP_ID" in env or "SLURM_STEPID" in env)
        return in_step and not _mpi_disagrees_with_slurm(env)

    def world(self, env: Environ) -> World:
        size_var = "SLURM_NTASKS" if "SLURM_NTASKS" in env else "SLURM_NPROCS"
        lsize_var, local_size = _slurm_local_size(env)
        list_var = _first(env, ("SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST"))
        if env.get("MASTER_ADDR", "").strip():
            addr = env["MASTER_ADDR"].strip()
        elif list_var is None:
            raise InputError("SLURM_JOB_NODELIST: not set (needed to find the first node)")
        else:
            try:
                addr = expand_hostlist(env[list_var])[0]  # block distribution: rank 0 is on the first node
            except ValueError as err:
                raise InputError(f"{list_var}={env[list_var]!r}: {err}") from None
        # A port every task derives alike, with no communication; jobs sharing a node differ.
        port = _int(env, "MASTER_PORT") if "MASTER_PORT" in env else 20000 + _int(env, "SLURM_JOB_ID") % 20000
        w = World(rank=_int(env, "SLURM_PROCID"), world_size=_int(env, size_var),
                  local_rank=_int(env, "SLURM_LOCALID", 0), local_world_size=local_size,
                  master_addr=addr, master_port=port, launcher=self.name,
                  job_id=env.get("SLURM_JOB_ID", ""))
        return _checked(w, ("SLURM_PROCID", size_var, "SLURM_LOCALID", lsize_var))


def _slurm_local_size(env: Environ) -> tuple[str, int]:
    if env.get("SLURM_NTASKS_PER_NODE", "").strip():
        return "SLURM_NTASKS_PER_NODE", _int(env, "SLURM_NTASKS_PER_NODE")
    var = _first(env, ("SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"))
    if var is None:
        return "SLURM_TASKS_PER_NODE", 1
    try:
        per_node = expand_tasks_per_node(env[var])
    except ValueError as err:
        raise InputError(f"{var}={env[var]!r}: {err}") from None
    node = _int(env, "SLURM_NODEID", 0)
    if node >= len(per_node):
        raise InputError(f"SLURM_NODEID={node}: {var}={env[var]!r} lists only {len(per_node)} nodes")
    return var, per_node[node]


def _mpi_disagrees_with_slurm(env: Environ) -> bool:
    """mpirun inside a Slurm job: ranks inherit one SLURM_PROCID but differ in their MPI rank."""
    rank_var = _first(env, MPI_RANK_VARS)
    return rank_var is not None and env[rank_var].strip() != env.get("SLURM_PROCID", "").strip()


class MPIEnv:
    """``mpiexec -n N python -m dist_train``: layout from mpi4py, address chosen by rank 0."""

    name = "mpi"

    def __init__(self, probe: MPIProbe | None = None) -> None:
        self._probe = probe

    def detect(self, env: Environ) -> bool:
        return any(v in env for v in MPI_MARKERS)

    def world(self, env: Environ) -> World:
        probe = self._probe if self._probe is not None else Mpi4pyProbe()
        lay = probe.layout()
        # Every rank calls broadcast (a collective); only rank 0's value counts.
        mine = (socket.gethostname(), free_port()) if lay.rank == 0 else None
        addr, port = probe.broadcast(mine)
        w = World(rank=lay.rank, world_size=lay.size, local_rank=lay.local_rank,
                  local_world_size=lay.local_size, master_addr=str(addr), master_port=int(port),
                  launcher=self.name)
        return _checked(w, ("MPI rank", "MPI size", "MPI local rank", "MPI local size"))


class SingleEnv:
    """No launcher: one process, its own rendezvous on localhost."""

    name = "single"

    def detect(self, env: Environ) -> bool:
        return True

    def world(self, env: Environ) -> World:
        return World(0, 1, 0, 1, "127.0.0.1", free_port(), self.name)


def discover_world(environ: Environ, mpi: MPIProbe | None = None) -> World:
    """The World described by ``environ``: torchrun, then Slurm (srun), then MPI, then single."""
    for launcher in (TorchrunEnv(), SlurmEnv(), MPIEnv(mpi), SingleEnv()):
        if launcher.detect(environ):
            return launcher.world(environ)
    raise AssertionError("SingleEnv always matches")


def discover_world_from_os() -> World:
    """:func:`discover_world` on this process's environment (the one place it is read)."""
    return discover_world(dict(os.environ))
