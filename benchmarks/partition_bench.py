"""Whole ``giantgcn-partition`` run vs ``pymetis.part_graph`` alone, on 10^6 nodes / 10^7 edges.

    PYTHONPATH=. python benchmarks/partition_bench.py [--parts 4] [--nodes 1000000] [--repeat 3]

The graph is the built-in synthetic one (``partition.readers.synthetic``), saved once as an
``npy:`` source directory plus its CSR under ``benchmarks/out/`` and reused. Then, each
in its own process (wall time and peak RSS from ``os.wait4``):

(a) ``python -m partition --input npy:... --num-parts P --method metis`` (the whole
    run: read, CSR, METIS + refinement, halo, write with checksums), after a tiny
    warm-up run so that numba's on-disk cache is compiled;
(b) ``pymetis.part_graph(P, CSRAdjacency(indptr, indices), recursive=False)`` on the
    same CSR loaded from .npy, no vertex weights;
(c) the whole run again with ``--metis-max-edges E`` (``--sampled-max-edges``, default
    half the edges; 0 skips it): METIS on a uniform edge sample, a quality trade the
    user chooses, shown with its edge cut so the two can be weighed.

Both run ``--repeat`` times, interleaved, and the fastest of each is compared (this
machine's 2 cores are shared, so single timings swing by ±30%). Prints a table and
writes ``benchmarks/out/partition_bench.json``. Target: (a) ≤ 1.5× (b).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "out"
DEGREE = 20.5
"""Target mean degree of the synthetic spec; gives ~10^7 undirected edges at 10^6 nodes."""

PYMETIS_ALONE = """
import sys, time, json, numpy as np, pymetis
d, parts = sys.argv[1], int(sys.argv[2])
indptr, indices = np.load(d + "/csr_indptr.npy"), np.load(d + "/csr_indices.npy")
t = time.perf_counter()
r = pymetis.part_graph(parts, pymetis.CSRAdjacency(indptr, indices), recursive=False,
                       options=pymetis.Options(seed=0))
print(json.dumps({"metis_call_s": time.perf_counter() - t, "edge_cuts": r.edge_cuts}))
"""


def build_graph(nodes: int) -> Path:
    """The cached npy source directory (and CSR) for ``nodes`` nodes."""
    d = OUT / f"graph-{nodes}"
    if (d / "csr_indices.npy").is_file():
        return d
    sys.path.insert(0, str(REPO))
    from partition.graph.csr import build_csr
    from partition.readers.synthetic import SyntheticSpec, make_synthetic

    t = time.perf_counter()
    g = make_synthetic(SyntheticSpec(nodes=nodes, degree=DEGREE))
    tmp = d.with_name(d.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    src, dst = zip(*g.edge_chunks(), strict=True)
    np.save(tmp / "edge_index.npy", np.stack((np.concatenate(src), np.concatenate(dst))))
    for name in ("x", "y", "train_idx", "val_idx", "test_idx"):
        np.save(tmp / f"{name}.npy", getattr(g, name))
    csr = build_csr(g.num_nodes, g.edge_chunks)
    np.save(tmp / "csr_indptr.npy", csr.indptr)
    np.save(tmp / "csr_indices.npy", csr.indices)
    tmp.rename(d)
    print(f"built {d} in {time.perf_counter() - t:.1f} s: {csr.num_nodes:,} nodes, "
          f"{csr.num_edges:,} undirected edges")
    return d


def run_measured(argv: list[str]) -> dict:
    """Run a process; its wall time, peak RSS, exit status and stdout."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    t = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    stdout = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed with exit status {proc.returncode}")
    return {"wall_s": wall, "peak_rss_gib": usage.ru_maxrss / 2**20, "stdout": stdout}


def best_of(runs: list[dict]) -> dict:
    """The fastest of repeated runs, with every run's wall time (the machine is shared)."""
    best = min(runs, key=lambda r: r["wall_s"])
    return best | {"all_wall_s": [round(r["wall_s"], 2) for r in runs]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=1_000_000)
    ap.add_argument("--parts", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each, interleaved; best kept")
    ap.add_argument("--sampled-max-edges", type=float, default=-1,
                    help="also run with --metis-max-edges E (default: half the edges; 0: skip)")
    args = ap.parse_args()
    graph = build_graph(args.nodes)
    data = OUT / f"bench-ds-{args.parts}"
    cli = [sys.executable, "-m", "partition", "--quiet", "--force"]
    run_measured(cli + ["--input", "synthetic:nodes=2000", "--out", str(OUT / "bench-warmup")])
    sampled_edges = args.sampled_max_edges
    if sampled_edges < 0:
        sampled_edges = int(np.load(graph / "csr_indices.npy", mmap_mode="r").shape[0]) // 4
    part_cmd = cli + ["--input", f"npy:{graph}", "--num-parts", str(args.parts), "--method", "metis"]
    wholes, alones, sampled = [], [], []
    for _ in range(args.repeat):
        wholes.append(run_measured(part_cmd + ["--out", str(data)]))
        wholes[-1]["stages_s"] = json.loads((data / "manifest.json").read_text())["timings_s"]
        alones.append(run_measured([sys.executable, "-c", PYMETIS_ALONE, str(graph), str(args.parts)]))
        alones[-1] |= json.loads(alones[-1].pop("stdout").strip().splitlines()[-1])
        if sampled_edges:
            out = OUT / f"bench-ds-{args.parts}-sampled"
            sampled.append(run_measured(part_cmd + ["--out", str(out), "--metis-max-edges",
                                                    str(int(sampled_edges))]))
            m = json.loads((out / "manifest.json").read_text())
            sampled[-1] |= {"stages_s": m["timings_s"], "edge_cut_ratio": m["edge_cut_ratio"]}
            shutil.rmtree(out, ignore_errors=True)
    whole, alone = best_of(wholes), best_of(alones)
    whole.pop("stdout")
    manifest = json.loads((data / "manifest.json").read_text())
    result = {
        "graph": {"nodes": manifest["num_nodes"], "undirected_edges": manifest["num_edges"],
                  "features": manifest["num_features"], "parts": args.parts},
        "whole_run": whole | {"edge_cut_ratio": manifest["edge_cut_ratio"],
                              "train_imbalance": manifest["train_imbalance"],
                              "edge_imbalance": manifest["edge_imbalance"]},
        "pymetis_alone": alone | {"edge_cut_ratio": alone["edge_cuts"] / manifest["num_edges"]},
        "ratio_wall": whole["wall_s"] / alone["wall_s"],
        "ratio_rss": whole["peak_rss_gib"] / alone["peak_rss_gib"],
        "load_avg_end": os.getloadavg()[0],
    }
    if sampled:
        best = best_of(sampled)
        best.pop("stdout")
        result["sampled_metis"] = best | {"metis_max_edges": int(sampled_edges),
                                          "ratio_wall": best["wall_s"] / alone["wall_s"]}
    (OUT / "partition_bench.json").write_text(json.dumps(result, indent=1) + "\n")
    for d in (data, OUT / "bench-warmup"):  # ~1 GB of shards; the source graph stays cached
        shutil.rmtree(d, ignore_errors=True)
    print(f"graph: {manifest['num_nodes']:,} nodes, {manifest['num_edges']:,} undirected edges, "
          f"{args.parts} parts; best of {args.repeat} runs each")
    print(f"{'':40}{'wall s':>9}{'vs pymetis':>11}{'peak RSS GiB':>14}{'edge cut':>10}   all runs (s)")
    rows = [("giantgcn-partition", whole, manifest["edge_cut_ratio"]),
            ("pymetis alone", alone, result["pymetis_alone"]["edge_cut_ratio"])]
    if sampled:
        s = result["sampled_metis"]
        rows.append((f"giantgcn-partition --metis-max-edges {s['metis_max_edges']:.2g}", s,
                     s["edge_cut_ratio"]))
    for name, r, cut in rows:
        print(f"{name:40}{r['wall_s']:9.1f}{r['wall_s'] / alone['wall_s']:10.2f}x"
              f"{r['peak_rss_gib']:14.2f}{cut:10.3f}   {r['all_wall_s']}")
    print(f"ratio: wall {result['ratio_wall']:.2f}x, RSS {result['ratio_rss']:.2f}x "
          f"(target wall <= 1.5x); METIS call alone {alone['metis_call_s']:.1f} s; "
          f"load avg {result['load_avg_end']:.1f} at the end")
    print("stages of the best run: " + ", ".join(f"{k} {v:.1f} s" for k, v in whole["stages_s"].items()))
    print(f"train imbalance {manifest['train_imbalance']:.3f}, edge imbalance "
          f"{manifest['edge_imbalance']:.3f}; wrote {OUT / 'partition_bench.json'}")


if __name__ == "__main__":
    main()
