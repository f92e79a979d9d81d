"""``train.batch_plan=global`` (issue 15): training that does not depend on the partition.

Three pieces, each tested for the property it must give, plus their sum:
the plan (a train node's batch is a function of (seed, epoch, global id)); the layer-wise
"blocks" sampling (a node's block-d neighbours do not depend on the other seeds); keyed
dropout (a row's mask does not depend on its rank or position); and so a global batch
split over simulated ranks gives one process's per-seed logits and gradient.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import test_exact_sampling
import torch
import torch.nn.functional as F
from fake_gang import run_ranks
from test_exact_sampling import owned

from dist_train.data.shards import assign_parts, load_local_graph
from dist_train.model.csr_ops import keyed_keep_mask, relu_dropout
from dist_train.model.models import GNN
from dist_train.sampling.batches import (
    batch_counts,
    global_batch_index,
    global_num_batches,
    global_sample_seed,
    plan_global_epoch,
)
from dist_train.sampling.exact import ExactSampler
from dist_train.sampling.sampler import NeighborSampler

data = test_exact_sampling.data  # the fixture: the same graph in 1, 2 and 8 parts

# ---- keyed dropout ---------------------------------------------------------------------


def test_keyed_dropout_follows_the_row_not_its_position():
    x = torch.randn(50, 12) + 0.5
    keys = torch.arange(1000, 1050, dtype=torch.int64)
    perm = torch.randperm(50)
    out = relu_dropout(x, 0.5, True, keys, batch_seed=7, layer=0)
    out_perm = relu_dropout(x[perm], 0.5, True, keys[perm], batch_seed=7, layer=0)
    assert torch.equal(out[perm], out_perm)  # same (node, column) -> same decision, any row order
    kept = (out > 0).float().mean().item()
    assert 0.35 < kept / (x > 0).float().mean().item() < 0.65  # about 1 - p of the positives
    # another layer, batch seed or node draws another mask
    assert not torch.equal(out, relu_dropout(x, 0.5, True, keys, batch_seed=7, layer=1))
    assert not torch.equal(out, relu_dropout(x, 0.5, True, keys, batch_seed=8, layer=0))
    assert not torch.equal(out, relu_dropout(x, 0.5, True, keys + 1, batch_seed=7, layer=0))
    # the host mask the GPU path multiplies by is the fused kernel's
    mask = torch.from_numpy(keyed_keep_mask(keys.numpy(), 12, 0.5, 7, 0))
    assert torch.equal(out, torch.relu(x) * mask * 2.0)


def test_keyed_dropout_backward_applies_the_forward_mask():
    x = torch.randn(30, 9, dtype=torch.float32, requires_grad=True)
    keys = torch.arange(30, dtype=torch.int64) * 3
    out = relu_dropout(x, 0.3, True, keys, batch_seed=1, layer=2)
    g = torch.randn_like(out)
    (grad,) = torch.autograd.grad(out, x, g)
    mask = torch.from_numpy(keyed_keep_mask(keys.numpy(), 9, 0.3, 1, 2)) & (x > 0)
    assert torch.allclose(grad, torch.where(mask, g / 0.7, torch.zeros_like(g)))


# ---- layer-wise blocks -----------------------------------------------------------------


def _whole(data):
    return load_local_graph(str(data[1]), [0])


def _block_neighbours(sub, d: int) -> dict[int, list[int]]:
    """Block d's chosen neighbours of each of its targets, as global ids, in order."""
    le = sub.layer_edges(sub.num_layers - 1 - d, sub.num_layers)
    ei = sub.edge_index[:, le.edges].numpy()
    ptr = le.target_ptr.numpy()
    ids = sub.keys.numpy()
    return {int(ids[t]): ids[ei[0, ptr[t]:ptr[t + 1]]].tolist() for t in range(le.num_dst)}


@pytest.mark.parametrize("fanouts", [[4, 3], [3, 2, 2]])
def test_a_nodes_block_sample_does_not_depend_on_the_other_seeds(data, fanouts):
    g = _whole(data)
    s = NeighborSampler(g.indptr, g.indices, fanouts, degree=g.degree, global_ids=g.global_ids,
                        layout="blocks")
    rng = np.random.default_rng(0)
    a = rng.choice(g.num_inner, 20, replace=False)
    b = np.setdiff1d(rng.choice(g.num_inner, 60, replace=False), a)
    alone, together = s.sample(a, 11), s.sample(np.concatenate([b, a]), 11)
    deg = np.diff(np.asarray(g.indptr))
    for d, f in enumerate(fanouts):
        small, big = _block_neighbours(alone, d), _block_neighbours(together, d)
        assert len(small) == alone.nodes_through_hop(d)  # block d targets hops 0..d
        for v, nbrs in small.items():
            assert big[v] == nbrs  # the same draw whatever else is in the batch
            assert len(nbrs) == min(deg[v], f)
    # the control: the union layout samples a seed's neighbour as a hop-1 node (fanout f[1])
    u = NeighborSampler(g.indptr, g.indices, fanouts, degree=g.degree, global_ids=g.global_ids)
    ua, ub = u.sample(a, 11), u.sample(np.concatenate([b, a]), 11)
    assert ua.nodes_through_hop(1) < ub.nodes_through_hop(1)


def test_layer_edges_of_both_layouts_cover_the_model_layers(data):
    g = _whole(data)
    seeds = np.arange(0, 60, 3)
    for layout in ("union", "blocks"):
        sub = NeighborSampler(g.indptr, g.indices, [4, 3], degree=g.degree,
                              global_ids=g.global_ids, layout=layout).sample(seeds, 2)
        top, bottom = sub.layer_edges(1, 2), sub.layer_edges(0, 2)
        assert (top.num_dst, top.num_src) == (20, sub.nodes_through_hop(1))
        assert (bottom.num_dst, bottom.num_src) == (sub.nodes_through_hop(1), sub.num_nodes)
        for le in (top, bottom):
            ei = sub.edge_index[:, le.edges]
            assert int(le.target_ptr[-1]) == ei.shape[1] and int(le.target_ptr[0]) == 0
            assert int(ei[1].max()) < le.num_dst and int(ei[0].max()) < le.num_src
        assert (bottom.edges.start == top.edges.stop) == (layout == "blocks")


# ---- the plan --------------------------------------------------------------------------


def _split(gids: np.ndarray, world: int, seed: int) -> list[np.ndarray]:
    """An arbitrary split of the train nodes over ``world`` ranks (as a partition would)."""
    owner = np.random.default_rng(seed).integers(0, world, gids.shape[0])
    return [gids[owner == r] for r in range(world)]


def _plans(parts: list[np.ndarray], batch_size: int, seed: int, epoch: int, total: int):
    nb = global_num_batches(total, batch_size)
    idx = [global_batch_index(p, seed, epoch, nb) for p in parts]
    counts = sum(batch_counts(i, nb) for i in idx)  # the all-reduce
    # local ids = positions into each rank's train gids, so a plan's seeds map back
    return [plan_global_epoch(np.arange(p.shape[0]), i, counts, nb, seed, epoch)
            for p, i in zip(parts, idx, strict=True)], nb


def test_every_train_node_in_one_batch_the_same_at_any_world_size():
    gids = np.sort(np.random.default_rng(1).choice(10**7, 3000, replace=False)).astype(np.int64)
    per_world = {}
    for world in (1, 2, 3, 8):
        plans, nb = _plans(_split(gids, world, world), 256, 5, 3, gids.shape[0])
        assert nb == 12 and all(len(p) == nb for p in plans)  # equal steps on every rank
        parts = _split(gids, world, world)
        batches = []
        for b in range(nb):
            seeds = [parts[r][p[b].seeds] for r, p in enumerate(plans) if p[b].weight > 0]
            got = np.sort(np.concatenate(seeds)) if seeds else np.empty(0, np.int64)
            assert all(p[b].global_count == got.shape[0] for p in plans)
            assert len({p[b].sample_seed for p in plans}) == 1  # rank-independent sampling seed
            assert all(p[b].sample_seed == global_sample_seed(5, 3, b) for p in plans)
            batches.append(got)
        flat = np.concatenate(batches)
        assert np.array_equal(np.sort(flat), gids)  # every node once per epoch
        per_world[world] = batches
    for world in (2, 3, 8):  # the same batches whatever the split
        assert all(np.array_equal(a, b) for a, b in zip(per_world[1], per_world[world], strict=True))
    sizes = np.array([b.shape[0] for b in per_world[1]])
    assert sizes.min() > 150 and sizes.max() < 360  # about batch_size each
    other = _plans([gids], 256, 5, 4, gids.shape[0])[0][0]  # another epoch: another split
    assert not np.array_equal(np.sort(gids[other[0].seeds]), per_world[1][0])


def test_a_rank_without_seeds_in_a_batch_takes_a_zero_weight_step():
    gids = np.arange(40, dtype=np.int64)
    plans, nb = _plans([gids[:2], gids[2:]], 4, 0, 0, 40)  # rank 0 holds 2 nodes, 10 batches
    assert nb == 10 and len(plans[0]) == 10
    empty = [b for b in plans[0] if b.weight == 0]
    assert len(empty) >= 8 and all(b.seeds.shape == (1,) for b in empty)


@pytest.mark.parametrize("before,after", [(2, 1), (1, 3), (3, 2)])
def test_resume_mid_epoch_with_another_world_size_trains_each_node_once(before, after):
    gids = np.sort(np.random.default_rng(2).choice(10**6, 1000, replace=False)).astype(np.int64)
    total = gids.shape[0]
    stop = 3
    trained = []
    for world, steps in ((before, range(stop)), (after, range(stop, 8))):
        parts = _split(gids, world, 10 + world)
        plans, nb = _plans(parts, 125, 9, 1, total)
        assert nb == 8
        trained += [parts[r][p[s].seeds] for r, p in enumerate(plans) for s in steps if p[s].weight > 0]
    assert np.array_equal(np.sort(np.concatenate(trained)), gids)


# ---- the sum: per-seed logits and the gradient of a split batch ----------------------------


def _model(in_dim: int, classes: int, layers: int, arch: str) -> GNN:
    torch.manual_seed(0)
    return GNN(arch, in_dim, 16, classes, layers, dropout=0.5).train()


def _grads(model: GNN) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters()])


@pytest.mark.parametrize("arch", ["gcn", "sage"])
@pytest.mark.parametrize("world,fanouts", [(2, [4, 3]), (3, [3, 2, 2]), (2, [-1, -1])])
def test_a_global_batch_split_over_ranks_gives_one_processs_logits_and_gradient(data, world, fanouts, arch):
    whole = _whole(data)
    x, y = np.asarray(whole.x), torch.from_numpy(np.array(whole.y, dtype=np.int64))
    num_parts = 8
    ds = data[num_parts]
    manifest = json.loads((ds / "manifest.json").read_text())
    plan = assign_parts([p["num_train"] for p in manifest["parts"]], world)
    part_rank = np.empty(num_parts, dtype=np.int64)
    for r, ps in enumerate(plan):
        part_rank[ps] = r
    batch_seed = global_sample_seed(0, 0, 0)
    classes = int(y.max()) + 1

    def rank_fn(rank, exchange, layout="blocks"):
        g = owned(ds, plan[rank], rank, part_rank)
        # the global batch: global ids below 240 with an even id, split by owner
        seeds = np.flatnonzero((g.global_ids[: g.num_inner] < 240) & (g.global_ids[: g.num_inner] % 2 == 0))
        sub, _ = ExactSampler(g, exchange, world, fanouts, layout=layout).sample(seeds, batch_seed)
        return g.global_ids[seeds], sub

    ranks = run_ranks(world, rank_fn)
    total = sum(s.shape[0] for s, _ in ranks)
    assert total == 120 and all(s.shape[0] > 0 for s, _ in ranks)

    # one process on the whole batch
    all_seeds = np.concatenate([s for s, _ in ranks])
    ref_sub = NeighborSampler(whole.indptr, whole.indices, fanouts, degree=whole.degree,
                              global_ids=whole.global_ids, layout="blocks").sample(all_seeds, batch_seed)
    ref = _model(x.shape[1], classes, len(fanouts), arch)
    ref_logits = ref(torch.from_numpy(x[ref_sub.node_ids.numpy()]), ref_sub)
    (F.cross_entropy(ref_logits, y[all_seeds], reduction="sum") / total).backward()

    start, grads = 0, []
    for gids, sub in ranks:
        m = _model(x.shape[1], classes, len(fanouts), arch)
        logits = m(torch.from_numpy(x[sub.node_ids.numpy()]), sub)
        want = ref_logits[start:start + gids.shape[0]]
        assert torch.allclose(logits, want, atol=1e-5, rtol=0), (logits - want).abs().max()
        # the trainer's scaling: loss sum x world / global count, then DDP's mean
        (F.cross_entropy(logits, y[gids], reduction="sum") * world / total).backward()
        grads.append(_grads(m))
        start += gids.shape[0]
    mean = torch.stack(grads).mean(0)
    assert torch.allclose(mean, _grads(ref), atol=1e-6, rtol=1e-4)

    if fanouts != [-1, -1]:  # the control: the union layout gives other per-seed logits
        union = run_ranks(world, lambda r, ex: rank_fn(r, ex, "union"))
        gids0, sub0 = union[0]
        m = _model(x.shape[1], classes, len(fanouts), arch).eval()
        whole_u = NeighborSampler(whole.indptr, whole.indices, fanouts, degree=whole.degree,
                                  global_ids=whole.global_ids).sample(all_seeds, batch_seed)
        with torch.no_grad():
            a = m(torch.from_numpy(x[sub0.node_ids.numpy()]), sub0)
            b = m(torch.from_numpy(x[whole_u.node_ids.numpy()]), whole_u)[: gids0.shape[0]]
        assert not torch.allclose(a, b, atol=1e-5)


def test_a_resume_on_another_world_size_says_what_the_global_plan_does():
    """The rank plan's line says the rest is re-planned; under the global plan nothing is
    (review of issue 15): the line must say the batches are the uninterrupted run's."""
    from dist_train.loop.resume import resumed_segments

    _, line = resumed_segments([], 2, 3, epoch=1, step=63, global_plan=True)
    assert "after its step 62" in line and "re-planned" not in line
    assert "the ones an uninterrupted run trains" in line
    _, rank_line = resumed_segments([], 2, 3, epoch=1, step=63)
    assert "re-planned" in rank_line
    assert resumed_segments([], 3, 3, epoch=1, step=63, global_plan=True)[1] is None
