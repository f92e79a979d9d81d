"""Contract the graph before METIS when METIS on every node would not fit (issue 10).

METIS costs ~190 bytes per vertex and ~150 per undirected edge (measured on the
papers-shaped graph, ``benchmarks/README.md``): 1.2 GB for 10^6 nodes / 7·10^6 edges,
2.5x the 488 MiB feature matrix the run must stay under. Sampling edges
(``--metis-max-edges``) cannot go below the per-vertex cost. So, as a multilevel
partitioner's first levels do, the graph is contracted first and METIS sees clusters:

1. **Size-constrained label propagation** (Meyerhenke, Sanders & Schulz, "Partitioning
   complex networks via size-constrained clustering", SEA 2014; KaMinPar's coarsening):
   every node starts alone; in a seeded random order each node joins the neighbouring
   cluster it has the most edges to, if that cluster stays under ``cap`` in *every*
   balance quantity (nodes, edges, train nodes), so no cluster is heavier than a small
   fraction (``1 / CAP_FRACTION``) of a part and the parts stay balanceable.
2. **The cluster graph**: vertex weights summed per quantity, parallel edges merged into
   one with the summed weight, internal edges dropped; built cluster by cluster with a
   dense accumulator (O(clusters) scratch, never an O(E) int64 temporary).
3. Repeated on the cluster graph while it has more than ``max_nodes`` vertices or more
   than the same share of the edges (:func:`contracted_edges`) and still shrinks; METIS (multi-constraint, edge-weighted) partitions the last level and
   the parts are projected back. ``refine.rebalance`` then runs on the full graph.

Everything in numba loops over the CSR; the result is deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit

from partition.graph.csr import CSR

CAP_FRACTION = 32
"""No cluster may exceed ``1/CAP_FRACTION`` of a part's mean load in any quantity."""
LP_ROUNDS = 3
MAX_LEVELS = 6
MIN_SHRINK = 0.9
"""Stop contracting when a level keeps more than this fraction of the vertices."""
METIS_BYTES_PER_NODE = 190
METIS_BYTES_PER_EDGE = 150
"""METIS peak per vertex and per undirected edge, measured (module docstring)."""
AUTO_MIN_BYTES = 256 << 20
"""Below this METIS estimate plain METIS is always used (small graphs keep its cut)."""


def metis_bytes(num_nodes: int, num_edges: int) -> int:
    """Estimated METIS peak (bytes) on ``num_nodes`` vertices and ``num_edges`` undirected edges."""
    return METIS_BYTES_PER_NODE * num_nodes + METIS_BYTES_PER_EDGE * num_edges


def contraction_target(num_nodes: int, num_edges: int, feature_bytes: int,
                       max_nodes: int | None) -> int | None:
    """Vertices METIS may see, or None for plain METIS on every node.

    Rule: with ``--metis-max-nodes`` given, contract when ``num_nodes`` exceeds it; otherwise
    contract when METIS's estimate (:func:`metis_bytes`) exceeds both the feature matrix's
    bytes (``feature_bytes``, as the source holds it) and ``AUTO_MIN_BYTES``, to at most
    ``num_nodes // 16`` vertices.
    """
    if max_nodes is not None:
        return max_nodes if num_nodes > max_nodes else None
    est = metis_bytes(num_nodes, num_edges)
    if est <= max(feature_bytes, AUTO_MIN_BYTES):
        return None
    return max(num_nodes // 16, 1)


def contracted_edges(num_nodes: int, num_edges: int, max_nodes: int) -> int:
    """Undirected edges the contracted graph may keep: the input's share at ``max_nodes``
    of ``num_nodes`` vertices (the mean degree kept), at least 1."""
    return max(int(num_edges * max_nodes / max(num_nodes, 1)), 1)


@njit(cache=True, nogil=True)
def _fits(load_row, w_row, cap):
    for q in range(cap.shape[0]):
        if load_row[q] + w_row[q] > cap[q]:
            return False
    return True


@njit(cache=True, nogil=True)
def _label_propagation(indptr, indices, adjw, w, cap, order, rounds, cluster, load):
    """Move vertices (in ``order``) to the label they have most edge weight to, in place.

    ``cluster`` int64 [n] labels, ``load`` int64 [labels, C] their summed weights; a move
    needs a strictly larger connection and keeps the receiver within ``cap`` [C].
    """
    conn = np.zeros(load.shape[0], dtype=np.int64)
    touched = np.empty(load.shape[0], dtype=np.int64)
    for _ in range(rounds):
        moved = 0
        for u in order:
            cu = cluster[u]
            t = 0
            for k in range(indptr[u], indptr[u + 1]):
                cv = cluster[indices[k]]
                if conn[cv] == 0:
                    touched[t] = cv
                    t += 1
                conn[cv] += adjw[k]
            best, best_conn = cu, conn[cu]
            for i in range(t):
                cv = touched[i]
                if cv != cu and conn[cv] > best_conn and _fits(load[cv], w[u], cap):
                    best, best_conn = cv, conn[cv]
            for i in range(t):
                conn[touched[i]] = 0
            if best != cu:
                for q in range(cap.shape[0]):
                    load[cu, q] -= w[u, q]
                    load[best, q] += w[u, q]
                cluster[u] = best
                moved += 1
        if moved == 0:
            break


@njit(cache=True, nogil=True)
def _cluster_rows(indptr, indices, adjw, cluster, by_cluster, starts, out_ptr, out_idx, out_w):
    """Count (``out_idx`` empty) or fill the merged rows of the cluster graph, cluster by cluster.

    Returns the largest merged edge weight (0 for none).
    """
    nc = starts.shape[0] - 1
    acc = np.zeros(nc, dtype=np.int64)
    touched = np.empty(nc, dtype=np.int64)
    fill = out_idx.shape[0] > 0
    heaviest = 0
    for a in range(nc):
        t = 0
        for i in range(starts[a], starts[a + 1]):
            u = by_cluster[i]
            for k in range(indptr[u], indptr[u + 1]):
                b = cluster[indices[k]]
                if b != a:
                    if acc[b] == 0:
                        touched[t] = b
                        t += 1
                    acc[b] += adjw[k]
        if fill:
            srt = np.sort(touched[:t])
            for i in range(t):
                out_idx[out_ptr[a] + i] = srt[i]
                out_w[out_ptr[a] + i] = acc[srt[i]]
        else:
            out_ptr[a + 1] = t
        for i in range(t):
            heaviest = max(heaviest, acc[touched[i]])
            acc[touched[i]] = 0
    return heaviest


def _weight_dtype(heaviest: int) -> type:
    """The narrowest of int16 / int32 / int64 that holds every merged edge weight."""
    return np.int16 if heaviest < 2**15 else np.int32 if heaviest < 2**31 else np.int64


def _cluster_graph(indptr: np.ndarray, indices: np.ndarray, adjw: np.ndarray, cluster: np.ndarray,
                   nc: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(int64 indptr [nc+1], indices [m], edge weights [m]) of the cluster graph.

    Parallel edges merged (weights summed), internal edges dropped. Indices are int32 when
    cluster ids fit, weights the narrowest integer holding the heaviest merged edge (the
    counting pass finds it): the first level holds nearly as many entries as the graph on
    a power-law graph (11·10^6 of 14·10^6 on the papers-shaped one), so this is its peak.
    """
    by_cluster = np.argsort(cluster, kind="stable")
    starts = np.zeros(nc + 1, dtype=np.int64)
    starts[1:] = np.cumsum(np.bincount(cluster, minlength=nc))
    out_ptr = np.zeros(nc + 1, dtype=np.int64)
    empty = np.empty(0, dtype=np.int64)
    heaviest = _cluster_rows(indptr, indices, adjw, cluster, by_cluster, starts, out_ptr, empty, empty)
    np.cumsum(out_ptr, out=out_ptr)
    out_idx = np.empty(out_ptr[nc], dtype=np.int32 if nc < 2**31 else np.int64)
    out_w = np.empty(out_ptr[nc], dtype=_weight_dtype(int(heaviest)))
    _cluster_rows(indptr, indices, adjw, cluster, by_cluster, starts, out_ptr, out_idx, out_w)
    return out_ptr, out_idx, out_w


def _bundle_isolated(isolated: np.ndarray, w: np.ndarray, cap: np.ndarray, order: np.ndarray,
                     labels: np.ndarray) -> None:
    """Group this level's edgeless vertices into clusters under ``cap``, in place.

    ``isolated`` bool [n]; ``w`` int64 [n, C]; ``order`` int64 [n], the level's seeded
    permutation; ``labels`` int64 [n]. Label propagation cannot move a vertex without
    edges, so every one stayed a singleton: on a graph of many isolated nodes or small
    components (2.5·10^6 nodes / 10^6 edges: 1.6·10^6 singletons after contraction)
    METIS then spent 60 s of a 70 s partition on them in its initial partitioning, where
    plain METIS took 2 s. They add nothing to the cut, so any grouping is as good as
    another: consecutive runs of ``order``, each within ``cap`` in every quantity (a
    vertex heavier than ``cap`` alone stays a singleton).
    """
    _bundle_members(order[isolated[order]], w, cap, labels)


@njit(cache=True, nogil=True)
def _bundle_members(members, w, cap, labels):
    load = np.zeros(cap.shape[0], dtype=np.int64)
    head = -1
    for u in members:
        if head < 0 or not _fits(load, w[u], cap):
            head = u
            load[:] = 0
        for q in range(cap.shape[0]):
            load[q] += w[u, q]
        labels[u] = head


def _relabel(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """(int64 [n] labels renumbered 0..k-1 in increasing order, k): ``np.unique``'s inverse
    for labels in [0, n), from one bool mask and a cumsum instead of a sort's temporaries."""
    present = np.zeros(labels.shape[0], dtype=bool)
    present[labels] = True
    rank = np.cumsum(present, dtype=np.int64)
    rank -= 1
    return rank[labels], int(rank[-1]) + 1 if labels.shape[0] else 0


def contract(csr: CSR, weights: np.ndarray, num_parts: int, max_nodes: int,
             seed: int, release: Callable[[], None] | None = None, max_edges: int | None = None
             ) -> tuple[CSR, np.ndarray, np.ndarray, np.ndarray]:
    """Contract until at most ``max_nodes`` vertices and ``max_edges`` undirected edges
    (None: no edge bound), or no more progress.

    ``weights``: int64 [N, C] balance quantities. Returns (cluster CSR, edge weights
    (int16/32/64) [M] aligned with its ``indices``, int64 [Nc, C] summed vertex weights,
    int64 [N] cluster of every original node). Deterministic for a seed.
    ``release()`` is called once the first level is built: ``csr`` is not read after it
    (the caller may park the full graph then, :mod:`partition.graph.spill`).
    """
    cap = np.maximum(weights.sum(axis=0) // (num_parts * CAP_FRACTION), 1).astype(np.int64)
    rng = np.random.default_rng(seed)
    indptr, indices = csr.indptr, csr.indices
    adjw = np.broadcast_to(np.int64(1), indices.shape)  # unit weights, no O(E) array
    w = np.ascontiguousarray(weights, dtype=np.int64)
    mapping = np.arange(csr.num_nodes, dtype=np.int64)
    for _ in range(MAX_LEVELS):
        n = indptr.shape[0] - 1
        if n <= max_nodes and (max_edges is None or indices.shape[0] <= 2 * max_edges):
            break
        order = rng.permutation(n).astype(np.int64, copy=False)
        labels = np.arange(n, dtype=np.int64)
        _label_propagation(indptr, indices, adjw, w, cap, order, LP_ROUNDS, labels, w.copy())
        _bundle_isolated(np.diff(indptr) == 0, w, cap, order, labels)
        del order  # freed before the next level is built: that build is the peak
        cluster, nc = _relabel(labels)
        del labels
        if nc > MIN_SHRINK * n:
            break
        indptr, indices, adjw = _cluster_graph(indptr, indices, adjw, cluster, nc)
        w2 = np.zeros((nc, w.shape[1]), dtype=np.int64)
        for q in range(w.shape[1]):
            w2[:, q] = np.bincount(cluster, weights=w[:, q], minlength=nc).astype(np.int64)
        w, mapping = w2, cluster[mapping]
        if release is not None:
            release()
            release = None
    return CSR(indptr, indices), adjw, w, mapping


def refine_cut(csr: CSR, parts: np.ndarray, weights: np.ndarray, num_parts: int,
               tolerance: float, seed: int, rounds: int = LP_ROUNDS) -> np.ndarray:
    """int32 [N]: ``parts`` after label-propagation refinement on the full graph.

    Each node, in a seeded random order, moves to the part it has most edges to when that
    is strictly more than to its own and the receiver stays within mean·(1 + tolerance)
    in every quantity of ``weights`` [N, C] (KaMinPar's LP refinement): the cut only falls,
    no bound is newly broken. Used after projecting a contracted partition back.
    """
    w = np.ascontiguousarray(weights, dtype=np.int64)
    cap = np.floor(w.sum(axis=0) / num_parts * (1.0 + tolerance)).astype(np.int64)
    labels = parts.astype(np.int64)
    load = np.zeros((num_parts, w.shape[1]), dtype=np.int64)
    for q in range(w.shape[1]):
        load[:, q] = np.bincount(labels, weights=w[:, q], minlength=num_parts).astype(np.int64)
    cap = np.maximum(cap, load.max(axis=0))  # a part already over may keep, never gain
    order = np.random.default_rng([seed, 7]).permutation(csr.num_nodes).astype(np.int64, copy=False)
    adjw = np.broadcast_to(np.int64(1), csr.indices.shape)
    _label_propagation(csr.indptr, csr.indices, adjw, w, cap, order, rounds, labels, load)
    return labels.astype(np.int32)
