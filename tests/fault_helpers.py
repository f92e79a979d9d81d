"""Helpers for the fault tests: a tiny dataset, real CLI processes, and ways to hurt them.

Every process is started in a session of its own (a signal meant for it never reaches
pytest), and :func:`reap` kills it and its descendants however a test ends.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
               "GROUP_RANK", "TORCHELASTIC_RUN_ID", "SLURM_PROCID", "SLURM_STEP_ID", "SLURM_JOB_ID",
               "PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE")

TINY = "synthetic:nodes=2000,features=16,classes=4,degree=8"
FAST = ["sampler.batch_size=16", "sampler.fanouts=[5,5]", "model.hidden=16", "train.log_every=1000",
        "train.plot=false"]
"""A run of about 38 steps per epoch per rank, a few hundred milliseconds an epoch (and no
curves.png: drawing it costs 2-5 s a run here; tests/test_tensorboard.py checks it is drawn)."""


def fault_rng() -> tuple[int, random.Random]:
    """A source of kill moments: ``FAULT_SEED`` (set by tests/fault_soak.py per round), else fresh.

    Tests put the seed in their failure messages, so a failing moment can be replayed.
    """
    seed = int(os.environ.get("FAULT_SEED") or random.randrange(1 << 30))
    return seed, random.Random(seed)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any launcher's variables (pytest may run under one)."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    env["PYTHONPATH"] = str(REPO)
    env["OMP_NUM_THREADS"] = "1"  # two cores for everyone: no oversubscription
    env.update(extra)
    return env


def make_dataset(out: Path, spec: str = TINY, parts: int = 2) -> Path:
    from partition.cli import main

    assert main(["--input", spec, "--num-parts", str(parts), "--out", str(out), "--quiet"]) == 0
    return out


def torchrun_cmd(data: Path, run: Path, *overrides: str, nproc: int = 2, restarts: int = 0) -> list[str]:
    return [str(BIN / "torchrun"), "--standalone", f"--nproc-per-node={nproc}",
            f"--max-restarts={restarts}", "-m", "dist_train", "--data", str(data), "--out", str(run),
            *FAST, *overrides]


def train_cmd(data: Path | str, run: Path | str, *overrides: str) -> list[str]:
    """One process, no launcher: world size 1."""
    return [sys.executable, "-m", "dist_train", "--data", str(data), "--out", str(run), *FAST, *overrides]


def start(cmd: Sequence[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with open(log, "wb") as f:
        return subprocess.Popen(list(cmd), cwd=REPO, env=env or clean_env(), stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True)


def run(cmd: Sequence[str], timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), cwd=REPO, env=env or clean_env(), capture_output=True, text=True,
                          timeout=timeout)


def reap(proc: subprocess.Popen) -> None:
    """Kill ``proc`` and every descendant; ignore what is gone.

    torchrun starts each worker in a session of its own, so killing torchrun's process
    group would orphan them: the descendants are listed first, then killed.
    """
    if proc.poll() is None:
        try:
            family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        except psutil.Error:
            family = []
        for member in family:
            try:
                member.send_signal(signal.SIGCONT)  # a stopped process dies only once resumed
                member.kill()
            except psutil.Error:
                pass
    proc.wait(30)


def wait_for(predicate: Callable[[], bool], seconds: float, poll: float = 0.05) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return False


def checkpoints(run_dir: Path) -> list[str]:
    d = run_dir / "checkpoints"
    return sorted(p.name for p in d.glob("ckpt-*.pt")) if d.is_dir() else []


def workers(agent_pid: int) -> dict[int, psutil.Process]:
    """torchrun's worker processes by their RANK."""
    found = {}
    for child in psutil.Process(agent_pid).children():
        try:
            rank = child.environ().get("RANK")
        except psutil.Error:
            continue
        if rank is not None:
            found[int(rank)] = child
    return found


def final_line(run_dir: Path) -> dict:
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    finals = [r for r in lines if r.get("event") == "final"]
    assert len(finals) == 1, lines
    return finals[0]


def epoch_lines(run_dir: Path) -> list[dict]:
    """The per-epoch records of ``metrics.jsonl`` (the final line left out)."""
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in lines if "epoch" in r and r.get("event") is None]


def epochs_logged(run_dir: Path) -> list[int]:
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["epoch"] for r in lines if "epoch" in r and r.get("event") is None]


def same_weights(a: Path, b: Path) -> bool:
    import torch

    wa = torch.load(a / "model.pt", weights_only=False)["model"]
    wb = torch.load(b / "model.pt", weights_only=False)["model"]
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def flip_byte(path: Path, offset_from_end: int = 7) -> None:
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0xFF
    path.write_bytes(bytes(data))


def error_lines(stderr: str, prefix: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(prefix)]
