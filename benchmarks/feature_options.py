"""What ``--normalize-features`` and ``--feature-dtype`` buy (issue 10), each against its baseline.

    PYTHONPATH=. python benchmarks/feature_options.py accuracy [--seeds 0 1 2]
    PYTHONPATH=. python benchmarks/feature_options.py memory [--nodes 200000] [--features 128] [--parts 2]

``accuracy``: Cora (``../shared/data/planetoid``) in 1 part with a 2-hop halo, trained by
``python -m dist_train --config configs/cora.yaml`` with each seed, features as given
(baseline) vs ``--normalize-features row`` (Kipf & Welling's preprocessing) and
``standard``; prints the test accuracy at the best-validation epoch, per seed and mean.

``memory``: a synthetic graph partitioned into 2 parts (``--parts``) with ``--feature-dtype`` float32
(baseline), float16 and bfloat16; prints the bytes of every ``x.npy`` and each rank's peak
RSS over a short 2-rank run (``benchmarks/rank_rss.py`` under torchrun, 1 epoch of at
most 20 steps, then a full evaluation).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORA_ROOT = REPO.parent / "shared" / "data" / "planetoid"
PY = sys.executable


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"feature_options: failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr[-3000:]}")
    return res


def _partition(spec: str, out: Path, parts: int, *flags: str) -> dict:
    _run([PY, "-m", "partition", "--input", spec, "--num-parts", str(parts), "--out", str(out),
          "--force", "--quiet", *flags])
    return json.loads((out / "manifest.json").read_text())


def _final(run_dir: Path) -> dict:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return json.loads(lines[-1])


def accuracy(work: Path, seeds: list[int]) -> None:
    print("| features | " + " | ".join(f"seed {s}" for s in seeds) + " | mean test acc |")
    print("|---|" + "---|" * (len(seeds) + 1))
    for norm in ("none", "row", "standard"):
        data = work / f"cora-{norm}"
        _partition("planetoid:Cora", data, 1, "--root", str(CORA_ROOT), "--halo-hops", "2",
                   "--normalize-features", norm)
        accs = []
        for seed in seeds:
            run = work / f"run-{norm}-{seed}"
            _run([PY, "-m", "dist_train", "--data", str(data), "--config", "configs/cora.yaml",
                  "--out", str(run), f"train.seed={seed}"])
            accs.append(100 * _final(run)["test_acc"])
        label = "as given (baseline)" if norm == "none" else f"--normalize-features {norm}"
        print(f"| {label} | " + " | ".join(f"{a:.1f}" for a in accs)
              + f" | {statistics.fmean(accs):.2f} |", flush=True)


def memory(work: Path, nodes: int, features: int, parts: int) -> None:
    spec = f"synthetic:nodes={nodes},features={features}"
    print(f"{spec}, {parts} parts, 2 ranks (torchrun), 1 epoch of <= 20 steps + full evaluation")
    print("| feature dtype | x.npy bytes (all parts) | peak RSS rank 0 (MiB) | rank 1 (MiB) | after imports (MiB) | test acc |")
    print("|---|---|---|---|---|---|")
    for dtype in ("float32", "float16", "bfloat16"):
        data = work / f"syn-{dtype}"
        m = _partition(spec, data, parts, "--feature-dtype", dtype)
        x_bytes = sum(v["bytes"] for k, v in m["files"].items() if k.endswith("/x.npy"))
        rss_dir, run = work / f"rss-{dtype}", work / f"run-mem-{dtype}"
        _run([str(Path(PY).parent / "torchrun"), "--standalone", "--nproc-per-node=2",
              "benchmarks/rank_rss.py", str(rss_dir), "--data", str(data), "--out", str(run),
              "train.epochs=1", "train.max_steps_per_epoch=20"])
        rss = [json.loads((rss_dir / f"rss-rank{r}.json").read_text()) for r in (0, 1)]
        label = f"{dtype} (baseline)" if dtype == "float32" else dtype
        print(f"| {label} | {x_bytes:,} | {rss[0]['peak_rss_mib']:.0f} | {rss[1]['peak_rss_mib']:.0f} | "
              f"{rss[0]['after_imports_mib']:.0f} | {100 * _final(run)['test_acc']:.1f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("accuracy")
    a.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    m = sub.add_parser("memory")
    m.add_argument("--nodes", type=int, default=200_000)
    m.add_argument("--features", type=int, default=128)
    m.add_argument("--parts", type=int, default=2,
                   help="more parts than ranks: each rank merges its parts into one in-RAM graph")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="feature_options-"))
    try:
        if args.cmd == "accuracy":
            accuracy(work, args.seeds)
        else:
            memory(work, args.nodes, args.features, args.parts)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
