"""Low-level .npy plumbing for the shard format: streamed writes with a running sha256.

:class:`NpyWriter` writes the header, then rows in order, hashing each block as it
goes, so a shard file is never read back to checksum it. With :class:`IOThreads`, a
block is written on a writer thread while the caller gathers the next one (page-cache
writes run at ~450 MB/s on the benchmark VM: as slow as the feature gather they used to
follow), hashed on a second thread while it is being written, and a finished file is
fsynced on a third while the next is computed: hashlib, file writes and fsync all
release the GIL, so CPU work and the disk overlap (fsync is the disk's pace: the whole
dataset must be on disk before it is published). Blocks are handed to the file and to
hashlib as memoryviews: no copy beyond the one the caller made. Only
:mod:`partition.store.format` uses this module; it knows nothing of the shard layout.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.lib.format as npy_format

HASH_BLOCK = 1 << 23
"""Bytes read at a time when checksumming an existing file."""
BLOCK_BYTES = 1 << 24
"""Bytes written (and hashed) at a time by write_npy."""
OVERLAP_BYTES = 1 << 20
"""Blocks at least this big are hashed on the hashing thread while being written."""
MAX_PENDING_BLOCKS = 2
"""Blocks queued on the writer thread per file; bounds the memory held by queued blocks."""


@dataclass(frozen=True)
class FileRecord:
    """What the manifest stores about one .npy file."""

    sha256: str
    bytes: int
    shape: tuple[int, ...]
    dtype: str

    def to_json(self) -> dict:
        return {"sha256": self.sha256, "bytes": self.bytes, "shape": list(self.shape),
                "dtype": self.dtype}


def _fsync_close(f: BinaryIO) -> None:
    try:
        os.fsync(f.fileno())
    finally:
        f.close()


class IOThreads:
    """A hashing thread and an fsync thread shared by many writers; a context manager.

    :meth:`wait` blocks until every file handed to :meth:`sync` is on disk (and raises
    the first fsync error); leaving the context waits too, even on error.
    """

    def __init__(self) -> None:
        self.hasher = ThreadPoolExecutor(1, "giantgcn-sha256")
        self.writer = ThreadPoolExecutor(1, "giantgcn-write")  # one thread: blocks stay in order
        self._syncer = ThreadPoolExecutor(1, "giantgcn-fsync")
        self._pending: list[Future] = []

    def sync(self, f: BinaryIO) -> None:
        self._pending.append(self._syncer.submit(_fsync_close, f))

    def wait(self) -> None:
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def __enter__(self) -> IOThreads:
        return self

    def __exit__(self, *exc: object) -> None:
        self.writer.shutdown(wait=True)
        self.hasher.shutdown(wait=True)
        self._syncer.shutdown(wait=True)  # every file closed before the temp dir is removed


class NpyWriter:
    """Write one C-order .npy of known shape and dtype block by block, then fsync it."""

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: np.dtype | type,
                 io: IOThreads | None = None) -> None:
        self.path, self.shape, self.dtype = path, tuple(int(s) for s in shape), np.dtype(dtype)
        self._io = io
        self._rows = 0
        self._hash = hashlib.sha256()
        self._bytes = 0
        self._pending: deque[Future] = deque()
        self._file = open(path, "wb")  # noqa: SIM115 - closed in close() / abort()
        header = {"descr": npy_format.dtype_to_descr(self.dtype), "fortran_order": False,
                  "shape": self.shape}
        npy_format.write_array_header_1_0(self, header)  # goes through self.write

    def write(self, block: np.ndarray | bytes) -> None:
        """Append ``block`` (rows in order, already of this file's dtype) or raw header bytes."""
        if isinstance(block, np.ndarray):
            if block.dtype != self.dtype or block.shape[1:] != self.shape[1:]:
                raise ValueError(f"{self.path}: block {block.dtype}{block.shape} does not fit "
                                 f"{self.dtype}{self.shape}")
            self._rows += block.shape[0]
            block = memoryview(np.ascontiguousarray(block)).cast("B")
        self._bytes += len(block)
        if self._io is None:
            self._put(block)
            return
        # every block goes through the writer thread (FIFO), so order is kept; the future
        # holds the block alive until it is written
        self._pending.append(self._io.writer.submit(self._put, block))
        while len(self._pending) > MAX_PENDING_BLOCKS:
            self._pending.popleft().result()

    def _put(self, block: memoryview | bytes) -> None:
        if self._io is not None and len(block) >= OVERLAP_BYTES:
            hashing = self._io.hasher.submit(self._hash.update, block)
            self._file.write(block)
            hashing.result()
        else:
            self._hash.update(block)
            self._file.write(block)

    def _drain(self) -> None:
        """Wait for every queued block; re-raise the first write error."""
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> FileRecord:
        """Check every row arrived, flush, fsync (now, or on the IOThreads); return the record."""
        if self._rows != (self.shape[0] if self.shape else 1):
            self.abort()
            raise ValueError(f"{self.path}: wrote {self._rows} rows, expected {self.shape[0]}")
        try:
            self._drain()
        except BaseException:
            self.abort()
            raise
        self._file.flush()
        if self._io is not None:
            self._io.sync(self._file)
        else:
            _fsync_close(self._file)
        return FileRecord(self._hash.hexdigest(), self._bytes, self.shape, self.dtype.str)

    def abort(self) -> None:
        for future in self._pending:  # nothing may still write to the file once it is closed
            future.cancel()
            if not future.cancelled():
                future.exception()
        self._pending.clear()
        self._file.close()


def write_npy(path: Path, array: np.ndarray, block_rows: int | None = None,
              io: IOThreads | None = None, dtype: np.dtype | type | None = None) -> FileRecord:
    """Write a whole array (in blocks of ``block_rows``, or ~16 MiB) and return its record.

    ``dtype``: the file's dtype when not the array's (each block is cast on its own, so a
    narrower array in memory costs one block of the wider dtype, not a whole copy).
    """
    array = np.asarray(array)
    dtype = array.dtype if dtype is None else np.dtype(dtype)
    writer = NpyWriter(path, array.shape, dtype, io)
    try:
        if array.ndim == 0:
            writer.write(array.reshape(1).astype(dtype, copy=False))
        else:
            row_bytes = max(1, dtype.itemsize * int(np.prod(array.shape[1:], dtype=np.int64)))
            step = block_rows or max(1, BLOCK_BYTES // row_bytes)
            for lo in range(0, array.shape[0], step):
                writer.write(array[lo:lo + step].astype(dtype, copy=False))
    except BaseException:
        writer.abort()
        raise
    return writer.close()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    buf = bytearray(HASH_BLOCK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            digest.update(view[:n])
    return digest.hexdigest()


def read_npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, header length in bytes); ValueError if it is not a C-order .npy."""
    with open(path, "rb") as f:
        major, _ = npy_format.read_magic(f)
        if major == 1:
            shape, fortran, dtype = npy_format.read_array_header_1_0(f)
        elif major == 2:
            shape, fortran, dtype = npy_format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy version {major}")
        if fortran:
            raise ValueError("Fortran-ordered array")
        return tuple(shape), dtype, f.tell()
