"""Balance with sparse labels (issue 10): which way of balancing three quantities is best.

    PYTHONPATH=. python benchmarks/balance_bench.py [--nodes 100000] [--parts 8 32]
                                                    [--train 0.01 0.6]

On the built-in synthetic graph (Pareto, i.e. power-law, degrees) with the given train
fractions, every method partitions the same CSR into P parts, each in its own process
(wall time of the partitioning call; peak RSS of the process from ``os.wait4``, which
includes the loaded CSR, printed beside the RSS before the call):

- ``plain``: METIS k-way, unit weights: the baseline for the cut, measured in this run;
- ``combined``: one combined weight per node, 1 + 16·N/T·train + 16·N/D·degree (what
  giantgcn did before issue 10), METIS alone;
- ``plain+refine`` / ``combined+refine``: those followed by
  ``partition.graph.refine.rebalance`` (no part over mean·1.05 in inner nodes, edges, train nodes);
- ``multi``: METIS's multi-constraint mode, three constraints (``metis_kway``);
- ``multi+refine``: ``partition_nodes("metis", ...)``, what giantgcn-partition runs;
- ``contract+refine``: the same on the graph contracted to N/16 clusters first
  (``partition.graph.coarsen``, what runs when METIS on every node would not fit).

Prints one row per method × graph × P: the three max/mean imbalances, the edge cut and
its ratio to ``plain``'s, seconds, peak RSS. Writes ``benchmarks/out/balance_bench.json``.
The issue's target: every imbalance ≤ 1.10 and cut ≤ 1.15 × plain.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "out"
METHODS = ("plain", "combined", "plain+refine", "combined+refine", "multi", "multi+refine",
           "contract+refine")


def build_graph(nodes: int, train: float) -> Path:
    """The cached CSR and train mask of ``synthetic:nodes=N,train=T`` as .npy files."""
    from partition.graph.csr import build_csr
    from partition.readers.source_graph import split_mask
    from partition.readers.synthetic import make_synthetic, parse_synthetic_spec

    d = OUT / f"balance-{nodes}-{train:g}"
    if (d / "train.npy").is_file():
        return d
    d.mkdir(parents=True, exist_ok=True)
    g = make_synthetic(parse_synthetic_spec(f"nodes={nodes},train={train},features=1"))
    csr = build_csr(g.num_nodes, g.edge_chunks)
    np.save(d / "indptr.npy", csr.indptr)
    np.save(d / "indices.npy", csr.indices)
    np.save(d / "train.npy", split_mask(g.num_nodes, g.train_idx))
    return d


def _combined_weight(w: np.ndarray) -> np.ndarray:
    """int64 [N, 1]: the pre-issue-10 weight; train and edge terms each total 16·N."""
    n, total = w.shape[0], w.sum(axis=0)
    combined = np.ones(n, dtype=np.int64)
    if total[2]:
        combined += np.int64(round(16 * n / total[2])) * w[:, 2]
    if total[1]:
        combined += np.rint(w[:, 1] * (16 * n / total[1])).astype(np.int64)
    return combined[:, None]


def child(graph_dir: str, num_parts: int, method: str) -> dict:
    """Run one method in this process; the stats as a dict (printed as JSON)."""
    from partition.graph.csr import CSR
    from partition.graph.metis import metis_kway
    from partition.graph.partitioners import balance_weights, partition_nodes, partition_stats
    from partition.graph.refine import rebalance

    d = Path(graph_dir)
    csr = CSR(np.load(d / "indptr.npy"), np.load(d / "indices.npy"))
    train = np.load(d / "train.npy")
    with open("/proc/self/statm") as f:
        before_mib = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    t0 = time.perf_counter()
    w = balance_weights(csr, train)
    if method == "multi+refine":
        parts = partition_nodes("metis", csr, num_parts, train, seed=0)
    elif method == "contract+refine":
        parts = partition_nodes("metis", csr, num_parts, train, seed=0, max_nodes=csr.num_nodes // 16)
    else:
        base = method.split("+")[0]
        cols = {"plain": w[:, :0], "combined": _combined_weight(w), "multi": w}[base]
        parts = metis_kway(csr, num_parts, cols, seed=0)
        if method.endswith("+refine"):
            parts = rebalance(csr, parts, w, num_parts)
    seconds = time.perf_counter() - t0
    stats = partition_stats(csr, parts, train, num_parts)
    stats.pop("parts")
    return {**stats, "seconds": seconds, "rss_before_mib": before_mib}


def run_child(graph_dir: Path, num_parts: int, method: str) -> dict:
    """``child`` in a fresh process; adds its peak RSS (MiB) from wait4."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(graph_dir), str(num_parts),
                             method], stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)})
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"balance_bench: {method} at P={num_parts} failed (status {status})")
    return {**json.loads(out.decode().strip().splitlines()[-1]), "peak_rss_mib": usage.ru_maxrss / 1024}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=100_000)
    ap.add_argument("--parts", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--train", type=float, nargs="+", default=[0.01, 0.6])
    ap.add_argument("--child", nargs=3, metavar=("DIR", "P", "METHOD"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.child[2])))
        return 0
    sys.path.insert(0, str(REPO))
    rows = []
    head = (f"{'graph':<16} {'P':>3} {'method':<16} {'nodes':>6} {'edges':>6} {'train':>6} "
            f"{'cut':>8} {'cut/plain':>9} {'time s':>7} {'peak RSS MiB':>12}")
    print(head)
    for train in args.train:
        graph_dir = build_graph(args.nodes, train)
        run_child(graph_dir, 2, "multi+refine")  # warm numba's on-disk cache
        for num_parts in args.parts:
            plain_cut = None
            for method in METHODS:
                r = {"graph": f"{args.nodes:.0e} train {train:g}", "parts": num_parts,
                     "method": method, **run_child(graph_dir, num_parts, method)}
                plain_cut = plain_cut or r["edge_cut"]
                r["cut_vs_plain"] = r["edge_cut"] / plain_cut
                rows.append(r)
                print(f"{r['graph']:<16} {num_parts:>3} {method:<16} {r['node_imbalance']:>6.3f} "
                      f"{r['edge_imbalance']:>6.3f} {r['train_imbalance']:>6.3f} "
                      f"{r['edge_cut_ratio']:>8.4f} {r['cut_vs_plain']:>9.3f} {r['seconds']:>7.2f} "
                      f"{r['peak_rss_mib']:>7.0f} ({r['rss_before_mib']:.0f})", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "balance_bench.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
