"""Links to a commit on the forge that hosts a repository, for the forges whose URLs we know.

Only public forge hosts are recognized: a self-hosted server may lay out its pages differently,
and a wrong link is worse than none.
"""

from __future__ import annotations

from gitstage.domain.registry.names import is_hexsha
from gitstage.domain.repo_urls import repository_key

# host -> the path between the repository and the commit id
_COMMIT_PATHS = {
    "github.com": "/commit/",
    "gitlab.com": "/-/commit/",
    "bitbucket.org": "/commits/",
    "codeberg.org": "/commit/",
    "gitea.com": "/commit/",
}


def commit_url(repository_url: str, commit: str) -> str | None:
    """`https://github.com/org/repo/commit/<sha>` for `git@github.com:org/repo.git`, say."""
    if not is_hexsha(commit):
        return None
    host, _, path = repository_key(repository_url).partition("/")
    between = _COMMIT_PATHS.get(host)
    if between is None or not path:
        return None
    return f"https://{host}/{path}{between}{commit}"
