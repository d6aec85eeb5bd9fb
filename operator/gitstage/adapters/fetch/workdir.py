"""The fetch's private scratch directory: the shallow clone, and the askpass helper or SSH
identity that carry credentials. Owner-only (0700), removed on every exit path; one left by a
killed fetch (its process gone) is removed by the next fetch on this machine."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

PREFIX = "gitstage-fetch-"


@contextlib.contextmanager
def private_workdir() -> Iterator[Path]:
    sweep_stale(Path(tempfile.gettempdir()))
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))  # mode 0700
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def sweep_stale(root: Path) -> list[Path]:
    """Remove our own work directories whose process no longer runs; returns them."""
    removed = []
    for path in root.glob(f"{PREFIX}*-*"):
        pid = _pid_of(path.name)
        owned = path.is_dir() and not path.is_symlink() and path.stat().st_uid == os.getuid()
        if pid is not None and owned and not _alive(pid):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _pid_of(name: str) -> int | None:
    text = name[len(PREFIX) :].split("-", 1)[0]
    return int(text) if text.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True
