"""Validation shared by every source reader: shapes, dtypes, id ranges, NaN, splits.

Each check raises :class:`InputError` with one line naming the file (``where``) and
what is wrong, so a bad input never ends in a traceback from deep inside numpy. Big
arrays (memmaps) are scanned in blocks of rows so that checking a 100 GB feature file
never loads it whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from partition.errors import InputError
from partition.readers.source_graph import EdgeChunks

EDGE_CHUNK = 1 << 22
"""Edges per chunk when streaming an edge_index array (two int64 chunks = 64 MiB)."""
BLOCK_BYTES = 1 << 26
"""Bytes of feature rows scanned (and converted) at a time."""
RANDOM_SPLIT_SEED = 0
RANDOM_SPLIT = (0.6, 0.2)
"""Train and validation shares of the split made when a source has none; test gets the rest."""


def check_edge_index(edge_index: np.ndarray, where: str) -> None:
    """A (2, E) integer array, the layout PyG uses."""
    if edge_index.ndim != 2 or edge_index.shape[0] != 2:
        raise InputError(f"{where}: expected an edge_index of shape (2, E), got shape {edge_index.shape}")
    if not np.issubdtype(edge_index.dtype, np.integer):
        raise InputError(f"{where}: expected integer node ids, got dtype {edge_index.dtype}")


def check_edge_ids(src: np.ndarray, dst: np.ndarray, num_nodes: int, where: str) -> None:
    """Every id of one chunk lies in [0, num_nodes)."""
    for ids in (src, dst):
        if ids.size and (ids.min() < 0 or ids.max() >= num_nodes):
            bad = ids[(ids < 0) | (ids >= num_nodes)]
            raise InputError(f"{where}: {bad.size} node ids out of range [0, {num_nodes}), e.g. {bad[0]}")


def array_edge_chunks(edge_index: np.ndarray, num_nodes: int, where: str) -> EdgeChunks:
    """Stream a (2, E) array (often a memmap) in int64 slices, range-checking each slice."""

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for lo in range(0, edge_index.shape[1], EDGE_CHUNK):
            src = np.asarray(edge_index[0, lo:lo + EDGE_CHUNK], dtype=np.int64)
            dst = np.asarray(edge_index[1, lo:lo + EDGE_CHUNK], dtype=np.int64)
            check_edge_ids(src, dst, num_nodes, where)
            yield src, dst

    return chunks


def checked_edge_chunks(edge_chunks: EdgeChunks, num_nodes: int, where: str) -> EdgeChunks:
    """Wrap a stream so that each chunk is range-checked as it is read."""

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for src, dst in edge_chunks():
            check_edge_ids(src, dst, num_nodes, where)
            yield src, dst

    return chunks


def _row_blocks(x: np.ndarray) -> Iterator[slice]:
    rows = max(1, BLOCK_BYTES // max(1, x.shape[1] * x.dtype.itemsize))
    for lo in range(0, x.shape[0], rows):
        yield slice(lo, lo + rows)


def check_features(x: np.ndarray, where: str) -> np.ndarray:
    """(N, F) finite float32: returned as is when already float32 (a memmap stays one)."""
    if x.ndim != 2:
        raise InputError(f"{where}: expected a 2-D (nodes, features) array, got shape {x.shape}")
    if x.shape[1] == 0:
        raise InputError(f"{where}: has no feature columns (shape {x.shape})")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
            or x.dtype == np.bool_):
        raise InputError(f"{where}: expected numeric features, got dtype {x.dtype}")
    out = x if x.dtype == np.float32 else np.empty(x.shape, dtype=np.float32)
    for rows in _row_blocks(x):
        block = np.asarray(x[rows])
        if np.issubdtype(block.dtype, np.floating) and not np.isfinite(block).all():
            bad = np.argwhere(~np.isfinite(block))[0]
            raise InputError(f"{where}: non-finite feature (NaN or inf) at row {rows.start + bad[0]}, "
                             f"column {bad[1]}")
        if out is not x:
            out[rows] = block
    return out


def check_labels(y: np.ndarray, num_nodes: int, where: str, rows_where: str) -> np.ndarray:
    """(N,) or (N, 1) non-negative integer labels (integral floats accepted) -> int64[N]."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise InputError(f"{where}: expected labels of shape (N,) or (N, 1), got shape {y.shape}")
    if y.shape[0] != num_nodes:
        raise InputError(f"{where}: {y.shape[0]} labels but {rows_where} has {num_nodes} rows")
    if np.issubdtype(y.dtype, np.floating):
        bad = ~np.isfinite(y) | (np.floor(y) != y)
        if bad.any():
            first = int(np.argmax(bad))
            raise InputError(f"{where}: {int(bad.sum())} labels are not integers, e.g. {y[first]} at node {first}")
    elif not (np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_):
        raise InputError(f"{where}: expected integer labels, got dtype {y.dtype}")
    y = np.asarray(y, dtype=np.int64)
    if y.size and y.min() < 0:
        raise InputError(f"{where}: labels must be >= 0, found {y.min()} at node {int(np.argmin(y))}")
    return y


@dataclass(frozen=True)
class SplitInput:
    """One split as found in a source: ids or a boolean mask, and where it came from."""

    where: str
    values: np.ndarray


def split_ids(split: SplitInput, num_nodes: int) -> np.ndarray:
    """A mask of length N or an id array -> sorted unique int64 ids in [0, N)."""
    v = split.values
    if v.ndim == 2 and v.shape[1] == 1:
        v = v[:, 0]
    if v.ndim != 1:
        raise InputError(f"{split.where}: expected a 1-D id array or mask, got shape {v.shape}")
    if v.dtype == np.bool_:
        if v.shape[0] != num_nodes:
            raise InputError(f"{split.where}: mask has {v.shape[0]} entries, expected {num_nodes}")
        return np.flatnonzero(v).astype(np.int64)
    if not np.issubdtype(v.dtype, np.integer):
        raise InputError(f"{split.where}: expected integer node ids or a bool mask, got dtype {v.dtype}")
    if v.size and (v.min() < 0 or v.max() >= num_nodes):
        bad = v[(v < 0) | (v >= num_nodes)]
        raise InputError(f"{split.where}: {bad.size} node ids out of range [0, {num_nodes}), e.g. {bad[0]}")
    return np.unique(v.astype(np.int64))


def check_splits(splits: Sequence[SplitInput], num_nodes: int) -> list[np.ndarray]:
    """Train, val, test ids: each in range, sorted unique, and pairwise disjoint."""
    ids = [split_ids(s, num_nodes) for s in splits]
    owner = np.full(num_nodes, -1, dtype=np.int8)
    for k, part in enumerate(ids):
        taken = owner[part]
        if (taken >= 0).any():
            first = int(np.argmax(taken >= 0))
            raise InputError(f"{splits[k].where}: {int((taken >= 0).sum())} ids also in "
                             f"{splits[taken[first]].where}, e.g. node {part[first]}")
        owner[part] = k
    return ids


def random_split(num_nodes: int) -> list[np.ndarray]:
    """The seeded 60/20/20 split used when a source brings none."""
    perm = np.random.default_rng(RANDOM_SPLIT_SEED).permutation(num_nodes).astype(np.int64)
    a = int(round(RANDOM_SPLIT[0] * num_nodes))
    b = a + int(round(RANDOM_SPLIT[1] * num_nodes))
    return [np.sort(perm[:a]), np.sort(perm[a:b]), np.sort(perm[b:])]


def pick_splits(found: Sequence[SplitInput | None], names: Sequence[str], num_nodes: int,
                where: str) -> list[np.ndarray]:
    """All three splits, none (-> random split), or an error naming the missing one."""
    if all(s is None for s in found):
        return random_split(num_nodes)
    missing = [n for n, s in zip(names, found, strict=True) if s is None]
    if missing:
        raise InputError(f"{where}: has some split but not {', '.join(missing)}; give all three or none")
    return check_splits([s for s in found if s is not None], num_nodes)
