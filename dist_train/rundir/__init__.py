"""The run directory (``--out``): one owner at a time, and every write failing in one line.

:mod:`dist_train.rundir.lock` keeps a second run off a directory in use;
:mod:`dist_train.rundir.writes` turns a full or read-only disk into one line naming the
path, agreed by every rank; :func:`open_run_dir` does both at start-up.
"""

from __future__ import annotations

from pathlib import Path

from dist_train.rundir.lock import RunDirBusy, RunDirLock
from dist_train.rundir.writes import RunDirError, cause, check_writable, write_on_rank0, writing

__all__ = ["RunDirBusy", "RunDirError", "RunDirLock", "open_run_dir", "write_on_rank0", "writing"]


def open_run_dir(run_dir: Path, rank: int, job_id: str = "") -> RunDirLock | None:
    """Make ``run_dir`` (every rank: a shared directory) and, on rank 0, take its lock and
    prove it writable. Returns rank 0's held lock (None elsewhere).

    Raises RunDirError naming ``--out``: not a directory, cannot be created, read-only or
    full; RunDirBusy naming the live holder (host, pid, start time).
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"--out {run_dir}: exists and is not a directory")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunDirError(f"--out {run_dir}: cannot create it: {cause(err)}") from None
    if rank != 0:
        return None
    lock = RunDirLock(run_dir, job_id)
    lock.acquire()
    try:
        check_writable(run_dir)
    except BaseException:
        lock.release()
        raise
    return lock
