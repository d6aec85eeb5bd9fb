"""The loopback smart-HTTP git server, counting git commands and able to hold requests.

`CountingGitServer` is `gitstage.dev.git_server.GitHttpServer` plus:
  commands        Counter of what clients asked: `ls-refs` and `fetch` (protocol v2),
                  `upload-pack` (v0 negotiation), `receive-pack` (pushes);
  hold()/release  a gate: while held, requests wait in the server (`waiting` is set when one
                  does), so a test can keep a poll in flight or make a client time out.
"""

from __future__ import annotations

import gzip
import threading
from collections import Counter
from pathlib import Path
from typing import ClassVar

from gitstage.dev.git_server import BasicAuth, GitHttpServer, _GitHandler

GATE_LIMIT = 60.0  # a held request gives up after this long, so a failed test cannot hang


class CountingGitServer(GitHttpServer):
    def __init__(
        self, root: Path, *, auth: BasicAuth | None = None, host: str = "127.0.0.1"
    ) -> None:
        super().__init__(root, auth=auth, host=host)
        self.commands: Counter[str] = Counter()
        self.waiting = threading.Event()
        self._open = threading.Event()
        self._open.set()
        self._lock = threading.Lock()
        handler = type("CountingHandler", (_CountingHandler,), {"owner": self})
        self._httpd.RequestHandlerClass = handler

    def hold(self) -> None:
        self.waiting.clear()
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def count(self, body: bytes, path: str, encoding: str) -> None:
        with self._lock:
            self.commands[_command(body, path, encoding)] += 1

    def wait_at_gate(self) -> None:
        if not self._open.is_set():
            self.waiting.set()
            self._open.wait(GATE_LIMIT)


class _CountingHandler(_GitHandler):
    owner: ClassVar[CountingGitServer]

    def _request_body(self) -> bytes:
        body = super()._request_body()
        self.owner.wait_at_gate()
        if self.command == "POST":
            self.owner.count(body, self.path, self.headers.get("Content-Encoding", ""))
        return body


def _command(body: bytes, path: str, encoding: str) -> str:
    if path.endswith("git-receive-pack"):
        return "receive-pack"
    if encoding == "gzip":
        body = gzip.decompress(body)
    # A v2 request starts with the pkt-line `command=NAME`; v0 starts with `want`.
    try:
        length = int(body[:4], 16)
    except ValueError:
        return "unknown"
    line = body[4:length].rstrip(b"\n")
    if line.startswith(b"command="):
        return line.removeprefix(b"command=").decode()
    return "upload-pack"
