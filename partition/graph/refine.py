"""Refinement after any partitioner: move boundary nodes until no part is over its bounds.

Balanced quantities (issue 10): inner nodes, edges (sum of degrees) and train nodes,
each as one integer column of a weight matrix ``w`` [N, C]. A part is *over* in
quantity c when its load exceeds ``upper[c]``, the largest integer inside
mean·(1 + tolerance) (widened to ``ceil(mean)`` when a tiny mean leaves none inside).

Each pass (a Python loop per pass, numba inside) takes the over quantities, the worst
relative to its bound first; for each, every node of an over part that carries some of
it picks the receiving part it has the most edges to, scores the move by ``edges to that part −
edges to its own part`` and applies the best moves first. A move is applied only while
the donor is still over and only if the receiver stays within bounds in every
quantity the node carries (a receiver already over in one it does not carry is not made
worse), so no move creates a new violation and the total excess falls every pass:
boundary nodes move first and the cut grows little. A node with no edge to a receiver
goes to the feasible receiver with the most room. Before the passes, every empty part
gets one node, so no part is empty when the graph has at least as many nodes as parts.

The bound is a target, not a promise: a single node heavier than a part's slack (a
hub whose degree exceeds mean·tolerance) can leave its part over; the reported
imbalances are always measured, never assumed.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from partition.graph.csr import CSR

TOLERANCE = 0.05
"""Allowed relative excess of a part's load over the mean, in every quantity."""
MAX_PASSES = 96


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
def _fits(load: np.ndarray, w: np.ndarray, u: int, d: int, upper: np.ndarray) -> bool:
    """Whether ``d`` can take ``u`` without ending over a bound in anything ``u`` carries.

    A quantity ``u`` carries none of (a non-train node) does not stop the move even when
    ``d`` is over in it: its load there does not change. Without that, two parts each
    over in a different quantity (one combined weight gave one part every train node
    and the other most edges) could never trade a node, and both stayed over.
    """
    for c in range(upper.shape[0]):
        if w[u, c] > 0 and load[d, c] + w[u, c] > upper[c]:
            return False
    return True


@njit(cache=True, nogil=True)
def _roomiest(load: np.ndarray, w: np.ndarray, u: int, s: int, upper: np.ndarray, c: int) -> int:
    """The part other than ``s`` with the least load in ``c`` that can take ``u``; -1 if none."""
    best = -1
    for d in range(load.shape[0]):
        if d != s and _fits(load, w, u, d, upper) and (best < 0 or load[d, c] < load[best, c]):
            best = d
    return best


@njit(cache=True, nogil=True)
def _apply(cands: np.ndarray, dest: np.ndarray, order: np.ndarray, parts: np.ndarray,
           w: np.ndarray, load: np.ndarray, upper: np.ndarray, c: int) -> int:
    """Greedy in ``order``: move while the donor is over in ``c``, never overfilling anyone."""
    moved = 0
    for j in order:
        u = cands[j]
        s = parts[u]
        if load[s, c] <= upper[c]:
            continue
        d = dest[j]
        if d == s or not _fits(load, w, u, d, upper):
            d = _roomiest(load, w, u, s, upper, c)
            if d < 0:
                continue
        load[s, :] -= w[u, :]
        load[d, :] += w[u, :]
        parts[u] = d
        moved += 1
    return moved


def upper_bounds(totals: np.ndarray, num_parts: int, tolerance: float) -> np.ndarray:
    """int64 [C]: per quantity, the largest integer load inside mean·(1 + tolerance), ≥ ceil(mean)."""
    means = totals / num_parts
    return np.array([max(math.floor(m * (1 + tolerance)), math.ceil(m)) for m in means],
                    dtype=np.int64)


def rebalance(csr: CSR, parts: np.ndarray, weights: np.ndarray, num_parts: int,
              tolerance: float = TOLERANCE) -> np.ndarray:
    """A copy of ``parts`` (int32 [N]) with every part's load within ``upper_bounds``.

    ``weights``: int64 [N, C] non-negative per-node amounts of each balanced quantity.
    Nodes move only out of parts over a bound; see the module docstring for the order.
    """
    parts = np.array(parts, dtype=np.int32)
    w = np.ascontiguousarray(weights, dtype=np.int64)
    load = np.stack([np.bincount(parts, weights=w[:, c], minlength=num_parts)
                     for c in range(w.shape[1])], axis=1).astype(np.int64)
    _fill_empty_parts(parts, w, load)
    upper = upper_bounds(w.sum(axis=0), num_parts, tolerance)
    for _ in range(MAX_PASSES):
        ratio = (load / np.maximum(upper, 1)).max(axis=0)
        over = [int(c) for c in np.argsort(-ratio, kind="stable") if ratio[c] > 1.0]
        if not over or sum(_pass(csr, parts, w, load, upper, c) for c in over) == 0:
            break
    return parts


def _fill_empty_parts(parts: np.ndarray, w: np.ndarray, load: np.ndarray) -> None:
    """Give each empty part (METIS leaves some on small graphs) one node, in place.

    The node comes from the part with the most nodes (if it has two or more); the lightest
    one by (train, degree), so the other quantities barely move. A loop over empty
    parts, each a vectorised scan.
    """
    for e in np.flatnonzero(load[:, 0] == 0):
        donor = int(np.argmax(load[:, 0]))
        if load[donor, 0] < 2:
            return
        members = np.flatnonzero(parts == donor)
        u = members[np.lexsort((members, w[members, 1], w[members, 2]))[0]]
        parts[u] = e
        load[donor] -= w[u]
        load[e] += w[u]


def _pass(csr: CSR, parts: np.ndarray, w: np.ndarray, load: np.ndarray, upper: np.ndarray,
          c: int) -> int:
    """One pass for quantity ``c``; updates ``parts`` and ``load`` in place; returns moves."""
    cands = np.flatnonzero((load[:, c] > upper[c])[parts] & (w[:, c] > 0))
    receiver = load[:, c] < upper[c]
    dest, gain = _best_moves(cands, csr.indptr, csr.indices, parts, receiver,
                             int(np.argmin(load[:, c])))
    order = np.lexsort((cands, -gain))  # best gain first; ties by node id (deterministic)
    return _apply(cands, dest, order, parts, w, load, upper, c)
