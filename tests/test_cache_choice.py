"""partition.graph.cache: the kept boundary rows are the most-reached ones, within budget."""

import numpy as np
import pytest
from partition_helpers import clustered_edges, make_source

from partition.graph.cache import choose_cache
from partition.graph.csr import build_csr


@pytest.fixture(scope="module")
def graph():
    n = 500
    src, dst = clustered_edges(n, clusters=5, degree=10, p_out=0.3, seed=4)
    return build_csr(n, make_source(n, src, dst).edge_chunks)


def boundary(csr, inner):
    n = csr.num_nodes
    adj = np.zeros(n, dtype=np.int64)
    for u in inner:
        np.add.at(adj, csr.indices[csr.indptr[u]:csr.indptr[u + 1]], 1)
    mask = adj > 0
    mask[inner] = False
    return np.flatnonzero(mask), adj  # the ring and every node's count of inner neighbours


@pytest.mark.parametrize("budget", [0.0, 0.05, 0.3, 5.0])
def test_cache_keeps_the_most_reached_boundary_nodes(graph, budget):
    inner = np.arange(0, 500, 4, dtype=np.int64)
    halo, count = boundary(graph, inner)
    g2l = np.full(graph.num_nodes, -1, dtype=np.int64)
    g2l[inner] = np.arange(inner.size)
    g2l[halo] = inner.size + np.arange(halo.size)
    got = choose_cache(inner, halo, graph.indptr, graph.indices, g2l, budget)
    k = min(int(budget * inner.size), halo.size)
    assert got.shape == (k,) and np.all(np.diff(got) > 0)
    if 0 < k < halo.size:  # nobody left out is reached more often than someone kept
        kept = np.zeros(halo.size, dtype=bool)
        kept[got] = True
        assert count[halo][kept].min() >= count[halo][~kept].max()


def test_a_bad_budget_is_refused(graph):
    with pytest.raises(ValueError, match="budget"):
        choose_cache(np.arange(3), np.arange(3, 5), graph.indptr, graph.indices,
                     np.arange(graph.num_nodes), float("nan"))
