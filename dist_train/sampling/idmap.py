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
    # exactly 2n slots, not the next power of two: a power of two left maps between a
    # quarter and half full, twice the memory at worst for the same probe lengths
    return max(16, 2 * n)


@njit(cache=True, nogil=True)
def _slot(key, cap):
    # the hash's top 32 bits scaled to [0, cap) (Lemire's multiply-shift range reduction,
    # "Fast Random Integer Generation in an Interval", 2019): any capacity below 2^32
    h = (np.uint64(key) * _GOLDEN) >> np.uint64(32)
    return np.int64((h * np.uint64(cap)) >> np.uint64(32))


@njit(cache=True, nogil=True)
def _next(s, cap):
    s += 1
    return 0 if s == cap else s


@njit(cache=True, nogil=True)
def build_map(keys, room):
    """Map ``keys[i] -> i`` for int64 ``keys`` (distinct, >= 0) with room for ``room``
    keys in all (``room >= len(keys)``, ``room < 2^31``): (slot keys int64, slot values
    int32), both [capacity], capacity ``max(16, 2 * room)``."""
    cap = _capacity(room)
    tk = np.full(cap, _EMPTY, dtype=np.int64)
    tv = np.empty(cap, dtype=np.int32)
    for i in range(keys.shape[0]):
        s = _slot(keys[i], cap)
        while tk[s] != _EMPTY and tk[s] != keys[i]:
            s = _next(s, cap)
        tk[s] = keys[i]
        tv[s] = i
    return tk, tv


@njit(cache=True, nogil=True)
def lookup(tk, tv, queries):
    """int64 [len(queries)]: the value stored for each query, -1 where it is absent."""
    cap = tk.shape[0]
    out = np.empty(queries.shape[0], dtype=np.int64)
    for i in range(queries.shape[0]):
        s = _slot(queries[i], cap)
        out[i] = -1
        while tk[s] != _EMPTY:
            if tk[s] == queries[i]:
                out[i] = tv[s]
                break
            s = _next(s, cap)
    return out


@njit(cache=True, nogil=True)
def append_new(tk, tv, gids, n_known):
    """Add ``gids`` (int64, repeats allowed) to a map of positions ``[0, n_known)``, in place.

    Returns (pos int64 [len(gids)], fresh int64 [m]): ``pos[i]`` is the position of
    ``gids[i]`` once the ``m`` ids seen for the first time, ``gids[fresh]``, take positions
    ``n_known, n_known + 1, ...`` in order of first appearance. The map must have room
    (capacity >= 2 * (n_known + m)): see :func:`grow`.
    """
    cap = tk.shape[0]
    pos = np.empty(gids.shape[0], dtype=np.int64)
    fresh = np.empty(gids.shape[0], dtype=np.int64)
    m = 0
    for i in range(gids.shape[0]):
        g = gids[i]
        s = _slot(g, cap)
        while tk[s] != _EMPTY and tk[s] != g:
            s = _next(s, cap)
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
