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
