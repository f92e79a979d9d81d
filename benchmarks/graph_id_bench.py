"""What the graph id costs the write stage: ``write_dataset`` with and without its node hashes.

Reads the synthetic graph (default 10^6 nodes, 64 float32 features), builds the CSR and
METIS-partitions it once (4 parts), then times ``write_dataset`` alone, interleaving a
write whose ``PartHasher`` is replaced by one that does nothing with the real one, so
both see the same page cache and machine load (this machine's 2 cores are shared: single
timings swing by ±30%, so compare the minima). A last round times the seconds spent
inside the hasher itself. Prints one table per halo depth.

    PYTHONPATH=. python benchmarks/graph_id_bench.py [--nodes 1000000] [--repeat 5] [--hops 1 0]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import partition.store.graph_hash as graph_hash
from partition.graph.csr import build_csr
from partition.graph.partitioners import partition_nodes
from partition.readers.source_graph import split_mask
from partition.readers.sources import read_source
from partition.store.format import write_dataset


class _NoHash:
    """A PartHasher that hashes nothing: the write as it was before the graph id."""

    def __init__(self, *args: object) -> None:
        pass

    def add_rows(self, block: np.ndarray) -> None:
        pass

    def part_sum(self) -> int:
        return 0


class _Timed(graph_hash.PartHasher):
    """The real hasher, adding the seconds it spends to ``spent[0]``."""

    spent = [0.0]

    def __init__(self, *args) -> None:  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        super().__init__(*args)
        self.spent[0] += time.perf_counter() - t

    def add_rows(self, block: np.ndarray) -> None:
        t = time.perf_counter()
        super().add_rows(block)
        self.spent[0] += time.perf_counter() - t


def _time_write(out: Path, hasher: type, args: tuple) -> float:
    graph_hash.PartHasher = hasher  # format.py imports it from the module at each part
    t = time.perf_counter()
    write_dataset(out, *args, force=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=1_000_000)
    ap.add_argument("--parts", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--hops", type=int, nargs="+", default=[1, 0])
    args = ap.parse_args()
    g = read_source(f"synthetic:nodes={args.nodes}", None)
    csr = build_csr(g.num_nodes, g.edge_chunks)
    parts = partition_nodes("metis", csr, args.parts, split_mask(g.num_nodes, g.train_idx), 0)
    real = graph_hash.PartHasher
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        out = Path(tmp) / "ds"
        for hops in args.hops:
            call = (g, csr, parts, hops, "metis", 0)
            _time_write(out, real, call)  # warm-up: numba's cache, the page cache
            times: dict[str, list[float]] = {"without": [], "with": []}
            for _ in range(args.repeat):
                times["without"].append(_time_write(out, _NoHash, call))
                times["with"].append(_time_write(out, real, call))
            inside = []
            for _ in range(args.repeat):
                _Timed.spent[0] = 0.0
                _time_write(out, _Timed, call)
                inside.append(_Timed.spent[0])
            graph_hash.PartHasher = real
            print(f"H={hops}, {args.nodes:,} nodes, {args.parts} parts: write_dataset seconds")
            for name, ts in times.items():
                print(f"  {name:8s} graph id: min {min(ts):.2f}  median {statistics.median(ts):.2f}")
            print(f"  inside the hasher: min {min(inside):.3f}  median {statistics.median(inside):.3f}")


if __name__ == "__main__":
    main()
