"""Who may write DEST, and how a write that was killed is undone.

One writer at a time: `locked(dest)` holds an exclusive flock on DEST (or on its parent while
DEST does not exist). Concurrent fetches into one DEST wait for each other; the second finds
the first's result and does nothing.

An install into an existing directory (a mount point cannot be renamed over) moves entries one
by one, so a kill can leave it half done. Before moving anything it writes a journal naming
every entry it may touch (the previous artifact's and the new one's); `recover(dest)` (run
under the lock before every fetch) removes exactly those entries, the manifest and the journal,
which leaves DEST as if the artifact had never been there, and any staging directory left by a
killed writer. Files gitstage did not write are never named in a journal, so never removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from gitstage.domain.fetch.errors import BadInputError
from gitstage.domain.fetch.manifest import MANIFEST_FILE, Manifest

STAGING_MARK = ".gitstage-staging-"
JOURNAL_NAME = ".gitstage-journal"
# Names of gitstage's own bookkeeping inside DEST: never artifact content, never user files.
OWN_NAMES = frozenset({JOURNAL_NAME, MANIFEST_FILE})


def is_bookkeeping(name: str) -> bool:
    return name in OWN_NAMES or STAGING_MARK in name


@contextlib.contextmanager
def locked(dest: Path) -> Iterator[None]:
    """Exclusive access to DEST for the duration (other writers wait).

    The lock is a flock on DEST itself, or, while DEST does not exist, on its parent (the
    writer that creates DEST holds it until DEST is in place; a writer arriving later finds
    DEST and locks it). Nothing is written for the lock, so nothing is left behind.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    target = dest if dest.is_dir() else dest.parent
    try:
        descriptor = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as error:
        raise BadInputError(f"cannot lock {target}: {error.strerror}") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def top_level(paths: Iterable[str]) -> set[str]:
    """The entries of DEST that hold these relative paths."""
    return {path.split("/", 1)[0] for path in paths}


def write_journal(dest: Path, entries: set[str]) -> None:
    temporary = dest / f"{STAGING_MARK}journal"
    temporary.write_text(json.dumps(sorted(entries)), encoding="utf-8")
    temporary.replace(dest / JOURNAL_NAME)


def remove_journal(dest: Path) -> None:
    (dest / JOURNAL_NAME).unlink(missing_ok=True)


def recover(dest: Path) -> None:
    """Undo a killed install and sweep killed writers' staging (the caller holds the lock)."""
    for stale in _stale_staging(dest):
        remove_entry(stale)
    journal = dest / JOURNAL_NAME
    if not journal.is_file():
        return
    for name in _journal_entries(journal):
        remove_entry(dest / name)
    (dest / MANIFEST_FILE).unlink(missing_ok=True)
    journal.unlink()


def _stale_staging(dest: Path) -> list[Path]:
    beside = [p for p in dest.parent.glob(f".{dest.name}{STAGING_MARK}*") if p.is_dir()]
    inside = [p for p in dest.iterdir() if STAGING_MARK in p.name] if dest.is_dir() else []
    return beside + inside


def _journal_entries(journal: Path) -> list[str]:
    try:
        names = json.loads(journal.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise BadInputError(
            f"{journal} is damaged; remove the destination and fetch again"
        ) from None
    valid = isinstance(names, list) and all(_plain_name(name) for name in names)
    if not valid:
        raise BadInputError(f"{journal} is not a gitstage journal; refusing to act on it")
    return [str(name) for name in names]


def _plain_name(name: object) -> bool:
    """One entry of DEST: no separator, no `..`, not gitstage's bookkeeping."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and "\x00" not in name
        and not is_bookkeeping(name)
    )


def owned_entries(manifest: Manifest) -> set[str]:
    """The entries of DEST a previous fetch wrote, from its manifest."""
    return top_level(record.path for record in manifest.files)


def clear(dest: Path) -> None:
    """Empty DEST, a cache entry gitstage owns whole; the directory stays (it carries the lock)."""
    if dest.is_dir() and not dest.is_symlink():
        for entry in dest.iterdir():
            remove_entry(entry)
    else:
        dest.unlink(missing_ok=True)


def remove_entry(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
