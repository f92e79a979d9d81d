"""Checkpoints and divergence through the real CLI (one process, world size 1).

A damaged newest checkpoint is skipped with a warning and the run resumes from the one
before, to the same model as an uninterrupted run; a diverging run stops with a message
naming epoch and step and leaves the last good checkpoint the newest on disk.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
from fault_helpers import (
    checkpoints,
    epochs_logged,
    error_lines,
    final_line,
    make_dataset,
    run,
    same_weights,
    train_cmd,
)

ERR = "giantgcn-train: error: "


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("resume") / "ds")


def _train(data: Path, out: Path, *overrides: str) -> None:
    res = run(train_cmd(data, out, *overrides), timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory) -> Path:
    """A run that finished 2 epochs: checkpoints at the start of epochs 1 and 2."""
    out = tmp_path_factory.mktemp("finished") / "run"
    _train(data, out, "train.epochs=2")
    assert checkpoints(out) == ["ckpt-e000001-s000000000.pt", "ckpt-e000002-s000000000.pt"]
    return out


def _copy(run_dir: Path, tmp: Path) -> Path:
    return Path(shutil.copytree(run_dir, tmp / "run"))


def _snapshot(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((run_dir / "checkpoints").iterdir())}


def _finite(checkpoint: Path) -> bool:
    state = torch.load(checkpoint, weights_only=False)["model"]
    return all(bool(torch.isfinite(t).all()) for t in state.values())


@pytest.mark.slow
@pytest.mark.multiproc
def test_truncated_newest_checkpoint_is_skipped_and_the_older_one_resumed(data, finished, tmp_path):
    reference = tmp_path / "reference"
    _train(data, reference, "train.epochs=3")
    out = _copy(finished, tmp_path)
    newest = out / "checkpoints" / "ckpt-e000002-s000000000.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a crash mid-copy
    res = run(train_cmd(data, out, "train.epochs=3"), timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"checkpoint {newest} is unusable (checksum mismatch" in res.stderr, res.stderr[-3000:]
    assert f"resumed from {out / 'checkpoints' / 'ckpt-e000001-s000000000.pt'}" in res.stderr
    assert epochs_logged(out) == [0, 1, 2]
    assert final_line(out)["total_steps"] == final_line(reference)["total_steps"]
    assert same_weights(out, reference)


@pytest.mark.slow
@pytest.mark.multiproc
def test_a_huge_lr_on_resume_diverges_and_keeps_the_last_good_checkpoint(data, finished, tmp_path):
    # The divergence message advises "lower optim.lr": a resumed run must use the lr it is
    # given, not the one saved in the optimizer state (here: a higher one, to diverge).
    out = _copy(finished, tmp_path)
    before = _snapshot(out)
    res = run(train_cmd(data, out, "train.epochs=4", "optim.lr=1e30"), timeout=120)
    lines = error_lines(res.stderr, ERR)
    assert res.returncode == 3 and len(lines) == 1, res.stderr[-3000:]
    assert re.search(r"non-finite loss or gradient at epoch 2 step \d+", lines[0]), lines[0]
    assert "Traceback" not in res.stderr
    assert _snapshot(out) == before  # nothing written over or beside the good ones
    assert _finite(out / "checkpoints" / "ckpt-e000002-s000000000.pt")


@pytest.mark.slow
@pytest.mark.multiproc
def test_weights_that_overflow_in_the_last_step_of_an_epoch_are_not_checkpointed(data, finished, tmp_path):
    # lr=3e37: the epoch's only step leaves finite but useless weights (~1e36) whose outputs
    # overflow; the epoch-end checkpoint would have saved them as the newest.
    out = _copy(finished, tmp_path)
    before = _snapshot(out)
    res = run(train_cmd(data, out, "train.epochs=4", "optim.lr=3e37", "train.max_steps_per_epoch=1"),
              timeout=120)
    lines = error_lines(res.stderr, ERR)
    assert res.returncode == 3 and len(lines) == 1, res.stderr[-3000:]
    assert "non-finite model outputs when evaluating epoch 2" in lines[0], lines[0]
    assert _snapshot(out) == before
