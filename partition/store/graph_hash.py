"""Per-node content hashes of a part, summed into the dataset's partition-independent graph id.

A dataset's id (:func:`partition.store.identity.dataset_id`) covers every file and every
partition setting, so two partitionings of one graph differ. The **graph id** covers
only what a model sees: each node's global id, label, split, stored feature bytes and
neighbours' global ids, plus the manifest's graph-level fields
(:data:`partition.store.identity.GRAPH_KEYS`). Each node is hashed by the one part it
is inner in, and the parts' sums are added (mod 2^64): addition does not depend on
which part a node is in or in what order parts are written, so every partitioning
(part count, method, seed, halo depth, cache budget) of one graph gives one sum.

The hashes are made where the writer already holds the data: the structure from the
part's local CSR (an inner row is complete at every halo depth, FORMAT.md) before its
arrays are written, the features folded in block by block as ``x.npy`` is streamed, so
no feature row is read twice and the memory added is 8 bytes per inner node.

Not cryptographic: it tells partitionings of one graph from other graphs, it does not
resist a forger (the dataset id's sha256 checksums cover that).
"""

from __future__ import annotations

import numpy as np
from numba import njit

MASK64 = (1 << 64) - 1
"""Part sums are added as Python ints and reduced with this (sum mod 2^64)."""

# xxHash64's primes and splitmix64's finaliser constants (public, well-mixing 64-bit odd numbers)
_P1 = np.uint64(0x9E3779B185EBCA87)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_NODE = np.uint64(0x243F6A8885A308D3)  # domain tags: a node id and a neighbour id never collide
_NEIGHBOUR = np.uint64(0x13198A2E03707344)
_R27, _R30, _R31, _R33 = np.uint64(27), np.uint64(30), np.uint64(31), np.uint64(33)


@njit(cache=True, nogil=True)
def _mix(z: np.uint64) -> np.uint64:
    """splitmix64's finaliser: every input bit flips about half of the output bits."""
    z = (z ^ (z >> _R30)) * _M1
    z = (z ^ (z >> _R27)) * _M2
    return z ^ (z >> _R31)


@njit(cache=True, nogil=True)
def _round(acc: np.uint64, word: np.uint64) -> np.uint64:
    """xxHash64's round: one 64-bit word into a running hash (order matters)."""
    acc = acc + word * _P2
    acc = (acc << _R31) | (acc >> _R33)
    return acc * _P1


@njit(cache=True, nogil=True)
def _structure_hashes(global_ids: np.ndarray, labels: np.ndarray, splits: np.ndarray,
                      indptr: np.ndarray, indices: np.ndarray, num_inner: int) -> np.ndarray:
    """uint64 [num_inner]: running hash of each inner node's id, label, split and neighbours.

    The neighbours enter as a sum of mixed global ids, so the row's order does not matter
    (rows are in global-id order today; the id should not depend on that). Serial: as fast
    as numba's parallel loop on 2 cores (23 ms for 256k nodes, 9.4·10^6 entries) while the
    writer's I/O threads hash and write, and it leaves those threads their core.
    """
    out = np.empty(num_inner, dtype=np.uint64)
    for i in range(num_inner):
        nbrs = np.uint64(0)
        for k in range(indptr[i], indptr[i + 1]):
            nbrs += _mix(np.uint64(global_ids[indices[k]]) ^ _NEIGHBOUR)
        h = _mix(np.uint64(global_ids[i]) ^ _NODE)
        h = _round(h, np.uint64(labels[i] + 1))  # labels >= -1 (unlabelled)
        h = _round(h, np.uint64(splits[i]))
        h = _round(h, np.uint64(indptr[i + 1] - indptr[i]))
        out[i] = _round(h, nbrs)
    return out


@njit(cache=True, nogil=True)
def _fold_words(hashes: np.ndarray, words: np.ndarray) -> None:
    """Fold row ``i`` of ``words`` (any unsigned dtype, [n, W]) into ``hashes[i]`` in place.

    Serial on purpose: a block is ~16k rows, and waking numba's thread pool for each one
    cost 15x the hashing (0.12 s against 8 ms for 256k rows of 64 float32, 2 cores)."""
    for i in range(words.shape[0]):
        acc = hashes[i]
        for j in range(words.shape[1]):
            acc = _round(acc, np.uint64(words[i, j]))
        hashes[i] = acc


@njit(cache=True, nogil=True)
def _finished_sum(hashes: np.ndarray) -> np.uint64:
    """Sum (mod 2^64) of every node's finished hash."""
    total = np.uint64(0)
    for i in range(hashes.shape[0]):
        total += _mix(hashes[i])
    return total


def row_words(block: np.ndarray) -> np.ndarray:
    """The bytes of each row of ``block`` ([n, F], any dtype) as unsigned words [n, W].

    The widest of 8, 4, 2 or 1 bytes that divides a row's byte length: fewest words, and
    the width depends only on (dtype, F), so every partitioning folds the same words.
    """
    rows = np.ascontiguousarray(block)
    row_bytes = rows.shape[1] * rows.dtype.itemsize
    width = next(w for w in (8, 4, 2, 1) if row_bytes % w == 0)
    return rows.view(np.uint8).reshape(rows.shape[0], row_bytes).view(np.dtype(f"<u{width}"))


class PartHasher:
    """The node hashes of one part's inner nodes, fed its feature rows in write order.

    ``global_ids`` int64 [n_local], ``indptr`` int64 [n_local + 1] and ``indices`` (int32
    or int64 local ids) are the part's local CSR; ``labels`` int64 [num_inner] and
    ``splits`` int8 [num_inner] (0 none, 1 train, 2 val, 3 test) its inner nodes'.
    Then :meth:`add_rows` takes the blocks of ``x[global_ids[:num_feature_rows]]`` in
    order (rows past ``num_inner`` are halo rows and are skipped) and :meth:`part_sum`
    gives the part's contribution. Raises ValueError if fewer than ``num_inner`` rows came.
    """

    def __init__(self, global_ids: np.ndarray, num_inner: int, indptr: np.ndarray,
                 indices: np.ndarray, labels: np.ndarray, splits: np.ndarray) -> None:
        self.num_inner = int(num_inner)
        self._hashes = _structure_hashes(np.asarray(global_ids, dtype=np.int64),
                                         np.asarray(labels, dtype=np.int64),
                                         np.asarray(splits, dtype=np.int8), indptr, indices,
                                         self.num_inner)
        self._rows_seen = 0

    def add_rows(self, block: np.ndarray) -> None:
        """Fold the next feature rows ([n, F], the stored dtype) into their nodes' hashes."""
        lo = self._rows_seen
        self._rows_seen += int(block.shape[0])
        take = min(self._rows_seen, self.num_inner) - lo
        if take > 0 and block.shape[1] > 0:
            _fold_words(self._hashes[lo:lo + take], row_words(block[:take]))

    def part_sum(self) -> int:
        """The part's sum of finished node hashes, an int in [0, 2^64)."""
        if self._rows_seen < self.num_inner:
            raise ValueError(f"{self._rows_seen} feature rows hashed, the part has {self.num_inner} "
                             "inner nodes")
        return int(_finished_sum(self._hashes))
