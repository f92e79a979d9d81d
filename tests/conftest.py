"""Shared fixtures: repository paths, the shared data directory, process-group teardown."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dist_train.runtime.process_group import destroy_distributed

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_leftover_process_group():
    """A test that fails half-way must not leave a process group behind for the next one."""
    yield
    destroy_distributed()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``<repo>/../shared/data`` (Cora in Planetoid format lives there); skip when absent."""
    path = REPO_ROOT.parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared data directory {path} is absent")
    return path


def slurm_cluster_ready() -> str | None:
    """None when a Slurm cluster with an idle node answers; otherwise why not."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "Slurm client commands (sinfo, sbatch) not installed"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"sinfo failed: {err}"
    if out.returncode != 0:
        return f"sinfo failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}"
    if not any(s.startswith(("idle", "mixed")) for s in out.stdout.split()):
        return f"no idle Slurm node (states: {out.stdout.split()}); run .ci/slurm-setup.sh as root"
    return None


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """Skip unless a one-node Slurm cluster is up (``sudo bash .ci/slurm-setup.sh``)."""
    reason = slurm_cluster_ready()
    if reason:
        pytest.skip(reason)
