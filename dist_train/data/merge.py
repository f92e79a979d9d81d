"""Merge several parts' local graphs into one rank graph without per-edge temporaries.

The first version concatenated every part's edges as (src, dst) int64 pairs and ran
``np.unique`` on ``src * n + dst``: ~40 bytes per edge at peak, 3 GB on a 10^6-node
graph in 2 parts and far more than the rank's share of a 10^8-edge graph. Here the
output arrays are the only per-edge memory: an inner node's row is taken from the one
part that owns it (with a halo it is complete there); a node that is only halo gets
the union of its partial rows. Rows are then sorted and deduplicated in place (numba,
no GIL) and put in global-id order, the order a part's rows have on disk (the sampler's
draws are positions in a row: partition-invariant sampling, issue 15). Node rows (features, labels, degrees) are copied block by block from the
memory-mapped parts, so no part is ever read whole into memory.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit, prange

from partition.graph.csr import dedupe_sorted_rows, sort_rows
from partition.store.format import Partition

ROW_BLOCK = 1 << 16
"""Feature rows copied per block."""


@njit(cache=True, nogil=True)
def _count_rows(loc, num_inner_part, indptr, num_inner, counts):
    """Add the length of every row this part contributes (owned inner, or halo-only)."""
    for i in range(loc.shape[0]):
        m = loc[i]
        if i < num_inner_part or m >= num_inner:
            counts[m] += indptr[i + 1] - indptr[i]


@njit(cache=True, nogil=True)
def _fill_rows(loc, num_inner_part, indptr, indices, num_inner, cursor, out):
    for i in range(loc.shape[0]):
        m = loc[i]
        if i < num_inner_part or m >= num_inner:
            c = cursor[m]
            for k in range(indptr[i], indptr[i + 1]):
                out[c] = loc[indices[k]]
                c += 1
            cursor[m] = c


@njit(cache=True, nogil=True, parallel=True)
def _order_rows_by_key(indptr, indices, key):
    for r in prange(indptr.shape[0] - 1):
        row = indices[indptr[r]:indptr[r + 1]]
        row[:] = row[np.argsort(key[row], kind="mergesort")]


def merged_csr(parts: Sequence[Partition], locs: Sequence[np.ndarray], num_nodes: int,
               num_inner: int, global_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(indptr int64 [n+1], indices [nnz]) of the merged graph in merged ids, each row in
    global-id order; ``locs[p]`` maps part p's local ids, ``global_ids`` (int64 [n]) the
    merged ones. ``indices`` are int32 when n < 2^31 (as the shards store them: half the
    memory of a rank holding several parts), int64 otherwise."""
    counts = np.zeros(num_nodes + 1, dtype=np.int64)
    for p, loc in zip(parts, locs, strict=True):
        _count_rows(loc, int(p.num_inner), p.indptr, num_inner, counts[1:])
    indptr = np.cumsum(counts)
    indices = np.empty(int(indptr[-1]), dtype=np.int32 if num_nodes < 2**31 - 1 else np.int64)
    cursor = indptr[:-1].copy()
    for p, loc in zip(parts, locs, strict=True):
        _fill_rows(loc, int(p.num_inner), p.indptr, p.indices, num_inner, cursor, indices)
    del cursor
    sort_rows(indptr, indices)  # the same clean-up as partition's CSR build
    nnz = dedupe_sorted_rows(indptr, indices)
    indices.resize(nnz, refcheck=False)  # halo rows shrank: drop the tail in place
    _order_rows_by_key(indptr, indices, global_ids)
    return indptr, indices


def merged_node_rows(parts: Sequence[Partition], locs: Sequence[np.ndarray],
                     num_nodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, degree) of the merged nodes, each row read from the first part that holds it.

    A node held by several parts has the same source row in each (halo rows are
    copies), so which part it comes from does not matter.
    """
    first = parts[0]
    x = np.empty((num_nodes, first.x.shape[1]), dtype=first.x.dtype)  # float16 stays half-size
    y = np.empty(num_nodes, dtype=np.int64)
    degree = np.empty(num_nodes, dtype=np.int64)
    claimed = np.zeros(num_nodes, dtype=bool)
    for p, loc in zip(parts, locs, strict=True):
        mine = np.flatnonzero(~claimed[loc])
        dst = loc[mine]
        claimed[dst] = True
        y[dst] = np.asarray(p.y)[mine]
        degree[dst] = np.asarray(p.degree)[mine]
        for lo in range(0, mine.shape[0], ROW_BLOCK):
            x[dst[lo:lo + ROW_BLOCK]] = p.x[mine[lo:lo + ROW_BLOCK]]
    return x, y, degree
