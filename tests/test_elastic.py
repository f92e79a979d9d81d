"""Elastic resume, resumed-epoch metrics and runs without validation nodes (issue 16), as units.

The multi-process versions (a run stopped with 2 ranks and resumed with 1, and 1 -> 2)
are in tests/test_stops.py; here the plans are checked exhaustively on small cases.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dist_train.loop.metrics import EpochTimer, summary_line
from dist_train.sampling.batches import plan_epoch
from dist_train.sampling.elastic import (
    EpochShape,
    Segment,
    next_segments,
    plan_rest,
    rest_batches,
    standard_steps,
    trained_before,
)

N = 1000
TRAIN = np.sort(np.random.default_rng(0).choice(N, 377, replace=False)).astype(np.int64)


def train_ids(world_size: int, rank: int) -> np.ndarray:
    """A stand-in for the shards: rank r of W holds the train nodes with id % W == r."""
    return TRAIN[TRAIN % world_size == rank]


def _rest_of_world(segments: list[Segment], shape: EpochShape) -> list:
    last = segments[-1]
    return [plan_rest(segments, last.start_step, train_ids, shape, r, train_ids(last.world_size, r), N)
            for r in range(last.world_size)]


@pytest.mark.parametrize("old,new,step", [(2, 1, 5), (1, 2, 9), (2, 3, 1), (3, 2, 6), (2, 1, 12)])
def test_a_resumed_epoch_trains_every_node_it_had_not_trained_exactly_once(old, new, step):
    shape = EpochShape(batch_size=16, max_steps=None, seed=7, epoch=3)
    segments = [Segment(0, old), Segment(step, new)]
    covered = trained_before(segments, step, train_ids, shape)
    plans = _rest_of_world(segments, shape)
    rest = np.concatenate([np.zeros(0, np.int64)] + [b.seeds for p in plans for b in p.batches if b.weight > 0])
    assert np.unique(rest).shape[0] == rest.shape[0]  # nothing twice after the resume
    assert np.intersect1d(rest, covered).shape[0] == 0  # nothing trained before the resume again
    assert np.array_equal(np.union1d(rest, covered), TRAIN)  # every train node in the epoch
    assert len({p.num_steps for p in plans}) == 1 and len({len(p.batches) for p in plans}) == 1  # DDP
    assert plans[0].already == covered.shape[0] and plans[0].todo == rest.shape[0]


def test_the_replayed_prefix_is_what_the_old_ranks_trained():
    shape = EpochShape(batch_size=16, max_steps=None, seed=7, epoch=3)
    steps = standard_steps([train_ids(2, r).shape[0] for r in range(2)], shape)
    plans = [plan_epoch(train_ids(2, r), 16, steps, 7, r, 3, N) for r in range(2)]
    expect = np.unique(np.concatenate([b.seeds for p in plans for b in p[:6]]))
    assert np.array_equal(trained_before([Segment(0, 2)], 6, train_ids, shape), expect)


def test_a_second_resume_inside_a_replanned_epoch_continues_the_same_plan():
    shape = EpochShape(batch_size=16, max_steps=None, seed=1, epoch=0)
    segments = [Segment(0, 2), Segment(4, 1)]
    whole = plan_rest(segments, 4, train_ids, shape, 0, train_ids(1, 0), N)
    later = plan_rest(segments, 9, train_ids, shape, 0, train_ids(1, 0), N)
    assert [b.step for b in later.batches] == [b.step for b in whole.batches[5:]]
    assert all(np.array_equal(a.seeds, b.seeds) for a, b in zip(later.batches, whole.batches[5:], strict=True))
    trained = np.concatenate([b.seeds for b in whole.batches[:5]])
    assert np.array_equal(np.sort(later.done_local), np.union1d(trained_before(segments, 4, train_ids, shape),
                                                                 trained))


def test_three_world_sizes_in_one_epoch_still_cover_every_node():
    shape = EpochShape(batch_size=8, max_steps=None, seed=5, epoch=1)
    segments = [Segment(0, 2), Segment(3, 1), Segment(10, 3)]
    covered = trained_before(segments, 10, train_ids, shape)
    plans = _rest_of_world(segments, shape)
    rest = np.concatenate([b.seeds for p in plans for b in p.batches if b.weight > 0])
    assert np.array_equal(np.sort(np.concatenate([covered, rest])), TRAIN)


def test_the_step_cap_still_applies_to_a_replanned_epoch():
    shape = EpochShape(batch_size=16, max_steps=8, seed=7, epoch=0)
    plans = _rest_of_world([Segment(0, 2), Segment(5, 1)], shape)
    assert plans[0].num_steps == 8 and len(plans[0].batches) == 3
    assert plans[0].todo == sum(b.seeds.shape[0] for b in plans[0].batches)


def test_rest_batches_depend_on_positions_only():
    shape = EpochShape(batch_size=10, max_steps=None, seed=2, epoch=0)
    local = np.arange(50, dtype=np.int64)
    done = np.zeros(50, dtype=bool)
    done[::3] = True
    a = rest_batches(local, done, shape, 1, 4)
    b = rest_batches(TRAIN[:50], done, shape, 1, 4)
    assert all(np.array_equal(TRAIN[:50][x], y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("segments,saved,world,step,expect", [
    ([], 2, 2, 7, [Segment(0, 2)]),
    ([], 2, 1, 0, [Segment(0, 1)]),
    ([], 2, 1, 7, [Segment(0, 2), Segment(7, 1)]),
    ([Segment(0, 2), Segment(7, 1)], 1, 1, 9, [Segment(0, 2), Segment(7, 1)]),
    ([Segment(0, 2), Segment(7, 1)], 1, 2, 9, [Segment(0, 2), Segment(7, 1), Segment(9, 2)]),
])
def test_next_segments(segments, saved, world, step, expect):
    assert next_segments(segments, saved, world, step) == expect


def test_a_resumed_epoch_record_covers_the_whole_epoch():
    before = EpochTimer(loss_sum=30.0, loss_count=20, seeds=20, sample_s=1.0)
    partial = before.partial(elapsed_s=2.5)
    after = EpochTimer.resume(partial, step=14)
    after.loss_sum += 10.0
    after.loss_count += 20
    rec = after.as_record(0.5, steps=20)
    assert rec["train_loss"] == pytest.approx(1.0) and rec["train_seeds"] == 40
    assert rec["epoch_time_s"] == pytest.approx(3.0) and "covers_steps" not in rec


def test_a_resume_without_partial_sums_says_which_steps_it_covers():
    rec = EpochTimer.resume(None, step=14).as_record(0.0025, steps=14)
    assert rec["covers_steps"] == [14, 14]
    assert rec["train_loss"] is None  # no step trained: no made-up 0.0


def test_summary_without_validation_nodes_makes_up_no_figures():
    line = summary_line("giantgcn-train", {"val_acc": None, "best_epoch": None, "test_acc": None}, "m.jsonl")
    assert "no validation nodes" in line and "-1" not in line and "0.0000" not in line
    line = summary_line("giantgcn-train", {"val_acc": 0.5, "best_epoch": 2, "test_acc": 0.25}, "m.jsonl")
    assert "best val 0.5000 at epoch 2, test 0.2500" in line


def test_train_global_ids_match_the_rank_graph(tmp_path):
    from fault_helpers import make_dataset

    from dist_train.data.shards import load_local_graph, train_global_ids

    data = make_dataset(tmp_path / "ds", "synthetic:nodes=400,features=4,classes=3,degree=4", parts=3)
    for parts in ([1], [0, 2], [0, 1, 2]):
        g = load_local_graph(str(data), parts)
        assert np.array_equal(train_global_ids(str(data), parts), np.asarray(g.global_ids)[g.train_idx])


def test_the_launcher_wrapper_finds_the_run_dir_and_keeps_user_settings(tmp_path):
    from dist_train.runtime.signals import write_stop_record
    from dist_train.runtime.torchrun_stop import clean_stop, run_dir_of, stopped_line, with_defaults

    assert run_dir_of(["--nproc-per-node", "2", "-m", "dist_train", "--out", "r/x", "a=1"]) == Path("r/x")
    assert run_dir_of(["-m", "dist_train", "--out=r/y"]) == Path("r/y")
    args = with_defaults(["--shutdown_timeout=5", "-m", "dist_train"])
    assert args[0].startswith("--signals-to-handle=") and "SIGUSR1" in args[0]
    assert sum(a.startswith("--shutdown") for a in args) == 1  # the user's grace wins
    line, code = stopped_line(15, tmp_path, since=0.0)
    assert code == 128 + 15 and "without a new checkpoint" in line
    write_stop_record(tmp_path, {"epoch": 2, "step": 7, "checkpoints": "c"})
    line, code = stopped_line(2, tmp_path, since=0.0)
    assert code == 75 and "torchrun got SIGINT: the ranks checkpointed at epoch 2 step 7" in line
    assert stopped_line(2, tmp_path, since=2e10)[1] == 130  # a record older than the launch is stale
    assert clean_stop({75, -15}, tmp_path, since=0.0) and clean_stop({75}, tmp_path, since=0.0)
    assert not clean_stop({75, 1}, tmp_path, since=0.0) and not clean_stop({-15}, tmp_path, since=0.0)
    assert not clean_stop({75}, tmp_path, since=2e10)  # no stop record since the launch: a crash
