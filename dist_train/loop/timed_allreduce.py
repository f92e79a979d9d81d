"""Measure how long DDP's gradient all-reduce takes, without changing what it does.

DDP overlaps the all-reduce with backward, so wall-clock around ``backward()`` hides
it. A communication hook wraps the default all-reduce and adds up, per bucket, the
time from launch to completion.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.nn.parallel import DistributedDataParallel as DDP


@dataclass
class AllreduceClock:
    seconds: float = 0.0
    buckets: int = 0

    def reset(self) -> None:
        self.seconds, self.buckets = 0.0, 0


def attach_timed_allreduce(ddp: DDP) -> AllreduceClock:
    clock = AllreduceClock()

    # No annotations here: DDP compares them against the GradBucket class itself and
    # rejects the strings that ``from __future__ import annotations`` turns them into.
    def hook(state, bucket):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        fut = default_hooks.allreduce_hook(state, bucket)  # type: ignore[arg-type]

        def done(f: torch.futures.Future[torch.Tensor]) -> torch.Tensor:
            clock.seconds += time.perf_counter() - t0
            clock.buckets += 1
            return f.value()

        return fut.then(done)

    ddp.register_comm_hook(state=None, hook=hook)
    return clock
