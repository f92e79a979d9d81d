"""Every way a run is stopped ends the same clean way (issue 16).

SIGTERM (torchrun, Kubernetes, ``scancel``), SIGUSR1 (Slurm ``--signal=USR1@N``) and
SIGINT (Ctrl-C, or torchrun forwarding its own) and SIGHUP (the terminal closed; left
ignored under ``nohup``) only set a flag; the trainer reads it at
the next step, all ranks agree through the per-step collective, rank 0 checkpoints and
writes ``RUN_DIR/stopped.json`` (:func:`write_stop_record`, what a launcher reads to
tell a clean stop from a crash), and every rank exits with :data:`EXIT_REQUEUE` so that
``sbatch --requeue`` / torchrun restart the job. A second Ctrl-C stops at once, without a
checkpoint (:class:`KeyboardInterrupt`), as a user who presses it twice expects.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

EXIT_REQUEUE = 75  # EX_TEMPFAIL: "try again later"

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT, signal.SIGHUP)

STOP_RECORD = "stopped.json"
"""Written by rank 0 into the run directory when a stop signal ended the run cleanly."""


class StopFlag:
    def __init__(self) -> None:
        self._event = threading.Event()
        self.signum: int | None = None

    def set(self, signum: int | None = None) -> None:
        self.signum = signum
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def name(self) -> str:
        """The signal that stopped this rank, or where the stop came from."""
        return signal.Signals(self.signum).name if self.signum else "a stop signal on another rank"


def install_stop_handlers(flag: StopFlag) -> None:
    """Route the stop signals to ``flag`` (main thread only, as Python requires)."""

    def handler(signum: int, _frame: object) -> None:
        if signum == signal.SIGINT and flag.is_set():
            raise KeyboardInterrupt  # Ctrl-C twice: stop now, the last checkpoint stays
        flag.set(signum)

    for sig in STOP_SIGNALS:
        if sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN:
            continue  # started under nohup: a hang-up is meant to be ignored
        signal.signal(sig, handler)


def write_stop_record(run_dir: Path, info: dict[str, Any]) -> None:
    """``run_dir/stopped.json``: ``info`` (signal, epoch, step, checkpoint) and the time (Unix s)."""
    tmp = run_dir / f".{STOP_RECORD}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps({**info, "time": time.time()}))
    os.replace(tmp, run_dir / STOP_RECORD)


def clear_stop_record(run_dir: Path) -> None:
    """A run that starts is no longer stopped."""
    (run_dir / STOP_RECORD).unlink(missing_ok=True)


def read_stop_record(run_dir: Path, since: float) -> dict[str, Any] | None:
    """The stop record written at or after ``since`` (Unix seconds), or None (none, or stale)."""
    try:
        rec = json.loads((run_dir / STOP_RECORD).read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and float(rec.get("time", 0)) >= since else None
@contextmanager
def stop_handlers(flag: StopFlag) -> Iterator[StopFlag]:
    """:func:`install_stop_handlers` for the duration of a run, then the previous handlers.

    A run started from a notebook or a user's own launcher leaves the process's signal
    handling as it found it. Off the main thread Python allows no handlers: the run then
    simply does not react to the stop signals (the caller's thread owns them).
    """
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    install_stop_handlers(flag)
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
