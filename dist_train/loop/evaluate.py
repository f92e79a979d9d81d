"""Distributed evaluation: each rank scores its own inner val/test nodes; counts are summed.

With every neighbour (the default ``eval_fanouts``) and a model that allows it, the
logits are exact: layer by layer across ranks, boundary rows fetched from their owners
(``dist_train.predict.exact``, issue 11), so val/test accuracy no longer depends on the
halo depth and equals ``giantgcn-predict``'s. Without the rank's stored parts (a graph
built by hand) the layers run over the local graph only (``dist_train.model.layerwise``);
otherwise from sampled batches.

Accuracy is reduced over ranks, never printed per rank (ANCHORS: evaluation "printed per
rank, not reduced"), and no node is dropped: the last batch may be short
(:func:`dist_train.sampling.batches.eval_batches`), unlike test loaders with ``drop_last=True``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dist_train.data.shards import LocalGraph
from dist_train.model.layerwise import layerwise_logits
from dist_train.predict.exact import RankParts, exact_layers
from dist_train.runtime import process_group as pg
from dist_train.sampling.batches import eval_batches, mix_seed
from dist_train.sampling.prefetch import Prefetcher
from dist_train.sampling.sampler import NeighborSampler

VAL_TAG, TEST_TAG = 1, 2
"""Distinct seed streams for the val and test batches' sampling."""


@dataclass(frozen=True)
class EvalResult:
    """Accuracies over every rank's nodes, and how many batches gave non-finite logits."""

    val_acc: float
    test_acc: float
    num_val: int
    num_test: int
    nonfinite_batches: int

    def record(self) -> dict[str, float | None]:
        """The metrics line's figures; a split without nodes has no accuracy (None, not NaN)."""
        return {"val_acc": self.val_acc if self.num_val else None,
                "test_acc": self.test_acc if self.num_test else None,
                "num_val": self.num_val, "num_test": self.num_test}


@torch.no_grad()
def _count_correct(model: torch.nn.Module, sampler: NeighborSampler, graph: LocalGraph,
                   idx: np.ndarray, batch_size: int, seed: int, tag: int,
                   device: torch.device) -> tuple[int, int]:
    """(correct predictions, batches with non-finite logits) over the local nodes ``idx``."""
    batches = eval_batches(idx, batch_size)
    seeds = [mix_seed(seed, tag, i) for i in range(len(batches))]
    correct = nonfinite = 0
    # One batch ahead, not sampler.prefetch: full-neighbourhood eval batches are 10-50x
    # a training batch, and a deep queue of them set the rank's peak memory.
    with Prefetcher(sampler, graph.x, graph.y, batches, seeds, device, depth=1) as it:
        for batch in it:
            logits = model(batch.x, batch.subgraph)
            nonfinite += int(not bool(torch.isfinite(logits).all()))
            correct += int((logits.argmax(dim=-1) == batch.y).sum())
    return correct, nonfinite


def _count_correct_layerwise(model: torch.nn.Module, graph: LocalGraph, splits: list[np.ndarray],
                             chunk: int, device: torch.device) -> tuple[list[int], int]:
    """(correct predictions per split, 1 if any logit is non-finite) in one layer-wise pass."""
    seeds = np.concatenate([np.asarray(s, dtype=np.int64) for s in splits])
    if seeds.shape[0] == 0:
        return [0] * len(splits), 0
    order, logits = layerwise_logits(model, graph.x, graph.indptr, graph.indices, graph.degree,
                                     seeds, chunk, device)
    pred = logits.argmax(dim=-1).numpy()
    y = np.asarray(graph.y)
    correct = [int((pred[np.searchsorted(order, s)] == y[s]).sum()) for s in splits]
    return correct, int(not bool(torch.isfinite(logits).all()))


def _count_correct_exact(model: torch.nn.Module, shard: RankParts, chunk: int,
                         device: torch.device) -> tuple[list[int], int]:
    """(correct val and test predictions, 1 if any logit is non-finite) from exact logits of
    every own node (``dist_train.predict.exact``: collectives, so every rank must call it)."""
    from dist_train.exchange import Exchange

    own, outs, _ = exact_layers(model, shard, Exchange(device=device), chunk, device)
    pred = outs[-1].argmax(axis=1)
    correct = [0, 0]
    for part, pos in zip(shard.parts, own.part_pos, strict=True):
        for i, name in enumerate(("val_idx", "test_idx")):
            idx = np.asarray(getattr(part, name))
            correct[i] += int((pred[pos[idx]] == np.asarray(part.y)[idx]).sum())
    return correct, int(not bool(np.isfinite(outs[-1]).all()))


def distributed_eval(model: torch.nn.Module, sampler: NeighborSampler | None, graph: LocalGraph,
             batch_size: int, seed: int, device: torch.device,
             exact: RankParts | None = None) -> EvalResult:
    """Score val and test on every rank, then one all-reduce of five numbers.

    ``model`` is the bare module, not its DDP wrapper: DDP's forward would add a
    collective per batch, and ranks have different numbers of eval batches. ``exact``:
    the rank's stored parts, for exact full-neighbourhood logits across ranks; with it a
    layer-wise model needs no ``sampler`` (None) and ``graph`` only counts val/test nodes.
    ValueError: no ``sampler`` where one is needed.
    """
    model.eval()
    layerwise = getattr(model, "layerwise_exact", False)
    if sampler is None and not (exact is not None and layerwise):
        raise ValueError("distributed_eval: a sampler is needed unless exact parts and a layer-wise model are given")
    # a user's model without ``layerwise_exact`` is scored on sampled batches (model/custom.py)
    full = layerwise and (sampler is None or all(f == -1 for f in sampler.fanouts))
    if full and exact is not None:
        (cv, ct), nonfinite = _count_correct_exact(model, exact, batch_size, device)
    elif full:
        (cv, ct), nonfinite = _count_correct_layerwise(model, graph, [graph.val_idx, graph.test_idx],
                                                       batch_size, device)
    else:
        cv, bad_v = _count_correct(model, sampler, graph, graph.val_idx, batch_size, seed, VAL_TAG, device)
        ct, bad_t = _count_correct(model, sampler, graph, graph.test_idx, batch_size, seed, TEST_TAG, device)
        nonfinite = bad_v + bad_t
    totals = torch.tensor([cv, graph.val_idx.shape[0], ct, graph.test_idx.shape[0], nonfinite],
                          dtype=torch.float64)
    pg.all_reduce_sum(totals)
    cv, nv, ct, nt, nonfinite = totals.tolist()
    return EvalResult(val_acc=cv / nv if nv else float("nan"), test_acc=ct / nt if nt else float("nan"),
                      num_val=int(nv), num_test=int(nt), nonfinite_batches=int(nonfinite))


def count_split_nodes(graph: LocalGraph) -> tuple[int, int]:
    """(val nodes, test nodes) over every rank: one all-reduce."""
    counts = torch.tensor([graph.val_idx.shape[0], graph.test_idx.shape[0]], dtype=torch.float64)
    pg.all_reduce_sum(counts)
    return int(counts[0]), int(counts[1])


def no_validation_line(patience: int | None) -> str:
    """What a run on a graph without val nodes says at start-up (issue 16: no made-up figures)."""
    off = (f"; early stopping is off (train.early_stopping_patience={patience} ignored)"
           if patience is not None else "")
    return ("the dataset has no validation nodes: nothing to validate on; no best epoch is chosen "
            f"and the final model is the last epoch's{off}")
