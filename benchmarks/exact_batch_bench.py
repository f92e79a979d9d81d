"""Cost of one exact-mode batch against the local sampler's, no communication (issue 15).

Partitions a synthetic graph into one part, then times per batch (``--seeds`` seeds,
``--fanouts``): the local sampler plus its feature gather (the baseline, ``local``),
and exact mode's sampler and row fetch over an identity exchange (one rank, so every
all-to-all is a copy): what the prefetch thread pays per batch apart from the network.

    PYTHONPATH=. python benchmarks/exact_batch_bench.py [--nodes 100000] [--batches 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _timed(fn, batches: int) -> float:
    fn(0)  # compile / warm caches
    times = []
    for b in range(1, batches + 1):
        t0 = time.perf_counter()
        fn(b)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=100_000)
    ap.add_argument("--seeds", type=int, default=1024)
    ap.add_argument("--fanouts", type=int, nargs="+", default=[15, 10])
    ap.add_argument("--batches", type=int, default=20)
    args = ap.parse_args()

    from dist_train.data.exact_graph import load_exact_graph
    from dist_train.sampling.exact import ExactSampler, OwnedGraph
    from dist_train.sampling.fetch import RowStore, fetch_rows
    from dist_train.sampling.prefetch import gather_rows
    from dist_train.sampling.sampler import NeighborSampler
    from partition.cli import main as partition

    with tempfile.TemporaryDirectory() as tmp:
        ds = Path(tmp) / "ds"
        assert partition(["--input", f"synthetic:nodes={args.nodes}", "--num-parts", "1",
                          "--out", str(ds), "--quiet"]) == 0
        g = load_exact_graph(str(ds), [0], 0, [[0]])
        rng = np.random.default_rng(0)
        seed_sets = [rng.choice(g.num_inner, args.seeds, replace=False) for _ in range(args.batches + 1)]
        local = NeighborSampler(g.indptr, g.indices, args.fanouts, degree=g.degree,
                                global_ids=g.global_ids)

        def local_batch(b: int) -> None:
            sub = local.sample(seed_sets[b], b)
            gather_rows(g.x, sub.node_ids.numpy(), pin=False)

        owned = OwnedGraph(rank=0, global_ids=np.asarray(g.global_ids), num_inner=g.num_inner,
                           indptr=np.asarray(g.indptr), indices=np.asarray(g.indices),
                           degree=np.asarray(g.degree), owner=g.owner)
        exact = ExactSampler(owned, lambda send: list(send), 1, args.fanouts)
        store = RowStore(0, owned.global_ids, g.num_inner, int(g.x.shape[0]), g.x)
        split = {"sample": [], "fetch": []}

        def exact_batch(b: int) -> None:
            t0 = time.perf_counter()
            sub, owner = exact.sample(seed_sets[b], b)
            t1 = time.perf_counter()
            fetch_rows(store, lambda send: list(send), 1, sub.node_ids.numpy(), owner)
            split["sample"].append(t1 - t0)
            split["fetch"].append(time.perf_counter() - t1)

        t_local = _timed(local_batch, args.batches)
        t_exact = _timed(exact_batch, args.batches)
    print(f"synthetic: {args.nodes:,} nodes, 1 part; {args.seeds} seeds, fanouts {args.fanouts}; "
          f"median of {args.batches} batches")
    print(f"{'sampler':<28}{'ms/batch':>10}{'vs local':>10}")
    print(f"{'local (baseline)':<28}{t_local:>10.1f}{1.0:>9.2f}x")
    print(f"{'exact, identity exchange':<28}{t_exact:>10.1f}{t_exact / t_local:>9.2f}x")
    for k, v in split.items():
        print(f"{'  of which ' + k:<28}{statistics.median(v[1:]) * 1e3:>10.1f}")


if __name__ == "__main__":
    main()
