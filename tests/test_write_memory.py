"""The write stage's memory bounds (issue 10): one part at a time, feature rows read with
pread (the memory-mapped feature file's pages never enter this process), exact bytes."""

from __future__ import annotations

import dataclasses
import weakref
from pathlib import Path

import numpy as np
import pytest
from partition_helpers import clustered_edges, make_source

from partition import load_partition
from partition.graph import halo
from partition.graph.csr import build_csr
from partition.graph.partitioners import random_partition
from partition.store import format as fmt
from partition.store import rows

N = 3000


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    """A source whose features are a read-only memmap of a .npy (as the scratch copy is)."""
    src, dst = clustered_edges(N, clusters=6, degree=8, p_out=0.2, seed=5)
    g = make_source(N, src, dst, seed=5)
    path = tmp_path_factory.mktemp("x") / "x.npy"
    np.save(path, np.asarray(g.x))
    g = dataclasses.replace(g, x=np.load(path, mmap_mode="r"))
    return g, build_csr(N, g.edge_chunks), path


def _mapped_rss_kib(path: Path) -> int:
    """Resident KiB of every mapping of ``path`` in this process (/proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and len(head) >= 5 and ":" in head[3]:  # a mapping's first line
                inside = len(head) >= 6 and head[5] == str(path)
            elif inside and line.startswith("Rss:"):
                total += int(head[1])
    return total


@pytest.mark.parametrize("hops,cache", [(1, 0.0), (2, 0.0), (0, 0.5)])
def test_rows_come_from_reads_not_the_mapping(graph, tmp_path, monkeypatch, hops, cache):
    """No page of the memory-mapped x is resident while parts are written (a gather through
    the mapping faults in every page holding a row); the stored rows are x[global_ids]."""
    g, csr, path = graph
    assert rows.file_backing(g.x) is not None
    seen = []
    real = fmt.NpyWriter.write

    def write(self, block):
        seen.append(_mapped_rss_kib(path))
        return real(self, block)

    monkeypatch.setattr(fmt.NpyWriter, "write", write)
    parts = random_partition(N, 4, seed=1)
    fmt.write_dataset(tmp_path / "ds", g, csr, parts, hops, "random", 0, num_parts=4,
                      cache_budget=cache)
    assert seen and max(seen) == 0, max(seen)
    for p in range(4):
        part = load_partition(tmp_path / "ds", p)
        ids = np.asarray(part.global_ids[:part.num_feature_rows])
        np.testing.assert_array_equal(part.x, np.load(path)[ids])


def test_one_part_in_memory_at_a_time(graph, tmp_path, monkeypatch):
    """When a part is built, every part built before it has been freed."""
    g, csr, _ = graph
    built: list[weakref.ref] = []
    real = halo.PartBuilder.build

    def build(self, *args, **kwargs):
        alive = [r for r in built if r() is not None]
        assert not alive, f"{len(alive)} earlier part(s) still alive"
        pg = real(self, *args, **kwargs)
        built.append(weakref.ref(pg))
        return pg

    monkeypatch.setattr(halo.PartBuilder, "build", build)
    fmt.write_dataset(tmp_path / "ds", g, csr, random_partition(N, 5, seed=0), 1, "random", 0,
                      num_parts=5)
    assert len(built) == 5


def test_int32_local_ids_are_stored_as_int64(graph):
    g, csr, _ = graph
    parts = random_partition(N, 3, seed=0)
    b = halo.PartBuilder(csr, parts, 3)
    for p in range(3):
        wide, narrow = b.build(p, 2), b.build(p, 2, index_dtype=np.int32)
        assert wide.indices.dtype == np.int64 and narrow.indices.dtype == np.int32
        np.testing.assert_array_equal(wide.indices, narrow.indices)
        np.testing.assert_array_equal(wide.indptr, narrow.indptr)


@pytest.mark.parametrize("window_rows", [1, 7, 64, 10_000])
def test_row_reader_equals_indexing_in_any_order(tmp_path, window_rows):
    """Ascending runs, descending and shuffled ids, repeats: x[ids] exactly, every block
    at most one window or ``block_rows`` rows."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5000, 3)).astype(np.float16)
    path = tmp_path / "x.npy"
    np.save(path, x)
    mm = np.load(path, mmap_mode="r")
    backing = rows.file_backing(mm)
    asc = np.sort(rng.choice(5000, 3000, replace=False))
    ids = np.concatenate([asc, rng.permutation(5000)[:500], asc[::-1][:300], [7, 7, 7], asc[:10]])
    with rows.RowReader(*backing, 3, np.float16, window_bytes=window_rows * 6) as reader:
        for long_run in (2, rows.LONG_RUN):
            got, sizes = [], []
            segs = rows.segments(ids, 128, long_run)
            assert segs[0][0] == 0 and segs[-1][1] == ids.shape[0]
            assert all(a[1] == b[0] for a, b in zip(segs, segs[1:], strict=False))
            for block in reader.blocks(ids, 128):
                got.append(block)
                sizes.append(block.shape[0])
            np.testing.assert_array_equal(np.concatenate(got), x[ids])
            assert max(sizes) <= max(128, reader.window_rows)


def test_file_backing_only_for_plain_readonly_maps(tmp_path):
    x = np.arange(40, dtype=np.float32).reshape(10, 4)
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    path, offset = rows.file_backing(mm)
    assert Path(path) == tmp_path / "x.npy" and offset == (tmp_path / "x.npy").stat().st_size - x.nbytes
    assert rows.file_backing(mm[2:])[1] == offset + 2 * 16  # a row slice starts further in
    assert rows.file_backing(mm[:, 1:]) is None  # not C-contiguous
    assert rows.file_backing(x) is None  # in RAM
    assert rows.file_backing(np.load(tmp_path / "x.npy", mmap_mode="c")) is None


def test_write_stage_passes_over_a_mapped_csr_part_by_part(graph, tmp_path, monkeypatch):
    """A big CSR is mapped for the write stage (spill.map_csr) and its pages leave RSS after
    each part (issue 12: per-part passes over the memory-mapped CSR); the files are the
    same bytes as a write from the in-memory CSR."""
    from partition.graph import spill
    from partition.graph.csr import CSR

    g, csr, _ = graph
    parts = random_partition(N, 4, seed=2)
    fmt.write_dataset(tmp_path / "mem", g, csr, parts, 1, "random", 0, num_parts=4)
    mapped = CSR(csr.indptr.copy(), csr.indices.copy())
    monkeypatch.setattr(spill, "MAP_MIN_BYTES", 0)
    assert spill.map_csr(mapped, tmp_path) and isinstance(mapped.indices, np.memmap)
    path = next(tmp_path.glob("csr-mapped-*.bin"))
    resident = []
    real = halo.PartBuilder.build

    def build(self, *args, **kwargs):
        resident.append(_mapped_rss_kib(path))  # before each part: what the last one left
        return real(self, *args, **kwargs)

    monkeypatch.setattr(halo.PartBuilder, "build", build)
    fmt.write_dataset(tmp_path / "map", g, mapped, parts, 1, "random", 0, num_parts=4)
    # the statistics before part 0 read the whole mapping; after each part nothing stays
    assert resident[0] > 0 and max(resident[1:]) == 0, resident
    for f in sorted((tmp_path / "mem").rglob("*.npy")):
        assert f.read_bytes() == (tmp_path / "map" / f.relative_to(tmp_path / "mem")).read_bytes(), f
