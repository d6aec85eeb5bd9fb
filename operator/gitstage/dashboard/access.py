"""Who may read the dashboard: a bearer token, a trusted proxy's user header, both, or anyone
who can reach its port (it binds to localhost unless told otherwise). No I/O but reading a
token file.

A browser cannot send a bearer header: `/login` takes the token once and sets a session cookie:
its expiry and an HMAC of it under the token (never the token itself), good for SESSION_SECONDS.
A proxy in front (oauth2-proxy, an OIDC-aware Ingress) names the signed-in user in a header;
that header is trusted, so only the proxy may reach the dashboard's port.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

COOKIE = "gitstage_dashboard"
_COOKIE_PURPOSE = b"gitstage dashboard session v2"
SESSION_SECONDS = 12 * 3600  # a browser signs in again after this
# A shorter token is guessed too easily: the port answers as fast as it is asked.
MIN_TOKEN_CHARS = 16


class AccessError(ValueError):
    """A token file we cannot use; one line, never the token."""


def token_from_file(path: str) -> str:
    """The first non-empty line of a file (a mounted Secret key)."""
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise AccessError(f"cannot read the dashboard token file {path}: {reason}") from None
    found = next((line.strip() for line in lines if line.strip()), "")
    if not found:
        raise AccessError(f"the dashboard token file {path} is empty")
    if len(found) < MIN_TOKEN_CHARS:
        raise AccessError(
            f"the dashboard token in {path} has {len(found)} characters: use at least"
            f" {MIN_TOKEN_CHARS} (openssl rand -hex 32)"
        )
    return found


@dataclass(frozen=True)
class Access:
    token: str | None = field(default=None, repr=False)
    user_header: str | None = None

    @property
    def open(self) -> bool:
        return self.token is None and self.user_header is None


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    user: str | None = None
    reason: str = ""  # why not: "token" (sign in) or "user" (come through the proxy)


def session_value(token: str, now: float | None = None) -> str:
    """A session cookie's value: `<expiry>.<HMAC of the expiry under the token>`."""
    expires = int(time.time() if now is None else now) + SESSION_SECONDS
    return f"{expires}.{_signature(token, expires)}"


def _signature(token: str, expires: int) -> str:
    message = _COOKIE_PURPOSE + b"|" + str(expires).encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


def _valid_session(token: str, cookie: str) -> bool:
    expires_text, _, signature = cookie.partition(".")
    if not expires_text.isascii() or not expires_text.isdigit() or len(expires_text) > 12:
        return False
    expires = int(expires_text)
    return _same(signature, _signature(token, expires)) and time.time() < expires


def token_matches(access: Access, offered: str) -> bool:
    return access.token is not None and _same(offered, access.token)


def _same(offered: str, expected: str) -> bool:
    """Compared in constant time; a header that is not text (its bytes undecodable, carried as
    surrogates) matches nothing instead of failing the request."""
    raw = offered.encode("utf-8", "surrogateescape")
    return hmac.compare_digest(raw, expected.encode())


def judge(access: Access, headers: Mapping[str, str], cookies: Mapping[str, str]) -> Verdict:
    """Both configured methods must pass; the user comes from the proxy's header."""
    user = None
    if access.user_header is not None:
        user = headers.get(access.user_header, "").strip() or None
        if user is None:
            return Verdict(False, reason="user")
    if access.token is not None and not _has_token(access.token, headers, cookies):
        return Verdict(False, user, reason="token")
    return Verdict(True, user)


def _has_token(token: str, headers: Mapping[str, str], cookies: Mapping[str, str]) -> bool:
    scheme, _, offered = headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and _same(offered.strip(), token):
        return True
    return _valid_session(token, cookies.get(COOKIE, ""))
