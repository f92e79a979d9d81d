"""SIGKILL of ``giantgcn-partition`` at every stage never leaves a dataset that looks complete.

SIGKILL cannot be caught, so no clean-up code runs: what protects the user is the
write order alone (a hidden temporary directory, ``manifest.json`` last, one rename).
An uninterrupted run first measures how long each stage takes on this machine; each
test then kills a fresh run half-way through one stage, checks that neither
``--verify`` nor the trainer's loader accepts ``--out``, and reruns to completion.
Timing on a busy machine is never exact, so the checks hold wherever the kill lands.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import pytest
from fault_helpers import clean_env, reap, run, start

from partition import load_manifest
from partition.errors import DatasetError

SPEC = "synthetic:nodes=300000,features=16,degree=10"
STAGES = ("read", "csr", "partition", "write")


def _cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "partition", "--input", SPEC, "--num-parts", "4", "--out", str(out),
            "--quiet", *extra]


@pytest.fixture(scope="module")
def stage_midpoints(tmp_path_factory) -> dict[str, float]:
    """Seconds after start-up at which each stage is half done."""
    out = tmp_path_factory.mktemp("measure") / "ds"
    t0 = time.monotonic()
    res = run(_cmd(out), timeout=120)
    wall = time.monotonic() - t0
    assert res.returncode == 0, res.stderr
    timings = json.loads((out / "manifest.json").read_text())["timings_s"]
    start_up = max(wall - sum(timings[s] for s in STAGES), 0.0)  # interpreter and imports
    points, elapsed = {}, start_up
    for s in STAGES:
        points[s] = elapsed + timings[s] / 2
        elapsed += timings[s]
    return points


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_at_each_stage_leaves_nothing_that_looks_complete(stage_midpoints, tmp_path, stage):
    out = tmp_path / "ds"
    proc = start(_cmd(out), tmp_path / "partition.log", clean_env())
    try:
        time.sleep(stage_midpoints[stage])
        still_running = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        reap(proc)
    if not still_running:
        pytest.skip(f"the run ended before the kill at {stage_midpoints[stage]:.2f}s")
    if out.exists():
        # the kill landed after the final rename (the process was exiting): then the
        # dataset must be the complete one, which is the other half of the promise
        done = run([sys.executable, "-m", "partition", "--verify", str(out)], timeout=60)
        assert done.returncode == 0, f"killed during {stage}: a published but broken dataset"
        pytest.skip(f"the kill at {stage_midpoints[stage]:.2f}s landed after the dataset was published")
    res = run([sys.executable, "-m", "partition", "--verify", str(out)], timeout=60)
    assert res.returncode == 2 and "no such dataset directory" in res.stderr, res.stderr
    with pytest.raises(DatasetError):
        load_manifest(out)  # what the trainer opens first
    # whatever is left is hidden scratch; neither a rerun nor a rerun with --force is blocked
    assert all(p.name.startswith(".") for p in tmp_path.iterdir() if p.name != "partition.log")
    rerun = run(_cmd(out, *(["--force"] if stage in ("csr", "write") else [])), timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    # the rerun deleted the killed run's scratch: a giant graph's leftovers are dataset-sized
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "partition.log"]
    verify = run([sys.executable, "-m", "partition", "--verify", str(out)], timeout=60)
    assert verify.returncode == 0 and "OK" in verify.stdout, verify.stderr
