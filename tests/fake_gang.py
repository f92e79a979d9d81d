"""An in-process all-to-all for logic that needs no real processes (fairseq2's FakeGang idea).

``run_ranks(world, fn)`` runs ``fn(rank, exchange)`` on ``world`` threads; ``exchange``
delivers ``send[r]`` to rank r, in lockstep like the real collective (a rank that calls
it alone waits, up to a timeout, as a real all-to-all would).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np


class FakeGang:
    def __init__(self, world: int, timeout_s: float = 60.0) -> None:
        self.world = world
        self._slots: list[list[np.ndarray] | None] = [None] * world
        self._barrier = threading.Barrier(world, timeout=timeout_s)
        self.calls = [0] * world
        self.bytes_sent = [0] * world

    def exchange_for(self, rank: int) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
        def exchange(send: list[np.ndarray]) -> list[np.ndarray]:
            assert len(send) == self.world
            self.calls[rank] += 1
            self.bytes_sent[rank] += sum(a.nbytes for r, a in enumerate(send) if r != rank)
            self._slots[rank] = [np.array(a, copy=True) for a in send]
            self._barrier.wait()
            recv = [self._slots[r][rank] for r in range(self.world)]
            self._barrier.wait()  # nobody overwrites a slot before every rank has read it
            return recv

        return exchange


def run_ranks(world: int, fn: Callable[[int, Callable], Any], gang: FakeGang | None = None) -> list[Any]:
    """``[fn(rank, exchange) for rank]``, run concurrently; the first error is re-raised."""
    gang = gang or FakeGang(world)
    out: list[Any] = [None] * world
    errors: list[BaseException] = []

    def body(rank: int) -> None:
        try:
            out[rank] = fn(rank, gang.exchange_for(rank))
        except BaseException as err:  # noqa: BLE001 -- handed to the main thread
            errors.append(err)
            gang._barrier.abort()

    threads = [threading.Thread(target=body, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out
