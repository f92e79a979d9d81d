"""Every write of a run fails the same way: one line naming the path and the cause.

A run writes its run directory from start to end: the lock, ``config.yaml``, checkpoints,
``metrics.jsonl``, ``model.pt``. A disk that fills up or is (re)mounted read-only used to
end the run in an ``OSError`` traceback from whichever write met it first (issue 16).
Here each write raises :class:`RunDirError` (an InputError: exit 2), with the path the
user knows (never a temporary name) and the cause in words ("no space left on device",
"read-only file system"); the caller adds what was kept.

Only rank 0 writes; :func:`write_on_rank0` runs the write there and tells every rank the
outcome in one collective (it also serves as the barrier after a checkpoint), so all
ranks stop with the same line instead of waiting for a rank that already left.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import torch.distributed as dist

from partition.errors import InputError

T = TypeVar("T")


class RunDirError(InputError):
    """A write to the run directory failed (full, read-only, no permission); exit 2."""


def cause(err: OSError) -> str:
    """The OS's words for ``err``, lower case: "no space left on device"."""
    if err.errno is not None:
        return os.strerror(err.errno).lower()
    return str(err) or type(err).__name__


@contextmanager
def writing(path: Path | str, then: str = "") -> Iterator[None]:
    """Turn an OSError inside the block into ``RunDirError("<path>: cannot write: <cause>; then")``."""
    try:
        yield
    except OSError as err:
        raise RunDirError(f"{path}: cannot write: {cause(err)}" + (f"; {then}" if then else "")) from None


def write_on_rank0(write: Callable[..., T], rank: int, *args: Any) -> T | None:
    """Run ``write(*args)`` on rank 0 only; every rank raises the same RunDirError if it failed.

    One ``broadcast_object_list`` per call (a few milliseconds): also a barrier, so no
    rank runs ahead of a checkpoint that may be needed to restart. Returns ``write()``'s
    result on rank 0, None elsewhere.
    """
    error, result = None, None
    if rank == 0:
        try:
            result = write(*args)
        except RunDirError as err:
            error = str(err)
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        box = [error]
        dist.broadcast_object_list(box, src=0)
        error = box[0]
    if error:
        raise RunDirError(error)
    return result


def check_writable(run_dir: Path) -> None:
    """Create, fsync and remove a small file in ``run_dir``: a read-only or full disk is
    found at start-up, before any rank trains. Raises RunDirError naming ``--out``."""
    probe = run_dir / f".write-probe-{os.getpid()}"
    try:
        with open(probe, "wb") as f:
            f.write(b"giantgcn write probe\n")
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as err:
        with contextlib.suppress(OSError):
            probe.unlink()
        raise RunDirError(f"--out {run_dir}: cannot write: {cause(err)}") from None
