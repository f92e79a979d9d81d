"""A dataset's identity, and opening a dataset that may be replaced while it is opened.

Identity from content (issue 16): :func:`dataset_id` hashes the manifest without the
fields that say when and how fast it was written (``created_at``, ``created_by``,
``timings_s``). What remains is every file's sha256 and every partition parameter, so
an identical re-partition (same input, same settings, same seed: the partitioner is
deterministic) has the same id and a checkpoint resumes on it; any other dataset differs.

Graph identity (:func:`graph_id`): what stays when the partitioning goes. The writer sums
a 64-bit hash per node (:mod:`partition.store.graph_hash`) and this module binds that sum
to the graph-level fields (:data:`GRAPH_KEYS`); equal for every part count, method, seed,
halo depth and cache budget of one input, different when a node's features (as stored:
dtype and normalisation included), label, split or edges differ. ``giantgcn-predict``
accepts a run trained on another partitioning of the same graph by it.

Consistent opening: ``giantgcn-partition --force`` swaps a new directory in by rename
(:mod:`partition.store.atomic_dir`). A rank that read the old manifest and then opened
files by path could mix two versions, or fail half-way with ``FileNotFoundError``.
:func:`open_consistently` notes the directory's inode and the manifest's bytes before
and after the whole open; if either changed, what was opened is thrown away and the open
is tried once more, then refused in one line. Every file is therefore from the directory
that held the manifest both before and after: a swap in between changes the inode (the
new directory is another one), and nothing else in giantgcn rewrites a dataset in place.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from partition.errors import DatasetError
from partition.store.atomic_dir import MARKER

T = TypeVar("T")

VOLATILE_KEYS = ("created_at", "created_by", "timings_s")
"""Manifest fields that differ between identical re-partitions (clock, version string)."""
DERIVED_KEYS = ("graph_id",)
"""Manifest fields computed from the files the manifest already checksums: left out of
:func:`dataset_id` so a dataset keeps the id it had before the field existed."""
GRAPH_KEYS = ("num_nodes", "num_edges", "num_features", "feature_dtype",
              "feature_normalization", "num_classes")
"""Manifest fields that belong to the graph, not to its partitioning: bound into the graph id
(the dtype and normalisation change the stored bytes and what a model sees)."""
GRAPH_ID_SCHEME = "giantgcn-graph-1"
"""Names the per-node hash (partition.store.graph_hash); a new hash gets a new name."""


def dataset_id(manifest: dict) -> str:
    """16 hex digits of sha256 over the manifest minus :data:`VOLATILE_KEYS` and
    :data:`DERIVED_KEYS` (sorted keys)."""
    stable = {k: v for k, v in manifest.items() if k not in VOLATILE_KEYS + DERIVED_KEYS}
    blob = json.dumps(stable, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def graph_id(node_hash_sum: int, fields: dict) -> str:
    """16 hex digits of sha256 over the sum of node hashes (an int in [0, 2^64)) and the
    :data:`GRAPH_KEYS` of ``fields`` (the manifest being written). KeyError if one is missing."""
    blob = json.dumps({"scheme": GRAPH_ID_SCHEME, "node_hash_sum": f"{node_hash_sum:016x}",
                       **{k: fields[k] for k in GRAPH_KEYS}}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def manifest_graph_id(manifest: dict) -> str | None:
    """The dataset's graph id; None for a dataset written before giantgcn recorded one."""
    value = manifest.get("graph_id")
    return str(value) if value else None


@dataclass(frozen=True)
class Snapshot:
    """Which directory ``path`` names now, and what its manifest says."""

    device: int
    inode: int
    manifest_sha256: str


def snapshot(dataset_dir: Path) -> Snapshot | None:
    """The directory's identity now; None while it is missing (e.g. mid-swap)."""
    try:
        st = os.stat(dataset_dir)
        data = (dataset_dir / MARKER).read_bytes()
    except OSError:
        return None
    return Snapshot(st.st_dev, st.st_ino, hashlib.sha256(data).hexdigest())


def changed_error(dataset_dir: Path) -> DatasetError:
    return DatasetError(f"{dataset_dir}: the dataset changed while it was being opened (replaced by "
                        "giantgcn-partition --force?); rerun once it is written")


def open_consistently(dataset_dir: str | Path, open_fn: Callable[[], T], attempts: int = 2,
                      settle_s: float = 0.5) -> T:
    """``open_fn()`` with every file from one version of ``dataset_dir``.

    Tries up to ``attempts`` times while the directory is replaced under it, then raises
    :func:`changed_error`. An error from ``open_fn`` while the directory stayed the same
    is raised as it is (an OSError as a DatasetError naming the file). A directory found
    missing is waited for up to ``settle_s`` seconds (the instant between the two renames
    of a swap) before ``open_fn`` reports it.
    """
    d = Path(dataset_dir)
    for _ in range(attempts):
        before = _settled(d, settle_s)
        try:
            result, error = open_fn(), None
        except (DatasetError, OSError) as err:
            result, error = None, err
        after = snapshot(d)
        if before is None or before != after:
            if before is None and after is None and error is not None:
                raise _as_dataset_error(error)  # simply missing, not replaced
            continue
        if error is not None:
            raise _as_dataset_error(error)
        return result  # type: ignore[return-value]
    raise changed_error(d)


def _settled(d: Path, settle_s: float) -> Snapshot | None:
    deadline = time.monotonic() + settle_s
    while True:
        snap = snapshot(d)
        if snap is not None or time.monotonic() >= deadline:
            return snap
        time.sleep(0.05)


def _as_dataset_error(err: BaseException) -> BaseException:
    if isinstance(err, OSError) and not isinstance(err, DatasetError):
        where = err.filename or "dataset"
        return DatasetError(f"{where}: cannot read ({os.strerror(err.errno).lower() if err.errno else err})")
    return err
