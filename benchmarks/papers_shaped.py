"""A papers100M-shaped OGB binary directory, and the partitioner's memory on it (issue 10).

    python benchmarks/papers_shaped.py build DIR [--nodes 1e6] [--degree 14] [--features 128]
    python benchmarks/papers_shaped.py measure DIR WORK [--parts 8] [--metis-max-edges 2e6]

``build`` writes OGB's binary raw layout as ogbn-papers100M ships it, in its image:
``raw/data.npz`` (``edge_index`` int64 (2, E), ``node_feat`` float32 (N, F),
``num_nodes_list``, ``num_edges_list``, ``node_year``; deflated as ``np.savez_compressed``
does), ``raw/node-label.npz`` (``node_label`` float (N, 1), NaN on 98% of nodes) and
``split/time/{train,valid,test}.csv.gz`` (1% / 0.5% / 0.5% of nodes). Degrees are
power-law (Chung-Lu with Pareto weights, exponent 2.5). Members are written a chunk at
a time straight into the zip, so building needs no more memory than a chunk.

``measure`` partitions it with ``--feature-dtype float16`` (and float32 as the baseline,
same run), with and without ``--metis-max-edges``, and prints one row per run: peak RSS
after each stage (from the partitioner's own summary), ``/usr/bin/time``'s maximum RSS,
the size of ``node_feat`` it must stay under, and the bytes of every ``x.npy``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import numpy.lib.format as npy_format

CHUNK = 1 << 17
"""Nodes generated at a time."""


def _member(zf: zipfile.ZipFile, name: str, shape: tuple[int, ...], dtype: np.dtype, chunks) -> None:
    with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
        npy_format.write_array_header_1_0(f, {"descr": npy_format.dtype_to_descr(np.dtype(dtype)),
                                              "fortran_order": False, "shape": shape})
        for chunk in chunks:
            f.write(np.ascontiguousarray(chunk, dtype=dtype).tobytes())


def _weights(n: int, rng: np.random.Generator) -> np.ndarray:
    w = (1.0 - rng.random(n)) ** (-1.0 / 1.5)  # Pareto, density exponent 2.5
    return w / w.mean()


def _edges(n: int, degree: float, w: np.ndarray, seed: int):
    """(src, dst) per node chunk: each node sends Poisson(w * degree / 2) edges to w-weighted targets."""
    cum = np.cumsum(w)
    for j, lo in enumerate(range(0, n, CHUNK)):
        rng = np.random.default_rng([seed, 1, j])
        hi = min(n, lo + CHUNK)
        out = rng.poisson(w[lo:hi] * degree / 2)
        src = np.repeat(np.arange(lo, hi, dtype=np.int64), out)
        dst = np.searchsorted(cum, rng.random(src.size) * cum[-1]).astype(np.int64)
        yield src, np.minimum(dst, n - 1)


def build(out: Path, n: int, degree: float, f: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    w = _weights(n, rng)
    src_dst = list(_edges(n, degree, w, seed))  # int64 ids: 16 bytes an edge, written below
    e = sum(s.size for s, _ in src_dst)
    classes = 172  # as papers100M
    y = rng.integers(0, classes, n).astype(np.float64)
    perm = rng.permutation(n)
    k1, k2, k3 = int(0.01 * n), int(0.015 * n), int(0.02 * n)
    labelled = np.zeros(n, bool)
    labelled[perm[:k3]] = True
    y[~labelled] = np.nan
    centroids = np.random.default_rng([seed, 2]).standard_normal((classes, f)).astype(np.float32)

    def features():
        for j, lo in enumerate(range(0, n, CHUNK)):
            hi = min(n, lo + CHUNK)
            block = np.random.default_rng([seed, 3, j]).standard_normal((hi - lo, f), dtype=np.float32)
            yl = y[lo:hi]
            has = ~np.isnan(yl)
            block[has] += centroids[yl[has].astype(np.int64)]
            yield block

    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(raw / "data.npz", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        _member(zf, "edge_index", (2, e), np.int64, [s for s, _ in src_dst] + [d for _, d in src_dst])
        _member(zf, "node_feat", (n, f), np.float32, features())
        _member(zf, "num_nodes_list", (1,), np.int64, [np.array([n])])
        _member(zf, "num_edges_list", (1,), np.int64, [np.array([e])])
        _member(zf, "node_year", (n, 1), np.int64, [rng.integers(1950, 2020, (n, 1))])
    with zipfile.ZipFile(raw / "node-label.npz", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        _member(zf, "node_label", (n, 1), np.float64, [y.reshape(-1, 1)])
    for name, ids in (("train", perm[:k1]), ("valid", perm[k1:k2]), ("test", perm[k2:k3])):
        path = out / "split" / "time" / f"{name}.csv.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wt", compresslevel=1) as g:
            g.write("\n".join(map(str, np.sort(ids))) + "\n")
    print(f"{out}: {n:,} nodes, {e:,} directed edges, {f} float32 features "
          f"({n * f * 4 / 2**20:.0f} MiB node_feat), {k3:,} labelled, {k1:,} train")


def _run_partition(data: Path, out: Path, dtype: str, parts: int, max_edges: float | None) -> dict:
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "partition", "--input", f"ogb:{data}",
           "--num-parts", str(parts), "--out", str(out), "--force", "--quiet", "--feature-dtype", dtype]
    if max_edges:
        cmd += ["--metis-max-edges", str(max_edges)]
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if res.returncode != 0:
        raise SystemExit(f"partition failed ({res.returncode}):\n{res.stderr[-3000:]}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr)
    stages = re.search(r"peak memory: .*\(by stage: (.*)\)", res.stdout)
    manifest = json.loads((out / "manifest.json").read_text())
    x_bytes = sum(v["bytes"] for k, v in manifest["files"].items() if k.endswith("/x.npy"))
    return {"dtype": dtype, "max_edges": max_edges, "peak_mib": int(peak[1]) / 1024 if peak else None,
            "stages": stages[1] if stages else "?", "x_mib": x_bytes / 2**20,
            "time_s": sum(manifest["timings_s"].values()),
            "imbalance": (manifest["node_imbalance"], manifest["edge_imbalance"], manifest["train_imbalance"])}


def measure(data: Path, work: Path, parts: int, max_edges: float) -> None:
    with zipfile.ZipFile(data / "raw" / "data.npz") as zf:
        with zf.open("node_feat.npy") as f:
            npy_format.read_magic(f)
            shape, _, dtype = npy_format.read_array_header_1_0(f)
    feat_mib = shape[0] * shape[1] * dtype.itemsize / 2**20
    print(f"node_feat: {shape} {dtype} = {feat_mib:.0f} MiB; {parts} parts")
    print("| feature dtype | --metis-max-edges | peak RSS (MiB) | peak RSS by stage | x.npy total (MiB) | time (s) | imbalance node/edge/train |")
    print("|---|---|---|---|---|---|---|")
    for dtype_name, cap in (("float16", None), ("float16", max_edges), ("float32", max_edges)):
        r = _run_partition(data, work / f"ds-{dtype_name}-{cap or 'all'}", dtype_name, parts, cap)
        imb = "/".join(f"{v:.3f}" for v in r["imbalance"])
        print(f"| {r['dtype']} | {cap or 'all edges'} | {r['peak_mib']:.0f} | {r['stages']} | "
              f"{r['x_mib']:.0f} | {r['time_s']:.1f} | {imb} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("out", type=Path)
    b.add_argument("--nodes", type=float, default=1e6)
    b.add_argument("--degree", type=float, default=14.0)
    b.add_argument("--features", type=int, default=128)
    m = sub.add_parser("measure")
    m.add_argument("data", type=Path)
    m.add_argument("work", type=Path)
    m.add_argument("--parts", type=int, default=8)
    m.add_argument("--metis-max-edges", type=float, default=2e6)
    args = ap.parse_args()
    if args.cmd == "build":
        build(args.out, int(args.nodes), args.degree, args.features)
    else:
        measure(args.data, args.work, args.parts, args.metis_max_edges)


if __name__ == "__main__":
    main()
