"""What a run reports: ``metrics.jsonl`` (rank 0) and the progress bar.

Evaluation figures are reduced over ranks before they get here (ANCHORS: tools that
print per-rank accuracy leave the user to average it by hand, wrongly).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from dist_train.loop.tensorboard import TensorBoardLog


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN; keep the line parseable
    return value


class MetricsLog:
    """Append-only JSON lines; on resume, lines past the checkpoint are dropped first.

    With ``tensorboard`` the same figures also go to ``run_dir/tb`` (``loop/tensorboard.py``),
    plus each step's loss and learning rate.
    """

    def __init__(self, run_dir: str | os.PathLike, enabled: bool, tensorboard: bool = False) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.enabled = enabled
        self.tb = TensorBoardLog(run_dir, enabled and tensorboard)

    def step(self, global_step: int, loss: float, lr: float) -> None:
        """After optimizer step ``global_step``: its mean loss over all ranks, and the lr."""
        self.tb.step(global_step, loss, lr)

    def close(self) -> None:
        self.tb.close()

    def truncate_after(self, epoch: int) -> None:
        """Keep only epoch lines with ``epoch < epoch`` (a resumed run redoes the rest)."""
        if not self.enabled or not self.path.exists():
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a crash
            if "epoch" in rec and rec.get("event") is None and rec["epoch"] < epoch:
                keep.append(line)
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text("".join(k + "\n" for k in keep))
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # the old file stays whole
            raise

    def write(self, record: dict[str, Any], global_step: int = 0) -> None:
        """Append ``record`` (an epoch line or the final line) written after ``global_step`` steps.

        fsynced; an OSError (full or read-only disk) leaves the file as it was: a
        half-written line is cut off again before the error is raised."""
        if not self.enabled:
            return
        data = memoryview((json.dumps({k: _clean(v) for k, v in record.items()}) + "\n").encode())
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            start = os.fstat(fd).st_size
            try:
                while data:
                    data = data[os.write(fd, data):]
                os.fsync(fd)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)
        self.tb.record(record, global_step)


@dataclass
class EpochTimer:
    """Where an epoch's time went, summed over its steps (seconds), and its loss sums.

    A checkpoint taken mid-epoch stores :meth:`partial` and a resumed run continues
    from it, so a resumed epoch's line covers the whole epoch (issue 16: it read
    ``train_loss 0.0`` for the steps after the resume only).
    """

    sample_s: float = 0.0
    gather_s: float = 0.0
    wait_s: float = 0.0
    forward_backward_s: float = 0.0
    allreduce_s: float = 0.0
    optimizer_s: float = 0.0
    sampled_edges: int = 0
    seeds: int = 0
    loss_sum: float = 0.0
    loss_count: int = 0
    """Seeds over all ranks whose loss is in ``loss_sum`` (zero-weight padding excluded)."""
    before_s: float = 0.0
    """Seconds of this epoch spent before the resume (from the checkpoint)."""
    covers_from: int = 0
    """First step these sums cover: > 0 after a resume from a checkpoint without them."""
    extra: dict[str, float] = field(default_factory=dict)

    def partial(self, elapsed_s: float) -> dict[str, Any]:
        """The sums so far, ``elapsed_s`` seconds into this run's share of the epoch."""
        return {**asdict(self), "before_s": self.before_s + elapsed_s}

    @classmethod
    def resume(cls, partial: dict[str, Any] | None, step: int) -> EpochTimer:
        """The timer of an epoch resumed at ``step`` (from ``partial`` when the checkpoint has it)."""
        if step == 0:
            return cls()
        if partial is None:  # a checkpoint written before partial sums were kept
            return cls(covers_from=step)
        return cls(**partial)

    def as_record(self, epoch_time_s: float, steps: int) -> dict[str, Any]:
        """The epoch's metrics line; ``epoch_time_s`` is this run's share of the epoch."""
        total_s = self.before_s + epoch_time_s
        record = {
            # no seed trained (e.g. resumed after the last step without the sums): no figure
            "train_loss": self.loss_sum / self.loss_count if self.loss_count else None,
            "epoch_time_s": total_s,
            "steps": steps,
            "train_seeds": self.loss_count,
            "sampled_edges_per_s": self.sampled_edges / max(total_s, 1e-9),
            "seeds_per_s": self.seeds / max(total_s, 1e-9),
            "time_sample_s": self.sample_s,
            "time_gather_s": self.gather_s,
            "time_wait_batch_s": self.wait_s,
            "time_forward_backward_s": self.forward_backward_s,
            "time_allreduce_s": self.allreduce_s,
            "time_optimizer_s": self.optimizer_s,
        }
        if self.covers_from:
            record["covers_steps"] = [self.covers_from, steps]
        return record


def progress_bar(total: int, epoch: int, enabled: bool) -> tqdm:
    # disable=None lets tqdm switch itself off when stderr is not a terminal (CI logs)
    return tqdm(total=total, desc=f"epoch {epoch}", unit="step", leave=False,
                disable=None if enabled else True, dynamic_ncols=True)


def summary_line(prog: str, final: dict[str, Any], metrics: str) -> str:
    """The closing line of a run: best val and its test accuracy, or why there is none."""
    if final.get("val_acc") is None:
        test = final.get("test_acc")
        test_s = f"test {test:.4f} (last epoch's model)" if test is not None else "no test nodes either"
        return f"{prog}: done: no validation nodes, nothing to validate on; {test_s}; metrics in {metrics}"
    test = final.get("test_acc")
    test_s = f"test {test:.4f}" if test is not None else "no test nodes"
    return (f"{prog}: done: best val {final['val_acc']:.4f} at epoch {final['best_epoch']}, "
            f"{test_s}; metrics in {metrics}")
