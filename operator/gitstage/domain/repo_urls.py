"""One key per repository, whatever form of its URL a spec or a forge's webhook payload uses.

`https://alice:pw@GitHub.com/Org/Repo.git/`, `ssh://git@github.com/org/repo` and
`git@github.com:org/repo.git` all give `github.com/org/repo`. The key drops the scheme, userinfo,
default ports, a trailing `.git` or slash, and case: forges treat owner and repository names
case-insensitively, and a false match costs only one extra ref listing, never a wrong rollout
(the poll reads what the remote actually holds).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_USERINFO_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>(?!//).+)$")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ssh": 22, "git": 9418}
MAX_URL_LENGTH = 2048


def repository_key(url: str) -> str:
    """The normalized `host[:port]/path` of a git URL, lower-cased as forges match repository
    names; a local path stays a path, its case kept (`/srv/Team` and `/srv/teaM` differ)."""
    text = url.strip()
    if "://" in text:
        host, path = _from_url(text)
    elif match := _SCP_LIKE.match(text):
        host, path = match["host"], match["path"]
    else:
        host, path = "", text
    path = "/" + path.strip("/")
    path = path.removesuffix(".git").rstrip("/")
    return f"{host}{path}".lower() if host else path


def url_problem(url: str) -> str | None:
    """Why `url` (from untrusted input) cannot be a repository URL, or None when it can.

    `repository_key` takes any URL this accepts; it refuses what would break a key, a log line
    or an error message: control characters, blanks, invalid code points, unparsable hosts.
    """
    if len(url) > MAX_URL_LENGTH:
        return f"longer than {MAX_URL_LENGTH} characters"
    if not url.isprintable() or any(c.isspace() for c in url):
        return "holds a control character, a blank or an invalid code point"
    if "://" in url:
        try:
            urlsplit(url)
        except ValueError as error:  # e.g. an unbalanced `[` of an IPv6 host
            return str(error)
    return None


def _from_url(text: str) -> tuple[str, str]:
    parts = urlsplit(text)
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: keep the key distinct, never raise
        port = None
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    return host, parts.path


def split_userinfo(url: str) -> tuple[str, str | None, str | None]:
    """`https://user:pw@host/x` -> (`https://host/x`, user, pw); other URLs are returned as is."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or "@" not in parts.netloc:
        return url, None, None
    host = parts.netloc.rpartition("@")[2]
    clean = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return clean, parts.username or None, parts.password or None


def redact(text: str) -> str:
    """Drop userinfo from every URL in `text`."""
    return _USERINFO_RE.sub(lambda match: f"{match['scheme']}***@", text)


def same_origin(left: str, right: str) -> bool:
    a, b = urlsplit(left), urlsplit(right)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)
