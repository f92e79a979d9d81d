"""The full CSR parked in a scratch file while METIS runs on the contracted graph (issue 10).

Once the first contraction level is built, nothing reads the full graph until the parts
are projected back and refined; METIS on the cluster graph is the partition stage's peak
(~100 MiB of its own on the papers-shaped graph), and the full CSR (64 MiB there) would
sit under it. :class:`ParkedCSR` writes the CSR's two arrays to a file with plain writes
(page cache, not this process's RSS), drops them, and reads them back into fresh arrays
afterwards: the same ``CSR`` object, the same values.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from partition.graph.csr import CSR


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
        with open(self.path, "wb") as f:
            f.write(memoryview(np.ascontiguousarray(ptr)).cast("B"))
            f.write(memoryview(np.ascontiguousarray(idx)).cast("B"))
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
