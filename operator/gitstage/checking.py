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
from gitstage.adapters.git.reader import TAGS_PREFIX, read_config, read_registry
from gitstage.adapters.git.repository import RepositoryError, open_repository
from gitstage.adapters.git.shallow_fetch import fetch_commit, remote_refs
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
from gitstage.domain.registry.index import CorruptIndexError
from gitstage.domain.registry.state import RegistryError
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


def check_repository(path: str | os.PathLike[str] = ".", *, links: bool = False) -> CheckReport:
    """Raises RepositoryError when `path` is not a git repository. `links`: resolve every link
    of artifacts.yaml at HEAD in its repository (network)."""
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
    _check_policy(path, repo, report)
    if links:
        _check_links(repo, report)
    return report


def _check_links(repo: pygit2.Repository, report: CheckReport) -> None:
    """Each link at HEAD: pinned (a tag or a commit, not a branch), present in the linked
    repository, and its path or artifact there present and fetchable."""
    report.links = 0
    if repo.head_is_unborn:
        return
    head = CommitTree(repo, str(repo.head.target))
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


def _check_policy(
    path: str | os.PathLike[str], repo: pygit2.Repository, report: CheckReport
) -> None:
    """Every assignment in history against `.gitstage/policy.yaml` at HEAD, if there is one."""
    try:
        config = read_config(repo)
        if read_policy(repo, config.stages) is None:
            return
        registry = read_registry(path)
        violations = policy_violations(repo, registry)
    except PolicyFileError as error:
        report.problems.append(Problem(POLICY_FILE, str(error)))
        return
    except (WrongConfigError, CorruptIndexError, RegistryError, RepositoryError) as error:
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
