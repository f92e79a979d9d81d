"""Node → part assignment: METIS (balanced train nodes and edges) or random, and its stats.

pymetis passes one balance constraint only (DESIGN: ``ncon = 1``), so training nodes
and edges are balanced through one combined integer vertex weight

    w(v) = 1 + round(alpha · is_train(v)) + round(beta · degree(v))

with ``alpha`` and ``beta`` chosen so that all train nodes together weigh
``WEIGHT_SCALE · N`` and all edges together weigh the same: neither can be starved.
METIS keeps the combined weight within ~3% per part; that alone does not bound each
term, so :func:`partition.graph.refine.balance_train_nodes` then moves boundary train nodes
until every part holds the mean ±5% (the cut grows by a few edges at most).

k-way, not pymetis' default recursive bisection for ≤ 8 parts: k-way gives a lower
cut and runs faster on large graphs, so the choice does not change with the part count.

Memory: METIS needs ~85 bytes per undirected edge (2.4 GB peak at 10^7 edges, so ~20 GB
at 10^8; ANCHORS: partitioner memory is what users hit first). With ``max_edges`` METIS
runs on a uniform sample of the undirected edges (each edge kept or dropped as a whole,
by a hash of its two ends and the seed, so the sample is symmetric and reproducible);
vertex weights, refinement and the reported cut and balance use the full graph.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from partition.errors import InputError
from partition.graph.csr import CSR
from partition.graph.refine import TRAIN_TOLERANCE, balance_train_nodes

WEIGHT_SCALE = 16
"""Mean weight per node of each balanced term; large enough that rounding loses little."""


def vertex_weights(csr: CSR, train_mask: np.ndarray) -> np.ndarray:
    """int64 [N] combined weight: train nodes and edges each total WEIGHT_SCALE · N."""
    n = csr.num_nodes
    degree = csr.degree()
    num_train = int(np.count_nonzero(train_mask))
    w = np.ones(n, dtype=np.int64)
    if num_train:
        w += np.int64(round(WEIGHT_SCALE * n / num_train)) * train_mask
    if degree.sum():
        w += np.rint(degree * (WEIGHT_SCALE * n / degree.sum())).astype(np.int64)
    return w


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


def _check_parts(num_nodes: int, num_parts: int) -> None:
    if num_parts < 1:
        raise InputError(f"--num-parts: {num_parts} is not >= 1")
    if num_parts > max(num_nodes, 1):
        raise InputError(f"--num-parts: {num_parts} is more than the graph's {num_nodes} nodes")


def metis_partition(csr: CSR, num_parts: int, train_mask: np.ndarray, seed: int,
                    tolerance: float = TRAIN_TOLERANCE, max_edges: int | None = None) -> np.ndarray:
    """int32 [N] part of every node: METIS k-way, then train-node balance refinement.

    ``max_edges``: run METIS on at most about this many sampled undirected edges.
    """
    _check_parts(csr.num_nodes, num_parts)
    if num_parts == 1:
        return np.zeros(csr.num_nodes, dtype=np.int32)
    import pymetis  # imported here: loading a dataset must not need it

    weights = vertex_weights(csr, train_mask)  # full-graph degrees: balance the real edges
    sample = csr if max_edges is None else sample_edges(csr, max_edges, seed)
    adjacency = pymetis.CSRAdjacency(np.ascontiguousarray(sample.indptr, dtype=np.int64),
                                     np.ascontiguousarray(sample.indices, dtype=np.int64))
    del sample
    result = pymetis.part_graph(num_parts, adjacency, vweights=weights,
                                recursive=False, options=pymetis.Options(seed=seed))
    parts = np.frombuffer(result.vertex_part, dtype=np.int64).astype(np.int32)
    return balance_train_nodes(csr, parts, train_mask, num_parts, tolerance)


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
