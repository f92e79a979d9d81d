"""How a run that cannot go on says so: divergence, a stop signal, a dead or hung rank.

Each is one line naming where the run was and what a rerun resumes from (the CLI prints
it as ``giantgcn-train: error: ...`` or, for a stop, with exit status 75).
"""

from __future__ import annotations

from pathlib import Path

from dist_train.loop.checkpoint import list_checkpoints
from dist_train.runtime import process_group as pg

__all__ = ["DivergenceError", "Preempted", "comm_failure", "diverged"]


class DivergenceError(RuntimeError):
    """A non-finite loss or gradient: the run stops, the last good checkpoint stays."""


class Preempted(RuntimeError):
    """A stop signal (SIGTERM, SIGUSR1, SIGINT) arrived: a checkpoint was written, requeue the job."""


def diverged(what: str, run_dir: Path) -> DivergenceError:
    """``what`` went wrong, which checkpoint a rerun (with a lower lr) resumes from, and how."""
    found = list_checkpoints(run_dir)
    kept = f"the last good checkpoint {found[-1].path} is kept" if found else "no checkpoint yet"
    return DivergenceError(f"{what}; {kept}; lower optim.lr or set optim.grad_clip")


def comm_failure(err: RuntimeError, rank: int, epoch: int, step: int, timeout_s: float,
                 run_dir: Path) -> pg.CollectiveError:
    """A backend error as one line naming this rank and where the run was (epoch, step)."""
    return pg.CollectiveError(
        f"rank {rank}: epoch {epoch} step {step}: a collective failed: another rank died "
        f"or did not answer within dist.timeout_s={timeout_s:g}; the run can resume "
        f"from the last checkpoint in {run_dir / 'checkpoints'} ({pg.backend_detail(err)})")
