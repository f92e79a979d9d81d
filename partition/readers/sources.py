"""One reader per ``--input`` kind, each returning a validated :class:`SourceGraph`.

    synthetic[:key=value,...]   the built-in graph (partition.readers.synthetic)
    planetoid:NAME              PyG Planetoid (Cora, CiteSeer, PubMed) under --root DIR
    ogb:DIR[#SPLIT]             an OGB node-property directory (raw/*.csv.gz, split/)
    npy:DIR                     edge_index.npy, x.npy, y.npy [, train/val/test_idx.npy]
    pt:FILE                     a torch_geometric Data saved with torch.save

Node ids are range-checked chunk by chunk as ``edge_chunks`` is read, so a bad id in a
streamed source raises :class:`InputError` during the first pass over the edges (CSR
building) rather than costing an extra pass here; everything else is checked before
``read_source`` returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from partition.errors import InputError
from partition.readers.source_checks import (
    SplitInput,
    array_edge_chunks,
    check_edge_index,
    check_features,
    check_labels,
    pick_splits,
)
from partition.readers.source_graph import SourceGraph

KINDS = "synthetic[:key=value,...], planetoid:NAME, ogb:DIR, npy:DIR, pt:FILE"
PLANETOID_NAMES = ("Cora", "CiteSeer", "PubMed")
SPLIT_NAMES = ("train", "val", "test")
_SPLIT_KEYS = {"train": ("train_mask", "train_idx"), "val": ("val_mask", "val_idx", "valid_idx"),
               "test": ("test_mask", "test_idx")}


def read_source(spec: str, root: str | None = None) -> SourceGraph:
    """Read what ``--input`` names; ``root`` is ``--root`` (only planetoid needs it)."""
    kind, _, rest = spec.partition(":")
    readers: dict[str, Callable[[str, str, str | None], SourceGraph]] = {
        "synthetic": _read_synthetic, "planetoid": _read_planetoid, "ogb": _read_ogb,
        "npy": _read_npy, "pt": _read_pt,
    }
    if kind not in readers:
        raise InputError(f"--input {spec!r}: unknown kind {kind!r}; expected one of {KINDS}")
    if kind != "synthetic" and not rest:
        raise InputError(f"--input {spec!r}: nothing after '{kind}:'; expected one of {KINDS}")
    return readers[kind](spec, rest, root)


def _read_synthetic(spec: str, rest: str, root: str | None) -> SourceGraph:
    from partition.readers.synthetic import make_synthetic, parse_synthetic_spec

    return make_synthetic(parse_synthetic_spec(rest), name=spec)


def _read_ogb(spec: str, rest: str, root: str | None) -> SourceGraph:
    from partition.readers.ogb_reader import read_ogb

    return read_ogb(spec, rest)


def assemble(name: str, edge_index: np.ndarray, x: np.ndarray, y: np.ndarray,
             splits: list[SplitInput | None], where: Mapping[str, str],
             num_classes: int | None = None) -> SourceGraph:
    """Validate in-memory or memory-mapped arrays and wrap them as a SourceGraph.

    ``where`` names the file (or file: field) of ``edge_index``, ``x``, ``y`` and the
    source as a whole (``source``), for the messages.
    """
    check_edge_index(edge_index, where["edge_index"])
    x = check_features(x, where["x"])
    n = int(x.shape[0])
    y = check_labels(y, n, where["y"], where["x"])
    train_idx, val_idx, test_idx = pick_splits(splits, SPLIT_NAMES, n, where["source"])
    classes = int(y.max()) + 1 if y.size else 0
    if num_classes is not None:
        if classes > num_classes:
            raise InputError(f"{where['y']}: label {classes - 1} >= the dataset's {num_classes} classes")
        classes = num_classes
    return SourceGraph(name=name, num_nodes=n,
                       edge_chunks=array_edge_chunks(edge_index, n, where["edge_index"]),
                       x=x, y=y, num_classes=classes,
                       train_idx=train_idx, val_idx=val_idx, test_idx=test_idx)


def load_npy(path: Path) -> np.ndarray:
    """Memory-map one .npy file; a missing or unreadable file is an InputError naming it."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise InputError(f"{path}: cannot read as .npy ({err})") from None


def _read_npy(spec: str, rest: str, root: str | None) -> SourceGraph:
    d = Path(rest)
    if not d.is_dir():
        raise InputError(f"--input {spec!r}: {d} is not a directory")
    split_files = [d / f"{name}_idx.npy" for name in SPLIT_NAMES]
    splits = [SplitInput(str(p), load_npy(p)) if p.exists() else None for p in split_files]
    where = {"edge_index": str(d / "edge_index.npy"), "x": str(d / "x.npy"),
             "y": str(d / "y.npy"), "source": str(d)}
    return assemble(spec, load_npy(d / "edge_index.npy"), load_npy(d / "x.npy"),
                    load_npy(d / "y.npy"), splits, where)


def _as_array(value: Any, where: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor; imported lazily by whoever made it
        tensor = value.detach().cpu()
        try:
            return tensor.numpy()
        except TypeError:  # bfloat16 has no numpy dtype
            return tensor.float().numpy()
    if isinstance(value, np.ndarray):
        return value
    raise InputError(f"{where}: expected a tensor, got {type(value).__name__}")


def _field(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def from_fields(spec: str, obj: Any, where: str, num_classes: int | None = None) -> SourceGraph:
    """A PyG ``Data`` (or a dict of tensors) -> SourceGraph; masks or ``*_idx`` for splits."""
    arrays = {}
    for key in ("edge_index", "x", "y"):
        value = _field(obj, key)
        if value is None:
            raise InputError(f"{where}: has no {key!r}")
        arrays[key] = _as_array(value, f"{where}: {key}")
    splits: list[SplitInput | None] = []
    for name in SPLIT_NAMES:
        key = next((k for k in _SPLIT_KEYS[name] if _field(obj, k) is not None), None)
        splits.append(None if key is None else
                      SplitInput(f"{where}: {key}", _as_array(_field(obj, key), f"{where}: {key}")))
    names = {key: f"{where}: {key}" for key in arrays} | {"source": where}
    return assemble(spec, arrays["edge_index"], arrays["x"], arrays["y"], splits, names, num_classes)


def _read_pt(spec: str, rest: str, root: str | None) -> SourceGraph:
    path = Path(rest)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is the file's fault
        raise InputError(f"{path}: cannot load with torch.load ({type(err).__name__}: {err})") from None
    if _field(obj, "edge_index") is None:
        raise InputError(f"{path}: expected a torch_geometric Data with edge_index, x, y; "
                         f"got {type(obj).__name__}")
    return from_fields(spec, obj, str(path))


def _read_planetoid(spec: str, rest: str, root: str | None) -> SourceGraph:
    if root is None:
        raise InputError(f"--input {spec!r}: planetoid needs --root DIR (the folder holding {rest}/raw)")
    if rest.lower() not in {n.lower() for n in PLANETOID_NAMES}:
        raise InputError(f"--input {spec!r}: unknown Planetoid dataset {rest!r}; "
                         f"expected one of {', '.join(PLANETOID_NAMES)}")
    if not Path(root).is_dir():
        raise InputError(f"--root {root}: not a directory")
    raw = Path(root) / rest / "raw"
    if not raw.is_dir():
        raise InputError(f"--root {root}: no {rest}/raw folder with the Planetoid files")
    try:
        import scipy  # noqa: F401 - the raw Planetoid files are pickled scipy matrices
    except ImportError:
        raise InputError(f"--input {spec!r}: reading Planetoid raw files needs scipy "
                         "(pip install scipy)") from None
    from torch_geometric.io import read_planetoid_data

    # PyG's reader, not the Planetoid dataset class: the class writes processed/ next to
    # raw/, and --root is often a read-only shared folder.
    try:
        data = read_planetoid_data(str(raw), rest.lower())
    except Exception as err:  # noqa: BLE001 - missing/corrupt raw files
        raise InputError(f"--root {root}: cannot read Planetoid {rest!r} from {raw} "
                         f"({type(err).__name__}: {err})") from None
    return from_fields(spec, data, str(raw), num_classes=int(data.y.max()) + 1)
