"""The prefetch thread: same batches as direct sampling, in order; errors surface; close is prompt."""

import threading
import time

import numpy as np
import pytest
import torch

from dist_train.sampling.prefetch import Prefetcher
from dist_train.sampling.sampler import NeighborSampler


def ring(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each node joined to its 4 nearest neighbours on a cycle."""
    nbrs = (np.arange(n)[:, None] + np.array([-2, -1, 1, 2])) % n
    return np.arange(0, 4 * n + 1, 4, dtype=np.int64), np.sort(nbrs, axis=1).ravel().astype(np.int64)


N = 500


@pytest.fixture(scope="module")
def sampler():
    indptr, indices = ring(N)
    return NeighborSampler(indptr, indices, [3, 2], degree=np.diff(indptr))


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    path = tmp_path_factory.mktemp("feat") / "x.npy"
    np.save(path, np.random.default_rng(0).standard_normal((N, 8)).astype(np.float32))
    return np.load(path, mmap_mode="r"), (np.arange(N) % 7).astype(np.int64)


def batches(k: int) -> list[np.ndarray]:
    perm = np.random.default_rng(1).permutation(N)
    return [perm[i * 32:(i + 1) * 32] for i in range(k)]


def test_yields_the_directly_sampled_batches_in_order(sampler, features):
    x, y = features
    seeds = [100 + i for i in range(10)]
    with Prefetcher(sampler, x, y, batches(10), seeds, "cpu", depth=3) as it:
        got = list(it)
    assert len(got) == 10
    for b, ids, s in zip(got, batches(10), seeds, strict=True):
        ref = sampler.sample(ids, s)
        assert torch.equal(b.subgraph.node_ids, ref.node_ids)
        assert torch.equal(b.subgraph.edge_index, ref.edge_index)
        assert b.x.dtype == torch.float32 and torch.equal(b.x, torch.from_numpy(x[ref.node_ids.numpy()]))
        assert torch.equal(b.y, torch.from_numpy(y[ids]))
        assert b.sample_s >= 0 and b.gather_s >= 0
    with pytest.raises(StopIteration):
        next(it)


class FailingSampler:
    """Delegates to a real sampler, raises on call number ``fail_at``."""

    def __init__(self, inner: NeighborSampler, fail_at: int, delay_s: float = 0.0) -> None:
        self.inner, self.fail_at, self.delay_s, self.calls = inner, fail_at, delay_s, 0

    def sample(self, seeds, seed):
        self.calls += 1
        time.sleep(self.delay_s)
        if self.calls == self.fail_at:
            raise KeyError("boom in the worker")
        return self.inner.sample(seeds, seed)


def test_worker_exception_reaches_the_consumer(sampler, features):
    x, y = features
    with Prefetcher(FailingSampler(sampler, fail_at=3), x, y, batches(6), list(range(6))) as it:
        next(it)
        next(it)
        with pytest.raises(KeyError, match="boom"):
            next(it)
        with pytest.raises(StopIteration):
            next(it)


def test_close_mid_epoch_is_prompt_and_idempotent(sampler, features):
    x, y = features
    slow = FailingSampler(sampler, fail_at=-1, delay_s=0.02)
    it = Prefetcher(slow, x, y, batches(15) * 20, list(range(300)), depth=2)
    next(it)
    t0 = time.perf_counter()
    it.close()
    it.close()
    assert time.perf_counter() - t0 < 1.0
    assert not any(t.name == "giantgcn-prefetch" and t.is_alive() for t in threading.enumerate())
    assert slow.calls < 20  # stopped, did not sample the rest of the epoch
    with pytest.raises(StopIteration):
        next(it)


def test_rejects_mismatched_seed_list(sampler, features):
    x, y = features
    with pytest.raises(ValueError, match="seeds"):
        Prefetcher(sampler, x, y, batches(3), [1, 2])
