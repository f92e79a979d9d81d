"""Issue 10: inner nodes, edges and train nodes balanced however sparse the labels.

The issue's examples (600 nodes / 6 train / 2 parts; 4,000 nodes / 1% train / 8 parts)
and other members of the kind: other sizes, part counts, train fractions, train nodes
that follow the graph's clusters, ``--metis-max-edges`` sampling, ``--method random``,
``--method kaminpar`` (issue 12; one thread where the test repeats it, the only way it
reproduces, on the graphs where its single weight plus the refinement gets within bounds:
4,000 nodes / 1% train / 8 parts leaves train nodes at 1.4, see README).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from partition_helpers import chunked, clustered_edges

from partition.graph import kaminpar as kmp_mod
from partition.graph.csr import build_csr
from partition.graph.metis import metis_kway
from partition.graph.partitioners import balance_weights, partition_nodes, partition_stats
from partition.readers.source_graph import split_mask
from partition.readers.synthetic import make_synthetic, parse_synthetic_spec

BOUND = 1.10  # the issue's bound on each max/mean
NEEDS_KAMINPAR = pytest.mark.skipif(importlib.util.find_spec("kaminpar") is None,
                                    reason="kaminpar is not installed")


def _graph(spec: str):
    g = make_synthetic(parse_synthetic_spec(spec))  # Pareto (power-law) degrees
    return build_csr(g.num_nodes, g.edge_chunks), split_mask(g.num_nodes, g.train_idx)


def _imbalances(stats: dict) -> tuple[float, float, float]:
    return stats["node_imbalance"], stats["edge_imbalance"], stats["train_imbalance"]


@pytest.mark.parametrize(("spec", "num_parts", "method", "max_edges"), [
    ("nodes=600,train=0.01", 2, "metis", None),  # the issue's first example (6 train nodes)
    ("nodes=4000,train=0.01", 8, "metis", None),  # its second: 40 train nodes
    ("nodes=4000,train=0.01", 4, "metis", 5000),  # METIS on a quarter of the edges
    ("nodes=3000,train=0.6", 3, "metis", None),
    ("nodes=20000,train=0.02,degree=8", 16, "metis", None),
    ("nodes=20000,train=0.005,local=0.96", 5, "metis", 20000),
    ("nodes=4000,train=0.01", 8, "random", None),
    ("nodes=20000,train=0.6", 16, "random", None),
    pytest.param("nodes=600,train=0.01", 2, "kaminpar", None, marks=NEEDS_KAMINPAR),
    pytest.param("nodes=3000,train=0.6", 3, "kaminpar", None, marks=NEEDS_KAMINPAR),
    pytest.param("nodes=20000,train=0.005,local=0.96", 5, "kaminpar", None, marks=NEEDS_KAMINPAR),
])
def test_three_balances_hold_with_sparse_and_dense_labels(spec, num_parts, method, max_edges,
                                                          monkeypatch):
    monkeypatch.setattr(kmp_mod, "default_threads", lambda: 1)  # reproducible: asserted below
    csr, train = _graph(spec)
    parts = partition_nodes(method, csr, num_parts, train, seed=0, max_edges=max_edges)
    stats = partition_stats(csr, parts, train, num_parts)
    assert max(_imbalances(stats)) <= BOUND, (_imbalances(stats), stats["parts"])
    np.testing.assert_array_equal(parts, partition_nodes(method, csr, num_parts, train, 0,
                                                         max_edges=max_edges))


def test_train_nodes_that_follow_the_clusters_are_still_balanced():
    """Train = clusters 0, 2, 4 only: one combined weight, or plain METIS plus moves, gave 1.9."""
    src, dst = clustered_edges(3000, clusters=6, degree=24, p_out=0.05, seed=4)
    csr = build_csr(3000, chunked(src, dst))
    train = np.arange(3000) % 2 == 0
    stats = partition_stats(csr, partition_nodes("metis", csr, 6, train, 0), train, 6)
    assert max(_imbalances(stats)) <= 1.05 + 1e-9, _imbalances(stats)


def test_multi_constraint_metis_balances_each_column():
    """metis_kway gets one constraint per column: a column METIS alone would ignore is kept."""
    csr, train = _graph("nodes=4000,train=0.01")
    w = balance_weights(csr, train)
    plain = partition_stats(csr, metis_kway(csr, 8, w[:, :0], 0), train, 8)
    multi = partition_stats(csr, metis_kway(csr, 8, w, 0), train, 8)
    assert plain["train_imbalance"] > 1.2 and plain["edge_imbalance"] > 1.2  # what is at stake
    assert max(_imbalances(multi)) <= 1.05, _imbalances(multi)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["metis", pytest.param("kaminpar", marks=NEEDS_KAMINPAR)])
@pytest.mark.parametrize("train", [0.01, 0.6])
def test_issue_graph_balanced_within_cut_budget(train, method):
    """10^5-node power-law graph, 8 and 32 parts: each balance <= 1.10, cut <= 1.15x plain METIS."""
    csr, mask = _graph(f"nodes=100000,train={train}")
    empty = np.zeros((csr.num_nodes, 0), dtype=np.int64)
    for num_parts in (8, 32):
        ours = partition_stats(csr, partition_nodes(method, csr, num_parts, mask, 0), mask, num_parts)
        plain = partition_stats(csr, metis_kway(csr, num_parts, empty, 0), mask, num_parts)
        assert max(_imbalances(ours)) <= BOUND, (num_parts, _imbalances(ours))
        assert ours["edge_cut"] <= 1.15 * plain["edge_cut"], (num_parts, ours["edge_cut"], plain["edge_cut"])


def test_cli_reports_the_three_imbalances_in_manifest_and_summary(tmp_path, capsys):
    from partition import load_manifest
    from partition.cli import main

    out = tmp_path / "ds"
    assert main(["--input", "synthetic:nodes=600,train=0.01,features=4", "--num-parts", "2",
                 "--out", str(out), "--quiet"]) == 0
    stdout = capsys.readouterr().out
    m = load_manifest(out)
    inner = [q["num_inner"] for q in m["parts"]]
    train = [q["num_train"] for q in m["parts"]]
    assert m["node_imbalance"] == pytest.approx(max(inner) / np.mean(inner))
    assert m["train_imbalance"] == pytest.approx(max(train) / np.mean(train))
    assert max(m["node_imbalance"], m["edge_imbalance"], m["train_imbalance"]) <= BOUND
    assert (f"imbalance (max/mean): inner nodes {m['node_imbalance']:.3f}, edges "
            f"{m['edge_imbalance']:.3f}, train nodes {m['train_imbalance']:.3f}") in stdout
    assert "warning" not in stdout


def test_summary_warns_about_empty_parts_and_imbalance_above_the_bound():
    from partition.progress import summary_table

    def part(i: int, inner: int) -> dict:
        return {"part_id": i, "num_inner": inner, "num_halo": 0, "num_edges": 0, "num_train": 0}

    manifest = {"parts": [part(0, 5), part(1, 0), part(2, 4), part(3, 0)], "edge_cut_ratio": 0.1,
                "edge_cut": 1, "num_edges": 10, "method": "metis", "halo_hops": 1,
                "node_imbalance": 2.0, "edge_imbalance": 2.0, "train_imbalance": 1.0,
                "timings_s": {}, "files": {}, "num_parts": 4, "num_nodes": 9, "num_train": 0,
                "num_val": 0, "num_test": 0, "num_features": 1}
    lines = summary_table(manifest, "ds", 0).splitlines()
    assert [line for line in lines if line.startswith("warning:")] == [
        "warning: inner node imbalance 2.000 is above 1.10 (max/mean over 4 parts; parts this "
        "small cannot share the inner nodes evenly, fewer parts can)",
        "warning: edge imbalance 2.000 is above 1.10 (max/mean over 4 parts; parts this small "
        "cannot share the edges evenly, fewer parts can)",
        "warning: 2 of 4 parts have no inner node (part 1, 3); a rank given only empty parts "
        "trains on nothing: use fewer parts"]
    manifest.update(parts=[part(0, 5), part(1, 4)], num_parts=2, node_imbalance=1.1,
                    edge_imbalance=1.0)
    assert "warning" not in summary_table(manifest, "ds", 0)


def test_metis_diagnostics_stay_off_stdout(capfd):
    """Multi-constraint METIS printf()s '***Cannot bisect...' on tiny graphs; not into the summary."""
    csr, train = _graph("nodes=600,train=0.01")
    parts = metis_kway(csr, 32, balance_weights(csr, train), 0)
    print("after", flush=True)
    out = capfd.readouterr().out
    assert out == "after\n", out
    assert parts.shape == (600,) and parts.max() < 32

