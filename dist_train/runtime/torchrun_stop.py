"""torchrun whose stop by a signal ends like a stop of the ranks: one line, exit 75 (issue 16).

A bare ``torchrun`` that gets SIGTERM, SIGINT, SIGHUP or SIGQUIT forwards it to its
workers (ours finish the step, checkpoint and exit 75), waits ``--shutdown-timeout``
seconds (30 by default, then SIGKILL), and raises ``SignalException``: a traceback and exit
status 1, so a scheduler that requeues on 75 does not. SIGUSR1 is not forwarded at all:
it kills torchrun and orphans the ranks.

``python -m dist_train.runtime.torchrun_stop [torchrun options] -m dist_train ...`` runs
torchrun's own ``main`` in this process, with SIGUSR1 added to the forwarded signals and a
grace of :data:`GRACE_S` seconds unless the options say otherwise, and ends:

- stopped by a signal and rank 0 wrote ``RUN_DIR/stopped.json`` after it (the ranks
  checkpointed): one line, exit 75;
- stopped by a signal before any checkpoint: one line, exit 128 + the signal number;
- ranks failed with 75 (a signal sent to the ranks, restarts used up), the others were
  closed by torchrun's SIGTERM after it (a rank already past its handlers, in interpreter
  shutdown, dies of it), and rank 0 wrote ``stopped.json`` after the start: one line, 75;
- anything else: exactly what torchrun does.

``launch/torchrun.sh`` uses it.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from dist_train.runtime.signals import EXIT_REQUEUE, read_stop_record
from partition.errors import print_error_line

PROG = "giantgcn-train"
SIGNALS = "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1"
"""Forwarded to the ranks: torchrun's default list plus Slurm's SIGUSR1."""
GRACE_S = 120
"""Seconds the ranks get to finish a step and checkpoint before torchrun kills them."""


def run_dir_of(argv: list[str]) -> Path:
    """The trainer's ``--out`` among torchrun's arguments (the trainer's default otherwise)."""
    out = "runs/latest"
    for i, arg in enumerate(argv):
        if arg == "--out" and i + 1 < len(argv):
            out = argv[i + 1]
        elif arg.startswith("--out="):
            out = arg.split("=", 1)[1]
    return Path(out)


def with_defaults(argv: list[str]) -> list[str]:
    """``argv`` with our signal list and grace period first, unless the user set them."""
    given = {a.split("=", 1)[0].replace("_", "-") for a in argv if a.startswith("--")}
    extra = [] if "--signals-to-handle" in given else [f"--signals-to-handle={SIGNALS}"]
    extra += [] if "--shutdown-timeout" in given else [f"--shutdown-timeout={GRACE_S}"]
    return extra + argv


def stopped_line(sig: int, run_dir: Path, since: float) -> tuple[str, int]:
    """The closing line and exit status after torchrun was stopped by signal ``sig``."""
    name = signal.Signals(sig).name
    rec = read_stop_record(run_dir, since)
    if rec is not None:
        return (f"{PROG}: torchrun got {name}: the ranks checkpointed at epoch {rec.get('epoch')} "
                f"step {rec.get('step')} in {rec.get('checkpoints')}; exiting with {EXIT_REQUEUE} so the "
                "job is requeued (the same command resumes)", EXIT_REQUEUE)
    return (f"{PROG}: torchrun got {name}: the ranks stopped without a new checkpoint; the same "
            f"command resumes from the last one in {run_dir / 'checkpoints'}, if any", 128 + sig)


def clean_stop(exit_codes: set[int], run_dir: Path, since: float) -> bool:
    """Whether failed ranks with these exit codes are a stop that checkpointed, not a crash."""
    closed = {EXIT_REQUEUE, -int(signal.SIGTERM)}  # torchrun closes the rest with SIGTERM
    return EXIT_REQUEUE in exit_codes and exit_codes <= closed and read_stop_record(run_dir, since) is not None


def main(argv: list[str] | None = None) -> int:
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun_main

    args = list(sys.argv[1:] if argv is None else argv)
    run_dir, t0 = run_dir_of(args), time.time()
    try:
        torchrun_main(with_defaults(args))
    except SignalException as err:
        line, code = stopped_line(int(err.sigval), run_dir, t0)
        print_error_line(line)
        return code
    except ChildFailedError as err:
        if not clean_stop({f.exitcode for f in err.failures.values()}, run_dir, t0):
            raise
        print_error_line(f"{PROG}: the ranks were stopped by a signal and checkpointed; exiting with "
                         f"{EXIT_REQUEUE} so the job is requeued (the same command resumes)")
        return EXIT_REQUEUE
    return 0


if __name__ == "__main__":
    sys.exit(main())
