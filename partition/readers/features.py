"""Node features from any source to the dtype the shards store, in bounded memory (issue 10).

Every reader hands over a :class:`FeatureSource`: a re-readable stream of row blocks
(an in-memory array, a memory-mapped ``.npy``, an npz member decompressed on the fly,
a sparse matrix densified block by block). :func:`prepare_features` then, block by block:

1. checks every value is finite (NaN/inf: refused naming node and column);
2. normalises, if asked, over the whole graph: ``row`` divides each row by its sum
   (Kipf & Welling 2017's preprocessing; a row summing to 0 stays 0), ``standard``
   subtracts each column's mean and divides by its standard deviation (a first pass
   gathers the column sums in float64; a constant column is only centred);
3. checks the (normalised) value fits the stored dtype (1e39 does not fit float32,
   7e4 does not fit float16): refused naming node, column and the dtype's largest value,
   instead of an ``inf`` that ``--verify`` would pass and training would diverge on;
4. casts to the stored dtype (``float32``, ``float16``, or ``bfloat16`` via ml_dtypes;
   SALIENT stores fp16 features: half the bytes on disk and in every rank's memory).

The result goes to RAM when small and otherwise to a scratch ``.npy`` beside ``--out``,
written with plain file writes so that its pages count in the page cache, not in this
process's resident memory. A source already in the stored dtype with no normalisation
is used as is (a memmap stays one) after the finite check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.lib.format as npy_format

from partition.errors import InputError

FEATURE_DTYPES = ("float32", "float16", "bfloat16")
NORMALIZATIONS = ("none", "row", "standard")
BLOCK_BYTES = 1 << 22
"""Source bytes converted at a time (the float64 working copy and its temporaries: ~8x this)."""
IN_MEMORY_BYTES = 1 << 26
"""Stored features up to this size stay in RAM; bigger ones go to the scratch file."""

RowBlocks = Callable[[], Iterator[tuple[int, np.ndarray]]]
"""Calling it starts a pass: (first row, block of rows (r, F)) in row order, covering every row."""


def numpy_dtype(name: str) -> np.dtype:
    """The numpy dtype of a ``--feature-dtype`` name (``bfloat16`` is ml_dtypes')."""
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def largest(dtype: np.dtype) -> float:
    """The largest finite value of a float dtype (ml_dtypes' finfo knows bfloat16)."""
    import ml_dtypes

    return float(ml_dtypes.finfo(dtype).max)


@dataclass(frozen=True)
class FeatureOptions:
    """What ``--feature-dtype``, ``--normalize-features`` and the scratch folder ask for."""

    dtype: str = "float32"
    """One of :data:`FEATURE_DTYPES`: the dtype of every stored ``x.npy`` row."""
    normalize: str = "none"
    """One of :data:`NORMALIZATIONS`."""
    scratch: Path | None = None
    """Folder for a scratch copy of big converted features (None: keep them in RAM)."""

    def __post_init__(self) -> None:
        if self.dtype not in FEATURE_DTYPES:
            raise InputError(f"--feature-dtype: {self.dtype!r} is not one of {', '.join(FEATURE_DTYPES)}")
        if self.normalize not in NORMALIZATIONS:
            raise InputError(f"--normalize-features: {self.normalize!r} is not one of "
                             f"{', '.join(NORMALIZATIONS)}")


@dataclass(frozen=True)
class FeatureSource:
    """Features as a source holds them: ``num_rows`` x ``num_cols`` numbers, streamed.

    ``array`` is the whole matrix when the source has one (returned unchanged when no
    conversion is needed); ``where`` names the file or field for messages.
    """

    num_rows: int
    num_cols: int
    blocks: RowBlocks
    where: str
    array: np.ndarray | None = None


def block_rows(num_cols: int, itemsize: int, budget: int | None = None) -> int:
    """Rows per block so that a block of ``num_cols`` x ``itemsize`` bytes stays near ``budget``
    (default :data:`BLOCK_BYTES`, read at call time)."""
    return max(1, (BLOCK_BYTES if budget is None else budget) // max(1, num_cols * itemsize))


def check_features_header(shape: tuple[int, ...], dtype: np.dtype, where: str) -> None:
    """An (N, F >= 1) numeric (float, int or bool) feature matrix, from its shape and dtype
    only (also ``--dry-run``'s check of a header); InputError otherwise."""
    if len(shape) != 2:
        raise InputError(f"{where}: expected a 2-D (nodes, features) array, got shape {shape}")
    if shape[1] == 0:
        raise InputError(f"{where}: has no feature columns (shape {shape})")
    if not (np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer) or dtype == np.bool_):
        raise InputError(f"{where}: expected numeric features, got dtype {dtype}")


def array_features(x: np.ndarray, where: str) -> FeatureSource:
    """Wrap an (N, F) numeric array (a memmap is fine: blocks are read one at a time)."""
    check_features_header(tuple(x.shape), x.dtype, where)
    step = block_rows(x.shape[1], x.dtype.itemsize)

    def blocks() -> Iterator[tuple[int, np.ndarray]]:
        from partition.readers.mapped_pages import release_rows

        for lo in range(0, x.shape[0], step):
            yield lo, np.asarray(x[lo:lo + step])
            release_rows(x, lo, lo + step)  # a mapped file's block leaves RSS once used

    return FeatureSource(int(x.shape[0]), int(x.shape[1]), blocks, where, x)


def _first_bad(bad: np.ndarray, lo: int) -> tuple[int, int]:
    r, c = np.argwhere(bad)[0]
    return lo + int(r), int(c)


def _checked_float64(block: np.ndarray, lo: int, where: str) -> np.ndarray:
    b = np.asarray(block).astype(np.float64)  # a copy: normalised in place below
    finite = np.isfinite(b)
    if not finite.all():
        node, col = _first_bad(~finite, lo)
        raise InputError(f"{where}: non-finite feature (NaN or inf) at node {node}, column {col}")
    return b


def column_stats(src: FeatureSource) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) float64 [F] over every row, in one streamed pass (constant column: std 1).

    Sums are taken about the first row (the shifted-data variance, Chan, Golub & LeVeque
    1983): plain sums of x and x^2 cancel catastrophically when the mean dwarfs the spread
    (a column of 1e6 +- 1e-3 came out constant).
    """
    total = np.zeros(src.num_cols)
    squares = np.zeros(src.num_cols)
    shift = None
    for lo, block in src.blocks():
        b = _checked_float64(block, lo, src.where)
        if shift is None and b.shape[0]:
            shift = b[0].copy()
        b -= shift if shift is not None else 0.0
        total += b.sum(axis=0)
        squares += np.square(b).sum(axis=0)
    n = max(src.num_rows, 1)
    centred = total / n
    mean = centred + (shift if shift is not None else 0.0)
    std = np.sqrt(np.maximum(squares / n - np.square(centred), 0.0))
    std[std <= 1e-12 * np.maximum(np.abs(mean), 1.0)] = 1.0
    return mean, std


def _transform(block: np.ndarray, lo: int, src: FeatureSource, normalize: str,
               stats: tuple[np.ndarray, np.ndarray] | None, dtype: np.dtype) -> np.ndarray:
    b = _checked_float64(block, lo, src.where)
    if normalize == "row":
        sums = b.sum(axis=1, keepdims=True)
        b /= np.where(sums == 0.0, 1.0, sums)
    elif normalize == "standard" and stats is not None:
        b -= stats[0]
        b /= stats[1]
    limit = largest(dtype)
    too_big = np.abs(b) > limit
    if too_big.any():
        node, col = _first_bad(too_big, lo)
        what = "value" if normalize == "none" else f"{normalize}-normalised value"
        raise InputError(f"{src.where}: {what} {b[node - lo, col]:.4g} at node {node}, column {col} "
                         f"does not fit in {dtype.name} (largest {limit:.4g}); rescale the features"
                         + (" or use --feature-dtype float32" if dtype.itemsize < 4 else ""))
    return b.astype(dtype)


class _Output:
    """Where converted rows go: RAM, or a scratch .npy written sequentially then memory-mapped."""

    def __init__(self, shape: tuple[int, int], dtype: np.dtype, scratch: Path | None) -> None:
        self.shape, self.dtype = shape, dtype
        self.stored = np.dtype(np.uint16) if dtype.name == "bfloat16" else dtype  # .npy cannot name bf16
        nbytes = shape[0] * shape[1] * dtype.itemsize
        self.path = None if scratch is None or nbytes <= IN_MEMORY_BYTES else Path(scratch) / "x.npy"
        self.array = np.empty(shape, dtype) if self.path is None else None
        self.file = None
        if self.path is not None:
            self.file = open(self.path, "wb")
            npy_format.write_array_header_1_0(self.file, {"descr": npy_format.dtype_to_descr(self.stored),
                                                          "fortran_order": False, "shape": shape})

    def write(self, lo: int, rows: np.ndarray) -> None:
        if self.array is not None:
            self.array[lo:lo + rows.shape[0]] = rows
        else:
            self.file.write(np.ascontiguousarray(rows).view(self.stored).tobytes())

    def finish(self) -> np.ndarray:
        if self.array is not None:
            return self.array
        self.file.close()
        return np.load(self.path, mmap_mode="r").view(self.dtype)


def prepare_features(src: FeatureSource, opts: FeatureOptions) -> np.ndarray:
    """(N, F) features in ``opts.dtype``, checked and normalised; see the module docstring.

    Raises InputError naming ``src.where``, the node and the column of the first value
    that is not finite or does not fit the stored dtype.
    """
    dtype = numpy_dtype(opts.dtype)
    stats = column_stats(src) if opts.normalize == "standard" else None
    if src.array is not None and opts.normalize == "none" and src.array.dtype == dtype:
        for lo, block in src.blocks():  # same dtype: only NaN/inf can be wrong
            finite = np.isfinite(block)
            if not finite.all():
                node, col = _first_bad(~finite, lo)
                raise InputError(f"{src.where}: non-finite feature (NaN or inf) at node {node}, column {col}")
        return src.array
    out = _Output((src.num_rows, src.num_cols), dtype, opts.scratch)
    try:
        seen = 0
        for lo, block in src.blocks():
            out.write(lo, _transform(block, lo, src, opts.normalize, stats, dtype))
            seen = lo + block.shape[0]
        if seen != src.num_rows:
            raise InputError(f"{src.where}: {seen} feature rows but the graph has {src.num_rows} nodes")
        return out.finish()
    finally:
        if out.file is not None and not out.file.closed:
            out.file.close()
