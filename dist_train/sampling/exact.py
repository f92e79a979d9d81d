"""Exact neighbour sampling across parts (``sampler.mode=exact``, issue 15).

A rank holds its inner nodes' complete rows (in global-id order) and, for every local
node, its owner rank. Hop by hop, each frontier node is sampled where its row is
complete: inner nodes here, every other node by its owner, which receives the global ids
in one all-to-all and answers with the chosen neighbours' (global id, owner, degree) in a
second. Owners draw with the stream of (batch seed, global id, hop) (``rows.py``), so the
result, as global ids, is what the batch sampler returns on the whole graph in one part:
the same nodes in the same order, the same edges and weights (tests/test_exact_sampling.py).

With ``layout="blocks"`` (``train.batch_plan=global``) block d re-samples every node of
hops 0..d with fanout ``f[d]`` and key (batch seed, global id, d), as
:func:`~dist_train.sampling.sampler.sample_blocks` does in one part (DGL's MFG blocks,
Zheng et al. 2020): the same three all-to-alls per block, over more targets.

Every rank makes the same collective calls per batch (two per hop), whatever its seeds:
ranks take equal steps, so the all-to-alls never wait on a rank that has left. Nothing
here is O(N): a node's owner comes from the shard, positions from hash maps
(``idmap.py``) of this rank's inner nodes and of the batch's nodes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from dist_train.sampling.idmap import append_new, build_map, grow, lookup
from dist_train.sampling.rows import batch_stream_base, sample_rows
from dist_train.sampling.sampler import LAYOUTS, SampledSubgraph

AllToAll = Callable[[list[np.ndarray]], list[np.ndarray]]
"""``send[r]`` goes to rank r; returns ``recv[r]``, what rank r sent here. Arrays of one
dtype and trailing shape, any length: ``dist_train.exchange.Exchange`` (or a fake in tests)."""


@dataclass
class OwnedGraph:
    """What exact mode needs of a rank's graph; inner rows complete, rows in global-id order."""

    rank: int
    global_ids: np.ndarray
    """int64 [n_local]: inner nodes first, ascending."""
    num_inner: int
    indptr: np.ndarray
    """int64 [n_local + 1]"""
    indices: np.ndarray
    """int64 [nnz] local ids"""
    degree: np.ndarray
    """int64 [n_local] global degree"""
    owner: np.ndarray
    """int32 [n_local] rank owning each local node (``rank`` for inner nodes)."""
    id_map: tuple[np.ndarray, np.ndarray] | None = None
    """An ``idmap.build_map`` of ``global_ids[:k]`` (k >= num_inner) to local ids, shared
    with the rank's :class:`~dist_train.sampling.fetch.RowStore` (one map, not two, over
    the same ids); None: one over the inner nodes is built."""

    def __post_init__(self) -> None:
        # global -> local for inner nodes, built once: O(num_inner), this rank's own share
        if self.id_map is None:
            self.id_map = build_map(np.ascontiguousarray(self.global_ids[: self.num_inner]), self.num_inner)

    def inner_local(self, gids: np.ndarray) -> np.ndarray:
        """Local ids of global ids that are inner here; ValueError if one is not."""
        pos = lookup(*self.id_map, np.ascontiguousarray(gids, dtype=np.int64))
        if np.any(pos < 0) or np.any(pos >= self.num_inner):
            raise ValueError("exact sampling: a node was sent to a rank that does not own it")
        return pos


@dataclass
class _Frontier:
    """The nodes of a batch so far, by position: global id, owner rank, global degree."""

    gid: np.ndarray
    owner: np.ndarray
    degree: np.ndarray


def _serve(g: OwnedGraph, gids: np.ndarray, fanout: int, replace: bool, base: np.uint64,
           hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample inner nodes ``gids``: (counts int64 [m], neighbours int64 [sum, 3] of gid, owner, degree)."""
    local = g.inner_local(gids) if gids.size else np.empty(0, dtype=np.int64)
    ptr, picked = sample_rows(g.indptr, g.indices, local, g.global_ids, fanout, replace, base, hop)
    nbrs = np.stack([g.global_ids[picked], g.owner[picked].astype(np.int64), g.degree[picked]], axis=1)
    return np.diff(ptr), nbrs


def _sample_targets(g: OwnedGraph, exchange: AllToAll, world: int, targets: _Frontier,
                    fanout: int, replace: bool, base: np.uint64, hop: int):
    """Chosen neighbours of every target, in target order: (counts [T], nbrs [sum, 3])."""
    order = np.argsort(targets.owner, kind="stable")
    bounds = np.searchsorted(targets.owner[order], np.arange(world + 1))
    asks = [targets.gid[order[bounds[r]:bounds[r + 1]]] for r in range(world)]
    asked = exchange(asks)
    answers = [_serve(g, a, fanout, replace, base, hop) for a in asked]
    counts = exchange([c for c, _ in answers])
    nbrs = exchange([n for _, n in answers])
    # back into target order: the reply from rank r covers order[bounds[r]:bounds[r+1]]
    cnt = np.empty(targets.gid.shape[0], dtype=np.int64)
    cnt[order] = np.concatenate(counts) if counts else np.empty(0, dtype=np.int64)
    flat = np.concatenate(nbrs) if nbrs else np.empty((0, 3), dtype=np.int64)
    starts_sorted = np.concatenate(([0], np.cumsum(cnt[order])))
    starts = np.empty_like(cnt)
    starts[order] = starts_sorted[:-1]
    take = np.repeat(starts, cnt) + (np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    return cnt, flat[take]


class ExactSampler:
    """Layer-wise sampling over the whole partitioned graph, with collectives.

    ``sample(seeds, seed)`` takes inner local ids and returns a ``SampledSubgraph`` whose
    ``node_ids`` are **global** ids (features are fetched by :func:`fetch_rows`), and
    ``owner``, the rank holding each node's row. Every rank must call it for every batch.
    """

    def __init__(self, graph: OwnedGraph, exchange: AllToAll, world_size: int,
                 fanouts: list[int], replace: bool = False, layout: str = "union") -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
        self.g, self.exchange, self.world = graph, exchange, int(world_size)
        self.fanouts, self.replace, self.layout = [int(f) for f in fanouts], bool(replace), layout

    def sample(self, seeds: np.ndarray, seed: int) -> tuple[SampledSubgraph, np.ndarray]:
        """(subgraph with global ``node_ids``, int32 owner rank of every node)."""
        if self.layout == "blocks":
            return self._sample_blocks(seeds, seed)
        g = self.g
        seeds = np.asarray(seeds, dtype=np.int64)
        nodes = _Frontier(g.global_ids[seeds], g.owner[seeds].astype(np.int64), g.degree[seeds])
        # numba hands a uint64 back as a Python int: re-wrap it, or values >= 2^63 overflow
        base = np.uint64(batch_stream_base(np.uint64(int(seed) % (1 << 64))))
        per_nodes, per_edges, src_all, dst_all, w_all = [seeds.shape[0]], [], [], [], []
        lo, hi = 0, seeds.shape[0]
        # position of every node of the batch by global id (seeds are distinct)
        known = build_map(nodes.gid, seeds.shape[0])
        for h, f in enumerate(self.fanouts):
            tgt = _Frontier(nodes.gid[lo:hi], nodes.owner[lo:hi], nodes.degree[lo:hi])
            cnt, nbr = _sample_targets(g, self.exchange, self.world, tgt, f, self.replace, base, h)
            gids = np.ascontiguousarray(nbr[:, 0])
            known = grow(*known, nodes.gid, gids.shape[0])
            src, fresh = append_new(*known, gids, nodes.gid.shape[0])
            nodes = _Frontier(np.concatenate((nodes.gid, gids[fresh])),
                              np.concatenate((nodes.owner, nbr[fresh, 1])),
                              np.concatenate((nodes.degree, nbr[fresh, 2])))
            src_all.append(src)
            dst_all.append(np.repeat(np.arange(lo, hi), cnt))
            w_all.append(_weights(tgt.degree, cnt, nbr[:, 2]))
            per_nodes.append(fresh.shape[0])
            per_edges.append(int(cnt.sum()))
            lo, hi = hi, nodes.gid.shape[0]
        dst = np.concatenate(dst_all)
        ptr = np.concatenate(([0], np.cumsum(np.bincount(dst, minlength=lo)))).astype(np.int64)
        sub = SampledSubgraph(
            node_ids=torch.from_numpy(nodes.gid), num_seeds=int(seeds.shape[0]),
            edge_index=torch.from_numpy(np.stack([np.concatenate(src_all), dst])),
            edge_weight=torch.from_numpy(np.concatenate(w_all)), num_sampled_nodes=per_nodes,
            num_sampled_edges=per_edges,
            degree=torch.from_numpy(nodes.degree.astype(np.float32)), target_ptr=torch.from_numpy(ptr))
        return sub, nodes.owner.astype(np.int32)


    def _sample_blocks(self, seeds: np.ndarray, seed: int) -> tuple[SampledSubgraph, np.ndarray]:
        """The "blocks" layout: block d's targets are every node so far (hops 0..d)."""
        g = self.g
        seeds = np.asarray(seeds, dtype=np.int64)
        nodes = _Frontier(g.global_ids[seeds], g.owner[seeds].astype(np.int64), g.degree[seeds])
        base = np.uint64(batch_stream_base(np.uint64(int(seed) % (1 << 64))))
        per_nodes, per_edges, src_all, dst_all, w_all, ptrs = [seeds.shape[0]], [], [], [], [], []
        known = build_map(nodes.gid, seeds.shape[0])
        for d, f in enumerate(self.fanouts):
            hi = nodes.gid.shape[0]
            cnt, nbr = _sample_targets(g, self.exchange, self.world, nodes, f, self.replace, base, d)
            gids = np.ascontiguousarray(nbr[:, 0])
            known = grow(*known, nodes.gid, gids.shape[0])
            src, fresh = append_new(*known, gids, hi)
            tdeg = nodes.degree
            nodes = _Frontier(np.concatenate((nodes.gid, gids[fresh])),
                              np.concatenate((nodes.owner, nbr[fresh, 1])),
                              np.concatenate((nodes.degree, nbr[fresh, 2])))
            src_all.append(src)
            dst_all.append(np.repeat(np.arange(hi), cnt))
            w_all.append(_weights(tdeg, cnt, nbr[:, 2]))
            ptrs.append(np.concatenate(([0], np.cumsum(cnt))).astype(np.int64))
            per_nodes.append(fresh.shape[0])
            per_edges.append(int(cnt.sum()))
        sub = SampledSubgraph(
            node_ids=torch.from_numpy(nodes.gid), num_seeds=int(seeds.shape[0]),
            edge_index=torch.from_numpy(np.stack([np.concatenate(src_all), np.concatenate(dst_all)])),
            edge_weight=torch.from_numpy(np.concatenate(w_all)), num_sampled_nodes=per_nodes,
            num_sampled_edges=per_edges, degree=torch.from_numpy(nodes.degree.astype(np.float32)),
            target_ptr=torch.from_numpy(np.concatenate(ptrs)), layout="blocks",
            keys=torch.from_numpy(nodes.gid.copy()), batch_seed=int(seed))
        return sub, nodes.owner.astype(np.int32)


def _weights(tdeg: np.ndarray, cnt: np.ndarray, ndeg: np.ndarray) -> np.ndarray:
    """GCN edge weights exactly as ``sample_hops`` computes them (same float64 steps)."""
    d = np.repeat(tdeg.astype(np.float64), cnt)
    k = np.repeat(cnt, cnt).astype(np.float64)
    scale = d / k / np.sqrt(d + 1.0)
    return (scale / np.sqrt(ndeg.astype(np.float32).astype(np.float64) + 1.0)).astype(np.float32)
