"""One epoch's batches for this rank, and the train nodes it has covered so far.

The ordinary epoch follows :func:`dist_train.sampling.batches.plan_epoch`; an epoch that
was resumed with another world size follows :func:`dist_train.sampling.elastic.plan_rest`
(issue 16). Either way the plan starts at the position's step, and :class:`EpochRun`
knows which of this rank's train nodes the epoch has trained, before the resume
included, so that the epoch's metrics can say how many train nodes it saw.

Under ``train.batch_plan=global`` the epoch is :func:`~dist_train.sampling.batches.plan_global_epoch`
whatever happened before: a batch's seeds are fixed by (seed, epoch, global id), so a
resume at step s, with this world size or another, trains batches s.. and every train node
exactly once in the epoch, with no replay of other ranks' plans (the segments are unused).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from dist_train.config.schema import Config
from dist_train.data.shards import LocalGraph, train_ids_by_rank
from dist_train.runtime import process_group as pg
from dist_train.sampling.batches import (
    PlannedBatch,
    batch_counts,
    global_batch_index,
    global_num_batches,
    local_num_batches,
    plan_epoch,
    plan_global_epoch,
)
from dist_train.sampling.elastic import EpochShape, Segment, plan_rest
from partition import load_manifest
from partition.wording import counted

log = logging.getLogger(__name__)


@dataclass
class EpochRun:
    """This rank's batches from the resume step on, the epoch's length and its seen train nodes."""

    todo: list[PlannedBatch]
    num_steps: int
    seen: np.ndarray
    """bool [num_local]: local train nodes this rank's share of the epoch has trained so far."""

    def mark(self, batch: PlannedBatch) -> None:
        """Record ``batch``'s seeds as trained (a zero-weight batch trains nothing)."""
        if batch.weight > 0:
            self.seen[batch.seeds] = True


class EpochPlanner:
    """Plans epochs for one rank (every rank calls :meth:`plan` together: it may all-reduce)."""

    def __init__(self, cfg: Config, graph: LocalGraph, rank: int, world_size: int) -> None:
        self.cfg, self.graph, self.rank, self.world_size = cfg, graph, rank, world_size
        self._train_ids: Callable[[int, int], np.ndarray] | None = None

    def agree_steps(self) -> int:
        """An ordinary epoch's step count: the most batches of any rank (one all-reduce), capped."""
        local = local_num_batches(self.graph.train_idx.shape[0], self.cfg.sampler.batch_size)
        steps = pg.all_reduce_max(local)
        if steps == 0:
            raise RuntimeError("no rank has a training node: the dataset has an empty train split")
        cap = self.cfg.train.max_steps_per_epoch
        return min(steps, cap) if cap else steps

    def shape(self, epoch: int) -> EpochShape:
        return EpochShape(self.cfg.sampler.batch_size, self.cfg.train.max_steps_per_epoch,
                          self.cfg.train.seed, epoch)

    def plan(self, epoch: int, step: int, segments: list[Segment]) -> EpochRun:
        """The batches of ``epoch`` from ``step`` on; ``segments`` as in the checkpoint (may be empty)."""
        seen = np.zeros(self.graph.num_local, dtype=bool)
        if self.cfg.train.batch_plan == "global":
            return self.plan_global(epoch, step, seen)
        if len(segments) <= 1:
            g = self.graph
            steps = self.agree_steps()
            plan = plan_epoch(g.train_idx, self.cfg.sampler.batch_size, steps, self.cfg.train.seed,
                              self.rank, epoch, g.num_local)
            run = EpochRun(plan[step:], steps, seen)
            for b in plan[:step]:
                run.mark(b)
            return run
        rest = plan_rest(segments, step, self.train_ids(), self.shape(epoch), self.rank,
                         self.graph.train_idx, self.graph.num_local)
        seen[rest.done_local] = True
        if self.rank == 0 and step == segments[-1].start_step:
            log.warning("epoch %d re-planned for %s: %d train nodes were trained before step %d, "
                        "%d are trained in steps %d-%d, each once", epoch, counted(self.world_size, "rank"),
                        rest.already,
                        step, rest.todo, step, rest.num_steps - 1)
        return EpochRun(rest.batches, rest.num_steps, seen)

    def num_train_global(self) -> int:
        """Train nodes of the whole graph: the manifest's count (an all-reduce without one)."""
        if self.cfg.data.path:
            return int(load_manifest(self.cfg.data.path)["num_train"])
        return int(pg.all_reduce_sum(float(self.graph.train_idx.shape[0])))

    def plan_global(self, epoch: int, step: int, seen: np.ndarray) -> EpochRun:
        """The global plan's epoch from ``step`` on: one all-reduce of the batch counts."""
        g, cfg = self.graph, self.cfg
        num_batches = global_num_batches(self.num_train_global(), cfg.sampler.batch_size)
        cap = cfg.train.max_steps_per_epoch
        steps = min(num_batches, cap) if cap else num_batches
        train = np.asarray(g.train_idx, dtype=np.int64)
        index = global_batch_index(np.asarray(g.global_ids)[train], cfg.train.seed, epoch, num_batches)
        counts = torch.from_numpy(batch_counts(index, num_batches))
        pg.all_reduce_sum(counts)  # int64 [num_batches]: seeds of each batch over every rank
        plan = plan_global_epoch(train, index, counts.numpy(), steps, cfg.train.seed, epoch)
        run = EpochRun(plan[step:], steps, seen)
        for b in plan[:step]:
            run.mark(b)
        return run

    def train_ids(self) -> Callable[[int, int], np.ndarray]:
        if self._train_ids is None:
            data = self.cfg.data.path
            counts = [int(p["num_train"]) for p in load_manifest(data)["parts"]]
            self._train_ids = train_ids_by_rank(data, counts)
            mine = self._train_ids(self.world_size, self.rank)
            expect = np.asarray(self.graph.global_ids)[np.asarray(self.graph.train_idx)]
            if not np.array_equal(mine, expect):  # replaying other ranks' plans would be wrong
                raise RuntimeError("elastic resume: the train ids read from the shards do not match "
                                   "this rank's graph")
        return self._train_ids
