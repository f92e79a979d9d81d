"""Sources that are PyG objects: ``pt:FILE`` (a saved ``Data``) and ``planetoid:NAME``.

Tensors become numpy arrays; a sparse ``x`` (torch COO or CSR, as some exports store
bag-of-words features) is densified a block of rows at a time, never as a whole
(issue 10: it used to end in ``TypeError: can't convert Sparse layout tensor``).
``edge_weight`` and ``edge_attr`` are ignored, with a warning saying so: the GCN here is
unweighted.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from partition.errors import InputError
from partition.readers.features import FeatureOptions, FeatureSource, array_features, block_rows
from partition.readers.source_graph import SourceGraph
from partition.readers.sources import SPLIT_KEYS, SPLIT_NAMES, assemble
from partition.readers.splits import SplitInput, kind_of

PLANETOID_NAMES = ("Cora", "CiteSeer", "PubMed")
IGNORED_EDGE_FIELDS = ("edge_weight", "edge_attr")
TORCH_SPARSE_NOTICES = (r"Sparse (CSR|CSC|BSR|BSC) tensor support is in beta state", "Sparse invariant checks")
"""Starts of the UserWarnings torch prints on loading or converting a sparse CSR/CSC tensor;
not the user's problem, and a multi-line notice on stderr breaks the one-line contract."""


def _as_array(value: Any, where: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor; imported lazily by whoever made it
        tensor = value.detach().cpu()
        if tensor.layout != _strided():
            raise InputError(f"{where}: a sparse tensor is only read as x; densify it first")
        try:
            return tensor.numpy()
        except TypeError:  # bfloat16 has no numpy dtype
            return tensor.float().numpy()
    if isinstance(value, np.ndarray):
        return value
    raise InputError(f"{where}: expected a tensor, got {type(value).__name__}")


@contextlib.contextmanager
def quiet_torch_sparse() -> Iterator[None]:
    """Silence :data:`TORCH_SPARSE_NOTICES` (torch warns once per process, from C++)."""
    with warnings.catch_warnings():
        for notice in TORCH_SPARSE_NOTICES:
            warnings.filterwarnings("ignore", message=notice, category=UserWarning)
        yield


def _strided() -> Any:
    import torch

    return torch.strided


def sparse_features(value: Any, where: str) -> FeatureSource:
    """A torch sparse (COO, CSR, CSC) ``(N, F)`` tensor as row blocks densified one at a time."""
    import torch

    t = value.detach().cpu()
    if t.dim() != 2:
        raise InputError(f"{where}: expected a 2-D (nodes, features) tensor, got shape {tuple(t.shape)}")
    hybrid = t.layout == torch.sparse_coo and t.sparse_dim() != 2
    if t.layout not in (torch.sparse_coo, torch.sparse_csr, torch.sparse_csc) or hybrid:
        # BSR/BSC blocks, or a hybrid COO (dense rows behind sparse_dim=1): torch cannot
        # turn them into CSR; one line instead of its RuntimeError (issue 10 review)
        what = f"COO with sparse_dim={t.sparse_dim()}" if hybrid else str(t.layout).replace("torch.", "")
        raise InputError(f"{where}: a torch sparse tensor of layout {what} is not read; save x "
                         "dense, or as COO (sparse_dim=2), CSR or CSC")
    with quiet_torch_sparse():
        csr = (t.coalesce() if t.layout == torch.sparse_coo else t).to_sparse_csr()
    values = csr.values()
    if values.dtype == torch.bfloat16:
        values = values.float()
    crow, col, val = csr.crow_indices().numpy(), csr.col_indices().numpy(), values.numpy()
    n, f = (int(d) for d in t.shape)
    step = block_rows(f, max(val.dtype.itemsize, 4))

    def blocks() -> Iterator[tuple[int, np.ndarray]]:
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            dense = np.zeros((hi - lo, f), dtype=val.dtype)
            s, e = int(crow[lo]), int(crow[hi])
            rows = np.repeat(np.arange(hi - lo), np.diff(crow[lo:hi + 1]))
            dense[rows, col[s:e]] = val[s:e]
            yield lo, dense

    return FeatureSource(n, f, blocks, where)


def _field(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _features(obj: Any, where: str) -> FeatureSource:
    x = _field(obj, "x")
    if hasattr(x, "layout") and x.layout != _strided():
        return sparse_features(x, f"{where}: x")
    return array_features(_as_array(x, f"{where}: x"), f"{where}: x")


def _split(obj: Any, name: str, where: str) -> list[SplitInput]:
    """Every field naming split ``name`` (``train_mask``, ``train_idx``, ...); read by its name."""
    return [SplitInput(f"{where}: {k}", _as_array(_field(obj, k), f"{where}: {k}"), kind_of(k))
            for k in SPLIT_KEYS[name] if _field(obj, k) is not None]


def from_fields(spec: str, obj: Any, where: str, opts: FeatureOptions,
                num_classes: int | None = None) -> SourceGraph:
    """A PyG ``Data`` (or a dict of tensors) -> SourceGraph; ``*_mask`` or ``*_idx`` splits."""
    for key in ("edge_index", "x", "y"):
        if _field(obj, key) is None:
            raise InputError(f"{where}: has no {key!r}")
    edge_index = _as_array(_field(obj, "edge_index"), f"{where}: edge_index")
    y = _as_array(_field(obj, "y"), f"{where}: y")
    splits = [_split(obj, name, where) for name in SPLIT_NAMES]
    names = {"edge_index": f"{where}: edge_index", "y": f"{where}: y", "source": where}
    ignored = [k for k in IGNORED_EDGE_FIELDS if _field(obj, k) is not None]
    warnings = [f"{where}: {', '.join(ignored)} ignored: the GCN here is unweighted"] if ignored else []
    return assemble(spec, edge_index, _features(obj, where), y, splits, names, opts,
                    num_classes=num_classes, warnings=warnings)


def read_pt(spec: str, rest: str, root: str | None, opts: FeatureOptions) -> SourceGraph:
    """``pt:FILE``: a ``torch_geometric.data.Data`` (or a dict of tensors) saved with torch.save."""
    path = Path(rest)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    import torch

    try:
        with quiet_torch_sparse():  # a saved CSR/CSC x is rebuilt through the beta API
            obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is the file's fault
        raise InputError(f"{path}: cannot load with torch.load ({type(err).__name__}: {err})") from None
    if _field(obj, "edge_index") is None:
        raise InputError(f"{path}: expected a torch_geometric Data with edge_index, x, y; "
                         f"got {type(obj).__name__}")
    return from_fields(spec, obj, str(path), opts)


def read_planetoid(spec: str, rest: str, root: str | None, opts: FeatureOptions) -> SourceGraph:
    """``planetoid:NAME`` under ``--root``, read with PyG's raw-file reader (no download)."""
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
    return from_fields(spec, data, str(raw), opts, num_classes=int(data.y.max()) + 1)
