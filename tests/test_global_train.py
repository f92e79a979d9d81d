"""``train.batch_plan=global`` on real gloo ranks (issue 15): exact mode on 4 parts and 2
ranks trains the model that 1 rank trains on 1 part -- the same per-epoch loss (to float
rounding) and test accuracy -- which is what makes accuracy independent of the partition."""

from __future__ import annotations

import dataclasses
import json
import signal
from pathlib import Path

import numpy as np
import pytest
from dist_helpers import run_ranks
from partition_helpers import clustered_edges, make_source
from test_exact_train import _exact_trainer
from test_train import N

from dist_train.config.schema import load_config
from dist_train.loop.failures import Preempted
from partition.errors import InputError
from partition.graph.csr import build_csr
from partition.store.format import write_dataset


def write_learnable(out: Path, bounds: list[int], train: np.ndarray, cache_budget: float = 0.0,
                    hops: int = 0) -> Path:
    """``test_train.write_parts``'s clustered graph with labels worth learning: the planted
    cluster (id % 6), features a noisy one-hot of it (the graph's neighbours denoise)."""
    src, dst = clustered_edges(N, clusters=6, degree=8, p_out=0.1, seed=1)
    graph = make_source(N, src, dst, seed=2, features=8, classes=6)
    y = np.arange(N) % 6
    x = np.random.default_rng(3).normal(0, 1.5, (N, 8)).astype(np.float32)
    x[np.arange(N), y] += 1.0
    rest = np.setdiff1d(np.arange(N), train)
    graph = dataclasses.replace(graph, x=x, y=y.astype(np.int64), train_idx=np.sort(train).astype(np.int64),
                                val_idx=rest[0::2].astype(np.int64), test_idx=rest[1::2].astype(np.int64))
    parts = np.searchsorted(np.asarray(bounds), np.arange(N), side="right").astype(np.int32)
    write_dataset(out, graph, build_csr(N, graph.edge_chunks), parts, hops, "random", 0,
                  cache_budget=cache_budget)
    return out

GLOBAL = ["train.batch_plan=global", "sampler.batch_size=64", "sampler.eval_fanouts=[-1,-1]",
          "model.dropout=0.5", "model.hidden=16", "optim.lr=0.02", "train.epochs=4"]


def _fit(rank: int, world_size: int, data: str, run_dir: str, extra: list[str]) -> dict:
    trainer = _exact_trainer(rank, world_size, data, run_dir, [*GLOBAL, *extra])  # later keys win
    final = trainer.fit()
    return {"final": final}


def _stop_in_epoch_1(rank: int, world_size: int, data: str, run_dir: str) -> str:
    """Train until a stop (as SIGTERM would) at epoch 1 step 3: checkpoint, Preempted."""
    trainer = _exact_trainer(rank, world_size, data, run_dir, list(GLOBAL))
    after = trainer.after_step

    def after_step(epoch, step, timer, bar):  # the flag is agreed at the next step
        if (epoch, step) == (1, 2):
            trainer.stop.set(signal.SIGTERM)
        after(epoch, step, timer, bar)

    trainer.after_step = after_step
    with pytest.raises(Preempted) as stopped:
        trainer.fit()
    return str(stopped.value)


def _epochs(run: Path) -> list[dict]:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in lines if "epoch" in r and "train_loss" in r]


@pytest.mark.multiproc
@pytest.mark.slow
def test_local_mode_with_a_deep_halo_is_as_invariant(tmp_path):
    """Local mode samples complete rows when the halo is as deep as the model (2 hops)."""
    train = np.sort(np.random.default_rng(0).choice(N, 400, replace=False))
    parts = write_learnable(tmp_path / "p4", [250, 600, 800], train, hops=2)
    whole = write_learnable(tmp_path / "p1", [N], train)
    local = ["sampler.mode=local"]
    run_ranks(_fit, 2, str(parts), str(tmp_path / "two"), local, timeout=400)
    run_ranks(_fit, 1, str(whole), str(tmp_path / "one"), local, timeout=400)
    for a, b in zip(_epochs(tmp_path / "two"), _epochs(tmp_path / "one"), strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4), (a, b)


@pytest.mark.multiproc
@pytest.mark.slow
def test_four_parts_on_two_ranks_train_what_one_part_on_one_rank_trains(tmp_path):
    train = np.sort(np.random.default_rng(0).choice(N, 400, replace=False))  # every class
    parts = write_learnable(tmp_path / "p4", [250, 600, 800], train, cache_budget=0.1)
    whole = write_learnable(tmp_path / "p1", [N], train)
    two = run_ranks(_fit, 2, str(parts), str(tmp_path / "two"), [], timeout=400)
    (one,) = run_ranks(_fit, 1, str(whole), str(tmp_path / "one"), [], timeout=400)
    a, b = _epochs(tmp_path / "two"), _epochs(tmp_path / "one")
    assert len(a) == len(b) == 4
    for ea, eb in zip(a, b, strict=True):
        assert ea["train_loss"] == pytest.approx(eb["train_loss"], rel=1e-4), (ea, eb)
        assert ea["train_nodes_seen"] == ea["train_nodes"] == train.shape[0]  # each node once
    assert a[0]["train_loss"] != pytest.approx(a[-1]["train_loss"], rel=1e-2)  # it did train
    assert one["final"]["test_acc"] > 0.4  # well above chance (1/6): a model worth comparing
    gap = abs(two[0]["final"]["test_acc"] - one["final"]["test_acc"])
    assert gap <= 0.003, (two[0]["final"], one["final"])

    # the control: the rank plan on the same parts trains another model
    run_ranks(_fit, 2, str(parts), str(tmp_path / "rank"), ["train.batch_plan=rank"], timeout=400)
    c = _epochs(tmp_path / "rank")
    assert c[0]["train_loss"] != pytest.approx(b[0]["train_loss"], rel=1e-4)


@pytest.mark.multiproc
@pytest.mark.slow
def test_a_stop_mid_epoch_resumed_with_another_world_size_trains_each_node_once(tmp_path):
    train = np.sort(np.random.default_rng(0).choice(N, 400, replace=False))
    parts = write_learnable(tmp_path / "p4", [250, 600, 800], train, cache_budget=0.1)
    run = tmp_path / "stopped"
    lines = run_ranks(_stop_in_epoch_1, 2, str(parts), str(run), timeout=400)
    assert all("epoch 1 step 4" in line for line in lines), lines
    (one,) = run_ranks(_fit, 1, str(parts), str(run), [], timeout=400)  # resumed on 1 rank
    run_ranks(_fit, 2, str(parts), str(tmp_path / "straight"), [], timeout=400)
    resumed, straight = _epochs(run), _epochs(tmp_path / "straight")
    assert [e["epoch"] for e in resumed] == [0, 1, 2, 3]
    e1 = resumed[1]  # the interrupted epoch: every node once, no node twice
    assert e1["train_nodes_seen"] == e1["train_nodes"] == e1["train_seeds"] == 400, e1
    for a, b in zip(resumed, straight, strict=True):  # and the model an uninterrupted run trains
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4), (a, b)


def test_the_global_plan_refuses_a_users_model_by_name():
    with pytest.raises(InputError, match=r"^train.batch_plan: .*model.arch"):
        load_config(None, ["train.batch_plan=global", "model.arch=mypkg.models:Net"])
    with pytest.raises(InputError, match="train.batch_plan"):
        load_config(None, ["train.batch_plan=everyone"])
    assert load_config(None, []).train.batch_plan == "rank"
