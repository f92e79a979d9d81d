"""``giantgcn-partition`` (also ``python -m partition``): graph in, dataset directory out.

    giantgcn-partition --input synthetic --num-parts 4 --out data/synthetic-4
    giantgcn-partition --verify data/synthetic-4

Stages: read the source, build the CSR, partition (METIS, KaMinPar or random), write the parts
(halo, features, checksums, manifest last, atomically). Bad input gives one line
``giantgcn-partition: error: ...`` on stderr and exit status 2; checks that need no
data (flags, the output directory) run before the long work starts.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from partition.errors import InputError, print_error_line

if TYPE_CHECKING:
    from partition.readers.features import FeatureOptions

PROG = "giantgcn-partition"
METHODS = ("metis", "random", "kaminpar")
FEATURE_DTYPES = ("float32", "float16", "bfloat16")  # partition.readers.features (not imported: fast --help)
NORMALIZATIONS = ("none", "row", "standard")


class _Parser(argparse.ArgumentParser):
    """Argument errors as InputError: one line, no usage dump."""

    def error(self, message: str):  # type: ignore[override]
        raise InputError(f"{message} (see --help)")


def _parser() -> argparse.ArgumentParser:
    ap = _Parser(prog=PROG, description="Partition a graph into on-disk shards for giantgcn-train.")
    ap.add_argument("--input", default="synthetic", metavar="SPEC",
                    help="synthetic[:key=value,...] (default), planetoid:NAME, ogb:DIR[#SPLIT], "
                         "npy:DIR or pt:FILE")
    ap.add_argument("--root", metavar="DIR", help="folder holding planetoid datasets")
    ap.add_argument("--out", metavar="DIR", help="dataset directory to create (required unless --verify)")
    ap.add_argument("--num-parts", type=int, default=4, metavar="P", help="parts (default 4)")
    ap.add_argument("--method", choices=METHODS, default="metis",
                    help="default metis; kaminpar needs less memory at about the same cut "
                         "(pip install kaminpar)")
    ap.add_argument("--seed", type=int, default=0, metavar="S", help="partitioner seed (default 0)")
    ap.add_argument("--halo-hops", type=int, default=1, metavar="H",
                    help="halo depth around each part (default 1; 0 = no halo)")
    ap.add_argument("--cache-budget", type=float, default=0.0, metavar="F",
                    help="with --halo-hops 0: also store the feature rows of the F x inner-node-count "
                         "boundary nodes most reached from the part (exact mode's cache; default 0)")
    ap.add_argument("--metis-max-edges", type=float, metavar="E",
                    help="run METIS on a uniform sample of about E undirected edges (METIS needs "
                         "~85 bytes per edge: 10^8 edges want ~20 GB); cut and balance are still "
                         "those of the full graph (default: every edge)")
    ap.add_argument("--metis-max-nodes", type=float, metavar="N",
                    help="contract the graph by size-constrained label propagation to at most about N "
                         "clusters before METIS (METIS needs ~190 bytes per node); default: only when "
                         "METIS's estimate exceeds the stored feature matrix and 256 MiB, to N/16")
    ap.add_argument("--feature-dtype", choices=FEATURE_DTYPES, default="float32",
                    help="dtype of the stored features (default float32); float16 / bfloat16 halve "
                         "shard bytes and each rank's feature memory, the trainer computes in float32")
    ap.add_argument("--normalize-features", choices=NORMALIZATIONS, default="none",
                    help="row: each row divided by its sum (Kipf & Welling's GCN); standard: each "
                         "column to mean 0, std 1 over the whole graph (default none)")
    ap.add_argument("--memory-budget", default="auto", metavar="SIZE",
                    help="most memory the CSR build may hold, e.g. 8G or 500M (powers of 1024); "
                         "above it the CSR is built out of core, sorted runs spilled beside --out "
                         "(same CSR). Default auto: half the memory available at start")
    ap.add_argument("--dry-run", action="store_true",
                    help="read only sizes and headers, print the expected peak memory and disk per "
                         "stage and the options that lower them, write nothing, exit 0")
    ap.add_argument("--ignore-memory-estimate", action="store_true",
                    help="run even when the estimated peak memory or disk exceeds what is free")
    ap.add_argument("--force", action="store_true", help="replace an existing dataset at --out")
    ap.add_argument("--quiet", action="store_true",
                    help="no progress bars (the summary table is still printed)")
    ap.add_argument("--verify", metavar="DIR",
                    help="check an existing dataset (checksums, ids) instead of partitioning")
    return ap


def _validate(args: argparse.Namespace) -> None:
    if args.verify is not None:
        if args.out is not None:
            raise InputError("--verify and --out cannot be used together")
        return
    if args.out is None and not args.dry_run:
        raise InputError("--out: required (the dataset directory to create)")
    if args.num_parts < 1:
        raise InputError(f"--num-parts: {args.num_parts} is not >= 1")
    if args.halo_hops < 0:
        raise InputError(f"--halo-hops: {args.halo_hops} is not >= 0")
    if not math.isfinite(args.cache_budget) or args.cache_budget < 0:
        raise InputError(f"--cache-budget: {args.cache_budget} is not a finite fraction >= 0")
    if args.cache_budget > 0 and args.halo_hops > 0:
        raise InputError(f"--cache-budget: only with --halo-hops 0 (with --halo-hops {args.halo_hops} "
                         "every boundary row is stored already)")
    if args.metis_max_edges is not None and not args.metis_max_edges >= 1:
        raise InputError(f"--metis-max-edges: {args.metis_max_edges:g} is not >= 1")
    if args.metis_max_nodes is not None and not args.metis_max_nodes >= 1:
        raise InputError(f"--metis-max-nodes: {args.metis_max_nodes:g} is not >= 1")
    if args.seed < 0:
        raise InputError(f"--seed: {args.seed} is not >= 0")
    _validate_method(args)
    args.memory_budget_bytes = _memory_budget(args.memory_budget)


def _validate_method(args: argparse.Namespace) -> None:
    """METIS's own flags only with METIS; a missing kaminpar before hours of reading."""
    for flag, value in (("--metis-max-edges", args.metis_max_edges),
                        ("--metis-max-nodes", args.metis_max_nodes)):
        if value is not None and args.method != "metis":
            raise InputError(f"{flag}: only with --method metis, not {args.method}")
    if args.method == "kaminpar":
        from partition.graph.kaminpar import require_kaminpar

        require_kaminpar()  # an import that fails says so in one line, before the reading


AUTO_BUDGET_FRACTION = 0.5
"""``--memory-budget auto``: this share of the memory available when the run starts, so a
graph that would not fit is built out of core instead of being killed (the rest is left
to the reader's chunk, the features and other processes)."""


def _memory_budget(text: str) -> int:
    from partition.sizes import parse_size

    if text.strip().lower() == "auto":
        import psutil

        return int(psutil.virtual_memory().available * AUTO_BUDGET_FRACTION)
    return parse_size(text, "--memory-budget")


def _run_shape(args: argparse.Namespace, scan: bool = True):
    """(RunShape, notes) of this run, from the input's sizes and headers, and with ``scan``
    one pass over its edge list that counts the distinct undirected edges."""
    from partition.estimate import RunShape
    from partition.estimate_input import count_distinct_edges, edge_stream, input_sizes
    from partition.graph.csr_external import min_budget

    sizes = input_sizes(args.input, args.root)
    distinct, histogram, notes = None, None, list(sizes.notes)
    stream = edge_stream(args.input, args.root, sizes.num_nodes) if scan else None
    if stream is not None:
        count = count_distinct_edges(stream, sizes.num_nodes, sizes.num_edges)
        distinct, histogram = count.distinct, count.degree_histogram
        notes.append(f"{count.listed:,} listed edges: {count.self_loops:,} self loops, "
                     f"{'~' if count.sampled else ''}{count.distinct:,} distinct undirected edges "
                     f"(what the CSR holds; counted in one pass over the edge list"
                     f"{', on a node sample' if count.sampled else ''})")
    budget = args.memory_budget_bytes
    if args.memory_budget.strip().lower() == "auto":
        budget = max(budget, min_budget(sizes.num_nodes))
    shape = RunShape(
        num_nodes=sizes.num_nodes, num_edges=sizes.num_edges, num_features=sizes.num_features,
        feature_dtype=args.feature_dtype, num_parts=args.num_parts, halo_hops=args.halo_hops,
        cache_budget=args.cache_budget, method=args.method, memory_budget=budget,
        metis_max_nodes=None if args.metis_max_nodes is None else int(args.metis_max_nodes),
        metis_max_edges=None if args.metis_max_edges is None else int(args.metis_max_edges),
        features_in_memory=sizes.features_in_memory, source_itemsize=sizes.source_itemsize,
        imports_torch=sizes.imports_torch, distinct_edges=distinct, degree_histogram=histogram,
        synthetic=args.input.partition(":")[0] == "synthetic")
    return shape, notes


def _dry_run(args: argparse.Namespace) -> int:
    from partition.estimate import estimate_run, format_estimate

    shape, notes = _run_shape(args)
    if args.num_parts > shape.num_nodes:  # what the real run would refuse, refused here too
        raise InputError(f"--num-parts: {args.num_parts} is more than the graph's {shape.num_nodes} nodes")
    if args.out is not None:
        notes = [*notes, *_out_notes(Path(args.out), args.force)]
    print(format_estimate(estimate_run(shape), shape, notes))
    return 0


def _out_notes(out: Path, force: bool) -> list[str]:
    """What the real run would say about ``--out`` before any work (``check_out_dir``'s
    refusals, and --force needed), as dry-run notes; empty when it would go ahead."""
    from partition.store.atomic_dir import check_out_dir

    try:
        check_out_dir(out, True)  # what even --force cannot get past: a file, not a dataset, ...
    except InputError as err:
        return [f"the real run would refuse: {err}"]
    if (out.exists() or out.is_symlink()) and not force:
        return [f"--out {out} exists: the real run needs --force to replace it"]
    return []


def _existing_parent(path: Path) -> Path:
    """The nearest folder at or above ``path``'s parent that exists (where scratch and --out go)."""
    p = path.absolute().parent
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_estimate(args: argparse.Namespace, out: Path) -> None:
    """Refuse up front (InputError) when the estimate exceeds free memory or free disk."""
    import shutil

    import psutil

    from partition.estimate import disk_lowering_flags, estimate_run, gib, lowering_flags

    if args.input.partition(":")[0] in ("pt", "planetoid"):
        return  # small by nature, and their sizes need a full load: not worth reading twice
    try:
        shape, _ = _run_shape(args, scan=False)
        est = estimate_run(shape)
        if est.peak_rss_bytes > psutil.virtual_memory().available or \
                est.disk_bytes > shutil.disk_usage(_existing_parent(out)).free:
            # the raw count over-states a list of duplicates or two-way listings: count
            # before refusing (a pass over the edges, which the run makes anyway)
            shape, _ = _run_shape(args)
            est = estimate_run(shape)
    except InputError:
        return  # the reader reports what is wrong with the input, in its own words
    lower = lowering_flags(shape)
    available = psutil.virtual_memory().available
    if est.peak_rss_bytes > available:
        raise InputError(f"estimated peak {gib(est.peak_rss_bytes)} GiB exceeds the {gib(available)} "
                         f"GiB available; lower it with {lower} or pass --ignore-memory-estimate")
    parent = _existing_parent(out)
    free = shutil.disk_usage(parent).free
    if est.disk_bytes > free:
        raise InputError(f"estimated disk {gib(est.disk_bytes)} GiB exceeds the {gib(free)} GiB free "
                         f"at {parent}; lower it with {disk_lowering_flags(shape)} or pass "
                         "--ignore-memory-estimate")


def _partition(args: argparse.Namespace) -> int:
    from partition.readers.features import FeatureOptions
    from partition.store.atomic_dir import check_out_dir, scratch_dir

    out = Path(args.out)
    if not args.ignore_memory_estimate:
        check_estimate(args, out)
    check_out_dir(out, args.force)
    with scratch_dir(out) as scratch:
        return _run(args, out, FeatureOptions(args.feature_dtype, args.normalize_features, scratch))


def _run(args: argparse.Namespace, out: Path, features: FeatureOptions) -> int:
    import numpy as np

    from partition.graph.csr import build_csr
    from partition.graph.csr_external import min_budget
    from partition.graph.partitioners import partition_nodes, partition_stats
    from partition.progress import map_big_allocations, peak_rss_bytes, stage, summary_table
    from partition.readers.source_graph import split_mask
    from partition.readers.sources import read_source
    from partition.store.format import write_dataset
    from partition.wording import counted

    map_big_allocations()  # freed big arrays leave RSS at once, not at the stage's end
    bars = not args.quiet and sys.stderr.isatty()
    timings: dict[str, float] = {}
    rss: dict[str, int] = {}
    with stage("read", timings, bars, rss=rss):
        graph = read_source(args.input, args.root, features)
    for line in graph.warnings:
        print_error_line(f"{PROG}: warning: {line}")
    if args.num_parts > graph.num_nodes:
        raise InputError(f"--num-parts: {args.num_parts} is more than the graph's "
                         f"{graph.num_nodes} nodes")
    budget = args.memory_budget_bytes
    if args.memory_budget.strip().lower() == "auto":  # never refuse a budget the user did not set
        budget = max(budget, min_budget(graph.num_nodes))
    with stage("csr", timings, bars, unit="edges", rss=rss) as update:
        csr = build_csr(graph.num_nodes, graph.edge_chunks, progress=update,
                        memory_budget=budget, scratch=features.scratch)
    train_mask = split_mask(graph.num_nodes, np.asarray(graph.train_idx, dtype=np.int64))
    if args.method == "kaminpar":
        from partition.graph.kaminpar import default_threads

        if default_threads() > 1:  # the --seed promise does not hold: say so, never silently
            print_error_line(f"{PROG}: warning: --method kaminpar runs on {default_threads()} cores, "
                             "so its partition can differ between runs of the same --seed; "
                             "taskset -c 0 giantgcn-partition ... reproduces it")
    with stage("partition", timings, bars, rss=rss,
               desc=f"partition ({args.method}, {counted(args.num_parts, 'part')})"):
        max_edges = None if args.metis_max_edges is None else int(args.metis_max_edges)
        max_nodes = None if args.metis_max_nodes is None else int(args.metis_max_nodes)
        parts = partition_nodes(args.method, csr, args.num_parts, train_mask, args.seed, max_edges,
                                max_nodes=max_nodes, feature_bytes=int(graph.x.nbytes),
                                scratch=features.scratch)
        stats = partition_stats(csr, parts, train_mask, args.num_parts)
    with stage("write", {}, bars, desc="write parts", total=args.num_parts, unit="parts",
               rss=rss) as update:
        if features.scratch is not None:
            from partition.graph.spill import map_csr

            map_csr(csr, features.scratch)  # per-part passes over the mapped CSR
        manifest = write_dataset(out, graph, csr, parts, args.halo_hops, args.method, args.seed,
                                 num_parts=args.num_parts, force=args.force, stats=stats,
                                 timings=timings, progress=update, cache_budget=args.cache_budget)
    print(summary_table(manifest, str(out), peak_rss_bytes(), rss))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from partition.store.format import load_manifest, verify_dataset
    from partition.wording import counted

    verify_dataset(args.verify)
    m = load_manifest(args.verify)
    size = sum(f["bytes"] for f in m["files"].values())
    print(f"{args.verify}: OK ({counted(m['num_parts'], 'part')}, {m['num_nodes']:,} nodes, "
          f"{m['num_edges']:,} edges; {len(m['files'])} files, {size:,} bytes checked)")
    return 0


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's time limit, ``kill``) unwinds like Ctrl-C: temp files go."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input, 130/143 interrupted)."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        return _main(argv)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> int:
    try:
        args = _parser().parse_args(argv)
        _validate(args)
        if args.verify is not None:
            return _verify(args)
        status = _dry_run(args) if args.dry_run else _partition(args)
        sys.stdout.flush()  # a closed pipe fails here, inside the handler below
        return status
    except BrokenPipeError:
        # the reader of stdout left (`--dry-run | head`): as cat does, stop without a word;
        # stdout goes to /dev/null so the interpreter's own flush at exit cannot fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except InputError as err:
        print_error_line(f"{PROG}: error: {err}")
        return err.exit_code
    except OSError as err:
        if err.filename is None:
            raise  # not about a path the user gave: a real bug, let it show
        print_error_line(f"{PROG}: error: {err.filename}: {err.strerror}")
        return 2
    except KeyboardInterrupt as err:
        print_error_line(f"{PROG}: interrupted; the partial output was removed")
        return 143 if isinstance(err, _Terminated) else 130
