"""An ``npy:`` input directory made with numpy alone, not the project's generator (issue 12).

    PYTHONPATH=. python benchmarks/npy_powerlaw.py DIR [--nodes 1e6] [--edges 1e7] [--features 128]

What a user brings: ``edge_index.npy`` (2, E) int64 with power-law sources (Pareto 1.5
weights) and uniform targets, listed as drawn (duplicates, self loops, one direction),
``x.npy`` float32 (written in blocks through ``open_memmap``), ``y.npy`` 10 classes,
10/10/20% train/val/test index files. ``benchmarks/estimate_check.py --npy DIR`` compares
``--dry-run`` with real runs on it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--nodes", type=float, default=1e6)
    ap.add_argument("--edges", type=float, default=1e7)
    ap.add_argument("--features", type=int, default=128)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    n, e = int(a.nodes), int(a.edges)
    a.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    w = rng.pareto(1.5, n) + 1
    src = rng.choice(n, e, p=w / w.sum())
    np.save(a.out / "edge_index.npy", np.stack([src, rng.integers(0, n, e)]).astype(np.int64))
    x = np.lib.format.open_memmap(a.out / "x.npy", mode="w+", dtype=np.float32, shape=(n, a.features))
    for lo in range(0, n, 100_000):
        x[lo:lo + 100_000] = rng.standard_normal((min(100_000, n - lo), a.features), dtype=np.float32)
    x.flush()
    del x
    np.save(a.out / "y.npy", rng.integers(0, 10, n))
    perm = rng.permutation(n)
    for name, lo, hi in (("train", 0, n // 10), ("val", n // 10, n // 5), ("test", n // 5, 2 * n // 5)):
        np.save(a.out / f"{name}_idx.npy", np.sort(perm[lo:hi]))
    print(f"wrote {a.out}: {n:,} nodes, {e:,} edges, {a.features} float32 features")


if __name__ == "__main__":
    main()
