"""The node set and local CSR of one part: its inner nodes plus an H-hop halo.

Local ids: inner nodes (sorted by global id) are ``0 .. num_inner-1``, halo nodes
(sorted by global id) follow. The halo is every node outside the part within ``hops``
hops of it. The local CSR holds every edge of the full graph whose two ends are both
local, so an inner node's row is its complete neighbour list, and a halo node's row
holds only its edges to other local nodes (hop-H halo nodes lose their edges to hop
H+1). Rows are in global-id order (not local-id order): the sampler draws positions in
a row, so the same order in every partition makes a node's sample the same whatever
part holds it (partition-invariant sampling, issue 15).

With ``hops == 0`` the halo is the 1-hop boundary all the same, but **structure-only**:
those nodes get global ids, degrees and an owner part, no feature rows (issue 11: exact
inference needs every inner node's complete adjacency; the features stay with their
owner). A structure-only node's row is stored empty and a cached node's row holds its
edges to nodes with rows: nothing reads more (exact mode samples inner rows only, local
mode the subgraph of nodes with rows). On a 2.5·10^7-node, 5·10^8-edge graph in 8 parts
the halo rows with every local neighbour were 2/3 of each part's CSR.
``num_feature_rows`` says which local ids have stored rows: ``[0, num_feature_rows)``;
it is ``num_local`` when ``hops >= 1`` and ``num_inner`` (plus the cache) when 0.

A :class:`PartBuilder` keeps one global→local int64 array for all parts and resets only
the entries a part touched, so P parts cost O(N + part sizes), not O(P·N).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from partition.graph.cache import choose_cache
from partition.graph.csr import CSR
from partition.store.format import LocalIdRanges

_UNSEEN = -1
_HALO = -2  # marked during the BFS; halo ids are assigned once the halo is sorted


@dataclass
class PartGraph(LocalIdRanges):
    """One part's local graph (see the module docstring for id order and halo rows)."""

    global_ids: np.ndarray
    """int64 [n_local]: inner ascending, then halo ascending."""
    num_inner: int
    indptr: np.ndarray
    """int64 [n_local+1]"""
    indices: np.ndarray
    """local ids: int64, or int32 when the builder was asked for it (the writer)"""
    num_feature_rows: int = -1
    """Local ids ``[0, num_feature_rows)`` have stored feature rows; -1 means all."""



@njit(cache=True, nogil=True)
def _expand(frontier: np.ndarray, indptr: np.ndarray, indices: np.ndarray,
            g2l: np.ndarray, capacity: int) -> np.ndarray:
    """Unseen neighbours of ``frontier``, each once; marks them as halo."""
    out = np.empty(capacity, dtype=np.int64)
    n = 0
    for u in frontier:
        for k in range(indptr[u], indptr[u + 1]):
            v = indices[k]
            if g2l[v] == _UNSEEN:
                g2l[v] = _HALO
                out[n] = v
                n += 1
    return out[:n]


@njit(cache=True, nogil=True, parallel=True)
def _local_ptr(nodes: np.ndarray, num_inner: int, indptr: np.ndarray, indices: np.ndarray,
               g2l: np.ndarray, inner_complete: bool, num_rows: int) -> np.ndarray:
    """int64 [n+1] row pointers of ``nodes``' rows: an inner row is complete, a halo row
    with a feature row (local id < ``num_rows``) keeps its neighbours with one, and a row
    without (a structure-only node's, local id >= ``num_rows``) is empty.

    With ``inner_complete`` (always: every part keeps at least its 1-hop ring) an inner
    row's length is its degree: only halo rows need a counting pass. Rows are
    independent: parallel.
    """
    n = nodes.shape[0]
    local_ptr = np.zeros(n + 1, dtype=np.int64)
    for i in prange(n):
        lo, hi = indptr[nodes[i]], indptr[nodes[i] + 1]
        if i < num_inner and inner_complete:
            local_ptr[i + 1] = hi - lo
        elif i < num_rows:
            c = 0
            for k in range(lo, hi):
                j = g2l[indices[k]]
                c += j >= 0 and j < num_rows
            local_ptr[i + 1] = c
    return np.cumsum(local_ptr)


@njit(cache=True, nogil=True, parallel=True)
def _local_fill(nodes: np.ndarray, num_inner: int, indptr: np.ndarray, indices: np.ndarray,
                g2l: np.ndarray, local_ptr: np.ndarray, local_idx: np.ndarray, num_rows: int) -> None:
    """Fill ``local_idx`` (any integer dtype) with the local ids of each row's neighbours
    kept by :func:`_local_ptr`. A global row is sorted by global id, so filtering it
    keeps that order."""
    n = nodes.shape[0]
    for i in prange(n):
        a, limit = local_ptr[i], n if i < num_inner else num_rows
        if a == local_ptr[i + 1]:
            continue  # an empty row (a structure-only node's)
        for k in range(indptr[nodes[i]], indptr[nodes[i] + 1]):
            j = g2l[indices[k]]
            if j >= 0 and j < limit:
                local_idx[a] = j
                a += 1


def _local_csr(nodes: np.ndarray, num_inner: int, indptr: np.ndarray, indices: np.ndarray,
               g2l: np.ndarray, index_dtype: type = np.int64,
               num_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(int64 [n+1], ``index_dtype`` [nnz]): rows of ``nodes`` as local ids in global-id
    order: inner rows complete, halo rows restricted to the local nodes with feature rows
    (local ids ``< num_rows``; default: every local node), structure-only rows empty."""
    rows = nodes.shape[0] if num_rows is None else int(num_rows)
    local_ptr = _local_ptr(nodes, num_inner, indptr, indices, g2l, True, rows)
    local_idx = np.empty(int(local_ptr[-1]), dtype=index_dtype)
    _local_fill(nodes, num_inner, indptr, indices, g2l, local_ptr, local_idx, rows)
    return local_ptr, local_idx


class PartBuilder:
    """Builds the parts of one assignment in turn, reusing its O(N) scratch arrays."""

    def __init__(self, csr: CSR, parts: np.ndarray, num_parts: int) -> None:
        self.csr = csr
        self.num_parts = num_parts
        self._by_part = np.argsort(parts, kind="stable")  # ascending ids within each part
        sizes = np.bincount(parts, minlength=num_parts)
        self._bounds = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        self._g2l = np.full(csr.num_nodes, _UNSEEN, dtype=np.int64)

    def inner(self, part_id: int) -> np.ndarray:
        """Sorted global ids of the part's inner nodes."""
        lo, hi = self._bounds[part_id], self._bounds[part_id + 1]
        return self._by_part[lo:hi].astype(np.int64)

    def build(self, part_id: int, hops: int, cache_budget: float = 0.0,
              index_dtype: type = np.int64) -> PartGraph:
        """Part ``part_id``; at ``hops == 0`` the rows of ``cache_budget * num_inner`` of its
        boundary nodes are kept too, the most reached first (``partition.graph.cache``).

        ``index_dtype``: of the local ``indices`` (int64, the stored dtype, by default; the
        writer asks for int32 when local ids fit, half the memory, and widens per block).
        """
        inner = self.inner(part_id)
        rings: list[np.ndarray] = []
        try:
            return self._build(inner, hops, rings, cache_budget, index_dtype)
        finally:  # reset only what this part touched, even on error
            self._g2l[inner] = _UNSEEN
            for ring in rings:
                self._g2l[ring] = _UNSEEN

    def _build(self, inner: np.ndarray, hops: int, rings: list[np.ndarray],
               cache_budget: float, index_dtype: type) -> PartGraph:
        csr, g2l = self.csr, self._g2l
        g2l[inner] = np.arange(inner.shape[0], dtype=np.int64)
        frontier = inner
        # at H=0 the 1-hop ring is kept as structure-only halo: inner rows stay complete
        for _ in range(max(hops, 1)):
            reach = int((csr.indptr[frontier + 1] - csr.indptr[frontier]).sum())
            frontier = _expand(frontier, csr.indptr, csr.indices, g2l, min(csr.num_nodes, reach))
            if frontier.size == 0:
                break
            rings.append(frontier)
        halo = np.sort(np.concatenate(rings)) if rings else np.empty(0, dtype=np.int64)
        g2l[halo] = inner.shape[0] + np.arange(halo.shape[0], dtype=np.int64)
        cached = 0
        if hops == 0 and cache_budget > 0:  # cached rows come first among the halo (FORMAT.md)
            keep = choose_cache(inner, halo, csr.indptr, csr.indices, g2l, cache_budget)
            rest = np.ones(halo.shape[0], dtype=bool)
            rest[keep] = False
            halo, cached = np.concatenate((halo[keep], halo[rest])), int(keep.shape[0])
            g2l[halo] = inner.shape[0] + np.arange(halo.shape[0], dtype=np.int64)
        nodes = np.concatenate((inner, halo))
        if np.dtype(index_dtype).itemsize < 8 and nodes.shape[0] >= np.iinfo(index_dtype).max:
            index_dtype = np.int64  # local ids would not fit
        num_inner = int(inner.shape[0])
        rows = nodes.shape[0] if hops >= 1 else num_inner + cached
        indptr, indices = _local_csr(nodes, num_inner, csr.indptr, csr.indices, g2l, index_dtype, rows)
        return PartGraph(global_ids=nodes, num_inner=num_inner, indptr=indptr, indices=indices,
                         num_feature_rows=rows)


def build_part(csr: CSR, parts: np.ndarray, part_id: int, hops: int) -> PartGraph:
    """One part on its own; to build every part, reuse a :class:`PartBuilder`."""
    if hops < 0:
        raise ValueError(f"hops must be >= 0, got {hops}")
    num_parts = int(parts.max()) + 1 if parts.size else 1
    return PartBuilder(csr, parts, max(num_parts, part_id + 1)).build(part_id, hops)
