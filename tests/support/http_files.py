"""A static file server on loopback (a DVC HTTP remote), with byte counting and fault injection.

with FileHttpServer(remote_dir) as server:
    server.url                      # http://127.0.0.1:PORT
    server.cut_after = 1024         # from now on every body stops after 1 KiB (server "dies")
    server.hold(1 << 20)            # bodies pause after 1 MiB (server.holding is set) ...
    server.release()                # ... until released; later bodies are sent whole
    server.redirect_to = "http://127.0.0.1:9"   # every request answered with a 302 there
    server.trickle_every = 0.2      # bodies are sent one byte every 0.2 s (never a long silence)
    server.trickle_headers = True   # ... or the header block itself, a byte at a time, endlessly
    server.stats.bytes_sent
"""

from __future__ import annotations

import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, ClassVar

from gitstage.dev.git_server import BasicAuth, ServerStats
from tests.support.background import BackgroundServer

CHUNK = 64 * 1024
HOLD_LIMIT = 600.0  # a paused body never outlives a forgotten release() by more than this


class _FileHandler(SimpleHTTPRequestHandler):
    owner: ClassVar[FileHttpServer]

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        return

    def send_head(self) -> Any:
        self.owner.stats.add(requests=1)
        if self.owner.trickle_headers:
            self._trickle_header_block()
            return None
        if self.owner.redirect_to is not None:
            self.send_response(302)
            self.send_header("Location", self.owner.redirect_to + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        auth = self.owner.auth
        if auth is not None and self.headers.get("Authorization") != auth.header():
            self.owner.stats.add(denied=1)
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="dvc"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        return super().send_head()

    def _trickle_header_block(self) -> None:
        """A status line, then one header that never ends: a byte per `trickle_every`."""
        self.close_connection = True
        if not self._send(self.wfile, b"HTTP/1.1 200 OK\r\nX-Slow: "):
            return
        deadline = time.monotonic() + HOLD_LIMIT
        while time.monotonic() < deadline and self._send(self.wfile, b"z"):
            time.sleep(self.owner.trickle_every or 0.2)

    def _trickle(self, source: IO[bytes], outputfile: IO[bytes]) -> None:
        while (byte := source.read(1)) and self._send(outputfile, byte):
            time.sleep(self.owner.trickle_every or 0.2)

    def copyfile(self, source: IO[bytes], outputfile: IO[bytes]) -> None:  # type: ignore[override]
        if self.owner.trickle_every is not None:
            self._trickle(source, outputfile)
            return
        budget = self.owner.cut_after
        hold = self.owner.hold_after
        sent = 0
        while chunk := source.read(CHUNK):
            if budget is not None:
                chunk = chunk[:budget]
                budget -= len(chunk)
            if hold is not None and sent + len(chunk) > hold:
                head, chunk = chunk[: hold - sent], chunk[hold - sent :]
                if not self._send(outputfile, head):
                    return
                sent += len(head)
                self.owner.pause()
                hold = None
            if not self._send(outputfile, chunk):
                return
            sent += len(chunk)
            if budget == 0:
                self.close_connection = True
                return

    def _send(self, outputfile: IO[bytes], chunk: bytes) -> bool:
        """Write and flush `chunk`; False when the client has gone."""
        try:
            outputfile.write(chunk)
            outputfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return False
        self.owner.stats.add(sent=len(chunk))
        return True


class FileHttpServer(BackgroundServer):
    """Serves `root` read-only on `host` (loopback, or the real node's address for pods) with an
    ephemeral port."""

    def __init__(
        self, root: Path, *, auth: BasicAuth | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.root = root
        self.auth = auth
        self.stats = ServerStats()
        self.cut_after: int | None = None
        self.hold_after: int | None = None
        self.redirect_to: str | None = None  # an origin every request is redirected to
        self.trickle_every: float | None = None  # seconds between the bytes of a trickled body
        self.trickle_headers = False  # answer with a header block that never ends
        self.holding = threading.Event()  # set once a body has paused at `hold_after`
        self._released = threading.Event()
        handler = type("FileHandler", (_FileHandler,), {"owner": self})
        self._httpd = ThreadingHTTPServer((host, 0), partial(handler, directory=str(root)))
        self._httpd.daemon_threads = True
        super().__init__(self._httpd)

    def hold(self, after: int) -> None:
        """From now on bodies pause after `after` bytes, until `release()`."""
        self._released.clear()
        self.holding.clear()
        self.hold_after = after

    def pause(self) -> None:
        """Called by a handler at `hold_after`: wait (bounded) until `release()`."""
        self.holding.set()
        self._released.wait(timeout=HOLD_LIMIT)

    def release(self) -> None:
        """Let paused bodies go on, and send later ones whole."""
        self.hold_after = None
        self._released.set()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self._released.set()  # no handler stays paused past the server
        super().stop()
