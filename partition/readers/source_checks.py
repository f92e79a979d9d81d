"""Validation shared by every source reader: edge shapes, id ranges, labels.

Each check raises :class:`InputError` with one line naming the file (``where``) and
what is wrong, so a bad input never ends in a traceback from deep inside numpy. Big
arrays (memmaps) are scanned in blocks of rows so that checking a 100 GB feature file
never loads it whole. Splits: :mod:`partition.readers.splits`; features:
:mod:`partition.readers.features`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from partition.errors import InputError
from partition.readers.mapped_pages import release_columns
from partition.readers.source_graph import EdgeChunks

EDGE_CHUNK = 1 << 22
"""Edges per chunk when streaming an edge_index array (two int64 chunks = 64 MiB)."""
LABEL_BLOCK = 1 << 22
"""Labels converted at a time (a papers100M label column is 0.9 GB of float64)."""
UNLABELLED = -1
"""The label stored for a node without one (FORMAT.md): NaN or any negative value in the source."""


def check_edge_index(edge_index: np.ndarray, where: str) -> None:
    """A (2, E) integer array, the layout PyG uses."""
    check_edge_index_header(tuple(edge_index.shape), edge_index.dtype, where)


def check_edge_index_header(shape: tuple[int, ...], dtype: np.dtype, where: str) -> None:
    """:func:`check_edge_index` on a shape and dtype only (``--dry-run`` reads headers)."""
    if len(shape) != 2 or shape[0] != 2:
        raise InputError(f"{where}: expected an edge_index of shape (2, E), got shape {shape}")
    if not np.issubdtype(dtype, np.integer):
        raise InputError(f"{where}: expected integer node ids, got dtype {dtype}")


def check_labels_header(shape: tuple[int, ...], dtype: np.dtype, num_nodes: int, where: str,
                        rows_where: str) -> None:
    """:func:`check_labels`'s shape and dtype rules on a header (``--dry-run``): (N,) or
    (N, 1) of a numeric dtype, N = ``num_nodes``; InputError with the real run's line."""
    if len(shape) == 2 and shape[1] == 1:
        shape = shape[:1]
    if len(shape) != 1:
        raise InputError(f"{where}: expected labels of shape (N,) or (N, 1), got shape {shape}")
    if shape[0] != num_nodes:
        raise InputError(f"{where}: {shape[0]} labels but {rows_where} has {num_nodes} rows")
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer) or dtype == np.bool_):
        raise InputError(f"{where}: expected integer labels, got dtype {dtype}")


def check_edge_ids(src: np.ndarray, dst: np.ndarray, num_nodes: int, where: str) -> None:
    """Every id of one chunk lies in [0, num_nodes)."""
    for ids in (src, dst):
        if ids.size and (ids.min() < 0 or ids.max() >= num_nodes):
            bad = ids[(ids < 0) | (ids >= num_nodes)]
            raise InputError(f"{where}: {bad.size} node ids out of range [0, {num_nodes}), e.g. {bad[0]}")


def array_edge_chunks(edge_index: np.ndarray, num_nodes: int, where: str) -> EdgeChunks:
    """Stream a (2, E) array (often a memmap) in int64 slices, range-checking each slice.

    A memmap's pages of each slice are dropped from the process once it is copied
    (:func:`partition.readers.mapped_pages.release_columns`): read pages of a live mapping count in RSS, and the reader
    keeps the mapping for the whole run, so a 10^7-edge int64 list stayed 153 MiB of
    every later stage's peak (issue 12 review: npy runs 0.7-0.8x of the estimate).
    """

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for lo in range(0, edge_index.shape[1], EDGE_CHUNK):
            hi = min(lo + EDGE_CHUNK, edge_index.shape[1])
            src = np.array(edge_index[0, lo:hi], dtype=np.int64)
            dst = np.array(edge_index[1, lo:hi], dtype=np.int64)
            release_columns(edge_index, lo, hi)
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


def label_block(y: np.ndarray, lo: int, where: str) -> np.ndarray:
    """One block of source labels -> int64 with :data:`UNLABELLED` for NaN or negative."""
    if np.issubdtype(y.dtype, np.floating):
        # NaN and any negative (-inf too) mean unlabelled; a label must be an integer that
        # int64 holds (1e20 was cast to INT64_MIN with a numpy warning: silently unlabelled)
        none = np.isnan(y) | (y < 0)
        bad = ~none & (~np.isfinite(y) | (np.floor(y) != y) | (y >= 2.0 ** 62))
        if bad.any():
            first = int(np.argmax(bad))
            raise InputError(f"{where}: {int(bad.sum())} labels are not integers or NaN "
                             f"(unlabelled; class ids are below 2^62), e.g. {y[first]} at node {lo + first}")
        out = np.where(none, UNLABELLED, y).astype(np.int64)
    elif np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        out = np.array(y, dtype=np.int64)  # a copy: the source may be read-only
    else:
        raise InputError(f"{where}: expected integer labels, got dtype {y.dtype}")
    out[out < 0] = UNLABELLED
    return out


def check_labels(y: np.ndarray, num_nodes: int, where: str, rows_where: str) -> np.ndarray:
    """(N,) or (N, 1) labels -> int64[N]; NaN or negative -> :data:`UNLABELLED` (-1).

    Integral floats are accepted (OGB stores labels as float with NaN for unlabelled
    nodes); any other float, or a non-numeric dtype, raises InputError naming the node.
    Converted in blocks, so a memory-mapped source is read once.
    """
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise InputError(f"{where}: expected labels of shape (N,) or (N, 1), got shape {y.shape}")
    if y.shape[0] != num_nodes:
        raise InputError(f"{where}: {y.shape[0]} labels but {rows_where} has {num_nodes} rows")
    out = np.empty(num_nodes, dtype=np.int64)
    for lo in range(0, num_nodes, LABEL_BLOCK):
        out[lo:lo + LABEL_BLOCK] = label_block(np.asarray(y[lo:lo + LABEL_BLOCK]), lo, where)
    return out
