"""One reader per ``--input`` kind, each returning a validated :class:`SourceGraph`.

    synthetic[:key=value,...]   the built-in graph (partition.readers.synthetic)
    planetoid:NAME              PyG Planetoid (Cora, CiteSeer, PubMed) under --root DIR
    ogb:DIR[#SPLIT]             an OGB node-property directory, csv or binary (npz) layout
    npy:DIR                     edge_index.npy, x.npy, y.npy [, train/val/test _idx or _mask .npy]
    pt:FILE                     a torch_geometric Data saved with torch.save

Every reader goes through the same rules (issue 10): splits by name
(:mod:`partition.readers.splits`), labels with NaN or a negative value meaning
"unlabelled" (:func:`partition.readers.source_checks.check_labels`), features converted
and normalised by :mod:`partition.readers.features`, and :func:`read_source` checks
last that every split node is labelled and the train split is not empty.

Node ids are range-checked chunk by chunk as ``edge_chunks`` is read, so a bad id in a
streamed source raises :class:`InputError` during the first pass over the edges (CSR
building) rather than costing an extra pass here; everything else is checked before
``read_source`` returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from partition.errors import InputError
from partition.readers.features import (
    FeatureOptions,
    FeatureSource,
    array_features,
    prepare_features,
)
from partition.readers.source_checks import array_edge_chunks, check_edge_index, check_labels
from partition.readers.source_graph import SourceGraph
from partition.readers.splits import SplitInput, check_split_labels, kind_of, pick_splits

KINDS = "synthetic[:key=value,...], planetoid:NAME, ogb:DIR, npy:DIR, pt:FILE"
SPLIT_NAMES = ("train", "val", "test")
SPLIT_KEYS = {
    "train": ("train_mask", "train_idx", "train_index"),
    "val": ("val_mask", "val_idx", "val_index", "valid_mask", "valid_idx", "valid_index"),
    "test": ("test_mask", "test_idx", "test_index"),
}
"""Names a split goes by, in a PyG Data or as ``NAME.npy`` in an npy directory."""
IGNORED_NPY = ("edge_weight.npy", "edge_attr.npy")
Reader = Callable[[str, str, "str | None", FeatureOptions], SourceGraph]


def read_source(spec: str, root: str | None = None,
                features: FeatureOptions | None = None) -> SourceGraph:
    """Read what ``--input`` names; ``root`` is ``--root`` (only planetoid needs it).

    ``features`` sets the stored feature dtype and normalisation (default float32, none).
    Raises InputError (one line naming the file, field or flag) for anything wrong.
    """
    from partition.readers.ogb_reader import read_ogb
    from partition.readers.pyg_reader import read_planetoid, read_pt

    kind, _, rest = spec.partition(":")
    readers: dict[str, Reader] = {"synthetic": _read_synthetic, "planetoid": read_planetoid,
                                  "ogb": read_ogb, "npy": _read_npy, "pt": read_pt}
    if kind not in readers:
        raise InputError(f"--input {spec!r}: unknown kind {kind!r}; expected one of {KINDS}")
    if kind != "synthetic" and not rest:
        raise InputError(f"--input {spec!r}: nothing after '{kind}:'; expected one of {KINDS}")
    graph = readers[kind](spec, rest, root, features or FeatureOptions())
    check_split_labels(graph.y, [graph.train_idx, graph.val_idx, graph.test_idx],
                       SPLIT_NAMES, f"--input {spec}")
    return graph


def _read_synthetic(spec: str, rest: str, root: str | None, opts: FeatureOptions) -> SourceGraph:
    from dataclasses import replace

    from partition.readers.synthetic import make_synthetic, parse_synthetic_spec

    graph = make_synthetic(parse_synthetic_spec(rest), name=spec)
    x = prepare_features(array_features(graph.x, spec), opts)
    return replace(graph, x=x, feature_normalization=opts.normalize)


def assemble(name: str, edge_index: np.ndarray, features: FeatureSource, y: np.ndarray,
             splits: Sequence[Sequence[SplitInput]], where: Mapping[str, str],
             opts: FeatureOptions, num_classes: int | None = None,
             warnings: list[str] | None = None) -> SourceGraph:
    """Validate arrays (in memory or memory-mapped) and streamed features into a SourceGraph.

    ``where`` names the file (or file: field) of ``edge_index`` and ``y`` and the source
    as a whole (``source``), for the messages; ``splits[k]`` holds the arrays found for
    train, val, test (empty: none; no split at all: a seeded random split of the
    labelled nodes); ``warnings`` are lines for the user (ignored inputs).
    """
    check_edge_index(edge_index, where["edge_index"])
    n = features.num_rows
    y = check_labels(y, n, where["y"], features.where)
    train_idx, val_idx, test_idx = pick_splits(splits, SPLIT_NAMES, y >= 0, where["source"])
    classes = int(y.max()) + 1 if y.size else 0
    if num_classes is not None:
        if classes > num_classes:
            raise InputError(f"{where['y']}: label {classes - 1} >= the dataset's {num_classes} classes")
        classes = num_classes
    x = prepare_features(features, opts)
    return SourceGraph(name=name, num_nodes=n,
                       edge_chunks=array_edge_chunks(edge_index, n, where["edge_index"]),
                       x=x, y=y, num_classes=classes, train_idx=train_idx, val_idx=val_idx,
                       test_idx=test_idx, feature_normalization=opts.normalize,
                       warnings=list(warnings or []))


def load_npy(path: Path) -> np.ndarray:
    """Memory-map one .npy file; a missing or unreadable file is an InputError naming it."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise InputError(f"{path}: cannot read as .npy ({err})") from None


def _read_npy(spec: str, rest: str, root: str | None, opts: FeatureOptions) -> SourceGraph:
    d = Path(rest)
    if not d.is_dir():
        raise InputError(f"--input {spec!r}: {d} is not a directory")
    splits = [[SplitInput(str(d / f"{key}.npy"), load_npy(d / f"{key}.npy"), kind_of(key))
               for key in SPLIT_KEYS[name] if (d / f"{key}.npy").exists()] for name in SPLIT_NAMES]
    where = {"edge_index": str(d / "edge_index.npy"), "y": str(d / "y.npy"), "source": str(d)}
    ignored = [str(d / f) for f in IGNORED_NPY if (d / f).exists()]
    warnings = [f"{', '.join(ignored)} ignored: the GCN here is unweighted"] if ignored else []
    known = {"edge_index.npy", "x.npy", "y.npy", *IGNORED_NPY,
             *(f"{k}.npy" for name in SPLIT_NAMES for k in SPLIT_KEYS[name])}
    unknown = sorted(f.name for f in d.glob("*.npy") if f.name not in known)
    if unknown:  # e.g. training_mask.npy: never silently replaced by a random split
        warnings.append(f"{', '.join(str(d / f) for f in unknown)} ignored: not a name giantgcn "
                        f"reads (splits are {', '.join(sorted(k for n in SPLIT_NAMES for k in SPLIT_KEYS[n]))}.npy)")
    features = array_features(load_npy(d / "x.npy"), str(d / "x.npy"))
    return assemble(spec, load_npy(d / "edge_index.npy"), features, load_npy(d / "y.npy"),
                    splits, where, opts, warnings=warnings)
