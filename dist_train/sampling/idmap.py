"""A global id -> position hash map for exact mode's hot paths, compiled with numba.

Exact sampling (issue 15) turns global ids into positions three times per hop: the
owner finds its inner rows, the batch finds which neighbours it has seen, the row
fetch finds stored rows. Binary searches and sorts did this at O(n log n) per batch and
were 87% of an exact batch's time (benchmarks/README.md, scale_bench); open addressing
with linear probing makes each lookup O(1). Keys are int64 global ids >= 0; -1 marks an
empty slot. Values are int32 positions (a rank's rows, a batch's nodes: < 2^31), 12 bytes
a slot instead of 16 (issue 15: a rank's maps are part of what grows with its share). A
map holds at most half its slots, so probes stay short.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_EMPTY = -1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing (Knuth, TAOCP vol. 3, 6.4)


@njit(cache=True, nogil=True)
def _capacity(n):
    cap = 16
    while cap < 2 * n:
        cap *= 2
    return cap


@njit(cache=True, nogil=True)
def _slot(key, mask):
    return np.int64((np.uint64(key) * _GOLDEN) >> np.uint64(32)) & mask


@njit(cache=True, nogil=True)
def build_map(keys, room):
    """Map ``keys[i] -> i`` for int64 ``keys`` (distinct, >= 0) with room for ``room``
    keys in all (``room >= len(keys)``, ``room < 2^31``): (slot keys int64, slot values
    int32), both [capacity], capacity a power of two >= 2 * room."""
    cap = _capacity(room)
    tk = np.full(cap, _EMPTY, dtype=np.int64)
    tv = np.empty(cap, dtype=np.int32)
    mask = cap - 1
    for i in range(keys.shape[0]):
        s = _slot(keys[i], mask)
        while tk[s] != _EMPTY and tk[s] != keys[i]:
            s = (s + 1) & mask
        tk[s] = keys[i]
        tv[s] = i
    return tk, tv


@njit(cache=True, nogil=True)
def lookup(tk, tv, queries):
    """int64 [len(queries)]: the value stored for each query, -1 where it is absent."""
    mask = tk.shape[0] - 1
    out = np.empty(queries.shape[0], dtype=np.int64)
    for i in range(queries.shape[0]):
        s = _slot(queries[i], mask)
        out[i] = -1
        while tk[s] != _EMPTY:
            if tk[s] == queries[i]:
                out[i] = tv[s]
                break
            s = (s + 1) & mask
    return out


@njit(cache=True, nogil=True)
def append_new(tk, tv, gids, n_known):
    """Add ``gids`` (int64, repeats allowed) to a map of positions ``[0, n_known)``, in place.

    Returns (pos int64 [len(gids)], fresh int64 [m]): ``pos[i]`` is the position of
    ``gids[i]`` once the ``m`` ids seen for the first time, ``gids[fresh]``, take positions
    ``n_known, n_known + 1, ...`` in order of first appearance. The map must have room
    (capacity >= 2 * (n_known + m)): see :func:`grow`.
    """
    mask = tk.shape[0] - 1
    pos = np.empty(gids.shape[0], dtype=np.int64)
    fresh = np.empty(gids.shape[0], dtype=np.int64)
    m = 0
    for i in range(gids.shape[0]):
        g = gids[i]
        s = _slot(g, mask)
        while tk[s] != _EMPTY and tk[s] != g:
            s = (s + 1) & mask
        if tk[s] == _EMPTY:
            tk[s] = g
            tv[s] = n_known + m
            fresh[m] = i
            m += 1
        pos[i] = tv[s]
    return pos, fresh[:m]


def grow(tk: np.ndarray, tv: np.ndarray, keys: np.ndarray, n_more: int) -> tuple[np.ndarray, np.ndarray]:
    """The map of ``keys -> position`` (``keys`` int64, what ``tk, tv`` hold) with room for
    ``n_more`` further keys: the same arrays when they have it, else rebuilt larger."""
    if tk.shape[0] >= 2 * (keys.shape[0] + n_more):
        return tk, tv
    return build_map(keys, keys.shape[0] + n_more)
