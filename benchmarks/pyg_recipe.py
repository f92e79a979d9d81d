"""The single-process PyG baseline of ``train_bench.py``: NeighborLoader + GCNConv, as PyG's examples do.

Runs in its own process (``train_bench.py --pyg-worker``) so that its peak RSS and its
threads are its own. Same graph (``partition.readers.sources.read_source`` + ``build_csr``, so
the same undirected, deduplicated edges giantgcn partitions), same hyper-parameters.
Evaluation, outside the epoch clock, is done both ways PyG users do it: exact full-graph
inference over a sparse adjacency (PyG's GCN example) and NeighborLoader with the
training fanouts over the val/test nodes (the normalisation the model was trained
with: GCNConv normalises inside the sampled subgraph, so full-graph inference sees
other edge weights than training did). The reported test accuracy is at the best
validation epoch, as giantgcn-train reports it, of whichever way scores higher: the
baseline gets the benefit of the doubt.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HIDDEN, DROPOUT, LR, WEIGHT_DECAY, BATCH, FANOUTS, SEED = 128, 0.5, 0.01, 5e-4, 1024, [15, 10], 0


class PygGCN(nn.Module):
    def __init__(self, in_dim: int, num_classes: int) -> None:
        super().__init__()
        from torch_geometric.nn import GCNConv

        self.conv1, self.conv2 = GCNConv(in_dim, HIDDEN), GCNConv(HIDDEN, num_classes)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        x = F.dropout(F.relu(self.conv1(x, edge_index)), DROPOUT, self.training)
        return self.conv2(x, edge_index)


def load_data(spec: str, root: str | None):  # type: ignore[no-untyped-def]
    """A PyG ``Data`` of the source graph, plus its sparse adjacency for full-graph inference."""
    from torch_geometric.data import Data
    from torch_geometric.utils import to_torch_csr_tensor

    from partition.graph.csr import build_csr
    from partition.readers.sources import read_source

    g = read_source(spec, root)
    csr = build_csr(g.num_nodes, g.edge_chunks)
    target = np.repeat(np.arange(g.num_nodes, dtype=np.int64), np.diff(csr.indptr))
    edge_index = torch.stack([torch.from_numpy(np.asarray(csr.indices, np.int64)), torch.from_numpy(target)])
    data = Data(x=torch.from_numpy(np.ascontiguousarray(g.x, dtype=np.float32)),
                y=torch.from_numpy(np.asarray(g.y, np.int64)), edge_index=edge_index, num_nodes=g.num_nodes)
    adj_t = to_torch_csr_tensor(edge_index.flip(0), size=(g.num_nodes, g.num_nodes))
    splits = {k: torch.from_numpy(np.asarray(getattr(g, f"{k}_idx"), np.int64)) for k in ("train", "val", "test")}
    return data, adj_t, splits, g.num_classes


def loader_or_reason(data, train_idx: torch.Tensor):  # type: ignore[no-untyped-def]
    """A NeighborLoader, or why PyG cannot sample here (no pyg-lib, no torch-sparse)."""
    from torch_geometric.loader import NeighborLoader

    loader = NeighborLoader(data, num_neighbors=FANOUTS, batch_size=BATCH, input_nodes=train_idx,
                            shuffle=True)
    try:
        next(iter(loader))
    except ImportError as err:
        return None, str(err)
    return loader, ""


def train_epoch(model: nn.Module, opt: torch.optim.Optimizer, loader, max_steps: int | None) -> dict:  # type: ignore[no-untyped-def]
    model.train()
    split = {"loader": 0.0, "forward_backward": 0.0, "optimizer": 0.0}
    it = iter(loader)
    for _ in range(max_steps or len(loader)):
        t0 = time.perf_counter()
        batch = next(it, None)
        t1 = time.perf_counter()
        split["loader"] += t1 - t0
        if batch is None:
            break
        opt.zero_grad()
        out = model(batch.x, batch.edge_index)[: batch.batch_size]
        F.cross_entropy(out, batch.y[: batch.batch_size]).backward()
        t2 = time.perf_counter()
        opt.step()
        split["forward_backward"] += t2 - t1
        split["optimizer"] += time.perf_counter() - t2
    return split


@torch.no_grad()
def evaluate_full(model: nn.Module, data, adj_t, splits: dict) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    model.eval()
    pred = model(data.x, adj_t).argmax(dim=-1)
    return tuple(float((pred[splits[k]] == data.y[splits[k]]).float().mean()) for k in ("val", "test"))  # type: ignore[return-value]


@torch.no_grad()
def evaluate_sampled(model: nn.Module, loaders: dict) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    model.eval()
    acc = []
    for k in ("val", "test"):
        correct = total = 0
        for batch in loaders[k]:
            pred = model(batch.x, batch.edge_index)[: batch.batch_size].argmax(dim=-1)
            correct += int((pred == batch.y[: batch.batch_size]).sum())
            total += batch.batch_size
        acc.append(correct / max(total, 1))
    return acc[0], acc[1]


def pyg_worker(spec: str, root: str | None, epochs: int, max_steps: int | None, out: Path) -> int:
    warnings.filterwarnings("ignore", message=".*(sparse|pyg-lib).*")  # beta notices, once per call
    torch.manual_seed(SEED)
    data, adj_t, splits, num_classes = load_data(spec, root)
    loader, reason = loader_or_reason(data, splits["train"])
    if loader is None:
        out.write_text(json.dumps({"unavailable": reason}))
        print(f"PyG recipe unavailable: {reason}")
        return 0
    from torch_geometric.loader import NeighborLoader

    eval_loaders = {k: NeighborLoader(data, num_neighbors=FANOUTS, batch_size=4096, input_nodes=splits[k])
                    for k in ("val", "test")}
    model = PygGCN(data.num_features, num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    epoch_s, splits_s = [], []
    best = {"full-graph": (-1.0, 0.0), "sampled": (-1.0, 0.0)}
    for epoch in range(epochs):
        t0 = time.perf_counter()
        splits_s.append(train_epoch(model, opt, loader, max_steps))
        epoch_s.append(time.perf_counter() - t0)
        got = {"full-graph": evaluate_full(model, data, adj_t, splits),
               "sampled": evaluate_sampled(model, eval_loaders)}
        best = {k: max(best[k], got[k], key=lambda b: b[0]) for k in best}
        print(f"  PyG epoch {epoch}: {epoch_s[-1]:.2f} s, val/test " + ", ".join(
            f"{k} {v:.4f}/{t:.4f}" for k, (v, t) in got.items()), flush=True)
    way = max(best, key=lambda k: best[k][1])
    out.write_text(json.dumps({"epoch_s": epoch_s, "splits": splits_s, "val_acc": best[way][0],
                               "test_acc": best[way][1], "eval": way, "by_eval": best,
                               "threads": torch.get_num_threads()}))
    return 0
