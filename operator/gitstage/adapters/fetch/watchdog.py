"""HTTP(S) connections that a fetch's deadline ends, wherever their reads are blocked.

A socket timeout only bounds one wait for data: a server that sends a byte every few seconds,
in its headers, chunk sizes or body, keeps a read going for ever. While a download runs, a timer
watches the connections it opened (redirects included); when the deadline passes it shuts their
sockets down, which wakes the blocked read at once, and the download reports the deadline.

The connections register themselves with the watchdog of their thread (a download opens, reads
and closes its connection in one thread): the connection while it connects, its socket once
connected (urllib drops the connection's own reference as soon as the headers are read, while
the response goes on reading the socket).
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

_active = threading.local()


class Watchdog:
    """Shuts the watched connections' sockets down once `seconds` have passed."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._connections: list[http.client.HTTPConnection] = []
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()

    def watch(self, connection: http.client.HTTPConnection) -> None:
        self._connections.append(connection)

    def watch_socket(self, sock: socket.socket) -> None:
        self._sockets.append(sock)

    def _expire(self) -> None:
        self.expired = True
        # A connecting connection's TCP socket (its TLS handshake included), then the sockets
        # of connected ones.
        connecting = [connection.sock for connection in list(self._connections)]
        for sock in [*connecting, *list(self._sockets)]:
            if sock is not None:
                with suppress(OSError):  # the base class's: a TLS socket's state is left alone
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)


@contextmanager
def watching(seconds: float) -> Iterator[Watchdog]:
    """Watch the connections this thread opens within the block, for `seconds` at most."""
    watchdog = Watchdog(seconds)
    previous = getattr(_active, "watchdog", None)
    _active.watchdog = watchdog
    watchdog.start()
    try:
        yield watchdog
    finally:
        watchdog.cancel()
        _active.watchdog = previous


def _watchdog() -> Watchdog | None:
    watchdog: Watchdog | None = getattr(_active, "watchdog", None)
    return watchdog


class _WatchedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._watchdog = _watchdog()
        if self._watchdog is not None:
            self._watchdog.watch(self)

    def connect(self) -> None:
        super().connect()
        self._watch_socket()

    def _watch_socket(self) -> None:
        if self._watchdog is not None and self.sock is not None:
            self._watchdog.watch_socket(self.sock)


class _WatchedHTTPSConnection(http.client.HTTPSConnection, _WatchedHTTPConnection):
    """Its TCP socket is watched once connected (the base above), the TLS one after."""

    def connect(self) -> None:
        super().connect()
        self._watch_socket()


class WatchedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_WatchedHTTPConnection, req)


class WatchedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._tls = tls or ssl.create_default_context()  # GITSTAGE_CA_BUNDLE's, when given
        super().__init__(context=self._tls)

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_WatchedHTTPSConnection, req, context=self._tls)
