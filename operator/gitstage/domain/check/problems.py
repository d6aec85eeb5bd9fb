"""`gitstage check`: what a registry's CI should refuse, one `Problem` per finding.

- a tag that looks like a GTO tag (has `@` or `#`) but does not parse, so GTO silently ignores it;
- a lightweight GTO tag (GTO reads annotated tags only) and the reserved `@created` form (GTO
  fails on every command while one exists);
- artifacts.yaml that GTO would refuse (invalid names included) and malformed links;
- a registered version whose path does not exist, or cannot be fetched safely, at its commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from gitstage.domain.fetch.dvc_files import check_supported
from gitstage.domain.fetch.errors import FetchError, NotFoundError
from gitstage.domain.fetch.links import ArtifactLink, link_of
from gitstage.domain.fetch.plan import (
    GitSource,
    TreeReader,
    artifact_entry,
    check_file_not_lfs,
    locate,
    read_index,
    walk_files,
)
from gitstage.domain.fetch.repo_paths import NodeKind, safe_relative
from gitstage.domain.registry.names import is_hexsha
from gitstage.domain.registry.tags import Action, ParsedTag, parse_tag


@dataclass(frozen=True)
class Problem:
    subject: str
    message: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.message}"


def tag_problems(name: str, annotated: bool) -> list[Problem]:
    subject = f"tag {name}"
    parsed = parse_tag(name)
    if parsed is None:
        if "@" in name or "#" in name:
            return [Problem(subject, "does not match GTO's tag grammar, so GTO ignores it")]
        return []
    if parsed.action is Action.CREATE:
        return [Problem(subject, "the reserved '@created' form makes every GTO command fail")]
    if not annotated:
        return [Problem(subject, "lightweight tag: GTO reads only annotated tags")]
    return []


def index_problems(tree: TreeReader, where: str) -> list[Problem]:
    """artifacts.yaml at `where` (names, schema) and every link it declares."""
    subject = f"artifacts.yaml at {where}"
    try:
        index = read_index(tree, where)
    except FetchError as error:
        return [Problem(subject, str(error))]
    problems: list[Problem] = []
    for name, annotation in index.items():
        try:
            link_of(name, annotation)
        except FetchError as error:
            problems.append(Problem(subject, str(error)))
    return problems


def version_problems(tree: TreeReader, tag: ParsedTag, commit: str) -> list[Problem]:
    """Is the registered version's path there, and fetchable, at the commit the tag names?"""
    subject = f"tag {tag.name}"
    where = f"commit {commit[:12]}"
    try:
        entry = artifact_entry(tree, tag.artifact, where)
    except NotFoundError:
        return []  # not annotated, or no path: a virtual artifact, nothing to fetch
    except FetchError as error:
        return [Problem(subject, str(error))]
    if entry.path is None:
        return []  # a link; its fields were validated by artifact_entry
    try:
        _check_fetchable(tree, entry.path)
    except FetchError as error:
        return [Problem(subject, f"{error} at {where}")]
    return []


def _check_fetchable(tree: TreeReader, path: PurePosixPath) -> None:
    source = locate(tree, path)
    if not isinstance(source, GitSource):
        check_supported(source.out)
    elif source.node.kind is NodeKind.FILE:
        check_file_not_lfs(tree, source.path, source.node)
    else:
        for item in walk_files(tree, source.path):
            check_file_not_lfs(tree, item.path, item.node)


def pin_problem(subject: str, link: ArtifactLink, refs: Mapping[str, str]) -> Problem | None:
    """A link's rev must name a commit for good: a tag or a full SHA, never a branch."""
    tag, branch = f"refs/tags/{link.rev}", f"refs/heads/{link.rev}"
    if tag in refs:
        return None
    if branch in refs:
        return Problem(
            subject, f"rev {link.rev!r} is a branch, so the link floats: pin a tag or a commit"
        )
    if is_hexsha(link.rev):
        return None  # a commit: whether it exists is for the fetch to say
    return Problem(subject, f"rev {link.rev!r} is neither a tag nor a commit of the linked repo")


def link_target_problems(
    subject: str, tree: TreeReader, name: str, link: ArtifactLink
) -> list[Problem]:
    """The linked path, or the linked artifact's path, exists and can be fetched there."""
    where = f"rev {link.rev}"
    try:
        if link.path is not None:
            path = safe_relative(link.path, "path")
        else:
            entry = artifact_entry(tree, link.artifact or name, where)
            if entry.link is not None:
                return []  # a link to a link: followed at fetch time, checked in that repo
            assert entry.path is not None
            path = entry.path
        _check_fetchable(tree, path)
    except FetchError as error:
        return [Problem(subject, str(error))]
    return []
