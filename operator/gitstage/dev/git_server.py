"""Git over smart HTTP on loopback: `git http-backend` run as CGI behind a threaded server.

    with GitHttpServer(root, auth=BasicAuth("alice", "s3cret")) as server:
        url = server.url("registry.git")        # http://127.0.0.1:PORT/registry.git
        ...                                     # git fetch / clone it with the credentials
        server.stats.bytes_sent                 # body bytes served so far

Every bare repository under `root` is exported (GIT_HTTP_EXPORT_ALL). With `auth` (Basic) or
`bearer_token`, unauthenticated or wrong requests get 401 and are counted in `stats.denied`.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import IO, ClassVar

CHUNK = 64 * 1024


@dataclass(frozen=True)
class BasicAuth:
    username: str
    password: str

    def header(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return f"Basic {token}"


@dataclass
class ServerStats:
    """What a loopback server did; guarded by a lock because handlers run in threads."""

    bytes_sent: int = 0
    requests: int = 0
    denied: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, *, sent: int = 0, requests: int = 0, denied: int = 0) -> None:
        with self.lock:
            self.bytes_sent += sent
            self.requests += requests
            self.denied += denied


class _GitHandler(BaseHTTPRequestHandler):
    server_version = "gitstage-test-git/1"
    owner: ClassVar[GitHttpServer]

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        return

    def _serve(self) -> None:
        owner = self.owner
        owner.stats.add(requests=1)
        if not owner.authorized(self.headers.get("Authorization")):
            owner.stats.add(denied=1)
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self._request_body()
        process = subprocess.Popen(
            [owner.git, "http-backend"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=self._cgi_env(len(body)),
        )
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(body)
        process.stdin.close()
        try:
            self._relay(process.stdout)
        finally:
            process.stdout.close()
            process.wait()

    def _request_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return _read_chunked(self.rfile)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _cgi_env(self, length: int) -> dict[str, str]:
        path, _, query = self.path.partition("?")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.owner.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(length),
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_USER": "tester",
        }
        for header, variable in (
            ("Git-Protocol", "GIT_PROTOCOL"),
            ("Content-Encoding", "HTTP_CONTENT_ENCODING"),
        ):
            value = self.headers.get(header)
            if value:
                env[variable] = value
        return env

    def _relay(self, output: IO[bytes]) -> None:
        """Turn the CGI response (headers, blank line, body) into an HTTP response.

        The body is buffered to send a Content-Length: libgit2 (pygit2, hence DVC) does not
        read close-delimited bodies.
        """
        status = 200
        headers: list[tuple[str, str]] = []
        while line := output.readline().rstrip(b"\r\n"):
            key, _, value = line.decode("latin-1").partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            else:
                headers.append((key, value.strip()))
        body = output.read()
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for start in range(0, len(body), CHUNK):
            self.wfile.write(body[start : start + CHUNK])
        self.owner.stats.add(sent=len(body))


def _read_chunked(stream: IO[bytes] | io.BufferedIOBase) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int(stream.readline().split(b";")[0].strip(), 16)
        if size == 0:
            stream.readline()
            return b"".join(parts)
        parts.append(stream.read(size))
        stream.readline()


class _Listener(ThreadingHTTPServer):
    # http.server's default backlog is 5: when an operator's pollers connect at once (a restart
    # over 200 repositories), the kernel drops the rest of the SYNs and each dropped client
    # waits out TCP's retransmission backoff (1, 3, 7, ... 63 s) before it is even accepted.
    request_queue_size = 1024
    daemon_threads = True


class GitHttpServer:
    """Serves the bare repositories under `root` on `host` (loopback unless pods must reach it:
    then the real node's address) with an ephemeral port."""

    def __init__(
        self,
        root: Path,
        *,
        auth: BasicAuth | None = None,
        bearer_token: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        git = shutil.which("git")
        assert git is not None, "git is not installed"
        self.git = git
        self.root = root
        self.auth = auth
        self.bearer_token = bearer_token
        self.stats = ServerStats()
        handler = type("GitHandler", (_GitHandler,), {"owner": self})
        self.host = host
        self._httpd = _Listener((host, 0), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self, repo: str) -> str:
        return f"http://{self.host}:{self.port}/{repo}"

    def authorized(self, header: str | None) -> bool:
        if self.auth is None and self.bearer_token is None:
            return True
        if header is None:
            return False
        if self.auth is not None and header == self.auth.header():
            return True
        return self.bearer_token is not None and header == f"Bearer {self.bearer_token}"

    def start(self) -> GitHttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> GitHttpServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
