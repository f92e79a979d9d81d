"""Invariants of the numba neighbour sampler: edges real, counts right, uniform, reproducible."""

import numpy as np
import pytest

from dist_train.sampling.sampler import NeighborSampler, SampledSubgraph


def random_csr(n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Undirected, deduplicated, self-loop-free CSR with skewed degrees."""
    rng = np.random.default_rng(seed)
    w = rng.pareto(1.2, n) + 1
    src, dst = rng.choice(n, m, p=w / w.sum()), rng.integers(0, n, m)
    a, b = np.concatenate([src, dst]), np.concatenate([dst, src])
    key = np.unique(a[a != b] * n + b[a != b])
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(key // n, minlength=n), out=indptr[1:])
    return indptr, (key % n).astype(np.int64)


@pytest.fixture(scope="module")
def graph():
    return random_csr(600, 3000, seed=1)


def global_edges(sub: SampledSubgraph) -> tuple[np.ndarray, np.ndarray]:
    ids = sub.node_ids.numpy()
    ei = sub.edge_index.numpy()
    return ids[ei[0]], ids[ei[1]]


def hop_slices(counts: list[int]) -> list[slice]:
    ends = np.cumsum([0] + list(counts))
    return [slice(int(a), int(b)) for a, b in zip(ends[:-1], ends[1:], strict=True)]


@pytest.mark.parametrize("fanouts,replace", [([4, 3], False), ([2, 2, 2], False), ([5, 3], True),
                                             ([40, 1], False)])
def test_structure_invariants(graph, fanouts, replace):
    indptr, indices = graph
    n = indptr.shape[0] - 1
    rowlen = np.diff(indptr)
    seeds = np.random.default_rng(0).choice(n, 50, replace=False)
    sub = NeighborSampler(indptr, indices, fanouts, replace=replace).sample(seeds, seed=7)
    ids = sub.node_ids.numpy()
    assert np.array_equal(ids[:50], seeds) and sub.num_seeds == 50
    assert np.unique(ids).shape[0] == ids.shape[0]
    assert sum(sub.num_sampled_nodes) == ids.shape[0] and len(sub.num_sampled_nodes) == len(fanouts) + 1
    assert sub.num_sampled_edges_total == sub.edge_index.shape[1]
    src, dst = global_edges(sub)  # every sampled edge is a CSR edge dst -> src
    assert np.isin(dst * n + src, np.repeat(np.arange(n), rowlen) * n + indices).all()
    node_hops, ei = hop_slices(sub.num_sampled_nodes), sub.edge_index.numpy()
    for h, (es, f) in enumerate(zip(hop_slices(sub.num_sampled_edges), fanouts, strict=True)):
        tgt, srcpos = ei[1, es], ei[0, es]
        assert tgt.min(initial=node_hops[h].start) >= node_hops[h].start
        assert tgt.max(initial=0) < node_hops[h].stop and srcpos.max(initial=0) < node_hops[h + 1].stop
        k = np.bincount(tgt - node_hops[h].start, minlength=node_hops[h].stop - node_hops[h].start)
        d = rowlen[ids[node_hops[h]]]
        assert np.array_equal(k, np.where(d > 0, f, 0) if replace else np.minimum(d, f))
        new = np.arange(node_hops[h + 1].start, node_hops[h + 1].stop)
        assert np.isin(new, srcpos).all()  # every hop-(h+1) node was reached by a hop-h edge
    if not replace:
        pairs = ei[1].astype(np.int64) * ids.shape[0] + ei[0]
        assert np.unique(pairs).shape[0] == pairs.shape[0]


def test_fanout_all_gives_exact_rows(graph):
    indptr, indices = graph
    seeds = np.arange(0, 600, 7)
    sub = NeighborSampler(indptr, indices, [-1, -1]).sample(seeds, seed=3)
    src, dst = global_edges(sub)
    first = sub.nodes_through_hop(1)
    targets = sub.node_ids.numpy()[:first]
    for v in targets[:: 5]:
        assert np.array_equal(np.sort(src[dst == v]), indices[indptr[v]:indptr[v + 1]])
    assert sub.edges_through_hop(1) == int(np.diff(indptr)[targets].sum())


def as_arrays(sub: SampledSubgraph) -> list[np.ndarray]:
    return [sub.node_ids.numpy(), sub.edge_index.numpy(), sub.edge_weight.numpy()]


def test_same_seed_same_result_whatever_came_before(graph):
    indptr, indices = graph
    deg = np.diff(indptr)
    seeds = np.arange(100, 164)
    a = NeighborSampler(indptr, indices, [5, 5], degree=deg)
    first = as_arrays(a.sample(seeds, seed=11))
    a.sample(np.arange(300, 400), seed=5)  # leaves no trace in the reusable id map
    again = as_arrays(a.sample(seeds, seed=11))
    fresh = as_arrays(NeighborSampler(indptr, indices, [5, 5], degree=deg).sample(seeds, seed=11))
    other = as_arrays(a.sample(seeds, seed=12))
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))
    assert all(np.array_equal(x, y) for x, y in zip(first, fresh, strict=True))
    assert not np.array_equal(first[1], other[1]) or not np.array_equal(first[0], other[0])


def star(d: int) -> tuple[np.ndarray, np.ndarray]:
    """Node 0 joined to nodes 1..d."""
    indptr = np.concatenate([[0, d], d + np.arange(1, d + 1)]).astype(np.int64)
    indices = np.concatenate([np.arange(1, d + 1), np.zeros(d, dtype=np.int64)])
    return indptr, indices


@pytest.mark.parametrize("d,k,replace", [(20, 15, False), (40, 3, False), (30, 4, True)])
def test_sampling_is_uniform_over_the_row(d, k, replace):
    """Chi-square of neighbour counts over many seeds; covers Fisher-Yates, Floyd, replacement."""
    indptr, indices = star(d)
    sampler = NeighborSampler(indptr, indices, [k], replace=replace)
    trials = 3000
    counts = np.zeros(d + 1)
    for s in range(trials):
        src, _ = global_edges(sampler.sample(np.array([0]), seed=s))
        assert src.shape[0] == k
        np.add.at(counts, src, 1)
    expected = trials * k / d
    chi2 = float(((counts[1:] - expected) ** 2 / expected).sum())
    # Without replacement the counts are less variable than multinomial, so the
    # chi-square bound (df = d-1, ~p=0.999) is conservative there.
    assert chi2 < d - 1 + 4.5 * np.sqrt(2 * (d - 1)), chi2


def test_edge_weights_follow_the_formula(graph):
    indptr, indices = graph
    rowlen = np.diff(indptr)
    degree = rowlen + np.random.default_rng(2).integers(0, 4, rowlen.shape[0])  # halo-like rows
    sub = NeighborSampler(indptr, indices, [3, 2], degree=degree).sample(np.arange(40), seed=9)
    ids, ei = sub.node_ids.numpy(), sub.edge_index.numpy()
    k = np.bincount(ei[1], minlength=ids.shape[0])[ei[1]]
    di, dj = degree[ids[ei[1]]].astype(np.float64), degree[ids[ei[0]]].astype(np.float64)
    expected = (di / k) / np.sqrt((di + 1) * (dj + 1))
    assert np.allclose(sub.edge_weight.numpy(), expected, rtol=1e-6)
    assert np.array_equal(sub.degree.numpy(), degree[ids].astype(np.float32))


def test_memmap_inputs_and_bad_seeds(graph, tmp_path):
    indptr, indices = graph
    np.save(tmp_path / "indptr.npy", indptr)
    np.save(tmp_path / "indices.npy", indices)
    mm = [np.load(tmp_path / f, mmap_mode="r") for f in ("indptr.npy", "indices.npy")]
    sampler = NeighborSampler(mm[0], mm[1], [3], degree=np.diff(indptr))
    ref = NeighborSampler(indptr, indices, [3], degree=np.diff(indptr))
    with pytest.raises(ValueError, match="twice"):
        sampler.sample(np.array([1, 2, 1]), seed=0)
    with pytest.raises(ValueError, match="out of range"):
        sampler.sample(np.array([1, 600]), seed=0)
    got = sampler.sample(np.array([1, 2, 3]), seed=4)  # the failed calls left the map clean
    want = as_arrays(ref.sample(np.array([1, 2, 3]), 4))
    assert all(np.array_equal(a, b) for a, b in zip(as_arrays(got), want, strict=True))


@pytest.mark.parametrize("layout", ["union", "blocks"])
def test_int32_mapped_indices_are_sampled_in_place(graph, tmp_path, layout):
    """Stored int32 column ids are not copied to int64 (issue 15: per-rank memory), and
    sample exactly as int64 ones do."""
    indptr, indices = graph
    np.save(tmp_path / "indices.npy", indices.astype(np.int32))
    mm = np.load(tmp_path / "indices.npy", mmap_mode="r")
    keys = np.arange(600, dtype=np.int64) * 7 + 3
    sampler = NeighborSampler(indptr, mm, [4, 3], degree=np.diff(indptr), global_ids=keys, layout=layout)
    assert np.shares_memory(sampler._indices, mm) and sampler._indices.dtype == np.int32
    ref = NeighborSampler(indptr, indices, [4, 3], degree=np.diff(indptr), global_ids=keys, layout=layout)
    for seed in (0, 9):
        got, want = as_arrays(sampler.sample(np.array([5, 1, 77]), seed)), as_arrays(ref.sample(np.array([5, 1, 77]), seed))
        assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    small = NeighborSampler(indptr, indices.astype(np.int16), [2])  # other dtypes: widened
    assert small._indices.dtype == np.int64


def test_constructor_rejects_bad_arguments(graph):
    indptr, indices = graph
    with pytest.raises(ValueError, match="fanout"):
        NeighborSampler(indptr, indices, [0])
    with pytest.raises(ValueError, match="degree"):
        NeighborSampler(indptr, indices, [2], degree=np.zeros(600, dtype=np.int64))
    with pytest.raises(ValueError, match="indptr"):
        NeighborSampler(indptr, indices[:-1], [2])


@pytest.mark.parametrize("fanouts", [[4, 3], [2, 2, 2], [-1, 3]])
def test_target_ptr_is_the_csr_of_edges_by_target(graph, fanouts):
    indptr, indices = graph
    sub = NeighborSampler(indptr, indices, fanouts).sample(np.arange(0, 600, 13), seed=3)
    targets = sub.nodes_through_hop(len(fanouts) - 1)
    ptr, dst = sub.target_ptr.numpy(), sub.edge_index[1].numpy()
    assert ptr.shape == (targets + 1,) and ptr[0] == 0 and ptr[-1] == dst.shape[0]
    assert np.array_equal(np.repeat(np.arange(targets), np.diff(ptr)), dst)
