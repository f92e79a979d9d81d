"""``giantgcn-train`` / ``python -m dist_train``: one entry point for every launcher.

The same command runs under torchrun, ``srun``, ``mpiexec`` or plain ``python``:
:func:`dist_train.env.discover_world_from_os` finds out which. Set-up failures on any
rank are gathered and reported by every rank, so a bad shard on rank 3 is a clear
error everywhere instead of a hang at the first collective.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
from pathlib import Path

import torch.distributed as dist

from dist_train import process_group as pg
from dist_train.config import Config, config_hash, load_config, save_config
from dist_train.env import World, discover_world_from_os
from dist_train.shards import LocalGraph, assign_parts, load_local_graph
from dist_train.signals import EXIT_REQUEUE, StopFlag, install_stop_handlers
from dist_train.trainer import DivergenceError, Preempted, Trainer
from partition import load_manifest, verify_dataset
from partition.errors import InputError

PROG = "giantgcn-train"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog=PROG, description="Train a GCN on a giantgcn dataset across ranks.")
    ap.add_argument("--data", help="dataset directory written by giantgcn-partition (or data.path=)")
    ap.add_argument("--config", help="YAML run config (see configs/)")
    ap.add_argument("--out", default="runs/latest", help="run directory (default: runs/latest)")
    ap.add_argument("--resume", action="store_true",
                    help="require a checkpoint in --out and continue from it (a run directory that "
                         "holds a checkpoint is resumed automatically anyway)")
    ap.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. optim.lr=0.003")
    return ap.parse_args(argv)


def setup_logging(rank: int) -> None:
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format=f"[rank {rank}] %(levelname)s %(message)s", stream=sys.stderr)


def prepare_rank(cfg: Config, world: World) -> tuple[LocalGraph, dict, list[int]]:
    """Verify and open this rank's shards. Raises InputError on anything wrong."""
    data = cfg.data.path
    manifest = load_manifest(data)
    counts = [int(p["num_train"]) for p in manifest["parts"]]
    assignment = assign_parts(counts, world.world_size)
    mine = assignment[world.rank]
    verify_dataset(data, parts=mine)  # checksums of the files this rank will map
    return load_local_graph(data, mine), manifest, mine


def agree_on_setup(error: str | None, world: World) -> None:
    """Every rank learns whether any rank failed set-up, and raises the same error."""
    errors: list[str | None] = [None] * world.world_size
    dist.all_gather_object(errors, error)
    failed = [(r, e) for r, e in enumerate(errors) if e]
    if failed:
        r, e = failed[0]
        raise InputError(f"rank {r}: {e}" + (f" (and {len(failed) - 1} more ranks failed)" if len(failed) > 1 else ""))


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, list(args.overrides) + ([f"data.path={args.data}"] if args.data else []))
    if not cfg.data.path:
        raise InputError("--data: no dataset directory given (or set data.path in the config)")
    world = discover_world_from_os()
    setup_logging(world.rank)
    run_dir = Path(args.out)
    stop = StopFlag()
    install_stop_handlers(stop)
    device = pg.init_distributed(world, device=cfg.dist.device, backend=cfg.dist.backend,
                                 timeout_s=cfg.dist.timeout_s)
    try:
        graph, manifest, mine = None, None, []
        error = None
        try:
            graph, manifest, mine = prepare_rank(cfg, world)
            if args.resume and not (run_dir / "checkpoints").is_dir():
                raise InputError(f"--resume: no checkpoint in {run_dir / 'checkpoints'}")
        except InputError as err:
            error = str(err)
        agree_on_setup(error, world)
        manifest_id = hashlib.sha256(Path(cfg.data.path, "manifest.json").read_bytes()).hexdigest()[:16]
        pg.check_same_across_ranks("dataset manifest sha256", manifest_id)
        pg.check_same_across_ranks("config hash", config_hash(cfg))
        if world.rank == 0:
            run_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, run_dir / "config.yaml")
            logging.info("world %d ranks (%s), device %s; parts per rank: %s", world.world_size,
                         world.launcher, device, assign_parts([int(p["num_train"]) for p in manifest["parts"]],
                                                              world.world_size))
        pg.barrier()
        logging.getLogger(__name__).debug("rank %d parts %s", world.rank, mine)
        trainer = Trainer(cfg, graph, int(manifest["num_classes"]), world.rank, world.world_size,
                          device, run_dir, stop=stop,
                          identity={"manifest": manifest_id, "config": config_hash(cfg)})
        final = trainer.fit()
        if world.rank == 0:
            print(f"{PROG}: done: best val {final['val_acc']:.4f} at epoch {final['best_epoch']}, "
                  f"test {final['test_acc']:.4f}; metrics in {run_dir / 'metrics.jsonl'}")
        return 0
    finally:
        pg.destroy_distributed()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return run(args)
    except InputError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return InputError.exit_code
    except Preempted as err:
        print(f"{PROG}: {err}; exiting with {EXIT_REQUEUE} so the job is requeued", file=sys.stderr)
        return EXIT_REQUEUE
    except DivergenceError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
