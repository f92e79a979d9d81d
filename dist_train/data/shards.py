"""Which parts a rank trains on, and the one local graph it builds from them.

A rank maps only its own shards (ANCHORS: PyG's maintained multi-GPU path replicates
the whole graph on every rank). With P > W parts a rank merges several parts into
one local graph, so a part's halo that is another of its parts' inner nodes becomes
inner, and the merged graph loses fewer cross-part edges.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from dist_train.data.feature_view import feature_rows_only
from dist_train.data.merge import merged_csr, merged_node_rows
from partition import load_partition
from partition.errors import InputError
from partition.wording import counted


@dataclass
class LocalGraph:
    """A rank's graph: inner nodes first (ids ``< num_inner``), then halo nodes."""

    part_ids: list[int]
    global_ids: np.ndarray
    num_inner: int
    indptr: np.ndarray
    indices: np.ndarray
    x: np.ndarray
    y: np.ndarray
    degree: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray
    owner: np.ndarray | None = None
    """int32 [num_local]: the rank owning each node, in exact mode only
    (:mod:`dist_train.data.exact_graph`; ``x`` then has rows for ``[0, len(x))`` only)."""
    stored: list | None = None
    """The one stored part (``partition.store.format.Partition``, memory-mapped) whose
    arrays this graph uses as they are, or None (merged or cut copies). Exact evaluation
    reuses it: mapping the same files a second time would count their pages twice in the
    rank's RSS (rss_share.py, issue 15)."""

    @property
    def num_local(self) -> int:
        return int(self.global_ids.shape[0])

    @property
    def num_edges(self) -> int:
        return int(self.indices.shape[0])


def assign_parts(part_train_counts: list[int], world_size: int) -> list[list[int]]:
    """Spread P parts over W ranks so that training nodes are balanced.

    Longest-processing-time greedy: parts by decreasing train count go to the rank
    with the fewest train nodes so far (ties: fewer parts, then lower rank), so the
    result depends only on the counts. Balanced train counts keep the number of
    batches per rank close, which is what makes the agreed step count cheap.
    """
    num_parts = len(part_train_counts)
    if world_size < 1:
        raise InputError(f"world size {world_size} is not >= 1")
    if num_parts < world_size:
        raise InputError(
            f"--data: the dataset has {counted(num_parts, 'part')} but {counted(world_size, 'rank')} "
            f"were started; partition into at least {counted(world_size, 'part')} (--num-parts)"
        )
    order = sorted(range(num_parts), key=lambda p: (-part_train_counts[p], p))
    load = [0] * world_size
    assigned: list[list[int]] = [[] for _ in range(world_size)]
    for p in order:
        # every rank needs at least one part: fill empty ranks first
        empty = [r for r in range(world_size) if not assigned[r]]
        candidates = empty if empty else range(world_size)
        r = min(candidates, key=lambda r: (load[r], len(assigned[r]), r))
        assigned[r].append(p)
        load[r] += part_train_counts[p]
    return [sorted(parts) for parts in assigned]


def train_global_ids(data_dir: str, part_ids: list[int]) -> np.ndarray:
    """int64 global ids of the train nodes of ``part_ids``, in the order of the rank's train_idx.

    The same order as ``load_local_graph(data_dir, part_ids)``'s ``global_ids[train_idx]``
    (one part: the part's own order; several: merged inner ids are sorted by global id),
    read without building the merged graph: elastic resume replays other ranks' plans.
    """
    ids = []
    for p in part_ids:
        part = load_partition(data_dir, p)
        ids.append(np.asarray(part.global_ids)[np.asarray(part.train_idx)])
    return ids[0].astype(np.int64) if len(ids) == 1 else np.sort(np.concatenate(ids)).astype(np.int64)


def train_ids_by_rank(data_dir: str, part_train_counts: list[int]) -> Callable[[int, int], np.ndarray]:
    """``(world_size, rank) -> train_global_ids`` of the parts that rank holds at that size (cached)."""

    @lru_cache(maxsize=64)
    def ids(world_size: int, rank: int) -> np.ndarray:
        return train_global_ids(data_dir, assign_parts(part_train_counts, world_size)[rank])

    return ids


def load_local_graph(data_dir: str, part_ids: list[int]) -> LocalGraph:
    """Open (one part) or merge (several parts) the shards a rank trains on (local mode).

    Structure-only halo nodes (``--halo-hops 0``) are left out: local mode never steps
    onto a node without a feature row (:mod:`dist_train.data.feature_view`).
    """
    loaded = [load_partition(data_dir, p) for p in part_ids]
    parts = [feature_rows_only(p) for p in loaded]
    if len(parts) == 1:
        p = parts[0]
        return LocalGraph(
            part_ids=list(part_ids), global_ids=p.global_ids, num_inner=p.num_inner,
            indptr=p.indptr, indices=p.indices, x=p.x, y=p.y, degree=p.degree,
            train_idx=p.train_idx, val_idx=p.val_idx, test_idx=p.test_idx,
            stored=loaded if p is loaded[0] else None,
        )
    return _merge(parts, list(part_ids))


def _merge(parts: list, part_ids: list[int]) -> LocalGraph:
    inner = np.concatenate([np.asarray(p.global_ids[: p.num_inner]) for p in parts])
    inner_sorted = np.sort(inner)
    halo_all = np.concatenate([np.asarray(p.global_ids[p.num_inner:]) for p in parts])
    halo = np.setdiff1d(np.unique(halo_all), inner_sorted, assume_unique=True)
    global_ids = np.concatenate([inner_sorted, halo]).astype(np.int64)
    num_inner = int(inner_sorted.shape[0])
    lookup = _GlobalToLocal(global_ids)
    locs = [lookup(np.asarray(p.global_ids)) for p in parts]
    del lookup, inner, halo_all
    # per-edge memory is the output alone (dist_train.data.merge): a rank's share of a giant graph fits
    indptr, indices = merged_csr(parts, locs, len(global_ids), num_inner, global_ids)
    x, y, degree = merged_node_rows(parts, locs, len(global_ids))

    def split(name: str) -> np.ndarray:
        return np.sort(np.concatenate([loc[np.asarray(getattr(p, name))] for p, loc in zip(parts, locs, strict=True)]))

    return LocalGraph(
        part_ids=part_ids, global_ids=global_ids, num_inner=num_inner, indptr=indptr,
        indices=indices, x=x, y=y, degree=degree, train_idx=split("train_idx"),
        val_idx=split("val_idx"), test_idx=split("test_idx"),
    )


class _GlobalToLocal:
    """Vectorised global→merged-local lookup without an O(num_global_nodes) array."""

    def __init__(self, global_ids: np.ndarray) -> None:
        self.order = np.argsort(global_ids, kind="stable")
        self.sorted_ids = global_ids[self.order]

    def __call__(self, gids: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.sorted_ids, gids)
        return self.order[pos]
