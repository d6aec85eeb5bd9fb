"""Atomic installation into DEST: files are written and verified in a staging directory first.

DEST absent: stage beside it and rename the staging directory to DEST (atomic).
DEST an existing directory (an init container's emptyDir is a mount point, which cannot be
renamed over): stage inside it, then move the entries in and write the manifest last, so a
reader that finds the manifest finds a complete artifact. A failure removes the staging directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO

from pydantic import ValidationError

from gitstage.adapters.fetch.progress import Progress
from gitstage.domain.fetch.errors import (
    BadInputError,
    IntegrityError,
    TransportError,
)
from gitstage.domain.fetch.manifest import MANIFEST_FILE, FileRecord, Manifest

STAGING_MARK = ".gitstage-staging-"
CHUNK = 1024 * 1024


class ByteBudget:
    """The optional size limit, charged as bytes are written."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.used = 0

    def check(self, planned: int, what: str) -> None:
        if self.limit is not None and self.used + planned > self.limit:
            raise IntegrityError(f"{what} needs {planned} bytes, over the limit of {self.limit}")

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
            return Manifest.model_validate_json(manifest_path.read_bytes())
        except ValidationError:
            raise BadInputError(f"{manifest_path} is not a gitstage manifest") from None
    foreign = [entry.name for entry in dest.iterdir() if STAGING_MARK not in entry.name]
    if foreign:
        raise BadInputError(
            f"destination {dest} is not empty and was not written by gitstage; refusing to"
            " overwrite it"
        )
    return None


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
    def __init__(self, dest: Path, budget: ByteBudget, progress: Progress) -> None:
        self.dest = dest
        self.budget = budget
        self.progress = progress
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
        with contextlib.suppress(FileNotFoundError):
            (self.dest / MANIFEST_FILE).unlink()  # the old content is no longer vouched for
        for entry in self.dest.iterdir():
            if entry != self.root:
                _remove(entry)
        for entry in self.root.iterdir():
            if entry.name != MANIFEST_FILE:
                entry.rename(self.dest / entry.name)
        (self.root / MANIFEST_FILE).rename(self.dest / MANIFEST_FILE)
        self.root.rmdir()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def read_chunks(stream: IO[bytes]) -> Iterator[bytes]:
    """Chunks of a download; a dropped connection becomes a TransportError."""
    try:
        while chunk := stream.read(CHUNK):
            yield chunk
    except (OSError, ValueError, http.client.HTTPException) as error:
        raise TransportError(f"download interrupted: {error}") from None
