"""Exact layer-wise inference across ranks equals one process's forward pass on the whole graph."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from dist_helpers import run_ranks
from partition_helpers import clustered_edges, make_source

from dist_train.data.shards import assign_parts
from dist_train.exchange import Exchange
from dist_train.model.models import build_model
from dist_train.predict.exact import LayerFiles, RankParts, exact_layers
from dist_train.sampling.sampler import NeighborSampler
from partition import load_manifest, load_partition
from partition.graph.csr import build_csr
from partition.graph.partitioners import random_partition
from partition.store.format import write_dataset

N = 600


def make_graph():
    src, dst = clustered_edges(N, clusters=6, degree=6, p_out=0.25, seed=4)
    g = make_source(N, src, dst, seed=4)
    return g, build_csr(N, g.edge_chunks)


def make_model(arch: str, in_dim: int, classes: int, layers: int = 2) -> torch.nn.Module:
    torch.manual_seed(7)
    return build_model(arch, in_dim, 16, classes, layers, dropout=0.5)


def full_graph_logits(model, g, csr) -> np.ndarray:
    """One process, whole graph, the model's own forward pass (every neighbour)."""
    model.eval()
    n = g.num_nodes
    sampler = NeighborSampler(csr.indptr, csr.indices, [-1] * model.num_layers, degree=csr.degree(),
                              global_ids=np.arange(n))
    sub = sampler.sample(np.arange(n), seed=0)
    x = torch.from_numpy(np.asarray(g.x, dtype=np.float32)[sub.node_ids.numpy()])
    with torch.no_grad():
        return model(x, sub).numpy()


def _rank_infer(rank, world, data, arch, layers, work):
    manifest = load_manifest(data)
    plan = assign_parts([p["num_train"] for p in manifest["parts"]], world)
    part_rank = np.empty(manifest["num_parts"], dtype=np.int64)
    for r, ps in enumerate(plan):
        part_rank[ps] = r
    shard = RankParts([load_partition(data, p) for p in plan[rank]], part_rank, rank, world)
    model = make_model(arch, manifest["num_features"], manifest["num_classes"], layers)
    own, outs, _ = exact_layers(model, shard, Exchange(), chunk=37, device=torch.device("cpu"),
                                files=LayerFiles(work) if work else None)
    return own.gids, outs[-1]


@pytest.mark.multiproc
@pytest.mark.parametrize("hops,parts,world,arch,layers", [(0, 8, 2, "gcn", 2), (1, 8, 2, "sage", 2),
                                                         (2, 4, 3, "gcn", 3)])
def test_exact_inference_equals_the_whole_graph_forward(tmp_path, hops, parts, world, arch, layers):
    g, csr = make_graph()
    data = tmp_path / "ds"
    write_dataset(data, g, csr, random_partition(N, parts, seed=1), hops, "random", 0, num_parts=parts)
    want = full_graph_logits(make_model(arch, g.num_features, g.num_classes, layers), g, csr)
    got = np.full_like(want, np.nan)
    for gids, logits in run_ranks(_rank_infer, world, str(data), arch, layers, None, timeout=240):
        assert np.all(np.isnan(got[gids]))  # every node scored by exactly one rank
        got[gids] = logits
    assert np.abs(got - want).max() <= 1e-4
    assert np.array_equal(got.argmax(1), want.argmax(1))


def test_layer_files_reuse_only_unchanged_files(tmp_path):
    """A saved (layer, part) corrupted in place with its shape and dtype intact, or without
    its checksum (killed between the two renames), is recomputed, not reused (issue 11 review)."""
    files = LayerFiles(tmp_path)
    rows = np.arange(12, dtype=np.float32).reshape(4, 3)
    files.save(1, 2, rows)
    np.testing.assert_array_equal(files.load(1, 2, (4, 3)), rows)
    path = files.path(1, 2)
    with open(path, "r+b") as f:  # flip one byte of the last row: header and shape unchanged
        f.seek(-1, 2)
        byte = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([byte[0] ^ 0x40]))
    assert np.load(path).shape == (4, 3)
    assert files.load(1, 2, (4, 3)) is None
    files.save(1, 2, rows)  # recomputed and saved again: reused once more
    np.testing.assert_array_equal(files.load(1, 2, (4, 3)), rows)
    path.with_name(path.name + ".sha256").unlink()
    assert files.load(1, 2, (4, 3)) is None
    assert files.reused == 2
