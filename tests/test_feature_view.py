"""Local mode at H=0 sees exactly format 1's parts: inner nodes, intra-part edges, no boundary."""

import numpy as np
import pytest
from partition_helpers import clustered_edges, make_source

from dist_train.data.feature_view import induced_subgraph
from dist_train.data.shards import load_local_graph
from partition import load_partition
from partition.graph.csr import build_csr
from partition.graph.partitioners import random_partition
from partition.store.format import write_dataset

N = 300


@pytest.fixture(scope="module")
def h0(tmp_path_factory):
    src, dst = clustered_edges(N, clusters=4, degree=6, p_out=0.3, seed=5)
    graph = make_source(N, src, dst, seed=5)
    csr = build_csr(N, graph.edge_chunks)
    parts = random_partition(N, 4, seed=1)
    out = tmp_path_factory.mktemp("fv") / "ds"
    write_dataset(out, graph, csr, parts, 0, "random", 0, num_parts=4)
    return out, graph, csr, parts


@pytest.mark.parametrize("part_ids", [[0], [1, 2], [0, 1, 2, 3]])
def test_h0_local_graph_is_the_intra_part_graph(h0, part_ids):
    out, graph, csr, parts = h0
    assert load_partition(out, part_ids[0]).num_local > load_partition(out, part_ids[0]).num_inner
    g = load_local_graph(str(out), part_ids)
    mine = np.isin(parts, part_ids)
    assert g.num_local == g.num_inner == int(mine.sum())  # no structure-only node reaches training
    ids = np.asarray(g.global_ids)
    np.testing.assert_array_equal(np.asarray(g.x), graph.x[ids])
    for i in range(g.num_local):
        row = ids[g.indices[g.indptr[i]:g.indptr[i + 1]]]
        nbrs = csr.indices[csr.indptr[ids[i]]:csr.indptr[ids[i] + 1]]
        # as format 1 did: an inner row keeps only its own part's edges, even when a
        # neighbour's part is merged onto the same rank
        np.testing.assert_array_equal(np.sort(row), nbrs[parts[nbrs] == parts[ids[i]]])


def test_induced_subgraph_matches_a_dense_mask():
    rng = np.random.default_rng(0)
    n = 50
    adj = np.triu(rng.random((n, n)) < 0.2, 1)
    adj = adj | adj.T
    indptr = np.concatenate(([0], np.cumsum(adj.sum(1)))).astype(np.int64)
    indices = np.nonzero(adj)[1].astype(np.int64)
    for r in range(n):  # rows in any order (on disk: global-id order, not local-id order)
        rng.shuffle(indices[indptr[r]:indptr[r + 1]])
    for limit in (0, 1, 17, n):
        ptr, idx = induced_subgraph(indptr, indices, limit)
        sub = adj[:limit, :limit]
        np.testing.assert_array_equal(ptr, np.concatenate(([0], np.cumsum(sub.sum(1)))))
        for r in range(limit):
            row, full = idx[ptr[r]:ptr[r + 1]], indices[indptr[r]:indptr[r + 1]]
            np.testing.assert_array_equal(row, full[full < limit])  # order kept
