"""Run a write command (register, assign, unassign, deregister, deprecate) on a registry.

A local repository is written in place (and pushed with `push=True`); a remote URL is read
without a full clone (tags and the default branch, no blobs), written there and always pushed,
as GTO does for remote repositories. The promotion policy, if the registry has one, is checked
before anything is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pygit2

from gitstage.adapters.git.credentials import GitCredentials
from gitstage.adapters.git.partial import RemoteRepository, partial_fetch
from gitstage.adapters.git.policy_reader import (
    config_at_head,
    policy_evaluator,
    read_policy,
    read_trust,
)
from gitstage.adapters.git.reader import GitCommitSource, read_config, scan_tags
from gitstage.adapters.git.repository import open_repository
from gitstage.adapters.git.signatures import SshSigner, verify_signature
from gitstage.adapters.git.writer import (
    PreparedTag,
    WriteError,
    delete_tags,
    prepare_tags,
    push_tags,
    revision_resolver,
    tag_names,
    tag_targets,
    tagger_signature,
    undo_tags,
    write_tags,
)
from gitstage.domain.policy.rules import POLICY_FILE, UNSIGNED, violation_of
from gitstage.domain.registry.config import RegistryConfig
from gitstage.domain.registry.events import Event, EventKind, Instant
from gitstage.domain.registry.files import CONFIG_FILE
from gitstage.domain.registry.state import RegistryState, build_state
from gitstage.domain.registry.tags import Action
from gitstage.domain.repo_urls import redact
from gitstage.domain.write.plan import WriteContext, WritePlan, plan
from gitstage.domain.write.requests import WriteRequest

Progress = Callable[[str], None]


class PolicyRefusal(ValueError):
    """The promotion breaks the registry's policy; the message names the rule."""


@dataclass(frozen=True)
class WriteOptions:
    """Where and as whom to write. `date` defaults to GIT_COMMITTER_DATE, then now."""

    repo: str = "."
    push: bool = False
    author: str | None = None
    author_email: str | None = None
    date: Instant | None = None
    sign_key: str | None = None
    environ: Mapping[str, str] | None = None


@dataclass(frozen=True)
class WriteOutcome:
    plan: WritePlan
    pushed: bool
    remote: str = "origin"


@dataclass
class _Target:
    repo: pygit2.Repository
    git_dir: Path
    config: RegistryConfig
    state: RegistryState
    remote: RemoteRepository | None = None


def is_remote(repo: str) -> bool:
    """GTO's rule: an existing path is a local repository, anything else a URL to clone."""
    return not os.path.exists(repo)


def execute(
    request: WriteRequest, options: WriteOptions, progress: Progress | None = None
) -> WriteOutcome:
    environ = os.environ if options.environ is None else options.environ
    with _open_target(options.repo, environ, progress) as target:
        context = WriteContext(
            target.state,
            tag_names(target.repo),
            _resolver(target),
            target.config.stages,
        )
        result = plan(context, request)
        prepared: list[PreparedTag] = []
        tagger = None
        if result.created:
            tagger = tagger_signature(
                target.repo,
                name=options.author,
                email=options.author_email,
                when=options.date,
                environ=environ,
            )
            signer = SshSigner(options.sign_key) if options.sign_key else None
            prepared = prepare_tags(target.repo, result.created, tagger, signer)
            _enforce_policy(target, prepared, tagger)
        deleted_targets = tag_targets(target.repo, result.deleted)
        if tagger is not None:
            write_tags(target.repo, prepared, tagger)
        if result.deleted:
            delete_tags(target.repo, result.deleted)
        push = options.push or target.remote is not None
        if push:
            try:
                _push(target, result, environ)
            except WriteError as refused:
                # The remote took nothing (atomic push): neither does the local repository, so
                # the same command can simply be run again.
                undo_tags(target.repo, [t.name for t in result.created], deleted_targets)
                raise WriteError(
                    f"{refused}; nothing was pushed, the local tags are undone"
                ) from None
        remote = redact(target.remote.url) if target.remote is not None else "origin"
        return WriteOutcome(result, push, remote)


def _resolver(target: _Target) -> Callable[[str], str | None]:
    """Revisions of the local repository; on a remote, one the partial copy lacks (a branch
    other than the default, a commit no tag names) is fetched from the remote first."""
    local = revision_resolver(target.repo)
    remote = target.remote
    if remote is None:
        return local

    def resolve(ref: str) -> str | None:
        found = local(ref)
        if found is not None:
            return found
        remote.fetch_rev(ref)
        target.repo = remote.repo
        return revision_resolver(remote.repo)(ref)

    return resolve


def _push(target: _Target, result: WritePlan, environ: Mapping[str, str]) -> None:
    created = [t.name for t in result.created]
    if target.remote is not None:
        push_tags(
            target.git_dir,
            created,
            result.deleted,
            credentials=target.remote.credentials,
            environ=environ,
        )
        return
    push_tags(target.git_dir, created, result.deleted, credentials=GitCredentials.from_env(environ))


def _enforce_policy(target: _Target, prepared: list[PreparedTag], tagger: pygit2.Signature) -> None:
    assignments = [p for p in prepared if p.tag.action is Action.ASSIGN]
    if not assignments:
        return
    evaluator = policy_evaluator(target.repo, target.state, target.config.stages)
    if evaluator is None:
        return
    trust = read_trust(target.repo, evaluator.policy)
    for item in assignments:
        status = UNSIGNED
        if item.raw is not None:
            status = verify_signature(item.raw, trust)
        tag = item.tag
        event = Event(
            kind=EventKind.ASSIGNMENT,
            artifact=tag.artifact,
            time=Instant(tagger.time, tagger.offset * 60),
            author=tagger.name,
            author_email=tagger.email,
            message=tag.message,
            commit=tag.target,
            tag=tag.name,
            version=tag.version,
            stage=tag.stage,
        )
        violation = evaluator.violation(event, status)
        if violation is not None:
            raise PolicyRefusal(str(violation_of(event, violation)))


@contextmanager
def _open_target(
    repo: str, environ: Mapping[str, str], progress: Progress | None
) -> Iterator[_Target]:
    if not is_remote(repo):
        yield _local_target(repo)
        return
    with partial_fetch(repo, environ, progress) as remote:
        yield _remote_target(remote, environ)


def _local_target(path: str) -> _Target:
    repo = open_repository(path)
    config = read_config(repo)
    scan = scan_tags(repo)
    state = build_state(scan.annotated, GitCommitSource(repo, config.index), scan.reserved)
    git_dir = Path(repo.workdir or repo.path)
    return _Target(repo, git_dir, config, state)


def _remote_target(remote: RemoteRepository, environ: Mapping[str, str]) -> _Target:
    """Like a clone's checkout of the default branch: `.gto` and the policy at its tip."""
    repo = remote.repo
    head = None if repo.head_is_unborn else str(repo.head.peel(pygit2.Commit).id)
    if head is not None:
        remote.ensure_blobs([(head, CONFIG_FILE), (head, POLICY_FILE)])
    config = config_at_head(repo, environ)
    scan = scan_tags(repo)
    wanted = [(tag.target, config.index) for _, tag in scan.annotated]
    if head is not None:
        wanted.append((head, config.index))
        policy = read_policy(repo, config.stages)
        if policy is not None:
            wanted += [(head, policy.allowed_signers), (head, policy.gpg_keyring)]
    remote.ensure_blobs(wanted)
    state = build_state(scan.annotated, GitCommitSource(repo, config.index), scan.reserved)
    return _Target(repo, remote.git_dir, config, state, remote)
