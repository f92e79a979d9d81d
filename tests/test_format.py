"""The dataset directory: round trip by global id, atomic writes, verification, FORMAT.md."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from partition_helpers import clustered_edges, make_source

from partition import DatasetError, InputError, load_manifest, load_partition, verify_dataset
from partition.graph.csr import build_csr
from partition.graph.partitioners import metis_partition, random_partition
from partition.store import format as fmt

N = 600
FORMAT_MD = Path(fmt.__file__).parent.parent / "FORMAT.md"


@pytest.fixture(scope="module")
def graph():
    src, dst = clustered_edges(N, clusters=4, degree=8, p_out=0.1, seed=3)
    g = make_source(N, src, dst, seed=3)
    return g, build_csr(N, g.edge_chunks)


def _write(graph, out, num_parts=3, hops=1, **kw):
    g, csr = graph
    parts = random_partition(N, num_parts, seed=0)
    return fmt.write_dataset(out, g, csr, parts, hops, "random", 0, num_parts=num_parts, **kw)


@pytest.fixture
def dataset(graph, tmp_path):
    out = tmp_path / "ds"
    _write(graph, out)
    return out


@pytest.mark.parametrize("num_parts", [1, 2, 3, 8])
def test_round_trip_by_global_id(graph, tmp_path, num_parts):
    g, csr = graph
    parts = metis_partition(csr, num_parts, np.isin(np.arange(N), g.train_idx), seed=0)
    out = tmp_path / "ds"
    manifest = fmt.write_dataset(out, g, csr, parts, 1, "metis", 0, num_parts=num_parts)
    assert load_manifest(out) == manifest
    assert manifest["num_nodes"] == N and manifest["num_edges"] == csr.num_edges
    np.testing.assert_array_equal(np.load(out / "node_part.npy"), parts)
    splits = {name: [] for name in fmt.SPLITS}
    inner_all = []
    for p in range(num_parts):
        part = load_partition(out, p)
        ids = np.asarray(part.global_ids)
        assert not part.x.flags.writeable and isinstance(part.x, np.memmap)
        assert part.num_feature_rows == part.num_local  # H=1: every halo node has a row
        np.testing.assert_array_equal(part.x, g.x[ids])
        np.testing.assert_array_equal(part.y, g.y[ids])
        np.testing.assert_array_equal(part.degree, csr.degree()[ids])
        np.testing.assert_array_equal(part.halo_part, parts[ids[part.num_inner:]])
        for name in fmt.SPLITS:
            local = np.asarray(getattr(part, f"{name}_idx"))
            assert local.size == 0 or local.max() < part.num_inner
            splits[name].append(ids[local])
        inner_all.append(ids[:part.num_inner])
        info = manifest["parts"][p]
        assert (info["num_inner"], info["num_halo"], info["num_edges"]) == (
            part.num_inner, part.num_halo, part.indices.shape[0])
    np.testing.assert_array_equal(np.sort(np.concatenate(inner_all)), np.arange(N))
    for name, want in (("train", g.train_idx), ("val", g.val_idx), ("test", g.test_idx)):
        np.testing.assert_array_equal(np.sort(np.concatenate(splits[name])), want)
    verify_dataset(out)


@pytest.mark.parametrize("hops", [0, 1, 2])
def test_inner_rows_are_complete_and_h0_halo_is_structure_only(graph, tmp_path, hops):
    """Format 2 (issue 11): every inner row is the node's whole neighbour list, at every H;
    at H=0 the 1-hop boundary is halo without feature rows, its owner in halo_part."""
    g, csr = graph
    parts = random_partition(N, 3, seed=0)
    fmt.write_dataset(tmp_path / "ds", g, csr, parts, hops, "random", 0, num_parts=3)
    for p in range(3):
        part = load_partition(tmp_path / "ds", p)
        ids = np.asarray(part.global_ids)
        for i in range(part.num_inner):
            row = ids[part.indices[part.indptr[i]:part.indptr[i + 1]]]
            np.testing.assert_array_equal(np.sort(row), csr.indices[csr.indptr[ids[i]]:csr.indptr[ids[i] + 1]])
        want_rows = part.num_inner if hops == 0 else part.num_local
        assert part.num_feature_rows == want_rows and part.x.shape[0] == want_rows
        np.testing.assert_array_equal(part.x, g.x[ids[:want_rows]])
        np.testing.assert_array_equal(part.halo_part, parts[ids[part.num_inner:]])
        assert part.num_halo > 0
    verify_dataset(tmp_path / "ds")


def _documented_tree() -> tuple[set[str], set[str]]:
    text = FORMAT_MD.read_text()
    tree = text.split("## Tree", 1)[1].split("```")[1]
    top, part = set(), set()
    for line in tree.splitlines():
        m = re.match(r"^(\s*)(\S+\.(?:npy|json))\s", line + " ")
        if m:
            (part if len(m.group(1)) > 2 else top).add(m.group(2))
    return top, part


def test_files_match_format_md(dataset):
    top, part = _documented_tree()
    assert "x.npy" in part and "manifest.json" in top
    assert {p.name for p in dataset.iterdir() if p.is_file()} == top
    assert {p.name for p in dataset.iterdir() if p.is_dir()} == {"part-00000", "part-00001", "part-00002"}
    for d in dataset.glob("part-*"):
        assert {p.name for p in d.iterdir()} == part
    files = load_manifest(dataset)["files"]
    assert set(files) == {str(p.relative_to(dataset)) for p in dataset.rglob("*.npy")}


def test_failure_mid_write_leaves_nothing(graph, tmp_path, monkeypatch):
    calls = []

    def boom(path, *args):
        calls.append(path)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return real(path, *args)

    real = fmt._write_features
    monkeypatch.setattr(fmt, "_write_features", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        _write(graph, tmp_path / "ds")
    assert list(tmp_path.iterdir()) == []


def test_os_error_becomes_input_error_naming_out(graph, tmp_path, monkeypatch):
    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fmt, "_write_json", full)
    with pytest.raises(InputError, match=r"--out .*ds.*No space left"):
        _write(graph, tmp_path / "ds")
    assert list(tmp_path.iterdir()) == []


def test_existing_dir_needs_force(graph, dataset):
    before = (dataset / "manifest.json").read_bytes()
    with pytest.raises(InputError, match="--out.*already exists.*--force"):
        _write(graph, dataset, num_parts=2)
    assert (dataset / "manifest.json").read_bytes() == before
    _write(graph, dataset, num_parts=2, force=True)
    assert load_manifest(dataset)["num_parts"] == 2 and not (dataset / "part-00002").exists()
    assert sorted(p.name for p in dataset.parent.iterdir()) == ["ds"]  # old copy deleted


def test_force_never_replaces_a_foreign_directory(graph, tmp_path):
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(InputError, match="not a giantgcn dataset"):
        _write(graph, foreign, force=True)
    assert (foreign / "thesis.tex").read_text() == "precious"


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def test_verify_catches_flipped_byte(dataset):
    _flip_last_byte(dataset / "part-00001" / "x.npy")
    with pytest.raises(DatasetError, match=r"part-00001/x\.npy.*sha256"):
        verify_dataset(dataset)
    verify_dataset(dataset, parts=[0, 2])  # only the parts asked for are read


def test_verify_catches_truncation(dataset):
    path = dataset / "part-00000" / "indices.npy"
    path.write_bytes(path.read_bytes()[:-16])
    with pytest.raises(DatasetError, match=r"part-00000/indices\.npy.*truncated"):
        verify_dataset(dataset)
    with pytest.raises(DatasetError, match=r"indices\.npy"):
        load_partition(dataset, 0)


def _rewrite(dataset: Path, rel: str, array: np.ndarray) -> None:
    """Replace a file *and* its manifest record, as a buggy writer would."""
    record = fmt.write_npy(dataset / rel, array)
    manifest = json.loads((dataset / "manifest.json").read_text())
    manifest["files"][rel] = record.to_json()
    (dataset / "manifest.json").write_text(json.dumps(manifest))


def test_verify_checks_meaning_not_only_checksums(dataset):
    part = load_partition(dataset, 1)
    bad = np.array(part.indices)
    bad[0] = part.num_local
    _rewrite(dataset, "part-00001/indices.npy", bad)
    with pytest.raises(DatasetError, match=r"part-00001/indices\.npy.*out of range"):
        verify_dataset(dataset)
    ptr = np.array(part.indptr)
    ptr[1], ptr[2] = ptr[2], ptr[1] - 1
    _rewrite(dataset, "part-00001/indptr.npy", ptr)
    with pytest.raises(DatasetError, match=r"indptr\.npy.*monotone"):
        verify_dataset(dataset, parts=[1])


@pytest.mark.parametrize("damage,match", [
    (lambda d: (d / "manifest.json").unlink(), "not a giantgcn dataset"),
    (lambda d: (d / "part-00002" / "y.npy").unlink(), r"y\.npy: missing"),
    (lambda d: (d / "manifest.json").write_text('{"format_version": 1}'), "format_version 1"),
    (lambda d: (d / "manifest.json").write_text("{nope"), "unreadable"),
])
def test_broken_datasets_give_one_line(dataset, damage, match):
    damage(dataset)
    with pytest.raises(DatasetError, match=match) as err:
        verify_dataset(dataset)
    assert "\n" not in str(err.value)


def test_bad_part_id_and_missing_dir(dataset, tmp_path):
    with pytest.raises(DatasetError, match=r"part 3 out of range \[0, 3\)"):
        load_partition(dataset, 3)
    with pytest.raises(DatasetError, match="no such dataset directory"):
        load_manifest(tmp_path / "nope")
    part = load_partition(dataset, 2, verify=True)
    assert part.num_local == part.num_inner + part.num_halo


def test_a_dead_writers_scratch_is_removed_a_live_ones_kept(graph, tmp_path):
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".ds.tmp-{dead.pid}-abcd"
    live = tmp_path / f".ds.tmp-{__import__('os').getpid()}-beef"
    other = tmp_path / ".other.tmp-1-cafe"
    for d in (stale, live, other):
        d.mkdir()
    _write(graph, tmp_path / "ds")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ds", live.name, other.name])
