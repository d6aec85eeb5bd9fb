"""Two loopback HTTP servers for redirect attacks: one that answers every request with a 302 to
another origin, and one that records the Authorization headers it is sent (and challenges, so
that a client willing to send credentials would)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import ClassVar


class _Server:
    handler: ClassVar[type[BaseHTTPRequestHandler]]

    def __init__(self) -> None:
        handler = type("Handler", (self.handler,), {"owner": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> _Server:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


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

    def __enter__(self) -> RecordingServer:
        super().__enter__()
        return self


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

    def __enter__(self) -> RedirectingServer:
        super().__enter__()
        return self
