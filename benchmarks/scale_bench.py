"""What each rank stores and pays, local vs exact sampling, as parts grow (issue 15).

For every part count P (default 2, 8, 32) and mode, partitions the input, trains it on
``--ranks`` ranks (P parts on 2 ranks on this 2-core machine) through the real entry
point (``torchrun benchmarks/rank_rss.py``), and prints against one part on one rank
(the whole graph, measured in the same run):

- stored feature rows / N: the sum of every part's ``x.npy`` rows over the node count;
- peak RSS per rank, split into fixed (after the imports: torch, numba) and
  graph-proportional (the rest: shards, batches, model), and the whole graph's bytes;
- bytes exchanged per step (sampling requests and feature rows, rank 0) and the cache
  hit rate (remote rows served from the rank's stored halo / cache);
- epoch time and test accuracy (at the best validation epoch).

Modes: ``local-h1`` (1-hop halo with features, no communication), ``exact-h1`` (exact
sampling, the 1-hop halo serves as the cache), and ``exact-h0-cB`` (exact sampling over a
structure-only boundary with a cache of ``--cache-budget`` of the inner nodes) when the
partitioner has ``--cache-budget``; a mode that cannot run is listed with the reason.

    PYTHONPATH=. python benchmarks/scale_bench.py [--parts 2 8 32] [--epochs 3]

Writes ``benchmarks/out/scale_bench.json`` and ``benchmarks/scale_bench.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "out"


@dataclass
class Setting:
    parts: int
    mode: str
    """``local-h1``, ``exact-h1`` or ``exact-h0-c<budget>``"""
    ranks: int
    stored_rows_per_n: float = 0.0
    peak_rss_mib: list[float] = field(default_factory=list)
    fixed_rss_mib: list[float] = field(default_factory=list)
    exchange_bytes_per_step: float = 0.0
    cache_hit_rate: float | None = None
    epoch_s: float = 0.0
    test_acc: float = 0.0

    @property
    def graph_rss_mib(self) -> float:
        """Largest rank's peak above its after-import RSS."""
        return max(p - f for p, f in zip(self.peak_rss_mib, self.fixed_rss_mib, strict=True))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, env=_env(), cwd=REPO, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"scale_bench: failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr[-3000:]}")
    return res


def mode_args(mode: str) -> tuple[list[str], list[str]]:
    """(partitioner flags, trainer overrides) of a mode."""
    sampler, halo, *cache = mode.split("-")
    part = ["--halo-hops", halo[1:]] + (["--cache-budget", cache[0][1:]] if cache else [])
    return part, [f"sampler.mode={sampler}"]


def partition(args: argparse.Namespace, parts: int, flags: list[str], out: Path) -> dict:
    cmd = [sys.executable, "-m", "partition", "--input", args.input, "--num-parts", str(parts),
           "--out", str(out), "--force", "--quiet", *flags]
    _run(cmd + (["--root", args.root] if args.root else []))
    return json.loads((out / "manifest.json").read_text())


def stored_rows(manifest: dict) -> float:
    rows = sum(rec["shape"][0] for name, rec in manifest["files"].items() if name.endswith("/x.npy"))
    return rows / manifest["num_nodes"]


def train(args: argparse.Namespace, data: Path, ranks: int, overrides: list[str], run: Path) -> dict:
    shutil.rmtree(run, ignore_errors=True)  # a fresh run: an old checkpoint would be resumed
    _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks),
          str(REPO / "benchmarks" / "rank_rss.py"), str(run / "rss"), "--data", str(data),
          "--out", str(run), "--config", args.config, f"train.epochs={args.epochs}",
          f"train.eval_every={args.epochs}", *overrides, *args.overrides])
    lines = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines() if s]
    epochs = [r for r in lines if "event" not in r]
    probes = [json.loads((run / "rss" / f"rss-rank{r}.json").read_text()) for r in range(ranks)]
    return {"epochs": epochs, "final": next(r for r in lines if r.get("event") == "final"),
            "peak": [p["peak_rss_mib"] for p in probes], "fixed": [p["after_imports_mib"] for p in probes],
            "train_peak": [p.get("train_peak_rss_mib", p["peak_rss_mib"]) for p in probes],
            "smaps": [p.get("train_end_smaps_mib", {}) for p in probes]}


def measure(args: argparse.Namespace, parts: int, mode: str, ranks: int, work: Path) -> Setting:
    flags, overrides = mode_args(mode)
    data = work / f"data-p{parts}-{mode}"
    manifest = partition(args, parts, flags, data)
    got = train(args, data, ranks, overrides, work / f"run-p{parts}-{mode}")
    ep = got["epochs"][1:] or got["epochs"]  # the first epoch pays numba's cache load
    st = Setting(parts, mode, ranks, stored_rows(manifest), got["peak"], got["fixed"],
                 epoch_s=statistics.fmean(e["epoch_time_s"] for e in ep), test_acc=got["final"]["test_acc"])
    if "exchange_bytes_per_step" in ep[-1]:
        st.exchange_bytes_per_step = statistics.fmean(e["exchange_bytes_per_step"] for e in ep)
        st.cache_hit_rate = statistics.fmean(e["cache_hit_rate"] for e in ep)
    shutil.rmtree(data, ignore_errors=True)
    return st


def can_cache() -> str | None:
    """None when ``giantgcn-partition`` takes ``--cache-budget``, else why not."""
    res = subprocess.run([sys.executable, "-m", "partition", "--help"], env=_env(), cwd=REPO,
                         capture_output=True, text=True)
    return None if "--cache-budget" in res.stdout else "giantgcn-partition has no --cache-budget yet"


def table(base: Setting, rows: list[Setting], whole_mib: float) -> str:
    out = [f"{'P':>3} {'mode':<12} {'ranks':>5} {'rows/N':>7} {'fixed MiB':>9} {'graph MiB':>9} "
           f"{'x whole/P':>9} {'KiB/step':>9} {'hit rate':>8} {'epoch s':>8} {'test acc':>8} {'vs 1 part':>9}"]
    for s in [base, *rows]:
        hit = "-" if s.cache_hit_rate is None else f"{s.cache_hit_rate:.2f}"
        share = s.graph_rss_mib / (whole_mib / s.parts) if s.parts > 1 else s.graph_rss_mib / whole_mib
        out.append(f"{s.parts:>3} {s.mode:<12} {s.ranks:>5} {s.stored_rows_per_n:>7.2f} "
                   f"{max(s.fixed_rss_mib):>9.0f} {s.graph_rss_mib:>9.0f} {share:>9.2f} "
                   f"{s.exchange_bytes_per_step / 1024:>9.1f} {hit:>8} {s.epoch_s:>8.2f} "
                   f"{100 * s.test_acc:>7.2f}% {100 * (s.test_acc - base.test_acc):>+8.2f}")
    return "\n".join(out)


def plot(rows: list[Setting], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for mode in dict.fromkeys(s.mode for s in rows):
        pts = [s for s in rows if s.mode == mode]
        axes[0].plot([s.parts for s in pts], [s.stored_rows_per_n for s in pts], "o-", label=mode)
        axes[1].plot([s.parts for s in pts], [s.epoch_s for s in pts], "o-", label=mode)
    for ax, what in zip(axes, ("stored feature rows / N", "epoch time (s)"), strict=True):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("parts")
        ax.set_ylabel(what)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", default="synthetic")
    ap.add_argument("--root", help="giantgcn-partition --root (planetoid folder)")
    ap.add_argument("--config", default="configs/default.yaml")
    ap.add_argument("--parts", type=int, nargs="+", default=[2, 8, 32])
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--cache-budget", type=float, default=0.1)
    ap.add_argument("--modes", nargs="+", default=None,
                    help="a subset of local-h1 exact-h1 exact-h0-c<budget> (default: all three)")
    ap.add_argument("--work", default=str(REPO / "runs" / "scale_bench"))
    ap.add_argument("overrides", nargs="*", metavar="key=value")
    args = ap.parse_args()
    work = Path(args.work).resolve()
    modes = args.modes or ["local-h1", "exact-h1", f"exact-h0-c{args.cache_budget:g}"]
    skipped = can_cache()
    if skipped is not None:
        modes = [m for m in modes if "-c" not in m]
    base = measure(args, 1, "local-h1", 1, work)
    whole = partition(args, 1, ["--halo-hops", "0"], work / "data-whole")
    whole_mib = sum(r["bytes"] for r in whole["files"].values()) / 2**20
    rows = [measure(args, p, m, min(p, args.ranks), work) for p in args.parts for m in modes]
    print(f"{args.input}: {whole['num_nodes']:,} nodes, {whole['num_edges']:,} edges, "
          f"{whole['num_features']} features; whole graph {whole_mib:.0f} MiB on disk; "
          f"{args.epochs} epochs, {args.config} {' '.join(args.overrides)}; load avg {os.getloadavg()[0]:.1f}")
    print(table(base, rows, whole_mib))
    if skipped:
        print(f"not measured: exact-h0-c{args.cache_budget:g} ({skipped})")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "scale_bench.json").write_text(json.dumps(
        {"input": args.input, "whole_graph_mib": whole_mib, "skipped": skipped,
         "rows": [asdict(s) | {"graph_rss_mib": s.graph_rss_mib} for s in [base, *rows]]}, indent=1))
    plot(rows, REPO / "benchmarks" / "scale_bench.png")
    print(f"wrote {OUT / 'scale_bench.json'} and benchmarks/scale_bench.png")


if __name__ == "__main__":
    main()
