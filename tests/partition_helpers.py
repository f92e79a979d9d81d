"""Small graphs with known edge lists for the partitioner tests, and naive references.

The naive references are plain Python sets and BFS: obviously right, fine at test sizes.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from partition.readers.source_graph import EdgeChunks, SourceGraph


def messy_edges(num_nodes: int, num_edges: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random edges plus exact duplicates, reversed copies and self loops."""
    rng = np.random.default_rng(seed)
    src, dst = rng.integers(0, num_nodes, num_edges), rng.integers(0, num_nodes, num_edges)
    k = num_edges // 5
    loops = np.arange(0, num_nodes, 7)
    return (np.concatenate((src, src[:k], dst[k:2 * k], loops)),
            np.concatenate((dst, dst[:k], src[k:2 * k], loops)))


def clustered_edges(num_nodes: int, clusters: int, degree: int, p_out: float,
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Planted clusters (cluster = id % clusters, so ids reveal nothing to METIS)."""
    rng = np.random.default_rng(seed)
    src = np.repeat(np.arange(num_nodes), degree // 2)
    size = num_nodes // clusters
    same = src % clusters + clusters * rng.integers(0, size, src.size)
    other = rng.integers(0, size * clusters, src.size)
    dst = np.where(rng.random(src.size) < p_out, other, same)
    return src, dst


def chunked(src: np.ndarray, dst: np.ndarray, size: int = 97) -> EdgeChunks:
    """Odd-sized chunks, with an empty one in the middle."""

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        cuts = list(range(0, src.size, size))
        for i, lo in enumerate(cuts):
            if i == len(cuts) // 2:
                yield src[:0], dst[:0]
            yield src[lo:lo + size], dst[lo:lo + size]

    return chunks


def make_source(num_nodes: int, src: np.ndarray, dst: np.ndarray, seed: int = 0,
                features: int = 5, classes: int = 4, train: float = 0.5) -> SourceGraph:
    rng = np.random.default_rng(seed)
    perm = rng.permutation(num_nodes)
    n_train, n_val = int(train * num_nodes), int(0.2 * num_nodes)
    return SourceGraph(
        name="test", num_nodes=num_nodes, edge_chunks=chunked(src, dst),
        x=rng.standard_normal((num_nodes, features)).astype(np.float32),
        y=rng.integers(0, classes, num_nodes).astype(np.int64), num_classes=classes,
        train_idx=np.sort(perm[:n_train]), val_idx=np.sort(perm[n_train:n_train + n_val]),
        test_idx=np.sort(perm[n_train + n_val:]),
    )


def neighbour_sets(num_nodes: int, src: np.ndarray, dst: np.ndarray) -> list[set[int]]:
    adj: list[set[int]] = [set() for _ in range(num_nodes)]
    for u, v in zip(src.tolist(), dst.tolist(), strict=True):
        if u != v:
            adj[u].add(v)
            adj[v].add(u)
    return adj


def bfs_halo(adj: list[set[int]], inner: set[int], hops: int) -> set[int]:
    """Nodes outside ``inner`` within ``hops`` hops of it."""
    seen, frontier = set(inner), set(inner)
    for _ in range(hops):
        frontier = {v for u in frontier for v in adj[u]} - seen
        seen |= frontier
    return seen - inner
