"""The one multi-process test helper (PyG ``testing/distributed.py`` style).

``run_ranks(fn, world_size, *args)`` starts ``world_size`` fresh processes (spawn), joins
them in a gloo group through a ``file://`` rendezvous (no port to race for between
parallel tests), runs ``fn(rank, world_size, *args, **kwargs)`` on each and returns the
results in rank order. A rank that raises, dies or hangs fails the call with its rank,
traceback and stderr tail; every process is killed before it returns.

``fn`` must be a module-level function of an importable module (spawn pickles it by name).
"""

from __future__ import annotations

import os
import queue
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch.multiprocessing as mp

from dist_train.runtime.env import World, free_port
from dist_train.runtime.process_group import destroy_distributed, init_distributed

__all__ = ["RankFailure", "free_port", "run_ranks"]


class RankFailure(AssertionError):
    """A rank raised, died or timed out; the message holds its traceback and stderr."""


def _child(fn, rank: int, world_size: int, init_file: str, err_file: str, pg_timeout: float,
           results: Any, args: tuple, kwargs: dict) -> None:
    fd = os.open(err_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 2)  # C++ (gloo, c10d) writes to fd 2 directly: keep it per rank
    os.close(fd)
    world = World(rank, world_size, rank, world_size, "127.0.0.1", 0, "test")
    try:
        init_distributed(world, device="cpu", backend="gloo", timeout_s=pg_timeout,
                         init_method=f"file://{init_file}")
        try:
            results.put((rank, True, fn(rank, world_size, *args, **kwargs)))
        finally:
            destroy_distributed()
    except BaseException:  # noqa: BLE001 - everything goes back to the parent
        results.put((rank, False, traceback.format_exc()))


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-limit:]


def _failure(rank: int, what: str, err_dir: Path) -> RankFailure:
    stderr = _tail(err_dir / f"rank{rank}.err")
    return RankFailure(f"rank {rank} {what}" + (f"\n--- rank {rank} stderr ---\n{stderr}" if stderr else ""))


def run_ranks(fn, world_size: int, *args: Any, timeout: float = 120, **kwargs: Any) -> list[Any]:
    """Run ``fn(rank, world_size, *args, **kwargs)`` on ``world_size`` gloo ranks; results by rank."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    with tempfile.TemporaryDirectory(prefix="run_ranks-") as tmp:
        err_dir = Path(tmp)
        init_file = str(err_dir / "rendezvous")
        procs = [ctx.Process(target=_child, daemon=True,
                             args=(fn, r, world_size, init_file, str(err_dir / f"rank{r}.err"),
                                   min(timeout, 60.0), results, args, kwargs))
                 for r in range(world_size)]
        try:
            for p in procs:
                p.start()
            return _collect(procs, results, world_size, timeout, err_dir)
        finally:
            for p in procs:
                if p.is_alive():
                    p.kill()
                p.join(5)
            results.close()


def _collect(procs: list, results: Any, world_size: int, timeout: float, err_dir: Path) -> list[Any]:
    out: dict[int, Any] = {}
    deadline = time.monotonic() + timeout
    exited_at: dict[int, float] = {}  # a result may still be in the pipe when its process ends
    while len(out) < world_size:
        try:
            rank, ok, value = results.get(timeout=0.2)
        except queue.Empty:
            now = time.monotonic()
            for r, p in enumerate(procs):
                if r not in out and p.exitcode is not None:
                    if now - exited_at.setdefault(r, now) > 2.0:
                        raise _failure(r, f"exited with code {p.exitcode} without a result", err_dir) from None
            if time.monotonic() > deadline:
                missing = sorted(set(range(world_size)) - set(out))
                raise _failure(missing[0], f"timed out after {timeout:g}s (ranks {missing} did not "
                                           "return)", err_dir) from None
            continue
        if not ok:
            raise _failure(rank, f"raised:\n{value}", err_dir)
        out[rank] = value
    return [out[r] for r in range(world_size)]
