"""Sample chosen rows of a CSR with the same per-node streams as the batch sampler.

Exact mode (issue 15) samples a frontier node on the rank that owns it: the owner runs
this kernel on its complete inner row, with the stream keyed by (batch seed, global id,
hop), so it picks exactly the neighbours :func:`dist_train.sampling.sampler.sample_hops`
picks for that node in a one-part graph (rows are in global-id order in every shard).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from dist_train.sampling.sampler import _MUL2, _choose, _mix, _node_stream


@njit(cache=True, nogil=True)
def batch_stream_base(rng_seed: np.uint64) -> np.uint64:
    """The base every node stream of a batch is derived from (as in ``sample_hops``)."""
    return _mix(rng_seed ^ _MUL2)


@njit(cache=True, nogil=True)
def _row_take(d, f, replace):
    take_all = f < 0 or (d <= f and not replace)
    return take_all, (d if take_all else (f if d > 0 else 0))


@njit(cache=True, nogil=True)
def sample_rows(indptr, indices, rows, keys, fanout, replace, base, hop):
    """For each local row id in ``rows``, its sampled neighbours as local ids.

    Returns (ptr int64 [len(rows)+1], picked int64 [ptr[-1]]): the neighbours of
    ``rows[i]`` are ``picked[ptr[i]:ptr[i+1]]`` in the order the batch sampler adds
    them. ``keys`` (int64 per local node) are global ids; ``base`` from
    :func:`batch_stream_base`.
    """
    m = rows.shape[0]
    ptr = np.zeros(m + 1, dtype=np.int64)
    for i in range(m):
        d = indptr[rows[i] + 1] - indptr[rows[i]]
        ptr[i + 1] = ptr[i] + _row_take(d, fanout, replace)[1]
    picked = np.empty(ptr[m], dtype=np.int64)
    kmax = max(1, fanout)
    chosen = np.empty(kmax, dtype=np.int64)
    scratch = np.empty(kmax * kmax // 2 + 1, dtype=np.int64)
    for i in range(m):
        v = rows[i]
        start = indptr[v]
        d = indptr[v + 1] - start
        take_all, k = _row_take(d, fanout, replace)
        if not take_all and k > 0:
            _choose(d, k, replace, _node_stream(base, keys[v], hop), chosen, scratch)
        for c in range(k):
            picked[ptr[i] + c] = indices[start + (c if take_all else chosen[c])]
    return ptr, picked
