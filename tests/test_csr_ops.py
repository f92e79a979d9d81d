"""The fused CSR aggregation and ReLU + dropout: same values and gradients as plain torch."""

import numpy as np
import pytest
import torch

from dist_train.model.csr_ops import csr_aggregate, relu_dropout, sparse_aggregate


def random_rows(num_targets: int, num_src: int, max_deg: int, seed: int):
    """A CSR over targets (some rows empty) with float weights, as the sampler emits it."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, max_deg + 1, num_targets)
    counts[::7] = 0
    ptr = np.concatenate(([0], np.cumsum(counts)))
    src = rng.integers(0, num_src, ptr[-1])
    return (torch.from_numpy(ptr), torch.from_numpy(src),
            torch.from_numpy(rng.random(ptr[-1]).astype(np.float32)),
            torch.from_numpy(rng.random(num_targets).astype(np.float32)))


def dense_reference(x, ptr, src, weight, self_weight):
    t = ptr.shape[0] - 1
    dst = torch.repeat_interleave(torch.arange(t), ptr.diff())
    out = torch.zeros(t, x.shape[1], dtype=x.dtype).index_add(0, dst, x[src] * weight[:, None].to(x.dtype))
    return out + self_weight[:, None].to(x.dtype) * x[:t]


@pytest.mark.parametrize("num_targets,num_src,feat", [(40, 90, 5), (1, 1, 3), (30, 30, 17)])
def test_aggregate_matches_index_add(num_targets, num_src, feat):
    ptr, src, w, sw = random_rows(num_targets, num_src, 6, seed=feat)
    x = torch.randn(num_src, feat)
    assert torch.allclose(csr_aggregate(x, ptr, src, w, sw), dense_reference(x, ptr, src, w, sw), atol=1e-5)


def test_aggregate_gradient_is_the_transpose():
    ptr, src, w, sw = random_rows(25, 60, 5, seed=3)
    x = torch.randn(60, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: csr_aggregate(x, ptr, src, w, sw), (x,))


def test_gpu_path_sparse_product_gives_the_same_values_and_gradients():
    """The torch sparse CSR product used off CPU, run on CPU against the numba kernels."""
    ptr, src, w, sw = random_rows(30, 70, 6, seed=5)
    x = torch.randn(70, 8, requires_grad=True)
    fused = csr_aggregate(x, ptr, src, w, sw)
    (g_fused,) = torch.autograd.grad(fused.pow(2).sum(), x)
    sparse = sparse_aggregate(x, ptr, src, w, sw)
    (g_sparse,) = torch.autograd.grad(sparse.pow(2).sum(), x)
    assert torch.allclose(fused, sparse, atol=1e-5)
    assert torch.allclose(g_fused, g_sparse, atol=1e-4)


def test_aggregate_without_input_gradient_builds_none():
    ptr, src, w, sw = random_rows(10, 20, 3, seed=4)
    lin = torch.nn.Linear(3, 2)
    out = lin(csr_aggregate(torch.randn(20, 3), ptr, src, w, sw))
    out.sum().backward()
    assert lin.weight.grad is not None


def test_relu_dropout_keeps_about_1_minus_p_scaled():
    x = torch.rand(200, 500) + 0.1  # all positive: only dropout zeroes
    torch.manual_seed(0)
    out = relu_dropout(x, 0.3, training=True)
    kept = out > 0
    assert abs(kept.float().mean().item() - 0.7) < 0.01
    assert torch.allclose(out[kept], x[kept] / 0.7)


def test_relu_dropout_follows_the_torch_seed_and_eval_is_relu():
    x = torch.randn(64, 32)
    torch.manual_seed(5)
    a = relu_dropout(x, 0.5, training=True)
    torch.manual_seed(5)
    b = relu_dropout(x, 0.5, training=True)
    assert torch.equal(a, b) and not torch.equal(a, relu_dropout(x, 0.5, training=True))
    assert torch.equal(relu_dropout(x, 0.5, training=False), torch.relu(x))


def test_relu_dropout_gradient_uses_the_same_mask():
    x = torch.randn(50, 40, requires_grad=True)
    out = relu_dropout(x, 0.5, training=True)
    out.backward(torch.ones_like(out))
    expected = torch.where(out > 0, 2.0, 0.0)
    assert torch.equal(x.grad, expected)
