"""Read an OGB node-property-prediction directory without the ``ogb`` package.

OGB ships two raw layouts; the one present is used (OGB's own loader picks by a
``binary`` flag of its dataset table; we look at the files, and name the missing one
when neither layout is complete). The csv layout (e.g. ``ogbn_products/``)::

    raw/edge.csv.gz            "src,dst" per line, no header (directed; CSR symmetrises)
    raw/node-feat.csv.gz       one row of comma-separated floats per node
    raw/node-label.csv.gz      one label per line (NaN: unlabelled)
    raw/num-node-list.csv.gz   optional: the node count
    split/<name>/{train,valid,test}.csv.gz   one node id per line

and the binary layout of the giant ones (ogbn-papers100M), read by
:mod:`partition.readers.ogb_binary`: ``raw/data.npz`` and ``raw/node-label.npz``, with
the same ``split/`` folder.

Gzipped text is parsed in blocks of whole lines with numpy's C parser (``np.loadtxt``
on a 64 MiB block), never line by line in Python. Edges are streamed: each pass over
``edge_chunks`` decompresses and parses the file again, holding one block at a time.
``ogb:DIR#NAME`` picks ``split/NAME`` when ``split/`` holds several.
"""

from __future__ import annotations

import gzip
import io
import re
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from partition.errors import InputError
from partition.readers.features import FeatureOptions, array_features, prepare_features
from partition.readers.source_checks import check_edge_ids, check_labels
from partition.readers.source_graph import EdgeChunks, SourceGraph
from partition.readers.splits import SplitInput, check_splits

READ_BYTES = 1 << 26
"""Decompressed bytes parsed at a time (about 4M edges of a typical edge file)."""


def _line_blocks(path: Path) -> Iterator[tuple[int, bytes]]:
    """(index of the block's first line, block of whole lines) over a gzipped text file."""
    line, tail = 0, b""
    try:
        with gzip.open(path, "rb") as f:
            while data := f.read(READ_BYTES):
                data = tail + data
                cut = data.rfind(b"\n") + 1
                block, tail = data[:cut], data[cut:]
                if block:
                    yield line, block
                    line += block.count(b"\n")
    except (OSError, EOFError, zlib.error) as err:
        raise InputError(f"{path}: cannot read as gzip ({err})") from None
    if tail.strip():
        yield line, tail


def _absolute_rows(message: str, first_line: int) -> str:
    """Rewrite numpy's block-relative row numbers as 1-based line numbers of the file."""
    message = re.sub(r"at row (\d+), column",
                     lambda m: f"at line {first_line + int(m.group(1)) + 1}, column", message)
    return re.sub(r"at row (\d+);", lambda m: f"at line {first_line + int(m.group(1))};", message)


def _parse(path: Path, first_line: int, block: bytes, dtype: type, ndmin: int) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            return np.loadtxt(io.BytesIO(block), delimiter=",", dtype=dtype, ndmin=ndmin)
    except ValueError as err:
        raise InputError(f"{path}: {_absolute_rows(str(err), first_line)}") from None


def read_table(path: Path, dtype: type, ndmin: int) -> np.ndarray:
    """A whole (small enough) gzipped CSV: labels, splits, features."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    parts = [_parse(path, first, block, dtype, ndmin) for first, block in _line_blocks(path)]
    if not parts:
        return np.empty((0,) * ndmin, dtype=dtype)
    widths = {p.shape[1] for p in parts if ndmin == 2 and p.size}
    if len(widths) > 1:
        raise InputError(f"{path}: rows have different numbers of columns {sorted(widths)}")
    return np.concatenate(parts)


def stream_edges(path: Path, num_nodes: int) -> EdgeChunks:
    """Re-readable stream of (src, dst) int64 chunks, range-checked per chunk."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for first, block in _line_blocks(path):
            pairs = _parse(path, first, block, np.int64, 2)
            if pairs.size == 0:
                continue
            if pairs.shape[1] != 2:
                raise InputError(f"{path}: expected 2 columns (src,dst), got {pairs.shape[1]} "
                                 f"near line {first + 1}")
            src, dst = np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1])
            check_edge_ids(src, dst, num_nodes, str(path))
            yield src, dst

    return chunks


def _split_dir(root: Path, choice: str | None) -> Path:
    split = root / "split"
    names = sorted(p.name for p in split.iterdir() if p.is_dir()) if split.is_dir() else []
    if choice is not None:
        if choice not in names:
            raise InputError(f"{split}: no split {choice!r} (found: {', '.join(names) or 'none'})")
        return split / choice
    if len(names) != 1:
        found = ", ".join(names) if names else "none"
        raise InputError(f"{split}: expected exactly one split folder, found {found}; "
                         f"pick one with ogb:{root}#NAME")
    return split / names[0]


def _num_nodes(raw: Path, labels: np.ndarray) -> int:
    path = raw / "num-node-list.csv.gz"
    if not path.is_file():
        return int(labels.shape[0])
    counts = read_table(path, np.int64, 1)
    if counts.shape != (1,) or counts[0] < 0:
        raise InputError(f"{path}: expected one non-negative node count, got {counts[:5].tolist()}")
    return int(counts[0])


def read_splits(root: Path, choice: str | None, num_nodes: int) -> list[np.ndarray]:
    """Train, valid, test ids from ``split/<name>/*.csv.gz`` (both layouts)."""
    split = _split_dir(root, choice)
    files = [split / f"{name}.csv.gz" for name in ("train", "valid", "test")]
    return check_splits([[SplitInput(str(p), read_table(p, np.int64, 1))] for p in files], num_nodes)


def _layout(raw: Path) -> str:
    """``"binary"`` or ``"csv"``, from the files present; InputError naming what is missing."""
    if (raw / "data.npz").is_file():
        if not (raw / "node-label.npz").is_file():
            raise InputError(f"{raw / 'node-label.npz'}: no such file (OGB's binary layout has "
                             "raw/data.npz and raw/node-label.npz)")
        return "binary"
    if (raw / "edge.csv.gz").is_file():
        return "csv"
    raise InputError(f"{raw}: not an OGB raw folder: neither data.npz (binary layout) nor "
                     "edge.csv.gz (csv layout)")


def read_ogb(spec: str, rest: str, root_arg: str | None, opts: FeatureOptions) -> SourceGraph:
    """``ogb:DIR`` or ``ogb:DIR#SPLIT`` -> SourceGraph, from either raw layout."""
    directory, choice = (rest, None) if Path(rest).is_dir() or "#" not in rest else rest.rsplit("#", 1)
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"--input {spec!r}: {root} is not a directory")
    raw = root / "raw"
    if _layout(raw) == "binary":
        from partition.readers.ogb_binary import read_ogb_binary

        return read_ogb_binary(spec, root, choice, opts)
    label_path, feat_path = raw / "node-label.csv.gz", raw / "node-feat.csv.gz"
    labels = read_table(label_path, np.float64, 1)  # floats so that "3.0" and NaN reach the check
    n = _num_nodes(raw, labels)
    features = array_features(read_table(feat_path, np.float32, 2), str(feat_path))
    if features.num_rows != n:
        raise InputError(f"{feat_path}: {features.num_rows} rows but the graph has {n} nodes")
    y = check_labels(labels, n, str(label_path), str(feat_path))
    train_idx, val_idx, test_idx = read_splits(root, choice, n)
    ignored = raw / "edge-feat.csv.gz"
    warnings = [f"{ignored} ignored: the GCN here is unweighted"] if ignored.is_file() else []
    return SourceGraph(name=spec, num_nodes=n, edge_chunks=stream_edges(raw / "edge.csv.gz", n),
                       x=prepare_features(features, opts), y=y,
                       num_classes=int(y.max()) + 1 if y.size else 0,
                       train_idx=train_idx, val_idx=val_idx, test_idx=test_idx,
                       feature_normalization=opts.normalize, warnings=warnings)
