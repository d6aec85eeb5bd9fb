"""The manifest written next to a fetched artifact: what was asked, where it came from, the files.

`request` holds exactly the inputs that determine the bytes; a later fetch with the same request
finds the files listed with the same sizes and does nothing.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict

MANIFEST_FILE = ".gitstage-manifest.json"
FORMAT: Final = "gitstage.fetch/v1"


class FetchRequest(BaseModel):
    """The inputs of a fetch; `repo` is redacted (no userinfo)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    repo: str
    rev: str
    artifact: str
    path: str | None = None


class SourceRecord(BaseModel):
    """One repository visited: the requested one first, then each link followed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    repo: str
    commit: str
    artifact: str | None = None
    path: str | None = None


class FileRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    size: int
    sha256: str


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["gitstage.fetch/v1"] = FORMAT
    artifact: str
    version: str | None = None
    stage: str | None = None
    request: FetchRequest
    commit: str
    sources: list[SourceRecord]
    kind: Literal["git", "dvc"]
    target: str
    files: list[FileRecord]
    total_bytes: int

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    def relabel(self, version: str | None, stage: str | None) -> Manifest:
        return self.model_copy(update={"version": version, "stage": stage})
