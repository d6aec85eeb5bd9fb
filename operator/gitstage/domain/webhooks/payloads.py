"""What a forge's push webhook says: which repository changed (by every URL the payload gives).

The receiver does not trust the payload's SHAs: an annotated tag push names the tag object, and
GitHub sends no event at all for pushes of more than three tags. It learns which repository to
poll now and which refs changed; the poll then reads those refs from the remote (not their SHAs
from the payload), and a full poll follows in case the payload named fewer than were pushed.

Whatever the body holds, `parse` returns or raises `WebhookRejected` (a one-line 400): invalid
UTF-8, JSON nested past the interpreter's recursion limit, URLs that do not parse, header values
that are not ASCII. What it returns is safe to log: URLs and refs hold no control characters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from gitstage.domain.repo_urls import url_problem
from gitstage.domain.webhooks.signatures import Forge, WebhookRejected, shown_header


@dataclass(frozen=True)
class PushNotice:
    """A push (or a branch/tag creation): poll these repositories."""

    forge: Forge
    event: str
    repositories: tuple[str, ...]  # URLs as the payload spells them
    refs: tuple[str, ...]  # refs the payload names (hints for the poll); may be empty or partial


@dataclass(frozen=True)
class Ping:
    """A forge testing the hook: answered, nothing polled."""

    forge: Forge


@dataclass(frozen=True)
class Ignored:
    """An event that changes no ref (issues, comments, ...)."""

    forge: Forge
    event: str


Notice = PushNotice | Ping | Ignored


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# GitHub, Gitea, Forgejo (and Gogs) share the repository object.
class _HubRepository(_Model):
    clone_url: str | None = None
    ssh_url: str | None = None
    git_url: str | None = None
    html_url: str | None = None


class _HubPush(_Model):
    repository: _HubRepository
    ref: str | None = None
    ref_type: str | None = None  # `create` events: "tag" or "branch", with a short `ref`


class _GitLabRepository(_Model):
    git_http_url: str | None = None
    git_ssh_url: str | None = None
    http_url: str | None = None
    ssh_url: str | None = None
    web_url: str | None = None
    homepage: str | None = None
    url: str | None = None  # ssh form in `repository`, scp-like in `project`


class _GitLabPush(_Model):
    object_kind: str | None = None
    ref: str | None = None
    project: _GitLabRepository | None = None
    repository: _GitLabRepository | None = None


class _Href(_Model):
    href: str


class _BitbucketLinks(_Model):
    html: _Href | None = None  # Cloud
    clone: list[_Href] = []  # Data Center


class _BitbucketRepository(_Model):
    links: _BitbucketLinks | None = None


class _BitbucketNew(_Model):
    name: str | None = None
    type: str | None = None


class _BitbucketRef(_Model):
    id: str | None = None


class _BitbucketChange(_Model):
    new: _BitbucketNew | None = None  # Cloud
    ref: _BitbucketRef | None = None  # Data Center


class _BitbucketPushBody(_Model):
    changes: list[_BitbucketChange] = []


class _BitbucketPush(_Model):
    repository: _BitbucketRepository
    push: _BitbucketPushBody | None = None  # Cloud
    changes: list[_BitbucketChange] = []  # Data Center


class _GenericPush(_Model):
    repository: str | None = None
    repositories: list[str] = []
    refs: list[str] = []


M = TypeVar("M", bound=_Model)

_EVENT_HEADERS = {
    Forge.GITHUB: ("x-github-event",),
    Forge.GITLAB: ("x-gitlab-event",),
    Forge.GITEA: ("x-gitea-event", "x-forgejo-event", "x-gogs-event"),
    Forge.FORGEJO: ("x-forgejo-event", "x-gitea-event", "x-gogs-event"),
    Forge.BITBUCKET: ("x-event-key",),
}
_PUSH_EVENTS = {
    Forge.GITHUB: {"push", "create"},
    Forge.GITLAB: {"push hook", "tag push hook", "system hook"},
    Forge.GITEA: {"push", "create"},
    Forge.FORGEJO: {"push", "create"},
    Forge.BITBUCKET: {"repo:push", "repo:refs_changed"},
}
_PING_EVENTS = {"ping", "diagnostics:ping"}
_GITLAB_KINDS = {"push", "tag_push"}
_MAX_EVENT_LENGTH = 64
_MAX_REF_LENGTH = 256


def parse(forge: Forge, headers: Mapping[str, str], body: bytes) -> Notice:
    """Read an authenticated request; raise `WebhookRejected` (400) on a malformed one."""
    event = _event(forge, headers)
    if event in _PING_EVENTS:
        return Ping(forge)
    if forge is not Forge.GENERIC and event not in _PUSH_EVENTS[forge]:
        return Ignored(forge, event)
    document = _json_object(body)
    if forge is Forge.GITLAB:
        return _gitlab(event, document)
    if forge is Forge.BITBUCKET:
        return _bitbucket(event, document)
    if forge is Forge.GENERIC:
        return _generic(document)
    return _hub(forge, event, document)


def _event(forge: Forge, headers: Mapping[str, str]) -> str:
    if forge is Forge.GENERIC:
        return "push"
    names = _EVENT_HEADERS[forge]
    value = next((headers[name] for name in names if headers.get(name)), None)
    if value is None:
        raise WebhookRejected(f"missing {names[0]} header")
    event = value.strip().lower()
    if len(event) > _MAX_EVENT_LENGTH or not (event.isascii() and event.isprintable()):
        raise WebhookRejected(f"{shown_header(names[0])} is not an event name")
    return event


def _json_object(body: bytes) -> dict[str, object]:
    try:
        document = json.loads(body)
    except RecursionError:  # `[[[[...`: the decoder recurses once per level
        raise WebhookRejected("malformed JSON: nested too deeply") from None
    except ValueError as error:  # UnicodeDecodeError too
        raise WebhookRejected(f"malformed JSON: {str(error).splitlines()[0]}") from None
    if not isinstance(document, dict):
        raise WebhookRejected("the payload is not a JSON object")
    return document


def _hub(forge: Forge, event: str, document: dict[str, object]) -> Notice:
    push = _validate(_HubPush, forge, document)
    repo = push.repository
    refs: tuple[str, ...] = ()
    if push.ref:
        kind = {"tag": "refs/tags/", "branch": "refs/heads/"}.get(push.ref_type or "", "")
        refs = (kind + push.ref,)
    urls = (repo.clone_url, repo.ssh_url, repo.git_url, repo.html_url)
    return _notice(forge, event, urls, refs)


def _gitlab(event: str, document: dict[str, object]) -> Notice:
    push = _validate(_GitLabPush, Forge.GITLAB, document)
    if event == "system hook" and push.object_kind not in _GITLAB_KINDS:
        kind = _loggable(str(push.object_kind), _MAX_EVENT_LENGTH)
        return Ignored(Forge.GITLAB, f"system hook {kind}")
    urls: list[str | None] = []
    for repo in (push.project, push.repository):
        if repo is not None:
            urls += [repo.git_http_url, repo.git_ssh_url, repo.http_url, repo.ssh_url]
            urls += [repo.web_url, repo.homepage, repo.url]
    return _notice(Forge.GITLAB, event, urls, (push.ref,) if push.ref else ())


def _bitbucket(event: str, document: dict[str, object]) -> Notice:
    push = _validate(_BitbucketPush, Forge.BITBUCKET, document)
    links = push.repository.links
    urls: list[str | None] = []
    if links is not None:
        urls = [links.html.href if links.html else None, *(c.href for c in links.clone)]
    changes = [*(push.push.changes if push.push else []), *push.changes]
    return _notice(Forge.BITBUCKET, event, urls, tuple(_bitbucket_ref(c) for c in changes))


def _bitbucket_ref(change: _BitbucketChange) -> str:
    if change.ref is not None and change.ref.id:
        return change.ref.id
    new = change.new
    if new is None or not new.name:
        return "(deleted)"
    kind = {"tag": "refs/tags/", "branch": "refs/heads/"}.get(new.type or "", "")
    return kind + new.name


def _generic(document: dict[str, object]) -> Notice:
    push = _validate(_GenericPush, Forge.GENERIC, document)
    return _notice(Forge.GENERIC, "push", [push.repository, *push.repositories], tuple(push.refs))


def _notice(
    forge: Forge, event: str, urls: tuple[str | None, ...] | list[str | None], refs: tuple[str, ...]
) -> PushNotice:
    found = tuple(dict.fromkeys(url for url in urls if url))
    if not found:
        raise WebhookRejected(f"the {forge} payload names no repository URL")
    for url in found:
        if problem := url_problem(url):
            raise WebhookRejected(f"the {forge} payload has a malformed repository URL: {problem}")
    return PushNotice(forge, event, found, tuple(_loggable(ref, _MAX_REF_LENGTH) for ref in refs))


def _loggable(text: str, limit: int) -> str:
    """Text from the body as a log line or an answer may show it: escaped, bounded."""
    shown = text if text.isprintable() else repr(text)[1:-1]
    return shown[:limit]


def _validate(model: type[M], forge: Forge, document: dict[str, object]) -> M:
    try:
        return model.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the top level"
        raise WebhookRejected(f"invalid {forge} payload at {where}: {first['msg']}") from None
