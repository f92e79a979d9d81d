"""The trainer on real gloo ranks (tests/dist_helpers.py): DDP keeps ranks identical,
uneven shards never hang, a finished (or early-stopped) run is not trained further.

Datasets are written with partition's own writer from a hand-made part assignment, so
a test decides exactly which rank gets which training nodes.
"""

from __future__ import annotations

import dataclasses
import gc
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from dist_helpers import run_ranks
from partition_helpers import clustered_edges, make_source
from torch.nn.parallel import DistributedDataParallel as DDP

from dist_train import cli
from dist_train.config.schema import load_config
from dist_train.loop.setup import prepare_rank
from dist_train.loop.trainer import Trainer
from dist_train.runtime import process_group as pg
from dist_train.runtime.env import World
from partition.graph.csr import build_csr
from partition.store.format import write_dataset

N = 1200
SMALL = ["sampler.batch_size=16", "sampler.fanouts=[5,5]", "sampler.eval_fanouts=[5,5]",
         "model.hidden=8", "sampler.prefetch=2", "train.log_every=1000", "train.plot=false"]


def write_parts(out: Path, bounds: list[int], train: np.ndarray, hops: int = 1,
                cache_budget: float = 0.0) -> Path:
    """A 1,200-node clustered graph cut at ``bounds`` (node ids) into parts; ``train`` its train ids."""
    src, dst = clustered_edges(N, clusters=6, degree=8, p_out=0.1, seed=1)
    graph = make_source(N, src, dst, seed=2, features=8, classes=4)
    rest = np.setdiff1d(np.arange(N), train)
    graph = dataclasses.replace(graph, train_idx=np.sort(train).astype(np.int64),
                                val_idx=rest[0::2].astype(np.int64), test_idx=rest[1::2].astype(np.int64))
    parts = np.searchsorted(np.asarray(bounds), np.arange(N), side="right").astype(np.int32)
    write_dataset(out, graph, build_csr(N, graph.edge_chunks), parts, hops, "random", 0,
                  cache_budget=cache_budget)
    return out


def _trainer(rank: int, world_size: int, data: str, run_dir: str, overrides: list[str]) -> Trainer:
    """What ``dist_train.cli.run`` builds on each rank, minus the command line."""
    cfg = load_config(None, [f"data.path={data}", *SMALL, *overrides])
    world = World(rank, world_size, rank, world_size, "127.0.0.1", 0, "test")
    graph, manifest, _ = prepare_rank(cfg, world)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    return Trainer(cfg, graph, int(manifest["num_classes"]), rank, world_size, torch.device("cpu"),
                   Path(run_dir))


def _flat(model: torch.nn.Module) -> np.ndarray:
    return torch.cat([p.detach().flatten() for p in model.parameters()]).numpy().copy()


def _one_step(rank: int, world_size: int, data: str, run_dir: str) -> dict:
    trainer = _trainer(rank, world_size, data, run_dir, ["train.max_steps_per_epoch=1"])
    before = _flat(trainer.model)
    trainer.train_epoch(0)
    after = _flat(trainer.model)
    # The same kind of step without DDP's gradient all-reduce: each rank follows its own
    # data, so the parameters must drift apart. This is what the first check would catch.
    trainer.pos.step = 0
    with trainer.ddp.no_sync():
        trainer.train_epoch(1)
    return {"before": before, "after": after, "unsynced": _flat(trainer.model),
            "train": trainer.graph.global_ids[trainer.graph.train_idx]}


@pytest.mark.multiproc
@pytest.mark.slow
def test_one_step_leaves_identical_parameters_on_both_ranks(tmp_path):
    data = write_parts(tmp_path / "ds", [600], np.arange(0, N, 3))
    r0, r1 = run_ranks(_one_step, 2, str(data), str(tmp_path / "run"), timeout=90)
    assert not np.intersect1d(r0["train"], r1["train"]).size  # the ranks train on different nodes
    assert np.array_equal(r0["before"], r1["before"])
    assert not np.array_equal(r0["after"], r0["before"])
    assert np.array_equal(r0["after"], r1["after"]), "parameters differ between ranks after a DDP step"
    assert not np.allclose(r0["unsynced"], r1["unsynced"])


def _fit(rank: int, world_size: int, data: str, run_dir: str, overrides: list[str]) -> dict:
    trainer = _trainer(rank, world_size, data, run_dir, overrides)
    final = trainer.fit()
    return {"final": final, "num_train": int(trainer.graph.train_idx.shape[0]),
            "num_inner": trainer.graph.num_inner, "global_step": trainer.pos.global_step}


def _records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.multiproc
@pytest.mark.slow
@pytest.mark.parametrize("case", ["no_train_nodes", "few_train_nodes"])
def test_ranks_with_very_uneven_shards_finish_every_epoch(tmp_path, case):
    # part 0: 200 nodes, 150 of them train; parts 1 and 2: 500 nodes each, merged on rank 1
    train = np.arange(150) if case == "no_train_nodes" else np.r_[np.arange(150), [300, 301, 302]]
    data = write_parts(tmp_path / "ds", [200, 700], train)
    run = tmp_path / "run"
    out = run_ranks(_fit, 2, str(data), str(run), ["train.epochs=2"], timeout=90)
    assert [r["num_train"] for r in out] == [150, len(train) - 150]
    assert [r["num_inner"] for r in out] == [200, 1000]
    steps = -(-150 // 16)  # the rank with the most batches sets the pace
    assert [r["global_step"] for r in out] == [2 * steps, 2 * steps]
    records = _records(run)
    epochs = [r for r in records if r.get("event") is None]
    assert [r["epoch"] for r in epochs] == [0, 1] and {r["steps"] for r in epochs} == {steps}
    rest = N - len(train)  # every rank's val and test nodes are counted
    assert {(r["num_val"], r["num_test"]) for r in epochs} == {(-(-rest // 2), rest // 2)}
    assert records[-1]["event"] == "final" and records[-1]["total_steps"] == 2 * steps


@pytest.mark.multiproc
@pytest.mark.slow
def test_an_early_stopped_run_is_not_trained_further_when_run_again(tmp_path):
    data = write_parts(tmp_path / "ds", [600], np.arange(0, N, 3))
    run = tmp_path / "run"
    # lr so small that validation accuracy cannot improve after epoch 0: stops after epoch 1
    args = ["train.epochs=20", "train.early_stopping_patience=1", "optim.lr=1e-9",
            "train.max_steps_per_epoch=2"]
    (first,) = run_ranks(_fit, 1, str(data), str(run), args, timeout=90)
    assert first["final"]["epochs_run"] == 2 and first["global_step"] == 4
    before = _records(run)
    (again,) = run_ranks(_fit, 1, str(data), str(run), args, timeout=90)
    assert again["global_step"] == 4 and again["final"]["epochs_run"] == 2
    after = _records(run)
    assert [r for r in after if r.get("event") is None] == [r for r in before if r.get("event") is None]
    assert sum(r.get("event") == "final" for r in after) == 1


def test_the_cli_frees_ddp_before_it_destroys_the_process_group(tmp_path, monkeypatch):
    # Freed later, DDP's reducer runs gloo's blocking destructor with the GIL held: a rank
    # that can hang after its final line (pytorch#56297). Here: one plain process.
    data = write_parts(tmp_path / "ds", [600], np.arange(0, N, 3))
    live_ddp: list[int] = []
    destroy = pg.destroy_distributed

    def checked_destroy() -> None:
        live_ddp.append(sum(isinstance(o, DDP) for o in gc.get_objects()))
        destroy()

    monkeypatch.setattr(pg, "destroy_distributed", checked_destroy)
    for var in ("RANK", "WORLD_SIZE", "SLURM_PROCID", "PMI_RANK", "OMPI_COMM_WORLD_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert cli.main(["--data", str(data), "--out", str(tmp_path / "run"), *SMALL, "train.epochs=1"]) == 0
    assert live_ddp == [0]
