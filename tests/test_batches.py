import numpy as np
import pytest

from dist_train.sampling.batches import eval_batches, local_num_batches, mix_seed, plan_epoch


@pytest.mark.parametrize("n_train,batch,steps", [(100, 32, 4), (100, 32, 9), (5, 32, 3), (64, 32, 2)])
def test_plan_has_exactly_the_agreed_steps_and_covers_train(n_train, batch, steps):
    train = np.arange(10, 10 + n_train, dtype=np.int64)
    plan = plan_epoch(train, batch, steps, seed=1, rank=0, epoch=0, num_local=200)
    assert len(plan) == steps
    assert [b.step for b in plan] == list(range(steps))
    assert all(0 < len(b.seeds) <= batch and b.weight == 1.0 for b in plan)
    per_pass = local_num_batches(n_train, batch)
    if steps >= per_pass:  # the first pass is a permutation of the whole train set
        first = np.concatenate([b.seeds for b in plan[:per_pass]])
        assert np.array_equal(np.sort(first), train)


def test_plan_is_a_function_of_seed_rank_epoch():
    train = np.arange(1000, dtype=np.int64)
    a = plan_epoch(train, 100, 10, seed=3, rank=1, epoch=2, num_local=1000)
    b = plan_epoch(train, 100, 10, seed=3, rank=1, epoch=2, num_local=1000)
    c = plan_epoch(train, 100, 10, seed=3, rank=1, epoch=3, num_local=1000)
    assert all(np.array_equal(x.seeds, y.seeds) and x.sample_seed == y.sample_seed for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x.seeds, y.seeds) for x, y in zip(a, c, strict=True))


def test_rank_without_training_nodes_gets_zero_weight_batches():
    plan = plan_epoch(np.zeros(0, dtype=np.int64), 16, 5, seed=0, rank=1, epoch=0, num_local=7)
    assert len(plan) == 5
    assert all(b.weight == 0.0 and len(b.seeds) == 7 for b in plan)


def test_eval_batches_never_drop_a_node():
    idx = np.arange(1001)
    got = np.concatenate(eval_batches(idx, 100))
    assert np.array_equal(got, idx)
    assert eval_batches(np.zeros(0, dtype=np.int64), 10) == []


def test_mix_seed_distinguishes_positions():
    seeds = {mix_seed(0, r, e, s) for r in range(3) for e in range(3) for s in range(50)}
    assert len(seeds) == 450
    assert all(0 <= s < 2**63 for s in seeds)
