"""One ``init_distributed`` and the few collectives the trainer needs.

The backend follows the device (nccl on CUDA, gloo on CPU; never hard-coded), a single
process still gets a (store-only, port-free) group so the same collectives run
everywhere, and a rank that never arrives is an error within the timeout that names the
rendezvous address and how many ranks were expected, not an endless hang (ANCHORS: a
slow-loading rank times out ``init_process_group``, GLT PR #102).
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, overload

import torch
import torch.distributed as dist

from dist_train.runtime.env import World
from partition.errors import InputError


class DistributedError(RuntimeError):
    """The ranks could not meet or talk: one line naming this rank and what it waited for."""


class CollectiveError(DistributedError):
    """A collective failed or timed out mid-run: another rank died or stopped answering."""


def is_comm_failure(err: BaseException) -> bool:
    """Whether ``err`` came out of the communication backend rather than from our code.

    NCCL and the store raise ``torch.distributed.DistError`` subclasses; gloo raises a
    plain RuntimeError whose text starts with its source path (``.../gloo/...``).
    """
    return isinstance(err, dist.DistError) or (type(err) is RuntimeError and "gloo" in str(err))


def backend_detail(err: BaseException) -> str:
    """The backend's own words, without DDP's nested wrappers, source paths and sign-offs."""
    text = " ".join(str(err).split()).rsplit("RuntimeError: ", 1)[-1]
    text = re.sub(r"^\[[^\]]*\]\s*", "", text)  # gloo's [.../pair.cc:537] prefix
    text = text.split(" At: ")[0]  # the Python frames a failed DDP comm hook appends
    return text.split(". This is typically caused by")[0] or type(err).__name__


def pick_device(device: str, local_rank: int) -> torch.device:
    """``cuda:<local_rank>`` when CUDA is available and allowed, else CPU."""
    if device not in ("auto", "cpu", "cuda"):
        raise InputError(f"dist.device: {device!r} is not one of 'auto', 'cpu', 'cuda'")
    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise InputError("dist.device: 'cuda' requested but torch.cuda.is_available() is False")
    if device == "cpu" or not has_cuda:
        return torch.device("cpu")
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise InputError(f"dist.device: local rank {local_rank} has no GPU (this node has {count}); "
                         "start at most one process per GPU")
    return torch.device("cuda", local_rank)


def pick_backend(backend: str, device: torch.device) -> str:
    if backend == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    if backend not in ("gloo", "nccl"):
        raise InputError(f"dist.backend: {backend!r} is not one of 'auto', 'gloo', 'nccl'")
    if backend == "nccl" and device.type != "cuda":
        raise InputError("dist.backend: nccl needs CUDA devices; use gloo (or auto) on CPU")
    return backend


def _rendezvous_url(world: World) -> str:
    host = f"[{world.master_addr}]" if ":" in world.master_addr else world.master_addr  # IPv6
    return f"tcp://{host}:{world.master_port}"


def _wait_for_master(addr: str, port: int, wait_s: float) -> float:
    """Block until rank 0's store accepts connections; returns the seconds left.

    torch's TCPStore client retries once more after its own timeout (about 2x the
    deadline, measured); polling here keeps a missing rank 0 an error within ``wait_s``.
    """
    deadline = time.monotonic() + wait_s
    while True:
        left = deadline - time.monotonic()
        try:
            with socket.create_connection((addr, port), timeout=max(min(left, 2.0), 0.1)):
                return max(left, 1.0)
        except OSError as err:
            if left <= 0:
                raise TimeoutError(f"nothing listens on {addr}:{port} ({err})") from None
            time.sleep(min(0.2, max(left, 0.0)))


def _store(world: World, init_method: str | None, wait_s: float) -> dist.Store:
    if init_method is None and world.world_size == 1:
        return dist.HashStore()  # nothing to meet: no port to bind, none to race for
    url = init_method or _rendezvous_url(world)
    try:
        left = wait_s
        if init_method is None and world.rank != 0:
            left = _wait_for_master(world.master_addr, world.master_port, wait_s)
        store, _, _ = next(dist.rendezvous(url, world.rank, world.world_size,
                                           timeout=timedelta(seconds=left)))
    except (RuntimeError, ValueError, OSError) as err:
        raise DistributedError(_not_arrived(world, url, wait_s, err)) from err
    # torchrun keeps one store across restarts: without a prefix per attempt, a restarted
    # rank reads the dead attempt's addresses and gloo's connectFullMesh fails (measured
    # with torch 2.13 --standalone --max-restarts=1, plain env:// included).
    return dist.PrefixStore(f"giantgcn/attempt-{world.attempt}", store)


def _not_arrived(world: World, url: str, wait_s: float, err: BaseException) -> str:
    detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return (f"rendezvous at {url} failed after up to {wait_s:g}s: expected {world.world_size} ranks "
            f"(this is rank {world.rank}, launcher {world.launcher}); a rank did not arrive or "
            f"{url} is not reachable from every node. Check that all {world.world_size} processes "
            f"started and that MASTER_ADDR/MASTER_PORT are right ({detail})")


def init_distributed(world: World, device: str = "auto", backend: str = "auto",
                     timeout_s: float = 300, init_timeout_s: float | None = None,
                     init_method: str | None = None,
                     before_init: Callable[[dist.Store], None] | None = None) -> torch.device:
    """Join the job's process group; returns the device this rank computes on.

    ``timeout_s`` bounds every collective; ``init_timeout_s`` (default ``timeout_s``) bounds
    the wait for all ranks at start-up. ``init_method`` overrides the ``tcp://addr:port``
    rendezvous of ``world`` (tests use ``file://`` so parallel runs never race for ports).
    ``before_init(store)`` runs once the rendezvous store is up and before the backend
    connects (the entry point chooses the network interface there, runtime/netif.py).
    """
    if dist.is_initialized():
        raise RuntimeError("init_distributed: a process group already exists; call destroy_distributed() first")
    dev = pick_device(device, world.local_rank)
    name = pick_backend(backend, dev)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)  # before NCCL creates its communicator on the wrong GPU
    wait_s = init_timeout_s if init_timeout_s is not None else timeout_s
    store = _store(world, init_method, wait_s)
    if before_init is not None:
        before_init(store)
    try:
        dist.init_process_group(name, store=store, rank=world.rank, world_size=world.world_size,
                                timeout=timedelta(seconds=timeout_s))
    except (RuntimeError, ValueError, OSError) as err:
        raise DistributedError(_not_arrived(world, init_method or _rendezvous_url(world), wait_s,
                                            err)) from err
    return dev


def destroy_distributed() -> None:
    """Tear the process group down; safe to call when there is none (or twice)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def distributed(world: World, **kwargs: Any) -> Iterator[torch.device]:
    """``with distributed(world) as device:`` — :func:`init_distributed` and a guaranteed teardown."""
    device = init_distributed(world, **kwargs)
    try:
        yield device
    finally:
        destroy_distributed()


def _comm_device() -> torch.device:
    """Where collective buffers must live: the current GPU for nccl, else CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _all_reduce_(t: torch.Tensor, op: dist.ReduceOp.RedOpType) -> torch.Tensor:
    dev = _comm_device()
    if t.device == dev:
        dist.all_reduce(t, op=op)
        return t
    buf = t.to(dev)
    dist.all_reduce(buf, op=op)
    t.copy_(buf)
    return t


@overload
def all_reduce_sum(values: torch.Tensor) -> torch.Tensor: ...
@overload
def all_reduce_sum(values: float) -> float: ...
@overload
def all_reduce_sum(values: Sequence[float]) -> list[float]: ...


def all_reduce_sum(values: torch.Tensor | float | Sequence[float]) -> torch.Tensor | float | list[float]:
    """Sum over ranks. A tensor is reduced in place (and returned); numbers come back as floats."""
    if isinstance(values, torch.Tensor):
        return _all_reduce_(values, dist.ReduceOp.SUM)
    if isinstance(values, (int, float)):
        return float(_all_reduce_(torch.tensor([float(values)], dtype=torch.float64), dist.ReduceOp.SUM)[0])
    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    return _all_reduce_(t, dist.ReduceOp.SUM).tolist()


def all_reduce_max(value: int) -> int:
    """The largest ``value`` over ranks (e.g. the agreed number of steps per epoch)."""
    return int(_all_reduce_(torch.tensor([int(value)], dtype=torch.int64), dist.ReduceOp.MAX)[0])


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` (picklable) on every rank."""
    box = [obj]
    dist.broadcast_object_list(box, src=src, device=_comm_device())
    return box[0]


def barrier() -> None:
    if dist.get_backend() == "nccl":
        dist.barrier(device_ids=[torch.cuda.current_device()])
    else:
        dist.barrier()


def check_same_across_ranks(name: str, value: str, error: type[Exception] = RuntimeError) -> None:
    """Raise ``error`` on every rank if ranks hold different ``value`` s for ``name``.

    For short fingerprints (config hash, manifest checksum): a mismatch found here is a
    clear message at start-up instead of a wrong model or a deadlock hours later.
    """
    values: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(values, str(value))
    if len(set(values)) > 1:
        raise error(describe_disagreement(name, values))


def describe_disagreement(name: str, values: Sequence[str]) -> str:
    """``ranks disagree on NAME: 'a' on ranks 0,2; 'b' on rank 1`` for per-rank ``values``."""
    by_value: dict[str, list[int]] = {}
    for rank, v in enumerate(values):
        by_value.setdefault(v, []).append(rank)
    parts = []
    for v, ranks in by_value.items():
        shown = ",".join(map(str, ranks[:8])) + (",…" if len(ranks) > 8 else "")
        parts.append(f"{v!r} on rank{'s' if len(ranks) > 1 else ''} {shown}")
    return f"ranks disagree on {name}: " + "; ".join(parts)
