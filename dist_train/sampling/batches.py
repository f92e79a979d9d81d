"""The batch plan: which seed nodes a rank trains on at every step of every epoch.

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


@dataclass(frozen=True)
class PlannedBatch:
    step: int
    seeds: np.ndarray
    """Local ids of the seed nodes."""
    weight: float
    """1.0 for real batches, 0.0 for a rank without training nodes (padding)."""
    sample_seed: int
    """Seed of the neighbour sampler for this batch."""


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
