"""The prediction directory: per-node arrays by ORIGINAL node id, a manifest, written atomically.

``PRED_DIR/`` (README "Predicting"):

- ``predictions.npy``   int32 [N]: argmax class of node i (row i = node i of the source)
- ``probabilities.npy`` float32 or float16 [N, C]: softmax of the logits
- ``logits.npy``        float32 [N, C], with ``--logits``
- ``embeddings.npy``    float32 or float16 [N, hidden], with ``--embeddings``: the last
  hidden layer (input of the last convolution, after ReLU/norm)
- ``manifest.json``     model, weights file and sha256, dataset id, shapes, dtypes, sha256

Resuming: ranks write each finished (layer, part) into a work directory beside the
output, ``.PRED_DIR.work/`` (``predict.exact.LayerFiles``), keyed by a ``job.json`` of
what determines the numbers (weights sha256, dataset id). A rerun with the same job
reuses them; another job starts the work directory afresh. Rank 0 assembles the final
files from it into a hidden temporary directory renamed onto ``PRED_DIR``
(``partition.store.atomic_dir``), then deletes the work directory.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from numpy.lib.format import open_memmap

from dist_train.predict.exact import LayerFiles
from partition.store.atomic_dir import atomic_dir
from partition.store.npy_stream import sha256_file

DTYPES = ("float32", "float16")


def work_dir(out: Path) -> Path:
    return out.parent / f".{out.name}.work"


def open_work(out: Path, job: dict) -> LayerFiles:
    """Rank 0: the work directory for ``job``, reused when a previous run had the same job."""
    root = work_dir(out)
    stamp = root / "job.json"
    try:
        same = json.loads(stamp.read_text()) == job
    except (OSError, ValueError):
        same = False
    if not same:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        stamp.write_text(json.dumps(job, sort_keys=True))
    return LayerFiles(root)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _scatter(tmp: Path, files: LayerFiles, parts: list, num_nodes: int, layer: int, width: int,
             outputs: dict[str, tuple[str, callable]]) -> None:
    """Write each named output [N, ...] by global id from the parts' saved ``layer`` rows."""
    arrays = {}
    for name, (dtype, fn) in outputs.items():
        probe = fn(np.zeros((1, width), dtype=np.float32))
        shape = (num_nodes,) + probe.shape[1:]
        arrays[name] = open_memmap(tmp / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
    for part in parts:
        rows = np.asarray(files.load(layer, part.part_id, (part.num_inner, width)))
        gids = np.asarray(part.global_ids[:part.num_inner])
        for name, (_, fn) in outputs.items():
            arrays[name][gids] = fn(rows)
    for a in arrays.values():
        a.flush()
    del arrays


def write_predictions(out: Path, force: bool, files: LayerFiles, parts: list, info: dict,
                      num_layers: int, num_classes: int, hidden: int, dtype: str,
                      logits: bool, embeddings: bool) -> dict:
    """Assemble PRED_DIR from the saved layers of every part (``parts``: each part's
    ``global_ids``, ``num_inner``, ``part_id``); return its manifest."""
    t0 = time.perf_counter()
    num_nodes = int(info["dataset"]["num_nodes"])
    with atomic_dir(out, force) as tmp:
        last = {"predictions": ("int32", lambda z: z.argmax(axis=1).astype(np.int32)),
                "probabilities": (dtype, lambda z: _softmax(z).astype(dtype))}
        if logits:
            last["logits"] = ("float32", lambda z: z)
        _scatter(tmp, files, parts, num_nodes, num_layers - 1, num_classes, last)
        if embeddings:
            _scatter(tmp, files, parts, num_nodes, num_layers - 2, hidden,
                     {"embeddings": (dtype, lambda z: z.astype(dtype))})
        records = {}
        for f in sorted(tmp.glob("*.npy")):
            a = np.load(f, mmap_mode="r")
            records[f.name] = {"shape": list(a.shape), "dtype": a.dtype.str, "bytes": f.stat().st_size,
                               "sha256": sha256_file(f)}
        manifest = info | {
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "index": "row i is node i of the source (original node id)",
            "probabilities": "softmax of the logits", "files": records,
            "timings_s": info.get("timings_s", {}) | {"write": round(time.perf_counter() - t0, 3)},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    shutil.rmtree(work_dir(out), ignore_errors=True)
    return manifest
