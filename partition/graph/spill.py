"""The full CSR parked in a scratch file while METIS runs on the contracted graph (issue 10).

Once the first contraction level is built, nothing reads the full graph until the parts
are projected back and refined; METIS on the cluster graph is the partition stage's peak
(~100 MiB of its own on the papers-shaped graph), and the full CSR (64 MiB there) would
sit under it. :class:`ParkedCSR` writes the CSR's two arrays to a file with plain writes
(page cache, not this process's RSS), drops them, and reads them back into fresh arrays
afterwards: the same ``CSR`` object, the same values. :func:`map_csr` maps it instead,
for the write stage.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from partition.graph.csr import CSR


def _write_arrays(path: Path, *arrays: np.ndarray) -> None:
    """Write the arrays' bytes one after another to ``path`` (plain writes: page cache).

    OSError names ``path`` (a full scratch disk is then one line naming the file, not a
    traceback), and the partial file is removed.
    """
    try:
        with open(path, "wb") as f:
            for a in arrays:
                f.write(memoryview(np.ascontiguousarray(a)).cast("B"))
    except OSError as err:
        path.unlink(missing_ok=True)
        raise OSError(err.errno, err.strerror, str(path)) from None


class ParkedCSR:
    """Park ``csr``'s arrays in ``directory`` (:meth:`park`) and bring them back (:meth:`restore`).

    Both are idempotent; :meth:`restore` also deletes the file. While parked the ``CSR``
    holds empty arrays: nothing may read it until :meth:`restore`. The caller must hold
    no other reference to the arrays, or parking frees nothing (it is still correct).
    """

    def __init__(self, csr: CSR, directory: str | Path) -> None:
        self.csr, self.path = csr, Path(directory) / f"csr-{os.getpid()}-{id(csr):x}.bin"
        self._meta: tuple[int, np.dtype, int, np.dtype] | None = None

    def park(self) -> None:
        if self._meta is not None:
            return
        ptr, idx = self.csr.indptr, self.csr.indices
        _write_arrays(self.path, ptr, idx)
        self._meta = (ptr.shape[0], ptr.dtype, idx.shape[0], idx.dtype)
        self.csr.indptr, self.csr.indices = np.zeros(1, ptr.dtype), np.zeros(0, idx.dtype)

    def restore(self) -> None:
        if self._meta is None:
            return
        n_ptr, ptr_dtype, n_idx, idx_dtype = self._meta
        with open(self.path, "rb") as f:
            self.csr.indptr = np.fromfile(f, dtype=ptr_dtype, count=n_ptr)
            self.csr.indices = np.fromfile(f, dtype=idx_dtype, count=n_idx)
        if self.csr.indptr.shape[0] != n_ptr or self.csr.indices.shape[0] != n_idx:
            raise OSError(f"{self.path}: the parked CSR came back short")
        self._meta = None
        self.path.unlink(missing_ok=True)


MAP_MIN_BYTES = 256 << 20
"""Below this a CSR stays in memory for the write stage (a scratch file buys nothing)."""


def map_csr(csr: CSR, directory: str | Path) -> bool:
    """Put ``csr``'s arrays in a file in ``directory`` and replace them with read-only
    memory maps of it (issue 12: the write stage makes one pass per part over the mapped
    CSR, releasing its pages after each, so it holds about a part's rows, not the graph).

    Values are unchanged. A CSR under :data:`MAP_MIN_BYTES`, or already mapped, is left as
    it is; returns whether it was mapped. The file lives as long as ``directory`` (the
    run's scratch folder). The caller must hold no other reference to the arrays, or
    mapping frees nothing (it is still correct). OSError (disk full) propagates.
    """
    ptr, idx = csr.indptr, csr.indices
    if ptr.nbytes + idx.nbytes < MAP_MIN_BYTES or (isinstance(ptr, np.memmap) and isinstance(idx, np.memmap)):
        return False
    path = Path(directory) / f"csr-mapped-{os.getpid()}-{id(csr):x}.bin"
    _write_arrays(path, ptr, idx)
    n_ptr, n_idx, ptr_dtype, idx_dtype = ptr.shape[0], idx.shape[0], ptr.dtype, idx.dtype
    del ptr, idx
    csr.indptr = np.memmap(path, dtype=ptr_dtype, mode="r", shape=(n_ptr,))
    csr.indices = np.memmap(path, dtype=idx_dtype, mode="r", offset=n_ptr * ptr_dtype.itemsize,
                            shape=(n_idx,)) if n_idx else np.zeros(0, idx_dtype)
    return True
