"""A test server running in a daemon thread, used as a context manager: the lifecycle shared by
the DVC HTTP remote, the S3 server and the redirect servers."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Protocol, Self


class Serving(Protocol):
    def serve_forever(self) -> None: ...

    def shutdown(self) -> None: ...

    def server_close(self) -> None: ...


class BackgroundServer:
    def __init__(self, server: Serving) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
