"""Does the number of parts change accuracy? The same graph in 1 part vs 8 parts.

Partitions one input into 1 part (trained on 1 rank: P >= W) and into 8 METIS parts
(trained on 2 ranks, 4 merged parts each), trains each with every seed through the real
entry point (``torchrun -m dist_train``) and prints test accuracy at the best-validation
epoch per seed, the mean per setting and the gap. Partitioning should cost next to no
accuracy: the acceptance bar is a gap of at most 1 point.

    PYTHONPATH=. python benchmarks/parts_accuracy.py --input planetoid:Cora \\
        --root ../shared/data/planetoid --config configs/cora.yaml
    PYTHONPATH=. python benchmarks/parts_accuracy.py --input synthetic:seed=7 \\
        --config configs/default.yaml

Extra ``key=value`` arguments go to every training run; ``--halo-hops`` to the
partitioner (default: the partitioner's own). Writes ``benchmarks/out/parts_accuracy-<input>.json``.

Partition-invariant training (issue 15: 8 parts within 0.3 points of 1 part): exact mode
with the global batch plan, features stored once plus a 10% cache, and the epoch-time
cost of the global plan against the rank plan at 2 ranks (``--time-plans``):

    PYTHONPATH=. python benchmarks/parts_accuracy.py --input planetoid:Cora \
        --root ../shared/data/planetoid --config configs/cora.yaml --halo-hops 0 \
        --cache-budget 0.1 --time-plans sampler.mode=exact train.batch_plan=global

With the global plan the per-epoch training loss of the two settings should agree to
float rounding; the table's last column is the largest relative difference over the
first 5 epochs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "out"


@dataclass
class Setting:
    parts: int
    ranks: int
    test_acc: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    losses: list[list[float]] = field(default_factory=list)
    """Per seed: the training loss of every epoch."""
    epoch_s: list[float] = field(default_factory=list)
    """Per seed: mean epoch time (s) of the epochs after the first."""

    @property
    def mean_test(self) -> float:
        return statistics.fmean(self.test_acc)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _run(cmd: list[str]) -> None:
    res = subprocess.run(cmd, env=_env(), cwd=REPO, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"parts_accuracy: failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr[-3000:]}")


def partition(args: argparse.Namespace, parts: int, out: Path) -> None:
    cmd = [sys.executable, "-m", "partition", "--input", args.input, "--num-parts", str(parts),
           "--out", str(out), "--force", "--quiet"]
    cmd += ["--root", args.root] if args.root else []
    cmd += ["--halo-hops", str(args.halo_hops)] if args.halo_hops is not None else []
    cmd += ["--cache-budget", str(args.cache_budget)] if args.cache_budget is not None else []
    _run(cmd)


def train(args: argparse.Namespace, data: Path, ranks: int, seed: int, out: Path,
          extra: tuple[str, ...] = ()) -> tuple[dict, list[dict]]:
    """(the final record, the epoch records) of one run; ``extra`` overrides come last."""
    shutil.rmtree(out, ignore_errors=True)  # a fresh run: an old checkpoint would be resumed
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           str(ranks), "-m", "dist_train", "--data", str(data), "--out", str(out),
           "--config", args.config, f"train.seed={seed}", "train.plot=false", *args.overrides, *extra]
    _run(cmd)
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    final = records[-1]
    assert final.get("event") == "final", f"{out}: no final line"
    return final, [r for r in records if "train_loss" in r and "epoch" in r]


def mean_epoch_s(epochs: list[dict]) -> float:
    """Mean epoch time after the first epoch (which also opens shards and warms numba)."""
    times = [e["epoch_time_s"] for e in epochs[1:]] or [e["epoch_time_s"] for e in epochs]
    return statistics.fmean(times)


def loss_gap(a: list[float], b: list[float], epochs: int = 5) -> float:
    """Largest relative difference of two runs' per-epoch training loss, first ``epochs``."""
    pairs = list(zip(a, b, strict=False))[:epochs]
    return max((abs(x - y) / max(abs(y), 1e-12) for x, y in pairs), default=float("nan"))


def table(settings: list[Setting], seeds: list[int]) -> str:
    head = "| parts | ranks | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | loss vs 1 part |"
    rows = [head, "|" + "---|" * (len(seeds) + 4)]
    ref = settings[0]
    for st in settings:
        accs = " | ".join(f"{100 * a:.2f}" for a in st.test_acc)
        gaps = [loss_gap(x, y) for x, y in zip(st.losses, ref.losses, strict=True)]
        gap = "-" if st is ref else f"{max(gaps):.1e}"
        rows.append(f"| {st.parts} | {st.ranks} | {accs} | {100 * st.mean_test:.2f} | {gap} |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", default="synthetic:seed=7", help="giantgcn-partition --input spec")
    ap.add_argument("--root", help="giantgcn-partition --root (planetoid folder)")
    ap.add_argument("--config", default="configs/default.yaml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--halo-hops", type=int, default=None)
    ap.add_argument("--cache-budget", type=float, default=None, help="giantgcn-partition --cache-budget")
    ap.add_argument("--work", default=None, help="datasets and runs go here (default runs/parts_accuracy/<input>)")
    ap.add_argument("--time-plans", action="store_true",
                    help="also time train.batch_plan=rank against =global on the 8 parts at 2 ranks "
                         "(first seed, back to back)")
    ap.add_argument("overrides", nargs="*", metavar="key=value")
    args = ap.parse_args()
    name = re.sub(r"[^A-Za-z0-9_.=-]+", "_", args.input) + (f"-halo{args.halo_hops}" if args.halo_hops else "")
    work = Path(args.work or REPO / "runs" / "parts_accuracy" / name).resolve()
    settings = [Setting(parts=1, ranks=1), Setting(parts=8, ranks=2)]
    for st in settings:
        data = work / f"data-{st.parts}"
        partition(args, st.parts, data)
        for seed in args.seeds:
            t0 = time.perf_counter()
            final, epochs = train(args, data, st.ranks, seed, work / f"run-p{st.parts}-s{seed}")
            st.seconds.append(time.perf_counter() - t0)
            st.test_acc.append(final["test_acc"])
            st.val_acc.append(final["val_acc"])
            st.losses.append([e["train_loss"] for e in epochs])
            st.epoch_s.append(mean_epoch_s(epochs))
            print(f"parts {st.parts} ranks {st.ranks} seed {seed}: test {100 * final['test_acc']:.1f} "
                  f"(val {100 * final['val_acc']:.1f}, best epoch {final['best_epoch']})", flush=True)
    timing = time_plans(args, work) if args.time_plans else None
    gap = 100 * (settings[0].mean_test - settings[1].mean_test)
    print(f"\n{args.input}, {args.config} {' '.join(args.overrides)}\n{table(settings, args.seeds)}")
    print(f"gap (1 part - 8 parts): {gap:+.2f} points (target: |gap| <= 0.3: "
          f"{'met' if abs(gap) <= 0.3 else 'not met'})")
    if timing:
        print(f"epoch time at 2 ranks, 8 parts: rank plan {timing['rank']:.2f} s, global plan "
              f"{timing['global']:.2f} s: global / rank = {timing['global'] / timing['rank']:.2f}x")
    OUT.mkdir(parents=True, exist_ok=True)
    report = {"input": args.input, "config": args.config, "overrides": args.overrides,
              "halo_hops": args.halo_hops, "seeds": args.seeds, "gap_points": gap,
              "settings": [asdict(s) | {"mean_test": s.mean_test} for s in settings],
              "epoch_s_by_plan": timing}
    (OUT / f"parts_accuracy-{name}.json").write_text(json.dumps(report, indent=1) + "\n")


def time_plans(args: argparse.Namespace, work: Path) -> dict[str, float]:
    """Mean epoch time (s) of the rank plan and of the global plan, 2 ranks on the 8 parts,
    run back to back with the first seed (the machine's load is shared by both)."""
    out = {}
    for plan in ("rank", "global"):
        _, epochs = train(args, work / "data-8", 2, args.seeds[0], work / f"time-{plan}",
                          (f"train.batch_plan={plan}",))
        out[plan] = mean_epoch_s(epochs)
        print(f"timing: batch_plan={plan}: {out[plan]:.2f} s per epoch", flush=True)
    return out


if __name__ == "__main__":
    main()
