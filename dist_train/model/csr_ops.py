"""Fused kernels for the model's hot path: weighted CSR aggregation and ReLU + dropout.

Why not PyG's message passing: ``GCNConv`` gathers ``x_j`` into an [E, F] tensor,
multiplies it by the edge weight into a second one and scatters it back, and its
backward does the same again. On CPU that made ~80% of a training step (profile in
benchmarks/README.md). The sampler already emits edges grouped by target (a CSR over
targets, ``SampledSubgraph.target_ptr``), so one pass over the rows does the whole
weighted sum with no [E, F] temporary, and its transpose is a scatter over the same
rows. Both are numba kernels that release the GIL, so the prefetch thread keeps
sampling while they run. On other devices the same maths runs as a torch sparse CSR
product (autograd included), so the GPU path is the same code.

``F.dropout`` draws a Bernoulli per element, which costs more on CPU than the layer it
follows; the fused ReLU + dropout draws from a splitmix64 stream seeded from torch's
generator, so ``torch.manual_seed`` still fixes it. Under ``train.batch_plan=global`` the
mask is *keyed* instead (:func:`keyed_keep_mask`): element (node, column) of layer i is
kept by a hash of (batch seed, global id, layer, column), so a row's mask is the same on
whatever rank and at whatever position the row is, which partition-invariant training
needs (dropout by row position would differ between a 1-part and an 8-part run).
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True, nogil=True)
def _aggregate(ptr, src, weight, self_weight, x, out):
    """``out[t] = self_weight[t] * x[t] + sum_{e in row t} weight[e] * x[src[e]]``."""
    for t in range(ptr.shape[0] - 1):
        acc = out[t]
        sw = self_weight[t]
        for f in range(x.shape[1]):
            acc[f] = sw * x[t, f]
        for e in range(ptr[t], ptr[t + 1]):
            row = x[src[e]]
            we = weight[e]
            for f in range(x.shape[1]):
                acc[f] += we * row[f]


@njit(cache=True, nogil=True)
def _aggregate_transposed(ptr, src, weight, self_weight, grad, grad_x):
    """The adjoint of ``_aggregate``: ``grad_x += A^T grad`` (``grad_x`` zeroed by the caller)."""
    for t in range(ptr.shape[0] - 1):
        g = grad[t]
        sw = self_weight[t]
        for f in range(grad.shape[1]):
            grad_x[t, f] += sw * g[f]
        for e in range(ptr[t], ptr[t + 1]):
            row = grad_x[src[e]]
            we = weight[e]
            for f in range(grad.shape[1]):
                row[f] += we * g[f]


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


class _CsrAggregate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, ptr, src, weight, self_weight):  # type: ignore[no-untyped-def]
        out = torch.empty((ptr.shape[0] - 1, x.shape[1]), dtype=x.dtype)
        _aggregate(_np(ptr), _np(src), _np(weight), _np(self_weight), _np(x), out.numpy())
        ctx.save_for_backward(ptr, src, weight, self_weight)
        ctx.num_src = x.shape[0]
        return out

    @staticmethod
    def backward(ctx, grad):  # type: ignore[no-untyped-def]
        if not ctx.needs_input_grad[0]:  # layer 1's input is data: no gradient to build
            return None, None, None, None, None
        ptr, src, weight, self_weight = ctx.saved_tensors
        grad_x = torch.zeros((ctx.num_src, grad.shape[1]), dtype=grad.dtype)
        _aggregate_transposed(_np(ptr), _np(src), _np(weight), _np(self_weight), _np(grad),
                              grad_x.numpy())
        return grad_x, None, None, None, None


def csr_aggregate(x: torch.Tensor, ptr: torch.Tensor, src: torch.Tensor, weight: torch.Tensor,
                  self_weight: torch.Tensor) -> torch.Tensor:
    """``[T, F]``: row t is ``self_weight[t] x[t] + sum over edges e of row t of weight[e] x[src[e]]``.

    ``ptr`` (int64 [T+1]) delimits each target's edges in ``src`` / ``weight``; targets
    are the first T rows of ``x`` (the sampler's layout), so T <= ``x.shape[0]``.
    """
    weight, self_weight = weight.to(x.dtype), self_weight.to(x.dtype)
    if x.device.type == "cpu":
        return _CsrAggregate.apply(x, ptr, src, weight, self_weight)
    return sparse_aggregate(x, ptr, src, weight, self_weight)


def sparse_aggregate(x: torch.Tensor, ptr: torch.Tensor, src: torch.Tensor, weight: torch.Tensor,
                     self_weight: torch.Tensor) -> torch.Tensor:
    """The same sum as a torch sparse CSR product: the GPU path (numba kernels are CPU-only)."""
    num_targets = ptr.shape[0] - 1
    adj = torch.sparse_csr_tensor(ptr, src, weight, size=(num_targets, x.shape[0]))
    return adj @ x + self_weight[:, None] * x[:num_targets]


@njit(cache=True, nogil=True)
def _relu_dropout(x, out, keep_below, scale, seed):
    state = seed
    for i in range(x.shape[0]):
        state += _GAMMA
        z = state
        z = (z ^ (z >> np.uint64(30))) * _MUL1
        z = (z ^ (z >> np.uint64(27))) * _MUL2
        z = z ^ (z >> np.uint64(31))
        v = x[i]
        out[i] = v * scale if v > 0 and (z >> np.uint64(40)) < keep_below else 0.0


@njit(cache=True, nogil=True)
def _relu_dropout_backward(out, grad, grad_in, scale):
    for i in range(out.shape[0]):
        grad_in[i] = grad[i] * scale if out[i] > 0 else 0.0



def _relu_dropout_grad(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """Backward of both fused ReLU + dropouts: ``out > 0`` exactly where the input was
    positive and the element kept, so the saved output is the mask (none stored)."""
    (out,) = ctx.saved_tensors
    grad_in = torch.empty_like(out)
    _relu_dropout_backward(out.numpy().reshape(-1), _np(grad).reshape(-1),
                           grad_in.numpy().reshape(-1), ctx.scale)
    return grad_in

class _ReluDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, p, seed):  # type: ignore[no-untyped-def]
        scale = 1.0 / (1.0 - p)
        out = torch.empty_like(x)
        _relu_dropout(_np(x).reshape(-1), out.numpy().reshape(-1), _keep_below(p),
                      float(scale), np.uint64(seed))
        ctx.save_for_backward(out)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, grad):  # type: ignore[no-untyped-def]
        return _relu_dropout_grad(ctx, grad), None, None


@njit(cache=True, nogil=True)
def _row_base(base, key, layer):
    """The stream of one (batch, node, layer): splitmix64 of the three (as the sampler's
    per-node streams), so the row's mask depends on nothing else."""
    z = base ^ (np.uint64(key) * _GAMMA)
    z = (z ^ (z >> np.uint64(30))) * _MUL1
    z = (z ^ (z >> np.uint64(27))) * _MUL2
    z = z ^ (z >> np.uint64(31))
    z = z + np.uint64(layer + 1) * _MUL2
    z = (z ^ (z >> np.uint64(30))) * _MUL1
    z = (z ^ (z >> np.uint64(27))) * _MUL2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True)
def _keyed_mask(keys, cols, keep_below, base, layer, out):
    """``out[r, c]`` = element (keys[r], c) of layer ``layer`` is kept (24 random bits)."""
    for r in range(keys.shape[0]):
        state = _row_base(base, keys[r], layer)
        for c in range(cols):
            z = state + np.uint64(c + 1) * _GAMMA
            z = (z ^ (z >> np.uint64(30))) * _MUL1
            z = (z ^ (z >> np.uint64(27))) * _MUL2
            z = z ^ (z >> np.uint64(31))
            out[r, c] = (z >> np.uint64(40)) < keep_below


@njit(cache=True, nogil=True)
def _relu_dropout_keyed(x, out, keys, keep_below, scale, base, layer):
    """The fused ReLU + keyed dropout over rows ``x[r]`` of node ``keys[r]``."""
    for r in range(x.shape[0]):
        state = _row_base(base, keys[r], layer)
        for c in range(x.shape[1]):
            z = state + np.uint64(c + 1) * _GAMMA
            z = (z ^ (z >> np.uint64(30))) * _MUL1
            z = (z ^ (z >> np.uint64(27))) * _MUL2
            z = z ^ (z >> np.uint64(31))
            v = x[r, c]
            out[r, c] = v * scale if v > 0 and (z >> np.uint64(40)) < keep_below else 0.0


def _keep_below(p: float) -> np.uint64:
    return np.uint64(round((1.0 - p) * (1 << 24)))  # 24 random bits per element


def dropout_base(batch_seed: int) -> np.uint64:
    """The keyed dropout's base for a batch: apart from the sampler's streams of the same seed."""
    z = np.uint64(int(batch_seed) % (1 << 64)) ^ np.uint64(0xD1B54A32D192ED03)
    return np.uint64(_row_base(z, np.int64(0x5EED), np.int64(-1)))


def keyed_keep_mask(keys: np.ndarray, cols: int, p: float, batch_seed: int, layer: int) -> np.ndarray:
    """bool ``[len(keys), cols]``: the elements keyed dropout keeps.

    ``keys`` int64 [n] (global node ids), ``p`` the drop probability in [0, 1), ``layer``
    the model layer whose output is dropped. Element (r, c) depends only on
    (batch_seed, keys[r], layer, c).
    """
    out = np.empty((keys.shape[0], cols), dtype=np.bool_)
    _keyed_mask(np.ascontiguousarray(keys, dtype=np.int64), cols, _keep_below(p),
                dropout_base(batch_seed), layer, out)
    return out


class _ReluDropoutKeyed(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, p, keys, base, layer):  # type: ignore[no-untyped-def]
        scale = 1.0 / (1.0 - p)
        out = torch.empty_like(x)
        _relu_dropout_keyed(_np(x), out.numpy(), keys, _keep_below(p), float(scale), base, layer)
        ctx.save_for_backward(out)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, grad):  # type: ignore[no-untyped-def]
        return _relu_dropout_grad(ctx, grad), None, None, None, None


def relu_dropout(x: torch.Tensor, p: float, training: bool, keys: torch.Tensor | None = None,
                 batch_seed: int | None = None, layer: int = 0) -> torch.Tensor:
    """``dropout(relu(x), p)`` of ``x`` float32 ``[n, F]``, fused on CPU.

    Without ``keys`` the mask is a function of torch's RNG state. With ``keys`` (int64
    [n] global ids of the rows, on the host) and ``batch_seed``, it is keyed: element
    (r, c) is kept by a hash of (batch_seed, keys[r], layer, c) (:func:`keyed_keep_mask`),
    independent of rank and row position. Backward applies the forward's mask.
    """
    if not training or p == 0.0:
        return torch.relu(x)
    if keys is not None:
        if batch_seed is None:
            raise ValueError("keyed dropout needs the batch seed")
        k = np.ascontiguousarray(keys.cpu().numpy(), dtype=np.int64)
        if k.shape[0] != x.shape[0]:
            raise ValueError(f"keyed dropout: {k.shape[0]} keys for {x.shape[0]} rows")
        if x.device.type != "cpu":  # the hash runs on the host; the mask moves once
            mask = torch.from_numpy(keyed_keep_mask(k, int(x.shape[1]), p, batch_seed, layer))
            return torch.relu(x) * mask.to(x.device, non_blocking=True) * (1.0 / (1.0 - p))
        return _ReluDropoutKeyed.apply(x.contiguous(), p, k, dropout_base(batch_seed), int(layer))
    if x.device.type != "cpu":
        return torch.nn.functional.dropout(torch.relu(x), p, training=True)
    seed = int(torch.randint(0, 2**62, (1,)).item())
    return _ReluDropout.apply(x.contiguous(), p, seed)
