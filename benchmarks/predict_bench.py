"""giantgcn-predict throughput and memory: nodes scored per second at 1 and 2 ranks (issue 11).

Partitions a synthetic graph (default 10^6 nodes) into 2 parts at ``--halo-hops 0`` (the
case where every boundary row crosses ranks), writes a run directory holding the default
2-layer GCN with its initial weights (throughput does not depend on the weights), then
times ``giantgcn-predict`` as one process (the baseline) and under torchrun with 2 ranks,
on the same dataset in the same run. Peak RSS per rank comes from each rank's own
``getrusage`` (``peak_rss_mib_per_rank`` in the prediction manifest). Both runs must give
identical prediction files (checked).

    PYTHONPATH=. python benchmarks/predict_bench.py [--nodes 1000000] [--features 64]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from dist_train.config.schema import load_config, save_config
from dist_train.model.models import build_model

BIN = Path(sys.executable).parent


def _make_run(run: Path, data: Path, num_features: int, num_classes: int) -> None:
    cfg = load_config(None, [f"data.path={data}"])
    run.mkdir(parents=True, exist_ok=True)
    save_config(cfg, run / "config.yaml")
    torch.manual_seed(0)
    m = cfg.model
    model = build_model(m.arch, num_features, m.hidden, num_classes, m.num_layers, m.dropout, m.norm, m.gcn_norm)
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "best_model": None, "config": {}}, buf)
    (run / "model.pt").write_bytes(buf.getvalue())


def _predict(cmd: list[str], out: Path) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    res = subprocess.run(cmd + ["--out", str(out), "--quiet"], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"predict failed: {res.stderr[-2000:]}")
    manifest = json.loads((out / "manifest.json").read_text())
    digest = hashlib.sha256((out / "predictions.npy").read_bytes()).hexdigest()
    return {"wall_s": wall, "compute_s": manifest["timings_s"]["compute"],
            "rss": manifest["peak_rss_mib_per_rank"], "predictions_sha256": digest}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--make-run", nargs=2, metavar=("RUN", "DATASET"),
                    help="only write RUN for DATASET (initial weights; used by tests) and exit")
    args = ap.parse_args()
    if args.make_run:
        run, data = map(Path, args.make_run)
        manifest = json.loads((data / "manifest.json").read_text())
        _make_run(run, data, manifest["num_features"], manifest["num_classes"])
        return
    with tempfile.TemporaryDirectory(prefix="predict-bench-") as tmp:
        root = Path(tmp)
        data, run = root / "ds", root / "run"
        spec = f"synthetic:nodes={args.nodes},features={args.features}"
        subprocess.run([sys.executable, "-m", "partition", "--input", spec, "--num-parts", "2",
                        "--halo-hops", "0", "--out", str(data), "--quiet"], check=True)
        manifest = json.loads((data / "manifest.json").read_text())
        _make_run(run, data, manifest["num_features"], manifest["num_classes"])
        common = ["--data", str(data), "--run-dir", str(run)]
        rows = {"1 rank (python -m, baseline)": _predict([sys.executable, "-m", "dist_train.predict", *common],
                                                         root / "p1"),
                "2 ranks (torchrun)": _predict([str(BIN / "torchrun"), "--standalone", "--nproc-per-node=2",
                                                "-m", "dist_train.predict", *common], root / "p2")}
    n = manifest["num_nodes"]
    print(f"graph: {spec}: {n:,} nodes, {manifest['num_edges']:,} edges, 2 parts, --halo-hops 0; "
          f"GCN 2 layers hidden 128; load avg {os.getloadavg()[0]:.1f}")
    print(f"{'run':32} {'wall s':>7} {'layers s':>9} {'nodes/s (wall)':>15} {'peak RSS MiB/rank':>18}")
    base = None
    for name, r in rows.items():
        base = base or r["wall_s"]
        print(f"{name:32} {r['wall_s']:7.1f} {r['compute_s']:9.1f} {n / r['wall_s']:15,.0f} "
              f"{'/'.join(f'{v:.0f}' for v in r['rss']):>18}   x{base / r['wall_s']:.2f}")
    same = len({r["predictions_sha256"] for r in rows.values()}) == 1
    print(f"identical predictions.npy at 1 and 2 ranks: {same}")


if __name__ == "__main__":
    main()
