"""Labels as users bring them (issue 10 review): sentinels and out-of-range floats are
refused by name, never turned into a class or silently into "unlabelled"."""

from __future__ import annotations

import numpy as np
import pytest

from partition.errors import InputError
from partition.readers.source_checks import check_labels
from partition.readers.splits import check_split_labels

N = 2000


def _check(y: np.ndarray) -> None:
    labels = check_labels(y, N, "y.npy", "x.npy")
    train = np.flatnonzero(labels >= 0)[:50]
    check_split_labels(labels, [train, train[:0], train[:0]], ["train", "val", "test"], "src")


@pytest.mark.parametrize("sentinel,dtype", [(999, np.int64), (255, np.uint8), (500.0, np.float64),
                                            (64, np.int32)])
def test_a_sentinel_far_above_every_class_is_refused(sentinel, dtype):
    y = np.random.default_rng(0).integers(0, 7, N).astype(dtype)
    y[400:] = sentinel
    with pytest.raises(InputError, match=rf"label {int(sentinel)} .*is not a class id.*sentinel"):
        _check(y)


@pytest.mark.parametrize("top", [6, 15, 171])
def test_dense_class_ids_are_kept(top):
    """Every id used (papers100M: 172 classes), or a small top class: no refusal."""
    y = np.arange(N) % (top + 1)
    _check(y)
    assert check_labels(y, N, "y", "x").max() == top


def test_a_few_unused_class_ids_are_not_a_sentinel():
    y = np.random.default_rng(1).choice([0, 1, 2, 5, 9, 13, 20, 21, 30, 39], N)
    _check(y)  # gaps inside the range, none that swallows half of it below the top


@pytest.mark.parametrize("value", [1e20, 2.0 ** 63, 1e300, np.inf])
def test_a_float_label_beyond_int64_is_refused_not_unlabelled(value):
    y = np.zeros(N)
    y[7] = value
    with pytest.raises(InputError, match=r"not integers or NaN .*at node 7"):
        check_labels(y, N, "y.npy", "x.npy")


@pytest.mark.parametrize("value", [-np.inf, -1e20, -1.0, np.nan])
def test_any_negative_float_label_means_unlabelled(value, recwarn):
    y = np.zeros(N)
    y[7] = value
    out = check_labels(y, N, "y.npy", "x.npy")
    assert out[7] == -1 and (out[:7] == 0).all()
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


@pytest.mark.parametrize("make", [lambda t: t.to_sparse(sparse_dim=1), lambda t: t.to_sparse_bsr((2, 2))],
                         ids=["hybrid-coo", "bsr"])
def test_sparse_x_of_another_layout_is_one_line(make):
    import torch

    from partition.readers.pyg_reader import sparse_features

    with pytest.raises(InputError, match=r"x: a torch sparse tensor of layout .* is not read"):
        sparse_features(make(torch.rand(6, 4)), "f.pt: x")


def test_an_npy_file_of_no_known_name_is_said_not_dropped(tmp_path):
    """training_mask.npy is not train_mask.npy: a warning names it (a random split follows)."""
    from partition.readers.sources import read_source

    rng = np.random.default_rng(0)
    np.save(tmp_path / "edge_index.npy", rng.integers(0, 50, (2, 200)))
    np.save(tmp_path / "x.npy", rng.random((50, 4)).astype(np.float32))
    np.save(tmp_path / "y.npy", rng.integers(0, 3, 50))
    np.save(tmp_path / "training_mask.npy", np.ones(50, dtype=bool))
    g = read_source(f"npy:{tmp_path}", None, None)
    assert any("training_mask.npy ignored: not a name giantgcn reads" in w for w in g.warnings)
