"""A static file server on loopback (a DVC HTTP remote), with byte counting and fault injection.

with FileHttpServer(remote_dir) as server:
    server.url                      # http://127.0.0.1:PORT
    server.cut_after = 1024         # from now on every body stops after 1 KiB (server "dies")
    server.stats.bytes_sent
"""

from __future__ import annotations

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import IO, Any, ClassVar

from gitstage.dev.git_server import BasicAuth, ServerStats

CHUNK = 64 * 1024


class _FileHandler(SimpleHTTPRequestHandler):
    owner: ClassVar[FileHttpServer]

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        return

    def send_head(self) -> Any:
        self.owner.stats.add(requests=1)
        auth = self.owner.auth
        if auth is not None and self.headers.get("Authorization") != auth.header():
            self.owner.stats.add(denied=1)
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="dvc"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        return super().send_head()

    def copyfile(self, source: IO[bytes], outputfile: IO[bytes]) -> None:  # type: ignore[override]
        budget = self.owner.cut_after
        while chunk := source.read(CHUNK):
            if budget is not None:
                chunk = chunk[:budget]
                budget -= len(chunk)
            try:
                outputfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                return  # the client stopped reading; nothing more was sent
            self.owner.stats.add(sent=len(chunk))
            if budget == 0:
                self.close_connection = True
                return


class FileHttpServer:
    """Serves `root` read-only on `host` (loopback, or the real node's address for pods) with an
    ephemeral port."""

    def __init__(
        self, root: Path, *, auth: BasicAuth | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.root = root
        self.auth = auth
        self.stats = ServerStats()
        self.cut_after: int | None = None
        handler = type("FileHandler", (_FileHandler,), {"owner": self})
        self._httpd = ThreadingHTTPServer((host, 0), partial(handler, directory=str(root)))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FileHttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> FileHttpServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
