"""``curves.png``: a run (or several, to compare them) at a glance, drawn from ``metrics.jsonl``.

Four panels: training loss per epoch; validation and test accuracy per epoch with the
best validation epoch marked; where each epoch's time went, as stacked bars (the loop's
own time, the overlapped prefetch thread beside it, evaluation on top); throughput in
seed nodes per second. One colour per run. matplotlib is an optional extra
(``pip install 'giantgcn[plot]'``): :func:`plot_runs` raises :class:`PlotUnavailable`
(an InputError) without it, and a training run only logs that line.

No pyplot: a ``Figure`` is drawn and saved on its own, so nothing global changes in a
notebook or a training process.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dist_train.report.runs import (
    AFTER_EPOCH,
    MAIN_THREAD,
    PREFETCH_THREAD,
    RunCurves,
    read_run,
    run_names,
)
from partition.errors import InputError

RUN_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
PART_COLOURS = {
    "waiting for a batch": "#f2b134", "forward + backward": "#3b75af", "gradient all-reduce": "#c03d3e",
    "optimizer step": "#8e6bb8", "other (per-step loss all-reduce, logging)": "#bbbbbb", "sampling": "#88c47c", "gathering features": "#3d9a52",
    "evaluation": "#7f7f7f", "checkpoint": "#4d4d4d",
}
EXTRA_COLOURS = ("#e7969c", "#9edae5", "#dbdb8d", "#c49c94")


class PlotUnavailable(InputError):
    """matplotlib is not installed."""


def _figure_class():
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotUnavailable("matplotlib is not installed, so no curves.png "
                              "(pip install 'giantgcn[plot]' or matplotlib)") from None
    return Figure


def _loss(ax, runs: list[RunCurves]) -> None:
    for i, r in enumerate(runs):
        ax.plot(r.epoch, r.get("train_loss"), "-o", ms=3, color=RUN_COLOURS[i % 8], label=r.name)
    ax.set_title("Training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy per seed node")


def _accuracy(ax, runs: list[RunCurves]) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color="black", label="validation"),
               Line2D([], [], color="black", ls="--", label="test")]
    for i, r in enumerate(runs):
        c, val, test = RUN_COLOURS[i % 8], r.get("val_acc") * 100, r.get("test_acc") * 100
        ok = np.isfinite(val)  # evaluated epochs only (train.eval_every)
        handles += ax.plot(r.epoch[ok], val[ok], "-o", ms=3, color=c, label=r.name)
        ax.plot(r.epoch[ok], test[ok], "--", color=c, alpha=0.8)
        if r.best_epoch is not None and r.best_epoch in r.epoch:
            j = int(np.flatnonzero(r.epoch == r.best_epoch)[0])
            ax.axvline(r.best_epoch, color=c, ls=":", lw=1)
            handles += ax.plot([r.best_epoch], [val[j]], "*", ms=15, color=c, mec="black", zorder=5,
                               label=f"best: epoch {r.best_epoch}, val {val[j]:.1f}%, test {test[j]:.1f}%")
    ax.set_title("Accuracy (best validation epoch starred)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.legend(handles=handles, fontsize=8, loc="best", framealpha=0.9)


def _time_parts(r: RunCurves) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]]]:
    """(loop-thread stack incl. evaluation, prefetch-thread stack), seconds per epoch."""
    fb = np.nan_to_num(r.get("time_forward_backward_s")) - np.nan_to_num(r.get("time_allreduce_s"))
    parts = [(label, np.clip(fb, 0, None) if key == "time_forward_backward_s" else np.nan_to_num(r.get(key)))
             for key, label in MAIN_THREAD if r.has(key)]
    parts += [(k[5:-2].replace("_", " "), np.nan_to_num(r.get(k))) for k in r.extra_time_keys()]
    total = np.nan_to_num(r.get("epoch_time_s"))
    other = total - sum((p for _, p in parts), np.zeros_like(total))
    parts.append(("other (per-step loss all-reduce, logging)", np.clip(other, 0, None)))
    parts += [(label, np.nan_to_num(r.get(key))) for key, label in AFTER_EPOCH if r.has(key)]
    prefetch = [(label, np.nan_to_num(r.get(key))) for key, label in PREFETCH_THREAD if r.has(key)]
    return parts, prefetch


def _stack(ax, x: np.ndarray, width: float, parts, seen: set[str], **style) -> None:
    bottom = np.zeros(len(x))
    for i, (label, secs) in enumerate(parts):
        colour = PART_COLOURS.get(label, EXTRA_COLOURS[i % len(EXTRA_COLOURS)])
        ax.bar(x, secs, width, bottom=bottom, color=colour, label=None if label in seen else label, **style)
        seen.add(label)
        bottom = bottom + secs


def _time_split(ax, runs: list[RunCurves]) -> None:
    seen: set[str] = set()
    if len(runs) == 1:  # one bar pair per epoch
        x, per = runs[0].epoch, [_time_parts(runs[0])]
        ax.set_xlabel("epoch (left bar: training loop + evaluation; right, hatched: prefetch thread)")
    else:  # one bar pair per run: the mean epoch
        x = np.arange(len(runs), dtype=np.float64)
        per = [tuple([(lab, np.array([np.mean(v)])) for lab, v in side] for side in _time_parts(r))
               for r in runs]
        ax.set_xticks(x, [r.name for r in runs])
        ax.set_xlabel("run, mean epoch (left bar: training loop + evaluation; right, hatched: prefetch thread)")
    for k, (loop, prefetch) in enumerate(per):
        xs = x[k:k + 1] if len(runs) > 1 else x
        _stack(ax, xs - 0.17, 0.34, loop, seen)
        _stack(ax, xs + 0.19, 0.22, prefetch, seen, hatch="//", edgecolor="white", lw=0)
    if len(runs) == 1:
        _clip_outliers(ax, x, per[0][0])
    ax.set_title("Where an epoch's time goes")
    ax.set_ylabel("seconds per epoch")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)


def _clip_outliers(ax, x: np.ndarray, loop) -> None:
    """Cut the y-axis above epochs far longer than the rest (the first epoch compiles the
    numba kernels: ~60 s on a loaded 2-core machine against ~9 s for the others), and
    write their heights on them, so the typical epoch stays readable."""
    total = sum((v for _, v in loop), np.zeros(len(x)))
    if len(total) < 3:
        return
    typical = float(np.median(total))
    tall = total > 3 * typical
    if not tall.any() or typical <= 0:
        return
    top = 1.6 * float(total[~tall].max())
    ax.set_ylim(0, top)
    for xi, t in zip(x[tall], total[tall], strict=True):
        ax.annotate(f"{t:.3g} s (axis cut)", (xi - 0.17, top), xytext=(0, -14), textcoords="offset points",
                    ha="center", fontsize=8, bbox={"boxstyle": "round", "fc": "white", "ec": "0.6"})


def _throughput(ax, runs: list[RunCurves]) -> None:
    from matplotlib.ticker import EngFormatter

    for i, r in enumerate(runs):
        ax.plot(r.epoch, r.get("seeds_per_s"), "-o", ms=3, color=RUN_COLOURS[i % 8], label=r.name)
    ax.set_title("Training throughput")
    ax.set_xlabel("epoch")
    ax.set_ylabel("seed nodes per second, rank 0")
    ax.yaxis.set_major_formatter(EngFormatter())
    ax.set_ylim(bottom=0)


def draw(runs: list[RunCurves]):
    """The four-panel ``matplotlib.figure.Figure`` of ``runs`` (one colour each).

    Raises PlotUnavailable without matplotlib.
    """
    Figure = _figure_class()
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(15, 9), dpi=100, layout="constrained")
    (a, b), (c, d) = fig.subplots(2, 2)
    _loss(a, runs)
    _accuracy(b, runs)
    _time_split(c, runs)
    _throughput(d, runs)
    for ax in (a, d):
        ax.legend(fontsize=8, loc="best", framealpha=0.9)
    for ax in (a, b, c, d):
        ax.grid(alpha=0.3, axis="y" if ax is c else "both")
        if ax is not c or len(runs) == 1:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle("giantgcn: " + ", ".join(r.name for r in runs), fontsize=13)
    return fig


def plot_runs(run_dirs: list[str | Path], out: str | Path) -> Path:
    """Draw the runs in ``run_dirs`` on one figure, written atomically to ``out`` (PNG); ``out``.

    Raises PlotUnavailable without matplotlib, InputError for a directory that is not a
    run (no ``metrics.jsonl`` or no finished epoch).
    """
    _figure_class()  # the missing extra is said before any file is read
    dirs = [Path(d) for d in run_dirs]
    fig = draw([read_run(d, n) for d, n in zip(dirs, run_names(dirs), strict=True)])
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}.png")
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, out)  # a reader never sees half a PNG
    finally:
        tmp.unlink(missing_ok=True)
    return out
