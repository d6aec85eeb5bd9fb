"""Webhook deliveries as the forges send them: headers, JSON body and signature.

The bodies follow the forges' documented push payloads (GitHub `push`/`create`, GitLab `Tag Push
Hook` and `System Hook`, Gitea/Forgejo `push`, Bitbucket Cloud `repo:push`, Bitbucket Data
Center `repo:refs_changed`), trimmed of fields nobody reads, for a repository served anywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from typing import Any

ZERO = "0" * 40


@dataclass(frozen=True)
class ForgeRepo:
    """How a forge names one repository in its payloads."""

    clone_url: str  # https
    ssh_url: str  # scp-like, git@host:owner/name.git
    web_url: str  # the repository page
    full_name: str = "acme/registry"


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes


def hex_hmac(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def _body(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _user(name: str = "ana") -> dict[str, Any]:
    return {"login": name, "id": 5123, "type": "User", "site_admin": False}


def github_push(
    repo: ForgeRepo, ref: str, after: str, secret: bytes, *, before: str = ZERO
) -> Delivery:
    """A `push` event; for an annotated tag, `after` is the tag object, not the commit."""
    owner, _, name = repo.full_name.partition("/")
    document = {
        "ref": ref,
        "before": before,
        "after": after,
        "repository": {
            "id": 812345678,
            "node_id": "R_kgDOMGk2Tg",
            "name": name,
            "full_name": repo.full_name,
            "private": True,
            "owner": {"name": owner, "login": owner, "id": 77, "type": "Organization"},
            "html_url": repo.web_url,
            "url": repo.web_url,
            "git_url": repo.clone_url.replace("https://", "git://"),
            "ssh_url": repo.ssh_url,
            "clone_url": repo.clone_url,
            "default_branch": "main",
            "master_branch": "main",
        },
        "pusher": {"name": "ana", "email": "ana@example.com"},
        "sender": _user(),
        "created": before == ZERO,
        "deleted": after == ZERO,
        "forced": False,
        "base_ref": None,
        "compare": f"{repo.web_url}/compare/{ref.rpartition('/')[2]}",
        "commits": [],
        "head_commit": None,
    }
    body = _body(document)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/2f2e4c1",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "487122",
        "X-Hub-Signature": "sha1=" + hmac.new(secret, body, hashlib.sha1).hexdigest(),
        "X-Hub-Signature-256": "sha256=" + hex_hmac(secret, body),
    }
    return Delivery("/hooks/github", headers, body)


def github_event(event: str, document: dict[str, Any], secret: bytes) -> Delivery:
    body = _body(document)
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": "sha256=" + hex_hmac(secret, body),
    }
    return Delivery("/hooks/github", headers, body)


def github_create_tag(repo: ForgeRepo, tag: str, secret: bytes) -> Delivery:
    document = {
        "ref": tag,
        "ref_type": "tag",
        "master_branch": "main",
        "pusher_type": "user",
        "repository": {
            "full_name": repo.full_name,
            "clone_url": repo.clone_url,
            "ssh_url": repo.ssh_url,
            "html_url": repo.web_url,
        },
        "sender": _user(),
    }
    return github_event("create", document, secret)


def gitlab_tag_push(
    repo: ForgeRepo, ref: str, after: str, commit: str, token: str, *, system: bool = False
) -> Delivery:
    """`Tag Push Hook` (or the same as a `System Hook`); `after` is the tag object."""
    project = {
        "id": 15,
        "name": repo.full_name.rpartition("/")[2],
        "web_url": repo.web_url,
        "git_ssh_url": repo.ssh_url,
        "git_http_url": repo.clone_url,
        "namespace": repo.full_name.partition("/")[0],
        "visibility_level": 0,
        "path_with_namespace": repo.full_name,
        "default_branch": "main",
        "homepage": repo.web_url,
        "url": repo.ssh_url,
        "ssh_url": repo.ssh_url,
        "http_url": repo.clone_url,
    }
    document = {
        "object_kind": "tag_push",
        "event_name": "tag_push",
        "before": ZERO,
        "after": after,
        "ref": ref,
        "ref_protected": False,
        "checkout_sha": commit,
        "user_id": 1,
        "user_name": "Ana Data",
        "user_username": "ana",
        "project_id": 15,
        "project": project,
        "commits": [],
        "total_commits_count": 0,
        "repository": {
            "name": project["name"],
            "url": repo.ssh_url,
            "homepage": repo.web_url,
            "git_http_url": repo.clone_url,
            "git_ssh_url": repo.ssh_url,
            "visibility_level": 0,
        },
    }
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitLab/17.3.0",
        "X-Gitlab-Event": "System Hook" if system else "Tag Push Hook",
        "X-Gitlab-Instance": "https://gitlab.example.com",
        "X-Gitlab-Webhook-UUID": str(uuid.uuid4()),
        "X-Gitlab-Event-UUID": str(uuid.uuid4()),
        "X-Gitlab-Token": token,
    }
    return Delivery("/hooks/gitlab", headers, _body(document))


def gitea_push(
    repo: ForgeRepo, ref: str, after: str, secret: bytes, *, forgejo: bool = False
) -> Delivery:
    """Gitea's `push` (Forgejo sends the same body, with X-Forgejo-* headers added)."""
    document = {
        "ref": ref,
        "before": ZERO,
        "after": after,
        "compare_url": "",
        "commits": [],
        "total_commits": 0,
        "head_commit": None,
        "repository": {
            "id": 3,
            "owner": {"id": 1, "login": "acme", "username": "acme"},
            "name": repo.full_name.rpartition("/")[2],
            "full_name": repo.full_name,
            "private": False,
            "html_url": repo.web_url,
            "ssh_url": repo.ssh_url,
            "clone_url": repo.clone_url,
            "default_branch": "main",
        },
        "pusher": {"id": 2, "login": "ana"},
        "sender": {"id": 2, "login": "ana"},
    }
    body = _body(document)
    signature = hex_hmac(secret, body)
    delivery = str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        "X-Gitea-Delivery": delivery,
        "X-Gitea-Event": "push",
        "X-Gitea-Event-Type": "push",
        "X-Gitea-Signature": signature,
        "X-Gogs-Delivery": delivery,
        "X-Gogs-Event": "push",
        "X-Gogs-Signature": signature,
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": "sha256=" + signature,
    }
    if forgejo:
        headers |= {
            "X-Forgejo-Delivery": delivery,
            "X-Forgejo-Event": "push",
            "X-Forgejo-Event-Type": "push",
            "X-Forgejo-Signature": signature,
        }
    return Delivery("/hooks/forgejo" if forgejo else "/hooks/gitea", headers, body)


def bitbucket_cloud_push(repo: ForgeRepo, tags: list[str], commit: str, secret: bytes) -> Delivery:
    """`repo:push` from bitbucket.org: links.html only, one change per pushed ref."""
    changes: list[dict[str, Any]] = [
        {
            "new": {"type": "tag", "name": tag, "target": {"type": "commit", "hash": commit}},
            "old": None,
            "created": True,
            "closed": False,
            "forced": False,
            "truncated": False,
            "commits": [],
        }
        for tag in tags
    ]
    document = {
        "push": {"changes": changes},
        "actor": {"type": "user", "display_name": "Ana Data", "nickname": "ana"},
        "repository": {
            "type": "repository",
            "full_name": repo.full_name,
            "name": repo.full_name.rpartition("/")[2],
            "uuid": "{6f3e1c52-1b2a-4a7e-9c1d-0a9b8c7d6e5f}",
            "is_private": True,
            "links": {
                "self": {"href": f"https://api.bitbucket.org/2.0/repositories/{repo.full_name}"},
                "html": {"href": repo.web_url},
                "avatar": {"href": "https://bytebucket.org/ravatar/%7B6f3e%7D?ts=default"},
            },
        },
    }
    return _bitbucket("repo:push", document, secret)


def bitbucket_server_push(clone_urls: list[str], ref: str, to_hash: str, secret: bytes) -> Delivery:
    """`repo:refs_changed` from Bitbucket Data Center: clone links, `changes[].ref.id`."""
    document = {
        "eventKey": "repo:refs_changed",
        "date": "2026-11-20T09:45:32+0000",
        "actor": {"name": "ana", "id": 2, "displayName": "Ana Data", "type": "NORMAL"},
        "repository": {
            "slug": "registry",
            "id": 84,
            "name": "registry",
            "scmId": "git",
            "state": "AVAILABLE",
            "forkable": True,
            "project": {"key": "ML", "id": 84, "name": "ML", "public": False, "type": "NORMAL"},
            "public": False,
            "links": {
                "clone": [
                    {"href": url, "name": "ssh" if url.startswith("ssh") else "http"}
                    for url in clone_urls
                ],
                "self": [{"href": "https://bitbucket.example.com/projects/ML/repos/registry"}],
            },
        },
        "changes": [
            {
                "ref": {"id": ref, "displayId": ref.rpartition("/")[2], "type": "TAG"},
                "refId": ref,
                "fromHash": ZERO,
                "toHash": to_hash,
                "type": "ADD",
            }
        ],
    }
    return _bitbucket("repo:refs_changed", document, secret)


def _bitbucket(event: str, document: dict[str, Any], secret: bytes) -> Delivery:
    body = _body(document)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Bitbucket-Webhooks/2.0",
        "X-Event-Key": event,
        "X-Request-UUID": str(uuid.uuid4()),
        "X-Hook-UUID": str(uuid.uuid4()),
        "X-Hub-Signature": "sha256=" + hex_hmac(secret, body),
    }
    return Delivery("/hooks/bitbucket", headers, body)


def generic_push(urls: list[str], secret: bytes, refs: list[str] | None = None) -> Delivery:
    document: dict[str, Any] = {"repositories": urls}
    if refs:
        document["refs"] = refs
    body = _body(document)
    headers = {
        "Content-Type": "application/json",
        "X-Signature": "sha256=" + hex_hmac(secret, body),
    }
    return Delivery("/hooks/generic", headers, body)
