"""The dataset directory: the only code that writes or reads shard files (FORMAT.md).

Writing (:func:`write_dataset`) streams every array through a sha256 as it goes to
disk, gathers feature rows from the (possibly memory-mapped) source in blocks, and
publishes the directory atomically (:mod:`partition.store.atomic_dir`), ``manifest.json``
last. Reading (:func:`load_partition`) memory-maps each array read-only, so a rank
pays only for the pages it touches; :func:`verify_dataset` (checks in
:mod:`partition.store.verify`) re-hashes files and checks ids before a run trusts them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from partition.errors import DatasetError
from partition.store.atomic_dir import MARKER, atomic_dir, fsync_dir
from partition.store.identity import graph_id
from partition.store.npy_stream import FileRecord, IOThreads, NpyWriter, write_npy

if TYPE_CHECKING:  # the reader must not import numba, pymetis or the writer's modules
    from partition.graph.csr import CSR
    from partition.graph.halo import PartGraph
    from partition.readers.source_graph import SourceGraph

FORMAT_VERSION = 2
"""2: structure-only halo at H=0 (inner rows complete), ``halo_part.npy``, x/y hold
``num_feature_rows`` rows (issue 11)."""
MANIFEST = MARKER
NODE_PART = "node_part.npy"
PART_ARRAYS = ("global_ids", "indptr", "indices", "x", "y", "degree", "halo_part",
               "train_idx", "val_idx", "test_idx")
"""Each part directory holds ``<name>.npy`` for each of these, and nothing else."""
SPLITS = ("train", "val", "test")
GATHER_BYTES = 1 << 22
"""Feature bytes gathered from the source and written at a time (up to 3 blocks in flight)."""
INDEX_BLOCK_BYTES = 1 << 22
"""Bytes of int64 local ids widened (from the builder's int32) and written at a time."""


def part_dir(part_id: int) -> str:
    return f"part-{part_id:05d}"


def part_file(part_id: int, name: str) -> str:
    """Path of one array relative to the dataset directory, as keyed in ``files``."""
    return f"{part_dir(part_id)}/{name}.npy"


def _created_by() -> str:
    try:
        from importlib.metadata import version

        return f"giantgcn-partition {version('giantgcn')}"
    except Exception:  # noqa: BLE001 - not installed (run from a checkout)
        return "giantgcn-partition (source checkout)"


# ---------------------------------------------------------------- writing


def _split_codes(graph: SourceGraph) -> np.ndarray:
    """int8 [N]: 0 unused, 1 train, 2 val, 3 test (one byte per node, not three masks)."""
    code = np.zeros(graph.num_nodes, dtype=np.int8)
    for c, idx in enumerate((graph.train_idx, graph.val_idx, graph.test_idx), start=1):
        code[np.asarray(idx, dtype=np.int64)] = c
    return code


def stored_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype ``x.npy`` is written with: bfloat16 as its raw uint16 bits (.npy cannot name it)."""
    return np.dtype(np.uint16) if dtype.name == "bfloat16" else np.dtype(dtype)


def _write_features(path: Path, x: np.ndarray, ids: np.ndarray, io: IOThreads | None = None,
                    on_block: Callable[[np.ndarray], None] | None = None) -> FileRecord:
    """``x[ids]`` to ``path``, in blocks: read from the file behind a memory-mapped ``x``
    (:mod:`partition.store.rows`, so RSS holds a block, not the pages of every row), or
    indexed from RAM (then a memmap's pages are dropped after each block).

    ``on_block(block)`` sees each block ([rows, F], the stored dtype) in order once it is
    handed to the writer: the graph hash reads the rows while they are in memory anyway."""
    from partition.store.rows import row_blocks

    stored = stored_dtype(x.dtype)
    writer = NpyWriter(path, (ids.shape[0], x.shape[1]), stored, io)
    try:
        step = max(1, GATHER_BYTES // max(1, stored.itemsize * x.shape[1]))
        for block in row_blocks(x, ids, step, stored):
            writer.write(block)
            if on_block is not None:
                on_block(block)
            release_pages(x)  # a no-op unless x is a memmap row_blocks could not read from
    except BaseException:
        writer.abort()
        raise
    return writer.close()


def release_pages(x: np.ndarray) -> None:
    """Drop the resident pages of a read-only file mapping (a memmapped source or scratch x).

    The rows a part gathered stay in the page cache but leave this process's RSS, so
    writing P parts of a feature file bigger than RAM holds one part's rows, not all.
    """
    import mmap

    base = x
    while base is not None and not isinstance(base, np.memmap):
        base = base.base if isinstance(base.base, np.ndarray) else None
    handle = getattr(base, "_mmap", None)  # numpy keeps the mmap object here since 1.x
    if handle is not None and hasattr(mmap, "MADV_DONTNEED") and base.mode == "r":
        handle.madvise(mmap.MADV_DONTNEED)


def _write_part(root: Path, pg: PartGraph, part_id: int, graph: SourceGraph, degree: np.ndarray,
                codes: np.ndarray, node_part: np.ndarray,
                io: IOThreads) -> tuple[dict[str, FileRecord], dict, int]:
    """Write part ``part_id``'s directory; return (file records, its ``parts[i]`` entry, the
    sum mod 2^64 of its inner nodes' hashes for the graph id, :mod:`partition.store.graph_hash`)."""
    from partition.store.graph_hash import PartHasher

    (root / part_dir(part_id)).mkdir()
    ids = pg.global_ids
    rows = ids[:pg.num_feature_rows]  # structure-only halo nodes have no x or y row
    inner_code = codes[ids[:pg.num_inner]]
    arrays = {"global_ids": ids, "indptr": pg.indptr, "indices": pg.indices,
              "y": np.asarray(graph.y[rows], dtype=np.int64), "degree": degree[ids],
              "halo_part": np.asarray(node_part[ids[pg.num_inner:]], dtype=np.int32)}
    for c, name in enumerate(SPLITS, start=1):
        arrays[f"{name}_idx"] = np.flatnonzero(inner_code == c).astype(np.int64)
    hasher = PartHasher(ids, pg.num_inner, pg.indptr, pg.indices, arrays["y"][:pg.num_inner], inner_code)
    records = {part_file(part_id, name): write_npy(root / part_file(part_id, name), a, io=io,
                                                   dtype=np.int64 if name == "indices" else None,
                                                   block_rows=INDEX_BLOCK_BYTES // 8 if name == "indices" else None)
               for name, a in arrays.items()}
    records[part_file(part_id, "x")] = _write_features(root / part_file(part_id, "x"), graph.x,
                                                       rows, io, hasher.add_rows)
    summary = {"part_id": part_id, "num_inner": pg.num_inner, "num_halo": pg.num_halo,
               "num_feature_rows": pg.num_feature_rows, "num_edges": int(pg.indices.shape[0])}
    summary |= {f"num_{name}": int(arrays[f"{name}_idx"].shape[0]) for name in SPLITS}
    return records, summary, hasher.part_sum()


def _write_json(path: Path, obj: dict) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def write_dataset(out_dir: str | Path, graph: SourceGraph, csr: CSR, parts: np.ndarray,
                  hops: int, method: str, seed: int, *, num_parts: int | None = None,
                  force: bool = False, stats: dict | None = None,
                  timings: dict[str, float] | None = None,
                  progress: Callable[[int], None] | None = None,
                  cache_budget: float = 0.0) -> dict:
    """Write every part and the manifest atomically; return the manifest.

    ``stats`` is :func:`partition_stats` output (computed if absent), ``timings`` the
    earlier stages' seconds (``write`` is added), ``progress(1)`` is called per part.
    ``cache_budget`` (a fraction of each part's inner nodes; only with ``hops == 0``)
    keeps the rows of that many boundary nodes, the most reached (issue 15).
    Raises InputError naming ``--out`` for an existing directory without ``force`` or
    any OSError while writing; nothing is left behind then.
    """
    from partition.graph.halo import PartBuilder
    from partition.graph.partitioners import partition_stats
    from partition.store.graph_hash import MASK64

    t0 = time.perf_counter()
    num_parts = int(parts.max()) + 1 if num_parts is None else num_parts
    codes = _split_codes(graph)
    if stats is None:
        stats = partition_stats(csr, parts, codes == 1, num_parts)
    with atomic_dir(Path(out_dir), force) as tmp:
        builder, degree, summaries = PartBuilder(csr, parts, num_parts), csr.degree(), []
        node_hash_sum = 0  # over parts, mod 2^64: any partitioning of the graph gives the same
        # One part at a time (built, written, dropped): a part's local CSR is the biggest
        # thing this stage holds (~6·10^6 edges at H=1 on the papers-shaped graph), and
        # building the next one while this one is written cost a second part in memory.
        # int32 local ids in memory, widened to the stored int64 a block at a time. Blocks
        # are hashed while written and files fsynced while the next are made (IOThreads).
        index_dtype = np.int32 if csr.num_nodes < 2**31 else np.int64
        with IOThreads() as io:
            files = {NODE_PART: write_npy(tmp / NODE_PART, np.asarray(parts, dtype=np.int32), io=io)}
            for p in range(num_parts):
                part = builder.build(p, hops, cache_budget, index_dtype)
                records, summary, part_sum = _write_part(tmp, part, p, graph, degree, codes, parts, io)
                node_hash_sum = (node_hash_sum + part_sum) & MASK64
                del part
                release_pages(csr.indptr)  # a mapped CSR (spill.map_csr): this part's rows
                release_pages(csr.indices)  # leave RSS before the next part reads its own
                files |= records
                summaries.append(summary)
                if progress is not None:
                    progress(1)
            io.wait()  # every array on disk before the manifest says the dataset is complete
        for p in range(num_parts):
            fsync_dir(tmp / part_dir(p))
        times = dict(timings or {}) | {"write": time.perf_counter() - t0}
        manifest = _manifest(graph, csr, num_parts, (hops, cache_budget), method, seed, stats,
                             summaries, times, files)
        manifest["graph_id"] = graph_id(node_hash_sum, manifest)  # needs the graph-level fields
        _write_json(tmp / MANIFEST, manifest)
    return manifest


def _manifest(graph: SourceGraph, csr: CSR, num_parts: int, halo: tuple[int, float], method: str, seed: int,
              stats: dict, summaries: list[dict], times: dict[str, float],
              files: dict[str, FileRecord]) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "created_by": _created_by(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": graph.name,
        "graph_id": None,  # set by write_dataset from the parts' node hashes (keeps its place here)
        "num_nodes": csr.num_nodes,
        "num_edges": csr.num_edges,
        "num_features": graph.num_features,
        "feature_dtype": graph.x.dtype.name,
        "feature_normalization": graph.feature_normalization,
        "num_unlabelled": graph.num_unlabelled,
        "num_classes": int(graph.num_classes),
        "num_train": int(len(graph.train_idx)),
        "num_val": int(len(graph.val_idx)),
        "num_test": int(len(graph.test_idx)),
        "num_parts": num_parts,
        "method": method,
        "seed": seed,
        "halo_hops": halo[0],
        "cache_budget": halo[1],
        "edge_cut": stats["edge_cut"],
        "edge_cut_ratio": stats["edge_cut_ratio"],
        "train_imbalance": stats["train_imbalance"],
        "edge_imbalance": stats["edge_imbalance"],
        "node_imbalance": stats["node_imbalance"],
        "parts": summaries,
        "timings_s": {k: round(v, 3) for k, v in times.items()},
        "files": {k: files[k].to_json() for k in sorted(files)},
    }


# ---------------------------------------------------------------- reading


REQUIRED_KEYS = ("num_nodes", "num_edges", "num_features", "num_classes", "num_parts",
                 "halo_hops", "parts", "files")
PART_KEYS = ("num_inner", "num_halo", "num_feature_rows", "num_edges")


def load_manifest(dataset_dir: str | Path) -> dict:
    """The parsed ``manifest.json``; DatasetError if the directory is not a complete dataset of
    this ``FORMAT_VERSION``."""
    d = Path(dataset_dir)
    if not d.is_dir():
        raise DatasetError(f"{d}: no such dataset directory")
    path = d / MANIFEST
    if not path.is_file():
        raise DatasetError(f"{d}: not a giantgcn dataset, or an incomplete one (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DatasetError(f"{path}: unreadable ({err})") from None
    if not isinstance(manifest, dict):
        raise DatasetError(f"{path}: expected a JSON object")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise DatasetError(f"{path}: format_version {version!r}; this giantgcn reads "
                           f"version {FORMAT_VERSION} (re-run giantgcn-partition)")
    for key in REQUIRED_KEYS:
        if key not in manifest:
            raise DatasetError(f"{path}: missing key {key!r}")
    if len(manifest["parts"]) != manifest["num_parts"]:
        raise DatasetError(f"{path}: {len(manifest['parts'])} entries in 'parts' "
                           f"but num_parts is {manifest['num_parts']}")
    for i, info in enumerate(manifest["parts"]):
        missing = [k for k in PART_KEYS if not isinstance(info, dict) or k not in info]
        if missing:
            raise DatasetError(f"{path}: parts[{i}] lacks {', '.join(map(repr, missing))}")
    return manifest


class LocalIdRanges:
    """Local id ranges of a part's graph, derived from ``global_ids`` (int64 [n_local]),
    ``num_inner`` and ``num_feature_rows`` (-1 on construction means every local node has a
    feature row). Shared by the writer's ``PartGraph`` and the reader's :class:`Partition`."""

    global_ids: np.ndarray
    num_inner: int
    num_feature_rows: int

    def __post_init__(self) -> None:
        if self.num_feature_rows < 0:
            self.num_feature_rows = self.num_local

    @property
    def num_local(self) -> int:
        return int(self.global_ids.shape[0])

    @property
    def num_halo(self) -> int:
        return self.num_local - self.num_inner


@dataclass
class Partition(LocalIdRanges):
    """One part, arrays memory-mapped read-only; local ids: inner first, then halo.

    Halo nodes with feature rows come first among the halo: local ids ``[0,
    num_feature_rows)`` have rows in ``x`` and ``y``, ``[num_feature_rows, num_local)``
    are structure-only (FORMAT.md). Every inner row of the CSR is complete.
    """

    part_id: int
    global_ids: np.ndarray
    """int64 [n_local]"""
    num_inner: int
    indptr: np.ndarray
    """int64 [n_local + 1]"""
    indices: np.ndarray
    """int64 [nnz] local ids"""
    x: np.ndarray
    """Features in the manifest's ``feature_dtype`` (float32, float16 or ml_dtypes.bfloat16),
    [num_feature_rows, F]."""
    y: np.ndarray
    """int64 [num_feature_rows] labels; -1 for an unlabelled node (never in a split)."""
    degree: np.ndarray
    """int64 [n_local]: global undirected degree of each local node (exact GCN normalisation)."""
    halo_part: np.ndarray
    """int32 [n_local - num_inner]: the part that owns each halo node."""
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray
    num_feature_rows: int = -1
    """-1 (the default) means every local node has a row."""



def open_array(dataset_dir: Path, manifest: dict, rel: str) -> np.ndarray:
    """Memory-map one listed array read-only, checking shape and dtype against the manifest."""
    path = dataset_dir / rel
    record = manifest["files"].get(rel)
    if record is None:
        raise DatasetError(f"{dataset_dir / MANIFEST}: lists no file {rel}")
    if not path.is_file():
        raise DatasetError(f"{path}: missing (incomplete dataset)")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise DatasetError(f"{path}: cannot read as .npy ({err})") from None
    if list(array.shape) != list(record["shape"]) or array.dtype.str != record["dtype"]:
        raise DatasetError(f"{path}: {array.dtype.str}{list(array.shape)} but the manifest says "
                           f"{record['dtype']}{record['shape']}")
    return array


def load_partition(dataset_dir: str | Path, part_id: int, verify: bool = False) -> Partition:
    """Open one part (``verify=True`` first re-hashes and checks its files)."""
    d = Path(dataset_dir)
    manifest = load_manifest(d)
    num_parts = manifest["num_parts"]
    if isinstance(part_id, bool) or not 0 <= int(part_id) < num_parts:
        raise DatasetError(f"{d}: part {part_id} out of range [0, {num_parts})")
    part_id = int(part_id)
    if verify:
        verify_dataset(d, parts=[part_id])
    arrays = {name: open_array(d, manifest, part_file(part_id, name)) for name in PART_ARRAYS}
    if manifest.get("feature_dtype") == "bfloat16":  # stored as raw uint16 bits
        from partition.readers.features import numpy_dtype

        arrays["x"] = arrays["x"].view(numpy_dtype("bfloat16"))
    info = manifest["parts"][part_id]
    return Partition(part_id=part_id, num_inner=int(info["num_inner"]),
                     num_feature_rows=int(info["num_feature_rows"]), **arrays)


def verify_dataset(dataset_dir: str | Path, parts: list[int] | None = None,
                   cache_dir: str | Path | None = None) -> None:
    """Raise DatasetError naming the first bad file; ``parts`` limits the check to those parts.

    ``cache_dir`` remembers files already hashed, so a restarted run does not re-read them.
    """
    from partition.store.verify import verify  # imported here: verify.py builds on this module

    verify(Path(dataset_dir), parts, Path(cache_dir) if cache_dir is not None else None)
