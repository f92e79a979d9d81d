"""Exact sampling across parts (issue 15): ranks that each hold only their parts sample,
with all-to-alls, the same subgraph (global ids, order, edges, weights) that the batch
sampler draws on the whole graph in one part -- in the union layout and in the layer-wise
"blocks" layout of ``train.batch_plan=global``."""

import json

import numpy as np
import pytest
from fake_gang import FakeGang, run_ranks
from partition_helpers import clustered_edges, make_source

from dist_train.data.exact_graph import load_exact_graph
from dist_train.data.shards import assign_parts, load_local_graph
from dist_train.sampling.exact import ExactSampler, OwnedGraph
from dist_train.sampling.fetch import RowStore, fetch_rows
from dist_train.sampling.sampler import NeighborSampler
from partition.graph.csr import build_csr
from partition.graph.partitioners import random_partition
from partition.store.format import write_dataset

N = 700


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    src, dst = clustered_edges(N, clusters=7, degree=12, p_out=0.3, seed=5)
    graph = make_source(N, src, dst, seed=2)
    csr = build_csr(N, graph.edge_chunks)
    root = tmp_path_factory.mktemp("exact")
    out = {}
    for p in (1, 2, 8):  # no halo rows: features stored once, exact mode's setting
        parts = random_partition(N, p, seed=1) if p > 1 else np.zeros(N, dtype=np.int32)
        write_dataset(root / f"p{p}", graph, csr, parts, 0, "random", 0, num_parts=p)
        out[p] = root / f"p{p}"
    write_dataset(root / "p8c", graph, csr, random_partition(N, 8, seed=1), 0, "random", 0,
                  num_parts=8, cache_budget=0.3)
    out["8c"] = root / "p8c"
    return out


def owned(ds, part_ids: list[int], rank: int, part_rank: np.ndarray) -> OwnedGraph:
    """A rank's graph for exact mode, its owners from the shards (load_exact_graph)."""
    plan = [np.flatnonzero(part_rank == r).tolist() for r in range(int(part_rank.max()) + 1)]
    g = load_exact_graph(str(ds), part_ids, rank, plan)
    return OwnedGraph(rank=rank, global_ids=np.asarray(g.global_ids), num_inner=g.num_inner,
                      indptr=np.asarray(g.indptr), indices=np.asarray(g.indices),
                      degree=np.asarray(g.degree), owner=g.owner)


def whole_graph_sample(ds, seeds_global, batch_seed, fanouts, replace, layout="union"):
    g = load_local_graph(str(ds), [0])
    s = NeighborSampler(g.indptr, g.indices, fanouts, degree=g.degree, replace=replace,
                        global_ids=g.global_ids, layout=layout)
    return s.sample(np.asarray(seeds_global), batch_seed)  # one part: local id == global id


@pytest.mark.parametrize("layout", ["union", "blocks"])
@pytest.mark.parametrize("num_parts,world", [(1, 1), (2, 2), (8, 8), (8, 2), (8, 3)])
@pytest.mark.parametrize("fanouts,replace", [([4, 3], False), ([3, 2, 2], False), ([5, 3], True),
                                             ([-1, 2], False)])
def test_exact_equals_one_part(data, num_parts, world, fanouts, replace, layout):
    ds = data[num_parts]
    manifest = json.loads((ds / "manifest.json").read_text())
    plan = assign_parts([p["num_train"] for p in manifest["parts"]], world)
    part_rank = np.empty(num_parts, dtype=np.int64)
    for r, ps in enumerate(plan):
        part_rank[ps] = r
    gang = FakeGang(world)

    def rank_fn(rank, exchange):
        g = owned(ds, plan[rank], rank, part_rank)
        # uneven batches: rank r takes 10 + 7r seeds, the last rank none at all
        # (one rank alone takes 25)
        k = 25 if world == 1 else 0 if rank == world - 1 else min(g.num_inner, 10 + 7 * rank)
        seeds = np.random.default_rng(rank).choice(g.num_inner, k, replace=False)
        sampler = ExactSampler(g, exchange, world, fanouts, replace, layout)
        return [(g.global_ids[seeds], sampler.sample(seeds, s)) for s in (3, 4, 5, 6)]

    for got in run_ranks(world, rank_fn, gang):
        for (seeds_global, (sub, owner)), batch_seed in zip(got, (3, 4, 5, 6), strict=True):
            want = whole_graph_sample(data[1], seeds_global, batch_seed, fanouts, replace, layout)
            assert sub.layout == want.layout == layout
            assert np.array_equal(sub.node_ids.numpy(), want.node_ids.numpy())
            assert np.array_equal(sub.edge_index.numpy(), want.edge_index.numpy())
            assert np.array_equal(sub.edge_weight.numpy(), want.edge_weight.numpy())
            assert sub.num_sampled_nodes == want.num_sampled_nodes
            assert np.array_equal(sub.target_ptr.numpy(), want.target_ptr.numpy())
            assert np.array_equal(sub.degree.numpy(), want.degree.numpy())
            assert sub.num_sampled_edges == want.num_sampled_edges
            if layout == "blocks":  # keyed dropout's keys are the global ids, on both sides
                assert np.array_equal(sub.keys.numpy(), sub.node_ids.numpy())
                assert np.array_equal(want.keys.numpy(), want.node_ids.numpy())
                assert sub.batch_seed == want.batch_seed == batch_seed
            node_part = np.load(ds / "node_part.npy")
            assert np.array_equal(owner, part_rank[node_part[sub.node_ids.numpy()]])
    assert len(set(gang.calls)) == 1  # lockstep: every rank made the same collective calls


@pytest.mark.parametrize("cache", ["none", "8c"])
def test_fetched_rows_equal_the_source_rows(data, cache):
    """Every sampled node's row arrives, from this rank, its cache or its owner; the counts add up."""
    ds, world = data[8 if cache == "none" else "8c"], 4
    manifest = json.loads((ds / "manifest.json").read_text())
    plan = assign_parts([p["num_train"] for p in manifest["parts"]], world)
    part_rank = np.empty(8, dtype=np.int64)
    for r, ps in enumerate(plan):
        part_rank[ps] = r
    whole = load_local_graph(str(data[1]), [0])

    def rank_fn(rank, exchange):
        g = owned(ds, plan[rank], rank, part_rank)
        x = np.asarray(load_exact_graph(str(ds), plan[rank], rank, plan).x)
        store = RowStore(rank, g.global_ids, g.num_inner, x.shape[0], x)
        sub, owner = ExactSampler(g, exchange, world, [4, 3]).sample(np.arange(0, g.num_inner, 3), 9)
        feats, stats = fetch_rows(store, exchange, world, sub.node_ids.numpy(), owner)
        return sub.node_ids.numpy(), owner, feats, stats

    for rank, (ids, owner, feats, stats) in enumerate(run_ranks(world, rank_fn)):
        assert np.array_equal(feats, np.asarray(whole.x)[ids])
        far = int((owner != rank).sum())
        assert stats.own == ids.shape[0] - far and stats.cache_hits + stats.remote == far
        assert far > 0 and (stats.cache_hits == 0 if cache == "none" else stats.cache_hits > 0)
        assert stats.bytes_in == stats.remote * 4 * feats.shape[1]


@pytest.mark.parametrize("key", [8, "8c"])
def test_one_part_as_stored_equals_the_merge(data, key):
    """A rank with one part uses the shard's own arrays (no copy); they must be exactly what
    the merge of several parts builds, owners included (and the shard's memmaps, not copies)."""
    from dist_train.data.exact_graph import _merged
    from partition import load_partition

    ds = data[key]
    plan = [[p] for p in range(8)]
    for rank in (0, 5):
        fast = load_exact_graph(str(ds), plan[rank], rank, plan)
        slow = _merged([load_partition(str(ds), rank)], [rank], rank, plan)
        assert isinstance(fast.x, np.memmap) and not isinstance(slow.x, np.memmap)
        for name in ("global_ids", "indptr", "indices", "x", "y", "degree", "train_idx",
                     "val_idx", "test_idx", "owner"):
            a, b = np.asarray(getattr(fast, name)), np.asarray(getattr(slow, name))
            # the merge narrows column ids to int32 (shards store int64): same values
            want = np.int32 if name == "indices" else a.dtype
            assert b.dtype == want and np.array_equal(a, b), name
        assert fast.num_inner == slow.num_inner and (fast.owner != rank).any()
