"""Check a local registry repository (a CI checkout with its tags) for `gitstage check`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pygit2

from gitstage.adapters.fetch.git_tree import CommitTree
from gitstage.adapters.git.reader import TAGS_PREFIX, open_repository, read_config
from gitstage.domain.config import WrongConfigError
from gitstage.domain.registry_check import (
    Problem,
    index_problems,
    tag_problems,
    version_problems,
)
from gitstage.domain.tags import Action, parse_tag


@dataclass
class CheckReport:
    problems: list[Problem] = field(default_factory=list)
    tags: int = 0
    versions: int = 0


@dataclass(frozen=True)
class _Tag:
    name: str
    annotated: bool
    commit: str | None


def check_repository(path: str | os.PathLike[str] = ".") -> CheckReport:
    """Raises RepositoryError when `path` is not a git repository."""
    repo = open_repository(path)
    report = CheckReport()
    try:
        read_config(repo)
    except WrongConfigError as error:
        report.problems.append(Problem(".gto", str(error)))
    if not repo.head_is_unborn:
        head = CommitTree(repo, str(repo.head.target))
        report.problems += index_problems(head, "HEAD")
    trees: dict[str, CommitTree] = {}
    for tag in _tags(repo):
        report.tags += 1
        report.problems += tag_problems(tag.name, tag.annotated)
        parsed = parse_tag(tag.name)
        if parsed is None or parsed.action is not Action.REGISTER or not tag.annotated:
            continue
        if tag.commit is None:
            report.problems.append(Problem(f"tag {tag.name}", "does not point to a commit"))
            continue
        report.versions += 1
        tree = trees.setdefault(tag.commit, CommitTree(repo, tag.commit))
        report.problems += version_problems(tree, parsed, tag.commit)
    return report


def _tags(repo: pygit2.Repository) -> list[_Tag]:
    tags: list[_Tag] = []
    for ref_name in sorted(repo.listall_references()):
        if not ref_name.startswith(TAGS_PREFIX):
            continue
        obj = repo.get(repo.references[ref_name].target)
        commit = None
        if obj is not None:
            try:
                commit = str(obj.peel(pygit2.Commit).id)
            except (ValueError, pygit2.GitError):
                commit = None
        tags.append(_Tag(ref_name[len(TAGS_PREFIX) :], isinstance(obj, pygit2.Tag), commit))
    return tags
