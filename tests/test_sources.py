"""Source readers: each kind returns the right arrays; each bad input is a one-line InputError."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from partition.errors import InputError
from partition.graph.csr import build_csr
from partition.readers import features, ogb_reader, source_checks
from partition.readers.sources import read_source

N = 6
EDGES = np.array([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 0]], dtype=np.int64)
X = np.arange(N * 3, dtype=np.float32).reshape(N, 3)
Y = np.array([0, 1, 0, 1, 2, 2], dtype=np.int64)
SPLITS = {"train": np.array([2, 0, 1]), "val": np.array([3]), "test": np.array([5, 4])}


def edges_of(g) -> np.ndarray:
    pairs = list(g.edge_chunks())
    return np.stack([np.concatenate([p[k] for p in pairs]) for k in (0, 1)])


def assert_tiny(g) -> None:
    np.testing.assert_array_equal(edges_of(g), EDGES)
    np.testing.assert_array_equal(g.x, X)
    np.testing.assert_array_equal(g.y, Y)
    assert g.x.dtype == np.float32 and g.y.dtype == np.int64
    assert g.num_nodes == N and g.num_classes == 3
    for got, name in zip((g.train_idx, g.val_idx, g.test_idx), SPLITS, strict=True):
        np.testing.assert_array_equal(got, np.sort(SPLITS[name]))
        assert got.dtype == np.int64


def expect_error(fn, *needles: str) -> str:
    with pytest.raises(InputError) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg and msg
    for needle in needles:
        assert needle in msg, f"{needle!r} not in {msg!r}"
    return msg


def write_npy(d: Path, splits: bool = True, **override) -> Path:
    d.mkdir(exist_ok=True)
    arrays = {"edge_index": EDGES, "x": X, "y": Y}
    if splits:
        arrays |= {f"{k}_idx": v for k, v in SPLITS.items()}
    for name, value in (arrays | override).items():
        if value is not None:
            np.save(d / f"{name}.npy", value)
    return d


def test_npy_reader(tmp_path):
    g = read_source(f"npy:{write_npy(tmp_path / 'g')}")
    assert_tiny(g)
    assert isinstance(g.x, np.memmap)  # float32 features stay memory-mapped


def test_npy_without_splits_gets_seeded_random_split(tmp_path):
    d = write_npy(tmp_path / "g", splits=False, x=np.zeros((100, 2)), y=np.zeros(100, np.int64))
    a, b = read_source(f"npy:{d}"), read_source(f"npy:{d}")
    parts = [a.train_idx, a.val_idx, a.test_idx]
    assert [len(p) for p in parts] == [60, 20, 20]
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(100))
    np.testing.assert_array_equal(a.train_idx, b.train_idx)
    assert a.x.dtype == np.float32  # float64 input converted


def test_npy_chunks_cover_edges_across_chunk_boundaries(tmp_path, monkeypatch):
    monkeypatch.setattr(source_checks, "EDGE_CHUNK", 4)
    g = read_source(f"npy:{write_npy(tmp_path / 'g')}")
    assert [len(s) for s, _ in g.edge_chunks()] == [4, 2]
    np.testing.assert_array_equal(edges_of(g), EDGES)


def test_pt_reader_masks_and_idx(tmp_path):
    masks = {f"{k}_mask": torch.from_numpy(np.isin(np.arange(N), v)) for k, v in SPLITS.items()}
    data = Data(edge_index=torch.from_numpy(EDGES), x=torch.from_numpy(X), y=torch.from_numpy(Y), **masks)
    torch.save(data, tmp_path / "masks.pt")
    assert_tiny(read_source(f"pt:{tmp_path / 'masks.pt'}"))
    idx = {f"{k}_idx": torch.from_numpy(v) for k, v in SPLITS.items()}
    data = Data(edge_index=torch.from_numpy(EDGES), x=torch.from_numpy(X).bfloat16(),
                y=torch.from_numpy(Y)[:, None], **idx)
    torch.save(data, tmp_path / "idx.pt")
    assert_tiny(read_source(f"pt:{tmp_path / 'idx.pt'}"))


def write_gz(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        f.write("".join(line + "\n" for line in lines))


def write_ogb(d: Path, split_names=("sales",), edges=None) -> Path:
    raw = d / "raw"
    write_gz(raw / "edge.csv.gz", edges or [f"{a},{b}" for a, b in EDGES.T])
    write_gz(raw / "node-feat.csv.gz", [",".join(f"{v:.1f}" for v in row) for row in X])
    write_gz(raw / "node-label.csv.gz", [str(v) for v in Y])
    write_gz(raw / "num-node-list.csv.gz", [str(N)])
    for name in split_names:
        for key, file in (("train", "train"), ("val", "valid"), ("test", "test")):
            write_gz(d / "split" / name / f"{file}.csv.gz", [str(v) for v in SPLITS[key]])
    return d


def test_ogb_reader(tmp_path, monkeypatch):
    monkeypatch.setattr(ogb_reader, "READ_BYTES", 5)  # many blocks, lines split across reads
    g = read_source(f"ogb:{write_ogb(tmp_path / 'ogbn_tiny')}")
    assert_tiny(g)
    assert len(list(g.edge_chunks())) > 1
    np.testing.assert_array_equal(edges_of(g), EDGES)  # a second pass reads the same


def test_ogb_picks_named_split(tmp_path):
    d = write_ogb(tmp_path / "o", split_names=("a", "b"))
    expect_error(lambda: read_source(f"ogb:{d}"), str(d / "split"), "#NAME")
    assert_tiny(read_source(f"ogb:{d}#b"))
    expect_error(lambda: read_source(f"ogb:{d}#zz"), "zz")


def test_planetoid_cora(shared_data, tmp_path):
    raw = shared_data / "planetoid" / "Cora" / "raw"
    if not raw.is_dir():
        pytest.skip(f"{raw} is absent")
    shutil.copytree(raw, tmp_path / "Cora" / "raw")
    (tmp_path / "Cora").chmod(0o555)  # a read-only root, as ../shared is: nothing may be written
    g = read_source("planetoid:Cora", root=str(tmp_path))
    assert (g.num_nodes, g.num_features, g.num_classes) == (2708, 1433, 7)
    assert (len(g.train_idx), len(g.val_idx), len(g.test_idx)) == (140, 500, 1000)
    assert edges_of(g).shape == (2, 10556)
    assert sorted(p.name for p in (tmp_path / "Cora").iterdir()) == ["raw"]
    csr = build_csr(g.num_nodes, g.edge_chunks)
    assert csr.indices.shape[0] // 2 == 5278  # undirected edges, as published


def test_synthetic_kind():
    g = read_source("synthetic:nodes=500,degree=4,seed=3")
    assert g.num_nodes == 500 and g.name == "synthetic:nodes=500,degree=4,seed=3"


# --- bad input: one line, naming the file or flag -------------------------------------

BAD_NPY = {
    "edge_index not 2xE": ({"edge_index": EDGES.T}, "edge_index.npy", "(2, E)"),
    "float edge ids": ({"edge_index": EDGES.astype(np.float64)}, "edge_index.npy", "integer"),
    "x 1-D": ({"x": X[:, 0]}, "x.npy", "2-D"),
    "x strings": ({"x": X.astype(str)}, "x.npy", "numeric"),
    "NaN feature": ({"x": np.where(np.arange(18).reshape(6, 3) == 13, np.nan, X)}, "x.npy", "node 4, column 1"),
    "inf feature": ({"x": np.where(np.arange(18).reshape(6, 3) == 2, np.inf, X)}, "x.npy", "node 0, column 2"),
    "y 2 columns": ({"y": np.stack([Y, Y], 1)}, "y.npy", "shape"),
    "label count": ({"y": Y[:5]}, "y.npy", "5 labels"),
    "negative label on a train node": ({"y": Y - 1}, "train split", "no label", "node 0"),
    "fractional label": ({"y": Y + 0.5}, "y.npy", "not integers"),
    "split out of range": ({"test_idx": np.array([4, 6])}, "test_idx.npy", "out of range"),
    "negative split id": ({"val_idx": np.array([-1])}, "val_idx.npy", "out of range"),
    "overlapping splits": ({"val_idx": np.array([3, 1])}, "val_idx.npy", "train_idx.npy"),
    "float split ids": ({"val_idx": np.array([3.0])}, "val_idx.npy", "integer"),
    "missing x": ({"x": None}, "x.npy", "no such file"),
    "missing one split": ({"val_idx": None}, "val", "all three"),
}


@pytest.mark.parametrize("case", list(BAD_NPY), ids=list(BAD_NPY))
def test_npy_bad_input(tmp_path, monkeypatch, case):
    monkeypatch.setattr(features, "BLOCK_BYTES", 12)  # NaN search spans several row blocks
    override, *needles = BAD_NPY[case]
    d = write_npy(tmp_path / "g", **override)
    expect_error(lambda: read_source(f"npy:{d}"), *needles)


@pytest.mark.parametrize("bad_id", [6, -1])
def test_edge_ids_out_of_range_raise_while_streaming(tmp_path, bad_id):
    edges = EDGES.copy()
    edges[1, 3] = bad_id
    g = read_source(f"npy:{write_npy(tmp_path / 'g', edge_index=edges)}")
    expect_error(lambda: list(g.edge_chunks()), "edge_index.npy", "out of range", str(bad_id))


def test_unreadable_npy(tmp_path):
    d = write_npy(tmp_path / "g")
    (d / "y.npy").write_bytes(b"not a numpy file")
    expect_error(lambda: read_source(f"npy:{d}"), "y.npy", "cannot read")


def test_bad_kinds_and_flags(tmp_path):
    expect_error(lambda: read_source("csv:foo"), "--input", "npy:DIR", "ogb:DIR", "pt:FILE")
    expect_error(lambda: read_source("npy:"), "--input")
    expect_error(lambda: read_source(f"npy:{tmp_path / 'nope'}"), "nope", "not a directory")
    expect_error(lambda: read_source("planetoid:Cora"), "--root")
    expect_error(lambda: read_source("planetoid:Cora", root=str(tmp_path / "nope")), "--root")
    expect_error(lambda: read_source("planetoid:Reddit", root=str(tmp_path)), "Reddit")
    expect_error(lambda: read_source("synthetic:nodes=-3"), "--input", "nodes")


def test_bad_pt(tmp_path):
    expect_error(lambda: read_source(f"pt:{tmp_path / 'none.pt'}"), "none.pt", "no such file")
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage")
    expect_error(lambda: read_source(f"pt:{tmp_path / 'junk.pt'}"), "junk.pt", "torch.load")
    torch.save({"edge_index": torch.from_numpy(EDGES), "x": torch.from_numpy(X)}, tmp_path / "noy.pt")
    expect_error(lambda: read_source(f"pt:{tmp_path / 'noy.pt'}"), "noy.pt", "'y'")
    torch.save([1, 2], tmp_path / "list.pt")
    expect_error(lambda: read_source(f"pt:{tmp_path / 'list.pt'}"), "list.pt", "Data")


@pytest.mark.parametrize("edges,needle", [(["0,1", "1,2.5"], "line 2"), (["0,1", "2,9"], "out of range"),
                                          (["0,1,2"], "2 columns")])
def test_bad_ogb_edges(tmp_path, edges, needle):
    g = read_source(f"ogb:{write_ogb(tmp_path / 'o', edges=edges)}")
    expect_error(lambda: list(g.edge_chunks()), "edge.csv.gz", needle)


def test_bad_ogb_files(tmp_path):
    d = write_ogb(tmp_path / "o")
    (d / "raw" / "node-label.csv.gz").write_bytes(b"plain text, not gzip")
    expect_error(lambda: read_source(f"ogb:{d}"), "node-label.csv.gz", "gzip")
    write_gz(d / "raw" / "node-label.csv.gz", ["0", "nan", "1", "1", "2", "2"])
    expect_error(lambda: read_source(f"ogb:{d}"), "train split", "no label", "node 1")
    write_gz(d / "raw" / "node-label.csv.gz", [str(v) for v in Y])
    (d / "split" / "sales" / "valid.csv.gz").unlink()
    expect_error(lambda: read_source(f"ogb:{d}"), "valid.csv.gz", "no such file")
    write_gz(d / "split" / "sales" / "valid.csv.gz", ["3"])
    (d / "raw" / "edge.csv.gz").unlink()
    expect_error(lambda: read_source(f"ogb:{d}"), "edge.csv.gz", "data.npz", "neither")
    write_gz(d / "raw" / "edge.csv.gz", [f"{a},{b}" for a, b in EDGES.T])
    write_gz(d / "raw" / "node-feat.csv.gz", ["1,2", "3"])
    expect_error(lambda: read_source(f"ogb:{d}"), "node-feat.csv.gz", "line 2")
