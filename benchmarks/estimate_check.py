"""``giantgcn-partition --dry-run`` estimate vs the measured whole-run peak RSS (issue 12).

Each configuration is run twice: ``--dry-run`` (its "total" peak) and for real under
``/usr/bin/time -v`` (Maximum resident set size), then one table row: estimate, measured,
ratio. Not part of CI (minutes; ~1 GB of disk under WORK).

    PYTHONPATH=. .venv/bin/python benchmarks/papers_shaped.py build /tmp/papers --nodes 5e5
    PYTHONPATH=. .venv/bin/python benchmarks/estimate_check.py /tmp/work --papers /tmp/papers
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

CONFIGS = [
    "--input synthetic:nodes=100000",
    "--input synthetic:nodes=100000 --method kaminpar",
    "--input synthetic:nodes=1000000",
    "--input synthetic:nodes=1000000 --feature-dtype float16",
    "--input synthetic:nodes=1000000 --method kaminpar",
    "--input synthetic:nodes=1000000 --memory-budget 64M",
    "--input ogb:PAPERS",
    "--input ogb:PAPERS --feature-dtype float16",
    "--input ogb:PAPERS --method kaminpar",
]
"""Command-line options per row; PAPERS is replaced by --papers (rows skipped without it)."""

NPY_CONFIGS = [
    "--input npy:NPY --num-parts 8",
    "--input npy:NPY --num-parts 32 --method kaminpar --feature-dtype float16",
    "--input npy:NPY --num-parts 8 --halo-hops 0 --cache-budget 0.5 --memory-budget 64M",
]
"""``--npy DIR``: rows on a ``benchmarks/npy_powerlaw.py`` directory (numpy-made, not ours)."""

LARGE = "--input synthetic:nodes=5000000,degree=40.8,features=128 --num-parts 8"
"""~10^8 undirected edges (1.02·10^8 input edges), 2.5 GB of float32 features."""
LARGE_CONFIGS = [LARGE, f"{LARGE} --method kaminpar",
                 f"{LARGE} --feature-dtype float16 --halo-hops 0 --cache-budget 0.1"]
"""``--large``: the 10^8-edge rows (minutes each, up to ~6 GB)."""


def estimate_bytes(opts: list[str]) -> int:
    """The dry run's total peak (bytes), parsed from its "total" row (GiB, two decimals)."""
    out = subprocess.run([sys.executable, "-m", "partition", *opts, "--dry-run"], check=True,
                         capture_output=True, text=True).stdout
    m = re.search(r"^total\s+([\d.]+)", out, re.M)
    assert m, out
    return int(float(m.group(1)) * 2**30)


def measured_bytes(opts: list[str], out: Path) -> int:
    """Whole-run peak RSS (bytes) of the real run: /usr/bin/time -v's Maximum resident set size."""
    r = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "partition", *opts,
                        "--out", str(out), "--force", "--quiet"], capture_output=True, text=True)
    shutil.rmtree(out, ignore_errors=True)
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    if r.returncode != 0 or m is None:
        raise SystemExit(f"{' '.join(opts)} failed:\n{r.stderr[-2000:]}")
    return int(m.group(1)) * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("work", type=Path, help="folder for the real runs' outputs (removed after each)")
    ap.add_argument("--papers", type=Path, help="a papers_shaped.py build directory")
    ap.add_argument("--only", help="run only the rows containing this text")
    ap.add_argument("--large", action="store_true", help="the 10^8-edge rows instead (LARGE_CONFIGS)")
    ap.add_argument("--npy", type=Path, help="a benchmarks/npy_powerlaw.py directory: its rows instead")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print("| options | estimate MiB | measured MiB | estimate / measured |\n|---|---:|---:|---:|")
    configs = LARGE_CONFIGS if args.large else NPY_CONFIGS if args.npy else CONFIGS
    for config in configs:
        if ("PAPERS" in config and args.papers is None) or (args.only and args.only not in config):
            continue
        opts = config.replace("PAPERS", str(args.papers)).replace("NPY", str(args.npy)).split()
        est, got = estimate_bytes(opts), measured_bytes(opts, args.work / "out")
        print(f"| `{' '.join(opts)}` | {est / 2**20:,.0f} | {got / 2**20:,.0f} | {est / got:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
