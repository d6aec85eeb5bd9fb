"""Webhook signatures and payloads of every forge, on deliveries shaped like the real ones."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from gitstage.domain.repo_urls import MAX_URL_LENGTH, repository_key, url_problem
from gitstage.domain.webhooks.payloads import Ignored, Ping, PushNotice, parse
from gitstage.domain.webhooks.signatures import (
    Forge,
    Unauthorized,
    WebhookRejected,
    authenticate,
)
from tests.support import forge_payloads as fp

SECRET = b"hook-secret-9f2c"
OTHER = b"rotated-secret-11aa"
TAG_OBJECT = "5c1b3f0e9d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c"  # what `after` names for an annotated tag
COMMIT = "a3f9e1d2c4b5a6978877665544332211ffeeddcc"
REPO = fp.ForgeRepo(
    clone_url="https://github.com/Acme/Registry.git",
    ssh_url="git@github.com:Acme/Registry.git",
    web_url="https://github.com/Acme/Registry",
    full_name="Acme/Registry",
)
KEY = "github.com/acme/registry"


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def accept(forge: Forge, delivery: fp.Delivery, secrets: tuple[bytes, ...] = (SECRET,)) -> None:
    authenticate(forge, lower(delivery.headers), delivery.body, secrets)


def refuse(forge: Forge, delivery: fp.Delivery, secrets: tuple[bytes, ...] = (SECRET,)) -> str:
    with pytest.raises(Unauthorized) as caught:
        accept(forge, delivery, secrets)
    message = str(caught.value)
    assert "\n" not in message
    assert SECRET.decode() not in message
    assert caught.value.status == 401
    return message


def push(forge: Forge, delivery: fp.Delivery) -> PushNotice:
    accept(forge, delivery)
    notice = parse(forge, lower(delivery.headers), delivery.body)
    assert isinstance(notice, PushNotice)
    return notice


def tampered(delivery: fp.Delivery) -> fp.Delivery:
    body = delivery.body.replace(b"Registry", b"Reg1stry")
    assert body != delivery.body
    return fp.Delivery(delivery.path, delivery.headers, body)


def with_headers(delivery: fp.Delivery, **changes: str | None) -> fp.Delivery:
    headers = dict(delivery.headers)
    for name, value in changes.items():
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return fp.Delivery(delivery.path, headers, delivery.body)


# --- signatures -------------------------------------------------------------------------------


SIGNED = {
    Forge.GITHUB: fp.github_push(REPO, "refs/tags/churn#prod#3", TAG_OBJECT, SECRET),
    Forge.GITEA: fp.gitea_push(REPO, "refs/tags/churn#prod#3", TAG_OBJECT, SECRET),
    Forge.FORGEJO: fp.gitea_push(REPO, "refs/tags/churn#prod#3", TAG_OBJECT, SECRET, forgejo=True),
    Forge.BITBUCKET: fp.bitbucket_cloud_push(REPO, ["churn#prod#3"], COMMIT, SECRET),
    Forge.GENERIC: fp.generic_push([REPO.clone_url], SECRET),
}


@pytest.mark.parametrize("forge", list(SIGNED))
def test_a_valid_hmac_is_accepted_and_a_tampered_body_is_not(forge: Forge) -> None:
    delivery = SIGNED[forge]
    accept(forge, delivery)
    assert "does not match" in refuse(forge, tampered(delivery))


@pytest.mark.parametrize("forge", list(SIGNED))
def test_another_secret_is_refused_and_any_configured_secret_is_accepted(forge: Forge) -> None:
    delivery = SIGNED[forge]
    refuse(forge, delivery, (OTHER,))
    accept(forge, delivery, (OTHER, SECRET))  # rotation: old and new both configured


def test_a_missing_signature_header_is_named() -> None:
    delivery = with_headers(SIGNED[Forge.GITHUB], **{"X-Hub-Signature-256": None})
    assert refuse(Forge.GITHUB, delivery) == "missing X-Hub-Signature-256 header"
    generic = with_headers(SIGNED[Forge.GENERIC], **{"X-Signature": None})
    assert refuse(Forge.GENERIC, generic) == "missing X-Signature header"


def test_github_legacy_sha1_signature_alone_is_not_enough() -> None:
    delivery = with_headers(SIGNED[Forge.GITHUB], **{"X-Hub-Signature-256": None})
    assert delivery.headers["X-Hub-Signature"].startswith("sha1=")
    refuse(Forge.GITHUB, delivery)
    sha1 = hmac.new(SECRET, delivery.body, hashlib.sha1).hexdigest()
    bitbucket = with_headers(SIGNED[Forge.BITBUCKET], **{"X-Hub-Signature": f"sha1={sha1}"})
    assert "only sha256" in refuse(Forge.BITBUCKET, bitbucket)


def test_signature_hex_case_and_blanks_do_not_matter() -> None:
    delivery = SIGNED[Forge.GITEA]
    upper = delivery.headers["X-Gitea-Signature"].upper()
    changed = {"X-Gitea-Signature": f" {upper} ", "X-Gogs-Signature": None}
    accept(Forge.GITEA, with_headers(delivery, **changed))


def test_forgejo_signature_header_alone_suffices() -> None:
    delivery = SIGNED[Forge.FORGEJO]
    only = with_headers(delivery, **{"X-Gitea-Signature": None, "X-Gogs-Signature": None})
    accept(Forge.FORGEJO, only)
    bad = with_headers(only, **{"X-Forgejo-Signature": "00" * 32})
    assert refuse(Forge.FORGEJO, bad) == "X-Forgejo-Signature does not match the body"


def test_gitlab_compares_the_token() -> None:
    delivery = fp.gitlab_tag_push(REPO, "refs/tags/v1", TAG_OBJECT, COMMIT, SECRET.decode())
    accept(Forge.GITLAB, delivery)
    accept(Forge.GITLAB, delivery, (OTHER, SECRET))
    assert refuse(Forge.GITLAB, delivery, (OTHER,)) == "X-Gitlab-Token does not match"
    prefix = with_headers(delivery, **{"X-Gitlab-Token": SECRET.decode()[:-1]})
    refuse(Forge.GITLAB, prefix)
    missing = with_headers(delivery, **{"X-Gitlab-Token": None})
    assert refuse(Forge.GITLAB, missing) == "missing X-Gitlab-Token header"


def test_without_a_configured_secret_everything_is_refused() -> None:
    assert refuse(Forge.GITHUB, SIGNED[Forge.GITHUB], ()) == "no webhook secret is configured"


# What an HTTP server hands over for header bytes that are not UTF-8 (aiohttp: surrogateescape).
UNDECODABLE = b"sha256=\xff\xfe\x80".decode("utf-8", "surrogateescape")


@pytest.mark.fault
@pytest.mark.parametrize(
    ("forge", "header"),
    [
        (Forge.GITHUB, "X-Hub-Signature-256"),
        (Forge.BITBUCKET, "X-Hub-Signature"),
        (Forge.GENERIC, "X-Signature"),
        (Forge.GITEA, "X-Gitea-Signature"),
    ],
)
@pytest.mark.parametrize("value", [UNDECODABLE, "sha256=é" + "0" * 63, "sha256=" + "0" * 65])
def test_a_signature_that_is_not_a_hex_digest_is_a_401_not_an_error(
    forge: Forge, header: str, value: str
) -> None:
    changes = {header: value.removeprefix("sha256=") if forge is Forge.GITEA else value}
    if forge is Forge.GITEA:
        changes |= {"X-Gogs-Signature": None}
    message = refuse(forge, with_headers(SIGNED[forge], **changes))
    assert message == f"{header.replace('GitHub', 'Github')} is not a hex SHA-256 digest"


@pytest.mark.fault
@pytest.mark.parametrize("token", [UNDECODABLE, "\ud800", "sécret"])
def test_a_gitlab_token_of_any_bytes_is_compared_not_an_error(token: str) -> None:
    delivery = fp.gitlab_tag_push(REPO, "refs/tags/v1", TAG_OBJECT, COMMIT, SECRET.decode())
    bad = with_headers(delivery, **{"X-Gitlab-Token": token})
    assert refuse(Forge.GITLAB, bad) == "X-Gitlab-Token does not match"
    accept(
        Forge.GITLAB, with_headers(delivery, **{"X-Gitlab-Token": "sécret"}), ("sécret".encode(),)
    )


# --- payloads ---------------------------------------------------------------------------------


def test_github_annotated_tag_push_names_the_repository_not_a_commit() -> None:
    notice = push(Forge.GITHUB, SIGNED[Forge.GITHUB])
    assert notice.event == "push"
    assert notice.refs == ("refs/tags/churn#prod#3",)
    assert REPO.clone_url in notice.repositories
    assert REPO.ssh_url in notice.repositories
    assert {repository_key(url) for url in notice.repositories} >= {KEY}
    assert TAG_OBJECT not in str(notice)  # the tag object's SHA is never used as a commit


def test_github_create_ping_and_other_events() -> None:
    created = push(Forge.GITHUB, fp.github_create_tag(REPO, "churn#prod#4", SECRET))
    assert created.refs == ("refs/tags/churn#prod#4",)
    ping = fp.github_event("ping", {"zen": "Keep it logically awesome.", "hook_id": 1}, SECRET)
    assert parse(Forge.GITHUB, lower(ping.headers), ping.body) == Ping(Forge.GITHUB)
    issues = fp.github_event("issues", {"action": "opened"}, SECRET)
    assert parse(Forge.GITHUB, lower(issues.headers), issues.body) == Ignored(
        Forge.GITHUB, "issues"
    )


def test_a_push_naming_no_tag_still_names_the_repository() -> None:
    """GitHub reports a push of more than three tags without per-tag events: any push polls."""
    branch = fp.github_push(REPO, "refs/heads/main", COMMIT, SECRET, before=TAG_OBJECT)
    notice = push(Forge.GITHUB, branch)
    assert notice.refs == ("refs/heads/main",)
    assert REPO.clone_url in notice.repositories
    many = fp.bitbucket_cloud_push(REPO, [f"churn#prod#{n}" for n in range(5, 25)], COMMIT, SECRET)
    assert len(push(Forge.BITBUCKET, many).refs) == 20


def test_gitlab_tag_push_and_system_hooks() -> None:
    gitlab = fp.ForgeRepo(
        "https://gitlab.example.com/ml/registry.git",
        "git@gitlab.example.com:ml/registry.git",
        "https://gitlab.example.com/ml/registry",
        "ml/registry",
    )
    token = SECRET.decode()
    delivery = fp.gitlab_tag_push(gitlab, "refs/tags/churn#prod#3", TAG_OBJECT, COMMIT, token)
    notice = push(Forge.GITLAB, delivery)
    assert notice.event == "tag push hook"
    assert notice.refs == ("refs/tags/churn#prod#3",)
    keys = {repository_key(url) for url in notice.repositories}
    assert keys == {"gitlab.example.com/ml/registry"}
    system = fp.gitlab_tag_push(gitlab, "refs/tags/x", TAG_OBJECT, COMMIT, token, system=True)
    assert isinstance(parse(Forge.GITLAB, lower(system.headers), system.body), PushNotice)
    document = json.loads(delivery.body) | {"object_kind": "repository_update"}
    update = fp.Delivery(delivery.path, system.headers, json.dumps(document).encode())
    assert isinstance(parse(Forge.GITLAB, lower(update.headers), update.body), Ignored)


def test_gitea_and_forgejo_pushes() -> None:
    for forge in (Forge.GITEA, Forge.FORGEJO):
        notice = push(forge, SIGNED[forge])
        assert notice.event == "push"
        assert notice.refs == ("refs/tags/churn#prod#3",)
        assert repository_key(notice.repositories[0]) == KEY


def test_bitbucket_cloud_gives_the_web_link_and_data_center_the_clone_links() -> None:
    cloud = push(Forge.BITBUCKET, SIGNED[Forge.BITBUCKET])
    assert cloud.repositories == (REPO.web_url,)
    assert cloud.refs == ("refs/tags/churn#prod#3",)
    assert repository_key(cloud.repositories[0]) == repository_key(REPO.ssh_url)
    urls = [
        "ssh://git@bitbucket.example.com:7999/ml/registry.git",
        "https://bitbucket.example.com/scm/ml/registry.git",
    ]
    server = push(
        Forge.BITBUCKET, fp.bitbucket_server_push(urls, "refs/tags/a#b#1", COMMIT, SECRET)
    )
    assert server.event == "repo:refs_changed"
    assert server.repositories == tuple(urls)
    assert server.refs == ("refs/tags/a#b#1",)
    ping = fp.Delivery("/hooks/bitbucket", {"X-Event-Key": "diagnostics:ping"}, b"{}")
    assert parse(Forge.BITBUCKET, lower(ping.headers), ping.body) == Ping(Forge.BITBUCKET)


def test_generic_form() -> None:
    delivery = fp.generic_push([REPO.clone_url, REPO.ssh_url], SECRET, refs=["refs/tags/m#p#1"])
    notice = push(Forge.GENERIC, delivery)
    assert notice.repositories == (REPO.clone_url, REPO.ssh_url)
    assert notice.refs == ("refs/tags/m#p#1",)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "malformed JSON: Expecting property name enclosed in double quotes"),
        (b'{"a": "\xc3("}', "malformed JSON: 'utf-8' codec can't decode byte 0xc3"),
        (b"[1, 2]", "the payload is not a JSON object"),
        (b'{"ref": "refs/tags/x"}', "invalid github payload at repository: Field required"),
        (b'{"repository": {"name": "x"}}', "the github payload names no repository URL"),
        (b'{"repository": {"clone_url": 7}}', "invalid github payload at repository.clone_url"),
    ],
)
def test_malformed_payloads_are_one_line_400s(body: bytes, message: str) -> None:
    headers = {"x-github-event": "push"}
    with pytest.raises(WebhookRejected) as caught:
        parse(Forge.GITHUB, headers, body)
    assert caught.value.status == 400
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_missing_event_header_is_a_400() -> None:
    with pytest.raises(WebhookRejected, match="missing x-gitlab-event header"):
        parse(Forge.GITLAB, {}, b"{}")


# --- repository keys --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/registry",
        "https://github.com/acme/registry.git",
        "https://github.com/acme/registry.git/",
        "https://alice:s3cret@GitHub.com/Acme/Registry.git",
        "https://github.com:443/acme/registry",
        "http://github.com/acme/registry",
        "ssh://git@github.com/acme/registry.git",
        "ssh://git@github.com:22/acme/registry.git",
        "git@github.com:acme/registry.git",
        "github.com:acme/registry",
        "git://github.com/acme/registry.git",
    ],
)
def test_every_form_of_a_url_gives_one_key(url: str) -> None:
    assert repository_key(url) == KEY


@pytest.mark.parametrize(
    ("url", "key"),
    [
        (
            "ssh://git@bitbucket.example.com:7999/ml/registry.git",
            "bitbucket.example.com:7999/ml/registry",
        ),
        ("http://127.0.0.1:8123/registry.git", "127.0.0.1:8123/registry"),
        ("http://127.0.0.1:8124/registry.git", "127.0.0.1:8124/registry"),
        ("file:///srv/git/registry.git", "/srv/git/registry"),
        ("/srv/git/registry.git/", "/srv/git/registry"),
        ("https://github.com/acme/registry-two", "github.com/acme/registry-two"),
        ("https://host:notaport/x.git", "host/x"),
        ("https://GitHub.com/Acme/Registry.git", "github.com/acme/registry"),  # forges' matching
        ("/srv/git/Team", "/srv/git/Team"),  # a local path's case tells two repositories apart
        ("file:///srv/git/teaM.git", "/srv/git/teaM"),
    ],
)
def test_keys_keep_what_tells_repositories_apart(url: str, key: str) -> None:
    assert repository_key(url) == key


# --- hostile payloads -------------------------------------------------------------------------


def signed_generic(body: bytes) -> PushNotice | Ignored | Ping:
    delivery = fp.Delivery(
        "/hooks/generic", {"X-Signature": "sha256=" + fp.hex_hmac(SECRET, body)}, body
    )
    accept(Forge.GENERIC, delivery)
    return parse(Forge.GENERIC, lower(delivery.headers), delivery.body)


@pytest.mark.fault
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 100_000, "malformed JSON: nested too deeply"),
        (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "malformed JSON: nested too deeply"),
        (b'{"repositories": ["\xff\xfe"]}', "malformed JSON: 'utf-8' codec can't decode byte"),
        (b"\xff\xfe\x00\xd8", "malformed JSON: "),
        (
            b'{"repositories": ["http://[::1/x.git"]}',
            "the generic payload has a malformed repository URL: Invalid IPv6 URL",
        ),
        (
            b'{"repositories": ["https://host/x\\ud800.git"]}',
            "the generic payload has a malformed repository URL: holds a control character",
        ),
        (
            b'{"repository": "https://host/x.git\\n2024-01-01 INFO forged line"}',
            "the generic payload has a malformed repository URL: holds a control character",
        ),
        (
            b'{"repositories": ["https://host/' + b"a" * MAX_URL_LENGTH + b'"]}',
            f"the generic payload has a malformed repository URL: longer than {MAX_URL_LENGTH}",
        ),
    ],
)
def test_hostile_signed_bodies_are_one_line_400s(body: bytes, message: str) -> None:
    with pytest.raises(WebhookRejected) as caught:
        signed_generic(body)
    assert caught.value.status == 400
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


@pytest.mark.fault
def test_a_malformed_url_in_any_forge_field_is_refused() -> None:
    document = json.loads(SIGNED[Forge.GITHUB].body)
    document["repository"]["html_url"] = "https://[github.com/acme/registry"
    with pytest.raises(WebhookRejected, match="the github payload has a malformed repository URL"):
        parse(Forge.GITHUB, {"x-github-event": "push"}, json.dumps(document).encode())


@pytest.mark.fault
@pytest.mark.parametrize("event", [UNDECODABLE, "pu\x00sh", "p" * 65, "pushé"])
def test_an_event_header_that_is_not_an_event_name_is_a_400(event: str) -> None:
    with pytest.raises(WebhookRejected) as caught:
        parse(Forge.GITHUB, {"x-github-event": event}, SIGNED[Forge.GITHUB].body)
    assert str(caught.value) == "X-Github-Event is not an event name"


@pytest.mark.fault
def test_refs_and_event_kinds_from_the_body_are_escaped_for_logs() -> None:
    body = json.dumps(
        {"repositories": [REPO.clone_url], "refs": ["refs/tags/a\nforged", "\ud800", "r" * 300]}
    ).encode()
    notice = signed_generic(body)
    assert isinstance(notice, PushNotice)
    assert notice.refs == ("refs/tags/a\\nforged", "\\ud800", "r" * 256)
    assert all(ref.isprintable() for ref in notice.refs)
    document = json.loads(SIGNED[Forge.GITHUB].body) | {"object_kind": "x\r\ny"}
    ignored = parse(Forge.GITLAB, {"x-gitlab-event": "system hook"}, json.dumps(document).encode())
    assert ignored == Ignored(Forge.GITLAB, "system hook x\\r\\ny")


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/registry.git",
        "git@github.com:acme/registry.git",
        "ssh://git@[::1]:22/x.git",
        "https://bücher.example/ml/registry",
        "/srv/git/registry.git",
    ],
)
def test_url_problem_accepts_every_form_a_forge_sends(url: str) -> None:
    assert url_problem(url) is None
    repository_key(url)  # and each has a key
