"""Real small and read-only file systems for the disk-fault tests (root only; skip otherwise).

A full disk is a tmpfs of a few MiB filled with ``fallocate``, so ENOSPC is the kernel's,
not a mock's; a read-only disk is that tmpfs remounted ``ro`` (as root ``chmod`` is not
enough: root writes through it).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(path: Path, size: str = "8m") -> Iterator[Path]:
    """Mount a tmpfs of ``size`` on ``path`` for the block; pytest.skip without root."""
    path.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(mount: Path, leave: int = 0) -> Path:
    """Take all but ``leave`` bytes of ``mount`` with one file; returns it."""
    st = os.statvfs(mount)
    filler = mount / "filler"
    size = st.f_bavail * st.f_frsize - leave
    if size > 0:
        subprocess.run(["fallocate", "-l", str(size), str(filler)], check=True)
    return filler


def remount(mount: Path, mode: str) -> None:
    """``mode`` "ro" or "rw"."""
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mount)], check=True)
