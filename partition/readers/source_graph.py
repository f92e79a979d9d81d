"""The in-memory graph every source reader returns and the partitioner consumes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

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
    cleans them. ``x`` may be a read-only memmap.
    """

    name: str
    """What the user passed to ``--input`` (recorded in the manifest)."""
    num_nodes: int
    edge_chunks: EdgeChunks
    x: np.ndarray
    """(num_nodes, num_features) float32."""
    y: np.ndarray
    """(num_nodes,) int64 class ids in [0, num_classes)."""
    num_classes: int
    train_idx: np.ndarray
    """Sorted unique int64 global ids; the three splits are disjoint."""
    val_idx: np.ndarray
    test_idx: np.ndarray

    @property
    def num_features(self) -> int:
        return int(self.x.shape[1])


def split_mask(num_nodes: int, idx: np.ndarray) -> np.ndarray:
    mask = np.zeros(num_nodes, dtype=bool)
    mask[idx] = True
    return mask
