"""The batch plan: which seed nodes a rank trains on at every step of every epoch.

Two plans (``train.batch_plan``):

- ``"rank"`` (default, :func:`plan_epoch`): each rank permutes its own train nodes into
  batches of ``sampler.batch_size``; the batches depend on which rank holds which node.
- ``"global"`` (:func:`plan_global_epoch`): ``sampler.batch_size`` is the global batch.
  Train node v goes to batch ``floor(u * num_batches)``, u uniform from a splitmix64 hash
  of (seed, epoch, global id of v), num_batches = ceil(global train nodes / batch size);
  at step b each rank trains its own nodes of batch b (none: a zero-weight step). A
  batch's seeds are thus fixed whatever the world size or partition, each rank hashes
  only its own train nodes (nothing O(N)), and resuming at any step with any world size
  trains every node once per epoch. The per-batch global counts (one all-reduce per
  epoch, :func:`batch_counts`) scale each rank's loss so that the averaged gradient is
  one process's gradient on the whole batch.

Every batch is a pure function of (seed, rank, epoch, step), so a run resumed from a
checkpoint at step s of epoch e replays exactly the batches an uninterrupted run
would have seen (ANCHORS: sampling is not reproducible even with seeds in DGL).

Every rank takes the same number of steps (agreed by a collective before the epoch):
uneven batch counts deadlock DDP (dgl#2539, dgl#3538, pyg#9959). A rank with fewer
batches reshuffles its seeds and keeps going; a rank with no training node at all
runs zero-weight batches so it still joins every gradient all-reduce.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from dist_train.sampling.sampler import _mix


@dataclass(frozen=True)
class PlannedBatch:
    step: int
    seeds: np.ndarray
    """Local ids of the seed nodes."""
    weight: float
    """1.0 for real batches, 0.0 for a rank without training nodes (padding)."""
    sample_seed: int
    """Seed of the neighbour sampler for this batch."""
    global_count: int = 0
    """Global plan: seeds of this batch over every rank (0 under the rank plan). The
    rank's loss is then its seeds' loss sum x world size / global_count."""


def mix_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from small integers (SeedSequence's hash)."""
    return int(np.random.SeedSequence([p & 0xFFFFFFFF for p in parts]).generate_state(2, np.uint64)[0] >> 1)


def local_num_batches(num_train: int, batch_size: int) -> int:
    return math.ceil(num_train / batch_size)


def plan_epoch(train_idx: np.ndarray, batch_size: int, num_steps: int, seed: int, rank: int,
               epoch: int, num_local: int) -> list[PlannedBatch]:
    """``num_steps`` batches for this rank, cycling reshuffled passes when it runs short."""
    rng = np.random.default_rng([seed & 0xFFFFFFFF, rank, epoch, 0x5EED])
    if train_idx.shape[0] == 0:
        dummy = np.arange(min(batch_size, num_local), dtype=np.int64)
        return [PlannedBatch(s, dummy, 0.0, mix_seed(seed, rank, epoch, s)) for s in range(num_steps)]
    per_pass = local_num_batches(train_idx.shape[0], batch_size)
    passes = math.ceil(num_steps / per_pass)
    chunks: list[np.ndarray] = []
    for _ in range(passes):
        perm = rng.permutation(train_idx)
        chunks.extend(np.array_split(perm, per_pass))
    return [PlannedBatch(s, chunks[s], 1.0, mix_seed(seed, rank, epoch, s)) for s in range(num_steps)]


def eval_batches(idx: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """All of ``idx`` in order: evaluation never drops a node (no drop_last)."""
    if idx.shape[0] == 0:
        return []
    return np.array_split(idx, local_num_batches(idx.shape[0], batch_size))


PLANS = ("rank", "global")

_PLAN_SALT = np.uint64(0x6A09E667F3BCC909)  # keeps the plan's hash apart from sampling's


@njit(cache=True, nogil=True)
def _batch_index(gids, base, num_batches):
    out = np.empty(gids.shape[0], dtype=np.int64)
    for i in range(gids.shape[0]):
        z = _mix(base ^ (np.uint64(gids[i]) * np.uint64(0x9E3779B97F4A7C15)))
        # floor(u * num_batches) with u = the high 32 bits / 2^32 (Lemire's multiply-shift)
        out[i] = np.int64(((z >> np.uint64(32)) * np.uint64(num_batches)) >> np.uint64(32))
    return out


def global_num_batches(num_train_global: int, batch_size: int) -> int:
    """Steps of a global-plan epoch: ceil(train nodes of the whole graph / batch_size)."""
    return max(1, math.ceil(num_train_global / batch_size))


def global_batch_index(gids: np.ndarray, seed: int, epoch: int, num_batches: int) -> np.ndarray:
    """int64 batch index in [0, num_batches) of every train node (int64 global ids ``gids``).

    A pure function of (seed, epoch, global id): the same on any rank, at any world size
    and partition. ``num_batches`` < 2^32.
    """
    if not 1 <= num_batches < 1 << 32:
        raise ValueError(f"num_batches {num_batches} is not in [1, 2^32)")
    # numba hands a uint64 back as a Python int: re-wrap it, or values >= 2^63 overflow
    base = np.uint64(_mix(np.uint64(mix_seed(seed, epoch, 0x61)) ^ _PLAN_SALT))
    return _batch_index(np.ascontiguousarray(gids, dtype=np.int64), base, np.int64(num_batches))


def batch_counts(index: np.ndarray, num_batches: int) -> np.ndarray:
    """int64 [num_batches]: this rank's seeds per batch (all-reduced into the global counts)."""
    return np.bincount(index, minlength=num_batches).astype(np.int64)


def global_sample_seed(seed: int, epoch: int, step: int) -> int:
    """The sampling (and keyed dropout) seed of global batch ``step``: the same on every rank."""
    return mix_seed(seed, epoch, step, 0x6B)


def plan_global_epoch(train_idx: np.ndarray, index: np.ndarray, global_counts: np.ndarray,
                      num_steps: int, seed: int, epoch: int) -> list[PlannedBatch]:
    """This rank's batches 0..num_steps-1 of a global-plan epoch.

    ``train_idx`` int64 local ids of the rank's train nodes, ``index`` their batch indices
    (:func:`global_batch_index`), ``global_counts`` int64 [num_batches] the all-reduced
    :func:`batch_counts`. Step b trains the rank's nodes of batch b (ascending local id),
    or, when it has none, one zero-weight seed (local id 0) so it still joins every
    collective. ``num_steps`` <= num_batches (``train.max_steps_per_epoch``).
    """
    order = np.argsort(index, kind="stable")
    bounds = np.searchsorted(index[order], np.arange(num_steps + 1))
    sorted_ids = np.asarray(train_idx, dtype=np.int64)[order]
    dummy = np.zeros(1, dtype=np.int64)
    out = []
    for b in range(num_steps):
        seeds = sorted_ids[bounds[b]:bounds[b + 1]]
        real = seeds.shape[0] > 0
        out.append(PlannedBatch(b, seeds if real else dummy, 1.0 if real else 0.0,
                                global_sample_seed(seed, epoch, b), int(global_counts[b])))
    return out
