"""``giantgcn-train`` / ``python -m dist_train``: one entry point for every launcher.

The same command runs under torchrun, ``srun``, ``mpiexec`` or plain ``python``:
:func:`dist_train.runtime.env.discover_world_from_os` finds out which. Everything past the
argument parsing is :func:`dist_train.api.train` (the Python API); this module turns its
exceptions into one line on stderr and an exit status.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from dist_train.api import DistributedError, DivergenceError, Preempted, resolve_config, train
from dist_train.loop.metrics import summary_line
from dist_train.loop.setup import agree_on_setup, prepare_rank, warn_if_halo_short
from dist_train.netsetup import InterfaceSetter
from dist_train.report.cli import plot
from dist_train.runtime.env import discover_world_from_os
from dist_train.runtime.signals import EXIT_REQUEUE
from partition.errors import InputError, print_error_line, reported_here
from partition.progress import map_big_allocations

__all__ = ["InterfaceSetter", "agree_on_setup", "main", "parse_args", "prepare_rank",
           "run", "setup_logging", "warn_if_halo_short"]
# (set-up helpers re-exported from where they moved with the Python API, for older callers)

PROG = "giantgcn-train"


class _Parser(argparse.ArgumentParser):
    """Argument errors as InputError: one line, no usage dump (as giantgcn-partition)."""

    def error(self, message: str):  # type: ignore[override]
        raise InputError(f"{message} (see --help)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = _Parser(prog=PROG, description="Train a GCN on a giantgcn dataset across ranks.")
    ap.add_argument("--data", help="dataset directory written by giantgcn-partition (or data.path=)")
    ap.add_argument("--config", help="YAML run config (see configs/)")
    ap.add_argument("--out", default="runs/latest", help="run directory (default: runs/latest)")
    ap.add_argument("--resume", action="store_true",
                    help="require a checkpoint in --out and continue from it (a run directory that "
                         "holds a checkpoint is resumed automatically anyway)")
    ap.add_argument("--plot", nargs="+", metavar="RUN_DIR",
                    help="draw curves.png of finished or running run directories and exit (several: "
                         "one figure, ./curves.png); same as giantgcn-plot")
    ap.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. optim.lr=0.003")
    return ap.parse_args(argv)


def setup_logging(rank: int) -> None:
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format=f"[rank {rank}] %(levelname)s %(message)s", stream=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """The command line as a call of :func:`dist_train.api.train`; prints the closing line."""
    if args.plot:
        print(f"{PROG}: wrote {plot(args.plot)}")
        return 0
    # glibc's sliding mmap threshold keeps freed batch-sized arrays (each a few MiB, sized
    # by the batch's reach, which grows with the graph) in the heap of the thread that
    # made them; fixed, each is returned at free (the partitioner does the same)
    map_big_allocations()
    cfg = resolve_config(args.config, args.data, args.overrides)
    world = discover_world_from_os()
    setup_logging(world.rank)
    final = train(cfg, run_dir=args.out, resume=args.resume, world=world)
    if world.rank == 0:
        print(summary_line(PROG, final, str(Path(args.out) / "metrics.jsonl")))
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return run(parse_args(argv))
    except InputError as err:
        if reported_here(err):  # an agreed set-up error: rank 0 prints it for every rank
            print_error_line(f"{PROG}: error: {err}")
        return InputError.exit_code
    except Preempted as err:
        print_error_line(f"{PROG}: {err}; exiting with {EXIT_REQUEUE} so the job is requeued")
        return EXIT_REQUEUE
    except KeyboardInterrupt:  # Ctrl-C twice (signals.py): no checkpoint of this step
        print_error_line(f"{PROG}: stopped by a second Ctrl-C before checkpointing; the same command "
                         "resumes from the last checkpoint")
        return 130
    except DivergenceError as err:
        print_error_line(f"{PROG}: error: {err}")
        return 3
    except DistributedError as err:  # a rank missing at start-up, or dead / hung mid-run
        print_error_line(f"{PROG}: error: {' '.join(str(err).split())}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
