"""Every row of README.md's "What bad input looks like" table, run for real.

The README table is the source of truth and this test reads it (so the two cannot drift
apart): each row's command runs as a subprocess with the capitalised names replaced by
paths to prepared inputs, and the test asserts the exit status, exactly one
``<prog>: error: ...`` line equal to the row's text (``…`` matches anything), no
traceback, and nothing else on stderr but the trainer's own ``[rank N] LEVEL`` log lines.
To add a case, add a row to the README; a new capitalised name needs a builder here.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fault_helpers import TINY, clean_env, flip_byte, make_dataset, run

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = "## What bad input looks like"
ROW = re.compile(r"^\| (?P<what>[^|]+?) \| `(?P<cmd>[^`]+)` \| (?P<code>\d+) \| `(?P<line>.+)` \|$")
PROGRAMS = {"giantgcn-partition": "partition", "giantgcn-train": "dist_train",
            "giantgcn-predict": "dist_train.predict", "giantgcn-plot": "dist_train.report"}
LOG_LINE = re.compile(r"^\[rank \d+\] (INFO|WARNING) ")


@dataclass(frozen=True)
class Row:
    what: str
    command: str
    exit_code: int
    line: str


def read_rows(readme: Path = README) -> list[Row]:
    text = readme.read_text()
    assert SECTION in text, f"{readme} has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    rows = [ROW.match(line) for line in section.splitlines() if line.startswith("| ")]
    rows = [m for m in rows if m]  # the header and separator do not match
    assert len(rows) >= 40, f"only {len(rows)} rows parsed from {readme}"
    return [Row(m["what"], m["cmd"], int(m["code"]), m["line"]) for m in rows]


ROWS = read_rows()


# ---- the named inputs -------------------------------------------------------------------


def _copy_with(data: Path, out: Path, damage: Callable[[Path], None]) -> Path:
    shutil.copytree(data, out)
    damage(out)
    return out


def _truncate(ds: Path) -> None:
    f = ds / "part-00000" / "indices.npy"
    f.write_bytes(f.read_bytes()[:-8])


def _old_version(ds: Path) -> None:
    m = ds / "manifest.json"
    m.write_text(m.read_text().replace('"format_version": 2', '"format_version": 1'))


def _no_kaminpar(out: Path) -> Path:
    """A PYTHONPATH folder whose ``kaminpar`` fails to import, as an absent package does."""
    out.mkdir()
    _write(out / "kaminpar.py", "raise ModuleNotFoundError(\"No module named 'kaminpar'\")\n")
    return out


def _bad_npy(out: Path) -> Path:
    import numpy as np

    out.mkdir()
    np.save(out / "edge_index.npy", np.array([[0, 1], [1, 2]]))
    np.save(out / "x.npy", np.zeros(3, np.float32))
    np.save(out / "y.npy", np.zeros(3, np.int64))
    return out


def _npy_source(out: Path, *, x=None, y=None, **splits) -> Path:
    """A 6-node npy source (a ring) with the given features, labels and split files."""
    import numpy as np

    out.mkdir()
    np.save(out / "edge_index.npy", np.array([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 0]]))
    np.save(out / "x.npy", np.ones((6, 3)) if x is None else x)
    np.save(out / "y.npy", np.array([0, 1, 0, 1, 2, 2]) if y is None else y)
    splits = {"train_idx": [0, 1, 2], "val_idx": [3], "test_idx": [4, 5]} | splits
    for name, value in splits.items():
        if value is not None:
            np.save(out / f"{name}.npy", np.asarray(value))
    return out


def _huge_feature_npy(out: Path) -> Path:
    import numpy as np

    x = np.ones((6, 3))
    x[4, 2] = 1e39  # finite in float64, inf in float32
    return _npy_source(out, x=x)


def _empty_train_dataset(out: Path) -> Path:
    """A dataset with no training node, as an older giantgcn-partition could write one."""
    from dataclasses import replace

    import numpy as np

    from partition.graph.csr import build_csr
    from partition.graph.partitioners import random_partition
    from partition.readers.sources import read_source
    from partition.store.format import write_dataset

    g = read_source(TINY)
    g = replace(g, train_idx=np.empty(0, np.int64))
    csr = build_csr(g.num_nodes, g.edge_chunks)
    write_dataset(out, g, csr, random_partition(g.num_nodes, 2, 0), 1, "random", 0)
    return out


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _read_only_dir(root: Path) -> Path | None:
    """A read-only tmpfs (as root, chmod does not stop writes); None where mount is refused."""
    mnt = root / "read-only"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        return None
    return mnt


def _busy_run(root: Path) -> tuple[Path, subprocess.Popen]:
    """A run directory whose lock a live process holds (as a running training would)."""
    run_dir = root / "busy-run"
    run_dir.mkdir()
    hold = ("import sys, time; from pathlib import Path; from dist_train.rundir.lock import RunDirLock;"
            "RunDirLock(Path(sys.argv[1])).acquire(); print('held', flush=True); time.sleep(3600)")
    proc = subprocess.Popen([sys.executable, "-c", hold, str(run_dir)], env=clean_env(),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return run_dir, proc


def _truncated_x_npy(out: Path) -> Path:
    """An npy source whose x.npy header says 10^6 x 10^6 float32 (4 TB) but holds no data."""
    import numpy as np
    import numpy.lib.format as npy_format

    _npy_source(out)
    with open(out / "x.npy", "wb") as f:
        npy_format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                               "shape": (10**6, 10**6)})
    np.save(out / "y.npy", np.zeros(10**6, dtype=np.int8))  # as many labels as x's rows
    return out


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Iterator[dict[str, Path | None]]:
    import numpy as np

    root = tmp_path_factory.mktemp("bad-input")
    data = make_dataset(root / "dataset", TINY)
    named = {
        "DATASET": data,
        "OTHER_DATASET": make_dataset(root / "other", TINY + ",seed=1"),
        "WIDE_DATASET": make_dataset(root / "wide", TINY.replace("features=16", "features=24")),
        "CORRUPT_DATASET": _copy_with(data, root / "corrupt",
                                      lambda d: flip_byte(d / "part-00001" / "x.npy")),
        "TRUNCATED_DATASET": _copy_with(data, root / "truncated", _truncate),
        "OLD_DATASET": _copy_with(data, root / "old", _old_version),
        "NOT_A_DATASET": root / "not-a-dataset",
        "A_FILE": _write(root / "a-file", "not a directory\n"),
        "MISSING": root / "missing",
        "BAD_NPY": _bad_npy(root / "bad-npy"),
        "EMPTY_TRAIN_NPY": _npy_source(root / "empty-train-npy", train_idx=np.empty(0, np.int64)),
        "UNLABELLED_VAL_NPY": _npy_source(root / "unlabelled-val-npy",
                                          y=np.array([0, 1, 0, np.nan, 2, 2])),
        "BAD_MASK_NPY": _npy_source(root / "bad-mask-npy", train_idx=None,
                                    train_mask=np.array([1, 1, 2, 0, 0, 0])),
        "HUGE_FEATURE_NPY": _huge_feature_npy(root / "huge-feature-npy"),
        "TRUNCATED_X_NPY": _truncated_x_npy(root / "truncated-x-npy"),
        "EMPTY_TRAIN_DATASET": _empty_train_dataset(root / "empty-train-dataset"),
        "BAD_KEY_YAML": _write(root / "bad-key.yaml", "optim:\n  lrr: 0.1\n"),
        "BAD_SYNTAX_YAML": _write(root / "bad-syntax.yaml", "optim: [lr: 0.1\n"),
        "BROKEN_MODELS_PY": Path(__file__).with_name("broken_models.py"),
        "NO_KAMINPAR": _no_kaminpar(root / "no-kaminpar"),
    }
    named["NOT_A_DATASET"].mkdir()
    (named["NOT_A_DATASET"] / "notes.txt").write_text("stray\n")
    finished = root / "finished-run"
    res = run([sys.executable, "-m", "dist_train", "--data", str(data), "--out", str(finished),
               "train.epochs=1"], timeout=120)  # the default model: the rows name its sizes
    assert res.returncode == 0, res.stderr[-3000:]
    named["FINISHED_RUN"] = finished
    named["READ_ONLY_DIR"] = _read_only_dir(root)
    named["BUSY_RUN"], holder = _busy_run(root)
    try:
        yield named
    finally:
        holder.kill()
        holder.wait(10)
        if named["READ_ONLY_DIR"] is not None:
            subprocess.run(["umount", "-l", str(named["READ_ONLY_DIR"])], check=False)


def _names(inputs: dict[str, Path | None], tmp: Path, row_text: str) -> dict[str, str]:
    """Every capitalised name to its path; runs a row may change are fresh copies."""
    missing = [k for k, v in inputs.items() if v is None and re.search(rf"\b{k}\b", row_text)]
    if missing:
        pytest.skip(f"{missing[0]} cannot be made here (mount needs root)")
    names = {k: str(v) for k, v in inputs.items() if v is not None}
    names["FINISHED_RUN"] = str(shutil.copytree(inputs["FINISHED_RUN"], tmp / "finished-run"))
    names["OUT"], names["RUN"] = str(tmp / "out"), str(tmp / "run")
    return names


def _substitute(text: str, names: dict[str, str]) -> str:
    return re.sub(r"\b(" + "|".join(map(re.escape, names)) + r")\b", lambda m: names[m[1]], text)


def _command(row: Row, names: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    words = shlex.split(_substitute(row.command, names))
    env = clean_env()
    while "=" in words[0]:  # VAR=value prefixes, as in a shell
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    return [sys.executable, "-m", PROGRAMS[words[0]], *words[1:]], env


def _pattern(line: str, names: dict[str, str]) -> re.Pattern[str]:
    parts = _substitute(line, names).split("…")
    return re.compile(".+?".join(re.escape(p) for p in parts))


def _marks(row: Row) -> list[pytest.MarkDecorator]:
    slow = "giantgcn-train" in row.command or "giantgcn-predict" in row.command  # imports torch
    return [pytest.mark.slow] if slow else []


@pytest.mark.parametrize("row", [pytest.param(r, id=r.what, marks=_marks(r)) for r in ROWS])
def test_bad_input_gives_one_line(row: Row, inputs, tmp_path):
    names = _names(inputs, tmp_path, row.command)
    cmd, env = _command(row, names)
    res = run(cmd, timeout=120, env=env)
    prog = row.line.split(":", 1)[0]
    errors = [line for line in res.stderr.splitlines() if line.startswith(f"{prog}: error: ")]
    other = [line for line in res.stderr.splitlines()
             if line not in errors and not LOG_LINE.match(line)]
    assert res.returncode == row.exit_code, res.stderr[-3000:]
    assert len(errors) == 1 and not other and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert _pattern(row.line, names).fullmatch(errors[0]), f"\n got: {errors[0]}\nwant: {row.line}"
