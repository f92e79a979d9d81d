"""One training step's forward + backward: PyG ``GCNConv`` message passing vs the fused CSR path.

    PYTHONPATH=. python benchmarks/step_bench.py [--steps 20] [--repeat 3]

Same batches (default synthetic graph, fanouts [15, 10], batch 1024, hidden 128, one
thread), same parameters: "PyG propagate" is what ``dist_train.model.models`` ran before
(``GCNConv(x, edge_index + self loops, weight)``: gather [E, F], multiply, scatter, and
back), "fused" is ``csr_aggregate`` in the cheaper order plus the fused ReLU+dropout.
Rounds are interleaved and the best kept. Writes ``benchmarks/out/step_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dist_train.model.models import GNN
from dist_train.sampling.prefetch import Batch, make_batch
from dist_train.sampling.sampler import NeighborSampler, SampledSubgraph
from partition.graph.csr import build_csr
from partition.readers.synthetic import SyntheticSpec, make_synthetic

OUT = Path(__file__).resolve().parent / "out" / "step_bench.json"


class PygPropagateGNN(GNN):
    """The previous forward: PyG's propagate with explicit self-loop edges, F.dropout."""

    def forward(self, x: torch.Tensor, sub: SampledSubgraph) -> torch.Tensor:
        L, ends = self.num_layers, np.cumsum(sub.num_sampled_nodes).tolist()
        edge_ends = np.cumsum(sub.num_sampled_edges).tolist()
        for i, conv in enumerate(self.convs):
            n_src, n_dst, n_edge = ends[L - i], ends[L - 1 - i], edge_ends[L - 1 - i]
            loops = torch.arange(n_dst).expand(2, n_dst)
            edge_index = torch.cat([sub.edge_index[:, :n_edge], loops], dim=1)
            weight = torch.cat([sub.edge_weight[:n_edge], 1.0 / (sub.degree[:n_dst] + 1.0)])
            x = conv(x[:n_src], edge_index, weight)[:n_dst]
            if i < L - 1:
                x = F.dropout(F.relu(x), p=self.dropout, training=self.training)
        return x[: sub.num_seeds]


def step_ms(model: GNN, batches: list[Batch]) -> float:
    model.train()
    t0 = time.perf_counter()
    for b in batches:
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(b.x, b.subgraph), b.y).backward()
    return (time.perf_counter() - t0) / len(batches) * 1e3


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    g = make_synthetic(SyntheticSpec())
    csr = build_csr(g.num_nodes, g.edge_chunks)
    sampler = NeighborSampler(csr.indptr, csr.indices, [15, 10], degree=csr.degree())
    rng = np.random.default_rng(0)
    batches = [make_batch(sampler, g.x, g.y, rng.choice(g.train_idx, 1024, replace=False), i,
                          torch.device("cpu")) for i in range(args.steps)]
    models = {"PyG propagate (before)": PygPropagateGNN("gcn", g.num_features, 128, g.num_classes, 2, 0.5),
              "fused CSR (now)": GNN("gcn", g.num_features, 128, g.num_classes, 2, 0.5)}
    models["fused CSR (now)"].load_state_dict(models["PyG propagate (before)"].state_dict())
    for m in models.values():
        step_ms(m, batches[:2])  # warm-up: numba cache, allocator
    best = {name: float("inf") for name in models}
    for _ in range(args.repeat):  # interleaved: a burst of load hits both alike
        for name, m in models.items():
            best[name] = min(best[name], step_ms(m, batches))
    sub = batches[0].subgraph
    print(f"batch: {sub.num_nodes:,} nodes, {sub.num_sampled_edges_total:,} edges; 1 thread; best of "
          f"{args.repeat} interleaved rounds of {args.steps} steps; load avg {os.getloadavg()[0]:.1f}")
    base = best["PyG propagate (before)"]
    for name, ms in best.items():
        print(f"{name:<26}{ms:9.1f} ms/step{base / ms:8.1f}x")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"ms_per_step": best, "nodes": sub.num_nodes,
                               "edges": sub.num_sampled_edges_total}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
