"""Arrays inside an ``.npz`` read as a stream of chunks, never loaded whole (issue 10).

OGB ships its giant graphs (ogbn-papers100M) as ``raw/data.npz`` written by
``np.savez_compressed``: ``node_feat`` alone is 57 GB of float32, so ``np.load`` of a
member is out of the question. :class:`NpzMember` opens the member with :mod:`zipfile`
(stored or deflated, decompressed on the fly), parses the ``.npy`` header with
:mod:`numpy.lib.format`, and yields the data in blocks of whole elements: the memory
held is one block.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import numpy.lib.format as npy_format

from partition.errors import InputError

CHUNK_BYTES = 1 << 22
"""Bytes decompressed and handed over at a time."""


def _open_zip(path: Path) -> zipfile.ZipFile:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        return zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as err:
        raise InputError(f"{path}: cannot read as .npz ({err})") from None


def _read_header(f: IO[bytes], where: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    try:
        version = npy_format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = npy_format.read_array_header_2_0(f)
    except (ValueError, OSError, EOFError) as err:
        raise InputError(f"{where}: not a .npy member ({err})") from None
    if dtype.hasobject:
        raise InputError(f"{where}: holds Python objects (dtype {dtype}); expected numbers")
    return tuple(int(d) for d in shape), bool(fortran), dtype


def _skip(f: IO[bytes], nbytes: int, stored: bool) -> None:
    """Move ``nbytes`` forward: a seek when stored; when deflated, decompress and drop
    ``CHUNK_BYTES`` at a time (``ZipExtFile.seek`` would hold 16 MiB reads)."""
    if stored:
        f.seek(nbytes, 1)
        return
    while nbytes > 0:
        got = len(f.read(min(CHUNK_BYTES, nbytes)))
        if got == 0:
            return  # the caller's next read reports the truncation
        nbytes -= got


class NpzMember:
    """One array of an ``.npz`` file: ``shape``, ``dtype``, ``fortran_order``, and chunks.

    Raises InputError naming ``FILE:MEMBER`` for a missing member, a bad header or a
    truncated or corrupt stream.
    """

    def __init__(self, path: Path, name: str) -> None:
        self.path, self.name, self.where = Path(path), name, f"{path}:{name}"
        with _open_zip(self.path) as zf:
            members = {i.filename for i in zf.infolist()}
            if f"{name}.npy" not in members:
                found = ", ".join(sorted(m.removesuffix(".npy") for m in members)) or "nothing"
                raise InputError(f"{path}: has no array {name!r} (found: {found})")
            with zf.open(f"{name}.npy") as f:
                self.shape, self.fortran_order, self.dtype = _read_header(f, self.where)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def chunks(self, start: int = 0, count: int | None = None,
               chunk_elems: int | None = None) -> Iterator[np.ndarray]:
        """Elements ``[start, start + count)`` in file order, as 1-D arrays of ``chunk_elems``."""
        count = self.size - start if count is None else count
        step = chunk_elems or max(1, CHUNK_BYTES // self.dtype.itemsize)
        try:
            with _open_zip(self.path) as zf, zf.open(f"{self.name}.npy") as f:
                _read_header(f, self.where)
                stored = zf.getinfo(f"{self.name}.npy").compress_type == zipfile.ZIP_STORED
                _skip(f, start * self.dtype.itemsize, stored)
                done = 0
                while done < count:
                    n = min(step, count - done)
                    data = f.read(n * self.dtype.itemsize)
                    if len(data) != n * self.dtype.itemsize:
                        raise InputError(f"{self.where}: ends after {start + done + len(data) // self.dtype.itemsize} "
                                         f"of {self.size} elements (truncated)")
                    yield np.frombuffer(data, dtype=self.dtype)
                    done += n
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as err:
            raise InputError(f"{self.where}: cannot read ({err})") from None

    def row_blocks(self, rows_per_block: int) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, rows) of a C-order 2-D member, ``rows_per_block`` rows at a time."""
        if len(self.shape) != 2 or self.fortran_order:
            raise InputError(f"{self.where}: expected a C-order 2-D array, got shape {self.shape}"
                             + (" in Fortran order" if self.fortran_order else ""))
        width = self.shape[1]
        row = 0
        for chunk in self.chunks(chunk_elems=max(1, rows_per_block) * width):
            block = chunk.reshape(-1, width)
            yield row, block
            row += block.shape[0]

    def read_all(self, max_elems: int = 1 << 20) -> np.ndarray:
        """The whole member, for small ones only (counts, lists): InputError above ``max_elems``."""
        if self.size > max_elems:
            raise InputError(f"{self.where}: {self.size} elements; expected a small array")
        parts = list(self.chunks())
        flat = np.concatenate(parts) if parts else np.empty(0, self.dtype)
        return flat.reshape(self.shape, order="F" if self.fortran_order else "C")
