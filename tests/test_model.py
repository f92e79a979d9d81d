"""GCN/SAGE over sampled subgraphs: exact against full-graph GCNConv, trimming is lossless."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch_geometric.nn import GCNConv

from dist_train.model.models import GNN, build_model
from dist_train.sampling.sampler import NeighborSampler


def random_csr(n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    src, dst = rng.integers(0, n, m), rng.integers(0, n, m)
    a, b = np.concatenate([src, dst]), np.concatenate([dst, src])
    key = np.unique(a[a != b] * n + b[a != b])
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(key // n, minlength=n), out=indptr[1:])
    return indptr, (key % n).astype(np.int64)


N, F_IN, C = 200, 12, 5


@pytest.fixture(scope="module")
def data():
    indptr, indices = random_csr(N, 700, seed=3)
    x = torch.randn(N, F_IN, generator=torch.Generator().manual_seed(0))
    return indptr, indices, x


def sample(data, fanouts, seed=0, batch=30):
    indptr, indices, x = data
    sampler = NeighborSampler(indptr, indices, fanouts, degree=np.diff(indptr))
    sub = sampler.sample(np.arange(0, N, N // batch)[:batch], seed=seed)
    return x[sub.node_ids], sub


def make(arch, layers=2, gcn_norm="global", norm="none", dropout=0.0, seed=0):
    torch.manual_seed(seed)
    return build_model(arch, F_IN, 16, C, layers, dropout, norm=norm, gcn_norm=gcn_norm).eval()


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_global_gcn_with_all_neighbours_equals_full_graph_gcn(data, layers):
    indptr, indices, x = data
    model = make("gcn", layers)
    xs, sub = sample(data, [-1] * layers)
    got = model(xs, sub)
    edge_index = torch.stack([torch.from_numpy(indices),
                              torch.from_numpy(np.repeat(np.arange(N), np.diff(indptr)))])
    h = x
    for i, conv in enumerate(model.convs):
        ref = GCNConv(conv.in_channels, conv.out_channels)  # normalize + self loops
        ref.load_state_dict(conv.state_dict())
        h = ref(h, edge_index)
        h = F.relu(h) if i < layers - 1 else h
    assert torch.allclose(got, h[sub.node_ids[: sub.num_seeds]], atol=1e-5)


@pytest.mark.parametrize("arch,norm", [("sage", "none"), ("gcn", "none"), ("sage", "layer"),
                                       ("gcn", "batch")])
def test_trimming_gives_the_untrimmed_seed_logits(data, arch, norm):
    xs, sub = sample(data, [4, 3, 2], seed=5)
    model = make(arch, 3, norm=norm)
    trimmed = model(xs, sub)
    model.trim = False
    full = model(xs, sub)
    assert trimmed.shape == (sub.num_seeds, C)
    assert torch.allclose(trimmed, full, atol=1e-5)


@pytest.mark.parametrize("arch,gcn_norm,norm", [("gcn", "global", "none"), ("gcn", "sampled", "layer"),
                                                ("sage", "global", "batch")])
def test_shapes_and_backward(data, arch, gcn_norm, norm):
    xs, sub = sample(data, [5, 3], seed=1)
    model = make(arch, 2, gcn_norm=gcn_norm, norm=norm, dropout=0.5).train()
    logits = model(xs, sub)
    assert logits.shape == (sub.num_seeds, C)
    y = torch.arange(sub.num_seeds) % C
    F.cross_entropy(logits, y).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_parameters_are_a_function_of_the_torch_seed():
    a, b, c = make("gcn", seed=4), make("gcn", seed=4), make("gcn", seed=5)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_dropout_only_in_training(data):
    xs, sub = sample(data, [3, 3])
    model = make("sage", dropout=0.5)
    assert torch.equal(model(xs, sub), model(xs, sub))
    model.train()
    assert not torch.equal(model(xs, sub), model(xs, sub))


def test_rejects_mismatches(data):
    xs, sub = sample(data, [3, 3, 3])
    with pytest.raises(ValueError, match="hops"):
        make("gcn", 2)(xs, sub)
    indptr, indices, x = data
    bare = NeighborSampler(indptr, indices, [3, 3]).sample(np.arange(5), seed=0)
    with pytest.raises(ValueError, match="degrees"):
        make("gcn", 2)(x[bare.node_ids], bare)
    with pytest.raises(ValueError, match="arch"):
        GNN("gat", 4, 4, 2, 2, 0.0)


@pytest.mark.parametrize("in_dim,out_dim", [(12, 16), (128, 7)])
def test_global_gcn_layer_starts_as_gcnconv_does(in_dim, out_dim):
    from dist_train.model.models import GlobalGCNLayer

    torch.manual_seed(11)
    ref = GCNConv(in_dim, out_dim, normalize=False, add_self_loops=False)
    after_ref = torch.rand(4)
    torch.manual_seed(11)
    ours = GlobalGCNLayer(in_dim, out_dim)
    after_ours = torch.rand(4)
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert all(torch.equal(ours.state_dict()[k], v) for k, v in ref.state_dict().items())
    assert torch.equal(after_ours, after_ref)  # same RNG draws: the rest of the run is unchanged


def test_the_default_model_does_not_import_pyg():
    import subprocess
    import sys

    code = ("import sys; from dist_train.model.models import build_model; "
            "build_model('gcn', 8, 16, 3, 2, 0.5); "
            "sys.exit('torch_geometric' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
