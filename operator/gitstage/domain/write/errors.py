"""Refusals of the write commands, worded exactly as GTO 1.10.1 words them (gto/exceptions.py,
gto/registry.py), so scripts that match GTO's messages keep working."""

from __future__ import annotations

from collections.abc import Sequence


class WriteRefusal(ValueError):
    """A write GTO refuses; nothing has been written when it is raised."""


def invalid_name(value: str) -> WriteRefusal:
    return WriteRefusal(
        f"Invalid value '{value}'. Only letters, numbers, '_', '-', '/' are allowed. "
        "Value must be of len >= 2 and must start and end with a letter or a number."
    )


def unknown_stage(stages: Sequence[str]) -> WriteRefusal:
    # GTO formats the Python list itself: Allowed stages are: '['dev', 'prod']'
    return WriteRefusal(f"Allowed stages are: '{list(stages)}'")


def invalid_version_name(version: str) -> WriteRefusal:
    return WriteRefusal(f"Version '{version}' is not valid. Example of valid version: 'v1.0.0'")


def unparsable_version(version: str) -> WriteRefusal:
    return WriteRefusal(f"Supplied version '{version}' cannot be parsed")


def many_versions(artifact: str, versions: Sequence[str]) -> WriteRefusal:
    return WriteRefusal(
        "Multiple versions are not allowed on the same Git commit. "
        f"Violation detected for artifact '{artifact}', versions '{list(versions)}'."
    )


def tag_exists(name: str) -> WriteRefusal:
    return WriteRefusal(f"tag '{name}' already exists")


def unknown_revision(ref: str) -> WriteRefusal:
    return WriteRefusal(f"unknown Git revision '{ref}'")


def ref_not_found(ref: str) -> WriteRefusal:
    """`deprecate --ref` resolves inside GTO's create_tag, which words it differently."""
    return WriteRefusal(f"Ref '{ref}' was not found in the repository history")


def artifact_not_found(name: str) -> WriteRefusal:
    return WriteRefusal(f"Cannot find artifact '{name}'")


def no_versions(artifact: str) -> WriteRefusal:
    return WriteRefusal(f"No versions found for '{artifact}'")
