"""KaMinPar k-way partitioning from our CSR, through a binary ParHIP file (issue 12).

KaMinPar (Gottesbüren, Heuer, Sanders, Schulz, Seemaier, "Deep Multilevel Graph
Partitioning", ESA 2021; its memory-lean data structures from Salwasser et al.,
"Tera-Scale Multilevel Graph Partitioning", 2024) is a shared-memory multilevel
partitioner: parallel size-constrained label propagation coarsens the graph until it
is ~k·2000 nodes deep, initial bipartitions are run on the deepest levels, and label
propagation refines each level on the way up. Measured here (ANCHORS; our own figures in
benchmarks/README.md) it cuts as well as METIS at a third of METIS's memory, which is
what users hit first on giant graphs (pyg#9325, dgl#4798).

Its Python bindings (PyPI ``kaminpar``, 64-bit ids and weights) take a graph only from
a METIS or ParHIP file, not from arrays, so the CSR is written once in ParHIP's binary
layout into a scratch file: a header of three uint64 (version flags, n, m = directed
edges), then n+1 uint64 *byte* offsets of each row's first neighbour, the neighbour ids
(int32 when the CSR's are, flagged in the header, which KaMinPar widens on load), and
one int64 weight per node. Each array is written with ``tofile`` (no Python loop over
nodes or edges); the offsets in chunks so no second [N+1] array is held. The layout is
KaMinPar's own reader, ``kaminpar-io/parhip_parser.cc``.

KaMinPar balances one node weight. The caller combines quantities into one
(:func:`combined_weight`; :func:`partition.graph.partitioners.kaminpar_assign` passes
inner nodes and edges), and :func:`partition.graph.refine.rebalance`, which runs after
every method, moves boundary nodes out of any part still over in one of the three.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from partition.errors import InputError
from partition.graph.csr import CSR

MISSING = "--method kaminpar needs the kaminpar package: pip install kaminpar"
DEFAULT_EPSILON = 0.03
"""Allowed imbalance of the combined weight (METIS's k-way default, ``ufactor`` 30)."""
WEIGHT_SCALE = 16
"""Units per node in each term of :func:`combined_weight`: enough that a node of a
twentieth of the mean degree still weighs one edge unit after rounding."""
_HEADER_BYTES = 3 * 8
_OFFSET_CHUNK = 1 << 22
"""Rows whose byte offsets are converted and written at a time (32 MiB of uint64)."""


def combined_weight(weights: np.ndarray, scale: int = WEIGHT_SCALE) -> np.ndarray:
    """int64 [N]: one node weight in which each balanced quantity has an equal total.

    ``weights``: int [N, C] per-node amounts (columns of
    :func:`partition.graph.partitioners.balance_weights`: 1, degree, train). Column c is
    scaled so that it sums to ``scale · N`` (a column summing to 0 is left out), then the
    columns are added: a part holding 1/k of the combined weight is within the same
    slack of 1/k of their sum, and no single quantity (a few train nodes, a few hubs)
    dominates. Every node weighs at least ``scale`` (from the node column), so no node
    is weightless.
    """
    n = weights.shape[0]
    totals = weights.sum(axis=0, dtype=np.float64)
    out = np.zeros(n, dtype=np.int64)
    for c in np.flatnonzero(totals > 0):  # a loop over the 3 quantities, not over nodes
        out += np.rint(weights[:, c] * (scale * n / totals[c])).astype(np.int64)
    return np.maximum(out, 1)


def parhip_version(node_id_bytes: int, node_weights: bool) -> int:
    """The header's version word: a set bit means *absent* or *32-bit* (parhip_parser.cc).

    bit 0 edge weights, 1 node weights, 2 64-bit edge offsets, 3 64-bit node ids, 4 64-bit
    node weights, 5 64-bit edge weights. We write no edge weights, 64-bit offsets and
    node weights, and node ids as wide as the CSR's.
    """
    return 1 | (0 if node_weights else 2) | (8 if node_id_bytes == 4 else 0)


def write_parhip(csr: CSR, node_weights: np.ndarray | None, path: Path) -> int:
    """Write ``csr`` (and int64 [N] ``node_weights``, or None) as a binary ParHIP file.

    ``csr.indices`` is written as stored (int32 or int64; no copy). Returns the bytes
    written: 24 + 8(N+1) + nnz·width (+ 8N). Raises OSError from the file system.
    """
    n, nnz = csr.num_nodes, int(csr.indices.shape[0])
    indices = np.ascontiguousarray(csr.indices)
    if indices.dtype not in (np.int32, np.int64):
        indices = indices.astype(np.int64)
    width = indices.dtype.itemsize
    base = _HEADER_BYTES + (n + 1) * 8  # byte offset of the first neighbour id
    with open(path, "wb") as f:
        np.array([parhip_version(width, node_weights is not None), n, nnz],
                 dtype=np.uint64).tofile(f)
        for lo in range(0, n + 1, _OFFSET_CHUNK):  # chunks, not nodes
            row = csr.indptr[lo:lo + _OFFSET_CHUNK].astype(np.uint64)
            row *= np.uint64(width)
            row += np.uint64(base)
            row.tofile(f)
        indices.tofile(f)
        if node_weights is not None:
            np.ascontiguousarray(node_weights, dtype=np.int64).tofile(f)
        return f.tell()


def default_threads() -> int:
    """The cores this process may run on (``os.sched_getaffinity``: a cgroup or taskset's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS has no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def require_kaminpar():
    """The ``kaminpar`` module; InputError with :data:`MISSING` when it cannot be imported.

    An optional import: the rest of giantgcn works without it (no wheel for the platform).
    """
    try:
        import kaminpar
    except ImportError:
        raise InputError(MISSING) from None
    return kaminpar


def kaminpar_kway(csr: CSR, num_parts: int, node_weights: np.ndarray | None, seed: int,
                  scratch: Path | None = None, threads: int | None = None,
                  epsilon: float = DEFAULT_EPSILON,
                  release: Callable[[], None] | None = None) -> np.ndarray:
    """int32 [N] part of every node from KaMinPar's default preset, edge cut minimised.

    ``node_weights``: int64 [N] positive (None: unit weights); every part ends within
    ``1 + epsilon`` of the mean weight as far as KaMinPar can. ``seed`` reseeds KaMinPar's
    generator before the call. ``scratch``: folder for the ParHIP file (about
    ``24 + 8N + nnz·4`` bytes, removed before returning; None: the system's temp folder).
    ``threads``: default :func:`default_threads`; KaMinPar's parallel label propagation
    is not bit-reproducible across thread counts, and even for one thread count only as
    far as measured (tests/test_kaminpar.py). ``release()`` is called once the file is
    written, before KaMinPar loads it: nothing reads ``csr`` after that (the caller may
    park it, :mod:`partition.graph.spill`). Raises InputError when the package is
    missing or KaMinPar cannot read the file.
    """
    kmp = require_kaminpar()
    # The solver first: it holds TBB's thread limit for its lifetime, so the load runs
    # under it too. Loaded outside it, TBB starts a worker per core, and at one thread
    # such a worker still stole a task now and then (1 run in 5 gave another partition).
    solver = kmp.KaMinPar(threads or default_threads(), kmp.default_context())
    with tempfile.TemporaryDirectory(prefix="kaminpar-", dir=scratch) as tmp:
        path = Path(tmp) / "graph.parhip"
        write_parhip(csr, node_weights, path)
        num_nodes = csr.num_nodes
        if release is not None:
            release()
        try:
            graph = kmp.load_graph(str(path), kmp.GraphFileFormat.PARHIP)
        except ValueError as err:
            raise InputError(f"--method kaminpar: KaMinPar could not read {path}: {err}") from None
    # the file is gone: KaMinPar holds its own copy, and the disk and page cache are free
    kmp.reseed(int(seed))
    parts = solver.compute_partition(graph, int(num_parts), float(epsilon))
    del graph, solver
    return np.fromiter(parts, dtype=np.int32, count=num_nodes)
