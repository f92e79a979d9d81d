"""dist_train.exchange: real gloo ranks receive exactly what each peer addressed to them."""

import numpy as np
import pytest
from dist_helpers import run_ranks

from dist_train.exchange import Exchange


def _rank_exchange(rank: int, world: int) -> list:
    ex = Exchange()
    # rank r sends r + d rows of width 3 to rank d (none to rank 0 from rank 0), value-coded
    send = [np.full((rank + d, 3), 100 * rank + d, dtype=np.float32) for d in range(world)]
    got = ex(send)
    ids = ex([np.arange(d, dtype=np.int64) + 10 * rank for d in range(world)])  # 1-D, int64
    return [g.tolist() for g in got], [i.tolist() for i in ids], ex.bytes_sent, ex.bytes_received


@pytest.mark.multiproc
def test_every_rank_gets_what_was_addressed_to_it():
    world = 3
    out = run_ranks(_rank_exchange, world, timeout=180)
    for r, (rows, ids, sent, received) in enumerate(out):
        for s in range(world):
            assert rows[s] == [[100.0 * s + r] * 3] * (s + r)
            assert ids[s] == list(range(10 * s, 10 * s + r))
        assert sent == sum(12 * (r + d) + 8 * d for d in range(world) if d != r)
        assert received == sum(12 * (s + r) + 8 * r for s in range(world) if s != r)
