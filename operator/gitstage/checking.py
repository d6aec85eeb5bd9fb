"""Check a local registry repository (a CI checkout with its tags) for `gitstage check`."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from gitstage.adapters.git.commit_tree import CommitTree
from gitstage.adapters.git.credentials import GitCredentials
from gitstage.adapters.git.policy_reader import policy_violations, read_policy
from gitstage.adapters.git.reader import (
    READ_ERRORS,
    Registry,
    head_commit,
    read_config,
    read_registry,
)
from gitstage.adapters.git.refdb import RefDb
from gitstage.adapters.git.repository import RepositoryError, open_repository
from gitstage.adapters.git.shallow_fetch import fetch_commit, remote_refs
from gitstage.adapters.git.source import find_dirs
from gitstage.domain.check.problems import (
    Problem,
    index_problems,
    link_target_problems,
    pin_problem,
    tag_problems,
    version_problems,
)
from gitstage.domain.fetch.errors import FetchError
from gitstage.domain.fetch.links import ArtifactLink, link_of
from gitstage.domain.fetch.plan import read_index
from gitstage.domain.policy.rules import POLICY_FILE, PolicyFileError
from gitstage.domain.registry.config import WrongConfigError
from gitstage.domain.registry.state import CreatedTagsError
from gitstage.domain.registry.tags import Action, parse_tag
from gitstage.domain.repo_urls import redact, split_userinfo


@dataclass
class CheckReport:
    problems: list[Problem] = field(default_factory=list)
    tags: int = 0
    versions: int = 0
    assignments: int | None = None  # checked against the promotion policy; None: no policy
    links: int | None = None  # links resolved in their repositories; None: not asked


@dataclass(frozen=True)
class _Tag:
    name: str
    annotated: bool
    commit: str | None
    missing: bool = False  # the ref names an object the repository does not hold


# Tags whose target is a version's commit (a deprecation's target is never read).
_ON_VERSIONS = frozenset((Action.REGISTER, Action.DEREGISTER, Action.ASSIGN, Action.UNASSIGN))


def check_repository(path: str | os.PathLike[str] = ".", *, links: bool = False) -> CheckReport:
    """Raises RepositoryError when `path` is not a git repository. `links`: resolve every link
    of artifacts.yaml at HEAD in its repository (network)."""
    repo = open_repository(path)
    report = CheckReport()
    try:
        read_config(repo)
    except WrongConfigError as error:
        report.problems.append(Problem(".gto", str(error)))
    head = _head_tree(repo, report)
    if head is not None:
        report.problems += index_problems(head, "HEAD")
    _check_tags(path, repo, report)
    registry = _read_as_show_does(path, report)
    if registry is not None:
        _check_policy(repo, registry, report)
    if links:
        _check_links(repo, head, report)
    return report


def _check_tags(path: str | os.PathLike[str], repo: pygit2.Repository, report: CheckReport) -> None:
    """Each tag's name and kind; each registered version's path at its commit."""
    trees: dict[str, CommitTree] = {}
    for tag in _tags(path, repo, report):
        report.tags += 1
        if tag.missing:
            continue  # refused by the registry read, which names the tag
        report.problems += tag_problems(tag.name, tag.annotated)
        parsed = parse_tag(tag.name)
        if parsed is None or parsed.action not in _ON_VERSIONS or not tag.annotated:
            continue
        if tag.commit is None:  # the registry read refuses it too, without naming the tag
            report.problems.append(Problem(f"tag {tag.name}", "does not point to a commit"))
            continue
        if parsed.action is not Action.REGISTER:
            continue
        report.versions += 1
        try:
            tree = trees.setdefault(tag.commit, CommitTree(repo, tag.commit))
        except FetchError as error:
            report.problems.append(Problem(f"tag {tag.name}", str(error)))
            continue
        report.problems += version_problems(tree, parsed, tag.commit)


def _head_tree(repo: pygit2.Repository, report: CheckReport) -> CommitTree | None:
    try:
        head = head_commit(repo)
        return None if head is None else CommitTree(repo, head)
    except (RepositoryError, FetchError) as error:
        report.problems.append(Problem("HEAD", str(error)))
        return None


def _read_as_show_does(path: str | os.PathLike[str], report: CheckReport) -> Registry | None:
    """The registry as `gitstage show` reads it: what show refuses, check refuses. A refusal
    already reported for another subject is not repeated: the `@created` tags, and any problem
    ending with the same reason (`.gto`, artifacts.yaml at HEAD, HEAD itself name their file or
    commit differently, with the same reason after the last colon)."""
    try:
        return read_registry(path)
    except CreatedTagsError:
        return None  # each one is a tag problem
    except READ_ERRORS as error:
        refusal = str(error).splitlines()[0]
        reason = refusal.rpartition(": ")[2]
        if not any(problem.message.endswith(reason) for problem in report.problems):
            report.problems.append(Problem("registry", f"gitstage show refuses it: {refusal}"))
        return None


def _check_links(repo: pygit2.Repository, head: CommitTree | None, report: CheckReport) -> None:
    """Each link at HEAD: pinned (a tag or a commit, not a branch), present in the linked
    repository, and its path or artifact there present and fetchable."""
    report.links = 0
    if head is None:
        return
    try:
        index = read_index(head, "HEAD")
    except FetchError:
        return  # reported by the index check
    with tempfile.TemporaryDirectory(prefix="gitstage-links-") as scratch:
        for name, annotation in sorted(index.items()):
            try:
                link = link_of(name, annotation)
            except FetchError:
                continue  # reported by the index check
            if link is not None:
                report.links += 1
                report.problems += _link_problems(name, link, Path(scratch))


def _link_problems(name: str, link: ArtifactLink, scratch: Path) -> list[Problem]:
    subject = f"link of {name} ({redact(link.repo)}@{link.rev})"
    clean, user, password = split_userinfo(link.repo)
    credentials = GitCredentials.from_env(os.environ, user, password)
    try:
        refs = remote_refs(clean, credentials=credentials, environ=os.environ, workdir=scratch)
        pinned = pin_problem(subject, link, refs)
        if pinned is not None:
            return [pinned]
        fetched = fetch_commit(
            clean, link.rev, scratch, credentials=credentials, environ=os.environ
        )
    except FetchError as error:
        return [Problem(subject, str(error))]
    return link_target_problems(subject, fetched.tree, name, link)


def _check_policy(repo: pygit2.Repository, registry: Registry, report: CheckReport) -> None:
    """Every assignment in history against `.gitstage/policy.yaml` at HEAD, if there is one."""
    try:
        if read_policy(repo, registry.config.stages) is None:
            return
        violations = policy_violations(repo, registry)
    except PolicyFileError as error:
        report.problems.append(Problem(POLICY_FILE, str(error)))
        return
    except READ_ERRORS as error:
        report.problems.append(Problem(POLICY_FILE, f"cannot check the policy: {error}"))
        return
    report.assignments = sum(
        len(vstage.assignments)
        for artifact in registry.state.artifacts.values()
        for version in artifact.versions
        for vstage in version.stages.values()
    )
    # Problem(subject, detail) prints exactly as str(v): the wording the operator and assign use.
    report.problems += [Problem(v.subject, v.detail) for v in violations]


def _tags(path: str | os.PathLike[str], repo: pygit2.Repository, report: CheckReport) -> list[_Tag]:
    """The tags as `gitstage show` lists them (git's ref files), with their objects."""
    try:
        listed = RefDb(find_dirs(path)).tags()
    except RepositoryError as error:
        report.problems.append(Problem("refs", str(error)))
        return []
    tags: list[_Tag] = []
    for name, oid in sorted(listed.items()):
        obj = repo.get(oid)
        commit = None
        if obj is not None:
            try:
                commit = str(obj.peel(pygit2.Commit).id)
            except (ValueError, pygit2.GitError):
                commit = None
        tags.append(_Tag(name, isinstance(obj, pygit2.Tag), commit, missing=obj is None))
    return tags
