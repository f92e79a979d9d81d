"""CSR stage alone: the in-memory build (baseline) vs the out-of-core build under a budget.

    PYTHONPATH=. python benchmarks/csr_bench.py [--nodes 2000000] [--degree 20] [--fractions 0.25]

The edges are generated chunk by chunk (2^20 per chunk, seeded per chunk: half local,
half uniform, an eighth of each chunk repeated reversed, so duplicates and both
directions occur), as a reader streams them: no edge file is mapped into the process,
and the generator's own memory is one chunk (the built-in synthetic graph's generator
holds more than the CSR build at these sizes and would hide it). Each measurement is its
own process (peak RSS from ``os.wait4``), run in this order:

(0) generate: the same stream of chunks, consumed without building (interpreter, numba,
    the generator: the floor under every row below);
(a) in-memory: ``build_csr(n, edge_chunks)``, today's path and the named baseline;
(b) out of core: ``build_csr(..., memory_budget=B, scratch=benchmarks/out/...)`` with B =
    FRACTION x (a)'s peak RSS above (0)'s, i.e. by default a quarter of what the
    in-memory build itself added (stricter than a quarter of its whole peak). The
    sha256 pass that checks equality reads the memory-mapped indices after the build.

Every row prints the build's peak RSS (polled every 50 ms by ``partition.progress.
RssSampler`` from the start to the end of ``build_csr``, as the CLI's per-stage peaks
are), RSS above the floor, time of the build (chunks generated inside it), time
relative to (a), and whether indptr and indices (sha256, dtype) equal (a)'s. Each build
runs ``--repeat`` times, interleaved; the fastest time and the highest peak are shown. Writes ``benchmarks/out/csr_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "out"

CHILD = r"""
import hashlib, json, sys, time
import numpy as np
from partition.graph.csr import build_csr
from partition.graph.csr_external import external_csr, min_budget
from partition.progress import RssSampler

mode, nodes, degree, budget, scratch = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
CHUNK = 1 << 20
num_edges = int(nodes * degree / 2)


def edge_chunks():
    # Seeded per chunk (the same stream in every child): half the edges to a near id (a
    # local, clustered graph), half uniform, then 1/8 of the chunk repeated reversed.
    for lo in range(0, num_edges, CHUNK):
        rng = np.random.default_rng(lo)
        m = min(CHUNK, num_edges - lo)
        src = rng.integers(0, nodes, m)
        near = (src + rng.integers(1, 1000, m)) % nodes
        dst = np.where(rng.random(m) < 0.5, near, rng.integers(0, nodes, m))
        k = m // 8
        yield np.concatenate((src, dst[:k])), np.concatenate((dst, src[:k]))


tiny = [(np.array([0, 1]), np.array([1, 2]))]
build_csr(100, lambda: iter(tiny))  # numba's kernels loaded before timing, both paths
external_csr(100, iter(tiny), min_budget(100), None)
rss = RssSampler()  # the build's own peak: the hash below maps every page of indices
t = time.perf_counter()
out = {}
if mode == "generate":
    out = {"raw_edges": sum(int(s.size) for s, d in edge_chunks())}
else:
    csr = build_csr(nodes, edge_chunks, memory_budget=None if mode == "in-memory" else budget,
                    scratch=scratch)
out["time_s"] = time.perf_counter() - t
out["build_rss"] = rss.stop()
if mode != "generate":
    h = hashlib.sha256()
    for a in (csr.indptr, csr.indices):
        for lo in range(0, a.size, 1 << 24):
            h.update(np.ascontiguousarray(a[lo:lo + (1 << 24)]).tobytes())
    out.update({"nnz": int(csr.indices.size), "indices_dtype": str(csr.indices.dtype),
                "indptr_dtype": str(csr.indptr.dtype), "memmap": isinstance(csr.indices, np.memmap),
                "sha256": h.hexdigest()})
print(json.dumps(out))
"""


def measure(mode: str, nodes: int, degree: float, budget: int, scratch: Path) -> dict:
    """Run one child; its JSON line plus ``peak_rss`` (bytes, from wait4)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode, str(nodes), str(degree), str(budget),
                             str(scratch)], stdout=subprocess.PIPE, env=env, cwd=REPO)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"{mode}: child exited with status {status}")
    row = json.loads(stdout.decode().strip().splitlines()[-1])
    row["process_rss"] = usage.ru_maxrss * 1024  # Linux: KiB; includes the hash pass
    return row


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=2_000_000)
    ap.add_argument("--degree", type=float, default=20)
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.25],
                    help="budgets as fractions of the in-memory build's own peak (default 0.25)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each build, interleaved; the fastest is shown (default 3)")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    scratch = OUT / "csr-scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    runs: dict[str, list[dict]] = {}
    try:
        floor = measure("generate", args.nodes, args.degree, 0, scratch)
        base = measure("in-memory", args.nodes, args.degree, 0, scratch)
        own = base["build_rss"] - floor["build_rss"]
        sys.path.insert(0, str(REPO))
        from partition.graph.csr_external import min_budget

        # At toy sizes the floor hides the build: never ask for less than it accepts.
        budgets = {f"out of core, budget {f:g} x": max(int(own * f), min_budget(args.nodes))
                   for f in args.fractions}
        runs["in-memory (baseline)"] = [base]
        for name in budgets:
            runs[name] = []
        for i in range(args.repeat):  # interleaved: the machine's load drifts
            if i:
                runs["in-memory (baseline)"].append(measure("in-memory", args.nodes, args.degree, 0, scratch))
            for name, b in budgets.items():
                runs[name].append(measure("external", args.nodes, args.degree, b, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    best = {name: min(rs, key=lambda r: r["time_s"]) for name, rs in runs.items()}
    t0 = best["in-memory (baseline)"]["time_s"]
    print(f"{args.nodes:,} nodes, {floor['raw_edges']:,} raw edges, {base['nnz']:,} CSR entries "
          f"(indices {base['indices_dtype']}, indptr {base['indptr_dtype']}); generating the edges "
          f"alone: {floor['time_s']:.1f} s, peak RSS {mib(floor['build_rss'])} MiB "
          f"(the floor; fastest of {args.repeat} runs each, peaks are the highest of the runs); "
          f"load avg {os.getloadavg()[0]:.1f}")
    print()
    print("| build | budget (MiB) | peak RSS of the build (MiB) | above the floor (MiB) | time (s) | "
          "time vs in-memory | same CSR |")
    print("|---|---|---|---|---|---|---|")
    for name, rs in runs.items():
        budget = budgets.get(name)
        peak = max(r["build_rss"] for r in rs)
        same = all(r["sha256"] == base["sha256"] and r["indices_dtype"] == base["indices_dtype"] for r in rs)
        print(f"| {name} | {'-' if budget is None else mib(budget)} | {mib(peak)} | "
              f"{mib(peak - floor['build_rss'])} | {best[name]['time_s']:.1f} | "
              f"{best[name]['time_s'] / t0:.2f}x | {'yes' if same else 'NO'} |")
    (OUT / "csr_bench.json").write_text(json.dumps(
        {"args": vars(args), "generate": floor, "budgets": budgets, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
