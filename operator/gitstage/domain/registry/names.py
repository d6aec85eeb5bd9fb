"""GTO's name grammar (gto/constants.py @1.10.1): artifact, stage and directory-prefixed names."""

from __future__ import annotations

import re

SEPARATOR_IN_NAME = ":"
SEPARATOR_IN_TAG = "="

# The character classes are copied verbatim from GTO: `9-_` inside `dirname` is not a range.
DIRNAME = "[a-zA-Z0-9-_./]+"
NAME = r"[a-zA-Z0-9]([a-zA-Z0-9-/_]*[a-zA-Z0-9])?"
SEMVER = (
    r"(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<prerelease>(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+(?P<buildmetadata>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
FULLNAME = f"(?P<dirname>{DIRNAME}{SEPARATOR_IN_NAME})?(?P<name>{NAME})"

NAME_RE = re.compile(f"^{NAME}$")
FULLNAME_RE = re.compile(f"^{FULLNAME}$")
HEXSHA_RE = re.compile(r"^[0-9a-fA-F]{40}$")


class InvalidNameError(ValueError):
    """A name that GTO's grammar rejects."""

    def __init__(self, value: str, what: str = "name") -> None:
        super().__init__(
            f"invalid {what} {value!r}: use letters, digits, '-', '_' and '/', "
            "starting and ending with a letter or digit"
        )


def is_valid_name(value: str) -> bool:
    """Artifact (without `dir:`), stage, type and label names."""
    return NAME_RE.match(value) is not None


def is_valid_fullname(value: str) -> bool:
    """Artifact names with an optional `dir:` prefix."""
    return FULLNAME_RE.match(value) is not None


def check_name(value: str, what: str = "name") -> str:
    if not is_valid_name(value):
        raise InvalidNameError(value, what)
    return value


def check_fullname(value: str, what: str = "artifact name") -> str:
    if not is_valid_fullname(value):
        raise InvalidNameError(value, what)
    return value


def name_to_tag(name: str) -> str:
    """`:` is illegal in git refs, so GTO writes it as `=` inside tag names."""
    return name.replace(SEPARATOR_IN_NAME, SEPARATOR_IN_TAG)


def tag_to_name(text: str) -> str:
    return text.replace(SEPARATOR_IN_TAG, SEPARATOR_IN_NAME)


def is_hexsha(value: str) -> bool:
    return HEXSHA_RE.match(value) is not None
