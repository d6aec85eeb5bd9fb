"""Atomic installation into DEST: files are written and verified in a staging directory first.

DEST absent: stage beside it and rename the staging directory to DEST (atomic).
DEST an existing directory (an init container's emptyDir is a mount point, which cannot be
renamed over): stage inside it, journal the entries about to change, remove the previous
artifact's own entries, move the new ones in and write the manifest last, so a reader that
finds the manifest finds a complete artifact, and a killed install is undone by the next fetch
(`destination.recover`). Entries gitstage did not write are never removed. A failure removes
the staging directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO

from pydantic import ValidationError

from gitstage.adapters.fetch.destination import (
    STAGING_MARK,
    is_bookkeeping,
    owned_entries,
    remove_entry,
    remove_journal,
    write_journal,
)
from gitstage.adapters.fetch.progress import Progress
from gitstage.domain.fetch.errors import (
    BadInputError,
    FetchError,
    IntegrityError,
    TransportError,
)
from gitstage.domain.fetch.manifest import MANIFEST_FILE, FileRecord, Manifest
from gitstage.domain.fetch.repo_paths import check_depth, safe_relative

__all__ = ["STAGING_MARK", "ByteBudget", "Staging", "read_manifest"]


class ByteBudget:
    """The optional size limit, charged as bytes are written."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.used = 0

    def check(self, planned: int, what: str) -> None:
        """Before anything is read: `planned` bytes of `what` would not fit."""
        if self.limit is not None and self.used + planned > self.limit:
            raise IntegrityError(
                f"size limit of {self.limit} bytes exceeded: {what} is {planned} bytes"
                f" ({self.used} already fetched); refused before reading it"
            )

    def charge(self, count: int) -> None:
        self.used += count
        if self.limit is not None and self.used > self.limit:
            raise IntegrityError(f"size limit of {self.limit} bytes exceeded")


def read_manifest(dest: Path) -> Manifest | None:
    """The manifest of a previous fetch into DEST; refuses a DEST that holds anything else."""
    if not dest.exists():
        return None
    if not dest.is_dir():
        raise BadInputError(f"destination {dest} exists and is not a directory")
    manifest_path = dest / MANIFEST_FILE
    if manifest_path.is_file():
        try:
            manifest = Manifest.model_validate_json(manifest_path.read_bytes())
        except ValidationError:
            raise BadInputError(f"{manifest_path} is not a gitstage manifest") from None
        _inside(manifest, manifest_path)
        return manifest
    foreign = [entry.name for entry in dest.iterdir() if not is_bookkeeping(entry.name)]
    if foreign:
        raise BadInputError(
            f"destination {dest} is not empty and was not written by gitstage; refusing to"
            " overwrite it"
        )
    return None


def _inside(manifest: Manifest, where: Path) -> None:
    """A manifest is trusted only for paths inside DEST, none of them gitstage's own names."""
    for record in manifest.files:
        try:
            path = safe_relative(record.path, "manifest path")
        except FetchError:
            raise BadInputError(f"{where} lists {record.path!r}, outside the destination") from None
        if is_bookkeeping(path.parts[0]):
            raise BadInputError(f"{where} lists {record.path!r}, a name gitstage keeps for itself")


def files_intact(dest: Path, manifest: Manifest) -> bool:
    """Every listed file is there with its recorded size (a cheap check, no hashing)."""
    for record in manifest.files:
        path = dest / record.path
        if not path.is_file() or path.is_symlink() or path.stat().st_size != record.size:
            return False
    return True


def write_manifest(dest: Path, manifest: Manifest) -> None:
    temporary = dest / f"{STAGING_MARK}manifest"
    temporary.write_text(manifest.to_json(), encoding="utf-8")
    temporary.replace(dest / MANIFEST_FILE)


class Staging:
    def __init__(
        self, dest: Path, budget: ByteBudget, progress: Progress, previous: Manifest | None = None
    ) -> None:
        self.dest = dest
        self.budget = budget
        self.progress = progress
        self.previous = previous  # what DEST holds now (read under the writer's lock)
        self.records: list[FileRecord] = []
        self._inside = dest.is_dir()
        if self._inside:
            self.root = Path(tempfile.mkdtemp(prefix=STAGING_MARK, dir=dest))
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            prefix = f".{dest.name}{STAGING_MARK}"
            self.root = Path(tempfile.mkdtemp(prefix=prefix, dir=dest.parent))

    def __enter__(self) -> Staging:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _create(self, relpath: PurePosixPath, executable: bool) -> IO[bytes]:
        if relpath == PurePosixPath(MANIFEST_FILE):
            raise BadInputError(f"the artifact contains a file named {MANIFEST_FILE}")
        check_depth(relpath, "the artifact's file")  # mkdir, rmtree recurse once per level
        target = self.root.joinpath(*relpath.parts)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            descriptor = os.open(target, flags, 0o755 if executable else 0o644)
        except (FileExistsError, NotADirectoryError):
            raise BadInputError(f"the artifact lists {relpath} twice or as file and dir") from None
        return os.fdopen(descriptor, "wb")

    def write(
        self,
        relpath: PurePosixPath,
        chunks: Iterator[bytes],
        *,
        md5: str | None = None,
        length: int | None = None,
        executable: bool = False,
    ) -> FileRecord:
        """Write one file, verifying its DVC md5 and the announced length when given."""
        sha256 = hashlib.sha256()
        content_md5 = hashlib.md5(usedforsecurity=False)
        size = 0
        with self._create(relpath, executable) as output:
            for chunk in chunks:
                self.budget.charge(len(chunk))
                output.write(chunk)
                sha256.update(chunk)
                content_md5.update(chunk)
                size += len(chunk)
                self.progress.advance(len(chunk))
        if length is not None and size != length:
            raise TransportError(f"download of {relpath} stopped after {size} of {length} bytes")
        if md5 is not None and content_md5.hexdigest() != md5:
            raise IntegrityError(f"checksum mismatch for {relpath}: md5 is not {md5}")
        record = FileRecord(path=relpath.as_posix(), size=size, sha256=sha256.hexdigest())
        self.records.append(record)
        return record

    def install(self, manifest: Manifest) -> None:
        (self.root / MANIFEST_FILE).write_text(manifest.to_json(), encoding="utf-8")
        if not self._inside:
            self.root.chmod(0o755)
            self.root.rename(self.dest)
            return
        old = owned_entries(self.previous) if self.previous is not None else set()
        new = {entry.name for entry in self.root.iterdir() if entry.name != MANIFEST_FILE}
        for name in sorted(new - old):
            if os.path.lexists(self.dest / name):
                raise BadInputError(
                    f"{self.dest / name} was not written by gitstage; refusing to overwrite it"
                )
        write_journal(self.dest, old | new)
        with contextlib.suppress(FileNotFoundError):
            (self.dest / MANIFEST_FILE).unlink()  # the old content is no longer vouched for
        for name in sorted(old):
            remove_entry(self.dest / name)
        for name in sorted(new):
            (self.root / name).rename(self.dest / name)
        (self.root / MANIFEST_FILE).rename(self.dest / MANIFEST_FILE)
        self.root.rmdir()
        remove_journal(self.dest)
