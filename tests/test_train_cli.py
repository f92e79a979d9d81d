"""``python -m dist_train`` end to end under torchrun (2 ranks) on a 2,000-node graph.

One finished run (module fixture) is checked for what it leaves behind: metrics.jsonl
with the required keys and the final line, config.yaml with defaults < YAML < CLI,
checkpoints, model.pt. Copies of it are started again: a finished run trains nothing
more, a run whose last checkpoint is mid-run resumes to the very same model. Every bad
input is one line and a non-zero exit on every rank, within a timeout.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from fault_helpers import (
    BIN,
    FAST,
    TINY,
    checkpoints,
    clean_env,
    epochs_logged,
    error_lines,
    final_line,
    flip_byte,
    make_dataset,
    reap,
    run,
    same_weights,
    start,
)

from dist_train.config.schema import load_config
from dist_train.runtime.env import free_port

ERR = "giantgcn-train: error: "
EPOCHS = 3
ARGS = [f"train.epochs={EPOCHS}", "train.checkpoint_every=1", "train.keep_checkpoints=3"]
EPOCH_KEYS = {"epoch", "train_loss", "val_acc", "test_acc", "epoch_time_s", "sampled_edges_per_s",
              "time_sample_s", "time_gather_s", "time_forward_backward_s", "time_allreduce_s"}


def train_args(data: Path, out: Path, *overrides: str, config: str | None = "configs/cora.yaml") -> list[str]:
    return ["-m", "dist_train", "--data", str(data), "--out", str(out),
            *(["--config", config] if config else []), *FAST, *overrides]


def torchrun(data: Path, out: Path, *overrides: str, nproc: int = 2, config: str | None = "configs/cora.yaml",
             timeout: float = 120) -> tuple:
    cmd = [str(BIN / "torchrun"), "--standalone", f"--nproc-per-node={nproc}",
           *train_args(data, out, *overrides, config=config)]
    t0 = time.monotonic()
    res = run(cmd, timeout=timeout)
    return res, time.monotonic() - t0


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("train_cli") / "ds", TINY, parts=4)


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    res, _ = torchrun(data, out, *ARGS)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "giantgcn-train: done: best val" in res.stdout
    return out


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.multiproc
@pytest.mark.slow
def test_a_torchrun_run_writes_metrics_config_and_checkpoints(finished):
    recs = records(finished)
    epochs, final = recs[:-1], recs[-1]
    assert [r["epoch"] for r in epochs] == list(range(EPOCHS))
    for r in epochs:
        assert EPOCH_KEYS <= r.keys(), EPOCH_KEYS - r.keys()
        assert r["sampled_edges_per_s"] > 0 and 0 <= r["test_acc"] <= 1
    assert final["event"] == "final" and final["epochs_run"] == EPOCHS
    best = epochs[final["best_epoch"]]  # the final line reports the best-validation epoch
    assert (final["val_acc"], final["test_acc"]) == (best["val_acc"], best["test_acc"])
    assert best["val_acc"] == max(r["val_acc"] for r in epochs)
    cfg = load_config(finished / "config.yaml")
    assert cfg.train.epochs == EPOCHS and cfg.model.hidden == 16  # key=value beats the YAML
    assert cfg.train.early_stopping_patience == 50 and cfg.sampler.eval_fanouts == [-1, -1]  # YAML
    assert cfg.optim.grad_clip is None and cfg.optim.warmup_epochs == 0  # defaults
    assert checkpoints(finished) == [f"ckpt-e{e:06d}-s000000000.pt" for e in (1, 2, 3)]
    assert (finished / "model.pt").is_file()


@pytest.mark.multiproc
@pytest.mark.slow
def test_a_second_invocation_on_a_finished_run_trains_nothing(data, finished, tmp_path):
    out = Path(shutil.copytree(finished, tmp_path / "run"))
    res, _ = torchrun(data, out, *ARGS)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "resumed from" in res.stderr
    assert records(out)[:-1] == records(finished)[:-1]  # no epoch trained, none rewritten
    assert final_line(out)["total_steps"] == final_line(finished)["total_steps"]
    assert same_weights(out, finished)


@pytest.mark.multiproc
@pytest.mark.slow
def test_a_run_resumes_from_a_mid_run_checkpoint_to_the_same_model(data, finished, tmp_path):
    out = Path(shutil.copytree(finished, tmp_path / "run"))
    last = out / "checkpoints" / checkpoints(out)[-1]
    last.unlink()  # as if killed during the last epoch: the newest checkpoint is epoch 2's start
    (out / "model.pt").unlink()
    res, _ = torchrun(data, out, *ARGS, "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "ckpt-e000002-s000000000.pt (epoch 2, step 0)" in res.stderr
    assert epochs_logged(out) == list(range(EPOCHS))
    assert final_line(out)["total_steps"] == final_line(finished)["total_steps"]
    assert same_weights(out, finished), "the resumed run differs from the uninterrupted one"


@pytest.mark.multiproc
@pytest.mark.slow
def test_giantgcn_train_as_one_plain_process_merges_every_part(data, tmp_path):
    out = tmp_path / "run"
    res = run([str(BIN / "giantgcn-train"), *train_args(data, out, "train.epochs=1", config=None)[2:]],
              timeout=90)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "parts per rank: [[0, 1, 2, 3]]" in res.stderr
    assert final_line(out)["epochs_run"] == 1
    cfg = load_config(out / "config.yaml")
    assert cfg.model.arch == "gcn" and cfg.train.epochs == 1


@pytest.mark.multiproc
def test_resume_without_a_checkpoint_is_a_one_line_error(data, tmp_path):
    res = run([str(BIN / "giantgcn-train"), *train_args(data, tmp_path / "run", "--resume")[2:]], timeout=60)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert error_lines(res.stderr, ERR) == [f"{ERR}rank 0: --resume: no checkpoint in {tmp_path / 'run' / 'checkpoints'}"]


# ---- bad input: one line, non-zero exit on every rank, no hang ---------------------------

BAD = {
    "unknown_key": (["train.epochz=3"], "train.epochz: unknown key (did you mean train.epochs?)"),
    "wrong_type": (["optim.lr=fast"], "optim.lr: expected float, got 'fast'"),
    "fanouts_vs_layers": (["sampler.fanouts=[5,5,5]"],
                          "model.num_layers: 2 does not match sampler.fanouts [5, 5, 5] (3 layers)"),
    "fewer_parts_than_ranks": ([], "--data: the dataset has 1 part but 2 ranks were started"),
    "corrupt_dataset": ([], "part-00000/y.npy: sha256 does not match the manifest"),
}
AGREED = ("fewer_parts_than_ranks", "corrupt_dataset")
"""Set-up errors gathered from every rank: printed once (rank 0), not once per rank. The
others fail before the ranks can talk (the config), so each rank says it."""


@pytest.fixture(scope="module")
def bad_data(data, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad")
    corrupt = Path(shutil.copytree(data, root / "corrupt"))
    flip_byte(corrupt / "part-00000" / "y.npy")
    one_part = make_dataset(root / "one-part", TINY, parts=1)
    return {"corrupt_dataset": corrupt, "fewer_parts_than_ranks": one_part}


@pytest.mark.multiproc
@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_under_torchrun_is_one_line_and_a_nonzero_exit(data, bad_data, tmp_path, case):
    overrides, expected = BAD[case]
    res, seconds = torchrun(bad_data.get(case, data), tmp_path / "run", *overrides, config=None, timeout=90)
    lines = error_lines(res.stderr, ERR)
    assert res.returncode != 0 and seconds < 60
    assert lines and all(expected in line for line in lines), res.stderr[-3000:]
    assert case not in AGREED or len(lines) == 1, res.stderr[-3000:]
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


@pytest.mark.multiproc
@pytest.mark.slow
@pytest.mark.parametrize("case", ["fewer_parts_than_ranks", "corrupt_dataset", "unknown_key"])
def test_bad_input_stops_every_rank_with_the_same_line(data, bad_data, tmp_path, case):
    # ranks started by hand (torchrun's variables), so no launcher kills the slower rank
    overrides, expected = BAD[case]
    port, procs = free_port(), []
    for rank in range(2):
        env = clean_env(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE="2",
                        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        cmd = [str(BIN / "python"), *train_args(bad_data.get(case, data), tmp_path / "run", *overrides,
                                                 "dist.timeout_s=30", config=None)]
        procs.append(start(cmd, tmp_path / f"rank{rank}.log", env))
    try:
        codes = [p.wait(60) for p in procs]
    finally:
        for p in procs:
            reap(p)
    for rank in range(2):
        log = (tmp_path / f"rank{rank}.log").read_text()
        lines = error_lines(log, ERR)
        # an error the ranks agreed on is printed by rank 0 alone (launchers merge the
        # ranks' output: a line per rank said it W times); every rank still exits 2
        said = 1 if rank == 0 or case not in AGREED else 0
        assert codes[rank] == 2 and len(lines) == said, log[-3000:]
        assert all(expected in line for line in lines), log[-3000:]
        assert "Traceback" not in log
