"""giantgcn-predict end to end: a trained run, scored by 2 torchrun ranks, equals one process
on the whole graph; its test accuracy is the run's test_acc; a rerun resumes and gives
identical files (issue 11)."""

from __future__ import annotations

import hashlib
import json
import re
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


def _predict_cmd(data: Path, run_dir: Path, out: Path, *extra: str, nproc: int = 2) -> list[str]:
    return [str(BIN / "torchrun"), "--standalone", f"--nproc-per-node={nproc}", "-m", "dist_train.predict",
            "--data", str(data), "--run-dir", str(run_dir), "--out", str(out), "--logits", "--quiet", *extra]


def _predict(data: Path, run_dir: Path, out: Path, *extra: str, nproc: int = 2) -> str:
    res = run(_predict_cmd(data, run_dir, out, *extra, nproc=nproc), timeout=400)
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


SMALL = "synthetic:nodes=1500,features=8,classes=3,degree=6"


def _agree(got: Path, want: Path) -> None:
    """Same logits per global node id (float tolerance), same class wherever the top two
    logits are apart by more than that tolerance."""
    a, b = np.load(got / "logits.npy"), np.load(want / "logits.npy")
    assert a.shape == b.shape and np.abs(a - b).max() <= 1e-4
    top2 = np.sort(b, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-4
    assert clear.mean() > 0.9
    pa, pb = np.load(got / "predictions.npy"), np.load(want / "predictions.npy")
    assert np.array_equal(pa[clear], pb[clear])


@pytest.mark.multiproc
@pytest.mark.slow
def test_a_run_predicts_on_another_partitioning_of_its_graph(tmp_path):
    """Trained on 4 METIS parts (H=0); scored on them, on 3 random parts (H=1) by 2 ranks and
    on 1 part by 1 rank: the same predictions per node, one line saying so; a graph that
    differs in its edges is refused in one line, and a set-up error under torchrun is printed
    once, counted in the singular (issue: "1 parts", a line per rank)."""
    data, run_dir = tmp_path / "ds4", tmp_path / "run"
    _partition(data, SMALL, 4, 0)
    res = run([sys.executable, "-m", "dist_train", "--data", str(data), "--out", str(run_dir), *TRAIN],
              timeout=400)
    assert res.returncode == 0, res.stderr[-3000:]
    for name, parts, hops, method in (("ds3", 3, 1, "random"), ("ds1", 1, 0, "metis")):
        res = run([sys.executable, "-m", "partition", "--input", SMALL, "--num-parts", str(parts),
                   "--halo-hops", str(hops), "--method", method, "--out", str(tmp_path / name), "--quiet"],
                  timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
    assert len({load_manifest(tmp_path / d)["graph_id"] for d in ("ds4", "ds3", "ds1")}) == 1
    assert len({manifest_id(tmp_path / d) for d in ("ds4", "ds3", "ds1")}) == 3

    own = _predict(data, run_dir, tmp_path / "p4")
    assert "another partitioning" not in own
    three = _predict(tmp_path / "ds3", run_dir, tmp_path / "p3")
    one = _predict(tmp_path / "ds1", run_dir, tmp_path / "p1", nproc=1)
    for out, text, parts in ((three, "p3", "3 parts"), (one, "p1", "1 part")):
        notes = [ln for ln in out.splitlines() if "another partitioning" in ln]
        assert len(notes) == 1 and f"({parts})" in notes[0], out  # rank 0 alone says it
        _agree(tmp_path / text, tmp_path / "p4")
    assert "1 rank)" in one and "2 ranks)" in three and "rank(s)" not in one + three

    # another graph (one more neighbour per node on average): neither id matches
    _partition(tmp_path / "other", "synthetic:nodes=1500,features=8,classes=3,degree=7", 3, 0)
    res = run(_predict_cmd(tmp_path / "other", run_dir, tmp_path / "po"), timeout=400)
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("giantgcn-predict: error:")]
    assert res.returncode != 0 and len(errors) == 1, res.stderr[-3000:]
    assert not re.search(r'File ".*/(dist_train|partition)/[^"]*\.py", line', res.stderr)  # torchrun's own only
    assert "not the dataset run" in errors[0] and "nor the same graph" in errors[0]
    assert "(and 1 more rank failed)" in errors[0]
    # the same graph in 1 part, 2 ranks started: refused once, in the singular
    res = run(_predict_cmd(tmp_path / "ds1", run_dir, tmp_path / "px"), timeout=400)
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("giantgcn-predict: error:")]
    assert res.returncode != 0 and len(errors) == 1, res.stderr[-3000:]
    assert "the dataset has 1 part but 2 ranks were started" in errors[0]
