"""Evaluation in exact mode: every val/test node scored on its whole-graph neighbourhood.

A rank at ``--halo-hops 0`` holds no boundary rows beyond its cache, so the local
evaluation would cut every inner node's neighbourhood at the part border. Here the
eval batches go through the same exact sampler and row fetch as training
(:class:`~dist_train.sampling.exact_batches.ExactBatches` with ``sampler.eval_fanouts``),
so the logits are those of one part: accuracy no longer depends on the partition (issue
15). Ranks agree on the batch count first (one all-reduce) and a rank with fewer nodes
takes empty batches, because every batch is a set of all-to-alls.
"""

from __future__ import annotations

import numpy as np
import torch

from dist_train.data.shards import LocalGraph
from dist_train.loop.evaluate import TEST_TAG, VAL_TAG, EvalResult
from dist_train.runtime import process_group as pg
from dist_train.sampling.batches import eval_batches, mix_seed
from dist_train.sampling.exact_batches import ExactBatches


@torch.no_grad()
def _count(model: torch.nn.Module, maker: ExactBatches, idx: np.ndarray, batch_size: int,
           seed: int, tag: int, device: torch.device) -> tuple[int, int]:
    """(correct predictions, batches with non-finite logits) over this rank's nodes ``idx``."""
    batches = eval_batches(np.asarray(idx, dtype=np.int64), batch_size)
    steps = pg.all_reduce_max(len(batches))
    batches += [np.empty(0, dtype=np.int64)] * (steps - len(batches))
    correct = nonfinite = 0
    for i, seeds in enumerate(batches):
        batch = maker(seeds, mix_seed(seed, tag, i), device)
        if seeds.shape[0] == 0:
            continue
        logits = model(batch.x, batch.subgraph)
        nonfinite += int(not bool(torch.isfinite(logits).all()))
        correct += int((logits.argmax(dim=-1) == batch.y).sum())
    return correct, nonfinite


def exact_eval(model: torch.nn.Module, maker: ExactBatches, graph: LocalGraph, batch_size: int,
               seed: int, device: torch.device) -> EvalResult:
    """Val and test accuracy over every rank's inner nodes (``model``: the bare module)."""
    model.eval()
    cv, bad_v = _count(model, maker, graph.val_idx, batch_size, seed, VAL_TAG, device)
    ct, bad_t = _count(model, maker, graph.test_idx, batch_size, seed, TEST_TAG, device)
    totals = torch.tensor([cv, graph.val_idx.shape[0], ct, graph.test_idx.shape[0], bad_v + bad_t],
                          dtype=torch.float64)
    pg.all_reduce_sum(totals)
    cv, nv, ct, nt, nonfinite = totals.tolist()
    return EvalResult(val_acc=cv / nv if nv else float("nan"), test_acc=ct / nt if nt else float("nan"),
                      num_val=int(nv), num_test=int(nt), nonfinite_batches=int(nonfinite))
