"""Layer-wise inference gives the full-neighbourhood batches' logits, for every model it accepts."""

import numpy as np
import pytest
import torch

from dist_train.model.layerwise import layerwise_logits, needed_per_layer
from dist_train.model.models import build_model
from dist_train.sampling.sampler import NeighborSampler
from tests.test_model import random_csr

N, F_IN, C = 300, 10, 4


@pytest.fixture(scope="module")
def graph():
    indptr, indices = random_csr(N, 900, seed=8)
    rng = np.random.default_rng(1)
    # global degrees above the local row lengths, as for halo rows of a shard
    degree = np.diff(indptr) + rng.integers(0, 3, N) * (np.arange(N) > 250)
    x = rng.standard_normal((N, F_IN)).astype(np.float32)
    return indptr, indices, degree, x


def test_needed_nodes_grow_by_one_hop_per_layer(graph):
    indptr, indices, _, _ = graph
    seeds = np.array([5, 17, 17, 260])
    needed = needed_per_layer(indptr, indices, seeds, 3)
    assert needed[-1].tolist() == [5, 17, 260]
    for inner, outer in zip(needed[1:], needed[:-1], strict=True):
        expect = set(inner.tolist())
        for v in inner:
            expect |= set(indices[indptr[v]:indptr[v + 1]].tolist())
        assert outer.tolist() == sorted(expect)


@pytest.mark.parametrize("arch,layers,norm", [("gcn", 2, "none"), ("gcn", 3, "batch"), ("sage", 2, "layer")])
@pytest.mark.parametrize("chunk", [7, 1000])
def test_layerwise_equals_full_neighbourhood_batches(graph, arch, layers, norm, chunk):
    indptr, indices, degree, x = graph
    torch.manual_seed(0)
    model = build_model(arch, F_IN, 16, C, layers, 0.5, norm=norm).eval()
    if norm == "batch":  # non-trivial running statistics
        bn = model.norms[0]
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    seeds = np.random.default_rng(2).choice(N, 60, replace=False)
    sampler = NeighborSampler(indptr, indices, [-1] * layers, degree=degree)
    sub = sampler.sample(seeds, seed=3)
    with torch.no_grad():
        want = model(torch.from_numpy(x[sub.node_ids.numpy()]), sub)
    order, got = layerwise_logits(model, x, indptr, indices, degree, seeds, chunk, torch.device("cpu"))
    assert order.tolist() == sorted(seeds.tolist())
    assert torch.allclose(got[np.searchsorted(order, seeds)], want, atol=1e-5)


def test_layerwise_refuses_nothing_it_cannot_do_exactly():
    assert build_model("gcn", 4, 8, 2, 2, 0.0).layerwise_exact
    assert build_model("sage", 4, 8, 2, 2, 0.0).layerwise_exact
    assert not build_model("gcn", 4, 8, 2, 2, 0.0, gcn_norm="sampled").layerwise_exact


def test_evaluation_counts_are_those_of_the_batches(graph):
    """The layer-wise path of evaluate.py scores each split as the sampled batches do."""
    from dist_train.data.shards import LocalGraph
    from dist_train.loop import evaluate

    indptr, indices, degree, x = graph
    rng = np.random.default_rng(4)
    order = rng.permutation(N)
    g = LocalGraph(part_ids=[0], global_ids=np.arange(N), num_inner=N, indptr=indptr, indices=indices,
                   x=x, y=rng.integers(0, C, N), degree=degree, train_idx=np.sort(order[:100]),
                   val_idx=np.sort(order[100:180]), test_idx=np.sort(order[180:]))
    torch.manual_seed(1)
    model = build_model("gcn", F_IN, 16, C, 2, 0.5).eval()
    sampler = NeighborSampler(indptr, indices, [-1, -1], degree=degree)
    cpu = torch.device("cpu")
    (got_v, got_t), bad = evaluate._count_correct_layerwise(model, g, [g.val_idx, g.test_idx], 16, cpu)
    want_v, _ = evaluate._count_correct(model, sampler, g, g.val_idx, 16, 0, evaluate.VAL_TAG, cpu)
    want_t, _ = evaluate._count_correct(model, sampler, g, g.test_idx, 16, 0, evaluate.TEST_TAG, cpu)
    assert (got_v, got_t, bad) == (want_v, want_t, 0)
    assert 0 < got_v < 80 and 0 < got_t < 120  # a random model gets some right, not all
