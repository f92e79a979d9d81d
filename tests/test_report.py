"""curves.png: reading metrics.jsonl, the epoch time split, the figure, giantgcn-plot, and
what happens without matplotlib (dist_train/report/)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from dist_train.report import cli as plot_cli
from dist_train.report.curves import PlotUnavailable, _time_parts, draw, plot_runs
from dist_train.report.runs import read_run
from partition.errors import InputError

PNG = b"\x89PNG\r\n\x1a\n"


def _epoch(e: int, val: float | None, **extra) -> dict:
    rec = {"epoch": e, "train_loss": 2.0 / (e + 1), "epoch_time_s": 1.0, "seeds_per_s": 1000.0 + e,
           "time_sample_s": 0.3, "time_gather_s": 0.2, "time_wait_batch_s": 0.1,
           "time_forward_backward_s": 0.6, "time_allreduce_s": 0.15, "time_optimizer_s": 0.05,
           "time_eval_s": 0.25, "global_step": 10 * (e + 1)}
    if val is not None:
        rec |= {"val_acc": val, "test_acc": val if isinstance(val, str) else val - 0.05}
    return rec | extra


def write_run(path: Path, vals: list[float | None], final: bool = True, **extra) -> Path:
    path.mkdir(parents=True)
    lines = [json.dumps(_epoch(e, v, **extra)) for e, v in enumerate(vals)]
    lines.insert(1, '{"epoch": 7, "train_lo')  # a line torn by a crash
    if final:
        best = int(np.nanargmax([v if isinstance(v, float) else np.nan for v in vals]))
        lines.append(json.dumps({"event": "final", "best_epoch": best, "val_acc": vals[best]}))
    (path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return path


def test_a_run_reads_as_arrays_per_epoch_with_gaps_for_epochs_not_evaluated(tmp_path):
    run = read_run(write_run(tmp_path / "r", [0.5, None, 0.7, "nan"]))
    assert run.epoch.tolist() == [0, 1, 2, 3]
    val = run.get("val_acc")
    assert val[0] == 0.5 and np.isnan(val[1]) and val[2] == 0.7 and np.isnan(val[3])
    assert run.best_epoch == 2
    assert np.isnan(run.get("no_such_key")).all()


def test_the_best_epoch_is_the_arg_max_when_the_run_has_no_final_line_yet(tmp_path):
    assert read_run(write_run(tmp_path / "r", [0.5, 0.8, 0.6], final=False)).best_epoch == 1


def test_the_time_split_adds_up_to_the_epoch_and_keeps_the_prefetch_thread_apart(tmp_path):
    run = read_run(write_run(tmp_path / "r", [0.5, 0.6], time_exchange_s=0.08))
    loop, prefetch = _time_parts(run)
    parts = dict(loop)
    # all-reduce runs inside backward: drawn once, not twice
    assert parts["forward + backward"] == pytest.approx([0.45, 0.45])
    assert parts["exchange"] == pytest.approx([0.08, 0.08])  # a timer the loop adds later shows up
    training = sum(v for k, v in loop if k != "evaluation")
    assert training == pytest.approx([1.0, 1.0])  # the stack is the epoch time, "other" included
    assert parts["evaluation"] == pytest.approx([0.25, 0.25])
    assert dict(prefetch) == {"sampling": pytest.approx([0.3, 0.3]), "gathering features": pytest.approx([0.2, 0.2])}


def test_a_directory_that_is_not_a_run_is_one_line(tmp_path):
    with pytest.raises(InputError, match=r"no such run directory$"):
        read_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"empty: no metrics\.jsonl"):
        read_run(tmp_path / "empty")
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "metrics.jsonl").write_text("")
    with pytest.raises(InputError, match=r"no finished epoch to plot yet$"):
        read_run(tmp_path / "new")


def test_the_figure_labels_every_axis_marks_the_best_epoch_and_stacks_the_epoch_time(tmp_path):
    pytest.importorskip("matplotlib")
    run = read_run(write_run(tmp_path / "r", [0.5, 0.8, 0.6]))
    fig = draw([run])
    loss, acc, split, speed = fig.axes[:4]
    for ax in (loss, acc, split, speed):
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    assert "%" in acc.get_ylabel() and "second" in split.get_ylabel() and "second" in speed.get_ylabel()
    stars = [line for line in acc.lines if line.get_marker() == "*"]
    assert len(stars) == 1 and stars[0].get_xdata()[0] == 1 and stars[0].get_ydata()[0] == pytest.approx(80.0)
    # the loop's bars (left of each epoch) reach epoch time + evaluation
    tops = {}
    for bar in split.patches:
        x = round(bar.get_x() + bar.get_width() / 2, 2)
        tops[x] = max(tops.get(x, 0.0), bar.get_y() + bar.get_height())
    assert tops[-0.17] == pytest.approx(1.25) and tops[0.19] == pytest.approx(0.5)


def test_giantgcn_plot_draws_one_run_into_it_and_several_onto_one_figure(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    a, b = write_run(tmp_path / "a", [0.5, 0.6]), write_run(tmp_path / "b", [0.4, 0.7, 0.75])
    assert plot_cli.main([str(a)]) == 0
    assert (a / "curves.png").read_bytes().startswith(PNG)
    monkeypatch.chdir(tmp_path)
    assert plot_cli.main([str(a), str(b)]) == 0
    assert (tmp_path / "curves.png").read_bytes().startswith(PNG)
    assert "giantgcn-plot: wrote curves.png" in capsys.readouterr().out
    assert plot_cli.main([str(a), "--out", str(tmp_path / "nodir" / "x.png")]) == 2
    assert capsys.readouterr().err == (f"giantgcn-plot: error: --out {tmp_path / 'nodir' / 'x.png'}: "
                                       f"{tmp_path / 'nodir'} is not a directory\n")


def test_without_matplotlib_plotting_is_one_line_and_a_run_only_logs_it(tmp_path, monkeypatch, capsys, caplog):
    run = write_run(tmp_path / "r", [0.5])
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(PlotUnavailable, match=r"matplotlib is not installed.*giantgcn\[plot\]"):
        plot_runs([run], tmp_path / "x.png")
    assert plot_cli.main([str(run)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("giantgcn-plot: error: matplotlib is not installed")
    with caplog.at_level(logging.WARNING):
        assert plot_cli.plot_after_run(run) is None
    assert [r.getMessage() for r in caplog.records][-1].startswith("matplotlib is not installed")
    assert not (run / "curves.png").exists()


def test_giantgcn_train_plot_draws_without_training(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from dist_train import cli as train_cli

    run = write_run(tmp_path / "a", [0.5, 0.6])
    assert train_cli.main(["--plot", str(run)]) == 0  # no --data needed: nothing is trained
    assert (run / "curves.png").read_bytes().startswith(PNG)
    assert capsys.readouterr().out == f"giantgcn-train: wrote {run / 'curves.png'}\n"
