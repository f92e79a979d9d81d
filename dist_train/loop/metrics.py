"""What a run reports: ``metrics.jsonl`` (rank 0) and the progress bar.

Evaluation figures are reduced over ranks before they get here (ANCHORS: tools that
print per-rank accuracy leave the user to average it by hand, wrongly).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN; keep the line parseable
    return value


class MetricsLog:
    """Append-only JSON lines; on resume, lines past the checkpoint are dropped first."""

    def __init__(self, run_dir: str | os.PathLike, enabled: bool) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.enabled = enabled

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
        tmp.write_text("".join(k + "\n" for k in keep))
        os.replace(tmp, self.path)

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({k: _clean(v) for k, v in record.items()}) + "\n")
            f.flush()
            os.fsync(f.fileno())


@dataclass
class EpochTimer:
    """Where an epoch's time went, summed over its steps (seconds)."""

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
    extra: dict[str, float] = field(default_factory=dict)

    def as_record(self, epoch_time_s: float) -> dict[str, Any]:
        return {
            "train_loss": self.loss_sum / max(self.loss_count, 1),
            "epoch_time_s": epoch_time_s,
            "sampled_edges_per_s": self.sampled_edges / max(epoch_time_s, 1e-9),
            "seeds_per_s": self.seeds / max(epoch_time_s, 1e-9),
            "time_sample_s": self.sample_s,
            "time_gather_s": self.gather_s,
            "time_wait_batch_s": self.wait_s,
            "time_forward_backward_s": self.forward_backward_s,
            "time_allreduce_s": self.allreduce_s,
            "time_optimizer_s": self.optimizer_s,
        }


def progress_bar(total: int, epoch: int, enabled: bool) -> tqdm:
    # disable=None lets tqdm switch itself off when stderr is not a terminal (CI logs)
    return tqdm(total=total, desc=f"epoch {epoch}", unit="step", leave=False,
                disable=None if enabled else True, dynamic_ncols=True)
