"""Is the synthetic default graph a fair test? GCN vs MLP accuracy and METIS separability.

A partitioner can only cost accuracy if the graph matters: a 2-layer GCN must clearly
beat an MLP on the features alone, and neither may reach 100%. METIS must find real
communities: its 8-way edge cut should be far below a random partition's (~87.5%).

    PYTHONPATH=. python benchmarks/synthetic_check.py [--input synthetic:seed=1] [--epochs 200]

Prints generation time, graph statistics, both accuracies (test at best validation
epoch, full batch, Adam lr 0.01) and the METIS / random cut ratio; writes
``benchmarks/out/synthetic_check.json``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pymetis
import torch
import torch.nn.functional as F
from torch_geometric.nn import GCNConv

from partition.readers.sources import read_source

OUT = Path(__file__).resolve().parent / "out" / "synthetic_check.json"


def undirected_csr(num_nodes: int, edge_chunks) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric, deduplicated, loop-free CSR (a stand-in for partition.graph.csr.build_csr)."""
    keys = []
    for src, dst in edge_chunks():
        keep = src != dst
        src, dst = src[keep], dst[keep]
        keys.append(np.concatenate((src * num_nodes + dst, dst * num_nodes + src)))
    key = np.unique(np.concatenate(keys))
    indptr = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(key // num_nodes, minlength=num_nodes), out=indptr[1:])
    return indptr, key % num_nodes


def graph_stats(indptr: np.ndarray, indices: np.ndarray, y: np.ndarray) -> dict:
    deg = np.diff(indptr)
    src = np.repeat(np.arange(deg.shape[0]), deg)
    return {"directed_edges": int(indices.shape[0]), "mean_degree": float(deg.mean()),
            "max_degree": int(deg.max()), "median_degree": float(np.median(deg)),
            "isolated": int((deg == 0).sum()),
            "edge_homophily": float((y[src] == y[indices]).mean())}


def cut_ratio(indptr: np.ndarray, indices: np.ndarray, parts: int) -> dict:
    t0 = time.perf_counter()
    _, member = pymetis.part_graph(parts, pymetis.CSRAdjacency(indptr, indices),
                                   options=pymetis.Options(seed=0), recursive=False)
    metis_s = time.perf_counter() - t0
    src = np.repeat(np.arange(indptr.shape[0] - 1), np.diff(indptr))

    def cut(m: np.ndarray) -> float:
        return float((m[src] != m[indices]).mean())

    metis = cut(np.asarray(member))
    rand = cut(np.random.default_rng(0).integers(0, parts, indptr.shape[0] - 1))
    return {"parts": parts, "metis_cut": metis, "random_cut": rand,
            "ratio": metis / rand, "metis_s": metis_s}


class GCN(torch.nn.Module):
    def __init__(self, i: int, h: int, o: int) -> None:
        super().__init__()
        self.c1, self.c2 = GCNConv(i, h, cached=True), GCNConv(h, o, cached=True)

    def forward(self, x, ei):
        x = F.dropout(F.relu(self.c1(x, ei)), 0.5, self.training)
        return self.c2(x, ei)


class MLP(torch.nn.Module):
    def __init__(self, i: int, h: int, o: int) -> None:
        super().__init__()
        self.l1, self.l2 = torch.nn.Linear(i, h), torch.nn.Linear(h, o)

    def forward(self, x, ei):
        return self.l2(F.dropout(F.relu(self.l1(x)), 0.5, self.training))


def train(model, x, ei, y, splits, epochs: int) -> dict:
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    best_val, best_test, t0 = -1.0, 0.0, time.perf_counter()
    for _ in range(epochs):
        model.train()
        opt.zero_grad()
        F.cross_entropy(model(x, ei)[splits[0]], y[splits[0]]).backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            pred = model(x, ei).argmax(1)
        val, test = ((pred[s] == y[s]).float().mean().item() for s in splits[1:])
        if val > best_val:
            best_val, best_test = val, test
    return {"val": best_val, "test": best_test, "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", default="synthetic")
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--parts", type=int, default=8)
    args = ap.parse_args()
    torch.manual_seed(0)
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
    t0 = time.perf_counter()
    g = read_source(args.input)
    indptr, indices = undirected_csr(g.num_nodes, g.edge_chunks)
    report = {"input": args.input, "build_s": time.perf_counter() - t0,
              **graph_stats(indptr, indices, g.y), **cut_ratio(indptr, indices, args.parts)}
    print(json.dumps(report, indent=1), flush=True)
    # A sparse CSR adjacency makes GCNConv use one spmm instead of an [E, hidden] gather.
    ei = torch.sparse_csr_tensor(torch.from_numpy(indptr), torch.from_numpy(indices),
                                 torch.ones(indices.shape[0]), (g.num_nodes, g.num_nodes),
                                 check_invariants=False)
    x, y = torch.from_numpy(np.asarray(g.x)), torch.from_numpy(g.y)
    splits = [torch.from_numpy(s) for s in (g.train_idx, g.val_idx, g.test_idx)]
    for name, cls in (("mlp", MLP), ("gcn", GCN)):
        report[name] = train(cls(x.shape[1], args.hidden, g.num_classes), x, ei, y, splits, args.epochs)
        print(name, json.dumps(report[name]), flush=True)
    report["gcn_minus_mlp"] = report["gcn"]["test"] - report["mlp"]["test"]
    print(f"test accuracy: GCN {report['gcn']['test']:.3f}  MLP {report['mlp']['test']:.3f}  "
          f"METIS/random cut {report['ratio']:.3f}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
