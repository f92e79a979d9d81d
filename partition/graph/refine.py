"""Refinement after METIS: move train nodes until every part holds the mean ±5%.

Each pass (a Python loop per pass, numba inside) picks, for every train node of a
donor part, the receiving part it has the most edges to, scores the move by
``edges to that part − edges to its own part`` and applies the best moves first,
never taking a donor below its quota or a receiver above it. Boundary nodes therefore
move first and the cut grows little; a donor with no boundary to any receiver gives
its least-connected train nodes to the receiver with the most room.

Donors and receivers per pass: while some part is over ``floor(mean·1.05)``, over-full
parts give their excess to parts below the mean; otherwise parts above the mean fill
parts under ``ceil(mean·0.95)``. The bounds are the integers inside mean·(1 ± 5%),
widened to ``floor(mean)`` / ``ceil(mean)`` when a tiny mean leaves no integer inside.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from partition.graph.csr import CSR

TRAIN_TOLERANCE = 0.05
"""Allowed relative deviation of a part's train-node count from the mean."""
MAX_PASSES = 64


@njit(cache=True, nogil=True)
def _best_moves(cands: np.ndarray, indptr: np.ndarray, indices: np.ndarray, parts: np.ndarray,
                receiver: np.ndarray, fallback: int) -> tuple[np.ndarray, np.ndarray]:
    """For each candidate: the receiving part it has most edges to, and the gain of moving."""
    dest = np.empty(cands.shape[0], dtype=np.int32)
    gain = np.empty(cands.shape[0], dtype=np.int64)
    tally = np.zeros(receiver.shape[0], dtype=np.int64)
    for i in range(cands.shape[0]):
        u = cands[i]
        lo, hi = indptr[u], indptr[u + 1]
        for k in range(lo, hi):
            tally[parts[indices[k]]] += 1
        best, best_count = -1, 0
        for k in range(lo, hi):
            p = parts[indices[k]]
            if receiver[p] and (tally[p] > best_count or (tally[p] == best_count and p < best)):
                best, best_count = p, tally[p]
        own = tally[parts[u]]
        for k in range(lo, hi):
            tally[parts[indices[k]]] = 0
        dest[i] = best if best >= 0 else fallback
        gain[i] = best_count - own
    return dest, gain


@njit(cache=True, nogil=True)
def _apply(cands: np.ndarray, dest: np.ndarray, order: np.ndarray, parts: np.ndarray,
           excess: np.ndarray, room: np.ndarray) -> int:
    """Greedy in ``order``: move while the donor has excess and the receiver has room."""
    moved = 0
    for j in order:
        u, d = cands[j], dest[j]
        s = parts[u]
        if excess[s] > 0 and room[d] > 0:
            parts[u] = d
            excess[s] -= 1
            room[d] -= 1
            moved += 1
    return moved


def _quotas(counts: np.ndarray, mean: float, lower: int, upper: int) -> tuple[np.ndarray, np.ndarray]:
    """(excess per donor, room per receiver) for this pass."""
    if (counts > upper).any():
        excess = np.maximum(counts - upper, 0)
        room = np.where(counts < mean, math.ceil(mean) - counts, 0)
    else:
        excess = np.where(counts > mean, counts - math.floor(mean), 0)
        room = np.maximum(lower - counts, 0)
    return excess.astype(np.int64), room.astype(np.int64)


def _bounds(mean: float, tolerance: float) -> tuple[int, int]:
    """Integer count bounds inside mean·(1 ± tolerance); widened to floor/ceil(mean) if empty."""
    lower = min(math.ceil(mean * (1 - tolerance)), math.floor(mean))
    upper = max(math.floor(mean * (1 + tolerance)), math.ceil(mean))
    return lower, upper


def balance_train_nodes(csr: CSR, parts: np.ndarray, train_mask: np.ndarray, num_parts: int,
                        tolerance: float = TRAIN_TOLERANCE) -> np.ndarray:
    """A copy of ``parts`` with train nodes per part within mean·(1 ± tolerance) (see _bounds)."""
    parts = np.array(parts, dtype=np.int32)
    train = np.flatnonzero(train_mask)
    mean = train.shape[0] / num_parts
    lower, upper = _bounds(mean, tolerance)
    for _ in range(MAX_PASSES):
        counts = np.bincount(parts[train], minlength=num_parts)
        if counts.min() >= lower and counts.max() <= upper:
            break
        excess, room = _quotas(counts, mean, lower, upper)
        cands = train[excess[parts[train]] > 0]
        dest, gain = _best_moves(cands, csr.indptr, csr.indices, parts, room > 0,
                                 int(np.argmax(room)))
        order = np.lexsort((cands, -gain))  # best gain first; ties by node id (deterministic)
        if _apply(cands, dest, order, parts, excess, room) == 0:
            break
    return parts
