"""What a resumed run may change, and what it must not.

A run directory that holds a checkpoint is resumed automatically, so the command that
resumes it may differ from the one that started it: more epochs, a lower learning
rate after a divergence (the divergence message advises exactly that). The optimizer
and scheduler state dicts carry the *old* learning rate and weight decay, so without
:func:`apply_optim_config` the new values would be silently ignored and the advice would
not work. A different dataset or model shape cannot be resumed at all: those are
refused by name before ``load_state_dict`` fails with a tensor-size traceback.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from dist_train.config.schema import Config, OptimConfig, config_to_dict
from dist_train.sampling.elastic import Segment, describe_change, next_segments
from partition.errors import InputError

log = logging.getLogger(__name__)

FROZEN_SECTIONS = ("model",)
"""Config sections a checkpoint's tensors depend on: changing them cannot be resumed."""


def flatten(cfg: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``{"optim": {"lr": 0.1}}`` -> ``{"optim.lr": 0.1}``."""
    return {f"{s}.{k}": v for s, fields in cfg.items() for k, v in fields.items()}


def config_changes(old: dict[str, dict[str, Any]],
                   new: dict[str, dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    """``(key, old value, new value)`` for every key whose value differs, sorted by key.

    A key the old config lacks (a checkpoint of an older giantgcn, before the key existed)
    counts as its default, so adding a config key never makes old runs unresumable.
    """
    a, b = flatten(old), flatten(new)
    defaults = flatten(config_to_dict(Config()))
    a |= {k: defaults[k] for k in b if k not in a and k in defaults}
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def check_resumable(state: dict[str, Any], config: dict[str, dict[str, Any]],
                    identity: dict[str, str], where: str) -> list[tuple[str, Any, Any]]:
    """Raise InputError if checkpoint ``where`` cannot continue under ``config``; else the changes."""
    saved = state.get("identity", {})
    # "dataset" is the content id (issue 16); checkpoints before it kept the manifest's bytes
    # hash under "manifest", which no content id equals: refused as another dataset
    old = saved.get("dataset", saved.get("manifest"))
    if old and identity.get("dataset") and old != identity["dataset"]:
        raise InputError(f"{where}: was written for a dataset with id {old}, but --data has "
                         f"{identity['dataset']} (ids hash the files and partition settings); "
                         "use a new --out for a new dataset")
    changes = config_changes(state.get("config", {}), config)
    step = int(state.get("position", {}).get("step", 0))
    for key, before, after in changes:
        if key == "train.batch_plan" and step:
            # the two plans split an epoch differently: switching mid-epoch would train some
            # nodes twice and others never
            raise InputError(f"{where}: train.batch_plan was {before!r}, now {after!r}, in the middle "
                             f"of an epoch (step {step}); resume with train.batch_plan={before} "
                             "or from an epoch-end checkpoint")
        if key.split(".")[0] in FROZEN_SECTIONS:
            raise InputError(f"{where}: {key} was {before!r}, now {after!r}; a checkpoint cannot "
                             "change the model's shape: use a new --out")
    return [c for c in changes if c[0] != "data.path"]  # a moved dataset is the same dataset


def apply_optim_config(optimizer: torch.optim.Optimizer,
                       scheduler: torch.optim.lr_scheduler.LambdaLR, cfg: OptimConfig) -> None:
    """After loading their state, make ``cfg``'s lr and weight decay the ones in force."""
    scheduler.base_lrs = [float(cfg.lr)] * len(optimizer.param_groups)
    for group, factor in zip(optimizer.param_groups, scheduler.lr_lambdas, strict=True):
        group["initial_lr"] = float(cfg.lr)
        group["lr"] = float(cfg.lr) * factor(scheduler.last_epoch)
        group["weight_decay"] = float(cfg.weight_decay)
    scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]  # what get_last_lr() reports


def resumed_segments(segments: list[list[int]], saved_world: int | None, world_size: int,
                     epoch: int, step: int,
                     global_plan: bool = False) -> tuple[list[list[int]], str | None]:
    """The epoch's ``[start_step, world_size]`` segments after a resume, and the line saying so.

    ``saved_world``: the checkpoint's world size (None in checkpoints older than that field:
    taken as unchanged). The line is None when the world size did not change (issue 16:
    every resume states what changed).
    """
    old = world_size if saved_world is None else int(saved_world)
    segs = next_segments([Segment(*s) for s in segments], old, world_size, step)
    stored = [[s.start_step, s.world_size] for s in segs] if len(segs) > 1 else []
    line = describe_change(old, world_size, epoch, step, global_plan) if old != world_size else None
    return stored, line
