"""Exact mode's training batches: sample across parts, fetch rows, move to the device.

What :class:`dist_train.sampling.prefetch.Prefetcher` calls per batch when
``sampler.mode=exact`` (issue 15). The prefetch thread runs the all-to-alls, so the
trainer gives it an :class:`~dist_train.exchange.Exchange` on a process group of its
own (``dist.new_group``): its collectives never interleave with DDP's gradient
all-reduce on the default group.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from dist_train.data.shards import LocalGraph
from dist_train.exchange import Exchange
from dist_train.sampling.exact import ExactSampler, OwnedGraph
from dist_train.sampling.fetch import FetchStats, RowStore, fetch_rows
from dist_train.sampling.prefetch import Batch, to_device


class ExactBatches:
    """``make(seeds, sample_seed, device) -> Batch`` with cumulative exchange statistics.

    ``graph`` comes from :func:`dist_train.data.exact_graph.load_exact_graph`: every inner
    node's complete row in global-id order, ``x`` rows for local ids ``[0, len(x))``
    (inner first, then stored halo rows: the cache), ``owner`` set. Every rank must call
    it for every batch, in order. ``layout`` "union" or "blocks" (``ExactSampler``).
    """

    def __init__(self, graph: LocalGraph, rank: int, world_size: int,
                 fanouts: list[int], replace: bool, exchange: Exchange, layout: str = "union") -> None:
        owner = graph.owner
        if owner is None:
            raise ValueError("exact mode needs the owner of every local node (load_exact_graph)")
        ids = np.asarray(graph.global_ids)
        self.store = RowStore(rank, ids, graph.num_inner, int(graph.x.shape[0]), graph.x)
        # local ids are inner nodes first, then the cache: the rows' map finds inner nodes too
        owned = OwnedGraph(rank=rank, global_ids=ids, num_inner=graph.num_inner,
                           indptr=np.asarray(graph.indptr), indices=np.asarray(graph.indices),
                           degree=np.asarray(graph.degree), owner=owner, id_map=self.store.id_map)
        self.sampler = ExactSampler(owned, exchange, world_size, fanouts, replace, layout)
        self.y, self.world_size, self.exchange = graph.y, world_size, exchange
        self.stats = FetchStats()

    def __call__(self, seeds: np.ndarray, sample_seed: int, device: torch.device) -> Batch:
        t0 = time.perf_counter()
        sub, owner = self.sampler.sample(seeds, sample_seed)
        t1 = time.perf_counter()
        rows, stats = fetch_rows(self.store, self.exchange, self.world_size, sub.node_ids.numpy(), owner)
        self.stats.add(stats)
        positions = torch.arange(sub.num_nodes, dtype=torch.int64)
        # the model reads rows by position: rows[i] is node i (``sub.keys`` keeps the global
        # ids of the "blocks" layout, for keyed dropout)
        sub.node_ids = positions
        labels = torch.from_numpy(np.ascontiguousarray(np.take(self.y, seeds), dtype=np.int64))
        feats = torch.from_numpy(rows)
        if device.type == "cuda":
            feats = feats.pin_memory()
        return to_device(sub, feats, labels, device, t1 - t0, t1)

    def epoch_record(self, steps: int) -> dict[str, float]:
        """This rank's exchange figures since the last call, for the epoch's metrics record:
        bytes sent plus received per step (sampling and features), cache hit rate."""
        moved = self.exchange.bytes_sent + self.exchange.bytes_received
        self.exchange.bytes_sent = self.exchange.bytes_received = 0
        stats, self.stats = self.stats, FetchStats()
        return {"exchange_bytes_per_step": moved / max(steps, 1), "cache_hit_rate": stats.hit_rate,
                "remote_rows": stats.remote, "cache_hits": stats.cache_hits}


def exact_batches(graph: LocalGraph, rank: int, world_size: int, fanouts: list[int],
                  replace: bool, device: torch.device, timeout_s: float,
                  layout: str = "union") -> ExactBatches:
    """An :class:`ExactBatches` whose exchange runs on a new process group (call on every
    rank, in the same order: ``dist.new_group`` is collective). ``timeout_s`` (seconds,
    ``dist.timeout_s``) bounds its collectives, as the default group's: without it torch
    gives a new group its own default (30 minutes on gloo), so a lost rank would hold the
    prefetch thread that long."""
    from datetime import timedelta

    import torch.distributed as dist

    group = dist.new_group(backend=dist.get_backend(), timeout=timedelta(seconds=timeout_s))
    comm = device if dist.get_backend() == "nccl" else torch.device("cpu")
    return ExactBatches(graph, rank, world_size, fanouts, replace, Exchange(group, comm), layout)
