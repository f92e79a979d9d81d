"""The checks behind :func:`partition.store.format.verify_dataset`.

First every file against its manifest record (present, size, .npy header, sha256),
then the meaning of the arrays: ids in range, sorted id lists, a monotone ``indptr``
that ends at ``len(indices)``, splits among inner nodes, counts equal to the manifest.
The first failure raises :class:`DatasetError` naming the file: a truncated copy, a
flipped bit or a hand-edited shard is reported before a trainer maps it.

Hashing is the expensive part (every byte of a feature matrix that may be 100 GB), and a
trainer restarted after a dead rank would pay it again on every restart. With a
``cache_dir`` each file is hashed once: a stamp records the file's size, mtime, ctime
and inode next to the digest it matched, and a file whose stat still agrees is not
re-read. Any write to the file (even one that restores the mtime) changes its ctime,
so a modified shard is always re-hashed; only silent media corruption is not re-checked.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from partition.errors import DatasetError
from partition.store.format import (
    MANIFEST,
    NODE_PART,
    PART_ARRAYS,
    SPLITS,
    load_manifest,
    load_partition,
    open_array,
    part_file,
)
from partition.store.npy_stream import read_npy_header, sha256_file


@dataclass(frozen=True)
class HashCache:
    """Stamps of files whose sha256 matched the manifest, one small file per data file."""

    directory: Path

    @staticmethod
    def _signature(path: Path, sha256: str) -> str:
        st = path.stat()
        return f"{path.resolve()} {st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino} {sha256}"

    def _stamp(self, path: Path, sha256: str) -> Path:
        key = hashlib.sha256(f"{path.resolve()} {sha256}".encode()).hexdigest()[:32]
        return self.directory / f"{key}.ok"

    def hit(self, path: Path, sha256: str) -> bool:
        try:
            return self._stamp(path, sha256).read_text() == self._signature(path, sha256)
        except OSError:
            return False

    def remember(self, path: Path, sha256: str) -> None:
        """Best effort: a cache that cannot be written only costs a re-hash next time."""
        stamp = self._stamp(path, sha256)
        tmp = stamp.with_name(f".{stamp.name}.{os.getpid()}")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp.write_text(self._signature(path, sha256))
            os.replace(tmp, stamp)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)


def _check_file(d: Path, manifest: dict, rel: str, cache: HashCache | None = None) -> None:
    path, record = d / rel, manifest["files"].get(rel)
    if record is None:
        raise DatasetError(f"{d / MANIFEST}: lists no file {rel}")
    if not path.is_file():
        raise DatasetError(f"{path}: missing (incomplete dataset)")
    size = path.stat().st_size
    if size != record["bytes"]:
        raise DatasetError(f"{path}: {size} bytes but the manifest says {record['bytes']} "
                           "(truncated or replaced)")
    try:
        shape, dtype, _ = read_npy_header(path)
    except (OSError, ValueError, EOFError) as err:
        raise DatasetError(f"{path}: bad .npy header ({err})") from None
    if list(shape) != list(record["shape"]) or dtype.str != record["dtype"]:
        raise DatasetError(f"{path}: header says {dtype.str}{list(shape)} but the manifest says "
                           f"{record['dtype']}{record['shape']}")
    if cache is not None and cache.hit(path, record["sha256"]):
        return
    if sha256_file(path) != record["sha256"]:
        raise DatasetError(f"{path}: sha256 does not match the manifest (corrupt file)")
    if cache is not None:
        cache.remember(path, record["sha256"])


def _require(ok: bool, path: Path, what: str) -> None:
    if not ok:
        raise DatasetError(f"{path}: {what}")


def _in_range(a: np.ndarray, lo: int, hi: int, path: Path, what: str) -> None:
    _require(a.size == 0 or (int(a.min()) >= lo and int(a.max()) < hi), path,
             f"{what} out of range [{lo}, {hi})")


def _increasing(a: np.ndarray) -> bool:
    return bool(np.all(a[1:] > a[:-1]))


def _check_part(d: Path, manifest: dict, p: int) -> None:
    part, info = load_partition(d, p), manifest["parts"][p]
    n_local, n_inner = info["num_inner"] + info["num_halo"], part.num_inner
    n_rows = part.num_feature_rows

    def where(name: str) -> Path:
        return d / part_file(p, name)

    _require(part.global_ids.shape == (n_local,), where("global_ids"),
             f"{part.global_ids.shape[0]} ids but the manifest counts {n_local} local nodes")
    _in_range(part.global_ids, 0, manifest["num_nodes"], where("global_ids"), "global ids")
    _require(n_inner <= n_rows <= n_local, d / MANIFEST,
             f"parts[{p}].num_feature_rows {n_rows} not in [num_inner, num_local]")
    _require(all(_increasing(part.global_ids[a:b]) for a, b in
                 ((0, n_inner), (n_inner, n_rows), (n_rows, n_local))),
             where("global_ids"), "inner, halo or structure-only ids not strictly increasing")
    ptr = part.indptr
    _require(ptr.shape == (n_local + 1,) and int(ptr[0]) == 0, where("indptr"),
             f"expected {n_local + 1} entries starting at 0")
    _require(bool(np.all(ptr[1:] >= ptr[:-1])), where("indptr"), "not monotone")
    _require(int(ptr[-1]) == part.indices.shape[0], where("indptr"),
             f"ends at {int(ptr[-1])} but indices holds {part.indices.shape[0]}")
    _in_range(part.indices, 0, n_local, where("indices"), "local ids")
    _require(part.x.shape == (n_rows, manifest["num_features"]), where("x"),
             f"shape {part.x.shape}, expected ({n_rows}, {manifest['num_features']})")
    _require(part.y.shape == (n_rows,), where("y"), f"{part.y.shape[0]} labels for {n_rows} nodes")
    _require(part.halo_part.shape == (n_local - n_inner,), where("halo_part"),
             f"{part.halo_part.shape[0]} owners for {n_local - n_inner} halo nodes")
    _in_range(part.halo_part, 0, manifest["num_parts"], where("halo_part"), "part ids")
    _require(not bool(np.any(part.halo_part == p)), where("halo_part"), "a halo node owned by its own part")
    _in_range(part.y, -1, manifest["num_classes"], where("y"), "labels (-1: unlabelled)")
    _require(part.degree.shape == (n_local,) and bool(np.all(part.degree >= np.diff(ptr))),
             where("degree"), "not a global degree of every local node")
    for name in SPLITS:
        idx = getattr(part, f"{name}_idx")
        _in_range(idx, 0, n_inner, where(f"{name}_idx"), "local ids of inner nodes")
        _require(_increasing(idx) and idx.shape[0] == info[f"num_{name}"], where(f"{name}_idx"),
                 f"not {info[f'num_{name}']} increasing ids")
        _require(idx.size == 0 or int(part.y[idx].min()) >= 0, where(f"{name}_idx"),
                 "holds an unlabelled node (y = -1)")


def _check_node_part(d: Path, manifest: dict) -> None:
    parts, path = open_array(d, manifest, NODE_PART), d / NODE_PART
    num_parts = manifest["num_parts"]
    _require(parts.shape == (manifest["num_nodes"],), path, "not one part id per node")
    _in_range(parts, 0, num_parts, path, "part ids")
    counts = np.bincount(parts, minlength=num_parts)
    _require(counts.tolist() == [q["num_inner"] for q in manifest["parts"]], path,
             "part sizes differ from the manifest's num_inner")


def verify(d: Path, parts: list[int] | None = None, cache_dir: Path | None = None) -> None:
    """Check the whole dataset, or only ``parts`` (then node_part.npy is skipped).

    ``cache_dir``: where to keep stamps of files already hashed (see the module doc).
    """
    manifest = load_manifest(d)
    num_parts = manifest["num_parts"]
    for p in parts or []:
        if isinstance(p, bool) or not 0 <= int(p) < num_parts:
            raise DatasetError(f"{d}: part {p} out of range [0, {num_parts})")
    ids = list(range(num_parts)) if parts is None else [int(p) for p in parts]
    rels = ([NODE_PART] if parts is None else []) + [part_file(p, n) for p in ids for n in PART_ARRAYS]
    cache = HashCache(Path(cache_dir)) if cache_dir is not None else None
    for rel in rels:
        _check_file(d, manifest, rel, cache)
    for p in ids:
        _check_part(d, manifest, p)
    if parts is None:
        _check_node_part(d, manifest)
