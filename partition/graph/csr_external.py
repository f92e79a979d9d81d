"""Out-of-core CSR build: an external merge sort of packed (row, column) keys.

The technique is the classic external sort (Knuth, TAOCP vol. 3, §5.4: sorted runs, then
a multiway merge), as the graph builders of KaMinPar and ParHIP use for graphs bigger
than memory. Every kept edge (u, v), u != v, becomes two keys, one per direction:

* N < 2^32: one ``uint64`` key ``u << 32 | v`` (8 bytes per directed entry);
* otherwise: 16 bytes ``S16``, big-endian ``u`` then ``v`` (numpy orders ``S16`` like
  ``memcmp``, so the byte order is the numeric order).

Runs: keys are packed into a buffer of ``budget / 2`` bytes; a full buffer is sorted in
place, deduplicated in place and written to a raw file in the scratch directory. Merge:
blockwise, never per key in Python. One block is read from each run; every key not above
the smallest of the blocks' last keys is final (no run holds a smaller key beyond its
block), so those keys are concatenated, sorted and deduplicated (duplicates across runs
meet here) and written out; the rest waits for the next round. Too many runs for blocks
of ``MIN_BLOCK`` keys are first merged in groups into longer runs.

The final merge writes the column ids (int32 when N < 2^31, else int64) sequentially to
``indices.bin`` in the scratch directory, returned as a read-only ``np.memmap``, and counts
row lengths into an int64 [N+1] array in memory (8 bytes per node, the one O(N) term),
so neither the edges nor the CSR's column ids need to fit in RAM. Runs are read and the
output written with plain file I/O, not memory maps: mapped pages would count in the
process's resident set and make the budget a fiction.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba import njit

from partition.errors import InputError
from partition.progress import trim_heap

MIN_BLOCK = 1024
"""Fewest keys read from a run per merge round (smaller reads would be all syscall)."""
MERGE_BYTES_PER_KEY = 40
"""Bytes the merge holds per key of block: the block (8), its pending tail after a refill
(8), the concatenation (8), the split row ids (8) and column ids (<= 8); 16-byte keys
scale the first three by two."""
RESERVE = 64 * 2**10
"""Bytes kept out of every share of the budget for small arrays and Python objects."""


@dataclass(frozen=True)
class KeyCodec:
    """How a directed entry (u, v) becomes one sortable key, and back."""

    dtype: np.dtype
    words: int
    """uint64 words per key (1 or 2): the in-place dedupe views keys as [n, words]."""

    @property
    def itemsize(self) -> int:
        return int(self.dtype.itemsize)


NARROW = KeyCodec(np.dtype(np.uint64), 1)
WIDE = KeyCodec(np.dtype("S16"), 2)


def codec_for(num_nodes: int) -> KeyCodec:
    """uint64 keys while both ids fit in 32 bits, else 16-byte keys."""
    return NARROW if num_nodes <= 2**32 else WIDE


def index_dtype(num_nodes: int) -> type:
    """Column id dtype of the CSR: int32 when N < 2^31 (issue 12), else int64."""
    return np.int32 if num_nodes < 2**31 else np.int64


def min_budget(num_nodes: int) -> int:
    """Smallest ``memory_budget`` (bytes) the external build accepts for ``num_nodes`` nodes."""
    # The row counts, then RESERVE, and a merge of at least a few runs at MIN_BLOCK keys.
    return 8 * (num_nodes + 1) + 4 * RESERVE


@njit(cache=True, nogil=True)
def _pack_narrow(src, dst, start, num_nodes, buf, pos):
    """Write both directions of src/dst[start:] (no loops) into buf[pos:] until it is full.

    Returns (next edge, next pos, bad edge index or -1).
    """
    i = start
    cap = buf.shape[0]
    while i < src.shape[0]:
        u, v = src[i], dst[i]
        if u < 0 or u >= num_nodes or v < 0 or v >= num_nodes:
            return i, pos, i
        if u != v:
            if pos + 2 > cap:
                return i, pos, -1
            uu, vv = np.uint64(u), np.uint64(v)
            buf[pos] = (uu << np.uint64(32)) | vv
            buf[pos + 1] = (vv << np.uint64(32)) | uu
            pos += 2
        i += 1
    return i, pos, -1


@njit(cache=True, nogil=True)
def _dedupe_sorted(words) -> int:
    """Compact the distinct rows of sorted ``words`` [n, w] to the front; their count."""
    n, w = words.shape
    if n == 0:
        return 0
    out = 1
    for i in range(1, n):
        same = True
        for j in range(w):
            if words[i, j] != words[out - 1, j]:
                same = False
                break
        if not same:
            if out != i:
                for j in range(w):
                    words[out, j] = words[i, j]
            out += 1
    return out


@njit(cache=True, nogil=True)
def _add_counts(rows, counts) -> None:
    for i in range(rows.shape[0]):
        counts[rows[i] + 1] += 1


def sort_unique(keys: np.ndarray, codec: KeyCodec) -> np.ndarray:
    """``keys`` sorted ascending without repeats, in place (a prefix view of ``keys``)."""
    keys.sort()  # in place: no second buffer of keys
    m = _dedupe_sorted(keys.view(np.uint64).reshape(-1, codec.words))
    return keys[:m]


def split_keys(keys: np.ndarray, codec: KeyCodec, out_dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """(row ids int64, column ids ``out_dtype``) of keys."""
    if codec.words == 1:
        return (keys >> np.uint64(32)).astype(np.int64), (keys & np.uint64(0xFFFFFFFF)).astype(out_dtype)
    pair = keys.view(">u8").reshape(-1, 2)
    return pair[:, 0].astype(np.int64), pair[:, 1].astype(out_dtype)


def _check_chunk(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    src, dst = np.asarray(src).reshape(-1), np.asarray(dst).reshape(-1)
    if src.shape != dst.shape:
        raise InputError(f"edge chunk: src has {src.size} ids but dst has {dst.size}")
    if src.size and not (np.issubdtype(src.dtype, np.integer) and np.issubdtype(dst.dtype, np.integer)):
        raise InputError(f"edges: expected integer node ids, got {src.dtype} and {dst.dtype}")
    return src, dst


def _out_of_range(src: np.ndarray, dst: np.ndarray, i: int, num_nodes: int) -> InputError:
    bad = src[i] if not 0 <= src[i] < num_nodes else dst[i]
    return InputError(f"edges: node id {bad} out of range [0, {num_nodes})")


def _pack_wide(src: np.ndarray, dst: np.ndarray, start: int, num_nodes: int, buf: np.ndarray,
               pos: int) -> tuple[int, int]:
    """As :func:`_pack_narrow` for 16-byte keys, vectorised over the slice that fits."""
    take = min(src.size - start, (buf.size - pos) // 2)  # a self loop uses no room: at most take
    s, d = src[start:start + take].astype(np.int64), dst[start:start + take].astype(np.int64)
    bad = np.flatnonzero((s < 0) | (s >= num_nodes) | (d < 0) | (d >= num_nodes))
    if bad.size:
        raise _out_of_range(src, dst, start + int(bad[0]), num_nodes)
    keep = s != d
    s, d = s[keep], d[keep]
    pair = buf[pos:pos + 2 * s.size].view(">u8").reshape(-1, 2)
    pair[0::2, 0], pair[0::2, 1] = s, d
    pair[1::2, 0], pair[1::2, 1] = d, s
    return start + take, pos + 2 * s.size


def _disk_error(err: OSError, path: Path) -> InputError:
    return InputError(f"{path}: cannot write the CSR build's scratch files: {err.strerror or err} "
                      "(they go beside --out; free space there or pass a larger --memory-budget)")


def _write(keys: np.ndarray, f, path: Path) -> None:
    try:
        # file.write, not ndarray.tofile: tofile's OSError carries no errno ("N requested
        # and 0 written"), and "No space left on device" is what the user must read.
        f.write(memoryview(np.ascontiguousarray(keys)).cast("B"))
    except OSError as err:
        raise _disk_error(err, path) from None


class _RunWriter:
    """Sorted, deduplicated runs of at most ``capacity`` keys, each a raw file in ``folder``."""

    def __init__(self, folder: Path, codec: KeyCodec, capacity: int) -> None:
        self.folder, self.codec, self.runs = folder, codec, []
        self.buf = np.empty(max(2, capacity), dtype=codec.dtype)
        self.pos = 0

    def add(self, src: np.ndarray, dst: np.ndarray, num_nodes: int) -> None:
        i = 0
        while i < src.size:  # a loop over buffer fills, not edges
            if self.codec.words == 1:
                i, self.pos, bad = _pack_narrow(src, dst, i, num_nodes, self.buf, self.pos)
                if bad >= 0:
                    raise _out_of_range(src, dst, bad, num_nodes)
            else:
                i, self.pos = _pack_wide(src, dst, i, num_nodes, self.buf, self.pos)
            if i < src.size:
                self.spill()

    def spill(self) -> None:
        if self.pos == 0:
            return
        keys = sort_unique(self.buf[:self.pos], self.codec)
        path = self.folder / f"run-{len(self.runs):05d}.keys"
        self.runs.append(_store(keys, path))
        self.pos = 0

    def close(self) -> list[Path]:
        self.spill()
        del self.buf
        return self.runs


def _store(keys: np.ndarray, path: Path) -> Path:
    try:
        with open(path, "wb") as f:
            _write(keys, f, path)
    except OSError as err:
        raise _disk_error(err, path) from None
    return path


def merge_blocks(runs: list[Path], codec: KeyCodec, block: int) -> Iterator[np.ndarray]:
    """The union of the sorted unique runs, as consecutive sorted unique key arrays.

    Each array is at most ``len(runs) * block`` keys; every key of one precedes every
    key of the next, so no key repeats across them either.
    """
    files = [open(p, "rb") for p in runs]
    try:
        pending = [np.empty(0, dtype=codec.dtype) for _ in runs]
        done = [False] * len(runs)
        while True:  # one round per merge block
            for i, f in enumerate(files):
                want = block - pending[i].size
                if not done[i] and want > 0:
                    more = np.fromfile(f, dtype=codec.dtype, count=want)
                    done[i] = more.size < want
                    pending[i] = np.concatenate((pending[i], more)) if pending[i].size else more
            live = [i for i in range(len(runs)) if pending[i].size]
            if not live:
                return
            # Runs with keys left on disk bound what is final: nothing beyond their block is smaller.
            ends = [pending[i][-1:] for i in live if not done[i]]
            bound = np.sort(np.concatenate(ends))[:1] if ends else None
            taken = []
            for i in live:
                cut = pending[i].size if bound is None else int(np.searchsorted(pending[i], bound, "right")[0])
                taken.append(pending[i][:cut])
                pending[i] = pending[i][cut:]
            merged = np.concatenate(taken)
            del taken
            yield sort_unique(merged, codec)
    finally:
        for f in files:
            f.close()


def _fan_in(merge_bytes: int, codec: KeyCodec) -> int:
    per_key = MERGE_BYTES_PER_KEY + 3 * (codec.itemsize - 8)
    return max(2, merge_bytes // (per_key * MIN_BLOCK))


def _block(merge_bytes: int, codec: KeyCodec, num_runs: int) -> int:
    per_key = MERGE_BYTES_PER_KEY + 3 * (codec.itemsize - 8)
    return max(MIN_BLOCK, merge_bytes // (per_key * max(1, num_runs)))


def _reduce_runs(runs: list[Path], codec: KeyCodec, merge_bytes: int, folder: Path) -> list[Path]:
    """Merge groups of runs into longer ones until one merge takes them all (a loop over passes)."""
    fan_in, generation = _fan_in(merge_bytes, codec), 0
    while len(runs) > fan_in:
        generation += 1
        longer = []
        for g in range(0, len(runs), fan_in):
            group = runs[g:g + fan_in]
            path = folder / f"merged-{generation}-{len(longer):05d}.keys"
            try:
                with open(path, "wb") as f:
                    for keys in merge_blocks(group, codec, _block(merge_bytes, codec, len(group))):
                        _write(keys, f, path)
            except OSError as err:
                raise _disk_error(err, path) from None
            for p in group:
                p.unlink()  # free the disk as soon as a run is merged
            longer.append(path)
        runs = longer
    return runs


def external_csr(num_nodes: int, chunks: Iterable[tuple[np.ndarray, np.ndarray]], memory_budget: int,
                 scratch: Path | None, progress: Callable[[int], None] | None = None,
                 codec: KeyCodec | None = None,
                 kept: list[tuple[np.ndarray, np.ndarray]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(indptr int64 [N+1], indices memmap [nnz]) of the undirected, deduplicated,
    self-loop-free CSR of ``chunks``, holding about ``memory_budget`` bytes at most.

    ``chunks`` yields (src, dst) integer arrays (consumed once); ``progress(n)`` follows
    each chunk of n raw edges. ``kept``: chunks already read and counted by the caller
    (the in-memory build that found it would not fit), emptied as they are packed. Scratch files go in a fresh folder under ``scratch`` (a
    temporary folder when None); the runs are deleted as they are merged, and the
    returned ``indices`` maps ``indices.bin`` there (writable, as the in-memory array is) (deleted at once when ``scratch`` is
    None: the mapping keeps it alive until the array goes). The budget counts this
    function's arrays, not the caller's chunk of edges. Scratch disk: up to
    2 x kept edges x 8 bytes (16 when N > 2^32) for the runs plus the column ids.

    Raises InputError for an id outside ``[0, num_nodes)``, a budget below
    :func:`min_budget`, or a failed scratch write (one line naming the file: disk full).
    """
    codec = codec or codec_for(num_nodes)
    if memory_budget < min_budget(num_nodes):
        raise InputError(f"--memory-budget: {memory_budget:,} bytes is too small for {num_nodes:,} nodes; "
                         f"the CSR build needs at least {min_budget(num_nodes):,} (8 bytes per node "
                         "for the row offsets plus room to merge)")
    own = scratch is None
    try:
        folder = Path(tempfile.mkdtemp(prefix="csr-", dir=None if own else scratch))
    except OSError as err:
        raise _disk_error(err, Path(scratch or tempfile.gettempdir())) from None
    try:
        writer = _RunWriter(folder, codec, (memory_budget // 2 - RESERVE) // codec.itemsize)
        while kept:  # free each already-read chunk once its keys are in a run
            writer.add(*kept.pop(), num_nodes)
        for src, dst in chunks:
            src, dst = _check_chunk(src, dst)
            if src.size:
                writer.add(src, dst, num_nodes)
            if progress is not None:
                progress(int(src.size))
        runs = writer.close()
        del writer
        trim_heap()  # the freed chunks sit in glibc's heap, still resident, unless trimmed
        merge_bytes = memory_budget - 8 * (num_nodes + 1) - RESERVE
        runs = _reduce_runs(runs, codec, merge_bytes, folder)
        indptr, indices = _final_merge(runs, codec, merge_bytes, num_nodes, folder / "indices.bin")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if own:
        shutil.rmtree(folder, ignore_errors=True)  # the memmap keeps indices.bin's data alive
    return indptr, indices


def _final_merge(runs: list[Path], codec: KeyCodec, merge_bytes: int, num_nodes: int,
                 path: Path) -> tuple[np.ndarray, np.ndarray]:
    out_dtype = index_dtype(num_nodes)
    counts = np.zeros(num_nodes + 1, dtype=np.int64)  # counts[u+1] = row length of u
    nnz = 0
    try:
        with open(path, "wb") as f:
            for keys in merge_blocks(runs, codec, _block(merge_bytes, codec, len(runs))):
                rows, cols = split_keys(keys, codec, out_dtype)
                _add_counts(rows, counts)
                del rows
                _write(cols, f, path)
                nnz += cols.size
                del cols
                trim_heap()  # blocks under glibc's mmap threshold would stay resident once freed
    except OSError as err:
        raise _disk_error(err, path) from None
    for p in runs:
        p.unlink()
    indptr = np.cumsum(counts, out=counts)
    if nnz == 0:
        return indptr, np.empty(0, dtype=out_dtype)  # an empty file cannot be mapped
    # "r+", not "r": a writable array has the numba type the in-memory CSR has, so the
    # later stages reuse their compiled (cached) kernels instead of compiling read-only twins.
    return indptr, np.memmap(path, dtype=out_dtype, mode="r+", shape=(nnz,))


def external_scratch_bytes(num_nodes: int, num_edges: int) -> int:
    """Most scratch disk (bytes) the external build takes for ``num_edges`` raw input edges.

    Runs (two keys per edge, before deduplication) and the column ids at the same time:
    the runs are deleted only once merged.
    """
    return 2 * num_edges * (codec_for(num_nodes).itemsize + np.dtype(index_dtype(num_nodes)).itemsize)

