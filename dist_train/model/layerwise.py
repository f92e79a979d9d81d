"""Full-neighbourhood inference one layer at a time, over a rank's whole local graph.

Why: evaluating with every neighbour by L-hop batches (the sampler with fanout -1)
rebuilds each seed's whole L-hop neighbourhood per batch: ``seeds x degree^L`` gathered
rows per batch, most of them shared with other batches. At 10^6 nodes (degree 20,
4096 seeds per batch) that was ~900 MiB per batch in flight and 33 s per evaluation.
Layer by layer (PyG's and DGL's ``inference`` recipe), layer i runs once for every node
that layer i+1 needs, in chunks of targets: work is O(edges x width) per layer and
memory is those nodes' outputs, proportional to the rank's shard.

The logits are the same as the batches': each chunk is a 1-hop "sample" that takes
every neighbour, so edge weights, halo rows and self loops are exactly the sampler's.
This holds for layers whose output at a node depends only on its own row
(``GNN.layerwise_exact``: SAGE and the "global" GCN).
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit

from dist_train.sampling.sampler import NeighborSampler


@njit(cache=True, nogil=True)
def _mark_rows(indptr, indices, rows, mask):
    """``mask[v] = True`` for every row in ``rows`` and every neighbour of one."""
    for r in rows:
        mask[r] = True
        for e in range(indptr[r], indptr[r + 1]):
            mask[indices[e]] = True


def needed_per_layer(indptr: np.ndarray, indices: np.ndarray, seeds: np.ndarray,
                     num_layers: int) -> list[np.ndarray]:
    """Sorted local ids whose output each layer must compute; the last entry is ``seeds``.

    Layer i's targets are layer i+1's targets and their neighbours (layer i+1 reads
    them as sources), so the list grows outward from the seeds.
    """
    out = [np.unique(np.asarray(seeds, dtype=np.int64))]
    for _ in range(num_layers - 1):
        mask = np.zeros(indptr.shape[0] - 1, dtype=np.bool_)
        _mark_rows(indptr, indices, out[0], mask)
        out.insert(0, np.flatnonzero(mask))
    return out


@torch.no_grad()
def layerwise_logits(model: torch.nn.Module, x: np.ndarray, indptr: np.ndarray, indices: np.ndarray,
                     degree: np.ndarray | None, seeds: np.ndarray, chunk: int,
                     device: torch.device) -> tuple[np.ndarray, torch.Tensor]:
    """``(sorted unique seeds, their logits)`` from ``model`` run layer by layer.

    ``x`` is the local feature matrix (memory-mapped is fine: only the rows needed are
    read, a chunk at a time). Layer outputs stay on the host; a chunk at a time goes to
    ``device``.
    """
    seeds = np.asarray(seeds, dtype=np.int64)
    if seeds.shape[0] == 0:
        raise ValueError("layerwise_logits: no seeds")
    model.eval()
    sampler = NeighborSampler(indptr, indices, [-1], degree=degree)
    needed = needed_per_layer(indptr, indices, seeds, model.num_layers)
    h, prev = x, None  # layer input; ``prev`` = the local ids of its rows (None: all of x)
    for i, targets in enumerate(needed):
        out = None
        for lo in range(0, targets.shape[0], chunk):
            sub = sampler.sample(targets[lo:lo + chunk], seed=0)  # takes every neighbour: no RNG
            ids = sub.node_ids.numpy()
            rows = h[ids] if prev is None else h[np.searchsorted(prev, ids)]
            # float16 / bfloat16 shards are cast per chunk: the model computes in float32
            y = model.layer(i, torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32)).to(device),
                            sub.to(device))
            if out is None:
                out = np.empty((targets.shape[0], y.shape[1]), dtype=np.float32)
            out[lo:lo + y.shape[0]] = y.float().cpu().numpy()
        h, prev = out, targets
    return needed[-1], torch.from_numpy(h)
