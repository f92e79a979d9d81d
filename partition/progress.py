"""Stage timing, progress bars (stderr) and the closing summary table (stdout) of the CLI."""

from __future__ import annotations

import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm

from partition.wording import counted

TICK_S = 1.0
"""How often a bar without units (METIS, reading) refreshes its elapsed time."""


@contextmanager
def stage(name: str, timings: dict[str, float], enabled: bool, desc: str | None = None,
          total: int | None = None, unit: str | None = None,
          rss: dict[str, int] | None = None) -> Iterator[Callable[[int], None]]:
    """Time a stage into ``timings[name]``; yield ``update(n)`` for its bar (titled ``desc``).

    ``rss[name]`` gets the peak RSS (bytes) seen during this stage alone, polled
    (:class:`RssSampler`; dgl#4798: users cannot predict a partitioner's RAM), or the
    process's high-water mark when it rose during the stage (a poll can be starved).

    Without ``unit`` the bar shows only the elapsed time, refreshed by a ticker thread
    (it ticks whenever the stage releases the GIL).
    """
    fmt = None if unit else "{desc}: {elapsed}"
    bar = tqdm(total=total, desc=desc or name, unit=f" {unit}" if unit else "it",
               unit_scale=total is None, file=sys.stderr,
               disable=not enabled, bar_format=fmt, dynamic_ncols=True, leave=True)
    done = threading.Event()
    ticker = threading.Thread(target=_tick, args=(bar, done), daemon=True)
    if enabled and not unit:
        ticker.start()
    sampler = RssSampler() if rss is not None else None
    high_before = peak_rss_bytes()
    t0 = time.perf_counter()
    try:
        yield bar.update
    finally:
        timings[name] = time.perf_counter() - t0
        if sampler is not None and rss is not None:
            # the poller cannot run while a library holds the GIL (KaMinPar's partition
            # call: it saw 9.7 GiB of an 18.2 GiB stage); a high-water mark that rose
            # during the stage is this stage's own peak
            high = peak_rss_bytes()
            rss[name] = max(sampler.stop(), high if high > high_before else 0)
        trim_heap()  # what this stage freed leaves RSS before the next stage starts
        done.set()
        if ticker.is_alive():
            ticker.join()
        bar.close()


def trim_heap() -> None:
    """Return freed heap memory to the OS (glibc ``malloc_trim(0)``; a no-op elsewhere).

    glibc keeps freed blocks below its (growing) mmap threshold inside the heap, so
    METIS's and numba's temporaries would otherwise stay in RSS through the write stage.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass  # not glibc: nothing to trim


MMAP_THRESHOLD = 1 << 20
"""Allocations from this size up get their own mapping (returned to the OS when freed)."""


def map_big_allocations() -> None:
    """Make glibc give every allocation of ``MMAP_THRESHOLD`` or more its own ``mmap``.

    glibc raises its mmap threshold (up to 32 MiB) each time a mapped block is freed, so
    after the first big temporaries the 8-24 MiB per-node arrays of the CSR, contraction
    and halo builds are carved from the heap and stay in RSS once freed until the next
    ``malloc_trim`` (~40 MiB of the papers-shaped partition stage's peak, measured).
    Fixing the threshold (``mallopt(M_MMAP_THRESHOLD)``) returns each at ``free``.
    A no-op on other C libraries.
    """
    import ctypes
    import ctypes.util

    m_mmap_threshold = -3  # malloc.h
    try:
        ctypes.CDLL(ctypes.util.find_library("c")).mallopt(m_mmap_threshold, MMAP_THRESHOLD)
    except (OSError, AttributeError, TypeError):
        pass  # not glibc


def _tick(bar: tqdm, done: threading.Event) -> None:
    while not done.wait(TICK_S):
        bar.refresh()


class RssSampler:
    """Highest resident set size seen by a thread polling ``psutil`` every ``RSS_POLL_S``.

    Per-stage peaks without touching the kernel's high-water mark (resetting it, as
    ``/proc/self/clear_refs`` does, would also hide the true peak from ``wait4`` and
    ``/usr/bin/time``). A spike shorter than the poll interval can be missed.
    """

    def __init__(self) -> None:
        import psutil

        self._proc, self.peak = psutil.Process(), 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True, name="giantgcn-rss")
        self._poll_once()
        self._thread.start()

    def _poll_once(self) -> None:
        self.peak = max(self.peak, int(self._proc.memory_info().rss))

    def _poll(self) -> None:
        while not self._done.wait(RSS_POLL_S):
            self._poll_once()

    def stop(self) -> int:
        """Stop polling; the peak in bytes."""
        self._done.set()
        self._thread.join()
        self._poll_once()
        return self.peak


RSS_POLL_S = 0.05


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # Linux reports KiB


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


MAX_ROWS = 32
"""Above this many parts the table shows min / mean / max instead of every part."""


def _part_rows(parts: list[dict]) -> list[list[str]]:
    def row(label: str, q: dict) -> list[str]:
        ratio = q["num_halo"] / q["num_inner"] if q["num_inner"] else 0.0
        return [label, f"{q['num_inner']:,.0f}", f"{q['num_halo']:,.0f}", f"{ratio:.2f}",
                f"{q['num_edges']:,.0f}", f"{q['num_train']:,.0f}"]

    keys = ("num_inner", "num_halo", "num_edges", "num_train")
    if len(parts) <= MAX_ROWS:
        return [row(str(q["part_id"]), q) for q in parts]
    return [row(label, {k: agg([q[k] for q in parts]) for k in keys})
            for label, agg in (("min", min), ("mean", lambda v: sum(v) / len(v)), ("max", max))]


IMBALANCE_WARNING = 1.10
"""Above this max/mean the summary warns (issue 10's bound; the refinement aims at 1.05)."""


def _balance_warnings(manifest: dict) -> list[str]:
    """Warning lines: an imbalance above IMBALANCE_WARNING; parts without an inner node."""
    lines = [f"warning: {name} imbalance {manifest[key]:.3f} is above {IMBALANCE_WARNING:.2f} "
             f"(max/mean over {manifest['num_parts']} parts; parts this small cannot share "
             f"the {name}s evenly, fewer parts can)"
             for key, name in (("node_imbalance", "inner node"), ("edge_imbalance", "edge"),
                               ("train_imbalance", "train node"))
             if manifest[key] > IMBALANCE_WARNING]
    parts = manifest["parts"]
    empty = [q["part_id"] for q in parts if q["num_inner"] == 0]
    if not empty:
        return lines
    shown = ", ".join(map(str, empty[:10])) + (", ..." if len(empty) > 10 else "")
    have = "has" if len(empty) == 1 else "have"
    return lines + [f"warning: {len(empty)} of {counted(len(parts), 'part')} {have} no inner node (part "
                    f"{shown}); a rank given only empty parts trains on nothing: use fewer parts"]


def summary_table(manifest: dict, out_dir: str, peak_rss: int,
                  rss_by_stage: dict[str, int] | None = None) -> str:
    """The human summary printed when partitioning ends (``rss_by_stage``: see :func:`stage`)."""
    header = ["part", "inner", "halo", "halo/inner", "edges", "train"]
    rows = [header] + _part_rows(manifest["parts"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    times = manifest["timings_s"]
    total_bytes = sum(f["bytes"] for f in manifest["files"].values())
    lines += [
        f"edge cut: {100 * manifest['edge_cut_ratio']:.2f}% ({manifest['edge_cut']:,} of "
        f"{manifest['num_edges']:,} edges), method {manifest['method']}, "
        f"halo {counted(manifest['halo_hops'], 'hop')}",
        f"imbalance (max/mean): inner nodes {manifest['node_imbalance']:.3f}, "
        f"edges {manifest['edge_imbalance']:.3f}, train nodes {manifest['train_imbalance']:.3f}",
        *_balance_warnings(manifest),
        f"nodes: {manifest['num_nodes']:,}; train {manifest['num_train']:,}, val "
        f"{manifest['num_val']:,}, test {manifest['num_test']:,}; unlabelled nodes: "
        f"{manifest.get('num_unlabelled', 0):,}; features {manifest['num_features']} x "
        f"{manifest.get('feature_dtype', 'float32')}, normalisation "
        f"{manifest.get('feature_normalization', 'none')}",
        "time: " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
        + f" (total {sum(times.values()):.1f} s)",
        f"peak memory: {human_bytes(peak_rss)}" + (
            " (by stage: " + ", ".join(f"{k} {human_bytes(v)}" for k, v in rss_by_stage.items()) + ")"
            if rss_by_stage else ""),
        f"wrote {out_dir}: {counted(manifest['num_parts'], 'part')}, {len(manifest['files'])} files, "
        f"{human_bytes(total_bytes)}",
    ]
    return "\n".join(lines)
