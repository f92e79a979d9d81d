"""Memory and disk estimate of a ``giantgcn-partition`` run, before it starts (issue 12).

Pure functions of the graph's sizes and the run's options; :mod:`partition.estimate_input`
finds the sizes from headers only (``--dry-run``). All quantities are bytes.

Per-stage peak RSS (N nodes, E raw input edges as the source lists them, F features,
``s`` the stored feature itemsize, nnz = 2E the CSR entries, ``i`` = 4 when N < 2^31):

* ``read``  = BASE + NODE_BYTES_PER_NODE·N + source features + chunk
* ``csr``   = BASE + NODE_BYTES_PER_NODE·N + held + chunk
  + :func:`partition.graph.csr.csr_stage_bytes` (N, E, ``--memory-budget``)
* ``partition`` = BASE + NODE_BYTES_PER_NODE·N + held + CSR (8(N+1) + i·nnz)
  + PARTITION_FIXED + partitioner (KaMinPar: the larger of CSR and partitioner, as our CSR
  is parked in scratch while KaMinPar holds its copy): METIS :func:`partition.graph.coarsen.metis_bytes` on
  every node, or, when :func:`partition.graph.coarsen.contraction_target` contracts,
  the larger of CONTRACT_BYTES_PER_NODE·N + CONTRACT_BYTES_PER_EDGE·E (contracting, beside
  the CSR) and METIS on the target (edges scaled by target/N, a bound the contraction
  keeps) less the CSR (parked meanwhile);
  ``--metis-max-edges M``: METIS on N nodes and M edges plus 16·M for the sample;
  KaMinPar KAMINPAR_BYTES_PER_NODE·N + :func:`kaminpar_bytes_per_edge`·E; random 0.
  E here is the distinct undirected edges when ``--dry-run``'s scan of the edge list
  counted them (duplicates, edges listed both ways and self loops are not in the CSR), the
  raw listed count otherwise; the read and csr stages hold the raw edges.
* ``write`` = BASE + NODE_BYTES_PER_NODE·N + held + resident CSR + WRITE_FIXED
  + WRITE_BYTES_PER_EDGE·E (halo sets and the largest part's arrays); the resident CSR is
  the CSR below ``spill.MAP_MIN_BYTES``, else (memory-mapped, its pages released after
  each part) WRITE_MAPPED_PARTS/P of it (:func:`write_csr_bytes`)

``chunk`` = min(READER_CHUNK_BYTES, READER_BYTES_PER_EDGE·E). ``source features``: an
in-memory source (synthetic, pt, planetoid, OGB csv) holds its float32 matrix, N·F·4; a
file source (npy, OGB npz) none (memory-mapped or streamed). ``held`` (after the read):
float32 is used as is, so the source's bytes; another dtype the stored copy when it is at
most IN_MEMORY_FEATURE_BYTES, else 0 (a scratch file: page cache, not RSS, measured).

Disk: scratch = :func:`partition.graph.csr.csr_scratch_bytes` + the stored features
when they go to a scratch file + KaMinPar's input file (24 + 8(N+1) + i·nnz) and the
parked CSR (8(N+1) + i·nnz); output
= rows · N·(F·s + 8) + nodes · N·28 + rows · nnz·8, rows = 1 + halo share (1 + cache
budget at H=0), nodes = 1 + the 1-hop share at H=0 (the structure-only ring's ids,
degrees, offsets, owners) (:func:`replication`: a documented *typical* factor, as on a
graph with locality, not a measure of this graph; `benchmarks/scale_run.py` measured 24.1
GiB for 17.7 estimated before structure-only rows were stored empty). With the scan's
degree histogram the report adds the same with the 1-hop share of a graph without
locality (:func:`halo_share_without_locality`): numpy-made uniform / power-law graphs of
10^7 edges at P=8 wrote 2.06 / 1.87 GiB against 1.21 typical and 2.24 / 1.99 without
locality (issue 12 review: the typical share alone was 0.34x of a power-law graph at P=32).

Constants measured on this 2-core / 24 GB machine on 2026-12-01 with
``PYTHONPATH=. .venv/bin/python benchmarks/estimate_check.py /tmp/work --papers /tmp/papers``
(whole-run ``/usr/bin/time -v`` Maximum resident set size against the estimate; table in
benchmarks/README.md) and the CLI's per-stage peaks of ``giantgcn-partition --input
synthetic:nodes=100000`` and ``synthetic:nodes=1000000`` (metis, kaminpar, float16):
BASE from the read stage less the features and per-node arrays (165 MiB; the imports
alone, ``python -c "import partition.cli, numba, pymetis, ..."``, are 98 MiB), chunk from
the csr stage less csr_stage_bytes, PARTITION_FIXED and the write constants from the two
sizes' stage differences, KaMinPar from its partition stage at 10^6 nodes. Not measured
at 10^8 edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from partition.graph.coarsen import contracted_edges, contraction_target, metis_bytes
from partition.graph.csr import csr_scratch_bytes, csr_stage_bytes
from partition.graph.csr_external import index_dtype
from partition.graph.spill import MAP_MIN_BYTES
from partition.wording import counted

BASE_RSS_BYTES = 165 << 20
"""Interpreter, numpy, numba (and its compiled kernels), pymetis, tqdm: resident before any data."""
NODE_BYTES_PER_NODE = 46
"""Labels (int64), splits, train mask, degree and part arrays held through the run."""
READER_CHUNK_BYTES = 100 << 20
"""Most bytes of one chunk of edges being parsed or generated, with its temporaries."""
READER_BYTES_PER_EDGE = 90
"""A chunk's bytes per raw edge (a graph smaller than one chunk)."""
PARTITION_FIXED_BYTES = 64 << 20
"""The partition stage's kernels and balance statistics, whatever the method."""
CONTRACT_BYTES_PER_NODE = 48
CONTRACT_BYTES_PER_EDGE = 8
"""The first contraction level beside the full CSR, per node (order, labels, clusters,
their sort: int64 each) and per raw input edge (the first cluster graph, which keeps up
to ~40% of a graph without locality). Measured 2026-12-02 on 10^6 nodes (peak above the
CSR while contracting): 106 / 169 MiB for uniform random ends at 5 / 10 edges per node
(the model: 88 / 128), 91 MiB power-law at 5 (88), 66 MiB on our synthetic graph at 8.8
(118: it keeps fewer edges). METIS then runs on at most the target's share of nodes and
edges (:func:`partition.graph.coarsen.contracted_edges`) with the full CSR parked, so
the stage holds the larger of the two, not their sum."""
KAMINPAR_BYTES_PER_NODE = 64
KAMINPAR_BYTES_PER_EDGE = 72
"""KaMinPar (PyPI 3.7.3, 2 threads, 8 parts) resident bytes per undirected edge on a graph
made outside the project. Its coarse levels, not its input, set its memory, so the cost
depends on how well the graph clusters: ``benchmarks/kaminpar_memory.py`` (2026-12-02,
10^6 nodes) measured 84 / 96 / 90 / 80 B/edge for uniform random ends at 2.5 / 5 / 10 / 20
edges per node and 56 / 68 / 53 for power-law ends at 5 / 10 / 20 (with the 64 B/node
term the model is 0.88-1.16 of the uniform and 1.15-1.5 of the power-law figures; a
header cannot tell the two apart)."""
KAMINPAR_SYNTHETIC_EDGE_BYTES_AT = ((4.9, 71.0), (9.7, 27.0), (20.0, 66.0))
"""The same on our synthetic graph (``synthetic:`` input), by mean degree E/N, linear
between and constant outside: 71 B/edge at E/N 4.9, 28.8 and 27.3 at 9-10 (10^6 nodes /
9·10^6 edges, 10^7 / 10^8), 65.7-68.4 at 20 (10^6 to 10^7 nodes). One run outside that
trend: 2.5·10^7 nodes / 5·10^8 edges at E/N 20 (``benchmarks/scale_run.py``) peaked at
~35 B/edge, where the model over-states KaMinPar 1.8x (the estimate then asks for
``--ignore-memory-estimate`` on a 24 GB machine the run fits in)."""
KAMINPAR_BYTES_PER_EDGE_PART = 0.45
"""KaMinPar per undirected edge and per part above 8 (its refinement keeps per-(node, block)
state for nodes with edges). Issue 12 review (2026-12-02, numpy-made graphs): 10^6 nodes /
10^7 uniform edges peaked 0.99 / 1.07 / 1.09 GiB at 4 / 16 / 32 parts (~4.4 MB per part);
2.5·10^7 nodes, 10^7 edges among 4% of them, 3.30 / 3.48 GiB at 8 / 64 parts (~3.4 MB per
part): per edge, not per node (the former 20 B/node/part, fitted when the per-edge cost
was under-stated 3x, asked for 29.5 GiB for that 3.5 GiB run and refused it)."""
WRITE_FIXED_BYTES = 94 << 20
WRITE_BYTES_PER_EDGE = 9
"""The write stage's halo sets and per-part arrays: fixed, and per raw input edge."""
WRITE_MAPPED_PARTS = 2.0
"""Parts' worth of a memory-mapped CSR resident in the write stage: the part being written
and the rows its halo reads from other parts. Fitted on one point, ``benchmarks/scale_run.py``
on 2026-12-02 (8 parts, 4.2 GB CSR: write stage 7.30 GiB measured, 9.58 estimated with the
whole CSR resident, 6.60 with this: 0.90)."""
IN_MEMORY_FEATURE_BYTES = 1 << 26
"""Stored features up to this size stay in RAM (partition.readers.features.IN_MEMORY_BYTES)."""
HALO1_SHARE_PER_DOUBLING = 1.0
"""1-hop halo rows per inner row, per doubling of the part count: ``min(P - 1, this x
log2 P)``, typical of a graph with locality. Measured (issue 15's table, 2·10^5 nodes): 0.61 / 1.80 / 2.83 /
3.37 at P = 2 / 8 / 32 / 64 on the default synthetic graph (0.6 per doubling), 0.32-1.42
products-like; a power-law npy graph at P = 32 ~8 (issue 12 review), a uniform random
graph reaches P - 1 (every part holds almost every node). At ``--halo-hops >= 2`` the
share is P - 1: 7.95 rows per node at P = 8, 29.9 at P = 32 on synthetic."""
TORCH_IMPORT_BYTES = 180 << 20
"""RSS of ``import torch`` (the ``pt:`` reader's), measured on this machine (torch 2.13 CPU)."""

STAGES = ("read", "csr", "partition", "write")


@dataclass(frozen=True)
class StageEstimate:
    """One stage: its peak resident memory and the disk it adds (bytes)."""

    name: str
    peak_rss_bytes: int
    scratch_bytes: int
    output_bytes: int


@dataclass(frozen=True)
class RunEstimate:
    """All stages; the run's peak is the largest stage peak, its disk the sums."""

    stages: tuple[StageEstimate, ...]

    @property
    def peak_rss_bytes(self) -> int:
        return max(s.peak_rss_bytes for s in self.stages)

    @property
    def scratch_bytes(self) -> int:
        return sum(s.scratch_bytes for s in self.stages)

    @property
    def output_bytes(self) -> int:
        return sum(s.output_bytes for s in self.stages)

    @property
    def disk_bytes(self) -> int:
        """Free disk the run needs at --out's parent (scratch lives beside --out)."""
        return self.scratch_bytes + self.output_bytes


@dataclass(frozen=True)
class RunShape:
    """What the estimate depends on. ``num_edges``: raw input edges (directed as listed,
    duplicates included), an upper bound of the undirected edges; ``distinct_edges``: the
    distinct undirected edges without self loops when a scan of the edge list counted them
    (:func:`partition.estimate_input.count_distinct_edges`), else None (``num_edges`` is
    used). ``features_in_memory``: the source holds its float32 matrix in RAM (synthetic,
    pt, planetoid). ``synthetic``: the graph is our generator's, whose locality KaMinPar
    coarsens better than a graph without it (:data:`KAMINPAR_SYNTHETIC_EDGE_BYTES_AT`)."""

    num_nodes: int
    num_edges: int
    num_features: int
    feature_dtype: str = "float32"
    num_parts: int = 4
    halo_hops: int = 1
    cache_budget: float = 0.0
    method: str = "metis"
    memory_budget: int | None = None
    metis_max_nodes: int | None = None
    metis_max_edges: int | None = None
    features_in_memory: bool = True
    source_itemsize: int = 4
    """Bytes per value of the source's feature matrix (8 for a float64 ``pt:`` x)."""
    imports_torch: bool = False
    """The reader imports torch (``pt:``): TORCH_IMPORT_BYTES more in every stage."""
    distinct_edges: int | None = None
    synthetic: bool = False
    degree_histogram: tuple[np.ndarray, np.ndarray] | None = field(default=None, compare=False)
    """(degrees, node counts) over the listed edges, from the same scan; None: unknown."""

    @property
    def undirected_edges(self) -> int:
        """Edges of the CSR to be built (undirected): the scan's count, else the raw count."""
        return self.num_edges if self.distinct_edges is None else self.distinct_edges


def feature_itemsize(dtype: str) -> int:
    """Bytes per stored feature value: 4 for float32, 2 for float16 / bfloat16."""
    return 4 if dtype == "float32" else 2


def source_feature_bytes(shape: RunShape) -> int:
    """Feature bytes the reader holds in RAM: the matrix of an in-memory source."""
    return shape.num_nodes * shape.num_features * shape.source_itemsize if shape.features_in_memory else 0


def held_feature_bytes(shape: RunShape) -> int:
    """Feature bytes resident after the read stage (module docstring)."""
    stored = shape.num_nodes * shape.num_features * feature_itemsize(shape.feature_dtype)
    if shape.feature_dtype == "float32" and shape.source_itemsize == 4:
        return source_feature_bytes(shape)  # used as is (a memmap stays one)
    return stored if stored <= IN_MEMORY_FEATURE_BYTES else 0  # else a scratch file


def csr_bytes(num_nodes: int, num_edges: int) -> int:
    """The built CSR: int64 indptr [N+1] and column ids [2E] (int32 when N < 2^31)."""
    return 8 * (num_nodes + 1) + 2 * num_edges * np.dtype(index_dtype(num_nodes)).itemsize


def write_csr_bytes(num_nodes: int, num_edges: int, num_parts: int) -> int:
    """Bytes of the CSR resident during the write stage: all of it below
    :data:`partition.graph.spill.MAP_MIN_BYTES`, else WRITE_MAPPED_PARTS parts' share of it
    (the write stage maps it from scratch and makes one pass per part)."""
    graph = csr_bytes(num_nodes, num_edges)
    if graph < MAP_MIN_BYTES:
        return graph
    return int(graph * min(1.0, WRITE_MAPPED_PARTS / max(num_parts, 1)))


def kaminpar_bytes_per_edge(mean_degree: float, synthetic: bool = False) -> float:
    """KaMinPar's resident bytes per undirected edge: :data:`KAMINPAR_BYTES_PER_EDGE`, or on
    our synthetic graph at ``mean_degree`` edges per node
    :data:`KAMINPAR_SYNTHETIC_EDGE_BYTES_AT` (interpolated linearly, constant outside)."""
    if not synthetic:
        return float(KAMINPAR_BYTES_PER_EDGE)
    degrees, costs = zip(*KAMINPAR_SYNTHETIC_EDGE_BYTES_AT, strict=True)
    return float(np.interp(mean_degree, degrees, costs))


def partitioner_bytes(shape: RunShape) -> int:
    """The partitioner's own peak (bytes) on top of the CSR (module docstring)."""
    n, e = shape.num_nodes, shape.undirected_edges
    if shape.method == "random":
        return 0
    if shape.method == "kaminpar":
        per_part = KAMINPAR_BYTES_PER_EDGE_PART * e * max(0, shape.num_parts - 8)
        per_edge = kaminpar_bytes_per_edge(e / max(n, 1), shape.synthetic)
        return int(KAMINPAR_BYTES_PER_NODE * n + per_edge * e + per_part)
    if shape.metis_max_edges is not None and shape.metis_max_edges < e:
        return metis_bytes(n, shape.metis_max_edges) + 16 * shape.metis_max_edges
    stored = n * shape.num_features * feature_itemsize(shape.feature_dtype)
    target = contraction_target(n, e, stored, shape.metis_max_nodes)
    if target is None:
        return metis_bytes(n, e)
    # the CSR is parked while METIS runs on the clusters: the larger phase, beside the CSR
    contracting = CONTRACT_BYTES_PER_NODE * n + CONTRACT_BYTES_PER_EDGE * e
    return max(contracting, metis_bytes(target, contracted_edges(n, e, target)) - csr_bytes(n, e))


def replication(halo_hops: int, cache_budget: float, num_parts: int) -> float:
    """Stored feature rows per node: 1 + halo share (typical), at most ``num_parts``."""
    if num_parts <= 1:
        return 1.0
    if halo_hops == 0:
        share = cache_budget
    elif halo_hops == 1:
        share = HALO1_SHARE_PER_DOUBLING * float(np.log2(num_parts))
    else:
        share = num_parts - 1.0
    return min(float(num_parts), 1.0 + share)


def _reached_parts(shape: RunShape) -> tuple[np.ndarray, np.ndarray] | None:
    """(other parts a node of each histogram degree reaches with random neighbour parts,
    ``(P-1)·(1 - (1 - 1/P)^d)``; node counts), ``d`` the CSR degree (the listed degree
    scaled by distinct / listed edges); None without the scan's degree histogram."""
    if shape.degree_histogram is None:
        return None
    degrees, counts = shape.degree_histogram
    listed = max(int((degrees * counts).sum()) // 2, 1)
    p = max(shape.num_parts, 1)
    scale = shape.undirected_edges / listed
    return (p - 1) * (1.0 - (1.0 - 1.0 / p) ** (degrees * scale)), counts


def halo_share_without_locality(shape: RunShape) -> float | None:
    """1-hop halo rows per node if the parts had no locality (each neighbour in a part
    drawn at random): the mean over nodes of :func:`_reached_parts`. An upper bound in
    practice: METIS and KaMinPar keep neighbours together where the graph lets them (on
    our synthetic graph 1.8 at P=8, where this gives ~6). None without the scan's degree
    histogram."""
    reached = _reached_parts(shape)
    if reached is None or shape.num_nodes == 0:
        return None if reached is None else 0.0
    parts, counts = reached
    return float((parts * counts).sum() / shape.num_nodes)


def typical_halo1_share(shape: RunShape) -> float:
    """1-hop halo rows per node, typical of a graph with locality: HALO1_SHARE_PER_DOUBLING
    x log2 P, and with the scan's degree histogram at most each node's
    :func:`_reached_parts` (an isolated node is in no halo: issue 12 review, a graph of
    mostly isolated nodes wrote half the estimated output)."""
    if shape.num_parts <= 1:
        return 0.0
    typical = min(shape.num_parts - 1.0, HALO1_SHARE_PER_DOUBLING * float(np.log2(shape.num_parts)))
    reached = _reached_parts(shape)
    if reached is None or shape.num_nodes == 0:
        return typical
    parts, counts = reached
    return float((np.minimum(parts, typical) * counts).sum() / shape.num_nodes)


def stored_rows(shape: RunShape) -> float:
    """Feature rows stored per node in the typical estimate (what the report prints)."""
    if shape.halo_hops == 1:
        return min(float(max(shape.num_parts, 1)), 1.0 + typical_halo1_share(shape))
    return replication(shape.halo_hops, shape.cache_budget, shape.num_parts)


def output_bytes_without_locality(shape: RunShape) -> int | None:
    """:func:`output_bytes` with :func:`halo_share_without_locality` as the 1-hop share
    (the most a 1-hop halo can hold short of every part holding every node); None when
    the share is unknown or the halo depth does not use it (``--halo-hops`` >= 2)."""
    share = halo_share_without_locality(shape)
    if share is None or shape.halo_hops >= 2:
        return None
    return output_bytes(shape, share)


def output_bytes(shape: RunShape, halo1_share: float | None = None) -> int:
    """The dataset directory's size (bytes): feature rows and labels (``rows`` per node),
    ids, degrees, offsets and owners of every local node (``nodes`` per node: the
    structure-only ring counts at H=0 too), part CSRs (int64). ``halo1_share``: 1-hop
    halo rows per node to use instead of :func:`typical_halo1_share`."""
    rows = replication(shape.halo_hops, shape.cache_budget, shape.num_parts)
    nodes = replication(max(shape.halo_hops, 1), 0.0, shape.num_parts)
    share = typical_halo1_share(shape) if halo1_share is None else halo1_share
    if shape.halo_hops <= 1:
        nodes = min(float(max(shape.num_parts, 1)), 1.0 + share)
        rows = nodes if shape.halo_hops == 1 else rows
    feature_row = shape.num_features * feature_itemsize(shape.feature_dtype) + 8  # x and y
    per_node = 8 + 8 + 8 + 4  # global_ids, degree, indptr, halo_part
    # at H=0 inner rows are the CSR, and cached rows add about their share (FORMAT.md)
    return int(rows * shape.num_nodes * feature_row + nodes * shape.num_nodes * per_node
               + rows * 2 * shape.undirected_edges * 8)


def scratch_bytes(shape: RunShape) -> tuple[int, int]:
    """(csr stage, partition stage) scratch disk beside --out (bytes)."""
    n, e = shape.num_nodes, shape.undirected_edges
    stored = n * shape.num_features * feature_itemsize(shape.feature_dtype)
    feat = stored if stored > IN_MEMORY_FEATURE_BYTES and shape.feature_dtype != "float32" else 0
    # KaMinPar's input file, and our CSR parked beside it while KaMinPar runs
    kaminpar = 24 + 2 * csr_bytes(n, e) if shape.method == "kaminpar" else 0
    return csr_scratch_bytes(n, shape.num_edges, shape.memory_budget) + feat, kaminpar


def estimate_run(shape: RunShape) -> RunEstimate:
    """Per-stage peak RSS and disk of a run of ``shape`` (module docstring's formulas)."""
    n, e, raw = shape.num_nodes, shape.undirected_edges, shape.num_edges
    base = BASE_RSS_BYTES + NODE_BYTES_PER_NODE * n + (TORCH_IMPORT_BYTES if shape.imports_torch else 0)
    common = base + held_feature_bytes(shape)
    chunk = min(READER_CHUNK_BYTES, READER_BYTES_PER_EDGE * raw)
    graph = csr_bytes(n, e)
    csr_scratch, part_scratch = scratch_bytes(shape)
    return RunEstimate((
        StageEstimate("read", base + source_feature_bytes(shape) + chunk, 0, 0),
        StageEstimate("csr", common + chunk + csr_stage_bytes(n, raw, shape.memory_budget), csr_scratch, 0),
        StageEstimate("partition", common + PARTITION_FIXED_BYTES + (
                          # KaMinPar loads its own copy with ours parked in scratch (spill.py)
                          max(graph, partitioner_bytes(shape)) if shape.method == "kaminpar"
                          else graph + partitioner_bytes(shape)),
                      part_scratch, 0),
        StageEstimate("write", common + write_csr_bytes(n, e, shape.num_parts) + WRITE_FIXED_BYTES
                      + WRITE_BYTES_PER_EDGE * e, 0,
                      output_bytes(shape)),
    ))


def _lowers_peak(shape: RunShape, **change) -> bool:
    """Whether the run with ``change`` applied has a lower estimated peak RSS than ``shape``."""
    return estimate_run(replace(shape, **change)).peak_rss_bytes < estimate_run(shape).peak_rss_bytes


def _peak_stage(shape: RunShape) -> str:
    est = estimate_run(shape)
    return max(est.stages, key=lambda st: st.peak_rss_bytes).name


def _lowering(shape: RunShape) -> list[tuple[str, str]]:
    """(flag, phrase) of each option that lowers this run's peak or disk: the partitioner
    and ``--memory-budget`` only where the estimate says they do (issue 12 review: KaMinPar
    was offered where contracted METIS needs half its memory, a budget where the CSR stage
    is not the peak)."""
    opts = []
    if shape.feature_dtype == "float32":
        opts.append(("--feature-dtype float16", "--feature-dtype float16 (half the feature bytes in RAM and on disk)"))
    if _peak_stage(shape) == "csr":
        opts.append(("--memory-budget", "--memory-budget SIZE (CSR stage out of core, scratch disk instead of RAM)"))
    if shape.method == "metis" and _peak_stage(shape) == "partition":
        if _lowers_peak(shape, method="kaminpar"):
            opts.append(("--method kaminpar", "--method kaminpar"))
        opts.append(("--metis-max-nodes, --metis-max-edges",
                     "METIS on a contraction/sample: --metis-max-nodes N, --metis-max-edges E"))
    if shape.method == "kaminpar" and _lowers_peak(shape, method="metis"):
        opts.append(("--method metis", "--method metis (contracted when large: less memory here)"))
    if shape.halo_hops > 1:
        opts.append(("fewer --halo-hops", f"fewer --halo-hops (now {shape.halo_hops}; less output disk)"))
    if shape.halo_hops > 0:
        opts.append(("--halo-hops 0 --cache-budget",
                     "--halo-hops 0 --cache-budget F (store only the most-reached boundary rows)"))
    return opts


def lowering_options(shape: RunShape) -> list[str]:
    """The options that would lower this run's peak or disk, one short phrase each."""
    return [phrase for _, phrase in _lowering(shape)]


def lowering_flags(shape: RunShape) -> str:
    """The flags of :func:`lowering_options`, comma-separated, for the one-line refusal."""
    return ", ".join(flag for flag, _ in _lowering(shape)) or "a machine with more memory"


def disk_lowering_flags(shape: RunShape) -> str:
    """The flags that lower the output and scratch disk, comma-separated, for the disk
    refusal (``--memory-budget`` and the partitioner choices change memory, not disk)."""
    flags = ["--feature-dtype float16"] if shape.feature_dtype == "float32" else []
    if shape.halo_hops > 1:
        flags.append("fewer --halo-hops")
    if shape.halo_hops > 0:
        flags.append("--halo-hops 0 --cache-budget")
    elif shape.cache_budget > 0:
        flags.append("a smaller --cache-budget")
    if shape.memory_budget is not None:
        flags.append("a larger --memory-budget (less scratch)")
    return ", ".join(flags) or "an --out on a disk with more room"


def gib(nbytes: int) -> str:
    """``nbytes`` as GiB with two decimals (powers of 1024)."""
    return f"{nbytes / 2**30:.2f}"


def format_estimate(est: RunEstimate, shape: RunShape, notes: list[str]) -> str:
    """The ``--dry-run`` report: one row per stage, the totals, notes, and the lowering options."""
    lines = [f"estimate for {shape.num_nodes:,} nodes, {shape.num_edges:,} input edges, "
             f"{shape.num_features} features x {shape.feature_dtype}, {counted(shape.num_parts, 'part')}, "
             f"method {shape.method}, halo {counted(shape.halo_hops, 'hop')}",
             f"{'stage':<10} {'peak RSS GiB':>13} {'scratch GiB':>12} {'output GiB':>11}"]
    for s in est.stages:
        lines.append(f"{s.name:<10} {gib(s.peak_rss_bytes):>13} {gib(s.scratch_bytes):>12} "
                     f"{gib(s.output_bytes):>11}")
    lines.append(f"{'total':<10} {gib(est.peak_rss_bytes):>13} {gib(est.scratch_bytes):>12} "
                 f"{gib(est.output_bytes):>11}   (peak = largest stage; disk {gib(est.disk_bytes)} GiB)")
    lines += [f"note: {n}" for n in notes]
    lines.append("output size is a typical estimate (halo replication "
                 f"{stored_rows(shape):.1f}x rows, as on a "
                 "graph with locality)")
    upper = output_bytes_without_locality(shape)
    if upper is not None and upper > 1.05 * est.output_bytes:
        share = halo_share_without_locality(shape)
        lines.append(f"output without locality: up to {gib(upper)} GiB (the 1-hop ring "
                     f"{1 + share:.1f}x nodes from the degrees; a graph whose neighbours the "
                     "partitioner cannot keep together, e.g. random ends, comes close)")
    lines.append("lower it with: " + "; ".join(lowering_options(shape)))
    return "\n".join(lines)
