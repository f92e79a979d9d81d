"""A part cut down to the nodes that have feature rows: what local mode trains on.

Since format 2 (issue 11) a part stored with ``--halo-hops 0`` keeps its 1-hop boundary
as structure-only halo nodes (complete inner rows for exact inference, no feature rows).
Local mode never steps onto such a node: it trains on the subgraph induced by local
ids ``[0, num_feature_rows)``, which is exactly the part format 1 stored (inner rows
with only their intra-part edges). With a feature halo (H >= 1) every local node has a
row and the part is returned unchanged, at no cost.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numba import njit

from partition.store.format import Partition


@njit(cache=True, nogil=True)
def _keep_counts(indptr, indices, num_rows, limit, counts):
    """``counts[i]``: entries of row i below ``limit``."""
    for i in range(num_rows):
        c = 0
        for k in range(indptr[i], indptr[i + 1]):
            c += indices[k] < limit
        counts[i] = c


@njit(cache=True, nogil=True)
def _keep_fill(indptr, indices, num_rows, limit, out_ptr, out):
    for i in range(num_rows):
        c = out_ptr[i]
        for k in range(indptr[i], indptr[i + 1]):
            if indices[k] < limit:
                out[c] = indices[k]
                c += 1


def induced_subgraph(indptr: np.ndarray, indices: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR of the subgraph induced by local ids ``[0, limit)``, each row's order kept.

    ``indptr`` int64 [n+1], ``indices`` int64 [nnz] (rows in any order; on disk they are
    in global-id order, which filtering keeps); returns (int64 [limit+1], int64 [kept]).
    Row by row in numba: no per-edge temporary beyond the output.
    """
    counts = np.zeros(limit, dtype=np.int64)
    _keep_counts(indptr, indices, limit, limit, counts)
    out_ptr = np.zeros(limit + 1, dtype=np.int64)
    np.cumsum(counts, out=out_ptr[1:])
    out = np.empty(int(out_ptr[-1]), dtype=np.int64)
    _keep_fill(indptr, indices, limit, limit, out_ptr, out)
    return out_ptr, out


def feature_rows_only(part: Partition) -> Partition:
    """``part`` restricted to its nodes with feature rows (unchanged when that is all of them)."""
    n = part.num_feature_rows
    if n == part.num_local:
        return part
    indptr, indices = induced_subgraph(np.asarray(part.indptr), np.asarray(part.indices), n)
    return replace(part, global_ids=part.global_ids[:n], indptr=indptr, indices=indices,
                   degree=part.degree[:n], halo_part=part.halo_part[:n - part.num_inner],
                   num_feature_rows=n)
