"""Elastic resume: the rest of an epoch re-planned for another world size (issue 16).

The batch plan of :mod:`dist_train.sampling.batches` is a function of (seed, rank, epoch,
step) *and of the world size*: which parts, hence which train nodes, a rank holds. A run
stopped at step ``s`` of epoch ``e`` with ``W`` ranks and resumed with ``W'`` ranks cannot
replay the old plan's steps ``s..`` (they belong to ranks that no longer exist); skipping
them trained 3,168 seeds of an epoch instead of 3,600 (issue 16).

So an epoch is a list of :class:`Segment` s, ``(start_step, world_size)``. The first
segment follows the ordinary plan of its world size. Each later one starts where the world
size changed: the train nodes the earlier segments already trained are replayed from
their plans (every plan is a pure function, and a rank's train nodes are read from the
shards by :func:`dist_train.data.shards.train_global_ids`); every node not yet trained goes
to the rank that holds it now, in one reshuffled pass, so it is trained exactly once more
in the epoch. A rank that runs out first takes zero-weight steps, as a rank without
train nodes does: every rank still takes the same number of steps (DDP).

Under ``train.batch_plan=global`` none of this runs: a batch's seeds are a function of
(seed, epoch, global id) alone, so the rest of an epoch at another world size is simply
its remaining batches (``loop/epoch_plan.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dist_train.sampling.batches import PlannedBatch, local_num_batches, mix_seed, plan_epoch

TrainIds = Callable[[int, int], np.ndarray]
"""``(world_size, rank) -> int64 global ids`` of that rank's train nodes, in the order of its
``LocalGraph.train_idx`` (what :func:`dist_train.data.shards.train_global_ids` returns)."""


@dataclass(frozen=True)
class Segment:
    """Steps ``start_step ..`` of an epoch, trained by ``world_size`` ranks."""

    start_step: int
    world_size: int


@dataclass(frozen=True)
class EpochShape:
    """What every plan of the run shares: batch size (seeds), step cap, seed and epoch."""

    batch_size: int
    max_steps: int | None
    seed: int
    epoch: int


def standard_steps(counts: list[int], shape: EpochShape) -> int:
    """The agreed step count of an ordinary epoch: the longest rank's batches, capped."""
    steps = max(local_num_batches(c, shape.batch_size) for c in counts)
    return min(steps, shape.max_steps) if shape.max_steps else steps


def rest_batches(ids: np.ndarray, done: np.ndarray, shape: EpochShape, rank: int,
                 start: int) -> list[np.ndarray]:
    """The ``ids`` not ``done`` (bool, same length), reshuffled, in batches: each one once.

    A pure function of its arguments; only the *positions* in ``ids`` matter, so it gives
    the same batches for a rank's local train ids and for their global ids.
    """
    rng = np.random.default_rng([shape.seed & 0xFFFFFFFF, rank, shape.epoch, start, 0xE1A5])
    todo = ids[~done]
    if todo.shape[0] == 0:
        return []
    return np.array_split(rng.permutation(todo), local_num_batches(todo.shape[0], shape.batch_size))


def rest_steps(lengths: list[int], shape: EpochShape, start: int) -> int:
    """Steps of a re-planned segment starting at ``start``: its longest rank, within the cap."""
    steps = max(lengths, default=0)
    return min(steps, max(shape.max_steps - start, 0)) if shape.max_steps else steps


def trained_before(segments: list[Segment], step: int, train_ids: TrainIds,
                   shape: EpochShape) -> np.ndarray:
    """Sorted int64 global ids of the train nodes the epoch's steps ``[0, step)`` trained.

    Replays each segment's plan on every rank of its world (train ids read through
    ``train_ids``); costs one pass over the train ids, done once per elastic resume.
    """
    covered = np.zeros(0, dtype=np.int64)
    for k, seg in enumerate(segments):
        end = segments[k + 1].start_step if k + 1 < len(segments) else step
        taken = [covered]
        ranks = [train_ids(seg.world_size, r) for r in range(seg.world_size)]
        if k == 0:
            steps = standard_steps([ids.shape[0] for ids in ranks], shape)
            for r, ids in enumerate(ranks):
                plan = plan_epoch(ids, shape.batch_size, min(steps, end), shape.seed, r, shape.epoch, 1)
                taken += [b.seeds for b in plan if b.weight > 0]
        else:
            for r, ids in enumerate(ranks):
                done = np.isin(ids, covered, assume_unique=True)
                taken += rest_batches(ids, done, shape, r, seg.start_step)[: end - seg.start_step]
        covered = np.unique(np.concatenate(taken))
    return covered


@dataclass
class RestPlan:
    """A rank's batches for steps ``step ..`` of an epoch whose last segment was re-planned."""

    batches: list[PlannedBatch]
    """This rank's batches from ``step`` to the end of the epoch."""
    num_steps: int
    """Steps of the whole epoch (earlier segments included)."""
    done_local: np.ndarray
    """int64 local ids of this rank's train nodes the epoch trained before ``step``."""
    already: int
    """Train nodes (all ranks) the epoch trained before the last segment started."""
    todo: int
    """Train nodes (all ranks) the last segment trains, each once."""


def plan_rest(segments: list[Segment], step: int, train_ids: TrainIds, shape: EpochShape,
              rank: int, local_train: np.ndarray, num_local: int) -> RestPlan:
    """This rank's plan for steps ``step ..`` of an epoch, given its segments (the last re-planned).

    ``local_train``: int64 local ids of this rank's train nodes, positionally matching
    ``train_ids(world_size, rank)``; ``step`` at or after the last segment's start.
    """
    start = segments[-1].start_step
    covered = trained_before(segments, start, train_ids, shape)
    ranks = [train_ids(segments[-1].world_size, r) for r in range(segments[-1].world_size)]
    dones = [np.isin(ids, covered, assume_unique=True) for ids in ranks]
    per_rank = [rest_batches(ids, d, shape, r, start) for r, (ids, d) in enumerate(zip(ranks, dones, strict=True))]
    steps = rest_steps([len(b) for b in per_rank], shape, start)
    mine = rest_batches(local_train, dones[rank], shape, rank, start)
    dummy = np.arange(min(shape.batch_size, num_local), dtype=np.int64)
    batches = [PlannedBatch(start + i, mine[i] if i < len(mine) else dummy, 1.0 if i < len(mine) else 0.0,
                            mix_seed(shape.seed, rank, shape.epoch, start + i)) for i in range(steps)]
    done_local = np.concatenate([local_train[dones[rank]], *mine[: step - start]]).astype(np.int64)
    todo = sum(sum(b.shape[0] for b in batches_r[:steps]) for batches_r in per_rank)
    return RestPlan(batches[step - start:], start + steps, done_local, int(covered.shape[0]), int(todo))


def next_segments(segments: list[Segment], saved_world: int, world_size: int, step: int) -> list[Segment]:
    """The epoch's segments after a resume at ``step`` with ``world_size`` ranks.

    ``segments`` as checkpointed (empty: one ordinary segment of ``saved_world`` ranks).
    Unchanged world size: unchanged; at an epoch boundary: one ordinary segment of the new
    size; mid-epoch: a new segment starting at ``step``.
    """
    segs = list(segments) or [Segment(0, saved_world)]
    if segs[-1].world_size == world_size:
        return segs
    if step == 0:
        return [Segment(0, world_size)]
    return [*segs, Segment(step, world_size)]


def _ranks(n: int) -> str:
    return f"{n} rank" if n == 1 else f"{n} ranks"


def describe_change(old_world: int, new_world: int, epoch: int, step: int,
                    global_plan: bool = False) -> str:
    """The one line a resume with another world size prints (before the plan is known).

    Under ``train.batch_plan=global`` nothing is re-planned: every batch is fixed by the
    seed whatever the world size, so the rest of the epoch is its own batches, each node on
    the rank that holds it now (review of issue 15: the rank plan's line misled)."""
    if global_plan:
        where = f"at the start of epoch {epoch}" if step == 0 else \
            f"in the middle of epoch {epoch} (after its step {step - 1})"
        return (f"resumed with {_ranks(new_world)} instead of {old_world} {where}: the global "
                "batch plan does not depend on the world size, so the remaining batches are the "
                "ones an uninterrupted run trains, each node on the rank that now holds it")
    if step == 0:
        return (f"resumed with {_ranks(new_world)} instead of {old_world} at the start of epoch {epoch}: "
                f"its batches are planned for {_ranks(new_world)}")
    return (f"resumed with {_ranks(new_world)} instead of {old_world} in the middle of epoch {epoch} "
            f"(after its step {step - 1}): the rest of the epoch is re-planned so that every train node "
            "it has not trained yet is trained exactly once")
