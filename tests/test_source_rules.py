"""Issue 10, the data half: every reader under the same rules for splits, labels and features.

Each row of the issue's table is a test here, with other members of its kind (other
dtypes, sentinels, layouts): OGB's binary layout, unlabelled nodes, mask conventions,
values a stored dtype cannot hold, an empty train split, sparse ``x``, edge weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from partition import load_manifest, load_partition
from partition.cli import main as partition_main
from partition.errors import InputError
from partition.readers import features as features_mod
from partition.readers import npz_stream
from partition.readers.features import FeatureOptions
from partition.readers.sources import read_source
from tests.test_sources import (
    EDGES,
    SPLITS,
    X,
    Y,
    edges_of,
    expect_error,
    write_gz,
    write_npy,
    write_ogb,
)

RNG = np.random.default_rng(7)


# ---------------------------------------------------------------- OGB binary layout

def make_graph(n: int = 300, f: int = 6, unlabelled: float = 0.5):
    """A random graph with NaN labels on a share of nodes, splits on labelled nodes only."""
    src = RNG.integers(0, n, 4 * n)
    dst = RNG.integers(0, n, 4 * n)
    x = RNG.standard_normal((n, f)).astype(np.float32)
    y = RNG.integers(0, 5, n).astype(np.float64)
    y[RNG.random(n) < unlabelled] = np.nan
    labelled = RNG.permutation(np.flatnonzero(~np.isnan(y)))
    k = labelled.size
    splits = {"train": labelled[: k // 2], "valid": labelled[k // 2: 3 * k // 4],
              "test": labelled[3 * k // 4:]}
    return np.stack([src, dst]).astype(np.int64), x, y, splits


def write_ogb_binary(d: Path, edge_index, x, y, splits, compressed: bool = True) -> Path:

    save = np.savez_compressed if compressed else np.savez
    (d / "raw").mkdir(parents=True)
    n = x.shape[0]
    save(d / "raw" / "data.npz", edge_index=edge_index, node_feat=x,
         num_nodes_list=np.array([n]), num_edges_list=np.array([edge_index.shape[1]]),
         node_year=np.zeros((n, 1), dtype=np.int64))
    save(d / "raw" / "node-label.npz", node_label=y.reshape(-1, 1))
    for name, ids in splits.items():
        write_gz(d / "split" / "time" / f"{name}.csv.gz", [str(v) for v in ids])
    return d


def write_ogb_csv(d: Path, edge_index, x, y, splits) -> Path:

    write_gz(d / "raw" / "edge.csv.gz", [f"{a},{b}" for a, b in edge_index.T])
    write_gz(d / "raw" / "node-feat.csv.gz", [",".join(repr(float(v)) for v in row) for row in x])
    write_gz(d / "raw" / "node-label.csv.gz", ["nan" if np.isnan(v) else str(int(v)) for v in y])
    for name, ids in splits.items():
        write_gz(d / "split" / "time" / f"{name}.csv.gz", [str(v) for v in ids])
    return d


def _no_whole_npz_load(monkeypatch):
    real = np.load

    def guarded(file, *args, **kwargs):
        assert not str(file).endswith(".npz"), f"np.load of a whole npz: {file}"
        return real(file, *args, **kwargs)

    monkeypatch.setattr(np, "load", guarded)


@pytest.mark.parametrize("compressed", [True, False], ids=["deflated", "stored"])
def test_ogb_binary_layout_streams_and_equals_csv_layout(tmp_path, monkeypatch, compressed):
    edge_index, x, y, splits = make_graph()
    binary = write_ogb_binary(tmp_path / "bin", edge_index, x, y, splits, compressed)
    csv = write_ogb_csv(tmp_path / "csv", edge_index, x, y, splits)
    monkeypatch.setattr(npz_stream, "CHUNK_BYTES", 40)  # many chunks, rows split across reads
    monkeypatch.setattr(features_mod, "BLOCK_BYTES", 100)
    _no_whole_npz_load(monkeypatch)
    a, b = read_source(f"ogb:{binary}"), read_source(f"ogb:{csv}")
    np.testing.assert_array_equal(edges_of(a), edges_of(b))
    np.testing.assert_array_equal(edges_of(a), edge_index)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert a.num_unlabelled == int(np.isnan(y).sum()) > 0
    assert (a.y[np.isnan(y)] == -1).all()
    for k in ("train_idx", "val_idx", "test_idx"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))


def test_ogb_binary_shards_equal_csv_shards(tmp_path):
    edge_index, x, y, splits = make_graph(n=200)
    out = {}
    for layout, write in (("bin", write_ogb_binary), ("csv", write_ogb_csv)):
        src = write(tmp_path / layout, edge_index, x, y, splits)
        out[layout] = tmp_path / f"ds-{layout}"
        assert partition_main(["--input", f"ogb:{src}", "--num-parts", "3", "--out",
                               str(out[layout]), "--quiet"]) == 0
    ma, mb = load_manifest(out["bin"]), load_manifest(out["csv"])
    assert ma["num_unlabelled"] == mb["num_unlabelled"] == int(np.isnan(y).sum())
    for rel, rec in ma["files"].items():
        assert rec["sha256"] == mb["files"][rel]["sha256"], rel


def test_ogb_layout_names_the_missing_file(tmp_path):
    edge_index, x, y, splits = make_graph(n=50)
    d = write_ogb_binary(tmp_path / "o", edge_index, x, y, splits)
    (d / "raw" / "node-label.npz").unlink()
    expect_error(lambda: read_source(f"ogb:{d}"), "node-label.npz", "no such file")
    (d / "raw" / "data.npz").unlink()
    expect_error(lambda: read_source(f"ogb:{d}"), "data.npz", "edge.csv.gz")
    np.savez(d / "raw" / "data.npz", edge_index=edge_index, num_nodes_list=np.array([50]))
    np.savez(d / "raw" / "node-label.npz", node_label=y)
    expect_error(lambda: read_source(f"ogb:{d}"), "data.npz", "node_feat", "edge_index")
    (d / "raw" / "data.npz").write_bytes(b"not a zip")
    expect_error(lambda: read_source(f"ogb:{d}"), "data.npz", "cannot read")


def test_ogb_binary_truncated_member_is_one_line(tmp_path):
    edge_index, x, y, splits = make_graph(n=50)
    d = write_ogb_binary(tmp_path / "o", edge_index, x, y, splits, compressed=False)
    import zipfile

    with zipfile.ZipFile(d / "raw" / "node-label.npz", "w") as zf:  # header says 50 rows, data has 10
        import io

        buf = io.BytesIO()
        np.save(buf, y.reshape(-1, 1))
        zf.writestr("node_label.npy", buf.getvalue()[:-40 * 8])
    expect_error(lambda: read_source(f"ogb:{d}"), "node_label", "truncated")


# ---------------------------------------------------------------- unlabelled nodes

@pytest.mark.parametrize("y", [
    np.array([0, 1, 0, 1, np.nan, 2.0]),          # NaN (OGB, float labels)
    np.array([0, 1, 0, 1, -1, 2]),                 # -1 (int)
    np.array([0, 1, 0, 1, -100, 2], dtype=np.int32),  # any negative value
    np.array([[0], [1], [0], [1], [np.nan], [2]]),  # (N, 1) as OGB stores it
], ids=["nan", "minus-one", "negative-int32", "nan-column"])
def test_unlabelled_nodes_are_kept_outside_splits(tmp_path, y):
    splits = {"train_idx": np.array([0, 1, 2]), "val_idx": np.array([3]), "test_idx": np.array([5])}
    d = write_npy(tmp_path / "g", y=y, **splits)
    g = read_source(f"npy:{d}")
    np.testing.assert_array_equal(g.y, [0, 1, 0, 1, -1, 2])
    assert g.num_unlabelled == 1 and g.num_nodes == 6 and g.x.shape == (6, 3)
    np.testing.assert_array_equal(edges_of(g), EDGES)  # the unlabelled node keeps its edges


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_split_node_without_label_names_split_and_node(tmp_path, split):
    y = Y.astype(np.float64)
    node = int(SPLITS[split][0])
    y[node] = np.nan
    d = write_npy(tmp_path / "g", y=y)
    expect_error(lambda: read_source(f"npy:{d}"), f"{split} split", "no label", f"node {node}")


def test_random_split_only_takes_labelled_nodes(tmp_path):
    y = np.where(np.arange(6) % 2 == 0, -1, 1)
    g = read_source(f"npy:{write_npy(tmp_path / 'g', splits=False, y=y)}")
    chosen = np.concatenate([g.train_idx, g.val_idx, g.test_idx])
    assert set(chosen.tolist()) == {1, 3, 5}


def test_unlabelled_counted_in_manifest_and_summary(tmp_path, capsys):
    y = Y.astype(np.float64)
    y[4] = np.nan
    d = write_npy(tmp_path / "g", y=y, test_idx=np.array([5]))
    assert partition_main(["--input", f"npy:{d}", "--num-parts", "2", "--out", str(tmp_path / "ds"),
                           "--quiet"]) == 0
    assert "unlabelled nodes: 1" in capsys.readouterr().out
    m = load_manifest(tmp_path / "ds")
    assert m["num_unlabelled"] == 1
    ys = np.concatenate([load_partition(tmp_path / "ds", p).y for p in range(2)])
    assert (ys == -1).sum() >= 1 and set(ys.tolist()) <= {-1, 0, 1, 2}


# ---------------------------------------------------------------- split conventions

@pytest.mark.parametrize("sentinel", [10**9, 999])
def test_label_beyond_the_node_count_is_refused(tmp_path, capsys, sentinel):
    """A label >= N (a node id, or a sentinel like 999 for 'unlabelled') would make the
    trainer build an output layer of that many classes; refused naming node and value."""
    y = Y.copy()
    y[3] = sentinel
    d = write_npy(tmp_path / "g", y=y)
    code = partition_main(["--input", f"npy:{d}", "--out", str(tmp_path / "ds"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and f"label {sentinel} at node 3" in err[0]
    assert not (tmp_path / "ds").exists()
    y[3] = Y.shape[0] - 1  # the largest class id N nodes can have is still read
    read_source(f"npy:{write_npy(tmp_path / 'h', y=y)}")


def _pt(tmp_path: Path, **fields) -> str:
    data = Data(edge_index=torch.from_numpy(EDGES), x=torch.from_numpy(X), y=torch.from_numpy(Y),
                **fields)
    torch.save(data, tmp_path / "g.pt")
    return f"pt:{tmp_path / 'g.pt'}"


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.int32, torch.bool])
def test_integer_mask_is_a_mask(tmp_path, dtype):
    mask = torch.zeros(6, dtype=dtype)
    mask[[0, 1, 2]] = 1
    g = read_source(_pt(tmp_path, train_mask=mask, val_idx=torch.tensor([3]),
                        test_index=torch.tensor([4, 5])))
    np.testing.assert_array_equal(g.train_idx, [0, 1, 2])  # not the ids {0, 1}
    np.testing.assert_array_equal(g.test_idx, [4, 5])


@pytest.mark.parametrize("fields,needles", [
    ({"train_mask": torch.tensor([0, 2, 1, 0, 0, 0])}, ["train_mask", "only 0 and 1", "node 1"]),
    ({"train_mask": torch.tensor([1, 1, 0, 0, 0])}, ["train_mask", "5 entries", "expected 6"]),
    ({"train_mask": torch.tensor([1.0, 1, 0, 0, 0, 0])}, ["train_mask", "bool or integer"]),
    ({"train_idx": torch.tensor([True, True, False, False, False, False])}, ["train_idx", "*_mask"]),
    ({"train_idx": torch.tensor([1, 1, 0, 0, 0, 0])}, ["train_idx", "node 0 listed more than once",
                                                        "*_mask"]),
    ({"train_idx": torch.tensor([0, 1]), "train_mask": torch.tensor([1, 1, 1, 0, 0, 0])},
     ["train_mask", "train_idx", "disagree"]),
], ids=["value-2", "wrong-length", "float-mask", "bool-ids", "0/1-named-idx", "mask-and-ids-disagree"])
def test_ambiguous_splits_refused_by_name(tmp_path, fields, needles):
    spec = _pt(tmp_path, val_idx=torch.tensor([3]), test_idx=torch.tensor([5]), **fields)
    expect_error(lambda: read_source(spec), *needles)


def test_npy_accepts_mask_files(tmp_path):
    masks = {f"{k}_mask": np.isin(np.arange(6), v).astype(np.uint8) for k, v in SPLITS.items()}
    masks["val_mask"] = masks["val_mask"].astype(bool)
    g = read_source(f"npy:{write_npy(tmp_path / 'g', splits=False, **masks)}")
    for got, name in zip((g.train_idx, g.val_idx, g.test_idx), SPLITS, strict=True):
        np.testing.assert_array_equal(got, np.sort(SPLITS[name]))
    bad = masks | {"test_mask": np.array([0, 0, 0, 0, 3, 1])}
    d = write_npy(tmp_path / "h", splits=False, **bad)
    expect_error(lambda: read_source(f"npy:{d}"), "test_mask.npy", "only 0 and 1")


# ---------------------------------------------------------------- feature values and dtypes

@pytest.mark.parametrize("value,dtype", [(1e39, "float32"), (-1e39, "float32"), (7e4, "float16"),
                                         (-7e4, "float16"), (1e39, "bfloat16")])
def test_value_the_stored_dtype_cannot_hold_is_refused(tmp_path, value, dtype):
    x = X.astype(np.float64)
    x[4, 2] = value
    d = write_npy(tmp_path / "g", x=x)
    expect_error(lambda: read_source(f"npy:{d}", features=FeatureOptions(dtype)),
                 "x.npy", "node 4, column 2", dtype)


def test_half_precision_holds_what_fits(tmp_path):
    x = X.astype(np.float64)
    x[4, 2] = 7e4  # too big for float16, fine for bfloat16 (same range as float32)
    g = read_source(f"npy:{write_npy(tmp_path / 'g', x=x)}", features=FeatureOptions("bfloat16"))
    assert g.x.dtype.name == "bfloat16"
    np.testing.assert_allclose(np.asarray(g.x, np.float32), x, rtol=1 / 128)


@pytest.mark.parametrize("dtype,disk", [("float16", "<f2"), ("bfloat16", "<u2")])
def test_half_precision_shards(tmp_path, dtype, disk):
    out = tmp_path / "ds"
    d = write_npy(tmp_path / "g")
    assert partition_main(["--input", f"npy:{d}", "--num-parts", "2", "--out", str(out),
                           "--feature-dtype", dtype, "--quiet"]) == 0
    m = load_manifest(out)
    assert m["feature_dtype"] == dtype and m["files"]["part-00000/x.npy"]["dtype"] == disk
    full = np.empty_like(X)
    for p in range(2):
        part = load_partition(out, p)
        assert part.x.dtype.name == dtype
        full[part.global_ids] = np.asarray(part.x, np.float32)
    np.testing.assert_allclose(full, X, rtol=1 / 128)
    f32 = partition_main(["--input", f"npy:{d}", "--num-parts", "2", "--out", str(tmp_path / "f32"),
                          "--quiet"])
    assert f32 == 0
    size = {k: v["bytes"] - 128 for k, v in load_manifest(tmp_path / "f32")["files"].items()}
    assert m["files"]["part-00000/x.npy"]["bytes"] - 128 == size["part-00000/x.npy"] // 2


# ---------------------------------------------------------------- normalisation

def test_row_and_standard_normalisation(tmp_path, monkeypatch):
    monkeypatch.setattr(features_mod, "BLOCK_BYTES", 30)  # stats over several blocks
    x = np.abs(RNG.standard_normal((6, 3))) + 0.1
    x[2] = 0.0  # a row summing to zero stays zero
    d = write_npy(tmp_path / "g", x=x)
    row = read_source(f"npy:{d}", features=FeatureOptions(normalize="row"))
    sums = np.asarray(row.x, np.float64).sum(1)
    np.testing.assert_allclose(np.delete(sums, 2), 1.0, rtol=1e-6)
    assert (row.x[2] == 0).all() and row.feature_normalization == "row"
    x[:, 0] = 3.0  # a constant column is only centred
    d = write_npy(tmp_path / "h", x=x)
    std = read_source(f"npy:{d}", features=FeatureOptions(normalize="standard"))
    got = np.asarray(std.x, np.float64)
    np.testing.assert_allclose(got.mean(0), 0.0, atol=1e-6)
    np.testing.assert_allclose(got[:, 1:].std(0), 1.0, rtol=1e-5)
    assert (got[:, 0] == 0).all()


def test_standard_normalisation_of_a_column_whose_mean_dwarfs_its_spread(tmp_path, monkeypatch):
    """1e6 +- 1e-3 (a year or an id-like column): sums of x^2 cancel in float64, and the
    column used to come out 'constant' and stay unscaled."""
    monkeypatch.setattr(features_mod, "BLOCK_BYTES", 30)
    x = 1e6 + RNG.standard_normal((6, 2)) * 1e-3
    std = read_source(f"npy:{write_npy(tmp_path / 'g', x=x)}",
                      features=FeatureOptions(normalize="standard"))
    np.testing.assert_allclose(np.asarray(std.x, np.float64).std(0), 1.0, rtol=1e-4)


def test_normalisation_recorded_in_manifest(tmp_path):
    out = tmp_path / "ds"
    assert partition_main(["--input", "synthetic:nodes=300", "--num-parts", "2", "--out", str(out),
                           "--normalize-features", "standard", "--quiet"]) == 0
    assert load_manifest(out)["feature_normalization"] == "standard"


# ---------------------------------------------------------------- empty train, sparse x, edge weights

@pytest.mark.parametrize("make", [
    lambda p: f"npy:{write_npy(p, train_idx=np.array([], dtype=np.int64))}",
    lambda p: f"npy:{write_npy(p, y=np.where(np.isin(np.arange(6), SPLITS['train']), np.nan, Y))}",
    lambda p: "synthetic:nodes=20,train=0.01",
], ids=["empty-train-idx", "train-nodes-unlabelled", "synthetic-rounds-to-zero"])
def test_empty_train_split_refused_at_partition_time(tmp_path, capsys, make):
    code = partition_main(["--input", make(tmp_path / "g"), "--out", str(tmp_path / "ds"),
                           "--num-parts", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("giantgcn-partition: error: ")
    assert "train split" in err[0]
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_pt_sparse_features_densified_in_blocks(tmp_path, monkeypatch, layout):
    monkeypatch.setattr(features_mod, "BLOCK_BYTES", 16)
    x = X.copy()
    x[x % 4 != 0] = 0.0
    dense = torch.from_numpy(x)
    sparse = dense.to_sparse() if layout == "coo" else dense.to_sparse_csr()
    g = read_source(_pt_with_x(tmp_path, sparse))
    np.testing.assert_array_equal(g.x, x)


@pytest.mark.parametrize("layout", ["csr", "csc"])
def test_pt_sparse_x_leaves_no_torch_notice_on_stderr(tmp_path, layout):
    """torch warns (once per process, hence a fresh one) when it loads or builds a
    compressed sparse tensor; the partitioner's stderr holds only its own lines."""
    import os
    import subprocess
    import sys

    dense = torch.from_numpy(X)
    spec = _pt_with_x(tmp_path, dense.to_sparse_csr() if layout == "csr" else dense.to_sparse_csc())
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    run = subprocess.run([sys.executable, "-m", "partition", "--input", spec, "--out",
                          str(tmp_path / "ds"), "--num-parts", "2", "--quiet"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert [ln for ln in run.stderr.splitlines() if not ln.startswith("giantgcn-partition:")] == []


def _pt_with_x(tmp_path: Path, x) -> str:
    data = {"edge_index": torch.from_numpy(EDGES), "x": x, "y": torch.from_numpy(Y)}
    data |= {f"{k}_idx": torch.from_numpy(v) for k, v in SPLITS.items()}
    torch.save(data, tmp_path / "s.pt")
    return f"pt:{tmp_path / 's.pt'}"


def test_edge_weights_ignored_with_a_line(tmp_path, capsys):
    spec = _pt(tmp_path, edge_weight=torch.ones(6), edge_attr=torch.ones(6, 2),
               **{f"{k}_idx": torch.from_numpy(v) for k, v in SPLITS.items()})
    assert partition_main(["--input", spec, "--out", str(tmp_path / "a"), "--num-parts", "2",
                           "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "edge_weight, edge_attr ignored" in err
    d = write_npy(tmp_path / "g", edge_weight=np.ones(6))
    assert partition_main(["--input", f"npy:{d}", "--out", str(tmp_path / "b"), "--num-parts", "2",
                           "--quiet"]) == 0
    assert "edge_weight.npy ignored" in capsys.readouterr().err
    o = write_ogb(tmp_path / "o")
    write_gz(o / "raw" / "edge-feat.csv.gz", ["1.0"] * 6)
    assert read_source(f"ogb:{o}#sales").warnings == [f"{o / 'raw' / 'edge-feat.csv.gz'} ignored: "
                                                       "the GCN here is unweighted"]


def test_scratch_folder_is_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(features_mod, "IN_MEMORY_BYTES", 0)  # force the scratch copy
    d = write_npy(tmp_path / "g", x=X.astype(np.float64))
    assert partition_main(["--input", f"npy:{d}", "--out", str(tmp_path / "ds"), "--num-parts", "2",
                           "--feature-dtype", "float16", "--quiet"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "g"]
    m = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert m["feature_dtype"] == "float16"
    with pytest.raises(InputError):
        FeatureOptions("float8")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_rows_reach_the_model_as_float32(dtype):
    from dist_train.sampling.prefetch import gather_rows
    from partition.readers.features import numpy_dtype

    x = X.astype(numpy_dtype(dtype))  # small integers: exact in both
    rows = gather_rows(x, np.array([5, 0, 3]), pin=False)
    assert rows.dtype == torch.float32
    np.testing.assert_array_equal(rows.numpy(), X[[5, 0, 3]])


def test_ogb_binary_read_never_holds_node_feat_whole(tmp_path, monkeypatch):
    """Traced allocations while reading stay far below node_feat: it is streamed, not loaded."""
    import tracemalloc

    from partition.readers import ogb_binary, ogb_reader

    n, f = 20_000, 64  # node_feat: 5 MiB of float32
    edge_index, _, y, splits = make_graph(n=n, f=1, unlabelled=0.9)
    x = np.abs(RNG.standard_normal((n, f))).astype(np.float32)  # bag-of-words-like: rows sum > 0
    d = write_ogb_binary(tmp_path / "o", edge_index, x, y, splits)
    for mod, name, value in ((npz_stream, "CHUNK_BYTES", 1 << 16), (features_mod, "BLOCK_BYTES", 1 << 16),
                             (features_mod, "IN_MEMORY_BYTES", 0), (ogb_binary, "EDGE_CHUNK", 1 << 12),
                             (ogb_reader, "READ_BYTES", 1 << 16)):  # gzip.read(n) allocates n
        monkeypatch.setattr(mod, name, value)
    (tmp_path / "scratch").mkdir()
    opts = FeatureOptions("float16", "row", tmp_path / "scratch")
    read_source(f"ogb:{d}", features=FeatureOptions("float16", "row"))  # imports happen untraced
    tracemalloc.start()
    try:
        g = read_source(f"ogb:{d}", features=opts)
        for _ in g.edge_chunks():
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < x.nbytes // 4, f"peak {peak} bytes while reading a {x.nbytes}-byte node_feat"
    np.testing.assert_allclose(np.asarray(g.x, np.float32).sum(1), 1.0, rtol=1e-2)


def _mapped_rss_kib(path) -> int:
    """Resident KiB of this process's mappings of ``path`` (/proc/self/smaps)."""
    total, inside = 0, False
    for line in open("/proc/self/smaps"):
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5:
            inside = len(fields) >= 6 and fields[-1] == str(path)
        elif inside and fields[0] == "Rss:":
            total += int(fields[1])
    return total


@pytest.mark.parametrize("order", ["C", "F"])
def test_streaming_a_memmapped_edge_list_leaves_none_of_it_resident(tmp_path, order):
    """Issue 12 review: read pages of the npy edge list stayed in RSS through every later
    stage (the reader keeps the mapping): 153 MiB of a 10^7-edge run's peak. Each chunk's
    pages are dropped once copied, and the chunks are still the array's columns."""
    from partition.readers.source_checks import array_edge_chunks
    from partition.readers.sources import load_npy

    ei = np.random.default_rng(0).integers(0, 1000, size=(2, 3 * 2**20 + 5))
    path = tmp_path / "edge_index.npy"
    np.save(path, np.asfortranarray(ei) if order == "F" else ei)
    mapped = load_npy(path)
    got = [np.stack(c) for c in array_edge_chunks(mapped, 1000, str(path))()]
    np.testing.assert_array_equal(np.concatenate(got, axis=1), ei)
    assert _mapped_rss_kib(path) < 64, _mapped_rss_kib(path)  # of 48 MiB read
    assert int(np.asarray(mapped[1, -1])) == ei[1, -1]  # still readable after the release
