"""Git credentials from the environment, handed to git without ever reaching argv or logs.

Basic credentials are sent preemptively in `http.extraHeader` (saving git's unauthenticated
first request and its 401, on every poll), and through GIT_ASKPASS, a helper script printing
variables set only in the child's environment, should a server still challenge. A bearer token
goes in `http.extraHeader` too; headers travel through GIT_CONFIG_* variables, never argv.
An SSH private key and known_hosts are written to owner-only files named by their hash (ssh
cannot read a key from the environment) and named in GIT_SSH_COMMAND; host keys are always
checked, so a missing known_hosts fails the connection instead of trusting the first key seen.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import shlex
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from gitstage.adapters.transport import ENV_CA_BUNDLE

ENV_USERNAME = "GITSTAGE_GIT_USERNAME"
ENV_PASSWORD = "GITSTAGE_GIT_PASSWORD"  # noqa: S105 - a variable name, not a secret
ENV_TOKEN = "GITSTAGE_GIT_TOKEN"  # noqa: S105 - variable names, not secrets
ENV_BEARER = "GITSTAGE_GIT_BEARER_TOKEN"
ENV_SSH_KEY = "GITSTAGE_GIT_SSH_KEY"
ENV_KNOWN_HOSTS = "GITSTAGE_GIT_KNOWN_HOSTS"
DEFAULT_TOKEN_USER = "x-access-token"  # noqa: S105 - accepted by GitHub; GitLab and Gitea take any name

ENV_FOLLOW_REDIRECTS = "GITSTAGE_GIT_FOLLOW_REDIRECTS"
_ASKPASS_USER = "GITSTAGE_ASKPASS_USERNAME"
_ASKPASS_SECRET = "GITSTAGE_ASKPASS_PASSWORD"  # noqa: S105
_ASKPASS_ORIGIN = "GITSTAGE_ASKPASS_ORIGIN"
# git asks "Password for 'scheme://user@host:port': ": answer only for the configured origin.
_ASKPASS_SCRIPT = f"""#!/bin/sh
url=${{1#*\\'}}; url=${{url%%\\'*}}
scheme=${{url%%://*}}; rest=${{url#*://}}; rest=${{rest#*@}}
[ "$scheme://$rest" = "${_ASKPASS_ORIGIN}" ] || exit 1
case "$1" in
  Username*) printf '%s\\n' "${_ASKPASS_USER}" ;;
  *) printf '%s\\n' "${_ASKPASS_SECRET}" ;;
esac
"""
_CONFIG_VAR_RE = re.compile(r"^GIT_CONFIG_(COUNT|KEY_\d+|VALUE_\d+)$")


@dataclass(frozen=True)
class GitCredentials:
    """`repr` never shows the secrets, so they cannot leak through logs of this object."""

    username: str | None = None
    password: str | None = None
    bearer: str | None = None
    ssh_key: str | None = None
    known_hosts: str | None = None

    def __repr__(self) -> str:
        return (
            f"GitCredentials(username={self.username!r}, password=***, bearer=***, ssh_key=***, "
            f"known_hosts={'set' if self.known_hosts else None})"
        )

    @property
    def empty(self) -> bool:
        return self.password is None and self.bearer is None and self.ssh_key is None

    @property
    def basic_token(self) -> str | None:
        """`user:password` in base64, as an Authorization: Basic header carries it."""
        if self.password is None:
            return None
        pair = f"{self.username or DEFAULT_TOKEN_USER}:{self.password}"
        return base64.b64encode(pair.encode()).decode()

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a message."""
        values = (self.password, self.basic_token, self.bearer, self.ssh_key)
        return tuple(value for value in values if value)

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], url_user: str | None = None, url_password: str | None = None
    ) -> GitCredentials:
        secret = url_password or env.get(ENV_PASSWORD) or env.get(ENV_TOKEN) or None
        user = url_user or env.get(ENV_USERNAME) or (DEFAULT_TOKEN_USER if secret else None)
        return cls(
            user,
            secret,
            env.get(ENV_BEARER) or None,
            env.get(ENV_SSH_KEY) or None,
            env.get(ENV_KNOWN_HOSTS) or None,
        )


def http_origin(url: str | None) -> str | None:
    """`scheme://host[:port]` of an http(s) URL (userinfo dropped); None for anything else."""
    if url is None or not url.lower().startswith(("http://", "https://")):
        return None
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme.lower()}://{host}" if host else None


_REDIRECT_RE = re.compile(r"returned error: 30[1278]\b|unable to update url base from redirection")
REDIRECT_REFUSED = (
    "the server redirected to another URL, which gitstage does not follow with credentials"
    f" (set {ENV_FOLLOW_REDIRECTS}=1 to follow it; credentials still go to the first origin only)"
)


def refused_redirect(stderr: str) -> bool:
    """git's stderr says a redirect was not followed."""
    return _REDIRECT_RE.search(stderr.lower()) is not None


def git_environment(
    base: Mapping[str, str],
    credentials: GitCredentials | None,
    workdir: Path,
    *,
    url: str | None = None,
) -> dict[str, str]:
    """The environment for a git child process talking to `url`; never prompts, never calls our
    caller's TTY. HTTP credentials are bound to `url`'s origin: the header is configured for
    that origin only and the askpass helper answers no other, so a redirect to another host
    gets nothing; redirects are not followed unless GITSTAGE_GIT_FOLLOW_REDIRECTS is set."""
    env = {key: value for key, value in base.items() if not _CONFIG_VAR_RE.match(key)}
    env.update(
        GIT_TERMINAL_PROMPT="0", GIT_ALLOW_PROTOCOL="http:https:file:ssh", GCM_INTERACTIVE="never"
    )
    follow = base.get(ENV_FOLLOW_REDIRECTS, "").lower() in ("1", "true", "yes", "initial")
    config: list[tuple[str, str]] = [("http.followRedirects", "initial" if follow else "false")]
    bundle = base.get(ENV_CA_BUNDLE, "").strip()
    if bundle:  # instead of the system's CAs; the variable wins over any http.sslCAInfo
        env["GIT_SSL_CAINFO"] = bundle
    origin = http_origin(url)
    if credentials is not None and not credentials.empty:
        config.append(("credential.helper", ""))  # our credentials, not a stored helper's
        if credentials.password is not None and origin is not None:
            env.update(
                {
                    "GIT_ASKPASS": str(_askpass_script(workdir)),
                    _ASKPASS_USER: credentials.username or DEFAULT_TOKEN_USER,
                    _ASKPASS_SECRET: credentials.password,
                    _ASKPASS_ORIGIN: origin,
                }
            )
        header_key = f"http.{origin}/.extraHeader"
        if credentials.bearer is not None and origin is not None:  # the bearer wins
            config.append((header_key, f"Authorization: Bearer {credentials.bearer}"))
        elif credentials.password is not None and origin is not None:
            config.append((header_key, f"Authorization: Basic {credentials.basic_token}"))
        if credentials.ssh_key is not None:
            env["GIT_SSH_COMMAND"] = ssh_command(credentials, workdir)
            env["GIT_SSH_VARIANT"] = "ssh"
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for number, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{number}"] = key
        env[f"GIT_CONFIG_VALUE_{number}"] = value
    return env


def ssh_command(credentials: GitCredentials, workdir: Path) -> str:
    """`ssh` with only our key, our known_hosts and no prompt; files are written once per key."""
    key = credentials.ssh_key or ""
    known_hosts = credentials.known_hosts or ""
    digest = hashlib.sha256(f"{key}\0{known_hosts}".encode()).hexdigest()[:16]
    folder = workdir / f"ssh-{digest}"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    identity = _private_file(folder / "identity", key if key.endswith("\n") else key + "\n")
    hosts = _private_file(folder / "known_hosts", known_hosts)
    options = [
        "ssh",
        "-F",
        "/dev/null",  # no user or system config can add keys, proxies or host aliases
        "-i",
        str(identity),
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "IdentityAgent=none",
        "-o",
        f"UserKnownHostsFile={hosts}",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=30",
    ]
    return shlex.join(options)


def _private_file(path: Path, content: str) -> Path:
    if not path.exists() or path.read_text() != content:
        _replace_privately(path, content, 0o600)
    return path


def _askpass_script(workdir: Path) -> Path:
    script = workdir / "askpass.sh"
    if not script.exists() or script.read_text() != _ASKPASS_SCRIPT:  # an older version
        _replace_privately(script, _ASKPASS_SCRIPT, stat.S_IRWXU)
    return script


def _replace_privately(path: Path, content: str, mode: int) -> None:
    """Write `content` to a temporary file of its own beside `path` (mode 0600 from the start),
    then rename it into place: concurrent writers (the operator syncs many mirrors at once)
    never share, truncate or rename away each other's temporary file."""
    descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(content)
        os.chmod(name, mode)
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise


# END
