"""HTTPS settings every client adapter shares: one CA bundle for git, the mirror and DVC stores.

`GITSTAGE_CA_BUNDLE` names a PEM file of the certificate authorities to trust instead of the
system's (as git's `http.sslCAInfo`, curl's `--cacert` and `AWS_CA_BUNDLE` do): a corporate CA
is given with the public CAs the other servers need, e.g. the system bundle with it appended.
Proxies are the standard variables, read by git (libcurl), urllib and boto3 alike:
HTTPS_PROXY, HTTP_PROXY and NO_PROXY (or their lower-case spellings).
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from pathlib import Path

ENV_CA_BUNDLE = "GITSTAGE_CA_BUNDLE"
PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy")


class CaBundleError(ValueError):
    """GITSTAGE_CA_BUNDLE names no usable PEM file; the message is one line."""


def ca_bundle(env: Mapping[str, str]) -> Path | None:
    """The CA bundle to trust, or None for the system's; checked to be a readable file."""
    text = env.get(ENV_CA_BUNDLE, "").strip()
    if not text:
        return None
    path = Path(text)
    try:
        with path.open("rb"):
            pass
    except OSError as error:
        raise CaBundleError(
            f"{ENV_CA_BUNDLE}={text[:200]} cannot be read: {error.strerror or error}"
        ) from None
    if not path.is_file():
        raise CaBundleError(f"{ENV_CA_BUNDLE}={text[:200]} is not a file")
    return path


def tls_context(env: Mapping[str, str]) -> ssl.SSLContext | None:
    """A client context trusting GITSTAGE_CA_BUNDLE; None when it is unset (the default)."""
    bundle = ca_bundle(env)
    if bundle is None:
        return None
    try:
        return ssl.create_default_context(cafile=str(bundle))
    except ssl.SSLError as error:
        raise CaBundleError(
            f"{ENV_CA_BUNDLE}={bundle} holds no usable PEM certificate: {error.reason}"
        ) from None


def proxy_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The proxy variables set in `env`, to hand on to another process (the fetcher)."""
    return {name: env[name] for name in PROXY_VARIABLES if env.get(name)}
