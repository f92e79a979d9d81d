"""The run directory (issue 16): one owner, and full or read-only disks in one line.

Lock tests use real processes holding a real flock; disk tests a real tmpfs filled with
``fallocate`` (ENOSPC from the kernel) or remounted read-only (EROFS).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from disk_helpers import fill, remount, tmpfs
from dist_helpers import RankFailure, run_ranks
from fault_helpers import REPO, clean_env

from dist_train.loop.checkpoint import (
    atomic_write,
    list_checkpoints,
    load_latest_checkpoint,
    save_checkpoint,
)
from dist_train.loop.metrics import MetricsLog
from dist_train.rundir import RunDirBusy, RunDirError, RunDirLock, open_run_dir, write_on_rank0

HOLD = ("import sys, time; from pathlib import Path; from dist_train.rundir.lock import RunDirLock;"
        "lock = RunDirLock(Path(sys.argv[1]), sys.argv[2]); lock.acquire(); print('held', flush=True);"
        "time.sleep(float(sys.argv[3])); lock.release(); time.sleep(60)")


def _holder(run_dir: Path, job: str = "", hold_s: float = 60.0) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir), job, str(hold_s)], cwd=REPO,
                            env=clean_env(), stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(10)


# ---- one owner -------------------------------------------------------------------------


def test_a_second_owner_is_refused_naming_the_live_holder(tmp_path):
    proc = _holder(tmp_path)
    try:
        with pytest.raises(RunDirBusy) as info:
            RunDirLock(tmp_path).acquire()
        assert str(info.value) == (
            f"--out {tmp_path}: in use by another run (host {socket.gethostname()}, pid {proc.pid}, "
            f"started {json.loads((tmp_path / '.lock').read_text())['started']}); "
            "wait for it to end, stop it, or use another --out")
        # the refused attempt did not erase the holder's record (filelock's O_TRUNC would)
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == proc.pid
    finally:
        _stop(proc)


def test_a_dead_owner_never_leaves_the_lock_stuck(tmp_path):
    proc = _holder(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)  # no clean-up runs
    proc.wait(10)
    lock = RunDirLock(tmp_path)
    me = lock.acquire()
    try:
        assert me.pid == os.getpid()
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    finally:
        lock.release()


def test_a_restart_of_the_same_job_takes_its_lock_back(tmp_path):
    proc = _holder(tmp_path, job="job-7", hold_s=1.0)  # the old attempt, still exiting
    try:
        t0 = time.monotonic()
        with pytest.raises(RunDirBusy):
            RunDirLock(tmp_path, "job-8").acquire()  # another job: refused at once
        assert time.monotonic() - t0 < 0.9
        lock = RunDirLock(tmp_path, "job-7", same_job_wait_s=30)
        lock.acquire()  # waits for the old attempt, then holds
        lock.release()
    finally:
        _stop(proc)


# ---- read-only and full disks -------------------------------------------------------------


def test_a_read_only_out_is_refused_at_start_up(tmp_path):
    with tmpfs(tmp_path / "mnt") as mnt:
        (mnt / "run").mkdir()
        remount(mnt, "ro")
        with pytest.raises(RunDirError, match=rf"^--out {mnt / 'run'}: cannot write: read-only file system$"):
            open_run_dir(mnt / "run", rank=0)
        with pytest.raises(RunDirError, match=r"cannot create it: read-only file system$"):
            open_run_dir(mnt / "new", rank=0)


def test_a_full_out_is_refused_at_start_up(tmp_path):
    with tmpfs(tmp_path / "mnt", "1m") as mnt:
        fill(mnt)
        with pytest.raises(RunDirError, match=r"cannot write: no space left on device$"):
            open_run_dir(mnt / "run", rank=0)


def _state(kib: int) -> dict:
    return {"blob": os.urandom(kib * 1024)}


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_a_checkpoint_that_cannot_be_written_keeps_the_previous_one(tmp_path, fault):
    with tmpfs(tmp_path / "mnt", "2m") as mnt:
        first = save_checkpoint(mnt, _state(64), 1, 0)
        if fault == "full":
            fill(mnt, leave=16 * 1024)
        else:
            remount(mnt, "ro")
        cause = "no space left on device" if fault == "full" else "read-only file system"
        with pytest.raises(RunDirError) as info:
            save_checkpoint(mnt, _state(256), 2, 0)
        assert str(info.value).startswith(
            f"{mnt / 'checkpoints' / 'ckpt-e000002-s000000000.pt'}: cannot write: {cause}; "
            f"the last checkpoint {first} is kept")
        assert sorted(p.name for p in (mnt / "checkpoints").iterdir()) == [first.name, first.name + ".sha256"]
        state, ref = load_latest_checkpoint(mnt)
        assert ref.path == first and len(state["blob"]) == 64 * 1024


def test_rewriting_a_checkpoint_of_the_same_name_on_a_full_disk_keeps_the_old_one(tmp_path):
    with tmpfs(tmp_path / "mnt", "2m") as mnt:
        old = _state(64)
        save_checkpoint(mnt, old, 3, 0)
        fill(mnt, leave=16 * 1024)
        with pytest.raises(RunDirError, match="no space left on device"):
            save_checkpoint(mnt, _state(256), 3, 0)
        state, ref = load_latest_checkpoint(mnt)
        assert (ref.epoch, ref.step) == (3, 0) and state["blob"] == old["blob"]
        assert [r.path.name for r in list_checkpoints(mnt)] == ["ckpt-e000003-s000000000.pt"]


def test_a_metrics_line_that_does_not_fit_leaves_no_torn_line(tmp_path):
    with tmpfs(tmp_path / "mnt", "1m") as mnt:
        log = MetricsLog(mnt, enabled=True)
        log.write({"epoch": 0, "train_loss": 1.0})
        before = log.path.read_bytes()
        fill(mnt)
        with pytest.raises(OSError) as info:
            log.write({"epoch": 1, "note": "x" * 20000})  # crosses into pages that are not there
        assert info.value.errno == errno.ENOSPC
        assert log.path.read_bytes() == before


def test_model_pt_that_does_not_fit_keeps_the_old_one_and_no_temporary(tmp_path):
    with tmpfs(tmp_path / "mnt", "1m") as mnt:
        atomic_write(mnt / "model.pt", b"old weights")
        fill(mnt)
        with pytest.raises(OSError) as info:
            atomic_write(mnt / "model.pt", os.urandom(64 * 1024))
        assert info.value.errno == errno.ENOSPC
        assert sorted(p.name for p in mnt.iterdir()) == ["filler", "model.pt"]
        assert (mnt / "model.pt").read_bytes() == b"old weights"


def _rank0_write_fails(rank: int, world_size: int, path: str) -> str:
    def write() -> None:
        raise RunDirError(f"{path}: cannot write: no space left on device; the last checkpoint X is kept")
    try:
        write_on_rank0(write, rank)
    except RunDirError as err:
        return str(err)
    return "no error"


@pytest.mark.multiproc
def test_a_failed_write_on_rank_0_stops_every_rank_with_the_same_line(tmp_path):
    try:
        got = run_ranks(_rank0_write_fails, 2, str(tmp_path / "metrics.jsonl"), timeout=180)
    except RankFailure as err:  # pragma: no cover - the message is the diagnosis
        raise AssertionError(str(err)) from None
    assert got[0] == got[1] == (f"{tmp_path / 'metrics.jsonl'}: cannot write: no space left on device; "
                                "the last checkpoint X is kept")
