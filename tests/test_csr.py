"""build_csr: symmetric, deduplicated, loop-free, sorted rows, equal to a naive set."""

from __future__ import annotations

import numpy as np
import pytest
from partition_helpers import chunked, messy_edges, neighbour_sets

from partition.errors import InputError
from partition.graph.csr import build_csr


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_csr_equals_naive_symmetrised_set(dtype):
    n = 300
    src, dst = messy_edges(n, 2000, seed=1)
    csr = build_csr(n, chunked(src.astype(dtype), dst.astype(dtype)))
    adj = neighbour_sets(n, src, dst)
    assert csr.indptr.dtype == np.int64 and csr.indices.dtype == np.int32  # N < 2^31
    assert csr.indptr.shape == (n + 1,) and csr.indptr[0] == 0
    for u in range(n):
        row = csr.indices[csr.indptr[u]:csr.indptr[u + 1]]
        assert np.all(np.diff(row) > 0), f"row {u} not strictly sorted"
        assert set(row.tolist()) == adj[u]
    assert csr.num_edges == sum(len(a) for a in adj) // 2
    np.testing.assert_array_equal(csr.degree(), [len(a) for a in adj])


def test_isolated_nodes_and_no_edges():
    csr = build_csr(5, chunked(np.array([3]), np.array([3])))  # only a self loop
    np.testing.assert_array_equal(csr.indptr, np.zeros(6))
    assert csr.num_edges == 0 and csr.indices.size == 0


def test_same_graph_whatever_the_chunking():
    n = 200
    src, dst = messy_edges(n, 1500, seed=2)
    a = build_csr(n, chunked(src, dst, size=7))
    b = build_csr(n, chunked(src[::-1].copy(), dst[::-1].copy(), size=1000))
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)


@pytest.mark.parametrize("bad", [-1, 10])
def test_out_of_range_id_is_an_input_error(bad):
    with pytest.raises(InputError, match="out of range"):
        build_csr(10, chunked(np.array([0, bad]), np.array([1, 2])))


def test_progress_counts_raw_edges():
    src, dst = messy_edges(50, 300, seed=3)
    seen = []
    build_csr(50, chunked(src, dst), progress=seen.append)
    assert sum(seen) == src.size
