"""The launch files with the real trainer (test_launch.py runs them with a probe).

``launch/mpirun.sh`` (mpiexec, ranks found through mpi4py) and ``launch/slurm.sbatch``
(srun + torchrun on the one-node Slurm cluster) must train a small run to its final
line: the launcher's ranks found each other, agreed on the shards and finished.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fault_helpers import FAST, LAUNCH_VARS, TINY, final_line, make_dataset

REPO = Path(__file__).resolve().parent.parent
ARGS = ["train.epochs=2", *FAST]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS and k != "GIANTGCN_MODULE"}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(REPO)
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("launch") / "ds", TINY, parts=2)


def _assert_finished(out: Path, launcher_log: str, launcher: str) -> None:
    final = final_line(out)
    assert final["epochs_run"] == 2 and final["total_steps"] > 0
    epochs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()][:-1]
    assert [r["epoch"] for r in epochs] == [0, 1]
    assert f"world 2 ranks ({launcher})" in launcher_log
    assert "giantgcn-train: done: best val" in launcher_log


@pytest.mark.multiproc
@pytest.mark.slow
def test_mpiexec_two_ranks_train_to_the_final_line(data, tmp_path):
    out = tmp_path / "run"
    res = subprocess.run(["bash", str(REPO / "launch" / "mpirun.sh"), str(data), str(out), *ARGS],
                         env=_env(NP="2"), capture_output=True, text=True, timeout=150, cwd=REPO)
    assert res.returncode == 0, res.stderr[-3000:]
    _assert_finished(out, res.stdout + res.stderr, "mpi")


@pytest.mark.multiproc
@pytest.mark.slow
@pytest.mark.slurm
def test_slurm_sbatch_two_ranks_train_to_the_final_line(data, tmp_path, slurm_cluster):
    out, log = tmp_path / "run", tmp_path / "slurm.out"
    cpus = str(min(os.cpu_count() or 1, 2))
    cmd = ["sbatch", "--wait", "--nodes=1", f"--cpus-per-task={cpus}", "--time=5", f"--output={log}",
           "launch/slurm.sbatch", str(data), str(out), *ARGS]
    res = subprocess.run(cmd, env=_env(NPROC="2"), capture_output=True, text=True, timeout=240, cwd=REPO)
    text = log.read_text() if log.exists() else ""
    assert res.returncode == 0, (res.stderr + text)[-3000:]
    assert "1 nodes x 2 ranks" in text
    _assert_finished(out, text, "torchrun")  # torchrun inside srun: torchrun's variables win
