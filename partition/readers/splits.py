"""Train/val/test splits as sources give them, under one rule for every reader (issue 10).

A split's *name* says how to read it; its values never do (a 0/1 ``int64`` mask read as
the node ids {0, 1} once turned 360 training nodes into 2):

- ``*_mask``: a length-N array, ``bool`` or an integer dtype holding only 0 and 1;
- ``*_idx`` / ``*_index`` (and OGB's ``split/<name>/*.csv.gz``): a list of node ids.

Anything else (an integer mask with a 2 in it, a mask of the wrong length, a ``bool`` or
float array named as an id list, an id list that repeats a node) is refused with one line naming the split. Splits are
then checked together: pairwise disjoint, every node labelled, a non-empty train split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from partition.errors import InputError
from partition.wording import counted

MASK, IDS = "mask", "ids"
RANDOM_SPLIT_SEED = 0
RANDOM_SPLIT = (0.6, 0.2)
"""Train and validation shares of the split made when a source has none; test gets the rest."""


def kind_of(name: str) -> str:
    """``"mask"`` for ``*_mask`` names, ``"ids"`` for ``*_idx`` / ``*_index`` (and anything else)."""
    return MASK if name.endswith("_mask") else IDS


@dataclass(frozen=True)
class SplitInput:
    """One split as found in a source.

    ``where`` names its file or field for messages; ``kind`` is :data:`MASK` or
    :data:`IDS` (from the name, see :func:`kind_of`); ``values`` the raw array.
    """

    where: str
    values: np.ndarray
    kind: str = IDS


def _mask_ids(split: SplitInput, v: np.ndarray, num_nodes: int) -> np.ndarray:
    if v.shape[0] != num_nodes:
        raise InputError(f"{split.where}: a mask must have one entry per node: {v.shape[0]} "
                         f"entries, expected {num_nodes}")
    if v.dtype == np.bool_:
        return np.flatnonzero(v).astype(np.int64)
    if not np.issubdtype(v.dtype, np.integer):
        raise InputError(f"{split.where}: a mask must be bool or integer 0/1, got dtype {v.dtype}")
    bad = (v != 0) & (v != 1)
    if bad.any():
        first = int(np.argmax(bad))
        raise InputError(f"{split.where}: a mask must hold only 0 and 1, found {v[first]} at node "
                         f"{first}; an id list must be named *_idx")
    return np.flatnonzero(v).astype(np.int64)


def split_ids(split: SplitInput, num_nodes: int) -> np.ndarray:
    """The split as sorted unique int64 ids in [0, num_nodes); InputError naming it otherwise."""
    v = np.asarray(split.values)
    if v.ndim == 2 and v.shape[1] == 1:
        v = v[:, 0]
    if v.ndim != 1:
        raise InputError(f"{split.where}: expected a 1-D id array or mask, got shape {v.shape}")
    if split.kind == MASK:
        return _mask_ids(split, v, num_nodes)
    if v.dtype == np.bool_:
        raise InputError(f"{split.where}: bool values in an id list; name a mask *_mask")
    if not np.issubdtype(v.dtype, np.integer):
        raise InputError(f"{split.where}: expected integer node ids, got dtype {v.dtype}")
    if v.size and (v.min() < 0 or v.max() >= num_nodes):
        bad = v[(v < 0) | (v >= num_nodes)]
        raise InputError(f"{split.where}: {bad.size} node ids out of range [0, {num_nodes}), e.g. {bad[0]}")
    ids = np.sort(v.astype(np.int64))
    repeated = ids[1:][ids[1:] == ids[:-1]]
    if repeated.size:  # a 0/1 mask named *_idx reads as ids {0, 1}, each many times
        raise InputError(f"{split.where}: node {repeated[0]} listed more than once "
                         f"({repeated.size} repeats); a 0/1 mask must be named *_mask")
    return ids


def _one_split(candidates: Sequence[SplitInput], num_nodes: int) -> np.ndarray:
    """Ids of a split found under one or more names (``train_mask`` and ``train_idx``): they must agree."""
    ids = [split_ids(c, num_nodes) for c in candidates]
    for other, c in zip(ids[1:], candidates[1:], strict=True):
        if not np.array_equal(ids[0], other):
            raise InputError(f"{candidates[0].where} ({ids[0].size} nodes) and {c.where} "
                             f"({other.size} nodes) disagree; keep one of them")
    return ids[0]


def check_splits(splits: Sequence[Sequence[SplitInput]], num_nodes: int) -> list[np.ndarray]:
    """Train, val, test ids: each in range, sorted unique, and pairwise disjoint.

    ``splits[k]`` holds every array found for split k (usually one).
    """
    ids = [_one_split(s, num_nodes) for s in splits]
    owner = np.full(num_nodes, -1, dtype=np.int8)
    for k, part in enumerate(ids):
        taken = owner[part]
        if (taken >= 0).any():
            first = int(np.argmax(taken >= 0))
            raise InputError(f"{splits[k][0].where}: {int((taken >= 0).sum())} ids also in "
                             f"{splits[taken[first]][0].where}, e.g. node {part[first]}")
        owner[part] = k
    return ids


def random_split(labelled: np.ndarray) -> list[np.ndarray]:
    """The seeded 60/20/20 split of the labelled nodes, used when a source brings none.

    ``labelled``: bool [N]. Unlabelled nodes stay in no split.
    """
    candidates = np.flatnonzero(labelled).astype(np.int64)
    perm = np.random.default_rng(RANDOM_SPLIT_SEED).permutation(candidates)
    a = int(round(RANDOM_SPLIT[0] * perm.shape[0]))
    b = a + int(round(RANDOM_SPLIT[1] * perm.shape[0]))
    return [np.sort(perm[:a]), np.sort(perm[a:b]), np.sort(perm[b:])]


def pick_splits(found: Sequence[Sequence[SplitInput]], names: Sequence[str], labelled: np.ndarray,
                where: str) -> list[np.ndarray]:
    """All three splits, none (-> random split of the labelled nodes), or an error naming the missing one.

    ``found[k]``: the arrays found for split ``names[k]`` (empty: none); ``labelled``: bool [N].
    """
    if not any(found):
        return random_split(labelled)
    missing = [n for n, s in zip(names, found, strict=True) if not s]
    if missing:
        raise InputError(f"{where}: has some split but not {', '.join(missing)}; give all three or none")
    return check_splits(found, int(labelled.shape[0]))


def check_split_labels(y: np.ndarray, splits: Sequence[np.ndarray], names: Sequence[str],
                       where: str) -> None:
    """Every split node has a label (``y >= 0``), no label reaches the node count, and the
    train split is not empty.

    ``y``: int64 [N] with -1 for unlabelled nodes; ``splits``: int64 id arrays in the
    order of ``names``; ``where`` names the source. Raises InputError (issue 10: an
    empty train split used to end in a traceback on every rank of the trainer).
    """
    for name, ids in zip(names, splits, strict=True):
        unlabelled = ids[y[ids] < 0]
        if unlabelled.size:
            raise InputError(f"{where}: {counted(int(unlabelled.size), 'node')} of the {name} split "
                             f"{'has' if unlabelled.size == 1 else 'have'} no label "
                             f"(NaN or negative), e.g. node {unlabelled[0]}")
    top = int(y.max()) if y.size else -1
    if top >= y.shape[0]:  # more classes than nodes: an id or a sentinel, not a class
        raise InputError(f"{where}: label {top} at node {int(np.argmax(y))} is not a class id: "
                         f"labels are 0..C-1 with C at most the {y.shape[0]} nodes (an output "
                         f"layer of {top + 1} classes); mark unlabelled nodes with NaN or -1")
    _check_no_sentinel_class(y, top, where)
    if splits[0].size == 0:
        raise InputError(f"{where}: the train split is empty; giantgcn-train needs labelled "
                         "training nodes")


def _check_no_sentinel_class(y: np.ndarray, top: int, where: str) -> None:
    """Refuse a top label that sits far above every other class id: a sentinel for "no
    label" (999, or 255 in uint8), not a class (issue 10 review: 999 made 1000 classes).

    The sign: the ids just below the top class are unused for at least half of 0..top and
    at least 16 ids. Real label sets leave no such gap under their largest class.
    """
    if top < 16:
        return
    used = np.flatnonzero(np.bincount(y[y >= 0], minlength=top + 1))
    below = int(used[-2]) if used.shape[0] > 1 else -1
    gap = top - below - 1
    if gap >= max(16, (top + 1) // 2):
        count = int(np.count_nonzero(y == top))
        raise InputError(f"{where}: label {top} ({counted(count, 'node')}, e.g. node {int(np.argmax(y == top))}) "
                         f"is not a class id: no node has a label in {below + 1}..{top - 1}; a "
                         "sentinel for 'no label'? Mark unlabelled nodes with NaN or -1")
