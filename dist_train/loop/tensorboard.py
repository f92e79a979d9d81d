"""The scalars of ``metrics.jsonl`` as TensorBoard events in ``RUN_DIR/tb/`` (``train.tensorboard``).

ML engineers keep their runs in TensorBoard; this writes what the trainer already
reports, through ``torch.utils.tensorboard.SummaryWriter`` (the ``tensorboard`` package,
an optional extra). Rank 0 only, like ``metrics.jsonl``.

Tags: ``step/train_loss`` and ``step/lr`` after every optimizer step; every numeric key
of an epoch line as ``epoch/<key>`` (``epoch/val_acc``, ``epoch/time_sample_s``, ...) and
of the final line as ``final/<key>``. The x-axis is always the global optimizer step, so
a resumed run continues the same curves: the writer is opened with ``purge_step`` at the
first step it writes, and TensorBoard drops whatever the killed attempt wrote from there
on (the trainer truncates ``metrics.jsonl`` the same way).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from partition.errors import InputError

INSTALL_HINT = "pip install 'giantgcn[tensorboard]' (or tensorboard), or set train.tensorboard=false"


def require_tensorboard() -> None:
    """Raise InputError naming ``train.tensorboard`` when the package is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise InputError(f"train.tensorboard: true needs the tensorboard package: {INSTALL_HINT}") from None


def _scalars(record: dict[str, Any], prefix: str) -> dict[str, float]:
    """``prefix/key`` -> value for every finite number of ``record`` (bools and strings skipped)."""
    out = {}
    for key, value in record.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or key in ("global_step",):
            continue
        if math.isfinite(value):
            out[f"{prefix}/{key}"] = float(value)
    return out


class TensorBoardLog:
    """Writes scalars to ``run_dir/tb``; every method is a no-op when not ``enabled``."""

    def __init__(self, run_dir: str | os.PathLike, enabled: bool) -> None:
        self.log_dir = Path(run_dir) / "tb"
        self.enabled = enabled
        self._writer: Any = None

    def _open(self, first_step: int) -> Any:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.log_dir), purge_step=first_step)
        return self._writer

    def step(self, global_step: int, loss: float, lr: float) -> None:
        """After optimizer step ``global_step`` (1-based): its loss (mean over every rank's
        seeds, cross-entropy) and learning rate."""
        if not self.enabled:
            return
        writer = self._open(global_step)  # a resumed run: drop what the dead attempt wrote from here
        for tag, value in _scalars({"train_loss": loss, "lr": lr}, "step").items():
            writer.add_scalar(tag, value, global_step)

    def record(self, record: dict[str, Any], global_step: int) -> None:
        """An epoch line (tags ``epoch/...``) or the final line (``final/...``) at ``global_step``."""
        if not self.enabled:
            return
        prefix = "final" if record.get("event") == "final" else "epoch"
        writer = self._open(global_step + 1)  # a finished run started again keeps its last epoch
        for tag, value in _scalars(record, prefix).items():
            writer.add_scalar(tag, value, global_step)
        writer.flush()  # an epoch's figures are on disk for a TensorBoard already watching

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
