"""The in-memory graph every source reader returns and the partitioner consumes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

EdgeChunks = Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]
"""Calling it starts a fresh pass over the edges as (src, dst) int64 chunks of global ids.

A callable, not a list, so that a 10^9-edge source can be streamed twice (CSR building
may need a counting pass) without ever holding a Python object per edge.
"""


@dataclass
class SourceGraph:
    """A node-classification graph as read from any source, before cleaning.

    Edges may be directed, duplicated or self loops: :func:`partition.graph.csr.build_csr`
    cleans them. ``x`` may be a read-only memmap (the source's file or a scratch copy).
    """

    name: str
    """What the user passed to ``--input`` (recorded in the manifest)."""
    num_nodes: int
    edge_chunks: EdgeChunks
    x: np.ndarray
    """(num_nodes, num_features) in the stored dtype (float32, float16 or ml_dtypes' bfloat16)."""
    y: np.ndarray
    """(num_nodes,) int64 class ids in [0, num_classes), -1 for an unlabelled node."""
    num_classes: int
    train_idx: np.ndarray
    """Sorted unique int64 global ids; the three splits are disjoint."""
    val_idx: np.ndarray
    test_idx: np.ndarray
    feature_normalization: str = "none"
    """How ``x`` was normalised (``--normalize-features``): none, row or standard."""
    warnings: list[str] = field(default_factory=list)
    """Lines for the user about inputs the source held that are not used (edge weights)."""

    @property
    def num_features(self) -> int:
        return int(self.x.shape[1])

    @property
    def num_unlabelled(self) -> int:
        """Nodes without a label (stored as -1; never in a split)."""
        return int(np.count_nonzero(np.asarray(self.y) < 0))


def split_mask(num_nodes: int, idx: np.ndarray) -> np.ndarray:
    mask = np.zeros(num_nodes, dtype=bool)
    mask[idx] = True
    return mask
