"""The Python API: ``from dist_train import train`` for notebooks and users' own launchers.

``giantgcn-train`` is a thin wrapper over :func:`train`, so a run started from Python is
the run the command line starts: same config checks, same start-up agreement between
ranks, same ``RUN_DIR`` contents. Errors are raised, not printed: :class:`InputError`
(bad config, dataset, run directory or model; one line naming what), ``DivergenceError``,
``Preempted`` and ``DistributedError`` (all in ``dist_train.api``).

Two ways in (GraphStorm users ask to embed training without its launcher, graphstorm#1339):

- no process group yet (a notebook, ``python my_script.py``, or under torchrun / srun /
  mpiexec): the world is read from the launcher's environment, a group is created and
  destroyed again at the end;
- a process group the caller already created (``dist.init_process_group`` in their own
  launcher): it is used as it is, and left alive.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from dist_train.config.schema import Config, config_hash, config_to_dict, load_config, save_config
from dist_train.data.shards import assign_parts
from dist_train.loop.failures import DivergenceError, Preempted
from dist_train.loop.setup import (
    agree_on_setup,
    check_user_model,
    prepare_rank,
    warn_if_halo_short,
)
from dist_train.loop.tensorboard import require_tensorboard
from dist_train.loop.trainer import Trainer
from dist_train.netsetup import InterfaceSetter, ifnames_restored, name_the_lost
from dist_train.report.cli import plot_after_run
from dist_train.rundir import RunDirLock, open_run_dir, write_on_rank0, writing
from dist_train.runtime import peers
from dist_train.runtime import process_group as pg
from dist_train.runtime.agreement import check_ranks_agree
from dist_train.runtime.env import World, discover_world_from_os
from dist_train.runtime.process_group import DistributedError
from dist_train.runtime.signals import StopFlag, stop_handlers
from partition.errors import InputError
from partition.store.identity import dataset_id, manifest_graph_id
from partition.wording import counted

__all__ = ["DistributedError", "DivergenceError", "InputError", "Preempted", "resolve_config", "train"]

log = logging.getLogger(__name__)

ConfigLike = Config | Mapping[str, Any] | str | os.PathLike | None


def resolve_config(config: ConfigLike = None, data: str | os.PathLike | None = None,
                   overrides: Sequence[str] = ()) -> Config:
    """A checked :class:`Config` from a ``Config``, a nested dict, a YAML path or None (defaults).

    Precedence: ``config`` < ``overrides`` (``"optim.lr=0.003"`` strings) < ``data``
    (the dataset directory, ``data.path``). A dict is checked like a YAML file: unknown
    keys and wrong types raise InputError naming the key. Raises InputError when no
    dataset is given either way.
    """
    base: Mapping[str, Any] | None = None
    yaml_path = None
    if isinstance(config, Config):
        base = config_to_dict(config)
    elif isinstance(config, Mapping):
        base = config
    elif config is not None:
        yaml_path = os.fspath(config)
    extra = [f"data.path={os.fspath(data)}"] if data is not None else []
    cfg = load_config(yaml_path, [*overrides, *extra], base=base)
    if not cfg.data.path:
        raise InputError("--data: no dataset directory given (or set data.path in the config)")
    return cfg


def train(config: ConfigLike = None, data: str | os.PathLike | None = None,
          run_dir: str | os.PathLike = "runs/latest", *, overrides: Sequence[str] = (),
          resume: bool = False, world: World | None = None) -> dict[str, Any]:
    """Train on the dataset directory ``data``, writing ``run_dir``; the final metrics.

    Every rank calls it (under a launcher, or in a group the caller created); every rank
    returns the same dict: ``best_epoch``, ``val_acc`` / ``test_acc`` (fractions, at the
    best validation epoch, reduced over ranks), ``epochs_run``, ``total_steps``,
    ``wall_time_s`` (seconds). A ``run_dir`` holding a checkpoint is resumed; ``resume=True``
    insists on one. ``world`` overrides launcher discovery (ignored inside an existing group).

    Raises InputError (one line naming the key, file or class), DivergenceError (a
    non-finite loss; lower ``optim.lr``), Preempted (SIGTERM/SIGUSR1: checkpoint written)
    and DistributedError (a rank missing, dead or hung).
    """
    cfg = resolve_config(config, data, overrides)
    run_dir = Path(run_dir)
    with stop_handlers(StopFlag()) as stop, ifnames_restored():  # a stop while waiting counts
        if dist.is_initialized():
            joined = _joined_world()
            return _run(cfg, joined, pg.pick_device(cfg.dist.device, joined.local_rank), run_dir,
                        resume, stop)
        world = world or discover_world_from_os()
        interface = InterfaceSetter(world, cfg.dist.init_timeout_s or cfg.dist.timeout_s)
        interface.check_route()  # before the rendezvous: no route is one line now, not a timeout
        device = pg.init_distributed(world, device=cfg.dist.device, backend=cfg.dist.backend,
                                     timeout_s=cfg.dist.timeout_s, init_timeout_s=cfg.dist.init_timeout_s,
                                     before_init=interface)
        beacon = peers.Beacon(interface.address)
        table: list[peers.Peer] = []
        try:
            table = peers.gather_peers(socket.gethostname(), interface.address, beacon.port)
            return _run(cfg, world, device, run_dir, resume, stop)
        except RuntimeError as err:  # name who is gone: the backend rarely does
            if isinstance(err, pg.CollectiveError) or pg.is_comm_failure(err):
                raise name_the_lost(err, table, world.rank, cfg.dist.timeout_s) from err
            raise
        finally:
            gc.collect()  # _run dropped the trainer: DDP goes before the process group
            pg.destroy_distributed()
            beacon.close()


def _joined_world() -> World:
    """This rank's place in the caller's process group (its local rank: the current GPU)."""
    local = torch.cuda.current_device() if torch.cuda.is_available() else 0
    return World(dist.get_rank(), dist.get_world_size(), local, 1, "", 0, "existing")


def _setup(cfg: Config, world: World, run_dir: Path, resume: bool,
           held: list[RunDirLock]) -> tuple[Any, dict, str]:
    """Every rank opens its shards; a failure anywhere is raised everywhere. ``(graph, manifest,
    dataset id)``; rank 0's run-directory lock goes into ``held`` (the caller releases it)."""
    graph, manifest, error = None, None, None
    try:
        lock = open_run_dir(run_dir, world.rank, world.job_id)  # one owner per --out
        if lock is not None:
            held.append(lock)
        graph, manifest, _ = prepare_rank(cfg, world, run_dir)
        check_user_model(cfg, graph, int(manifest["num_classes"]))
        if cfg.train.tensorboard:
            require_tensorboard()
        if resume and not (run_dir / "checkpoints").is_dir():
            raise InputError(f"--resume: no checkpoint in {run_dir / 'checkpoints'}")
    except InputError as err:
        error = str(err)
    agree_on_setup(error, world)
    data_id = dataset_id(manifest)  # from content: an identical re-partition is the same dataset
    check_ranks_agree(cfg, data_id)
    assert manifest is not None
    return graph, manifest, data_id


def run_identity(manifest: dict, data_id: str, cfg: Config) -> dict[str, str]:
    """What a checkpoint records of what it was trained on: the dataset id (a resume must
    match it), the graph id when the dataset has one (``giantgcn-predict`` accepts another
    partitioning of that graph), the config hash."""
    ident = {"dataset": data_id, "config": config_hash(cfg)}
    graph = manifest_graph_id(manifest)
    return ident | ({"graph": graph} if graph else {})


def _write_config(cfg: Config, run_dir: Path) -> None:
    with writing(run_dir / "config.yaml", "nothing trained yet"):
        save_config(cfg, run_dir / "config.yaml")


def _run(cfg: Config, world: World, device: torch.device, run_dir: Path, resume: bool,
         stop: StopFlag) -> dict[str, Any]:
    """Set-up agreed by every rank, then the training loop; the final metrics."""
    trainer: Trainer | None = None
    held: list[RunDirLock] = []
    try:
        graph, manifest, data_id = _setup(cfg, world, run_dir, resume, held)
        write_on_rank0(_write_config, world.rank, cfg, run_dir)  # a full disk: same line on every rank
        if world.rank == 0:
            counts = [int(p["num_train"]) for p in manifest["parts"]]
            log.info("world %s (%s), device %s; parts per rank: %s", counted(world.world_size, "rank"),
                     world.launcher, device, assign_parts(counts, world.world_size))
            warn_if_halo_short(manifest, cfg)
        pg.barrier()
        trainer = Trainer(cfg, graph, int(manifest["num_classes"]), world.rank, world.world_size,
                          device, run_dir, stop=stop, identity=run_identity(manifest, data_id, cfg))
        final = trainer.fit()
        if world.rank == 0 and cfg.train.plot:
            plot_after_run(run_dir)
        return final
    finally:
        # DDP's reducer holds a reference to the process group. Freed after the group is
        # destroyed, it runs gloo's blocking destructor with the GIL held while gloo's
        # worker thread needs the GIL to free a finished work's tensors: a rank that hangs
        # after the final line (seen 1 run in ~12; pytorch#56297). Free it first (a traceback
        # keeps this frame, so the name must be cleared here, not left to the caller).
        trainer = None
        gc.collect()
        for lock in held:
            lock.release()
