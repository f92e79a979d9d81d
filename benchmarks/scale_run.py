"""Scale run: a 10^9-CSR-entry synthetic graph, partitioned into 8 parts, 1 epoch on 2 ranks (issue 12).

    PYTHONPATH=. python benchmarks/scale_run.py [--nodes 25000000] [--degree 40.8] [--method kaminpar]

Default graph: 2.5·10^7 nodes, ~5·10^8 undirected edges (10^9 CSR entries), 128 features
stored as float16, papers100M-like splits (5% train, 1% val, 2% test, the rest in no
split). Partitioned with ``--method kaminpar`` (METIS would need ~85 bytes per edge,
~40 GB) into 8 parts, no halo and a 0.1 cache budget, trained in exact mode
(``sampler.mode=exact``): features stored once, remote rows fetched by all-to-all.

The run: first ``giantgcn-partition --dry-run`` with the same flags (its per-stage
estimate), then the real partition (wall time and peak RSS per stage, from the
partitioner's own summary, plus its ``wait4`` peak), then ``giantgcn-train`` for one epoch
on 2 ranks, each owning 4 parts. Evaluation uses sampled neighbourhoods
(``--eval-fanouts``). Also reported: the machine's peak used memory (sampled every 0.5 s,
so other jobs count too). Refuses to start with less than ``--min-free-gib`` free.
Writes ``benchmarks/out/scale_run.json``; the dataset is removed unless ``--keep``.

The issue-2-era run (5·10^6 nodes, 10^8 edges, float32, sampled METIS, 1-hop halo):
``--nodes 5000000 --method metis --metis-max-edges 2.5e7 --feature-dtype float32
--halo-hops 1 --cache-budget 0 --sampler-mode local --split ""``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
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
    disk_peak_gib: float = 0.0
    """Most disk the stage added on the output's filesystem (scratch and output), GiB."""
    detail: dict = field(default_factory=dict)
    stdout: str = ""


class MachineMemory:
    """Peak of the machine's used memory, and of the disk used on ``OUT``'s filesystem above
    its level at the start, while a stage runs (a sampling thread, every 0.5 s)."""

    def __init__(self) -> None:
        self.peak = 0.0
        self.disk_start = psutil.disk_usage(str(OUT)).used
        self.disk_peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            vm = psutil.virtual_memory()
            self.peak = max(self.peak, (vm.total - vm.available) / 2**30)
            self.disk_peak = max(self.disk_peak, (psutil.disk_usage(str(OUT)).used - self.disk_start) / 2**30)

    def __enter__(self) -> MachineMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_stage(name: str, argv: list[str], capture: bool = False) -> Stage:
    """Run ``argv`` to completion; wall time, its peak RSS (wait4) and the machine's peak.

    ``capture``: keep its stdout (also echoed once it ends) in ``Stage.stdout``.
    """
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with MachineMemory() as mem:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE if capture else None,
                                text=True)
        out = proc.stdout.read() if capture else ""
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    print(out, end="")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name} failed (exit {os.waitstatus_to_exitcode(status)}): {' '.join(argv)}")
    return Stage(name, wall, [usage.ru_maxrss / 2**20], mem.peak, mem.disk_peak, stdout=out)


def partition_flags(args: argparse.Namespace) -> list[str]:
    """The partitioner's flags of this run (shared by the dry run and the real one)."""
    split = f",{args.split}" if args.split else ""
    flags = ["--input", f"synthetic:nodes={args.nodes},degree={args.degree},features={args.features}{split}",
             "--num-parts", str(args.parts), "--method", args.method, "--feature-dtype", args.feature_dtype,
             "--halo-hops", str(args.halo_hops)]
    if args.cache_budget:
        flags += ["--cache-budget", str(args.cache_budget)]
    if args.method == "metis" and args.metis_max_edges:
        flags += ["--metis-max-edges", str(args.metis_max_edges)]
    return flags


_GIB = {"B": 2**-30, "KiB": 2**-20, "MiB": 2**-10, "GiB": 1.0}


def estimate(args: argparse.Namespace, data: Path) -> dict[str, float]:
    """``--dry-run``'s peak RSS per stage and ``total`` (GiB), parsed from its table."""
    out = subprocess.run([sys.executable, "-m", "partition", *partition_flags(args), "--out", str(data),
                          "--dry-run"], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                         check=True, capture_output=True, text=True).stdout
    print(out, end="")
    got = {m[1]: float(m[2]) for m in re.finditer(r"^(read|csr|partition|write|total)\s+([\d.]+)", out, re.M)}
    disk = re.search(r"disk ([\d.]+) GiB", out)
    if disk:
        got["disk"] = float(disk[1])
    return got


def stage_peaks(summary: str) -> dict[str, float]:
    """The partitioner summary's ``peak memory: ... (by stage: read 1.2 GiB, ...)`` in GiB."""
    m = re.search(r"by stage: ([^)]*)\)", summary)
    if m is None:
        return {}
    return {k: float(v) * _GIB[u] for k, v, u in re.findall(r"(\w+) ([\d.]+) (\w+)", m[1])}


def partition(args: argparse.Namespace, data: Path) -> Stage:
    # the run is what checks the estimate: it must not be refused by it (KaMinPar at this
    # size measured 35 B/edge, the model's 65 from 10^6-10^7 nodes: partition/estimate.py)
    st = run_stage("partition", [sys.executable, "-m", "partition", *partition_flags(args),
                                 "--out", str(data), "--force", "--quiet", "--ignore-memory-estimate"],
                   capture=True)
    m = json.loads((data / "manifest.json").read_text())
    st.detail = {k: m[k] for k in ("num_nodes", "num_edges", "num_features", "edge_cut_ratio",
                                   "train_imbalance", "edge_imbalance", "timings_s", "method")}
    st.detail["stage_peak_gib"] = stage_peaks(st.stdout)
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
                             "sampler.fanouts=[15,10]", "sampler.batch_size=1024", "model.hidden=128",
                             f"sampler.mode={args.sampler_mode}"]
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
    ap.add_argument("--nodes", type=int, default=25_000_000)
    ap.add_argument("--degree", type=float, default=40.8, help="synthetic degree (~5·10^8 edges at 2.5·10^7 nodes)")
    ap.add_argument("--features", type=int, default=128)
    ap.add_argument("--feature-dtype", default="float16", choices=["float16", "float32"])
    ap.add_argument("--split", default="train=0.05,val=0.01,test=0.02",
                    help="synthetic split keys ('' = 60/20/20)")
    ap.add_argument("--parts", type=int, default=8)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--method", default="kaminpar", choices=["kaminpar", "metis"])
    ap.add_argument("--metis-max-edges", type=float, default=2.5e7, help="with --method metis")
    ap.add_argument("--halo-hops", type=int, default=0)
    ap.add_argument("--cache-budget", type=float, default=0.1)
    ap.add_argument("--sampler-mode", default="exact", choices=["exact", "local"])
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
    est = estimate(args, data)
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
    how = f"METIS on {args.metis_max_edges:.3g} sampled edges" if p["method"] == "metis" else p["method"]
    print(f"partition: edge cut {p['edge_cut_ratio']:.3f} ({how}), train imbalance "
          f"{p['train_imbalance']:.3f}, edge imbalance {p['edge_imbalance']:.3f}, dataset {p['dataset_gib']:.1f} GiB")
    print(f"disk: peak {stages[0].disk_peak_gib:.1f} GiB added during the partition stage (scratch + output), "
          f"--dry-run {est.get('disk', float('nan')):.1f} GiB; dataset {p['dataset_gib']:.1f} GiB")
    print(f"{'partition stage':<17}{'wall s':>8}{'peak RSS GiB':>14}{'--dry-run GiB':>15}{'est/measured':>14}")
    peaks = dict(p["stage_peak_gib"], total=stages[0].peak_rss_gib[0])
    times = dict(p["timings_s"], total=stages[0].wall_s)
    for k in ("read", "csr", "partition", "write", "total"):
        got, e = peaks.get(k, float("nan")), est.get(k, float("nan"))
        print(f"{k:<17}{times.get(k, float('nan')):8.1f}{got:14.2f}{e:15.2f}{e / got:14.2f}")
    print(f"train: epoch {t['epoch_time_s']:.1f} s for {t['steps']} steps/rank (sample {t['time_sample_s']:.1f}, "
          f"gather {t['time_gather_s']:.1f}, fwd+bwd {t['time_forward_backward_s']:.1f}, allreduce "
          f"{t['time_allreduce_s']:.1f} s); test acc {t.get('test_acc', float('nan')):.4f} "
          f"(eval fanouts {args.eval_fanouts})")
    (OUT / "scale_run.json").write_text(json.dumps({"args": vars(args), "load_avg": load, "free_gib": free,
                                                    "dry_run_gib": est,
                                                    "stages": [asdict(s) for s in stages]}, indent=1) + "\n")
    print(f"wrote {OUT / 'scale_run.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
