"""``giantgcn-train`` / ``python -m dist_train``: one entry point for every launcher.

The same command runs under torchrun, ``srun``, ``mpiexec`` or plain ``python``:
:func:`dist_train.runtime.env.discover_world_from_os` finds out which. Set-up failures on any
rank are gathered and reported by every rank, so a bad shard on rank 3 is a clear
error everywhere instead of a hang at the first collective.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import logging
import socket
import sys
from pathlib import Path

import numpy as np
import torch.distributed as dist

from dist_train.config.schema import Config, config_hash, load_config, save_config
from dist_train.data.exact_graph import load_exact_graph
from dist_train.data.shards import LocalGraph, assign_parts, load_local_graph
from dist_train.loop.failures import DivergenceError, Preempted
from dist_train.loop.metrics import summary_line
from dist_train.loop.trainer import Trainer
from dist_train.netsetup import InterfaceSetter, name_the_lost
from dist_train.runtime import peers
from dist_train.runtime import process_group as pg
from dist_train.runtime.agreement import check_ranks_agree
from dist_train.runtime.env import World, discover_world_from_os
from dist_train.runtime.signals import EXIT_REQUEUE, StopFlag, install_stop_handlers
from partition import load_manifest, verify_dataset
from partition.errors import InputError, print_error_line

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
    ap.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. optim.lr=0.003")
    return ap.parse_args(argv)


def setup_logging(rank: int) -> None:
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format=f"[rank {rank}] %(levelname)s %(message)s", stream=sys.stderr)


def prepare_rank(cfg: Config, world: World,
                 run_dir: Path | None = None) -> tuple[LocalGraph, dict, list[int]]:
    """Verify and open this rank's shards. Raises InputError on anything wrong.

    Stamps of files already hashed go to ``run_dir/.verified``: a restart after a dead
    rank or a preemption does not re-read every shard.
    """
    data = cfg.data.path
    manifest = load_manifest(data)
    counts = [int(p["num_train"]) for p in manifest["parts"]]
    assignment = assign_parts(counts, world.world_size)
    mine = assignment[world.rank]
    cache = run_dir / ".verified" if run_dir is not None else None
    verify_dataset(data, parts=mine, cache_dir=cache)  # checksums of the files this rank will map
    if cfg.sampler.mode == "exact":  # whole parts, structure-only boundary and owners included
        graph = load_exact_graph(data, mine, world.rank, assignment)
    else:
        graph = load_local_graph(data, mine)
    check_trainable(data, manifest, graph)
    return graph, manifest, mine


def check_trainable(data: str, manifest: dict, graph: LocalGraph) -> None:
    """A dataset with no training node, or a split node without a label, is refused in one line.

    ``giantgcn-partition`` refuses both (issue 10); this catches datasets written
    otherwise, which used to end in a traceback on every rank at the first epoch. Loss
    and accuracy are computed on split nodes only, so checking their labels here is
    what guarantees no unlabelled node (y = -1) reaches them.
    """
    if int(manifest.get("num_train", 0)) == 0:
        raise InputError(f"{data}: the dataset has an empty train split (num_train 0 in manifest.json); "
                         "partition a source with labelled training nodes")
    y = np.asarray(graph.y)
    for name in ("train", "val", "test"):
        ids = np.asarray(getattr(graph, f"{name}_idx"))
        unlabelled = ids[y[ids] < 0]
        if unlabelled.size:
            raise InputError(f"{data}: parts {graph.part_ids}: {unlabelled.size} {name} nodes have "
                             f"no label (y = -1), e.g. global node {graph.global_ids[unlabelled[0]]}; "
                             "re-run giantgcn-partition")


def warn_if_halo_short(manifest: dict, cfg: Config) -> None:
    """Say so when the halo is shallower than the model (measured: ~1 point on Cora, 8 parts).

    A node of the outermost halo ring keeps only its edges to local nodes, so an L-layer
    model over an H-hop halo (H < L) aggregates truncated rows at part borders: the
    result depends on the cut. H >= L makes full-neighbourhood training exact.
    """
    hops, layers = int(manifest.get("halo_hops", 0)), cfg.model.num_layers
    if int(manifest["num_parts"]) == 1 or hops >= layers or cfg.sampler.mode == "exact":
        return
    # loud only where exactness was asked for (all neighbours); sampling approximates anyway
    exact = all(f == -1 for f in cfg.sampler.fanouts)
    logging.log(logging.WARNING if exact else logging.INFO,
                "%s has a %d-hop halo but the model has %d layers: neighbourhoods are cut at part "
                "borders (approximate); partition with --halo-hops %d for exact %d-hop neighbourhoods",
                cfg.data.path, hops, layers, layers, layers)


def check_run_dir(run_dir: Path) -> None:
    """``--out`` must be (or become) a directory: found at start-up, not at the first checkpoint."""
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(f"--out {run_dir}: exists and is not a directory")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)  # every rank: the same shared directory
    except OSError as err:
        raise InputError(f"--out {run_dir}: cannot create it: {err.strerror or err}") from None


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
    stop = StopFlag()
    install_stop_handlers(stop)
    interface = InterfaceSetter(world, cfg.dist.init_timeout_s or cfg.dist.timeout_s)
    interface.check_route()  # before the rendezvous: no route is one line now, not a timeout
    device = pg.init_distributed(world, device=cfg.dist.device, backend=cfg.dist.backend,
                                 timeout_s=cfg.dist.timeout_s, init_timeout_s=cfg.dist.init_timeout_s,
                                 before_init=interface)
    beacon = peers.Beacon(interface.address)
    table: list[peers.Peer] = []
    try:
        table = peers.gather_peers(socket.gethostname(), interface.address, beacon.port)
        return train_rank(args, cfg, world, device, stop)
    except RuntimeError as err:
        if isinstance(err, pg.CollectiveError) or pg.is_comm_failure(err):
            raise name_the_lost(err, table, world.rank, cfg.dist.timeout_s) from err
        raise
    finally:
        gc.collect()  # train_rank dropped the trainer: DDP goes before the process group
        pg.destroy_distributed()
        beacon.close()


def train_rank(args: argparse.Namespace, cfg: Config, world: World, device, stop: StopFlag) -> int:
    """Set-up agreed by every rank, then the training loop; 0 when the final line is written."""
    run_dir = Path(args.out)
    trainer: Trainer | None = None
    try:
        graph, manifest, mine = None, None, []
        error = None
        try:
            check_run_dir(run_dir)
            graph, manifest, mine = prepare_rank(cfg, world, run_dir)
            if args.resume and not (run_dir / "checkpoints").is_dir():
                raise InputError(f"--resume: no checkpoint in {run_dir / 'checkpoints'}")
        except InputError as err:
            error = str(err)
        agree_on_setup(error, world)
        manifest_id = hashlib.sha256(Path(cfg.data.path, "manifest.json").read_bytes()).hexdigest()[:16]
        check_ranks_agree(cfg, manifest_id)
        if world.rank == 0:
            run_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, run_dir / "config.yaml")
            logging.info("world %d ranks (%s), device %s; parts per rank: %s", world.world_size,
                         world.launcher, device, assign_parts([int(p["num_train"]) for p in manifest["parts"]],
                                                              world.world_size))
            warn_if_halo_short(manifest, cfg)
        pg.barrier()
        logging.getLogger(__name__).debug("rank %d parts %s", world.rank, mine)
        trainer = Trainer(cfg, graph, int(manifest["num_classes"]), world.rank, world.world_size,
                          device, run_dir, stop=stop,
                          identity={"manifest": manifest_id, "config": config_hash(cfg)})
        final = trainer.fit()
        if world.rank == 0:
            print(summary_line(PROG, final, str(run_dir / "metrics.jsonl")))
        return 0
    finally:
        # DDP's reducer holds a reference to the process group. Freed after the group is
        # destroyed, it runs gloo's blocking destructor with the GIL held while gloo's
        # worker thread needs the GIL to free a finished work's tensors: a rank that hangs
        # after the final line (seen 1 run in ~12; pytorch#56297). Free it first (a traceback
        # keeps this frame, so the name must be cleared here, not left to the caller).
        trainer = None


def main(argv: list[str] | None = None) -> int:
    try:
        return run(parse_args(argv))
    except InputError as err:
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
    except pg.DistributedError as err:  # a rank missing at start-up, or dead / hung mid-run
        print_error_line(f"{PROG}: error: {' '.join(str(err).split())}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
