"""The dev git server queues a burst of connections instead of letting the kernel drop SYNs."""

from __future__ import annotations

import socket
from pathlib import Path

from gitstage.dev.git_server import GitHttpServer

BURST = 200  # an operator's pollers after a restart over 200 repositories


def test_a_burst_of_connections_is_queued_while_the_server_is_busy(tmp_path: Path) -> None:
    server = GitHttpServer(tmp_path)  # listening, but not accepting yet: as when its thread lags
    sockets: list[socket.socket] = []
    try:
        for _ in range(BURST):
            # With http.server's default backlog of 5 the sixth SYN or so is dropped and
            # connect() waits out TCP's retransmissions: the 1 s timeout then fires.
            sockets.append(socket.create_connection(("127.0.0.1", server.port), timeout=1))
        assert len(sockets) == BURST
    finally:
        for opened in sockets:
            opened.close()
        server.start()
        server.stop()
