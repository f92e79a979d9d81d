"""Parts: inner nodes owned once, halo = outside H-hop neighbourhood, local CSR = induced edges."""

from __future__ import annotations

import numpy as np
import pytest
from partition_helpers import bfs_halo, chunked, messy_edges, neighbour_sets

from partition.graph.csr import build_csr
from partition.graph.halo import PartBuilder, build_part
from partition.graph.partitioners import random_partition

N = 400


@pytest.fixture(scope="module")
def graph():
    src, dst = messy_edges(N, 900, seed=7)  # sparse: 2-hop halos stay partial
    return build_csr(N, chunked(src, dst)), neighbour_sets(N, src, dst)


def _local_edges(pg) -> set[tuple[int, int]]:
    ids = pg.global_ids.tolist()
    rows = np.repeat(np.arange(pg.num_local), np.diff(pg.indptr))
    return {(ids[a], ids[b]) for a, b in zip(rows.tolist(), pg.indices.tolist(), strict=True)}


@pytest.mark.parametrize("num_parts", [1, 2, 3, 8])
@pytest.mark.parametrize("hops", [0, 1, 2])
def test_parts_match_naive_halo_and_induced_edges(graph, num_parts, hops):
    csr, adj = graph
    parts = random_partition(N, num_parts, seed=num_parts)
    builder = PartBuilder(csr, parts, num_parts)
    owned = []
    for p in range(num_parts):
        pg = builder.build(p, hops)
        inner = np.flatnonzero(parts == p)
        np.testing.assert_array_equal(pg.global_ids[:pg.num_inner], inner)
        # H=0 keeps the 1-hop ring as structure-only halo (no feature rows)
        halo = sorted(bfs_halo(adj, set(inner.tolist()), max(hops, 1)))
        assert pg.global_ids[pg.num_inner:].tolist() == halo
        assert pg.num_feature_rows == (pg.num_inner if hops == 0 else pg.num_local)
        assert pg.global_ids.dtype == np.int64 and pg.indices.dtype == np.int64
        local = set(pg.global_ids.tolist())
        inner_set, rows = set(inner.tolist()), set(pg.global_ids[:pg.num_feature_rows].tolist())
        # at H=0 structure-only rows are empty, halo rows with features keep edges to rows
        expected = {(u, v) for u in local for v in adj[u] if v in local
                    and (u in inner_set or (u in rows and v in rows))}
        assert _local_edges(pg) == expected
        for i in range(pg.num_local):  # in global-id order: the sampler's positions (issue 15)
            row = pg.global_ids[pg.indices[pg.indptr[i]:pg.indptr[i + 1]]]
            assert np.all(np.diff(row) > 0)
        # every inner row is the node's complete neighbour set, H=0 included
        for i, u in enumerate(inner.tolist()):
            row = pg.global_ids[pg.indices[pg.indptr[i]:pg.indptr[i + 1]]]
            assert set(row.tolist()) == adj[u]
        owned.append(inner)
    np.testing.assert_array_equal(np.sort(np.concatenate(owned)), np.arange(N))


def test_builder_reuse_equals_fresh_builds(graph):
    csr, _ = graph
    parts = random_partition(N, 3, seed=0)
    builder = PartBuilder(csr, parts, 3)
    for p in (2, 0, 1, 2):  # any order, repeated: the scratch array is reset each time
        a, b = builder.build(p, 2), build_part(csr, parts, p, 2)
        np.testing.assert_array_equal(a.global_ids, b.global_ids)
        np.testing.assert_array_equal(a.indptr, b.indptr)
        np.testing.assert_array_equal(a.indices, b.indices)
    assert (builder._g2l == -1).all()
