"""Whole-file writes: a temporary file renamed into place, so readers never see a partial one."""

from __future__ import annotations

import _thread
import os
import time

_STALE_TEMP_SECONDS = 600


def write_atomically(path: str, data: bytes) -> None:
    """Readers see the old file or the new one, never a partial write."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    temporary = f"{path}.tmp-{os.getpid()}-{_thread.get_ident()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)  # atomic: readers see the old file or the new one
    except BaseException:
        _unlink(temporary)
        raise
    _remove_stale_temporaries(directory)


def _remove_stale_temporaries(directory: str) -> None:
    """Temporary files of writers that were killed mid-write."""
    cutoff = time.time() - _STALE_TEMP_SECONDS
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if ".tmp-" in entry.name:
            try:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
            except OSError:
                continue


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        return
