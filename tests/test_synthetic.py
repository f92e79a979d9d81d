"""The synthetic graph: deterministic, chunk-regenerated, heavy-tailed, homophilous, local."""

from __future__ import annotations

import numpy as np
import pymetis
import pytest

from partition.errors import InputError
from partition.readers import synthetic
from partition.readers.synthetic import SyntheticSpec, make_synthetic, parse_synthetic_spec


def edges_of(g) -> tuple[np.ndarray, np.ndarray]:
    chunks = list(g.edge_chunks())
    return np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])


def undirected_csr(n: int, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = src != dst
    key = np.unique(np.concatenate((src[keep] * n + dst[keep], dst[keep] * n + src[keep])))
    indptr = np.concatenate(([0], np.cumsum(np.bincount(key // n, minlength=n))))
    return indptr, key % n


@pytest.fixture(scope="module")
def medium():
    spec = SyntheticSpec(nodes=20_000, degree=12, classes=8, homophily=0.5, seed=5)
    g = make_synthetic(spec)
    return spec, g, undirected_csr(spec.nodes, *edges_of(g))


def test_same_seed_same_graph_other_seed_differs(monkeypatch):
    monkeypatch.setattr(synthetic, "NODE_CHUNK", 256)  # several chunks
    spec = SyntheticSpec(nodes=1_000, degree=6, features=8)
    a, b = make_synthetic(spec), make_synthetic(spec)
    c = make_synthetic(SyntheticSpec(nodes=1_000, degree=6, features=8, seed=1))
    for name in ("x", "y", "train_idx", "val_idx", "test_idx"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for ea, eb in zip(edges_of(a), edges_of(b), strict=True):
        np.testing.assert_array_equal(ea, eb)
    assert not np.array_equal(a.y, c.y) and not np.array_equal(a.x, c.x)
    assert edges_of(a)[0].shape != edges_of(c)[0].shape or not np.array_equal(edges_of(a)[1], edges_of(c)[1])


def test_chunks_regenerate_identically_and_cover_their_nodes(monkeypatch):
    monkeypatch.setattr(synthetic, "NODE_CHUNK", 128)
    g = make_synthetic(SyntheticSpec(nodes=1_000, degree=8))
    first, second = list(g.edge_chunks()), list(g.edge_chunks())
    assert len(first) == 8
    for j, ((s1, d1), (s2, d2)) in enumerate(zip(first, second, strict=True)):
        np.testing.assert_array_equal(s1, s2)
        np.testing.assert_array_equal(d1, d2)
        assert s1.dtype == d1.dtype == np.int64
        assert s1.min() >= j * 128 and s1.max() < (j + 1) * 128  # chunk j = source nodes of block j
        assert d1.min() >= 0 and d1.max() < 1_000


def test_splits_labels_features(medium):
    spec, g, _ = medium
    parts = [g.train_idx, g.val_idx, g.test_idx]
    assert [len(p) for p in parts] == [12_000, 4_000, 4_000]
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(spec.nodes))
    assert all(np.all(np.diff(p) > 0) for p in parts)
    assert g.x.dtype == np.float32 and g.x.shape == (spec.nodes, spec.features)
    assert g.y.dtype == np.int64 and set(np.unique(g.y)) == set(range(spec.classes))
    means = np.stack([g.x[g.y == c].mean(0) for c in range(spec.classes)])
    spread = np.linalg.norm(means[:, None] - means[None], axis=-1)
    assert spread[~np.eye(spec.classes, dtype=bool)].min() > 3  # features carry the class


def test_test_fraction_leaves_the_rest_in_no_split():
    """``test=`` bounds the test split; the other nodes are in none (papers100M-like)."""
    g = make_synthetic(SyntheticSpec(nodes=10_000, train=0.05, val=0.01, test=0.02))
    parts = [g.train_idx, g.val_idx, g.test_idx]
    assert [len(p) for p in parts] == [500, 100, 200]
    together = np.concatenate(parts)
    assert np.unique(together).size == together.size  # disjoint
    whole = make_synthetic(SyntheticSpec(nodes=10_000, train=0.05, val=0.01))
    np.testing.assert_array_equal(whole.train_idx, g.train_idx)  # the same draw, cut shorter
    assert np.isin(g.test_idx, whole.test_idx).all() and len(whole.test_idx) == 9_400


def test_degree_homophily_and_heavy_tail(medium):
    spec, g, (indptr, indices) = medium
    deg = np.diff(indptr)
    assert abs(deg.mean() - spec.degree) < 0.15 * spec.degree
    assert deg.max() > 20 * deg.mean()  # power-law hubs, not a Poisson graph
    src = np.repeat(np.arange(spec.nodes), deg)
    assert abs((g.y[src] == g.y[indices]).mean() - spec.homophily) < 0.05


def test_metis_finds_communities(medium):
    spec, _, (indptr, indices) = medium
    _, parts = pymetis.part_graph(8, pymetis.CSRAdjacency(indptr, indices),
                                  options=pymetis.Options(seed=0), recursive=False)
    src = np.repeat(np.arange(spec.nodes), np.diff(indptr))
    metis_cut = (np.asarray(parts)[src] != np.asarray(parts)[indices]).mean()
    assert metis_cut < 0.875 / 3  # a random 8-way partition cuts ~87.5%


def _metis_cut(spec: SyntheticSpec, parts_n: int = 8) -> float:
    indptr, indices = undirected_csr(spec.nodes, *edges_of(make_synthetic(spec)))
    _, parts = pymetis.part_graph(parts_n, pymetis.CSRAdjacency(indptr, indices),
                                  options=pymetis.Options(seed=0), recursive=False)
    src = np.repeat(np.arange(spec.nodes), np.diff(indptr))
    return float((np.asarray(parts)[src] != np.asarray(parts)[indices]).mean())


def test_local_sets_how_partitionable_the_graph_is():
    base = dict(nodes=20_000, degree=12, classes=8, seed=5)
    cuts = [_metis_cut(SyntheticSpec(**base, local=loc)) for loc in (0.5, 0.85, 0.99)]
    assert cuts[0] > 1.5 * cuts[1] > 1.5 * 1.5 * cuts[2], cuts


def test_parse_spec():
    assert parse_synthetic_spec("") == SyntheticSpec()
    spec = parse_synthetic_spec("nodes=1e6, degree=20,seed=3,homophily=0.5,train=0.5,val=0.25")
    assert (spec.nodes, spec.degree, spec.seed, spec.homophily, spec.train) == (10**6, 20.0, 3, 0.5, 0.5)
    assert isinstance(spec.nodes, int)


@pytest.mark.parametrize("text,key", [
    ("colour=3", "colour"), ("nodes=abc", "nodes"), ("nodes=1.5", "nodes"), ("nodes=1", "nodes"),
    ("degree=0", "degree"), ("homophily=1.5", "homophily"), ("noise=-1", "noise"),
    ("classes=1", "classes"), ("train=0.9,val=0.1", "val"), ("seed", "seed"), ("degree=nan", "degree"),
    ("seed=1,seed=2", "seed"), ("train=0.5,val=0.3,test=0.3", "test"), ("nodes=100,test=0.001", "test"),
])
def test_bad_spec_names_input_and_key(text, key):
    with pytest.raises(InputError) as info:
        parse_synthetic_spec(text)
    msg = str(info.value)
    assert "--input" in msg and key in msg and "\n" not in msg
