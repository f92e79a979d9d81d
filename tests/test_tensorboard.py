"""``train.tensorboard=true``: rank 0 writes metrics.jsonl's scalars, per step and per epoch,
to RUN_DIR/tb; read back with tensorboard's own EventAccumulator."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from fault_helpers import TINY, make_dataset

from dist_train import train
from dist_train.loop.tensorboard import TensorBoardLog, require_tensorboard
from partition.errors import InputError

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

RUN = {"sampler": {"batch_size": 32, "fanouts": [5, 5], "prefetch": 2}, "model": {"hidden": 16},
       "train": {"epochs": 3, "max_steps_per_epoch": 6, "log_every": 1000, "tensorboard": True}}


def events(run_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})  # 0: keep every event
    acc.Reload()
    return acc


def series(acc: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in acc.Scalars(tag)]


@pytest.mark.slow
def test_a_run_writes_the_scalars_of_metrics_jsonl_per_step_and_per_epoch(tmp_path, monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "SLURM_PROCID", "PMI_RANK", "OMPI_COMM_WORLD_RANK"):
        monkeypatch.delenv(var, raising=False)
    data = make_dataset(tmp_path / "ds", TINY, parts=2)
    final = train(RUN, data=data, run_dir=tmp_path / "run")
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in lines if r.get("event") is None]
    acc = events(tmp_path / "run")
    steps = series(acc, "step/train_loss")
    assert [s for s, _ in steps] == list(range(1, final["total_steps"] + 1))  # every step, once
    for key in ("train_loss", "val_acc", "test_acc", "time_forward_backward_s", "seeds_per_s", "time_eval_s"):
        got = series(acc, f"epoch/{key}")
        assert [s for s, _ in got] == [r["global_step"] for r in epochs]
        assert [v for _, v in got] == pytest.approx([r[key] for r in epochs], rel=1e-6)
    # an epoch's loss is the mean of its steps' losses (equal-sized batches here)
    first = [v for s, v in steps if s <= epochs[0]["global_step"]]
    assert sum(first) / len(first) == pytest.approx(epochs[0]["train_loss"], rel=1e-4)
    assert series(acc, "final/test_acc")[0][1] == pytest.approx(final["test_acc"])
    assert (tmp_path / "run" / "curves.png").is_file()  # the end of a run draws its curves


def test_a_resumed_run_replaces_what_the_killed_attempt_wrote_after_its_checkpoint(tmp_path):
    first = TensorBoardLog(tmp_path, enabled=True)
    for step in range(1, 11):
        first.step(step, loss=1.0, lr=0.1)
    first.record({"epoch": 0, "val_acc": 0.5}, 5)
    first.close()  # killed after step 10; the checkpoint was at step 5
    again = TensorBoardLog(tmp_path, enabled=True)
    for step in range(6, 9):
        again.step(step, loss=2.0, lr=0.1)
    again.close()
    acc = events(tmp_path)
    assert series(acc, "step/train_loss") == [(s, 1.0) for s in range(1, 6)] + [(s, 2.0) for s in range(6, 9)]
    assert series(acc, "epoch/val_acc") == [(5, 0.5)]


def test_non_finite_values_are_left_out_and_other_ranks_write_nothing(tmp_path):
    log = TensorBoardLog(tmp_path / "r0", enabled=True)
    log.record({"epoch": 0, "train_loss": float("nan"), "val_acc": 0.5, "note": "x", "flag": True}, 3)
    log.close()
    assert events(tmp_path / "r0").Tags()["scalars"] == ["epoch/epoch", "epoch/val_acc"]
    off = TensorBoardLog(tmp_path / "r1", enabled=False)
    off.step(1, 1.0, 0.1)
    off.record({"val_acc": 0.5}, 1)
    off.close()
    assert not (tmp_path / "r1").exists()


def test_asking_for_tensorboard_without_the_package_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(InputError, match=r"^train\.tensorboard: true needs the tensorboard package: pip install"):
        require_tensorboard()
