"""Node → part assignment (METIS, KaMinPar or random), the balance rules every method goes through, stats.

Balance (issue 10): inner nodes, edges (sum of inner degrees) and train nodes, no part
more than 5% above the mean in any of them (max/mean, what sets every rank's step count),
however sparse the labels. pymetis' single combined
vertex weight could not give that: with 1% of nodes in train, a train node weighed
~1600 unit nodes and METIS traded nodes for train nodes (600 nodes, 6 train, 2 parts
gave 597 / 3 inner nodes). METIS gets the three quantities as three constraints instead
(:func:`partition.graph.metis.metis_kway`), and every method's assignment then goes
through the same refinement (:func:`partition.graph.refine.rebalance`), which moves
boundary nodes out of any part still over a bound. ``benchmarks/balance_bench.py``
measures this against plain METIS, the combined weight, and refinement alone.

k-way, not recursive bisection: a lower cut and faster on large graphs, so the choice
does not change with the part count. With ``max_edges`` METIS sees a sample of the
edges; weights, refinement and the reported cut and balance use the full graph.

KaMinPar (issue 12, :mod:`partition.graph.kaminpar`) balances one node weight: inner
nodes and edges combined with equal totals; train nodes are left to the same
refinement, which runs after it as after every method.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import njit, prange

from partition.errors import InputError
from partition.graph.coarsen import contract, contracted_edges, contraction_target, refine_cut
from partition.graph.csr import CSR
from partition.graph.kaminpar import combined_weight, kaminpar_kway
from partition.graph.metis import index_dtype, metis_kway, sample_edges
from partition.graph.refine import TOLERANCE, rebalance
from partition.graph.spill import ParkedCSR

QUANTITIES = ("nodes", "edges", "train")
"""The balanced quantities, in the column order of :func:`balance_weights`."""


def balance_weights(csr: CSR, train_mask: np.ndarray) -> np.ndarray:
    """int64 [N, 3]: per node 1 (inner nodes), its degree (edges), 1 if train (train nodes)."""
    w = np.ones((csr.num_nodes, len(QUANTITIES)), dtype=np.int64)
    w[:, 1] = csr.degree()
    w[:, 2] = train_mask
    return w


def _check_parts(num_nodes: int, num_parts: int) -> None:
    if num_parts < 1:
        raise InputError(f"--num-parts: {num_parts} is not >= 1")
    if num_parts > max(num_nodes, 1):
        raise InputError(f"--num-parts: {num_parts} is more than the graph's {num_nodes} nodes")


def metis_assign(csr: CSR, num_parts: int, weights: np.ndarray, seed: int,
                 max_edges: int | None = None, max_nodes: int | None = None,
                 spill_dir: Path | None = None) -> np.ndarray:
    """int32 [N]: METIS k-way with one constraint per column of ``weights`` [N, C], unrefined.

    Columns with a zero total (no train node, no edge) or equal to the node column (every
    node in train) are not passed: METIS cannot balance a quantity that sums to zero.
    ``max_nodes``: contract the (sampled) graph to about this many clusters first and
    project METIS's parts back (:mod:`partition.graph.coarsen`); None: every node.
    ``spill_dir``: where the full CSR is parked meanwhile (:mod:`partition.graph.spill`;
    None: kept in memory). ``csr``'s arrays are replaced by equal ones then.
    """
    _check_parts(csr.num_nodes, num_parts)
    if num_parts == 1:
        return np.zeros(csr.num_nodes, dtype=np.int32)
    totals = weights.sum(axis=0)
    keep = [c for c in range(weights.shape[1])
            if totals[c] > 0 and (c == 0 or not np.array_equal(weights[:, c], weights[:, 0]))]
    kept = weights if keep == list(range(weights.shape[1])) else weights[:, keep]  # no copy if all
    sample = csr if max_edges is None else sample_edges(csr, max_edges, seed)
    if max_nodes is None:
        return metis_kway(sample, num_parts, kept, seed)
    from partition.progress import trim_heap

    # the full graph waits in a scratch file from the first contraction level until the
    # refinement: METIS (the stage's peak) runs without it in memory
    parked = ParkedCSR(csr, spill_dir) if spill_dir is not None else None
    try:
        # edges bounded too, in proportion: on a graph without locality one level took
        # 10^6 nodes / 5·10^6 edges to 9,531 clusters but kept 1.9·10^6 edges, and METIS
        # on them (196 MiB) was 3x what the estimate allows it (estimate.partitioner_bytes)
        small, adjw, cw, cluster = contract(sample, kept, num_parts, max_nodes, seed,
                                            release=None if parked is None else parked.park,
                                            max_edges=contracted_edges(sample.num_nodes,
                                                                       sample.num_edges, max_nodes))
        del sample
        if small.num_nodes < num_parts:  # too few clusters to give every part one
            if parked is not None:
                parked.restore()
            return metis_kway(csr, num_parts, kept, seed)
        # METIS wants idx_t arrays: convert now and drop the narrow ones, so the cluster
        # graph is held once, not twice, while METIS runs; freed heap goes back first
        idx = index_dtype()
        small = CSR(small.indptr.astype(idx, copy=False), small.indices.astype(idx, copy=False))
        adjw = adjw.astype(idx, copy=False)
        trim_heap()
        parts = metis_kway(small, num_parts, cw, seed, edge_weights=adjw)
        del small, adjw
        parts = parts[cluster]
        del cluster
        trim_heap()
    finally:
        if parked is not None:
            parked.restore()
    return refine_cut(csr, parts, weights, num_parts, TOLERANCE, seed)


def kaminpar_assign(csr: CSR, num_parts: int, weights: np.ndarray, seed: int,
                    scratch: Path | None = None) -> np.ndarray:
    """int32 [N]: KaMinPar k-way on the combined weight of ``weights`` [N, C], unrefined.

    ``scratch``: folder for KaMinPar's input file (~8N + 4·nnz bytes; None: the system's
    temp folder); the full CSR is parked there too while KaMinPar holds its own copy
    (:mod:`partition.graph.spill`: at 10^9 CSR entries, 4 GB off the stage's peak), and
    ``csr``'s arrays are replaced by equal ones then. Raises InputError for a bad part
    count or a missing ``kaminpar``.
    """
    _check_parts(csr.num_nodes, num_parts)
    if num_parts == 1:
        return np.zeros(csr.num_nodes, dtype=np.int32)
    # Inner nodes and edges only: train nodes in the combined weight made each one as
    # heavy as N/T unit nodes, KaMinPar then gathered them into few parts (600 nodes,
    # 6 train, 2 parts: all 6 in one), and no boundary move could undo it with the
    # receivers full of nodes. Left to `rebalance`, train nodes moved into the slack
    # KaMinPar leaves: worst imbalance 2.0 -> 1.0 there, 1.15 -> 1.02 at 10^5 nodes /
    # 32 parts, the cut 1-2% lower (measured on test_balance's graphs).
    parked = ParkedCSR(csr, scratch) if scratch is not None else None
    try:
        return kaminpar_kway(csr, num_parts, combined_weight(weights[:, :2]), seed, scratch,
                             release=None if parked is None else parked.park)
    finally:
        if parked is not None:
            parked.restore()


def partition_nodes(method: str, csr: CSR, num_parts: int, train_mask: np.ndarray, seed: int,
                    max_edges: int | None = None, tolerance: float = TOLERANCE,
                    max_nodes: int | None = None, feature_bytes: int = 0,
                    scratch: Path | None = None) -> np.ndarray:
    """int32 [N] part of every node by ``method`` ("metis", "kaminpar" or "random"), rebalanced.

    METIS runs on a contracted graph when :func:`partition.graph.coarsen.contraction_target`
    says so (``max_nodes`` is ``--metis-max-nodes``; ``feature_bytes`` the source's
    feature matrix, the memory the run aims to stay under). ``max_edges`` and
    ``max_nodes`` are METIS's alone. ``scratch``: a folder for KaMinPar's input file, and
    for the full CSR while METIS runs on the contracted graph (see :func:`metis_assign`).

    Every method goes through the same balance rules: no part above mean·(1 + tolerance)
    in inner nodes, edges or train nodes where a move can get them there
    (:func:`partition.graph.refine.rebalance`). Raises InputError for a bad part count.
    """
    weights = balance_weights(csr, train_mask)
    if method == "metis":
        edges = csr.num_edges if max_edges is None else min(csr.num_edges, max_edges)
        target = contraction_target(csr.num_nodes, edges, feature_bytes, max_nodes)
        parts = metis_assign(csr, num_parts, weights, seed, max_edges, target, scratch)
    elif method == "kaminpar":
        parts = kaminpar_assign(csr, num_parts, weights, seed, scratch)
    elif method == "random":
        parts = random_partition(csr.num_nodes, num_parts, seed)
    else:
        raise InputError(f"--method: unknown method {method!r}")
    return rebalance(csr, parts, weights, num_parts, tolerance) if num_parts > 1 else parts


def metis_partition(csr: CSR, num_parts: int, train_mask: np.ndarray, seed: int,
                    tolerance: float = TOLERANCE, max_edges: int | None = None) -> np.ndarray:
    """int32 [N]: :func:`partition_nodes` with METIS (multi-constraint k-way, then refinement).

    ``max_edges``: run METIS on at most about this many sampled undirected edges.
    """
    return partition_nodes("metis", csr, num_parts, train_mask, seed, max_edges, tolerance)


def random_partition(num_nodes: int, num_parts: int, seed: int) -> np.ndarray:
    """int32 [N]: a seeded random permutation dealt round-robin (sizes differ by ≤ 1)."""
    _check_parts(num_nodes, num_parts)
    perm = np.random.default_rng(seed).permutation(num_nodes)
    parts = np.empty(num_nodes, dtype=np.int32)
    parts[perm] = np.arange(num_nodes, dtype=np.int64) % num_parts
    return parts


@njit(cache=True, nogil=True, parallel=True)
def _directed_cut(indptr: np.ndarray, indices: np.ndarray, parts: np.ndarray) -> int:
    cut = 0
    for u in prange(indptr.shape[0] - 1):
        pu = parts[u]
        for k in range(indptr[u], indptr[u + 1]):
            if parts[indices[k]] != pu:
                cut += 1
    return cut


def _imbalance(values: np.ndarray) -> float:
    """max / mean; 1.0 is perfect balance (and the value for nothing to balance)."""
    mean = float(values.mean()) if values.size else 0.0
    return float(values.max()) / mean if mean > 0 else 1.0


def partition_stats(csr: CSR, parts: np.ndarray, train_mask: np.ndarray,
                    num_parts: int) -> dict:
    """Edge cut and balance of an assignment.

    ``degree_sum`` of a part is the number of directed edges out of its inner nodes,
    i.e. the edge work a part's inner nodes bring; the ``*_imbalance`` figures are
    max / mean over parts.
    """
    cut = _directed_cut(csr.indptr, csr.indices, parts) // 2
    inner = np.bincount(parts, minlength=num_parts)
    train = np.bincount(parts[train_mask], minlength=num_parts)
    degree_sum = np.bincount(parts, weights=csr.degree(), minlength=num_parts).astype(np.int64)
    return {
        "edge_cut": int(cut),
        "edge_cut_ratio": cut / csr.num_edges if csr.num_edges else 0.0,
        "train_imbalance": _imbalance(train),
        "edge_imbalance": _imbalance(degree_sum),
        "node_imbalance": _imbalance(inner),
        "parts": [{"part_id": p, "num_inner": int(inner[p]), "num_train": int(train[p]),
                   "degree_sum": int(degree_sum[p])} for p in range(num_parts)],
    }
