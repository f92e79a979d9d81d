"""giantgcn-predict end to end: a trained run, scored by 2 torchrun ranks, equals one process
on the whole graph; its test accuracy is the run's test_acc; a rerun resumes and gives
identical files (issue 11)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from dist_helpers import run_ranks
from fault_helpers import BIN, run
from test_predict_exact import full_graph_logits

from dist_train.exchange import Exchange
from dist_train.predict.exact import LayerFiles, exact_layers, rank_parts
from dist_train.predict.load_run import load_run, manifest_id
from dist_train.predict.outputs import open_work
from partition import load_manifest, load_partition
from partition.graph.csr import build_csr
from partition.readers.sources import read_source

TRAIN = ["sampler.batch_size=64", "sampler.fanouts=[5,5]", "model.hidden=16", "train.log_every=1000",
         "train.epochs=3"]


def _partition(out: Path, spec: str, parts: int, hops: int, root: str | None = None) -> None:
    cmd = [sys.executable, "-m", "partition", "--input", spec, "--num-parts", str(parts),
           "--halo-hops", str(hops), "--out", str(out), "--quiet"] + (["--root", root] if root else [])
    res = run(cmd, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]


def _predict(data: Path, run_dir: Path, out: Path, *extra: str) -> str:
    cmd = [str(BIN / "torchrun"), "--standalone", "--nproc-per-node=2", "-m", "dist_train.predict",
           "--data", str(data), "--run-dir", str(run_dir), "--out", str(out), "--logits", "--quiet", *extra]
    res = run(cmd, timeout=400)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return res.stdout


def _test_accuracy(data: Path, pred: np.ndarray) -> float:
    correct = total = 0
    for p in range(load_manifest(data)["num_parts"]):
        part = load_partition(data, p)
        t = np.asarray(part.test_idx)
        correct += int((pred[np.asarray(part.global_ids)[t]] == np.asarray(part.y)[t]).sum())
        total += t.shape[0]
    return correct / total


def _digests(d: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(d.glob("*.npy"))}


def _check_run(tmp_path: Path, spec: str, parts: int, hops: int, root: str | None = None) -> Path:
    data, run_dir, out = tmp_path / "ds", tmp_path / "run", tmp_path / "pred"
    _partition(data, spec, parts, hops, root)
    res = run([sys.executable, "-m", "dist_train", "--data", str(data), "--out", str(run_dir), *TRAIN], timeout=400)
    assert res.returncode == 0, res.stderr[-3000:]
    _predict(data, run_dir, out, "--embeddings")
    g = read_source(spec, root=root)
    csr = build_csr(g.num_nodes, g.edge_chunks)
    model = load_run(run_dir, None, data, load_manifest(data)).model
    want = full_graph_logits(model, g, csr)
    logits = np.load(out / "logits.npy")
    assert np.abs(logits - want).max() <= 1e-4
    pred = np.load(out / "predictions.npy")
    assert np.array_equal(pred, want.argmax(1)) and pred.dtype == np.int32
    probs = np.load(out / "probabilities.npy")
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5) and np.array_equal(probs.argmax(1), pred)
    final = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()][-1]
    assert final["event"] == "final" and _test_accuracy(data, pred) == pytest.approx(final["test_acc"], abs=1e-12)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["weights"]["which"] == "best" and manifest["dataset"]["num_nodes"] == g.num_nodes
    assert {k: v["sha256"] for k, v in manifest["files"].items()} == _digests(out)
    assert np.load(out / "embeddings.npy").shape == (g.num_nodes, 16)
    assert not (tmp_path / ".pred.work").exists()
    return out


@pytest.mark.multiproc
@pytest.mark.slow
@pytest.mark.parametrize("hops", [0, 1])
def test_synthetic_8_parts_predictions_are_exact(tmp_path, hops):
    _check_run(tmp_path, "synthetic:nodes=3000,features=16,classes=4,degree=8", 8, hops)


@pytest.mark.multiproc
@pytest.mark.slow
def test_cora_4_parts_2_ranks_predictions_are_exact(tmp_path, shared_data):
    root = shared_data / "planetoid"
    if not (root / "Cora" / "raw").is_dir():
        pytest.skip("Cora is absent")
    _check_run(tmp_path, "planetoid:Cora", 4, 1, str(root))


@pytest.mark.multiproc
@pytest.mark.slow
def test_a_rerun_reuses_finished_parts_and_writes_identical_files(tmp_path):
    """What a dead rank leaves (some finished (layer, part) files in the work directory) is
    reused, not recomputed, and the outputs equal an uninterrupted run's."""
    data, run_dir = tmp_path / "ds", tmp_path / "run"
    _partition(data, "synthetic:nodes=1500,features=8,classes=3,degree=6", 4, 0)
    res = run([sys.executable, "-m", "dist_train", "--data", str(data), "--out", str(run_dir),
               *TRAIN[:-1], "train.epochs=1"], timeout=400)
    assert res.returncode == 0, res.stderr[-3000:]
    whole = tmp_path / "whole"
    assert "reused 0 of 8" in _predict(data, run_dir, whole)
    # the work directory of a run killed after layer 0 and half of layer 1
    weights = load_run(run_dir, None, data, load_manifest(data))
    job = {"weights_sha256": weights.sha256, "dataset": manifest_id(data)}
    files = open_work(tmp_path / "pred", job)
    run_ranks(_save_layers, 1, str(run_dir), str(data), str(files.root), timeout=200)
    for p in (1, 3):
        files.path(1, p).unlink()
    assert "reused 6 of 8" in _predict(data, run_dir, tmp_path / "pred")
    assert _digests(tmp_path / "pred") == _digests(whole)
    assert not files.root.exists()  # removed once the outputs are in place


def _save_layers(rank, world, run_dir, data, root):
    """Every (layer, part) computed and saved by one rank (files do not depend on ranks)."""
    model = load_run(run_dir, None, data, load_manifest(data)).model
    exact_layers(model, rank_parts(data, rank, world), Exchange(), 100, torch.device("cpu"), LayerFiles(root))


@pytest.mark.multiproc
@pytest.mark.slow
def test_sigkill_of_one_rank_mid_layer_then_rerun(tmp_path):
    """A real torchrun run whose rank 1 is SIGKILLed once part of layer 1 is saved: the rerun
    reuses what was finished and writes the same files as an uninterrupted run."""
    import signal

    from fault_helpers import reap, start, wait_for, workers

    data, run_dir = tmp_path / "ds", tmp_path / "run"
    _partition(data, "synthetic:nodes=100000,features=32", 4, 0)
    run_dir.mkdir()
    res = run([sys.executable, "benchmarks/predict_bench.py", "--make-run", str(run_dir), str(data)], timeout=200)
    assert res.returncode == 0, res.stderr[-2000:]
    whole = tmp_path / "whole"
    _predict(data, run_dir, whole, "--chunk", "2000")
    out = tmp_path / "pred"
    cmd = [str(BIN / "torchrun"), "--standalone", "--nproc-per-node=2", "-m", "dist_train.predict",
           "--data", str(data), "--run-dir", str(run_dir), "--out", str(out), "--logits", "--quiet",
           "--chunk", "2000"]
    proc = start(cmd, tmp_path / "killed.log")
    try:
        layer1 = tmp_path / ".pred.work" / "layer-1"
        assert wait_for(lambda: layer1.is_dir() and any(layer1.glob("part-*.npy")), 300)
        workers(proc.pid)[1].send_signal(signal.SIGKILL)
        proc.wait(120)
    finally:
        reap(proc)
    assert proc.returncode != 0 and not out.exists()
    stdout = _predict(data, run_dir, out, "--chunk", "2000")
    reused = int(stdout.split("reused ")[1].split(" of")[0])
    assert 5 <= reused < 8  # layer 0 (4 parts) and at least one part of layer 1 were not recomputed
    assert _digests(out) == _digests(whole)
