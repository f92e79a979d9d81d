"""A rank's graph for exact mode: its parts whole, structure-only boundary included.

Local mode cuts a part to the nodes that have feature rows (``feature_view``); exact mode
(issue 15) needs the opposite: every inner node's complete row, whose neighbours may be
structure-only boundary nodes (global id, degree, owner; no row), plus the owner rank of
every local node, taken from the shards' ``halo_part.npy`` (O(halo), never the O(N)
``node_part.npy``). Local ids: inner nodes, then boundary nodes with stored rows (the
cache, or the whole halo at ``--halo-hops >= 1``), then structure-only nodes, each
segment sorted by global id, as in one part on disk.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from dist_train.data.feature_view import induced_subgraph
from dist_train.data.merge import merged_csr
from dist_train.data.shards import LocalGraph, _GlobalToLocal
from partition import load_partition
from partition.store.format import Partition


def part_ranks(plan: list[list[int]]) -> np.ndarray:
    """int64 [P]: the rank each part is assigned to (the O(P) partition book)."""
    out = np.full(sum(len(p) for p in plan), -1, dtype=np.int64)
    for rank, parts in enumerate(plan):
        out[parts] = rank
    return out


def _halo_owner_parts(parts: list[Partition], gids: np.ndarray) -> np.ndarray:
    """int64 owner part of each global id in ``gids`` (every one a halo node of some part)."""
    halo = np.concatenate([np.asarray(p.global_ids[p.num_inner:]) for p in parts])
    owner = np.concatenate([np.asarray(p.halo_part, dtype=np.int64) for p in parts])
    order = np.argsort(halo, kind="stable")
    return owner[order][np.searchsorted(halo[order], gids)]


def _segments(parts: list[Partition]) -> tuple[np.ndarray, int, int]:
    """(merged global ids, num_inner, num_rows): inner, halo with rows, structure-only."""
    inner = np.sort(np.concatenate([np.asarray(p.global_ids[: p.num_inner]) for p in parts]))
    rows = np.concatenate([np.asarray(p.global_ids[p.num_inner:p.num_feature_rows]) for p in parts])
    bare = np.concatenate([np.asarray(p.global_ids[p.num_feature_rows:]) for p in parts])
    rows = np.setdiff1d(np.unique(rows), inner, assume_unique=True)
    bare = np.setdiff1d(np.setdiff1d(np.unique(bare), inner, assume_unique=True), rows, assume_unique=True)
    ids = np.concatenate([inner, rows, bare]).astype(np.int64)
    return ids, int(inner.shape[0]), int(inner.shape[0] + rows.shape[0])


def _node_rows(parts: list[Partition], locs: list[np.ndarray], num_rows: int, num_local: int):
    """(x [num_rows, F], y [num_rows], degree [num_local]) copied from the parts that hold them."""
    x = np.empty((num_rows, parts[0].x.shape[1]), dtype=parts[0].x.dtype)
    y = np.empty(num_rows, dtype=np.int64)
    degree = np.empty(num_local, dtype=np.int64)
    claimed = np.zeros(num_rows, dtype=bool)
    for p, loc in zip(parts, locs, strict=True):
        degree[loc] = np.asarray(p.degree)
        lrow = loc[: p.num_feature_rows]
        mine = np.flatnonzero(lrow < num_rows)
        mine = mine[~claimed[lrow[mine]]]
        claimed[lrow[mine]] = True
        y[lrow[mine]] = np.asarray(p.y)[mine]
        x[lrow[mine]] = p.x[mine]
    return x, y, degree


def load_exact_graph(data_dir: str, part_ids: list[int], rank: int,
                     plan: list[list[int]]) -> LocalGraph:
    """The rank's graph with ``x``/``y`` rows for local ids ``[0, len(x))`` and ``owner``,
    the int32 rank of every local node; ``plan[r]`` are rank r's parts (``assign_parts``).

    One part (a rank per part, the usual case) is used as stored: its memory-mapped arrays
    already are in this order, so nothing of the shard is copied and a rank's resident
    memory is the pages it touches (rss_share.py measured 2x the feature share with the
    copy). Several parts are merged into new arrays.
    """
    parts = [load_partition(data_dir, p) for p in part_ids]
    if len(parts) == 1:
        return _as_stored(parts[0], rank, plan)
    return _merged(parts, list(part_ids), rank, plan)


def _as_stored(p: Partition, rank: int, plan: list[list[int]]) -> LocalGraph:
    owner = np.full(p.num_local, rank, dtype=np.int32)
    owner[p.num_inner:] = part_ranks(plan)[np.asarray(p.halo_part)]
    return LocalGraph(part_ids=[p.part_id], global_ids=p.global_ids, num_inner=p.num_inner,
                      indptr=p.indptr, indices=p.indices, x=p.x, y=p.y, degree=p.degree,
                      train_idx=p.train_idx, val_idx=p.val_idx, test_idx=p.test_idx, owner=owner,
                      stored=[p])


def _merged(parts: list[Partition], part_ids: list[int], rank: int,
            plan: list[list[int]]) -> LocalGraph:
    ids, num_inner, num_rows = _segments(parts)
    locs = [_GlobalToLocal(ids)(np.asarray(p.global_ids)) for p in parts]
    indptr, indices = merged_csr(parts, locs, ids.shape[0], num_inner, ids)
    x, y, degree = _node_rows(parts, locs, num_rows, ids.shape[0])

    def split(name: str) -> np.ndarray:
        return np.sort(np.concatenate([loc[np.asarray(getattr(p, name))] for p, loc in zip(parts, locs, strict=True)]))

    owner = np.full(ids.shape[0], rank, dtype=np.int32)
    owner[num_inner:] = part_ranks(plan)[_halo_owner_parts(parts, ids[num_inner:])]
    return LocalGraph(part_ids=part_ids, global_ids=ids, num_inner=num_inner, indptr=indptr,
                      indices=indices, x=x, y=y, degree=degree, train_idx=split("train_idx"),
                      val_idx=split("val_idx"), test_idx=split("test_idx"), owner=owner)


def rows_only(graph: LocalGraph) -> LocalGraph:
    """The graph induced by the nodes with feature rows (what local-mode evaluation reads)."""
    n = int(graph.x.shape[0])
    if n == graph.num_local:
        return graph
    indptr, indices = induced_subgraph(np.asarray(graph.indptr), np.asarray(graph.indices), n)
    return replace(graph, stored=None, global_ids=graph.global_ids[:n], indptr=indptr, indices=indices,
                   degree=graph.degree[:n], owner=graph.owner[:n] if graph.owner is not None else None)
