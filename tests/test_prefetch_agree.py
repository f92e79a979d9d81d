"""The prefetch thread's agreed stop (issue 15 follow-up): when ``make`` runs collectives
(exact mode), ranks whose consumers stop at the same step never leave a thread inside an
all-to-all its peers will not join, and a rank whose peer stopped alone is told so at
once instead of hanging."""

from __future__ import annotations

import time
from datetime import timedelta

import numpy as np
import pytest
import torch
import torch.distributed as dist
from dist_helpers import run_ranks

from dist_train.exchange import Exchange
from dist_train.sampling.prefetch import Batch, PeerStopped, Prefetcher

STEPS = 40


def _exchanging_prefetcher(rank: int, world: int) -> tuple[Prefetcher, Exchange]:
    group = dist.new_group(backend="gloo", timeout=timedelta(seconds=60))
    ex = Exchange(group)

    def make(ids: np.ndarray, seed: int, device: torch.device) -> Batch:
        got = ex([np.full(3, seed, dtype=np.int64) for _ in range(world)])  # a collective per batch
        ex([np.zeros((1, 2), dtype=np.float32) for _ in range(world)])  # and another
        assert all(int(g[0]) == seed for g in got)
        # the subgraph is never read here: what matters is the collectives
        return Batch(None, torch.zeros(ids.size, 2), torch.zeros(ids.size, dtype=torch.int64),  # type: ignore[arg-type]
                     0.0, 0.0)

    batches = [np.arange(4, dtype=np.int64)] * STEPS
    it = Prefetcher(None, None, None, batches, list(range(STEPS)), "cpu", depth=2,  # type: ignore[arg-type]
                    make=make, agree=ex.any_true)
    return it, ex


def _stop_together(rank: int, world: int, steps: int) -> dict:
    it, _ = _exchanging_prefetcher(rank, world)
    for _ in range(steps):
        next(it)
        if rank == 1:  # a slow consumer: its thread waits on a full queue, rank 0's does not
            time.sleep(0.05)
    t0 = time.monotonic()
    it.close()
    closed_s = time.monotonic() - t0
    alive = it._thread.is_alive()
    dist.barrier()  # the default group still works: nothing was left half-done
    return {"closed_s": closed_s, "alive": alive}


@pytest.mark.multiproc
@pytest.mark.parametrize("steps", [7])  # steps=7 wedged before the agreement (rank 1 slow)
def test_ranks_that_stop_at_the_same_step_leave_no_thread_in_a_collective(steps):
    out = run_ranks(_stop_together, 2, steps, timeout=120)
    for rank, res in enumerate(out):
        assert not res["alive"], (rank, res)  # joined, not abandoned inside an all-to-all
        assert res["closed_s"] < 5.0, (rank, res)  # close() never reached its 10 s join limit


def _one_stops(rank: int, world: int) -> dict:
    it, _ = _exchanging_prefetcher(rank, world)
    got, error, t0 = 0, "", time.monotonic()
    if rank == 1:
        next(it)
        it.close()  # this rank's run ends on its own (an error of its own)
        return {"got": 1, "error": "", "wait_s": 0.0}
    try:
        for _ in range(STEPS):
            next(it)
            got += 1
    except PeerStopped as err:
        error = str(err)
    return {"got": got, "error": error, "wait_s": time.monotonic() - t0}


@pytest.mark.multiproc
def test_a_rank_whose_peer_stopped_alone_is_told_at_once():
    res = run_ranks(_one_stops, 2, timeout=120)[0]
    assert "another rank stopped" in res["error"], res
    assert res["got"] < STEPS and res["wait_s"] < 20, res
