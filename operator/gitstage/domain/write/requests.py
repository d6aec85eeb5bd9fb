"""What the write commands ask for (register, assign, unassign, deregister, deprecate), typed.

REFs are kept unresolved: GTO resolves them after checking names and stages, and the order of
its checks decides which refusal a user sees, so the planner resolves them through a callback.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Bump(Enum):
    """Which part of the highest active version a new registration bumps."""

    MAJOR = "major"
    MINOR = "minor"
    PATCH = "patch"


class Simple(Enum):
    """GTO's `--simple {auto,true,false}`: the tag form without or with a `#N` counter."""

    AUTO = "auto"
    TRUE = "true"
    FALSE = "false"


@dataclass(frozen=True)
class RegisterRequest:
    """`register NAME [REF] [--version V | --bump-*]`; no version and no bump bumps the patch.

    Giving both `version` and `bump` is refused by the planner, after the name check, as in GTO.
    """

    artifact: str
    ref: str = "HEAD"
    version: str | None = None
    bump: Bump | None = None
    message: str | None = None
    simple: Simple = Simple.AUTO
    force: bool = False


@dataclass(frozen=True)
class AtRef:
    """Assign at a commit; `new_version` names the registration `assign` makes there if needed."""

    ref: str
    new_version: str | None = None
    skip_registration: bool = False


@dataclass(frozen=True)
class ExistingVersion:
    """Assign an already registered version (the tag points at that version's commit)."""

    version: str


@dataclass(frozen=True)
class AssignRequest:
    artifact: str
    stage: str
    target: AtRef | ExistingVersion
    message: str | None = None
    simple: Simple = Simple.AUTO
    force: bool = False


@dataclass(frozen=True)
class VersionSelector:
    """A version named by its version string or by a REF at its commit (GTO wants exactly one)."""

    version: str | None = None
    ref: str | None = None


@dataclass(frozen=True)
class UnassignRequest:
    artifact: str
    stage: str
    selector: VersionSelector
    message: str | None = None
    simple: Simple = Simple.AUTO
    force: bool = False
    delete: bool = False


@dataclass(frozen=True)
class DeregisterRequest:
    artifact: str
    selector: VersionSelector
    message: str | None = None
    simple: Simple = Simple.AUTO
    force: bool = False
    delete: bool = False


@dataclass(frozen=True)
class DeprecateRequest:
    """Deprecate the artifact; `ref` (default: its newest event's commit) is where the tag goes."""

    artifact: str
    ref: str | None = None
    message: str | None = None
    simple: Simple = Simple.AUTO
    force: bool = False
    delete: bool = False


WriteRequest = (
    RegisterRequest | AssignRequest | UnassignRequest | DeregisterRequest | DeprecateRequest
)
