"""OGB's binary raw layout (ogbn-papers100M), streamed from the npz members (issue 10).

    raw/data.npz         edge_index int (2, E), node_feat (N, F), num_nodes_list (1,),
                         num_edges_list (1,); optional edge_feat (ignored, with a warning),
                         node_year and other members (not used)
    raw/node-label.npz   node_label (N, 1) or (N,), float with NaN for unlabelled nodes
    split/<name>/{train,valid,test}.csv.gz

Nothing is loaded whole: edges stream as (src, dst) chunks from two readers of the
``edge_index`` member (row 0 and row 1), features as row blocks into
:func:`partition.readers.features.prepare_features`, labels as blocks into an int64
array (8 bytes a node: the one per-node array kept).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from partition.errors import InputError
from partition.readers.features import FeatureOptions, FeatureSource, block_rows, prepare_features
from partition.readers.npz_stream import NpzMember
from partition.readers.source_checks import check_edge_ids, label_block
from partition.readers.source_graph import EdgeChunks, SourceGraph

EDGE_CHUNK = 1 << 20
"""Edges per chunk (two 8 MiB int64 arrays): the CSR build holds a few chunks at a time."""


def npz_edge_chunks(member: NpzMember, num_nodes: int) -> EdgeChunks:
    shape = member.shape
    if len(shape) != 2 or shape[0] != 2:
        raise InputError(f"{member.where}: expected an edge_index of shape (2, E), got {shape}")
    if not np.issubdtype(member.dtype, np.integer):
        raise InputError(f"{member.where}: expected integer node ids, got dtype {member.dtype}")
    num_edges = shape[1]

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if member.fortran_order:  # (src, dst) pairs interleaved
            for pairs in member.chunks(chunk_elems=2 * EDGE_CHUNK):
                pairs = pairs.reshape(-1, 2).astype(np.int64)
                src, dst = np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1])
                check_edge_ids(src, dst, num_nodes, member.where)
                yield src, dst
            return
        rows = zip(member.chunks(0, num_edges, EDGE_CHUNK),
                   member.chunks(num_edges, num_edges, EDGE_CHUNK), strict=True)
        for src, dst in rows:
            src, dst = src.astype(np.int64, copy=False), dst.astype(np.int64, copy=False)
            check_edge_ids(src, dst, num_nodes, member.where)
            yield src, dst

    return chunks


def _features(member: NpzMember, num_nodes: int) -> FeatureSource:
    shape = member.shape
    if len(shape) != 2 or shape[1] == 0:
        raise InputError(f"{member.where}: expected a 2-D (nodes, features) array, got shape {shape}")
    if shape[0] != num_nodes:
        raise InputError(f"{member.where}: {shape[0]} rows but the graph has {num_nodes} nodes")
    if not (np.issubdtype(member.dtype, np.floating) or np.issubdtype(member.dtype, np.integer)):
        raise InputError(f"{member.where}: expected numeric features, got dtype {member.dtype}")
    step = block_rows(shape[1], member.dtype.itemsize)
    return FeatureSource(shape[0], shape[1], lambda: member.row_blocks(step), member.where)


def _labels(member: NpzMember, num_nodes: int) -> np.ndarray:
    shape = member.shape
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)):
        raise InputError(f"{member.where}: expected labels of shape (N,) or (N, 1), got {shape}")
    if shape[0] != num_nodes:
        raise InputError(f"{member.where}: {shape[0]} labels but the graph has {num_nodes} nodes")
    y = np.empty(num_nodes, dtype=np.int64)
    lo = 0
    for chunk in member.chunks():
        y[lo:lo + chunk.shape[0]] = label_block(chunk, lo, member.where)
        lo += chunk.shape[0]
    return y


def _num_nodes(data: Path) -> int:
    counts = NpzMember(data, "num_nodes_list").read_all()
    if counts.size != 1 or counts.reshape(-1)[0] < 0:
        raise InputError(f"{data}:num_nodes_list: expected one node count (one graph), "
                         f"got {counts.reshape(-1)[:5].tolist()}")
    return int(counts.reshape(-1)[0])


def read_ogb_binary(spec: str, root: Path, choice: str | None, opts: FeatureOptions) -> SourceGraph:
    """``ogb:DIR`` in the binary layout -> SourceGraph (see the module docstring)."""
    from partition.readers.ogb_reader import read_splits

    data, label_file = root / "raw" / "data.npz", root / "raw" / "node-label.npz"
    feat = NpzMember(data, "node_feat")
    n = _num_nodes(data) if "num_nodes_list" in _members(data) else feat.shape[0]
    features = _features(feat, n)
    edges = npz_edge_chunks(NpzMember(data, "edge_index"), n)
    y = _labels(NpzMember(label_file, "node_label"), n)
    train_idx, val_idx, test_idx = read_splits(root, choice, n)
    warnings = [f"{data}:edge_feat ignored: the GCN here is unweighted"] if "edge_feat" in _members(data) else []
    return SourceGraph(name=spec, num_nodes=n, edge_chunks=edges, x=prepare_features(features, opts),
                       y=y, num_classes=int(y.max()) + 1 if y.size else 0, train_idx=train_idx,
                       val_idx=val_idx, test_idx=test_idx, feature_normalization=opts.normalize,
                       warnings=warnings)


def _members(path: Path) -> set[str]:
    import zipfile

    with zipfile.ZipFile(path) as zf:
        return {i.filename.removesuffix(".npy") for i in zf.infolist()}
