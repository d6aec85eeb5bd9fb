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
    artifact: str | None = None
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
    artifact: str | None
    version: str | None = None
    stage: str | None = None
    # Set when the registry resolved the version (fetch by stage, version or latest); absent
    # when the caller pinned a commit and only labelled it (the operator's init container).
    registration_tag: str | None = None
    assignment_tag: str | None = None
    request: FetchRequest
    commit: str
    sources: list[SourceRecord]
    kind: Literal["git", "dvc"]
    target: str
    files: list[FileRecord]
    total_bytes: int

    def to_json(self) -> str:
        return self.model_dump_json(indent=2) + "\n"

    def relabel(self, labels: Labels) -> Manifest:
        return self.model_copy(update=labels.model_dump())

    @property
    def labels(self) -> Labels:
        return Labels.of(self)


class Labels(BaseModel):
    """What the fetched commit is to the registry (its version, stage and their tags)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str | None = None
    stage: str | None = None
    registration_tag: str | None = None
    assignment_tag: str | None = None

    @classmethod
    def of(cls, labelled: object) -> Labels:
        """The labels of anything with these four attributes (a spec, a resolution)."""
        return cls.model_validate(labelled, from_attributes=True)
