"""``from dist_train import train``: in-process (one rank), inside a caller's 2-rank group,
and the same run as ``giantgcn-train`` (the CLI is a wrapper over it)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch.distributed as dist
from dist_helpers import run_ranks
from fault_helpers import TINY, make_dataset

from dist_train import cli, train
from dist_train.config.schema import load_config
from partition.errors import InputError

CONFIG = {"sampler": {"batch_size": 16, "fanouts": [5, 5], "prefetch": 2},
          "model": {"hidden": 16}, "train": {"epochs": 2, "max_steps_per_epoch": 8, "log_every": 1000, "plot": False}}
FLAT = ["sampler.batch_size=16", "sampler.fanouts=[5,5]", "sampler.prefetch=2", "model.hidden=16",
        "train.epochs=2", "train.max_steps_per_epoch=8", "train.log_every=1000", "train.plot=false"]
SAME_RUN = ("best_epoch", "val_acc", "test_acc", "epochs_run", "total_steps")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("api") / "ds", TINY, parts=2)


def _final_line(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])


@pytest.fixture
def single_process(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "SLURM_PROCID", "PMI_RANK", "OMPI_COMM_WORLD_RANK",
                "GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.slow
def test_train_in_process_returns_what_the_cli_run_ends_with(data, tmp_path, single_process):
    handler = signal.getsignal(signal.SIGTERM)
    final = train(CONFIG, data=data, run_dir=tmp_path / "api")
    assert final == {k: v for k, v in _final_line(tmp_path / "api").items()}
    assert final["epochs_run"] == 2 and final["total_steps"] == 16 and 0.0 <= final["test_acc"] <= 1.0
    # the caller's process is left as found: no process group, its own signal handler, and no
    # interface variables (processes it starts later, on other hosts, would inherit "lo")
    assert not dist.is_initialized() and signal.getsignal(signal.SIGTERM) is handler
    assert not {"GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME"} & set(os.environ)
    assert load_config(tmp_path / "api" / "config.yaml").model.hidden == 16
    # the command line is the same function: same seed, same model, same figures
    assert cli.main(["--data", str(data), "--out", str(tmp_path / "cli"), *FLAT]) == 0
    by_cli = _final_line(tmp_path / "cli")
    assert {k: by_cli[k] for k in SAME_RUN} == {k: final[k] for k in SAME_RUN}


@pytest.mark.slow
def test_train_takes_a_config_object_a_yaml_path_and_overrides(data, tmp_path, single_process):
    cfg = load_config(None, FLAT)
    final = train(cfg, data=data, run_dir=tmp_path / "obj", overrides=["train.epochs=1"])
    assert final["epochs_run"] == 1  # overrides win over the config object
    again = train(tmp_path / "obj" / "config.yaml", data=data, run_dir=tmp_path / "yaml",
                  overrides=["train.epochs=1"])
    assert {k: again[k] for k in SAME_RUN} == {k: final[k] for k in SAME_RUN}


def test_a_bad_config_dict_is_one_line_naming_the_key(data, tmp_path):
    with pytest.raises(InputError, match=r"^config: optim\.lrr: unknown key \(did you mean optim\.lr\?\)$"):
        train({"optim": {"lrr": 0.1}}, data=data, run_dir=tmp_path / "r")
    with pytest.raises(InputError, match=r"^config: train\.epochs: expected int, got 'ten'$"):
        train({"train": {"epochs": "ten"}}, data=data, run_dir=tmp_path / "r")
    with pytest.raises(InputError, match=r"no dataset directory given"):
        train(CONFIG, run_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()  # nothing written for a refused config


def _train_in_my_group(rank: int, world_size: int, data: str, run_dir: str) -> dict:
    final = train(CONFIG, data=data, run_dir=run_dir)
    return {"final": final, "group_still_there": dist.is_initialized()}


@pytest.mark.multiproc
@pytest.mark.slow
def test_train_inside_a_callers_two_rank_group(data, tmp_path):
    r0, r1 = run_ranks(_train_in_my_group, 2, str(data), str(tmp_path / "run"), timeout=180)
    same = {k: r0["final"][k] for k in SAME_RUN}
    assert same == {k: r1["final"][k] for k in SAME_RUN}  # every rank returns the reduced figures
    assert r0["group_still_there"] and r1["group_still_there"]  # the caller's group is theirs
    assert r0["final"]["total_steps"] == 16
    assert {k: _final_line(tmp_path / "run")[k] for k in SAME_RUN} == same
