"""Faults during a real multi-rank run: nothing hangs, nothing is lost.

Each test starts real ``torchrun`` jobs (or ranks by hand with torchrun's variables) on
a 2,000-node graph and hurts them: SIGKILL of one rank, SIGTERM/SIGUSR1 preemption, a
rank that stops answering, ranks with different inputs, a rank that never arrives, a
corrupt shard. A resumed run must end with the same steps and the very same weights
as an uninterrupted one (every batch and dropout mask is a function of the position).
"""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest
from fault_helpers import (
    TINY,
    checkpoints,
    clean_env,
    epoch_lines,
    epochs_logged,
    error_lines,
    fault_rng,
    final_line,
    flip_byte,
    make_dataset,
    reap,
    run,
    same_weights,
    start,
    torchrun_cmd,
    train_cmd,
    wait_for,
    workers,
)

from dist_train.data.shards import assign_parts
from dist_train.runtime.env import free_port
from partition import load_manifest

EPOCHS = 8
RUN_ARGS = (f"train.epochs={EPOCHS}", "train.checkpoint_every_steps=10")
ERR = "giantgcn-train: error: "


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("faults") / "ds")


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory) -> Path:
    """The uninterrupted run every interrupted one must reproduce."""
    out = tmp_path_factory.mktemp("reference") / "run"
    res = run(torchrun_cmd(data, out, *RUN_ARGS), timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def _started_epoch(run_dir: Path, epoch: int) -> bool:
    return any(name >= f"ckpt-e{epoch:06d}" for name in checkpoints(run_dir))


def _assert_same_as(run_dir: Path, reference: Path) -> None:
    assert final_line(run_dir)["total_steps"] == final_line(reference)["total_steps"]
    assert epochs_logged(run_dir) == list(range(EPOCHS))
    assert same_weights(run_dir, reference), "resumed run differs from the uninterrupted one"
    # a resumed epoch's line covers the whole epoch (the sums before the stop were checkpointed)
    for got, want in zip(epoch_lines(run_dir), epoch_lines(reference), strict=True):
        assert (got["train_loss"], got["train_seeds"], got["steps"]) == \
            (want["train_loss"], want["train_seeds"], want["steps"]), (got, want)


@pytest.mark.slow
@pytest.mark.multiproc
def test_sigkill_of_one_rank_restarts_and_resumes_to_the_same_model(data, reference, tmp_path):
    seed, rng = fault_rng()
    out, log = tmp_path / "run", tmp_path / "torchrun.log"
    proc = start(torchrun_cmd(data, out, *RUN_ARGS, restarts=1), log)
    try:
        assert wait_for(lambda: _started_epoch(out, 2), 60), log.read_text()[-3000:]
        time.sleep(rng.uniform(0.0, 0.5))  # a random step of epoch 2 or 3
        victim = rng.randrange(2)
        workers(proc.pid)[victim].send_signal(signal.SIGKILL)
        assert proc.wait(120) == 0, f"seed {seed}:\n" + log.read_text()[-3000:]
    finally:
        reap(proc)
    text = log.read_text()
    assert f"local_rank: {victim}" in text and "exitcode: -9" in text  # torchrun names the rank
    assert "resumed from" in text, text[-3000:]
    _assert_same_as(out, reference)


@pytest.mark.slow
@pytest.mark.multiproc
def test_sigterm_to_torchrun_checkpoints_the_current_step_and_resumes(data, reference, tmp_path):
    seed, rng = fault_rng()
    out, log = tmp_path / "run", tmp_path / "torchrun.log"
    proc = start(torchrun_cmd(data, out, *RUN_ARGS), log)
    try:
        assert wait_for(lambda: _started_epoch(out, 2), 60), log.read_text()[-3000:]
        time.sleep(rng.uniform(0.0, 0.5))  # a random step of epoch 2 or 3
        proc.send_signal(signal.SIGTERM)  # what a scheduler sends to the job's processes
        proc.wait(60)
    finally:
        reap(proc)
    text = f"seed {seed}:\n" + log.read_text()
    # every rank finished its step and exited with EX_TEMPFAIL (75): "requeue me"
    assert text.count("exiting with 75 so the job is requeued") == 2, text[-3000:]
    newest = checkpoints(out)[-1]
    assert not newest.endswith("-s000000000.pt"), newest  # mid-epoch: the current step is kept
    res = run(torchrun_cmd(data, out, *RUN_ARGS), timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"resumed from {out / 'checkpoints' / newest}" in res.stderr
    _assert_same_as(out, reference)


@pytest.mark.slow
@pytest.mark.multiproc
def test_sigusr1_to_every_rank_is_restarted_by_torchrun(data, reference, tmp_path):
    # Slurm's --signal=USR1@N reaches the ranks; their exit status 75 makes torchrun restart
    seed, rng = fault_rng()
    out, log = tmp_path / "run", tmp_path / "torchrun.log"
    proc = start(torchrun_cmd(data, out, *RUN_ARGS, restarts=1), log)
    try:
        assert wait_for(lambda: _started_epoch(out, 2), 60), log.read_text()[-3000:]
        time.sleep(rng.uniform(0.0, 0.5))
        for worker in workers(proc.pid).values():
            worker.send_signal(signal.SIGUSR1)
        assert proc.wait(120) == 0, log.read_text()[-3000:]
    finally:
        reap(proc)
    text = f"seed {seed}:\n" + log.read_text()
    assert "exitcode: 75" in text and "resumed from" in text, text[-3000:]
    _assert_same_as(out, reference)


def _by_hand(out: Path, tmp: Path, per_rank: list[tuple[Path, list[str]]], port: int) -> list:
    """One process per ``(dataset, overrides)``, with the variables torchrun would set."""
    procs = []
    for rank, (data, overrides) in enumerate(per_rank):
        env = clean_env(RANK=str(rank), WORLD_SIZE=str(len(per_rank)), LOCAL_RANK=str(rank),
                        LOCAL_WORLD_SIZE=str(len(per_rank)), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        procs.append(start(train_cmd(data, out, *overrides), tmp / f"rank{rank}.log", env))
    return procs


@pytest.mark.slow
@pytest.mark.multiproc
def test_a_hung_rank_makes_the_others_fail_within_the_timeout(data, tmp_path):
    out = tmp_path / "run"
    args = ["train.epochs=100", "dist.timeout_s=4"]
    procs = _by_hand(out, tmp_path, [(data, args), (data, args)], free_port())
    try:
        assert wait_for(lambda: _started_epoch(out, 1), 60), (tmp_path / "rank0.log").read_text()
        procs[1].send_signal(signal.SIGSTOP)  # alive but silent: the case a timeout is for
        t0 = time.monotonic()
        code = procs[0].wait(60)
        waited = time.monotonic() - t0
    finally:
        for p in procs:
            reap(p)
    lines = error_lines((tmp_path / "rank0.log").read_text(), ERR)
    assert code == 1 and len(lines) == 1, (tmp_path / "rank0.log").read_text()[-3000:]
    assert "rank 0: epoch" in lines[0] and "dist.timeout_s=4" in lines[0], lines[0]
    assert waited < 4 + 15, waited


@pytest.mark.slow
@pytest.mark.multiproc
@pytest.mark.parametrize("what", ["config", "dataset"])
def test_ranks_with_different_inputs_refuse_to_start(data, tmp_path, what):
    if what == "config":
        other_data = data
        per_rank = [(data, ["optim.lr=0.01"]), (data, ["optim.lr=0.02"])]
        expected = "ranks disagree on optim.lr: '0.01' on rank 0; '0.02' on rank 1"
    else:
        other_data = make_dataset(tmp_path / "other", TINY + ",seed=1")
        per_rank, expected = [(data, []), (other_data, [])], "ranks disagree on the dataset (--data): "
    procs = _by_hand(tmp_path / "run", tmp_path, per_rank, free_port())
    try:
        codes = [p.wait(60) for p in procs]
    finally:
        for p in procs:
            reap(p)
    for rank in range(2):
        lines = error_lines((tmp_path / f"rank{rank}.log").read_text(), ERR)
        assert codes[rank] == 2 and len(lines) == 1, (tmp_path / f"rank{rank}.log").read_text()
        assert expected in lines[0], lines[0]
        if what == "dataset":
            assert f"{data} (dataset id" in lines[0] and f"{other_data} (dataset id" in lines[0]
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow
@pytest.mark.multiproc
@pytest.mark.parametrize("present", [0, 1])
def test_a_rank_that_never_arrives_is_a_one_line_error(data, tmp_path, present):
    port = free_port()
    env = clean_env(RANK=str(present), WORLD_SIZE="2", LOCAL_RANK=str(present), LOCAL_WORLD_SIZE="2",
                    MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    t0 = time.monotonic()
    res = run(train_cmd(data, tmp_path / "run", "dist.timeout_s=3"), timeout=60, env=env)
    lines = error_lines(res.stderr, ERR)
    assert res.returncode == 1 and len(lines) == 1 and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert f"127.0.0.1:{port}" in lines[0] and "expected 2 ranks" in lines[0]
    assert time.monotonic() - t0 < 30


@pytest.mark.slow
@pytest.mark.multiproc
@pytest.mark.parametrize(("damage", "holder"), [("flip", 1), ("truncate", 0)])
def test_a_corrupt_shard_stops_every_rank_before_training(data, tmp_path, damage, holder):
    # The line names the rank that holds the damaged part. Which part that is follows the
    # train counts (assign_parts), not the part number: since three-constraint METIS
    # (ddefa4d) part 1 of this graph has more train nodes and goes to rank 0.
    ds = Path(shutil.copytree(data, tmp_path / "ds"))
    counts = [int(p["num_train"]) for p in load_manifest(ds)["parts"]]
    part = assign_parts(counts, 2)[holder][0]
    bad = ds / f"part-{part:05d}" / ("x.npy" if damage == "flip" else "indices.npy")
    if damage == "flip":
        flip_byte(bad)
    else:
        bad.write_bytes(bad.read_bytes()[:-8])
    res = run(torchrun_cmd(ds, tmp_path / "run", "train.epochs=1"), timeout=90)
    assert res.returncode != 0
    lines = error_lines(res.stderr, ERR)
    # both ranks stop (torchrun's exit); the error they agreed on is printed once, by rank 0
    assert len(lines) == 1, res.stderr[-3000:]
    assert f"rank {holder}: {bad}:" in lines[0], lines[0]
    assert not (tmp_path / "run" / "metrics.jsonl").exists()  # no step was trained
