"""Undirected, deduplicated, self-loop-free CSR built from a stream of edge chunks.

One pass over the source: each chunk is range-checked, stripped of self loops, kept
(as int32 when ids fit, halving the buffer) and counted into the degree array. Then
numba fills both directions of every edge into one preallocated ``indices`` array,
sorts each row in place (rows in parallel) and squeezes out duplicates. Nothing is ever held per edge
but integers in numpy arrays; peak memory is the kept chunks plus the raw
(duplicated) ``indices``, about 32 bytes per input edge. A per-row sort costs
O(nnz log degree), well under one global sort of 2·E keys.

One pass, not two, because re-reading a gzipped OGB edge file costs more than
buffering its parsed ids (ANCHORS: partitioning time is a user complaint).

With a ``memory_budget`` (``--memory-budget``) the same pass watches the in-memory
build's footprint (:func:`in_memory_bytes`); the moment it would exceed the budget, the
chunks kept so far and the rest of the stream go to the out-of-core build
(:mod:`partition.graph.csr_external`: sorted runs on scratch disk, blockwise merge),
which gives the same CSR, bit for bit, with ``indices`` memory-mapped from scratch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import njit, prange

from partition.errors import InputError
from partition.graph.csr_external import external_csr, external_scratch_bytes, index_dtype
from partition.readers.source_graph import EdgeChunks


@dataclass
class CSR:
    """Symmetric adjacency: the neighbours of ``u`` are ``indices[indptr[u]:indptr[u+1]]``.

    Rows are sorted ascending, hold no duplicates and no ``u`` itself; every edge is
    stored in both directions.
    """

    indptr: np.ndarray
    """int64 [N+1]"""
    indices: np.ndarray
    """int32 [nnz] when N < 2^31 (else int64), nnz = 2 × undirected edges (issue 12: half
    the bytes of the largest array the partitioner holds)"""

    @property
    def num_nodes(self) -> int:
        return int(self.indptr.shape[0]) - 1

    @property
    def num_edges(self) -> int:
        """Undirected edges."""
        return int(self.indices.shape[0]) // 2

    def degree(self) -> np.ndarray:
        """int64 [N] undirected degree."""
        return np.diff(self.indptr)


@njit(cache=True, nogil=True)
def _keep_and_count(src: np.ndarray, dst: np.ndarray, num_nodes: int, counts: np.ndarray,
                    out_src: np.ndarray, out_dst: np.ndarray) -> int:
    """Copy non-loop edges to out_*, count both ends into counts[u+1]; -1-i if id i is bad."""
    m = 0
    for i in range(src.shape[0]):
        u, v = src[i], dst[i]
        if u < 0 or u >= num_nodes or v < 0 or v >= num_nodes:
            return -1 - i
        if u != v:
            out_src[m] = u
            out_dst[m] = v
            m += 1
            counts[u + 1] += 1
            counts[v + 1] += 1
    return m


@njit(cache=True, nogil=True)
def _fill(src: np.ndarray, dst: np.ndarray, cursor: np.ndarray, indices: np.ndarray) -> None:
    for i in range(src.shape[0]):
        u, v = src[i], dst[i]
        indices[cursor[u]] = v
        cursor[u] += 1
        indices[cursor[v]] = u
        cursor[v] += 1


@njit(cache=True, nogil=True, parallel=True)
def sort_rows(indptr: np.ndarray, indices: np.ndarray) -> None:
    for r in prange(indptr.shape[0] - 1):
        indices[indptr[r]:indptr[r + 1]].sort()


@njit(cache=True, nogil=True)
def dedupe_sorted_rows(indptr: np.ndarray, indices: np.ndarray) -> int:
    """Drop repeats from sorted rows, compact leftwards; rewrites indptr; returns new nnz."""
    out = 0
    lo = indptr[0]
    for r in range(indptr.shape[0] - 1):
        hi = indptr[r + 1]
        indptr[r] = out
        prev = -1
        for k in range(lo, hi):
            v = indices[k]
            if v != prev:
                indices[out] = v
                out += 1
                prev = v
        lo = hi
    indptr[indptr.shape[0] - 1] = out
    return out


def _clean_chunk(src: np.ndarray, dst: np.ndarray, num_nodes: int, dtype: type,
                 counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Range-check, drop self loops, count degrees; the kept edges as ``dtype``."""
    src, dst = np.asarray(src).reshape(-1), np.asarray(dst).reshape(-1)
    if src.shape != dst.shape:
        raise InputError(f"edge chunk: src has {src.size} ids but dst has {dst.size}")
    if src.size == 0:
        return src.astype(dtype), dst.astype(dtype)
    if not (np.issubdtype(src.dtype, np.integer) and np.issubdtype(dst.dtype, np.integer)):
        raise InputError(f"edges: expected integer node ids, got {src.dtype} and {dst.dtype}")
    out_src, out_dst = np.empty(src.size, dtype=dtype), np.empty(src.size, dtype=dtype)
    m = _keep_and_count(src, dst, num_nodes, counts, out_src, out_dst)
    if m < 0:
        bad = src[-1 - m] if not 0 <= src[-1 - m] < num_nodes else dst[-1 - m]
        raise InputError(f"edges: node id {bad} out of range [0, {num_nodes})")
    if m < src.size:  # self loops dropped: do not keep the slack
        return out_src[:m].copy(), out_dst[:m].copy()
    return out_src, out_dst


def in_memory_bytes(num_nodes: int, kept_bytes: int) -> int:
    """Peak bytes of the in-memory build holding ``kept_bytes`` of cleaned edge chunks.

    The kept chunks, the raw (duplicated) ``indices`` of the same size (two entries of
    the same dtype per kept edge), and two int64 [N+1] arrays (counts/indptr, cursor).
    """
    return 2 * kept_bytes + 16 * (num_nodes + 1)


def csr_stage_bytes(num_nodes: int, num_edges: int, memory_budget: int | None) -> int:
    """Estimated peak bytes the CSR stage allocates for ``num_edges`` raw input edges.

    ``num_edges`` counts edges as the source gives them (directed, duplicates and self
    loops included): the upper bound, since only loops are dropped before the buffer.
    The in-memory build's ``in_memory_bytes`` when it fits ``memory_budget`` (or with no
    budget), else the budget itself, which the out-of-core build stays within. Excludes
    the reader's own chunk buffer and the interpreter (``--dry-run`` adds those).
    """
    kept = 2 * num_edges * np.dtype(index_dtype(num_nodes)).itemsize
    need = in_memory_bytes(num_nodes, kept)
    return need if memory_budget is None or need <= memory_budget else int(memory_budget)


def csr_scratch_bytes(num_nodes: int, num_edges: int, memory_budget: int | None) -> int:
    """Estimated scratch disk (bytes) the CSR stage writes beside ``--out``; 0 in memory."""
    if csr_stage_bytes(num_nodes, num_edges, None) == csr_stage_bytes(num_nodes, num_edges, memory_budget):
        return 0
    return external_scratch_bytes(num_nodes, num_edges)


def build_csr(num_nodes: int, edge_chunks: EdgeChunks,
              progress: Callable[[int], None] | None = None,
              memory_budget: int | None = None, scratch: Path | None = None) -> CSR:
    """Symmetrise, deduplicate and drop self loops; ``progress(n)`` after each chunk of n edges.

    ``indptr`` is int64 [N+1]; ``indices`` int32 when N < 2^31, else int64. With
    ``memory_budget`` (bytes) the build holds about that much at most: in memory while
    :func:`in_memory_bytes` fits, else out of core with ``indices`` a
    ``np.memmap`` of a file under ``scratch`` (a temporary folder when None); same
    arrays either way. The edges are read once.

    Raises InputError when an id lies outside ``[0, num_nodes)``, when the budget is
    below :func:`partition.graph.csr_external.min_budget`, or when a scratch write fails
    (disk full: the line names the file).
    """
    dtype = index_dtype(num_nodes)
    chunks = iter(edge_chunks())
    if memory_budget is not None and in_memory_bytes(num_nodes, 0) > memory_budget:
        return CSR(*external_csr(num_nodes, chunks, memory_budget, scratch, progress))
    counts = np.zeros(num_nodes + 1, dtype=np.int64)  # counts[u+1] = raw row length of u
    kept: list[tuple[np.ndarray, np.ndarray]] = []
    kept_bytes = 0
    for src, dst in chunks:
        s, d = _clean_chunk(src, dst, num_nodes, dtype, counts)
        if s.size:
            kept.append((s, d))
            kept_bytes += s.nbytes + d.nbytes
        if progress is not None:
            progress(int(np.asarray(src).size))
        if memory_budget is not None and in_memory_bytes(num_nodes, kept_bytes) > memory_budget:
            del counts, s, d  # the merge counts rows itself; free before the run buffer exists
            return CSR(*external_csr(num_nodes, chunks, memory_budget, scratch, progress, kept=kept))
    indptr = np.cumsum(counts, out=counts)
    indices = np.empty(int(indptr[-1]), dtype=dtype)  # int32 column ids when N < 2^31
    cursor = indptr[:-1].copy()
    while kept:  # free each chunk as soon as it is placed
        s, d = kept.pop()
        _fill(s, d, cursor, indices)
    del cursor
    sort_rows(indptr, indices)
    nnz = dedupe_sorted_rows(indptr, indices)
    indices.resize(nnz, refcheck=False)  # shrinks in place: no second copy of indices
    return CSR(indptr=indptr, indices=indices)
