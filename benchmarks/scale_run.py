"""Scale run: a 10^8-undirected-edge synthetic graph, partitioned into 8 parts, 1 epoch on 2 ranks.

    PYTHONPATH=. python benchmarks/scale_run.py [--nodes 5000000] [--degree 40.8] [--features 128]

The graph (5·10^6 nodes, ~10^8 undirected edges, 128 features) does not fit METIS in
24 GB (~85 bytes per edge), so the partitioner runs METIS on a uniform sample of
``--metis-max-edges`` edges (``giantgcn-partition --metis-max-edges``); cut and balance
are measured on the full graph. Then ``giantgcn-train`` runs one epoch on 2 ranks, each
merging its 4 parts (``dist_train.data.merge``). Evaluation uses sampled neighbourhoods
(``--eval-fanouts``): full 2-hop neighbourhoods on a degree-40 graph are ~1600 edges
per node. Every stage runs in its own process; reported: wall time, peak RSS (per
rank for training) and the machine's peak used memory (sampled every 0.5 s, so other
jobs on the machine count too). Refuses to start with less than ``--min-free-gib`` free.
Writes ``benchmarks/out/scale_run.json``; the ~10 GB dataset is removed unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "out"


@dataclass
class Stage:
    name: str
    wall_s: float = 0.0
    peak_rss_gib: list[float] = field(default_factory=list)
    machine_peak_used_gib: float = 0.0
    detail: dict = field(default_factory=dict)


class MachineMemory:
    """Peak of the machine's used memory while a stage runs (a sampling thread)."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            vm = psutil.virtual_memory()
            self.peak = max(self.peak, (vm.total - vm.available) / 2**30)

    def __enter__(self) -> MachineMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_stage(name: str, argv: list[str]) -> Stage:
    """Run ``argv`` to completion; wall time, its peak RSS (wait4) and the machine's peak."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with MachineMemory() as mem:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=REPO, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name} failed (exit {os.waitstatus_to_exitcode(status)}): {' '.join(argv)}")
    return Stage(name, wall, [usage.ru_maxrss / 2**20], mem.peak)


def partition(args: argparse.Namespace, data: Path) -> Stage:
    spec = f"synthetic:nodes={args.nodes},degree={args.degree},features={args.features}"
    st = run_stage("partition", [sys.executable, "-m", "partition", "--input", spec, "--num-parts",
                                 str(args.parts), "--metis-max-edges", str(args.metis_max_edges),
                                 "--out", str(data), "--force", "--quiet"])
    m = json.loads((data / "manifest.json").read_text())
    st.detail = {k: m[k] for k in ("num_nodes", "num_edges", "num_features", "edge_cut_ratio",
                                   "train_imbalance", "edge_imbalance", "timings_s")}
    st.detail["dataset_gib"] = sum(f["bytes"] for f in m["files"].values()) / 2**30
    return st


def train(args: argparse.Namespace, data: Path) -> Stage:
    run_dir = OUT / "scale-run"
    shutil.rmtree(run_dir, ignore_errors=True)
    fan = f"[{','.join(map(str, args.eval_fanouts))}]"
    st = run_stage("train", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                             "--nproc-per-node", str(args.ranks), str(REPO / "benchmarks" / "rank_rss.py"),
                             str(run_dir / "rss"), "--data", str(data), "--out", str(run_dir),
                             "train.epochs=1", "train.checkpoint_every=1", f"sampler.eval_fanouts={fan}",
                             "sampler.fanouts=[15,10]", "sampler.batch_size=1024", "model.hidden=128"]
                   + ([f"train.max_steps_per_epoch={args.max_steps}"] if args.max_steps else []))
    st.peak_rss_gib = [json.loads((run_dir / "rss" / f"rss-rank{r}.json").read_text())["peak_rss_mib"] / 1024
                       for r in range(args.ranks)]
    lines = [json.loads(s) for s in (run_dir / "metrics.jsonl").read_text().splitlines() if s]
    epoch = next(r for r in lines if "event" not in r)
    st.detail = {k: v for k, v in epoch.items() if k.startswith("time_") or k in
                 ("epoch_time_s", "steps", "test_acc", "val_acc", "sampled_edges_per_s")}
    return st


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=5_000_000)
    ap.add_argument("--degree", type=float, default=40.8, help="synthetic degree (~10^8 edges at 5M nodes)")
    ap.add_argument("--features", type=int, default=128)
    ap.add_argument("--parts", type=int, default=8)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--metis-max-edges", type=float, default=2.5e7)
    ap.add_argument("--eval-fanouts", type=int, nargs="+", default=[15, 10])
    ap.add_argument("--max-steps", type=int, help="cap training steps (default: the whole epoch)")
    ap.add_argument("--min-free-gib", type=float, default=16.0)
    ap.add_argument("--keep", action="store_true", help="keep the dataset directory")
    args = ap.parse_args(argv)
    free = psutil.virtual_memory().available / 2**30
    if free < args.min_free_gib:
        print(f"only {free:.1f} GiB free (< --min-free-gib {args.min_free_gib:g}): not starting")
        return 1
    data = OUT / f"scale-{args.nodes}-{args.parts}"
    OUT.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    stages = [partition(args, data)]
    stages.append(train(args, data))
    if not args.keep:
        shutil.rmtree(data, ignore_errors=True)
    p, t = stages[0].detail, stages[1].detail
    print(f"graph: {p['num_nodes']:,} nodes, {p['num_edges']:,} undirected edges, {p['num_features']} "
          f"features; {args.parts} parts, {args.ranks} ranks; load avg at start {load:.1f}, "
          f"{free:.1f} GiB free")
    print(f"{'stage':<11}{'wall s':>9}{'peak RSS GiB':>22}{'machine peak used GiB':>23}")
    for s in stages:
        rss = "/".join(f"{g:.2f}" for g in s.peak_rss_gib)
        print(f"{s.name:<11}{s.wall_s:9.1f}{rss:>22}{s.machine_peak_used_gib:23.1f}")
    print(f"partition: stages {p['timings_s']}, edge cut {p['edge_cut_ratio']:.3f} (METIS on "
          f"{args.metis_max_edges:.3g} sampled edges), train imbalance {p['train_imbalance']:.3f}, "
          f"dataset {p['dataset_gib']:.1f} GiB")
    print(f"train: epoch {t['epoch_time_s']:.1f} s for {t['steps']} steps/rank (sample {t['time_sample_s']:.1f}, "
          f"gather {t['time_gather_s']:.1f}, fwd+bwd {t['time_forward_backward_s']:.1f}, allreduce "
          f"{t['time_allreduce_s']:.1f} s); test acc {t.get('test_acc', float('nan')):.4f} "
          f"(eval fanouts {args.eval_fanouts})")
    (OUT / "scale_run.json").write_text(json.dumps({"args": vars(args), "load_avg": load, "free_gib": free,
                                                    "stages": [asdict(s) for s in stages]}, indent=1) + "\n")
    print(f"wrote {OUT / 'scale_run.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
