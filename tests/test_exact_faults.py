"""Stops and faults in exact mode (issue 15 follow-up): the prefetch thread runs
all-to-alls on a group of its own, yet every way a run ends still ends every rank at
once, as in local mode (tests/test_faults.py, tests/test_stops.py)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from fault_helpers import (
    checkpoints,
    clean_env,
    error_lines,
    fault_rng,
    make_dataset,
    reap,
    start,
    train_cmd,
    wait_for,
)

from dist_train.runtime.env import free_port

EXACT = ("sampler.mode=exact", "sampler.prefetch=3", "train.epochs=40", "train.checkpoint_every_steps=10")
ERR = "giantgcn-train: error: "
STOPPED = "exiting with 75 so the job is requeued"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("exact_faults") / "ds")


def _ranks(data: Path, out: Path, tmp: Path, *overrides: str) -> list:
    """Two ranks started by hand (torchrun's variables), so each one's exit status is seen."""
    port, procs = free_port(), []
    for rank in range(2):
        env = clean_env(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE="2",
                        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        procs.append(start(train_cmd(data, out, *EXACT, *overrides), tmp / f"rank{rank}.log", env))
    return procs


def _mid_epoch(out: Path) -> bool:
    return any(not n.endswith("-s000000000.pt") for n in checkpoints(out))


def _hurt_rank_1(procs: list, out: Path, tmp: Path, sig: int) -> tuple[list[int], float]:
    """Send ``sig`` to rank 1 at a random moment of a mid-epoch step; exit codes and the
    seconds until both ranks had exited."""
    seed, rng = fault_rng()
    assert wait_for(lambda: _mid_epoch(out), 120), (tmp / "rank0.log").read_text()[-3000:]
    time.sleep(rng.uniform(0.0, 0.3))
    print(f"fault seed {seed} (FAULT_SEED={seed} replays this moment)")  # shown on failure
    procs[1].send_signal(sig)
    t0 = time.monotonic()
    codes = [p.wait(120) for p in procs]
    return codes, time.monotonic() - t0


@pytest.mark.slow
@pytest.mark.multiproc
def test_sigterm_to_one_rank_mid_epoch_ends_both_at_once_and_resumes(data, tmp_path):
    out = tmp_path / "run"
    # a wedged prefetch thread would hold its rank for dist.timeout_s=60
    procs = _ranks(data, out, tmp_path, "dist.timeout_s=60")
    try:
        codes, waited = _hurt_rank_1(procs, out, tmp_path, signal.SIGTERM)
    finally:
        for p in procs:
            reap(p)
    logs = [(tmp_path / f"rank{r}.log").read_text() for r in range(2)]
    assert codes == [75, 75], (codes, logs[0][-2000:], logs[1][-2000:])
    assert waited < 20, waited
    for text in logs:
        assert STOPPED in text and "Traceback" not in text, text[-3000:]
    newest = checkpoints(out)[-1]
    assert not newest.endswith("-s000000000.pt"), newest  # the current step was checkpointed
    procs = _ranks(data, out, tmp_path, "dist.timeout_s=60", "train.epochs=2")
    try:
        codes = [p.wait(300) for p in procs]
    finally:
        for p in procs:
            reap(p)
    text = (tmp_path / "rank0.log").read_text()
    assert codes == [0, 0], text[-3000:]
    assert f"resumed from {out / 'checkpoints' / newest}" in text, text[-3000:]


@pytest.mark.slow
@pytest.mark.multiproc
def test_a_rank_killed_mid_epoch_gives_the_other_the_lost_rank_line(data, tmp_path):
    out = tmp_path / "run"
    procs = _ranks(data, out, tmp_path, "dist.timeout_s=8")
    try:
        codes, waited = _hurt_rank_1(procs, out, tmp_path, signal.SIGKILL)
    finally:
        for p in procs:
            reap(p)
    text = (tmp_path / "rank0.log").read_text()
    lines = error_lines(text, ERR)
    assert codes[0] == 1 and len(lines) == 1, text[-3000:]
    assert "rank 0: epoch" in lines[0] and "dist.timeout_s=8" in lines[0], lines[0]
    assert "Traceback" not in text, text[-3000:]
    assert waited < 8 + 15, waited
