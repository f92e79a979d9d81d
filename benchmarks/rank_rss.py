"""Run ``giantgcn-train`` in this process and record its peak RSS on exit (a benchmark shim).

    torchrun --nproc-per-node 2 benchmarks/rank_rss.py OUT_DIR --data ... [key=value ...]

torchrun starts one copy per rank; each writes ``OUT_DIR/rss-rank<R>.json`` with its own
``ru_maxrss`` (resident pages, mapped shard files included), so a benchmark sees every
rank's peak instead of only the largest child's that ``wait4`` on torchrun would give.
It also records the RSS right after the imports (torch, PyG, numba: the part of a
rank's memory that no partitioning can shrink), and the peak reached before the first
evaluation starts (``train_peak_rss_mib``: the training steps alone) with where the
pages are at that moment (``train_end_smaps_mib``: resident MiB per mapped file and anon).
The library is untouched: this file only wraps ``dist_train.cli.main``.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path


def main() -> int:
    out = Path(sys.argv[1])
    rank = int(os.environ.get("RANK", "0"))
    from dist_train.cli import main as train_main
    from dist_train.loop.trainer import Trainer

    marks: dict[str, float] = {}
    evaluate = Trainer.evaluate

    def marked(self):  # the first evaluation: what the training steps alone reached
        if "train_peak_rss_mib" not in marks:
            marks["train_peak_rss_mib"] = _peak_mib()
            marks["train_end_smaps_mib"] = _smaps_mib()
        return evaluate(self)

    Trainer.evaluate = marked
    with open("/proc/self/statm") as f:
        after_imports_mib = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    try:
        return train_main(sys.argv[2:])
    finally:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"rss-rank{rank}.json").write_text(json.dumps(
            {"rank": rank, "peak_rss_mib": _peak_mib(), "after_imports_mib": after_imports_mib,
             **marks}))


def _smaps_mib() -> dict[str, float]:
    """Resident MiB now, by mapping: each mapped file (its name), ``[anon]`` (heap,
    anonymous maps, stacks) -- where a rank's pages are, beside the single peak figure."""
    out: dict[str, float] = {}
    name = "[anon]"
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            if not head:
                continue
            if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                name = head[5] if len(head) > 5 and head[5].startswith("/") else "[anon]"
            elif head[0] == "Rss:":
                out[name] = out.get(name, 0.0) + int(head[1]) / 1024
    return {k: round(v, 2) for k, v in sorted(out.items(), key=lambda kv: -kv[1]) if v >= 0.5}


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


if __name__ == "__main__":
    sys.exit(main())
