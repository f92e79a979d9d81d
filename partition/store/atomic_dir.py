"""Write a directory so that it appears complete or not at all.

Files go into a hidden sibling ``.<name>.tmp-<pid>-<random>``; on success it is
fsynced and renamed onto ``<name>``. With ``force`` an existing dataset is first
renamed aside, the new one renamed in, then the old one deleted: at no moment does
``<name>`` hold a mix, and a crash in between leaves either the old dataset, the new
one, or no ``<name>`` at all (plus a hidden sibling to delete). On any error the
temporary directory is removed; an ``OSError`` becomes an :class:`InputError` that
names ``--out`` and the path (ANCHORS: a crash never leaves a directory that looks
complete).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from partition.errors import InputError

MARKER = "manifest.json"
"""A directory holding this file is a dataset that ``--force`` may replace."""


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_out_dir(out: Path, force: bool) -> None:
    """Fail early (before hours of work) if ``out`` cannot be written or must not be replaced."""
    if out.exists() or out.is_symlink():
        if not force:
            raise InputError(f"--out {out}: already exists; pass --force to replace it")
        if not out.is_dir() or out.is_symlink():
            raise InputError(f"--out {out}: exists and is not a directory; refusing to replace it")
        if any(out.iterdir()) and not (out / MARKER).is_file():
            raise InputError(f"--out {out}: exists and is not a giantgcn dataset (no {MARKER}); "
                             "refusing to replace it even with --force")
    base = _nearest_existing(out.parent)
    if not base.is_dir():
        raise InputError(f"--out {out}: {base} is not a directory")
    if not os.access(base, os.W_OK | os.X_OK):
        raise InputError(f"--out {out}: cannot write in {base} (permission denied)")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Delete ``.<name>.tmp-<pid>-*`` and ``.<name>.scratch-<pid>-*`` siblings of dead runs.

    A SIGKILL cannot clean up after itself, and on a giant graph the leftover is as big
    as the dataset. Only dead writers' folders go (the pid is checked on this host), so
    a run still writing into the same parent is never touched.
    """
    removed = []
    for kind in ("tmp", "scratch"):
        for tmp in out.parent.glob(f".{out.name}.{kind}-*"):
            pid = tmp.name[len(out.name) + len(kind) + 3:].split("-", 1)[0]
            if tmp.is_dir() and pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(tmp, ignore_errors=True)
                removed.append(tmp)
    return removed


@contextmanager
def scratch_dir(out: Path) -> Iterator[Path]:
    """A hidden ``.<name>.scratch-<pid>-<random>`` sibling of ``out`` for big temporaries.

    Beside ``out`` (same disk as the dataset, which must hold them anyway), removed when
    the block ends however it ends; a killed run's is removed by the next run.
    """
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(out)
        path = out.parent / f".{out.name}.scratch-{os.getpid()}-{secrets.token_hex(4)}"
        path.mkdir()
    except OSError as err:
        raise InputError(f"--out {out}: cannot create a scratch directory in {out.parent}: "
                         f"{err.strerror or err}") from None
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap_in(tmp: Path, out: Path, force: bool) -> None:
    if out.exists():
        if not force:
            raise InputError(f"--out {out}: appeared while writing; pass --force to replace it")
        aside = out.parent / f".{out.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
        os.rename(out, aside)
        try:
            os.rename(tmp, out)
        except OSError:
            os.rename(aside, out)  # put the old dataset back
            raise
        fsync_dir(out.parent)
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.rename(tmp, out)
        fsync_dir(out.parent)


def _describe(err: OSError, tmp: Path) -> str:
    where = err.filename or tmp
    return f"{err.strerror or err} ({where})"


@contextmanager
def atomic_dir(out: Path, force: bool = False) -> Iterator[Path]:
    """Yield an empty temporary directory that becomes ``out`` when the block succeeds."""
    out = Path(out)
    check_out_dir(out, force)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(out)
        tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        tmp.mkdir()
    except OSError as err:
        raise InputError(f"--out {out}: cannot create a directory in {out.parent}: "
                         f"{err.strerror or err}") from None
    try:
        yield tmp
        fsync_dir(tmp)
        _swap_in(tmp, out, force)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(f"--out {out}: {_describe(err, tmp)}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
