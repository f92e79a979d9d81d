"""Issue 10: METIS on a contracted graph when METIS on every node would not fit.

The contraction path must give a valid partition (every node in exactly one part,
the three balances within 1.10, the same parts for the same seed), a cut close to
plain METIS's, and be chosen by the documented rule only.
"""

from __future__ import annotations

import numpy as np
import pytest

from partition.graph.coarsen import (
    AUTO_MIN_BYTES,
    contract,
    contracted_edges,
    contraction_target,
    metis_bytes,
)
from partition.graph.csr import build_csr
from partition.graph.metis import metis_kway
from partition.graph.partitioners import balance_weights, partition_nodes, partition_stats
from partition.readers.source_graph import split_mask
from partition.readers.synthetic import make_synthetic, parse_synthetic_spec

BOUND = 1.10


def _graph(spec: str):
    g = make_synthetic(parse_synthetic_spec(spec))
    return build_csr(g.num_nodes, g.edge_chunks), split_mask(g.num_nodes, g.train_idx)


@pytest.mark.parametrize(("spec", "num_parts"), [
    ("nodes=20000,train=0.01", 8),
    ("nodes=20000,train=0.6,degree=8", 4),
    ("nodes=30000,train=0.02,local=0.96", 16),
])
def test_contracted_partition_is_valid_balanced_and_deterministic(spec, num_parts):
    csr, train = _graph(spec)
    target = csr.num_nodes // 16
    parts = partition_nodes("metis", csr, num_parts, train, 3, max_nodes=target)
    assert parts.shape == (csr.num_nodes,) and parts.min() >= 0 and parts.max() < num_parts
    stats = partition_stats(csr, parts, train, num_parts)
    assert max(stats["node_imbalance"], stats["edge_imbalance"], stats["train_imbalance"]) <= BOUND
    assert min(q["num_inner"] for q in stats["parts"]) > 0
    np.testing.assert_array_equal(parts, partition_nodes("metis", csr, num_parts, train, 3,
                                                         max_nodes=target))
    plain = partition_stats(csr, metis_kway(csr, num_parts, np.zeros((csr.num_nodes, 0), np.int64), 0),
                            train, num_parts)
    assert stats["edge_cut"] <= 1.25 * plain["edge_cut"], (stats["edge_cut"], plain["edge_cut"])


def test_cluster_graph_keeps_weights_and_cut_edges():
    """Summed vertex weights equal the graph's; cluster-graph edge weight = edges between clusters."""
    csr, train = _graph("nodes=5000,train=0.05")
    w = balance_weights(csr, train)
    small, adjw, cw, cluster = contract(csr, w, 4, 500, seed=1)
    assert small.num_nodes < csr.num_nodes and cluster.shape == (csr.num_nodes,)
    np.testing.assert_array_equal(cw.sum(axis=0), w.sum(axis=0))
    np.testing.assert_array_equal(cw, np.stack([np.bincount(cluster, weights=w[:, q], minlength=small.num_nodes)
                                                for q in range(3)], axis=1).astype(np.int64))
    src = np.repeat(np.arange(csr.num_nodes), csr.degree())
    crossing = cluster[src] != cluster[csr.indices]
    assert int(adjw.sum()) == int(crossing.sum())  # every crossing edge, both directions
    rows = np.repeat(np.arange(small.num_nodes), small.degree())
    assert not np.any(rows == small.indices)  # no self loops
    assert np.all(cw.max(axis=0) <= np.maximum(w.sum(axis=0) // (4 * 32), w.max(axis=0)))


@pytest.mark.parametrize(("nodes", "edges"), [(200_000, 0), (200_000, 20_000), (200_000, 80_000)])
def test_isolated_nodes_and_small_components_are_contracted(nodes, edges):
    """Edgeless vertices are grouped under the cap, so a sparse graph contracts to the target.

    Label propagation cannot move a vertex without edges: before bundling, a graph of
    mostly isolated nodes or tiny components (mean degree < 1) stayed near N vertices,
    and METIS spent a minute on the singletons (2.5·10^6 nodes / 10^6 edges: 70 s -> 6 s).
    """
    rng = np.random.default_rng(5)
    ei = rng.integers(0, nodes, size=(2, edges))
    csr = build_csr(nodes, lambda: [(ei[0], ei[1])] if edges else [])
    train = rng.random(nodes) < 0.3
    w = balance_weights(csr, train)
    num_parts, target = 8, nodes // 16
    small, adjw, cw, cluster = contract(csr, w, num_parts, target, seed=2)
    assert small.num_nodes <= target, small.num_nodes
    np.testing.assert_array_equal(cw.sum(axis=0), w.sum(axis=0))
    cap = np.maximum(w.sum(axis=0) // (num_parts * 32), 1)
    assert np.all(cw.max(axis=0) <= np.maximum(cap, w.max(axis=0))), (cw.max(axis=0), cap)
    src = np.repeat(np.arange(nodes), csr.degree())
    assert int(adjw.sum()) == int((cluster[src] != cluster[csr.indices]).sum())
    parts = partition_nodes("metis", csr, num_parts, train, 3, max_nodes=target)
    stats = partition_stats(csr, parts, train, num_parts)
    assert max(stats["node_imbalance"], stats["edge_imbalance"], stats["train_imbalance"]) <= BOUND
    plain = partition_stats(csr, metis_kway(csr, num_parts, np.zeros((nodes, 0), np.int64), 0),
                            train, num_parts)
    assert stats["edge_cut"] <= max(1.25 * plain["edge_cut"], 50), (stats["edge_cut"], plain["edge_cut"])


def test_contraction_bounds_the_edges_metis_sees_on_a_graph_without_locality():
    """Uniform random ends: one level reached the node target but kept ~40% of the edges
    (METIS on them was 3x the estimate's allowance); with the edge bound it goes on."""
    nodes, edges, num_parts = 100_000, 500_000, 8
    ei = np.random.default_rng(9).integers(0, nodes, size=(2, edges))
    csr = build_csr(nodes, lambda: [(ei[0], ei[1])])
    w = balance_weights(csr, np.zeros(nodes, dtype=bool))
    target = nodes // 16
    unbounded, *_ = contract(csr, w, num_parts, target, seed=4)
    assert unbounded.num_edges > 0.2 * csr.num_edges  # the case the bound is for
    bound = contracted_edges(csr.num_nodes, csr.num_edges, target)
    small, adjw, cw, cluster = contract(csr, w, num_parts, target, seed=4, max_edges=bound)
    # what the estimate allows METIS (clusters have a floor size, so the edge count alone
    # can stay a little above the bound on a near-complete cluster graph)
    assert small.num_nodes <= target and small.num_edges < unbounded.num_edges / 3
    assert metis_bytes(small.num_nodes, small.num_edges) <= metis_bytes(target, bound), \
        (small.num_nodes, small.num_edges, bound)
    parts = partition_nodes("metis", csr, num_parts, np.zeros(nodes, dtype=bool), 3, max_nodes=target)
    plain = metis_kway(csr, num_parts, np.zeros((nodes, 0), np.int64), 0)
    train = np.zeros(nodes, dtype=bool)
    # measured 1.075x plain METIS here (1.092x without the edge bound); 1.25x is the
    # contraction's documented allowance (the test above)
    assert partition_stats(csr, parts, train, num_parts)["edge_cut"] <= \
        1.10 * partition_stats(csr, plain, train, num_parts)["edge_cut"]


def test_rule_keeps_plain_metis_on_small_graphs():
    assert contraction_target(100_000, 1_000_000, 0, None) is None  # estimate below 256 MiB
    assert metis_bytes(10**6, 7 * 10**6) > AUTO_MIN_BYTES
    assert contraction_target(10**6, 7 * 10**6, 256 << 20, None) == 10**6 // 16
    assert contraction_target(10**6, 7 * 10**6, 4 << 30, None) is None  # features are bigger
    assert contraction_target(1000, 5000, 0, 200) == 200
    assert contraction_target(1000, 5000, 0, 2000) is None


def test_cli_metis_max_nodes(tmp_path, capsys):
    from partition import load_manifest
    from partition.cli import main

    out = tmp_path / "ds"
    assert main(["--input", "synthetic:nodes=3000,train=0.05,features=4", "--num-parts", "4",
                 "--metis-max-nodes", "200", "--out", str(out), "--quiet"]) == 0
    m = load_manifest(out)
    assert sum(q["num_inner"] for q in m["parts"]) == 3000
    assert max(m["node_imbalance"], m["edge_imbalance"], m["train_imbalance"]) <= BOUND
    assert main(["--input", "synthetic:nodes=300", "--metis-max-nodes", "0",
                 "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    assert "--metis-max-nodes: 0 is not >= 1" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_contraction_holds_no_int64_per_edge_temporary():
    """Memory regression (tracemalloc sees numpy's buffers): under 4 bytes per CSR entry.

    At degree 60 a materialised int64 unit-weight array (8 B/entry) or an int64 copy of
    the column ids alone would break this bound; measured 1.7 B/entry. Deterministic,
    timing-free.
    """
    import tracemalloc

    csr, train = _graph("nodes=20000,train=0.01,degree=60")
    w = balance_weights(csr, train)
    contract(csr, w, 8, 1000, 0)  # compile outside the trace
    tracemalloc.start()
    try:
        contract(csr, w, 8, 1000, 0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    nnz = csr.indices.shape[0]
    assert peak <= 4 * nnz + 200 * csr.num_nodes, (peak, nnz, csr.num_nodes)


def test_full_csr_is_parked_while_metis_runs_on_the_clusters(tmp_path, monkeypatch):
    """With a scratch folder the full graph is out of memory while METIS runs (the stage's
    peak), comes back equal, and the parts are those of a run that kept it in memory."""
    import partition.graph.partitioners as pa

    csr, train = _graph("nodes=20000,train=0.01")
    ptr, idx = csr.indptr.copy(), csr.indices.copy()
    held = []
    real = pa.metis_kway

    def metis(graph, *args, **kwargs):
        held.append(csr.indices.shape[0])
        return real(graph, *args, **kwargs)

    monkeypatch.setattr(pa, "metis_kway", metis)
    parked = partition_nodes("metis", csr, 8, train, 3, max_nodes=1000, scratch=tmp_path)
    assert held == [0]  # parked during METIS
    np.testing.assert_array_equal(csr.indptr, ptr)
    np.testing.assert_array_equal(csr.indices, idx)
    assert csr.indices.dtype == idx.dtype and list(tmp_path.iterdir()) == []
    kept = partition_nodes("metis", csr, 8, train, 3, max_nodes=1000)
    assert held[1] == idx.shape[0]
    np.testing.assert_array_equal(parked, kept)


def test_parked_csr_comes_back_when_metis_fails(tmp_path, monkeypatch):
    import partition.graph.partitioners as pa

    csr, train = _graph("nodes=20000,train=0.01")
    idx = csr.indices.copy()

    def broken(*args, **kwargs):
        raise RuntimeError("METIS_PartGraphKway failed")

    monkeypatch.setattr(pa, "metis_kway", broken)
    with pytest.raises(RuntimeError):
        partition_nodes("metis", csr, 8, train, 3, max_nodes=1000, scratch=tmp_path)
    np.testing.assert_array_equal(csr.indices, idx)
    assert list(tmp_path.iterdir()) == []


def test_relabel_is_uniques_inverse():
    from partition.graph.coarsen import _relabel

    labels = np.random.default_rng(0).integers(0, 500, 1000) * 2  # gaps, repeats, in [0, n)
    cluster, k = _relabel(labels)
    uniq, inverse = np.unique(labels, return_inverse=True)
    assert k == uniq.shape[0]
    np.testing.assert_array_equal(cluster, inverse)


def test_a_full_scratch_disk_while_parking_names_the_file(tmp_path, monkeypatch):
    """ENOSPC while the CSR is written to scratch is an OSError naming that file (the CLI's
    one line), and no partial file is left."""
    import builtins
    import errno

    from partition.graph.csr import CSR
    from partition.graph.spill import ParkedCSR

    csr = CSR(np.array([0, 1, 2], dtype=np.int64), np.array([1, 0], dtype=np.int32))
    real_open = builtins.open

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(builtins, "open", lambda p, m="r", *a, **k: Full(real_open(p, m, *a, **k))
                        if "w" in m and str(p).endswith(".bin") else real_open(p, m, *a, **k))
    parked = ParkedCSR(csr, tmp_path)
    with pytest.raises(OSError) as info:
        parked.park()
    assert info.value.filename == str(parked.path) and info.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == [] and csr.indices.shape[0] == 2  # nothing parked
