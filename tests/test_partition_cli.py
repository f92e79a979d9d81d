"""giantgcn-partition: a full run, --verify, and one-line errors (exit 2) for bad input."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from partition import load_manifest
from partition.cli import main

SMALL = "synthetic:nodes=3000,classes=4,features=8,degree=8"
REPO = Path(__file__).resolve().parent.parent


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "ds"
    assert main(["--input", SMALL, "--out", str(out), "--num-parts", "3", "--quiet"]) == 0
    return out


def test_run_writes_a_verified_dataset_and_a_summary(tmp_path, capsys):
    out = tmp_path / "ds"
    code, stdout, stderr = _run(capsys, "--input", SMALL, "--out", str(out), "--num-parts", "2",
                                "--halo-hops", "2", "--seed", "3", "--quiet")
    assert code == 0, stderr
    m = load_manifest(out)
    assert (m["num_parts"], m["halo_hops"], m["seed"], m["method"]) == (2, 2, 3, "metis")
    assert set(m["timings_s"]) == {"read", "csr", "partition", "write"}
    for needle in ("halo/inner", "edge cut:", "imbalance", "peak memory:", "time: read"):
        assert needle in stdout
    assert stderr == ""  # --quiet and not a tty: no bars
    code, stdout, _ = _run(capsys, "--verify", str(out))
    assert code == 0 and "OK" in stdout


def test_same_seed_same_assignment(dataset, tmp_path, capsys):
    again = tmp_path / "again"
    assert _run(capsys, "--input", SMALL, "--out", str(again), "--num-parts", "3", "--quiet")[0] == 0
    np.testing.assert_array_equal(np.load(dataset / "node_part.npy"), np.load(again / "node_part.npy"))


def _assert_one_line_error(code: int, err: str, match: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("giantgcn-partition: error: "), err
    assert match in lines[0], lines[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("argv,match", [
    (["--num-parts", "0"], "--num-parts"),
    (["--num-parts", "3001"], "--num-parts: 3001 is more than"),
    (["--halo-hops", "-1"], "--halo-hops"),
    (["--method", "spectral"], "--method"),
    (["--num-parts", "two"], "--num-parts"),
    (["--input", "bogus:thing"], "--input"),
    (["--input", "synthetic:nodes=abc"], "nodes"),
])
def test_bad_flags_exit_2_with_one_line(tmp_path, capsys, argv, match):
    out = tmp_path / "ds"
    code, _, err = _run(capsys, "--input", SMALL, "--out", str(out), "--quiet", *argv)
    _assert_one_line_error(code, err, match)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_out_problems(dataset, tmp_path, capsys):
    code, _, err = _run(capsys, "--input", SMALL)
    _assert_one_line_error(code, err, "--out")
    before = (dataset / "manifest.json").read_bytes()
    code, _, err = _run(capsys, "--input", SMALL, "--out", str(dataset), "--quiet")
    _assert_one_line_error(code, err, "already exists")
    assert (dataset / "manifest.json").read_bytes() == before
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = _run(capsys, "--input", SMALL, "--out", str(blocker / "ds"), "--quiet")
    _assert_one_line_error(code, err, "--out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_verify_failures(dataset, tmp_path, capsys):
    code, _, err = _run(capsys, "--verify", str(tmp_path / "missing"))
    _assert_one_line_error(code, err, "no such dataset directory")
    dataset = Path(shutil.copytree(dataset, tmp_path / "copy"))
    x = dataset / "part-00002" / "x.npy"
    data = bytearray(x.read_bytes())
    data[len(data) // 2] ^= 0xFF
    x.write_bytes(bytes(data))
    code, _, err = _run(capsys, "--verify", str(dataset))
    _assert_one_line_error(code, err, "part-00002/x.npy")


def test_python_dash_m_entry_point(tmp_path):
    out = tmp_path / "ds"
    proc = subprocess.run([sys.executable, "-m", "partition", "--input", "synthetic:nodes=500",
                           "--num-parts", "2", "--out", str(out), "--method", "random"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert load_manifest(out)["method"] == "random"
    proc = subprocess.run([sys.executable, "-m", "partition", "--num-parts", "0", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1


def test_sigterm_mid_write_removes_partial_output(tmp_path, capsys, monkeypatch):
    import os
    import signal

    from partition.store import format as fmt

    real = fmt._write_features

    def killed(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler's time limit would
        return real(*args, **kwargs)

    monkeypatch.setattr(fmt, "_write_features", killed)
    before = signal.getsignal(signal.SIGTERM)
    code, _, err = _run(capsys, "--input", SMALL, "--out", str(tmp_path / "ds"), "--quiet")
    assert code == 143 and "interrupted" in err
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) == before  # handler restored
