"""Partition-invariant sampling (issue 15): a seed set samples the same subgraph, as
global ids, whether the graph is in 1 part, 2 or 8 (halo as deep as the model, so local
mode expands complete rows), on one part or on several parts merged onto one rank."""

import numpy as np
import pytest
from partition_helpers import clustered_edges, make_source

from dist_train.data.shards import LocalGraph, load_local_graph
from dist_train.sampling.sampler import NeighborSampler
from partition.graph.csr import build_csr
from partition.graph.partitioners import random_partition
from partition.store.format import write_dataset

N = 600
FANOUTS = [4, 3]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """{num_parts: dataset dir} with a 2-hop halo, plus a 1-hop one at 8 parts."""
    src, dst = clustered_edges(N, clusters=6, degree=12, p_out=0.3, seed=3)
    graph = make_source(N, src, dst, seed=1)
    csr = build_csr(N, graph.edge_chunks)
    root = tmp_path_factory.mktemp("inv")
    out = {}
    for p, hops in [(1, 0), (2, 2), (8, 2), ("8h1", 1)]:
        k = 8 if p == "8h1" else p
        parts = random_partition(N, k, seed=0) if k > 1 else np.zeros(N, dtype=np.int32)
        write_dataset(root / f"p{p}", graph, csr, parts, hops, "random", 0, num_parts=k)
        out[p] = root / f"p{p}"
    return out


def sample_global(g: LocalGraph, seeds_global: np.ndarray, seed: int, replace: bool,
                  keyed: bool = True) -> tuple[np.ndarray, ...]:
    """Sample around global seeds on a rank graph; the result as global ids."""
    ids = np.asarray(g.global_ids)
    local = np.searchsorted(ids[: g.num_inner], seeds_global)
    assert np.array_equal(ids[local], seeds_global)  # the seeds are this graph's inner nodes
    sampler = NeighborSampler(g.indptr, g.indices, FANOUTS, degree=g.degree, replace=replace,
                              global_ids=ids if keyed else None)
    sub = sampler.sample(local, seed)
    nodes = ids[sub.node_ids.numpy()]
    ei = sub.edge_index.numpy()
    return nodes, nodes[ei[0]], nodes[ei[1]], sub.edge_weight.numpy(), np.array(sub.num_sampled_nodes)


def assert_same(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> None:
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y)


@pytest.mark.parametrize("replace", [False, True])
@pytest.mark.parametrize("num_parts,part_ids", [(2, [0]), (2, [1]), (8, [3]), (8, [0, 5]),
                                                (8, [1, 2, 6, 7])])
def test_same_subgraph_in_any_partition(datasets, num_parts, part_ids, replace):
    whole = load_local_graph(str(datasets[1]), [0])
    g = load_local_graph(str(datasets[num_parts]), part_ids)
    inner = np.asarray(g.global_ids[: g.num_inner])
    seeds = np.sort(np.random.default_rng(len(part_ids)).choice(inner, min(40, inner.size), replace=False))
    for batch_seed in (0, 17):
        got = sample_global(g, seeds, batch_seed, replace)
        want = sample_global(whole, seeds, batch_seed, replace)
        assert_same(got, want)
        assert got[1].size > seeds.size  # a real two-hop sample, not an empty one


def test_local_keys_or_a_short_halo_break_the_invariant(datasets):
    """The controls: keyed by local id, or expanding truncated rows, the samples differ."""
    whole = load_local_graph(str(datasets[1]), [0])
    seeds = np.asarray(load_local_graph(str(datasets[8]), [3]).global_ids[:40])
    want = sample_global(whole, seeds, 5, False)
    by_local = sample_global(load_local_graph(str(datasets[8]), [3]), seeds, 5, False, keyed=False)
    short = sample_global(load_local_graph(str(datasets["8h1"]), [3]), seeds, 5, False)
    assert not np.array_equal(by_local[0], want[0])
    assert not np.array_equal(short[0], want[0])


def test_rows_are_in_global_id_order(datasets):
    for key, parts in [(8, [2]), (8, [0, 4, 5]), ("8h1", [7])]:
        g = load_local_graph(str(datasets[key]), parts)
        ids = np.asarray(g.global_ids)
        row_gids = ids[np.asarray(g.indices)]
        starts = np.asarray(g.indptr)[:-1]
        step = np.diff(row_gids)
        inside = np.ones(step.size, dtype=bool)
        inside[starts[starts > 0] - 1] = False  # differences across a row boundary don't count
        assert np.all(step[inside] > 0)
