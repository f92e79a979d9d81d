"""One owner per run directory: a second training on the same ``--out`` refuses at start-up.

Two runs on one ``--out`` used to both exit 0 with their epochs interleaved in
``metrics.jsonl`` and one run's weights silently gone (issue 16). Rank 0 now holds an
exclusive ``flock`` on ``RUN_DIR/.lock`` for the whole run. The kernel drops a flock
when its holder dies, however it dies (SIGKILL, OOM, a lost node's NFS lease), so a dead
run's lock never stays stuck and there is no stale-lock guessing by pid. The file holds
the holder's host, pid, start time and job id, read back for the refusal message
(opened without ``O_TRUNC``: filelock's own open truncates, which would erase the
holder's record whenever a second run merely tries).

A launcher restart of the same job (torchrun ``--max-restarts``, a Slurm requeue) may
start the new rank 0 while the old one is still exiting: when the record names the same
``job_id``, the lock is waited for (``same_job_wait_s``) instead of refused at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from dist_train.rundir.writes import RunDirError, cause

LOCK_NAME = ".lock"


@dataclass(frozen=True)
class Holder:
    """Who holds a run directory: written into the lock file by the holder."""

    host: str
    pid: int
    started: str
    """ISO 8601 UTC, seconds."""
    job_id: str = ""

    @staticmethod
    def me(job_id: str) -> Holder:
        return Holder(socket.gethostname(), os.getpid(),
                      datetime.now(timezone.utc).isoformat(timespec="seconds"), job_id)

    def describe(self) -> str:
        return f"host {self.host}, pid {self.pid}, started {self.started}" + (
            f", job {self.job_id}" if self.job_id else "")


class RunDirBusy(RunDirError):
    """Another live run holds the run directory."""


def _read_holder(fd: int) -> Holder | None:
    try:
        raw = os.pread(fd, 4096, 0)
        return Holder(**json.loads(raw.decode()))
    except (OSError, ValueError, TypeError):
        return None  # the holder is between taking the lock and writing its record


class RunDirLock:
    """An exclusive lock on ``run_dir``; :meth:`acquire` once, :meth:`release` (or process
    exit) frees it. Raises :class:`RunDirBusy` naming the holder, or RunDirError when the
    lock file cannot be written (read-only or full disk)."""

    def __init__(self, run_dir: Path, job_id: str = "", same_job_wait_s: float = 30.0) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self.job_id = job_id
        self.same_job_wait_s = same_job_wait_s
        self._fd: int | None = None

    def acquire(self) -> Holder:
        """Take the lock and record this process in it; returns the record written."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise RunDirError(f"--out {self.path.parent}: cannot write: {cause(err)}") from None
        try:
            self._wait_for(fd)
            me = Holder.me(self.job_id)
            data = json.dumps(asdict(me)).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            os.fsync(fd)
        except OSError as err:
            os.close(fd)
            raise RunDirError(f"{self.path}: cannot write: {cause(err)}") from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return me

    def _wait_for(self, fd: int) -> None:
        deadline = time.monotonic() + self.same_job_wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                holder = _read_holder(fd)
            same_job = holder is not None and self.job_id and holder.job_id == self.job_id
            if not same_job or time.monotonic() > deadline:
                who = holder.describe() if holder else "holder unknown"
                raise RunDirBusy(f"--out {self.path.parent}: in use by another run ({who}); "
                                 "wait for it to end, stop it, or use another --out")
            time.sleep(0.2)  # our own job's previous attempt is still exiting

    def release(self) -> None:
        """Free the lock (also done by the kernel when the process ends)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
