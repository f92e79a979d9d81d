"""``giantgcn-predict`` / ``python -m dist_train.predict``: score and embed every node of a dataset.

The same launchers as training (torchrun, ``srun``, ``mpiexec``, plain ``python``;
``dist_train.runtime``). Each rank maps only its own parts (the training plan,
``assign_parts``), computes its inner nodes exactly layer by layer
(:mod:`dist_train.predict.exact`), saving every finished (layer, part); rank 0 then
writes the output directory (:mod:`dist_train.predict.outputs`). A rerun after a dead
rank reuses what was saved. Set-up errors on any rank are agreed by all and reported
as one line (``giantgcn-predict: error: ...``, exit 2).
"""

from __future__ import annotations

import argparse
import gc
import logging
import resource
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dist_train.cli import setup_logging
from dist_train.data.shards import assign_parts
from dist_train.exchange import Exchange
from dist_train.loop.setup import agree_on_setup
from dist_train.predict.exact import LayerFiles, RankParts, exact_capable, exact_layers
from dist_train.predict.load_run import RunWeights, load_run, manifest_id
from dist_train.predict.outputs import DTYPES, open_work, work_dir, write_predictions
from dist_train.runtime import process_group as pg
from dist_train.runtime.env import discover_world_from_os
from partition import load_manifest, load_partition, verify_dataset
from partition.errors import InputError, print_error_line, reported_here
from partition.store.atomic_dir import check_out_dir
from partition.wording import counted

PROG = "giantgcn-predict"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise InputError(f"{message} (see --help)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = _Parser(prog=PROG, description="Predict every node of a giantgcn dataset with a trained run.")
    ap.add_argument("--data", required=True, help="dataset directory (the one the run trained on)")
    ap.add_argument("--run", "--run-dir", dest="run", required=True,
                    help="run directory written by giantgcn-train --out (under torchrun spell it --run-dir: "
                         "torchrun reads --run as its own --run-path)")
    ap.add_argument("--out", required=True, help="prediction directory to write")
    ap.add_argument("--checkpoint", help="a file in RUN/checkpoints/ (default: RUN/model.pt, best epoch)")
    ap.add_argument("--embeddings", action="store_true", help="also write the last hidden layer")
    ap.add_argument("--logits", action="store_true", help="also write the logits (float32)")
    ap.add_argument("--dtype", default="float32", choices=DTYPES, help="probabilities/embeddings dtype")
    ap.add_argument("--chunk", type=int, default=8192, help="target nodes per layer step (memory bound)")
    ap.add_argument("--force", action="store_true", help="replace an existing prediction directory")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    if args.chunk < 1:
        raise InputError(f"--chunk: {args.chunk} is not >= 1")
    return args


def _setup(args: argparse.Namespace, rank: int, world_size: int) -> tuple[dict, RunWeights, list[list[int]]]:
    """Every check that can fail on bad input, before any work (InputError naming the flag)."""
    check_out_dir(Path(args.out), args.force)
    manifest = load_manifest(args.data)
    weights = load_run(args.run, args.checkpoint, args.data, manifest)
    if args.embeddings and weights.model.num_layers < 2:
        raise InputError("--embeddings: the model has one layer, so no hidden layer to write")
    if not exact_capable(weights.model):  # the built-in sage, or gcn with gcn_norm=global
        arch = weights.cfg.model.arch
        if ":" in arch:
            raise InputError(f"--run {args.run}: model.arch={arch} is a user's model; giantgcn-predict "
                             "runs the built-in sage and gcn (gcn_norm=global) layer by layer across ranks")
        raise InputError(f"--run {args.run}: model.gcn_norm=sampled normalises inside sampled "
                         "subgraphs, so it has no exact full-graph prediction")
    plan = assign_parts([int(p["num_train"]) for p in manifest["parts"]], world_size)
    verify_dataset(args.data, parts=plan[rank])
    return manifest, weights, plan


def _info(args: argparse.Namespace, manifest: dict, w: RunWeights) -> dict:
    m = w.cfg.model
    return {"created_by": PROG, "model": {"arch": m.arch, "num_layers": m.num_layers, "hidden": m.hidden,
                                          "gcn_norm": m.gcn_norm, "norm": m.norm},
            "run": str(Path(args.run).resolve()), "weights": {"file": str(w.source.resolve()),
                                                               "which": w.which, "sha256": w.sha256},
            "dataset": {"path": str(Path(args.data).resolve()), "manifest_id": manifest_id(args.data),
                        "graph_id": manifest.get("graph_id"), "num_parts": manifest["num_parts"],
                        "source": manifest.get("source"), "num_nodes": manifest["num_nodes"],
                        "num_classes": manifest["num_classes"]}}


def _predict(args, world, manifest, weights, plan, device) -> tuple[dict, float]:
    job = {"weights_sha256": weights.sha256, "dataset": manifest_id(args.data)}
    if world.rank == 0:
        open_work(Path(args.out), job)
    pg.barrier()
    files = LayerFiles(work_dir(Path(args.out)))
    part_rank = np.empty(manifest["num_parts"], dtype=np.int64)
    for r, ps in enumerate(plan):
        part_rank[ps] = r
    shard = RankParts([load_partition(args.data, p) for p in plan[world.rank]], part_rank, world.rank,
                      world.world_size)
    model = weights.model.to(device)
    total = sum(p.num_inner for p in shard.parts) * model.num_layers
    t0 = time.perf_counter()
    with tqdm(total=total, desc=f"{PROG} rank 0 nodes x layers", unit=" nodes", file=sys.stderr,
              disable=args.quiet or world.rank != 0, unit_scale=True) as bar:
        exact_layers(model, shard, Exchange(device=device), args.chunk, device, files, bar.update)
    compute_s = time.perf_counter() - t0
    reused = int(pg.all_reduce_sum(float(files.reused)))  # also: every part's last layer is on disk
    rss = [0.0] * world.world_size
    rss[world.rank] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    rss = pg.all_reduce_sum(rss)
    if world.rank != 0:
        return {}, compute_s
    parts = [load_partition(args.data, p) for p in range(manifest["num_parts"])]
    info = _info(args, manifest, weights) | {"timings_s": {"compute": round(compute_s, 3)},
                                              "world_size": world.world_size,
                                              "peak_rss_mib_per_rank": [round(v, 1) for v in rss],
                                              "reused": [reused, manifest["num_parts"] * model.num_layers]}
    out = write_predictions(Path(args.out), args.force, files, parts, info, model.num_layers,
                            int(manifest["num_classes"]), weights.cfg.model.hidden, args.dtype,
                            args.logits, args.embeddings)
    return out, compute_s


def summary(out: Path, manifest: dict, seconds: float, world_size: int) -> str:
    """The two closing lines (rank 0 prints them): what was scored, how fast, from which
    weights, what was reused, and the files written. ``manifest``: the prediction manifest."""
    n = manifest["dataset"]["num_nodes"]
    files = ", ".join(f"{k} {v['dtype']}{v['shape']}" for k, v in manifest["files"].items())
    return (f"{PROG}: scored {counted(n, 'node')} in {seconds:.1f} s ({n / max(seconds, 1e-9):,.0f} nodes/s, "
            f"{counted(world_size, 'rank')}); weights {manifest['weights']['which']} from "
            f"{manifest['weights']['file']}; reused {manifest['reused'][0]} of {manifest['reused'][1]} "
            f"(layer, part) results of an earlier run\n{PROG}: wrote {out}/: {files}")


def run(args: argparse.Namespace) -> int:
    world = discover_world_from_os()
    setup_logging(world.rank)
    device = pg.init_distributed(world, device="auto")
    try:
        t0 = time.perf_counter()
        error, setup = None, None
        try:
            setup = _setup(args, world.rank, world.world_size)
        except InputError as err:
            error = str(err)
        agree_on_setup(error, world)
        manifest, weights, plan = setup
        if world.rank == 0 and weights.note:  # every rank found the same: say it once
            print(f"{PROG}: {weights.note}", flush=True)
        out, _ = _predict(args, world, manifest, weights, plan, device)
        pg.barrier()
        if world.rank == 0:
            print(summary(Path(args.out), out, time.perf_counter() - t0, world.world_size))
        return 0
    finally:
        gc.collect()
        pg.destroy_distributed()


def main(argv: list[str] | None = None) -> int:
    try:
        return run(parse_args(argv))
    except InputError as err:
        if reported_here(err):  # an agreed set-up error: rank 0 prints it for every rank
            print_error_line(f"{PROG}: error: {err}")
        return InputError.exit_code
    except pg.DistributedError as err:
        print_error_line(f"{PROG}: error: {' '.join(str(err).split())}")
        return 1


if __name__ == "__main__":
    logging.captureWarnings(True)
    sys.exit(main())
