"""Run-directory faults in real multi-rank runs (issue 16): two runs on one ``--out``,
a disk that fills up at a checkpoint. Every rank must stop with the same one line, and
nothing the first run wrote may be lost or mixed."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from disk_helpers import fill, tmpfs
from fault_helpers import (
    clean_env,
    epochs_logged,
    error_lines,
    make_dataset,
    reap,
    run,
    start,
    torchrun_cmd,
    train_cmd,
    wait_for,
    workers,
)

from dist_train.loop.checkpoint import load_latest_checkpoint
from dist_train.runtime.env import free_port

ERR = "giantgcn-train: error: "


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("rundir") / "ds")


def _two_ranks(data: Path, out: Path, logs: Path, *overrides: str) -> tuple[list[int], list[str]]:
    """Two ranks started by hand with torchrun's variables (no launcher kills the slower one)."""
    port, procs = free_port(), []
    for rank in range(2):
        env = clean_env(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE="2",
                        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        procs.append(start(train_cmd(data, out, *overrides), logs / f"rank{rank}.log", env))
    try:
        codes = [p.wait(300) for p in procs]
    finally:
        for p in procs:
            reap(p)
    return codes, [(logs / f"rank{r}.log").read_text() for r in range(2)]


@pytest.mark.slow
@pytest.mark.multiproc
def test_a_second_training_on_the_same_out_refuses_and_a_killed_one_frees_it(data, tmp_path):
    out = tmp_path / "run"
    first = start(torchrun_cmd(data, out, "train.epochs=500", "train.seed=0"), tmp_path / "first.log")
    try:
        assert wait_for(lambda: len(epochs_logged(out)) >= 1 if (out / "metrics.jsonl").exists()
                        else False, 240), (tmp_path / "first.log").read_text()[-3000:]
        holder = json.loads((out / ".lock").read_text())
        assert holder["pid"] == workers(first.pid)[0].pid  # rank 0 of the first run holds it
        second = run(torchrun_cmd(data, out, "train.epochs=500", "train.seed=1"), timeout=240)
        lines = error_lines(second.stderr, ERR)
        expected = (f"{ERR}rank 0: --out {out}: in use by another run (host {socket.gethostname()}, "
                    f"pid {holder['pid']}, started {holder['started']}, job {holder['job_id']}); "
                    "wait for it to end, stop it, or use another --out")
        assert second.returncode != 0 and lines and all(x == expected for x in lines), second.stderr[-3000:]
        assert "Traceback" not in "".join(x for x in second.stderr.splitlines() if "giantgcn" in x)
        logged = epochs_logged(out)
        assert logged == list(range(len(logged)))  # only the first run's epochs, in order
    finally:
        reap(first)  # SIGKILL: no clean-up runs, the lock must not stay stuck
    third = run(torchrun_cmd(data, out, "train.epochs=1"), timeout=240)
    assert third.returncode == 0, third.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.multiproc
def test_a_disk_that_fills_at_a_checkpoint_stops_every_rank_and_keeps_the_previous(data, tmp_path):
    big = ("model.hidden=1024",)  # a checkpoint of ~350 KiB, where the log lines need a page
    with tmpfs(tmp_path / "mnt", "8m") as mnt:
        out = mnt / "run"
        codes, logs = _two_ranks(data, out, tmp_path, "train.epochs=1", *big)
        assert codes == [0, 0], logs[0][-3000:]
        (kept,) = sorted((out / "checkpoints").glob("ckpt-*.pt"))
        filler = fill(mnt, leave=64 * 1024)
        codes, logs = _two_ranks(data, out, tmp_path, "train.epochs=2", *big)
        expected = (f"{ERR}{out / 'checkpoints' / 'ckpt-e000002-s000000000.pt'}: cannot write: no space "
                    f"left on device; the last checkpoint {kept} is kept (free space or use a writable "
                    "disk, then rerun to resume from it)")
        for rank in range(2):
            assert codes[rank] == 2 and error_lines(logs[rank], ERR) == [expected], logs[rank][-3000:]
            assert "Traceback" not in logs[rank]
        state, ref = load_latest_checkpoint(out)
        assert ref.path == kept and state["position"]["epoch"] == 1
        assert not [p for p in (out / "checkpoints").iterdir() if ".tmp-" in p.name]
        filler.unlink()  # space again: the same command resumes from the kept checkpoint
        codes, logs = _two_ranks(data, out, tmp_path, "train.epochs=2", *big)
        assert codes == [0, 0], logs[0][-3000:]
        assert epochs_logged(out) == [0, 1]
