"""A part's feature rows, ``x[ids]``, read from the feature file in bounded memory (issue 10).

A part's rows are scattered over the whole feature matrix. Gathering them through a
memory map maps every page that holds one into this process, and a kernel that maps a
whole large page-cache folio on a fault (Linux 6.18 on ext4) maps most of the file: on
the papers-shaped graph the write stage's resident file pages rose by 137 MiB for a
244 MiB float16 scratch ``x``, even with ``MADV_DONTNEED`` after every 16 MiB block.

So rows of a file-backed ``x`` are read with ``preadv`` into a reused buffer instead:
the ids are cut into *pieces*, each a run of ascending ids inside one window of
:data:`WINDOW_BYTES` of the file; one read per piece brings in the span from its first
to its last row and the piece's rows are picked out of it. Pages read that way stay in
the page cache and never count in this process's RSS. Inner and halo nodes are each
sorted by global id (FORMAT.md), so a part is two long ascending runs: their rows come
out in order, a window at a time, and each run reads the file once. Rows in no long run
(the cached boundary rows at ``--halo-hops 0``, in cache order) are gathered in blocks
of at most ``block_rows``: each block sorted, read piece by piece, put back in order.

Memory held: one window buffer plus the block handed out, whatever the part's size.
Arrays in RAM (small graphs, ``pt:`` sources) are gathered with plain indexing.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

WINDOW_BYTES = 1 << 22
"""Bytes of the feature file one read may span (the reused read buffer's size)."""
LONG_RUN = 1 << 12
"""Ascending runs of at least this many ids are streamed; shorter ones are grouped."""


def file_backing(x: np.ndarray) -> tuple[str, int] | None:
    """(path, byte offset of ``x[0, 0]``) when ``x`` is a C-ordered 2-D view of a read-only
    ``np.memmap`` of a whole file region; None otherwise (gather it in memory then)."""
    if x.ndim != 2 or not x.flags.c_contiguous or x.shape[0] == 0:
        return None
    base = x
    while base is not None and not isinstance(base, np.memmap):
        base = base.base if isinstance(base.base, np.ndarray) else None
    handle = getattr(base, "_mmap", None)  # numpy keeps the mmap object here (every view)
    if handle is None or getattr(base, "filename", None) is None or base.mode != "r":
        return None
    # np.memmap maps from ``offset`` rounded down to the allocation granularity; a view's
    # own ``offset`` is its parent's, so locate x by its address inside the mapping
    mapped_at = np.frombuffer(handle, dtype=np.uint8, count=0).ctypes.data
    file_start = base.offset - base.offset % mmap.ALLOCATIONGRANULARITY
    return str(base.filename), int(file_start + x.ctypes.data - mapped_at)


def pieces(ids: np.ndarray, window_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) int64: ``ids`` cut wherever they fall or cross into another window of
    ``window_rows`` rows; inside a piece ids ascend and span less than one window."""
    if ids.shape[0] == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    win = ids // window_rows
    cut = np.flatnonzero((ids[1:] < ids[:-1]) | (win[1:] != win[:-1])) + 1
    return np.concatenate(([0], cut)), np.concatenate((cut, [ids.shape[0]]))


def segments(ids: np.ndarray, block_rows: int, long_run: int = LONG_RUN) -> list[tuple[int, int, bool]]:
    """``ids`` in output order cut into (start, end, ascending) segments, in order.

    An ascending run of at least ``long_run`` ids is one segment (``True``: streamed);
    the ids between two such runs are cut into segments of at most ``block_rows``
    (``False``: sorted when read). The list is short: long runs plus ``len(ids) / block_rows``.
    """
    n = ids.shape[0]
    run_start = np.concatenate(([0], np.flatnonzero(ids[1:] < ids[:-1]) + 1)) if n else []
    bounds = np.concatenate((run_start, [n])).astype(np.int64)
    long = np.flatnonzero(np.diff(bounds) >= long_run)  # run numbers of the long runs
    out: list[tuple[int, int, bool]] = []
    pos = 0
    for r in long.tolist():  # one iteration per long run: few
        lo, hi = int(bounds[r]), int(bounds[r + 1])
        out += [(a, min(a + block_rows, lo), False) for a in range(pos, lo, block_rows)]
        out.append((lo, hi, True))
        pos = hi
    out += [(a, min(a + block_rows, n), False) for a in range(pos, n, block_rows)]
    return out


class RowReader:
    """Rows of a file-backed (N, F) matrix read with ``preadv`` (see the module docstring).

    ``path`` and ``offset`` locate row 0; rows are ``row_bytes`` long and read as
    ``dtype`` [F]. A context manager (closes the file).
    """

    def __init__(self, path: str | Path, offset: int, num_cols: int, dtype: np.dtype,
                 window_bytes: int = WINDOW_BYTES) -> None:
        self.offset, self.num_cols, self.dtype = offset, num_cols, np.dtype(dtype)
        self.row_bytes = num_cols * self.dtype.itemsize
        self.window_rows = max(1, window_bytes // max(1, self.row_bytes))
        self._buf = np.empty(self.window_rows * self.row_bytes, dtype=np.uint8)
        self._fd = os.open(path, os.O_RDONLY)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> RowReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _span(self, first: int, last: int) -> np.ndarray:
        """Rows ``[first, last]`` as a view of the reused buffer (valid until the next read)."""
        nbytes = (last - first + 1) * self.row_bytes
        view, pos, done = memoryview(self._buf)[:nbytes], self.offset + first * self.row_bytes, 0
        while done < nbytes:
            got = os.preadv(self._fd, [view[done:]], pos + done)
            if got == 0:
                raise OSError(f"feature file ends before row {last}")
            done += got
        return self._buf[:nbytes].view(self.dtype).reshape(-1, self.num_cols)

    def _sorted_pieces(self, ids: np.ndarray) -> Iterator[tuple[int, int, np.ndarray]]:
        """(start, end, rows of ids[start:end]) per piece of ascending ``ids`` (rows copied)."""
        starts, ends = pieces(ids, self.window_rows)
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            span = self._span(int(ids[a]), int(ids[b - 1]))
            yield a, b, span[ids[a:b] - ids[a]]

    def blocks(self, ids: np.ndarray, block_rows: int) -> Iterator[np.ndarray]:
        """``x[ids]`` in order, as blocks of at most ``max(block_rows, one window)`` rows."""
        ids = np.asarray(ids, dtype=np.int64)
        for lo, hi, ascending in segments(ids, block_rows):
            seg = ids[lo:hi]
            if ascending:
                for _, _, rows in self._sorted_pieces(seg):
                    yield rows
                continue
            order = np.argsort(seg, kind="stable")
            out = np.empty((seg.shape[0], self.num_cols), dtype=self.dtype)
            for a, b, rows in self._sorted_pieces(seg[order]):
                out[order[a:b]] = rows
            yield out


def row_blocks(x: np.ndarray, ids: np.ndarray, block_rows: int,
               dtype: np.dtype) -> Iterator[np.ndarray]:
    """``x[ids]`` in order, viewed as ``dtype`` (same itemsize), in blocks: read from the
    file behind ``x`` when it is memory-mapped (:class:`RowReader`), else indexed in RAM."""
    backing = file_backing(x)
    if backing is None:
        for lo in range(0, ids.shape[0], block_rows):
            yield np.ascontiguousarray(x[ids[lo:lo + block_rows]]).view(dtype)
        return
    with RowReader(backing[0], backing[1], x.shape[1], dtype) as reader:
        yield from reader.blocks(ids, block_rows)
