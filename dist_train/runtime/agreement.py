"""Every rank must train on the same dataset with the same config: checked once, by name.

Ranks started with different ``--data`` or ``key=value`` arguments (a typo in one
node's command line, a stale copy of a dataset) would otherwise train a wrong model or
deadlock in DDP hours later. One ``all_gather_object`` at start-up compares every
config key and the dataset's manifest checksum, and every rank raises the same
InputError naming the first key that differs and each rank's value.
"""

from __future__ import annotations

from typing import Any

import torch.distributed as dist

from dist_train.config.schema import Config, config_to_dict
from dist_train.loop.resume import flatten
from dist_train.runtime.process_group import describe_disagreement
from partition.errors import InputError

DATASET = "the dataset (--data)"


def fingerprint(cfg: Config, data_id: str) -> dict[str, str]:
    """What must agree: the manifest checksum and every config value but the dataset path.

    The path may differ (node-local copies of one dataset); the manifest may not.
    """
    values = {k: repr(v) for k, v in flatten(config_to_dict(cfg)).items() if k != "data.path"}
    return {DATASET: data_id, **values, "_path": str(cfg.data.path)}


def first_disagreement(fingerprints: list[dict[str, str]]) -> str | None:
    """The message for the first key whose value differs between ranks, or None."""
    keys = [k for k in fingerprints[0] if k != "_path"]
    for key in keys + sorted({k for f in fingerprints for k in f} - set(keys) - {"_path"}):
        values = [f.get(key, "<missing>") for f in fingerprints]
        if len(set(values)) == 1:
            continue
        if key == DATASET:
            values = [f"{f.get('_path')} (dataset id {v})" for f, v in zip(fingerprints, values, strict=True)]
        return describe_disagreement(key, values)
    return None


def check_ranks_agree(cfg: Config, data_id: str) -> None:
    """Raise InputError on every rank if any two ranks differ in dataset or config."""
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, fingerprint(cfg, data_id))
    message = first_disagreement(gathered)
    if message:
        raise InputError(message)
