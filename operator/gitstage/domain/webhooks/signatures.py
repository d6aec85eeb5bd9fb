"""Who may call the webhook receiver: each forge's signature scheme, checked in constant time.

  github            X-Hub-Signature-256: sha256=<hex HMAC of the body>
  gitea, forgejo    X-Forgejo-Signature / X-Gitea-Signature / X-Gogs-Signature: <hex HMAC>
  bitbucket         X-Hub-Signature: sha256=<hex HMAC>  (Bitbucket Cloud and Data Center)
  generic           X-Signature: sha256=<hex HMAC>
  gitlab            X-Gitlab-Token: <the secret itself>  (GitLab signs nothing)

Several secrets may be configured (rotation): any one of them is accepted. Header names are
looked up lower-case; the caller lower-cases them. Header values may hold any bytes (an HTTP
server decodes them as it can): a digest that is not 64 hex digits is refused before any
comparison, and a token is compared as the bytes it encodes to, so no value can raise.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from enum import StrEnum


class Forge(StrEnum):
    GITHUB = "github"
    GITLAB = "gitlab"
    GITEA = "gitea"
    FORGEJO = "forgejo"
    BITBUCKET = "bitbucket"
    GENERIC = "generic"


class WebhookRejected(Exception):
    """A request we refuse; `status` is the HTTP answer, the message one line without secrets."""

    status = 400


class Unauthorized(WebhookRejected):
    status = 401


_PREFIXED = {
    Forge.GITHUB: "x-hub-signature-256",
    Forge.BITBUCKET: "x-hub-signature",
    Forge.GENERIC: "x-signature",
}
_GITEA = ("x-forgejo-signature", "x-gitea-signature", "x-gogs-signature")
_SHA256_HEX = 64
_HEX_DIGITS = frozenset("0123456789abcdef")


def authenticate(
    forge: Forge, headers: Mapping[str, str], body: bytes, secrets: Sequence[bytes]
) -> None:
    """Return if the request carries a valid signature (or token); raise `Unauthorized`."""
    if not secrets:
        raise Unauthorized("no webhook secret is configured")
    if forge is Forge.GITLAB:
        token = _header(headers, "x-gitlab-token")
        if not _any_equal(token.encode("utf-8", "surrogatepass"), secrets):
            raise Unauthorized("X-Gitlab-Token does not match")
        return
    if forge in (Forge.GITEA, Forge.FORGEJO):
        name = next((n for n in _GITEA if n in headers), _GITEA[0])
        digest = _hex_digest(name, _header(headers, name))
    else:
        name = _PREFIXED[forge]
        digest = _hex_digest(name, _sha256_value(name, _header(headers, name)))
    expected = [hmac.new(secret, body, hashlib.sha256).hexdigest().encode() for secret in secrets]
    if not _any_equal(digest, expected):
        raise Unauthorized(f"{shown_header(name)} does not match the body")


def sign(secret: bytes, body: bytes) -> str:
    """The hex HMAC-SHA256 a forge sends (for clients and tests)."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def _sha256_value(name: str, value: str) -> str:
    algorithm, sep, digest = value.partition("=")
    if not sep:
        raise Unauthorized(f"{shown_header(name)} is not of the form sha256=<hex>")
    if algorithm.strip().lower() != "sha256":
        raise Unauthorized(f"{shown_header(name)} uses {algorithm[:16]!r}; only sha256 is accepted")
    return digest


def _hex_digest(name: str, value: str) -> bytes:
    """The lower-case ASCII of a hex SHA-256 digest; anything else (other bytes too) is refused."""
    digest = value.strip().lower()
    if len(digest) != _SHA256_HEX or not all(c in _HEX_DIGITS for c in digest):
        raise Unauthorized(f"{shown_header(name)} is not a hex SHA-256 digest")
    return digest.encode("ascii")


def _any_equal(given: bytes, candidates: Sequence[bytes]) -> bool:
    """Compare against every candidate (no early exit), each in constant time."""
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(given, candidate)
    return matched


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise Unauthorized(f"missing {shown_header(name)} header")
    return value


def shown_header(name: str) -> str:
    """`x-hub-signature-256` -> `X-Hub-Signature-256`, as the forges spell it."""
    return "-".join(part.capitalize() for part in name.split("-"))
