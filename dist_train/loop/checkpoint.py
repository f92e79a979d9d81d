"""Checkpoints that survive the crash that makes them necessary.

Nobody in the field checkpoints sampler position or RNG state (ANCHORS). Here a
checkpoint holds model, optimiser, scheduler, the position (epoch and step within it),
best-so-far metrics, RNG states and the config. Because every batch is a pure function
of (seed, rank, epoch, step), the position is enough to resume mid-epoch exactly.

Integrity: write to a temporary file, fsync, rename, fsync the directory; then a
``.sha256`` sidecar the same way. A checkpoint without a matching sidecar is treated
as damaged and the previous one is used, with a warning. The last ``keep`` are kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dist_train.rundir.writes import RunDirError, cause

log = logging.getLogger(__name__)

_NAME = re.compile(r"^ckpt-e(\d{6})-s(\d{9})\.pt$")


@dataclass
class Position:
    """Where the run is: the epoch being trained and the steps of it already taken."""

    epoch: int = 0
    step: int = 0
    global_step: int = 0
    best_val: float = -1.0
    best_test: float = 0.0
    best_epoch: int = -1
    epochs_without_improvement: int = 0
    last_test: float | None = None
    """Test accuracy of the last evaluation (what a run without validation nodes reports)."""
    segments: list[list[int]] = field(default_factory=list)
    """``[start_step, world_size]`` of each part of this epoch trained at one world size
    (empty: the whole epoch at the checkpoint's world size; see sampling/elastic.py)."""


@dataclass(frozen=True)
class CheckpointRef:
    path: Path
    epoch: int
    step: int


def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "checkpoints"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def kept_note(run_dir: str | os.PathLike) -> str:
    """What a failed run leaves to resume from, for its error line."""
    found = list_checkpoints(run_dir)
    return (f"the last checkpoint {found[-1].path} is kept (free space or use a writable disk, "
            "then rerun to resume from it)" if found else "no checkpoint yet")


def save_checkpoint(run_dir: str | os.PathLike, state: dict[str, Any], epoch: int, step: int,
                    keep: int = 3) -> Path:
    """Write ``state`` as the checkpoint at (epoch, step); prune all but the newest ``keep``.

    ``epoch`` is the epoch being trained and ``step`` the number of its steps already
    done (``step == 0`` with ``epoch == e`` means "start epoch e"). A full or read-only
    disk raises RunDirError naming the checkpoint and the one kept; the new file's
    pieces are removed, older checkpoints are untouched (pruning comes last).
    """
    ckdir = checkpoint_dir(run_dir)
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    path = ckdir / f"ckpt-e{epoch:06d}-s{step:09d}.pt"
    sidecar = path.with_name(path.name + ".sha256")
    incomplete = False  # data written, sidecar not yet
    try:
        ckdir.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)  # a failure here leaves an older file of this name intact
        incomplete = True
        # The sidecar is written last: its presence with the right digest marks the file complete.
        atomic_write(sidecar, hashlib.sha256(data).hexdigest().encode())
        incomplete = False
        for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
            old.path.unlink(missing_ok=True)
            old.path.with_name(old.path.name + ".sha256").unlink(missing_ok=True)
    except OSError as err:
        if incomplete:  # new data without its sidecar: unusable, and it holds the space
            for piece in (sidecar, path):
                with contextlib.suppress(OSError):
                    piece.unlink(missing_ok=True)
        raise RunDirError(f"{path}: cannot write: {cause(err)}; {kept_note(run_dir)}") from None
    return path


def list_checkpoints(run_dir: str | os.PathLike) -> list[CheckpointRef]:
    """Checkpoint files, oldest first (by position, not by mtime)."""
    ckdir = checkpoint_dir(run_dir)
    if not ckdir.is_dir():
        return []
    refs = []
    for p in ckdir.iterdir():
        m = _NAME.match(p.name)
        if m:
            refs.append(CheckpointRef(p, int(m.group(1)), int(m.group(2))))
    return sorted(refs, key=lambda r: (r.epoch, r.step))


def _read_verified(ref: CheckpointRef) -> dict[str, Any]:
    sidecar = ref.path.with_name(ref.path.name + ".sha256")
    if not sidecar.exists():
        raise ValueError("no .sha256 sidecar (write did not finish)")
    data = ref.path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sidecar.read_text().strip():
        raise ValueError("checksum mismatch (truncated or corrupted)")
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)


def load_latest_checkpoint(run_dir: str | os.PathLike) -> tuple[dict[str, Any], CheckpointRef] | None:
    """The newest checkpoint that passes its integrity check, or None if there is none.

    Damaged ones are skipped with a warning naming the file, never silently.
    """
    for ref in reversed(list_checkpoints(run_dir)):
        try:
            return _read_verified(ref), ref
        except Exception as err:  # any damage: fall back to the previous good one
            log.warning("checkpoint %s is unusable (%s); trying the previous one", ref.path, err)
    return None
