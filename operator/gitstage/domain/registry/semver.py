"""SemVer 2.0 versions as GTO writes them (`v1.2.3-rc.1+build.5`), with python-semver's precedence.

Equality of versions is string equality (so `v1.0.0` and `v1.0.0+b` are two versions), while
ordering ignores build metadata, exactly as in gto/versions.py.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from functools import total_ordering

from gitstage.domain.registry.names import SEMVER

_VERSION_RE = re.compile(f"^v{SEMVER}$")


class InvalidVersionError(ValueError):
    def __init__(self, text: str) -> None:
        super().__init__(f"Supplied version '{text}' cannot be parsed")


@total_ordering
@dataclass(frozen=True)
class _Identifier:
    """One dot-separated prerelease identifier: numeric ones sort before alphanumeric ones."""

    text: str

    def _key(self) -> tuple[int, int, str]:
        if self.text.isdigit():
            return (0, int(self.text), "")
        return (1, 0, self.text)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, _Identifier):
            return NotImplemented
        return self._key() < other._key()


@total_ordering
@dataclass(frozen=True)
class Precedence:
    """Sort key for SemVer precedence: build metadata is ignored, prereleases sort lower."""

    core: tuple[int, int, int]
    prerelease: tuple[_Identifier, ...]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Precedence):
            return NotImplemented
        if self.core != other.core:
            return self.core < other.core
        if not self.prerelease or not other.prerelease:
            # A release outranks any of its prereleases.
            return bool(self.prerelease) and not other.prerelease
        return self.prerelease < other.prerelease


@dataclass(frozen=True)
class Version:
    """A parsed `vX.Y.Z[-pre][+build]` string."""

    text: str
    major: int
    minor: int
    patch: int
    prerelease: str | None
    build: str | None

    @property
    def precedence(self) -> Precedence:
        identifiers = (
            tuple(_Identifier(p) for p in self.prerelease.split(".")) if self.prerelease else ()
        )
        return Precedence((self.major, self.minor, self.patch), identifiers)

    def bump(self, part: str) -> Version:
        """GTO's bumps: a prerelease or build suffix is dropped (v1.0.0-rc.1 -> v1.0.1)."""
        if part == "major":
            return parse_version(f"v{self.major + 1}.0.0")
        if part == "minor":
            return parse_version(f"v{self.major}.{self.minor + 1}.0")
        if part == "patch":
            return parse_version(f"v{self.major}.{self.minor}.{self.patch + 1}")
        raise ValueError(f"unknown version part {part!r}: use major, minor or patch")


def parse_version(text: str) -> Version:
    match = _VERSION_RE.match(text)
    if match is None:
        raise InvalidVersionError(text)
    return Version(
        text=text,
        major=int(match["major"]),
        minor=int(match["minor"]),
        patch=int(match["patch"]),
        prerelease=match["prerelease"],
        build=match["buildmetadata"],
    )


def is_valid_version(text: str) -> bool:
    return _VERSION_RE.match(text) is not None


@functools.cache
def precedence_of(text: str) -> Precedence:
    return parse_version(text).precedence
