"""Drop pages of a read-only memory-mapped source from this process once they are used.

Read pages of a live mapping count in RSS, and a reader keeps its ``np.memmap`` for the
whole run (the write stage reads features again; the edge list is one closure away), so
a streamed pass over a source file would leave all of it resident (issue 12 reviews: a
0.5 GiB ``x.npy`` 2.3x the read stage's estimate; a 10^7-edge int64 edge list 153 MiB of
every later stage). ``madvise(MADV_DONTNEED)`` on clean file pages drops them from the
process; a later read faults them back in from the page cache, so this is safe whenever
the array is not written through the mapping.
"""

from __future__ import annotations

import mmap

import numpy as np


def release_bytes(x: np.ndarray, lo: int, hi: int) -> None:
    """Drop the pages wholly inside bytes ``[lo, hi)`` of ``x``'s data (offsets from its
    first element) when ``x`` is a read-only ``np.memmap``; nothing otherwise."""
    handle = getattr(x, "_mmap", None)
    if (not isinstance(x, np.memmap) or handle is None or x.mode != "r"
            or not hasattr(mmap, "MADV_DONTNEED") or hi <= lo):
        return
    origin = x.ctypes.data - np.frombuffer(handle, dtype=np.uint8).ctypes.data  # x[0] in the map
    first = -(-(origin + lo) // mmap.PAGESIZE) * mmap.PAGESIZE
    last = min((origin + hi) // mmap.PAGESIZE * mmap.PAGESIZE, len(handle))
    if last > first:
        handle.madvise(mmap.MADV_DONTNEED, first, last - first)


def release_rows(x: np.ndarray, lo: int, hi: int) -> None:
    """Drop the pages of rows ``[lo, hi)`` of a C-ordered read-only memmap (no-op otherwise)."""
    if x.flags.c_contiguous:
        release_bytes(x, lo * x.strides[0], hi * x.strides[0])


def release_columns(x: np.ndarray, lo: int, hi: int) -> None:
    """Drop the pages of columns ``[lo, hi)`` of a (2, E) read-only memmap, C or Fortran order
    (an edge list: each row's slice in C order, the interleaved pairs in Fortran order)."""
    step = x.strides[1]
    for start in {0, x.strides[0]}:
        release_bytes(x, start + lo * step, start + hi * step)
