"""The pieces behind the fault tests, in-process: hashing once, resuming, agreeing, guarding.

The end-to-end tests (test_faults.py, test_resume_faults.py) show the promises hold for
real processes; these pin down each mechanism cheaply and deterministically.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from fault_helpers import TINY, flip_byte, make_dataset

from dist_train.config.schema import config_to_dict, load_config
from dist_train.loop.resume import apply_optim_config, check_resumable, config_changes
from dist_train.loop.schedule import build_scheduler
from dist_train.runtime import process_group as pg
from dist_train.runtime.agreement import fingerprint, first_disagreement
from dist_train.runtime.env import World, discover_world, free_port
from partition import DatasetError, InputError, verify_dataset
from partition.store import verify as verify_mod


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("units") / "ds", TINY)


# ---- shard checksums: once per file, cached, still catching a changed file ------------


def _count_hashing(monkeypatch) -> list[str]:
    hashed: list[str] = []
    real = verify_mod.sha256_file

    def counting(path, *args, **kwargs):
        hashed.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(verify_mod, "sha256_file", counting)
    return hashed


def test_verify_with_a_cache_hashes_each_file_once(data, tmp_path, monkeypatch):
    hashed = _count_hashing(monkeypatch)
    verify_dataset(data, parts=[0], cache_dir=tmp_path / "cache")
    assert len(hashed) == 10  # the ten arrays of part 0
    verify_dataset(data, parts=[0], cache_dir=tmp_path / "cache")
    assert len(hashed) == 10  # a restart re-reads nothing
    verify_dataset(data, parts=[0])
    assert len(hashed) == 20  # no cache asked for: every file hashed


def test_a_file_changed_after_caching_is_hashed_again(data, tmp_path, monkeypatch):
    import shutil

    ds = Path(shutil.copytree(data, tmp_path / "ds"))
    cache = tmp_path / "cache"
    verify_dataset(ds, parts=[1], cache_dir=cache)
    x = ds / "part-00001" / "x.npy"
    st = x.stat()
    flip_byte(x)
    os.utime(x, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime: ctime still moves
    with pytest.raises(DatasetError, match=r"part-00001/x\.npy: sha256 does not match"):
        verify_dataset(ds, parts=[1], cache_dir=cache)


def test_an_unwritable_cache_only_costs_a_rehash(data, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    verify_dataset(data, parts=[0], cache_dir=blocker / "cache")  # no error


# ---- resuming with a changed command line ---------------------------------------------


def _cfg(*overrides: str):
    return load_config(None, list(overrides))


def test_config_changes_lists_what_differs():
    old, new = config_to_dict(_cfg()), config_to_dict(_cfg("optim.lr=0.5", "train.epochs=20"))
    assert config_changes(old, new) == [("optim.lr", 0.01, 0.5), ("train.epochs", 10, 20)]


def test_resume_refuses_another_model_shape_or_dataset():
    state = {"config": config_to_dict(_cfg()), "identity": {"dataset": "aaaa"}}
    with pytest.raises(InputError, match=r"ckpt\.pt: model.hidden was 128, now 64; a checkpoint cannot"):
        check_resumable(state, config_to_dict(_cfg("model.hidden=64")), {"dataset": "aaaa"}, "ckpt.pt")
    with pytest.raises(InputError, match="dataset with id aaaa, but --data has bbbb"):
        check_resumable(state, config_to_dict(_cfg()), {"dataset": "bbbb"}, "ckpt.pt")
    moved = config_to_dict(_cfg("data.path=/elsewhere", "optim.lr=0.1"))
    assert check_resumable(state, moved, {"dataset": "aaaa"}, "ckpt.pt") == [("optim.lr", 0.01, 0.1)]


def test_the_new_lr_and_weight_decay_win_over_the_saved_optimizer_state():
    cfg = _cfg("optim.schedule=step", "optim.step_size=2", "optim.gamma=0.5")
    w = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.Adam([w], lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    sched = build_scheduler(opt, cfg.optim, 10)
    for _ in range(3):
        opt.step()
        sched.step()
    saved = opt.state_dict(), sched.state_dict()
    new = _cfg("optim.schedule=step", "optim.step_size=2", "optim.gamma=0.5", "optim.lr=0.2",
               "optim.weight_decay=0.0")
    opt2 = torch.optim.Adam([w], lr=new.optim.lr)
    sched2 = build_scheduler(opt2, new.optim, 10)
    opt2.load_state_dict(saved[0])
    sched2.load_state_dict(saved[1])
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.01 * 0.5)  # the old lr came back
    apply_optim_config(opt2, sched2, new.optim)
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.2 * 0.5)  # epoch 3 of the step schedule
    assert opt2.param_groups[0]["weight_decay"] == 0.0
    sched2.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.2 * 0.25)


# ---- ranks that disagree ---------------------------------------------------------------


def test_first_disagreement_names_the_key_and_every_value():
    a, b = fingerprint(_cfg("data.path=/a"), "m1"), fingerprint(_cfg("data.path=/b"), "m1")
    assert first_disagreement([a, b, a]) is None  # another path to the same dataset is fine
    c = fingerprint(_cfg("data.path=/c", "sampler.fanouts=[5,5]"), "m1")
    assert first_disagreement([a, a, c]) == \
        "ranks disagree on sampler.fanouts: '[15, 10]' on ranks 0,1; '[5, 5]' on rank 2"
    d = fingerprint(_cfg("data.path=/d"), "m2")
    assert first_disagreement([a, d]) == ("ranks disagree on the dataset (--data): "
                                          "'/a (dataset id m1)' on rank 0; "
                                          "'/d (dataset id m2)' on rank 1")


# ---- backend failures as one line -----------------------------------------------------


def test_backend_errors_are_recognised_and_shortened():
    gloo = RuntimeError("Got the following error when running the callback: RuntimeError: "
                        "[/x/third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed by "
                        "peer [127.0.0.1]:8096. This is typically caused by a remote worker crashing.")
    assert pg.is_comm_failure(gloo) and pg.is_comm_failure(dist.DistBackendError("nccl"))
    assert not pg.is_comm_failure(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert pg.backend_detail(gloo) == "Connection closed by peer [127.0.0.1]:8096"


# ---- restarts: each attempt meets in its own corner of torchrun's store ----------------


def test_torchrun_restart_count_is_part_of_the_world():
    env = {"RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "29500"}
    assert discover_world(env).attempt == 0
    assert discover_world(env | {"TORCHELASTIC_RESTART_COUNT": "3"}).attempt == 3
    shared = {"TORCHELASTIC_RESTART_COUNT": "3", "TORCHELASTIC_USE_AGENT_STORE": "True"}
    assert discover_world(env | shared).attempt == 3
    # a store per round (TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1): a host started anew counts
    # restarts from 0 while the others count on, so the count must not name the keys
    own = {"TORCHELASTIC_RESTART_COUNT": "3", "TORCHELASTIC_USE_AGENT_STORE": "False"}
    assert discover_world(env | own).attempt == 0


def test_a_restarted_attempt_does_not_see_the_dead_attempts_keys():
    # torchrun's agent keeps its store across restarts; the dead attempt's rank addresses
    # stay in it and made a restarted gloo group connect to a dead peer.
    port = free_port()
    server = dist.TCPStore("127.0.0.1", port, is_master=True, timeout=timedelta(seconds=10),
                           wait_for_workers=False)
    worlds = [World(1, 2, 1, 2, "127.0.0.1", port, "test", attempt=a) for a in (0, 0, 1)]
    dead, same, restarted = (pg._store(w, None, 10) for w in worlds)
    dead.add("peers_seen", 1)  # add() rather than check(): PrefixStore.check ignores the prefix
    assert same.add("peers_seen", 0) == 1  # one attempt shares its keys
    assert restarted.add("peers_seen", 0) == 0  # the next one starts clean
    del server


# ---- no checkpoint of a broken state ----------------------------------------------------


def test_non_finite_parameters_are_never_checkpointed(data, tmp_path):
    from dist_train.data.shards import load_local_graph
    from dist_train.loop.trainer import DivergenceError, Trainer

    cfg = _cfg(f"data.path={data}", "model.hidden=8", "sampler.fanouts=[3,3]", "dist.device=cpu")
    with pg.distributed(discover_world({}), device="cpu") as device:
        trainer = Trainer(cfg, load_local_graph(str(data), [0, 1]), 4, 0, 1, device, tmp_path)
        with torch.no_grad():
            next(trainer.model.parameters()).fill_(float("nan"))
        with pytest.raises(DivergenceError, match="non-finite parameters at epoch 0 step 0"):
            trainer.checkpoint()
    assert not (tmp_path / "checkpoints").exists()
