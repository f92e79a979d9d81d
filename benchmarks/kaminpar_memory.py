"""KaMinPar's own memory against ``--dry-run``'s model of it, over graph sizes and degrees (issue 12).

Each graph runs in a fresh process: the synthetic graph (one feature column), its CSR,
then :func:`partition.graph.partitioners.kaminpar_assign` into ``--parts`` parts (our CSR
parked in scratch meanwhile, as in a real run). The process's high-water mark is reset
just before the call (``/proc/self/clear_refs``), so ``kaminpar GiB`` is KaMinPar's peak
above what was resident before it, plus the parked CSR (which a real run does not hold
then either). The model's figure is :func:`partition.estimate.partitioner_bytes`.

    PYTHONPATH=. python benchmarks/kaminpar_memory.py [--graphs 1000000:40.8 1000000:u10 ...]

Needs Linux (``/proc``) and the ``kaminpar`` package; the largest default graph needs ~14 GB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_GRAPHS = ["1000000:18", "1000000:40.8", "2500000:40.8", "5000000:40.8", "10000000:20",
                  "10000000:40.8"]
"""nodes:degree of the synthetic generator (degree 40.8 gives ~20 undirected edges per node);
``nodes:uD`` is a graph of ``D·nodes/2`` edges between uniform random ends instead (no
locality, as a graph made with numpy)."""

_CHILD = r"""
import json, sys
from pathlib import Path
import numpy as np
from partition.graph.csr import build_csr
from partition.graph.partitioners import balance_weights, kaminpar_assign
from partition.readers.sources import read_source

def hwm_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1])

n, degree, parts, scratch = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
if degree.startswith("u"):  # uniform random ends, as a user's numpy-made graph
    ei = np.random.default_rng(0).integers(0, n, size=(2, int(float(degree[1:]) * n / 2)))
    csr = build_csr(n, lambda: [(ei[0], ei[1])])
    del ei
else:
    g = read_source(f"synthetic:nodes={n},degree={degree},features=1")
    csr = build_csr(g.num_nodes, g.edge_chunks)
csr_bytes = csr.indptr.nbytes + csr.indices.nbytes
train = np.zeros(n, dtype=bool)
weights = balance_weights(csr, train)
open("/proc/self/clear_refs", "w").write("5")  # reset VmHWM to the current RSS
before = hwm_kib()
kaminpar_assign(csr, parts, weights, 0, scratch)
print(json.dumps({"num_edges": int(csr.indices.shape[0]) // 2, "csr_bytes": csr_bytes,
                  "kaminpar_bytes": (hwm_kib() - before) * 1024 + csr_bytes}))
"""


def measure(nodes: int, degree: str, parts: int) -> dict:
    """KaMinPar's peak bytes (above what was resident, plus the parked CSR) on one graph."""
    with tempfile.TemporaryDirectory(prefix="kaminpar-mem-") as scratch:
        out = subprocess.run([sys.executable, "-c", _CHILD, str(nodes), degree, str(parts), scratch],
                             cwd=REPO, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graphs", nargs="+", default=DEFAULT_GRAPHS, metavar="NODES:DEGREE")
    ap.add_argument("--parts", type=int, default=8)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from partition.estimate import RunShape, partitioner_bytes

    print(f"{'nodes':>11} {'degree':>7} {'edges':>12} {'E/N':>5} {'CSR GiB':>8} {'kaminpar GiB':>13} "
          f"{'B/edge':>7} {'model GiB':>10} {'model/measured':>15}")
    for spec in args.graphs:
        nodes, degree = spec.split(":")
        got = measure(int(nodes), degree, args.parts)
        e = got["num_edges"]
        model = partitioner_bytes(RunShape(num_nodes=int(nodes), num_edges=e, num_features=1,
                                           num_parts=args.parts, method="kaminpar"))
        k = got["kaminpar_bytes"]
        print(f"{int(nodes):>11,} {degree:>7} {e:>12,} {e / int(nodes):>5.1f} {got['csr_bytes'] / 2**30:>8.2f} "
              f"{k / 2**30:>13.2f} {k / e:>7.1f} {model / 2**30:>10.2f} {model / k:>15.2f}", flush=True)


if __name__ == "__main__":
    main()
