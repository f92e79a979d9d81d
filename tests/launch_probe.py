"""Stand-in for ``python -m dist_train`` in the launch-file tests (``GIANTGCN_MODULE=launch_probe``).

Takes the trainer's arguments (``--data D --out O [--config C] [key=value ...]``),
discovers the World exactly as the trainer does, joins the process group, all-reduces
1.0 and writes ``O/rank<r>.json``. With ``PROBE_HOLD_S=S`` it then waits up to S seconds
for SIGTERM, writes ``O/rank<r>.stopped`` and exits 75, like the trainer's preemption path.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from dataclasses import asdict
from pathlib import Path

from dist_train.runtime import process_group as pg
from dist_train.runtime.env import discover_world_from_os


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--config")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    world = discover_world_from_os()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with pg.distributed(world, device="cpu", timeout_s=60):
        total = pg.all_reduce_sum(1.0)
        record = {**asdict(world), "sum": total, "data": args.data, "config": args.config,
                  "overrides": args.overrides}
        (out / f"rank{world.rank}.json").write_text(json.dumps(record))
        print(json.dumps(record), flush=True)
    hold = float(__import__("os").environ.get("PROBE_HOLD_S", "0"))
    if hold and stop.wait(hold):
        (out / f"rank{world.rank}.stopped").write_text("SIGTERM")
        return 75
    return 0


if __name__ == "__main__":
    sys.exit(main())
