"""DVC remotes as read-only object stores: a local directory, HTTP(S), or S3 through boto3.

Objects are addressed by their DVC 3 key (`files/md5/XX/REST`). A download reports its length
when the store knows it, so a connection that drops mid-file is told apart from bad content.
"""

from __future__ import annotations

import base64
import http.client
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import urlsplit

from gitstage.adapters.fetch.watchdog import WatchedHTTPHandler, WatchedHTTPSHandler, watching
from gitstage.adapters.transport import ca_bundle, tls_context
from gitstage.domain.fetch.dvc_files import DVC_DIR, DvcRemote
from gitstage.domain.fetch.errors import (
    BadInputError,
    FetchError,
    NotFoundError,
    TransportError,
    UnsupportedError,
)
from gitstage.domain.fetch.limits import Deadline
from gitstage.domain.repo_urls import redact, same_origin, split_userinfo

ENV_DVC_USERNAME = "GITSTAGE_DVC_USERNAME"
ENV_DVC_PASSWORD = "GITSTAGE_DVC_PASSWORD"  # noqa: S105 - a variable name
ENV_DVC_ORIGIN = "GITSTAGE_DVC_ORIGIN"  # the only origin the two above are sent to
CHUNK = 1024 * 1024


@dataclass
class Download:
    """A stream to read once; its reads end by `deadline`, and a stall or the deadline is
    reported naming `what`."""

    stream: IO[bytes]
    length: int | None
    deadline: Deadline | None = None
    what: str = "download"

    def chunks(self) -> Iterator[bytes]:
        """The body up to the deadline; a wait for data past the stall timeout, or a dropped
        connection, becomes a TransportError."""
        try:
            while chunk := self.stream.read(CHUNK):
                yield chunk
                if self.deadline is not None:
                    self.deadline.remaining(self.what)
        except TimeoutError:
            if self.deadline is None:
                raise TransportError(f"{self.what} timed out") from None
            raise self.deadline.stalled_error(self.what) from None
        except (OSError, ValueError, http.client.HTTPException) as error:
            raise TransportError(f"{self.what} interrupted: {error}") from None


class ObjectStore(Protocol):
    label: str

    def open(self, key: str) -> Any:
        """A context manager yielding a `Download`."""


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.label = str(root)

    @contextmanager
    def open(self, key: str) -> Iterator[Download]:
        path = self.root / key
        try:
            stream = path.open("rb")
        except FileNotFoundError:
            raise NotFoundError(f"object {key} is missing from DVC remote {self.label}") from None
        with stream:
            yield Download(stream, path.stat().st_size)


ENV_DVC_FOLLOW_REDIRECTS = "GITSTAGE_DVC_FOLLOW_REDIRECTS"


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects within the remote's origin are followed; to another origin they are refused,
    or, when allowed, followed without the Authorization header."""

    def __init__(self, follow_elsewhere: bool) -> None:
        self.follow_elsewhere = follow_elsewhere

    def redirect_request(  # noqa: PLR0917 - the standard library's signature
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        followed = super().redirect_request(req, fp, code, msg, headers, newurl)
        if followed is None or same_origin(newurl, req.full_url):
            return followed
        if not self.follow_elsewhere:
            raise TransportError(
                f"DVC remote {redact(req.full_url.rsplit('/files/', 1)[0])} redirected to another"
                f" host; not followed (set {ENV_DVC_FOLLOW_REDIRECTS}=1 to follow without"
                " credentials)"
            )
        followed.remove_header("Authorization")
        return followed


class HttpStore:
    """Each wait for data lasts at most the stall timeout; a download ends by the deadline
    (watchdog.py), however slowly the server trickles its headers or body."""

    def __init__(
        self,
        url: str,
        username: str | None,
        password: str | None,
        *,
        follow_redirects_elsewhere: bool = False,
        deadline: Deadline | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.base = url.rstrip("/")
        self.label = redact(url)
        self.deadline = deadline or Deadline()
        # GITSTAGE_CA_BUNDLE's context when given; proxies stay urllib's (HTTPS_PROXY, NO_PROXY)
        self._opener = urllib.request.build_opener(
            WatchedHTTPHandler(),
            WatchedHTTPSHandler(tls),
            _SameOriginRedirects(follow_redirects_elsewhere),
        )
        self._auth = None
        if username is not None and password is not None:
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            self._auth = f"Basic {token}"

    @contextmanager
    def open(self, key: str) -> Iterator[Download]:
        what = f"download of {key} from DVC remote {self.label}"
        with watching(self.deadline.remaining(what)) as watchdog:
            try:
                response = self._request(key, self.deadline.wait_limit(what))
            except FetchError:
                if watchdog.expired:
                    raise self.deadline.expired_error(what) from None
                raise
            with response:
                length = _announced_length(response.headers.get("Content-Length"))
                try:
                    yield Download(response, length, self.deadline, what)
                except FetchError:  # a read the watchdog cut short says so
                    if watchdog.expired:
                        raise self.deadline.expired_error(what) from None
                    raise

    def _request(self, key: str, wait: float) -> http.client.HTTPResponse:
        request = urllib.request.Request(f"{self.base}/{key}")  # noqa: S310 - http(s) only
        if self._auth is not None:
            request.add_header("Authorization", self._auth)
        try:
            response: http.client.HTTPResponse = self._opener.open(request, timeout=wait)
        except urllib.error.HTTPError as error:
            raise self._http_error(error.code, key) from None
        except TimeoutError:
            raise self.deadline.stalled_error(f"DVC remote {self.label}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", error)
            if isinstance(reason, TimeoutError):
                raise self.deadline.stalled_error(f"DVC remote {self.label}") from None
            raise TransportError(f"cannot reach DVC remote {self.label}: {reason}") from None
        return response

    def _http_error(self, code: int, key: str) -> Exception:
        if code == 404:
            return NotFoundError(f"object {key} is missing from DVC remote {self.label}")
        if code in (401, 403):
            return TransportError(f"DVC remote {self.label} refused access (HTTP {code})")
        return TransportError(f"DVC remote {self.label} answered HTTP {code} for {key}")


def _announced_length(header: str | None) -> int | None:
    """A server's Content-Length, when it is a number of bytes (anything else: unknown)."""
    if header is None or not header.strip().isdigit():
        return None
    return int(header)


class S3Store:
    """S3, or an S3-compatible server named by the remote's `endpointurl` (as DVC reads it) or
    else by AWS_ENDPOINT_URL; credentials come from the environment (boto3's chain).

    Each wait for data lasts at most the stall timeout (boto3's connect and read timeouts); the
    deadline is checked between chunks of a body."""

    def __init__(
        self,
        url: str,
        endpoint_url: str | None,
        environ: Mapping[str, str],
        deadline: Deadline | None = None,
    ) -> None:
        try:
            import boto3  # type: ignore[import-not-found,import-untyped,unused-ignore]
            from botocore.config import (  # type: ignore[import-not-found,import-untyped,unused-ignore]
                Config,
            )
        except ImportError:
            raise UnsupportedError(
                f"DVC remote {url} is on S3, which needs boto3; it is not installed in this build"
            ) from None
        parts = urlsplit(url)
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self.label = url
        configured = environ.get("AWS_ENDPOINT_URL") or environ.get("S3_ENDPOINT")
        if endpoint_url:
            _check_endpoint_binding(url, endpoint_url, configured, environ)
        endpoint = endpoint_url or configured
        self.deadline = deadline or Deadline()
        wait = self.deadline.stall
        self._client = boto3.client(
            "s3",
            config=Config(connect_timeout=wait, read_timeout=wait),
            endpoint_url=endpoint or None,
            # The given environment first; unset, boto3 falls back to its own chain.
            aws_access_key_id=environ.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=environ.get("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=environ.get("AWS_SESSION_TOKEN"),
            region_name=environ.get("AWS_DEFAULT_REGION") or environ.get("AWS_REGION"),
            verify=_verify(environ),
        )

    @contextmanager
    def open(self, key: str) -> Iterator[Download]:
        from botocore.exceptions import (  # type: ignore[import-not-found,import-untyped,unused-ignore]
            BotoCoreError,
            ClientError,
        )

        full = f"{self.prefix}/{key}" if self.prefix else key
        what = f"download of {key} from DVC remote {self.label}"
        self.deadline.remaining(what)
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=full)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404"):
                raise NotFoundError(
                    f"object {key} is missing from DVC remote {self.label}"
                ) from None
            raise TransportError(f"DVC remote {self.label} refused {key}: {code}") from None
        except BotoCoreError as error:
            raise TransportError(f"cannot reach DVC remote {self.label}: {error}") from None
        body = answer["Body"]
        try:
            length = int(answer.get("ContentLength") or 0) or None
            yield Download(body, length, self.deadline, what)
        finally:
            body.close()


def _verify(environ: Mapping[str, str]) -> str | None:
    """GITSTAGE_CA_BUNDLE for boto3; None leaves boto3's default (and AWS_CA_BUNDLE)."""
    bundle = ca_bundle(environ)
    return str(bundle) if bundle is not None else None


def _check_endpoint_binding(
    url: str, endpoint_url: str, configured: str | None, environ: Mapping[str, str]
) -> None:
    """S3 keys from the environment sign requests only for the endpoint they were configured
    for: `endpointurl` comes from `.dvc/config` at the fetched commit, which anyone who can push
    may point at a host of theirs."""
    if not environ.get("AWS_ACCESS_KEY_ID"):
        return  # nothing to protect: no keys given here (boto3's own chain is the host's)
    bound = [b for b in (environ.get(ENV_DVC_ORIGIN, "").strip(), configured) if b]
    if any(same_origin(origin, endpoint_url) for origin in bound):
        return
    raise BadInputError(
        f"DVC remote {url} names endpointurl {redact(endpoint_url)}, which the S3 credentials"
        f" are not bound to: set {ENV_DVC_ORIGIN} (or AWS_ENDPOINT_URL) to that scheme://host:port"
        " to send them there"
    )


def _environment_credentials(url: str, environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """GITSTAGE_DVC_USERNAME/PASSWORD, only for the origin GITSTAGE_DVC_ORIGIN names: the
    remote comes from `.dvc/config` at the fetched commit, which anyone who can push may set."""
    password = environ.get(ENV_DVC_PASSWORD)
    if password is None:
        return None, None
    bound = environ.get(ENV_DVC_ORIGIN, "").strip()
    if not bound:
        raise BadInputError(
            f"{ENV_DVC_PASSWORD} is set without {ENV_DVC_ORIGIN}: name the scheme://host[:port]"
            " of the DVC remote these credentials are for"
        )
    if not same_origin(bound, url):
        return None, None  # another host: it gets no credentials (and will likely say 401)
    return environ.get(ENV_DVC_USERNAME), password


def open_store(
    remote: DvcRemote,
    *,
    repo_dir: Path | None,
    dvc_root: str,
    environ: Mapping[str, str],
    deadline: Deadline | None = None,
) -> ObjectStore:
    """The store for a remote URL as written in `.dvc/config` at the fetched commit."""
    url = remote.url
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        clean, user, password = split_userinfo(url)
        follow = environ.get(ENV_DVC_FOLLOW_REDIRECTS, "").lower() in ("1", "true", "yes")
        if password is None:
            user, password = _environment_credentials(clean, environ)
        tls = tls_context(environ)
        return HttpStore(
            clean, user, password, follow_redirects_elsewhere=follow, deadline=deadline, tls=tls
        )
    if scheme == "s3":
        return S3Store(url, remote.endpoint_url, environ, deadline)
    if scheme == "file":
        return LocalStore(Path(urlsplit(url).path))
    if scheme and len(scheme) > 1:
        raise UnsupportedError(f"DVC remote {remote.name!r} uses {scheme}://, not supported")
    path = Path(url)
    if path.is_absolute():
        return LocalStore(path)
    if repo_dir is None:
        raise BadInputError(
            f"DVC remote {remote.name!r} is a relative path ({url}); it can only be used when"
            " the repository is a local path"
        )
    return LocalStore((repo_dir / dvc_root / DVC_DIR / path).resolve())
