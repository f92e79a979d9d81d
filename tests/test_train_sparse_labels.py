"""Two ranks train a papers100M-like dataset: most nodes unlabelled, features in float16 (issue 10).

Cross-entropy on a label of -1 raises in torch, so a finished run proves no loss was
taken on an unlabelled node; the evaluated counts prove no accuracy was either.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from fault_helpers import BIN, FAST, run

from partition import load_manifest, load_partition
from partition.cli import main as partition_main
from partition.readers.sources import read_source


def _sparse_label_source(out: Path) -> tuple[Path, dict[str, int]]:
    g = read_source("synthetic:nodes=2000,features=16,classes=4,degree=8")
    rng = np.random.default_rng(12345)  # not 0: default_rng(0) replays the synthetic layout's order
    perm = rng.permutation(g.num_nodes)
    splits = {"train_idx": np.sort(perm[:200]), "val_idx": np.sort(perm[200:300]),
              "test_idx": np.sort(perm[300:400])}
    y = g.y.astype(np.float64)
    y[perm[400:]] = np.where(rng.random(g.num_nodes - 400) < 0.5, np.nan, -1)  # both sentinels
    out.mkdir()
    edges = np.concatenate([np.stack(c) for c in g.edge_chunks()], axis=1)
    for name, a in ({"edge_index": edges, "x": g.x, "y": y} | splits).items():
        np.save(out / f"{name}.npy", a)
    return out, {k: int(v.size) for k, v in splits.items()}


@pytest.mark.multiproc
@pytest.mark.slow
def test_two_ranks_train_with_unlabelled_nodes_and_float16_features(tmp_path):
    src, sizes = _sparse_label_source(tmp_path / "src")
    data = tmp_path / "ds"
    assert partition_main(["--input", f"npy:{src}", "--num-parts", "2", "--out", str(data),
                           "--feature-dtype", "float16", "--quiet"]) == 0
    m = load_manifest(data)
    assert m["num_unlabelled"] == 1600 and m["feature_dtype"] == "float16"
    assert all(load_partition(data, p).x.dtype == np.float16 for p in range(2))
    out = tmp_path / "run"
    res = run([str(BIN / "torchrun"), "--standalone", "--nproc-per-node=2", "-m", "dist_train",
               "--data", str(data), "--out", str(out), *FAST, "train.epochs=2"], timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in lines if "train_loss" in r]
    assert epochs and all(math.isfinite(r["train_loss"]) for r in epochs)
    assert epochs[-1]["num_val"] == sizes["val_idx"] and epochs[-1]["num_test"] == sizes["test_idx"]
    assert lines[-1]["event"] == "final" and lines[-1]["val_acc"] > 0.25  # 4 classes: above chance


@pytest.mark.multiproc
@pytest.mark.slow
@pytest.mark.parametrize("plan", ["rank", "global"])
def test_a_rank_without_train_nodes_whose_placeholder_seed_is_unlabelled(tmp_path, plan):
    """Issue 15 review: a rank with no train node trains zero-weight placeholder seeds (its
    first inner nodes); when those are unlabelled (y = -1) cross-entropy raised on that rank
    and the other reported a lost peer. One train node, every other node but val/test
    unlabelled: both ranks finish, in both batch plans."""
    g = read_source("synthetic:nodes=600,features=8,classes=3,degree=6")
    src = tmp_path / "src"
    src.mkdir()
    y = np.full(g.num_nodes, np.nan)
    splits = {"train_idx": np.array([g.num_nodes - 1]), "val_idx": np.arange(300, 330),
              "test_idx": np.arange(330, 360)}
    for idx in splits.values():
        y[idx] = g.y[idx]
    edges = np.concatenate([np.stack(c) for c in g.edge_chunks()], axis=1)
    for name, a in ({"edge_index": edges, "x": g.x, "y": y} | splits).items():
        np.save(src / f"{name}.npy", a)
    data = tmp_path / "ds"
    assert partition_main(["--input", f"npy:{src}", "--num-parts", "2", "--out", str(data), "--quiet",
                           "--halo-hops", "0", "--cache-budget", "0.1"]) == 0
    assert sorted(int(p["num_train"]) for p in load_manifest(data)["parts"]) == [0, 1]
    empty = next(p for p in range(2) if load_partition(data, p).train_idx.shape[0] == 0)
    assert np.asarray(load_partition(data, empty).y)[0] == -1  # the placeholder is unlabelled
    out = tmp_path / "run"
    res = run([str(BIN / "torchrun"), "--standalone", "--nproc-per-node=2", "-m", "dist_train",
               "--data", str(data), "--out", str(out), *FAST, "train.epochs=2", "sampler.mode=exact",
               f"train.batch_plan={plan}"], timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["event"] == "final"
    assert all(math.isfinite(r["train_loss"]) for r in lines if "train_loss" in r)
