"""A run directory's ``metrics.jsonl`` as arrays per epoch: what the curves are drawn from.

Only what :mod:`dist_train.loop.metrics` writes is read: one JSON line per epoch
(``epoch``, ``train_loss``, ``val_acc``, ``test_acc`` on evaluated epochs, the ``time_*_s``
split, throughput) and a closing ``{"event": "final", ...}`` line. A line torn by a crash is
skipped; a resumed run's file holds each epoch once (the trainer truncates it).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from partition.errors import InputError

MAIN_THREAD = (
    ("time_wait_batch_s", "waiting for a batch"),
    ("time_forward_backward_s", "forward + backward"),
    ("time_allreduce_s", "gradient all-reduce"),
    ("time_optimizer_s", "optimizer step"),
)
"""The training loop's own time per epoch (seconds), in stacking order. DDP's all-reduce
runs inside backward, so forward + backward is drawn without it."""

PREFETCH_THREAD = (("time_sample_s", "sampling"), ("time_gather_s", "gathering features"))
"""Time of the background prefetch thread (seconds): overlapped with the loop, drawn apart."""

AFTER_EPOCH = (("time_eval_s", "evaluation"),)
"""Time after the epoch's last step (seconds), outside ``epoch_time_s``."""


@dataclass
class RunCurves:
    """One run's per-epoch figures; every array is float64 ``[num_epochs]``, NaN where absent."""

    name: str
    epoch: np.ndarray
    series: dict[str, np.ndarray] = field(default_factory=dict)
    best_epoch: int | None = None
    """Epoch of the best validation accuracy (the final line's, else the arg-max)."""

    def get(self, key: str) -> np.ndarray:
        """The series ``key``, all NaN when the run never recorded it."""
        return self.series.get(key, np.full(self.epoch.shape, np.nan))

    def has(self, key: str) -> bool:
        return key in self.series and bool(np.isfinite(self.series[key]).any())

    def extra_time_keys(self) -> list[str]:
        """``time_*_s`` keys of the loop not named above (e.g. a future exchange timer)."""
        known = {k for k, _ in MAIN_THREAD + PREFETCH_THREAD + AFTER_EPOCH}
        return sorted(k for k in self.series if k.startswith("time_") and k.endswith("_s") and k not in known)


def _number(value: object) -> float:
    if isinstance(value, bool) or value is None:
        return math.nan
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value))  # "nan" / "inf" as written by MetricsLog
    except ValueError:
        return math.nan


def read_run(run_dir: str | Path, name: str | None = None) -> RunCurves:
    """``run_dir/metrics.jsonl`` as a :class:`RunCurves`.

    Raises InputError naming the directory when it has no metrics file or no finished epoch.
    """
    run_dir = Path(run_dir)
    path = run_dir / "metrics.jsonl"
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: no such run directory")
    if not path.is_file():
        raise InputError(f"{run_dir}: no metrics.jsonl (not a giantgcn-train run directory?)")
    epochs: dict[int, dict] = {}
    final: dict = {}
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by a crash
        if not isinstance(rec, dict):
            continue
        if rec.get("event") == "final":
            final = rec
        elif isinstance(rec.get("epoch"), int):
            epochs[rec["epoch"]] = rec
    if not epochs:
        raise InputError(f"{path}: no finished epoch to plot yet")
    order = sorted(epochs)
    keys = sorted({k for r in epochs.values() for k in r if k != "epoch"})
    series = {k: np.array([_number(epochs[e].get(k)) for e in order]) for k in keys}
    curves = RunCurves(name or run_dir.name or str(run_dir), np.array(order, dtype=np.float64), series)
    curves.best_epoch = _best_epoch(curves, final)
    return curves


def _best_epoch(curves: RunCurves, final: dict) -> int | None:
    best = final.get("best_epoch")
    if isinstance(best, int) and best >= 0:
        return best
    val = curves.get("val_acc")
    if not np.isfinite(val).any():
        return None
    return int(curves.epoch[int(np.nanargmax(val))])


def run_names(run_dirs: list[Path]) -> list[str]:
    """Short distinct labels: the directory names, or more of each path where they clash."""
    names = [p.name or str(p) for p in run_dirs]
    if len(set(names)) == len(names):
        return names
    return [str(p) for p in run_dirs]
