"""Learning-rate schedules, stepped once per epoch."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from dist_train.config.schema import OptimConfig


def lr_factor(cfg: OptimConfig, total_epochs: int) -> Callable[[int], float]:
    """Multiplier of the base lr at a given epoch: linear warm-up, then the schedule."""
    warm = max(int(cfg.warmup_epochs), 0)

    def factor(epoch: int) -> float:
        if epoch < warm:
            return (epoch + 1) / (warm + 1)
        e = epoch - warm
        if cfg.schedule == "cosine":
            span = max(total_epochs - warm, 1)
            return 0.5 * (1.0 + math.cos(math.pi * min(e, span) / span))
        if cfg.schedule == "step":
            return float(cfg.gamma) ** (e // max(int(cfg.step_size), 1))
        return 1.0

    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig,
                    total_epochs: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg, total_epochs))
