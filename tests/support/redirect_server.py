"""Two loopback HTTP servers for redirect attacks: one that answers every request with a 302 to
another origin, and one that records the Authorization headers it is sent (and challenges, so
that a client willing to send credentials would)."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

from tests.support.background import BackgroundServer


class _Server(BackgroundServer):
    handler: ClassVar[type[BaseHTTPRequestHandler]]

    def __init__(self) -> None:
        handler = type("Handler", (self.handler,), {"owner": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        super().__init__(self._httpd)

    @property
    def origin(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return


class _Recording(_Quiet):
    owner: ClassVar[RecordingServer]

    def do_GET(self) -> None:
        self.owner.requests.append(self.path)
        self.owner.authorizations.append(self.headers.get("Authorization"))
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="elsewhere"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET


class RecordingServer(_Server):
    """Another origin: every request is recorded with its Authorization header, then 401."""

    handler = _Recording

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.authorizations: list[str | None] = []
        super().__init__()


class _Redirecting(_Quiet):
    owner: ClassVar[RedirectingServer]

    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", self.owner.target + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET


class RedirectingServer(_Server):
    """Answers every request with a 302 to the same path on `target`."""

    handler = _Redirecting

    def __init__(self, target: str) -> None:
        self.target = target
        super().__init__()
