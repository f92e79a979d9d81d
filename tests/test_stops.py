"""Every way a run is stopped, and what a resume after it promises (issue 16), for real.

A signal to the launcher (``launch/torchrun.sh``), to one rank or to a single process, of
each kind a user or a scheduler sends (SIGTERM, SIGINT = Ctrl-C, SIGUSR1), ends the same
way: the ranks finish their step, rank 0 checkpoints, one line, exit 75, no traceback.
A run resumed with another world size trains every train node of the interrupted epoch
(2 ranks -> 1, and 1 -> 2 on 4 parts); a run without validation nodes says so.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from fault_helpers import (
    FAST,
    REPO,
    checkpoints,
    clean_env,
    epochs_logged,
    fault_rng,
    final_line,
    make_dataset,
    reap,
    run,
    start,
    train_cmd,
    wait_for,
    workers,
)

ARGS = ("train.epochs=3", "train.checkpoint_every_steps=5")
STOPPED = "exiting with 75 so the job is requeued"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("stops") / "ds4", parts=4)


def _env() -> dict[str, str]:
    env = clean_env(NPROC="2", STOP_GRACE_S="60")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def _launcher(data: Path, out: Path, *overrides: str) -> list[str]:
    return ["bash", str(REPO / "launch" / "torchrun.sh"), str(data), str(out), *FAST, *overrides]


def _mid_epoch_checkpoint(out: Path, epoch: int = 1) -> bool:
    return any(n.startswith(f"ckpt-e{epoch:06d}-") and not n.endswith("-s000000000.pt") for n in checkpoints(out))


def _stop(cmd: list[str], out: Path, log: Path, sig: int, target: str, env: dict[str, str] | None = None) -> int:
    """Start ``cmd``, send ``sig`` to the launcher or to one rank once epoch 1 is under way."""
    seed, rng = fault_rng()
    proc = start(cmd, log, env)
    try:
        assert wait_for(lambda: _mid_epoch_checkpoint(out), 120), log.read_text()[-3000:]
        time.sleep(rng.uniform(0.0, 0.3))  # a random step of epoch 1 (the seed is in the log)
        print(f"fault seed {seed} (FAULT_SEED={seed} replays this moment)")  # shown on failure
        victim = proc if target == "launcher" else workers(proc.pid)[1]
        victim.send_signal(sig)
        return proc.wait(120)
    finally:
        reap(proc)


def _epoch(out: Path, epoch: int) -> dict:
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return [r for r in lines if r.get("epoch") == epoch and r.get("event") is None][0]


def _assert_clean_stop(code: int, text: str, out: Path) -> dict:
    assert code == 75, text[-3000:]
    assert "Traceback" not in text and "SignalException" not in text, text[-3000:]
    record = json.loads((out / "stopped.json").read_text())
    assert f"ckpt-e{record['epoch']:06d}-s{record['step']:09d}.pt" == checkpoints(out)[-1]
    return record


@pytest.mark.slow
@pytest.mark.multiproc
def test_sigterm_to_the_launcher_then_resume_with_one_rank_trains_the_whole_epoch(data, tmp_path):
    out, log = tmp_path / "run", tmp_path / "launch.log"
    code = _stop(_launcher(data, out, *ARGS), out, log, signal.SIGTERM, "launcher", _env())
    text = log.read_text()
    record = _assert_clean_stop(code, text, out)
    assert "giantgcn-train: torchrun got SIGTERM: the ranks checkpointed at epoch" in text
    res = run(train_cmd(data, out, *ARGS), timeout=180)  # 1 rank now
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"resumed with 1 rank instead of 2 in the middle of epoch {record['epoch']}" in res.stderr
    resumed = _epoch(out, record["epoch"])
    # every train node of the epoch trained: before the stop on 2 ranks, after it on 1
    assert resumed["train_nodes_seen"] == resumed["train_nodes"] == 1200, resumed
    assert resumed["train_seeds"] >= 1200 and resumed["train_loss"] is not None
    assert "covers_steps" not in resumed  # the partial sums came from the checkpoint
    assert epochs_logged(out) == [0, 1, 2] and not (out / "stopped.json").exists()


@pytest.mark.slow
@pytest.mark.multiproc
def test_ctrl_c_to_one_process_then_resume_with_two_ranks_trains_the_whole_epoch(data, tmp_path):
    out, log = tmp_path / "run", tmp_path / "train.log"
    code = _stop(train_cmd(data, out, *ARGS), out, log, signal.SIGINT, "launcher")
    text = log.read_text()
    record = _assert_clean_stop(code, text, out)
    assert f"giantgcn-train: stopped by SIGINT: checkpoint written at epoch {record['epoch']}" in text
    res = run(_launcher(data, out, *ARGS), timeout=240, env=_env())
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"resumed with 2 ranks instead of 1 in the middle of epoch {record['epoch']}" in res.stderr
    resumed = _epoch(out, record["epoch"])
    assert resumed["train_nodes_seen"] == resumed["train_nodes"] == 1200, resumed
    assert final_line(out)["epochs_run"] == 3


def _mpirun(data: Path, out: Path, *overrides: str) -> list[str]:
    return ["bash", str(REPO / "launch" / "mpirun.sh"), str(data), str(out), *FAST, *overrides]


@pytest.mark.slow
@pytest.mark.multiproc
@pytest.mark.parametrize("launch,sig,target", [(_launcher, signal.SIGINT, "launcher"),
                                               (_launcher, signal.SIGUSR1, "launcher"),
                                               (_launcher, signal.SIGHUP, "launcher"),
                                               (_launcher, signal.SIGTERM, "rank"),
                                               (_mpirun, signal.SIGTERM, "launcher")],
                         ids=["SIGINT-torchrun.sh", "SIGUSR1-torchrun.sh", "SIGHUP-torchrun.sh",
                              "SIGTERM-one-rank", "SIGTERM-mpiexec"])
def test_every_stop_signal_ends_with_a_checkpoint_one_line_and_75(data, tmp_path, launch, sig, target):
    out, log = tmp_path / "run", tmp_path / "launch.log"
    env = _env() | {"NP": "2"}
    code = _stop(launch(data, out, "train.epochs=50", "train.checkpoint_every_steps=5"), out, log,
                 sig, target, env)
    text = log.read_text()
    _assert_clean_stop(code, text, out)
    assert text.count(STOPPED) == (2 if launch is _mpirun else 3), text[-3000:]  # each rank (+ torchrun)
    if launch is _launcher and target == "launcher":
        assert f"torchrun got {signal.Signals(sig).name}: the ranks checkpointed" in text


@pytest.mark.slow
@pytest.mark.multiproc
def test_a_graph_without_validation_nodes_says_so_and_makes_up_no_figures(tmp_path):
    import numpy as np

    src = tmp_path / "npy"
    src.mkdir()
    rng, n = np.random.default_rng(0), 600
    np.save(src / "edge_index.npy", rng.integers(0, n, (2, 3000)).astype(np.int64))
    np.save(src / "x.npy", rng.standard_normal((n, 8)).astype(np.float32))
    np.save(src / "y.npy", rng.integers(0, 3, n).astype(np.int64))
    np.save(src / "train_idx.npy", np.arange(n, dtype=np.int64))
    for split in ("val_idx", "test_idx"):
        np.save(src / f"{split}.npy", np.zeros(0, dtype=np.int64))
    data = make_dataset(tmp_path / "ds", f"npy:{src}")
    out = tmp_path / "run"
    res = run(train_cmd(data, out, "train.epochs=3", "train.early_stopping_patience=1"), timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "no validation nodes: nothing to validate on" in res.stderr
    assert "early stopping is off (train.early_stopping_patience=1 ignored)" in res.stderr
    assert "no validation nodes, nothing to validate on; no test nodes either" in res.stdout
    assert "best val" not in res.stdout and "epoch -1" not in res.stdout
    assert "nan" not in (out / "metrics.jsonl").read_text()
    final = final_line(out)
    assert final["val_acc"] is None and final["best_epoch"] is None and final["test_acc"] is None
    assert final["epochs_run"] == 3  # early stopping did not fire on made-up figures
