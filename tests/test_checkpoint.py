import logging

import pytest
import torch

from dist_train.loop.checkpoint import list_checkpoints, load_latest_checkpoint, save_checkpoint
from dist_train.rundir import RunDirError


def _state(v):
    return {"w": torch.full((4,), float(v)), "epoch": v}


def test_save_keeps_last_k_and_loads_newest(tmp_path):
    for e in range(5):
        save_checkpoint(tmp_path, _state(e), epoch=e, step=0, keep=3)
    refs = list_checkpoints(tmp_path)
    assert [r.epoch for r in refs] == [2, 3, 4]
    state, ref = load_latest_checkpoint(tmp_path)
    assert ref.epoch == 4 and state["epoch"] == 4


def test_mid_epoch_position_orders_after_epoch_start(tmp_path):
    save_checkpoint(tmp_path, _state(1), epoch=1, step=0)
    save_checkpoint(tmp_path, _state(2), epoch=1, step=7)
    _, ref = load_latest_checkpoint(tmp_path)
    assert (ref.epoch, ref.step) == (1, 7)


def test_truncated_checkpoint_falls_back_to_previous_with_warning(tmp_path, caplog):
    save_checkpoint(tmp_path, _state(1), epoch=1, step=0)
    newest = save_checkpoint(tmp_path, _state(2), epoch=2, step=0)
    newest.write_bytes(newest.read_bytes()[:50])
    with caplog.at_level(logging.WARNING):
        state, ref = load_latest_checkpoint(tmp_path)
    assert ref.epoch == 1 and state["epoch"] == 1
    assert newest.name in caplog.text


def test_flipped_byte_and_missing_sidecar_are_detected(tmp_path):
    save_checkpoint(tmp_path, _state(1), epoch=1, step=0)
    p2 = save_checkpoint(tmp_path, _state(2), epoch=2, step=0)
    p3 = save_checkpoint(tmp_path, _state(3), epoch=3, step=0)
    data = bytearray(p2.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p2.write_bytes(bytes(data))
    p3.with_name(p3.name + ".sha256").unlink()  # a crash between file and sidecar
    state, ref = load_latest_checkpoint(tmp_path)
    assert ref.epoch == 1


def test_no_checkpoint_gives_none(tmp_path):
    assert load_latest_checkpoint(tmp_path) is None


def test_failed_write_leaves_previous_intact(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, _state(1), epoch=1, step=0)

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("dist_train.loop.checkpoint.os.fsync", boom)
    with pytest.raises(RunDirError, match="ckpt-e000002-s000000000.pt: cannot write: no space left on device"):
        save_checkpoint(tmp_path, _state(2), epoch=2, step=0)
    monkeypatch.undo()
    state, ref = load_latest_checkpoint(tmp_path)
    assert ref.epoch == 1
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if ".tmp-" in p.name]
