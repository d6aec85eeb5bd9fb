"""Who may read the dashboard: a bearer token, a trusted proxy's user header, both, or anyone
who can reach its port (it binds to localhost unless told otherwise). No I/O but reading a
token file.

A browser cannot send a bearer header: `/login` takes the token once and sets a cookie holding
an HMAC of it (never the token itself). A proxy in front (oauth2-proxy, an OIDC-aware Ingress)
names the signed-in user in a header; that header is trusted, so only the proxy may reach the
dashboard's port.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

COOKIE = "gitstage_dashboard"
_COOKIE_PURPOSE = b"gitstage dashboard session v1"


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


def session_value(token: str) -> str:
    return hmac.new(token.encode(), _COOKIE_PURPOSE, hashlib.sha256).hexdigest()


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
    return _same(cookies.get(COOKIE, ""), session_value(token))
