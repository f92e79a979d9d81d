"""METIS k-way with several balance constraints, and the edge sample that bounds its memory.

pymetis passes one balance constraint only (``ncon = 1`` in its wrapper; DESIGN), but the
METIS it bundles exports the C API (``METIS_PartGraphKway``), built with the index width
pymetis reports (64-bit: more than 2^31 adjacency entries are fine). Calling that API
through ``ctypes`` gives METIS's own multi-constraint mode (Karypis & Kumar, "Multilevel
algorithms for multi-constraint graph partitioning", SC 1998): one weight per node *per
quantity*, each quantity kept within ``ufactor`` of its mean on every part, without a new
dependency. Measured against one combined weight and against plain METIS followed by a
refinement in ``benchmarks/balance_bench.py`` (README there: the cut stays within ~2% of
plain METIS while all three balances hold).

Memory: METIS needs ~85 bytes per undirected edge (2.4 GB peak at 10^7 edges, so ~20 GB
at 10^8; ANCHORS: partitioner memory is what users hit first). With ``max_edges`` METIS
runs on a uniform sample of the undirected edges (each edge kept or dropped as a whole,
by a hash of its two ends and the seed, so the sample is symmetric and reproducible).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from numba import njit, prange

from partition.errors import InputError
from partition.graph.csr import CSR

METIS_NOPTIONS = 40
"""Length of METIS's options array (``METIS_NOPTIONS`` in metis.h 5.x)."""
METIS_OK, METIS_ERROR_MEMORY = 1, -3
DEFAULT_UFACTOR = 30
"""Allowed imbalance of every constraint in 1/1000 (METIS's k-way default: 1.03)."""


def _library() -> tuple[ctypes.CDLL, type, object]:
    """(the METIS that pymetis bundles, its idx_t as a numpy dtype, its option indices)."""
    import pymetis._internal as bundled  # imported here: loading a dataset must not need it

    width = bundled._idx_type_width()
    return ctypes.CDLL(bundled.__file__), (np.int64 if width == 64 else np.int32), \
        bundled.options_indices


def index_dtype() -> type:
    """``np.int64`` or ``np.int32``: the idx_t of the bundled METIS (what its arrays must hold)."""
    return _library()[1]


def metis_kway(csr: CSR, num_parts: int, weights: np.ndarray, seed: int,
               ufactor: int = DEFAULT_UFACTOR, edge_weights: np.ndarray | None = None) -> np.ndarray:
    """int32 [N] part of every node from METIS k-way with ``weights.shape[1]`` constraints.

    ``weights``: int [N, C] non-negative, each column with a positive total (a column
    of zeros would make METIS divide by zero: drop it first). ``C = 0`` means plain
    METIS (unit node weights). Edge cut minimised, every column within
    ``1 + ufactor/1000`` of its mean per part as far as METIS can. ``edge_weights``:
    int [nnz] aligned with ``csr.indices`` (symmetric), or None for unit weights.
    Raises InputError when METIS runs out of memory (``--metis-max-edges`` is the fix),
    RuntimeError on any other METIS failure (a bug).
    """
    lib, idx, names = _library()
    n = csr.num_nodes
    ncon = weights.shape[1]
    opts = np.full(METIS_NOPTIONS, -1, dtype=idx)
    lib.METIS_SetDefaultOptions(_ptr(opts))
    opts[names.SEED], opts[names.UFACTOR], opts[names.NUMBERING] = seed, ufactor, 0
    xadj = np.ascontiguousarray(csr.indptr, dtype=idx)
    adjncy = np.ascontiguousarray(csr.indices, dtype=idx)
    vwgt = np.ascontiguousarray(weights, dtype=idx) if ncon else None
    adjwgt = None if edge_weights is None else np.ascontiguousarray(edge_weights, dtype=idx)
    scalars = np.array([n, max(ncon, 1), num_parts, 0], dtype=idx)  # nvtxs, ncon, nparts, objval
    part = np.empty(n, dtype=idx)
    with _c_stdout_silenced():
        status = lib.METIS_PartGraphKway(
            _ptr(scalars[0:]), _ptr(scalars[1:]), _ptr(xadj), _ptr(adjncy), _ptr(vwgt), None, _ptr(adjwgt),
            _ptr(scalars[2:]), None, None, _ptr(opts), _ptr(scalars[3:]), _ptr(part))
    if status == METIS_ERROR_MEMORY:
        raise InputError(f"METIS ran out of memory on {csr.num_edges:,} edges; "
                         "pass --metis-max-edges to partition a sample of them")
    if status != METIS_OK:
        raise RuntimeError(f"METIS_PartGraphKway failed with status {status}")
    return part.astype(np.int32)


@contextmanager
def _c_stdout_silenced() -> Iterator[None]:
    """Send what C code prints on stdout to /dev/null while inside.

    METIS printf()s diagnostics such as "***Cannot bisect a graph with 0 vertices!" when
    it leaves a part empty on a tiny graph; the refinement fills such parts and the
    summary warns about any left, so those lines would only garble the summary on stdout.
    """
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        libc.fflush(None)  # METIS's buffered lines go to /dev/null, not to the summary
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _ptr(a: np.ndarray | None) -> ctypes.c_void_p | None:
    return None if a is None else a.ctypes.data_as(ctypes.c_void_p)


@njit(cache=True, nogil=True)
def _keep(u: np.int64, v: np.int64, salt: np.uint64, threshold: np.uint64) -> bool:
    a, b = (u, v) if u < v else (v, u)  # the same decision from both ends
    z = np.uint64(a) * np.uint64(0x9E3779B97F4A7C15) ^ (np.uint64(b) + salt)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return (z ^ (z >> np.uint64(31))) < threshold


@njit(cache=True, nogil=True, parallel=True)
def _sample_rows(indptr, indices, salt, threshold):
    n = indptr.shape[0] - 1
    counts = np.zeros(n + 1, dtype=np.int64)
    for u in prange(n):
        c = 0
        for k in range(indptr[u], indptr[u + 1]):
            c += _keep(u, indices[k], salt, threshold)
        counts[u + 1] = c
    out_ptr = np.cumsum(counts)
    out = np.empty(out_ptr[n], dtype=np.int64)
    for u in prange(n):
        w = out_ptr[u]
        for k in range(indptr[u], indptr[u + 1]):
            if _keep(u, indices[k], salt, threshold):
                out[w] = indices[k]
                w += 1
    return out_ptr, out


def sample_edges(csr: CSR, max_edges: int, seed: int) -> CSR:
    """A symmetric CSR keeping each undirected edge with probability ``max_edges / edges``."""
    if csr.num_edges <= max_edges:
        return csr
    threshold = np.uint64(min(int(max_edges / csr.num_edges * 2.0**64), 2**64 - 1))
    salt = np.uint64((seed * 0xD1B54A32D192ED03 + 1) % 2**64)
    indptr, indices = _sample_rows(csr.indptr, csr.indices, salt, threshold)
    return CSR(indptr, indices)
