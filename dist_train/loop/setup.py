"""Start-up of a run on every rank: the run directory, this rank's shards, agreed errors.

Set-up failures on any rank are gathered and raised by every rank, so a bad shard on
rank 3 is the same clear error everywhere instead of a hang at the first collective.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch.distributed as dist

from dist_train.config.schema import Config
from dist_train.data.exact_graph import load_exact_graph
from dist_train.data.shards import LocalGraph, assign_parts, load_local_graph
from dist_train.model.custom import is_custom, probe_model
from dist_train.model.models import build_model
from dist_train.runtime.env import World
from partition import load_manifest, verify_dataset
from partition.errors import AgreedError, InputError
from partition.store.identity import open_consistently
from partition.wording import counted


def prepare_rank(cfg: Config, world: World,
                 run_dir: Path | None = None) -> tuple[LocalGraph, dict, list[int]]:
    """Verify and open this rank's shards: ``(graph, manifest, part ids)``.

    Stamps of files already hashed go to ``run_dir/.verified``: a restart after a dead
    rank or a preemption does not re-read every shard. Every file is of one version of the
    dataset even while ``giantgcn-partition --force`` replaces it (:func:`open_consistently`:
    retried once, then "the dataset changed while it was being opened"). Raises InputError
    (DatasetError) on a missing, corrupt or other-version dataset, and on one that cannot be
    trained (:func:`check_trainable`).
    """
    return open_consistently(cfg.data.path, lambda: _open_rank(cfg, world, run_dir))


def _open_rank(cfg: Config, world: World, run_dir: Path | None) -> tuple[LocalGraph, dict, list[int]]:
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


def agree_on_setup(error: str | None, world: World) -> None:
    """Every rank learns whether any rank failed set-up, and raises the same error: an
    :class:`partition.errors.AgreedError` (an InputError) that rank 0 alone prints."""
    errors: list[str | None] = [None] * world.world_size
    dist.all_gather_object(errors, error)
    failed = [(r, e) for r, e in enumerate(errors) if e]
    if failed:
        r, e = failed[0]
        more = f" (and {counted(len(failed) - 1, 'more rank')} failed)" if len(failed) > 1 else ""
        raise AgreedError(f"rank {r}: {e}{more}", reporter=world.rank == 0)


def check_user_model(cfg: Config, graph: LocalGraph, num_classes: int) -> None:
    """For ``model.arch=package.module:ClassName``: import, build and run it once on a few of
    this rank's nodes, so a broken class is one agreed line at start-up (model/custom.py).

    Raises InputError naming the class. Built-in architectures are not probed.
    """
    m = cfg.model
    if not is_custom(m.arch):
        return
    model = build_model(m.arch, graph.x.shape[1], m.hidden, num_classes, m.num_layers, m.dropout,
                        m.norm, m.gcn_norm, m.kwargs)
    pool = graph.train_idx if graph.train_idx.shape[0] else np.arange(graph.num_inner)
    probe_model(model, m.arch, graph.x, graph.indptr, graph.indices, graph.degree,
                list(cfg.sampler.fanouts), np.asarray(pool[:4], dtype=np.int64), num_classes)
