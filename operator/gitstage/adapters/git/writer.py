"""Create and delete GTO tags in-process with pygit2, and push them with the git CLI.

The tagger is an explicit `pygit2.Signature` (name, email, time, offset): never a change to
this process's environment. Signed tags are written as raw tag objects, in git's format (the
armored signature follows the message), so `git verify-tag` and GTO read them as usual.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import pygit2

from gitstage.adapters.git.credentials import GitCredentials, git_environment
from gitstage.adapters.git.reader import TAGS_PREFIX
from gitstage.domain.registry.events import Instant
from gitstage.domain.repo_urls import redact
from gitstage.domain.write.git_dates import format_offset, parse_git_date
from gitstage.domain.write.plan import NewTag, Resolver

PUSH_TIMEOUT_SECONDS = 300


class WriteError(RuntimeError):
    """Git refused a write or a push; the message is one line and has no credentials."""


class Signer(Protocol):
    """Signs a tag payload, returning the armored signature git appends to the message."""

    def sign(self, payload: bytes) -> bytes: ...


def tag_names(repo: pygit2.Repository) -> frozenset[str]:
    """Every tag name, lightweight ones included: GTO's `#N` counter counts them all."""
    return frozenset(
        ref[len(TAGS_PREFIX) :] for ref in repo.listall_references() if ref.startswith(TAGS_PREFIX)
    )


def revision_resolver(repo: pygit2.Repository) -> Resolver:
    def resolve(ref: str) -> str | None:
        try:
            return str(repo.revparse_single(ref).peel(pygit2.Commit).id)
        except (KeyError, ValueError, pygit2.GitError):
            return None

    return resolve


def tagger_signature(
    repo: pygit2.Repository,
    *,
    name: str | None = None,
    email: str | None = None,
    when: Instant | None = None,
    environ: Mapping[str, str] | None = None,
) -> pygit2.Signature:
    """--author/--author-email, else GIT_COMMITTER_*, else git config user.name/user.email.

    The time is `when`, else GIT_COMMITTER_DATE (as git reads it), else now in local time.
    """
    env = os.environ if environ is None else environ
    name = name or env.get("GIT_COMMITTER_NAME") or _config(repo, "user.name")
    email = email or env.get("GIT_COMMITTER_EMAIL") or _config(repo, "user.email")
    if not name or not email:
        raise WriteError(
            "no tagger identity: pass --author and --author-email, "
            "or set git config user.name and user.email"
        )
    for value in (name, email):
        if any(c in value for c in "<>\n\r\0"):
            raise WriteError(f"invalid tagger identity {value!r}: no '<', '>' or newlines")
    if when is None:
        raw = env.get("GIT_COMMITTER_DATE")
        when = parse_git_date(raw) if raw else _now()
    return pygit2.Signature(name, email, when.seconds, when.offset // 60)


def _config(repo: pygit2.Repository, key: str) -> str | None:
    try:
        return str(repo.config[key])
    except KeyError:
        return None


def _now() -> Instant:
    offset = datetime.now().astimezone().utcoffset()
    return Instant(int(time.time()), int(offset.total_seconds()) if offset else 0)


@dataclass(frozen=True)
class PreparedTag:
    """A tag ready to write: `raw` is the whole signed tag object, None for unsigned tags."""

    tag: NewTag
    raw: bytes | None = None


def prepare_tags(
    repo: pygit2.Repository,
    tags: Sequence[NewTag],
    tagger: pygit2.Signature,
    signer: Signer | None = None,
) -> list[PreparedTag]:
    """Check names and targets, and sign when asked; nothing is written yet."""
    prepared: list[PreparedTag] = []
    for tag in tags:
        if not pygit2.reference_is_valid_name(TAGS_PREFIX + tag.name):
            raise WriteError(f"Failed to create tag '{tag.name}': not a valid git ref name")
        target = repo.get(tag.target)
        if target is None:
            raise WriteError(f"Failed to create tag '{tag.name}': no object {tag.target}")
        raw = None
        if signer is not None:
            payload = tag_payload(tag, target.type_str, tagger)
            raw = payload + signer.sign(payload)
        prepared.append(PreparedTag(tag, raw))
    return prepared


def write_tags(
    repo: pygit2.Repository, prepared: Sequence[PreparedTag], tagger: pygit2.Signature
) -> None:
    """Create every tag or none: a failure removes the ones already created."""
    created: list[str] = []
    try:
        for item in prepared:
            _write_tag(repo, item, tagger)
            created.append(item.tag.name)
    except (pygit2.GitError, ValueError, KeyError) as error:
        delete_tags(repo, created)
        raise WriteError(f"Failed to create tag: {error}") from None


def _write_tag(repo: pygit2.Repository, item: PreparedTag, tagger: pygit2.Signature) -> None:
    tag = item.tag
    if item.raw is None:
        target = repo.get(tag.target)
        if target is None:
            raise KeyError(tag.target)
        repo.create_tag(tag.name, target.id, target.type, tagger, tag.message)
        return
    oid = repo.odb.write(pygit2.enums.ObjectType.TAG, item.raw)
    repo.references.create(TAGS_PREFIX + tag.name, oid)


def tag_payload(tag: NewTag, target_type: str, tagger: pygit2.Signature) -> bytes:
    """The tag object up to its signature, as git writes it (the part a signature covers)."""
    message = tag.message if tag.message.endswith("\n") else tag.message + "\n"
    offset = format_offset(tagger.offset * 60)
    lines = (
        f"object {tag.target}\n"
        f"type {target_type}\n"
        f"tag {tag.name}\n"
        f"tagger {tagger.name} <{tagger.email}> {tagger.time} {offset}\n"
        f"\n{message}"
    )
    return lines.encode("utf-8")


def tag_targets(repo: pygit2.Repository, names: Sequence[str]) -> dict[str, pygit2.Oid]:
    """What each existing tag ref points at (to restore it if a push is refused)."""
    found = {}
    for name in names:
        ref = repo.references.get(TAGS_PREFIX + name)
        if ref is not None and isinstance(ref.target, pygit2.Oid):
            found[name] = ref.target
    return found


def undo_tags(
    repo: pygit2.Repository, created: Sequence[str], deleted: dict[str, pygit2.Oid]
) -> None:
    """Remove the tags a command created and put back the ones it deleted."""
    for name in created:
        ref = repo.references.get(TAGS_PREFIX + name)
        if ref is not None:
            ref.delete()
    for name, target in deleted.items():
        repo.references.create(TAGS_PREFIX + name, target, force=True)


def delete_tags(repo: pygit2.Repository, names: Sequence[str]) -> None:
    for name in names:
        try:
            repo.references.delete(TAGS_PREFIX + name)
        except KeyError:
            raise WriteError(f"tag '{name}' is not found") from None


def push_tags(
    git_dir: str | os.PathLike[str],
    created: Sequence[str],
    deleted: Sequence[str],
    *,
    remote: str = "origin",
    credentials: GitCredentials | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """One atomic `git push` of `refs/tags/T:refs/tags/T` for each new tag, `:refs/tags/T` to
    delete: the remote takes all of them or none."""
    specs = [f"{TAGS_PREFIX}{t}:{TAGS_PREFIX}{t}" for t in created]
    specs += [f":{TAGS_PREFIX}{t}" for t in deleted]
    if not specs:
        return
    with tempfile.TemporaryDirectory(prefix="gitstage-push-") as scratch:
        env = git_environment(
            os.environ if environ is None else environ,
            credentials,
            Path(scratch),
            url=_remote_url(git_dir, remote),
        )
        try:
            result = subprocess.run(
                ["git", "push", "--quiet", "--atomic", remote, *specs],
                cwd=git_dir,
                env=env,
                capture_output=True,
                text=True,
                timeout=PUSH_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise WriteError(f"git push to {remote} timed out") from None
    if result.returncode != 0:
        reason = _push_reason(result.stderr) or f"exit code {result.returncode}"
        raise WriteError(f"git push to {remote} failed: {redact(reason)}")


def _remote_url(git_dir: str | os.PathLike[str], remote: str) -> str:
    """The URL a push to `remote` (a remote's name, or a URL) goes to."""
    try:
        return pygit2.Repository(str(git_dir)).remotes[remote].url or remote
    except (KeyError, ValueError, pygit2.GitError):
        return remote


def _push_reason(stderr: str) -> str:
    """A rejected ref (`! [rejected] T -> T (already exists)`) says more than the summary, and
    what the remote's hook printed (`remote: ...`) says why."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    rejected = [line for line in lines if line.startswith("!")]
    errors = [line for line in lines if line.startswith(("error:", "fatal:"))]
    said = [line.removeprefix("remote:").strip() for line in lines if line.startswith("remote:")]
    reason = (rejected or errors or lines or [""])[0 if rejected else -1]
    remote_says = next((line for line in reversed(said) if line), "")
    return f"{reason}: {remote_says[:200]}" if rejected and remote_says else reason
