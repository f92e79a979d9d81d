"""Feature rows of sampled nodes in exact mode: local rows, cached rows, rows from owners.

A rank stores rows for local ids ``[0, num_feature_rows)``: its inner nodes and the halo
nodes whose rows the partitioner kept (the cache of hot remote nodes, chosen within
``--cache-budget``, or the whole halo at ``--halo-hops >= 1``). Every other row is asked
of its owner in one all-to-all of global ids and comes back in a second one (issue 15;
SALIENT++ does the same with NCCL). Both calls happen on every rank for every batch, so
ranks stay in lockstep whatever they need.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dist_train.sampling.exact import AllToAll
from dist_train.sampling.idmap import build_map, lookup


@dataclass
class RowStore:
    """The feature rows a rank holds; global ids sorted within inner and within the cache."""

    rank: int
    global_ids: np.ndarray
    """int64 [>= num_feature_rows]: inner ascending, then cached halo ascending, ..."""
    num_inner: int
    num_feature_rows: int
    x: np.ndarray
    """[num_feature_rows, F] (float32 or float16), memory-mapped is fine"""

    def __post_init__(self) -> None:
        # global id -> row for every stored row, built once (O(num_feature_rows))
        self._rows = build_map(np.ascontiguousarray(self.global_ids[: self.num_feature_rows], dtype=np.int64),
                               self.num_feature_rows)

    @property
    def id_map(self) -> tuple[np.ndarray, np.ndarray]:
        """The ``idmap.build_map`` of the stored rows' global ids to rows (inner rows first:
        the exact sampler's ``OwnedGraph.id_map`` can be this one)."""
        return self._rows

    def positions(self, gids: np.ndarray) -> np.ndarray:
        """int64 row of each global id in ``x``, -1 where this rank holds no row for it."""
        return lookup(*self._rows, np.ascontiguousarray(gids, dtype=np.int64))


@dataclass
class FetchStats:
    """Counts of one fetch; ``bytes_out`` are the feature bytes this rank sent to others."""

    own: int = 0
    cache_hits: int = 0
    remote: int = 0
    bytes_out: int = 0
    bytes_in: int = 0

    def add(self, other: FetchStats) -> None:
        for k in vars(self):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    @property
    def hit_rate(self) -> float:
        """Cache hits / rows owned elsewhere (1.0 when nothing was owned elsewhere)."""
        far = self.cache_hits + self.remote
        return self.cache_hits / far if far else 1.0


def fetch_rows(store: RowStore, exchange: AllToAll, world: int, gids: np.ndarray,
               owner: np.ndarray) -> tuple[np.ndarray, FetchStats]:
    """float32 [len(gids), F] rows of ``gids`` (int64), ``owner`` (int rank of each).

    Raises ValueError when an owner is asked for a node it does not own (a dataset and a
    part-to-rank plan that disagree).
    """
    gids = np.asarray(gids, dtype=np.int64)
    pos = store.positions(gids)
    have = pos >= 0
    out = np.empty((gids.shape[0], store.x.shape[1]), dtype=np.float32)
    # one pass over every row (rows fetched below overwrite their placeholder row 0)
    held = np.where(have, pos, 0) if store.x.shape[0] else pos[:0]
    if store.x.dtype == np.float32 and held.shape[0] == gids.shape[0]:
        np.take(store.x, held, axis=0, out=out)
    else:
        out[have] = store.x[pos[have]]
    need = np.flatnonzero(~have)
    order = need[np.argsort(owner[need], kind="stable")]
    bounds = np.searchsorted(owner[order], np.arange(world + 1))
    asked = exchange([gids[order[bounds[r]:bounds[r + 1]]] for r in range(world)])
    replies = []
    for r, a in enumerate(asked):
        p = store.positions(a)
        if np.any(p < 0) or np.any(p >= store.num_inner):
            raise ValueError(f"exact mode: rank {r} asked rank {store.rank} for a node it does not own")
        replies.append(np.asarray(store.x[p], dtype=np.float32))
    got = exchange(replies)
    if order.shape[0]:
        out[order] = np.concatenate(got)
    far = owner != store.rank
    stats = FetchStats(own=int((~far).sum()), cache_hits=int((have & far).sum()),
                       remote=int(order.shape[0]),
                       bytes_out=int(sum(a.nbytes for r, a in enumerate(replies) if r != store.rank)),
                       bytes_in=int(sum(a.nbytes for r, a in enumerate(got) if r != store.rank)))
    return out, stats
