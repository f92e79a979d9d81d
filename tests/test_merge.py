"""dist_train.data.merge: a rank's merged graph is exactly the union of its parts, each node once."""

import numpy as np
import pytest
from partition_helpers import clustered_edges, make_source

from dist_train.data.shards import load_local_graph
from partition.graph.csr import build_csr
from partition.graph.partitioners import random_partition
from partition.store.format import write_dataset

N = 400


@pytest.fixture(scope="module", params=[0, 1, 2], ids=lambda h: f"halo{h}")
def dataset(request, tmp_path_factory):
    src, dst = clustered_edges(N, clusters=5, degree=8, p_out=0.3, seed=2)
    graph = make_source(N, src, dst, seed=1)
    csr = build_csr(N, graph.edge_chunks)
    parts = random_partition(N, 6, seed=0)
    out = tmp_path_factory.mktemp("merge") / "ds"
    write_dataset(out, graph, csr, parts, request.param, "random", 0, num_parts=6)
    return out, graph


def union_reference(out, part_ids):
    """Global-id edge set, node set and inner set over the chosen parts, naively."""
    edges, nodes, inner = set(), set(), set()
    for p in part_ids:
        g = load_local_graph(str(out), [p])
        ids = np.asarray(g.global_ids)
        inner |= set(ids[: g.num_inner].tolist())
        nodes |= set(ids.tolist())
        rows = np.repeat(np.arange(g.num_local), np.diff(g.indptr))
        edges |= set(zip(ids[rows].tolist(), ids[np.asarray(g.indices)].tolist(), strict=True))
    return edges, nodes, inner


@pytest.mark.parametrize("part_ids", [[0, 1], [1, 3, 5], [0, 1, 2, 3, 4, 5]])
def test_merge_is_the_union_of_the_parts(dataset, part_ids):
    out, graph = dataset
    g = load_local_graph(str(out), part_ids)
    edges, nodes, inner = union_reference(out, part_ids)
    ids = g.global_ids
    assert set(ids[: g.num_inner].tolist()) == inner and set(ids.tolist()) == nodes
    assert np.unique(ids).shape[0] == ids.shape[0]
    rows = np.repeat(np.arange(g.num_local), np.diff(g.indptr))
    got = list(zip(ids[rows].tolist(), ids[g.indices].tolist(), strict=True))
    assert len(got) == len(set(got)) and set(got) == edges  # no repeats, nothing lost or added
    for r in range(g.num_local):  # rows in global-id order, as in a single part
        row = ids[g.indices[g.indptr[r]:g.indptr[r + 1]]]
        assert np.all(row[1:] > row[:-1])
    assert np.array_equal(g.x, graph.x[ids]) and np.array_equal(g.y, graph.y[ids])
    train = np.intersect1d(np.asarray(graph.train_idx), ids[: g.num_inner])
    assert np.array_equal(np.sort(ids[g.train_idx]), train)
    assert np.all(g.degree >= np.diff(g.indptr))
