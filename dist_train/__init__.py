"""giantgcn distributed trainer: world discovery, process group, shard loading, sampling, training.

``from dist_train import train`` is the Python API (:func:`dist_train.api.train`); it is
imported on first use so that ``import dist_train.config`` stays light.
"""

from typing import Any

__all__ = ["train"]


def __getattr__(name: str) -> Any:
    if name == "train":
        from dist_train.api import train

        return train
    raise AttributeError(f"module 'dist_train' has no attribute {name!r}")
