"""``giantgcn-plot RUN_DIR [RUN_DIR ...]`` (also ``giantgcn-train --plot``, ``python -m dist_train.report``).

Draws ``curves.png`` from the runs' ``metrics.jsonl`` (``dist_train.report.curves``): one
run goes to ``RUN_DIR/curves.png``, several to ``curves.png`` in the current directory
(compared on one figure), unless ``--out`` says where. Works on a run still training
(the epochs so far). Bad input is one line and exit status 2, as the other commands.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from partition.errors import InputError, print_error_line

PROG = "giantgcn-plot"

log = logging.getLogger(__name__)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise InputError(f"{message} (see --help)")


def default_out(run_dirs: list[str]) -> Path:
    """``RUN_DIR/curves.png`` for one run, ``./curves.png`` for a comparison."""
    return Path(run_dirs[0]) / "curves.png" if len(run_dirs) == 1 else Path("curves.png")


def plot(run_dirs: list[str], out: str | None = None) -> Path:
    """Draw ``run_dirs`` into ``out`` (default :func:`default_out`); the path written.

    Raises InputError (``PlotUnavailable`` without matplotlib) naming what is wrong.
    """
    from dist_train.report.curves import plot_runs
    from dist_train.report.runs import read_run

    for run_dir in run_dirs:  # the runs are named first: a bad one is the error, not --out
        read_run(run_dir)
    target = Path(out) if out else default_out(run_dirs)
    if not target.parent.is_dir():
        raise InputError(f"--out {target}: {target.parent} is not a directory")
    return plot_runs(run_dirs, target)


def plot_after_run(run_dir: Path) -> Path | None:
    """End of a training run (rank 0): ``run_dir/curves.png``, or one logged line saying why not.

    Never raises: a run that trained must not fail for its figure.
    """
    try:
        return plot([str(run_dir)])
    except InputError as err:
        log.warning("%s", err)
    except Exception as err:  # noqa: BLE001 - drawing is an extra; the run itself succeeded
        log.warning("curves.png not written: %s: %s", type(err).__name__, err)
    return None


def main(argv: list[str] | None = None) -> int:
    ap = _Parser(prog=PROG, description="Draw training curves (loss, accuracy, epoch time split, "
                                        "throughput) of one or more giantgcn-train run directories.")
    ap.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (several: one figure)")
    ap.add_argument("--out", help="PNG to write (default: RUN_DIR/curves.png, or ./curves.png for several)")
    try:
        args = ap.parse_args(argv)
        path = plot(args.runs, args.out)
    except InputError as err:
        print_error_line(f"{PROG}: error: {err}")
        return InputError.exit_code
    print(f"{PROG}: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
