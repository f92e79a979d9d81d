"""Preemption: SIGTERM (torchrun, Kubernetes) and SIGUSR1 (Slurm ``--signal=USR1@N``).

The handler only sets a flag; the trainer reads it at the next step, all ranks agree
through the per-step collective, rank 0 checkpoints and every rank exits with
:data:`EXIT_REQUEUE` so that ``sbatch --requeue`` / torchrun restart the job.
"""

from __future__ import annotations

import signal
import threading

EXIT_REQUEUE = 75  # EX_TEMPFAIL: "try again later"

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class StopFlag:
    def __init__(self) -> None:
        self._event = threading.Event()
        self.signum: int | None = None

    def set(self, signum: int | None = None) -> None:
        self.signum = signum
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


def install_stop_handlers(flag: StopFlag) -> None:
    """Route the stop signals to ``flag`` (main thread only, as Python requires)."""

    def handler(signum: int, _frame: object) -> None:
        flag.set(signum)

    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)
