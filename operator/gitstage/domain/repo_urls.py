"""One key per repository, whatever form of its URL a spec or a forge's webhook payload uses.

`https://alice:pw@GitHub.com/Org/Repo.git/`, `ssh://git@github.com/org/repo` and
`git@github.com:org/repo.git` all give `github.com/org/repo`. The key drops the scheme, userinfo,
default ports, a trailing `.git` or slash, and case: forges treat owner and repository names
case-insensitively, and a false match costs only one extra ref listing, never a wrong rollout
(the poll reads what the remote actually holds).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>(?!//).+)$")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ssh": 22, "git": 9418}


def repository_key(url: str) -> str:
    """The normalized `host[:port]/path` of a git URL (a local path stays a path)."""
    text = url.strip()
    if "://" in text:
        host, path = _from_url(text)
    elif match := _SCP_LIKE.match(text):
        host, path = match["host"], match["path"]
    else:
        host, path = "", text
    path = "/" + path.strip("/")
    path = path.removesuffix(".git").rstrip("/")
    return f"{host}{path}".lower()


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
