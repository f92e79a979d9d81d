"""How much of a rank's memory grows with the graph, at P parts on P ranks (issue 15).

Issue 15's target: in exact mode with a cache budget of 0.1, at P=8, the
graph-proportional peak RSS of a rank is at most 1.3 x (whole-graph bytes / 8). A rank's
peak also holds what does not grow with the graph at all (the interpreter, torch and
numba after import; the batches in flight, the model and the optimizer), and on any graph
this machine can hold at 8 ranks those dominate. So the graph-proportional part is measured
as a slope: the same run (same batch size, fanouts, model, steps) on two graphs of the
same kind that differ only in node count, and

    share = (rank peak on G2 - rank peak on G1) / ((whole bytes of G2 - of G1) / P)

with "rank peak" the largest rank's ``ru_maxrss`` (resident pages: heap and the shard
files it touched). One part on one rank, measured in the same run, is the baseline
(its share is against the whole graph: 1.0 would mean every byte of the graph resident).

    PYTHONPATH=. python benchmarks/rss_share.py [--nodes 1000000 2000000] [--parts 8]

The batches in flight are kept small by default (``sampler.batch_size=256
sampler.prefetch=1``; pass other ``key=value`` to change): a batch's sampled set grows with
the graph until the graph dwarfs the batch's reach, and that growth is not the graph's.
For the same reason the default graphs are 10^6 and 2·10^6 nodes: at 2.5·10^5 nodes a
rank's share (3·10^4 inner nodes) is smaller than one batch's two-hop reach (up to
3.9·10^4 nodes), and on the same code the slope was 1.58 from 2.5·10^5 to 10^6 nodes
against 1.36 from 10^6 to 2·10^6 (benchmarks/README.md).
Each run trains ``--steps`` steps of one epoch and then evaluates (exact, full
neighbourhoods, so every rank touches the rows of its val/test nodes' neighbourhoods).
Writes ``benchmarks/out/rss_share.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale_bench import OUT, REPO, mode_args, partition, train  # noqa: E402


def whole_bytes(manifest: dict) -> int:
    """Bytes of every file of a one-part dataset: features, CSR, labels, ids, degrees."""
    return sum(rec["bytes"] for rec in manifest["files"].values())


def where(smaps: dict[str, float], data: Path) -> dict[str, float]:
    """Resident MiB at the end of training by kind: ``[anon]`` (heap: id maps, batches,
    model), each shard file name (``x.npy``, ``indices.npy``, ... summed over parts), and
    ``libs`` (everything else mapped: the imports)."""
    out: dict[str, float] = {}
    for path, mib in smaps.items():
        key = path if path == "[anon]" else Path(path).name if path.startswith(str(data)) else "libs"
        out[key] = out.get(key, 0.0) + mib
    return out


def rank_peak(args: argparse.Namespace, nodes: int, parts: int, mode: str, work: Path) -> dict:
    """Partition ``nodes`` into ``parts``, train on ``parts`` ranks; largest rank's peaks (MiB)."""
    spec = f"synthetic:nodes={nodes},features={args.features}"
    flags, overrides = mode_args(mode)
    data = work / f"data-n{nodes}-p{parts}"
    a = argparse.Namespace(**{**vars(args), "input": spec, "root": None})
    partition(a, parts, flags, data)
    got = train(a, data, parts, overrides + [f"train.max_steps_per_epoch={args.steps}"],
                work / f"run-n{nodes}-p{parts}")
    above = [p - f for p, f in zip(got["peak"], got["fixed"], strict=True)]
    top = max(range(parts), key=lambda r: got["train_peak"][r])
    return {"where_mib": where(got["smaps"][top], data), "nodes": nodes, "parts": parts, "mode": mode, "peak_mib": max(got["peak"]),
            "train_peak_mib": max(got["train_peak"]), "fixed_mib": max(got["fixed"]),
            "above_imports_mib": max(above)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, nargs=2, default=[1_000_000, 2_000_000])
    ap.add_argument("--features", type=int, default=128)
    ap.add_argument("--parts", type=int, default=8)
    ap.add_argument("--mode", default="exact-h0-c0.1")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--config", default="configs/default.yaml")
    ap.add_argument("--work", default=str(REPO / "runs" / "rss_share"))
    ap.add_argument("overrides", nargs="*", metavar="key=value",
                    default=["sampler.batch_size=256", "sampler.prefetch=1"])
    args = ap.parse_args()
    args.epochs = 1
    work = Path(args.work).resolve()
    whole = {}
    for n in args.nodes:
        m = partition(argparse.Namespace(**{**vars(args), "input": f"synthetic:nodes={n},features={args.features}",
                                            "root": None}), 1, ["--halo-hops", "0"], work / f"whole-n{n}")
        whole[n] = whole_bytes(m) / 2**20
    rows = [rank_peak(args, n, p, mode, work)
            for p, mode in ((1, "local-h1"), (args.parts, args.mode)) for n in args.nodes]
    n1, n2 = args.nodes
    print(f"synthetic, {args.features} features: whole graph {whole[n1]:.0f} MiB at {n1:,} nodes, "
          f"{whole[n2]:.0f} MiB at {n2:,}; {args.steps} steps + exact evaluation; "
          f"load avg {os.getloadavg()[0]:.1f}")
    print(f"{'P':>3} {'mode':<14} {'nodes':>10} {'imports':>8} {'train pk':>8} {'run pk':>8} "
          f"{'whole/P':>8} {'train share':>11} {'run share':>9}")
    for r in rows:
        per = whole[r["nodes"]] / r["parts"]
        lo = next(q for q in rows if q["parts"] == r["parts"] and q["nodes"] == n1)
        grow = (whole[n2] - whole[n1]) / r["parts"]
        shares = ["" if r["nodes"] == n1 else f"{(r[k] - lo[k]) / grow:.2f}"
                  for k in ("train_peak_mib", "peak_mib")]
        print(f"{r['parts']:>3} {r['mode']:<14} {r['nodes']:>10,} {r['fixed_mib']:>8.0f} "
              f"{r['train_peak_mib']:>8.0f} {r['peak_mib']:>8.0f} {per:>8.0f} "
              f"{shares[0]:>11} {shares[1]:>9}")
    big = [r for r in rows if r["nodes"] == n2]
    small = {r["parts"]: r for r in rows if r["nodes"] == n1}
    keys = sorted({k for r in big for k in r["where_mib"]}, key=lambda k: -big[-1]["where_mib"].get(k, 0))
    print(f"resident MiB at the end of training, growth {n1:,} -> {n2:,} nodes (largest rank):")
    for r in big:
        grow = {k: r["where_mib"].get(k, 0) - small[r["parts"]]["where_mib"].get(k, 0) for k in keys}
        print(f"  P={r['parts']:<3} " + "  ".join(f"{k} {v:+.1f}" for k, v in grow.items() if abs(v) >= 0.5))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "rss_share.json").write_text(json.dumps({"whole_mib": whole, "rows": rows}, indent=1))
    print(f"share: growth of the largest rank's peak over the growth of whole/P; train pk: before "
          f"the first evaluation, run pk: whole run. Target at P={args.parts}: <= 1.3. "
          f"Wrote {OUT / 'rss_share.json'}")


if __name__ == "__main__":
    main()
