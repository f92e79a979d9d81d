"""The launch files, run for real with a probe in place of the trainer (tests/launch_probe.py).

Each probe rank discovers its World as the trainer would, joins the process group and
all-reduces 1.0, so a passing test means: the launcher started the right number of
ranks, they agreed on one rendezvous, and the trainer's arguments arrived intact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(REPO)])
    env["GIANTGCN_MODULE"] = "launch_probe"
    env.update(extra)
    return env


def _ranks(out: Path, n: int) -> list[dict]:
    found = sorted(out.glob("rank*.json"))
    assert len(found) == n, f"expected {n} rank files in {out}, found {[p.name for p in found]}"
    return [json.loads(p.read_text()) for p in found]


def _assert_one_job(ranks: list[dict], launcher: str) -> None:
    n = len(ranks)
    assert sorted(r["rank"] for r in ranks) == list(range(n))
    assert {r["world_size"] for r in ranks} == {n} and {r["launcher"] for r in ranks} == {launcher}
    assert len({(r["master_addr"], r["master_port"]) for r in ranks}) == 1
    assert {r["sum"] for r in ranks} == {float(n)}  # every rank joined one process group


@pytest.mark.multiproc
def test_torchrun_sh(tmp_path):
    out = tmp_path / "run"
    res = subprocess.run(["bash", str(REPO / "launch" / "torchrun.sh"), "data/x", str(out), "optim.lr=0.1"],
                         env=_env(NPROC="2", CONFIG="configs/cora.yaml"), capture_output=True, text=True,
                         timeout=120, cwd=REPO)
    assert res.returncode == 0, res.stderr[-3000:]
    ranks = _ranks(out, 2)
    _assert_one_job(ranks, "torchrun")
    assert ranks[0]["data"] == "data/x" and ranks[0]["config"] == "configs/cora.yaml"
    assert ranks[0]["overrides"] == ["optim.lr=0.1"]


def test_torchrun_sh_usage():
    res = subprocess.run(["bash", str(REPO / "launch" / "torchrun.sh")], capture_output=True, text=True)
    assert res.returncode == 2 and "usage" in res.stderr


@pytest.mark.multiproc
def test_mpirun_sh(tmp_path):
    out = tmp_path / "run"
    res = subprocess.run(["bash", str(REPO / "launch" / "mpirun.sh"), "data/x", str(out), "train.seed=3"],
                         env=_env(NP="2"), capture_output=True, text=True, timeout=120, cwd=REPO)
    assert res.returncode == 0, res.stderr[-3000:]
    ranks = _ranks(out, 2)
    _assert_one_job(ranks, "mpi")
    assert ranks[1]["overrides"] == ["train.seed=3"]


def _sbatch(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    cpus = str(min(os.cpu_count() or 1, 2))
    cmd = ["sbatch", "--nodes=1", f"--cpus-per-task={cpus}", "--time=5", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)


@pytest.mark.multiproc
@pytest.mark.slurm
def test_slurm_sbatch_one_node_two_ranks(tmp_path, slurm_cluster):
    out, log = tmp_path / "run", tmp_path / "slurm.out"
    res = _sbatch(["--wait", f"--output={log}", "launch/slurm.sbatch", "data/x", str(out), "optim.lr=0.2"],
                  _env(NPROC="2"))
    assert res.returncode == 0, (res.stderr + (log.read_text() if log.exists() else ""))[-3000:]
    ranks = _ranks(out, 2)
    _assert_one_job(ranks, "torchrun")  # torchrun inside srun: torchrun's variables win
    assert ranks[0]["overrides"] == ["optim.lr=0.2"]
    assert "1 nodes x 2 ranks" in log.read_text()


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return False


@pytest.mark.slow
@pytest.mark.multiproc
@pytest.mark.slurm
def test_slurm_sbatch_preemption_stops_ranks_and_requeues(tmp_path, slurm_cluster):
    # USR1 to the batch shell is what --signal=B:USR1@120 delivers near the time limit
    out, log = tmp_path / "run", tmp_path / "slurm.out"
    res = _sbatch(["--parsable", f"--output={log}", "launch/slurm.sbatch", "data/x", str(out)],
                  _env(NPROC="2", PROBE_HOLD_S="60"))
    assert res.returncode == 0, res.stderr
    job = res.stdout.strip().split(";")[0]
    try:
        assert _wait_for(lambda: len(list(out.glob("rank*.json"))) == 2, 90), "ranks never started"
        subprocess.run(["scancel", "--batch", "--signal=USR1", job], check=True, timeout=30)
        assert _wait_for(lambda: log.exists() and "requeueing" in log.read_text(), 60), log.read_text()
        assert sorted(p.name for p in out.glob("*.stopped")) == ["rank0.stopped", "rank1.stopped"]
        info = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True, timeout=30).stdout
        assert "Restarts=1" in info
    finally:
        subprocess.run(["scancel", job], timeout=30)
