"""A dataset replaced while a run opens it, and a dataset's identity from content (issue 16).

``giantgcn-partition --force`` renames a new directory over the old one. A rank that read
the old manifest and then opened files by path used to fail with ``FileNotFoundError``
or "sha256 does not match", or, worse, mix the two versions silently. The swap is made
here exactly where it hurts (between the manifest read and the file opens, and in the
middle of hashing), then for real by a concurrent ``--force`` loop.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fault_helpers import REPO, TINY, clean_env, error_lines, make_dataset, run, train_cmd

import dist_train.loop.setup as cli
import partition.store.verify as verify_mod
from dist_train.config.schema import load_config
from dist_train.loop.resume import check_resumable
from dist_train.runtime.env import World
from partition import load_manifest, load_partition
from partition.errors import DatasetError
from partition.store.identity import dataset_id

CHANGED = "the dataset changed while it was being opened"


@pytest.fixture(scope="module")
def versions(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("versions")
    return {"a": make_dataset(root / "a"), "a_again": make_dataset(root / "a-again"),
            "b": make_dataset(root / "b", TINY + ",seed=1")}


def swap_in(src: Path, live: Path) -> None:
    """What ``giantgcn-partition --force`` does: a new directory renamed over the old one."""
    tmp = live.parent / f".{live.name}.tmp-{secrets.token_hex(4)}"
    shutil.copytree(src, tmp)
    aside = live.parent / f".{live.name}.old-{secrets.token_hex(4)}"
    os.rename(live, aside)
    os.rename(tmp, live)
    shutil.rmtree(aside)


def _open(live: Path, world_size: int = 1):
    cfg = load_config(None, [f"data.path={live}"])
    return cli.prepare_rank(cfg, World(0, world_size, 0, world_size, "127.0.0.1", 0, "test"))


def _live(versions, tmp_path) -> Path:
    return Path(shutil.copytree(versions["a"], tmp_path / "live"))


def test_a_swap_between_manifest_and_files_gives_one_whole_version(versions, tmp_path, monkeypatch):
    live, real = _live(versions, tmp_path), cli.verify_dataset
    calls = []

    def swapping_verify(*args, **kwargs):
        if not calls:
            swap_in(versions["b"], live)  # after the manifest was read, before any file is opened
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(cli, "verify_dataset", swapping_verify)
    graph, manifest, mine = _open(live)
    b = load_manifest(versions["b"])
    assert dataset_id(manifest) == dataset_id(b)  # the manifest the rank keeps is the new one ...
    assert len(calls) == 2  # ... after one retry
    # ... and so is every array it mapped: features and labels are B's, not A's
    inner = np.asarray(graph.global_ids[:graph.num_inner])
    for name, table in (("x", _by_global_id(versions["b"], "x")), ("y", _by_global_id(versions["b"], "y"))):
        assert np.array_equal(np.asarray(getattr(graph, name))[:graph.num_inner], table[inner]), name
    assert not np.array_equal(np.asarray(graph.x)[:graph.num_inner], _by_global_id(versions["a"], "x")[inner])
    assert int(manifest["num_train"]) == len(graph.train_idx) and mine == [0, 1]


def _by_global_id(ds: Path, name: str) -> np.ndarray:
    """``name`` rows of every node, gathered from the parts that own them."""
    parts = [load_partition(ds, p) for p in range(load_manifest(ds)["num_parts"])]
    first = np.asarray(getattr(parts[0], name))
    out = np.zeros((sum(p.num_inner for p in parts), *first.shape[1:]), first.dtype)
    for p in parts:
        out[np.asarray(p.global_ids[:p.num_inner])] = np.asarray(getattr(p, name))[:p.num_inner]
    return out


def test_a_swap_in_the_middle_of_hashing_is_retried_not_called_corrupt(versions, tmp_path, monkeypatch):
    live, real = _live(versions, tmp_path), verify_mod.sha256_file
    swapped = []

    def swapping_hash(path):
        if not swapped:
            swap_in(versions["b"], live)
            swapped.append(path)
        return real(path)

    monkeypatch.setattr(verify_mod, "sha256_file", swapping_hash)
    _, manifest, _ = _open(live)
    assert swapped and dataset_id(manifest) == dataset_id(load_manifest(versions["b"]))


def test_a_dataset_replaced_on_every_try_is_refused_in_one_line(versions, tmp_path, monkeypatch):
    live, real = _live(versions, tmp_path), cli.verify_dataset
    turn = [0]

    def always_swapping(*args, **kwargs):
        turn[0] += 1
        swap_in(versions["b" if turn[0] % 2 else "a"], live)
        return real(*args, **kwargs)

    monkeypatch.setattr(cli, "verify_dataset", always_swapping)
    with pytest.raises(DatasetError) as info:
        _open(live)
    assert str(info.value) == (f"{live}: {CHANGED} (replaced by giantgcn-partition --force?); "
                               "rerun once it is written")


def test_identity_is_the_content_not_the_clock(versions):
    a, again, b = (load_manifest(versions[k]) for k in ("a", "a_again", "b"))
    assert a["created_at"] != again["created_at"] or a["timings_s"] != again["timings_s"]
    assert dataset_id(a) == dataset_id(again) != dataset_id(b)
    edited = json.loads(json.dumps(a))
    edited["halo_hops"] += 1  # a partition parameter is part of the identity
    assert dataset_id(edited) != dataset_id(a)
    cfg = load_config(None, [])
    from dist_train.config.schema import config_to_dict

    state = {"config": config_to_dict(cfg), "identity": {"dataset": dataset_id(a)}}
    assert check_resumable(state, config_to_dict(cfg), {"dataset": dataset_id(again)}, "ckpt") == []


LOOP = """
import subprocess, sys
i = 0
while True:
    i += 1
    subprocess.run([sys.executable, "-m", "partition", "--input", sys.argv[2] + f",seed={i % 2}",
                    "--num-parts", "2", "--out", sys.argv[1], "--force", "--quiet"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
"""


@pytest.mark.slow
@pytest.mark.multiproc
def test_trainings_started_while_force_replaces_the_dataset_never_mix(versions, tmp_path):
    live = _live(versions, tmp_path)
    loop = subprocess.Popen([sys.executable, "-c", LOOP, str(live), TINY], cwd=REPO, env=clean_env())
    outcomes = []
    try:
        for i in range(2):  # each start races a partition into the same path
            res = run(train_cmd(live, tmp_path / f"run{i}", "train.epochs=1", "train.max_steps_per_epoch=2"),
                      timeout=240)
            lines = error_lines(res.stderr, "giantgcn-train: error: ")
            assert "Traceback" not in res.stderr, res.stderr[-3000:]
            assert res.returncode == 0 or (res.returncode == 2 and len(lines) == 1 and CHANGED in lines[0]), \
                res.stderr[-3000:]
            outcomes.append(res.returncode)
    finally:
        loop.kill()
        loop.wait(30)
    assert outcomes
